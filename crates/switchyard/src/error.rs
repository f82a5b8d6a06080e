//! The facade's error: whatever stage failed, classified for the HTTP layer.

use switchyard_cache::{CacheError, ControlsError};
use switchyard_config::ConfigError;
use switchyard_llm_types::{ErrorClass, ErrorKind, ProviderSpecificFields};
use switchyard_providers::ProviderError;
use switchyard_router::RouterError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The requested model resolves to nothing; `endpoint` prefixes the message as LiteLLM does.
    #[error("{endpoint}: {source}")]
    Router {
        endpoint: &'static str,
        #[source]
        source: RouterError,
    },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The cache could not be set up from the config.
    #[error(transparent)]
    CacheSetup(#[from] CacheError),
    /// The request's `cache` controls are invalid.
    #[error(transparent)]
    CacheControls(#[from] ControlsError),
    /// The request is well-formed JSON but not a valid call.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
}

impl Error {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
}

impl ErrorClass for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Internal,
            Error::Router { source, .. } => source.kind(),
            Error::Provider(error) => error.kind(),
            Error::InvalidRequest { .. } => ErrorKind::BadRequest,
            Error::CacheSetup(error) => error.kind(),
            Error::CacheControls(error) => error.kind(),
        }
    }

    fn status(&self) -> u16 {
        match self {
            Error::Router { source, .. } => source.status(),
            Error::Provider(error) => error.status(),
            other => other.kind().status(),
        }
    }

    fn error_type(&self) -> &str {
        match self {
            Error::Router { source, .. } => source.error_type(),
            Error::Provider(error) => error.error_type(),
            other => other.kind().openai_type(),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Error::Router { source, .. } => source.param(),
            Error::Provider(error) => error.param(),
            Error::InvalidRequest { param, .. } => param.as_deref(),
            Error::CacheControls(error) => error.param(),
            Error::Config(_) | Error::CacheSetup(_) => None,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::Provider(error) => error.retry_after_secs(),
            Error::Router { source, .. } => source.retry_after_secs(),
            _ => None,
        }
    }

    fn provider_specific_fields(&self) -> Option<&ProviderSpecificFields> {
        match self {
            Error::Provider(error) => error.provider_specific_fields(),
            _ => None,
        }
    }
}
