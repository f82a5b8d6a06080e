//! Azure OpenAI deployments (`azure/`) through the real gateway, against a scripted mock that
//! answers like Azure: deployment URLs with `api-version`, the `api-key` header, and the 400
//! `Unknown parameter: 'stream_options'` of api-versions older than `2024-08-01-preview`, and
//! the content filter's 400 whose verdict (`innererror`) must reach the client.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::scripted::{ScriptedAnswer, ScriptedRequest, ScriptedUpstream};
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{chunks, open_stream, read_stream, send_json};

const API_KEY: &str = "az-e2e-key";

fn unknown_stream_options() -> ScriptedAnswer {
    let error = json!({"error": {"message": "Unknown parameter: 'stream_options'.",
        "type": "invalid_request_error", "param": "stream_options", "code": "unknown_parameter"}});
    (400, "application/json", error.to_string())
}

fn stream(with_usage: bool) -> String {
    let chunk = |choices: Value| {
        json!({"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1_700_000_000,
               "model": "gpt-4o-2024-08-06", "choices": choices})
    };
    let mut events = vec![
        json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
               "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}),
        chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": "Bonjour"}}])),
        chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
    ];
    if with_usage {
        let mut usage = chunk(json!([]));
        usage["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11});
        events.push(usage);
    }
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    text
}

fn answer(request: &ScriptedRequest) -> ScriptedAnswer {
    if request.header("api-key") != Some(API_KEY) {
        return (401, "application/json", json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}}).to_string());
    }
    let Some(version) = request
        .target
        .strip_prefix("/openai/deployments/gpt-4o-eu/chat/completions?api-version=")
    else {
        return (
            404,
            "application/json",
            json!({"error": {"code": "404", "message": "Resource not found"}}).to_string(),
        );
    };
    let body = request.json();
    let old = version < "2024-08-01";
    if old && body.get("stream_options").is_some() {
        return unknown_stream_options();
    }
    let with_usage = body["stream_options"]["include_usage"] == true;
    (200, "text/event-stream", stream(with_usage))
}

/// The deployment `gpt-4o-eu` on the mock, as the model group `name`.
fn deployment(base: &str, name: &str, version: &str, drop: bool) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: azure/gpt-4o-eu\n      api_base: {base}\n      api_key: {API_KEY}\n      api_version: '{version}'\n      drop_params: {drop}\n"
    )
}

/// A gateway over `deployments`, without retries or cooldowns, plus `router_settings` lines.
fn gateway_over(deployments: &[String], router_settings: &str) -> Gateway {
    Gateway::start(&format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n{router_settings}general_settings:\n  master_key: {MASTER_KEY}\n",
        deployments.concat(),
    ))
}

fn azure_gateway(base: &str) -> Gateway {
    gateway_over(
        &[
            deployment(base, "current", "2024-10-21", false),
            deployment(base, "old", "2024-06-01", false),
            deployment(base, "old-dropping", "2024-06-01", true),
        ],
        "",
    )
}

fn stream_body(model: &str, include_usage: bool) -> Value {
    let mut body = json!({"model": model, "stream": true,
                          "messages": [{"role": "user", "content": "Salut"}]});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

async fn streamed(gateway: &Gateway, body: &Value) -> Vec<Value> {
    chunks(&read_stream(open_stream(gateway, "/v1/chat/completions", body).await).await)
}

fn usage_chunks(chunks: &[Value]) -> usize {
    chunks.iter().filter(|c| c["usage"].is_object()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_options_reach_only_api_versions_that_take_them() {
    let upstream = ScriptedUpstream::start(answer).await;
    let gateway = azure_gateway(&upstream.base_url);

    // Current version: the gateway asks for usage; the client that did not gets none.
    let plain = streamed(&gateway, &stream_body("current", false)).await;
    assert_eq!(usage_chunks(&plain), 0, "{plain:?}");
    assert_eq!(
        plain[0]["choices"][0]["delta"]["content"], "Bonjour",
        "{plain:?}"
    );
    let asked = streamed(&gateway, &stream_body("current", true)).await;
    assert_eq!(
        asked.last().unwrap()["usage"]["total_tokens"],
        11,
        "{asked:?}"
    );

    // Old version: the gateway's own usage request is left out; the stream still works.
    let old = streamed(&gateway, &stream_body("old", false)).await;
    assert_eq!(
        old[0]["choices"][0]["delta"]["content"], "Bonjour",
        "{old:?}"
    );
    assert_eq!(usage_chunks(&old), 0, "{old:?}");

    // The client's own stream_options: refused (naming it) unless the deployment drops it.
    let (status, _, error) =
        send_json(gateway.post("/v1/chat/completions", &stream_body("old", true))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["param"], "stream_options", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drop_params"),
        "{error}"
    );
    let dropped = streamed(&gateway, &stream_body("old-dropping", true)).await;
    assert_eq!(
        dropped[0]["choices"][0]["delta"]["content"], "Bonjour",
        "{dropped:?}"
    );
    // The client asked for usage and Azure could not be asked: the gateway's estimate comes
    // last, in the stream's own shape, as LiteLLM sends it.
    assert_eq!(usage_chunks(&dropped), 1, "{dropped:?}");
    let owed = dropped.last().unwrap();
    assert_eq!(owed["choices"], json!([]), "{owed}");
    assert_eq!(owed["object"], "chat.completion.chunk", "{owed}");
    assert_eq!(owed["id"], dropped[0]["id"], "{owed}");
    let usage = &owed["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{owed}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{owed}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        ),
        "{owed}"
    );

    let sent: Vec<(String, Value)> = upstream
        .requests()
        .iter()
        .map(|r| (r.target.clone(), r.json()))
        .collect();
    assert_eq!(
        sent.len(),
        4,
        "the refused call never reaches Azure: {sent:?}"
    );
    for (target, body) in &sent {
        let expected = target
            .ends_with("2024-10-21")
            .then(|| json!({"include_usage": true}));
        assert_eq!(
            body.get("stream_options").cloned(),
            expected,
            "{target}: {body}"
        );
    }
}

/// Azure's refusal of a prompt, with the filter's verdict in `innererror`.
fn content_filter_refusal() -> Value {
    json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": true, "severity": "high"},
            "jailbreak": {"filtered": false, "detected": false},
            "self_harm": {"filtered": false, "severity": "safe"},
            "sexual": {"filtered": false, "severity": "safe"},
            "violence": {"filtered": false, "severity": "safe"}}}}})
}

/// Refuses a plain call with a 400; refuses a stream after its first chunk, in band.
fn refusing(request: &ScriptedRequest) -> ScriptedAnswer {
    if request.json()["stream"] != true {
        return (
            400,
            "application/json",
            content_filter_refusal().to_string(),
        );
    }
    let first = json!({"id": "chatcmpl-az", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Bon"}}]});
    let text = format!("data: {first}\n\ndata: {}\n\n", content_filter_refusal());
    (200, "text/event-stream", text)
}

/// Asserts an error object carries Azure's verdict as LiteLLM relays it.
fn assert_carries_verdict(error: &Value) {
    let detail = &error["error"];
    assert_eq!(detail["code"], "400", "code stays the status: {error}");
    assert!(
        detail["message"]
            .as_str()
            .unwrap()
            .starts_with("litellm.ContentPolicyViolationError: AzureException - "),
        "{error}"
    );
    let fields = &detail["provider_specific_fields"];
    let verdict = &fields["innererror"]["content_filter_result"];
    assert_eq!(
        verdict["hate"],
        json!({"filtered": true, "severity": "high"}),
        "{error}"
    );
    assert_eq!(verdict["jailbreak"]["detected"], false, "{error}");
    assert_eq!(fields["inner_error"], fields["innererror"], "{error}");
    assert_eq!(fields["azure_error"]["code"], "content_filter", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_filter_refusals_carry_the_filter_verdict() {
    let upstream = ScriptedUpstream::start(refusing).await;
    let base = &upstream.base_url;
    let gateway = gateway_over(
        &[
            deployment(base, "current", "2024-10-21", false),
            deployment(base, "backup", "2024-10-21", false),
        ],
        "  content_policy_fallbacks: [{current: [backup]}]\n",
    );

    // The backup refuses too; the client gets the first refusal, verdict included.
    let plain = json!({"model": "current", "messages": [{"role": "user", "content": "Salut"}]});
    let (status, _, error) = send_json(gateway.post("/v1/chat/completions", &plain)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_carries_verdict(&error);
    assert_eq!(upstream.requests().len(), 2, "the fallback was tried");

    // Mid-stream, the in-band error event carries the same details.
    let frames = streamed(&gateway, &stream_body("current", false)).await;
    assert_eq!(
        frames[0]["choices"][0]["delta"]["content"], "Bon",
        "{frames:?}"
    );
    let error = frames
        .iter()
        .find(|frame| frame.get("error").is_some())
        .unwrap_or_else(|| panic!("no error event in {frames:?}"));
    assert_carries_verdict(error);

    assert_eq!(
        upstream.requests().len(),
        3,
        "a started stream is not retried"
    );
}
