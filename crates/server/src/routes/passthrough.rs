//! Endpoints relayed to OpenAI-compatible deployments as they are: the Responses API
//! (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`,
//! `GET /v1/responses/{id}/input_items`), `/v1/moderations`, `/v1/images/generations` and
//! `/v1/audio/speech`; and `/v1/audio/transcriptions`, a multipart upload whose `model` field
//! is rewritten in place.
//!
//! The body's `model` picks the model group (and is replaced by the deployment's upstream
//! model); the deployment's key is used; retries and fallbacks apply until the upstream
//! answers. The answer is relayed byte for byte: JSON, audio, or an SSE stream
//! (`"stream": true`), but for Responses API ids, which carry the deployment that stored the
//! response (LiteLLM's format). Calls without a body (`GET`/`DELETE /v1/responses/{id}`) go to
//! the deployment their id names; a plain upstream id needs the model group in `?model=`
//! (or the gateway's only model group).

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use http::{Method, StatusCode};
use serde_json::{Map, Value};
use switchyard::providers::passthrough::{
    ManagedResponseId, MultipartBody, PassthroughBody, PassthroughOperation, PassthroughRequest,
};
use switchyard_llm_types::ErrorKind;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::respond::{self, error_response, new_call_id};
use crate::routes::llm::HeaderOptions;
use crate::state::Gateway;

/// The `POST` route of a JSON-body endpoint relayed as `operation` (`/responses`,
/// `/moderations`, `/images/generations`, `/audio/speech`): the upstream path is the
/// endpoint's own.
pub fn json_body_route(operation: PassthroughOperation) -> MethodRouter<Gateway> {
    post(
        move |state: State<Gateway>,
              caller: Caller,
              options: HeaderOptions,
              body: JsonBody<Value>| with_body(state, caller, options, body, operation),
    )
}

/// `POST /v1/audio/transcriptions`: `multipart/form-data` with `file` and `model`.
pub async fn audio_transcriptions(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    request: axum::extract::Request,
) -> Response {
    let call_id = new_call_id();
    let bad = |message: String, param: Option<&str>| {
        error_response(
            ApiError::new(ErrorKind::BadRequest, message, param),
            &call_id,
        )
    };
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !content_type.starts_with("multipart/form-data") {
        return bad(
            "/audio/transcriptions takes a multipart/form-data upload".to_owned(),
            None,
        );
    }
    let limit = gateway.options().max_body_bytes;
    let bytes = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let error = ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("could not read the upload within {limit} bytes: {error}"),
                None,
            );
            return error_response(error, &call_id);
        }
    };
    let multipart = match MultipartBody::parse(&content_type, &bytes) {
        Ok(multipart) => multipart,
        Err(message) => return bad(format!("Invalid request format: {message}"), None),
    };
    let model = match multipart
        .field("model")
        .map(|value| String::from_utf8_lossy(value).trim().to_owned())
        .filter(|model| !model.is_empty())
    {
        Some(model) => model,
        None => {
            return bad(
                "/audio/transcriptions: the `model` field is required to route the call".to_owned(),
                Some("model"),
            )
        }
    };
    if let Err(error) = caller.check_model(&model) {
        return error_response(error, &call_id);
    }
    let request = PassthroughRequest {
        operation: PassthroughOperation::AudioTranscriptions,
        method: Method::POST,
        path: "audio/transcriptions".to_owned(),
        model,
        body: None,
        multipart: Some(multipart),
        stream: false,
    };
    relay(&gateway, request, &options, call_id).await
}

/// `GET` and `DELETE /v1/responses/{id}`.
pub async fn response_by_id(
    state: State<Gateway>,
    caller: Caller,
    method: Method,
    Path(id): Path<String>,
    query: Query<HashMap<String, String>>,
    options: HeaderOptions,
) -> Response {
    without_body(state, caller, method, id, "", query, options).await
}

/// `GET /v1/responses/{id}/input_items`.
pub async fn response_input_items(
    state: State<Gateway>,
    caller: Caller,
    Path(id): Path<String>,
    query: Query<HashMap<String, String>>,
    options: HeaderOptions,
) -> Response {
    without_body(
        state,
        caller,
        Method::GET,
        id,
        "/input_items",
        query,
        options,
    )
    .await
}

async fn with_body(
    State(gateway): State<Gateway>,
    caller: Caller,
    HeaderOptions(options): HeaderOptions,
    JsonBody(body): JsonBody<Value>,
    operation: PassthroughOperation,
) -> Response {
    let call_id = new_call_id();
    let Value::Object(body) = body else {
        let error = ApiError::new(
            ErrorKind::BadRequest,
            "Invalid request format: the body must be a JSON object",
            None,
        );
        return error_response(error, &call_id);
    };
    let model = match body.get("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        _ => {
            let error = ApiError::new(
                ErrorKind::BadRequest,
                format!(
                    "{}: `model` is required to route the call",
                    operation.endpoint()
                ),
                Some("model"),
            );
            return error_response(error, &call_id);
        }
    };
    if let Err(error) = caller.check_model(&model) {
        return error_response(error, &call_id);
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let request = PassthroughRequest {
        operation,
        method: Method::POST,
        path: operation.endpoint().trim_start_matches('/').to_owned(),
        model,
        body: Some(body),
        multipart: None,
        stream,
    };
    relay(&gateway, request, &options, call_id).await
}

/// A call on a stored response: `responses/{id}{suffix}`.
async fn without_body(
    State(gateway): State<Gateway>,
    caller: Caller,
    method: Method,
    id: String,
    suffix: &str,
    Query(query): Query<HashMap<String, String>>,
    HeaderOptions(options): HeaderOptions,
) -> Response {
    let call_id = new_call_id();
    let managed = ManagedResponseId::decode(&id);
    // The deployment named by the id, with its group (what the caller must be allowed).
    let pinned = managed.as_ref().and_then(|managed| {
        let group = gateway.engine().deployment_group(&managed.deployment_id)?;
        Some((group, managed.deployment_id.clone()))
    });
    let (group, route) = match pinned {
        Some((group, deployment)) => (group, deployment),
        None => {
            let group = match query.get("model").filter(|model| !model.is_empty()) {
                Some(model) => model.clone(),
                None => match gateway.engine().model_names(false).as_slice() {
                    [only] => only.clone(),
                    _ => {
                        let error = ApiError::new(
                            ErrorKind::BadRequest,
                            "/responses: name the model group that created the response with ?model=",
                            Some("model"),
                        );
                        return error_response(error, &call_id);
                    }
                },
            };
            (group.clone(), group)
        }
    };
    if let Err(error) = caller.check_model(&group) {
        return error_response(error, &call_id);
    }
    let upstream_id = managed.map_or(id, |managed| managed.response_id);
    // The id becomes a path segment of the upstream URL: nothing in it may leave the segment.
    if upstream_id.is_empty()
        || !upstream_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':'))
        || upstream_id.starts_with('.')
    {
        let error = ApiError::new(
            ErrorKind::BadRequest,
            format!("/responses: {upstream_id:?} is not a valid response id"),
            Some("response_id"),
        );
        return error_response(error, &call_id);
    }
    let request = PassthroughRequest {
        operation: PassthroughOperation::Response,
        method,
        path: format!("responses/{upstream_id}{suffix}"),
        model: route,
        body: None::<Map<String, Value>>,
        multipart: None,
        stream: false,
    };
    relay(&gateway, request, &options, call_id).await
}

async fn relay(
    gateway: &Gateway,
    request: PassthroughRequest,
    options: &switchyard::RequestOptions,
    call_id: String,
) -> Response {
    let started = Instant::now();
    match gateway.engine().passthrough(request, options).await {
        Ok(answer) => {
            let upstream = answer.body;
            let status = StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::OK);
            let content_type = upstream
                .content_type
                .unwrap_or(http::HeaderValue::from_static("application/json"));
            let body = match upstream.body {
                PassthroughBody::Full(bytes) => Body::from(bytes),
                PassthroughBody::Stream(stream) => Body::from_stream(stream),
            };
            respond::relayed(status, content_type, body, &answer.meta, &call_id, started)
        }
        Err(error) => error_response(error.into(), &call_id),
    }
}
