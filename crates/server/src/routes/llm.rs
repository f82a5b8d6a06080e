//! The LLM calls: parse, hand to the engine, respond (JSON or SSE).

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard::RequestOptions;
use switchyard_llm_types::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ErrorKind};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{parse_json, JsonBody};
use crate::respond::{self, error_response, new_call_id};
use crate::state::Gateway;

/// Per-request overrides sent as headers (`x-litellm-timeout`, `x-litellm-stream-timeout`).
#[derive(Debug)]
pub struct HeaderOptions(pub RequestOptions);

impl FromRequestParts<Gateway> for HeaderOptions {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _gateway: &Gateway,
    ) -> Result<Self, Self::Rejection> {
        let seconds = |name: &str| -> Result<Option<Duration>, ApiError> {
            let Some(value) = parts.headers.get(name) else {
                return Ok(None);
            };
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<f64>().ok())
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .map(|secs| Some(Duration::from_secs_f64(secs)))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::BadRequest,
                        format!("header {name} must be a positive number of seconds"),
                        Some(name),
                    )
                })
        };
        let num_retries = match parts.headers.get("x-litellm-num-retries") {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorKind::BadRequest,
                            "header x-litellm-num-retries must be a whole number",
                            Some("x-litellm-num-retries"),
                        )
                    })?,
            ),
        };
        let cache_control = parts
            .headers
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        Ok(HeaderOptions(RequestOptions {
            timeout: seconds("x-litellm-timeout")?,
            stream_timeout: seconds("x-litellm-stream-timeout")?,
            num_retries,
            cache_control,
            ..RequestOptions::default()
        }))
    }
}

pub async fn chat(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(request): JsonBody<ChatCompletionRequest>,
) -> Response {
    if let Err(error) = admit(&caller, &request.model, request.extra.get("cache")) {
        return error_response(error, &new_call_id());
    }
    serve_chat(&gateway, request, &options).await
}

pub async fn completion(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(request): JsonBody<CompletionRequest>,
) -> Response {
    if let Err(error) = admit(&caller, &request.model, request.extra.get("cache")) {
        return error_response(error, &new_call_id());
    }
    serve_completion(&gateway, request, &options).await
}

pub async fn embeddings(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Response {
    if let Err(error) = admit(&caller, &request.model, request.extra.get("cache")) {
        return error_response(error, &new_call_id());
    }
    serve_embeddings(&gateway, request, &options).await
}

pub async fn chat_for_path_model(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(model): Path<String>,
    HeaderOptions(options): HeaderOptions,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match path_request::<ChatCompletionRequest>(&caller, body, model) {
        Ok(request) => serve_chat(&gateway, request, &options).await,
        Err(error) => error_response(error, &new_call_id()),
    }
}

pub async fn completion_for_path_model(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(model): Path<String>,
    HeaderOptions(options): HeaderOptions,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match path_request::<CompletionRequest>(&caller, body, model) {
        Ok(request) => serve_completion(&gateway, request, &options).await,
        Err(error) => error_response(error, &new_call_id()),
    }
}

pub async fn embeddings_for_path_model(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(model): Path<String>,
    HeaderOptions(options): HeaderOptions,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match path_request::<EmbeddingRequest>(&caller, body, model) {
        Ok(request) => serve_embeddings(&gateway, request, &options).await,
        Err(error) => error_response(error, &new_call_id()),
    }
}

/// A request on a route that names the model in its path, checked against the caller's
/// allowed models.
fn path_request<T: DeserializeOwned>(
    caller: &Caller,
    body: Value,
    model: String,
) -> Result<T, ApiError> {
    admit(caller, &model, body.get("cache"))?;
    with_model(body, model)
}

/// The caller's access checks for an LLM call: the model, then the `cache` controls.
fn admit(caller: &Caller, model: &str, cache: Option<&Value>) -> Result<(), ApiError> {
    caller.check_model(model)?;
    caller.check_cache_controls(cache)
}

/// Azure-style routes name the model (deployment) in the path; it wins over the body's.
fn with_model<T: DeserializeOwned>(mut body: Value, model: String) -> Result<T, ApiError> {
    let Value::Object(map) = &mut body else {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "Invalid request format: the body must be a JSON object",
            None,
        ));
    };
    map.insert("model".to_owned(), Value::String(model));
    let bytes = serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|error| {
            ApiError::new(
                ErrorKind::Internal,
                format!("cannot re-encode the body: {error}"),
                None,
            )
        })?;
    parse_json(&bytes)
}

async fn serve_chat(
    gateway: &Gateway,
    request: ChatCompletionRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let engine = gateway.engine();
    if request.is_stream() {
        respond::stream_outcome(
            engine.chat_stream(request, options).await,
            &call_id,
            started,
        )
    } else {
        respond::json_outcome(engine.chat(request, options).await, &call_id, started)
    }
}

async fn serve_completion(
    gateway: &Gateway,
    request: CompletionRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let engine = gateway.engine();
    if request.is_stream() {
        respond::stream_outcome(
            engine.completion_stream(request, options).await,
            &call_id,
            started,
        )
    } else {
        respond::json_outcome(engine.completion(request, options).await, &call_id, started)
    }
}

async fn serve_embeddings(
    gateway: &Gateway,
    request: EmbeddingRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let outcome = gateway.engine().embeddings(request, options).await;
    respond::json_outcome(outcome, &call_id, started)
}
