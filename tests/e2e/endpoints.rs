//! `/embeddings` and the legacy `/completions`.

use reqwest::StatusCode;
use serde_json::json;
use switchyard_tests::sse::stream_text;

use crate::common::{chunks, header, open_stream, read_stream, send_json, standard};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_return_one_vector_per_input() {
    let (upstream, gateway) = standard().await;
    let body = json!({"model": "embed", "input": ["first text", "second text"]});
    for path in ["/v1/embeddings", "/embeddings"] {
        let (status, headers, reply) = send_json(gateway.post(path, &body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(reply["object"], "list");
        let data = reply["data"].as_array().expect("data is a list");
        assert_eq!(data.len(), 2, "{reply}");
        for (index, item) in data.iter().enumerate() {
            assert_eq!(item["object"], "embedding");
            assert_eq!(item["index"], json!(index));
            let vector = item["embedding"].as_array().expect("a vector");
            assert_eq!(vector.len(), 16, "mock default dimensions");
            assert!(vector.iter().all(|x| x.is_f64()), "{item}");
        }
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);
        assert!(reply["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0));
        assert_eq!(header(&headers, "x-litellm-model-id"), "dep-embed-1");
        assert_eq!(header(&headers, "x-litellm-model-group"), "embed");
    }
    let recorded = upstream.recorded();
    assert_eq!(recorded.len(), 2);
    for request in &recorded {
        assert_eq!(request.path, "/v1/embeddings");
        assert_eq!(request.body["model"], "text-embedding-3-small");
        assert_eq!(request.body["input"], json!(["first text", "second text"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_pass_dimensions_and_reject_empty_input() {
    let (upstream, gateway) = standard().await;
    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "embed", "input": "one", "dimensions": 8, "encoding_format": "float"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["data"][0]["embedding"].as_array().map(Vec::len),
        Some(8)
    );
    assert_eq!(upstream.recorded()[0].body["dimensions"], json!(8));

    let (status, _, reply) =
        send_json(gateway.post("/v1/embeddings", &json!({"model": "embed", "input": []}))).await;
    crate::common::assert_error(
        status,
        &reply,
        &crate::common::ExpectedError {
            status: 400,
            kind: "invalid_request_error",
            param: Some("input"),
            message_prefix: "Invalid 'input'",
        },
    );
    assert_eq!(
        upstream.request_count(),
        1,
        "empty input never goes upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_completion_non_stream() {
    let (upstream, gateway) = standard().await;
    let body = json!({
        "model": "instruct",
        "prompt": "Once upon a time",
        "max_tokens": 16,
        "mock_upstream": {"content": "there was a gateway.", "prompt_tokens": 4, "completion_tokens": 5},
    });
    for path in ["/v1/completions", "/completions"] {
        let (status, headers, reply) = send_json(gateway.post(path, &body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(reply["object"], "text_completion");
        assert_eq!(reply["choices"][0]["text"], "there was a gateway.");
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            reply["usage"],
            json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
        );
        assert_eq!(header(&headers, "x-litellm-model-id"), "dep-instruct-1");
    }
    for request in upstream.recorded() {
        assert_eq!(request.path, "/v1/completions");
        assert_eq!(request.body["model"], "gpt-3.5-turbo-instruct");
        assert_eq!(request.body["prompt"], "Once upon a time");
        assert_eq!(request.body["max_tokens"], json!(16));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_completion_stream() {
    let (upstream, gateway) = standard().await;
    let body = json!({
        "model": "instruct",
        "prompt": "Count:",
        "stream": true,
        "mock_upstream": {"content": "1 2 3 4", "chunks": 4},
    });
    let frames = read_stream(open_stream(&gateway, "/v1/completions", &body).await).await;
    let chunks = chunks(&frames);
    // four text chunks and the finish chunk
    assert_eq!(chunks.len(), 5, "{frames:?}");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "text_completion", "{chunk}");
    }
    assert_eq!(stream_text(&frames), "1 2 3 4");
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert!(frames.last().is_some_and(|frame| frame.is_done()));
    assert_eq!(upstream.recorded()[0].path, "/v1/completions");
    assert_eq!(upstream.recorded()[0].body["stream"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_accept_token_inputs() {
    let (upstream, gateway) = standard().await;
    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "embed", "input": [[1, 2, 3], [4, 5]]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"].as_array().map(Vec::len), Some(2));
    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "embed", "input": [10, 11, 12]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"].as_array().map(Vec::len), Some(1));
    let recorded = upstream.recorded();
    assert_eq!(recorded[0].body["input"], json!([[1, 2, 3], [4, 5]]));
    assert_eq!(recorded[1].body["input"], json!([10, 11, 12]));
}
