//! Calls relayed to the upstream's endpoint of the same name, body unchanged but for the
//! model: the OpenAI Responses API (`/responses`, `/responses/{id}`), `/moderations`,
//! `/images/generations` and `/audio/speech`.
//!
//! The gateway adds what it adds to every call (routing to a deployment, the deployment's key
//! and upstream model name, retries and fallbacks until the upstream answers) and relays the
//! answer as it came: JSON, binary audio, or an SSE stream, byte for byte.

use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderValue, Method};
use serde_json::{Map, Value};

use crate::ProviderError;

/// An endpoint the gateway relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassthroughOperation {
    /// `POST /responses`.
    CreateResponse,
    /// `GET` or `DELETE /responses/{id}`, and `GET /responses/{id}/input_items`.
    Response,
    Moderations,
    ImageGenerations,
    AudioSpeech,
}

impl PassthroughOperation {
    /// The endpoint as the client named it (for errors and logs).
    pub fn endpoint(self) -> &'static str {
        match self {
            PassthroughOperation::CreateResponse | PassthroughOperation::Response => "/responses",
            PassthroughOperation::Moderations => "/moderations",
            PassthroughOperation::ImageGenerations => "/images/generations",
            PassthroughOperation::AudioSpeech => "/audio/speech",
        }
    }
}

/// One relayed call.
#[derive(Debug, Clone)]
pub struct PassthroughRequest {
    pub operation: PassthroughOperation,
    pub method: Method,
    /// The path after the API root, without a leading `/` (`responses/resp_1`).
    pub path: String,
    /// The model group the call is routed by (the body's `model`, or named by the client for
    /// calls without a body).
    pub model: String,
    /// The JSON body, if the call has one; its `model` becomes the upstream model.
    pub body: Option<Map<String, Value>>,
    /// Whether the answer is an event stream (`"stream": true`).
    pub stream: bool,
}

impl PassthroughRequest {
    /// Routes the call to `model` (the deployment's upstream model name).
    pub fn set_model(&mut self, model: String) {
        if let Some(body) = self.body.as_mut() {
            body.insert("model".into(), Value::String(model.clone()));
        }
        self.model = model;
    }
}

/// What the upstream answered, relayed as it is.
pub struct PassthroughResponse {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub body: PassthroughBody,
}

impl std::fmt::Debug for PassthroughResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassthroughResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

pub enum PassthroughBody {
    Full(Bytes),
    /// An event stream, relayed chunk by chunk; dropping it cancels the upstream call.
    Stream(BoxStream<'static, Result<Bytes, ProviderError>>),
}
