//! Rate limits and budgets end to end: three gateway replicas sharing one Redis (a unique key
//! prefix per test) and one PostgreSQL schema, hundreds of concurrent requests; budget resets;
//! a streaming client that leaves still settles.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::Gateway;
use switchyard_tests::MASTER_KEY;

use crate::common::{header, mock, send_json};
use crate::keys::PgSchema;

/// USD per token (prompt and completion) of the test deployment: round numbers to reason on.
const PRICE_PER_TOKEN: f64 = 0.001;

/// A config whose `gpt-4o` group has custom prices; `extra` is appended to `general_settings`
/// (and may start other sections).
fn config(upstream: &MockUpstream, general_extra: &str, sections: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o-mini-upstream
      api_base: {base}
      api_key: sk-upstream
      input_cost_per_token: {PRICE_PER_TOKEN}
      output_cost_per_token: {PRICE_PER_TOKEN}
    model_info:
      id: dep-priced-1
router_settings:
  num_retries: 0
  disable_cooldowns: true
{sections}
general_settings:
  master_key: {MASTER_KEY}
{general_extra}
"#,
        base = upstream.base_url()
    )
}

/// Three replicas on one PostgreSQL schema and one Redis namespace.
struct Cluster {
    replicas: Vec<Gateway>,
    _schema: PgSchema,
}

impl Cluster {
    async fn start(upstream: &MockUpstream) -> Self {
        let schema = PgSchema::create().await;
        let prefix = format!("sy-e2e-admission-{}", uuid::Uuid::new_v4().simple());
        let general = format!(
            "  database_url: \"{}\"\n  admission_redis_prefix: {prefix}\n  admission_redis_fail_mode: closed\n  admission_redis_timeout_ms: 10000\n",
            schema.url()
        );
        let yaml = config(
            upstream,
            &general,
            "  redis_host: 127.0.0.1\n  redis_port: 6379\n",
        );
        let replicas = (0..3).map(|_| Gateway::start(&yaml)).collect();
        Self {
            replicas,
            _schema: schema,
        }
    }
}

async fn generate_key(gateway: &Gateway, body: Value) -> String {
    let (status, _, reply) = send_json(gateway.post("/key/generate", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["key"].as_str().expect("key").to_owned()
}

/// A chat that reserves `(8 prompt + 20 max) × price` and really costs
/// `(1 prompt + 5 completion) × price` on the mock.
fn priced_chat() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 20,
        "mock_upstream": {"completion_tokens": 5},
    })
}

const RESERVED_PER_CALL: f64 = 28.0 * PRICE_PER_TOKEN;
const COST_PER_CALL: f64 = 6.0 * PRICE_PER_TOKEN;

async fn chat(
    gateway: &Gateway,
    key: &str,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    send_json(
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(body),
    )
    .await
}

/// Sends `total` requests at once, spread over the replicas; returns each answer.
async fn burst(
    replicas: &[Gateway],
    key: &str,
    body: &Value,
    total: usize,
) -> Vec<(StatusCode, reqwest::header::HeaderMap, Value)> {
    let mut tasks = Vec::new();
    for i in 0..total {
        let gateway = &replicas[i % replicas.len()];
        let request = gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(body);
        tasks.push(tokio::spawn(send_json(request)));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpm_limit_is_exact_across_three_replicas() {
    let upstream = mock().await;
    let cluster = Cluster::start(&upstream).await;
    let key = generate_key(&cluster.replicas[0], json!({"rpm_limit": 25})).await;
    let answers = burst(&cluster.replicas, &key, &priced_chat(), 240).await;
    let ok: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 25, "statuses: {:?}", statuses(&answers));
    for (status, headers, body) in &answers {
        if *status == StatusCode::OK {
            assert_eq!(header(headers, "x-ratelimit-limit-requests"), "25");
            let remaining: u64 = header(headers, "x-ratelimit-remaining-requests")
                .parse()
                .expect("remaining header");
            assert!(remaining < 25);
            continue;
        }
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "429");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with("Rate limit exceeded for api_key: sk-...")
                && message.contains("Limit type: requests. Current limit: 25, Remaining: 0."),
            "{message}"
        );
        let retry: u64 = header(headers, "retry-after").parse().expect("retry-after");
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // Only admitted calls reached the upstream.
    assert_eq!(upstream.request_count(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_is_never_exceeded_by_more_than_one_reservation_across_replicas() {
    let upstream = mock().await;
    let cluster = Cluster::start(&upstream).await;
    let max_budget = 0.06;
    let key = generate_key(&cluster.replicas[1], json!({"max_budget": max_budget})).await;
    let mut spent = 0.0;
    let mut successes = 0;
    let mut refusals = 0;
    let mut tally = |answers: &[(StatusCode, reqwest::header::HeaderMap, Value)]| {
        for (status, headers, body) in answers {
            if *status == StatusCode::OK {
                let cost: f64 = header(headers, "x-litellm-response-cost")
                    .parse()
                    .expect("cost header");
                assert!((cost - COST_PER_CALL).abs() < 1e-9, "{cost}");
                spent += cost;
                successes += 1;
            } else {
                assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
                assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
                assert_eq!(body["error"]["code"], "400");
                let message = body["error"]["message"].as_str().expect("message");
                assert!(
                    message.starts_with("Budget has been exceeded! Current cost: ")
                        && message.ends_with(&format!("Max budget: {max_budget}")),
                    "{message}"
                );
                refusals += 1;
            }
        }
    };
    // Hundreds at once: reservations keep concurrent calls from overspending.
    tally(&burst(&cluster.replicas, &key, &priced_chat(), 150).await);
    // Then one at a time until the budget refuses with nothing in flight.
    for i in 0..30 {
        let answer = chat(&cluster.replicas[i % 3], &key, &priced_chat()).await;
        let refused = answer.0 != StatusCode::OK;
        tally(&[answer]);
        if refused {
            break;
        }
    }
    assert!(refusals > 0);
    // Spend reached the budget and passed it by less than one call's reservation.
    assert!(
        spent >= max_budget - 1e-9,
        "spent {spent} after {successes} calls"
    );
    assert!(
        spent < max_budget + RESERVED_PER_CALL,
        "spent {spent} after {successes} calls"
    );
    assert_eq!(upstream.request_count(), successes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_parallel_requests_holds_across_replicas() {
    let upstream = mock().await;
    let cluster = Cluster::start(&upstream).await;
    let key = generate_key(&cluster.replicas[2], json!({"max_parallel_requests": 3})).await;
    // Each admitted call holds its slot for 2 s; the whole burst arrives well within that.
    let slow = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "mock_upstream": {"delay_ms": 2000},
    });
    let answers = burst(&cluster.replicas, &key, &slow, 60).await;
    let ok = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(ok, 3, "statuses: {:?}", statuses(&answers));
    let refused = answers
        .iter()
        .find(|(status, _, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .expect("a refusal");
    assert!(refused.2["error"]["message"]
        .as_str()
        .expect("message")
        .contains("Limit type: max_parallel_requests. Current limit: 3"));
    assert_eq!(header(&refused.1, "retry-after"), "1");
    // Once they finished, the slots are free again.
    let (status, _, body) = chat(&cluster.replicas[0], &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_budget_duration_resets_and_admits_again() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = Gateway::start_with(
        &config(&upstream, "", ""),
        &["--data-dir", data.path().to_str().expect("utf-8 path")],
        &[],
    );
    // Less than one call: the first call is admitted (nothing spent), the next refused.
    let key = generate_key(
        &gateway,
        json!({"max_budget": COST_PER_CALL / 2.0, "budget_duration": "2s"}),
    )
    .await;
    // Align on a fresh period so the first two calls fall in the same one.
    wait_for_period_start(2).await;
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "budget_exceeded");
    // The next period admits again.
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, _) = chat(&gateway, &key, &priced_chat()).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "never admitted again");
    }
    // The reset is written back to the store off the hot path.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, info) = send_json(gateway.get(&format!("/key/info?key={key}"))).await;
        if info["info"]["budget_reset_at"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "budget_reset_at never written: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_leaves_still_settles() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = Gateway::start_with(
        &config(&upstream, "", ""),
        &["--data-dir", data.path().to_str().expect("utf-8 path")],
        &[],
    );
    let key = generate_key(&gateway, json!({"max_parallel_requests": 1})).await;
    let slow_stream = json!({
        "model": "gpt-4o",
        "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
        "mock_upstream": {"chunks": 50, "chunk_delay_ms": 200},
    });
    let stream = gateway
        .client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&slow_stream)
        .send()
        .await
        .expect("stream request");
    assert_eq!(stream.status(), StatusCode::OK);
    let mut reader = switchyard_tests::sse::SseReader::new(stream);
    reader
        .next_frame(Duration::from_secs(10))
        .await
        .expect("first chunk");
    // The stream holds the only slot.
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // The client leaves mid-stream: the slot comes back without waiting for the upstream.
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = chat(&gateway, &key, &priced_chat()).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the stream never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A stream read to its end settles too.
    let frames = crate::common::read_stream(open_stream_as(&gateway, &key).await).await;
    assert!(frames.last().is_some_and(|f| f.is_done()));
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn open_stream_as(gateway: &Gateway, key: &str) -> switchyard_tests::sse::SseReader {
    let response = gateway
        .client()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": "gpt-4o",
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .expect("stream request");
    assert_eq!(response.status(), StatusCode::OK);
    switchyard_tests::sse::SseReader::new(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_model_limits_answer_litellm_headers() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = Gateway::start_with(
        &config(&upstream, "", ""),
        &["--data-dir", data.path().to_str().expect("utf-8 path")],
        &[],
    );
    let key = generate_key(
        &gateway,
        json!({"model_rpm_limit": {"gpt-4o": 2}, "model_tpm_limit": {"gpt-4o": 100000}}),
    )
    .await;
    let (status, headers, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        header(&headers, "x-litellm-key-remaining-requests-gpt-4o"),
        "1"
    );
    let tokens: u64 = header(&headers, "x-litellm-key-remaining-tokens-gpt-4o")
        .parse()
        .expect("tokens header");
    assert!(tokens < 100_000);
    let (status, _, _) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("Rate limit exceeded for model_per_key: sk-..."));
    // The master key is not rate limited.
    let (status, _, _) = chat(&gateway, MASTER_KEY, &priced_chat()).await;
    assert_eq!(status, StatusCode::OK);
}

/// Sleeps until just after the start of the next `period_secs`-aligned period.
async fn wait_for_period_start(period_secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let period_ms = period_secs * 1000;
    let next = (now / period_ms + 1) * period_ms;
    tokio::time::sleep(Duration::from_millis(next - now + 50)).await;
}

fn statuses(answers: &[(StatusCode, reqwest::header::HeaderMap, Value)]) -> Vec<u16> {
    answers
        .iter()
        .map(|(status, _, _)| status.as_u16())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_budgets_refuse_and_alert_the_webhook_once_per_threshold() {
    let upstream = mock().await;
    // Any mock records every request, whatever its path: it doubles as the webhook receiver.
    let hooks = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let general = format!(
        "  alert_to_webhook_url: {{budget_alerts: \"{}/budget-hook\"}}\n",
        hooks.base_url()
    );
    let gateway = Gateway::start_with(
        &config(&upstream, &general, ""),
        &["--data-dir", data.path().to_str().expect("utf-8 path")],
        &[],
    );
    let (status, _, team) = send_json(gateway.post(
        "/team/new",
        &json!({"team_id": "t-alerts", "max_budget": 0.02, "soft_budget": 0.01}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{team}");
    let key = generate_key(&gateway, json!({"team_id": "t-alerts"})).await;
    // 0.006 a call: 0.012 crosses the soft budget, 0.018 crosses 90 %, 0.024 the budget.
    for _ in 0..4 {
        let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, body) = chat(&gateway, &key, &priced_chat()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("Budget has been exceeded! Team=t-alerts Current cost: "));
    assert!(
        hooks
            .wait_until(Duration::from_secs(5), |hooks| hooks.recorded().len() >= 3)
            .await,
        "alerts: {:?}",
        hooks.recorded()
    );
    // Nothing more arrives: each threshold alerts once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let texts: Vec<String> = hooks
        .recorded()
        .iter()
        .map(|hook| {
            assert_eq!(hook.method, "POST");
            assert!(hook.path.ends_with("/budget-hook"), "{}", hook.path);
            hook.body["text"].as_str().expect("slack text").to_owned()
        })
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    for (title, text) in [
        "Soft Budget Crossed",
        "Budget Nearly Spent (90%)",
        "Budget Crossed",
    ]
    .iter()
    .zip(&texts)
    {
        assert!(text.starts_with(title), "{text}");
        assert!(text.contains("team: t-alerts"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_user_and_proxy_budgets_apply_to_the_master_key_too() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    // Less than one call per end user; the proxy affords three calls in all.
    let sections = format!(
        "litellm_settings:\n  max_end_user_budget: {}\n  max_budget: {}\n",
        COST_PER_CALL / 2.0,
        COST_PER_CALL * 2.5
    );
    let gateway = Gateway::start_with(
        &config(&upstream, "", &sections),
        &["--data-dir", data.path().to_str().expect("utf-8 path")],
        &[],
    );
    assert!(
        !gateway.log().contains("max_budget"),
        "read, so not listed as unsupported: {}",
        gateway.log()
    );
    let as_customer = |user: &str| {
        let mut body = priced_chat();
        body["user"] = json!(user);
        body
    };
    let (status, _, body) = chat(&gateway, MASTER_KEY, &as_customer("cust-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = chat(&gateway, MASTER_KEY, &as_customer("cust-1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("ExceededBudget: End User=cust-1 over budget. Spend="));
    // Another customer has its own budget, until the proxy's runs out.
    for customer in ["cust-2", "cust-3"] {
        let (status, _, body) = chat(&gateway, MASTER_KEY, &as_customer(customer)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, body) = chat(&gateway, MASTER_KEY, &as_customer("cust-4")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .starts_with("Budget has been exceeded! Current cost: "));
}
