//! Two gateway replicas sharing router state through the real Redis (127.0.0.1:6379), each
//! test under its own key namespace; and a Redis that is down.

use std::time::Duration;

use serde_json::json;
use switchyard_tests::{closed_port, Gateway, MASTER_KEY};

use crate::common::{chat_body, header, mock, read_json};

fn config(first: &str, second: &str, rpm: &str, redis: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/first, api_base: "{first}"{rpm}}}
    model_info: {{id: first}}
  - model_name: g
    litellm_params: {{model: openai/second, api_base: "{second}"{rpm}}}
    model_info: {{id: second}}
router_settings:
  num_retries: 0
  cooldown_time: 30
{redis}
general_settings:
  master_key: {MASTER_KEY}
"#
    )
}

/// Generous Redis timeouts: on a loaded test machine a 100 ms read can time out, and the
/// router would (correctly) fall back to its local state, which these tests must not see.
fn redis_settings(namespace: &str) -> String {
    format!(
        "  redis_host: 127.0.0.1\n  redis_port: 6379\n  redis_namespace: {namespace}\n  redis_timeout_ms: 3000"
    )
}

/// `PTTL key` over a raw connection (RESP): the test looks at Redis without a client crate.
async fn pttl(key: &str) -> i64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .unwrap();
    let command = format!("*2\r\n$4\r\nPTTL\r\n${}\r\n{key}\r\n", key.len());
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut reply = vec![0u8; 64];
    let read = stream.read(&mut reply).await.unwrap();
    let text = String::from_utf8_lossy(&reply[..read]);
    text.trim().trim_start_matches(':').parse().unwrap()
}

fn unique_namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-router-{test}-{}-{nanos}", std::process::id())
}

async fn chat(gateway: &Gateway, model: &str) -> (u16, reqwest::header::HeaderMap) {
    let (status, headers, _) = read_json(
        gateway
            .post("/v1/chat/completions", &chat_body(model))
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status.as_u16(), headers)
}

/// Waits until the replica's router reaches Redis (it connects in the background).
async fn wait_for_router_redis(gateway: &Gateway) {
    for _ in 0..100 {
        let (_, _, body) = read_json(gateway.get("/health/readiness").send().await.unwrap()).await;
        if body["router_redis"] == "connected" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the router never connected to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_seen_on_one_replica_is_honoured_by_the_other() {
    let (first, second) = (mock().await, mock().await);
    let namespace = unique_namespace("cooldown");
    let redis = redis_settings(&namespace);
    let yaml = config(&first.base_url(), &second.base_url(), "", &redis);
    let (a, b) = (Gateway::start(&yaml), Gateway::start(&yaml));
    wait_for_router_redis(&a).await;
    wait_for_router_redis(&b).await;
    // Replica A sees `first` answer 429: `first` cools down for 30 s.
    let mut failing = chat_body("first");
    failing["mock_upstream"] = json!({"status": 429});
    let (status, _, _) = read_json(
        a.post("/v1/chat/completions", &failing)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 429);
    // The cooldown reaches Redis off the request path: wait until it is there.
    let key = format!("{namespace}:cooldown:first");
    let mut published = false;
    for _ in 0..100 {
        if pttl(&key).await > 0 {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(published, "the cooldown never reached Redis");
    let before = first.request_count();
    // Replica B never saw the failure, yet sends everything to `second`.
    for _ in 0..20 {
        let (status, headers) = chat(&b, "g").await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-litellm-model-id"), "second");
    }
    assert_eq!(first.request_count(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_limits_hold_across_replicas() {
    let (first, second) = (mock().await, mock().await);
    let redis = redis_settings(&unique_namespace("rpm"));
    let yaml = config(&first.base_url(), &second.base_url(), ", rpm: 3", &redis);
    let (a, b) = (Gateway::start(&yaml), Gateway::start(&yaml));
    wait_for_router_redis(&a).await;
    wait_for_router_redis(&b).await;
    // Keep the test inside one minute window.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute as u64 + 200)).await;
    }
    // 3 rpm per deployment, 6 for the group, however the calls are spread over replicas.
    let mut served = 0;
    let mut refused = 0;
    for round in 0..10 {
        let replica = if round % 2 == 0 { &a } else { &b };
        let (status, headers) = chat(replica, "g").await;
        match status {
            200 => served += 1,
            429 => {
                refused += 1;
                let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
                assert!((1..=60).contains(&retry_after));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((served, refused), (6, 4));
    assert_eq!(first.request_count(), 3);
    assert_eq!(second.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_down_never_fails_requests() {
    let (first, second) = (mock().await, mock().await);
    let redis = format!(
        "  redis_host: 127.0.0.1\n  redis_port: {}\n  redis_namespace: {}",
        closed_port(),
        unique_namespace("down")
    );
    let gateway = Gateway::start(&config(
        &first.base_url(),
        &second.base_url(),
        ", rpm: 100",
        &redis,
    ));
    for _ in 0..10 {
        let (status, _) = chat(&gateway, "g").await;
        assert_eq!(status, 200);
    }
    assert_eq!(first.request_count() + second.request_count(), 10);
    let (status, _, body) = read_json(gateway.get("/health/readiness").send().await.unwrap()).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(body["router_redis"], "disconnected");
}
