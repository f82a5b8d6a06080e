//! Gateway-only request fields.
//!
//! LiteLLM clients put proxy controls in the request body next to the OpenAI parameters
//! (`metadata`, `mock_response`, `timeout`, `fallbacks`, `cache`, ...). They steer the gateway
//! and must not reach the upstream, which would reject them; [`GatewayParams::take`] moves
//! them out of a body's `extra` map.

use serde_json::{Map, Value};
use switchyard_llm_types::Extra;

/// Body keys consumed by the gateway, never forwarded.
const GATEWAY_KEYS: &[&str] = &[
    "metadata",
    "litellm_metadata",
    "mock_response",
    "timeout",
    "stream_timeout",
    "num_retries",
    "fallbacks",
    "context_window_fallback_dict",
    "disable_fallbacks",
    "cache",
    "guardrails",
    "tags",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
    "mock_testing_content_policy_fallbacks",
    "mock_timeout",
    "no-log",
    "proxy_server_request",
    "secret_fields",
];

#[derive(Debug, Clone, Default)]
pub struct GatewayParams {
    /// The removed fields by name; later stages (cache controls, tags, spend-log metadata,
    /// fallbacks) read theirs from here.
    pub fields: Map<String, Value>,
}

impl GatewayParams {
    pub fn take(extra: &mut Extra) -> Self {
        let mut fields = Map::new();
        if extra.is_empty() {
            return Self { fields };
        }
        for key in GATEWAY_KEYS {
            if let Some(value) = extra.remove(*key) {
                fields.insert((*key).to_owned(), value);
            }
        }
        Self { fields }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key).filter(|value| !value.is_null())
    }

    /// A number of seconds given as a number or a numeric string.
    pub fn seconds(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|secs| secs.is_finite() && *secs > 0.0)
    }

    pub fn mock_response(&self) -> Option<&Value> {
        self.get("mock_response")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gateway_fields_leave_and_openai_fields_stay() {
        let mut extra = json!({"metadata": {"a": 1}, "timeout": "2.5", "reasoning_effort": "low"})
            .as_object()
            .unwrap()
            .clone();
        let params = GatewayParams::take(&mut extra);
        assert_eq!(params.seconds("timeout"), Some(2.5));
        assert!(params.get("metadata").is_some());
        assert_eq!(extra.len(), 1);
        assert!(extra.contains_key("reasoning_effort"));
    }
}
