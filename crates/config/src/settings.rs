//! Phase two: the resolved document → typed, validated sections.
//!
//! Each section keeps typed fields for what Switchyard acts on today and an `other` map with
//! every remaining key, so a later feature can read its keys without re-parsing the file, and
//! so [`Config::unsupported`] can list exactly what is not acted on yet.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::deployment_id::deployment_id;
use crate::fields::{describe, Fields};
use crate::{ConfigError, Env, Secret};

/// A loaded config: every section typed, secrets redacted, environment resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub model_list: Vec<ModelEntry>,
    pub router_settings: RouterSettings,
    pub litellm_settings: LitellmSettings,
    pub general_settings: GeneralSettings,
    /// The environment the file was resolved against (process env + `environment_variables`);
    /// providers read their default keys (`OPENAI_API_KEY`, ...) from it.
    pub env: Env,
    /// Dotted paths of keys present in the file that Switchyard does not act on yet.
    pub unsupported: Vec<String>,
    pub source: Option<PathBuf>,
}

/// One `model_list` entry: a deployment. Entries sharing `model_name` form a model group.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    pub model_info: ModelInfo,
    /// `model_info.id`, or the LiteLLM-compatible hash of the entry.
    pub id: String,
    /// Where the entry is in the file (`model_list[3]`), for later validation errors.
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub struct LitellmParams {
    /// `provider/upstream-model`, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    pub custom_llm_provider: Option<String>,
    pub api_base: Option<String>,
    pub api_key: Option<Secret>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    /// Seconds per non-streaming attempt.
    pub timeout: Option<f64>,
    /// Seconds to wait for a streaming response to start and between its chunks.
    pub stream_timeout: Option<f64>,
    /// `extra_headers` and `headers`, sent upstream on every call of this deployment.
    pub extra_headers: BTreeMap<String, String>,
    /// LiteLLM's `mock_response`: answer with this instead of calling an upstream.
    pub mock_response: Option<Value>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// Relative share of traffic in `simple-shuffle`.
    pub weight: Option<f64>,
    pub drop_params: Option<bool>,
    /// Priority tier: lower is tried first; higher tiers only when every lower one failed.
    pub order: Option<u32>,
    /// Retries for calls to this deployment's group (`num_retries`, or LiteLLM's older
    /// `max_retries`).
    pub num_retries: Option<u32>,
    /// Seconds this deployment stays out of rotation after it is cooled down.
    pub cooldown_time: Option<f64>,
    /// OpenAI request parameters (`temperature`, `max_tokens`, `extra_body` fields, ...)
    /// applied to each request that does not set them itself.
    pub request_defaults: Map<String, Value>,
    /// Every other key, for provider adapters and later features (`aws_*`, `vertex_*`, `order`,
    /// prices, ...). Listed in [`Config::unsupported`] until something reads them.
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub id: Option<String>,
    /// `chat` (default), `completion`, `embedding`, ...
    pub mode: Option<String>,
    pub base_model: Option<String>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// The remaining keys, shown as they are on `/model/info`.
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    /// Retries, cooldowns and fallbacks; keys given in `litellm_settings` apply where
    /// `router_settings` does not set them (router_settings wins, as in LiteLLM).
    pub reliability: Reliability,
    /// `alias → model group`; hidden aliases are routable but not listed on `/models`.
    pub model_group_alias: BTreeMap<String, GroupAlias>,
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    /// `routing_strategy_args`.
    pub routing_strategy_args: RoutingStrategyArgs,
    /// `enable_pre_call_checks`: skip deployments whose context window is too small.
    pub enable_pre_call_checks: Option<bool>,
    /// Redis shared by replicas for cooldowns, usage counters and calls in flight
    /// (`redis_url`, or `redis_host`/`redis_port`/`redis_password`/`redis_db`).
    pub redis: Option<RouterRedis>,
    pub other: Map<String, Value>,
}

/// `router_settings.routing_strategy_args`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingStrategyArgs {
    /// Seconds a latency sample counts (latency-based routing; default 3600).
    pub ttl: Option<f64>,
    /// Fraction above the lowest latency that still counts as lowest (default 0).
    pub lowest_latency_buffer: Option<f64>,
}

/// Where the router shares its state.
#[derive(Debug, Clone)]
pub struct RouterRedis {
    /// `redis://[:password@]host:port[/db]` (a [`Secret`]: it may carry the password).
    pub url: Secret,
    /// Key prefix (`redis_namespace`, a Switchyard extension), so gateways or test runs
    /// sharing one Redis keep apart.
    pub namespace: Option<String>,
    /// How long a pick waits on Redis before routing on local state (`redis_timeout_ms`, a
    /// Switchyard extension; default 100 ms).
    pub timeout_ms: Option<u64>,
}

/// How failures are handled: retries, cooldowns, fallbacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reliability {
    pub num_retries: Option<u32>,
    /// Minimum seconds to wait before a retry.
    pub retry_after: Option<f64>,
    /// Retries per error class (`RateLimitErrorRetries: 3`, ...).
    pub retry_policy: BTreeMap<String, u32>,
    /// Failures per minute a deployment may have before it is cooled down.
    pub allowed_fails: Option<u32>,
    /// Seconds a cooled-down deployment stays out of rotation (default 5).
    pub cooldown_time: Option<f64>,
    pub disable_cooldowns: Option<bool>,
    /// `group → [fallback groups]`, in file order; the group `*` applies to every group.
    pub fallbacks: Vec<(String, Vec<String>)>,
    pub context_window_fallbacks: Vec<(String, Vec<String>)>,
    pub content_policy_fallbacks: Vec<(String, Vec<String>)>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: Option<u32>,
}

impl Reliability {
    /// Reads the reliability keys of one section.
    fn take_from(fields: &mut Fields) -> Result<Self, ConfigError> {
        Ok(Self {
            num_retries: fields.take("num_retries")?,
            retry_after: fields.take("retry_after")?,
            retry_policy: match fields.take::<Map<String, Value>>("retry_policy")? {
                None => BTreeMap::new(),
                Some(map) => {
                    let mut policy = Fields::new(fields.path_of("retry_policy"), map);
                    let keys: Vec<String> = policy.rest_paths();
                    let mut parsed = BTreeMap::new();
                    for path in keys {
                        let key = path.rsplit('.').next().unwrap_or_default().to_owned();
                        if let Some(retries) = policy.take::<u32>(&key)? {
                            parsed.insert(key, retries);
                        }
                    }
                    parsed
                }
            },
            allowed_fails: fields.take("allowed_fails")?,
            cooldown_time: fields.take("cooldown_time")?,
            disable_cooldowns: fields.take("disable_cooldowns")?,
            fallbacks: take_fallbacks(fields, "fallbacks")?,
            context_window_fallbacks: take_fallbacks(fields, "context_window_fallbacks")?,
            content_policy_fallbacks: take_fallbacks(fields, "content_policy_fallbacks")?,
            default_fallbacks: fields.take("default_fallbacks")?.unwrap_or_default(),
            max_fallbacks: fields.take("max_fallbacks")?,
        })
    }

    /// `self` (router_settings) wins; `other` (litellm_settings) fills what it leaves unset.
    fn or(self, other: Reliability) -> Reliability {
        fn list<T>(mine: Vec<T>, theirs: Vec<T>) -> Vec<T> {
            if mine.is_empty() {
                theirs
            } else {
                mine
            }
        }
        Reliability {
            num_retries: self.num_retries.or(other.num_retries),
            retry_after: self.retry_after.or(other.retry_after),
            retry_policy: if self.retry_policy.is_empty() {
                other.retry_policy
            } else {
                self.retry_policy
            },
            allowed_fails: self.allowed_fails.or(other.allowed_fails),
            cooldown_time: self.cooldown_time.or(other.cooldown_time),
            disable_cooldowns: self.disable_cooldowns.or(other.disable_cooldowns),
            fallbacks: list(self.fallbacks, other.fallbacks),
            context_window_fallbacks: list(
                self.context_window_fallbacks,
                other.context_window_fallbacks,
            ),
            content_policy_fallbacks: list(
                self.content_policy_fallbacks,
                other.content_policy_fallbacks,
            ),
            default_fallbacks: list(self.default_fallbacks, other.default_fallbacks),
            max_fallbacks: self.max_fallbacks.or(other.max_fallbacks),
        }
    }
}

/// `fallbacks: [{group: [a, b]}, ...]` (LiteLLM's shape) or a single mapping `{group: [a, b]}`.
fn take_fallbacks(
    fields: &mut Fields,
    key: &str,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let path = fields.path_of(key);
    let entries = match fields.take_raw(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(Value::Object(map)) => vec![Value::Object(map)],
        Some(other) => {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "expected a list of {{group: [fallback groups]}}, found {}",
                    describe(&other)
                ),
            ))
        }
    };
    let mut parsed = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let entry_path = format!("{path}[{index}]");
        let Value::Object(map) = entry else {
            return Err(ConfigError::invalid(
                entry_path,
                "expected {group: [fallback groups]}",
            ));
        };
        for (group, targets) in map {
            let targets = <Vec<String> as crate::fields::FromValue>::from_value(
                targets,
                &format!("{entry_path}.{group}"),
            )?;
            parsed.push((group, targets));
        }
    }
    Ok(parsed)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    pub group: String,
    pub hidden: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LitellmSettings {
    /// Seconds; the default per-attempt timeout after the deployment's own.
    pub request_timeout: Option<f64>,
    /// The reliability keys given here (already merged into `router_settings.reliability`).
    pub reliability: Reliability,
    pub drop_params: Option<bool>,
    pub json_logs: Option<bool>,
    pub set_verbose: Option<bool>,
    /// Write `LiteLLM_AuditLog` rows for management changes.
    pub store_audit_logs: Option<bool>,
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct GeneralSettings {
    pub master_key: Option<Secret>,
    /// LiteLLM's explicit opt-in to run with no (or a well-known) master key.
    pub dangerously_permit_weak_or_unset_master_key: bool,
    pub max_request_size_mb: Option<f64>,
    /// An extra header that carries the gateway key, checked before the standard ones.
    pub litellm_key_header_name: Option<String>,
    /// The PostgreSQL URL of the store (may carry a password, hence a [`Secret`]). Absent:
    /// `DATABASE_URL`, else the embedded store; see [`Config::database_url`].
    pub database_url: Option<Secret>,
    /// Seconds a virtual key stays in the in-memory auth cache (LiteLLM's default 60): the
    /// longest another replica can keep serving a key changed elsewhere.
    pub user_api_key_cache_ttl: Option<f64>,
    /// Spend logs also keep each call's messages and response (off by default, as LiteLLM).
    pub store_prompts_in_spend_logs: bool,
    /// No `LiteLLM_SpendLogs` rows are kept; spend counters and daily aggregates are still
    /// updated (LiteLLM's `disable_spend_logs`).
    pub disable_spend_logs: bool,
    /// Seconds between spend-log batch writes (LiteLLM's `proxy_batch_write_at`).
    pub proxy_batch_write_at: Option<f64>,
    /// `store_model_in_db` (or `STORE_MODEL_IN_DB`): models added through `/model/new`
    /// live in `LiteLLM_ProxyModelTable` and join the config's deployments.
    pub store_model_in_db: Option<bool>,
    /// Every LLM call must carry `user` in its body (LiteLLM's `enforce_user_param`), so
    /// that spend can always be traced to an end user.
    pub enforce_user_param: bool,
    pub other: Map<String, Value>,
}

/// OpenAI request parameters a deployment may set as defaults in `litellm_params`.
const REQUEST_DEFAULT_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
    "service_tier",
    "modalities",
    "prediction",
    "dimensions",
    "encoding_format",
];

/// `litellm_params` keys a provider adapter reads from [`LitellmParams::other`].
const PROVIDER_KEYS: &[&str] = &[
    "azure_ad_token",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_profile_name",
    "aws_role_name",
    "aws_session_name",
    "aws_external_id",
    "aws_sts_endpoint",
    "aws_web_identity_token",
];

/// LiteLLM's per-deployment price keys (`input_cost_per_token`, `output_cost_per_second`,
/// `cache_read_input_token_cost`, tiered `..._above_128k_tokens`, ...).
fn is_price_key(key: &str) -> bool {
    key.contains("_cost_per_") || key.ends_with("_token_cost") || key.contains("_token_cost_above_")
}

/// `litellm_settings` keys the response cache reads from [`LitellmSettings::other`].
const CACHE_KEYS: &[&str] = &["litellm_settings.cache", "litellm_settings.cache_params"];

/// Keys the admission stage (rate limits, budgets, alerts; switchyard-server) reads from the
/// sections' `other` maps.
const ADMISSION_KEYS: &[&str] = &[
    "litellm_settings.max_budget",
    "litellm_settings.budget_duration",
    "litellm_settings.max_end_user_budget",
    "general_settings.global_max_parallel_requests",
    "general_settings.alert_to_webhook_url",
    "general_settings.alerting",
    "general_settings.admission_redis_prefix",
    "general_settings.admission_redis_fail_mode",
    "general_settings.admission_redis_timeout_ms",
    "general_settings.admission_lease_seconds",
    "router_settings.redis_host",
    "router_settings.redis_port",
    "router_settings.redis_password",
    "router_settings.redis_url",
];

/// Top-level keys LiteLLM knows that Switchyard does not act on yet (listed as unsupported).
const KNOWN_TOP_LEVEL: &[&str] = &[
    "model_list",
    "router_settings",
    "litellm_settings",
    "general_settings",
    "environment_variables",
];

impl Config {
    pub(crate) fn from_document(
        mut document: Map<String, Value>,
        mut env: Env,
    ) -> Result<Config, ConfigError> {
        let mut unsupported = Vec::new();

        // Environment first: every other section may reference what it defines.
        let mut env_section = Fields::section(
            "environment_variables",
            document.remove("environment_variables"),
        )?
        .into_rest();
        // `environment_variables` values may themselves be `os.environ/...` references.
        for refused in env.apply_section(&std::mem::take(&mut env_section))? {
            unsupported.push(format!(
                "environment_variables.{refused} (refused: protected name)"
            ));
        }

        let mut document = Value::Object(document);
        env.resolve(&mut document, "")?;
        let Value::Object(mut document) = document else {
            return Err(ConfigError::invalid("", "the top level must be a mapping"));
        };

        let model_list = parse_model_list(document.remove("model_list"), &mut unsupported)?;
        let mut router_settings =
            parse_router_settings(document.remove("router_settings"), &mut unsupported)?;
        let litellm_settings =
            parse_litellm_settings(document.remove("litellm_settings"), &mut unsupported)?;
        router_settings.reliability = std::mem::take(&mut router_settings.reliability)
            .or(litellm_settings.reliability.clone());
        let general_settings =
            parse_general_settings(document.remove("general_settings"), &mut unsupported)?;

        for key in document.keys() {
            if !KNOWN_TOP_LEVEL.contains(&key.as_str()) {
                unsupported.push(key.clone());
            }
        }

        Ok(Config {
            model_list,
            router_settings,
            litellm_settings,
            general_settings,
            env,
            unsupported,
            source: None,
        })
    }

    /// The store's database URL: `general_settings.database_url`, else `DATABASE_URL` (as
    /// LiteLLM). Blank counts as absent; `None` selects the embedded store.
    pub fn database_url(&self) -> Option<&str> {
        self.general_settings
            .database_url
            .as_ref()
            .map(Secret::expose)
            .or_else(|| self.env.get("DATABASE_URL"))
            .map(str::trim)
            .filter(|url| !url.is_empty())
    }

    /// Whether models may be stored in the database (`general_settings.store_model_in_db`,
    /// else the `STORE_MODEL_IN_DB` variable; off by default, as in LiteLLM).
    pub fn store_model_in_db(&self) -> bool {
        self.general_settings.store_model_in_db.unwrap_or_else(|| {
            self.env.get("STORE_MODEL_IN_DB").is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
            })
        })
    }

    /// Model group names in file order, each once.
    pub fn model_groups(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for entry in &self.model_list {
            if !seen.contains(&entry.model_name.as_str()) {
                seen.push(entry.model_name.as_str());
            }
        }
        seen
    }
}

impl ModelEntry {
    /// Parses one deployment given outside the file — a model added through the API
    /// (`/model/new`) or stored in the database — with the same rules as a `model_list`
    /// entry: `os.environ/NAME` values resolved against `env`, errors under `path`.
    pub fn from_json(item: Value, path: &str, env: &Env) -> Result<ModelEntry, ConfigError> {
        let mut item = item;
        env.resolve(&mut item, path)?;
        let mut ignored = Vec::new();
        parse_model_entry(item, path, &mut ignored)
    }
}

fn parse_model_list(
    value: Option<Value>,
    unsupported: &mut Vec<String>,
) -> Result<Vec<ModelEntry>, ConfigError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::invalid(
                "model_list",
                format!("expected a list of deployments, found {}", describe(&other)),
            ))
        }
    };
    let mut entries = Vec::with_capacity(items.len());
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("model_list[{index}]");
        let entry = parse_model_entry(item, &path, unsupported)?;
        if let Some(first) = ids.insert(entry.id.clone(), path.clone()) {
            return Err(ConfigError::invalid(
                format!("{path}.model_info.id"),
                format!(
                    "duplicate deployment id {:?} (also used by {first})",
                    entry.id
                ),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_model_entry(
    item: Value,
    path: &str,
    unsupported: &mut Vec<String>,
) -> Result<ModelEntry, ConfigError> {
    let mut fields = Fields::section(path, Some(item))?;
    let model_name: String = fields.require("model_name")?;
    if model_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            format!("{path}.model_name"),
            "must not be empty",
        ));
    }
    let params_path = format!("{path}.litellm_params");
    let params_map = match fields.take_raw("litellm_params") {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => return Err(ConfigError::invalid(params_path, "is required")),
        Some(other) => {
            return Err(ConfigError::invalid(
                params_path,
                format!("expected a mapping, found {}", describe(&other)),
            ))
        }
    };
    let hashed_id = deployment_id(&model_name, &params_map);
    let litellm_params = parse_litellm_params(Fields::new(params_path, params_map), unsupported)?;
    let model_info = parse_model_info(Fields::section(
        &format!("{path}.model_info"),
        fields.take_raw("model_info"),
    )?)?;
    unsupported.extend(fields.rest_paths());
    Ok(ModelEntry {
        id: model_info.id.clone().unwrap_or(hashed_id),
        model_name,
        litellm_params,
        model_info,
        path: path.to_owned(),
    })
}

fn parse_litellm_params(
    mut fields: Fields,
    unsupported: &mut Vec<String>,
) -> Result<LitellmParams, ConfigError> {
    let model: String = fields.require("model")?;
    if model.trim().is_empty() {
        return Err(ConfigError::invalid(
            fields.path_of("model"),
            "must not be empty",
        ));
    }
    let mut extra_headers: BTreeMap<String, String> =
        fields.take("extra_headers")?.unwrap_or_default();
    if let Some(headers) = fields.take::<BTreeMap<String, String>>("headers")? {
        extra_headers.extend(headers);
    }
    let mut request_defaults = Map::new();
    for key in REQUEST_DEFAULT_KEYS {
        if let Some(value) = fields.take_raw(key) {
            if !value.is_null() {
                request_defaults.insert((*key).to_owned(), value);
            }
        }
    }
    if let Some(extra_body) = fields.take::<Map<String, Value>>("extra_body")? {
        for (key, value) in extra_body {
            request_defaults.entry(key).or_insert(value);
        }
    }
    let params = LitellmParams {
        model,
        custom_llm_provider: fields.take("custom_llm_provider")?,
        api_base: fields.take("api_base")?,
        api_key: fields.take::<String>("api_key")?.map(Secret::new),
        api_version: fields.take("api_version")?,
        organization: fields.take("organization")?,
        timeout: fields.take("timeout")?,
        stream_timeout: fields.take("stream_timeout")?,
        extra_headers,
        mock_response: fields.take("mock_response")?,
        rpm: fields.take("rpm")?,
        tpm: fields.take("tpm")?,
        weight: fields.take("weight")?,
        drop_params: fields.take("drop_params")?,
        order: fields.take("order")?,
        num_retries: match fields.take("num_retries")? {
            Some(retries) => Some(retries),
            None => fields.take("max_retries")?,
        },
        cooldown_time: fields.take("cooldown_time")?,
        request_defaults,
        other: Map::new(),
    };
    if let Some(base) = &params.api_base {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::invalid(
                fields.path_of("api_base"),
                format!("expected an http:// or https:// URL, found {base:?}"),
            ));
        }
    }
    // Prices (`input_cost_per_token`, `cache_read_input_token_cost`, ...) stay in `other`,
    // where the engine's price map reads them.
    unsupported.extend(fields.rest_paths().into_iter().filter(|path| {
        let key = path.rsplit('.').next().unwrap_or_default();
        !is_price_key(key) && !PROVIDER_KEYS.contains(&key)
    }));
    Ok(LitellmParams {
        other: fields.into_rest(),
        ..params
    })
}

fn parse_model_info(mut fields: Fields) -> Result<ModelInfo, ConfigError> {
    Ok(ModelInfo {
        id: fields.take("id")?,
        mode: fields.take("mode")?,
        base_model: fields.take("base_model")?,
        max_tokens: fields.take("max_tokens")?,
        max_input_tokens: fields.take("max_input_tokens")?,
        max_output_tokens: fields.take("max_output_tokens")?,
        other: fields.into_rest(),
    })
}

/// The `routing_strategy` values the router implements; others fall back to simple-shuffle.
pub const SUPPORTED_ROUTING_STRATEGIES: &[&str] = &[
    "simple-shuffle",
    "least-busy",
    "latency-based-routing",
    "usage-based-routing",
    "usage-based-routing-v2",
    "cost-based-routing",
];

fn parse_strategy_args(fields: &mut Fields) -> Result<RoutingStrategyArgs, ConfigError> {
    let Some(map) = fields.take::<Map<String, Value>>("routing_strategy_args")? else {
        return Ok(RoutingStrategyArgs::default());
    };
    let mut args = Fields::new(fields.path_of("routing_strategy_args"), map);
    let parsed = RoutingStrategyArgs {
        ttl: args.take("ttl")?,
        lowest_latency_buffer: args.take("lowest_latency_buffer")?,
    };
    for (key, path) in [
        ("ttl", parsed.ttl),
        ("lowest_latency_buffer", parsed.lowest_latency_buffer),
    ] {
        if path.is_some_and(|value| !value.is_finite() || value < 0.0) {
            return Err(ConfigError::invalid(
                args.path_of(key),
                "must be a number of zero or more",
            ));
        }
    }
    // `max_latency_list_size` and the usage-v2 `ttl` are fixed (10 samples, one minute):
    // other keys are accepted and ignored, as LiteLLM ignores keys it does not know.
    Ok(parsed)
}

/// `redis_url`, or a URL built from `redis_host`/`redis_port`/`redis_password`/`redis_db`.
fn parse_router_redis(fields: &mut Fields) -> Result<Option<RouterRedis>, ConfigError> {
    let url: Option<String> = fields.take("redis_url")?;
    let host: Option<String> = fields.take("redis_host")?;
    let port: Option<String> = fields.take("redis_port")?;
    let password: Option<String> = fields.take("redis_password")?;
    let db: Option<u64> = fields.take("redis_db")?;
    let namespace: Option<String> = fields.take("redis_namespace")?;
    let timeout_ms: Option<u64> = fields.take("redis_timeout_ms")?;
    let url = match (url, host) {
        (Some(url), _) => url,
        (None, Some(host)) => {
            let port = port.unwrap_or_else(|| "6379".to_owned());
            let port: u16 = port.trim().parse().map_err(|_| {
                ConfigError::invalid(
                    fields.path_of("redis_port"),
                    format!("invalid port {port:?}"),
                )
            })?;
            let auth = password
                .filter(|p| !p.is_empty())
                .map(|p| format!(":{}@", percent_encode_userinfo(&p)))
                .unwrap_or_default();
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            };
            let db = db.map(|db| format!("/{db}")).unwrap_or_default();
            format!("redis://{auth}{host}:{port}{db}")
        }
        (None, None) => return Ok(None),
    };
    if !url.starts_with("redis://") {
        return Err(ConfigError::invalid(
            fields.path_of("redis_url"),
            "expected a redis:// URL (TLS is not supported yet)",
        ));
    }
    Ok(Some(RouterRedis {
        url: Secret::new(url),
        namespace,
        timeout_ms,
    }))
}

/// Percent-encodes what would break a URL's userinfo part.
fn percent_encode_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn parse_router_settings(
    value: Option<Value>,
    unsupported: &mut Vec<String>,
) -> Result<RouterSettings, ConfigError> {
    let mut fields = Fields::section("router_settings", value)?;
    let routing_strategy: Option<String> = fields.take("routing_strategy")?;
    if let Some(strategy) = &routing_strategy {
        if !SUPPORTED_ROUTING_STRATEGIES.contains(&strategy.as_str()) {
            unsupported.push(format!(
                "router_settings.routing_strategy ({strategy:?} not supported yet; using simple-shuffle)"
            ));
        }
    }
    let mut model_group_alias = BTreeMap::new();
    if let Some(aliases) = fields.take::<Map<String, Value>>("model_group_alias")? {
        for (alias, target) in aliases {
            let path = format!("router_settings.model_group_alias.{alias}");
            let parsed = match target {
                Value::String(group) => GroupAlias {
                    group,
                    hidden: false,
                },
                Value::Object(map) => {
                    let mut target = Fields::new(path.clone(), map);
                    GroupAlias {
                        group: target.require("model")?,
                        hidden: target.take("hidden")?.unwrap_or(false),
                    }
                }
                other => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("expected a model group name, found {}", describe(&other)),
                    ))
                }
            };
            model_group_alias.insert(alias, parsed);
        }
    }
    let reliability = Reliability::take_from(&mut fields)?;
    let settings = RouterSettings {
        routing_strategy,
        reliability,
        model_group_alias,
        timeout: fields.take("timeout")?,
        stream_timeout: fields.take("stream_timeout")?,
        routing_strategy_args: parse_strategy_args(&mut fields)?,
        enable_pre_call_checks: fields.take("enable_pre_call_checks")?,
        redis: parse_router_redis(&mut fields)?,
        other: Map::new(),
    };
    unsupported.extend(
        fields
            .rest_paths()
            .into_iter()
            .filter(|path| !ADMISSION_KEYS.contains(&path.as_str())),
    );
    Ok(RouterSettings {
        other: fields.into_rest(),
        ..settings
    })
}

fn parse_litellm_settings(
    value: Option<Value>,
    unsupported: &mut Vec<String>,
) -> Result<LitellmSettings, ConfigError> {
    let mut fields = Fields::section("litellm_settings", value)?;
    let settings = LitellmSettings {
        request_timeout: fields.take("request_timeout")?,
        reliability: Reliability::take_from(&mut fields)?,
        drop_params: fields.take("drop_params")?,
        json_logs: fields.take("json_logs")?,
        set_verbose: fields.take("set_verbose")?,
        store_audit_logs: fields.take("store_audit_logs")?,
        other: Map::new(),
    };
    // The response cache reads its own keys from `other` (switchyard-cache).
    unsupported.extend(fields.rest_paths().into_iter().filter(|path| {
        !CACHE_KEYS.contains(&path.as_str()) && !ADMISSION_KEYS.contains(&path.as_str())
    }));
    Ok(LitellmSettings {
        other: fields.into_rest(),
        ..settings
    })
}

fn parse_general_settings(
    value: Option<Value>,
    unsupported: &mut Vec<String>,
) -> Result<GeneralSettings, ConfigError> {
    let mut fields = Fields::section("general_settings", value)?;
    let settings = GeneralSettings {
        master_key: fields.take::<String>("master_key")?.map(Secret::new),
        dangerously_permit_weak_or_unset_master_key: fields
            .take("dangerously_permit_weak_or_unset_master_key")?
            .unwrap_or(false),
        max_request_size_mb: fields.take("max_request_size_mb")?,
        litellm_key_header_name: fields.take("litellm_key_header_name")?,
        database_url: fields.take::<String>("database_url")?.map(Secret::new),
        user_api_key_cache_ttl: fields.take("user_api_key_cache_ttl")?,
        store_prompts_in_spend_logs: fields.take("store_prompts_in_spend_logs")?.unwrap_or(false),
        disable_spend_logs: fields.take("disable_spend_logs")?.unwrap_or(false),
        proxy_batch_write_at: fields.take("proxy_batch_write_at")?,
        store_model_in_db: fields.take("store_model_in_db")?,
        enforce_user_param: fields.take("enforce_user_param")?.unwrap_or(false),
        other: Map::new(),
    };
    unsupported.extend(
        fields
            .rest_paths()
            .into_iter()
            .filter(|path| !ADMISSION_KEYS.contains(&path.as_str())),
    );
    Ok(GeneralSettings {
        other: fields.into_rest(),
        ..settings
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_model_entry_from_json_follows_the_file_rules() {
        let env = Env::from_vars([("UPSTREAM_KEY", "sk-from-env")]);
        let entry = ModelEntry::from_json(
            serde_json::json!({
                "model_name": "db-gpt",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/UPSTREAM_KEY", "rpm": 7},
                "model_info": {"id": "db-1"}
            }),
            "model",
            &env,
        )
        .unwrap();
        assert_eq!(entry.id, "db-1");
        assert_eq!(entry.litellm_params.rpm, Some(7));
        assert_eq!(
            entry
                .litellm_params
                .api_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
            Some("sk-from-env".to_owned())
        );
        let error = ModelEntry::from_json(
            serde_json::json!({"model_name": "x", "litellm_params": {"model": ""}}),
            "model",
            &env,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("model.litellm_params.model"),
            "{error}"
        );
    }

    fn load(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        crate::load_str(
            yaml,
            Path::new("config.yaml"),
            Path::new("."),
            Env::from_vars(vars.iter().copied()),
        )
    }

    #[test]
    fn loads_sections_defaults_and_env_references() {
        let config = load(
            r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      temperature: 0.2
      rpm: "60"
      extra_headers: {x-team: core}
    model_info:
      id: dep-1
      mode: chat
general_settings:
  master_key: os.environ/MASTER
router_settings:
  model_group_alias: {gpt4: gpt-4o, secret: {model: gpt-4o, hidden: true}}
litellm_settings:
  request_timeout: 30
environment_variables:
  MASTER: sk-from-section
"#,
            &[("OPENAI_API_KEY", "sk-upstream")],
        )
        .unwrap();
        let entry = &config.model_list[0];
        assert_eq!(entry.id, "dep-1");
        assert_eq!(
            entry.litellm_params.api_key.as_ref().unwrap().expose(),
            "sk-upstream"
        );
        assert_eq!(entry.litellm_params.rpm, Some(60));
        assert_eq!(entry.litellm_params.request_defaults["temperature"], 0.2);
        assert_eq!(entry.litellm_params.extra_headers["x-team"], "core");
        assert_eq!(
            config.general_settings.master_key.unwrap().expose(),
            "sk-from-section"
        );
        assert!(config.router_settings.model_group_alias["secret"].hidden);
        assert_eq!(config.litellm_settings.request_timeout, Some(30.0));
        assert!(config.unsupported.is_empty(), "{:?}", config.unsupported);
    }

    #[test]
    fn router_redis_strategy_args_and_pre_call_checks_are_read() {
        let config = load(
            r#"
model_list: [{model_name: m, litellm_params: {model: openai/m}}]
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {ttl: 30, lowest_latency_buffer: 0.5, max_latency_list_size: 10}
  enable_pre_call_checks: true
  redis_host: 127.0.0.1
  redis_port: "6380"
  redis_password: "p@ss"
  redis_db: 2
  redis_namespace: team-a
"#,
            &[],
        )
        .unwrap();
        let router = &config.router_settings;
        assert_eq!(router.routing_strategy_args.ttl, Some(30.0));
        assert_eq!(
            router.routing_strategy_args.lowest_latency_buffer,
            Some(0.5)
        );
        assert_eq!(router.enable_pre_call_checks, Some(true));
        let redis = router.redis.as_ref().unwrap();
        assert_eq!(redis.url.expose(), "redis://:p%40ss@127.0.0.1:6380/2");
        assert_eq!(redis.namespace.as_deref(), Some("team-a"));
        assert!(config.unsupported.is_empty(), "{:?}", config.unsupported);
        let by_url = load(
            "model_list: []\nrouter_settings: {redis_url: \"redis://r:6379\", redis_host: ignored}",
            &[],
        )
        .unwrap();
        assert_eq!(
            by_url.router_settings.redis.unwrap().url.expose(),
            "redis://r:6379"
        );
        let error = load(
            "model_list: []\nrouter_settings: {routing_strategy_args: {lowest_latency_buffer: -1}}",
            &[],
        )
        .unwrap_err();
        assert!(error
            .to_string()
            .contains("router_settings.routing_strategy_args.lowest_latency_buffer"));
    }

    #[test]
    fn unsupported_keys_are_listed_not_fatal() {
        let config = load(
            r#"
model_list:
  - model_name: m
    litellm_params: {model: openai/m, input_cost_per_token: 0.1, order_by: x}
router_settings: {redis_host: localhost, routing_strategy: provider-budget-routing, cache_kwargs: {}}
litellm_settings: {cache: true, success_callback: [langfuse], max_budget: 10}
general_settings: {database_url: "postgres://x", allow_requests_on_db_unavailable: true}
guardrails: []
"#,
            &[],
        )
        .unwrap();
        assert!(!config
            .unsupported
            .iter()
            .any(|k| k.starts_with("litellm_settings.cache")));
        for expected in [
            "model_list[0].litellm_params.order_by",
            "router_settings.cache_kwargs",
            "litellm_settings.success_callback",
            "general_settings.allow_requests_on_db_unavailable",
            "guardrails",
        ] {
            assert!(
                config.unsupported.iter().any(|k| k == expected),
                "{expected} in {:?}",
                config.unsupported
            );
        }
        assert!(config
            .unsupported
            .iter()
            .any(|k| k.contains("provider-budget-routing")));
        // Read by the admission stage (rate limits and budgets).
        for read in ["router_settings.redis_host", "litellm_settings.max_budget"] {
            assert!(!config.unsupported.iter().any(|k| k == read), "{read}");
        }
        assert!(!config
            .unsupported
            .iter()
            .any(|k| k.contains("database_url")));
        assert_eq!(config.database_url(), Some("postgres://x"));
    }

    #[test]
    fn database_url_falls_back_to_the_environment() {
        let yaml = "model_list: []\n";
        let config = load(yaml, &[("DATABASE_URL", "postgresql://env/db")]).unwrap();
        assert_eq!(config.database_url(), Some("postgresql://env/db"));
        assert_eq!(load(yaml, &[]).unwrap().database_url(), None);
        let config = load(
            "general_settings: {database_url: \"postgres://file/db\"}\n",
            &[("DATABASE_URL", "postgresql://env/db")],
        )
        .unwrap();
        assert_eq!(config.database_url(), Some("postgres://file/db"));
        assert!(format!("{:?}", config.general_settings).contains("Secret(***)"));
    }

    #[test]
    fn reliability_keys_parse_and_router_settings_win() {
        let config = load(
            r#"
model_list:
  - model_name: a
    litellm_params: {model: openai/a, order: 2, max_retries: 4, cooldown_time: 9}
router_settings:
  num_retries: 1
  fallbacks: [{a: [b, c]}, {"*": [d]}]
  retry_policy: {RateLimitErrorRetries: 5}
  cooldown_time: 30
litellm_settings:
  num_retries: 7
  allowed_fails: 2
  context_window_fallbacks: [{a: [a-long]}]
  default_fallbacks: [z]
"#,
            &[],
        )
        .unwrap();
        let params = &config.model_list[0].litellm_params;
        assert_eq!(
            (params.order, params.num_retries, params.cooldown_time),
            (Some(2), Some(4), Some(9.0))
        );
        let reliability = &config.router_settings.reliability;
        assert_eq!(reliability.num_retries, Some(1));
        assert_eq!(reliability.allowed_fails, Some(2));
        assert_eq!(reliability.cooldown_time, Some(30.0));
        assert_eq!(reliability.retry_policy["RateLimitErrorRetries"], 5);
        assert_eq!(
            reliability.fallbacks,
            vec![
                ("a".to_owned(), vec!["b".to_owned(), "c".to_owned()]),
                ("*".to_owned(), vec!["d".to_owned()])
            ]
        );
        assert_eq!(
            reliability.context_window_fallbacks[0].1,
            vec!["a-long".to_owned()]
        );
        assert_eq!(reliability.default_fallbacks, vec!["z".to_owned()]);
        assert!(config.unsupported.is_empty(), "{:?}", config.unsupported);
        let error = load("router_settings: {fallbacks: [a]}", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("router_settings.fallbacks[0]: expected {group: [fallback groups]}"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_field_path_and_reason() {
        let cases = [
            ("model_list: [{model_name: m}]", "model_list[0].litellm_params: is required"),
            (
                "model_list: [{model_name: m, litellm_params: {model: openai/m, timeout: soon}}]",
                "model_list[0].litellm_params.timeout: expected a number, found string \"soon\"",
            ),
            (
                "model_list: [{model_name: m, litellm_params: {model: openai/m, api_key: os.environ/MISSING}}]",
                "model_list[0].litellm_params.api_key: environment variable MISSING is not set",
            ),
            ("router_settings: [1]", "router_settings: expected a mapping, found a list"),
            (
                "model_list: [{model_name: m, litellm_params: {model: openai/m, api_base: localhost:1}}]",
                "model_list[0].litellm_params.api_base: expected an http:// or https:// URL",
            ),
        ];
        for (yaml, expected) in cases {
            let error = load(yaml, &[]).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn duplicate_ids_are_rejected_and_hash_ids_are_stable() {
        let yaml = "model_list:\n  - {model_name: a, litellm_params: {model: openai/a}}\n  - {model_name: a, litellm_params: {model: openai/a}}\n";
        let error = load(yaml, &[]).unwrap_err().to_string();
        assert!(error.contains("duplicate deployment id"), "{error}");
        let one = load(
            "model_list: [{model_name: a, litellm_params: {model: openai/a}}]",
            &[],
        )
        .unwrap();
        let two = load(
            "model_list: [{model_name: a, litellm_params: {model: openai/a}}]",
            &[],
        )
        .unwrap();
        assert_eq!(one.model_list[0].id, two.model_list[0].id);
        assert_eq!(one.model_list[0].id.len(), 64);
    }
}
