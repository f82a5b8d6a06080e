//! Anthropic stream events → OpenAI `chat.completion.chunk`s: a small state machine fed one
//! decoded SSE `data:` payload at a time.
//!
//! Besides text and tool calls, extended thinking is relayed as LiteLLM relays it: each
//! `thinking_delta` as `reasoning_content` plus a one-entry `thinking_blocks` (signature
//! `null`), each `signature_delta` as a `thinking_blocks` entry carrying the signature, and a
//! `redacted_thinking` block whole. A client that concatenates them can send the thinking back
//! on its next turn, which Anthropic requires after a tool call.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_llm_types::{ChunkJson, Usage};

use super::error::event_error;
use super::response::{finish_reason, usage};
use crate::borrowed::Str;
use crate::chunk_writer::{ChunkHead, ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::sse::{SseDecoder, SseEvent};
use crate::stream_driver::ChunkSource;
use crate::ProviderError;

/// One stream event, parsed straight from its payload: strings are borrowed unless they hold
/// escapes, and only the fields of the frequent events are read.
#[derive(Debug, Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    /// `content_block_start`
    #[serde(default, borrow)]
    content_block: Option<BlockStart<'a>>,
    /// `content_block_delta` (`message_delta`'s delta is read from the value instead).
    #[serde(default, borrow)]
    delta: Option<BlockDelta<'a>>,
}

#[derive(Debug, Deserialize)]
struct BlockStart<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Str<'a>>,
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(default, borrow)]
    name: Option<Str<'a>>,
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    /// `redacted_thinking`: the encrypted thinking.
    #[serde(default, borrow)]
    data: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Str<'a>>,
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default, borrow)]
    partial_json: Option<Str<'a>>,
    #[serde(default, borrow)]
    thinking: Option<Str<'a>>,
    #[serde(default, borrow)]
    signature: Option<Str<'a>>,
}

/// A chunk delta for extended thinking: `reasoning_content` (absent for a redacted block) and
/// the one thinking block this event adds to.
#[derive(Debug, Serialize)]
struct ThinkingDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    thinking_blocks: [ThinkingBlock<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ThinkingBlock<'a> {
    Thinking {
        thinking: &'a str,
        signature: Option<&'a str>,
    },
    RedactedThinking {
        data: &'a str,
    },
}

/// A `tool_use` content block being streamed.
#[derive(Debug, Clone, Copy)]
struct ToolBlock {
    /// Its index among the OpenAI tool calls.
    index: u32,
    /// Whether any argument text was relayed (a call without arguments gets `{}` at its end).
    has_arguments: bool,
}

/// Translation state for one stream.
#[derive(Debug)]
pub struct StreamTranslator {
    provider: &'static str,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// Anthropic content-block index → the tool call it streams.
    tool_blocks: HashMap<u64, ToolBlock>,
    tool_count: u32,
    /// `usage` from message_start, updated by message_delta.
    usage: Map<String, Value>,
    finished: bool,
    writer: ChunkWriter,
}

impl StreamTranslator {
    pub fn new(provider: &'static str, model: &str, include_usage: bool, created: u64) -> Self {
        Self {
            provider,
            include_usage,
            id: String::new(),
            model: model.to_owned(),
            created,
            tool_blocks: HashMap::new(),
            tool_count: 0,
            usage: Map::new(),
            finished: false,
            writer: ChunkWriter::new(provider),
        }
    }

    /// Whether `message_stop` arrived: the stream ended normally.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Translates one event's JSON payload into zero or more chunks.
    pub fn on_event(&mut self, payload: &[u8]) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut out = VecDeque::new();
        self.on_event_into(payload, &mut out)?;
        Ok(out.into())
    }

    /// [`StreamTranslator::on_event`] appending to `out`. The frequent events (content
    /// blocks and their deltas) are parsed into borrowed structs and written straight into
    /// the reused output buffer; the once-per-stream ones (`message_start`,
    /// `message_delta`, `error`) are read as JSON values.
    pub fn on_event_into(
        &mut self,
        payload: &[u8],
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        let event: Event<'_> =
            serde_json::from_slice(payload).map_err(|error| self.undecodable(error))?;
        let index = event.index.unwrap_or(0);
        match event.kind.as_ref() {
            "content_block_start" => {
                if let Some(block) = &event.content_block {
                    self.on_block_start(index, block, out)?;
                }
            }
            "content_block_delta" => {
                if let Some(delta) = &event.delta {
                    self.on_block_delta(index, delta, out)?;
                }
            }
            "content_block_stop" => {
                let empty_call = self
                    .tool_blocks
                    .get(&index)
                    .filter(|block| !block.has_arguments);
                if let Some(&ToolBlock { index, .. }) = empty_call {
                    // As OpenAI sends it: a call without parameters has arguments `{}`.
                    out.push_back(self.write(&arguments_delta(index, "{}"))?);
                }
            }
            "message_start" | "message_delta" | "message_stop" | "error" => {
                let event: Value =
                    serde_json::from_slice(payload).map_err(|error| self.undecodable(error))?;
                self.on_envelope_event(&event, out)?;
            }
            // ping and event types added later carry nothing to relay.
            _ => {}
        }
        Ok(())
    }

    fn on_block_start(
        &mut self,
        index: u64,
        block: &BlockStart<'_>,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        match block.kind.as_deref() {
            Some("tool_use") => {
                let tool_index = self.tool_count;
                self.tool_count += 1;
                self.tool_blocks.insert(
                    index,
                    ToolBlock {
                        index: tool_index,
                        has_arguments: false,
                    },
                );
                let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                    index: tool_index,
                    id: block.id.as_deref(),
                    kind: Some("function"),
                    function: Some(FunctionDeltaOut {
                        name: block.name.as_deref(),
                        arguments: Some(""),
                    }),
                });
                out.push_back(self.write(&delta)?);
            }
            Some("text") => {
                if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                    out.push_back(self.write(&DeltaOut::content(text))?);
                }
            }
            Some("redacted_thinking") => {
                let delta = ThinkingDelta {
                    reasoning_content: None,
                    thinking_blocks: [ThinkingBlock::RedactedThinking {
                        data: block.data.as_deref().unwrap_or_default(),
                    }],
                };
                out.push_back(self.write(&delta)?);
            }
            // A thinking block starts empty; its text and signature arrive as deltas.
            _ => {}
        }
        Ok(())
    }

    fn on_block_delta(
        &mut self,
        index: u64,
        delta: &BlockDelta<'_>,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        match delta.kind.as_deref() {
            Some("text_delta") => {
                let text = delta.text.as_deref().unwrap_or_default();
                out.push_back(self.write(&DeltaOut::content(text))?);
            }
            Some("input_json_delta") => {
                let piece = delta.partial_json.as_deref().unwrap_or_default();
                if let (Some(block), false) = (self.tool_blocks.get_mut(&index), piece.is_empty()) {
                    block.has_arguments = true;
                    let tool_index = block.index;
                    out.push_back(self.write(&arguments_delta(tool_index, piece))?);
                }
            }
            Some("thinking_delta") => {
                let thinking = delta.thinking.as_deref().unwrap_or_default();
                let delta = ThinkingDelta {
                    reasoning_content: Some(thinking),
                    thinking_blocks: [ThinkingBlock::Thinking {
                        thinking,
                        signature: None,
                    }],
                };
                out.push_back(self.write(&delta)?);
            }
            Some("signature_delta") => {
                let delta = ThinkingDelta {
                    reasoning_content: Some(""),
                    thinking_blocks: [ThinkingBlock::Thinking {
                        thinking: "",
                        signature: delta.signature.as_deref(),
                    }],
                };
                out.push_back(self.write(&delta)?);
            }
            _ => {} // citations_delta and newer kinds: nothing in OpenAI's shape.
        }
        Ok(())
    }

    fn undecodable(&self, error: serde_json::Error) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message: format!("undecodable stream event: {error}"),
        }
    }

    /// The events that open, close or abort the message, once per stream each.
    fn on_envelope_event(
        &mut self,
        event: &Value,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "message_start" => {
                let message = &event["message"];
                if let Some(id) = message["id"].as_str() {
                    self.id = id.to_owned();
                }
                if let Some(model) = message["model"].as_str() {
                    self.model = model.to_owned();
                }
                if let Some(Value::Object(usage)) = message.get("usage") {
                    self.usage = usage.clone();
                }
                out.push_back(self.write(&DeltaOut::start())?);
            }
            "message_delta" => {
                if let Some(Value::Object(update)) = event.get("usage") {
                    for (key, value) in update {
                        if !value.is_null() {
                            self.usage.insert(key.clone(), value.clone());
                        }
                    }
                }
                let delta = &event["delta"];
                if let Some(reason) = delta["stop_reason"].as_str() {
                    let matched_stop = (reason == "stop_sequence")
                        .then(|| delta["stop_sequence"].as_str())
                        .flatten();
                    let head = ChunkHead {
                        id: &self.id,
                        created: self.created,
                        model: &self.model,
                    };
                    out.push_back(self.writer.write_finish(
                        head,
                        0,
                        finish_reason(reason),
                        matched_stop,
                    )?);
                }
            }
            "message_stop" => {
                self.finished = true;
                if self.include_usage {
                    let head = ChunkHead {
                        id: &self.id,
                        created: self.created,
                        model: &self.model,
                    };
                    out.push_back(self.writer.usage_chunk(head, self.usage())?);
                }
            }
            "error" => {
                self.finished = true;
                return Err(event_error(self.provider, event));
            }
            _ => {}
        }
        Ok(())
    }

    fn write<D: Serialize + ?Sized>(&mut self, delta: &D) -> Result<ChunkJson, ProviderError> {
        // Field by field: the head borrows `id` and `model` while `writer` is borrowed mutably.
        let head = ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        };
        self.writer.write_delta(head, 0, delta, None)
    }

    /// Usage so far (complete after message_delta).
    pub fn usage(&self) -> Usage {
        usage(&Value::Object(self.usage.clone()))
    }
}

/// A piece of a tool call's arguments.
fn arguments_delta(index: u32, arguments: &str) -> DeltaOut<'_> {
    DeltaOut::tool_call(ToolCallDeltaOut {
        index,
        function: Some(FunctionDeltaOut {
            name: None,
            arguments: Some(arguments),
        }),
        ..ToolCallDeltaOut::default()
    })
}

/// SSE decoding plus translation, for [`crate::stream_driver::drive`]. The `event:` lines are
/// not read: every payload names its own `type`.
#[derive(Debug)]
pub struct MessagesStream {
    decoder: SseDecoder,
    translator: StreamTranslator,
}

impl MessagesStream {
    pub fn new(translator: StreamTranslator) -> Self {
        Self {
            decoder: SseDecoder::new(),
            translator,
        }
    }

    fn truncated(&self) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.translator.provider,
            message: "the upstream ended the stream before message_stop".to_owned(),
        }
    }
}

impl ChunkSource for MessagesStream {
    fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    fn next_chunks(&mut self) -> Result<Option<Vec<ChunkJson>>, ProviderError> {
        let mut out = VecDeque::new();
        Ok(self.next_chunks_into(&mut out)?.then(|| out.into()))
    }

    fn next_chunks_into(&mut self, out: &mut VecDeque<ChunkJson>) -> Result<bool, ProviderError> {
        loop {
            match self.decoder.next_event() {
                None => return Ok(false),
                Some(SseEvent::Done) => continue,
                Some(SseEvent::Data(payload)) => {
                    self.translator.on_event_into(&payload, out)?;
                    return Ok(true);
                }
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut chunks = VecDeque::new();
        if let Some(SseEvent::Data(payload)) = self.decoder.finish() {
            self.translator.on_event_into(&payload, &mut chunks)?;
        }
        if !self.translator.is_finished() {
            return Err(self.truncated());
        }
        Ok(chunks.into())
    }

    fn is_finished(&self) -> bool {
        self.translator.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    /// A recorded stream: text, then a tool call whose arguments arrive in pieces.
    const EVENTS: &[&str] = &[
        r#"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2,"cache_read_input_tokens":100,"cache_creation_input_tokens":0},"content":[],"stop_reason":null}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", checking."}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
        r#"{"type":"message_stop"}"#,
    ];

    fn run(include_usage: bool) -> Vec<Value> {
        let mut translator = StreamTranslator::new("Anthropic", "requested", include_usage, 7);
        let mut chunks = Vec::new();
        for event in EVENTS {
            for chunk in translator.on_event(event.as_bytes()).unwrap() {
                chunks.push(serde_json::from_slice::<Value>(chunk.as_bytes()).unwrap());
            }
        }
        assert!(translator.is_finished());
        chunks
    }

    #[test]
    fn recorded_stream_with_tool_call_becomes_openai_chunks() {
        let chunks = run(true);
        let head = |choices: Value| {
            json!({"id": "msg_014p7gG3wDgGV9EUtLvnow3U", "object": "chat.completion.chunk",
                   "created": 7, "model": "claude-3-5-sonnet-20241022", "choices": choices})
        };
        let delta = |delta: Value, finish: Value| {
            head(json!([{"index": 0, "delta": delta, "finish_reason": finish}]))
        };
        let mut usage_chunk = head(json!([]));
        usage_chunk["usage"] = json!({
            "prompt_tokens": 572, "completion_tokens": 89, "total_tokens": 661,
            "prompt_tokens_details": {"cached_tokens": 100},
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100
        });
        let expected = vec![
            delta(json!({"role": "assistant", "content": ""}), Value::Null),
            delta(json!({"content": "Okay"}), Value::Null),
            delta(json!({"content": ", checking."}), Value::Null),
            delta(
                json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                                      "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null,
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}),
                Value::Null,
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"San Francisco, CA\"}"}}]}),
                Value::Null,
            ),
            delta(json!({}), json!("tool_calls")),
            usage_chunk,
        ];
        assert_eq!(chunks, expected);
    }

    #[test]
    fn usage_chunk_only_when_asked() {
        let chunks = run(false);
        assert_eq!(chunks.len(), 7);
        assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    }

    #[test]
    fn second_tool_block_gets_the_next_index_and_thinking_keeps_its_signature() {
        let mut translator = StreamTranslator::new("Anthropic", "m", false, 0);
        let events = [
            r#"{"type":"message_start","message":{"id":"msg","model":"m","usage":{"input_tokens":1,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"a","name":"f","input":{}}}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"b","name":"g","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_stop","index":2}"#,
        ];
        let deltas: Vec<Value> = events
            .iter()
            .flat_map(|event| translator.on_event(event.as_bytes()).unwrap())
            .map(|chunk| serde_json::from_slice::<Value>(chunk.as_bytes()).unwrap())
            .map(|chunk| chunk["choices"][0]["delta"].clone())
            .collect();
        assert_eq!(
            deltas[1..],
            [
                json!({"reasoning_content": "Hmm",
                       "thinking_blocks": [{"type": "thinking", "thinking": "Hmm", "signature": null}]}),
                json!({"reasoning_content": "",
                       "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "x"}]}),
                json!({"tool_calls": [{"index": 0, "id": "a", "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 1, "id": "b", "type": "function",
                                       "function": {"name": "g", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
                // The first call got no arguments: `{}` when its block ends; the second did.
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            ]
        );
        assert!(!translator.is_finished());
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let mut translator = StreamTranslator::new("Anthropic", "m", false, 0);
        let chunks = translator
            .on_event(
                br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_\u0064elta","text":"a \"b\"\n\u00e9"}}"#,
            )
            .unwrap();
        let chunk: Value = serde_json::from_slice(chunks[0].as_bytes()).unwrap();
        assert_eq!(
            chunk["choices"][0]["delta"],
            json!({"content": "a \"b\"\né"})
        );
    }

    #[test]
    fn error_event_becomes_a_classified_error() {
        let mut translator = StreamTranslator::new("Anthropic", "m", false, 0);
        let error = translator
            .on_event(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap_err();
        assert_eq!(error.status(), 503);
        assert_eq!(
            error.to_string(),
            "litellm.ServiceUnavailableError: AnthropicException - Overloaded"
        );
        assert!(translator.on_event(b"not json").is_err());
    }
}
