//! ConverseStream (AWS event-stream framing) → OpenAI `chat.completion.chunk`s.
//!
//! Frames are decoded by the official `aws-smithy-eventstream` decoder (length prelude,
//! headers, payload, CRCs). Each `event` message names its type in `:event-type`
//! (`messageStart`, `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`,
//! `messageStop`, `metadata`) and carries JSON; `exception` messages carry an error. The
//! usage chunk is sent at the end, because `metadata` (with usage) follows `messageStop`.

use std::collections::HashMap;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::BytesMut;
use serde_json::{Map, Value};
use switchyard_llm_types::chat::{FunctionCallDelta, ToolCallDelta};
use switchyard_llm_types::{ChatCompletionChunk, ChunkChoice, ChunkJson, Delta, Role};

use super::error::classify;
use super::response::{finish_reason, usage};
use crate::stream_driver::ChunkSource;
use crate::ProviderError;

/// Translation state for one stream.
#[derive(Debug)]
pub struct StreamTranslator {
    provider: &'static str,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// Converse content-block index → OpenAI tool-call index.
    tool_indexes: HashMap<u64, u32>,
    tool_count: u32,
    stopped: bool,
    usage: Option<Value>,
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
            tool_indexes: HashMap::new(),
            tool_count: 0,
            stopped: false,
            usage: None,
        }
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message,
        }
    }

    /// Translates one decoded message.
    pub fn on_message(&mut self, message: &Message) -> Result<Vec<ChunkJson>, ProviderError> {
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|header| header.name().as_str() == name)
                .and_then(|header| match header.value() {
                    HeaderValue::String(value) => Some(value.as_str().to_owned()),
                    _ => None,
                })
        };
        let message_type = header(":message-type").unwrap_or_default();
        let payload: Value = if message.payload().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(message.payload())
                .map_err(|error| self.invalid(format!("undecodable stream event: {error}")))?
        };
        match message_type.as_str() {
            "event" => {}
            "exception" | "error" => {
                let name = header(":exception-type")
                    .or_else(|| header(":error-code"))
                    .unwrap_or_default();
                let text = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| header(":error-message"))
                    .unwrap_or_else(|| payload.to_string());
                return Err(classify(self.provider, &name, None, text));
            }
            other => {
                return Err(self.invalid(format!("unexpected event-stream message type {other:?}")))
            }
        }
        let event_type = header(":event-type").unwrap_or_default();
        self.on_event(&event_type, &payload)
    }

    /// Translates one event by type and JSON payload.
    pub fn on_event(
        &mut self,
        event_type: &str,
        payload: &Value,
    ) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut out = Vec::new();
        match event_type {
            "messageStart" => {
                out.push(self.chunk(
                    Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                )?);
            }
            "contentBlockStart" => {
                let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
                if let Some(tool_use) = payload.pointer("/start/toolUse") {
                    let position = self.tool_count;
                    self.tool_count += 1;
                    self.tool_indexes.insert(index, position);
                    out.push(self.tool_chunk(ToolCallDelta {
                        index: position,
                        id: tool_use["toolUseId"].as_str().map(str::to_owned),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCallDelta {
                            name: tool_use["name"].as_str().map(str::to_owned),
                            arguments: Some(String::new()),
                        }),
                    })?);
                }
            }
            "contentBlockDelta" => {
                let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
                let delta = &payload["delta"];
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    out.push(self.chunk(
                        Delta {
                            content: Some(text.to_owned()),
                            ..Delta::default()
                        },
                        None,
                    )?);
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    let position = self.tool_indexes.get(&index).copied().ok_or_else(|| {
                        self.invalid(format!(
                            "tool input for content block {index}, which started no tool use"
                        ))
                    })?;
                    if !input.is_empty() {
                        out.push(self.tool_chunk(ToolCallDelta {
                            index: position,
                            id: None,
                            kind: None,
                            function: Some(FunctionCallDelta {
                                name: None,
                                arguments: Some(input.to_owned()),
                            }),
                        })?);
                    }
                } else if let Some(text) = delta
                    .pointer("/reasoningContent/text")
                    .and_then(Value::as_str)
                {
                    let mut reasoning = Delta::default();
                    reasoning
                        .extra
                        .insert("reasoning_content".into(), Value::String(text.to_owned()));
                    out.push(self.chunk(reasoning, None)?);
                }
            }
            "messageStop" => {
                self.stopped = true;
                let reason = payload["stopReason"].as_str().unwrap_or("end_turn");
                out.push(self.chunk(Delta::default(), Some(finish_reason(reason)))?);
            }
            "metadata" => {
                if let Some(usage) = payload.get("usage") {
                    self.usage = Some(usage.clone());
                }
            }
            // contentBlockStop and event types added later carry nothing to relay.
            _ => {}
        }
        Ok(out)
    }

    /// At the end of the stream: the usage chunk when asked for, or an error if the stream
    /// stopped before `messageStop` and `metadata`.
    pub fn on_end(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.stopped {
            return Err(self.invalid("the upstream ended the stream before messageStop".to_owned()));
        }
        // `metadata` always closes a ConverseStream; without it the usage (and the bill)
        // would be unknown.
        if self.usage.is_none() {
            return Err(self
                .invalid("the upstream ended the stream before its metadata (usage)".to_owned()));
        }
        if !self.include_usage {
            return Ok(Vec::new());
        }
        let mut chunk = self.empty_chunk();
        chunk.usage = Some(usage(self.usage.as_ref().unwrap_or(&Value::Null)));
        Ok(vec![self.encode(&chunk)?])
    }

    fn empty_chunk(&self) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<&str>) -> Result<ChunkJson, ProviderError> {
        let mut chunk = self.empty_chunk();
        chunk.choices.push(ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(str::to_owned),
            logprobs: None,
            extra: Map::new(),
        });
        self.encode(&chunk)
    }

    fn tool_chunk(&self, call: ToolCallDelta) -> Result<ChunkJson, ProviderError> {
        self.chunk(
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    fn encode(&self, chunk: &ChatCompletionChunk) -> Result<ChunkJson, ProviderError> {
        ChunkJson::from_chunk(chunk)
            .map_err(|error| self.invalid(format!("cannot encode a chunk: {error}")))
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
        // Hand the decoder whole frames only, so that bytes left in `buffer` at the end are
        // exactly what a truncated frame left behind.
        let Some(prelude) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        if total > MAX_FRAME_BYTES {
            return Err(ProviderError::InvalidResponse {
                provider: self.translator.provider,
                message: format!("an event-stream frame claims {total} bytes"),
            });
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        match self.decoder.decode_frame(&mut self.buffer) {
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Ok(DecodedFrame::Complete(message)) => self.translator.on_message(&message).map(Some),
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
