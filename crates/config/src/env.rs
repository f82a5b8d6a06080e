//! The environment a config is resolved against: the process environment overlaid with the
//! file's own `environment_variables:` section.
//!
//! LiteLLM writes `environment_variables` into its process environment; we keep them in an
//! overlay instead, because mutating the environment of a multi-threaded process is unsound and
//! because tests must be able to load configs against a fixed environment.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::ConfigError;

const ENV_PREFIX: &str = "os.environ/";

/// Names `environment_variables:` may not set, as LiteLLM refuses them: they would change how
/// the process itself runs rather than configure the gateway.
fn is_protected_name(name: &str) -> bool {
    matches!(name, "PATH" | "HOME" | "USER" | "SHELL" | "NO_PROXY")
        || name.starts_with("LD_")
        || name.starts_with("PYTHON")
}

#[derive(Debug, Clone, Default)]
pub struct Env {
    base: Arc<BTreeMap<String, String>>,
    overlay: BTreeMap<String, String>,
}

impl Env {
    /// A snapshot of the process environment (non-UTF-8 variables are skipped).
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// A fixed environment, for tests and embedding.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            base: Arc::new(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            overlay: BTreeMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.overlay
            .get(name)
            .or_else(|| self.base.get(name))
            .map(String::as_str)
    }

    /// Applies `environment_variables:`; returns the names that were refused.
    pub(crate) fn apply_section(
        &mut self,
        section: &serde_json::Map<String, Value>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut refused = Vec::new();
        for (name, value) in section {
            let path = format!("environment_variables.{name}");
            if is_protected_name(name) {
                refused.push(name.clone());
                continue;
            }
            let mut value = value.clone();
            self.resolve(&mut value, &path)?;
            let text = match value {
                Value::String(text) => text,
                Value::Null => continue,
                other => other.to_string(),
            };
            self.overlay.insert(name.clone(), text);
        }
        Ok(refused)
    }

    /// Replaces every `os.environ/NAME` string in the tree with the variable's value.
    pub fn resolve(&self, value: &mut Value, path: &str) -> Result<(), ConfigError> {
        match value {
            Value::String(text) => {
                if let Some(name) = text.strip_prefix(ENV_PREFIX) {
                    let name = name.trim();
                    match self.get(name) {
                        Some(resolved) => *text = resolved.to_owned(),
                        None => {
                            return Err(ConfigError::MissingEnv {
                                path: path.to_owned(),
                                name: name.to_owned(),
                            })
                        }
                    }
                }
                Ok(())
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.resolve(item, &format!("{path}[{index}]"))?;
                }
                Ok(())
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.resolve(item, &child)?;
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_nested_values_and_list_items() {
        let env = Env::from_vars([("KEY", "sk-1"), ("BASE", "http://x")]);
        let mut value = json!({"a": {"b": "os.environ/KEY"}, "list": ["os.environ/BASE", 3]});
        env.resolve(&mut value, "").unwrap();
        assert_eq!(value, json!({"a": {"b": "sk-1"}, "list": ["http://x", 3]}));
    }

    #[test]
    fn a_missing_variable_names_the_path_and_the_variable() {
        let env = Env::from_vars(Vec::<(String, String)>::new());
        let mut value = json!({"model_list": [{"litellm_params": {"api_key": "os.environ/NOPE"}}]});
        let error = env.resolve(&mut value, "").unwrap_err().to_string();
        assert_eq!(
            error,
            "model_list[0].litellm_params.api_key: environment variable NOPE is not set \
             (referenced as os.environ/NOPE)"
        );
    }

    #[test]
    fn section_overlays_without_touching_protected_names() {
        let mut env = Env::from_vars([("SOURCE", "v")]);
        let section = json!({"A": "os.environ/SOURCE", "PATH": "/evil", "N": 5});
        let refused = env.apply_section(section.as_object().unwrap()).unwrap();
        assert_eq!(refused, vec!["PATH".to_owned()]);
        assert_eq!(env.get("A"), Some("v"));
        assert_eq!(env.get("N"), Some("5"));
        assert_eq!(env.get("PATH"), None);
    }
}
