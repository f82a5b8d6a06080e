//! The process: start-up refusals, `switchyard check`, graceful shutdown on SIGTERM.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use switchyard_tests::sse::stream_text;
use switchyard_tests::{run_cli, run_expecting_failure, ConfigFile, Gateway, MASTER_KEY};

use crate::common::{chat_body, chat_with_faults, mock, open_stream, send_json, standard};

const MOCK_MODEL: &str = r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/x, mock_response: hi}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_or_missing_master_keys_are_refused() {
    let cases = [
        (String::new(), "no master key is set"),
        (
            "general_settings:\n  master_key: sk-1234\n".to_owned(),
            "the master key is a well-known example value",
        ),
        (
            "general_settings:\n  master_key: sk-short\n".to_owned(),
            "the master key is shorter than 12 characters",
        ),
    ];
    for (settings, reason) in cases {
        let config = format!("{MOCK_MODEL}{settings}");
        let (code, stderr) = run_expecting_failure(&config);
        assert_ne!(code, Some(0), "{config}");
        assert!(code.is_some(), "killed by a signal? {stderr}");
        assert!(
            stderr.contains(&format!("error: refusing to start: {reason}")),
            "{config}\nstderr: {stderr}"
        );
        assert!(
            stderr.contains("general_settings.master_key"),
            "the message names the setting: {stderr}"
        );
        assert!(
            stderr.contains("dangerously_permit_weak_or_unset_master_key"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_opt_in_allows_running_without_a_key() {
    let gateway = Gateway::start(&format!(
        "{MOCK_MODEL}general_settings:\n  dangerously_permit_weak_or_unset_master_key: true\n"
    ));
    let response = gateway
        .client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&chat_body("m"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["choices"][0]["message"]["content"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_exit_non_zero_naming_the_field_path() {
    let cases = [
        (
            format!(
                "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: localhost:1}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
            ),
            "model_list[0].litellm_params.api_base: expected an http:// or https:// URL",
        ),
        (
            format!(
                "model_list:\n  - model_name: ok\n    litellm_params: {{model: openai/m, mock_response: x}}\n  - model_name: m\n    litellm_params: {{model: openai/m, timeout: soon}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
            ),
            "model_list[1].litellm_params.timeout: expected a number",
        ),
        (
            format!(
                "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_key: os.environ/SWITCHYARD_E2E_UNSET_VARIABLE}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n"
            ),
            "model_list[0].litellm_params.api_key: environment variable SWITCHYARD_E2E_UNSET_VARIABLE is not set",
        ),
        ("model_list: [\n".to_owned(), "invalid YAML"),
    ];
    for (config, expected) in cases {
        let (code, stderr) = run_expecting_failure(&config);
        assert_eq!(code, Some(1), "{config}\nstderr: {stderr}");
        assert!(stderr.contains("error: "), "{stderr}");
        assert!(
            stderr.contains(expected),
            "stderr should name {expected:?}:\n{stderr}"
        );
        // `check` fails the same way.
        let file = ConfigFile::new(&config);
        let output = run_cli(&[
            OsStr::new("check"),
            OsStr::new("--config"),
            file.path().as_os_str(),
        ]);
        assert_eq!(output.code, Some(1), "{output:?}");
        assert!(output.stderr.contains(expected), "{output:?}");
    }
    // A config file that does not exist.
    let output = run_cli(&[
        OsStr::new("--config"),
        OsStr::new("/nonexistent/switchyard/config.yaml"),
    ]);
    assert_eq!(output.code, Some(1), "{output:?}");
    assert!(output.stderr.starts_with("error: "), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_groups_deployments_and_aliases() {
    let upstream = mock().await;
    let base = upstream.base_url();
    let config = ConfigFile::new(&format!(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_base: "{base}", api_key: sk-hidden-check-key}}
    model_info: {{id: dep-a}}
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}"}}
    model_info: {{id: dep-b}}
  - model_name: canned
    litellm_params: {{model: openai/x, mock_response: hello}}
    model_info: {{id: dep-c}}
router_settings:
  model_group_alias: {{gpt4: gpt-4o}}
general_settings:
  master_key: {MASTER_KEY}
"#
    ));
    let output = run_cli(&[
        OsStr::new("check"),
        OsStr::new("--config"),
        config.path().as_os_str(),
    ]);
    assert_eq!(output.code, Some(0), "{output:?}");
    let out = &output.stdout;
    assert!(out.contains("model groups: 2"), "{out}");
    assert!(out.contains("\n  gpt-4o\n"), "{out}");
    assert!(out.contains("\n  canned\n"), "{out}");
    assert!(
        out.contains(&format!("- openai/gpt-4o  id=dep-a  api_base={base}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("- openai/gpt-4o-mini  id=dep-b  api_base={base}")),
        "{out}"
    );
    assert!(
        out.contains("- openai/x  id=dep-c  api_base=(built-in mock)"),
        "{out}"
    );
    assert!(out.contains("gpt4 -> gpt-4o"), "{out}");
    assert!(out.contains("auth: master key set"), "{out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");
    assert!(
        !out.contains("sk-hidden-check-key"),
        "check prints the key: {out}"
    );
    assert!(
        !out.contains(MASTER_KEY),
        "check prints the master key: {out}"
    );
    // The serve flag form does the same.
    let output = run_cli(&[
        OsStr::new("--config"),
        config.path().as_os_str(),
        OsStr::new("--validate_config"),
    ]);
    assert_eq!(output.code, Some(0), "{output:?}");
    assert!(output.stdout.contains("model groups: 2"));
    assert_eq!(upstream.request_count(), 0, "check never calls upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_stream_finish_then_exits_zero() {
    let (upstream, gateway) = standard().await;
    let content = "0123456789";
    let mut body = chat_with_faults(
        "gpt-4o",
        json!({"chunks": 10, "chunk_delay_ms": 200, "content": content}),
    );
    body["stream"] = json!(true);
    let mut reader = open_stream(&gateway, "/v1/chat/completions", &body).await;
    let mut frames = Vec::new();
    // Role chunk and the first content chunk: the stream is in flight.
    for _ in 0..2 {
        frames.push(
            reader
                .next_frame(Duration::from_secs(5))
                .await
                .expect("a frame before SIGTERM"),
        );
    }
    let signalled = Instant::now();
    gateway.terminate();

    // While the stream drains, the probe must not report the gateway alive: new connections
    // are refused, or answered 503. (A fresh client, so no pooled connection is reused.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    let probe = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let probed = probe.get(gateway.url("/health/liveliness")).send().await;
    let probe_outcome = match probed {
        Ok(response) => {
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "liveliness answered during the drain"
            );
            "503"
        }
        Err(error) => {
            assert!(
                error.is_connect() || error.is_timeout() || error.is_request(),
                "unexpected probe error: {error}"
            );
            "not served"
        }
    };
    println!("liveliness during the drain: {probe_outcome}");
    assert!(
        gateway.try_exit_status().is_none(),
        "the gateway exited with a stream in flight (probe: {probe_outcome})"
    );

    // The stream still completes, every chunk and [DONE].
    let (rest, end) = reader.read_to_done(Duration::from_secs(15)).await;
    assert!(
        end.is_none(),
        "stream cut by shutdown ({end:?}); log:\n{}",
        gateway.log()
    );
    frames.extend(rest);
    assert_eq!(stream_text(&frames), content);
    assert!(frames.last().is_some_and(|frame| frame.is_done()));
    assert!(
        signalled.elapsed() >= Duration::from_millis(1200),
        "the stream ended too early to have spanned the shutdown: {:?}",
        signalled.elapsed()
    );
    reader.assert_ends(Duration::from_secs(5)).await;
    drop(reader);

    let status = gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no exit after the drain; log:\n{}", gateway.log()));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        gateway.log()
    );
    let log = gateway.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert_eq!(upstream.streams_completed(), 1);
    assert_eq!(upstream.streams_cancelled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_when_idle_exits_zero_promptly() {
    let (_upstream, gateway) = standard().await;
    let (status, _, _) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("gpt-4o"))).await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    let status = gateway.terminate_and_wait(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}; log:\n{}", gateway.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle shutdown took {:?} (an idle keep-alive connection should not hold it)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    let (upstream, gateway) = standard().await;
    let body = chat_with_faults(
        "gpt-4o",
        json!({"delay_ms": 1500, "content": "late but whole"}),
    );
    let request = gateway.post("/v1/chat/completions", &body).send();
    let in_flight = tokio::spawn(request);
    // Wait until the upstream has the request, so it is in flight at the gateway.
    assert!(
        upstream
            .wait_until(Duration::from_secs(5), |mock| mock.request_count() == 1)
            .await
    );
    gateway.terminate();
    let response = in_flight
        .await
        .expect("join")
        .expect("the in-flight request fails on shutdown");
    let (status, _, reply) = crate::common::read_json(response).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "late but whole");
    let status = gateway
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no exit after the drain; log:\n{}", gateway.log()));
    assert!(status.success(), "{status}");
}
