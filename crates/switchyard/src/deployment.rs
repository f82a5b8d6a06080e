//! `model_list` entries → deployments: a provider adapter per entry, validated at start-up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use switchyard_budget::{ModelPrice, PriceMap, TokenCounter};
use switchyard_config::{Config, ConfigError, ModelEntry};
use switchyard_providers::registry::{parse_model, ProviderFamily};
use switchyard_providers::{
    Anthropic, AnthropicTarget, AzureParams, Bedrock, BedrockParams, BedrockTarget, Cohere,
    CohereTarget, Gemini, GeminiTarget, HttpClient, MockProvider, Ollama, OllamaTarget,
    OpenAiCompatible, OpenAiCompatibleTarget, Provider, ProviderError, VertexParams,
};
use switchyard_router::{Deployment, Weights};

/// LiteLLM's default per-attempt timeout, in seconds.
const DEFAULT_TIMEOUT_SECS: f64 = 6000.0;

/// Everything the engine needs to call one deployment.
#[derive(Debug, Clone)]
pub struct DeploymentHandle {
    pub provider: Arc<dyn Provider>,
    /// The provider prefix (`openai`, `groq`, ...).
    pub provider_name: String,
    /// The upstream model name; `*` is replaced by what a wildcard request matched.
    pub upstream_model: String,
    /// The base URL, for `x-litellm-model-api-base` (query string removed).
    pub api_base: Option<String>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
    /// The entry as `/model/info` shows it: secrets removed.
    pub public_info: Value,
    /// `model_info.base_model`: which price-map entry prices this deployment.
    pub base_model: Option<String>,
    /// The price that costs this deployment's calls, found once by [`apply_prices`] so no
    /// call builds a `provider/model` key to look it up (`None`: a wildcard deployment,
    /// priced per call, or a model the map does not know).
    pub price: Option<Arc<ModelPrice>>,
    /// How prompt tokens are counted for this deployment's model (`enable_pre_call_checks`,
    /// `tpm` limits): exactly for OpenAI-family models, estimated otherwise. Chosen from the
    /// model name at build time; no tokenizer is loaded until something is counted.
    pub token_counter: TokenCounter,
}

/// Builds every deployment of a config, or the first validation error with its field path.
pub fn build_deployments(
    config: &Config,
    client: &HttpClient,
) -> Result<(Vec<Deployment<DeploymentHandle>>, Vec<String>), ConfigError> {
    let mut deployments = Vec::with_capacity(config.model_list.len());
    let mut warnings = Vec::new();
    for entry in &config.model_list {
        let (deployment, warning) = build_deployment(config, entry, client)?;
        warnings.extend(warning);
        deployments.push(deployment);
    }
    Ok((deployments, warnings))
}

/// Builds one deployment (a config entry, or a model added through the API) with the
/// config's environment and settings.
pub fn build_deployment(
    config: &Config,
    entry: &ModelEntry,
    client: &HttpClient,
) -> Result<(Deployment<DeploymentHandle>, Option<String>), ConfigError> {
    let (handle, warning) = build_one(config, entry, client)?;
    let params = &entry.litellm_params;
    let deployment = Deployment {
        id: entry.id.clone(),
        model_name: entry.model_name.clone(),
        litellm_model: params.model.clone(),
        weights: Weights {
            weight: params.weight,
            rpm: params.rpm,
            tpm: params.tpm,
        },
        order: params.order,
        cooldown_time: params
            .cooldown_time
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(Duration::from_secs_f64),
        num_retries: params.num_retries,
        // Prices come from the price map, filled in by `apply_prices` once it is built.
        cost_per_token: None,
        max_input_tokens: entry.model_info.max_input_tokens,
        handle,
    };
    Ok((deployment, warning))
}

/// Flags a deployment's `/model/info` entry as stored in the database
/// (`model_info.db_model`, which LiteLLM's UI uses to offer edit and delete).
pub fn mark_db_model(public_info: &mut Value) {
    if let Some(info) = public_info
        .get_mut("model_info")
        .and_then(Value::as_object_mut)
    {
        info.insert("db_model".into(), Value::Bool(true));
    }
}

/// Fills in what the router needs from the price map: each deployment's price per token
/// (`cost-based-routing`) and, unless `model_info` set it, its context window
/// (`enable_pre_call_checks`). Deployments the map does not know keep `None`.
pub fn apply_prices(deployments: &mut [Deployment<DeploymentHandle>], prices: &PriceMap) {
    for deployment in deployments {
        let handle = &deployment.handle;
        if handle.upstream_model.contains('*') {
            continue;
        }
        let Some(found) = prices.lookup(
            Some(&deployment.id),
            handle.base_model.as_deref(),
            Some(&handle.provider_name),
            &handle.upstream_model,
        ) else {
            continue;
        };
        let price = found.price.clone();
        apply_custom_price(deployment, price);
    }
}

/// Gives a deployment its price: the per-token sum for `cost-based-routing`, the context
/// window when `model_info` did not set one, and the price its calls are costed with. Also
/// for prices set on a deployment built after the price map (a DB model).
pub fn apply_custom_price(deployment: &mut Deployment<DeploymentHandle>, price: ModelPrice) {
    if price.input_cost_per_token.is_some() || price.output_cost_per_token.is_some() {
        deployment.cost_per_token = Some(
            price.input_cost_per_token.unwrap_or(0.0) + price.output_cost_per_token.unwrap_or(0.0),
        );
    }
    if deployment.max_input_tokens.is_none() {
        deployment.max_input_tokens = price.max_input_tokens;
    }
    deployment.handle.price = Some(Arc::new(price));
}

fn build_one(
    config: &Config,
    entry: &ModelEntry,
    client: &HttpClient,
) -> Result<(DeploymentHandle, Option<String>), ConfigError> {
    let params = &entry.litellm_params;
    let model_path = format!("{}.litellm_params.model", entry.path);
    let spec = parse_model(&params.model, params.custom_llm_provider.as_deref())
        .map_err(|reason| ConfigError::invalid(&model_path, reason))?;
    let env = |name: &str| config.env.get(name).map(str::to_owned);
    let mut warning = None;
    let (provider, api_base): (Arc<dyn Provider>, Option<String>) = if params
        .mock_response
        .is_some()
    {
        (
            Arc::new(MockProvider::new(params.mock_response.as_ref())),
            None,
        )
    } else {
        match spec.family {
            ProviderFamily::OpenAiCompatible(dialect) => {
                let mut target = OpenAiCompatibleTarget::resolve(
                    dialect,
                    params.api_base.as_deref(),
                    params.api_key.as_ref().map(|key| key.expose()),
                    env,
                )
                .map_err(|reason| {
                    ConfigError::invalid(format!("{}.litellm_params.api_base", entry.path), reason)
                })?;
                target.organization = params.organization.clone();
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let base = target.base_url.clone();
                let provider = OpenAiCompatible::new(target, client.clone()).map_err(|reason| {
                    ConfigError::invalid(format!("{}.litellm_params", entry.path), reason)
                })?;
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Anthropic => {
                let mut target = AnthropicTarget::resolve(
                    params.api_base.as_deref(),
                    params.api_key.as_ref().map(|key| key.expose()),
                    env,
                );
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let base = target.base_url.clone();
                let provider = Anthropic::new(target, client.clone()).map_err(|reason| {
                    ConfigError::invalid(format!("{}.litellm_params", entry.path), reason)
                })?;
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Azure(dialect) => {
                let other = |key: &str| params.other.get(key).and_then(|value| value.as_str());
                let azure_params = AzureParams {
                    api_base: params.api_base.as_deref(),
                    api_key: params.api_key.as_ref().map(|key| key.expose()),
                    api_version: params.api_version.as_deref(),
                    azure_ad_token: other("azure_ad_token"),
                };
                let mut target =
                    OpenAiCompatibleTarget::azure(dialect, &spec.upstream_model, azure_params, env)
                        .map_err(|reason| {
                            ConfigError::invalid(
                                format!("{}.litellm_params.api_base", entry.path),
                                reason,
                            )
                        })?;
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let base = target.base_url.clone();
                let provider = OpenAiCompatible::new(target, client.clone()).map_err(|reason| {
                    ConfigError::invalid(format!("{}.litellm_params", entry.path), reason)
                })?;
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Gemini | ProviderFamily::VertexAi { .. } => {
                let params_path = format!("{}.litellm_params", entry.path);
                let mut target = match spec.family {
                    ProviderFamily::VertexAi { beta } => {
                        let other = |key: &str| params.other.get(key).and_then(Value::as_str);
                        let vertex = VertexParams {
                            api_base: params.api_base.as_deref(),
                            vertex_project: other("vertex_project"),
                            vertex_location: other("vertex_location"),
                            vertex_credentials: params
                                .other
                                .get("vertex_credentials")
                                .filter(|value| !value.is_null()),
                            beta,
                        };
                        GeminiTarget::vertex(vertex, client, env)
                            .map_err(|reason| ConfigError::invalid(&params_path, reason))?
                    }
                    _ => GeminiTarget::ai_studio(
                        params.api_base.as_deref(),
                        params.api_key.as_ref().map(|key| key.expose()),
                        env,
                    ),
                };
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let base = target.base_url().to_owned();
                let provider = Gemini::new(target, client.clone())
                    .map_err(|reason| ConfigError::invalid(&params_path, reason))?;
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Bedrock => {
                let params_path = format!("{}.litellm_params", entry.path);
                let other = |key: &str| params.other.get(key).and_then(Value::as_str);
                let bedrock = BedrockParams {
                    api_base: params.api_base.as_deref(),
                    aws_access_key_id: other("aws_access_key_id"),
                    aws_secret_access_key: other("aws_secret_access_key"),
                    aws_session_token: other("aws_session_token"),
                    aws_region_name: other("aws_region_name"),
                    aws_profile_name: other("aws_profile_name"),
                    aws_role_name: other("aws_role_name"),
                    aws_session_name: other("aws_session_name"),
                    aws_external_id: other("aws_external_id"),
                    aws_sts_endpoint: other("aws_sts_endpoint"),
                    aws_web_identity_token: other("aws_web_identity_token"),
                };
                let mut target = BedrockTarget::resolve(bedrock, env)
                    .map_err(|reason| ConfigError::invalid(&params_path, reason))?;
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let provider = Bedrock::new(target, client.clone())
                    .map_err(|reason| ConfigError::invalid(&params_path, reason))?;
                let base = provider.base_url().to_owned();
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Cohere => {
                let mut target = CohereTarget::resolve(
                    params.api_base.as_deref(),
                    params.api_key.as_ref().map(|key| key.expose()),
                    env,
                );
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let base = target.base_url.clone();
                let provider = Cohere::new(target, client.clone()).map_err(|reason| {
                    ConfigError::invalid(format!("{}.litellm_params", entry.path), reason)
                })?;
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::Ollama { chat } => {
                let params_path = format!("{}.litellm_params", entry.path);
                let endpoint = if chat {
                    switchyard_providers::ollama::Endpoint::Chat
                } else {
                    switchyard_providers::ollama::Endpoint::Generate
                };
                let mut target = OllamaTarget::resolve(
                    endpoint,
                    params.api_base.as_deref(),
                    params.api_key.as_ref().map(|key| key.expose()),
                    env,
                );
                target.extra_headers = params.extra_headers.clone();
                target.request_defaults = params.request_defaults.clone();
                target.drop_params = drop_params(config, params);
                let provider = Ollama::new(target, client.clone())
                    .map_err(|reason| ConfigError::invalid(&params_path, reason))?;
                let base = provider.base_url().to_owned();
                (Arc::new(provider), Some(base))
            }
            ProviderFamily::NotImplemented => {
                warning = Some(format!(
                    "{model_path}: provider '{}' is not supported by this build yet; requests \
                         for model group '{}' routed to this deployment will fail",
                    spec.provider, entry.model_name
                ));
                let provider = NotImplementedProvider {
                    provider: spec.provider.clone(),
                    model: params.model.clone(),
                };
                (Arc::new(provider), params.api_base.clone())
            }
        }
    };
    let timeout = params
        .timeout
        .or(config.litellm_settings.request_timeout)
        .or(config.router_settings.timeout)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let stream_timeout = params
        .stream_timeout
        .or(config.router_settings.stream_timeout)
        .unwrap_or(timeout);
    let handle = DeploymentHandle {
        provider,
        provider_name: spec.provider.clone(),
        api_base: api_base.map(|base| strip_query(&base)),
        timeout: seconds(timeout, &format!("{}.litellm_params.timeout", entry.path))?,
        stream_timeout: seconds(
            stream_timeout,
            &format!("{}.litellm_params.stream_timeout", entry.path),
        )?,
        public_info: public_info(entry),
        token_counter: TokenCounter::for_model(
            entry
                .model_info
                .base_model
                .as_deref()
                .unwrap_or(&spec.upstream_model),
        ),
        upstream_model: spec.upstream_model,
        base_model: entry.model_info.base_model.clone(),
        price: None,
    };
    Ok((handle, warning))
}

/// `drop_params`: the deployment's own, else `litellm_settings.drop_params`, else the
/// `LITELLM_DROP_PARAMS` environment variable.
fn drop_params(config: &Config, params: &switchyard_config::LitellmParams) -> bool {
    params
        .drop_params
        .or(config.litellm_settings.drop_params)
        .unwrap_or_else(|| {
            config
                .env
                .get("LITELLM_DROP_PARAMS")
                .is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
        })
}

fn seconds(value: f64, path: &str) -> Result<Duration, ConfigError> {
    if value > 0.0 && value.is_finite() {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError::invalid(
            path,
            "must be a positive number of seconds",
        ))
    }
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// Whether a `litellm_params` key holds a credential that must never be shown: `api_key`,
/// `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `azure_ad_token`,
/// `vertex_credentials`, `client_secret`, passwords... but not token counts or prices
/// (`max_tokens`, `input_cost_per_token`).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "credential"]
        .iter()
        .any(|word| key.contains(word))
        || key.ends_with("key")
        || key.ends_with("key_id")
        || key == "token"
        || (key.ends_with("_token") && !key.ends_with("per_token"))
}

/// The entry as `/model/info` shows it, in LiteLLM's shape, without credentials.
fn public_info(entry: &ModelEntry) -> Value {
    let params = &entry.litellm_params;
    let mut litellm_params = Map::new();
    litellm_params.insert("model".into(), Value::from(params.model.clone()));
    let optional = [
        ("api_base", params.api_base.clone().map(Value::from)),
        ("api_version", params.api_version.clone().map(Value::from)),
        (
            "custom_llm_provider",
            params.custom_llm_provider.clone().map(Value::from),
        ),
        ("organization", params.organization.clone().map(Value::from)),
        ("timeout", params.timeout.map(Value::from)),
        ("stream_timeout", params.stream_timeout.map(Value::from)),
        ("rpm", params.rpm.map(Value::from)),
        ("tpm", params.tpm.map(Value::from)),
        ("weight", params.weight.map(Value::from)),
        ("drop_params", params.drop_params.map(Value::from)),
        ("mock_response", params.mock_response.clone()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            litellm_params.insert(key.into(), value);
        }
    }
    for (key, value) in params.request_defaults.iter().chain(params.other.iter()) {
        if !is_secret_key(key) {
            litellm_params.insert(key.clone(), value.clone());
        }
    }
    let info = &entry.model_info;
    let mut model_info = Map::new();
    model_info.insert("id".into(), Value::from(entry.id.clone()));
    model_info.insert("db_model".into(), Value::Bool(false));
    model_info.insert(
        "mode".into(),
        Value::from(info.mode.clone().unwrap_or_else(|| "chat".to_owned())),
    );
    let limits = [
        ("base_model", info.base_model.clone().map(Value::from)),
        ("max_tokens", info.max_tokens.map(Value::from)),
        ("max_input_tokens", info.max_input_tokens.map(Value::from)),
        ("max_output_tokens", info.max_output_tokens.map(Value::from)),
    ];
    for (key, value) in limits {
        if let Some(value) = value {
            model_info.insert(key.into(), value);
        }
    }
    for (key, value) in &info.other {
        model_info.insert(key.clone(), value.clone());
    }
    serde_json::json!({
        "model_name": entry.model_name,
        "litellm_params": litellm_params,
        "model_info": model_info,
    })
}

/// A deployment whose provider family this build does not implement: every call answers a
/// clear error naming the provider, rather than failing the whole config.
#[derive(Debug)]
struct NotImplementedProvider {
    provider: String,
    model: String,
}

impl NotImplementedProvider {
    fn error(&self) -> ProviderError {
        ProviderError::NotImplemented {
            provider: self.provider.clone(),
            model: self.model.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for NotImplementedProvider {
    fn name(&self) -> &'static str {
        "NotImplemented"
    }

    async fn chat(
        &self,
        _request: &switchyard_llm_types::ChatCompletionRequest,
        _options: &switchyard_providers::CallOptions,
    ) -> Result<
        switchyard_providers::Upstream<switchyard_llm_types::ChatCompletionResponse>,
        ProviderError,
    > {
        Err(self.error())
    }

    async fn chat_stream(
        &self,
        _request: &switchyard_llm_types::ChatCompletionRequest,
        _options: &switchyard_providers::CallOptions,
    ) -> Result<switchyard_providers::Upstream<switchyard_providers::ChunkStream>, ProviderError>
    {
        Err(self.error())
    }

    fn unsupported(&self, _operation: &str) -> ProviderError {
        self.error()
    }
}
