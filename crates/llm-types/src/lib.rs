//! Wire types shared by every Switchyard crate: the OpenAI-compatible request and response
//! bodies, streaming chunks, usage, and the error classification every crate maps onto.
//!
//! # Layout
//! - [`chat`] — `/chat/completions` requests, responses and stream chunks.
//! - [`completions`] — legacy `/completions`.
//! - [`embeddings`] — `/embeddings`.
//! - [`models`] — `/models` listing.
//! - [`rerank`] — `/rerank` (Cohere's shape).
//! - [`usage`] — token usage, shared by every response type.
//! - [`stream`] — a stream chunk kept as raw JSON, parsed only when a stage needs it.
//! - [`error`] — the OpenAI error body and [`ErrorKind`], the closed set of error classes
//!   every crate's own error enum maps onto (status, OpenAI `type`, retryability).
//!
//! Every body type keeps fields it does not model in an `extra` map (`#[serde(flatten)]`), so a
//! parameter we do not know yet still reaches an OpenAI-compatible upstream untouched.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod models;
pub mod rerank;
pub mod stream;
pub mod usage;

pub use chat::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice,
    ChunkChoice, ContentPart, Delta, MessageContent, Role, StreamOptions, Tool, ToolCall,
    ToolChoice,
};
pub use completions::{CompletionChoice, CompletionRequest, CompletionResponse};
pub use embeddings::{EmbeddingInput, EmbeddingRequest, EmbeddingResponse};
pub use error::{ErrorBody, ErrorClass, ErrorDetail, ErrorKind, ProviderSpecificFields};
pub use models::{ModelList, ModelObject};
pub use rerank::{RerankDocument, RerankRequest, RerankResponse, RerankResult};
pub use stream::ChunkJson;
pub use usage::Usage;

/// A JSON object holding the fields a type does not model; passed through untouched.
pub type Extra = serde_json::Map<String, serde_json::Value>;
