//! The one place errors become HTTP responses: `{"error": {message, type, param, code}}`.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use switchyard_llm_types::{ErrorBody, ErrorClass, ErrorKind};

/// An error on its way to the client, carrying everything the response needs.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for `Retry-After`; `u32` (136 years) keeps every `Result<_, ApiError>` small.
    retry_after: Option<u32>,
}

impl ApiError {
    /// Renders any classified error (engine, provider, router, auth, extraction).
    pub fn from_class(error: &dyn ErrorClass) -> Self {
        let body = error.to_body();
        Self {
            status: StatusCode::from_u16(error.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
            retry_after: error
                .retry_after_secs()
                .map(|secs| u32::try_from(secs).unwrap_or(u32::MAX)),
        }
    }

    /// An error the HTTP layer itself raises.
    pub fn new(kind: ErrorKind, message: impl Into<String>, param: Option<&str>) -> Self {
        let status = kind.status();
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ErrorBody::new(
                message,
                Some(kind.openai_type().to_owned()),
                param.map(str::to_owned),
                status,
            ),
            retry_after: None,
        }
    }

    /// An error with one of LiteLLM's specific `type` strings (`expired_key`,
    /// `key_model_access_denied`, ...) instead of the kind's generic one.
    pub fn typed(
        kind: ErrorKind,
        error_type: &str,
        message: impl Into<String>,
        param: Option<&str>,
    ) -> Self {
        let mut error = Self::new(kind, message, param);
        error.body.error.kind = Some(error_type.to_owned());
        error
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// The body as one SSE `data:` payload, for errors after a stream started.
    pub fn to_json_bytes(&self) -> Bytes {
        // Serializing plain strings cannot fail; fall back to a fixed body regardless.
        serde_json::to_vec(&self.body)
            .map(Bytes::from)
            .unwrap_or_else(|_| Bytes::from_static(br#"{"error":{"message":"internal error","type":"internal_server_error","param":null,"code":"500"}}"#))
    }
}

impl<E: ErrorClass> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self::from_class(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_json_bytes();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
