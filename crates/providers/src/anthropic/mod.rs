//! The Anthropic Messages API (`anthropic/` models).
//!
//! Requests are translated from the OpenAI shape ([`request`]), responses back ([`response`]),
//! and stream events are turned into OpenAI chunks by a small state machine ([`stream`]).
//! Errors keep LiteLLM's classes with `AnthropicException` messages ([`error`]).
//!
//! Wire format: Messages API with `anthropic-version: 2023-06-01`.

pub mod error;
pub mod inbound;
pub mod request;
pub mod response;
pub mod stream;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchyard_llm_types::{ChatCompletionRequest, ChatCompletionResponse};

use crate::http::transport_error;
use crate::{
    stream_driver, CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream,
};

use self::stream::{MessagesStream, StreamTranslator};

const NAME: &str = "Anthropic";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";

/// Where and how to reach one Anthropic deployment.
#[derive(Debug, Clone)]
pub struct AnthropicTarget {
    /// Base URL without `/v1/messages` (e.g. `https://api.anthropic.com`).
    pub base_url: String,
    pub api_key: Option<String>,
    /// Sent on every call; may override `anthropic-version` and add `anthropic-beta`.
    pub extra_headers: BTreeMap<String, String>,
    /// OpenAI-shaped parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
    /// Leave out parameters Anthropic does not accept instead of refusing the call.
    pub drop_params: bool,
}

impl AnthropicTarget {
    /// The deployment's own values, else `ANTHROPIC_API_BASE` / `ANTHROPIC_API_KEY`, else the
    /// public endpoint.
    pub fn resolve(
        api_base: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let base = api_base
            .map(str::to_owned)
            .or_else(|| env("ANTHROPIC_API_BASE"))
            .or_else(|| env("ANTHROPIC_BASE_URL"))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        Self {
            base_url: normalize_base(&base),
            api_key: api_key
                .map(str::to_owned)
                .or_else(|| env("ANTHROPIC_API_KEY")),
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        }
    }
}

/// Accepts a base given with or without `/v1` or `/v1/messages`.
fn normalize_base(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/v1/messages").unwrap_or(base);
    let base = base.strip_suffix("/v1").unwrap_or(base);
    base.to_owned()
}

/// One Anthropic deployment.
#[derive(Debug)]
pub struct Anthropic {
    client: HttpClient,
    messages_url: reqwest::Url,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
    drop_params: bool,
}

impl Anthropic {
    pub fn new(target: AnthropicTarget, client: HttpClient) -> Result<Self, String> {
        let messages_url = reqwest::Url::parse(&format!("{}/v1/messages", target.base_url))
            .map_err(|error| format!("invalid api_base {:?}: {error}", target.base_url))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(key) = target.api_key.as_deref().filter(|key| !key.is_empty()) {
            let mut value = HeaderValue::from_str(key)
                .map_err(|_| "api_key contains characters not allowed in a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        for (name, value) in &target.extra_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("extra_headers: invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("extra_headers: invalid value for header {name}"))?;
            headers.insert(name, value);
        }
        Ok(Self {
            client,
            messages_url,
            headers,
            request_defaults: target.request_defaults,
            drop_params: target.drop_params,
        })
    }

    /// The Messages API body, with deployment defaults filled in first.
    fn body(
        &self,
        request: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError> {
        if !self.drop_params {
            let unsupported = request::unsupported_params(request);
            if !unsupported.is_empty() {
                return Err(ProviderError::UnsupportedParams {
                    provider: NAME,
                    model: request.model.clone(),
                    params: unsupported,
                });
            }
        }
        if self.request_defaults.is_empty() {
            return encode(&request::to_messages_request(request, stream)?);
        }
        let merged = self.with_defaults(request)?;
        encode(&request::to_messages_request(&merged, stream)?)
    }

    /// `request` with the deployment's defaults for the parameters it does not set.
    fn with_defaults(
        &self,
        request: &ChatCompletionRequest,
    ) -> Result<ChatCompletionRequest, ProviderError> {
        let mut value = serde_json::to_value(request).map_err(encode_error)?;
        if let Value::Object(map) = &mut value {
            for (key, default) in &self.request_defaults {
                if map.get(key).is_none_or(Value::is_null) {
                    map.insert(key.clone(), default.clone());
                }
            }
        }
        serde_json::from_value(value).map_err(|error| ProviderError::BadRequest {
            provider: NAME,
            message: format!("invalid request defaults: {error}"),
            param: None,
        })
    }

    async fn send(
        &self,
        body: Vec<u8>,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut headers = self.headers.clone();
        for (name, value) in &options.headers {
            headers.insert(name.clone(), value.clone());
        }
        let request = self
            .client
            .inner()
            .post(self.messages_url.clone())
            .headers(headers)
            .body(body)
            .send();
        let response = match tokio::time::timeout(wait, request).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: NAME,
                    after: wait,
                })
            }
            Ok(Err(error)) => return Err(transport_error(NAME, error, wait)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = match tokio::time::timeout(wait, response.bytes()).await {
            Ok(Ok(body)) => body,
            _ => Bytes::new(),
        };
        Err(error::http_error(NAME, status.as_u16(), &headers, &body))
    }
}

fn encode_error(error: serde_json::Error) -> ProviderError {
    ProviderError::BadRequest {
        provider: NAME,
        message: format!("cannot encode the request: {error}"),
        param: None,
    }
}

fn encode(body: &request::MessagesBody<'_>) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(body).map_err(encode_error)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[async_trait]
impl Provider for Anthropic {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let body = self.body(request, false)?;
        let started = tokio::time::Instant::now();
        let mut response = self.send(body, options, options.timeout).await?;
        let headers = std::mem::take(response.headers_mut());
        let remaining = options.timeout.saturating_sub(started.elapsed());
        let bytes = match tokio::time::timeout(remaining, response.bytes()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: NAME,
                    after: options.timeout,
                })
            }
            Ok(Err(error)) => return Err(transport_error(NAME, error, options.timeout)),
            Ok(Ok(bytes)) => bytes,
        };
        let invalid = |message: String| ProviderError::InvalidResponse {
            provider: NAME,
            message,
        };
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        let body = response::to_chat_response(&value, now()).map_err(invalid)?;
        Ok(Upstream { body, headers })
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let body = self.body(request, true)?;
        let mut response = self.send(body, options, options.stream_timeout).await?;
        let headers = std::mem::take(response.headers_mut());
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.is_empty() && !content_type.contains("text/event-stream") {
            return Err(ProviderError::InvalidResponse {
                provider: NAME,
                message: format!(
                    "a stream was requested but the upstream answered {content_type:?}, not \
                     text/event-stream"
                ),
            });
        }
        let translator =
            StreamTranslator::new(NAME, &request.model, request.wants_stream_usage(), now());
        Ok(Upstream {
            body: stream_driver::drive(
                NAME,
                response,
                MessagesStream::new(translator),
                options.stream_timeout,
            ),
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalized_and_env_is_read() {
        assert_eq!(
            normalize_base("https://api.anthropic.com/v1/"),
            "https://api.anthropic.com"
        );
        assert_eq!(normalize_base("http://h:1/v1/messages"), "http://h:1");
        let target = AnthropicTarget::resolve(None, None, |name| match name {
            "ANTHROPIC_API_KEY" => Some("sk-ant".to_owned()),
            _ => None,
        });
        assert_eq!(target.base_url, DEFAULT_BASE_URL);
        assert_eq!(target.api_key.as_deref(), Some("sk-ant"));
        let target = AnthropicTarget::resolve(Some("http://x/v1"), Some("k"), |name| {
            (name == "ANTHROPIC_API_BASE").then(|| "http://env".to_owned())
        });
        assert_eq!(
            (target.base_url.as_str(), target.api_key.as_deref()),
            ("http://x", Some("k"))
        );
    }
}
