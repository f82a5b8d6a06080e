//! Probes used by load balancers and Kubernetes manifests written for LiteLLM. Public.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::json;

use crate::state::Gateway;

/// `"I'm alive!"` as LiteLLM answers; 503 while draining so traffic moves elsewhere.
pub async fn liveness(State(gateway): State<Gateway>) -> Response {
    if gateway.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    Json("I'm alive!").into_response()
}

/// Ready when the gateway can serve; `db` reports `Not connected` until a database is in use.
pub async fn readiness(State(gateway): State<Gateway>) -> Response {
    if gateway.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    Json(json!({
        "status": "healthy",
        "db": "Not connected",
        "cache": null,
        "litellm_version": switchyard::VERSION,
        "success_callbacks": [],
    }))
    .into_response()
}

pub async fn root() -> Json<serde_json::Value> {
    Json(json!({
        "name": "Switchyard",
        "version": switchyard::VERSION,
        "docs": "OpenAI-compatible API at /v1; health at /health/readiness",
    }))
}
