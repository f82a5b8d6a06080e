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
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchyard_llm_types::{ChatCompletionRequest, ChatCompletionResponse};

use crate::http::{
    check_stream_content_type, insert_extra_headers, read_json, secret_header, with_call_headers,
};
use crate::provider::{configured_or_env, refuse_unsupported, unix_now, with_defaults};
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
        let base = configured_or_env(
            api_base,
            &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
            &env,
        )
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        Self {
            base_url: normalize_base(&base),
            api_key: configured_or_env(api_key, &["ANTHROPIC_API_KEY"], &env),
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
            headers.insert(
                HeaderName::from_static("x-api-key"),
                secret_header(key, "api_key")?,
            );
        }
        insert_extra_headers(&mut headers, &target.extra_headers)?;
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
            refuse_unsupported(NAME, &request.model, request::unsupported_params(request))?;
        }
        let request = with_defaults(NAME, request, &self.request_defaults)?;
        let body = request::to_messages_request(&request, stream)?;
        serde_json::to_vec(&body).map_err(|error| ProviderError::BadRequest {
            provider: NAME,
            message: format!("cannot encode the request: {error}"),
            param: None,
        })
    }

    async fn send(
        &self,
        body: Vec<u8>,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let headers = with_call_headers(self.headers.clone(), &options.headers);
        let url = self.messages_url.clone();
        self.client
            .post(NAME, url, headers, body, wait, error::http_error)
            .await
    }
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
        let response = self.send(body, options, options.timeout).await?;
        let (value, headers): (Value, _) =
            read_json(NAME, response, started, options.timeout).await?;
        let body = response::to_chat_response(&value, unix_now()).map_err(|message| {
            ProviderError::InvalidResponse {
                provider: NAME,
                message,
            }
        })?;
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
        check_stream_content_type(NAME, &headers, &["text/event-stream"], "text/event-stream")?;
        let translator = StreamTranslator::new(
            NAME,
            &request.model,
            request.wants_stream_usage(),
            unix_now(),
        );
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
