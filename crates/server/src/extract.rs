//! Reading request bodies: within the size limit, as JSON, with OpenAI-style errors.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use serde::de::DeserializeOwned;
use switchyard_llm_types::ErrorKind;

use crate::error::ApiError;
use crate::state::Gateway;

/// A JSON body parsed into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Gateway> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, gateway: &Gateway) -> Result<Self, Self::Rejection> {
        let limit = gateway.options().max_body_bytes;
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(too_large(limit));
        }
        let bytes = read_limited(body, limit).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let is_limit = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large(limit)
        } else {
            ApiError::new(
                ErrorKind::BadRequest,
                format!("Invalid request format: could not read the request body: {error}"),
                None,
            )
        }
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "Request size is too large. Max size is {:.1} MB",
            limit as f64 / (1024.0 * 1024.0)
        ),
        None,
    )
}

/// Parses JSON; on failure, parses again tracking the path, so the error names the field.
///
/// The fast path pays nothing for error reporting; only a bad request pays for the second pass.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(error) => {
            // Only a type or shape error has a meaningful path; a syntax error's is `?`.
            let path = (error.classify() == serde_json::error::Category::Data)
                .then(|| {
                    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
                    serde_path_to_error::deserialize::<_, T>(&mut deserializer)
                        .err()
                        .map(|tracked| tracked.path().to_string())
                })
                .flatten()
                .filter(|path| path != "." && path != "?");
            let param = match (&path, error.classify()) {
                (Some(path), _) => Some(path.clone()),
                (None, serde_json::error::Category::Data) => missing_field(&error.to_string()),
                _ => None,
            };
            let message = match error.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!("Invalid request format: malformed JSON body: {error}")
                }
                _ => match &path {
                    Some(path) => format!("Invalid request format: {path}: {error}"),
                    None => format!("Invalid request format: {error}"),
                },
            };
            Err(ApiError::new(
                ErrorKind::BadRequest,
                message,
                param.as_deref(),
            ))
        }
    }
}

/// `missing field `messages`` → `messages`.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::ChatCompletionRequest;

    #[test]
    fn errors_name_the_field_at_fault() {
        let missing = parse_json::<ChatCompletionRequest>(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(missing.body().error.param.as_deref(), Some("messages"));
        let wrong_type = parse_json::<ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            wrong_type.body().error.param.as_deref(),
            Some("messages[0].role")
        );
        let malformed = parse_json::<ChatCompletionRequest>(b"{not json").unwrap_err();
        assert!(malformed
            .body()
            .error
            .message
            .starts_with("Invalid request format: malformed JSON"));
        assert_eq!(malformed.status(), 400);
        assert_eq!(malformed.body().error.param, None);
    }
}
