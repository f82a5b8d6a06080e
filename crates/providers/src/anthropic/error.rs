//! Anthropic error bodies (`{"type":"error","error":{"type","message"}}`) → [`ProviderError`].

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use crate::ProviderError;

/// The HTTP status Anthropic documents for each error type (used for in-stream errors,
/// which arrive after a 200).
fn status_of(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Anthropic's 529 "overloaded" is a temporary unavailability: reported as 503.
fn normalize(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

fn classify(
    provider: &'static str,
    status: u16,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let lowered = message.to_ascii_lowercase();
    let code = (lowered.contains("prompt is too long")
        || lowered.contains("exceed context limit")
        || lowered.contains("input length and `max_tokens` exceed"))
    .then(|| "context_length_exceeded".to_owned());
    ProviderError::from_upstream(
        provider,
        normalize(status),
        message,
        None,
        code,
        None,
        retry_after,
    )
}

/// The error for a non-2xx answer.
pub fn http_error(
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
    let message = parsed
        .as_ref()
        .and_then(|value| value["error"]["message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
            if text.trim().is_empty() {
                format!("upstream answered HTTP {status} with an empty body")
            } else {
                text
            }
        });
    classify(provider, status, message, retry_after)
}

/// The error for an `error` event inside a stream.
pub fn event_error(provider: &'static str, event: &Value) -> ProviderError {
    let error = &event["error"];
    let status = status_of(error["type"].as_str().unwrap_or_default());
    let message = error["message"]
        .as_str()
        .map_or_else(|| error.to_string(), str::to_owned);
    classify(provider, status, message, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::{ErrorClass, ErrorKind};

    fn body(kind: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": "error", "error": {"type": kind, "message": message}
        }))
        .unwrap()
    }

    #[test]
    fn error_classes_and_statuses() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("12"),
        );
        let cases = [
            (
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
                ErrorKind::RateLimited,
                429,
                "RateLimitError",
            ),
            (
                529,
                "overloaded_error",
                "Overloaded",
                ErrorKind::UpstreamServerError,
                503,
                "ServiceUnavailableError",
            ),
            (
                400,
                "invalid_request_error",
                "messages: roles must alternate",
                ErrorKind::BadRequest,
                400,
                "BadRequestError",
            ),
            (
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
                ErrorKind::ContextWindowExceeded,
                400,
                "ContextWindowExceededError",
            ),
            (
                401,
                "authentication_error",
                "invalid x-api-key",
                ErrorKind::UpstreamAuthentication,
                401,
                "AuthenticationError",
            ),
            (
                500,
                "api_error",
                "Internal server error",
                ErrorKind::UpstreamServerError,
                500,
                "InternalServerError",
            ),
        ];
        for (status, kind, message, expected_kind, expected_status, class) in cases {
            let error = http_error("Anthropic", status, &headers, &body(kind, message));
            assert_eq!(error.kind(), expected_kind, "{message}");
            assert_eq!(error.status(), expected_status, "{message}");
            assert_eq!(
                error.to_string(),
                format!("litellm.{class}: AnthropicException - {message}")
            );
        }
        let limited = http_error("Anthropic", 429, &headers, &body("rate_limit_error", "x"));
        assert_eq!(limited.retry_after_secs(), Some(12));
    }

    #[test]
    fn non_json_bodies_are_quoted() {
        let error = http_error(
            "Anthropic",
            502,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert!(error.to_string().ends_with("<html>bad gateway</html>"));
    }
}
