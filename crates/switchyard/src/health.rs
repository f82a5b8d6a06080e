//! `/health`: every deployment probed with a cheap real call through its provider adapter.
//!
//! Chat deployments get a one-token chat ("ping", `max_tokens: 1`); `model_info.mode:
//! embedding` deployments a one-item embedding. Probes run concurrently, each bounded by
//! [`PROBE_TIMEOUT`]. Deployments with a configured `mock_response` are healthy without a
//! call. Wildcard deployments (`openai/*`) name no concrete model: they are probed with
//! `model_info.health_check_model` when set (as LiteLLM does), with the requested model when
//! `/health?model=openai/gpt-4o` resolved to them, and skipped otherwise.

use std::time::Duration;

use http::HeaderMap;
use serde_json::{json, Map, Value};
use switchyard_llm_types::{ChatCompletionRequest, ChatMessage, EmbeddingInput, EmbeddingRequest};
use switchyard_providers::CallOptions;
use switchyard_router::{Deployment, Pattern};

use crate::deployment::DeploymentHandle;

/// The longest a single probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of a health check, in LiteLLM's `/health` shape (see [`HealthReport::to_json`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthReport {
    /// Each healthy deployment's public `litellm_params` (no credentials).
    pub healthy_endpoints: Vec<Value>,
    /// Each unhealthy deployment's public `litellm_params`, plus `error`.
    pub unhealthy_endpoints: Vec<Value>,
}

impl HealthReport {
    /// `{"healthy_endpoints":[...],"unhealthy_endpoints":[...],"healthy_count":N,"unhealthy_count":M}`.
    pub fn to_json(&self) -> Value {
        json!({
            "healthy_endpoints": self.healthy_endpoints,
            "unhealthy_endpoints": self.unhealthy_endpoints,
            "healthy_count": self.healthy_endpoints.len(),
            "unhealthy_count": self.unhealthy_endpoints.len(),
        })
    }
}

/// One deployment to probe; `model` overrides the upstream model (for wildcards).
pub(crate) struct Target<'a> {
    pub deployment: &'a Deployment<DeploymentHandle>,
    pub model: Option<String>,
}

/// The model a wildcard deployment is probed with: `model_info.health_check_model`, without
/// the deployment's own provider prefix (`openai/gpt-4o-mini` → `gpt-4o-mini`).
fn health_check_model(deployment: &Deployment<DeploymentHandle>) -> Option<String> {
    let configured = deployment
        .handle
        .public_info
        .pointer("/model_info/health_check_model")
        .and_then(Value::as_str)?;
    let prefix = format!("{}/", deployment.handle.provider_name);
    Some(
        configured
            .strip_prefix(&prefix)
            .unwrap_or(configured)
            .to_owned(),
    )
}

/// Probes `targets` concurrently and sorts them into healthy and unhealthy, in order.
pub(crate) async fn check(targets: Vec<Target<'_>>) -> HealthReport {
    let probes = targets
        .into_iter()
        .filter_map(|target| {
            let model = if is_wildcard(target.deployment) {
                Some(
                    target
                        .model
                        .or_else(|| health_check_model(target.deployment))?,
                )
            } else {
                target.model
            };
            Some((target.deployment, model))
        })
        .map(|(deployment, model)| async move {
            let mut shown = endpoint(deployment);
            if let (Some(model), Value::Object(map)) = (&model, &mut shown) {
                map.insert("health_check_model".into(), Value::from(model.clone()));
            }
            (shown, probe(deployment, model).await)
        });
    let mut report = HealthReport::default();
    for (mut endpoint, outcome) in futures::future::join_all(probes).await {
        match outcome {
            Ok(()) => report.healthy_endpoints.push(endpoint),
            Err(error) => {
                if let Value::Object(map) = &mut endpoint {
                    map.insert("error".into(), Value::from(error));
                }
                report.unhealthy_endpoints.push(endpoint);
            }
        }
    }
    report
}

fn is_wildcard(deployment: &Deployment<DeploymentHandle>) -> bool {
    Pattern::is_pattern(&deployment.model_name) || deployment.handle.upstream_model.contains('*')
}

/// The deployment's secret-free `litellm_params`, as `/model/info` shows them (with `model`).
fn endpoint(deployment: &Deployment<DeploymentHandle>) -> Value {
    let mut params = deployment
        .handle
        .public_info
        .get("litellm_params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    params
        .entry("model")
        .or_insert_with(|| Value::from(deployment.litellm_model.clone()));
    Value::Object(params)
}

fn mode(deployment: &Deployment<DeploymentHandle>) -> &str {
    deployment
        .handle
        .public_info
        .pointer("/model_info/mode")
        .and_then(Value::as_str)
        .unwrap_or("chat")
}

/// One cheap real call; the error text when it fails or times out.
async fn probe(
    deployment: &Deployment<DeploymentHandle>,
    model: Option<String>,
) -> Result<(), String> {
    let handle = &deployment.handle;
    if handle.provider.name() == "Mock" {
        return Ok(());
    }
    let timeout = handle.timeout.min(PROBE_TIMEOUT);
    let options = CallOptions {
        timeout,
        stream_timeout: handle.stream_timeout.min(PROBE_TIMEOUT),
        headers: HeaderMap::new(),
        stream_usage_added: false,
    };
    let model = model.unwrap_or_else(|| handle.upstream_model.clone());
    let call = async {
        if mode(deployment) == "embedding" {
            let request = EmbeddingRequest {
                model,
                input: EmbeddingInput::Texts(vec!["ping".to_owned()]),
                encoding_format: None,
                dimensions: None,
                user: None,
                extra: Default::default(),
            };
            handle
                .provider
                .embeddings(&request, &options)
                .await
                .map(|_| ())
        } else {
            let request = ChatCompletionRequest {
                model,
                messages: vec![ChatMessage::user("ping")],
                max_tokens: Some(1),
                ..Default::default()
            };
            handle.provider.chat(&request, &options).await.map(|_| ())
        }
    };
    match tokio::time::timeout(timeout + Duration::from_millis(500), call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "health check timed out after {}s",
            timeout.as_secs_f64()
        )),
    }
}
