//! `/cache/ping`, `/cache/delete` and `/cache/flushall`, as LiteLLM serves them.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_cache::ResponseCache;
use switchyard_llm_types::ErrorKind;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::admin::AdminCaller;
use crate::state::Gateway;

fn cache(gateway: &Gateway) -> Result<&ResponseCache, ApiError> {
    gateway.engine().cache().ok_or_else(|| {
        ApiError::new(
            ErrorKind::BadRequest,
            "Cache not initialized: set litellm_settings.cache: true in the config",
            None,
        )
    })
}

/// Any authenticated caller may check that the cache answers.
pub async fn ping(
    State(gateway): State<Gateway>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let report = cache(&gateway)?.ping().await?;
    Ok(Json(json!({
        "status": "healthy",
        "cache_type": report.cache_type,
        "ping_response": true,
        "redis_latency_ms": report.redis_latency.map(|latency| latency.as_secs_f64() * 1000.0),
    })))
}

#[derive(Debug, Deserialize)]
pub struct DeleteRequest {
    /// Keys as sent in `x-litellm-cache-key`.
    keys: Vec<String>,
}

pub async fn delete(
    State(gateway): State<Gateway>,
    _admin: AdminCaller,
    JsonBody(request): JsonBody<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    let deleted = cache(&gateway)?.delete(&request.keys).await?;
    Ok(Json(json!({"status": "success", "deleted": deleted})))
}

/// Removes every entry of this gateway's cache (its namespace only, never the whole Redis).
pub async fn flush_all(
    State(gateway): State<Gateway>,
    _admin: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let removed = cache(&gateway)?.flush(None).await?;
    Ok(Json(json!({"status": "success", "deleted": removed})))
}
