//! Successful responses: the JSON (or SSE) body and LiteLLM's `x-litellm-*` headers.

use std::time::Instant;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use switchyard::CallMeta;
use switchyard_llm_types::ErrorKind;

use crate::error::ApiError;

const CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const MODEL_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
const VERSION: HeaderName = HeaderName::from_static("x-litellm-version");
const RESPONSE_DURATION: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
const OVERHEAD_DURATION: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const MAX_RETRIES: HeaderName = HeaderName::from_static("x-litellm-max-retries");
const CACHE_KEY: HeaderName = HeaderName::from_static("x-litellm-cache-key");
const SEMANTIC_SIMILARITY: HeaderName = HeaderName::from_static("x-litellm-semantic-similarity");
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");

/// A new call id (also the future spend-log `request_id`).
pub fn new_call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A JSON body with the call's headers.
pub fn json<T: Serialize>(body: &T, meta: &CallMeta, call_id: &str, started: Instant) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            call_headers(headers, meta, call_id, started);
            response
        }
        Err(error) => error_response(
            ApiError::new(
                ErrorKind::Internal,
                format!("cannot encode the response: {error}"),
                None,
            ),
            call_id,
        ),
    }
}

/// A body relayed as the upstream sent it (status, content type, bytes), with the call's
/// headers.
pub fn relayed(
    status: StatusCode,
    content_type: HeaderValue,
    body: Body,
    meta: &CallMeta,
    call_id: &str,
    started: Instant,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    call_headers(headers, meta, call_id, started);
    response
}

/// A server-sent-event stream with the call's headers; the body relays chunks as they come.
pub fn event_stream(body: Body, meta: &CallMeta, call_id: &str, started: Instant) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    call_headers(headers, meta, call_id, started);
    response
}

/// The engine's answer for a JSON call: the body, or the error.
pub fn json_outcome<T: Serialize>(
    outcome: Result<switchyard::Response<T>, switchyard::Error>,
    call_id: &str,
    started: Instant,
) -> Response {
    match outcome {
        Ok(response) => json(&response.body, &response.meta, call_id, started),
        Err(error) => error_response(error.into(), call_id),
    }
}

/// The engine's answer for a streamed call: the event stream, or the error (before any byte
/// was sent, so it is a plain JSON error with its status).
pub fn stream_outcome(
    outcome: Result<switchyard::Response<switchyard::providers::ChunkStream>, switchyard::Error>,
    call_id: &str,
    started: Instant,
) -> Response {
    match outcome {
        Ok(response) => event_stream(
            crate::sse::body(response.body),
            &response.meta,
            call_id,
            started,
        ),
        Err(error) => error_response(error.into(), call_id),
    }
}

/// An error response that still carries the call id, so clients can quote it.
pub fn error_response(error: ApiError, call_id: &str) -> Response {
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_str(call_id) {
        response.headers_mut().insert(CALL_ID, value);
    }
    response
}

fn call_headers(headers: &mut HeaderMap, meta: &CallMeta, call_id: &str, started: Instant) {
    let total = started.elapsed();
    let overhead = total.saturating_sub(meta.upstream_duration);
    // As in LiteLLM, a header whose value would be empty (no deployment on a cache hit) is
    // left out.
    let mut put = |name: HeaderName, value: &str| {
        if value.is_empty() {
            return;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(CALL_ID, call_id);
    put(MODEL_ID, &meta.deployment_id);
    put(MODEL_GROUP, &meta.model_group);
    if let Some(base) = &meta.api_base {
        put(MODEL_API_BASE, base);
    }
    put(VERSION, switchyard::VERSION);
    put(
        RESPONSE_DURATION,
        &format!("{:.3}", total.as_secs_f64() * 1000.0),
    );
    put(
        OVERHEAD_DURATION,
        &format!("{:.3}", overhead.as_secs_f64() * 1000.0),
    );
    if let Some(key) = &meta.cache_key {
        put(CACHE_KEY, key);
    }
    if let Some(similarity) = meta.semantic_similarity {
        put(SEMANTIC_SIMILARITY, &format!("{similarity:.4}"));
    }
    if let Some(cost) = meta.response_cost {
        put(RESPONSE_COST, &cost.to_string());
    }
    headers.insert(ATTEMPTED_RETRIES, HeaderValue::from(meta.attempted_retries));
    headers.insert(
        ATTEMPTED_FALLBACKS,
        HeaderValue::from(meta.attempted_fallbacks),
    );
    headers.insert(MAX_RETRIES, HeaderValue::from(meta.max_retries));
    for (name, value) in &meta.provider_headers {
        let prefixed = format!("llm_provider-{}", name.as_str());
        if let Ok(name) = HeaderName::from_bytes(prefixed.as_bytes()) {
            headers.append(name, value.clone());
        }
    }
}
