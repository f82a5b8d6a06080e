//! Non-streaming chat: the response as the client sees it and the request as the upstream sees
//! it.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::MASTER_KEY;

use crate::common::{chat_body, chat_with_faults, header, send_json, standard, UPSTREAM_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_returns_the_upstream_answer_with_usage_and_litellm_headers() {
    let (upstream, gateway) = standard().await;
    let body = chat_with_faults(
        "gpt-4o",
        json!({"content": "Hi there, human.", "prompt_tokens": 7, "completion_tokens": 5}),
    );
    let (status, headers, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    assert_eq!(reply["object"], "chat.completion");
    assert!(
        reply["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{reply}"
    );
    assert_eq!(reply["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hi there, human."
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
    );

    let call_id = header(&headers, "x-litellm-call-id");
    assert_eq!(call_id.len(), 36, "call id {call_id:?} is a UUID");
    assert_eq!(header(&headers, "x-litellm-model-id"), "dep-chat-1");
    assert_eq!(header(&headers, "x-litellm-model-group"), "gpt-4o");
    assert_eq!(
        header(&headers, "x-litellm-model-api-base"),
        upstream.base_url()
    );
    assert!(!header(&headers, "x-litellm-version").is_empty());
    let duration: f64 = header(&headers, "x-litellm-response-duration-ms")
        .parse()
        .expect("x-litellm-response-duration-ms is a number");
    assert!(duration >= 0.0, "{duration}");
    // The upstream's own response headers are passed on with the `llm_provider-` prefix.
    assert!(
        header(&headers, "llm_provider-content-type").starts_with("application/json"),
        "{headers:?}"
    );
    assert_eq!(
        header(&headers, "content-type"),
        "application/json",
        "{headers:?}"
    );
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_receives_its_model_name_key_extra_headers_and_only_openai_fields() {
    let (upstream, gateway) = standard().await;
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"}
    ]);
    let body = json!({
        "model": "gpt-4o",
        "messages": messages,
        "temperature": 0.25,
        "max_tokens": 64,
        "user": "user-17",
        // OpenAI fields the gateway does not model: forwarded untouched.
        "reasoning_effort": "low",
        "some_future_param": {"nested": [1, 2, {"deep": true}]},
        // Gateway-only fields: consumed, never forwarded.
        "metadata": {"trace_id": "t-1"},
        "litellm_metadata": {"x": 1},
        "tags": ["team-a"],
        "cache": {"no-cache": true},
        "fallbacks": ["embed"],
        "num_retries": 2,
        "guardrails": ["pii"],
        "timeout": 30,
        "mock_upstream": {"content": "ok"},
    });
    let (status, _, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let recorded = upstream.recorded();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let request = &recorded[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    // The upstream model name: the part of `openai/<name>` after the provider prefix.
    assert_eq!(request.body["model"], "gpt-4o-mini-upstream");
    assert_eq!(request.body["messages"], messages);
    assert_eq!(request.body["temperature"], json!(0.25));
    assert_eq!(request.body["max_tokens"], json!(64));
    assert_eq!(request.body["user"], "user-17");
    assert_eq!(request.body["reasoning_effort"], "low");
    assert_eq!(
        request.body["some_future_param"],
        json!({"nested": [1, 2, {"deep": true}]})
    );
    for gateway_only in [
        "metadata",
        "litellm_metadata",
        "tags",
        "cache",
        "fallbacks",
        "num_retries",
        "guardrails",
        "timeout",
        "mock_response",
    ] {
        assert!(
            request.body.get(gateway_only).is_none(),
            "`{gateway_only}` must not be forwarded: {}",
            request.body
        );
    }

    // Upstream credentials and configured headers, and never the caller's gateway key.
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(request.header("x-team-header"), Some("team-blue"));
    assert!(
        request
            .headers
            .iter()
            .all(|(_, value)| !value.contains(MASTER_KEY)),
        "the master key leaked upstream: {:?}",
        request.headers
    );
    assert!(request
        .header("content-type")
        .is_some_and(|value| value.starts_with("application/json")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_served_with_and_without_the_v1_prefix() {
    let (upstream, gateway) = standard().await;
    for path in ["/chat/completions", "/v1/chat/completions"] {
        let (status, headers, reply) = send_json(gateway.post(path, &chat_body("gpt-4o"))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(
            reply["choices"][0]["message"]["content"],
            switchyard_mock_upstream::DEFAULT_CONTENT,
            "{path}"
        );
        assert_eq!(header(&headers, "x-litellm-model-group"), "gpt-4o");
    }
    assert_eq!(upstream.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_and_engines_paths_take_the_model_from_the_path() {
    let (upstream, gateway) = standard().await;
    // Azure clients send no `model` in the body, and an `api-version` query parameter.
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    for path in [
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "/engines/gpt-4o/chat/completions",
    ] {
        let response = gateway
            .client()
            .post(gateway.url(path))
            .header("api-key", MASTER_KEY)
            .json(&body)
            .send()
            .await
            .expect("send");
        let (status, headers, reply) = crate::common::read_json(response).await;
        assert_eq!(status, StatusCode::OK, "{path}: {reply}");
        assert_eq!(reply["object"], "chat.completion", "{path}");
        assert_eq!(header(&headers, "x-litellm-model-group"), "gpt-4o");
    }
    // The path's model wins over a body's.
    let (status, headers, reply) = send_json(gateway.post(
        "/openai/deployments/gpt-4o/chat/completions",
        &chat_body("no-such-model"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(header(&headers, "x-litellm-model-group"), "gpt-4o");

    let recorded = upstream.recorded();
    assert_eq!(recorded.len(), 3);
    for request in &recorded {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.body["model"], "gpt-4o-mini-upstream");
    }
    // Azure-style embeddings.
    let (status, _, reply) = send_json(gateway.post(
        "/openai/deployments/embed/embeddings",
        &json!({"input": "hello"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_header_form_authenticates() {
    let (_upstream, gateway) = standard().await;
    let forms: [(&str, String); 5] = [
        ("authorization", format!("Bearer {MASTER_KEY}")),
        ("x-api-key", MASTER_KEY.to_owned()),
        ("api-key", MASTER_KEY.to_owned()),
        ("x-litellm-api-key", MASTER_KEY.to_owned()),
        ("x-litellm-api-key", format!("Bearer {MASTER_KEY}")),
    ];
    for (name, value) in forms {
        let response = gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .header(name, value.as_str())
            .json(&chat_body("gpt-4o"))
            .send()
            .await
            .expect("send");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{name}: {value}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_response_headers_are_exposed_with_the_llm_provider_prefix() {
    let (_upstream, gateway) = standard().await;
    let body: Value = chat_with_faults("gpt-4o", json!({"echo_headers": true}));
    let (status, headers, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let length: usize = header(&headers, "llm_provider-content-length")
        .parse()
        .expect("a length");
    assert!(length > 0);
    // Unknown response fields (here the mock's echo of the headers it received) reach the
    // client untouched; the echo shows the upstream key was sent, not the caller's.
    let echoed = reply["mock_received_headers"]
        .as_object()
        .expect("mock_received_headers");
    assert_eq!(
        echoed.get("authorization"),
        Some(&json!(format!("Bearer {UPSTREAM_KEY}")))
    );
    assert!(
        echoed
            .values()
            .all(|value| value.as_str().is_none_or(|text| !text.contains(MASTER_KEY))),
        "{echoed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_answers_and_call_ids() {
    let (upstream, gateway) = standard().await;
    let gateway = &gateway;
    let tasks = (0..32).map(|index| async move {
        let content = format!("answer {index}");
        let body = chat_with_faults("gpt-4o", json!({"content": content, "delay_ms": 20}));
        let (status, headers, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["choices"][0]["message"]["content"], json!(content));
        header(&headers, "x-litellm-call-id").to_owned()
    });
    let mut call_ids = futures::future::join_all(tasks).await;
    call_ids.sort();
    call_ids.dedup();
    assert_eq!(call_ids.len(), 32, "call ids are unique");
    assert_eq!(upstream.request_count(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_from_the_environment_and_a_custom_key_header() {
    let upstream = crate::common::mock().await;
    // `os.environ/NAME` resolves against the process environment.
    let config = crate::common::standard_config(&upstream).replace(
        &format!("  master_key: {MASTER_KEY}\n"),
        "  master_key: os.environ/SWITCHYARD_E2E_MASTER\n  litellm_key_header_name: X-Gateway-Token\n",
    );
    let gateway = switchyard_tests::Gateway::start_with(
        &config,
        &[],
        &[("SWITCHYARD_E2E_MASTER", "sk-from-the-environment-77")],
    );
    let send = |name: &'static str, value: &'static str| {
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .header(name, value)
            .json(&chat_body("gpt-4o"))
            .send()
    };
    let response = send("x-gateway-token", "sk-from-the-environment-77")
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let response = send("authorization", "Bearer sk-from-the-environment-77")
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let response = send("x-gateway-token", "sk-wrong-key-00000000")
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The literal config key is not the key any more.
    let response = send("authorization", "Bearer sk-switchyard-e2e-0123456789")
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // LITELLM_MASTER_KEY when the config names none.
    let config = crate::common::standard_config(&upstream).replace(
        &format!("general_settings:\n  master_key: {MASTER_KEY}\n"),
        "",
    );
    assert!(!config.contains("master_key"), "{config}");
    let gateway = switchyard_tests::Gateway::start_with(
        &config,
        &[],
        &[("LITELLM_MASTER_KEY", "sk-litellm-env-master-88")],
    );
    let response = gateway
        .client()
        .get(gateway.url("/v1/models"))
        .bearer_auth("sk-litellm-env-master-88")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
}
