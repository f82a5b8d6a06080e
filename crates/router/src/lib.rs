//! Model groups and deployment selection.
//!
//! A request names a model; the router resolves it to a model group (exact name, deployment
//! id, alias, pinned upstream model, or wildcard pattern) and picks one deployment of that
//! group. The router is generic over the deployment handle `D`, so it never depends on how a
//! deployment is called (the facade hands it provider adapters; tests hand it plain values).
//!
//! # Layout
//! - [`pattern`] — wildcard model names (`openai/*`, `*`).
//! - [`strategy`] — how one deployment of a group is picked (`simple-shuffle` today).
//! - [`Router`] — resolution and the error for names that resolve to nothing.

pub mod pattern;
pub mod strategy;

use std::collections::HashMap;

use switchyard_llm_types::{ErrorClass, ErrorKind};

pub use pattern::Pattern;
pub use strategy::Weights;

/// One deployment as the router sees it.
#[derive(Debug, Clone)]
pub struct Deployment<D> {
    /// `model_info.id` or its LiteLLM-compatible hash.
    pub id: String,
    /// The model group (`model_name`) this deployment serves.
    pub model_name: String,
    /// `litellm_params.model` as configured, so a request may pin this deployment by it.
    pub litellm_model: String,
    pub weights: Weights,
    pub handle: D,
}

/// The outcome of resolving a model name.
#[derive(Debug)]
pub struct Route<'a, D> {
    /// The model group that serves the request (for a wildcard, the requested name).
    pub model_group: String,
    pub deployment: &'a Deployment<D>,
    /// The text each `*` of a wildcard deployment's name matched, in order.
    pub wildcard_captures: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key.")]
    UnknownModel { model: String },
}

impl ErrorClass for RouterError {
    fn kind(&self) -> ErrorKind {
        match self {
            RouterError::UnknownModel { .. } => ErrorKind::BadRequest,
        }
    }

    fn param(&self) -> Option<&str> {
        Some("model")
    }
}

#[derive(Debug)]
struct Group {
    /// Indexes into `Router::deployments`.
    members: Vec<usize>,
    weights: Vec<f64>,
}

#[derive(Debug)]
pub struct Router<D> {
    deployments: Vec<Deployment<D>>,
    groups: HashMap<String, Group>,
    /// Wildcard groups, most specific first.
    patterns: Vec<(Pattern, Group)>,
    by_id: HashMap<String, usize>,
    by_litellm_model: HashMap<String, usize>,
    /// `alias → group`; hidden aliases route but are not listed.
    aliases: HashMap<String, (String, bool)>,
}

impl<D> Router<D> {
    pub fn new(
        deployments: Vec<Deployment<D>>,
        aliases: impl IntoIterator<Item = (String, String, bool)>,
    ) -> Self {
        let mut members_by_name: Vec<(String, Vec<usize>)> = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_litellm_model = HashMap::new();
        for (index, deployment) in deployments.iter().enumerate() {
            match members_by_name
                .iter_mut()
                .find(|(name, _)| *name == deployment.model_name)
            {
                Some((_, members)) => members.push(index),
                None => members_by_name.push((deployment.model_name.clone(), vec![index])),
            }
            by_id.insert(deployment.id.clone(), index);
            by_litellm_model
                .entry(deployment.litellm_model.clone())
                .or_insert(index);
        }
        let mut groups = HashMap::new();
        let mut patterns = Vec::new();
        for (name, members) in members_by_name {
            let weights = strategy::group_weights(members.iter().map(|&i| &deployments[i].weights));
            let group = Group { members, weights };
            if Pattern::is_pattern(&name) {
                patterns.push((Pattern::new(&name), group));
            } else {
                groups.insert(name, group);
            }
        }
        patterns.sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.specificity()));
        Self {
            deployments,
            groups,
            patterns,
            by_id,
            by_litellm_model,
            aliases: aliases
                .into_iter()
                .map(|(alias, group, hidden)| (alias, (group, hidden)))
                .collect(),
        }
    }

    pub fn deployments(&self) -> &[Deployment<D>] {
        &self.deployments
    }

    /// Model names a caller may request, for `/models`: groups in config order, then visible
    /// aliases. Wildcard groups are listed only when asked for.
    pub fn model_names(&self, include_wildcards: bool) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for deployment in &self.deployments {
            let is_pattern = Pattern::is_pattern(&deployment.model_name);
            if (include_wildcards || !is_pattern) && !names.contains(&deployment.model_name) {
                names.push(deployment.model_name.clone());
            }
        }
        let mut aliases: Vec<&String> = self
            .aliases
            .iter()
            .filter(|(_, (_, hidden))| !hidden)
            .map(|(alias, _)| alias)
            .collect();
        aliases.sort();
        for alias in aliases {
            if !names.contains(alias) {
                names.push(alias.clone());
            }
        }
        names
    }

    /// Resolves a requested model name and picks a deployment, in LiteLLM's order: exact group
    /// name or deployment id, then alias, then a deployment's own `litellm_params.model`, then
    /// wildcard patterns.
    pub fn route(&self, model: &str) -> Result<Route<'_, D>, RouterError> {
        if let Some(group) = self.groups.get(model) {
            return Ok(self.pick(model, group, Vec::new()));
        }
        if let Some(&index) = self.by_id.get(model) {
            return Ok(self.pinned(index));
        }
        if let Some((target, _)) = self.aliases.get(model) {
            if let Some(group) = self.groups.get(target) {
                return Ok(self.pick(target, group, Vec::new()));
            }
        }
        if let Some(&index) = self.by_litellm_model.get(model) {
            return Ok(self.pinned(index));
        }
        for (pattern, group) in &self.patterns {
            if let Some(captures) = pattern.captures(model) {
                return Ok(self.pick(model, group, captures));
            }
        }
        Err(RouterError::UnknownModel {
            model: model.to_owned(),
        })
    }

    fn pinned(&self, index: usize) -> Route<'_, D> {
        let deployment = &self.deployments[index];
        Route {
            model_group: deployment.model_name.clone(),
            deployment,
            wildcard_captures: Vec::new(),
        }
    }

    fn pick(
        &self,
        group_name: &str,
        group: &Group,
        wildcard_captures: Vec<String>,
    ) -> Route<'_, D> {
        let member = strategy::simple_shuffle(&group.weights);
        Route {
            model_group: group_name.to_owned(),
            deployment: &self.deployments[group.members[member]],
            wildcard_captures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, name: &str, model: &str) -> Deployment<&'static str> {
        Deployment {
            id: id.into(),
            model_name: name.into(),
            litellm_model: model.into(),
            weights: Weights::default(),
            handle: "h",
        }
    }

    fn router() -> Router<&'static str> {
        Router::new(
            vec![
                deployment("a1", "gpt-4o", "openai/gpt-4o"),
                deployment("a2", "gpt-4o", "azure/gpt-4o"),
                deployment("w1", "openai/*", "openai/*"),
                deployment("w2", "*", "openai/*"),
                deployment("c1", "claude", "anthropic/claude-3"),
            ],
            [
                ("gpt4".to_owned(), "gpt-4o".to_owned(), false),
                ("hidden".to_owned(), "claude".to_owned(), true),
            ],
        )
    }

    #[test]
    fn resolution_order_matches_litellm() {
        let router = router();
        assert_eq!(router.route("gpt-4o").unwrap().model_group, "gpt-4o");
        assert_eq!(router.route("c1").unwrap().deployment.id, "c1");
        assert_eq!(router.route("gpt4").unwrap().model_group, "gpt-4o");
        assert_eq!(router.route("hidden").unwrap().deployment.id, "c1");
        assert_eq!(
            router.route("anthropic/claude-3").unwrap().deployment.id,
            "c1"
        );
        let wildcard = router.route("openai/gpt-4o-mini").unwrap();
        assert_eq!(wildcard.deployment.id, "w1");
        assert_eq!(wildcard.wildcard_captures, vec!["gpt-4o-mini".to_owned()]);
        assert_eq!(router.route("anything").unwrap().deployment.id, "w2");
    }

    #[test]
    fn unknown_models_are_a_400_naming_the_model() {
        let router = Router::new(vec![deployment("a1", "gpt-4o", "openai/gpt-4o")], []);
        let error = router.route("nope").unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.to_string().contains("model=nope"));
    }

    #[test]
    fn model_names_hide_wildcards_and_hidden_aliases() {
        assert_eq!(
            router().model_names(false),
            vec!["gpt-4o", "claude", "gpt4"]
        );
        assert!(router().model_names(true).contains(&"openai/*".to_owned()));
    }
}
