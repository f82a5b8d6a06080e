//! Helpers shared by the end-to-end tests: standard configs, request bodies, assertions.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::sse::{Frame, SseReader};
use switchyard_tests::{Gateway, MASTER_KEY};

/// The upstream key of the standard config's deployments; must never leak to clients.
pub const UPSTREAM_KEY: &str = "sk-upstream-secret-value-4242";

/// Generous bound for a whole stream in tests (streams here last a few seconds at most).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn mock() -> MockUpstream {
    MockUpstream::start()
        .await
        .expect("start the mock upstream")
}

/// The standard config: three groups on one mock upstream.
///
/// - `gpt-4o` → upstream model `gpt-4o-mini-upstream`, with an upstream key and extra header
/// - `embed` → `text-embedding-3-small`
/// - `instruct` → `gpt-3.5-turbo-instruct` (for `/completions`)
pub fn standard_config(upstream: &MockUpstream) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o-mini-upstream
      api_base: {base}
      api_key: {UPSTREAM_KEY}
      extra_headers:
        X-Team-Header: team-blue
    model_info:
      id: dep-chat-1
  - model_name: embed
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {base}
      api_key: {UPSTREAM_KEY}
    model_info:
      id: dep-embed-1
      mode: embedding
  - model_name: instruct
    litellm_params:
      model: openai/gpt-3.5-turbo-instruct
      api_base: {base}
      api_key: {UPSTREAM_KEY}
    model_info:
      id: dep-instruct-1
      mode: completion
# Each test here sees every upstream answer as it is: retries and cooldowns have their own
# tests (routing.rs), which use their own configs.
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#,
        base = upstream.base_url()
    )
}

/// A mock upstream and a gateway on the standard config.
pub async fn standard() -> (MockUpstream, Gateway) {
    let upstream = mock().await;
    let gateway = Gateway::start(&standard_config(&upstream));
    (upstream, gateway)
}

/// A one-message chat body for `model`.
pub fn chat_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
}

/// A chat body with a `mock_upstream` fault object merged in.
pub fn chat_with_faults(model: &str, faults: Value) -> Value {
    let mut body = chat_body(model);
    body["mock_upstream"] = faults;
    body
}

/// Status, headers and JSON body of a response (panics with the text if it is not JSON).
pub async fn read_json(response: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read the response body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("response ({status}) is not JSON ({error}): {text}"));
    (status, headers, body)
}

/// Sends `request` and returns status, headers, JSON body.
pub async fn send_json(request: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    read_json(request.send().await.expect("send the request")).await
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}; headers: {headers:?}"))
        .to_str()
        .unwrap_or_else(|_| panic!("header {name} is not text"))
}

/// What an OpenAI-style error should look like.
pub struct ExpectedError<'a> {
    pub status: u16,
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub message_prefix: &'a str,
}

/// Asserts the status and the whole `{"error": {message, type, param, code}}` shape.
pub fn assert_error(status: StatusCode, body: &Value, expected: &ExpectedError<'_>) {
    assert_eq!(status.as_u16(), expected.status, "status; body: {body}");
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object in {body}"));
    let object = error.as_object().expect("`error` is an object");
    for key in ["message", "type", "param", "code"] {
        assert!(object.contains_key(key), "`error.{key}` missing in {body}");
    }
    let message = error["message"].as_str().expect("message is a string");
    assert!(
        message.starts_with(expected.message_prefix),
        "message {message:?} should start with {:?}",
        expected.message_prefix
    );
    assert_eq!(error["type"], json!(expected.kind), "type; body: {body}");
    assert_eq!(error["param"], json!(expected.param), "param; body: {body}");
    assert_eq!(
        error["code"],
        json!(expected.status.to_string()),
        "code is the status as a string; body: {body}"
    );
}

/// Starts a streaming request and checks it is an event stream.
pub async fn open_stream(gateway: &Gateway, path: &str, body: &Value) -> SseReader {
    let response = gateway
        .post(path, body)
        .send()
        .await
        .expect("send the stream request");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "stream status; body: {:?}",
        response.text().await.ok()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content-type {content_type:?}"
    );
    SseReader::new(response)
}

/// Reads a whole stream that must end with `[DONE]` and then close.
pub async fn read_stream(mut reader: SseReader) -> Vec<Frame> {
    let (frames, end) = reader.read_to_done(STREAM_TIMEOUT).await;
    assert!(
        end.is_none(),
        "stream ended without [DONE] ({end:?}); frames: {frames:?}"
    );
    reader.assert_ends(Duration::from_secs(5)).await;
    frames
}

/// The JSON chunks of a stream (all frames but `[DONE]`), checking each parses.
pub fn chunks(frames: &[Frame]) -> Vec<Value> {
    frames
        .iter()
        .filter(|frame| !frame.is_done())
        .map(|frame| {
            frame
                .json()
                .unwrap_or_else(|| panic!("frame is not JSON: {:?}", frame.data))
        })
        .collect()
}

/// One request as a [`serve_raw`] mock received it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Header names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

/// An answer of a [`serve_raw_with`] mock: any headers, any bytes.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: body.into(),
        }
    }
}

/// A minimal HTTP/1.1 mock for provider APIs that `switchyard-mock-upstream` does not speak:
/// binds `127.0.0.1:0`, reads each request whole, answers `answer(request)` as
/// `(status, content type, body)` and closes the connection. Returns the base URL.
pub async fn serve_raw<F>(answer: F) -> String
where
    F: Fn(&RawRequest) -> (u16, &'static str, String) + Send + Sync + 'static,
{
    serve_raw_with(move |request: &RawRequest| {
        let (status, content_type, body) = answer(request);
        RawReply::new(status, content_type, body)
    })
    .await
}

/// [`serve_raw`] for answers with headers of their own or binary bodies.
pub async fn serve_raw_with<F>(answer: F) -> String
where
    F: Fn(&RawRequest) -> RawReply + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let header_end = loop {
                    let read = socket.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let method = request_line.next().unwrap_or_default().to_owned();
                let target = request_line.next().unwrap_or_default().to_owned();
                let headers: std::collections::HashMap<String, String> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| {
                        (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                    })
                    .collect();
                let length: usize = headers
                    .get("content-length")
                    .and_then(|length| length.parse().ok())
                    .unwrap_or(0);
                while buffer.len() < header_end + length {
                    let read = socket.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let request = RawRequest {
                    method,
                    target,
                    headers,
                    body: buffer[header_end..header_end + length].to_vec(),
                };
                let reply = answer(&request);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (name, value) in &reply.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await.ok();
                socket.write_all(&reply.body).await.ok();
                socket.shutdown().await.ok();
            });
        }
    });
    base
}

/// Bytes standing in for a PNG image (its signature, then bytes that are not UTF-8; no
/// provider mock decodes it), served by [`serve_images`] at `/cat.png`, and their standard base64.
pub const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe pretend pixels";
pub const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUv/+IHByZXRlbmQgcGl4ZWxz";

/// A web server of images for the remote-image tests: `/cat.png` ([`PNG_BYTES`] as
/// `image/png`), `/cat.bmp` (an image type not every provider takes), `/page` (HTML), 404
/// for anything else. Returns the base URL.
pub async fn serve_images() -> String {
    serve_raw_with(|request: &RawRequest| match request.target.as_str() {
        "/cat.png" => RawReply::new(200, "image/png", PNG_BYTES),
        "/cat.bmp" => RawReply::new(200, "image/bmp", &b"BM pretend bitmap"[..]),
        "/page" => RawReply::new(200, "text/html; charset=utf-8", "<html></html>"),
        _ => RawReply::new(404, "text/plain", "not found"),
    })
    .await
}

/// Asserts that `request` (a chat naming the image at `url`) is refused as the client's to
/// fix: a 400 for `messages` whose message, from `exception` (`BedrockException`), names the
/// URL and says `why`.
pub async fn assert_image_refused(
    gateway: &Gateway,
    request: &Value,
    url: &str,
    why: &str,
    exception: &str,
) {
    let (status, _, reply) = send_json(gateway.post("/v1/chat/completions", request)).await;
    let prefix = format!("litellm.BadRequestError: {exception} - cannot use the image at");
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 400,
            kind: "invalid_request_error",
            param: Some("messages"),
            message_prefix: &prefix,
        },
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(url) && message.contains(why), "{message}");
}
