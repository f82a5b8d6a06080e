//! `/models`, `/models/{id}`, `/model/info` and the public probes.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{mock, send_json};

const SECRET: &str = "sk-upstream-very-secret-key-99";

fn config(base: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}
      api_key: {SECRET}
    model_info:
      id: gpt-4o-a
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o-2024-08-06
      api_base: {base}
      api_key: {SECRET}
    model_info:
      id: gpt-4o-b
  - model_name: embed
    litellm_params:
      model: openai/text-embedding-3-small
      api_base: {base}
      api_key: {SECRET}
      organization: org-public
    model_info:
      id: embed-a
      mode: embedding
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_base: {base}
      api_key: {SECRET}
router_settings:
  model_group_alias:
    gpt4: gpt-4o
    internal-alias:
      model: gpt-4o
      hidden: true
general_settings:
  master_key: {MASTER_KEY}
"#
    )
}

fn ids(list: &Value) -> Vec<String> {
    assert_eq!(list["object"], "list", "{list}");
    list["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|model| {
            assert_eq!(model["object"], "model", "{model}");
            model["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_groups_and_visible_aliases_not_wildcards() {
    let upstream = mock().await;
    let gateway = Gateway::start(&config(&upstream.base_url()));
    for path in ["/v1/models", "/models"] {
        let (status, _, list) = send_json(gateway.get(path)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(ids(&list), ["gpt-4o", "embed", "gpt4"], "{path}");
    }
    let (status, _, list) = send_json(gateway.get("/v1/models?return_wildcard_routes=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&list), ["gpt-4o", "embed", "openai/*", "gpt4"]);

    let (status, _, model) = send_json(gateway.get("/v1/models/gpt-4o")).await;
    assert_eq!(status, StatusCode::OK, "{model}");
    assert_eq!(model["id"], "gpt-4o");
    assert_eq!(model["object"], "model");
    let (status, _, model) = send_json(gateway.get("/v1/models/gpt4")).await;
    assert_eq!(status, StatusCode::OK, "{model}");
    let (status, _, error) = send_json(gateway.get("/v1/models/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert_eq!(error["error"]["code"], "404");
    assert_eq!(error["error"]["param"], "model");
    assert_eq!(upstream.request_count(), 0, "listing never calls upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_info_shows_deployments_without_credentials() {
    let upstream = mock().await;
    let base = upstream.base_url();
    let gateway = Gateway::start(&config(&base));
    let response = gateway.get("/model/info").send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!(
        !text.contains(SECRET),
        "/model/info leaks the api_key: {text}"
    );
    assert!(
        !text.contains(MASTER_KEY),
        "/model/info leaks the master key"
    );
    let info: Value = serde_json::from_str(&text).expect("JSON");
    let data = info["data"].as_array().expect("data is a list");
    assert_eq!(data.len(), 4, "{info}");
    let first = &data[0];
    assert_eq!(first["model_name"], "gpt-4o");
    assert_eq!(first["litellm_params"]["model"], "openai/gpt-4o");
    assert_eq!(first["litellm_params"]["api_base"], json!(base));
    assert!(first["litellm_params"].get("api_key").is_none(), "{first}");
    assert_eq!(first["model_info"]["id"], "gpt-4o-a");
    assert_eq!(data[1]["model_info"]["id"], "gpt-4o-b");
    assert_eq!(data[2]["model_info"]["mode"], "embedding");
    assert_eq!(data[2]["litellm_params"]["organization"], "org-public");
    assert_eq!(data[3]["model_name"], "openai/*");
    // With the /v1 prefix as well.
    let (status, _, again) = send_json(gateway.get("/v1/model/info")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, info);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_are_public() {
    let upstream = mock().await;
    let gateway = Gateway::start(&config(&upstream.base_url()));
    let client = gateway.client();
    for path in ["/health/liveliness", "/health/liveness"] {
        let response = client.get(gateway.url(path)).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body, json!("I'm alive!"), "{path}");
    }
    let response = client
        .get(gateway.url("/health/readiness"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "healthy", "{body}");
    let response = client.get(gateway.url("/")).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    // Probes never need the upstream.
    assert_eq!(upstream.request_count(), 0);
}
