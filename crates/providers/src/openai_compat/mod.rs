//! The OpenAI-compatible family: OpenAI itself and every vendor or server that speaks its API.
//!
//! Requests are forwarded as typed bodies whose unmodelled fields ride along in `extra`, so a
//! parameter this gateway does not know still reaches the upstream. Streams are relayed chunk
//! by chunk as raw JSON, without re-encoding.

mod dialect;
mod text_completion;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, ChunkJson, CompletionRequest,
    CompletionResponse, EmbeddingRequest, EmbeddingResponse,
};

pub use dialect::Dialect;

use crate::http::{transport_error, upstream_error};
use crate::sse::{SseDecoder, SseEvent};
use crate::{CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream};

/// Where and how to reach one OpenAI-compatible deployment.
#[derive(Debug, Clone)]
pub struct OpenAiCompatibleTarget {
    pub dialect: Dialect,
    /// Base URL ending before `/chat/completions` (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    pub api_key: Option<String>,
    pub organization: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// Parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
}

impl OpenAiCompatibleTarget {
    /// Resolves base URL and key the way LiteLLM does: the deployment's own values, else the
    /// vendor's environment variables, else the vendor's public endpoint.
    pub fn resolve(
        dialect: Dialect,
        api_base: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let base = api_base
            .map(str::to_owned)
            .or_else(|| dialect.base_url_env().iter().find_map(|name| env(name)))
            .or_else(|| dialect.default_base_url().map(str::to_owned))
            .ok_or_else(|| {
                let vars = dialect.base_url_env().join(" or ");
                if vars.is_empty() {
                    "api_base is required for this provider".to_owned()
                } else {
                    format!("api_base is required for this provider (or set {vars})")
                }
            })?;
        let api_key = api_key
            .map(str::to_owned)
            .or_else(|| dialect.api_key_env().iter().find_map(|name| env(name)));
        Ok(Self {
            dialect,
            base_url: dialect.normalize_base(&base),
            api_key,
            organization: None,
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
        })
    }
}

/// One OpenAI-compatible deployment, with its URLs and headers prepared once.
#[derive(Debug)]
pub struct OpenAiCompatible {
    client: HttpClient,
    dialect: Dialect,
    chat_url: reqwest::Url,
    completions_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
}

impl OpenAiCompatible {
    pub fn new(target: OpenAiCompatibleTarget, client: HttpClient) -> Result<Self, String> {
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", target.base_url))
                .map_err(|error| format!("invalid api_base {:?}: {error}", target.base_url))
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(key) = target.api_key.as_deref().filter(|key| !key.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| "api_key contains characters not allowed in a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        if let Some(organization) = &target.organization {
            let value = HeaderValue::from_str(organization).map_err(|_| {
                "organization contains characters not allowed in a header".to_owned()
            })?;
            headers.insert(HeaderName::from_static("openai-organization"), value);
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
            dialect: target.dialect,
            chat_url: url("/chat/completions")?,
            completions_url: url("/completions")?,
            embeddings_url: url("/embeddings")?,
            headers,
            request_defaults: target.request_defaults,
        })
    }

    /// The JSON body: the request, with deployment defaults for the fields it leaves unset.
    fn body<T: Serialize>(&self, request: &T) -> Result<Vec<u8>, ProviderError> {
        let encode_error = |error: serde_json::Error| ProviderError::BadRequest {
            provider: self.name(),
            message: format!("cannot encode the request: {error}"),
            param: None,
        };
        if self.request_defaults.is_empty() {
            return serde_json::to_vec(request).map_err(encode_error);
        }
        let mut value = serde_json::to_value(request).map_err(encode_error)?;
        if let Value::Object(map) = &mut value {
            for (key, default) in &self.request_defaults {
                if map.get(key).is_none_or(Value::is_null) {
                    map.insert(key.clone(), default.clone());
                }
            }
        }
        serde_json::to_vec(&value).map_err(encode_error)
    }

    /// Sends a request and returns the response once its headers arrived with a 2xx status.
    async fn send(
        &self,
        url: &reqwest::Url,
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
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send();
        let response = match tokio::time::timeout(wait, request).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: self.name(),
                    after: wait,
                })
            }
            Ok(Err(error)) => return Err(transport_error(self.name(), error, wait)),
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
        Err(upstream_error(
            self.name(),
            status.as_u16(),
            &headers,
            &body,
        ))
    }

    /// A non-streaming call: send, read the whole body within the timeout, parse it.
    async fn call<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Upstream<Resp>, ProviderError> {
        let body = self.body(request)?;
        let started = tokio::time::Instant::now();
        let mut response = self.send(url, body, options, options.timeout).await?;
        let headers = std::mem::take(response.headers_mut());
        let remaining = options.timeout.saturating_sub(started.elapsed());
        let bytes = match tokio::time::timeout(remaining, response.bytes()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: self.name(),
                    after: options.timeout,
                })
            }
            Ok(Err(error)) => return Err(transport_error(self.name(), error, options.timeout)),
            Ok(Ok(bytes)) => bytes,
        };
        let body =
            serde_json::from_slice(&bytes).map_err(|error| ProviderError::InvalidResponse {
                provider: self.name(),
                message: error.to_string(),
            })?;
        Ok(Upstream { body, headers })
    }

    async fn stream<Req: Serialize>(
        &self,
        url: &reqwest::Url,
        request: &Req,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let body = self.body(request)?;
        let mut response = self
            .send(url, body, options, options.stream_timeout)
            .await?;
        let headers = std::mem::take(response.headers_mut());
        // A server that ignores `stream: true` answers with one JSON body; relaying it as an
        // event stream would hand the client an empty answer.
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !content_type.is_empty() && !content_type.contains("text/event-stream") {
            let excerpt = match tokio::time::timeout(options.stream_timeout, response.bytes()).await
            {
                Ok(Ok(bytes)) => {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
                }
                _ => String::new(),
            };
            return Err(ProviderError::InvalidResponse {
                provider: self.name(),
                message: format!(
                    "a stream was requested but the upstream answered {content_type:?}, not \
                     text/event-stream: {excerpt}"
                ),
            });
        }
        Ok(Upstream {
            body: sse_chunks(response, self.name(), options.stream_timeout),
            headers,
        })
    }
}

/// Turns an SSE response into a stream of chunks, ending at `[DONE]` or end of body.
///
/// An `{"error": ...}` event mid-stream becomes an error item; so does a gap between chunks
/// longer than `idle_timeout`. Dropping the stream drops the response, which closes the
/// upstream connection and so cancels the call.
fn sse_chunks(
    response: reqwest::Response,
    provider: &'static str,
    idle_timeout: Duration,
) -> ChunkStream {
    struct State {
        body: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: SseDecoder,
        finished: bool,
        /// Whether any event arrived: a stream that ends without one is not an answer.
        saw_event: bool,
    }
    let state = State {
        body: response.bytes_stream().boxed(),
        decoder: SseDecoder::new(),
        finished: false,
        saw_event: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if state.finished {
                return None;
            }
            if let Some(event) = state.decoder.next_event() {
                state.saw_event = true;
                match event {
                    SseEvent::Done => return None,
                    SseEvent::Data(payload) => {
                        if let Some(error) = in_stream_error(provider, &payload) {
                            state.finished = true;
                            return Some((Err(error), state));
                        }
                        return Some((Ok(ChunkJson::from_bytes(payload)), state));
                    }
                }
            }
            match tokio::time::timeout(idle_timeout, state.body.next()).await {
                Err(_) => {
                    state.finished = true;
                    let error = ProviderError::Timeout {
                        provider,
                        after: idle_timeout,
                    };
                    return Some((Err(error), state));
                }
                Ok(Some(Ok(bytes))) => state.decoder.push(&bytes),
                Ok(Some(Err(error))) => {
                    state.finished = true;
                    return Some((Err(transport_error(provider, error, idle_timeout)), state));
                }
                Ok(None) => {
                    state.finished = true;
                    return match state.decoder.finish() {
                        Some(SseEvent::Data(payload)) => {
                            Some((Ok(ChunkJson::from_bytes(payload)), state))
                        }
                        Some(SseEvent::Done) => None,
                        None if state.saw_event => None,
                        None => {
                            let error = ProviderError::InvalidResponse {
                                provider,
                                message: "the upstream ended the stream without sending any event"
                                    .to_owned(),
                            };
                            Some((Err(error), state))
                        }
                    };
                }
            }
        }
    })
    .boxed()
}

/// An upstream that fails after streaming started sends `{"error": {...}}` as an event.
fn in_stream_error(provider: &'static str, payload: &Bytes) -> Option<ProviderError> {
    let start = payload
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())?;
    if !payload[start..].starts_with(b"{\"error\"") {
        return None;
    }
    let status = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|value| {
            value["error"]["code"]
                .as_str()
                .and_then(|code| code.parse::<u16>().ok())
                .or_else(|| {
                    value["error"]["status"]
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                })
        })
        .filter(|status| (400..=599).contains(status))
        .unwrap_or(500);
    Some(upstream_error(provider, status, &HeaderMap::new(), payload))
}

#[async_trait]
impl Provider for OpenAiCompatible {
    fn name(&self) -> &'static str {
        self.dialect.display_name()
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        if self.dialect.forces_text_completion() {
            let completion = text_completion::chat_to_completion(request);
            let upstream: Upstream<CompletionResponse> = self
                .call(&self.completions_url, &completion, options)
                .await?;
            return Ok(Upstream {
                body: text_completion::completion_to_chat(upstream.body),
                headers: upstream.headers,
            });
        }
        self.call(&self.chat_url, request, options).await
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        if self.dialect.forces_text_completion() {
            let completion = text_completion::chat_to_completion(request);
            let upstream = self
                .stream(&self.completions_url, &completion, options)
                .await?;
            return Ok(Upstream {
                body: text_completion::completion_chunks_to_chat(upstream.body, self.name()),
                headers: upstream.headers,
            });
        }
        self.stream(&self.chat_url, request, options).await
    }

    async fn completion(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<CompletionResponse>, ProviderError> {
        self.call(&self.completions_url, request, options).await
    }

    async fn completion_stream(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        self.stream(&self.completions_url, request, options).await
    }

    async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        options: &CallOptions,
    ) -> Result<Upstream<EmbeddingResponse>, ProviderError> {
        self.call(&self.embeddings_url, request, options).await
    }
}
