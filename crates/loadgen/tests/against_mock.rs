//! The real `switchyard-loadgen` binary against an in-process mock upstream, briefly.

// Helpers here are not `#[test]` functions, which clippy.toml already exempts; a panic in a
// test crate is the failure report we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use switchyard_mock_upstream::MockUpstream;
use tokio::process::Command;

async fn loadgen(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard-loadgen"))
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

const BODY: &str =
    r#"{"model":"bench-model","messages":[{"role":"user","content":"hi"}],"max_tokens":64}"#;
const STREAM_BODY: &str = r#"{"model":"bench-model","messages":[{"role":"user","content":"hi"}],"max_tokens":64,"stream":true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_stream_run_reports_requests_and_latency() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!("{}/chat/completions", mock.base_url());
    let report = loadgen(&[
        "--url",
        &url,
        "--body",
        BODY,
        "--header",
        "Authorization: Bearer sk-test",
        "--concurrency",
        "2",
        "--duration-secs",
        "0.5",
        "--warmup-secs",
        "0.1",
    ])
    .await;
    let requests = report["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(report["errors_non_2xx"], 0);
    assert_eq!(report["errors_io"], 0);
    assert!(report["rps"].as_f64().unwrap() > 0.0);
    for key in ["p50", "p90", "p99", "max", "mean"] {
        assert!(report["latency_us"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(report.get("ttfb_us").is_none());
    assert!(report["total_requests_including_warmup"].as_u64().unwrap() >= requests);
    // Every request the mock saw came with the header, over at most one connection per worker.
    let recorded = mock.recorded();
    assert!(recorded
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sk-test")));
    assert_eq!(recorded[0].body["model"], "bench-model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_run_reports_ttfb_and_chunks() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!("{}/chat/completions", mock.base_url());
    let report = loadgen(&[
        "--url",
        &url,
        "--body",
        STREAM_BODY,
        "--stream",
        "--duration-secs",
        "0.5",
    ])
    .await;
    assert!(report["requests"].as_u64().unwrap() > 0);
    assert_eq!(report["errors_io"], 0);
    // role + 20 content + stop + [DONE]
    assert_eq!(report["chunks_per_response"], 23.0);
    let ttfb = report["ttfb_us"]["p50"].as_u64().unwrap();
    assert!(ttfb > 0 && ttfb <= report["latency_us"]["p50"].as_u64().unwrap());
    assert!(mock.streams_completed() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_responses_are_counted_separately() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!("{}/chat/completions", mock.base_url());
    let report = loadgen(&[
        "--url",
        &url,
        "--body",
        BODY,
        "--header",
        "x-mock-status: 503",
        "--duration-secs",
        "0.3",
    ])
    .await;
    let requests = report["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(report["errors_non_2xx"].as_u64().unwrap(), requests);
    assert_eq!(report["status_counts"]["503"].as_u64().unwrap(), requests);
    assert_eq!(report["latency_us"]["p50"], Value::Null);
}

#[tokio::test]
async fn non_loopback_targets_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard-loadgen"))
        .args([
            "--url",
            "http://192.0.2.1/v1/chat/completions",
            "--duration-secs",
            "0.1",
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
