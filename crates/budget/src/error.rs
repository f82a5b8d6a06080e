//! Errors from loading price files and custom pricing parameters.

use switchyard_llm_types::{ErrorClass, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// A model price map file (shipped or loaded at start-up) is not valid.
    #[error("invalid model price map{}: {reason}", origin_suffix(.origin))]
    InvalidPriceMap {
        /// Where the map came from (a file path, "shipped", ...), when known.
        origin: Option<String>,
        reason: String,
    },
    /// A price in a deployment's `litellm_params` / `model_info` is not a non-negative number.
    #[error("invalid custom pricing for {model}: `{field}` {reason}")]
    InvalidCustomPrice {
        model: String,
        field: String,
        reason: String,
    },
}

fn origin_suffix(origin: &Option<String>) -> String {
    origin
        .as_deref()
        .map(|o| format!(" ({o})"))
        .unwrap_or_default()
}

impl ErrorClass for BudgetError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The operator's own start-up file: a gateway configuration fault.
            BudgetError::InvalidPriceMap { .. } => ErrorKind::Internal,
            // Comes from a request (`/model/new`, `/model/update`) or a config entry: the
            // caller can fix it.
            BudgetError::InvalidCustomPrice { .. } => ErrorKind::BadRequest,
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            BudgetError::InvalidCustomPrice { field, .. } => Some(field),
            BudgetError::InvalidPriceMap { .. } => None,
        }
    }
}
