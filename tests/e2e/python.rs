//! The official OpenAI and Anthropic Python SDKs as real clients
//! (`tests/python/openai_sdk_check.py`, `tests/python/anthropic_sdk_check.py`).
//!
//! Needs `SWITCHYARD_PYTHON`: a Python with the packages of `tests/python/requirements.txt`
//! (`cargo xtask test` sets it up in `.venv`). Without it the test is skipped, unless
//! `SWITCHYARD_REQUIRE_PYTHON=1`, which makes a missing Python a failure.

use std::process::Stdio;
use std::time::Duration;

use switchyard_tests::{workspace_root, Gateway, MASTER_KEY};

use crate::common::mock;

/// Proxy variables would send the SDK's loopback requests elsewhere.
const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
];

/// The Python to run the SDK checks with, or `None` to skip (see the module docs).
fn python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("SWITCHYARD_PYTHON").filter(|p| !p.is_empty());
    if python.is_none() {
        let required = std::env::var("SWITCHYARD_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SWITCHYARD_REQUIRE_PYTHON=1 but SWITCHYARD_PYTHON is not set (a Python with \
             tests/python/requirements.txt installed, e.g. .venv/bin/python)"
        );
    }
    python
}

/// Runs `tests/python/<script>` against `gateway`; asserts it passed and returns its stdout.
async fn run_check(python: &std::ffi::OsStr, script: &str, gateway: &Gateway) -> String {
    let script = workspace_root().join("tests").join("python").join(script);
    let mut command = tokio::process::Command::new(python);
    command
        .arg(&script)
        .env("GATEWAY_URL", gateway.base_url())
        .env("GATEWAY_KEY", MASTER_KEY)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within 120 s", script.display()))
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.to_string_lossy()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        script.display(),
        output.status
    );
    assert!(
        stdout.contains("all checks passed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    println!("{}", stdout.trim_end());
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_sdk() {
    let Some(python) = python() else {
        println!("python_openai_sdk: skipped (SWITCHYARD_PYTHON is not set)");
        return;
    };
    let upstream = mock().await;
    let base = upstream.base_url();
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: chat-upstream
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-upstream-python}}
  - model_name: chat-mocked
    litellm_params: {{model: openai/gpt-4o, mock_response: "Mocked hello."}}
  - model_name: embed-upstream
    litellm_params: {{model: openai/text-embedding-3-small, api_base: "{base}"}}
general_settings:
  master_key: {MASTER_KEY}
"#
    ));
    run_check(&python, "openai_sdk_check.py", &gateway).await;
    // The SDK's calls really went through the mock upstream (not only mock_response).
    assert!(
        upstream.request_count() >= 4,
        "{} upstream requests",
        upstream.request_count()
    );
    let recorded = upstream.recorded();
    let sdk_request = recorded
        .iter()
        .find(|request| request.path == "/v1/chat/completions")
        .expect("a chat request upstream");
    assert_eq!(sdk_request.body["model"], "gpt-4o-mini");
    assert_eq!(
        sdk_request.header("authorization"),
        Some("Bearer sk-upstream-python")
    );
}

/// The Anthropic SDK against `/v1/messages`, with an OpenAI-compatible model behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_anthropic_sdk() {
    let Some(python) = python() else {
        println!("python_anthropic_sdk: skipped (SWITCHYARD_PYTHON is not set)");
        return;
    };
    let upstream = mock().await;
    let base = upstream.base_url();
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: chat-upstream
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-upstream-anthropic-sdk}}
router_settings:
  num_retries: 0
general_settings:
  master_key: {MASTER_KEY}
"#
    ));
    run_check(&python, "anthropic_sdk_check.py", &gateway).await;
    let recorded = upstream.recorded();
    let chats: Vec<_> = recorded
        .iter()
        .filter(|request| request.path == "/v1/chat/completions")
        .collect();
    // create, stream, three tool-use calls, one 429 (count_tokens calls nothing).
    assert_eq!(chats.len(), 6, "{recorded:?}");
    for chat in &chats {
        assert_eq!(chat.body["model"], "gpt-4o-mini");
        assert_eq!(
            chat.header("authorization"),
            Some("Bearer sk-upstream-anthropic-sdk")
        );
        assert_eq!(
            chat.header("x-api-key"),
            None,
            "the client key never goes upstream"
        );
    }
    let create = chats
        .iter()
        .find(|chat| chat.body.get("user").is_some())
        .expect("the create call");
    assert_eq!(create.body["user"], "sdk-user");
    assert_eq!(create.body["stop"], serde_json::json!(["END"]));
    assert_eq!(create.body["messages"][0]["role"], "system");
    let tool_turn = chats
        .iter()
        .find(|chat| {
            chat.body["messages"]
                .as_array()
                .is_some_and(|m| m.len() == 3)
        })
        .expect("the tool-result turn");
    assert_eq!(tool_turn.body["messages"][2]["role"], "tool");
    assert_eq!(tool_turn.body["messages"][2]["tool_call_id"], "call_paris");
}
