//! Errors of a provider call, classified so the router can act on them (retry, cool down,
//! fall back) and the HTTP layer can render them as LiteLLM does.

use std::time::Duration;

use switchyard_llm_types::{ErrorClass, ErrorKind, ProviderSpecificFields};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The upstream answered with an error status (boxed: errors are the cold path, and a
    /// small `Result` keeps the hot path's moves cheap).
    #[error("{0}")]
    Upstream(Box<UpstreamFailure>),
    /// No answer (or no next stream chunk) within the timeout.
    #[error("litellm.Timeout: {provider}Exception - Request timed out after {} seconds", .after.as_secs_f64())]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    /// The upstream could not be reached or the connection broke.
    #[error("litellm.APIConnectionError: {provider}Exception - {message}")]
    Connection {
        provider: &'static str,
        message: String,
    },
    /// The upstream answered 2xx with a body we cannot read.
    #[error("litellm.APIError: {provider}Exception - invalid response from upstream: {message}")]
    InvalidResponse {
        provider: &'static str,
        message: String,
    },
    /// The request cannot be expressed for this provider.
    #[error("litellm.BadRequestError: {provider}Exception - {message}")]
    BadRequest {
        provider: &'static str,
        message: String,
        param: Option<String>,
    },
    /// The request sets parameters this provider does not accept, and `drop_params` is off.
    #[error("litellm.UnsupportedParamsError: {provider} does not support parameters: {params:?}, for model={model}. To drop these, set `drop_params: true` in litellm_settings (or on the deployment's litellm_params)")]
    UnsupportedParams {
        provider: &'static str,
        model: String,
        params: Vec<String>,
    },
    /// The deployment names a provider family this build does not implement.
    #[error("litellm.BadRequestError: provider '{provider}' (model '{model}') is not supported by this Switchyard build yet")]
    NotImplemented { provider: String, model: String },
}

/// An error status from the upstream, with what it said.
#[derive(Debug)]
pub struct UpstreamFailure {
    pub provider: &'static str,
    /// LiteLLM's exception class name (`RateLimitError`, ...), kept in the message because
    /// clients and alert rules match on it.
    pub class: &'static str,
    pub kind: ErrorKind,
    pub status: u16,
    pub message: String,
    pub error_type: Option<String>,
    pub param: Option<String>,
    pub retry_after: Option<Duration>,
    /// What the upstream said beyond the OpenAI fields (Azure's content-filter verdict),
    /// relayed to the client; `None` for almost every error.
    pub provider_specific_fields: Option<ProviderSpecificFields>,
}

impl std::fmt::Display for UpstreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "litellm.{}: {}Exception - {}",
            self.class, self.provider, self.message
        )
    }
}

impl ProviderError {
    /// Maps an upstream error status and body to the LiteLLM exception class and error kind.
    pub fn from_upstream(
        provider: &'static str,
        status: u16,
        message: String,
        error_type: Option<String>,
        code: Option<String>,
        param: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let lowered = message.to_ascii_lowercase();
        let code = code.unwrap_or_default();
        let (kind, class) = match status {
            400 | 413 | 422
                if code == "context_length_exceeded"
                    || lowered.contains("maximum context length")
                    || lowered.contains("context window")
                    || lowered.contains("too many tokens") =>
            {
                (
                    ErrorKind::ContextWindowExceeded,
                    "ContextWindowExceededError",
                )
            }
            400 if code == "content_policy_violation"
                || code == "content_filter"
                || lowered.contains("content management policy")
                || lowered.contains("content policy") =>
            {
                (ErrorKind::ContentPolicy, "ContentPolicyViolationError")
            }
            401 => (ErrorKind::UpstreamAuthentication, "AuthenticationError"),
            403 => (ErrorKind::PermissionDenied, "PermissionDeniedError"),
            404 => (ErrorKind::NotFound, "NotFoundError"),
            408 => (ErrorKind::Timeout, "Timeout"),
            429 => (ErrorKind::RateLimited, "RateLimitError"),
            503 => (ErrorKind::UpstreamServerError, "ServiceUnavailableError"),
            500..=599 => (ErrorKind::UpstreamServerError, "InternalServerError"),
            422 => (ErrorKind::BadRequest, "UnprocessableEntityError"),
            _ => (ErrorKind::BadRequest, "BadRequestError"),
        };
        ProviderError::Upstream(Box::new(UpstreamFailure {
            provider,
            class,
            kind,
            status,
            message,
            error_type,
            param,
            retry_after,
            provider_specific_fields: None,
        }))
    }

    /// Attaches the upstream's extra details to an upstream error; other errors have no
    /// upstream body, so they are returned as they are.
    #[must_use]
    pub fn with_provider_specific_fields(mut self, fields: Option<ProviderSpecificFields>) -> Self {
        if let ProviderError::Upstream(failure) = &mut self {
            failure.provider_specific_fields = fields;
        }
        self
    }
}

impl ErrorClass for ProviderError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::Upstream(failure) => failure.kind,
            ProviderError::Timeout { .. } => ErrorKind::Timeout,
            ProviderError::Connection { .. } | ProviderError::InvalidResponse { .. } => {
                ErrorKind::UpstreamUnreachable
            }
            ProviderError::BadRequest { .. }
            | ProviderError::NotImplemented { .. }
            | ProviderError::UnsupportedParams { .. } => ErrorKind::BadRequest,
        }
    }

    fn status(&self) -> u16 {
        match self {
            ProviderError::Upstream(failure) if (400..=599).contains(&failure.status) => {
                failure.status
            }
            other => other.kind().status(),
        }
    }

    fn error_type(&self) -> &str {
        match self {
            ProviderError::Upstream(failure)
                if failure.error_type.as_deref().is_some_and(|t| !t.is_empty()) =>
            {
                failure.error_type.as_deref().unwrap_or_default()
            }
            other => other.kind().openai_type(),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            ProviderError::Upstream(failure) => failure.param.as_deref(),
            ProviderError::BadRequest { param, .. } => param.as_deref(),
            ProviderError::NotImplemented { .. } => Some("model"),
            ProviderError::UnsupportedParams { params, .. } => params.first().map(String::as_str),
            _ => None,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ProviderError::Upstream(failure) => {
                failure.retry_after.map(|after| after.as_secs().max(1))
            }
            _ => None,
        }
    }

    fn provider_specific_fields(&self) -> Option<&ProviderSpecificFields> {
        match self {
            ProviderError::Upstream(failure) => failure.provider_specific_fields.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16, message: &str, code: Option<&str>) -> ProviderError {
        ProviderError::from_upstream(
            "OpenAI",
            status,
            message.to_owned(),
            None,
            code.map(str::to_owned),
            None,
            None,
        )
    }

    #[test]
    fn statuses_and_bodies_map_to_litellm_classes() {
        let cases = [
            (
                upstream(429, "slow down", None),
                ErrorKind::RateLimited,
                429,
                "RateLimitError",
            ),
            (
                upstream(
                    400,
                    "This model's maximum context length is 8192 tokens",
                    None,
                ),
                ErrorKind::ContextWindowExceeded,
                400,
                "ContextWindowExceededError",
            ),
            (
                upstream(400, "flagged", Some("content_policy_violation")),
                ErrorKind::ContentPolicy,
                400,
                "ContentPolicyViolationError",
            ),
            (
                upstream(502, "bad gateway", None),
                ErrorKind::UpstreamServerError,
                502,
                "InternalServerError",
            ),
            (
                upstream(401, "bad key", None),
                ErrorKind::UpstreamAuthentication,
                401,
                "AuthenticationError",
            ),
        ];
        for (error, kind, status, class) in cases {
            assert_eq!(error.kind(), kind);
            assert_eq!(error.status(), status);
            assert!(error
                .to_string()
                .starts_with(&format!("litellm.{class}: OpenAIException - ")));
        }
    }

    #[test]
    fn upstream_type_wins_over_the_derived_one() {
        let error = ProviderError::from_upstream(
            "OpenAI",
            429,
            "x".into(),
            Some("insufficient_quota".into()),
            None,
            None,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(error.error_type(), "insufficient_quota");
        assert_eq!(error.retry_after_secs(), Some(7));
    }
}
