//! Model resolution: wildcards, aliases, deployment ids, load balancing, `mock_response`.

use reqwest::StatusCode;
use serde_json::json;
use switchyard_tests::sse::stream_text;
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{
    assert_error, chat_body, chunks, header, mock, open_stream, read_stream, send_json,
    ExpectedError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_and_aliases_route_to_the_right_upstream_model() {
    let groups_upstream = mock().await;
    let wildcard_upstream = mock().await;
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: claude-like
    litellm_params:
      model: openai/house-model-v2
      api_base: {groups}
    model_info:
      id: house-1
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_base: {wildcard}
    model_info:
      id: wildcard-openai
  - model_name: "team/*/fast"
    litellm_params:
      model: "openai/*-turbo"
      api_base: {wildcard}
    model_info:
      id: wildcard-team
router_settings:
  model_group_alias:
    house: claude-like
    hidden-house:
      model: claude-like
      hidden: true
general_settings:
  master_key: {MASTER_KEY}
"#,
        groups = groups_upstream.base_url(),
        wildcard = wildcard_upstream.base_url(),
    ));

    // Wildcard: the upstream gets what `*` matched.
    let (status, headers, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("openai/gpt-4.1-mini"))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(header(&headers, "x-litellm-model-id"), "wildcard-openai");
    assert_eq!(
        header(&headers, "x-litellm-model-group"),
        "openai/gpt-4.1-mini"
    );
    assert_eq!(
        wildcard_upstream
            .recorded()
            .last()
            .map(|r| r.body["model"].clone()),
        Some(json!("gpt-4.1-mini"))
    );

    // A wildcard in the middle, substituted into the upstream model.
    let (status, headers, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("team/llama/fast"))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(header(&headers, "x-litellm-model-id"), "wildcard-team");
    assert_eq!(
        wildcard_upstream
            .recorded()
            .last()
            .map(|r| r.body["model"].clone()),
        Some(json!("llama-turbo"))
    );

    // Aliases (visible and hidden) route to their group, on the group's upstream.
    for alias in ["house", "hidden-house"] {
        let (status, headers, reply) =
            send_json(gateway.post("/v1/chat/completions", &chat_body(alias))).await;
        assert_eq!(status, StatusCode::OK, "{alias}: {reply}");
        assert_eq!(header(&headers, "x-litellm-model-group"), "claude-like");
        assert_eq!(header(&headers, "x-litellm-model-id"), "house-1");
    }
    // The group by name, by deployment id and by its litellm model.
    for name in ["claude-like", "house-1", "openai/house-model-v2"] {
        let (status, headers, reply) =
            send_json(gateway.post("/v1/chat/completions", &chat_body(name))).await;
        assert_eq!(status, StatusCode::OK, "{name}: {reply}");
        assert_eq!(header(&headers, "x-litellm-model-id"), "house-1", "{name}");
    }
    let recorded = groups_upstream.recorded();
    assert_eq!(recorded.len(), 5);
    assert!(recorded
        .iter()
        .all(|request| request.body["model"] == "house-model-v2"));
    assert_eq!(wildcard_upstream.request_count(), 2);

    // Something no pattern matches.
    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("anthropic/claude"))).await;
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 400,
            kind: "invalid_request_error",
            param: Some("model"),
            message_prefix:
                "/chat/completions: Invalid model name passed in model=anthropic/claude",
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_balances_across_its_deployments() {
    let first = mock().await;
    let second = mock().await;
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: pool
    litellm_params: {{model: openai/m1, api_base: "{a}"}}
    model_info: {{id: pool-1}}
  - model_name: pool
    litellm_params: {{model: openai/m2, api_base: "{b}"}}
    model_info: {{id: pool-2}}
general_settings:
  master_key: {MASTER_KEY}
"#,
        a = first.base_url(),
        b = second.base_url(),
    ));
    for _ in 0..40 {
        let (status, headers, reply) =
            send_json(gateway.post("/v1/chat/completions", &chat_body("pool"))).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let id = header(&headers, "x-litellm-model-id");
        let expected_model = match id {
            "pool-1" => "m1",
            "pool-2" => "m2",
            other => panic!("unexpected deployment {other}"),
        };
        assert_eq!(reply["model"], expected_model);
    }
    assert_eq!(first.request_count() + second.request_count(), 40);
    assert!(
        first.request_count() > 0 && second.request_count() > 0,
        "one deployment got every request: {} / {}",
        first.request_count(),
        second.request_count()
    );
}

const MOCK_CONFIG: &str = r#"
model_list:
  - model_name: canned
    litellm_params:
      model: openai/gpt-4o
      mock_response: "Canned reply."
    model_info:
      id: canned-1
  - model_name: canned-embed
    litellm_params:
      model: openai/text-embedding-3-small
      mock_response: "unused"
  - model_name: rate-limited
    litellm_params:
      model: openai/gpt-4o
      mock_response: "litellm.RateLimitError: too many"
general_settings:
  master_key: MASTER
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_response_deployments_answer_without_an_upstream() {
    let gateway = Gateway::start(&MOCK_CONFIG.replace("MASTER", MASTER_KEY));
    let (status, headers, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("canned"))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "Canned reply.");
    assert_eq!(reply["model"], "gpt-4o");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})
    );
    assert_eq!(header(&headers, "x-litellm-model-id"), "canned-1");
    assert!(headers.get("x-litellm-model-api-base").is_none());

    // Streaming from the mock.
    let mut body = chat_body("canned");
    body["stream"] = json!(true);
    let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;
    assert_eq!(stream_text(&frames), "Canned reply.");
    assert!(chunks(&frames)
        .iter()
        .all(|chunk| chunk["object"] == "chat.completion.chunk"));

    // Completions and embeddings from the mock.
    let (status, _, reply) = send_json(gateway.post(
        "/v1/completions",
        &json!({"model": "canned", "prompt": "x"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["choices"][0]["text"], "Canned reply.");
    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "canned-embed", "input": ["a", "b"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"].as_array().map(Vec::len), Some(2));

    // A mock naming an exception class raises it.
    let (status, headers, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat_body("rate-limited"))).await;
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 429,
            kind: "rate_limit_error",
            param: None,
            message_prefix: "litellm.RateLimitError: MockException - too many",
        },
    );
    assert!(headers.get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_mock_response_never_reaches_the_upstream() {
    let (upstream, gateway) = crate::common::standard().await;
    let mut body = chat_body("gpt-4o");
    body["mock_response"] = json!("from the request");
    let (status, headers, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "from the request"
    );
    assert_eq!(header(&headers, "x-litellm-model-group"), "gpt-4o");
    body["stream"] = json!(true);
    let frames = read_stream(open_stream(&gateway, "/v1/chat/completions", &body).await).await;
    assert_eq!(stream_text(&frames), "from the request");
    assert_eq!(upstream.request_count(), 0);
}
