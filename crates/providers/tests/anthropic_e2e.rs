//! The Anthropic adapter end to end against a tiny local HTTP server that checks what the
//! adapter sends and answers like the Messages API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_llm_types::{ChatCompletionRequest, ErrorClass, ErrorKind};
use switchyard_providers::{
    Anthropic, AnthropicTarget, CallOptions, HttpClient, Provider, ProviderError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

const STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_stream\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20241022\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":30,\"output_tokens\":1,\"cache_read_input_tokens\":10}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// Serves one request per connection and records it.
async fn serve() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let header_end = loop {
                    let read = socket.read(&mut chunk).await.unwrap();
                    assert!(read > 0, "connection closed before the request ended");
                    buffer.extend_from_slice(&chunk[..read]);
                    if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap().to_owned();
                let mut parts = request_line.split(' ');
                let method = parts.next().unwrap().to_owned();
                let path = parts.next().unwrap().to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| {
                        (name.trim().to_ascii_lowercase(), value.trim().to_owned())
                    })
                    .collect();
                let length: usize = headers["content-length"].parse().unwrap();
                while buffer.len() < header_end + length {
                    let read = socket.read(&mut chunk).await.unwrap();
                    assert!(read > 0);
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let body: Value = serde_json::from_slice(&buffer[header_end..]).unwrap();
                let (status, content_type, payload) = respond(&body);
                log.lock().unwrap().push(Received {
                    method,
                    path,
                    headers,
                    body,
                });
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                    payload.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.shutdown().await.ok();
            });
        }
    });
    (format!("http://{address}"), received)
}

fn respond(body: &Value) -> (&'static str, &'static str, String) {
    if body["model"] == "overloaded" {
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        return ("529 Overloaded", "application/json", error.to_string());
    }
    if body["stream"] == true {
        return ("200 OK", "text/event-stream", STREAM.to_owned());
    }
    let message = json!({
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": "Bonjour"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 3,
                  "cache_creation_input_tokens": 5, "cache_read_input_tokens": 7}
    });
    ("200 OK", "application/json", message.to_string())
}

fn provider(base: &str) -> Anthropic {
    let mut extra_headers = BTreeMap::new();
    extra_headers.insert(
        "anthropic-beta".to_owned(),
        "prompt-caching-2024-07-31".to_owned(),
    );
    let target = AnthropicTarget {
        base_url: base.to_owned(),
        api_key: Some("sk-ant-test".to_owned()),
        extra_headers,
        request_defaults: serde_json::Map::new(),
        drop_params: false,
    };
    Anthropic::new(target, HttpClient::new().unwrap()).unwrap()
}

fn request(value: Value) -> ChatCompletionRequest {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn chat_sends_a_messages_request_and_translates_the_answer() {
    let (base, received) = serve().await;
    let provider = provider(&base);
    let answer = provider
        .chat(
            &request(json!({
                "model": "claude-3-5-sonnet-20241022",
                "messages": [
                    {"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": "Hello"}
                ],
                "max_tokens": 64,
                "user": "u-1"
            })),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let seen = received.lock().unwrap()[0].clone();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(seen.headers["x-api-key"], "sk-ant-test");
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen.headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert!(!seen.headers.contains_key("authorization"));
    assert_eq!(
        seen.body,
        json!({
            "model": "claude-3-5-sonnet-20241022",
            "system": "Answer in French.",
            "messages": [{"role": "user", "content": "Hello"}],
            "max_tokens": 64,
            "metadata": {"user_id": "u-1"}
        })
    );
    let body = serde_json::to_value(&answer.body).unwrap();
    assert_eq!(body["id"], "msg_01");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Bonjour"}, "finish_reason": "stop"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 24, "completion_tokens": 3, "total_tokens": 27,
               "prompt_tokens_details": {"cached_tokens": 7},
               "cache_creation_input_tokens": 5, "cache_read_input_tokens": 7})
    );
}

#[tokio::test]
async fn stream_with_a_tool_call_becomes_openai_chunks() {
    let (base, received) = serve().await;
    let provider = provider(&base);
    let upstream = provider
        .chat_stream(
            &request(json!({
                "model": "claude-3-5-sonnet-20241022",
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": "required",
                "stream": true,
                "stream_options": {"include_usage": true}
            })),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let chunks: Vec<Value> = upstream
        .body
        .map(|chunk| serde_json::from_slice(chunk.unwrap().as_bytes()).unwrap())
        .collect()
        .await;
    let seen = received.lock().unwrap()[0].clone();
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        seen.body["tools"],
        json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    );

    assert!(chunks.iter().all(|chunk| chunk["id"] == "msg_stream"
        && chunk["model"] == "claude-3-5-sonnet-20241022"
        && chunk["created"] == chunks[0]["created"]));
    let deltas: Vec<Value> = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"]
                .get(0)
                .map(|choice| choice["delta"].clone())
        })
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"content": "Let me check."}),
            json!({"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            json!({}),
        ]
    );
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 40, "completion_tokens": 42, "total_tokens": 82,
               "prompt_tokens_details": {"cached_tokens": 10}, "cache_read_input_tokens": 10})
    );
    assert_eq!(chunks.len(), 7);
}

#[tokio::test]
async fn upstream_errors_are_classified() {
    let (base, _) = serve().await;
    let provider = provider(&base);
    let error: ProviderError = provider
        .chat(
            &request(
                json!({"model": "overloaded", "messages": [{"role": "user", "content": "x"}]}),
            ),
            &CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamServerError);
    assert_eq!(error.status(), 503);
    assert_eq!(
        error.to_string(),
        "litellm.ServiceUnavailableError: AnthropicException - Overloaded"
    );
}

#[tokio::test]
async fn unsupported_parameters_are_refused_naming_them_before_any_call() {
    // Nothing listens on the discard port: reaching the network would fail differently.
    let provider = provider("http://127.0.0.1:9");
    let body = request(json!({
        "model": "claude-sonnet-4",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7
    }));
    let error = provider
        .chat(&body, &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), 400);
    assert_eq!(error.param(), Some("seed"));
    assert!(
        error.to_string().starts_with(
            "litellm.UnsupportedParamsError: Anthropic does not support parameters: [\"seed\"]"
        ),
        "{error}"
    );
}
