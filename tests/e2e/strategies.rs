//! Routing strategies and per-deployment limits, against mock upstreams that differ in
//! latency (a per-deployment `x-mock-delay-ms` header), price and usage.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{chat_body, header, mock, open_stream, read_json, read_stream};

/// A group `g` of the given deployments (`litellm_params` bodies, YAML flow style) plus
/// `router_settings`.
fn group_config(deployments: &[(&str, String)], router_settings: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for (id, params) in deployments {
        yaml.push_str(&format!(
            "  - model_name: g\n    litellm_params: {params}\n    model_info: {{id: {id}}}\n"
        ));
    }
    yaml.push_str(&format!(
        "router_settings:\n{router_settings}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
    ));
    yaml
}

async fn chat(gateway: &Gateway, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let (status, headers, body) = read_json(
        gateway
            .post("/v1/chat/completions", body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status.as_u16(), headers, body)
}

/// Waits, if needed, so that a test of per-minute limits does not straddle a minute boundary.
async fn start_of_a_fresh_minute_window(needed: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_minute = Duration::from_millis((now.as_millis() % 60_000) as u64);
    if into_minute + needed > Duration::from_secs(58) {
        tokio::time::sleep(Duration::from_secs(60) - into_minute + Duration::from_millis(200))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_based_routing_sends_traffic_to_the_fast_upstream() {
    let (fast, slow) = (mock().await, mock().await);
    let gateway = Gateway::start(&group_config(
        &[
            (
                "fast",
                format!("{{model: openai/fast, api_base: \"{}\"}}", fast.base_url()),
            ),
            (
                "slow",
                format!(
                    "{{model: openai/slow, api_base: \"{}\", extra_headers: {{x-mock-delay-ms: \"150\"}}}}",
                    slow.base_url()
                ),
            ),
        ],
        "  routing_strategy: latency-based-routing\n  num_retries: 0",
    ));
    for _ in 0..30 {
        let (status, _, body) = chat(&gateway, &chat_body("g")).await;
        assert_eq!(status, 200, "{body}");
    }
    // Each deployment is tried once while it has no latency sample; after that the slow one
    // (150 ms vs ~1 ms) never wins.
    assert_eq!(slow.request_count(), 1, "slow got {}", slow.request_count());
    assert_eq!(fast.request_count(), 29);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_based_routing_evens_out_tokens_and_cost_based_picks_the_cheapest() {
    let (a, b) = (mock().await, mock().await);
    let deployments = |extra_a: &str, extra_b: &str| {
        vec![
            (
                "a",
                format!(
                    "{{model: openai/a, api_base: \"{}\"{extra_a}}}",
                    a.base_url()
                ),
            ),
            (
                "b",
                format!(
                    "{{model: openai/b, api_base: \"{}\"{extra_b}}}",
                    b.base_url()
                ),
            ),
        ]
    };
    let usage = Gateway::start(&group_config(
        &deployments("", ""),
        "  routing_strategy: usage-based-routing-v2",
    ));
    for _ in 0..20 {
        assert_eq!(chat(&usage, &chat_body("g")).await.0, 200);
    }
    // Identical calls use identical tokens: the one with fewer this minute always gets the
    // next call, so the two stay within one call of each other.
    let (to_a, to_b) = (a.request_count(), b.request_count());
    assert_eq!(to_a + to_b, 20);
    assert!(to_a.abs_diff(to_b) <= 1, "a={to_a} b={to_b}");

    let cost = Gateway::start(&group_config(
        &deployments(
            ", input_cost_per_token: 0.000002, output_cost_per_token: 0.000004",
            ", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002",
        ),
        "  routing_strategy: cost-based-routing",
    ));
    let (before_a, before_b) = (a.request_count(), b.request_count());
    for _ in 0..10 {
        let (status, headers, _) = chat(&cost, &chat_body("g")).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-litellm-model-id"), "b");
    }
    assert_eq!(a.request_count(), before_a);
    assert_eq!(b.request_count(), before_b + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_limits_are_hard_and_a_full_group_answers_429_with_retry_after() {
    let (a, b) = (mock().await, mock().await);
    let gateway = Gateway::start(&group_config(
        &[
            (
                "a",
                format!(
                    "{{model: openai/a, api_base: \"{}\", rpm: 3}}",
                    a.base_url()
                ),
            ),
            (
                "b",
                format!(
                    "{{model: openai/b, api_base: \"{}\", rpm: 2}}",
                    b.base_url()
                ),
            ),
        ],
        "  num_retries: 0",
    ));
    start_of_a_fresh_minute_window(Duration::from_secs(10)).await;
    for _ in 0..5 {
        let (status, _, body) = chat(&gateway, &chat_body("g")).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!((a.request_count(), b.request_count()), (3, 2));
    let (status, headers, body) = chat(&gateway, &chat_body("g")).await;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("No deployments available for selected model. Passed model=g."),
        "{message}"
    );
    assert!(message.contains("'rpm_limit': 3"), "{message}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // The full deployments were not called again.
    assert_eq!((a.request_count(), b.request_count()), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_limits_count_the_tokens_upstreams_report() {
    let (a, b) = (mock().await, mock().await);
    // A 30-token budget; the first call reports exactly 30 tokens used.
    let gateway = Gateway::start(&group_config(
        &[
            (
                "a",
                format!(
                    "{{model: openai/a, api_base: \"{}\", tpm: 30}}",
                    a.base_url()
                ),
            ),
            (
                "b",
                format!("{{model: openai/b, api_base: \"{}\"}}", b.base_url()),
            ),
        ],
        "  num_retries: 0\n  routing_strategy: least-busy",
    ));
    start_of_a_fresh_minute_window(Duration::from_secs(10)).await;
    let mut first = chat_body("a");
    first["mock_upstream"] = json!({"prompt_tokens": 20, "completion_tokens": 10});
    let (status, _, first) = chat(&gateway, &first).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["usage"]["total_tokens"], 30);
    // `a` has no room for another prompt this minute: the group is served by `b` alone.
    for _ in 0..10 {
        let (status, headers, _) = chat(&gateway, &chat_body("g")).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-litellm-model-id"), "b");
    }
    assert_eq!(a.request_count(), 1);
    // Pinned to the full deployment: 429.
    let (status, _, body) = chat(&gateway, &chat_body("a")).await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_call_checks_skip_small_context_windows_and_fall_back_on_none() {
    let (small, large, long) = (mock().await, mock().await, mock().await);
    let yaml = format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/small, api_base: "{small}"}}
    model_info: {{id: small, max_input_tokens: 50}}
  - model_name: g
    litellm_params: {{model: openai/large, api_base: "{large}"}}
    model_info: {{id: large, max_input_tokens: 1000}}
  - model_name: long
    litellm_params: {{model: openai/long, api_base: "{long}"}}
    model_info: {{id: long, max_input_tokens: 100000}}
router_settings:
  enable_pre_call_checks: true
  num_retries: 0
  context_window_fallbacks: [{{g: [long]}}]
general_settings:
  master_key: {MASTER_KEY}
"#,
        small = small.base_url(),
        large = large.base_url(),
        long = long.base_url(),
    );
    let gateway = Gateway::start(&yaml);
    let prompt = |chars: usize| json!({"model": "g", "messages": [{"role": "user", "content": "x".repeat(chars)}]});
    // ~100 tokens: too big for `small`, fine for `large`.
    for _ in 0..10 {
        let (status, headers, _) = chat(&gateway, &prompt(400)).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-litellm-model-id"), "large");
    }
    assert_eq!(small.request_count(), 0);
    // ~2,000 tokens fits nothing in `g`: the context-window fallback answers.
    let (status, headers, body) = chat(&gateway, &prompt(8_000)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "x-litellm-model-id"), "long");
    assert_eq!(header(&headers, "x-litellm-attempted-fallbacks"), "1");
    // Without a fallback, the caller gets the context-window error.
    let mut no_fallback = prompt(8_000);
    no_fallback["disable_fallbacks"] = json!(true);
    let (status, _, body) = chat(&gateway, &no_fallback).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Context Window exceeded"), "{message}");
    assert_eq!(small.request_count() + large.request_count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_based_routing_uses_time_to_first_token_for_streams() {
    let (quick_start, slow_start) = (mock().await, mock().await);
    // `quick-start` sends its first chunk at once but trickles the rest; `slow-start` waits
    // 150 ms before answering, then sends everything at once. Streams care about the first.
    let gateway = Gateway::start(&group_config(
        &[
            (
                "quick-start",
                format!(
                    "{{model: openai/q, api_base: \"{}\", extra_headers: {{x-mock-chunk-delay-ms: \"25\", x-mock-chunks: \"8\"}}}}",
                    quick_start.base_url()
                ),
            ),
            (
                "slow-start",
                format!(
                    "{{model: openai/s, api_base: \"{}\", extra_headers: {{x-mock-delay-ms: \"150\", x-mock-chunks: \"8\"}}}}",
                    slow_start.base_url()
                ),
            ),
        ],
        "  routing_strategy: latency-based-routing\n  num_retries: 0",
    ));
    let mut body = chat_body("g");
    body["stream"] = json!(true);
    for _ in 0..8 {
        let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;
        assert!(!frames.is_empty());
    }
    // One exploratory stream each; then time to first token decides.
    assert_eq!(slow_start.request_count(), 1);
    assert_eq!(quick_start.request_count(), 7);
}
