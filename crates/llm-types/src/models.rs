//! `GET /models`: the list of model names a caller may use.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelObject>,
}

impl ModelList {
    pub fn new(data: Vec<ModelObject>) -> Self {
        Self {
            object: "list".to_owned(),
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelObject {
    pub id: String,
    pub object: String,
    /// LiteLLM reports a fixed timestamp here; clients only display it.
    pub created: u64,
    pub owned_by: String,
}

impl ModelObject {
    /// The fixed `created` value LiteLLM Proxy reports for every model.
    pub const LITELLM_CREATED: u64 = 1_677_610_602;

    pub fn new(id: impl Into<String>, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: "model".to_owned(),
            created: Self::LITELLM_CREATED,
            owned_by: owned_by.into(),
        }
    }
}
