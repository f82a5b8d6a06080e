//! End-to-end tests: the real `switchyard` binary, spawned on an ephemeral port, against
//! in-process mock upstreams (`switchyard-mock-upstream`), over real HTTP.
//!
//! Every test starts its own mock upstream(s) and gateway, so tests are independent and run
//! in parallel. Build the binary first (`cargo build -p switchyard-gateway`); if it is missing
//! the support crate builds it once.
//!
//! - [`azure`] — Azure OpenAI deployments: `stream_options` only where the api-version takes it.
//! - [`bedrock`] — Bedrock deployments against a mock that verifies SigV4 signatures.
//! - [`admission`] — rate limits and budgets: exact across three replicas sharing Redis and
//!   PostgreSQL, budget resets, streams that settle when the client leaves.
//! - [`cache`] — the response cache: hits, stream replay, controls, admin routes, shared Redis.
//! - [`chat`] — non-streaming chat: body, usage, response headers, what reaches the upstream,
//!   key headers, path forms.
//! - [`streaming`] — SSE relay: incremental delivery, `[DONE]`, usage chunk, mid-stream
//!   failure, client disconnect.
//! - [`endpoints`] — `/embeddings` and `/completions`.
//! - [`errors`] — every error the client API documents.
//! - [`google`] — Gemini and Vertex AI deployments against a mock of the Google APIs.
//! - [`ollama`] — Ollama deployments (`/api/chat`, `/api/generate`, `/api/embed`) against a
//!   mock of Ollama's native API.
//! - [`cohere`] — Cohere chat, stream, embed and `/v1/rerank` against a mock of Cohere v2.
//! - [`jina`] — `jina_ai/` rerank through `/v1/rerank` against a mock of Jina AI's rerank API.
//! - [`models`] — `/models`, `/models/{id}`, `/model/info`, health probes.
//! - [`model_db`] — models stored in the database (`/model/new|update|delete`): two
//!   replicas, a restart, sealed credentials, config models untouched.
//! - [`health`] — `/health`: deployments probed upstream, healthy/unhealthy, `?model=`, admin only.
//! - [`routing`] — wildcards, aliases, `mock_response`.
//! - [`lifecycle`] — start-up refusals, `switchyard check`, SIGTERM draining.
//! - [`messages`] — `/v1/messages`: the Anthropic format inbound, over an OpenAI-compatible upstream.
//! - [`passthrough`] — `/v1/responses`, `/v1/moderations`, `/v1/images/generations`, `/v1/audio/speech` relayed.
//! - [`python`] — the official OpenAI Python SDK against the gateway.
//! - [`keys`] — virtual keys: `/key/*` and keys on the LLM routes, embedded store and PostgreSQL.
//! - [`users`] — `/user/*` and `/team/member_*`, the auto-created user key, embedded store and PostgreSQL.
//! - [`semantic_cache`] — the semantic cache: hits by meaning, isolation, Redis without a
//!   search module, failures that degrade.
//! - [`semantic_eval`] — the semantic cache with a real embedding model on paraphrase and
//!   near-miss pairs (hit rates for `docs/benchmarks.md`).
//! - [`reliability`] — retries, cooldowns, weights and fallbacks across several upstreams.
//! - [`spend`] — spend logs, counters, stream pricing, outage and shutdown, spend reports (PostgreSQL).
//! - [`spend_controls`] — tag budgets (`/tag/*`), `/global/spend/reset`, `disable_spend_logs`,
//!   the spend writer's health, calls priced when the provider reports no usage (PostgreSQL).
//! - [`governance`] — `/organization/*`, `/customer/*`, `/budget/*`, `/audit`, both stores.
//! - [`roles`] — LiteLLM's roles on every management route.
//! - [`replicas`] — two replicas on one PostgreSQL: key changes reach the other within a
//!   second (Redis pub/sub, and the polled counter without Redis).
//! - [`security`] — path tricks, Host headers and smuggling, revoked keys, injection
//!   strings everywhere, no secret in any table.
//! - [`strategies`] — latency-, usage- and cost-based routing, `rpm`/`tpm` limits, pre-call
//!   context-window checks.
//! - [`shared_state`] — two gateway replicas sharing router state through Redis; Redis down.

// Test code throughout, including the helpers outside `#[test]` functions: a panic with context
// is the failure report.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "end-to-end test crate: helpers panic with context, like the tests themselves"
)]

mod admission;
mod azure;
mod bedrock;
mod cache;
mod chat;
mod cohere;
mod common;
mod endpoints;
mod errors;
mod google;
mod governance;
mod health;
mod jina;
mod keys;
mod lifecycle;
mod messages;
mod model_db;
mod models;
mod ollama;
mod passthrough;
mod python;
mod reliability;
mod replicas;
mod roles;
mod routing;
mod security;
mod semantic_cache;
mod semantic_eval;
mod shared_state;
mod spend;
mod spend_controls;
mod strategies;
mod streaming;
mod users;
