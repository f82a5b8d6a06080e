//! Metering a stream: watches the chunks on their way to the client and settles the call's
//! account when the stream ends, fails, or is dropped because the client went away.
//!
//! Cost is what the provider produced: its own `usage` when it sent one (the engine asks
//! for it with `stream_options.include_usage`; a usage chunk the client did not ask for is
//! accounted and not relayed), otherwise an estimate from the text relayed so far and the
//! prompt (marked `usage_estimated` in the row's metadata). Chunks are relayed as the
//! same bytes; looking into one costs a borrowed parse of its text fields.
//!
//! A client that asked for `include_usage` is owed a usage chunk at the end, as LiteLLM
//! sends one: when the upstream ended without usage (an Azure api-version that cannot be
//! asked, an OpenAI-compatible server that ignores the option), the estimate is sent as the
//! last chunk, in the shape of the stream's own chunks.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use switchyard::CallMeta;
use switchyard_budget::estimate::estimate_tokens_of_chars;
use switchyard_llm_types::{ChunkJson, Usage};
use switchyard_providers::{ChunkStream, ProviderError};

use super::record::Outcome;
use super::CallAccount;

/// Wraps `chunks` so that `account` settles when the stream is over. Without a store the
/// stream is returned as is.
pub fn metered(chunks: ChunkStream, meta: &CallMeta, account: CallAccount) -> ChunkStream {
    if !account.is_recording() && !meta.usage_chunk_added {
        return chunks;
    }
    MeteredStream {
        chunks,
        // Without `usage_chunk_added` the client's own request asked for usage.
        client_wants_usage: !meta.usage_chunk_added,
        meta: pricing_meta(meta),
        account: Some(account),
        usage: None,
        usage_estimated: false,
        produced_chars: 0,
        first_chunk_at: None,
        head: None,
        ended: false,
    }
    .boxed()
}

/// The parts of the call's metadata that settling needs (not the upstream's headers or
/// the request's gateway fields).
fn pricing_meta(meta: &CallMeta) -> CallMeta {
    CallMeta {
        provider_headers: http::HeaderMap::new(),
        gateway_params: Default::default(),
        ..meta.clone()
    }
}

struct MeteredStream {
    chunks: ChunkStream,
    meta: CallMeta,
    account: Option<CallAccount>,
    /// The provider's own usage, once seen (or the estimate sent in its place).
    usage: Option<Usage>,
    /// `usage` is the gateway's estimate, sent to the client for want of the provider's.
    usage_estimated: bool,
    /// Characters of generated text relayed so far (for the estimate).
    produced_chars: u64,
    first_chunk_at: Option<DateTime<Utc>>,
    client_wants_usage: bool,
    /// The first chunk's identity, kept (only when the client wants usage) to stamp an
    /// estimated usage chunk with.
    head: Option<StreamHead>,
    /// The upstream stream has ended (it must not be polled again).
    ended: bool,
}

/// What every chunk of a stream repeats, read from its first chunk.
#[derive(Deserialize)]
struct StreamHead {
    #[serde(default)]
    id: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    model: String,
}

impl StreamHead {
    /// The last chunk OpenAI sends when asked for usage: no choices, the usage.
    fn usage_chunk(&self, usage: &Usage) -> Option<ChunkJson> {
        let chunk = serde_json::json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        });
        serde_json::to_vec(&chunk)
            .ok()
            .map(|bytes| ChunkJson::from_bytes(bytes.into()))
    }
}

/// The fields of a chunk that carry generated text, borrowed from its bytes.
#[derive(Deserialize)]
struct TextPeek<'a> {
    #[serde(borrow, default)]
    choices: Vec<ChoicePeek<'a>>,
}

#[derive(Deserialize)]
struct ChoicePeek<'a> {
    #[serde(borrow, default)]
    delta: Option<DeltaPeek<'a>>,
    /// Text completions stream `text` instead of a delta.
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaPeek<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<&'a serde_json::value::RawValue>,
}

/// Characters of generated text in one chunk (tool-call deltas count by their JSON size).
fn produced_chars(chunk: &ChunkJson) -> u64 {
    let Ok(peek) = serde_json::from_slice::<TextPeek<'_>>(chunk.as_bytes()) else {
        return 0;
    };
    let count = |text: &Option<Cow<'_, str>>| text.as_deref().map_or(0, |t| t.chars().count());
    peek.choices
        .iter()
        .map(|choice| {
            let delta = choice.delta.as_ref().map_or(0, |delta| {
                count(&delta.content)
                    + count(&delta.reasoning_content)
                    + delta.tool_calls.map_or(0, |raw| raw.get().len())
            });
            (delta + count(&choice.text)) as u64
        })
        .sum()
}

/// Whether a chunk is only the usage report (`choices: []`), as OpenAI sends it last.
fn is_usage_only(chunk: &ChunkJson) -> bool {
    serde_json::from_slice::<TextPeek<'_>>(chunk.as_bytes())
        .is_ok_and(|peek| peek.choices.is_empty())
}

impl MeteredStream {
    /// The estimate of what was produced so far, from the prompt's estimate and the
    /// characters relayed.
    fn estimated_usage(&self, account: &CallAccount) -> Usage {
        Usage::new(
            account.facts_prompt_estimate(),
            estimate_tokens_of_chars(self.produced_chars),
        )
    }

    /// At the end of a stream that brought no usage: the estimate, recorded as the
    /// provider's usage and returned as the chunk owed to a client that asked for usage.
    fn owed_usage_chunk(&mut self) -> Option<ChunkJson> {
        if !self.client_wants_usage || self.usage.is_some() {
            return None;
        }
        let account = self
            .account
            .as_ref()
            .filter(|account| account.is_recording())?;
        let usage = self.estimated_usage(account);
        let chunk = self.head.as_ref()?.usage_chunk(&usage)?;
        self.usage = Some(usage);
        self.usage_estimated = true;
        Some(chunk)
    }

    /// Settles the account with what was produced so far.
    fn settle(&mut self, failed: bool, cancelled: bool) {
        let Some(account) = self.account.take() else {
            return;
        };
        let (usage, estimated) = match self.usage.take() {
            Some(usage) => (usage, self.usage_estimated),
            None => (self.estimated_usage(&account), true),
        };
        let spend = account.gateway().engine().cost_of_usage(&self.meta, &usage);
        let outcome = Outcome {
            failed,
            usage: Some(usage),
            usage_estimated: estimated,
            spend,
            first_chunk_at: self.first_chunk_at,
            cancelled,
            error: cancelled.then(|| {
                serde_json::json!({
                    "error_code": "499",
                    "error_class": "ClientDisconnected",
                    "error_message": "the client disconnected before the stream ended",
                })
            }),
            response: None,
        };
        account.settle(Some(&self.meta), outcome);
    }
}

impl Stream for MeteredStream {
    type Item = Result<ChunkJson, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            match self.chunks.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if self.first_chunk_at.is_none() {
                        self.first_chunk_at = Some(Utc::now());
                        if self.client_wants_usage {
                            self.head = serde_json::from_slice(chunk.as_bytes()).ok();
                        }
                    }
                    if let Some(usage) = chunk.usage() {
                        self.usage = Some(usage);
                        if self.meta.usage_chunk_added && is_usage_only(&chunk) {
                            // Asked for by the gateway, not the client: accounted, not relayed.
                            continue;
                        }
                    }
                    if self.account.is_some() {
                        self.produced_chars += produced_chars(&chunk);
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.settle(true, false);
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    let owed = self.owed_usage_chunk();
                    self.settle(false, false);
                    return Poll::Ready(owed.map(Ok));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // Dropped before its end: the client disconnected mid-stream. The provider produced
        // what was relayed (and was cancelled with this drop); charge that.
        self.settle(true, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunk(json: &'static str) -> ChunkJson {
        ChunkJson::from_bytes(Bytes::from_static(json.as_bytes()))
    }

    #[test]
    fn counts_generated_text_of_chat_and_text_chunks() {
        assert_eq!(
            produced_chars(&chunk(
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"héllo"}}]}"#
            )),
            5
        );
        assert_eq!(
            produced_chars(&chunk(r#"{"choices":[{"index":0,"text":"abc"}]}"#)),
            3
        );
        assert_eq!(
            produced_chars(&chunk(r#"{"choices":[],"usage":{"prompt_tokens":1}}"#)),
            0
        );
        assert_eq!(produced_chars(&chunk("not json")), 0);
    }

    #[test]
    fn recognises_the_usage_only_chunk() {
        assert!(is_usage_only(&chunk(
            r#"{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#
        )));
        assert!(!is_usage_only(&chunk(
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}}"#
        )));
    }
}
