//! The [`Provider`] trait: one adapter instance per deployment, holding that deployment's
//! upstream address, credentials and defaults, so a call does no per-request lookups.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use http::HeaderMap;
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, ChunkJson, CompletionRequest,
    CompletionResponse, EmbeddingRequest, EmbeddingResponse, RerankRequest, RerankResponse,
};

use crate::passthrough::{PassthroughRequest, PassthroughResponse};
use crate::ProviderError;

/// A stream of chunks (`chat.completion.chunk` or `text_completion` objects) as raw JSON.
/// Dropping it cancels the upstream call.
pub type ChunkStream = BoxStream<'static, Result<ChunkJson, ProviderError>>;

/// A successful upstream answer with the upstream's response headers, which the gateway echoes
/// to clients with an `llm_provider-` prefix.
#[derive(Debug)]
pub struct Upstream<T> {
    pub body: T,
    pub headers: HeaderMap,
}

impl<T> Upstream<T> {
    pub fn new(body: T) -> Self {
        Self {
            body,
            headers: HeaderMap::new(),
        }
    }
}

/// Per-attempt options decided by the caller (engine or router), not by the deployment.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Whole-call limit for a non-streaming attempt.
    pub timeout: Duration,
    /// For streams: the longest wait for the response to start and between two chunks.
    pub stream_timeout: Duration,
    /// Extra headers for this call only (e.g. forwarded client headers).
    pub headers: HeaderMap,
    /// The stream's `stream_options.include_usage` was set by the gateway, to price the call,
    /// not by the client. An upstream that does not take `stream_options` is then sent the
    /// request without it rather than refused (the gateway estimates the usage instead).
    pub stream_usage_added: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        // LiteLLM's default request timeout.
        Self {
            timeout: Duration::from_secs(6000),
            stream_timeout: Duration::from_secs(6000),
            headers: HeaderMap::new(),
            stream_usage_added: false,
        }
    }
}

/// One upstream deployment. The request's `model` is already the upstream model name.
/// Requests are borrowed: a retry or fallback sends the same request again elsewhere.
///
/// Operations a family does not offer keep the default body, which answers a clear
/// "not supported" error instead of pretending.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider family name used in error messages (`OpenAI`, `Groq`, ...).
    fn name(&self) -> &'static str;

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError>;

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError>;

    async fn completion(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<CompletionResponse>, ProviderError> {
        let _ = (request, options);
        Err(self.unsupported("/completions"))
    }

    async fn completion_stream(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let _ = (request, options);
        Err(self.unsupported("streaming /completions"))
    }

    async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        options: &CallOptions,
    ) -> Result<Upstream<EmbeddingResponse>, ProviderError> {
        let _ = (request, options);
        Err(self.unsupported("/embeddings"))
    }

    /// `/rerank` (Cohere's shape): Cohere natively, and OpenAI-compatible servers that
    /// expose a Cohere-style `/rerank` (vLLM, Together, ...).
    async fn rerank(
        &self,
        request: &RerankRequest,
        options: &CallOptions,
    ) -> Result<Upstream<RerankResponse>, ProviderError> {
        let _ = (request, options);
        Err(self.unsupported("/rerank"))
    }

    /// An endpoint relayed as it is ([`crate::passthrough`]): the Responses API, moderations,
    /// images, speech. Only OpenAI-compatible deployments (OpenAI, Azure, ...) offer it.
    async fn passthrough(
        &self,
        request: &PassthroughRequest,
        options: &CallOptions,
    ) -> Result<Upstream<PassthroughResponse>, ProviderError> {
        let _ = options;
        Err(ProviderError::BadRequest {
            provider: self.name(),
            message: format!(
                "{} is only available for OpenAI-compatible deployments (openai/, azure/, ...); \
                 model={} is served by {}",
                request.operation.endpoint(),
                request.model,
                self.name()
            ),
            param: Some("model".to_owned()),
        })
    }

    fn unsupported(&self, operation: &str) -> ProviderError {
        ProviderError::BadRequest {
            provider: self.name(),
            message: format!("{operation} is not supported by this provider"),
            param: None,
        }
    }
}

/// `request` with a deployment's `request_defaults` filled in where it leaves a field unset
/// (borrowed as it is when there are none, the common case).
pub fn with_defaults<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
    defaults: &serde_json::Map<String, serde_json::Value>,
) -> Result<std::borrow::Cow<'a, ChatCompletionRequest>, ProviderError> {
    if defaults.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(request));
    }
    let bad = |message: String| ProviderError::BadRequest {
        provider,
        message,
        param: None,
    };
    let mut value = serde_json::to_value(request)
        .map_err(|error| bad(format!("cannot encode the request: {error}")))?;
    if let serde_json::Value::Object(map) = &mut value {
        for (key, default) in defaults {
            if map.get(key).is_none_or(serde_json::Value::is_null) {
                map.insert(key.clone(), default.clone());
            }
        }
    }
    serde_json::from_value(value)
        .map(std::borrow::Cow::Owned)
        .map_err(|error| bad(format!("invalid request defaults: {error}")))
}

/// A deployment setting: the deployment's own value, else the first of the environment
/// `variables` that is set (LiteLLM's fallback for `api_base`, `api_key` and the like).
pub fn configured_or_env(
    configured: Option<&str>,
    variables: &[&str],
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    configured
        .map(str::to_owned)
        .or_else(|| variables.iter().find_map(|name| env(name)))
}

/// Refuses a request that sets parameters the upstream does not take (`unsupported`, as the
/// adapter's translation lists them); deployments with `drop_params` skip this check.
pub fn refuse_unsupported(
    provider: &'static str,
    model: &str,
    unsupported: Vec<String>,
) -> Result<(), ProviderError> {
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(ProviderError::UnsupportedParams {
        provider,
        model: model.to_owned(),
        params: unsupported,
    })
}

/// Seconds since the Unix epoch, for a response's `created`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An id for a completion whose upstream gives none: `chatcmpl-` plus a random UUID, like
/// LiteLLM's.
pub fn fresh_completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_values_win_then_the_first_variable_set() {
        let env = |name: &str| match name {
            "SECOND" => Some("from-second".to_owned()),
            "THIRD" => Some("from-third".to_owned()),
            _ => None,
        };
        let variables = ["FIRST", "SECOND", "THIRD"];
        assert_eq!(
            configured_or_env(Some("own"), &variables, env).as_deref(),
            Some("own")
        );
        assert_eq!(
            configured_or_env(None, &variables, env).as_deref(),
            Some("from-second")
        );
        assert_eq!(configured_or_env(None, &["FIRST"], env), None);
    }

    #[test]
    fn unsupported_parameters_are_named() {
        assert!(refuse_unsupported("Test", "m", Vec::new()).is_ok());
        let error = refuse_unsupported("Test", "m", vec!["top_k".to_owned()]).unwrap_err();
        assert!(
            matches!(&error, ProviderError::UnsupportedParams { params, model, .. }
                if params == &["top_k"] && model == "m"),
            "{error:?}"
        );
    }
}
