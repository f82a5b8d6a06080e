//! `GET /health`: each deployment probed upstream, LiteLLM's shape, admin only, `?model=`.

use reqwest::StatusCode;
use switchyard_tests::{closed_port, Gateway, MASTER_KEY};

use crate::common::{mock, send_json};

const SECRET: &str = "sk-upstream-health-secret-42";

#[tokio::test]
async fn health_probes_each_deployment_and_reports_healthy_and_unhealthy() {
    let upstream = mock().await;
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: healthy
    litellm_params:
      model: openai/gpt-4o
      api_base: {base}
      api_key: {SECRET}
    model_info: {{id: healthy-1}}
  - model_name: broken
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:{port}/v1
      api_key: {SECRET}
    model_info: {{id: broken-1}}
general_settings:
  master_key: {MASTER_KEY}
"#,
        base = upstream.base_url(),
        port = closed_port(),
    ));

    let (status, _, body) = send_json(gateway.get("/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert_eq!(body["healthy_count"], 1, "{body}");
    assert_eq!(body["unhealthy_count"], 1, "{body}");
    let healthy = &body["healthy_endpoints"][0];
    assert_eq!(healthy["model"], "openai/gpt-4o", "{body}");
    assert!(healthy.get("error").is_none(), "{body}");
    let unhealthy = &body["unhealthy_endpoints"][0];
    assert_eq!(unhealthy["model"], "openai/gpt-4o", "{body}");
    assert!(
        unhealthy["api_base"]
            .as_str()
            .is_some_and(|base| base.starts_with("http://127.0.0.1:")),
        "{body}"
    );
    assert!(
        unhealthy["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    // The probe was one real, one-token chat call.
    let probes = upstream.recorded();
    assert_eq!(probes.len(), 1);
    let probe = &probes[0].body;
    assert_eq!(probe["max_tokens"], 1, "{probe}");

    let (status, _, only) = send_json(gateway.get("/health?model=healthy")).await;
    assert_eq!(status, StatusCode::OK, "{only}");
    assert_eq!(only["healthy_count"], 1, "{only}");
    assert_eq!(only["unhealthy_count"], 0, "{only}");
    let (_, _, broken) = send_json(gateway.get("/health?model=broken")).await;
    assert_eq!(broken["healthy_count"], 0, "{broken}");
    assert_eq!(broken["unhealthy_count"], 1, "{broken}");

    let anonymous = gateway
        .client()
        .get(gateway.url("/health"))
        .send()
        .await
        .expect("send the request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
