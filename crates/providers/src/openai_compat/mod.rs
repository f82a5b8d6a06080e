//! The OpenAI-compatible family: OpenAI itself and every vendor or server that speaks its API.
//!
//! Requests are forwarded as typed bodies whose unmodelled fields ride along in `extra`, so a
//! parameter this gateway does not know still reaches the upstream. Streams are relayed chunk
//! by chunk as raw JSON, without re-encoding.

pub mod azure;
mod dialect;
mod passthrough;
mod text_completion;

use std::borrow::Cow;
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
    CompletionResponse, EmbeddingRequest, EmbeddingResponse, StreamOptions,
};

pub use dialect::Dialect;

use crate::anthropic::inbound::openai_fit::fit_for_openai;
use crate::http::{
    insert_extra_headers, read_json, secret_header, transport_error, upstream_error,
    with_call_headers,
};
use crate::provider::configured_or_env;
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
    /// How URLs are laid out and the credential is sent.
    pub layout: Layout,
    /// Leave out parameters OpenAI's API does not accept (Anthropic's `top_k`) instead of
    /// refusing the call.
    pub drop_params: bool,
}

/// The URL and credential scheme of an OpenAI-compatible upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `{base_url}/chat/completions`, `/completions`, `/embeddings`; `api_key` as
    /// `Authorization: Bearer`.
    OpenAi,
    /// Azure OpenAI: `{base_url}/openai/deployments/{deployment}/chat/completions?api-version=`;
    /// `api_key` as the `api-key` header, else `ad_token` as `Authorization: Bearer`.
    Azure {
        /// The deployment name; a `*` (wildcard deployment) means "the request's model".
        deployment: String,
        api_version: String,
        ad_token: Option<String>,
    },
}

/// An Azure deployment's settings as written in `litellm_params`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureParams<'a> {
    pub api_base: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub azure_ad_token: Option<&'a str>,
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
        let base = configured_or_env(api_base, dialect.base_url_env(), &env)
            .or_else(|| dialect.default_base_url().map(str::to_owned))
            .ok_or_else(|| {
                let vars = dialect.base_url_env().join(" or ");
                if vars.is_empty() {
                    "api_base is required for this provider".to_owned()
                } else {
                    format!("api_base is required for this provider (or set {vars})")
                }
            })?;
        let api_key = configured_or_env(api_key, dialect.api_key_env(), &env);
        Ok(Self {
            dialect,
            base_url: dialect.normalize_base(&base),
            api_key,
            organization: None,
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
            layout: Layout::OpenAi,
        })
    }

    /// An Azure OpenAI deployment (`dialect` is [`Dialect::Azure`] or [`Dialect::AzureText`]).
    ///
    /// `api_base` from the params else `AZURE_API_BASE` (required); `api_version` from the
    /// params else `AZURE_API_VERSION` else [`azure::DEFAULT_API_VERSION`]. Credentials: values
    /// written on the deployment win over the environment, and at each level a key wins over
    /// an Entra ID token: `api_key`, `azure_ad_token`, then `AZURE_OPENAI_API_KEY` /
    /// `AZURE_API_KEY`, then `AZURE_AD_TOKEN`.
    pub fn azure(
        dialect: Dialect,
        deployment: &str,
        params: AzureParams<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let non_empty =
            |value: Option<&str>| value.filter(|v| !v.trim().is_empty()).map(str::to_owned);
        let from_env = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| non_empty(env(name).as_deref()))
        };
        let base = non_empty(params.api_base)
            .or_else(|| from_env(dialect.base_url_env()))
            .ok_or_else(|| {
                "api_base is required for Azure deployments (or set AZURE_API_BASE), e.g.                  https://<resource>.openai.azure.com"
                    .to_owned()
            })?;
        let api_version = non_empty(params.api_version)
            .or_else(|| from_env(&["AZURE_API_VERSION"]))
            .unwrap_or_else(|| azure::DEFAULT_API_VERSION.to_owned());
        let (api_key, ad_token) =
            match (non_empty(params.api_key), non_empty(params.azure_ad_token)) {
                (Some(key), _) => (Some(key), None),
                (None, Some(token)) => (None, Some(token)),
                (None, None) => match from_env(dialect.api_key_env()) {
                    Some(key) => (Some(key), None),
                    None => (None, from_env(&["AZURE_AD_TOKEN"])),
                },
            };
        // Fail at start-up, with the config path, rather than on the first call.
        azure::deployment_url(&base, deployment, "chat/completions", &api_version)?;
        Ok(Self {
            dialect,
            base_url: azure::display_base(&base),
            api_key,
            organization: None,
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
            layout: Layout::Azure {
                deployment: deployment.to_owned(),
                api_version,
                ad_token,
            },
        })
    }
}

/// What [`OpenAiCompatible`] needs to rebuild an Azure URL for a wildcard deployment.
#[derive(Debug)]
struct AzureRoute {
    api_base: String,
    api_version: String,
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
    /// Set for a wildcard Azure deployment (`azure/*`): the URL names the request's model.
    azure_wildcard: Option<AzureRoute>,
    /// Base URL without a trailing `/`, for relayed endpoints ([`crate::passthrough`]).
    base_url: String,
    /// Set for Azure deployments: where relayed endpoints go.
    azure: Option<AzureRoute>,
    /// Azure opens streams with a chunk carrying only `prompt_filter_results` (no id, no
    /// choices); it is dropped so clients see OpenAI's chunk sequence.
    drop_prompt_filter_chunks: bool,
    /// Whether streams may carry `stream_options`: not on Azure api-versions older than
    /// the parameter ([`azure::accepts_stream_options`]).
    accepts_stream_options: bool,
    drop_params: bool,
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
        let api_key = target.api_key.as_deref().filter(|key| !key.is_empty());
        match (&target.layout, api_key) {
            (Layout::OpenAi, Some(key)) => {
                headers.insert(
                    http::header::AUTHORIZATION,
                    secret_header(&format!("Bearer {key}"), "api_key")?,
                );
            }
            (Layout::Azure { .. }, Some(key)) => {
                headers.insert(
                    HeaderName::from_static("api-key"),
                    secret_header(key, "api_key")?,
                );
            }
            (Layout::Azure { ad_token, .. }, None) => {
                if let Some(token) = ad_token.as_deref().filter(|token| !token.is_empty()) {
                    headers.insert(
                        http::header::AUTHORIZATION,
                        secret_header(&format!("Bearer {token}"), "azure_ad_token")?,
                    );
                }
            }
            (Layout::OpenAi, None) => {}
        }
        if let Some(organization) = &target.organization {
            let value = HeaderValue::from_str(organization).map_err(|_| {
                "organization contains characters not allowed in a header".to_owned()
            })?;
            headers.insert(HeaderName::from_static("openai-organization"), value);
        }
        insert_extra_headers(&mut headers, &target.extra_headers)?;
        let (chat_url, completions_url, embeddings_url, azure_wildcard) = match &target.layout {
            Layout::OpenAi => (
                url("/chat/completions")?,
                url("/completions")?,
                url("/embeddings")?,
                None,
            ),
            Layout::Azure {
                deployment,
                api_version,
                ..
            } => {
                let url = |operation: &str| {
                    azure::deployment_url(&target.base_url, deployment, operation, api_version)
                };
                let wildcard = deployment.contains('*').then(|| AzureRoute {
                    api_base: target.base_url.clone(),
                    api_version: api_version.clone(),
                });
                (
                    url("chat/completions")?,
                    url("completions")?,
                    url("embeddings")?,
                    wildcard,
                )
            }
        };
        let azure = match &target.layout {
            Layout::Azure { api_version, .. } => Some(AzureRoute {
                api_base: target.base_url.clone(),
                api_version: api_version.clone(),
            }),
            Layout::OpenAi => None,
        };
        Ok(Self {
            base_url: target.base_url.trim_end_matches('/').to_owned(),
            azure,
            client,
            dialect: target.dialect,
            chat_url,
            completions_url,
            embeddings_url,
            headers,
            request_defaults: target.request_defaults,
            azure_wildcard,
            drop_prompt_filter_chunks: matches!(target.layout, Layout::Azure { .. }),
            accepts_stream_options: match &target.layout {
                Layout::Azure { api_version, .. } => azure::accepts_stream_options(api_version),
                Layout::OpenAi => true,
            },
            drop_params: target.drop_params,
        })
    }

    /// The URL for one call: the prepared one, except for a wildcard Azure deployment, whose
    /// URL names the model the request was routed with.
    fn url_for<'a>(
        &self,
        prepared: &'a reqwest::Url,
        operation: &str,
        model: &str,
    ) -> Result<Cow<'a, reqwest::Url>, ProviderError> {
        match &self.azure_wildcard {
            None => Ok(Cow::Borrowed(prepared)),
            Some(route) => {
                azure::deployment_url(&route.api_base, model, operation, &route.api_version)
                    .map(Cow::Owned)
                    .map_err(|message| ProviderError::BadRequest {
                        provider: self.name(),
                        message,
                        param: Some("model".to_owned()),
                    })
            }
        }
    }

    /// Whether a stream's `stream_options` must be left out because the upstream does not
    /// take it. What only the gateway asked for (its usage chunk, see
    /// [`CallOptions::stream_usage_added`]) is left out silently: the gateway then estimates
    /// the usage. What the client asked for is refused as an unsupported parameter (the 400
    /// the upstream would answer, naming `stream_options`) unless `drop_params` is set.
    fn strips_stream_options(
        &self,
        stream_options: Option<&StreamOptions>,
        model: &str,
        options: &CallOptions,
    ) -> Result<bool, ProviderError> {
        let Some(stream_options) = stream_options else {
            return Ok(false);
        };
        if self.accepts_stream_options {
            return Ok(false);
        }
        let client_asked = !options.stream_usage_added || !stream_options.extra.is_empty();
        if client_asked && !self.drop_params {
            return Err(ProviderError::UnsupportedParams {
                provider: self.name(),
                model: model.to_owned(),
                params: vec!["stream_options".to_owned()],
            });
        }
        Ok(true)
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
        let headers = with_call_headers(self.headers.clone(), &options.headers);
        self.client
            .post(
                self.name(),
                url.clone(),
                headers,
                body,
                wait,
                upstream_error,
            )
            .await
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
        let response = self.send(url, body, options, options.timeout).await?;
        let (body, headers) = read_json(self.name(), response, started, options.timeout).await?;
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
        let mut body = sse_chunks(response, self.name(), options.stream_timeout);
        if self.drop_prompt_filter_chunks {
            body = body
                .filter(|item| {
                    let keep = !matches!(item, Ok(chunk) if azure::is_prompt_filter_only(chunk.as_bytes()));
                    futures::future::ready(keep)
                })
                .boxed();
        }
        Ok(Upstream { body, headers })
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
            let url = self.url_for(&self.completions_url, "completions", &request.model)?;
            let upstream: Upstream<CompletionResponse> =
                self.call(&url, &completion, options).await?;
            return Ok(Upstream {
                body: text_completion::completion_to_chat(upstream.body),
                headers: upstream.headers,
            });
        }
        let request = fit_for_openai(request, self.drop_params, self.name())?;
        let url = self.url_for(&self.chat_url, "chat/completions", &request.model)?;
        self.call(&url, request.as_ref(), options).await
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        if self.dialect.forces_text_completion() {
            let mut completion = text_completion::chat_to_completion(request);
            if self.strips_stream_options(
                completion.stream_options.as_ref(),
                &request.model,
                options,
            )? {
                completion.stream_options = None;
            }
            let url = self.url_for(&self.completions_url, "completions", &request.model)?;
            let upstream = self.stream(&url, &completion, options).await?;
            return Ok(Upstream {
                body: text_completion::completion_chunks_to_chat(upstream.body, self.name()),
                headers: upstream.headers,
            });
        }
        let mut request = fit_for_openai(request, self.drop_params, self.name())?;
        if self.strips_stream_options(request.stream_options.as_ref(), &request.model, options)? {
            request.to_mut().stream_options = None;
        }
        let url = self.url_for(&self.chat_url, "chat/completions", &request.model)?;
        self.stream(&url, request.as_ref(), options).await
    }

    async fn completion(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<CompletionResponse>, ProviderError> {
        let url = self.url_for(&self.completions_url, "completions", &request.model)?;
        self.call(&url, request, options).await
    }

    async fn completion_stream(
        &self,
        request: &CompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let mut request = Cow::Borrowed(request);
        if self.strips_stream_options(request.stream_options.as_ref(), &request.model, options)? {
            request.to_mut().stream_options = None;
        }
        let url = self.url_for(&self.completions_url, "completions", &request.model)?;
        self.stream(&url, request.as_ref(), options).await
    }

    async fn embeddings(
        &self,
        request: &EmbeddingRequest,
        options: &CallOptions,
    ) -> Result<Upstream<EmbeddingResponse>, ProviderError> {
        let url = self.url_for(&self.embeddings_url, "embeddings", &request.model)?;
        self.call(&url, request, options).await
    }

    /// `{api_base}/rerank` in Cohere's shape, on the servers that offer it (as LiteLLM
    /// routes rerank for `hosted_vllm/`, `together_ai/` and generic OpenAI-like servers), and
    /// Jina AI's `/v1/rerank` for `jina_ai/`.
    async fn rerank(
        &self,
        request: &switchyard_llm_types::RerankRequest,
        options: &CallOptions,
    ) -> Result<Upstream<switchyard_llm_types::RerankResponse>, ProviderError> {
        use crate::cohere::rerank;
        type ReadAnswer = fn(
            &Value,
            &switchyard_llm_types::RerankRequest,
            &str,
        ) -> Result<switchyard_llm_types::RerankResponse, String>;
        let (url, body, read): (Result<reqwest::Url, String>, Value, ReadAnswer) =
            match self.dialect {
                Dialect::HostedVllm | Dialect::TogetherAi | Dialect::Generic => (
                    reqwest::Url::parse(&format!("{}/rerank", self.base_url))
                        .map_err(|error| error.to_string()),
                    rerank::to_compatible_rerank_request(request),
                    rerank::from_rerank_response,
                ),
                Dialect::JinaAi => (
                    rerank::jina_rerank_url(&self.base_url),
                    rerank::to_jina_rerank_request(request),
                    rerank::from_jina_rerank_response,
                ),
                _ => return Err(self.unsupported("/rerank")),
            };
        let url = url.map_err(|error| ProviderError::BadRequest {
            provider: self.name(),
            message: format!("cannot build the rerank URL: {error}"),
            param: None,
        })?;
        let upstream: Upstream<Value> = self.call(&url, &body, options).await?;
        let fallback_id = uuid::Uuid::new_v4().to_string();
        let body = read(&upstream.body, request, &fallback_id).map_err(|message| {
            ProviderError::InvalidResponse {
                provider: self.name(),
                message,
            }
        })?;
        Ok(Upstream {
            body,
            headers: upstream.headers,
        })
    }

    async fn passthrough(
        &self,
        request: &crate::passthrough::PassthroughRequest,
        options: &CallOptions,
    ) -> Result<Upstream<crate::passthrough::PassthroughResponse>, ProviderError> {
        self.relay(request, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn azure(
        params: AzureParams<'_>,
        vars: &'static [(&'static str, &'static str)],
    ) -> OpenAiCompatible {
        let target =
            OpenAiCompatibleTarget::azure(Dialect::Azure, "dep", params, env(vars)).unwrap();
        OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap()
    }

    #[test]
    fn azure_sends_the_key_as_api_key_and_never_a_bearer() {
        let provider = azure(
            AzureParams {
                api_base: Some("https://r.openai.azure.com/"),
                api_key: Some("az-key"),
                azure_ad_token: Some("ignored-token"),
                ..AzureParams::default()
            },
            &[],
        );
        assert_eq!(provider.headers["api-key"], "az-key");
        assert!(provider.headers.get(http::header::AUTHORIZATION).is_none());
        assert_eq!(provider.name(), "Azure");
        assert_eq!(
            provider.chat_url.as_str(),
            "https://r.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2025-02-01-preview"
        );
    }

    #[test]
    fn azure_ad_tokens_are_bearer_tokens_and_env_fills_the_gaps() {
        let provider = azure(
            AzureParams::default(),
            &[
                ("AZURE_API_BASE", "https://env.openai.azure.com"),
                ("AZURE_API_VERSION", "2024-10-21"),
                ("AZURE_AD_TOKEN", "entra-token"),
            ],
        );
        assert_eq!(
            provider.headers[http::header::AUTHORIZATION],
            "Bearer entra-token"
        );
        assert!(provider.headers.get("api-key").is_none());
        assert_eq!(
            provider.embeddings_url.as_str(),
            "https://env.openai.azure.com/openai/deployments/dep/embeddings?api-version=2024-10-21"
        );
        // A key in the environment wins over a token in the environment; a token written on
        // the deployment wins over both.
        let vars = &[
            ("AZURE_API_BASE", "https://env.openai.azure.com"),
            ("AZURE_API_KEY", "env-key"),
            ("AZURE_AD_TOKEN", "entra-token"),
        ];
        let provider = azure(AzureParams::default(), vars);
        assert_eq!(provider.headers["api-key"], "env-key");
        let provider = azure(
            AzureParams {
                azure_ad_token: Some("own-token"),
                ..AzureParams::default()
            },
            vars,
        );
        assert_eq!(
            provider.headers[http::header::AUTHORIZATION],
            "Bearer own-token"
        );
        assert!(provider.headers.get("api-key").is_none());
    }

    #[test]
    fn azure_requires_a_base() {
        let error =
            OpenAiCompatibleTarget::azure(Dialect::Azure, "dep", AzureParams::default(), env(&[]))
                .unwrap_err();
        assert!(error.contains("api_base is required"), "{error}");
        assert!(error.contains("AZURE_API_BASE"), "{error}");
    }

    #[test]
    fn wildcard_azure_deployments_take_the_request_model() {
        let target = OpenAiCompatibleTarget::azure(
            Dialect::Azure,
            "*",
            AzureParams {
                api_base: Some("https://r.openai.azure.com"),
                api_version: Some("v1"),
                ..AzureParams::default()
            },
            env(&[]),
        )
        .unwrap();
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        let url = provider
            .url_for(&provider.chat_url, "chat/completions", "gpt-4o-eu")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://r.openai.azure.com/openai/deployments/gpt-4o-eu/chat/completions?api-version=v1"
        );
    }

    #[test]
    fn azure_text_sends_chat_to_the_deployment_completions_url() {
        let target = OpenAiCompatibleTarget::azure(
            Dialect::AzureText,
            "instruct",
            AzureParams {
                api_base: Some("https://r.openai.azure.com/openai/"),
                api_key: Some("k"),
                ..AzureParams::default()
            },
            env(&[]),
        )
        .unwrap();
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        assert!(provider.dialect.forces_text_completion());
        assert_eq!(provider.name(), "Azure");
        assert_eq!(
            provider.completions_url.as_str(),
            "https://r.openai.azure.com/openai/deployments/instruct/completions?api-version=2025-02-01-preview"
        );
    }

    fn azure_on(api_version: &'static str, drop_params: bool) -> OpenAiCompatible {
        let mut target = OpenAiCompatibleTarget::azure(
            Dialect::Azure,
            "dep",
            AzureParams {
                api_base: Some("https://r.openai.azure.com"),
                api_key: Some("k"),
                api_version: Some(api_version),
                ..AzureParams::default()
            },
            env(&[]),
        )
        .unwrap();
        target.drop_params = drop_params;
        OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap()
    }

    /// A stream call whose usage request the gateway added.
    fn gateway_usage_call() -> CallOptions {
        CallOptions {
            stream_usage_added: true,
            ..CallOptions::default()
        }
    }

    fn usage_options(extra: Value) -> StreamOptions {
        StreamOptions {
            include_usage: Some(true),
            extra: serde_json::from_value(extra).unwrap(),
        }
    }

    #[test]
    fn stream_options_reach_azure_versions_that_take_them() {
        let gateway = gateway_usage_call();
        let client = CallOptions::default();
        let options = usage_options(json!({}));
        for version in ["2024-08-01-preview", "2024-10-21", "v1"] {
            let provider = azure_on(version, false);
            for call in [&gateway, &client] {
                assert!(!provider
                    .strips_stream_options(Some(&options), "m", call)
                    .unwrap());
            }
        }
        let openai = OpenAiCompatible::new(
            OpenAiCompatibleTarget::resolve(Dialect::OpenAi, None, Some("sk"), env(&[])).unwrap(),
            HttpClient::new().unwrap(),
        )
        .unwrap();
        assert!(!openai
            .strips_stream_options(Some(&options), "m", &client)
            .unwrap());
    }

    #[test]
    fn older_azure_versions_lose_the_gateways_usage_request_silently() {
        let provider = azure_on("2024-06-01", false);
        let gateway = gateway_usage_call();
        assert!(provider
            .strips_stream_options(Some(&usage_options(json!({}))), "m", &gateway)
            .unwrap());
        assert!(!provider.strips_stream_options(None, "m", &gateway).unwrap());
    }

    #[test]
    fn older_azure_versions_refuse_the_clients_stream_options_unless_dropped() {
        let gateway = gateway_usage_call();
        let client = CallOptions::default();
        // The client's own `include_usage`, or any other option it set next to the gateway's.
        let asked = [
            (usage_options(json!({})), &client),
            (
                usage_options(json!({"include_obfuscation": false})),
                &gateway,
            ),
        ];
        let strict = azure_on("2024-02-01", false);
        for (options, call) in &asked {
            let error = strict
                .strips_stream_options(Some(options), "gpt-4o", call)
                .unwrap_err();
            assert_eq!(error.status(), 400);
            assert_eq!(error.param(), Some("stream_options"));
            assert!(error.to_string().contains("drop_params"), "{error}");
        }
        let lenient = azure_on("2024-02-01", true);
        for (options, call) in &asked {
            assert!(lenient
                .strips_stream_options(Some(options), "gpt-4o", call)
                .unwrap());
        }
    }

    #[test]
    fn openai_layout_keeps_the_bearer_key() {
        let target =
            OpenAiCompatibleTarget::resolve(Dialect::OpenAi, None, Some("sk"), env(&[])).unwrap();
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        assert_eq!(provider.headers[http::header::AUTHORIZATION], "Bearer sk");
        assert!(provider.headers.get("api-key").is_none());
    }

    #[test]
    fn jina_ai_reads_its_key_from_the_environment() {
        let spec = crate::registry::parse_model("jina_ai/jina-reranker-v2-base-multilingual", None)
            .unwrap();
        assert_eq!(
            spec.family,
            crate::registry::ProviderFamily::OpenAiCompatible(Dialect::JinaAi)
        );
        let target = OpenAiCompatibleTarget::resolve(
            Dialect::JinaAi,
            None,
            None,
            env(&[("JINA_AI_API_KEY", "jina-key")]),
        )
        .unwrap();
        assert_eq!(target.base_url, "https://api.jina.ai/v1");
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        assert_eq!(
            provider.headers[http::header::AUTHORIZATION],
            "Bearer jina-key"
        );
        assert_eq!(provider.name(), "Jina_ai");
    }
}
