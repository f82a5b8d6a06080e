//! The exact-match cache key: a SHA-256 over the model group and the output-changing parameters.
//!
//! The request is serialised to JSON, gateway-only fields are removed, `model` is replaced by
//! the model *group* (so every deployment of a group shares entries), and the remainder is
//! hashed in a canonical form: object keys sorted at every depth, compact, nulls dropped at the
//! top level, integral floats written as integers. JSON key order, whitespace, `1` vs `1.0`
//! and an explicit `null` therefore do not change the key. `stream`/`stream_options` are not
//! part of it, so a streamed request can hit a non-streamed entry and vice versa.
//!
//! Only the 64-hex digest is ever used as a storage key (with an optional `namespace:` prefix,
//! applied by [`crate::ResponseCache::storage_key`]), never the request itself.

use serde::Serialize;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use switchyard_llm_types::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};

/// Request fields that steer the gateway but never the model's output; excluded from keys.
///
/// `stream`/`stream_options` only change the framing, `metadata`/`cache`/`mock_*`/timeouts/
/// retries/fallbacks are LiteLLM proxy extensions, `api_key` is a credential (hashing it would
/// split the cache per caller for no output difference).
const GATEWAY_ONLY_FIELDS: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "metadata",
    "litellm_metadata",
    "cache",
    "caching",
    "mock_response",
    "mock_tool_calls",
    "mock_timeout",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
    "mock_testing_content_policy_fallbacks",
    "mock_testing_rate_limit_error",
    "timeout",
    "stream_timeout",
    "request_timeout",
    "num_retries",
    "max_retries",
    "fallbacks",
    "disable_fallbacks",
    "context_window_fallback_dict",
    "guardrails",
    "tags",
    "no-log",
    "api_key",
    "litellm_call_id",
    "litellm_logging_obj",
    "proxy_server_request",
    "secret_fields",
    "user_api_key_dict",
    "extra_headers",
];

/// Which endpoint a key belongs to; part of the hash so a chat and a completion request with
/// coincidentally equal fields never share an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Chat,
    Completion,
    EmbeddingItem,
    SemanticChat,
    SemanticCompletion,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            KeyKind::Chat => "chat",
            KeyKind::Completion => "completion",
            KeyKind::EmbeddingItem => "embedding",
            KeyKind::SemanticChat => "semantic-chat",
            KeyKind::SemanticCompletion => "semantic-completion",
        }
    }
}

/// A cache key: the 64-character lowercase hex SHA-256 digest, without any namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of a `/chat/completions` request routed to model group `group`.
    pub fn for_chat(group: &str, request: &ChatCompletionRequest) -> CacheKey {
        Self::from_request(KeyKind::Chat, group, request)
    }

    /// The key of a legacy `/completions` request routed to model group `group`.
    pub fn for_completion(group: &str, request: &CompletionRequest) -> CacheKey {
        Self::from_request(KeyKind::Completion, group, request)
    }

    /// The key of one input item of an `/embeddings` request: the group, the item (a string or
    /// a token list) and the parameters that change a vector (`dimensions`, `encoding_format`,
    /// provider extras such as `input_type`), but not `user` or the rest of the batch.
    pub fn for_embedding_item(group: &str, request: &EmbeddingRequest, item: &Value) -> CacheKey {
        let mut fields = Map::new();
        if let Some(dimensions) = request.dimensions {
            fields.insert("dimensions".to_owned(), Value::from(dimensions));
        }
        if let Some(format) = &request.encoding_format {
            fields.insert("encoding_format".to_owned(), Value::from(format.clone()));
        }
        for (name, value) in &request.extra {
            if !GATEWAY_ONLY_FIELDS.contains(&name.as_str()) {
                fields.insert(name.clone(), value.clone());
            }
        }
        fields.insert("input".to_owned(), item.clone());
        Self::hash(KeyKind::EmbeddingItem, group, fields)
    }

    /// The semantic-cache bucket of a chat request: like [`CacheKey::for_chat`] without the
    /// `messages`, so requests that differ only in their wording share a bucket and anything
    /// else (group, temperature, tools, `user`, ...) separates them.
    pub fn semantic_bucket_for_chat(group: &str, request: &ChatCompletionRequest) -> CacheKey {
        Self::from_request_without(KeyKind::SemanticChat, group, request, &["messages"])
    }

    /// The semantic-cache bucket of a legacy completion: the request without its `prompt`.
    pub fn semantic_bucket_for_completion(group: &str, request: &CompletionRequest) -> CacheKey {
        Self::from_request_without(KeyKind::SemanticCompletion, group, request, &["prompt"])
    }

    /// Wraps an existing digest (e.g. from `/cache/delete`); not validated.
    pub fn from_digest(digest: impl Into<String>) -> CacheKey {
        CacheKey(digest.into())
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_request<T: Serialize>(kind: KeyKind, group: &str, request: &T) -> CacheKey {
        Self::from_request_without(kind, group, request, &[])
    }

    fn from_request_without<T: Serialize>(
        kind: KeyKind,
        group: &str,
        request: &T,
        left_out: &[&str],
    ) -> CacheKey {
        // Serialising a request type to a `Value` cannot fail (string keys, no custom
        // serialisers); should it ever, an empty map still yields a key scoped to the group
        // and kind, and `Null` fields are simply absent.
        let fields = match serde_json::to_value(request) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let fields = fields
            .into_iter()
            .filter(|(name, value)| {
                !value.is_null()
                    && !GATEWAY_ONLY_FIELDS.contains(&name.as_str())
                    && !left_out.contains(&name.as_str())
            })
            .collect();
        Self::hash(kind, group, fields)
    }

    fn hash(kind: KeyKind, group: &str, fields: Map<String, Value>) -> CacheKey {
        let mut hasher = Sha256::new();
        // A fixed prefix with the kind and group, then the canonical parameters: the group is
        // written separately so it can never collide with a request field named `model`.
        hasher.update(b"switchyard-cache-v1\n");
        hasher.update(kind.tag().as_bytes());
        hasher.update(b"\n");
        write_canonical(&mut hasher, &Value::String(group.to_owned()));
        hasher.update(b"\n");
        write_canonical(&mut hasher, &Value::Object(fields));
        CacheKey(hex::encode(hasher.finalize()))
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Feeds `value` to the hasher as compact JSON with object keys sorted at every depth.
///
/// Writing straight into the hasher avoids building the canonical string; the output is
/// byte-identical to what a sorted compact serialisation would produce.
fn write_canonical(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Null => hasher.update(b"null"),
        Value::Bool(true) => hasher.update(b"true"),
        Value::Bool(false) => hasher.update(b"false"),
        Value::Number(number) => hasher.update(canonical_number(number).as_bytes()),
        Value::String(text) => write_json_string(hasher, text),
        Value::Array(items) => {
            hasher.update(b"[");
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    hasher.update(b",");
                }
                write_canonical(hasher, item);
            }
            hasher.update(b"]");
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (position, (name, item)) in entries.into_iter().enumerate() {
                if position > 0 {
                    hasher.update(b",");
                }
                write_json_string(hasher, name);
                hasher.update(b":");
                write_canonical(hasher, item);
            }
            hasher.update(b"}");
        }
    }
}

/// `1.0` and `1` are the same parameter value to a provider; write integral floats as integers.
fn canonical_number(number: &Number) -> String {
    if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
        if float.is_finite() && float.fract() == 0.0 && float.abs() < 9.0e15 {
            // The range check keeps the conversion exact.
            #[allow(clippy::cast_possible_truncation)]
            return (float as i64).to_string();
        }
    }
    number.to_string()
}

fn write_json_string(hasher: &mut Sha256, text: &str) {
    // `Value::String` serialisation only fails for non-string map keys, which cannot occur.
    match serde_json::to_string(text) {
        Ok(encoded) => hasher.update(encoded.as_bytes()),
        Err(_) => hasher.update(text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(body: Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    fn base() -> Value {
        json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        })
    }

    #[test]
    fn key_is_64_hex_digits() {
        let key = CacheKey::for_chat("g", &chat(base()));
        assert_eq!(key.as_str().len(), 64);
        assert!(key.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn json_key_order_and_whitespace_do_not_matter() {
        let a: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,
               "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"b":1,"a":2}}},
               "reasoning_effort":"low"}"#,
        )
        .unwrap();
        let b: ChatCompletionRequest = serde_json::from_str(
            r#"{ "reasoning_effort" : "low",
                 "response_format" : { "json_schema" : { "schema" : { "a" : 2 , "b" : 1 }, "name" : "x" }, "type" : "json_schema" },
                 "temperature" : 0.50 , "messages" : [ { "content" : "hi" , "role" : "user" } ] ,
                 "model" : "m" }"#,
        )
        .unwrap();
        assert_eq!(CacheKey::for_chat("g", &a), CacheKey::for_chat("g", &b));
    }

    #[test]
    fn integral_floats_and_explicit_nulls_do_not_matter() {
        let mut a = base();
        a["custom_param"] = json!(1);
        a["other"] = Value::Null;
        let mut b = base();
        b["custom_param"] = json!(1.0);
        assert_eq!(
            CacheKey::for_chat("g", &chat(a)),
            CacheKey::for_chat("g", &chat(b))
        );
    }

    #[test]
    fn every_output_changing_parameter_changes_the_key() {
        let reference = CacheKey::for_chat("g", &chat(base()));
        let variations: Vec<(&str, Value)> = vec![
            (
                "messages",
                json!([{"role": "user", "content": "What is the capital of Spain?"}]),
            ),
            (
                "tools",
                json!([{"type": "function", "function": {"name": "f"}}]),
            ),
            ("tool_choice", json!("required")),
            ("temperature", json!(0.3)),
            ("top_p", json!(0.9)),
            ("max_tokens", json!(10)),
            ("max_completion_tokens", json!(10)),
            ("seed", json!(7)),
            ("response_format", json!({"type": "json_object"})),
            ("stop", json!(["\n"])),
            ("n", json!(2)),
            ("presence_penalty", json!(0.5)),
            ("frequency_penalty", json!(0.5)),
            ("logit_bias", json!({"50256": -100})),
            ("logprobs", json!(true)),
            ("user", json!("alice")),
            ("reasoning_effort", json!("high")),
        ];
        for (name, value) in variations {
            let mut body = base();
            body[name] = value;
            assert_ne!(
                CacheKey::for_chat("g", &chat(body)),
                reference,
                "{name} must change the key"
            );
        }
    }

    #[test]
    fn gateway_only_fields_and_stream_do_not_change_the_key() {
        let reference = CacheKey::for_chat("g", &chat(base()));
        let variations: Vec<(&str, Value)> = vec![
            ("stream", json!(true)),
            ("stream_options", json!({"include_usage": true})),
            ("metadata", json!({"tags": ["a"]})),
            ("cache", json!({"ttl": 5})),
            ("mock_response", json!("hello")),
            ("timeout", json!(30)),
            ("num_retries", json!(3)),
            ("fallbacks", json!(["other"])),
        ];
        for (name, value) in variations {
            let mut body = base();
            body[name] = value;
            assert_eq!(
                CacheKey::for_chat("g", &chat(body)),
                reference,
                "{name} must not change the key"
            );
        }
    }

    #[test]
    fn the_model_group_is_keyed_not_the_requested_model_name() {
        let mut as_deployment = base();
        as_deployment["model"] = json!("azure/gpt-4o-eu");
        assert_eq!(
            CacheKey::for_chat("gpt-4o", &chat(base())),
            CacheKey::for_chat("gpt-4o", &chat(as_deployment)),
        );
        assert_ne!(
            CacheKey::for_chat("gpt-4o", &chat(base())),
            CacheKey::for_chat("gpt-4o-mini", &chat(base())),
        );
    }

    #[test]
    fn chat_and_completion_keys_never_collide() {
        let completion: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "hi"})).unwrap();
        let chat_request = chat(json!({"model": "m", "messages": [], "prompt": "hi"}));
        let chat_without_messages = CacheKey::for_chat("g", &chat_request);
        assert_ne!(
            CacheKey::for_completion("g", &completion),
            chat_without_messages
        );
    }

    #[test]
    fn completion_prompt_changes_the_key() {
        let a: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "a"})).unwrap();
        let b: CompletionRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "b"})).unwrap();
        assert_ne!(
            CacheKey::for_completion("g", &a),
            CacheKey::for_completion("g", &b)
        );
    }

    #[test]
    fn embedding_item_keys_depend_on_item_and_vector_parameters_only() {
        let request: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", "b"], "user": "u1"}))
                .unwrap();
        let other_user: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": "a", "user": "u2"})).unwrap();
        let with_dimensions: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": "a", "dimensions": 256})).unwrap();
        let base64: EmbeddingRequest = serde_json::from_value(
            json!({"model": "e", "input": "a", "encoding_format": "base64"}),
        )
        .unwrap();
        let key_a = CacheKey::for_embedding_item("g", &request, &json!("a"));
        assert_ne!(
            key_a,
            CacheKey::for_embedding_item("g", &request, &json!("b"))
        );
        assert_eq!(
            key_a,
            CacheKey::for_embedding_item("g", &other_user, &json!("a"))
        );
        assert_ne!(
            key_a,
            CacheKey::for_embedding_item("g", &with_dimensions, &json!("a"))
        );
        assert_ne!(
            key_a,
            CacheKey::for_embedding_item("g", &base64, &json!("a"))
        );
        assert_ne!(
            key_a,
            CacheKey::for_embedding_item("h", &request, &json!("a"))
        );
    }
}
