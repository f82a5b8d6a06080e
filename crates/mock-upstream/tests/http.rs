//! The mock over real HTTP on an ephemeral port, driven by a bare hyper client so each test sees
//! exactly what went over the wire (statuses, headers, frame timing, broken connections).

// Helpers here are not `#[test]` functions, which clippy.toml already exempts; a panic in a
// test crate is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use switchyard_mock_upstream::{MockOptions, MockUpstream, DEFAULT_CONTENT};
use tokio::net::{TcpListener, TcpStream};

/// Sends one request on a fresh connection and returns the response with its body unread.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> hyper::Result<Response<Incoming>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let bytes = body.map_or_else(Bytes::new, |body| Bytes::from(body.to_string()));
    sender
        .send_request(builder.body(Full::new(bytes)).unwrap())
        .await
}

async fn post_json(mock: &MockUpstream, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
    let response = send(mock.addr(), "POST", path, &[], Some(body))
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

fn chat(extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."}
        ],
        "max_tokens": 64
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

/// Splits an SSE body into its `data:` payloads.
fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap().to_owned())
        .collect()
}

/// Reads a streamed body frame by frame, noting when each frame arrived.
async fn timed_frames(body: &mut Incoming) -> (Vec<(Instant, Bytes)>, Option<hyper::Error>) {
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    frames.push((Instant::now(), data));
                }
            }
            Err(error) => return (frames, Some(error)),
        }
    }
    (frames, None)
}

#[tokio::test]
async fn non_stream_chat_has_the_openai_shape_and_is_recorded() {
    let mock = MockUpstream::start().await.unwrap();
    assert_eq!(mock.base_url(), format!("http://{}/v1", mock.addr()));
    let response = send(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-test")],
        Some(chat(json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["object"], "chat.completion");
    assert_eq!(value["model"], "gpt-test");
    assert!(value["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(value["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &value["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], DEFAULT_CONTENT);
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &value["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    assert_eq!(mock.request_count(), 1);
    let recorded = mock.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(recorded[0].body["model"], "gpt-test");
}

#[tokio::test]
async fn every_endpoint_answers_with_and_without_the_v1_prefix() {
    let mock = MockUpstream::start().await.unwrap();
    for prefix in ["/v1", ""] {
        let (status, _, value) = post_json(
            &mock,
            &format!("{prefix}/chat/completions"),
            chat(json!({})),
        )
        .await;
        assert_eq!(
            (status, value["object"].as_str()),
            (StatusCode::OK, Some("chat.completion"))
        );

        let (status, _, value) = post_json(
            &mock,
            &format!("{prefix}/completions"),
            json!({"model": "m", "prompt": "Once"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["object"], "text_completion");
        assert_eq!(value["choices"][0]["text"], DEFAULT_CONTENT);

        let (status, _, value) = post_json(
            &mock,
            &format!("{prefix}/embeddings"),
            json!({"model": "e", "input": "x"}),
        )
        .await;
        assert_eq!(
            (status, value["object"].as_str()),
            (StatusCode::OK, Some("list"))
        );

        let response = send(mock.addr(), "GET", &format!("{prefix}/models"), &[], None)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["object"], "list");
        assert!(!value["data"].as_array().unwrap().is_empty());
    }
    let (status, _, value) = post_json(&mock, "/v1/nowhere", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(value["error"]["message"].is_string());
}

#[tokio::test]
async fn stream_chunks_arrive_incrementally() {
    let mock = MockUpstream::start().await.unwrap();
    let body = chat(json!({"stream": true, "mock_upstream": {"chunks": 5, "chunk_delay_ms": 40}}));
    let response = send(mock.addr(), "POST", "/v1/chat/completions", &[], Some(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let (frames, error) = timed_frames(&mut body).await;
    assert!(error.is_none());

    // Each SSE event arrives as its own frame, spread over the configured delays.
    let text: String = frames
        .iter()
        .map(|(_, data)| std::str::from_utf8(data).unwrap())
        .collect();
    let payloads = sse_payloads(&text);
    assert_eq!(
        payloads.len(),
        1 + 5 + 1 + 1,
        "role, 5 content, stop, [DONE]"
    );
    assert!(frames.len() >= 6, "frames were coalesced: {}", frames.len());
    let spread = frames.last().unwrap().0 - frames.first().unwrap().0;
    assert!(
        spread >= Duration::from_millis(5 * 40 * 8 / 10),
        "spread {spread:?}"
    );

    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|payload| serde_json::from_str(payload).unwrap())
        .collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["model"], "gpt-test");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks[1..6]
        .iter()
        .map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, DEFAULT_CONTENT);
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert_eq!(payloads.last().unwrap(), "[DONE]");

    assert!(
        mock.wait_until(Duration::from_secs(2), |m| m.streams_completed() == 1)
            .await
    );
    assert_eq!(mock.streams_cancelled(), 0);
}

#[tokio::test]
async fn default_stream_has_twenty_content_chunks_and_usage_when_asked() {
    let mock = MockUpstream::start().await.unwrap();
    let body = chat(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let response = send(mock.addr(), "POST", "/chat/completions", &[], Some(body))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let payloads = sse_payloads(std::str::from_utf8(&bytes).unwrap());
    assert_eq!(
        payloads.len(),
        1 + 20 + 1 + 1 + 1,
        "role, 20 content, stop, usage, [DONE]"
    );
    let usage_chunk: Value = serde_json::from_str(&payloads[payloads.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let stop_chunk: Value = serde_json::from_str(&payloads[payloads.len() - 3]).unwrap();
    assert_eq!(stop_chunk["choices"][0]["finish_reason"], "stop");
    assert_eq!(stop_chunk["usage"], Value::Null);
}

#[tokio::test]
async fn completions_stream_too() {
    let mock = MockUpstream::start().await.unwrap();
    let body = json!({"model": "m", "prompt": "p", "stream": true, "mock_upstream": {"chunks": 3, "content": "abc"}});
    let response = send(mock.addr(), "POST", "/v1/completions", &[], Some(body))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let payloads = sse_payloads(std::str::from_utf8(&bytes).unwrap());
    assert_eq!(payloads.len(), 3 + 1 + 1);
    let text: String = payloads[..3]
        .iter()
        .map(|p| {
            serde_json::from_str::<Value>(p).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "abc");
}

#[tokio::test]
async fn status_fault_returns_an_openai_error() {
    let mock = MockUpstream::start().await.unwrap();
    let (status, headers, value) = post_json(
        &mock,
        "/v1/chat/completions",
        chat(json!({"mock_upstream": {"status": 429}})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    let error = &value["error"];
    assert!(error["message"].is_string());
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["param"], Value::Null);
    assert!(error.get("code").is_some());

    let (status, headers, value) = post_json(
        &mock,
        "/v1/chat/completions",
        chat(json!({"mock_upstream": {"status": 503, "error_message": "overloaded", "error_type": "overloaded_error"}})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(value["error"]["message"], "overloaded");
    assert_eq!(value["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn faults_are_also_read_from_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let response = send(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[("x-mock-status", "500"), ("x-mock-error-message", "boom")],
        Some(chat(json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["error"]["message"], "boom");
    assert_eq!(value["error"]["type"], "server_error");
}

#[tokio::test]
async fn unknown_fault_keys_are_rejected() {
    let mock = MockUpstream::start().await.unwrap();
    let (status, _, value) = post_json(
        &mock,
        "/v1/chat/completions",
        chat(json!({"mock_upstream": {"dealy_ms": 5}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(value["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dealy_ms"));
}

#[tokio::test]
async fn delay_ms_holds_back_the_headers() {
    let mock = MockUpstream::start().await.unwrap();
    let started = Instant::now();
    let (status, _, _) = post_json(
        &mock,
        "/v1/chat/completions",
        chat(json!({"mock_upstream": {"delay_ms": 150}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn content_and_token_counts_can_be_chosen() {
    let mock = MockUpstream::start().await.unwrap();
    let (_, _, value) = post_json(
        &mock,
        "/v1/chat/completions",
        chat(json!({"mock_upstream": {"content": "Custom \"quoted\" reply", "prompt_tokens": 11, "completion_tokens": 22}})),
    )
    .await;
    assert_eq!(
        value["choices"][0]["message"]["content"],
        "Custom \"quoted\" reply"
    );
    assert_eq!(
        value["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33})
    );
}

#[tokio::test]
async fn echo_headers_returns_what_was_received() {
    let mock = MockUpstream::start().await.unwrap();
    let response = send(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[("x-custom", "abc"), ("authorization", "Bearer sk-upstream")],
        Some(chat(json!({"mock_upstream": {"echo_headers": true}}))),
    )
    .await
    .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let echoed = &value["mock_received_headers"];
    assert_eq!(echoed["x-custom"], "abc");
    assert_eq!(echoed["authorization"], "Bearer sk-upstream");
    assert_eq!(value["object"], "chat.completion");
}

#[tokio::test]
async fn malformed_returns_200_with_a_non_json_body() {
    let mock = MockUpstream::start().await.unwrap();
    let response = send(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[],
        Some(chat(json!({"mock_upstream": {"malformed": true}}))),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
}

#[tokio::test]
async fn fail_after_chunks_breaks_the_stream() {
    let mock = MockUpstream::start().await.unwrap();
    let body = chat(json!({"stream": true, "mock_upstream": {"fail_after_chunks": 3}}));
    let response = send(mock.addr(), "POST", "/v1/chat/completions", &[], Some(body))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let (frames, error) = timed_frames(&mut body).await;
    assert!(
        error.is_some(),
        "the body must end in an error, not a clean end"
    );
    let text: String = frames
        .iter()
        .map(|(_, data)| std::str::from_utf8(data).unwrap())
        .collect();
    let payloads = sse_payloads(&text);
    assert_eq!(payloads.len(), 1 + 3, "role chunk and 3 content chunks");
    assert!(!text.contains("[DONE]"));
    assert!(
        mock.wait_until(Duration::from_secs(2), |m| m.streams_aborted() == 1)
            .await
    );
    assert_eq!(mock.streams_completed(), 0);
    assert_eq!(mock.streams_cancelled(), 0);
}

#[tokio::test]
async fn fail_after_chunks_without_stream_closes_the_connection() {
    let mock = MockUpstream::start().await.unwrap();
    let result = send(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[],
        Some(chat(json!({"mock_upstream": {"fail_after_chunks": 0}}))),
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn embeddings_return_one_vector_per_input() {
    let mock = MockUpstream::start().await.unwrap();
    let (status, _, value) = post_json(
        &mock,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": ["one", "two", "three"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["model"], "text-embedding-3-small");
    let data = value["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 16);
    }
    assert!(value["usage"]["prompt_tokens"].as_u64().unwrap() >= 3);

    let (_, _, tokens) = post_json(
        &mock,
        "/v1/embeddings",
        json!({"model": "e", "input": [[1, 2], [3]], "dimensions": 4}),
    )
    .await;
    assert_eq!(tokens["data"].as_array().unwrap().len(), 2);
    assert_eq!(tokens["data"][0]["embedding"].as_array().unwrap().len(), 4);

    let (_, _, encoded) = post_json(
        &mock,
        "/v1/embeddings",
        json!({"model": "e", "input": "x", "encoding_format": "base64"}),
    )
    .await;
    let text = encoded["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(text.len(), (16 * 4_usize).div_ceil(3) * 4);

    let (status, _, _) = post_json(&mock, "/v1/embeddings", json!({"model": "e"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_leaving_mid_stream_counts_as_cancelled() {
    let mock = MockUpstream::start().await.unwrap();
    let stream = TcpStream::connect(mock.addr()).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let body = chat(json!({"stream": true, "mock_upstream": {"chunk_delay_ms": 30}}));
    let request = Request::post("/v1/chat/completions")
        .header("host", mock.addr().to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let mut body = response.into_body();
    for _ in 0..2 {
        body.frame().await.unwrap().unwrap();
    }
    // Walk away: drop the body and the connection mid-stream.
    drop(body);
    drop(sender);
    connection.abort();

    assert!(
        mock.wait_until(Duration::from_secs(3), |m| m.streams_cancelled() == 1)
            .await
    );
    assert_eq!(mock.streams_completed(), 0);
}

#[tokio::test]
async fn recording_can_be_turned_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = MockOptions {
        record: false,
        ..MockOptions::default()
    };
    let mock = MockUpstream::start_with(listener, options).await.unwrap();
    for _ in 0..3 {
        post_json(&mock, "/v1/chat/completions", chat(json!({}))).await;
    }
    assert_eq!(mock.request_count(), 3);
    assert!(mock.recorded().is_empty());
}

#[tokio::test]
async fn dropping_the_mock_stops_the_server() {
    let mock = MockUpstream::start().await.unwrap();
    let addr = mock.addr();
    drop(mock);
    // The abort takes effect at the runtime's next turn; give it a few.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused);
}

#[tokio::test]
async fn coalesced_streams_carry_the_same_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = MockOptions {
        coalesce_stream_chunks: true,
        ..MockOptions::default()
    };
    let mock = MockUpstream::start_with(listener, options).await.unwrap();
    let body = chat(json!({"stream": true}));
    let response = send(mock.addr(), "POST", "/v1/chat/completions", &[], Some(body))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let payloads = sse_payloads(std::str::from_utf8(&bytes).unwrap());
    assert_eq!(payloads.len(), 1 + 20 + 1 + 1);

    // An injected abort still delivers the frames before it.
    let body = chat(json!({"stream": true, "mock_upstream": {"fail_after_chunks": 2}}));
    let response = send(mock.addr(), "POST", "/v1/chat/completions", &[], Some(body))
        .await
        .unwrap();
    let (frames, error) = timed_frames(&mut response.into_body()).await;
    assert!(error.is_some());
    let text: String = frames
        .iter()
        .map(|(_, data)| std::str::from_utf8(data).unwrap())
        .collect();
    assert_eq!(sse_payloads(&text).len(), 1 + 2);
}
