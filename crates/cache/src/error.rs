//! The crate's errors: bad configuration (startup) and bad per-request controls (400).
//!
//! Runtime cache failures (Redis down, a corrupt entry) are deliberately *not* errors here: they
//! degrade to a miss, so a request never fails because of the cache.

use switchyard_llm_types::{ErrorClass, ErrorKind};

/// A `cache_params` problem found while building the cache at startup.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A `litellm_settings.cache` / `cache_params` value is malformed.
    #[error("invalid litellm_settings.{field}: {message}")]
    InvalidSetting { field: String, message: String },
    /// A cache type LiteLLM knows but Switchyard does not implement yet.
    #[error("litellm_settings.cache_params.type {kind:?} is not supported yet")]
    UnsupportedType { kind: String },
    /// The Redis client could not be built from the given settings.
    #[error("redis cache configuration: {0}")]
    Redis(String),
    /// A response could not be (de)serialised for the cache.
    #[error("cache serialisation: {0}")]
    Serde(#[from] serde_json::Error),
    /// An admin operation (`/cache/ping`, `/cache/delete`, `/cache/flushall`) could not reach Redis.
    #[error("redis cache unavailable: {0}")]
    Unavailable(String),
    /// An embedding merge was handed a response that does not match the split it came from.
    #[error("embedding cache merge: {0}")]
    Merge(String),
}

impl CacheError {
    pub(crate) fn setting(field: impl Into<String>, message: impl Into<String>) -> Self {
        CacheError::InvalidSetting {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl ErrorClass for CacheError {
    fn kind(&self) -> ErrorKind {
        match self {
            CacheError::Unavailable(_) => ErrorKind::Unavailable,
            CacheError::InvalidSetting { .. }
            | CacheError::UnsupportedType { .. }
            | CacheError::Redis(_)
            | CacheError::Serde(_)
            | CacheError::Merge(_) => ErrorKind::Internal,
        }
    }
}

/// A malformed per-request cache control (`cache` body object or header): a 400 naming the
/// parameter, e.g. `cache.ttl`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value for {param}: {message}")]
pub struct ControlsError {
    pub param: String,
    pub message: String,
}

impl ControlsError {
    pub(crate) fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

impl ErrorClass for ControlsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }

    fn param(&self) -> Option<&str> {
        Some(&self.param)
    }
}
