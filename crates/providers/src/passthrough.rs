//! Calls relayed to the upstream's endpoint of the same name, body unchanged but for the
//! model: the OpenAI Responses API (`/responses`, `/responses/{id}`), `/moderations`,
//! `/images/generations`, `/audio/speech` and `/audio/transcriptions` (a multipart upload,
//! whose `model` field is rewritten in place).
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
    AudioTranscriptions,
}

impl PassthroughOperation {
    /// The endpoint as the client named it (for errors and logs).
    pub fn endpoint(self) -> &'static str {
        match self {
            PassthroughOperation::CreateResponse | PassthroughOperation::Response => "/responses",
            PassthroughOperation::Moderations => "/moderations",
            PassthroughOperation::ImageGenerations => "/images/generations",
            PassthroughOperation::AudioSpeech => "/audio/speech",
            PassthroughOperation::AudioTranscriptions => "/audio/transcriptions",
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
    /// A multipart body instead (uploads); its `model` field becomes the upstream model.
    pub multipart: Option<MultipartBody>,
    /// Whether the answer is an event stream (`"stream": true`).
    pub stream: bool,
}

impl PassthroughRequest {
    /// Routes the call to `model` (the deployment's upstream model name).
    pub fn set_model(&mut self, model: String) {
        if let Some(body) = self.body.as_mut() {
            body.insert("model".into(), Value::String(model.clone()));
        }
        if let Some(multipart) = self.multipart.as_mut() {
            multipart.set_field("model", Bytes::from(model.clone().into_bytes()));
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

/// A `multipart/form-data` body split into its parts, so one field can be replaced and the
/// rest sent on byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartBody {
    boundary: String,
    parts: Vec<MultipartPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MultipartPart {
    /// The part's header lines as received (without the blank line that ends them).
    headers: Bytes,
    /// The `name` of its `Content-Disposition`.
    name: String,
    data: Bytes,
}

impl MultipartBody {
    /// Splits `body` by the boundary named in `content_type`.
    pub fn parse(content_type: &str, body: &Bytes) -> Result<Self, String> {
        let boundary = content_type
            .split(';')
            .map(str::trim)
            .find_map(|param| param.strip_prefix("boundary="))
            .map(|boundary| boundary.trim_matches('"').to_owned())
            .filter(|boundary| !boundary.is_empty())
            .ok_or("a multipart/form-data body needs a boundary in its Content-Type")?;
        let delimiter = format!("--{boundary}");
        let next_part = format!("\r\n--{boundary}");
        let find = |haystack: &[u8], needle: &[u8], from: usize| {
            memchr::memmem::find(&haystack[from..], needle).map(|at| at + from)
        };
        let mut at = find(body, delimiter.as_bytes(), 0)
            .ok_or("the body has no multipart boundary")?
            + delimiter.len();
        let mut parts = Vec::new();
        loop {
            if body[at..].starts_with(b"--") {
                return Ok(Self { boundary, parts });
            }
            if !body[at..].starts_with(b"\r\n") {
                return Err(
                    "malformed multipart body: a boundary is not followed by a line break"
                        .to_owned(),
                );
            }
            at += 2;
            let headers_end = find(body, b"\r\n\r\n", at)
                .ok_or("malformed multipart body: part headers never end")?;
            let headers = body.slice(at..headers_end);
            let data_start = headers_end + 4;
            let data_end = find(body, next_part.as_bytes(), data_start)
                .ok_or("malformed multipart body: the closing boundary is missing")?;
            let name =
                part_name(&headers).ok_or("a multipart part has no Content-Disposition name")?;
            parts.push(MultipartPart {
                headers,
                name,
                data: body.slice(data_start..data_end),
            });
            at = data_end + next_part.len();
        }
    }

    /// The value of a plain (non-file) field.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.parts
            .iter()
            .find(|part| part.name == name)
            .map(|part| part.data.as_ref())
    }

    fn set_field(&mut self, name: &str, value: Bytes) {
        if let Some(part) = self.parts.iter_mut().find(|part| part.name == name) {
            part.data = value;
        }
    }

    /// `multipart/form-data; boundary=...` for the encoded body.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body with its (possibly replaced) parts.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .parts
            .iter()
            .map(|part| part.headers.len() + part.data.len() + self.boundary.len() + 10)
            .sum();
        let mut out = Vec::with_capacity(size + self.boundary.len() + 6);
        for part in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&part.headers);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&part.data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        out
    }
}

/// `name="..."` from a part's `Content-Disposition` header.
fn part_name(headers: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(headers).ok()?;
    let disposition = text.split("\r\n").find(|line| {
        line.to_ascii_lowercase()
            .starts_with("content-disposition:")
    })?;
    disposition.split(';').map(str::trim).find_map(|param| {
        param
            .strip_prefix("name=")
            .map(|name| name.trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x01\r\n--Xy\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XyZ--\r\n";

    #[test]
    fn parts_are_split_and_the_model_replaced_in_place() {
        let body = Bytes::from_static(BODY);
        let mut multipart =
            MultipartBody::parse("multipart/form-data; boundary=\"XyZ\"", &body).unwrap();
        assert_eq!(multipart.field("model"), Some(&b"whisper"[..]));
        // Binary data that contains a look-alike boundary stays intact.
        assert_eq!(multipart.field("file"), Some(&b"RIFF\x00\x01\r\n--Xy"[..]));
        assert_eq!(multipart.encode(), BODY);
        multipart.set_field("model", Bytes::from_static(b"whisper-1"));
        let encoded = multipart.encode();
        let again = MultipartBody::parse(&multipart.content_type(), &Bytes::from(encoded)).unwrap();
        assert_eq!(again.field("model"), Some(&b"whisper-1"[..]));
        assert_eq!(again.field("file"), multipart.field("file"));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for (content_type, body) in [
            ("multipart/form-data", &b"--a\r\n"[..]),
            ("multipart/form-data; boundary=a", b"no boundary here"),
            (
                "multipart/form-data; boundary=a",
                b"--a\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nvalue",
            ),
            ("multipart/form-data; boundary=a", b"--a\r\nno headers end"),
            ("multipart/form-data; boundary=a", b"--aX"),
            (
                "multipart/form-data; boundary=a",
                b"--a\r\nX-Other: 1\r\n\r\nv\r\n--a--",
            ),
        ] {
            assert!(
                MultipartBody::parse(content_type, &Bytes::copy_from_slice(body)).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
