//! Amazon Bedrock (`bedrock/` models): chat through the Converse and ConverseStream APIs,
//! embeddings (Titan, Cohere) through InvokeModel, every call signed with SigV4.
//!
//! Requests are translated from the OpenAI shape ([`request`]), responses back ([`response`]),
//! ConverseStream's event-stream messages into chunks ([`stream`]), exceptions into LiteLLM's
//! classes ([`error`]); [`sigv4`] signs.
//!
//! Wire format: Bedrock Runtime API (`/model/{modelId}/converse`, `/converse-stream`,
//! `/invoke`), SigV4 with signing name `bedrock`.

pub mod aws_time;
pub mod credential_endpoints;
pub mod credentials;
pub mod embeddings;
pub mod error;
pub mod request;
pub mod response;
pub mod sigv4;
pub mod stream;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse,
};

use crate::http::{check_stream_content_type, insert_extra_headers, read_body, with_call_headers};
use crate::provider::{
    configured_or_env, fresh_completion_id, refuse_unsupported, unix_now, with_defaults,
};
use crate::stream_driver::drive;
use crate::{CallOptions, ChunkStream, HttpClient, Provider, ProviderError, Upstream};

use self::credentials::{
    AssumeRoleParams, BaseCredentials, CredentialParams, CredentialSource, WebIdentityParams,
    WebIdentityToken,
};
use self::embeddings::EmbeddingFamily;
pub use self::sigv4::AwsCredentials;
use self::stream::{ConverseStream, StreamTranslator};

const NAME: &str = "Bedrock";
const DEFAULT_REGION: &str = "us-east-1";

/// Bedrock settings as written in `litellm_params` (LiteLLM's names).
#[derive(Debug, Clone, Copy, Default)]
pub struct BedrockParams<'a> {
    pub api_base: Option<&'a str>,
    pub aws_access_key_id: Option<&'a str>,
    pub aws_secret_access_key: Option<&'a str>,
    pub aws_session_token: Option<&'a str>,
    pub aws_region_name: Option<&'a str>,
    /// A profile of the shared credentials file.
    pub aws_profile_name: Option<&'a str>,
    /// A role to assume through STS; calls are signed with its temporary credentials.
    pub aws_role_name: Option<&'a str>,
    pub aws_session_name: Option<&'a str>,
    pub aws_external_id: Option<&'a str>,
    pub aws_sts_endpoint: Option<&'a str>,
    /// An OIDC token exchanged for `aws_role_name`'s credentials (`AssumeRoleWithWebIdentity`).
    pub aws_web_identity_token: Option<&'a str>,
}

/// Where and how to reach one Bedrock deployment.
#[derive(Debug, Clone)]
pub struct BedrockTarget {
    /// `https://bedrock-runtime.{region}.amazonaws.com` unless overridden.
    pub base_url: String,
    pub region: String,
    /// The credentials that sign calls, or (with `assume_role`) the STS call.
    pub credentials: Option<BaseCredentials>,
    pub assume_role: Option<AssumeRoleParams>,
    /// Where STS calls go: `aws_sts_endpoint`, else `AWS_STS_ENDPOINT`, else
    /// `https://sts.{region}.amazonaws.com`.
    pub sts_endpoint: String,
    pub extra_headers: BTreeMap<String, String>,
    /// OpenAI-shaped parameters applied to requests that do not set them.
    pub request_defaults: Map<String, Value>,
    /// Leave out parameters Converse does not accept instead of refusing the call.
    pub drop_params: bool,
}

impl BedrockTarget {
    /// The deployment's own values, else the standard AWS environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION_NAME`,
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`); the region defaults to `us-east-1`.
    pub fn resolve(
        params: BedrockParams<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let region = configured_or_env(
            params.aws_region_name,
            &["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"],
            &env,
        )
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("invalid aws_region_name {region:?}"));
        }
        let role_arn = params.aws_role_name.filter(|role| !role.is_empty());
        let web_identity_token = params
            .aws_web_identity_token
            .filter(|token| !token.trim().is_empty());
        let (credentials, assume_role) = match (web_identity_token, role_arn) {
            // The deployment's own token stands in for the whole credential chain.
            (Some(token), Some(role_arn)) => {
                let web_identity = WebIdentityParams {
                    role_arn: role_arn.to_owned(),
                    session_name: credentials::session_name(params.aws_session_name),
                    token: WebIdentityToken::Given(token.trim().to_owned()),
                };
                (Some(BaseCredentials::WebIdentity(web_identity)), None)
            }
            (Some(_), None) => {
                return Err(
                    "aws_web_identity_token needs aws_role_name: the ARN of the role \
                     the token is exchanged for"
                        .to_owned(),
                )
            }
            (None, _) => {
                let base = credentials::resolve_base(
                    CredentialParams {
                        aws_access_key_id: params.aws_access_key_id,
                        aws_secret_access_key: params.aws_secret_access_key,
                        aws_session_token: params.aws_session_token,
                        aws_profile_name: params.aws_profile_name,
                    },
                    &env,
                )?;
                let role = role_arn.map(|role_arn| AssumeRoleParams {
                    role_arn: role_arn.to_owned(),
                    session_name: credentials::session_name(params.aws_session_name),
                    external_id: params.aws_external_id.map(str::to_owned),
                });
                (base, role)
            }
        };
        if assume_role.is_some() && credentials.is_none() {
            return Err(format!(
                "aws_role_name needs credentials to call STS with; {}",
                credentials::no_credentials_imds_disabled()
            ));
        }
        let endpoint = |configured: Option<&str>, variable: &str, service: &str| {
            configured_or_env(configured, &[variable], &env)
                .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"))
                .trim_end_matches('/')
                .to_owned()
        };
        let sts_endpoint = endpoint(params.aws_sts_endpoint, "AWS_STS_ENDPOINT", "sts");
        let base_url = endpoint(
            params.api_base,
            "AWS_BEDROCK_RUNTIME_ENDPOINT",
            "bedrock-runtime",
        );
        Ok(Self {
            base_url,
            region,
            credentials,
            assume_role,
            sts_endpoint,
            extra_headers: BTreeMap::new(),
            request_defaults: Map::new(),
            drop_params: false,
        })
    }
}

/// Percent-encodes a model id (or ARN) as one path segment.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// LiteLLM lets a Bedrock model name say which API to use (`converse/...`); this adapter
/// always uses Converse for chat.
fn model_id(model: &str) -> &str {
    model.strip_prefix("converse/").unwrap_or(model)
}

/// One Bedrock deployment.
#[derive(Debug)]
pub struct Bedrock {
    client: HttpClient,
    base_url: String,
    region: String,
    credentials: Option<CredentialSource>,
    headers: HeaderMap,
    request_defaults: Map<String, Value>,
    drop_params: bool,
}

impl Bedrock {
    pub fn new(target: BedrockTarget, client: HttpClient) -> Result<Self, String> {
        reqwest::Url::parse(&target.base_url)
            .map_err(|error| format!("invalid api_base {:?}: {error}", target.base_url))?;
        let mut headers = HeaderMap::new();
        insert_extra_headers(&mut headers, &target.extra_headers)?;
        let credentials = target
            .credentials
            .map(|base| {
                CredentialSource::new(
                    base,
                    target.assume_role,
                    &target.sts_endpoint,
                    &target.region,
                    client.clone(),
                )
            })
            .transpose()?;
        Ok(Self {
            client,
            base_url: target.base_url,
            region: target.region,
            credentials,
            headers,
            request_defaults: target.request_defaults,
            drop_params: target.drop_params,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, model: &str, action: &str) -> Result<reqwest::Url, ProviderError> {
        let text = format!(
            "{}/model/{}/{action}",
            self.base_url,
            encode_segment(model_id(model))
        );
        reqwest::Url::parse(&text).map_err(|error| ProviderError::BadRequest {
            provider: NAME,
            message: format!("cannot build the upstream URL {text:?}: {error}"),
            param: None,
        })
    }

    /// The request with deployment defaults filled in, checked for unsupported parameters.
    fn prepare<'a>(
        &self,
        request: &'a ChatCompletionRequest,
    ) -> Result<std::borrow::Cow<'a, ChatCompletionRequest>, ProviderError> {
        let request = with_defaults(NAME, request, &self.request_defaults)?;
        if !self.drop_params {
            refuse_unsupported(NAME, &request.model, request::unsupported_params(&request))?;
        }
        Ok(request)
    }

    /// Downloads the request's `http(s)://` images: Converse takes image bytes only, and
    /// LiteLLM fetches them too.
    async fn fetch_images(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<crate::image_fetch::FetchedImages, ProviderError> {
        crate::image_fetch::fetch_remote_images(
            NAME,
            self.client.inner(),
            &request.messages,
            |_, image| crate::image_fetch::is_remote(&image.url),
            options.timeout,
        )
        .await
    }

    /// Signs and sends one POST; non-2xx answers become classified errors.
    async fn send(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        options: &CallOptions,
        wait: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        let started = tokio::time::Instant::now();
        // Without credentials the chain ended before the instance metadata service: it was
        // turned off.
        let source = self.credentials.as_ref().ok_or_else(|| {
            credentials::credential_error(NAME, 401, credentials::no_credentials_imds_disabled())
        })?;
        let credentials = source.credentials(NAME, wait).await?;
        let wait = wait.saturating_sub(started.elapsed());
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => String::new(),
        };
        let signed = sigv4::signature_headers(
            &credentials,
            &self.region,
            "POST",
            url.as_str(),
            &[("host", &host), ("content-type", "application/json")],
            &body,
            SystemTime::now(),
        )
        .map_err(|message| ProviderError::BadRequest {
            provider: NAME,
            message,
            param: None,
        })?;
        let mut headers = with_call_headers(self.headers.clone(), &options.headers);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in signed {
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        self.client
            .post(NAME, url, headers, body, wait, error::http_error)
            .await
    }

    async fn call_json(
        &self,
        url: reqwest::Url,
        body: &impl serde::Serialize,
        options: &CallOptions,
    ) -> Result<(Value, HeaderMap), ProviderError> {
        let (bytes, headers) = self.call(url, body, options).await?;
        let value = serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
        Ok((value, headers))
    }

    /// Sends `body` and reads the whole answer within `options.timeout`.
    async fn call(
        &self,
        url: reqwest::Url,
        body: &impl serde::Serialize,
        options: &CallOptions,
    ) -> Result<(Bytes, HeaderMap), ProviderError> {
        let started = tokio::time::Instant::now();
        let body = serde_json::to_vec(body).map_err(|error| ProviderError::BadRequest {
            provider: NAME,
            message: format!("cannot encode the request: {error}"),
            param: None,
        })?;
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

/// Converse answers carry no id; the AWS request id names the completion when present.
fn completion_id(headers: &HeaderMap) -> String {
    match headers
        .get("x-amzn-requestid")
        .and_then(|value| value.to_str().ok())
    {
        Some(request_id) if !request_id.is_empty() => format!("chatcmpl-{request_id}"),
        _ => fresh_completion_id(),
    }
}

#[async_trait]
impl Provider for Bedrock {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn chat(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChatCompletionResponse>, ProviderError> {
        let request = self.prepare(request)?;
        let images = self.fetch_images(&request, options).await?;
        let body = request::to_converse_request_with_images(&request, &images)?;
        let url = self.url(&request.model, "converse")?;
        let (bytes, headers) = self.call(url, &body, options).await?;
        let body = response::to_chat_response(
            &bytes,
            &completion_id(&headers),
            model_id(&request.model),
            unix_now(),
        )
        .map_err(invalid)?;
        Ok(Upstream { body, headers })
    }

    async fn chat_stream(
        &self,
        request: &ChatCompletionRequest,
        options: &CallOptions,
    ) -> Result<Upstream<ChunkStream>, ProviderError> {
        let request = self.prepare(request)?;
        let images = self.fetch_images(&request, options).await?;
        let body = serde_json::to_vec(&request::to_converse_request_with_images(
            &request, &images,
        )?)
        .map_err(|error| ProviderError::BadRequest {
            provider: NAME,
            message: format!("cannot encode the request: {error}"),
            param: None,
        })?;
        let url = self.url(&request.model, "converse-stream")?;
        let mut response = self
            .send(url, body, options, options.stream_timeout)
            .await?;
        let headers = std::mem::take(response.headers_mut());
        check_stream_content_type(
            NAME,
            &headers,
            &["eventstream"],
            "application/vnd.amazon.eventstream",
        )?;
        let translator = StreamTranslator::new(
            NAME,
            model_id(&request.model),
            &completion_id(&headers),
            request.wants_stream_usage(),
            unix_now(),
        );
        Ok(Upstream {
            body: drive(
                NAME,
                response,
                ConverseStream::new(translator),
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
        let family =
            EmbeddingFamily::of(&request.model).ok_or_else(|| ProviderError::BadRequest {
                provider: NAME,
                message: format!(
                    "embeddings for Bedrock model {:?} are not supported; use an \
                     amazon.titan-embed-* or cohere.embed-* model",
                    request.model
                ),
                param: Some("model".to_owned()),
            })?;
        let url = self.url(&request.model, "invoke")?;
        match family {
            EmbeddingFamily::Titan => {
                // Titan embeds one text per call: the calls run concurrently, answers kept in
                // input order.
                let calls = embeddings::titan_requests(request)
                    .into_iter()
                    .map(|body| {
                        let url = url.clone();
                        async move { self.call_json(url, &body, options).await }
                    })
                    .collect::<Vec<_>>();
                let mut bodies = Vec::with_capacity(calls.len());
                let mut headers = HeaderMap::new();
                for result in futures::future::join_all(calls).await {
                    let (body, answer_headers) = result?;
                    bodies.push(body);
                    headers = answer_headers;
                }
                let body =
                    embeddings::from_titan_responses(&bodies, &request.model).map_err(invalid)?;
                Ok(Upstream { body, headers })
            }
            EmbeddingFamily::Cohere => {
                let (value, headers) = self
                    .call_json(url, &embeddings::cohere_request(request), options)
                    .await?;
                let body =
                    embeddings::from_cohere_response(&value, &request.model, request.input.len())
                        .map_err(invalid)?;
                Ok(Upstream { body, headers })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_region_and_urls() {
        let target = BedrockTarget::resolve(BedrockParams::default(), |name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            "AWS_REGION" => Some("eu-west-3".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(target.region, "eu-west-3");
        assert_eq!(
            target.base_url,
            "https://bedrock-runtime.eu-west-3.amazonaws.com"
        );
        let Some(BaseCredentials::Keys(keys)) = &target.credentials else {
            panic!("{:?}", target.credentials)
        };
        assert_eq!(keys.access_key_id, "AKID");
        let provider = Bedrock::new(target, HttpClient::new().unwrap()).unwrap();
        assert_eq!(
            provider
                .url("converse/anthropic.claude-3-5-sonnet-20240620-v1:0", "converse")
                .unwrap()
                .as_str(),
            "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        let params = BedrockParams {
            aws_access_key_id: Some("only-the-id"),
            ..BedrockParams::default()
        };
        assert!(BedrockTarget::resolve(params, |_| None).is_err());
        let params = BedrockParams {
            aws_region_name: Some("us-east-1/../x"),
            ..BedrockParams::default()
        };
        assert!(BedrockTarget::resolve(params, |_| None).is_err());
        // Nothing configured: the chain ends at the instance metadata service, asked later.
        let none = BedrockTarget::resolve(BedrockParams::default(), |_| None).unwrap();
        assert!(matches!(
            none.credentials,
            Some(BaseCredentials::Endpoint(
                credential_endpoints::CredentialEndpoint::InstanceMetadata(_)
            ))
        ));
        assert_eq!(none.region, "us-east-1");
        // With it turned off there are none, and a role has nothing to call STS with.
        let imds_off =
            |name: &str| (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".to_owned());
        let off = BedrockTarget::resolve(BedrockParams::default(), imds_off).unwrap();
        assert!(off.credentials.is_none());
        let role = BedrockParams {
            aws_role_name: Some("arn:aws:iam::1:role/r"),
            ..BedrockParams::default()
        };
        let error = BedrockTarget::resolve(role, imds_off).unwrap_err();
        assert!(
            error.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                && error.contains("AWS_EC2_METADATA_DISABLED"),
            "{error}"
        );
    }
}
