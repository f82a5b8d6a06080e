//! Google Gemini: Google AI Studio (`gemini/` models, API key) and Vertex AI (`vertex_ai/`
//! models, OAuth2 bearer from Google credentials, see [`crate::google_auth`]). Both take the same `generateContent` bodies;
//! only the URL and the credential differ ([`GoogleApi`]).
//!
//! Requests are translated from the OpenAI shape ([`request`]), responses back ([`response`]),
//! `streamGenerateContent?alt=sse` events into chunks ([`stream`]), errors into LiteLLM's
//! classes ([`error`]) and embeddings both ways ([`embeddings`]).
//!
//! Wire format: Gemini API `v1beta` (AI Studio) and Vertex AI `v1` (`v1beta1` for
//! `vertex_ai_beta/`).

pub mod embeddings;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse,
};

use crate::google_auth::{GoogleCredentials, GoogleTokenSource};
use crate::http::{
    check_stream_content_type, insert_extra_headers, read_body, read_json, secret_header,
    with_call_headers,
};
use crate::provider::{
    configured_or_env, fresh_completion_id, refuse_unsupported, unix_now, with_defaults,
};
use crate::stream_driver::drive;
use crate::{CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream};

use self::stream::{GeminiStream, StreamTranslator};

pub const AI_STUDIO_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Which Google API serves the deployment, with its credential.
#[derive(Debug, Clone)]
pub enum GoogleApi {
    /// `{base_url}/v1beta/models/{model}:generateContent`, key in `x-goog-api-key`.
    AiStudio {
        base_url: String,
        api_key: Option<String>,
    },
    /// `{base_url}/{version}/projects/{project}/locations/{location}/publishers/google/models/
    /// {model}:generateContent`, `Authorization: Bearer` from the token source.
    Vertex {
        base_url: String,
        version: &'static str,
        /// `None`: the metadata server's project, asked on first use.
        project: Option<String>,
        location: String,
        credentials: Arc<GoogleTokenSource>,
    },
}

/// Where and how to reach one Gemini deployment.
#[derive(Debug, Clone)]
pub struct GeminiTarget {
    pub api: GoogleApi,
    pub extra_headers: BTreeMap<String, String>,
    /// OpenAI-shaped parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
    /// Leave out parameters Gemini does not accept instead of refusing the call.
    pub drop_params: bool,
}

/// Vertex AI settings as written in `litellm_params` (LiteLLM's names).
#[derive(Debug, Clone, Default)]
pub struct VertexParams<'a> {
    pub api_base: Option<&'a str>,
    pub vertex_project: Option<&'a str>,
    pub vertex_location: Option<&'a str>,
    /// A service-account key or `authorized_user` credentials (JSON text or mapping), or the
    /// path of a file holding one.
    pub vertex_credentials: Option<&'a Value>,
    /// `vertex_ai_beta/` uses the `v1beta1` API.
    pub beta: bool,
}

impl GeminiTarget {
    /// AI Studio: the deployment's own values, else `GEMINI_API_BASE` / `GEMINI_API_KEY`
    /// (or `GOOGLE_API_KEY`), else the public endpoint.
    pub fn ai_studio(
        api_base: Option<&str>,
        api_key: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let base = configured_or_env(api_base, &["GEMINI_API_BASE"], &env)
            .unwrap_or_else(|| AI_STUDIO_BASE_URL.to_owned());
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1beta").unwrap_or(base).to_owned();
        Self {
            api: GoogleApi::AiStudio {
                base_url: base,
                api_key: configured_or_env(api_key, &["GEMINI_API_KEY", "GOOGLE_API_KEY"], &env),
            },
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        }
    }

    /// Vertex AI: project and location from the deployment, else `VERTEXAI_PROJECT` /
    /// `VERTEXAI_LOCATION` (location defaults to `us-central1`, the project to the
    /// credential's, or for the metadata server to the machine's); credentials as
    /// [`GoogleCredentials::resolve`] finds them.
    pub fn vertex(
        params: VertexParams<'_>,
        client: &HttpClient,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let key = GoogleCredentials::resolve(params.vertex_credentials, &env)?;
        let project = configured_or_env(params.vertex_project, &["VERTEXAI_PROJECT"], &env)
            .or_else(|| key.project_id().map(str::to_owned));
        if project.is_none() && !matches!(key, GoogleCredentials::ComputeMetadata(_)) {
            return Err("no Vertex AI project: set vertex_project or VERTEXAI_PROJECT".to_owned());
        }
        let location = configured_or_env(params.vertex_location, &["VERTEXAI_LOCATION"], &env)
            .unwrap_or_else(|| "us-central1".to_owned());
        let base_url = match params.api_base {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None if location == "global" => "https://aiplatform.googleapis.com".to_owned(),
            None => format!("https://{location}-aiplatform.googleapis.com"),
        };
        let credentials = Arc::new(GoogleTokenSource::new(&key, client.clone())?);
        Ok(Self {
            api: GoogleApi::Vertex {
                base_url,
                version: if params.beta { "v1beta1" } else { "v1" },
                project,
                location,
                credentials,
            },
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        })
    }

    /// The base URL, for `x-litellm-model-api-base`.
    pub fn base_url(&self) -> &str {
        match &self.api {
            GoogleApi::AiStudio { base_url, .. } | GoogleApi::Vertex { base_url, .. } => base_url,
        }
    }
}

/// What a URL is for.
#[derive(Debug, Clone, Copy)]
enum Method {
    Generate,
    Stream,
    Embed,
}

/// One Gemini or Vertex AI deployment.
#[derive(Debug)]
pub struct Gemini {
    name: &'static str,
    client: HttpClient,
    api: GoogleApi,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
    drop_params: bool,
}

impl Gemini {
    pub fn new(target: GeminiTarget, client: HttpClient) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let name = match &target.api {
            GoogleApi::AiStudio { api_key, .. } => {
                if let Some(key) = api_key.as_deref().filter(|key| !key.is_empty()) {
                    headers.insert(
                        HeaderName::from_static("x-goog-api-key"),
                        secret_header(key, "api_key")?,
                    );
                }
                "Gemini"
            }
            GoogleApi::Vertex { .. } => "Vertex_ai",
        };
        insert_extra_headers(&mut headers, &target.extra_headers)?;
        Ok(Self {
            name,
            client,
            api: target.api,
            headers,
            request_defaults: target.request_defaults,
            drop_params: target.drop_params,
        })
    }

    /// The URL for `model`; for Vertex without a configured project, the metadata server is
    /// asked for it (within `wait`) the first time.
    async fn url(
        &self,
        model: &str,
        method: Method,
        wait: Duration,
    ) -> Result<reqwest::Url, ProviderError> {
        let project = match &self.api {
            GoogleApi::Vertex {
                project: None,
                credentials,
                ..
            } => {
                // A bad model name is refused before the metadata server is asked anything.
                self.check_model(model)?;
                Some(credentials.metadata_project_id(self.name, wait).await?)
            }
            _ => None,
        };
        self.url_in(model, method, project.as_deref())
    }

    /// Refuses model names that would leave the model's path, and Vertex partner models.
    fn check_model(&self, model: &str) -> Result<(), ProviderError> {
        let tuned = model.starts_with("tunedModels/");
        if model.is_empty()
            || model.contains(['?', '#'])
            || model.contains("..")
            || (model.contains('/') && !tuned)
        {
            return Err(ProviderError::BadRequest {
                provider: self.name,
                message: format!("invalid model name {model:?}"),
                param: Some("model".to_owned()),
            });
        }
        if matches!(self.api, GoogleApi::Vertex { .. })
            && (model.starts_with("claude") || model.starts_with("mistral"))
        {
            // Partner models on Vertex take their vendor's body on `:rawPredict`, not Gemini's.
            return Err(ProviderError::BadRequest {
                provider: self.name,
                message: format!(
                    "partner model {model:?} on Vertex AI is not supported yet; only Google's \
                     Gemini and embedding models are"
                ),
                param: Some("model".to_owned()),
            });
        }
        Ok(())
    }

    /// The URL for `model`, in `asked_project` when the deployment names none.
    fn url_in(
        &self,
        model: &str,
        method: Method,
        asked_project: Option<&str>,
    ) -> Result<reqwest::Url, ProviderError> {
        self.check_model(model)?;
        let verb = match (method, &self.api) {
            (Method::Generate, _) => "generateContent",
            (Method::Stream, _) => "streamGenerateContent?alt=sse",
            (Method::Embed, GoogleApi::AiStudio { .. }) => "batchEmbedContents",
            (Method::Embed, GoogleApi::Vertex { .. }) => "predict",
        };
        let text = match &self.api {
            GoogleApi::AiStudio { base_url, .. } if model.starts_with("tunedModels/") => {
                format!("{base_url}/v1beta/{model}:{verb}")
            }
            GoogleApi::AiStudio { base_url, .. } => {
                format!("{base_url}/v1beta/models/{model}:{verb}")
            }
            GoogleApi::Vertex {
                base_url,
                version,
                project,
                location,
                ..
            } => {
                let project = project.as_deref().or(asked_project).ok_or_else(|| {
                    ProviderError::BadRequest {
                        provider: self.name,
                        message: "no Vertex AI project: set vertex_project or VERTEXAI_PROJECT"
                            .to_owned(),
                        param: None,
                    }
                })?;
                format!(
                    "{base_url}/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}:{verb}"
                )
            }
        };
        reqwest::Url::parse(&text).map_err(|error| ProviderError::BadRequest {
            provider: self.name,
            message: format!("cannot build the upstream URL {text:?}: {error}"),
            param: None,
        })
    }

    /// The request with deployment defaults filled in, checked for unsupported parameters.
    fn prepare<'a>(
        &self,
        request: &'a ChatCompletionRequest,
    ) -> Result<std::borrow::Cow<'a, ChatCompletionRequest>, ProviderError> {
        let request = with_defaults(self.name, request, &self.request_defaults)?;
        if !self.drop_params {
            refuse_unsupported(
                self.name,
                &request.model,
                request::unsupported_params(&request),
            )?;
        }
        Ok(request)
    }

    /// Downloads the request's remote images that this API cannot read itself, as LiteLLM
    /// does (all `http(s)://` ones for AI Studio; fewer for Vertex AI).
    async fn fetch_images(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<crate::image_fetch::FetchedImages, ProviderError> {
        let downloads = match self.api {
            GoogleApi::AiStudio { .. } => request::ai_studio_downloads,
            GoogleApi::Vertex { .. } => request::vertex_downloads,
        };
        crate::image_fetch::fetch_remote_images(
            self.name,
            self.client.inner(),
            &request.messages,
            |_, image| downloads(image),
            options.timeout,
        )
        .await
    }

    fn encode(&self, body: &impl serde::Serialize) -> Result<Vec<u8>, ProviderError> {
        serde_json::to_vec(body).map_err(|error| ProviderError::BadRequest {
            provider: self.name,
            message: format!("cannot encode the request: {error}"),
            param: None,
        })
    }

    async fn send(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let started = tokio::time::Instant::now();
        let mut headers = self.headers.clone();
        if let GoogleApi::Vertex { credentials, .. } = &self.api {
            let token = credentials.token(self.name, wait).await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ProviderError::InvalidResponse {
                    provider: self.name,
                    message: "the token endpoint issued a token that is not a valid header"
                        .to_owned(),
                }
            })?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let headers = with_call_headers(headers, &options.headers);
        // The token may have taken part of the wait.
        let wait = wait.saturating_sub(started.elapsed());
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
        read_json(self.name, response, started, options.timeout).await
    }

    /// Sends and reads a whole answer within `options.timeout`.
    async fn call(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        options: &CallOptions,
    ) -> Result<(Bytes, HeaderMap), ProviderError> {
        let started = tokio::time::Instant::now();
        let response = self.send(url, body, options, options.timeout).await?;
        read_body(self.name, response, started, options.timeout).await
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.name,
            message,
        }
    }
}

#[async_trait]
impl Provider for Gemini {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let request = self.prepare(request)?;
        let images = self.fetch_images(&request, options).await?;
        let body = self.encode(&request::to_gemini_request_with_images(
            self.name, &request, &images,
        )?)?;
        let url = self
            .url(&request.model, Method::Generate, options.timeout)
            .await?;
        let (bytes, headers) = self.call(url, body, options).await?;
        let body =
            response::to_chat_response(&bytes, &fresh_completion_id(), &request.model, unix_now())
                .map_err(|message| self.invalid(message))?;
        Ok(Upstream { body, headers })
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let request = self.prepare(request)?;
        let images = self.fetch_images(&request, options).await?;
        let body = self.encode(&request::to_gemini_request_with_images(
            self.name, &request, &images,
        )?)?;
        let url = self
            .url(&request.model, Method::Stream, options.stream_timeout)
            .await?;
        let mut response = self
            .send(url, body, options, options.stream_timeout)
            .await?;
        let headers = std::mem::take(response.headers_mut());
        check_stream_content_type(
            self.name,
            &headers,
            &["text/event-stream"],
            "text/event-stream",
        )?;
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
                GeminiStream::new(translator),
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
        let vertex = matches!(self.api, GoogleApi::Vertex { .. });
        let body = if vertex {
            embeddings::to_vertex_predict_request(request)
        } else {
            embeddings::to_batch_embed_request(request)
        };
        let url = self
            .url(&request.model, Method::Embed, options.timeout)
            .await?;
        let (value, headers) = self.call_json(url, self.encode(&body)?, options).await?;
        let body = if vertex {
            embeddings::from_vertex_predict_response(&value, &request.model, expected)
        } else {
            embeddings::from_batch_embed_response(&value, &request.model, expected)
        }
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
    fn ai_studio_urls_keys_and_env() {
        let target = GeminiTarget::ai_studio(None, None, |name| {
            (name == "GEMINI_API_KEY").then(|| "g-key".to_owned())
        });
        let provider = Gemini::new(target, client()).unwrap();
        assert_eq!(provider.headers["x-goog-api-key"], "g-key");
        assert_eq!(
            provider.url_in("gemini-2.0-flash", Method::Stream, None).unwrap().as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        let target =
            GeminiTarget::ai_studio(Some("http://127.0.0.1:9/v1beta/"), Some("k"), |_| None);
        let provider = Gemini::new(target, client()).unwrap();
        assert_eq!(
            provider
                .url_in("text-embedding-004", Method::Embed, None)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        assert!(provider
            .url_in("../../etc", Method::Generate, None)
            .is_err());
    }

    #[test]
    fn vertex_urls_by_project_and_location() {
        let params = VertexParams {
            vertex_project: Some("proj"),
            vertex_location: Some("europe-west4"),
            ..VertexParams::default()
        };
        let target = GeminiTarget::vertex(params, &client(), |_| None).unwrap();
        let provider = Gemini::new(target, client()).unwrap();
        assert_eq!(
            provider.url_in("gemini-2.0-flash", Method::Generate, None).unwrap().as_str(),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent"
        );
        let target = GeminiTarget::vertex(
            VertexParams {
                beta: true,
                ..VertexParams::default()
            },
            &client(),
            |name| match name {
                "VERTEXAI_PROJECT" => Some("envproj".to_owned()),
                "VERTEXAI_LOCATION" => Some("global".to_owned()),
                _ => None,
            },
        )
        .unwrap();
        let provider = Gemini::new(target, client()).unwrap();
        assert_eq!(
            provider.url_in("text-embedding-005", Method::Embed, None).unwrap().as_str(),
            "https://aiplatform.googleapis.com/v1beta1/projects/envproj/locations/global/publishers/google/models/text-embedding-005:predict"
        );
        assert!(provider
            .url_in("claude-3-5-sonnet@20240620", Method::Generate, None)
            .is_err());
        // Credentials that name no project need one configured...
        let user = serde_json::json!({"type": "authorized_user", "client_id": "c",
            "client_secret": "s", "refresh_token": "r"});
        let unnamed = VertexParams {
            vertex_credentials: Some(&user),
            ..VertexParams::default()
        };
        assert!(GeminiTarget::vertex(unnamed, &client(), |_| None).is_err());
        // ...except the metadata server, which is asked for the machine's project.
        let target = GeminiTarget::vertex(VertexParams::default(), &client(), |_| None).unwrap();
        assert!(matches!(
            target.api,
            GoogleApi::Vertex { project: None, .. }
        ));
    }
}
