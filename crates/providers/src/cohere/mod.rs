//! Cohere (`cohere/` and `cohere_chat/` models): the v2 API, with a bearer key.
//!
//! Chat requests are translated from the OpenAI shape ([`request`]), answers back
//! ([`response`]), v2 stream events into chunks ([`stream`]); embeddings ([`embed`]) and
//! rerank ([`rerank`]) both ways. Error bodies (`{"message": ...}`) map onto LiteLLM's
//! classes through the shared [`crate::http::upstream_error`], which already reads Cohere's
//! "too many tokens" as a context-window error.
//!
//! Both prefixes go to `POST /v2/chat`, as LiteLLM's current releases send them.
//!
//! Wire format: Cohere API v2 (`/v2/chat`, `/v2/embed`, `/v2/rerank`).

pub mod embed;
pub mod request;
pub mod rerank;
pub mod response;
pub mod stream;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse,
    RerankRequest, RerankResponse,
};

use crate::http::{
    check_stream_content_type, insert_extra_headers, read_body, secret_header, upstream_error,
    with_call_headers,
};
use crate::provider::{
    configured_or_env, fresh_completion_id, refuse_unsupported, unix_now, with_defaults,
};
use crate::stream_driver::drive;
use crate::{CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream};

use self::stream::{CohereStream, StreamTranslator};

const NAME: &str = "Cohere";
pub const DEFAULT_BASE_URL: &str = "https://api.cohere.com";

/// Where and how to reach one Cohere deployment.
#[derive(Debug, Clone)]
pub struct CohereTarget {
    /// Base URL without the `/v2/...` path.
    pub base_url: String,
    pub api_key: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// OpenAI-shaped parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
    /// Leave out parameters Cohere does not accept instead of refusing the call.
    pub drop_params: bool,
}

impl CohereTarget {
    /// The deployment's own values, else `COHERE_API_BASE` and `COHERE_API_KEY` (or
    /// `CO_API_KEY`, the Cohere SDK's), else the public endpoint.
    pub fn resolve(
        api_base: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let base = configured_or_env(api_base, &["COHERE_API_BASE"], &env)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base = base.trim_end_matches('/');
        let base = ["/v2/chat", "/v1/chat", "/v2", "/v1"]
            .iter()
            .find_map(|suffix| base.strip_suffix(suffix))
            .unwrap_or(base);
        Self {
            base_url: base.to_owned(),
            api_key: configured_or_env(api_key, &["COHERE_API_KEY", "CO_API_KEY"], &env),
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        }
    }
}

/// One Cohere deployment, with its URLs and headers prepared once.
#[derive(Debug)]
pub struct Cohere {
    client: HttpClient,
    chat_url: reqwest::Url,
    embed_url: reqwest::Url,
    rerank_url: reqwest::Url,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
    drop_params: bool,
}

impl Cohere {
    pub fn new(target: CohereTarget, client: HttpClient) -> Result<Self, String> {
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", target.base_url))
                .map_err(|error| format!("invalid api_base {:?}: {error}", target.base_url))
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some(key) = target.api_key.as_deref().filter(|key| !key.is_empty()) {
            headers.insert(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {key}"), "api_key")?,
            );
        }
        insert_extra_headers(&mut headers, &target.extra_headers)?;
        Ok(Self {
            client,
            chat_url: url("/v2/chat")?,
            embed_url: url("/v2/embed")?,
            rerank_url: url("/v2/rerank")?,
            headers,
            request_defaults: target.request_defaults,
            drop_params: target.drop_params,
        })
    }

    /// The request with deployment defaults filled in, checked for unsupported parameters.
    fn prepare<'a>(
        &self,
        request: &'a ChatCompletionRequest,
    ) -> Result<Cow<'a, ChatCompletionRequest>, ProviderError> {
        let request = with_defaults(NAME, request, &self.request_defaults)?;
        if !self.drop_params {
            refuse_unsupported(NAME, &request.model, request::unsupported_params(&request))?;
        }
        Ok(request)
    }

    fn bad(&self, error: serde_json::Error) -> ProviderError {
        ProviderError::BadRequest {
            provider: NAME,
            message: format!("cannot encode the request: {error}"),
            param: None,
        }
    }

    /// Sends a body; a 2xx response is handed back with its headers still to be read.
    async fn send(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|error| self.bad(error))?;
        let headers = with_call_headers(self.headers.clone(), &options.headers);
        self.client
            .post(NAME, url.clone(), headers, body, wait, upstream_error)
            .await
    }

    /// Sends and reads a whole JSON answer within `options.timeout`.
    async fn call_json(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
        options: &CallOptions,
    ) -> Result<(Value, HeaderMap), ProviderError> {
        let (bytes, headers) = self.call(url, body, options).await?;
        let value = serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        Ok((value, headers))
    }

    /// Sends and reads a whole answer's bytes within `options.timeout`.
    async fn call(
        &self,
        url: &reqwest::Url,
        body: &impl Serialize,
        options: &CallOptions,
    ) -> Result<(Bytes, HeaderMap), ProviderError> {
        let started = tokio::time::Instant::now();
        let response = self.send(url, body, options, options.timeout).await?;
        read_body(NAME, response, started, options.timeout).await
    }
}

fn invalid(message: String) -> ProviderError {
    ProviderError::InvalidResponse {
        provider: NAME,
        message,
    }
}

#[async_trait]
impl Provider for Cohere {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let request = self.prepare(request)?;
        let body = request::to_cohere_request(NAME, &request, false)?;
        let (bytes, headers) = self.call(&self.chat_url, &body, options).await?;
        let fallback_id = fresh_completion_id();
        let body = response::to_chat_response(&bytes, &fallback_id, &request.model, unix_now())
            .map_err(invalid)?;
        Ok(Upstream { body, headers })
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let request = self.prepare(request)?;
        let body = request::to_cohere_request(NAME, &request, true)?;
        let mut response = self
            .send(&self.chat_url, &body, options, options.stream_timeout)
            .await?;
        let headers = std::mem::take(response.headers_mut());
        check_stream_content_type(NAME, &headers, &["text/event-stream"], "text/event-stream")?;
        let translator = StreamTranslator::new(
            NAME,
            &request.model,
            &fresh_completion_id(),
            request.wants_stream_usage(),
            unix_now(),
        );
        Ok(Upstream {
            body: drive(
                NAME,
                response,
                CohereStream::new(translator),
                options.stream_timeout,
            ),
            headers,
        })
    }

    async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        options: &CallOptions,
    ) -> Result<Upstream<EmbeddingResponse>, ProviderError> {
        let body = embed::to_embed_request(request);
        let (value, headers) = self.call_json(&self.embed_url, &body, options).await?;
        let body = embed::from_embed_response(&value, &request.model, request.input.len())
            .map_err(invalid)?;
        Ok(Upstream { body, headers })
    }

    async fn rerank(
        &self,
        request: &RerankRequest,
        options: &CallOptions,
    ) -> Result<Upstream<RerankResponse>, ProviderError> {
        let body = rerank::to_rerank_request(request);
        let (value, headers) = self.call_json(&self.rerank_url, &body, options).await?;
        let fallback_id = uuid::Uuid::new_v4().to_string();
        let body = rerank::from_rerank_response(&value, request, &fallback_id).map_err(invalid)?;
        Ok(Upstream { body, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keys_and_env() {
        let target = CohereTarget::resolve(None, None, |name| {
            (name == "CO_API_KEY").then(|| "co-key".to_owned())
        });
        assert_eq!(target.base_url, DEFAULT_BASE_URL);
        let provider = Cohere::new(target, HttpClient::new().unwrap()).unwrap();
        assert_eq!(provider.headers["authorization"], "Bearer co-key");
        assert_eq!(provider.chat_url.as_str(), "https://api.cohere.com/v2/chat");
        let target = CohereTarget::resolve(Some("http://127.0.0.1:9/v1/"), Some("k"), |_| None);
        let provider = Cohere::new(target, HttpClient::new().unwrap()).unwrap();
        assert_eq!(provider.rerank_url.as_str(), "http://127.0.0.1:9/v2/rerank");
        assert_eq!(provider.embed_url.as_str(), "http://127.0.0.1:9/v2/embed");
    }
}
