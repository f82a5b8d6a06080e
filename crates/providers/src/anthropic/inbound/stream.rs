//! OpenAI chunk stream → Anthropic's SSE event sequence.
//!
//! Anthropic clients expect, in order: `message_start`; per content block a
//! `content_block_start`, its deltas (`text_delta`, `input_json_delta`, `thinking_delta`,
//! `signature_delta`) and `content_block_stop`; a `ping` after the first block starts; then `message_delta` with the
//! stop reason and usage, and `message_stop`. OpenAI streams interleave nothing (one block is
//! open at a time), so the encoder only tracks the open block: a text delta after a tool call,
//! or a tool call with a new index, closes it and opens the next.
//!
//! The stop reason and the usage come at the end of an OpenAI stream (usage in its own last
//! chunk), so `message_delta` is written when the stream ends. `message_start` carries zero
//! usage; the `message_delta` usage has every figure (SDKs take input tokens from it too).
//!
//! Events are borrowed views of the chunk they come from ([`Event`]), serialized straight into
//! the output buffer: encoding a text chunk builds no JSON tree and allocates nothing.

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::Value;
use switchyard_llm_types::{ChatCompletionChunk, Usage};

use super::error_body;
use super::response::{matched_stop_sequence, message_usage, new_message_id, stop_reason};
use super::types::MessageUsage;

/// One Anthropic stream event, as written: `type` first, then the fields in Anthropic's order.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: MessageStart<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: &'a BlockStart<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta<'a>,
        usage: MessageUsage,
    },
    MessageStop,
}

impl Event<'_> {
    /// The SSE event name: the event's `type`.
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

/// The message of `message_start`: nothing generated yet.
#[derive(Debug, Serialize)]
struct MessageStart<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: MessageUsage,
}

#[derive(Debug, Serialize)]
struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

/// A `content_block_start`'s block: an empty block of a kind, or a block relayed whole.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BlockStart<'a> {
    Empty(EmptyBlock<'a>),
    /// A `redacted_thinking` block, as the chunk carried it.
    Relayed(&'a Value),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EmptyBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

/// `{}`.
#[derive(Debug, Serialize)]
struct EmptyObject {}

const TEXT_BLOCK: BlockStart<'static> = BlockStart::Empty(EmptyBlock::Text { text: "" });
const THINKING_BLOCK: BlockStart<'static> = BlockStart::Empty(EmptyBlock::Thinking {
    thinking: "",
    signature: "",
});

/// A `content_block_delta`'s delta; its `type` is the variant's name with `_delta`.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum BlockDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking,
    /// A `redacted_thinking` block (whole in its start event).
    RedactedThinking,
    /// A tool call, by its OpenAI `tool_calls[].index`.
    Tool(u32),
}

/// Encodes one stream. Feed it each chunk ([`StreamEncoder::on_chunk`]), then
/// [`StreamEncoder::finish`] or [`StreamEncoder::fail`].
#[derive(Debug)]
pub struct StreamEncoder {
    model: String,
    started: bool,
    pinged: bool,
    /// The open block and its Anthropic index.
    open: Option<(OpenBlock, u32)>,
    next_index: u32,
    finish_reason: Option<String>,
    stop_sequence: Option<String>,
    usage: Option<Usage>,
    ended: bool,
}

impl StreamEncoder {
    /// `model` names the message until the upstream's first chunk says otherwise.
    pub fn new(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            started: false,
            pinged: false,
            open: None,
            next_index: 0,
            finish_reason: None,
            stop_sequence: None,
            usage: None,
            ended: false,
        }
    }

    /// Whether `message_stop` (or an error event) was written.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Appends the events for one OpenAI chunk to `out`.
    pub fn on_chunk(&mut self, chunk: &ChatCompletionChunk, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if !self.started {
            if !chunk.model.is_empty() {
                self.model.clone_from(&chunk.model);
            }
            if chunk.id.is_empty() {
                self.start(&new_message_id(), out);
            } else {
                self.start(&chunk.id, out);
            }
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        // Anthropic messages have one choice; others (n > 1) have no place to go.
        let Some(choice) = chunk.choices.iter().find(|choice| choice.index == 0) else {
            return;
        };
        let delta = &choice.delta;
        if let Some(thinking) = delta
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
        {
            self.open_block(OpenBlock::Thinking, out, &THINKING_BLOCK);
            self.block_delta(BlockDelta::Thinking { thinking }, out);
        }
        if let Some(Value::Array(blocks)) = delta.extra.get("thinking_blocks") {
            for block in blocks {
                self.on_thinking_block(block, out);
            }
        }
        if let Some(text) = delta.content.as_deref().filter(|text| !text.is_empty()) {
            self.open_block(OpenBlock::Text, out, &TEXT_BLOCK);
            self.block_delta(BlockDelta::Text { text }, out);
        }
        for call in delta.tool_calls.iter().flatten() {
            let function = call.function.as_ref();
            let starts_new = call.id.is_some() || self.open != self.open_tool(call.index);
            if starts_new {
                let block = BlockStart::Empty(EmptyBlock::ToolUse {
                    id: call.id.as_deref().unwrap_or_default(),
                    name: function
                        .and_then(|function| function.name.as_deref())
                        .unwrap_or_default(),
                    input: EmptyObject {},
                });
                self.close_block(out);
                self.open_block(OpenBlock::Tool(call.index), out, &block);
            }
            if let Some(arguments) = function
                .and_then(|function| function.arguments.as_deref())
                .filter(|arguments| !arguments.is_empty())
            {
                self.block_delta(
                    BlockDelta::InputJson {
                        partial_json: arguments,
                    },
                    out,
                );
            }
        }
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
            self.stop_sequence = matched_stop_sequence(&choice.extra).map(str::to_owned);
        }
    }

    /// A `thinking_blocks` entry of a delta (see `super::super::stream`): a signature ends
    /// the thinking block as `signature_delta` (the client must send it back with the
    /// thinking), a redacted block is written whole. The thinking text itself came as
    /// `reasoning_content`.
    fn on_thinking_block(&mut self, block: &Value, out: &mut BytesMut) {
        match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let signature = block.get("signature").and_then(Value::as_str);
                if let Some(signature) = signature.filter(|signature| !signature.is_empty()) {
                    self.open_block(OpenBlock::Thinking, out, &THINKING_BLOCK);
                    self.block_delta(BlockDelta::Signature { signature }, out);
                }
            }
            Some("redacted_thinking") => {
                self.close_block(out);
                self.open_block(
                    OpenBlock::RedactedThinking,
                    out,
                    &BlockStart::Relayed(block),
                );
                self.close_block(out);
            }
            _ => {}
        }
    }

    /// The stream ended normally: closes the open block, then `message_delta` and
    /// `message_stop`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if !self.started {
            self.start(&new_message_id(), out);
        }
        self.close_block(out);
        let (reason, sequence) =
            stop_reason(self.finish_reason.as_deref(), self.stop_sequence.as_deref());
        let usage = self.usage.as_ref().map(message_usage).unwrap_or_default();
        write_event(
            out,
            &Event::MessageDelta {
                delta: StopDelta {
                    stop_reason: reason,
                    stop_sequence: sequence.as_deref(),
                },
                usage,
            },
        );
        write_event(out, &Event::MessageStop);
        self.ended = true;
    }

    /// The stream failed after it started: an Anthropic `error` event ends it.
    pub fn fail(&mut self, status: u16, message: &str, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        write_sse(out, "error", &error_body(status, message));
        self.ended = true;
    }

    fn start(&mut self, id: &str, out: &mut BytesMut) {
        self.started = true;
        let message = MessageStart {
            id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: [],
            stop_reason: None,
            stop_sequence: None,
            usage: MessageUsage::default(),
        };
        write_event(out, &Event::MessageStart { message });
    }

    fn open_tool(&self, index: u32) -> Option<(OpenBlock, u32)> {
        self.open
            .filter(|(block, _)| *block == OpenBlock::Tool(index))
    }

    /// Opens a block of `kind` unless one is already open (then it continues).
    fn open_block(&mut self, kind: OpenBlock, out: &mut BytesMut, block: &BlockStart<'_>) {
        if self.open.is_some_and(|(open, _)| open == kind) {
            return;
        }
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        write_event(
            out,
            &Event::ContentBlockStart {
                index,
                content_block: block,
            },
        );
        if !self.pinged {
            self.pinged = true;
            write_event(out, &Event::Ping);
        }
    }

    fn block_delta(&self, delta: BlockDelta<'_>, out: &mut BytesMut) {
        if let Some((_, index)) = self.open {
            write_event(out, &Event::ContentBlockDelta { index, delta });
        }
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some((_, index)) = self.open.take() {
            write_event(out, &Event::ContentBlockStop { index });
        }
    }
}

fn write_event(out: &mut BytesMut, event: &Event<'_>) {
    write_sse(out, event.name(), event);
}

/// `event: <name>\ndata: <json>\n\n`.
fn write_sse(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    let mut writer = out.writer();
    // Serializing `Value`s and plain structs into memory cannot fail.
    if serde_json::to_writer(&mut writer, data).is_err() {
        tracing::error!(event = name, "cannot encode a stream event");
    }
    let out = writer.into_inner();
    out.put_slice(b"\n\n");
}
