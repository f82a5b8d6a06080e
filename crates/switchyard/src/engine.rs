//! The engine: one object that serves unified calls from a config, in process.
//!
//! A call today runs: validate → take gateway-only fields → resolve the model and pick a
//! deployment (router) → call the provider with the effective timeouts. The later pipeline
//! stages wrap the provider call here, in this order: auth context → limits → budget reserve
//! → guardrails (pre/during) → cache → router (retries, cooldowns, fallbacks) → provider →
//! guardrails (post) → settle spend and log, off the hot path.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http::HeaderMap;
use switchyard_budget::{cost_of, Encoding, ModelPrice, PriceMap, TokenCounter};
use switchyard_cache::{
    chat_prompt, completion_prompt, replay_chat_stream, replay_completion_stream, vector_from_json,
    CacheKey, CachedEntry, CallType, CompletionStreamAssembler, Controls, ResponseCache,
    StreamAssembler,
};
use switchyard_config::{Config, ModelEntry};
use switchyard_llm_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, CompletionRequest,
    CompletionResponse, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, ErrorClass, ErrorKind,
};
use switchyard_providers::{
    CallOptions, ChunkStream, HttpClient, MockProvider, Provider, ProviderError, Upstream,
};
use switchyard_router::{
    retry, CooldownSettings, Deployment, Failure, FallbackSettings, InFlightGuard, Pattern,
    PickRequest, Resolved, RetrySettings, Router, RouterError, RoutingStrategy,
};

use crate::deployment::{
    apply_custom_price, apply_prices, build_deployment, build_deployments, mark_db_model,
    DeploymentHandle,
};
use crate::health::HealthReport;
use crate::params::GatewayParams;
use crate::Error;

mod passthrough;
mod rerank;

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
    /// Overrides the configured retries (`x-litellm-num-retries`).
    pub num_retries: Option<u32>,
    /// `Cache-Control` header values, read with the body's `cache` controls.
    pub cache_control: Vec<String>,
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
    /// Retries spent (`x-litellm-attempted-retries`).
    pub attempted_retries: u32,
    /// Fallback groups tried (`x-litellm-attempted-fallbacks`).
    pub attempted_fallbacks: u32,
    /// Retries the answering group allowed (`x-litellm-max-retries`).
    pub max_retries: u32,
    /// The response cache key (`x-litellm-cache-key`) when the call was cacheable.
    pub cache_key: Option<String>,
    /// Whether the answer came from the cache (no upstream call; costs nothing).
    pub cache_hit: bool,
    /// On a semantic-cache hit, the cosine similarity of the stored prompt to this one
    /// (`x-litellm-semantic-similarity`).
    pub semantic_similarity: Option<f32>,
    /// USD cost of the call (`x-litellm-response-cost`), when the answer carried usage and the
    /// model has a price; streams are priced when they end, not here.
    pub response_cost: Option<f64>,
    /// The model name the upstream was asked for (spend logs' `model`); empty on a cache hit.
    pub upstream_model: String,
    /// The deployment's `model_info.base_model`, which prices the call when set.
    pub base_model: Option<String>,
    /// The serving deployment's price, looked up once when the engine was built (`None` for
    /// wildcard deployments, whose upstream model is only known per call, and cache hits).
    pub price: Option<Arc<ModelPrice>>,
    /// The embedding call the semantic cache made to look this prompt up. It is paid for
    /// like any call, so it is accounted as its own `aembedding` spend-log row, as LiteLLM
    /// logs the semantic cache's embedding under the same key and trace.
    pub semantic_embedding: Option<Box<SemanticEmbeddingCall>>,
    /// The gateway asked the upstream for a stream's usage chunk
    /// (`stream_options.include_usage`) that the client did not ask for: the relay
    /// accounts it and leaves it out of what the client sees.
    pub usage_chunk_added: bool,
}

/// A prompt as the semantic tier embedded it: its unit vector (`None` when the answer had no
/// usable one) and the embedding call, which the request pays for.
type EmbeddedPrompt = (Option<Vec<f32>>, Box<SemanticEmbeddingCall>);

/// The semantic cache's embedding of a request's prompt, as a call of its own.
#[derive(Debug, Clone)]
pub struct SemanticEmbeddingCall {
    /// The embedding model group (`cache_params.redis_semantic_cache_embedding_model`).
    pub model_group: String,
    pub deployment_id: String,
    pub provider: String,
    pub api_base: Option<String>,
    /// The model name the upstream was asked for.
    pub upstream_model: String,
    /// Tokens the provider reported for the embedding (`None` when it reported none).
    pub usage: Option<switchyard_llm_types::Usage>,
    /// USD cost of the embedding (0 when the model has no price).
    pub cost: f64,
    /// Time spent on the embedding call.
    pub duration: Duration,
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
    /// The routing table: config deployments, then models added through the API.
    /// Swapped whole when the DB models change ([`Switchyard::set_db_models`]); a call
    /// takes one snapshot at the start of each model group it tries, so reads never lock
    /// and a call never sees half a change. Health state is shared across swaps by
    /// deployment id ([`Router::rebuilt`]).
    routing: ArcSwap<Router<DeploymentHandle>>,
    /// The config file's deployments, which a swap always keeps first and in file order.
    config_deployments: Vec<Deployment<DeploymentHandle>>,
    /// Ids of the config deployments: they cannot be replaced or removed through the API.
    config_ids: HashSet<String>,
    /// The upstream connection pool DB deployments are built on.
    client: HttpClient,
    /// The response cache, when `litellm_settings.cache` is on.
    cache: Option<ResponseCache>,
    /// Model prices (the shipped table plus per-deployment custom prices).
    prices: PriceMap,
    retry: RetrySettings,
    reliability: ReliabilitySettings,
    config: Config,
    warnings: Vec<String>,
}

#[derive(Debug)]
struct ReliabilitySettings {
    fallbacks: FallbackSettings,
}

impl Switchyard {
    /// Loads a LiteLLM-format config file and builds the gateway from it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let config = switchyard_config::load_file(path.as_ref())?;
        Self::from_config(config)
    }

    /// Builds the gateway from a loaded config, validating every deployment.
    ///
    /// With a Redis response cache configured this must run inside a Tokio runtime (the
    /// connection is made in the background, so a Redis that is down does not stop start-up).
    pub fn from_config(config: Config) -> Result<Self, Error> {
        let client = HttpClient::new()?;
        let (mut deployments, deployment_warnings) = build_deployments(&config, &client)?;
        let prices = price_map(&config)?;
        apply_prices(&mut deployments, &prices);
        let config_deployments = deployments.clone();
        let config_ids = deployments.iter().map(|d| d.id.clone()).collect();
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
        let reliability = &config.router_settings.reliability;
        let cooldowns = CooldownSettings {
            cooldown_time: reliability
                .cooldown_time
                .filter(|secs| secs.is_finite() && *secs >= 0.0)
                .map_or(
                    CooldownSettings::default().cooldown_time,
                    Duration::from_secs_f64,
                ),
            allowed_fails: reliability.allowed_fails,
            disabled: reliability.disable_cooldowns.unwrap_or(false),
        };
        let retry = RetrySettings {
            num_retries: reliability.num_retries,
            min_backoff: reliability
                .retry_after
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .map_or(Duration::ZERO, Duration::from_secs_f64),
            policy: reliability.retry_policy.clone(),
        };
        let fallbacks = FallbackSettings {
            generic: reliability.fallbacks.clone(),
            context_window: reliability.context_window_fallbacks.clone(),
            content_policy: reliability.content_policy_fallbacks.clone(),
            default: reliability.default_fallbacks.clone(),
            max_fallbacks: reliability.max_fallbacks,
        };
        // Unknown strategy names were reported by the config loader; they use the default.
        let strategy = config
            .router_settings
            .routing_strategy
            .as_deref()
            .and_then(RoutingStrategy::from_name)
            .unwrap_or_default();
        let router = crate::routing::build_router(
            &config.router_settings,
            deployments,
            aliases,
            cooldowns,
            strategy,
            &mut warnings,
        );
        let env = |name: &str| config.env.get(name).map(str::to_owned);
        let cache = ResponseCache::from_settings(&config.litellm_settings.other, &env)?;
        Ok(Self {
            inner: Arc::new(Inner {
                routing: ArcSwap::from_pointee(router),
                config_deployments,
                config_ids,
                client,
                cache,
                prices,
                retry,
                reliability: ReliabilitySettings { fallbacks },
                config,
                warnings,
            }),
        })
    }

    /// The USD cost of `usage` on the deployment that served `meta`'s call (0 when the
    /// model has no price, as LiteLLM reports it). Streams are priced with this when they end.
    pub fn cost_of_usage(&self, meta: &CallMeta, usage: &switchyard_llm_types::Usage) -> f64 {
        if meta.cache_hit {
            return 0.0;
        }
        if let Some(price) = &meta.price {
            return cost_of(usage, price);
        }
        self.inner
            .prices
            .lookup(
                Some(&meta.deployment_id),
                meta.base_model.as_deref(),
                Some(&meta.provider),
                &meta.upstream_model,
            )
            .map_or(0.0, |found| cost_of(usage, found.price))
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The price table calls are costed with (admission prices its reservations from it).
    pub fn prices(&self) -> &PriceMap {
        &self.inner.prices
    }

    /// The response cache, when `litellm_settings.cache` is on (for `/cache/*` admin routes).
    pub fn cache(&self) -> Option<&ResponseCache> {
        self.inner.cache.as_ref()
    }

    /// The Redis the router shares cooldowns and usage through, when configured.
    pub fn router_shared_state(&self) -> Option<Arc<switchyard_router::SharedState>> {
        self.inner.routing.load().shared_handle()
    }

    /// Whether `id` is a deployment of the config file (which the API may not change).
    pub fn is_config_deployment(&self, id: &str) -> bool {
        self.inner.config_ids.contains(id)
    }

    /// Checks that `entry` would build as a deployment (known provider, valid
    /// parameters) before it is stored; the error names the failing field.
    pub fn check_db_model(&self, entry: &ModelEntry) -> Result<(), Error> {
        build_deployment(&self.inner.config, entry, &self.inner.client)?;
        Ok(())
    }

    /// Replaces the deployments added through the API (`LiteLLM_ProxyModelTable`) with
    /// `entries`, keeping the config file's deployments first. The new routing table is
    /// built aside and swapped in whole; calls in flight finish on the table they started
    /// with, and every deployment kept (same id) keeps its health and usage state.
    ///
    /// Merge rule: a DB entry whose id is a config deployment's is skipped (the config
    /// wins); DB entries sharing a `model_name` with config entries join that model group.
    /// An entry that does not build (bad provider prefix, ...) is skipped with a warning
    /// rather than taking the others down. Returns the warnings.
    pub fn set_db_models(&self, entries: &[ModelEntry]) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut deployments = self.inner.config_deployments.clone();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut added = Vec::with_capacity(entries.len());
        for entry in entries {
            if self.inner.config_ids.contains(&entry.id) || !seen.insert(entry.id.as_str()) {
                warnings.push(format!(
                    "{}: deployment id {:?} is already in use; the DB model is ignored",
                    entry.path, entry.id
                ));
                continue;
            }
            // Prices set on the model itself (`input_cost_per_token`, ...) win over the
            // shipped table, as they do for config models.
            let custom = match ModelPrice::from_deployment(
                &entry.litellm_params.other,
                Some(&entry.model_info.other),
            ) {
                Ok(custom) => custom,
                Err(error) => {
                    warnings.push(format!("{}.litellm_params: {error}", entry.path));
                    continue;
                }
            };
            match build_deployment(&self.inner.config, entry, &self.inner.client) {
                Ok((mut deployment, warning)) => {
                    warnings.extend(warning);
                    mark_db_model(&mut deployment.handle.public_info);
                    added.push((deployment, custom));
                }
                Err(error) => warnings.push(format!("{}: {error}", entry.path)),
            }
        }
        let (mut added, custom_prices): (Vec<_>, Vec<_>) = added.into_iter().unzip();
        apply_prices(&mut added, &self.inner.prices);
        for (deployment, custom) in added.iter_mut().zip(custom_prices) {
            if let Some(price) = custom {
                apply_custom_price(deployment, price);
            }
        }
        deployments.extend(added);
        let next = self.inner.routing.load().rebuilt(deployments);
        self.inner.routing.store(Arc::new(next));
        warnings
    }

    /// Parses the tokenizers the configured deployments count prompts with (OpenAI-family
    /// models), once each. Blocking, up to about a second: a server calls it before taking
    /// requests, so the first stream or pre-call check does not parse one on a runtime thread.
    pub fn load_tokenizers(&self) {
        let router = self.inner.routing.load();
        let mut loaded: Vec<Encoding> = Vec::new();
        for deployment in router.deployments() {
            if let TokenCounter::Exact(encoding) = deployment.handle.token_counter {
                if !loaded.contains(&encoding) {
                    encoding.load();
                    loaded.push(encoding);
                }
            }
        }
    }

    /// Start-up warnings: unsupported config keys, deployments that cannot serve yet.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Model names for `/models`, in config order (wildcard groups only when asked).
    pub fn model_names(&self, include_wildcards: bool) -> Vec<String> {
        self.inner.routing.load().model_names(include_wildcards)
    }

    /// Every deployment as `/model/info` shows it (no credentials).
    pub fn model_info(&self) -> Vec<serde_json::Value> {
        self.inner
            .routing
            .load()
            .deployments()
            .iter()
            .map(|deployment| deployment.handle.public_info.clone())
            .collect()
    }

    /// Probes deployments with a cheap real call each (LiteLLM's `/health`), concurrently.
    ///
    /// `model` restricts the check to what that name resolves to (a model group, alias,
    /// deployment id or `litellm_params.model`); an unknown name checks nothing.
    pub async fn health_check(&self, model: Option<&str>) -> HealthReport {
        let router = self.inner.routing.load();
        let targets: Vec<crate::health::Target<'_>> = match model {
            None => router
                .deployments()
                .iter()
                .map(|deployment| crate::health::Target {
                    deployment,
                    model: None,
                })
                .collect(),
            Some(name) => match router.resolve(name) {
                Ok(resolved) => resolved
                    .members
                    .iter()
                    .filter_map(|&index| router.deployment(index))
                    .map(|deployment| crate::health::Target {
                        // A wildcard match is probed with the model it would serve.
                        model: (!resolved.wildcard_captures.is_empty()).then(|| {
                            Pattern::substitute(
                                &deployment.handle.upstream_model,
                                &resolved.wildcard_captures,
                            )
                        }),
                        deployment,
                    })
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        crate::health::check(targets).await
    }

    /// Model groups with their deployments, in config order, for `switchyard check`.
    pub fn describe_groups(&self) -> Vec<GroupSummary> {
        let mut groups: Vec<GroupSummary> = Vec::new();
        for deployment in self.inner.routing.load().deployments() {
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
        self.run(Chat(request), gateway, options).await
    }

    /// A streamed chat call. The stream yields raw chunk JSON (cheap to relay); see
    /// [`typed_chunks`] for parsed chunks. Dropping the stream cancels the upstream call.
    /// Retries and fallbacks apply until the upstream starts answering.
    pub async fn chat_stream(
        &self,
        mut request: ChatCompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<ChunkStream>, Error> {
        validate_messages(&request)?;
        let gateway = GatewayParams::take(&mut request.extra);
        request.stream = Some(true);
        let added = request_stream_usage(&mut request.stream_options);
        let mut response = self
            .run(ChatStream(request, added), gateway, options)
            .await?;
        response.meta.usage_chunk_added = added;
        Ok(response)
    }

    pub async fn completion(
        &self,
        mut request: CompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<CompletionResponse>, Error> {
        let gateway = GatewayParams::take(&mut request.extra);
        self.run(Completion(request), gateway, options).await
    }

    pub async fn completion_stream(
        &self,
        mut request: CompletionRequest,
        options: &RequestOptions,
    ) -> Result<Response<ChunkStream>, Error> {
        let gateway = GatewayParams::take(&mut request.extra);
        request.stream = Some(true);
        let added = request_stream_usage(&mut request.stream_options);
        let mut response = self
            .run(CompletionStream(request, added), gateway, options)
            .await?;
        response.meta.usage_chunk_added = added;
        Ok(response)
    }

    /// Embeddings, cached per input item: a batch whose items are partly cached sends only
    /// the others upstream and merges the answer back in input order.
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
        let resolution = self.resolve(&request.model);
        let Some((cache, controls, group)) =
            self.embedding_cache(resolution.resolved.as_ref().ok(), &gateway, options)?
        else {
            return self
                .run_resolved(Embeddings(request), resolution, gateway, options)
                .await;
        };
        let split = cache.lookup_embeddings(&group, &request, &controls).await;
        let model = request.model.clone();
        let Some(missing) = split.miss_request(&request) else {
            let body = split.merge(&model, None).map_err(Error::CacheSetup)?;
            return Ok(cache_hit_response(body, group, None, gateway));
        };
        let mut response = self
            .run_resolved(Embeddings(missing), resolution, gateway, options)
            .await?;
        if let Err(error) = cache.store_embeddings(&split, &response.body, &controls) {
            tracing::warn!(%error, "embeddings not cached");
        }
        response.body = split
            .merge(&model, Some(&response.body))
            .map_err(Error::CacheSetup)?;
        Ok(response)
    }

    /// The cache, controls and model group for an embeddings call, when it is cached.
    fn embedding_cache(
        &self,
        resolved: Option<&Resolved>,
        gateway_params: &GatewayParams,
        options: &RequestOptions,
    ) -> Result<Option<(ResponseCache, Controls, String)>, Error> {
        let context = self.cache_context(resolved, gateway_params, options)?;
        Ok(context
            .filter(|(cache, controls, _)| cache.applies(CallType::Embedding, controls))
            .map(|(cache, controls, group)| (cache.clone(), controls, group)))
    }

    /// What every cached call needs: the cache (when one is configured), the request's
    /// controls (a bad control is a 400) and the model group the caller already resolved
    /// (`None` for an unknown model: routing reports it, so there is nothing to cache).
    fn cache_context(
        &self,
        resolved: Option<&Resolved>,
        gateway_params: &GatewayParams,
        options: &RequestOptions,
    ) -> Result<Option<(&ResponseCache, Controls, String)>, Error> {
        let Some(cache) = &self.inner.cache else {
            return Ok(None);
        };
        let controls = Controls::parse(
            gateway_params.get("cache"),
            options.cache_control.iter().map(String::as_str),
        )?;
        Ok(resolved.map(|resolved| (cache, controls, resolved.model_group.clone())))
    }

    /// Serves one call: the requested group with its retries, then its fallbacks.
    ///
    /// Fallback targets are full calls (their own retries, their own fallbacks), tried in
    /// order, each group at most once, at most `max_fallbacks` of them. When everything fails
    /// the client gets the original error, as LiteLLM does.
    async fn run<O: Operation>(
        &self,
        operation: O,
        gateway_params: GatewayParams,
        options: &RequestOptions,
    ) -> Result<Response<O::Output>, Error> {
        let resolution = self.resolve(operation.model());
        self.run_resolved(operation, resolution, gateway_params, options)
            .await
    }

    /// [`Switchyard::run`] with the requested name already resolved: the cache and the
    /// first group call share one resolution.
    async fn run_resolved<O: Operation>(
        &self,
        mut operation: O,
        resolution: Resolution,
        gateway_params: GatewayParams,
        options: &RequestOptions,
    ) -> Result<Response<O::Output>, Error> {
        let requested = operation.model().to_owned();
        let controls = CallControls::new(&gateway_params, options);
        let mut cache_plan = self.cache_plan(
            &operation,
            resolution.resolved.as_ref().ok(),
            &gateway_params,
            options,
        )?;
        let mut semantic_embedding = None;
        if let Some(plan) = &mut cache_plan {
            // Boxed: the cache's lookup future (two tiers) is large, and keeping it inline
            // would make every request's future, cached or not, that much larger to move.
            if let Some(body) = Box::pin(plan.lookup(&operation)).await {
                return Ok(plan.hit_response(body, gateway_params));
            }
            if plan.semantic.is_some() {
                let (hit, embedding) = self.semantic_lookup(plan, &operation).await;
                semantic_embedding = embedding;
                if let Some(hit) = hit {
                    let mut response = hit.into_response(plan, gateway_params);
                    response.meta.semantic_embedding = semantic_embedding;
                    return Ok(response);
                }
            }
        }
        let mut progress = Progress::default();
        let first_error = match self
            .call_group(
                &mut operation,
                &requested,
                resolution,
                &gateway_params,
                options,
                &controls,
                &mut progress,
            )
            .await
        {
            Ok(done) => {
                let mut response = finish(
                    &self.inner.prices,
                    done,
                    || operation.input_tokens(self.token_counter_for(&requested)),
                    gateway_params,
                    progress,
                    cache_plan,
                );
                response.meta.semantic_embedding = semantic_embedding;
                return Ok(response);
            }
            Err(failure) => failure,
        };
        let Some(failed_group) = first_error
            .group
            .clone()
            .filter(|_| first_error.allows_fallback() && !controls.disable_fallbacks)
        else {
            return Err(first_error.error);
        };
        let reliability = &self.inner.reliability;
        let mut tried = vec![failed_group.clone()];
        let mut queue: std::collections::VecDeque<String> = reliability
            .fallbacks
            .targets(
                &failed_group,
                first_error.error.kind(),
                controls.fallbacks.as_deref(),
            )
            .into();
        let max_fallbacks = reliability.fallbacks.max_fallbacks();
        while let Some(target) = queue.pop_front() {
            if progress.fallbacks >= max_fallbacks {
                break;
            }
            if tried.contains(&target) {
                continue;
            }
            tried.push(target.clone());
            progress.fallbacks += 1;
            tracing::info!(from = %failed_group, to = %target, "falling back");
            // Boxed: the fallback path is rare, and a second inline copy of the group call
            // would double the size of every request's future.
            let resolution = self.resolve(&target);
            match Box::pin(self.call_group(
                &mut operation,
                &target,
                resolution,
                &gateway_params,
                options,
                &controls,
                &mut progress,
            ))
            .await
            {
                Ok(done) => {
                    let mut response = finish(
                        &self.inner.prices,
                        done,
                        || operation.input_tokens(self.token_counter_for(&requested)),
                        gateway_params,
                        progress,
                        cache_plan,
                    );
                    response.meta.semantic_embedding = semantic_embedding;
                    return Ok(response);
                }
                Err(failure) => {
                    if controls.fallbacks.is_none() && failure.allows_fallback() {
                        queue.extend(reliability.fallbacks.targets(
                            &target,
                            failure.error.kind(),
                            None,
                        ));
                    }
                }
            }
        }
        Err(first_error.error)
    }

    /// Whether and how this call uses the response cache: the key (model group + the
    /// parameters that change the answer) and the request's controls.
    fn cache_plan<O: Operation>(
        &self,
        operation: &O,
        resolved: Option<&Resolved>,
        gateway_params: &GatewayParams,
        options: &RequestOptions,
    ) -> Result<Option<CachePlan>, Error> {
        let Some((cache, controls, model_group)) =
            self.cache_context(resolved, gateway_params, options)?
        else {
            return Ok(None);
        };
        let Some(key) = operation.cache_key(cache, &model_group, &controls) else {
            return Ok(None);
        };
        let storage_key = cache.storage_key(&key, &controls);
        let semantic = cache
            .semantic_settings()
            .filter(|_| !(controls.no_cache && controls.no_store))
            .and_then(|settings| {
                let (bucket, prompt) = operation.semantic_query(&model_group)?;
                Some(SemanticPlan {
                    embedding_model: settings.embedding_model.clone(),
                    bucket,
                    prompt,
                    vector: None,
                })
            });
        Ok(Some(CachePlan {
            cache: cache.clone(),
            key,
            storage_key,
            controls,
            model_group,
            semantic,
            endpoint: O::ENDPOINT,
        }))
    }

    /// After an exact miss: embeds the prompt with the configured embedding model (through
    /// this engine, so any deployment serves it) and looks for a similar stored prompt. The
    /// vector stays in the plan for storing the fresh answer. An embedding failure is logged
    /// and the call goes on uncached by meaning. Also returns the embedding call itself
    /// (when it was answered), which the request's accounting charges.
    async fn semantic_lookup<O: Operation>(
        &self,
        plan: &mut CachePlan,
        operation: &O,
    ) -> (
        Option<SemanticAnswer<O::Output>>,
        Option<Box<SemanticEmbeddingCall>>,
    ) {
        let Some(semantic) = plan.semantic.as_mut() else {
            return (None, None);
        };
        let embedded = self
            .embed_prompt(
                semantic.embedding_model.clone(),
                std::mem::take(&mut semantic.prompt),
            )
            .await;
        let (vector, call) = match embedded {
            Ok((Some(vector), call)) => (vector, call),
            Ok((None, call)) => {
                tracing::warn!(
                    model = %semantic.embedding_model,
                    "semantic cache: the embedding model returned no usable vector; skipping the semantic tier"
                );
                plan.semantic = None;
                return (None, Some(call));
            }
            Err(error) => {
                tracing::warn!(
                    model = %semantic.embedding_model,
                    %error,
                    "semantic cache: cannot embed the prompt; skipping the semantic tier"
                );
                plan.semantic = None;
                return (None, None);
            }
        };
        let hit = Box::pin(
            plan.cache
                .semantic_lookup(&semantic.bucket, &vector, &plan.controls),
        )
        .await;
        semantic.vector = Some(vector);
        let answer = hit.and_then(|hit| {
            let body = operation.cached_answer(&hit.entry)?;
            Some(SemanticAnswer {
                body,
                storage_key: hit.storage_key,
                similarity: hit.similarity,
            })
        });
        (answer, Some(call))
    }

    /// One embedding of `text` with `model`: its unit vector (`None` when the answer had no
    /// usable one) and the call as accounting sees it. Boxed: it runs the engine's own call
    /// path from inside a call, which the compiler cannot size otherwise.
    fn embed_prompt(
        &self,
        model: String,
        text: String,
    ) -> BoxFuture<'_, Result<EmbeddedPrompt, Error>> {
        async move {
            let request = EmbeddingRequest {
                model,
                input: EmbeddingInput::Text(text),
                encoding_format: None,
                dimensions: None,
                user: None,
                extra: Default::default(),
            };
            let started = Instant::now();
            let response = self
                .run(
                    Embeddings(request),
                    GatewayParams::default(),
                    &RequestOptions::default(),
                )
                .await?;
            let vector = response
                .body
                .data
                .first()
                .and_then(|item| vector_from_json(&item.embedding));
            let meta = response.meta;
            let call = SemanticEmbeddingCall {
                model_group: meta.model_group,
                deployment_id: meta.deployment_id,
                provider: meta.provider,
                api_base: meta.api_base,
                upstream_model: meta.upstream_model,
                usage: response.body.usage,
                cost: meta.response_cost.unwrap_or(0.0),
                duration: started.elapsed(),
            };
            Ok((vector, Box::new(call)))
        }
        .boxed()
    }

    /// Calls one model group: picks a deployment, calls it, and on a retryable failure picks
    /// again (another deployment when the group has a healthy one), with LiteLLM's back-off.
    /// `resolved` is what `model` resolved to (resolved by the caller, once per call).
    #[expect(
        clippy::too_many_arguments,
        reason = "one call's context, borrowed from the caller's frame; a struct would only rename it"
    )]
    async fn call_group<O: Operation>(
        &self,
        operation: &mut O,
        model: &str,
        resolution: Resolution,
        gateway_params: &GatewayParams,
        options: &RequestOptions,
        controls: &CallControls,
        progress: &mut Progress,
    ) -> Result<Done<O::Output>, GroupFailure> {
        // The routing-table snapshot the name was resolved in: its indexes stay valid for
        // all of this group's attempts, whatever DB-model change swaps the table meanwhile.
        let Resolution { router, resolved } = resolution;
        let resolved = resolved.map_err(|source| GroupFailure {
            error: Error::Router {
                endpoint: O::ENDPOINT,
                source,
            },
            group: None,
        })?;
        let group = resolved.model_group.clone();
        let group_size = resolved.members.len();
        let fail = |error: Error| GroupFailure {
            error,
            group: Some(group.clone()),
        };
        let mut excluded: Vec<usize> = Vec::new();
        // Deployments that were full when the call was about to go out (skipped, no retry spent).
        let mut full: Vec<usize> = Vec::new();
        let mut attempt: u32 = 0;
        let mut last_error: Option<Error> = None;
        let pick_request = PickRequest {
            input_tokens: if router.needs_input_tokens() {
                operation.input_tokens(token_counter(&router, &resolved, model))
            } else {
                0
            },
            stream: O::STREAM,
        };
        loop {
            let index = match router.pick_shared(&resolved, &excluded, &pick_request).await {
                Ok(Some(index)) => index,
                // Everything untried is cooling down or was tried: report the real failure.
                Ok(None) if last_error.is_none() && !full.is_empty() => {
                    let source = router.limit_error(&resolved, &full);
                    return Err(fail(Error::Router { endpoint: O::ENDPOINT, source }));
                }
                Ok(None) => {
                    return Err(fail(last_error.unwrap_or_else(|| {
                        Error::invalid(format!("You passed in model={model}. There are no healthy deployments for this model"), Some("model"))
                    })))
                }
                // A full or too-small group is the answer itself; cooldowns hide the real
                // failure when there was one.
                Err(source @ (RouterError::RateLimited { .. } | RouterError::ContextWindowExceeded { .. })) => {
                    return Err(fail(Error::Router { endpoint: O::ENDPOINT, source }))
                }
                Err(source) => {
                    return Err(fail(last_error.unwrap_or(Error::Router { endpoint: O::ENDPOINT, source })))
                }
            };
            let Some(deployment) = router.deployment(index) else {
                return Err(fail(Error::invalid("deployment disappeared", None)));
            };
            // Counted against the deployment's `rpm` (atomically, across replicas with shared
            // state) and in flight until this attempt ends; a stream holds the count until it
            // ends or is dropped. A deployment that filled up since the pick is skipped
            // without spending a retry.
            let Some(in_flight) = router.begin_shared_call(index, O::STREAM).await else {
                excluded.push(index);
                full.push(index);
                continue;
            };
            let plan = plan_call(
                deployment,
                &resolved.wildcard_captures,
                gateway_params,
                options,
                operation.stream_usage_added(),
            );
            operation.set_model(plan.upstream_model.clone());
            let started = Instant::now();
            progress.max_retries = self
                .inner
                .retry
                .max_retries(controls.num_retries, deployment.num_retries);
            let outcome = operation.call(plan.provider.as_ref(), &plan.options).await;
            match outcome {
                Ok(upstream) => {
                    router.health().record_success(index);
                    return Ok(Done {
                        body: upstream.body.hold_in_flight(in_flight),
                        upstream_model: plan.upstream_model.clone(),
                        base_model: deployment.handle.base_model.clone(),
                        price: deployment.handle.price.clone(),
                        headers: upstream.headers,
                        upstream_duration: started.elapsed(),
                        model_group: group,
                        deployment_id: deployment.id.clone(),
                        provider: deployment.handle.provider_name.clone(),
                        api_base: deployment.handle.api_base.clone(),
                    });
                }
                Err(error) => {
                    if error.kind() == ErrorKind::Timeout {
                        in_flight.timed_out();
                    } else {
                        drop(in_flight);
                    }
                    let failure = Failure {
                        status: upstream_status(&error),
                        retry_after: error.retry_after_secs().map(Duration::from_secs),
                    };
                    router.record_failure(index, failure);
                    let kind = error.kind();
                    let allowed = self.inner.retry.retries_for(
                        kind,
                        controls.num_retries,
                        deployment.num_retries,
                    );
                    if attempt >= allowed || !retry::is_retryable(kind, error.status(), group_size)
                    {
                        return Err(fail(Error::Provider(error)));
                    }
                    tracing::debug!(deployment = %deployment.id, %error, attempt, "retrying");
                    excluded.push(index);
                    if excluded.len() >= group_size {
                        // Every deployment has been tried once; retry them (cooldowns still apply).
                        excluded.clear();
                    }
                    let others_healthy = router
                        .pick(&resolved, &excluded)
                        .ok()
                        .flatten()
                        .is_some_and(|next| next != index);
                    let wait =
                        self.inner
                            .retry
                            .backoff(attempt, failure.retry_after, others_healthy);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    attempt += 1;
                    progress.retries += 1;
                    last_error = Some(Error::Provider(error));
                }
            }
        }
    }
}

impl Switchyard {
    /// How prompt tokens of a request for `model` are counted (`/v1/messages/count_tokens`,
    /// streams that end without usage): the tokenizer of the deployment it routes to, exact
    /// for OpenAI-family models; an unknown name is judged by itself.
    pub fn token_counter_for(&self, model: &str) -> TokenCounter {
        let router = self.inner.routing.load();
        match router.resolve(model) {
            Ok(resolved) => token_counter(&router, &resolved, model),
            Err(_) => TokenCounter::for_model(model),
        }
    }

    /// A name resolved in one routing-table snapshot, with that snapshot: a resolution's
    /// deployment indexes are only meaningful in the table that produced them.
    fn resolve(&self, model: &str) -> Resolution {
        let router = self.inner.routing.load_full();
        let resolved = router.resolve(model);
        Resolution { router, resolved }
    }
}

/// A model name resolved in one routing-table snapshot (see [`Switchyard::resolve`]).
struct Resolution {
    router: Arc<Router<DeploymentHandle>>,
    resolved: Result<Resolved, RouterError>,
}

/// How a group's prompt tokens are counted: with its first deployment's tokenizer (the
/// requested name's, for a wildcard deployment, whose model is only known per request).
fn token_counter(
    router: &Router<DeploymentHandle>,
    resolved: &Resolved,
    requested: &str,
) -> TokenCounter {
    let first = resolved
        .members
        .first()
        .and_then(|&index| router.deployment(index));
    match first {
        Some(deployment) if deployment.handle.upstream_model.contains('*') => {
            TokenCounter::for_model(requested)
        }
        Some(deployment) => deployment.handle.token_counter,
        None => TokenCounter::Estimate,
    }
}

/// What the router needs to know about a call before picking for it.
trait RoutingInput {
    /// Streams are routed on time to first token and counted until they end.
    const STREAM: bool;
    /// Prompt tokens as `counter` counts them, for context windows and `tpm` limits.
    fn input_tokens(&self, counter: TokenCounter) -> u64;
}

impl RoutingInput for Chat {
    const STREAM: bool = false;
    fn input_tokens(&self, counter: TokenCounter) -> u64 {
        crate::routing::chat_input_tokens(&self.0, counter)
    }
}

impl RoutingInput for ChatStream {
    const STREAM: bool = true;
    fn input_tokens(&self, counter: TokenCounter) -> u64 {
        crate::routing::chat_input_tokens(&self.0, counter)
    }
}

impl RoutingInput for Completion {
    const STREAM: bool = false;
    fn input_tokens(&self, counter: TokenCounter) -> u64 {
        crate::routing::completion_input_tokens(&self.0, counter)
    }
}

impl RoutingInput for CompletionStream {
    const STREAM: bool = true;
    fn input_tokens(&self, counter: TokenCounter) -> u64 {
        crate::routing::completion_input_tokens(&self.0, counter)
    }
}

impl RoutingInput for Embeddings {
    const STREAM: bool = false;
    fn input_tokens(&self, counter: TokenCounter) -> u64 {
        crate::routing::embedding_input_tokens(&self.0.input, counter)
    }
}

/// One kind of call, so one retry/fallback loop serves every endpoint.
trait Operation: Send + RoutingInput {
    type Output: Send + Cacheable + 'static;
    const ENDPOINT: &'static str;
    fn model(&self) -> &str;
    fn set_model(&mut self, model: String);
    fn call<'a>(
        &'a self,
        provider: &'a dyn Provider,
        options: &'a CallOptions,
    ) -> BoxFuture<'a, Result<Upstream<Self::Output>, ProviderError>>;

    /// The cache key for this call, or `None` when this call is not cached.
    fn cache_key(
        &self,
        cache: &ResponseCache,
        group: &str,
        controls: &Controls,
    ) -> Option<CacheKey> {
        let _ = (cache, group, controls);
        None
    }

    /// The answer rebuilt from a cache entry (`None` if the entry does not fit this call).
    fn cached_answer(&self, entry: &CachedEntry) -> Option<Self::Output> {
        let _ = entry;
        None
    }

    /// For the semantic tier: the bucket (group + every parameter but the prompt) and the
    /// prompt text to embed; `None` when this call has no text prompt or is not cached.
    fn semantic_query(&self, group: &str) -> Option<(CacheKey, String)> {
        let _ = group;
        None
    }

    /// Whether the gateway, not the client, asked this stream for its usage chunk
    /// ([`request_stream_usage`]); see [`CallOptions::stream_usage_added`].
    fn stream_usage_added(&self) -> bool {
        false
    }
}

struct Chat(ChatCompletionRequest);
/// A streamed chat call and whether the gateway added `stream_options.include_usage`.
struct ChatStream(ChatCompletionRequest, bool);
struct Completion(CompletionRequest);
/// A streamed completion call and whether the gateway added `stream_options.include_usage`.
struct CompletionStream(CompletionRequest, bool);
struct Embeddings(EmbeddingRequest);

macro_rules! operation {
    ($name:ident, $output:ty, $endpoint:expr, $method:ident $(, { $($cache:item)* })?) => {
        impl Operation for $name {
            type Output = $output;
            const ENDPOINT: &'static str = $endpoint;
            fn model(&self) -> &str {
                &self.0.model
            }
            fn set_model(&mut self, model: String) {
                self.0.model = model;
            }
            fn call<'a>(
                &'a self,
                provider: &'a dyn Provider,
                options: &'a CallOptions,
            ) -> BoxFuture<'a, Result<Upstream<Self::Output>, ProviderError>> {
                provider.$method(&self.0, options)
            }
            $($($cache)*)?
        }
    };
}

operation!(Chat, ChatCompletionResponse, CHAT_ENDPOINT, chat, {
    fn cache_key(
        &self,
        cache: &ResponseCache,
        group: &str,
        controls: &Controls,
    ) -> Option<CacheKey> {
        (cache.applies(CallType::Chat, controls) && cache.accepts_chat(&self.0))
            .then(|| CacheKey::for_chat(group, &self.0))
    }
    fn cached_answer(&self, entry: &CachedEntry) -> Option<Self::Output> {
        entry.parse().ok()
    }
    fn semantic_query(&self, group: &str) -> Option<(CacheKey, String)> {
        let prompt = chat_prompt(&self.0)?;
        Some((CacheKey::semantic_bucket_for_chat(group, &self.0), prompt))
    }
});
operation!(ChatStream, ChunkStream, CHAT_ENDPOINT, chat_stream, {
    fn cache_key(
        &self,
        cache: &ResponseCache,
        group: &str,
        controls: &Controls,
    ) -> Option<CacheKey> {
        (cache.applies(CallType::Chat, controls) && cache.accepts_chat(&self.0))
            .then(|| CacheKey::for_chat(group, &self.0))
    }
    fn cached_answer(&self, entry: &CachedEntry) -> Option<Self::Output> {
        let response: ChatCompletionResponse = entry.parse().ok()?;
        let chunks = replay_chat_stream(&response, self.0.wants_stream_usage()).ok()?;
        Some(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
    }
    fn stream_usage_added(&self) -> bool {
        self.1
    }
    fn semantic_query(&self, group: &str) -> Option<(CacheKey, String)> {
        let prompt = chat_prompt(&self.0)?;
        Some((CacheKey::semantic_bucket_for_chat(group, &self.0), prompt))
    }
});
operation!(
    Completion,
    CompletionResponse,
    COMPLETIONS_ENDPOINT,
    completion,
    {
        fn cache_key(
            &self,
            cache: &ResponseCache,
            group: &str,
            controls: &Controls,
        ) -> Option<CacheKey> {
            cache
                .applies(CallType::TextCompletion, controls)
                .then(|| CacheKey::for_completion(group, &self.0))
        }
        fn cached_answer(&self, entry: &CachedEntry) -> Option<Self::Output> {
            entry.parse().ok()
        }
        fn semantic_query(&self, group: &str) -> Option<(CacheKey, String)> {
            let prompt = completion_prompt(&self.0)?;
            Some((
                CacheKey::semantic_bucket_for_completion(group, &self.0),
                prompt,
            ))
        }
    }
);
operation!(
    CompletionStream,
    ChunkStream,
    COMPLETIONS_ENDPOINT,
    completion_stream,
    {
        fn cache_key(
            &self,
            cache: &ResponseCache,
            group: &str,
            controls: &Controls,
        ) -> Option<CacheKey> {
            cache
                .applies(CallType::TextCompletion, controls)
                .then(|| CacheKey::for_completion(group, &self.0))
        }
        fn cached_answer(&self, entry: &CachedEntry) -> Option<Self::Output> {
            let response: CompletionResponse = entry.parse().ok()?;
            let include_usage = self
                .0
                .stream_options
                .as_ref()
                .and_then(|options| options.include_usage)
                .unwrap_or(false);
            let chunks = replay_completion_stream(&response, include_usage).ok()?;
            Some(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
        }
        fn stream_usage_added(&self) -> bool {
            self.1
        }
        fn semantic_query(&self, group: &str) -> Option<(CacheKey, String)> {
            let prompt = completion_prompt(&self.0)?;
            Some((
                CacheKey::semantic_bucket_for_completion(group, &self.0),
                prompt,
            ))
        }
    }
);
// Embeddings are cached per input item by `Switchyard::embeddings`, around this operation.
operation!(
    Embeddings,
    EmbeddingResponse,
    EMBEDDINGS_ENDPOINT,
    embeddings
);

/// Per-request reliability controls (body fields win over headers).
struct CallControls {
    num_retries: Option<u32>,
    fallbacks: Option<Vec<String>>,
    disable_fallbacks: bool,
}

impl CallControls {
    fn new(params: &GatewayParams, options: &RequestOptions) -> Self {
        let num_retries = params
            .seconds("num_retries")
            .map(|n| n as u32)
            .or_else(|| {
                params
                    .get("num_retries")
                    .filter(|v| v.as_u64() == Some(0))
                    .map(|_| 0)
            })
            .or(options.num_retries);
        let fallbacks = params.get("fallbacks").and_then(|value| {
            value.as_array().map(|items| {
                items
                    .iter()
                    .filter_map(|item| match item {
                        serde_json::Value::String(name) => Some(name.clone()),
                        serde_json::Value::Object(map) => {
                            map.get("model").and_then(|m| m.as_str()).map(str::to_owned)
                        }
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
        });
        let disable_fallbacks = params
            .get("disable_fallbacks")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Self {
            num_retries,
            fallbacks,
            disable_fallbacks,
        }
    }
}

/// Retries and fallbacks spent so far on one request.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    retries: u32,
    fallbacks: u32,
    max_retries: u32,
}

/// A group that could not serve the call.
struct GroupFailure {
    error: Error,
    /// The resolved group (None when the name resolved to nothing).
    group: Option<String>,
}

impl GroupFailure {
    /// Validation errors and unknown models are the caller's to fix; no fallback helps.
    fn allows_fallback(&self) -> bool {
        // As in LiteLLM, a parameter the provider refuses is the caller's to fix, not a
        // reason to try another group.
        if matches!(
            self.error,
            Error::Provider(ProviderError::UnsupportedParams { .. })
        ) {
            return false;
        }
        matches!(
            self.error,
            Error::Provider(_)
                | Error::Router {
                    source: RouterError::NoHealthyDeployments { .. }
                        | RouterError::RateLimited { .. }
                        | RouterError::ContextWindowExceeded { .. },
                    ..
                }
        )
    }
}

/// A successful attempt, before it becomes a [`Response`].
struct Done<T> {
    body: T,
    /// The model name the upstream was asked for (after wildcard substitution).
    upstream_model: String,
    base_model: Option<String>,
    /// The deployment's price when it was known at build time.
    price: Option<Arc<ModelPrice>>,
    headers: HeaderMap,
    upstream_duration: Duration,
    model_group: String,
    deployment_id: String,
    provider: String,
    api_base: Option<String>,
}

impl<T> Done<T> {
    fn into_response(self, gateway_params: GatewayParams, progress: Progress) -> Response<T> {
        Response {
            body: self.body,
            meta: CallMeta {
                model_group: self.model_group,
                deployment_id: self.deployment_id,
                provider: self.provider,
                api_base: self.api_base,
                provider_headers: self.headers,
                upstream_duration: self.upstream_duration,
                gateway_params,
                attempted_retries: progress.retries,
                attempted_fallbacks: progress.fallbacks,
                max_retries: progress.max_retries,
                cache_key: None,
                cache_hit: false,
                semantic_similarity: None,
                response_cost: None,
                upstream_model: self.upstream_model,
                base_model: self.base_model,
                price: self.price,
                semantic_embedding: None,
                usage_chunk_added: false,
            },
        }
    }
}

/// A cacheable call: where its answer is looked up and stored.
struct CachePlan {
    cache: ResponseCache,
    key: CacheKey,
    /// `namespace:key`, as sent in `x-litellm-cache-key`.
    storage_key: String,
    controls: Controls,
    model_group: String,
    /// Set when the semantic tier is on and the call has a text prompt.
    semantic: Option<SemanticPlan>,
    /// Which endpoint's answer this is (how a stream of it is reassembled).
    endpoint: &'static str,
}

/// The semantic side of a cacheable call.
struct SemanticPlan {
    embedding_model: String,
    bucket: CacheKey,
    /// The text to embed (taken when it is embedded).
    prompt: String,
    /// The prompt's unit vector, once embedded; stored with the fresh answer.
    vector: Option<Vec<f32>>,
}

/// A semantic hit, rebuilt for this call.
struct SemanticAnswer<T> {
    body: T,
    storage_key: String,
    similarity: f32,
}

impl<T> SemanticAnswer<T> {
    fn into_response(self, plan: &CachePlan, gateway_params: GatewayParams) -> Response<T> {
        let mut response = cache_hit_response(
            self.body,
            plan.model_group.clone(),
            Some(self.storage_key),
            gateway_params,
        );
        response.meta.semantic_similarity = Some(self.similarity);
        response
    }
}

impl CachePlan {
    /// Stores a complete answer: under its exact key, and in its semantic bucket when the
    /// prompt was embedded.
    fn store(self, response: Vec<u8>) {
        self.cache.store(&self.key, response.into(), &self.controls);
        if let Some(SemanticPlan {
            bucket,
            vector: Some(vector),
            ..
        }) = self.semantic
        {
            self.cache
                .semantic_store(&bucket, vector, &self.key, &self.controls);
        }
    }

    async fn lookup<O: Operation>(&self, operation: &O) -> Option<O::Output> {
        let entry = self.cache.lookup(&self.key, &self.controls).await?;
        operation.cached_answer(&entry)
    }

    fn hit_response<T>(&self, body: T, gateway_params: GatewayParams) -> Response<T> {
        cache_hit_response(
            body,
            self.model_group.clone(),
            Some(self.storage_key.clone()),
            gateway_params,
        )
    }
}

/// The shipped price table, with each deployment's own prices (`input_cost_per_token`, ... in
/// `litellm_params` or `model_info`) registered under its id.
fn price_map(config: &Config) -> Result<PriceMap, Error> {
    let mut prices =
        PriceMap::shipped().map_err(|error| Error::invalid(error.to_string(), None))?;
    for entry in &config.model_list {
        let custom =
            ModelPrice::from_deployment(&entry.litellm_params.other, Some(&entry.model_info.other))
                .map_err(|error| {
                    Error::Config(switchyard_config::ConfigError::invalid(
                        format!("{}.litellm_params", entry.path),
                        error.to_string(),
                    ))
                })?;
        if let Some(price) = custom {
            prices.register_deployment(entry.id.clone(), price);
        }
    }
    Ok(prices)
}

/// A cache hit as a response: no deployment, no upstream call.
fn cache_hit_response<T>(
    body: T,
    model_group: String,
    cache_key: Option<String>,
    gateway_params: GatewayParams,
) -> Response<T> {
    Response {
        body,
        meta: CallMeta {
            model_group,
            deployment_id: String::new(),
            provider: String::new(),
            api_base: None,
            provider_headers: HeaderMap::new(),
            upstream_duration: Duration::ZERO,
            gateway_params,
            attempted_retries: 0,
            attempted_fallbacks: 0,
            max_retries: 0,
            cache_key,
            cache_hit: true,
            semantic_similarity: None,
            response_cost: Some(0.0),
            upstream_model: String::new(),
            base_model: None,
            price: None,
            semantic_embedding: None,
            usage_chunk_added: false,
        },
    }
}

/// How an answer goes into the cache.
trait Cacheable: Sized {
    /// Stores the answer (a stream: once it completed) and hands it on unchanged.
    fn store(self, plan: CachePlan) -> Self;

    /// The token usage the answer reports (streams report theirs at the end).
    fn usage(&self) -> Option<&switchyard_llm_types::Usage> {
        None
    }

    /// When the provider reported no usage, fills in an estimate (`prompt_tokens` as given,
    /// the completion from the answer's text at ~4 characters a token) so the call is
    /// priced and counted rather than free, as LiteLLM counts tokens itself then. Streams
    /// are estimated where they are relayed (they end later).
    fn estimate_missing_usage(&mut self, prompt_tokens: u64) {
        let _ = prompt_tokens;
    }

    /// Keeps the call counted in flight for as long as the answer is still being delivered:
    /// a complete body ends the call now (reporting its latency and tokens to the router), a
    /// stream carries the guard until it ends or drops.
    fn hold_in_flight(self, guard: InFlightGuard) -> Self {
        guard.finish(self.usage());
        self
    }
}

macro_rules! cacheable_json {
    ($($body:ty),*) => {$(
        impl Cacheable for $body {
            fn store(self, plan: CachePlan) -> Self {
                match serde_json::to_vec(&self) {
                    Ok(bytes) => plan.store(bytes),
                    Err(error) => tracing::warn!(%error, "response not cached: cannot encode it"),
                }
                self
            }

            fn usage(&self) -> Option<&switchyard_llm_types::Usage> {
                self.usage.as_ref()
            }

            fn estimate_missing_usage(&mut self, prompt_tokens: u64) {
                if self.usage.is_none() {
                    let completion = serde_json::to_value(&*self)
                        .map_or(0, |body| answer_text_tokens(&body));
                    self.usage = Some(switchyard_llm_types::Usage::new(prompt_tokens, completion));
                }
            }
        }
    )*};
}

/// Estimated tokens of an answer's text: `choices[].message.content` (chat) or
/// `choices[].text` (completions); 0 for embeddings.
fn answer_text_tokens(body: &serde_json::Value) -> u64 {
    let Some(choices) = body.get("choices").and_then(serde_json::Value::as_array) else {
        return 0;
    };
    choices
        .iter()
        .filter_map(|choice| {
            choice
                .pointer("/message/content")
                .or_else(|| choice.get("text"))
                .and_then(serde_json::Value::as_str)
        })
        .map(switchyard_budget::estimate::estimate_text_tokens)
        .sum()
}

cacheable_json!(
    ChatCompletionResponse,
    CompletionResponse,
    EmbeddingResponse
);

impl Cacheable for ChunkStream {
    fn store(self, plan: CachePlan) -> Self {
        let assembler = if plan.endpoint == COMPLETIONS_ENDPOINT {
            Assembler::Completion(CompletionStreamAssembler::new())
        } else {
            Assembler::Chat(StreamAssembler::new())
        };
        CachingStream {
            inner: self,
            assembler: Some(assembler),
            plan: Some(plan),
        }
        .boxed()
    }

    fn hold_in_flight(self, guard: InFlightGuard) -> Self {
        InFlightStream {
            inner: self,
            guard: Some(guard),
            usage: None,
        }
        .boxed()
    }
}

/// Relays a stream unchanged, counting its call in flight until the stream ends (or is
/// dropped, when the client goes away). Notes the first chunk (time to first token) and the
/// usage the stream reports, for the router, when it ends well.
struct InFlightStream {
    inner: ChunkStream,
    guard: Option<InFlightGuard>,
    usage: Option<switchyard_llm_types::Usage>,
}

impl futures::Stream for InFlightStream {
    type Item = Result<switchyard_llm_types::ChunkJson, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(chunk))) => {
                if let Some(guard) = self.guard.as_mut() {
                    guard.mark_first_token();
                }
                if let Some(usage) = chunk.usage() {
                    self.usage = Some(usage);
                }
            }
            std::task::Poll::Ready(None) => {
                if let Some(guard) = self.guard.take() {
                    guard.finish(self.usage.as_ref());
                }
            }
            // A failed stream is not a latency sample; the guard ends with the stream.
            std::task::Poll::Ready(Some(Err(_))) | std::task::Poll::Pending => {}
        }
        polled
    }
}

/// Relays a stream unchanged while reassembling it; a stream that completes is stored, one
/// that fails or is dropped by the client (cancelled) is not.
struct CachingStream {
    inner: ChunkStream,
    assembler: Option<Assembler>,
    plan: Option<CachePlan>,
}

/// Reassembles a chat or a legacy completion stream into its complete response.
enum Assembler {
    Chat(StreamAssembler),
    Completion(CompletionStreamAssembler),
}

impl Assembler {
    fn push(&mut self, chunk: &switchyard_llm_types::ChunkJson) {
        match self {
            Assembler::Chat(assembler) => assembler.push(chunk),
            Assembler::Completion(assembler) => assembler.push(chunk),
        }
    }

    /// Stores the complete response, if the stream completed.
    fn store(self, plan: CachePlan) {
        match self {
            Assembler::Chat(assembler) => {
                if let Some(response) = assembler.finish() {
                    let _ = response.store(plan);
                }
            }
            Assembler::Completion(assembler) => {
                if let Some(response) = assembler.finish() {
                    let _ = response.store(plan);
                }
            }
        }
    }
}

impl futures::Stream for CachingStream {
    type Item = Result<switchyard_llm_types::ChunkJson, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(assembler) = self.assembler.as_mut() {
                    assembler.push(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.assembler = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                if let (Some(assembler), Some(plan)) = (self.assembler.take(), self.plan.take()) {
                    assembler.store(plan);
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A successful attempt as the response, stored in the cache on the way when cacheable.
fn finish<T: Cacheable>(
    prices: &PriceMap,
    mut done: Done<T>,
    prompt_tokens: impl FnOnce() -> u64,
    gateway_params: GatewayParams,
    progress: Progress,
    cache_plan: Option<CachePlan>,
) -> Response<T> {
    if done.body.usage().is_none() {
        done.body.estimate_missing_usage(prompt_tokens());
    }
    // Precomputed per deployment; only wildcard deployments are looked up per call.
    let price = match &done.price {
        Some(price) => Some(price.as_ref()),
        None => prices
            .lookup(
                Some(&done.deployment_id),
                done.base_model.as_deref(),
                Some(&done.provider),
                &done.upstream_model,
            )
            .map(|found| found.price),
    };
    let cost = match (price, done.body.usage()) {
        (Some(price), Some(usage)) => Some(cost_of(usage, price)),
        // Usage but no price: the call is free as far as we know (LiteLLM reports 0 too).
        (None, Some(_)) => Some(0.0),
        (_, None) => None,
    };
    let mut response = done.into_response(gateway_params, progress);
    response.meta.response_cost = cost;
    if let Some(plan) = cache_plan {
        response.meta.cache_key = Some(plan.storage_key.clone());
        response.body = response.body.store(plan);
    }
    response
}

/// The HTTP status the upstream answered with, if it answered at all (cooldown rules differ).
fn upstream_status(error: &ProviderError) -> Option<u16> {
    match error {
        ProviderError::Upstream(failure) => Some(failure.status),
        ProviderError::BadRequest { .. }
        | ProviderError::NotImplemented { .. }
        | ProviderError::UnsupportedParams { .. } => Some(400),
        ProviderError::Timeout { .. }
        | ProviderError::Connection { .. }
        | ProviderError::InvalidResponse { .. } => None,
    }
}

/// A planned provider call: the deployment is chosen, the request not yet sent.
struct Plan {
    provider: Arc<dyn Provider>,
    upstream_model: String,
    options: CallOptions,
}

/// Upstream model (wildcards filled in), provider (a request-level mock wins), timeouts, and
/// whether the gateway added the stream's usage request ([`CallOptions::stream_usage_added`]).
fn plan_call(
    deployment: &switchyard_router::Deployment<DeploymentHandle>,
    wildcard_captures: &[String],
    gateway_params: &GatewayParams,
    options: &RequestOptions,
    stream_usage_added: bool,
) -> Plan {
    let handle = &deployment.handle;
    let upstream_model = if handle.upstream_model.contains('*') {
        Pattern::substitute(&handle.upstream_model, wildcard_captures)
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
    Plan {
        provider,
        upstream_model,
        options: CallOptions {
            timeout,
            stream_timeout,
            headers: options.upstream_headers.clone(),
            stream_usage_added,
        },
    }
}

/// Asks a stream's upstream for its final usage chunk (OpenAI's
/// `stream_options.include_usage`; every adapter honours it: OpenAI-compatible servers
/// send it, the Anthropic adapter builds it from Anthropic's own usage events), so a stream
/// is priced from what the provider counted rather than estimated. Returns whether the
/// client had not asked for it itself, so the relay can leave the chunk out.
fn request_stream_usage(options: &mut Option<switchyard_llm_types::StreamOptions>) -> bool {
    let options = options.get_or_insert_with(Default::default);
    if options.include_usage == Some(true) {
        return false;
    }
    options.include_usage = Some(true);
    true
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

    #[tokio::test]
    async fn a_failing_group_falls_back_and_reports_it() {
        let gateway = gateway(
            "model_list:
  - {model_name: a, litellm_params: {model: openai/a, mock_response: litellm.RateLimitError}}
  - {model_name: b, litellm_params: {model: openai/b, mock_response: from b}}
router_settings: {num_retries: 0, fallbacks: [{a: [b]}]}
",
        );
        let response = gateway
            .chat(chat("a"), &RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(response.body.choices[0].message.text(), "from b");
        assert_eq!(response.meta.model_group, "b");
        assert_eq!(response.meta.attempted_fallbacks, 1);
        let mut no_fallback = chat("a");
        no_fallback
            .extra
            .insert("disable_fallbacks".into(), true.into());
        let error = gateway
            .chat(no_fallback, &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.status(), 429);
    }

    #[tokio::test]
    async fn context_window_fallbacks_apply_only_to_context_window_errors() {
        let gateway = gateway(
            "model_list:
  - {model_name: short, litellm_params: {model: openai/s, mock_response: litellm.ContextWindowExceededError}}
  - {model_name: flaky, litellm_params: {model: openai/f, mock_response: litellm.InternalServerError}}
  - {model_name: long, litellm_params: {model: openai/l, mock_response: from long}}
router_settings: {num_retries: 0, context_window_fallbacks: [{short: [long]}, {flaky: [long]}]}
",
        );
        let response = gateway
            .chat(chat("short"), &RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(response.meta.model_group, "long");
        // A server error is not a context-window error, and no generic fallbacks exist.
        let error = gateway
            .chat(chat("flaky"), &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.status(), 500);
        // The per-request list wins over the tables.
        let mut request = chat("flaky");
        request
            .extra
            .insert("fallbacks".into(), serde_json::json!(["long"]));
        let response = gateway
            .chat(request, &RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(response.meta.model_group, "long");
    }

    #[tokio::test]
    async fn a_rate_limited_deployment_is_cooled_down_and_traffic_moves() {
        let gateway = gateway(
            "model_list:
  - {model_name: g, litellm_params: {model: openai/x, mock_response: litellm.RateLimitError}, model_info: {id: bad}}
  - {model_name: g, litellm_params: {model: openai/y, mock_response: fine}, model_info: {id: good}}
",
        );
        for _ in 0..20 {
            let response = gateway
                .chat(chat("g"), &RequestOptions::default())
                .await
                .unwrap();
            assert_eq!(response.meta.deployment_id, "good");
            assert!(response.meta.attempted_retries <= 1);
        }
        // The bad deployment was cooled down after its first 429: later calls never tried it.
        let options = RequestOptions::default();
        let retried = futures::future::join_all((0..10).map(|_| gateway.chat(chat("g"), &options)))
            .await
            .into_iter()
            .map(|r| r.unwrap().meta.attempted_retries)
            .sum::<u32>();
        assert_eq!(retried, 0);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_counted_upstream() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let yaml = format!(
            "model_list:
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{base}'}}, model_info: {{id: one}}}}
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{base}'}}, model_info: {{id: two}}}}
router_settings: {{num_retries: 2}}
",
            base = upstream.base_url()
        );
        let gateway = gateway(&yaml);
        let mut request = chat("g");
        request
            .extra
            .insert("mock_upstream".into(), serde_json::json!({"status": 500}));
        let error = gateway
            .chat(request, &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.status(), 500);
        assert_eq!(upstream.request_count(), 3, "one call and two retries");
        let mut once = chat("g");
        once.extra
            .insert("mock_upstream".into(), serde_json::json!({"status": 400}));
        once.extra.insert("num_retries".into(), 5.into());
        let error = gateway
            .chat(once, &RequestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.status(), 400);
        assert_eq!(upstream.request_count(), 4, "a 400 is never retried");
    }

    #[tokio::test]
    async fn least_busy_sends_the_next_call_away_from_a_slow_one_until_it_ends() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let yaml = format!(
            "model_list:
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{base}'}}, model_info: {{id: one}}}}
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{base}'}}, model_info: {{id: two}}}}
router_settings: {{routing_strategy: least-busy}}
",
            base = upstream.base_url()
        );
        let gateway = gateway(&yaml);
        assert!(gateway.warnings().is_empty(), "{:?}", gateway.warnings());
        let mut slow = chat("g");
        slow.extra.insert(
            "mock_upstream".into(),
            serde_json::json!({"delay_ms": 1500}),
        );
        let background = gateway.clone();
        let slow_call = tokio::spawn(async move {
            background
                .chat(slow, &RequestOptions::default())
                .await
                .unwrap()
                .meta
                .deployment_id
        });
        assert!(
            upstream
                .wait_until(Duration::from_secs(5), |u| u.request_count() == 1)
                .await
        );
        let router = gateway.inner.routing.load();
        assert_eq!(router.in_flight(0) + router.in_flight(1), 1);
        let mut fast = Vec::new();
        for _ in 0..5 {
            let response = gateway
                .chat(chat("g"), &RequestOptions::default())
                .await
                .unwrap();
            fast.push(response.meta.deployment_id);
        }
        let slow_id = slow_call.await.unwrap();
        assert!(fast.iter().all(|id| *id != slow_id), "{slow_id} {fast:?}");
        assert_eq!(router.in_flight(0) + router.in_flight(1), 0);

        // A stream counts until it is dropped.
        let mut streamed = chat("g");
        streamed.extra.insert(
            "mock_upstream".into(),
            serde_json::json!({"chunk_delay_ms": 200}),
        );
        let stream = gateway
            .chat_stream(streamed, &RequestOptions::default())
            .await
            .unwrap();
        let busy = stream.meta.deployment_id.clone();
        let next = gateway
            .chat(chat("g"), &RequestOptions::default())
            .await
            .unwrap();
        assert_ne!(next.meta.deployment_id, busy);
        assert_eq!(router.in_flight(0) + router.in_flight(1), 1);
        drop(stream);
        assert_eq!(router.in_flight(0) + router.in_flight(1), 0);
    }

    #[tokio::test]
    async fn health_check_probes_each_deployment_without_secrets() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let yaml = format!(
            "model_list:
  - {{model_name: up, litellm_params: {{model: openai/m, api_base: '{base}', api_key: sk-secret-1}}, model_info: {{id: up-1}}}}
  - {{model_name: down, litellm_params: {{model: openai/m, api_base: 'http://127.0.0.1:{closed}/v1', api_key: sk-secret-2}}, model_info: {{id: down-1}}}}
  - {{model_name: emb, litellm_params: {{model: openai/e, api_base: '{base}', api_key: sk-secret-3}}, model_info: {{id: emb-1, mode: embedding}}}}
  - {{model_name: mocked, litellm_params: {{model: openai/x, mock_response: hi}}}}
  - {{model_name: 'openai/*', litellm_params: {{model: 'openai/*', api_base: '{base}'}}}}
",
            base = upstream.base_url()
        );
        let gateway = gateway(&yaml);
        let report = gateway.health_check(None).await;
        let json = report.to_json();
        assert_eq!(json["healthy_count"], 3, "{json}");
        assert_eq!(json["unhealthy_count"], 1, "{json}");
        assert!(!json.to_string().contains("sk-secret"), "{json}");
        assert_eq!(json["unhealthy_endpoints"][0]["model"], "openai/m");
        assert!(json["unhealthy_endpoints"][0]["error"].is_string());
        // Two real probes: the chat (1 token) and the embedding; the mock made no call.
        let recorded = upstream.recorded();
        assert_eq!(recorded.len(), 2);
        let only_up = gateway.health_check(Some("up")).await;
        assert_eq!(only_up.healthy_endpoints.len(), 1);
        assert!(only_up.unhealthy_endpoints.is_empty());
        let none = gateway.health_check(Some("nope")).await;
        assert_eq!(none, HealthReport::default());
    }

    #[tokio::test]
    async fn wildcard_deployments_are_probed_with_a_concrete_model() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let gateway = gateway(&format!(
            "model_list:
  - {{model_name: 'openai/*', litellm_params: {{model: 'openai/*', api_base: '{base}'}}, model_info: {{id: w1, health_check_model: openai/gpt-4o-mini}}}}
  - {{model_name: 'team/*', litellm_params: {{model: 'openai/*', api_base: '{base}'}}, model_info: {{id: w2}}}}
",
            base = upstream.base_url()
        ));
        // All deployments: the one with a health_check_model is probed with it, the other
        // (no concrete model to try) is skipped.
        let json = gateway.health_check(None).await.to_json();
        assert_eq!(json["healthy_count"], 1, "{json}");
        assert_eq!(json["unhealthy_count"], 0, "{json}");
        assert_eq!(
            json["healthy_endpoints"][0]["health_check_model"],
            "gpt-4o-mini"
        );
        assert_eq!(upstream.recorded()[0].body["model"], "gpt-4o-mini");
        // A concrete name that a wildcard serves is probed as that model.
        let json = gateway.health_check(Some("team/llama-3")).await.to_json();
        assert_eq!(json["healthy_count"], 1, "{json}");
        assert_eq!(upstream.recorded()[1].body["model"], "llama-3");
    }

    #[tokio::test]
    async fn repeated_calls_hit_the_cache_and_streams_replay_it() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let gateway = gateway(&format!(
            "model_list:
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{}'}}}}
litellm_settings: {{cache: true, cache_params: {{type: local}}}}
",
            upstream.base_url()
        ));
        let options = RequestOptions::default();
        let first = gateway.chat(chat("g"), &options).await.unwrap();
        assert!(!first.meta.cache_hit);
        let key = first.meta.cache_key.clone().unwrap();
        let second = gateway.chat(chat("g"), &options).await.unwrap();
        assert!(second.meta.cache_hit);
        assert_eq!(second.meta.cache_key.as_deref(), Some(key.as_str()));
        assert_eq!(second.body.id, first.body.id);
        assert_eq!(upstream.request_count(), 1);
        // A stream request is answered from the stored (non-stream) entry, as a stream.
        let mut streamed = chat("g");
        streamed.stream = Some(true);
        let replay = gateway.chat_stream(streamed, &options).await.unwrap();
        assert!(replay.meta.cache_hit);
        let text: String = typed_chunks(replay.body)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flat_map(|chunk| chunk.unwrap().choices)
            .filter_map(|choice| choice.delta.content)
            .collect();
        assert_eq!(text, first.body.choices[0].message.text());
        assert_eq!(upstream.request_count(), 1);
        // `no-cache` skips the lookup; a different parameter is a different key.
        let mut fresh = chat("g");
        fresh
            .extra
            .insert("cache".into(), serde_json::json!({"no-cache": true}));
        assert!(!gateway.chat(fresh, &options).await.unwrap().meta.cache_hit);
        let mut other = chat("g");
        other.temperature = Some(0.5);
        assert!(!gateway.chat(other, &options).await.unwrap().meta.cache_hit);
        assert_eq!(upstream.request_count(), 3);
        let mut bad = chat("g");
        bad.extra
            .insert("cache".into(), serde_json::json!({"ttl": "soon"}));
        let error = gateway.chat(bad, &options).await.unwrap_err();
        assert_eq!(error.status(), 400);
    }

    #[tokio::test]
    async fn a_completed_stream_is_cached_and_serves_a_non_stream_request() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let gateway = gateway(&format!(
            "model_list:
  - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{}'}}}}
litellm_settings: {{cache: true, cache_params: {{type: local}}}}
",
            upstream.base_url()
        ));
        let options = RequestOptions::default();
        let mut streamed = chat("g");
        streamed.stream = Some(true);
        let stream = gateway.chat_stream(streamed, &options).await.unwrap();
        let text: String = typed_chunks(stream.body)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flat_map(|chunk| chunk.unwrap().choices)
            .filter_map(|choice| choice.delta.content)
            .collect();
        let hit = gateway.chat(chat("g"), &options).await.unwrap();
        assert!(hit.meta.cache_hit);
        assert_eq!(hit.body.choices[0].message.text(), text);
        assert_eq!(upstream.request_count(), 1);
    }

    #[tokio::test]
    async fn embedding_batches_only_send_uncached_items_upstream() {
        let upstream = switchyard_mock_upstream::MockUpstream::start()
            .await
            .unwrap();
        let gateway = gateway(&format!(
            "model_list:
  - {{model_name: e, litellm_params: {{model: openai/emb, api_base: '{}'}}}}
litellm_settings: {{cache: true, cache_params: {{type: local}}}}
",
            upstream.base_url()
        ));
        let options = RequestOptions::default();
        let request = |items: &[&str]| EmbeddingRequest {
            model: "e".into(),
            input: switchyard_llm_types::EmbeddingInput::Texts(
                items.iter().map(|s| s.to_string()).collect(),
            ),
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: Default::default(),
        };
        let first = gateway
            .embeddings(request(&["a", "b"]), &options)
            .await
            .unwrap();
        assert_eq!(first.body.data.len(), 2);
        let mixed = gateway
            .embeddings(request(&["b", "c", "a"]), &options)
            .await
            .unwrap();
        assert_eq!(mixed.body.data.len(), 3);
        assert_eq!(mixed.body.data[0].embedding, first.body.data[1].embedding);
        assert_eq!(mixed.body.data[2].embedding, first.body.data[0].embedding);
        let second_call = &upstream.recorded()[1];
        assert_eq!(
            second_call.body["input"],
            serde_json::json!(["c"]),
            "only the new item goes upstream"
        );
        let all_cached = gateway
            .embeddings(request(&["c", "a"]), &options)
            .await
            .unwrap();
        assert!(all_cached.meta.cache_hit);
        assert_eq!(upstream.request_count(), 2);
    }

    #[tokio::test]
    async fn responses_are_priced_from_custom_or_shipped_prices() {
        let gateway = gateway(
            "model_list:
  - {model_name: custom, litellm_params: {model: openai/my-model, mock_response: hi, input_cost_per_token: 0.001, output_cost_per_token: 0.002}}
  - {model_name: shipped, litellm_params: {model: openai/gpt-4o-mini, mock_response: hi}}
  - {model_name: unknown, litellm_params: {model: openai/nobody-prices-this, mock_response: hi}}
",
        );
        assert!(gateway.warnings().is_empty(), "{:?}", gateway.warnings());
        let options = RequestOptions::default();
        // The mock reports 10 prompt and 20 completion tokens.
        let custom = gateway.chat(chat("custom"), &options).await.unwrap();
        let cost = custom.meta.response_cost.unwrap();
        assert!(
            (cost - (10.0 * 0.001 + 20.0 * 0.002)).abs() < 1e-12,
            "{cost}"
        );
        let shipped = gateway.chat(chat("shipped"), &options).await.unwrap();
        assert!(shipped.meta.response_cost.unwrap() > 0.0);
        let unknown = gateway.chat(chat("unknown"), &options).await.unwrap();
        assert_eq!(unknown.meta.response_cost, Some(0.0));
    }

    #[test]
    fn unimplemented_providers_load_with_a_warning() {
        let gateway = gateway("model_list:\n  - model_name: c\n    litellm_params: {model: watsonx/granite-13b, api_key: k}\n");
        assert!(gateway
            .warnings()
            .iter()
            .any(|w| w.contains("provider 'watsonx'")));
    }

    #[test]
    fn anthropic_deployments_load_without_a_warning() {
        let gateway = gateway("model_list:\n  - model_name: c\n    litellm_params: {model: anthropic/claude-3-5-sonnet, api_key: k}\n  - model_name: g\n    litellm_params: {model: gemini/gemini-2.0-flash, api_key: k}\n");
        assert!(gateway.warnings().is_empty(), "{:?}", gateway.warnings());
    }
}
