//! The upstream HTTP client (one pooled, keep-alive client per process) and the mapping of
//! upstream error responses onto [`ProviderError`].

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_llm_types::{ErrorClass, ErrorKind, ProviderSpecificFields};

use crate::ProviderError;

/// A cheaply clonable handle to the shared connection pool.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// A client with keep-alive pooling; per-call timeouts are applied per request.
    pub fn new() -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            // Proxy settings from the environment would be matched against every request's
            // host; the gateway talks to its upstreams directly.
            .no_proxy()
            .build()
            .map_err(|error| ProviderError::Connection {
                provider: "http",
                message: format!("cannot build the HTTP client: {error}"),
            })?;
        Ok(Self { client })
    }

    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Turns a non-2xx upstream answer (provider, status, headers, body) into the adapter's error:
/// [`upstream_error`] for OpenAI-style bodies, or a family's own `error::http_error`.
pub type ErrorClassifier = fn(&'static str, u16, &HeaderMap, &[u8]) -> ProviderError;

/// One upstream call as every adapter makes it: send, then read the answer within a deadline.
impl HttpClient {
    /// POSTs `body` with exactly `headers` (the adapter has merged its own and the call's).
    /// See [`send_checked`] for what comes back.
    pub async fn post(
        &self,
        provider: &'static str,
        url: reqwest::Url,
        headers: HeaderMap,
        body: Vec<u8>,
        wait: Duration,
        classify: ErrorClassifier,
    ) -> Result<reqwest::Response, ProviderError> {
        let request = self.client.post(url).headers(headers).body(body);
        send_checked(provider, request, wait, classify).await
    }
}

/// Sends `request`, waiting up to `wait` for the answer's status and headers. A 2xx response
/// is handed back with its body unread, so a stream can be relayed as it arrives; any other
/// status becomes `classify`'s error, from the body as far as it arrives within `wait` (an
/// error body that does not arrive leaves the status and headers to speak).
pub async fn send_checked(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    wait: Duration,
    classify: ErrorClassifier,
) -> Result<reqwest::Response, ProviderError> {
    let response = match tokio::time::timeout(wait, request.send()).await {
        Err(_) => {
            return Err(ProviderError::Timeout {
                provider,
                after: wait,
            })
        }
        Ok(Err(error)) => return Err(transport_error(provider, error, wait)),
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
    Err(classify(provider, status.as_u16(), &headers, &body))
}

/// Reads `response`'s whole body within what is left of `timeout` since `started` (when the
/// call began), returning it with the response headers. Running out of time is a timeout
/// after `timeout`, the call's whole limit.
pub async fn read_body(
    provider: &'static str,
    mut response: reqwest::Response,
    started: tokio::time::Instant,
    timeout: Duration,
) -> Result<(Bytes, HeaderMap), ProviderError> {
    let headers = std::mem::take(response.headers_mut());
    let remaining = timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, response.bytes()).await {
        Err(_) => Err(ProviderError::Timeout {
            provider,
            after: timeout,
        }),
        Ok(Err(error)) => Err(transport_error(provider, error, timeout)),
        Ok(Ok(bytes)) => Ok((bytes, headers)),
    }
}

/// [`read_body`], parsed as JSON; a body that does not parse is an invalid response.
pub async fn read_json<T: DeserializeOwned>(
    provider: &'static str,
    response: reqwest::Response,
    started: tokio::time::Instant,
    timeout: Duration,
) -> Result<(T, HeaderMap), ProviderError> {
    let (bytes, headers) = read_body(provider, response, started, timeout).await?;
    let value = serde_json::from_slice(&bytes).map_err(|error| ProviderError::InvalidResponse {
        provider,
        message: error.to_string(),
    })?;
    Ok((value, headers))
}

/// Refuses a 2xx answer to a stream request whose content type contains none of `accepted`:
/// a server that ignores the stream flag answers one JSON body, which is no stream. An answer
/// without a content type is given the benefit of the doubt. `expected` names the right type
/// in the message.
pub fn check_stream_content_type(
    provider: &'static str,
    headers: &HeaderMap,
    accepted: &[&str],
    expected: &str,
) -> Result<(), ProviderError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.is_empty() || accepted.iter().any(|kind| content_type.contains(kind)) {
        return Ok(());
    }
    Err(ProviderError::InvalidResponse {
        provider,
        message: format!(
            "a stream was requested but the upstream answered {content_type:?}, not {expected}"
        ),
    })
}

/// Adds a deployment's `extra_headers` (from its config) to `headers`, over any of the same
/// name; a name or value that cannot be a header is refused with a message for the config.
pub fn insert_extra_headers(
    headers: &mut HeaderMap,
    extra_headers: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in extra_headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("extra_headers: invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("extra_headers: invalid value for header {name}"))?;
        headers.insert(name, value);
    }
    Ok(())
}

/// A credential as a header value, marked sensitive so that it never shows in logs or debug
/// output; `setting` names where it came from in the error.
pub fn secret_header(text: &str, setting: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| format!("{setting} contains characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `headers` with the call's own headers (forwarded client headers) set over them, the last
/// value of a name winning.
pub fn with_call_headers(mut headers: HeaderMap, call_headers: &HeaderMap) -> HeaderMap {
    for (name, value) in call_headers {
        headers.insert(name.clone(), value.clone());
    }
    headers
}

/// Maps a transport failure (connect, reset, timeout) to a provider error.
pub fn transport_error(
    provider: &'static str,
    error: reqwest::Error,
    timeout: Duration,
) -> ProviderError {
    if error.is_timeout() {
        ProviderError::Timeout {
            provider,
            after: timeout,
        }
    } else if error.is_connect() {
        ProviderError::Connection {
            provider,
            message: format!("Connection error: {}", error_chain(&error)),
        }
    } else {
        ProviderError::Connection {
            provider,
            message: error_chain(&error),
        }
    }
}

/// An error's message followed by its causes' (`a: b: c`).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Builds the error for a non-2xx upstream answer from its status, headers and body.
///
/// OpenAI-style bodies (`{"error": {"message", "type", "code", "param"}}`) are read field by
/// field; anything else is quoted (truncated) so the client sees what the upstream said.
pub fn upstream_error(
    provider: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
    let field = |name: &str| -> Option<String> {
        error.and_then(|e| e.get(name)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let message = field("message")
        .or_else(|| error.and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let trimmed: String = text.chars().take(500).collect();
            if trimmed.trim().is_empty() {
                format!("upstream answered HTTP {status} with an empty body")
            } else {
                trimmed
            }
        });
    // Azure's content filter answers 400 with `code: content_filter`; some API versions only
    // say so in `innererror.code`, next to a generic `code`.
    let filtered = error
        .and_then(|e| e.pointer("/innererror/code"))
        .and_then(Value::as_str)
        == Some("ResponsibleAIPolicyViolation");
    let code = if filtered {
        Some("content_filter".to_owned())
    } else {
        field("code")
    };
    let classified = ProviderError::from_upstream(
        provider,
        status,
        message,
        field("type"),
        code,
        field("param"),
        retry_after,
    );
    let details = match (classified.kind(), error) {
        (ErrorKind::ContentPolicy, Some(error)) => content_filter_details(error),
        _ => None,
    };
    classified.with_provider_specific_fields(details)
}

/// The verdict behind a content-filter refusal, keyed as LiteLLM relays Azure's: the inner
/// error under both spellings Azure has used (`innererror` on chat, `inner_error` on images)
/// and the whole upstream error object as `azure_error`. `None` when the upstream gave no
/// inner error, so a refusal without a verdict renders exactly as before.
fn content_filter_details(error: &Value) -> Option<ProviderSpecificFields> {
    let inner = error
        .get("inner_error")
        .or_else(|| error.get("innererror"))
        .filter(|inner| !inner.is_null())?;
    let mut details = ProviderSpecificFields::new();
    details.insert("innererror".to_owned(), inner.clone());
    details.insert("inner_error".to_owned(), inner.clone());
    details.insert("azure_error".to_owned(), error.clone());
    Some(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_error_bodies_and_retry_after_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("3"),
        );
        let error = upstream_error(
            "OpenAI",
            429,
            &headers,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded","param":null}}"#,
        );
        assert_eq!(error.status(), 429);
        assert_eq!(error.retry_after_secs(), Some(3));
        assert!(error.to_string().ends_with("Rate limit reached"));
    }

    #[test]
    fn azure_content_filter_errors_are_content_policy_errors() {
        let filtered = br#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}"#;
        let inner_only = br#"{"error":{"message":"Request blocked.","code":"400","innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#;
        for body in [&filtered[..], &inner_only[..]] {
            let error = upstream_error("Azure", 400, &HeaderMap::new(), body);
            assert_eq!(error.kind(), switchyard_llm_types::ErrorKind::ContentPolicy);
            assert_eq!(error.status(), 400);
            assert!(
                error
                    .to_string()
                    .starts_with("litellm.ContentPolicyViolationError: AzureException - "),
                "{error}"
            );
        }
    }

    #[test]
    fn content_filter_verdicts_are_kept_as_provider_specific_fields() {
        let body = br#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"},"jailbreak":{"filtered":false,"detected":false}}}}}"#;
        let error = upstream_error("Azure", 400, &HeaderMap::new(), body);
        let details = error.provider_specific_fields().unwrap();
        let upstream: Value = serde_json::from_slice(body).unwrap();
        let inner = &upstream["error"]["innererror"];
        assert_eq!(details["innererror"], *inner);
        assert_eq!(details["inner_error"], *inner);
        assert_eq!(details["azure_error"], upstream["error"]);
        assert_eq!(
            details["innererror"]["content_filter_result"]["hate"]["severity"],
            "high"
        );
        assert_eq!(
            details.keys().collect::<Vec<_>>(),
            ["innererror", "inner_error", "azure_error"]
        );
    }

    #[test]
    fn the_images_spelling_of_the_inner_error_is_read_too() {
        let body = br#"{"error":{"code":"content_policy_violation","type":"invalid_request_error","message":"Your request was rejected as a result of our safety system.","inner_error":{"code":"ResponsibleAIPolicyViolation","content_filter_results":{"violence":{"filtered":true,"severity":"low"}},"revised_prompt":"a calm scene"}}}"#;
        let error = upstream_error("Azure", 400, &HeaderMap::new(), body);
        assert_eq!(error.kind(), ErrorKind::ContentPolicy);
        let details = error.provider_specific_fields().unwrap();
        assert_eq!(details["innererror"]["revised_prompt"], "a calm scene");
        assert_eq!(details["inner_error"], details["innererror"]);
    }

    #[test]
    fn errors_without_a_verdict_carry_no_provider_specific_fields() {
        let no_inner = br#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}"#;
        let filtered_without_verdict = upstream_error("Azure", 400, &HeaderMap::new(), no_inner);
        assert_eq!(filtered_without_verdict.kind(), ErrorKind::ContentPolicy);
        assert!(filtered_without_verdict
            .provider_specific_fields()
            .is_none());

        // An inner error on anything but a refusal stays out, as in LiteLLM.
        let rate_limited = br#"{"error":{"message":"Rate limit reached","code":"429","innererror":{"code":"TokensPerMinute"}}}"#;
        let error = upstream_error("Azure", 429, &HeaderMap::new(), rate_limited);
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(error.provider_specific_fields().is_none());

        let plain = upstream_error("Azure", 502, &HeaderMap::new(), b"<html>bad gateway</html>");
        assert!(plain.provider_specific_fields().is_none());
    }

    #[test]
    fn non_json_bodies_are_quoted() {
        let error = upstream_error(
            "OpenAI",
            502,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert!(error.to_string().contains("<html>bad gateway</html>"));
        let empty = upstream_error("OpenAI", 503, &HeaderMap::new(), b"");
        assert!(empty.to_string().contains("empty body"));
    }
}
