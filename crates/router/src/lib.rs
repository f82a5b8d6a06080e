//! Model groups and deployment selection.
//!
//! A request names a model; the router resolves it to a model group (exact name, deployment
//! id, alias, pinned upstream model, or wildcard pattern) and picks one deployment of that
//! group. The router is generic over the deployment handle `D`, so it never depends on how a
//! deployment is called (the facade hands it provider adapters; tests hand it plain values).
//!
//! # Layout
//! - [`pattern`] — wildcard model names (`openai/*`, `*`).
//! - [`strategy`] — how one deployment of a group is picked (`simple-shuffle`, `least-busy`).
//! - [`health`] — per-deployment failure counts and cooldowns.
//! - [`retry`] — how often and after how long a failed call is retried.
//! - [`fallback`] — which groups to try after a group failed.
//! - [`Router`] — resolution, picking among healthy deployments, in-flight counts
//!   ([`InFlightGuard`]), and the routing errors.
//!
//! The retry/fallback loop itself lives with the caller (the engine), which owns the calls;
//! the router answers "which deployment next" and records how each attempt went.

pub mod fallback;
pub mod health;
pub mod pattern;
pub mod retry;
pub mod strategy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard_llm_types::{ErrorClass, ErrorKind};

pub use fallback::FallbackSettings;
pub use health::{Clock, CooldownSettings, Failure, Health, SystemClock};
pub use pattern::Pattern;
pub use retry::RetrySettings;
pub use strategy::{RoutingStrategy, Weights};

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
    /// Priority tier (`order`): lower is tried first.
    pub order: Option<u32>,
    /// The deployment's own `cooldown_time`.
    pub cooldown_time: Option<Duration>,
    /// The deployment's own `num_retries`.
    pub num_retries: Option<u32>,
    pub handle: D,
}

/// The outcome of resolving a model name.
#[derive(Debug)]
pub struct Route<'a, D> {
    /// The model group that serves the request (for a wildcard, the requested name).
    pub model_group: String,
    /// The deployment's index, for [`Router::health`] and exclusion on retry.
    pub index: usize,
    pub deployment: &'a Deployment<D>,
    /// The text each `*` of a wildcard deployment's name matched, in order.
    pub wildcard_captures: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouterError {
    #[error("Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key.")]
    UnknownModel { model: String },
    /// Every deployment of the group is cooling down.
    #[error("No deployments available for selected model, Try again in {} seconds. Passed model={model}. pre-call-checks=False, cooldown_list={cooling:?}", retry_after.as_secs().max(1))]
    NoHealthyDeployments {
        model: String,
        retry_after: Duration,
        cooling: Vec<String>,
    },
}

impl ErrorClass for RouterError {
    fn kind(&self) -> ErrorKind {
        match self {
            RouterError::UnknownModel { .. } => ErrorKind::BadRequest,
            RouterError::NoHealthyDeployments { .. } => ErrorKind::RateLimited,
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            RouterError::UnknownModel { .. } => Some("model"),
            RouterError::NoHealthyDeployments { .. } => None,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RouterError::NoHealthyDeployments { retry_after, .. } => {
                Some(retry_after.as_secs().max(1))
            }
            RouterError::UnknownModel { .. } => None,
        }
    }
}

/// A requested model name resolved to the deployments that may serve it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The model group that serves the request (for a wildcard, the requested name).
    pub model_group: String,
    /// Indexes of the candidate deployments (one when the request pinned a deployment).
    pub members: Vec<usize>,
    /// The text each `*` of a wildcard deployment's name matched, in order.
    pub wildcard_captures: Vec<String>,
}

#[derive(Debug)]
struct Group {
    /// Indexes into `Router::deployments`.
    members: Vec<usize>,
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
    /// Each deployment's normalised share of its group's traffic.
    shares: Vec<f64>,
    /// How many deployments each deployment's model group has (cooldown rules differ for a
    /// group's only deployment, even when a request pinned it by id).
    group_sizes: Vec<usize>,
    health: Health,
    strategy: RoutingStrategy,
    /// Calls in flight per deployment (for `least-busy`), shared with the guards that count
    /// them so a stream can hold its count until it ends.
    in_flight: Arc<[AtomicUsize]>,
}

/// One call in flight on a deployment: counted from [`Router::begin_call`] until dropped.
///
/// A streamed answer carries its guard inside the stream, so the call counts until the
/// stream ends or the client goes away.
#[derive(Debug)]
pub struct InFlightGuard {
    counters: Arc<[AtomicUsize]>,
    index: usize,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(counter) = self.counters.get(self.index) {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<D> Router<D> {
    pub fn new(
        deployments: Vec<Deployment<D>>,
        aliases: impl IntoIterator<Item = (String, String, bool)>,
    ) -> Self {
        Self::with_health(
            deployments,
            aliases,
            CooldownSettings::default(),
            Arc::new(SystemClock::default()),
        )
    }

    pub fn with_health(
        deployments: Vec<Deployment<D>>,
        aliases: impl IntoIterator<Item = (String, String, bool)>,
        cooldowns: CooldownSettings,
        clock: Arc<dyn Clock>,
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
        let mut shares = vec![0.0; deployments.len()];
        let mut group_sizes = vec![1; deployments.len()];
        for (name, members) in members_by_name {
            let weights = strategy::group_weights(members.iter().map(|&i| &deployments[i].weights));
            for (member, share) in members.iter().zip(&weights) {
                shares[*member] = *share;
                group_sizes[*member] = members.len();
            }
            let group = Group { members };
            if Pattern::is_pattern(&name) {
                patterns.push((Pattern::new(&name), group));
            } else {
                groups.insert(name, group);
            }
        }
        patterns.sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.specificity()));
        let health = Health::new(deployments.len(), cooldowns, clock);
        let in_flight: Arc<[AtomicUsize]> = (0..deployments.len())
            .map(|_| AtomicUsize::new(0))
            .collect();
        Self {
            health,
            strategy: RoutingStrategy::default(),
            in_flight,
            shares,
            group_sizes,
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

    /// Sets how one deployment of a group is picked (`simple-shuffle` by default).
    pub fn with_strategy(mut self, strategy: RoutingStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn strategy(&self) -> RoutingStrategy {
        self.strategy
    }

    /// Counts a call on deployment `index` as in flight until the guard is dropped.
    pub fn begin_call(&self, index: usize) -> InFlightGuard {
        if let Some(counter) = self.in_flight.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        InFlightGuard {
            counters: self.in_flight.clone(),
            index,
        }
    }

    /// Calls in flight on deployment `index`.
    pub fn in_flight(&self, index: usize) -> usize {
        self.in_flight
            .get(index)
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
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

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The number of deployments in the model group of deployment `index`.
    pub fn group_size(&self, index: usize) -> usize {
        self.group_sizes.get(index).copied().unwrap_or(1)
    }

    pub fn deployment(&self, index: usize) -> Option<&Deployment<D>> {
        self.deployments.get(index)
    }

    /// Resolves a requested model name in LiteLLM's order: exact group name or deployment
    /// id, then alias, then a deployment's own `litellm_params.model`, then wildcard patterns.
    pub fn resolve(&self, model: &str) -> Result<Resolved, RouterError> {
        let group = |name: &str, group: &Group, captures: Vec<String>| Resolved {
            model_group: name.to_owned(),
            members: group.members.clone(),
            wildcard_captures: captures,
        };
        if let Some(found) = self.groups.get(model) {
            return Ok(group(model, found, Vec::new()));
        }
        if let Some(&index) = self.by_id.get(model) {
            return Ok(self.pinned(index));
        }
        if let Some((target, _)) = self.aliases.get(model) {
            if let Some(found) = self.groups.get(target) {
                return Ok(group(target, found, Vec::new()));
            }
        }
        if let Some(&index) = self.by_litellm_model.get(model) {
            return Ok(self.pinned(index));
        }
        for (pattern, found) in &self.patterns {
            if let Some(captures) = pattern.captures(model) {
                return Ok(group(model, found, captures));
            }
        }
        Err(RouterError::UnknownModel {
            model: model.to_owned(),
        })
    }

    fn pinned(&self, index: usize) -> Resolved {
        Resolved {
            model_group: self.deployments[index].model_name.clone(),
            members: vec![index],
            wildcard_captures: Vec::new(),
        }
    }

    /// Picks a deployment of a resolved group: not cooling down, not in `exclude` (already
    /// tried by this request), from the lowest `order` tier left, then by the strategy:
    /// weighted by traffic share (`simple-shuffle`) or fewest in flight (`least-busy`).
    ///
    /// `Ok(None)` when every member was tried; an error when the untried ones all cool down.
    pub fn pick(
        &self,
        resolved: &Resolved,
        exclude: &[usize],
    ) -> Result<Option<usize>, RouterError> {
        let now = self.health.now_ms();
        let mut cooling: Vec<(usize, Duration)> = Vec::new();
        let mut candidates: Vec<usize> = Vec::with_capacity(resolved.members.len());
        for &member in &resolved.members {
            if exclude.contains(&member) {
                continue;
            }
            match self.health.cooldown_remaining(member, now) {
                Some(remaining) => cooling.push((member, remaining)),
                None => candidates.push(member),
            }
        }
        if candidates.is_empty() {
            return match cooling.iter().map(|(_, remaining)| *remaining).min() {
                None => Ok(None),
                Some(retry_after) => Err(RouterError::NoHealthyDeployments {
                    model: resolved.model_group.clone(),
                    retry_after,
                    cooling: cooling
                        .iter()
                        .map(|(m, _)| self.deployments[*m].id.clone())
                        .collect(),
                }),
            };
        }
        // LiteLLM: once any candidate has an `order`, only the lowest tier is eligible.
        if let Some(lowest) = candidates
            .iter()
            .filter_map(|&m| self.deployments[m].order)
            .min()
        {
            candidates.retain(|&m| self.deployments[m].order == Some(lowest));
        }
        if candidates.len() == 1 {
            return Ok(Some(candidates[0]));
        }
        if self.strategy == RoutingStrategy::LeastBusy {
            let loads: Vec<usize> = candidates.iter().map(|&m| self.in_flight(m)).collect();
            return Ok(Some(candidates[strategy::least_busy(&loads)]));
        }
        let shares: Vec<f64> = candidates.iter().map(|&m| self.shares[m]).collect();
        let total: f64 = shares.iter().sum();
        let weights: Vec<f64> = if total > 0.0 {
            shares.iter().map(|share| share / total).collect()
        } else {
            vec![1.0 / candidates.len() as f64; candidates.len()]
        };
        Ok(Some(candidates[strategy::simple_shuffle(&weights)]))
    }

    /// Resolves and picks in one step (no exclusions), for callers without retries.
    pub fn route(&self, model: &str) -> Result<Route<'_, D>, RouterError> {
        let resolved = self.resolve(model)?;
        let index = self
            .pick(&resolved, &[])?
            .ok_or_else(|| RouterError::UnknownModel {
                model: model.to_owned(),
            })?;
        Ok(Route {
            model_group: resolved.model_group,
            index,
            deployment: &self.deployments[index],
            wildcard_captures: resolved.wildcard_captures,
        })
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
            order: None,
            cooldown_time: None,
            num_retries: None,
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
    fn picks_skip_tried_and_cooling_deployments_and_respect_order_tiers() {
        let mut deployments = vec![
            deployment("p1", "g", "openai/a"),
            deployment("p2", "g", "openai/b"),
            deployment("backup", "g", "openai/c"),
        ];
        deployments[0].order = Some(1);
        deployments[1].order = Some(1);
        deployments[2].order = Some(2);
        let router = Router::new(deployments, []);
        let resolved = router.resolve("g").unwrap();
        for _ in 0..50 {
            let picked = router.pick(&resolved, &[]).unwrap().unwrap();
            assert!(picked < 2, "tier 2 picked while tier 1 is healthy");
        }
        assert_eq!(router.pick(&resolved, &[0, 1]).unwrap(), Some(2));
        assert_eq!(router.pick(&resolved, &[0, 1, 2]).unwrap(), None);
        let failure = Failure {
            status: Some(429),
            retry_after: None,
        };
        router.health().record_failure(0, failure, 3, None);
        router.health().record_failure(1, failure, 3, None);
        assert_eq!(router.pick(&resolved, &[]).unwrap(), Some(2));
        router.health().record_failure(2, failure, 3, None);
        let error = router.pick(&resolved, &[]).unwrap_err();
        assert_eq!(error.status(), 429);
        assert!(error.retry_after_secs().is_some());
        assert!(error
            .to_string()
            .starts_with("No deployments available for selected model, Try again in 5 seconds."));
    }

    #[test]
    fn least_busy_picks_the_deployment_with_fewest_calls_in_flight() {
        let mut deployments = vec![
            deployment("a", "g", "openai/a"),
            deployment("b", "g", "openai/b"),
            deployment("c", "g", "openai/c"),
        ];
        // Weights are ignored by least-busy.
        deployments[0].weights.weight = Some(100.0);
        let router = Router::new(deployments, []).with_strategy(RoutingStrategy::LeastBusy);
        assert_eq!(router.strategy(), RoutingStrategy::LeastBusy);
        let resolved = router.resolve("g").unwrap();
        let _a1 = router.begin_call(0);
        let _a2 = router.begin_call(0);
        let b1 = router.begin_call(1);
        let _c1 = router.begin_call(2);
        let _c2 = router.begin_call(2);
        assert_eq!(router.in_flight(0), 2);
        for _ in 0..50 {
            assert_eq!(router.pick(&resolved, &[]).unwrap(), Some(1));
        }
        // Excluded deployments are skipped even when least busy.
        assert!(matches!(router.pick(&resolved, &[1]).unwrap(), Some(0 | 2)));
        // The guard's drop ends the call: now `b` has none and still wins; then a tie.
        drop(b1);
        assert_eq!(router.in_flight(1), 0);
        assert_eq!(router.pick(&resolved, &[]).unwrap(), Some(1));
        // Two each: a three-way tie, broken at random.
        let _b2 = router.begin_call(1);
        let _b3 = router.begin_call(1);
        let picks: Vec<usize> = (0..300)
            .map(|_| router.pick(&resolved, &[]).unwrap().unwrap())
            .collect();
        assert!((0..3).all(|d| picks.contains(&d)), "{picks:?}");
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
