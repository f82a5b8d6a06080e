//! The response cache through the real gateway: hits without an upstream call, stream
//! replay, controls, admin routes, and two replicas sharing Redis.

use serde_json::json;
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{chat_body, header, mock, read_json};

fn config(base: &str, cache_params: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{base}"}}
litellm_settings:
  cache: true
  cache_params: {cache_params}
general_settings:
  master_key: {MASTER_KEY}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_is_served_from_the_cache() {
    let upstream = mock().await;
    let gateway = Gateway::start(&config(&upstream.base_url(), "{type: local}"));
    let (status, first_headers, first) = read_json(
        gateway
            .post("/v1/chat/completions", &chat_body("g"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    let key = header(&first_headers, "x-litellm-cache-key").to_owned();
    assert_eq!(key.len(), 64, "{key}");
    let (status, headers, second) = read_json(
        gateway
            .post("/v1/chat/completions", &chat_body("g"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(header(&headers, "x-litellm-cache-key"), key);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        upstream.request_count(),
        1,
        "the second request reached the upstream"
    );

    // A stream request with the same parameters replays the stored answer as SSE.
    let mut streamed = chat_body("g");
    streamed["stream"] = json!(true);
    let response = gateway
        .post("/v1/chat/completions", &streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let content: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        content,
        first["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(upstream.request_count(), 1);

    // `no-cache` skips the lookup (and refreshes the entry).
    let mut fresh = chat_body("g");
    fresh["cache"] = json!({"no-cache": true});
    read_json(
        gateway
            .post("/v1/chat/completions", &fresh)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(upstream.request_count(), 2);

    // Admin routes: ping for any key, flush for admins; after a flush the next call misses.
    let ping = gateway
        .client()
        .get(gateway.url("/cache/ping"))
        .bearer_auth(MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 200);
    let flushed = gateway
        .post("/cache/flushall", &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(flushed.status().as_u16(), 200);
    read_json(
        gateway
            .post("/v1/chat/completions", &chat_body("g"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(upstream.request_count(), 3);

    // Invalid controls are a 400 naming the control.
    let mut bad = chat_body("g");
    bad["cache"] = json!({"ttl": "soon"});
    let (status, _, reply) = read_json(
        gateway
            .post("/v1/chat/completions", &bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 400, "{reply}");
    assert_eq!(reply["error"]["param"], "cache.ttl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_redis() {
    let upstream = mock().await;
    let namespace = format!("e2e-{}", std::process::id());
    let params =
        format!("{{type: redis, host: 127.0.0.1, port: 6379, namespace: {namespace}, ttl: 60}}");
    let first = Gateway::start(&config(&upstream.base_url(), &params));
    let second = Gateway::start(&config(&upstream.base_url(), &params));
    // Redis connects in the background after start-up; wait until both replicas reach it.
    for gateway in [&first, &second] {
        let mut ready = false;
        for _ in 0..50 {
            let ping = gateway
                .client()
                .get(gateway.url("/cache/ping"))
                .bearer_auth(MASTER_KEY)
                .send()
                .await
                .unwrap();
            if ping.status().is_success() {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(ready, "the gateway never reached Redis");
    }
    let mut body = chat_body("g");
    body["messages"][0]["content"] = json!(format!("unique question {namespace}"));
    let (status, headers, _) = read_json(
        first
            .post("/v1/chat/completions", &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200);
    assert!(header(&headers, "x-litellm-cache-key").starts_with(&format!("{namespace}:")));
    // Replica A writes to Redis off the request path; replica B then answers from Redis
    // without calling the upstream. Each miss on B stores too, so count only B's own calls.
    let mut hit = false;
    for _ in 0..50 {
        let before = upstream.request_count();
        let (status, _, _) = read_json(
            second
                .post("/v1/chat/completions", &body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status.as_u16(), 200);
        if upstream.request_count() == before {
            hit = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        hit,
        "replica B never answered from Redis ({} upstream calls)",
        upstream.request_count()
    );
    let flushed = second
        .post("/cache/flushall", &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(flushed.status().as_u16(), 200);
}
