//! Metering a stream: watches the chunks on their way to the client and settles the call's
//! account when the stream ends, fails, or is dropped because the client went away.
//!
//! Cost is what the provider produced: its own `usage` when it sent one (the engine asks
//! for it with `stream_options.include_usage`; a usage chunk the client did not ask for is
//! accounted and not relayed), otherwise an estimate from the text relayed so far and the
//! prompt (marked `usage_estimated` in the row's metadata). Chunks are relayed as the
//! same bytes; looking into one costs a borrowed parse of its text fields.

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
        meta: pricing_meta(meta),
        account: Some(account),
        usage: None,
        produced_chars: 0,
        first_chunk_at: None,
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
    /// The provider's own usage, once seen.
    usage: Option<Usage>,
    /// Characters of generated text relayed so far (for the estimate).
    produced_chars: u64,
    first_chunk_at: Option<DateTime<Utc>>,
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
    /// Settles the account with what was produced so far.
    fn settle(&mut self, failed: bool, cancelled: bool) {
        let Some(account) = self.account.take() else {
            return;
        };
        let (usage, estimated) = match self.usage.take() {
            Some(usage) => (usage, false),
            None => (
                Usage::new(
                    account.facts_prompt_estimate(),
                    estimate_tokens_of_chars(self.produced_chars),
                ),
                true,
            ),
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
        loop {
            match self.chunks.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if self.first_chunk_at.is_none() {
                        self.first_chunk_at = Some(Utc::now());
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
                    self.settle(false, false);
                    return Poll::Ready(None);
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
