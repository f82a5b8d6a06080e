//! Ollama's native API, as LiteLLM uses it: `ollama_chat/` models on `/api/chat`, `ollama/`
//! models on `/api/generate` (one prompt built from the messages), embeddings on `/api/embed`,
//! streams as NDJSON.
//!
//! Requests are translated from the OpenAI shape ([`request`]), answers back ([`response`]),
//! NDJSON lines into chunks ([`stream`]), `{"error": ".."}` bodies into LiteLLM's classes
//! ([`error`]) and embeddings both ways ([`embeddings`]); `http(s)://` image URLs are
//! downloaded and sent inline ([`images`]).
//!
//! Wire format: the Ollama REST API (`docs/api.md` of Ollama 0.12, 2025); no version prefix in
//! the paths. Ollama needs no key; one given (`api_key` or `OLLAMA_API_KEY`) is sent as a bearer
//! token, for servers behind an authenticating proxy.

pub mod embeddings;
pub mod error;
pub mod images;
pub mod request;
pub mod response;
pub mod stream;
pub mod think;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse,
};

use crate::http::{
    check_stream_content_type, insert_extra_headers, read_json, secret_header, with_call_headers,
};
use crate::provider::{configured_or_env, fresh_completion_id, refuse_unsupported, unix_now};
use crate::stream_driver::drive;
use crate::{CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream};

pub use self::request::Endpoint;
use self::stream::{OllamaStream, StreamTranslator};

/// Where Ollama listens unless configured otherwise.
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// Where and how to reach one Ollama deployment.
#[derive(Debug, Clone)]
pub struct OllamaTarget {
    /// `ollama_chat/` (chat) or `ollama/` (generate).
    pub endpoint: Endpoint,
    /// The server's root URL (`http://localhost:11434`); `/api/...` is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// OpenAI-shaped parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
    /// Leave out parameters Ollama does not accept instead of refusing the call.
    pub drop_params: bool,
}

impl OllamaTarget {
    /// The deployment's own values, else `OLLAMA_API_BASE` / `OLLAMA_API_KEY`, else the local
    /// default. A base given with a trailing `/api/chat`, `/api/generate` or `/v1` (copied from
    /// another client's settings) is reduced to the server's root.
    pub fn resolve(
        endpoint: Endpoint,
        api_base: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let base = configured_or_env(api_base, &["OLLAMA_API_BASE"], &env)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let mut base = base.trim_end_matches('/');
        for suffix in ["/api/chat", "/api/generate", "/api/embed", "/v1"] {
            base = base.strip_suffix(suffix).unwrap_or(base);
        }
        Self {
            endpoint,
            base_url: base.to_owned(),
            api_key: configured_or_env(api_key, &["OLLAMA_API_KEY"], &env)
                .filter(|key| !key.is_empty()),
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        }
    }
}

/// One Ollama deployment.
#[derive(Debug)]
pub struct Ollama {
    name: &'static str,
    endpoint: Endpoint,
    client: HttpClient,
    base_url: String,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
    drop_params: bool,
}

impl Ollama {
    pub fn new(target: OllamaTarget, client: HttpClient) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(key) = &target.api_key {
            headers.insert(
                http::header::AUTHORIZATION,
                secret_header(&format!("Bearer {key}"), "api_key")?,
            );
        }
        insert_extra_headers(&mut headers, &target.extra_headers)?;
        reqwest::Url::parse(&target.base_url)
            .map_err(|error| format!("api_base {:?} is not a URL: {error}", target.base_url))?;
        Ok(Self {
            // LiteLLM's exception prefixes: `OllamaException`, `Ollama_chatException`.
            name: match target.endpoint {
                Endpoint::Chat => "Ollama_chat",
                Endpoint::Generate => "Ollama",
            },
            endpoint: target.endpoint,
            client,
            base_url: target.base_url,
            headers,
            request_defaults: target.request_defaults,
            drop_params: target.drop_params,
        })
    }

    /// The server's root URL, for `x-litellm-model-api-base`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, ProviderError> {
        let text = format!("{}{path}", self.base_url);
        reqwest::Url::parse(&text).map_err(|error| ProviderError::BadRequest {
            provider: self.name,
            message: format!("cannot build the upstream URL {text:?}: {error}"),
            param: None,
        })
    }

    /// The request with deployment defaults filled in, checked for unsupported parameters,
    /// its remote images downloaded, and its `/api/chat` or `/api/generate` body.
    async fn chat_body(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<(Vec<u8>, reqwest::Url), ProviderError> {
        let request: Cow<'_, ChatCompletionRequest> =
            crate::provider::with_defaults(self.name, request, &self.request_defaults)?;
        if !self.drop_params {
            refuse_unsupported(
                self.name,
                &request.model,
                request::unsupported_params(&request, self.endpoint),
            )?;
        }
        let fetched = images::fetch(
            self.name,
            self.client.inner(),
            &request.messages,
            self.endpoint,
            options.timeout,
        )
        .await?;
        let (body, path) = match self.endpoint {
            Endpoint::Chat => (
                request::to_chat_request_with_images(self.name, &request, &fetched)?,
                "/api/chat",
            ),
            Endpoint::Generate => (
                request::to_generate_request_with_images(self.name, &request, &fetched)?,
                "/api/generate",
            ),
        };
        Ok((self.encode(&body)?, self.url(path)?))
    }

    fn encode(&self, body: &Value) -> Result<Vec<u8>, ProviderError> {
        serde_json::to_vec(body).map_err(|error| ProviderError::BadRequest {
            provider: self.name,
            message: format!("cannot encode the request: {error}"),
            param: None,
        })
    }

    /// Sends one POST within `wait`; non-2xx answers become classified errors.
    async fn send(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let headers = with_call_headers(self.headers.clone(), &options.headers);
        self.client
            .post(self.name, url, headers, body, wait, error::http_error)
            .await
    }

    /// Sends and reads a whole JSON answer within `options.timeout`.
    async fn call_json(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        options: &CallOptions,
    ) -> Result<(Value, HeaderMap), ProviderError> {
        let started = tokio::time::Instant::now();
        let response = self.send(url, body, options, options.timeout).await?;
        let (value, headers): (Value, _) =
            read_json(self.name, response, started, options.timeout).await?;
        // Ollama may answer 200 with an error body (e.g. a runner failure after loading).
        if let Some(message) = error::error_message(&value) {
            return Err(error::line_error(self.name, message));
        }
        Ok((value, headers))
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.name,
            message,
        }
    }
}

#[async_trait]
impl Provider for Ollama {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let mut request = Cow::Borrowed(request);
        if request.is_stream() {
            // The whole answer is wanted here; `stream: true` would make Ollama send NDJSON.
            request.to_mut().stream = Some(false);
        }
        let (body, url) = self.chat_body(&request, options).await?;
        let (value, headers) = self.call_json(url, body, options).await?;
        let body =
            response::to_chat_response(&value, &fresh_completion_id(), &request.model, unix_now())
                .map_err(|message| self.invalid(message))?;
        Ok(Upstream { body, headers })
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let mut request = Cow::Borrowed(request);
        if !request.is_stream() {
            request.to_mut().stream = Some(true);
        }
        let (body, url) = self.chat_body(&request, options).await?;
        let mut response = self
            .send(url, body, options, options.stream_timeout)
            .await?;
        let headers = std::mem::take(response.headers_mut());
        // `ndjson` or plain `json`: both are line-delimited here.
        check_stream_content_type(self.name, &headers, &["json"], "application/x-ndjson")?;
        let translator = StreamTranslator::new(
            self.name,
            &request.model,
            &fresh_completion_id(),
            request.wants_stream_usage(),
            unix_now(),
        );
        Ok(Upstream {
            body: drive(
                self.name,
                response,
                OllamaStream::new(translator),
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
        let expected = request.input.len();
        let body = self.encode(&embeddings::to_embed_request(request))?;
        let (value, headers) = self
            .call_json(self.url("/api/embed")?, body, options)
            .await?;
        let body = embeddings::from_embed_response(&value, &request.model, expected)
            .map_err(|message| self.invalid(message))?;
        Ok(Upstream { body, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HttpClient {
        HttpClient::new().unwrap()
    }

    #[test]
    fn bases_keys_and_env() {
        let target = OllamaTarget::resolve(Endpoint::Chat, None, None, |_| None);
        assert_eq!(target.base_url, "http://localhost:11434");
        let provider = Ollama::new(target, client()).unwrap();
        assert!(provider.headers.get("authorization").is_none());
        assert_eq!(
            provider.url("/api/chat").unwrap().as_str(),
            "http://localhost:11434/api/chat"
        );
        assert_eq!(provider.name, "Ollama_chat");
        let target = OllamaTarget::resolve(Endpoint::Generate, None, None, |name| match name {
            "OLLAMA_API_BASE" => Some("http://gpu-box:11434/api/generate".to_owned()),
            "OLLAMA_API_KEY" => Some("k".to_owned()),
            _ => None,
        });
        assert_eq!(target.base_url, "http://gpu-box:11434");
        let provider = Ollama::new(target, client()).unwrap();
        assert_eq!(provider.headers["authorization"], "Bearer k");
        assert_eq!(provider.name, "Ollama");
        let target = OllamaTarget::resolve(Endpoint::Chat, Some("http://h:1/v1/"), None, |_| None);
        assert_eq!(target.base_url, "http://h:1");
        let target = OllamaTarget::resolve(Endpoint::Chat, Some("not a url"), None, |_| None);
        assert!(Ollama::new(target, client()).is_err());
    }
}
