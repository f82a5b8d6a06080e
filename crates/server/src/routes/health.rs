//! Probes used by load balancers and Kubernetes manifests written for LiteLLM (public), and
//! `/health`, which checks every deployment upstream (admin only).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::json;

use crate::routes::admin::AdminCaller;
use crate::state::Gateway;

#[derive(Debug, serde::Deserialize)]
pub struct HealthQuery {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    model_id: Option<String>,
}

/// `GET /health`: a cheap real call to each deployment (`?model=` / `?model_id=` restrict it),
/// answered in LiteLLM's shape with healthy and unhealthy endpoints (no credentials).
pub async fn deployments(
    State(gateway): State<Gateway>,
    _admin: AdminCaller,
    Query(query): Query<HealthQuery>,
) -> Json<serde_json::Value> {
    let model = query.model_id.as_deref().or(query.model.as_deref());
    Json(gateway.engine().health_check(model).await.to_json())
}

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
