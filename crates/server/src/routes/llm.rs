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

use crate::admission::{Admitted, CallShape};
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
    if let Err(error) = caller.check_model(&request.model) {
        return error_response(error, &new_call_id());
    }
    serve_chat(&gateway, &caller, request, &options).await
}

pub async fn completion(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(request): JsonBody<CompletionRequest>,
) -> Response {
    if let Err(error) = caller.check_model(&request.model) {
        return error_response(error, &new_call_id());
    }
    serve_completion(&gateway, &caller, request, &options).await
}

pub async fn embeddings(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(request): JsonBody<EmbeddingRequest>,
) -> Response {
    if let Err(error) = caller.check_model(&request.model) {
        return error_response(error, &new_call_id());
    }
    serve_embeddings(&gateway, &caller, request, &options).await
}

pub async fn chat_for_path_model(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(model): Path<String>,
    HeaderOptions(options): HeaderOptions,
    JsonBody(body): JsonBody<Value>,
) -> Response {
    match path_request::<ChatCompletionRequest>(&caller, body, model) {
        Ok(request) => serve_chat(&gateway, &caller, request, &options).await,
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
        Ok(request) => serve_completion(&gateway, &caller, request, &options).await,
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
        Ok(request) => serve_embeddings(&gateway, &caller, request, &options).await,
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
    caller.check_model(&model)?;
    with_model(body, model)
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

/// Admission for one call: the guard, or the refusal response.
async fn admit(
    gateway: &Gateway,
    caller: &Caller,
    call: &CallShape<'_>,
    call_id: &str,
) -> Result<Admitted, Response> {
    gateway
        .admission()
        .admit(caller, call, gateway.engine())
        .await
        .map_err(|mut refusal| {
            if let Ok(value) = http::HeaderValue::from_str(call_id) {
                refusal
                    .headers_mut()
                    .insert(http::HeaderName::from_static("x-litellm-call-id"), value);
            }
            refusal
        })
}

async fn serve_chat(
    gateway: &Gateway,
    caller: &Caller,
    request: ChatCompletionRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let admitted = match admit(gateway, caller, &CallShape::chat(&request), &call_id).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let engine = gateway.engine();
    if request.is_stream() {
        stream_response(
            engine.chat_stream(request, options).await,
            admitted,
            &call_id,
            started,
        )
    } else {
        let outcome = engine.chat(request, options).await;
        json_response(outcome, admitted, &call_id, started).await
    }
}

async fn serve_completion(
    gateway: &Gateway,
    caller: &Caller,
    request: CompletionRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let admitted = match admit(gateway, caller, &CallShape::completion(&request), &call_id).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let engine = gateway.engine();
    if request.is_stream() {
        stream_response(
            engine.completion_stream(request, options).await,
            admitted,
            &call_id,
            started,
        )
    } else {
        let outcome = engine.completion(request, options).await;
        json_response(outcome, admitted, &call_id, started).await
    }
}

async fn serve_embeddings(
    gateway: &Gateway,
    caller: &Caller,
    request: EmbeddingRequest,
    options: &RequestOptions,
) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let admitted = match admit(gateway, caller, &CallShape::embeddings(&request), &call_id).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let outcome = gateway.engine().embeddings(request, options).await;
    json_response(outcome, admitted, &call_id, started).await
}

/// A JSON answer: settled with its real cost now, rate-limit headers added.
async fn json_response<T: serde::Serialize + crate::admission::ReportsUsage>(
    outcome: Result<switchyard::Response<T>, switchyard::Error>,
    admitted: Admitted,
    call_id: &str,
    started: Instant,
) -> Response {
    let mut headers = http::HeaderMap::new();
    admitted.add_headers(&mut headers);
    admitted.settle_json(&outcome).await;
    let mut response = respond::json_outcome(outcome, call_id, started);
    response.headers_mut().extend(headers);
    response
}

/// A streamed answer: the guard travels inside the body and settles when it ends.
fn stream_response(
    outcome: Result<switchyard::Response<switchyard::providers::ChunkStream>, switchyard::Error>,
    admitted: Admitted,
    call_id: &str,
    started: Instant,
) -> Response {
    let mut headers = http::HeaderMap::new();
    admitted.add_headers(&mut headers);
    let outcome = outcome.map(|mut response| {
        let body = std::mem::replace(&mut response.body, Box::pin(futures::stream::empty()));
        response.body = admitted.guard_stream(body, &response.meta);
        response
    });
    let mut response = respond::stream_outcome(outcome, call_id, started);
    response.headers_mut().extend(headers);
    response
}
