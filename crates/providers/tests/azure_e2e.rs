//! The Azure OpenAI adapter end to end against a tiny local HTTP server that checks what the
//! adapter sends (deployment path, `api-version`, `api-key`) and answers like Azure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::{json, Value};
use switchyard_llm_types::{ChatCompletionRequest, EmbeddingRequest, ErrorClass, ErrorKind};
use switchyard_providers::{
    AzureParams, CallOptions, Dialect, HttpClient, OpenAiCompatible, OpenAiCompatibleTarget,
    Provider,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Received {
    method: String,
    /// Path and query, as on the request line.
    target: String,
    headers: HashMap<String, String>,
    body: Value,
}

const STREAM: &str = concat!(
    "data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
    "data: {\"id\":\"chatcmpl-az\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Bon\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-az\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jour\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
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
                let target = parts.next().unwrap().to_owned();
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
                let (status, content_type, payload) = respond(&target, &headers, &body);
                log.lock().unwrap().push(Received {
                    method,
                    target,
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

/// Answers like Azure, and refuses requests whose shape is wrong the way Azure would.
fn respond(
    target: &str,
    headers: &HashMap<String, String>,
    body: &Value,
) -> (&'static str, &'static str, String) {
    let error = |status, code: &str, message: &str| {
        let body = json!({"error": {"code": code, "message": message}});
        (status, "application/json", body.to_string())
    };
    if headers.get("api-key").map(String::as_str) != Some("az-key")
        || headers.contains_key("authorization")
    {
        return error(
            "401 Unauthorized",
            "401",
            "Access denied due to invalid subscription key.",
        );
    }
    let Some((path, query)) = target.split_once('?') else {
        return error("404 Not Found", "404", "Resource not found");
    };
    if query != "api-version=2024-10-21" {
        return error("404 Not Found", "404", "Resource not found");
    }
    if body["messages"][0]["content"] == "something awful" {
        let filtered = json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}
        }});
        return ("400 Bad Request", "application/json", filtered.to_string());
    }
    match path {
        "/openai/deployments/gpt-4o-eu/chat/completions" if body["stream"] == true => {
            ("200 OK", "text/event-stream", STREAM.to_owned())
        }
        "/openai/deployments/gpt-4o-eu/chat/completions" => {
            let filtered_output = body["messages"][0]["content"] == "borderline";
            let answer = json!({
                "id": "chatcmpl-az", "object": "chat.completion", "created": 1700000000,
                "model": "gpt-4o-2024-08-06",
                "choices": [{"index": 0,
                    "message": {"role": "assistant", "content": if filtered_output { Value::Null } else { json!("Bonjour") }},
                    "finish_reason": if filtered_output { "content_filter" } else { "stop" }}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
            });
            ("200 OK", "application/json", answer.to_string())
        }
        "/openai/deployments/gpt-4o-eu/embeddings" => {
            let answer = json!({
                "object": "list", "model": "text-embedding-3-small",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2}
            });
            ("200 OK", "application/json", answer.to_string())
        }
        _ => error(
            "404 Not Found",
            "DeploymentNotFound",
            "The API deployment for this resource does not exist.",
        ),
    }
}

fn provider(base: &str) -> OpenAiCompatible {
    let base = format!("{base}/");
    let target = OpenAiCompatibleTarget::azure(
        Dialect::Azure,
        "gpt-4o-eu",
        AzureParams {
            api_base: Some(&base),
            api_key: Some("az-key"),
            api_version: Some("2024-10-21"),
            azure_ad_token: None,
        },
        |_| None,
    )
    .unwrap();
    OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap()
}

fn chat_request(value: Value) -> ChatCompletionRequest {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn chat_goes_to_the_deployment_url_with_the_api_key() {
    let (base, received) = serve().await;
    let provider = provider(&base);
    let sent = json!({
        "model": "gpt-4o-eu",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2,
        "logit_bias": {"50256": -100},
        "data_sources": [{"type": "azure_search"}]
    });
    let answer = provider
        .chat(&chat_request(sent.clone()), &CallOptions::default())
        .await
        .unwrap();
    let seen = received.lock().unwrap()[0].clone();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.target,
        "/openai/deployments/gpt-4o-eu/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen.headers["api-key"], "az-key");
    assert!(!seen.headers.contains_key("authorization"));
    assert_eq!(seen.headers["content-type"], "application/json");
    // The body is the OpenAI body, unknown fields (`data_sources`) included.
    assert_eq!(seen.body, sent);
    let body = serde_json::to_value(&answer.body).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Bonjour");
    assert_eq!(body["usage"]["total_tokens"], 11);
}

#[tokio::test]
async fn a_filtered_completion_passes_through_unchanged() {
    let (base, _received) = serve().await;
    let answer = provider(&base)
        .chat(
            &chat_request(json!({"model": "gpt-4o-eu", "messages": [{"role": "user", "content": "borderline"}]})),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let body = serde_json::to_value(&answer.body).unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
}

#[tokio::test]
async fn streams_are_relayed_chunk_by_chunk() {
    let (base, received) = serve().await;
    let upstream = provider(&base)
        .chat_stream(
            &chat_request(json!({
                "model": "gpt-4o-eu",
                "messages": [{"role": "user", "content": "Hello"}],
                "stream": true
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
    assert_eq!(
        seen.target,
        "/openai/deployments/gpt-4o-eu/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen.body["stream"], true);
    // Azure's opening `prompt_filter_results` chunk (no id, no choices) is not relayed.
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|chunk| chunk["id"] == "chatcmpl-az"));
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour");
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn embeddings_go_to_the_deployment_embeddings_url() {
    let (base, received) = serve().await;
    let request: EmbeddingRequest =
        serde_json::from_value(json!({"model": "gpt-4o-eu", "input": "hi"})).unwrap();
    let answer = provider(&base)
        .embeddings(&request, &CallOptions::default())
        .await
        .unwrap();
    let seen = received.lock().unwrap()[0].clone();
    assert_eq!(
        seen.target,
        "/openai/deployments/gpt-4o-eu/embeddings?api-version=2024-10-21"
    );
    assert_eq!(seen.body, json!({"model": "gpt-4o-eu", "input": "hi"}));
    let body = serde_json::to_value(&answer.body).unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.5, -0.25]));
}

#[tokio::test]
async fn content_filter_errors_are_content_policy_violations() {
    let (base, _received) = serve().await;
    let error = provider(&base)
        .chat(
            &chat_request(json!({"model": "gpt-4o-eu", "messages": [{"role": "user", "content": "something awful"}]})),
            &CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContentPolicy);
    assert_eq!(error.status(), 400);
    assert_eq!(error.param(), Some("prompt"));
    let message = error.to_string();
    assert!(
        message.starts_with("litellm.ContentPolicyViolationError: AzureException - "),
        "{message}"
    );
    assert!(message.contains("content management policy"), "{message}");
}

#[tokio::test]
async fn a_missing_deployment_is_a_not_found_error() {
    let (base, _received) = serve().await;
    let target = OpenAiCompatibleTarget::azure(
        Dialect::Azure,
        "nope",
        AzureParams {
            api_base: Some(&base),
            api_key: Some("az-key"),
            api_version: Some("2024-10-21"),
            azure_ad_token: None,
        },
        |_| None,
    )
    .unwrap();
    let provider = OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap();
    let error = provider
        .chat(
            &chat_request(
                json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
            ),
            &CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), 404);
    assert!(error
        .to_string()
        .starts_with("litellm.NotFoundError: AzureException - "));
}
