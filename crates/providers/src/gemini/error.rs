//! Google API error bodies (`{"error": {"code", "message", "status", "details"}}`, sometimes
//! wrapped in an array) → [`ProviderError`].

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use crate::ProviderError;

/// The HTTP status Google uses for each canonical `status` (for errors inside a stream).
fn status_of(status: &str) -> u16 {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

fn error_object(body: &Value) -> &Value {
    let body = match body {
        Value::Array(items) => items.first().unwrap_or(body),
        other => other,
    };
    body.get("error").unwrap_or(body)
}

/// Classifies by what the message and details say where the status alone is ambiguous.
fn classify(
    provider: &'static str,
    status: u16,
    error: &Value,
    fallback_message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map_or(fallback_message, str::to_owned);
    let reasons: Vec<&str> = error
        .get("details")
        .and_then(Value::as_array)
        .map(|details| {
            details
                .iter()
                .filter_map(|detail| detail.get("reason").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let lowered = message.to_ascii_lowercase();
    let mut status = status;
    let mut code = None;
    if reasons.contains(&"API_KEY_INVALID") || lowered.contains("api key not valid") {
        // Google answers a wrong key with 400 INVALID_ARGUMENT; it is an authentication error.
        status = 401;
    } else if lowered.contains("exceeds the maximum number of tokens")
        || lowered.contains("input token count")
        || lowered.contains("context window")
        || lowered.contains("too many tokens")
    {
        status = 400;
        code = Some("context_length_exceeded".to_owned());
    }
    ProviderError::from_upstream(provider, status, message, None, code, None, retry_after)
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
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let fallback = {
        let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
        if text.trim().is_empty() {
            format!("upstream answered HTTP {status} with an empty body")
        } else {
            text
        }
    };
    classify(
        provider,
        status,
        error_object(&parsed),
        fallback,
        retry_after,
    )
}

/// The error for an `{"error": ...}` event inside a stream (which arrived after a 200).
pub fn event_error(provider: &'static str, event: &Value) -> ProviderError {
    let error = error_object(event);
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..=599).contains(code))
        .unwrap_or_else(|| status_of(error["status"].as_str().unwrap_or_default()));
    classify(provider, status, error, error.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_llm_types::{ErrorClass, ErrorKind};

    fn body(code: u16, status: &str, message: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {"code": code, "message": message, "status": status}}))
            .unwrap()
    }

    #[test]
    fn google_errors_map_to_litellm_classes() {
        let cases = [
            (400, "INVALID_ARGUMENT", "Invalid JSON payload received.", ErrorKind::BadRequest, 400, "BadRequestError"),
            (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", ErrorKind::UpstreamAuthentication, 401, "AuthenticationError"),
            (403, "PERMISSION_DENIED", "Permission denied on resource project x.", ErrorKind::PermissionDenied, 403, "PermissionDeniedError"),
            (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", ErrorKind::RateLimited, 429, "RateLimitError"),
            (500, "INTERNAL", "An internal error has occurred.", ErrorKind::UpstreamServerError, 500, "InternalServerError"),
            (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", ErrorKind::UpstreamServerError, 503, "ServiceUnavailableError"),
            (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", ErrorKind::ContextWindowExceeded, 400, "ContextWindowExceededError"),
            (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta", ErrorKind::NotFound, 404, "NotFoundError"),
        ];
        for (status, canonical, message, kind, expected_status, class) in cases {
            let error = http_error(
                "Gemini",
                status,
                &HeaderMap::new(),
                &body(status, canonical, message),
            );
            assert_eq!(error.kind(), kind, "{message}");
            assert_eq!(error.status(), expected_status, "{message}");
            assert_eq!(
                error.to_string(),
                format!("litellm.{class}: GeminiException - {message}")
            );
        }
    }

    #[test]
    fn arrays_non_json_and_stream_events() {
        let wrapped = br#"[{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}]"#;
        assert_eq!(
            http_error("Vertex_ai", 429, &HeaderMap::new(), wrapped).status(),
            429
        );
        let html = http_error("Gemini", 502, &HeaderMap::new(), b"<html>bad</html>");
        assert!(html.to_string().ends_with("<html>bad</html>"));
        let event = json!({"error": {"message": "overloaded", "status": "UNAVAILABLE"}});
        assert_eq!(event_error("Gemini", &event).status(), 503);
    }
}
