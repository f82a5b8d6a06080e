//! Bedrock errors → [`ProviderError`]. HTTP errors name their exception in the
//! `x-amzn-errortype` header (and sometimes `__type` in the body) with `{"message"}` as body;
//! errors inside a ConverseStream arrive as `exception` messages with `:exception-type`.

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use crate::ProviderError;

/// `ValidationException:http://internal.amazon.com/...` or `com.amazon...#ThrottlingException`
/// → `ThrottlingException`.
fn exception_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name)
}

/// The status to report for an exception (stream exceptions come without one) and how to
/// classify it.
pub fn classify(
    provider: &'static str,
    exception: &str,
    status: Option<u16>,
    message: String,
) -> ProviderError {
    let name = exception_name(exception);
    let lowered = message.to_ascii_lowercase();
    let mut code = None;
    let status = match name.to_ascii_lowercase().as_str() {
        "throttlingexception" | "servicequotaexceededexception" | "modelnotreadyexception" => 429,
        "validationexception" => {
            if lowered.contains("too long")
                || lowered.contains("too many tokens")
                || lowered.contains("context window")
                || lowered.contains("maximum context length")
                || lowered.contains("prompt is too long")
            {
                code = Some("context_length_exceeded".to_owned());
            }
            400
        }
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "expiredtokenexception"
        | "missingauthenticationtokenexception"
        | "incompletesignatureexception" => 401,
        "accessdeniedexception" => 403,
        "resourcenotfoundexception" => 404,
        "modeltimeoutexception" => 408,
        "serviceunavailableexception" => 503,
        "internalserverexception" | "modelstreamerrorexception" | "modelerrorexception" => 500,
        _ => status.unwrap_or(500),
    };
    ProviderError::from_upstream(provider, status, message, None, code, None, None)
}

/// The error for a non-2xx answer.
pub fn http_error(
    provider: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let exception = headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            parsed
                .get("__type")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let message = parsed
        .get("message")
        .or_else(|| parsed.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
            if text.trim().is_empty() {
                format!("upstream answered HTTP {status} with an empty body")
            } else {
                text
            }
        });
    let error = classify(provider, &exception, Some(status), message);
    match (error, retry_after(headers)) {
        (ProviderError::Upstream(mut failure), Some(after)) => {
            failure.retry_after = Some(after);
            ProviderError::Upstream(failure)
        }
        (error, _) => error,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::{ErrorClass, ErrorKind};

    fn error(status: u16, exception: &str, message: &str) -> ProviderError {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            http::HeaderValue::from_str(&format!(
                "{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            ))
            .unwrap(),
        );
        let body = serde_json::json!({ "message": message }).to_string();
        http_error("Bedrock", status, &headers, body.as_bytes())
    }

    #[test]
    fn exceptions_map_to_litellm_classes() {
        let cases = [
            (
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                ErrorKind::RateLimited,
                429,
                "RateLimitError",
            ),
            (
                400,
                "ValidationException",
                "Input is too long for requested model.",
                ErrorKind::ContextWindowExceeded,
                400,
                "ContextWindowExceededError",
            ),
            (
                400,
                "ValidationException",
                "messages: roles must alternate",
                ErrorKind::BadRequest,
                400,
                "BadRequestError",
            ),
            (
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
                ErrorKind::PermissionDenied,
                403,
                "PermissionDeniedError",
            ),
            (
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                ErrorKind::UpstreamAuthentication,
                401,
                "AuthenticationError",
            ),
            (
                503,
                "ServiceUnavailableException",
                "Service is unavailable.",
                ErrorKind::UpstreamServerError,
                503,
                "ServiceUnavailableError",
            ),
            (
                500,
                "InternalServerException",
                "Internal error",
                ErrorKind::UpstreamServerError,
                500,
                "InternalServerError",
            ),
            (
                404,
                "ResourceNotFoundException",
                "Could not resolve the foundation model",
                ErrorKind::NotFound,
                404,
                "NotFoundError",
            ),
            (
                408,
                "ModelTimeoutException",
                "Model timed out",
                ErrorKind::Timeout,
                408,
                "Timeout",
            ),
        ];
        for (status, exception, message, kind, expected_status, class) in cases {
            let error = error(status, exception, message);
            assert_eq!(error.kind(), kind, "{exception}");
            assert_eq!(error.status(), expected_status, "{exception}");
            assert_eq!(
                error.to_string(),
                format!("litellm.{class}: BedrockException - {message}")
            );
        }
        let stream = classify("Bedrock", "throttlingException", None, "slow down".into());
        assert_eq!(stream.status(), 429);
        let bare = http_error("Bedrock", 502, &HeaderMap::new(), b"<html/>");
        assert!(bare.to_string().ends_with("<html/>"));
    }
}
