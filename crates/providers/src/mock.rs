//! The built-in mock provider: LiteLLM's `mock_response`, answered without any upstream.
//!
//! A deployment with `mock_response` in its `litellm_params` (or a request carrying
//! `mock_response`) is answered here, so the quickstart works with no provider key and tests
//! can exercise the whole pipeline. Like LiteLLM, a reply naming an exception class
//! (`litellm.RateLimitError`, ...) raises that error instead, so retry and fallback paths can
//! be tried without a failing upstream.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;
use sha2_free_hash::fnv1a;
use switchyard_llm_types::{
    embeddings::Embedding, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse,
    ChatMessage, Choice, ChunkChoice, ChunkJson, CompletionChoice, CompletionRequest,
    CompletionResponse, Delta, EmbeddingRequest, EmbeddingResponse, Extra, Role, Usage,
};

use crate::provider::unix_now;
use crate::{CallOptions, ChunkStream, Provider, ProviderError, Upstream};

/// Token counts LiteLLM reports for mock responses.
const MOCK_PROMPT_TOKENS: u64 = 10;
const MOCK_COMPLETION_TOKENS: u64 = 20;
/// Length of the deterministic mock embedding vectors.
const MOCK_EMBEDDING_DIMENSIONS: usize = 16;

#[derive(Debug, Clone)]
pub struct MockProvider {
    /// The deployment's `mock_response`; a request's own `mock_response` takes precedence.
    default_response: Option<String>,
}

impl MockProvider {
    pub fn new(default_response: Option<&Value>) -> Self {
        Self {
            default_response: default_response.map(value_text),
        }
    }

    /// The reply for this request, or the error it asks for.
    fn reply(&self, extra: &Extra) -> Result<String, ProviderError> {
        let text = extra
            .get("mock_response")
            .map(value_text)
            .or_else(|| self.default_response.clone())
            .unwrap_or_else(|| "This is a mock response.".to_owned());
        match requested_error(&text) {
            Some(error) => Err(error),
            None => Ok(text),
        }
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `litellm.<ExceptionClass>[: message]` asks the mock to fail with that error.
fn requested_error(text: &str) -> Option<ProviderError> {
    let rest = text.strip_prefix("litellm.")?;
    let (class, message) = rest.split_once(':').unwrap_or((rest, ""));
    let status = match class.trim() {
        "RateLimitError" => 429,
        "ContextWindowExceededError" | "ContentPolicyViolationError" | "BadRequestError" => 400,
        "AuthenticationError" => 401,
        "PermissionDeniedError" => 403,
        "NotFoundError" => 404,
        "Timeout" => {
            return Some(ProviderError::Timeout {
                provider: "Mock",
                after: std::time::Duration::ZERO,
            })
        }
        "InternalServerError" | "APIError" => 500,
        "ServiceUnavailableError" => 503,
        _ => return None,
    };
    let message = match (class.trim(), message.trim()) {
        ("ContextWindowExceededError", "") => {
            "This model's maximum context length was exceeded".to_owned()
        }
        ("ContentPolicyViolationError", "") => "The request violates the content policy".to_owned(),
        (class, "") => format!("mock {class}"),
        (_, message) => message.to_owned(),
    };
    let code = match class.trim() {
        "ContextWindowExceededError" => Some("context_length_exceeded".to_owned()),
        "ContentPolicyViolationError" => Some("content_policy_violation".to_owned()),
        _ => None,
    };
    let retry_after = (status == 429).then(|| std::time::Duration::from_secs(1));
    Some(ProviderError::from_upstream(
        "Mock",
        status,
        message,
        None,
        code,
        None,
        retry_after,
    ))
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn mock_usage() -> Usage {
    Usage::new(MOCK_PROMPT_TOKENS, MOCK_COMPLETION_TOKENS)
}

/// Splits text into stream pieces: one word each, keeping the spaces.
fn pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn chunk_json(chunk: &ChatCompletionChunk) -> Result<ChunkJson, ProviderError> {
    ChunkJson::from_chunk(chunk).map_err(|error| ProviderError::InvalidResponse {
        provider: "Mock",
        message: error.to_string(),
    })
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &'static str {
        "Mock"
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        _options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let text = self.reply(&request.extra)?;
        let choices = (0..request.n.unwrap_or(1).max(1))
            .map(|index| Choice {
                index,
                message: ChatMessage::assistant(text.clone()),
                finish_reason: Some("stop".to_owned()),
                logprobs: None,
                extra: Extra::new(),
            })
            .collect();
        Ok(Upstream::new(ChatCompletionResponse {
            id: new_id("chatcmpl-"),
            object: "chat.completion".to_owned(),
            created: unix_now(),
            model: request.model.clone(),
            choices,
            usage: Some(mock_usage()),
            system_fingerprint: None,
            extra: Extra::new(),
        }))
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        _options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let text = self.reply(&request.extra)?;
        let id = new_id("chatcmpl-");
        let created = unix_now();
        let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created,
            model: request.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
            extra: Extra::new(),
        };
        let delta =
            |role: Option<Role>, content: Option<String>, finish: Option<&str>| ChunkChoice {
                delta: Delta {
                    role,
                    content,
                    ..Delta::default()
                },
                finish_reason: finish.map(str::to_owned),
                ..ChunkChoice::default()
            };
        let mut chunks = vec![chunk(
            vec![delta(Some(Role::Assistant), Some(String::new()), None)],
            None,
        )];
        chunks.extend(
            pieces(&text)
                .into_iter()
                .map(|piece| chunk(vec![delta(None, Some(piece), None)], None)),
        );
        chunks.push(chunk(vec![delta(None, None, Some("stop"))], None));
        if request.wants_stream_usage() {
            chunks.push(chunk(Vec::new(), Some(mock_usage())));
        }
        let encoded = chunks.iter().map(chunk_json).collect::<Vec<_>>();
        Ok(Upstream::new(futures::stream::iter(encoded).boxed()))
    }

    async fn completion(
        &self,
        request: &CompletionRequest,
        _options: &CallOptions,
    ) -> Result<Upstream<CompletionResponse>, ProviderError> {
        let text = self.reply(&request.extra)?;
        Ok(Upstream::new(CompletionResponse {
            id: new_id("cmpl-"),
            object: "text_completion".to_owned(),
            created: unix_now(),
            model: request.model.clone(),
            choices: vec![CompletionChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: Some("stop".to_owned()),
                extra: Extra::new(),
            }],
            usage: Some(mock_usage()),
            extra: Extra::new(),
        }))
    }

    async fn completion_stream(
        &self,
        request: &CompletionRequest,
        _options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let text = self.reply(&request.extra)?;
        let id = new_id("cmpl-");
        let created = unix_now();
        let mut frames: Vec<Value> = pieces(&text)
            .into_iter()
            .map(|piece| {
                serde_json::json!({"id": id, "object": "text_completion", "created": created,
                    "model": request.model, "choices": [{"text": piece, "index": 0, "logprobs": null, "finish_reason": null}]})
            })
            .collect();
        frames.push(serde_json::json!({"id": id, "object": "text_completion", "created": created,
            "model": request.model, "choices": [{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}]}));
        let encoded = frames
            .into_iter()
            .map(|frame| Ok(ChunkJson::from_bytes(frame.to_string().into())))
            .collect::<Vec<_>>();
        Ok(Upstream::new(futures::stream::iter(encoded).boxed()))
    }

    async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        _options: &CallOptions,
    ) -> Result<Upstream<EmbeddingResponse>, ProviderError> {
        if let Some(Value::String(text)) = request.extra.get("mock_response") {
            if let Some(error) = requested_error(text) {
                return Err(error);
            }
        }
        let data = request
            .input
            .texts()
            .iter()
            .enumerate()
            .map(|(index, text)| Embedding {
                object: "embedding".to_owned(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                embedding: Value::from(mock_vector(text)),
            })
            .collect();
        Ok(Upstream::new(EmbeddingResponse {
            object: "list".to_owned(),
            data,
            model: request.model.clone(),
            usage: Some(Usage::new(MOCK_PROMPT_TOKENS, 0)),
            extra: Extra::new(),
        }))
    }
}

/// A deterministic unit vector derived from the text: equal texts embed equally.
fn mock_vector(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..MOCK_EMBEDDING_DIMENSIONS)
        .map(|dimension| {
            let hash = fnv1a(text.as_bytes(), dimension as u64);
            (hash % 2001) as f64 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

mod sha2_free_hash {
    /// FNV-1a with a seed: a tiny stable hash for mock vectors (not for anything secret).
    pub fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::ErrorClass;

    fn request(extra: Option<&str>) -> ChatCompletionRequest {
        let mut request = ChatCompletionRequest {
            model: "mock".into(),
            messages: vec![ChatMessage::user("hi")],
            ..ChatCompletionRequest::default()
        };
        if let Some(text) = extra {
            request
                .extra
                .insert("mock_response".into(), Value::from(text));
        }
        request
    }

    #[tokio::test]
    async fn answers_with_the_configured_text_and_litellm_usage() {
        let mock = MockProvider::new(Some(&Value::from("Hello there")));
        let response = mock
            .chat(&request(None), &CallOptions::default())
            .await
            .unwrap()
            .body;
        assert_eq!(response.choices[0].message.text(), "Hello there");
        assert_eq!(response.usage, Some(Usage::new(10, 20)));
        let overridden = mock
            .chat(&request(Some("per request")), &CallOptions::default())
            .await
            .unwrap();
        assert_eq!(overridden.body.choices[0].message.text(), "per request");
    }

    #[tokio::test]
    async fn streams_word_chunks_and_usage_when_asked() {
        let mock = MockProvider::new(Some(&Value::from("one two three")));
        let mut req = request(None);
        req.stream = Some(true);
        req.stream_options = Some(switchyard_llm_types::StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        });
        let chunks: Vec<_> = mock
            .chat_stream(&req, &CallOptions::default())
            .await
            .unwrap()
            .body
            .collect::<Vec<_>>()
            .await;
        let parsed: Vec<ChatCompletionChunk> = chunks
            .iter()
            .map(|c| c.as_ref().unwrap().parse().unwrap())
            .collect();
        let text: String = parsed
            .iter()
            .flat_map(|c| {
                c.choices
                    .iter()
                    .filter_map(|choice| choice.delta.content.clone())
            })
            .collect();
        assert_eq!(text, "one two three");
        assert_eq!(parsed.len(), 1 + 3 + 1 + 1);
        assert_eq!(parsed.last().unwrap().usage, Some(Usage::new(10, 20)));
    }

    #[tokio::test]
    async fn exception_names_raise_those_errors() {
        let mock = MockProvider::new(None);
        let error = mock
            .chat(
                &request(Some("litellm.RateLimitError")),
                &CallOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(error.status(), 429);
        let error = mock
            .chat(
                &request(Some("litellm.ContextWindowExceededError")),
                &CallOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            switchyard_llm_types::ErrorKind::ContextWindowExceeded
        );
    }

    #[test]
    fn mock_vectors_are_deterministic_unit_vectors() {
        let a = mock_vector("hello");
        assert_eq!(a, mock_vector("hello"));
        assert_ne!(a, mock_vector("world"));
        let norm: f64 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
