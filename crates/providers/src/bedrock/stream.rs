//! ConverseStream (AWS event-stream framing) → OpenAI `chat.completion.chunk`s.
//!
//! Frames are decoded by the official `aws-smithy-eventstream` decoder (length prelude,
//! headers, payload, CRCs). Each `event` message names its type in `:event-type`
//! (`messageStart`, `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`,
//! `messageStop`, `metadata`) and carries JSON; `exception` messages carry an error. The
//! usage chunk is sent at the end, because `metadata` (with usage) follows `messageStop`.

use std::collections::VecDeque;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_llm_types::ChunkJson;

use super::error::classify;
use super::response::{finish_reason, usage, TokenUsage};
use crate::borrowed::Str;
use crate::chunk_writer::{ChunkHead, ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::stream_driver::ChunkSource;
use crate::ProviderError;

/// The JSON payload of any ConverseStream event, parsed straight from the frame: each event
/// type fills its own fields, strings are borrowed unless they hold escapes, and fields this
/// adapter does not read are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPayload<'a> {
    #[serde(default)]
    pub content_block_index: Option<u64>,
    /// `contentBlockStart`
    #[serde(default, borrow)]
    pub start: Option<BlockStart<'a>>,
    /// `contentBlockDelta`
    #[serde(default, borrow)]
    pub delta: Option<BlockDelta<'a>>,
    /// `messageStop`
    #[serde(default, borrow)]
    pub stop_reason: Option<Str<'a>>,
    /// `metadata`
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart<'a> {
    #[serde(default, borrow)]
    pub tool_use: Option<ToolUseStart<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart<'a> {
    #[serde(default, borrow)]
    pub tool_use_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub name: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDelta<'a> {
    #[serde(default, borrow)]
    pub text: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub tool_use: Option<ToolUseDelta<'a>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<ReasoningDelta<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolUseDelta<'a> {
    #[serde(default, borrow)]
    pub input: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ReasoningDelta<'a> {
    #[serde(default, borrow)]
    pub text: Option<Str<'a>>,
}

/// Translation state for one stream.
#[derive(Debug)]
pub struct StreamTranslator {
    provider: &'static str,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// (Converse content-block index, OpenAI tool-call index) of each tool use so far; a
    /// short list, searched from the end.
    tool_indexes: Vec<(u64, u32)>,
    tool_count: u32,
    stopped: bool,
    usage: Option<TokenUsage>,
    writer: ChunkWriter,
}

impl StreamTranslator {
    pub fn new(
        provider: &'static str,
        model: &str,
        id: &str,
        include_usage: bool,
        created: u64,
    ) -> Self {
        Self {
            provider,
            include_usage,
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            tool_indexes: Vec::new(),
            tool_count: 0,
            stopped: false,
            usage: None,
            writer: ChunkWriter::new(provider),
        }
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message,
        }
    }

    /// Translates one decoded message, appending its chunks (zero or more) to `out`.
    pub fn on_message(
        &mut self,
        message: &Message,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|header| header.name().as_str() == name)
                .and_then(|header| match header.value() {
                    HeaderValue::String(value) => Some(value.as_str()),
                    _ => None,
                })
        };
        let payload = message.payload();
        match header(":message-type").unwrap_or_default() {
            "event" => {}
            "exception" | "error" => {
                let payload: Value = if payload.is_empty() {
                    Value::Object(Map::new())
                } else {
                    serde_json::from_slice(payload).map_err(|error| {
                        self.invalid(format!("undecodable stream event: {error}"))
                    })?
                };
                let name = header(":exception-type")
                    .or_else(|| header(":error-code"))
                    .unwrap_or_default();
                let text = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .and_then(Value::as_str)
                    .or_else(|| header(":error-message"))
                    .map_or_else(|| payload.to_string(), str::to_owned);
                return Err(classify(self.provider, name, None, text));
            }
            other => {
                return Err(self.invalid(format!("unexpected event-stream message type {other:?}")))
            }
        }
        let payload: EventPayload<'_> = if payload.is_empty() {
            EventPayload::default()
        } else {
            serde_json::from_slice(payload)
                .map_err(|error| self.invalid(format!("undecodable stream event: {error}")))?
        };
        self.on_event(header(":event-type").unwrap_or_default(), &payload, out)
    }

    /// Translates one event by type and payload, appending its chunks to `out`.
    pub fn on_event(
        &mut self,
        event_type: &str,
        payload: &EventPayload<'_>,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        let index = payload.content_block_index.unwrap_or(0);
        match event_type {
            "messageStart" => out.push_back(self.write(&DeltaOut::start(), None)?),
            "contentBlockStart" => {
                if let Some(tool_use) = payload.start.as_ref().and_then(|s| s.tool_use.as_ref()) {
                    let position = self.tool_count;
                    self.tool_count += 1;
                    self.tool_indexes.push((index, position));
                    let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                        index: position,
                        id: tool_use.tool_use_id.as_deref(),
                        kind: Some("function"),
                        function: Some(FunctionDeltaOut {
                            name: tool_use.name.as_deref(),
                            arguments: Some(""),
                        }),
                    });
                    out.push_back(self.write(&delta, None)?);
                }
            }
            "contentBlockDelta" => {
                let Some(delta) = &payload.delta else {
                    return Ok(());
                };
                if let Some(text) = &delta.text {
                    out.push_back(self.write(&DeltaOut::content(text), None)?);
                } else if let Some(input) = delta.tool_use.as_ref().and_then(|t| t.input.as_ref()) {
                    let position = self
                        .tool_indexes
                        .iter()
                        .rev()
                        .find(|(block, _)| *block == index)
                        .map(|(_, position)| *position)
                        .ok_or_else(|| {
                            self.invalid(format!(
                                "tool input for content block {index}, which started no tool use"
                            ))
                        })?;
                    if !input.is_empty() {
                        let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                            index: position,
                            id: None,
                            kind: None,
                            function: Some(FunctionDeltaOut {
                                name: None,
                                arguments: Some(input),
                            }),
                        });
                        out.push_back(self.write(&delta, None)?);
                    }
                } else if let Some(text) = delta
                    .reasoning_content
                    .as_ref()
                    .and_then(|reasoning| reasoning.text.as_ref())
                {
                    out.push_back(self.write(&DeltaOut::reasoning(text), None)?);
                }
            }
            "messageStop" => {
                self.stopped = true;
                let reason = payload.stop_reason.as_deref().unwrap_or("end_turn");
                out.push_back(self.write(&DeltaOut::default(), Some(finish_reason(reason)))?);
            }
            "metadata" => {
                if let Some(usage) = payload.usage {
                    self.usage = Some(usage);
                }
            }
            // contentBlockStop and event types added later carry nothing to relay.
            _ => {}
        }
        Ok(())
    }

    /// At the end of the stream: the usage chunk when asked for, or an error if the stream
    /// stopped before `messageStop` and `metadata`.
    pub fn on_end(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.stopped {
            return Err(self.invalid("the upstream ended the stream before messageStop".to_owned()));
        }
        // `metadata` always closes a ConverseStream; without it the usage (and the bill)
        // would be unknown.
        let Some(token_usage) = self.usage else {
            return Err(self
                .invalid("the upstream ended the stream before its metadata (usage)".to_owned()));
        };
        if !self.include_usage {
            return Ok(Vec::new());
        }
        let chunk = self.writer.usage_chunk(self.head(), usage(&token_usage))?;
        Ok(vec![chunk])
    }

    fn write(
        &mut self,
        delta: &DeltaOut<'_>,
        finish: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        // Field by field: the head borrows `id` and `model` while `writer` is borrowed mutably.
        let head = ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        };
        self.writer.write(head, 0, delta, finish)
    }

    fn head(&self) -> ChunkHead<'_> {
        ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }
}

/// AWS caps event-stream messages at 16 MiB (plus framing); a longer claim is corruption.
const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024 + 1024;

/// Event-stream decoding plus translation, for [`crate::stream_driver::drive`].
#[derive(Debug)]
pub struct ConverseStream {
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
    translator: StreamTranslator,
}

impl ConverseStream {
    pub fn new(translator: StreamTranslator) -> Self {
        Self {
            buffer: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            translator,
        }
    }
}

impl ChunkSource for ConverseStream {
    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn next_chunks(&mut self) -> Result<Option<Vec<ChunkJson>>, ProviderError> {
        let mut out = VecDeque::new();
        Ok(self.next_chunks_into(&mut out)?.then(|| out.into()))
    }

    fn next_chunks_into(&mut self, out: &mut VecDeque<ChunkJson>) -> Result<bool, ProviderError> {
        // Hand the decoder whole frames only, so that bytes left in `buffer` at the end are
        // exactly what a truncated frame left behind.
        let Some(prelude) = self.buffer.get(..4) else {
            return Ok(false);
        };
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        if total > MAX_FRAME_BYTES {
            return Err(ProviderError::InvalidResponse {
                provider: self.translator.provider,
                message: format!("an event-stream frame claims {total} bytes"),
            });
        }
        if self.buffer.len() < total {
            return Ok(false);
        }
        match self.decoder.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Incomplete) => Ok(false),
            Ok(DecodedFrame::Complete(message)) => {
                self.translator.on_message(&message, out)?;
                Ok(true)
            }
            Err(error) => Err(ProviderError::InvalidResponse {
                provider: self.translator.provider,
                message: format!("malformed event-stream frame: {error}"),
            }),
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.buffer.is_empty() {
            return Err(ProviderError::InvalidResponse {
                provider: self.translator.provider,
                message: format!(
                    "the stream ended inside an event-stream frame ({} bytes left over)",
                    self.buffer.len()
                ),
            });
        }
        self.translator.on_end()
    }

    fn is_finished(&self) -> bool {
        // `metadata` follows `messageStop`: the body's end is the stream's end.
        false
    }
}

/// Builds event-stream frames as Bedrock sends them (for tests, fixtures and benchmarks).
pub mod frames {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

    /// One `event` frame of type `event_type` with a JSON payload.
    pub fn event(event_type: &str, payload: &str) -> Vec<u8> {
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ));
        encode(&message)
    }

    /// One `exception` frame.
    pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
        let payload = serde_json::json!({ "message": message }).to_string();
        let message = Message::new(payload.into_bytes())
            .add_header(Header::new(
                ":exception-type",
                HeaderValue::String(exception_type.to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("exception".into()),
            ));
        encode(&message)
    }

    fn encode(message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail for messages of this size.
        if write_message_to(message, &mut out).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::frames::{event, exception};
    use super::*;
    use crate::stream_driver::collect_pieces;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    fn recorded() -> Vec<u8> {
        [
            event("messageStart", r#"{"role":"assistant"}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me"}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":" check."}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_9","name":"get_weather"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("messageStop", r#"{"stopReason":"tool_use"}"#),
            event("metadata", r#"{"usage":{"inputTokens":30,"outputTokens":12,"totalTokens":52,"cacheReadInputTokens":10},"metrics":{"latencyMs":300}}"#),
        ]
        .concat()
    }

    fn run(pieces: &[&[u8]]) -> Result<Vec<Value>, ProviderError> {
        let mut source =
            ConverseStream::new(StreamTranslator::new("Bedrock", "m", "chatcmpl-b", true, 9));
        collect_pieces(&mut source, pieces).map(|chunks| {
            chunks
                .iter()
                .map(|chunk| serde_json::from_slice(chunk.as_bytes()).unwrap())
                .collect()
        })
    }

    #[test]
    fn recorded_stream_with_tool_call_and_cached_usage() {
        let bytes = recorded();
        let chunks = run(&[&bytes]).unwrap();
        let head = |choices: Value| {
            json!({"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 9,
                   "model": "m", "choices": choices})
        };
        let delta = |delta: Value, finish: Value| {
            head(json!([{"index": 0, "delta": delta, "finish_reason": finish}]))
        };
        let mut usage_chunk = head(json!([]));
        usage_chunk["usage"] = json!({"prompt_tokens": 40, "completion_tokens": 12,
            "total_tokens": 52, "prompt_tokens_details": {"cached_tokens": 10},
            "cache_read_input_tokens": 10});
        assert_eq!(
            chunks,
            vec![
                delta(json!({"role": "assistant", "content": ""}), Value::Null),
                delta(json!({"content": "Let me"}), Value::Null),
                delta(json!({"content": " check."}), Value::Null),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "tooluse_9", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}),
                    Value::Null
                ),
                delta(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                    Value::Null
                ),
                delta(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                    Value::Null
                ),
                delta(json!({}), json!("tool_calls")),
                usage_chunk,
            ]
        );
    }

    #[test]
    fn every_split_yields_the_same_chunks_and_every_cut_an_error() {
        let bytes = recorded();
        let whole = run(&[&bytes]).unwrap();
        for at in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..at], &bytes[at..]]).unwrap(),
                whole,
                "split at {at}"
            );
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&single).unwrap(), whole);
        for at in 0..bytes.len() {
            // Any cut loses messageStop or metadata, or leaves a partial frame.
            let result = run(&[&bytes[..at]]);
            assert!(
                result.is_err(),
                "cut at {at} of {}: {result:?}",
                bytes.len()
            );
        }
    }

    #[test]
    fn corrupt_frames_and_exceptions_are_errors() {
        let mut bytes = recorded();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        assert!(run(&[&bytes]).is_err(), "a flipped byte fails a CRC");
        assert!(run(&[&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]]).is_err());
        let mut stream = event("messageStart", r#"{"role":"assistant"}"#);
        stream.extend(exception(
            "throttlingException",
            "Too many tokens, please wait.",
        ));
        let error = run(&[&stream]).unwrap_err();
        assert_eq!(error.status(), 429);
        let stream = event("contentBlockDelta", "not json");
        assert!(run(&[&stream]).is_err());
    }
}
