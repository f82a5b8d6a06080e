//! The OpenAI error body, and the closed set of error classes every crate maps its errors onto.
//!
//! Each crate keeps its own `thiserror` enum and implements [`ErrorClass`] for it; the HTTP
//! layer renders any `ErrorClass` in one place. The body matches LiteLLM Proxy's:
//! `{"error": {"message", "type", "param", "code"}}` with `code` the HTTP status as a string,
//! plus `provider_specific_fields` when the upstream's error said more than that (Azure's
//! content-filter verdict, for one).

use serde::{Deserialize, Serialize};

/// What went wrong, independent of which crate noticed. Drives the HTTP status, the OpenAI
/// `type` string, and whether a router may retry the call elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or names something invalid.
    BadRequest,
    /// The request body exceeds the configured size limit.
    PayloadTooLarge,
    /// The caller did not present a valid gateway key.
    Authentication,
    /// The upstream rejected the gateway's credentials for it.
    UpstreamAuthentication,
    /// The caller (or the upstream credentials) may not do this.
    PermissionDenied,
    /// The upstream does not know the model or route.
    NotFound,
    /// A rate limit was hit (the gateway's or the upstream's).
    RateLimited,
    /// The prompt is longer than the model accepts.
    ContextWindowExceeded,
    /// The provider refused the content.
    ContentPolicy,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream answered with a server error.
    UpstreamServerError,
    /// The upstream could not be reached, or answered with something unreadable.
    UpstreamUnreachable,
    /// The gateway is not ready or is shutting down.
    Unavailable,
    /// A bug or an unexpected state inside the gateway.
    Internal,
}

impl ErrorKind {
    /// The HTTP status a LiteLLM client expects for this class.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest | ErrorKind::ContextWindowExceeded | ErrorKind::ContentPolicy => {
                400
            }
            ErrorKind::Authentication | ErrorKind::UpstreamAuthentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Timeout => 408,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RateLimited => 429,
            ErrorKind::UpstreamServerError
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }

    /// The OpenAI-style `type` string when the error itself does not name a more specific one.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "auth_error",
            ErrorKind::UpstreamAuthentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::BadRequest
            | ErrorKind::PayloadTooLarge
            | ErrorKind::ContextWindowExceeded
            | ErrorKind::ContentPolicy
            | ErrorKind::Timeout => "invalid_request_error",
            ErrorKind::UpstreamServerError
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::Unavailable
            | ErrorKind::Internal => "internal_server_error",
        }
    }

    /// Whether another attempt (on the same or another deployment) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Timeout
                | ErrorKind::UpstreamServerError
                | ErrorKind::UpstreamUnreachable
        )
    }

    /// A short, low-cardinality label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Authentication => "authentication",
            ErrorKind::UpstreamAuthentication => "upstream_authentication",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ContextWindowExceeded => "context_window_exceeded",
            ErrorKind::ContentPolicy => "content_policy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::UpstreamServerError => "upstream_server_error",
            ErrorKind::UpstreamUnreachable => "upstream_unreachable",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Implemented by every crate's error enum so the HTTP layer can render it without knowing it.
pub trait ErrorClass: std::error::Error {
    fn kind(&self) -> ErrorKind;

    /// The HTTP status; an upstream error keeps the upstream's own status.
    fn status(&self) -> u16 {
        self.kind().status()
    }

    /// The OpenAI `type`; errors with a LiteLLM-specific type (`expired_key`, ...) override it.
    fn error_type(&self) -> &str {
        self.kind().openai_type()
    }

    /// The request parameter at fault, when there is one.
    fn param(&self) -> Option<&str> {
        None
    }

    /// Seconds the client should wait before trying again (sent as `Retry-After`).
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }

    /// Details the upstream gave beyond the OpenAI fields, passed on to the client as
    /// `error.provider_specific_fields` (LiteLLM's name).
    fn provider_specific_fields(&self) -> Option<&ProviderSpecificFields> {
        None
    }

    /// The body to send for this error.
    fn to_body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(
            self.to_string(),
            Some(self.error_type().to_owned()),
            self.param().map(str::to_owned),
            self.status(),
        );
        body.error.provider_specific_fields =
            self.provider_specific_fields().cloned().map(Box::new);
        body
    }
}

/// What a provider said about an error that the OpenAI fields have no room for, keyed as
/// LiteLLM keys it (`innererror`, ...).
pub type ProviderSpecificFields = serde_json::Map<String, serde_json::Value>;

/// `{"error": {...}}`, the body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub param: Option<String>,
    /// The HTTP status as a string, as LiteLLM sends it (not an OpenAI error code).
    pub code: Option<String>,
    /// Left out of the JSON when there is none, as LiteLLM does. Boxed: almost no error has
    /// any, and every `Result` carrying an error body stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_specific_fields: Option<Box<ProviderSpecificFields>>,
}

impl ErrorBody {
    pub fn new(
        message: impl Into<String>,
        kind: Option<String>,
        param: Option<String>,
        status: u16,
    ) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind,
                param,
                code: Some(status.to_string()),
                provider_specific_fields: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Unknown;
    impl std::fmt::Display for Unknown {
        f_display!("unknown thing");
    }
    impl std::error::Error for Unknown {}
    impl ErrorClass for Unknown {
        fn kind(&self) -> ErrorKind {
            ErrorKind::BadRequest
        }
        fn param(&self) -> Option<&str> {
            Some("model")
        }
    }

    macro_rules! f_display {
        ($text:literal) => {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($text)
            }
        };
    }
    use f_display;

    #[test]
    fn body_has_litellm_shape_with_code_as_string() {
        let body = serde_json::to_value(Unknown.to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "message": "unknown thing", "type": "invalid_request_error",
                "param": "model", "code": "400"
            }})
        );
    }

    #[derive(Debug)]
    struct Refused(ProviderSpecificFields);
    impl std::fmt::Display for Refused {
        f_display!("refused");
    }
    impl std::error::Error for Refused {}
    impl ErrorClass for Refused {
        fn kind(&self) -> ErrorKind {
            ErrorKind::ContentPolicy
        }
        fn provider_specific_fields(&self) -> Option<&ProviderSpecificFields> {
            Some(&self.0)
        }
    }

    #[test]
    fn provider_specific_fields_sit_inside_the_error_object_when_present() {
        let details = serde_json::json!({"innererror": {"code": "ResponsibleAIPolicyViolation"}});
        let details = details.as_object().unwrap().clone();
        let body = serde_json::to_value(Refused(details).to_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "message": "refused", "type": "invalid_request_error", "param": null,
                "code": "400",
                "provider_specific_fields": {"innererror": {"code": "ResponsibleAIPolicyViolation"}}
            }})
        );
        let plain = serde_json::to_value(Unknown.to_body()).unwrap();
        assert!(plain["error"].get("provider_specific_fields").is_none());
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        assert!(ErrorKind::RateLimited.is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
        assert!(!ErrorKind::BadRequest.is_retryable());
        assert!(!ErrorKind::ContextWindowExceeded.is_retryable());
    }
}
