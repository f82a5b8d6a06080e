//! Relaying the endpoints without a typed body ([`crate::passthrough`]) to an
//! OpenAI-compatible deployment: the same path under its base URL (Azure: the deployment URL,
//! or `/openai/responses` for the Responses API), the deployment's credentials, the body as
//! sent but for the model, the answer as it comes.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method};

use super::{azure, OpenAiCompatible};
use crate::http::{read_body, send_checked, transport_error, upstream_error, with_call_headers};
use crate::passthrough::{
    PassthroughBody, PassthroughOperation, PassthroughRequest, PassthroughResponse,
};
use crate::{CallOptions, ProviderError, Upstream};

impl OpenAiCompatible {
    fn passthrough_url(&self, request: &PassthroughRequest) -> Result<reqwest::Url, ProviderError> {
        let bad = |message: String| ProviderError::BadRequest {
            provider: self.name_for_errors(),
            message,
            param: None,
        };
        match &self.azure {
            None => reqwest::Url::parse(&format!("{}/{}", self.base_url, request.path))
                .map_err(|error| bad(format!("invalid upstream URL: {error}"))),
            Some(route) => match request.operation {
                // The Responses API is not deployment-scoped on Azure: the body names the
                // deployment.
                PassthroughOperation::CreateResponse | PassthroughOperation::Response => {
                    let mut url = reqwest::Url::parse(&format!(
                        "{}/openai/{}",
                        route.api_base.trim_end_matches('/'),
                        request.path
                    ))
                    .map_err(|error| bad(format!("invalid upstream URL: {error}")))?;
                    url.query_pairs_mut()
                        .append_pair("api-version", &route.api_version);
                    Ok(url)
                }
                _ => azure::deployment_url(
                    &route.api_base,
                    &request.model,
                    &request.path,
                    &route.api_version,
                )
                .map_err(bad),
            },
        }
    }

    fn name_for_errors(&self) -> &'static str {
        self.dialect.display_name()
    }

    pub(super) async fn relay(
        &self,
        request: &PassthroughRequest,
        options: &CallOptions,
    ) -> Result<Upstream<PassthroughResponse>, ProviderError> {
        let provider = self.name_for_errors();
        let url = self.passthrough_url(request)?;
        let wait = if request.stream {
            options.stream_timeout
        } else {
            options.timeout
        };
        let mut headers = with_call_headers(self.headers.clone(), &options.headers);
        if let Some(multipart) = &request.multipart {
            let content_type = HeaderValue::from_str(&multipart.content_type()).map_err(|_| {
                ProviderError::BadRequest {
                    provider,
                    message: "the multipart boundary is not a valid header value".to_owned(),
                    param: None,
                }
            })?;
            headers.insert(http::header::CONTENT_TYPE, content_type);
        }
        let mut builder = self
            .client
            .inner()
            .request(request.method.clone(), url)
            .headers(headers);
        if let Some(body) = &request.body {
            let bytes = serde_json::to_vec(body).map_err(|error| ProviderError::BadRequest {
                provider,
                message: format!("cannot encode the request: {error}"),
                param: None,
            })?;
            builder = builder.body(bytes);
        } else if let Some(multipart) = &request.multipart {
            builder = builder.body(multipart.encode());
        } else if request.method == Method::GET || request.method == Method::DELETE {
            builder = builder.header(http::header::CONTENT_LENGTH, 0);
        }
        let started = tokio::time::Instant::now();
        let response = send_checked(provider, builder, wait, upstream_error).await?;
        let status = response.status();
        let mut headers = response.headers().clone();
        let content_type = headers.remove(http::header::CONTENT_TYPE);
        let is_stream = content_type
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("text/event-stream"));
        let body = if is_stream {
            PassthroughBody::Stream(relay_stream(response, provider, options.stream_timeout))
        } else {
            let (bytes, _) = read_body(provider, response, started, wait).await?;
            PassthroughBody::Full(bytes)
        };
        Ok(Upstream {
            body: PassthroughResponse {
                status: status.as_u16(),
                content_type: content_type.or(Some(HeaderValue::from_static("application/json"))),
                body,
            },
            headers,
        })
    }
}

/// The response body as it arrives, failing on a gap longer than `idle_timeout`.
fn relay_stream(
    response: reqwest::Response,
    provider: &'static str,
    idle_timeout: Duration,
) -> futures::stream::BoxStream<'static, Result<Bytes, ProviderError>> {
    let body = response.bytes_stream().boxed();
    futures::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle_timeout, body.next()).await {
            Err(_) => Some((
                Err(ProviderError::Timeout {
                    provider,
                    after: idle_timeout,
                }),
                None,
            )),
            Ok(None) => None,
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Ok(Some(Err(error))) => {
                Some((Err(transport_error(provider, error, idle_timeout)), None))
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai_compat::{AzureParams, Dialect, OpenAiCompatibleTarget};
    use crate::HttpClient;

    fn request(operation: PassthroughOperation, path: &str, model: &str) -> PassthroughRequest {
        PassthroughRequest {
            operation,
            method: Method::POST,
            path: path.to_owned(),
            model: model.to_owned(),
            body: None,
            multipart: None,
            stream: false,
        }
    }

    #[test]
    fn openai_urls_keep_the_path_under_the_base() {
        let target =
            OpenAiCompatibleTarget::resolve(Dialect::OpenAi, Some("http://h:1/v1/"), None, |_| {
                None
            })
            .unwrap();
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        let url = provider
            .passthrough_url(&request(
                PassthroughOperation::Response,
                "responses/resp_1",
                "m",
            ))
            .unwrap();
        assert_eq!(url.as_str(), "http://h:1/v1/responses/resp_1");
    }

    #[test]
    fn azure_urls_are_per_deployment_except_the_responses_api() {
        let params = AzureParams {
            api_base: Some("https://res.openai.azure.com/"),
            api_key: Some("k"),
            api_version: Some("2025-03-01-preview"),
            azure_ad_token: None,
        };
        let target =
            OpenAiCompatibleTarget::azure(Dialect::Azure, "dep-1", params, |_| None).unwrap();
        let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
        let url = |operation, path: &str| {
            provider
                .passthrough_url(&request(operation, path, "dep-1"))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            url(PassthroughOperation::CreateResponse, "responses"),
            "https://res.openai.azure.com/openai/responses?api-version=2025-03-01-preview"
        );
        assert_eq!(
            url(PassthroughOperation::ImageGenerations, "images/generations"),
            "https://res.openai.azure.com/openai/deployments/dep-1/images/generations?api-version=2025-03-01-preview"
        );
    }
}
