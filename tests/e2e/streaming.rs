//! Streaming: chunks relayed as they arrive, `[DONE]`, usage, failures, disconnects.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::sse::stream_text;

use crate::common::{chat_with_faults, chunks, open_stream, read_stream, standard, STREAM_TIMEOUT};

const CONTENT: &str = "one two three four five six";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_reach_the_client_as_they_arrive_not_at_the_end() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults(
        "gpt-4o",
        json!({"chunks": 6, "chunk_delay_ms": 150, "content": CONTENT}),
    );
    body["stream"] = json!(true);
    let sent = Instant::now();
    let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;

    let chunks = chunks(&frames);
    // role chunk, 6 content chunks, finish chunk
    assert_eq!(chunks.len(), 8, "{frames:?}");
    assert!(frames.last().is_some_and(|frame| frame.is_done()));
    assert_eq!(stream_text(&frames), CONTENT);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["model"], "gpt-4o-mini-upstream", "{chunk}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[7]["choices"][0]["finish_reason"], "stop");

    // Content chunks are 150 ms apart upstream (750 ms from the first to the sixth): a relay
    // that buffered the stream would deliver them together.
    let content_frames: Vec<_> = frames
        .iter()
        .filter(|frame| {
            frame.json().is_some_and(|chunk| {
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|text| !text.is_empty())
            })
        })
        .collect();
    assert_eq!(content_frames.len(), 6);
    let first = content_frames[0].at;
    let last = content_frames[5].at;
    let spread = last.duration_since(first);
    assert!(
        spread >= Duration::from_millis(500),
        "first and last content chunks arrived only {spread:?} apart"
    );
    // And the first one is not held back until the end.
    let first_after = first.duration_since(sent);
    assert!(
        first_after < Duration::from_millis(700),
        "first content chunk took {first_after:?}"
    );
    assert!(
        upstream
            .wait_until(Duration::from_secs(2), |mock| mock.streams_completed() == 1)
            .await
    );
    assert_eq!(upstream.streams_cancelled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_usage_yields_a_usage_chunk_before_done() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults(
        "gpt-4o",
        json!({"chunks": 3, "content": "abc", "prompt_tokens": 11, "completion_tokens": 3}),
    );
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = read_stream(open_stream(&gateway, "/chat/completions", &body).await).await;
    let chunks = chunks(&frames);
    let usage = chunks.last().expect("a usage chunk");
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}),
        "{frames:?}"
    );
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(stream_text(&frames), "abc");
    // The option itself reached the upstream.
    let recorded = upstream.recorded();
    assert_eq!(
        recorded[0].body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(recorded[0].body["stream"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_responses_carry_the_litellm_headers() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults("gpt-4o", json!({"chunks": 2}));
    body["stream"] = json!(true);
    let response = gateway
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .expect("send");
    let headers = response.headers().clone();
    assert_eq!(
        crate::common::header(&headers, "content-type"),
        "text/event-stream"
    );
    assert_eq!(
        crate::common::header(&headers, "x-litellm-model-id"),
        "dep-chat-1"
    );
    assert_eq!(
        crate::common::header(&headers, "x-litellm-model-group"),
        "gpt-4o"
    );
    assert_eq!(
        crate::common::header(&headers, "x-litellm-model-api-base"),
        upstream.base_url()
    );
    assert_eq!(
        crate::common::header(&headers, "x-litellm-call-id").len(),
        36
    );
    let frames = read_stream(switchyard_tests::sse::SseReader::new(response)).await;
    assert_eq!(
        stream_text(&frames),
        switchyard_mock_upstream::DEFAULT_CONTENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failure_mid_stream_becomes_an_in_band_error_then_done() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults(
        "gpt-4o",
        json!({"chunks": 5, "fail_after_chunks": 2, "content": "aaabbbcccdddeee"}),
    );
    body["stream"] = json!(true);
    let mut reader = open_stream(&gateway, "/v1/chat/completions", &body).await;
    let (frames, end) = reader.read_to_done(STREAM_TIMEOUT).await;
    assert!(end.is_none(), "no [DONE] ({end:?}); frames: {frames:?}");
    reader.assert_ends(Duration::from_secs(5)).await;

    // role chunk, two content chunks, the error, [DONE]
    assert_eq!(frames.len(), 5, "{frames:?}");
    assert_eq!(stream_text(&frames[..3]), "aaabbb");
    let error = frames[3].json().expect("error frame is JSON");
    let detail = &error["error"];
    assert!(
        detail["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("litellm.APIConnectionError: ")),
        "{error}"
    );
    assert_eq!(detail["code"], "500", "{error}");
    assert_eq!(detail["type"], "internal_server_error", "{error}");
    assert!(frames[4].is_done());
    assert_eq!(upstream.streams_aborted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_idle_timeout_mid_stream_becomes_an_in_band_timeout_error() {
    let (_upstream, gateway) = standard().await;
    // The per-request timeout also bounds the gap between stream chunks.
    let mut body = chat_with_faults("gpt-4o", json!({"chunks": 3, "chunk_delay_ms": 3000}));
    body["stream"] = json!(true);
    body["stream_timeout"] = json!(0.5);
    let started = Instant::now();
    let mut reader = open_stream(&gateway, "/v1/chat/completions", &body).await;
    let (frames, end) = reader.read_to_done(STREAM_TIMEOUT).await;
    assert!(end.is_none(), "no [DONE] ({end:?}); frames: {frames:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    let error = frames
        .iter()
        .rev()
        .find_map(|frame| frame.json().filter(|value| value.get("error").is_some()))
        .unwrap_or_else(|| panic!("no error frame in {frames:?}"));
    assert_eq!(error["error"]["code"], "408", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("litellm.Timeout: ")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_stream_cancels_the_upstream_stream() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults("gpt-4o", json!({"chunks": 50, "chunk_delay_ms": 100}));
    body["stream"] = json!(true);
    let mut reader = open_stream(&gateway, "/v1/chat/completions", &body).await;
    // The role chunk, then one content chunk: the stream is flowing.
    for _ in 0..2 {
        reader
            .next_frame(Duration::from_secs(5))
            .await
            .expect("a frame before disconnecting");
    }
    drop(reader);
    let cancelled = upstream
        .wait_until(Duration::from_secs(5), |mock| mock.streams_cancelled() == 1)
        .await;
    assert!(
        cancelled,
        "the upstream stream was not cancelled after the client left (cancelled {}, completed {}); gateway log:\n{}",
        upstream.streams_cancelled(),
        upstream.streams_completed(),
        gateway.log()
    );
    assert_eq!(upstream.streams_completed(), 0);
    // The gateway is still healthy afterwards.
    let (status, _, _) = crate::common::send_json(
        gateway.post("/v1/chat/completions", &crate::common::chat_body("gpt-4o")),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_answers_does_not_hang_the_client() {
    let (_upstream, gateway) = standard().await;
    // Upstream sends the headers only after 5 s; the deployment-wide timeout is 6000 s, so the
    // request's own `timeout` must apply to the stream's first byte.
    let mut body = chat_with_faults("gpt-4o", json!({"delay_ms": 5000}));
    body["stream"] = json!(true);
    body["timeout"] = json!(0.5);
    let started = Instant::now();
    let response = gateway
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status.as_u16(), 408, "{text}");
    assert!(text.contains("litellm.Timeout: "), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// An upstream that answers a stream request with 200 and a body that is not an event stream
/// (a server ignoring `stream: true`) must not look like an empty successful stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_sse_200_answer_to_a_stream_request_is_an_error() {
    let (_upstream, gateway) = standard().await;
    // The upstream answers 200 with a body that is neither SSE nor JSON.
    let mut body = chat_with_faults("gpt-4o", json!({"malformed": true}));
    body["stream"] = json!(true);
    let response = gateway
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let mut reader = switchyard_tests::sse::SseReader::new(response);
    let (frames, end) = reader.read_to_done(STREAM_TIMEOUT).await;
    // Either a plain HTTP error or an in-band error frame is acceptable; a "successful" empty
    // stream is not: the client would take the upstream's garbage for an empty answer.
    let in_band_error = frames.iter().any(|frame| {
        frame
            .json()
            .is_some_and(|value| value.get("error").is_some())
    });
    assert!(
        !status.is_success() || in_band_error,
        "status {status}, frames {frames:?}, end {end:?}: the failure was swallowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_do_not_mix() {
    let (upstream, gateway) = standard().await;
    let gateway = &gateway;
    let tasks = (0..16).map(|index| async move {
        let content = format!("stream number {index} says hello");
        let mut body = chat_with_faults(
            "gpt-4o",
            json!({"chunks": 5, "chunk_delay_ms": 20, "content": content}),
        );
        body["stream"] = json!(true);
        let frames = read_stream(open_stream(gateway, "/v1/chat/completions", &body).await).await;
        assert_eq!(stream_text(&frames), content);
    });
    futures::future::join_all(tasks).await;
    assert_eq!(upstream.streams_completed(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_back_to_back_chunks_arrive_complete_and_in_order() {
    let (upstream, gateway) = standard().await;
    // 400 undelayed chunks: the relay may batch them into fewer writes, but must not drop,
    // reorder or split any.
    let content: String = (0..400).map(|i| format!("{:03}|", i)).collect();
    let mut body = chat_with_faults("gpt-4o", json!({"chunks": 400, "content": content}));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;
    let chunks = chunks(&frames);
    // role + 400 content + finish + usage
    assert_eq!(chunks.len(), 403);
    assert_eq!(stream_text(&frames), content);
    assert!(chunks[402]["usage"]["total_tokens"].as_u64().is_some());
    assert_eq!(upstream.streams_completed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_giving_up_before_the_first_byte_cancels_the_upstream_call() {
    let (upstream, gateway) = standard().await;
    let mut body = chat_with_faults("gpt-4o", json!({"delay_ms": 3000, "chunks": 3}));
    body["stream"] = json!(true);
    let request = gateway.post("/v1/chat/completions", &body).send();
    // The client gives up while the upstream has not answered yet.
    let outcome = tokio::time::timeout(Duration::from_millis(500), request).await;
    assert!(outcome.is_err(), "the request should still be pending");
    let cancelled = upstream
        .wait_until(Duration::from_secs(5), |mock| mock.streams_cancelled() == 1)
        .await;
    assert!(
        cancelled,
        "upstream call not cancelled (cancelled {}, completed {})",
        upstream.streams_cancelled(),
        upstream.streams_completed()
    );
    assert_eq!(upstream.streams_completed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_multibyte_chunks_survive_being_split_across_reads() {
    let (_upstream, gateway) = standard().await;
    // ~600 KB of 2-, 3- and 4-byte characters in 4 chunks: every frame spans many TCP reads,
    // so characters are split between reads somewhere.
    let content: String = "é你🌍ü語".repeat(40_000);
    let mut body = chat_with_faults("gpt-4o", json!({"chunks": 4, "content": content}));
    body["stream"] = json!(true);
    let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;
    assert_eq!(stream_text(&frames).len(), content.len());
    assert!(stream_text(&frames) == content, "content differs");
}
