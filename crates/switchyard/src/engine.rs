//! The engine: one object that serves unified calls from a config, in process.
//!
//! A call today runs: validate → take gateway-only fields → resolve the model and pick a
//! deployment (router) → call the provider with the effective timeouts. The later pipeline
//! stages wrap the provider call here, in this order: auth context → limits → budget reserve
//! → guardrails (pre/during) → cache → router (retries, cooldowns, fallbacks) → provider →
//! guardrails (post) → settle spend and log, off the hot path.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::HeaderMap;
use switchyard_config::Config;
use switchyard_llm_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest,
    CompletionResponse, EmbeddingRequest, EmbeddingResponse,
};
use switchyard_providers::{CallOptions, ChunkStream, HttpClient, MockProvider, Provider};
use switchyard_router::{Pattern, Router};

use crate::deployment::{build_deployments, DeploymentHandle};
use crate::params::GatewayParams;
use crate::Error;

const CHAT_ENDPOINT: &str = "/chat/completions";
const COMPLETIONS_ENDPOINT: &str = "/completions";
const EMBEDDINGS_ENDPOINT: &str = "/embeddings";

/// Per-request overrides that arrive outside the body (HTTP headers, SDK arguments).
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Overrides every configured non-streaming timeout (`x-litellm-timeout`).
    pub timeout: Option<Duration>,
    /// Overrides every configured streaming timeout (`x-litellm-stream-timeout`).
    pub stream_timeout: Option<Duration>,
    /// Headers to send upstream with this call.
    pub upstream_headers: HeaderMap,
}

/// What the engine knows about how a call was served, for response headers and logs.
#[derive(Debug, Clone)]
pub struct CallMeta {
    pub model_group: String,
    pub deployment_id: String,
    /// The provider prefix that served the call (`openai`, ...).
    pub provider: String,
    pub api_base: Option<String>,
    /// The upstream's response headers (echoed as `llm_provider-*`).
    pub provider_headers: HeaderMap,
    /// Time spent waiting on the provider (to the first byte, for streams).
    pub upstream_duration: Duration,
    /// The gateway-only fields the request carried (`metadata`, `tags`, ...).
    pub gateway_params: GatewayParams,
}

/// A successful call: the body and how it was served.
#[derive(Debug)]
pub struct Response<T> {
    pub body: T,
    pub meta: CallMeta,
}

/// A model group and its deployments, as `switchyard check` prints them.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub name: String,
    pub deployments: Vec<DeploymentSummary>,
}

#[derive(Debug, Clone)]
pub struct DeploymentSummary {
    pub id: String,
    /// `litellm_params.model` as configured.
    pub model: String,
    pub api_base: Option<String>,
    /// The adapter serving it (`OpenAI`, `Mock`, ...).
    pub provider: &'static str,
}

/// A gateway instance. Cheap to clone; all clones share one connection pool and router.
#[derive(Debug, Clone)]
pub struct Switchyard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    router: Router<DeploymentHandle>,
    config: Config,
    warnings: Vec<String>,
}

/// A planned provider call: the deployment is chosen, the request not yet sent.
struct Plan {
    provider: Arc<dyn Provider>,
    upstream_model: String,
    options: CallOptions,
    meta: CallMeta,
}

impl Switchyard {
    /// Loads a LiteLLM-format config file and builds the gateway from it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let config = switchyard_config::load_file(path.as_ref())?;
        Self::from_config(config)
    }

    /// Builds the gateway from a loaded config, validating every deployment.
    pub fn from_config(config: Config) -> Result<Self, Error> {
        let client = HttpClient::new()?;
        let (deployments, deployment_warnings) = build_deployments(&config, &client)?;
        let aliases = config
            .router_settings
            .model_group_alias
            .iter()
            .map(|(alias, target)| (alias.clone(), target.group.clone(), target.hidden))
            .collect::<Vec<_>>();
        let mut warnings: Vec<String> = Vec::new();
        if !config.unsupported.is_empty() {
            warnings.push(format!(
                "config keys not supported yet (ignored): {}",
                config.unsupported.join(", ")
            ));
        }
        warnings.extend(deployment_warnings);
        Ok(Self {
            inner: Arc::new(Inner {
                router: Router::new(deployments, aliases),
                config,
                warnings,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Start-up warnings: unsupported config keys, deployments that cannot serve yet.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Model names for `/models`, in config order (wildcard groups only when asked).
    pub fn model_names(&self, include_wildcards: bool) -> Vec<String> {
        self.inner.router.model_names(include_wildcards)
    }

    /// Every deployment as `/model/info` shows it (no credentials).
    pub fn model_info(&self) -> Vec<serde_json::Value> {
        self.inner
            .router
            .deployments()
            .iter()
            .map(|deployment| deployment.handle.public_info.clone())
            .collect()
    }

    /// Model groups with their deployments, in config order, for `switchyard check`.
    pub fn describe_groups(&self) -> Vec<GroupSummary> {
        let mut groups: Vec<GroupSummary> = Vec::new();
        for deployment in self.inner.router.deployments() {
            let summary = DeploymentSummary {
                id: deployment.id.clone(),
                model: deployment.litellm_model.clone(),
                api_base: deployment.handle.api_base.clone(),
                provider: deployment.handle.provider.name(),
            };
            match groups
                .iter_mut()
                .find(|group| group.name == deployment.model_name)
            {
                Some(group) => group.deployments.push(summary),
                None => groups.push(GroupSummary {
                    name: deployment.model_name.clone(),
                    deployments: vec![summary],
                }),
            }
        }
        groups
    }

    pub async fn chat(
        &self,
        mut request: ChatCompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<ChatCompletionResponse>, Error> {
        validate_messages(&request)?;
        let gateway = GatewayParams::take(&mut request.extra);
        let plan = self.plan(CHAT_ENDPOINT, &request.model, gateway, options)?;
        request.model = plan.upstream_model.clone();
        let started = Instant::now();
        let upstream = plan.provider.chat(request, &plan.options).await?;
        Ok(plan.finish(upstream.body, upstream.headers, started))
    }

    /// A streamed chat call. The stream yields raw chunk JSON (cheap to relay); see
    /// [`typed_chunks`] for parsed chunks. Dropping the stream cancels the upstream call.
    pub async fn chat_stream(
        &self,
        mut request: ChatCompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<ChunkStream>, Error> {
        validate_messages(&request)?;
        let gateway = GatewayParams::take(&mut request.extra);
        let plan = self.plan(CHAT_ENDPOINT, &request.model, gateway, options)?;
        request.model = plan.upstream_model.clone();
        request.stream = Some(true);
        let started = Instant::now();
        let upstream = plan.provider.chat_stream(request, &plan.options).await?;
        Ok(plan.finish(upstream.body, upstream.headers, started))
    }

    pub async fn completion(
        &self,
        mut request: CompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<CompletionResponse>, Error> {
        let gateway = GatewayParams::take(&mut request.extra);
        let plan = self.plan(COMPLETIONS_ENDPOINT, &request.model, gateway, options)?;
        request.model = plan.upstream_model.clone();
        let started = Instant::now();
        let upstream = plan.provider.completion(request, &plan.options).await?;
        Ok(plan.finish(upstream.body, upstream.headers, started))
    }

    pub async fn completion_stream(
        &self,
        mut request: CompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<ChunkStream>, Error> {
        let gateway = GatewayParams::take(&mut request.extra);
        let plan = self.plan(COMPLETIONS_ENDPOINT, &request.model, gateway, options)?;
        request.model = plan.upstream_model.clone();
        request.stream = Some(true);
        let started = Instant::now();
        let upstream = plan
            .provider
            .completion_stream(request, &plan.options)
            .await?;
        Ok(plan.finish(upstream.body, upstream.headers, started))
    }

    pub async fn embeddings(
        &self,
        mut request: EmbeddingRequest,
        options: &RequestOptions,
    ) -> Result<Response<EmbeddingResponse>, Error> {
        if request.input.is_empty() {
            return Err(Error::invalid(
                "Invalid 'input': expected a non-empty string or array.",
                Some("input"),
            ));
        }
        let gateway = GatewayParams::take(&mut request.extra);
        let plan = self.plan(EMBEDDINGS_ENDPOINT, &request.model, gateway, options)?;
        request.model = plan.upstream_model.clone();
        let started = Instant::now();
        let upstream = plan.provider.embeddings(request, &plan.options).await?;
        Ok(plan.finish(upstream.body, upstream.headers, started))
    }

    /// Resolves the model, picks a deployment and fixes the call's timeouts.
    fn plan(
        &self,
        endpoint: &'static str,
        model: &str,
        gateway_params: GatewayParams,
        options: &RequestOptions,
    ) -> Result<Plan, Error> {
        let route = self
            .inner
            .router
            .route(model)
            .map_err(|source| Error::Router { endpoint, source })?;
        let handle = &route.deployment.handle;
        let upstream_model = if handle.upstream_model.contains('*') {
            Pattern::substitute(&handle.upstream_model, &route.wildcard_captures)
        } else {
            handle.upstream_model.clone()
        };
        // A body value beats the header, which beats the deployment's own; for streams, a
        // request-level `timeout` applies when no stream timeout was given with the request.
        let request_timeout = gateway_params
            .seconds("timeout")
            .map(Duration::from_secs_f64)
            .or(options.timeout);
        let timeout = request_timeout.unwrap_or(handle.timeout);
        let stream_timeout = gateway_params
            .seconds("stream_timeout")
            .map(Duration::from_secs_f64)
            .or(options.stream_timeout)
            .or(request_timeout)
            .unwrap_or(handle.stream_timeout);
        let provider: Arc<dyn Provider> = match gateway_params.mock_response() {
            Some(reply) => Arc::new(MockProvider::new(Some(reply))),
            None => handle.provider.clone(),
        };
        Ok(Plan {
            provider,
            upstream_model,
            options: CallOptions {
                timeout,
                stream_timeout,
                headers: options.upstream_headers.clone(),
            },
            meta: CallMeta {
                model_group: route.model_group,
                deployment_id: route.deployment.id.clone(),
                provider: handle.provider_name.clone(),
                api_base: handle.api_base.clone(),
                provider_headers: HeaderMap::new(),
                upstream_duration: Duration::ZERO,
                gateway_params,
            },
        })
    }
}

impl Plan {
    fn finish<T>(self, body: T, provider_headers: HeaderMap, started: Instant) -> Response<T> {
        Response {
            body,
            meta: CallMeta {
                provider_headers,
                upstream_duration: started.elapsed(),
                ..self.meta
            },
        }
    }
}

fn validate_messages(request: &ChatCompletionRequest) -> Result<(), Error> {
    if request.messages.is_empty() {
        return Err(Error::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            Some("messages"),
        ));
    }
    Ok(())
}

/// Parses a raw chunk stream into typed chunks, for SDK users who want structs.
pub fn typed_chunks(
    stream: ChunkStream,
) -> futures::stream::BoxStream<'static, Result<ChatCompletionChunk, Error>> {
    stream
        .map(|item| {
            let chunk = item?;
            chunk.parse().map_err(|error| {
                Error::Provider(switchyard_providers::ProviderError::InvalidResponse {
                    provider: "stream",
                    message: error.to_string(),
                })
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use switchyard_config::Env;
    use switchyard_llm_types::{ChatMessage, ErrorClass};

    fn gateway(yaml: &str) -> Switchyard {
        let config =
            switchyard_config::load_str(yaml, Path::new("t.yaml"), Path::new("."), Env::default())
                .unwrap();
        Switchyard::from_config(config).unwrap()
    }

    fn chat(model: &str) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: model.into(),
            messages: vec![ChatMessage::user("hi")],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn mock_deployment_answers_and_reports_its_route() {
        let gateway = gateway(
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/gpt-x, mock_response: hello}\n    model_info: {id: dep-m}\n",
        );
        let response = gateway
            .chat(chat("m"), &RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(response.body.choices[0].message.text(), "hello");
        assert_eq!(response.body.model, "gpt-x");
        assert_eq!(response.meta.deployment_id, "dep-m");
        assert_eq!(response.meta.model_group, "m");
    }

    #[tokio::test]
    async fn unknown_model_and_empty_messages_are_400s() {
        let gateway = gateway("model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, mock_response: hi}\n");
        let error = gateway
            .chat(chat("nope"), &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error
            .to_string()
            .starts_with("/chat/completions: Invalid model name passed in model=nope"));
        let mut empty = chat("m");
        empty.messages.clear();
        let error = gateway
            .chat(empty, &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.param(), Some("messages"));
    }

    #[tokio::test]
    async fn request_mock_response_overrides_and_never_goes_upstream() {
        // The api_base is unroutable: reaching it would fail the test.
        let gateway = gateway("model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_base: 'http://127.0.0.1:9/v1'}\n");
        let mut request = chat("m");
        request
            .extra
            .insert("mock_response".into(), "from request".into());
        let response = gateway
            .chat(request, &RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(response.body.choices[0].message.text(), "from request");
    }

    #[test]
    fn validation_errors_name_the_deployment_field() {
        let config = switchyard_config::load_str(
            "model_list:\n  - model_name: m\n    litellm_params: {model: hosted_vllm/llama}\n",
            Path::new("t.yaml"),
            Path::new("."),
            Env::default(),
        )
        .unwrap();
        let error = Switchyard::from_config(config).unwrap_err().to_string();
        assert!(
            error.starts_with("model_list[0].litellm_params.api_base: api_base is required"),
            "{error}"
        );
    }

    #[test]
    fn unimplemented_providers_load_with_a_warning() {
        let gateway = gateway("model_list:\n  - model_name: c\n    litellm_params: {model: anthropic/claude-3-5-sonnet, api_key: k}\n");
        assert!(gateway
            .warnings()
            .iter()
            .any(|w| w.contains("provider 'anthropic'")));
    }
}
