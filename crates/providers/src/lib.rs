//! Provider adapters: how a unified (OpenAI-shaped) call reaches one upstream.
//!
//! # Layout
//! - [`provider`] — the [`Provider`] trait every adapter implements, and the per-call options.
//! - [`registry`] — the one list of provider prefixes (`openai/`, `groq/`, ...), which drives
//!   model-string parsing and tells which families this build implements.
//! - [`openai_compat`] — the OpenAI-compatible family; each vendor is a row in a dialect table
//!   (default base URL, key variable), not a module of its own. Azure OpenAI (`azure/`) reuses
//!   it with a different URL and credential [`Layout`].
//! - [`anthropic`] — the Anthropic Messages API: request, response and stream translation.
//! - [`bedrock`] — Amazon Bedrock: Converse / ConverseStream with SigV4, Titan and Cohere
//!   embeddings.
//! - [`gemini`] — Google Gemini, on Google AI Studio (`gemini/`) and Vertex AI (`vertex_ai/`),
//!   with [`google_auth`] for Vertex's service-account OAuth tokens.
//! - [`ollama`] — Ollama's native API: `/api/chat` (`ollama_chat/`), `/api/generate`
//!   (`ollama/`), `/api/embed`, NDJSON streams.
//! - [`cohere`] — Cohere's v2 API: chat (streaming too), embed and rerank.
//! - [`passthrough`] — endpoints relayed as they are (Responses API, moderations, images,
//!   speech) to OpenAI-compatible deployments.
//! - [`mock`] — the built-in mock (`mock_response`), so a gateway answers with no provider key.
//! - [`sse`] — server-sent-event decoding, shared by every streaming adapter.
//! - [`ndjson`] — newline-delimited JSON decoding (Ollama streams).
//! - [`stream_driver`] — the decode-and-translate loop of adapters that rewrite streams.
//! - [`chunk_writer`] — OpenAI chunks written straight into a reused buffer by those adapters.
//! - [`borrowed`] — the borrowed-unless-escaped string their parsed events are made of.
//! - [`http`] — the pooled upstream HTTP client and upstream error mapping.
//! - [`error`] — [`ProviderError`], classified for the router and the HTTP layer.
//!
//! Adapters translate and transport; they never decide where a call goes (that is the
//! router's job) or what it costs (the budget crate's).

pub mod anthropic;
pub mod bedrock;
pub mod borrowed;
pub mod chunk_writer;
pub mod cohere;
pub mod error;
pub mod gemini;
pub mod google_auth;
pub mod http;
pub mod image_fetch;
pub mod mock;
pub mod ndjson;
pub mod ollama;
pub mod openai_compat;
pub mod passthrough;
pub mod provider;
pub mod registry;
pub mod sse;
pub mod stream_driver;

pub use anthropic::{Anthropic, AnthropicTarget};
pub use bedrock::{Bedrock, BedrockParams, BedrockTarget};
pub use cohere::{Cohere, CohereTarget};
pub use error::ProviderError;
pub use gemini::{Gemini, GeminiTarget, GoogleApi, VertexParams};
pub use http::HttpClient;
pub use mock::MockProvider;
pub use ollama::{Ollama, OllamaTarget};
pub use openai_compat::{AzureParams, Dialect, Layout, OpenAiCompatible, OpenAiCompatibleTarget};
pub use provider::{CallOptions, ChunkStream, Provider, Upstream};
pub use registry::{ProviderFamily, ProviderSpec};
