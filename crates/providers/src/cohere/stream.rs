//! Cohere v2 chat stream (`"stream": true`) → OpenAI `chat.completion.chunk`s.
//!
//! Each SSE event's JSON names its `type`: `message-start` (the id; the role chunk goes out),
//! `content-start` / `content-delta` (text, or `thinking` → `reasoning_content`),
//! `tool-plan-delta` (the plan text, streamed as content), `tool-call-start` (id, name and
//! the first argument text), `tool-call-delta` (more argument text), and `message-end` with
//! the `finish_reason` and usage. `content-end`, `tool-call-end`, `citation-*` and `debug`
//! carry nothing OpenAI streams have. The stream is complete only after `message-end`.

use std::borrow::Cow;
use std::collections::VecDeque;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_llm_types::{ChunkJson, Usage};

use super::response::{finish_reason, tool_call_id, CohereUsage};
use crate::chunk_writer::{ChunkHead, ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::sse::{SseDecoder, SseEvent};
use crate::stream_driver::ChunkSource;
use crate::ProviderError;

/// One event's JSON, parsed straight from the SSE payload: strings are borrowed unless they
/// hold escapes, fields this adapter does not read are skipped, and the fields whose shape
/// depends on the event type (`content`, `tool_calls`) stay raw until the type is known.
#[derive(Debug, Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    /// `message-start`
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<EventDelta<'a>>,
    /// An error reported inside the stream: `{"message": ...}` with no `type`.
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct EventDelta<'a> {
    #[serde(default, borrow)]
    message: Option<DeltaMessage<'a>>,
    /// `message-end`
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    /// `message-end`
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Debug, Deserialize)]
struct DeltaMessage<'a> {
    /// One part in `content-start` / `content-delta`; an empty list in `message-start`.
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_plan: Option<Cow<'a, str>>,
    /// One call in `tool-call-start` / `tool-call-delta`; an empty list in `message-start`.
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

/// A content part: `{"type": "text", "text": ...}` or `{"type": "thinking", "thinking": ...}`.
#[derive(Debug, Default, Deserialize)]
struct ContentPart<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
}

/// A plain-text `content`.
#[derive(Deserialize)]
struct PlainText<'a>(#[serde(borrow)] Cow<'a, str>);

/// One tool call of a tool-call event (the delta events carry only argument text).
#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// A content event's `content`: one part, as Cohere streams it; a list of parts or a plain
/// string (as a whole response's `content` may be) is read too.
fn content_part(raw: &RawValue) -> Result<ContentPart<'_>, serde_json::Error> {
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'{') => serde_json::from_str(json),
        Some(b'[') => {
            let parts: Vec<ContentPart<'_>> = serde_json::from_str(json)?;
            let (mut text, mut thinking) = (String::new(), String::new());
            for part in &parts {
                text.push_str(part.text.as_deref().unwrap_or_default());
                thinking.push_str(part.thinking.as_deref().unwrap_or_default());
            }
            Ok(ContentPart {
                text: Some(Cow::Owned(text)),
                thinking: Some(Cow::Owned(thinking)),
            })
        }
        Some(b'"') => Ok(ContentPart {
            text: Some(serde_json::from_str::<PlainText<'_>>(json)?.0),
            thinking: None,
        }),
        // `null` or another value: no text.
        _ => Ok(ContentPart::default()),
    }
}

/// Translation state for one stream.
#[derive(Debug)]
pub struct StreamTranslator {
    provider: &'static str,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    started: bool,
    finished: bool,
    /// Tool calls started so far; the last one receives argument deltas.
    tool_count: u32,
    usage: Option<Usage>,
    writer: ChunkWriter,
}

impl StreamTranslator {
    /// `fallback_id` names the chunks when `message-start` gives no id.
    pub fn new(
        provider: &'static str,
        model: &str,
        fallback_id: &str,
        include_usage: bool,
        created: u64,
    ) -> Self {
        Self {
            provider,
            include_usage,
            id: fallback_id.to_owned(),
            model: model.to_owned(),
            created,
            started: false,
            finished: false,
            tool_count: 0,
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

    fn undecodable(&self, error: serde_json::Error) -> ProviderError {
        self.invalid(format!("undecodable stream event: {error}"))
    }

    /// Reads a field left raw by [`StreamEvent`] once the event type says its shape.
    fn parse<'a, T: Deserialize<'a>>(&self, raw: &'a RawValue) -> Result<T, ProviderError> {
        serde_json::from_str(raw.get()).map_err(|error| self.undecodable(error))
    }

    /// Translates one event payload, appending its chunks (zero or more) to `out`.
    pub fn on_event(
        &mut self,
        payload: &[u8],
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        let event: StreamEvent<'_> =
            serde_json::from_slice(payload).map_err(|error| self.undecodable(error))?;
        let Some(kind) = event.kind else {
            if let Some(message) = event.message {
                return Err(ProviderError::from_upstream(
                    self.provider,
                    500,
                    message.into_owned(),
                    None,
                    None,
                    None,
                    None,
                ));
            }
            return Err(self.invalid("a stream event has no `type`".to_owned()));
        };
        if !self.started {
            self.started = true;
            if let Some(id) = event.id {
                self.id = id.into_owned();
            }
            out.push_back(self.write(&DeltaOut::start(), None)?);
        }
        let delta = event.delta.unwrap_or_default();
        let message = delta.message.as_ref();
        match kind.as_ref() {
            "content-start" | "content-delta" => {
                let part = match message.and_then(|m| m.content) {
                    Some(raw) => content_part(raw).map_err(|error| self.undecodable(error))?,
                    None => ContentPart::default(),
                };
                if let Some(thinking) = part.thinking.as_deref().filter(|t| !t.is_empty()) {
                    out.push_back(self.write(&DeltaOut::reasoning(thinking), None)?);
                }
                if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    out.push_back(self.write(&DeltaOut::content(text), None)?);
                }
            }
            "tool-plan-delta" => {
                if let Some(plan) = message
                    .and_then(|m| m.tool_plan.as_deref())
                    .filter(|plan| !plan.is_empty())
                {
                    out.push_back(self.write(&DeltaOut::content(plan), None)?);
                }
            }
            "tool-call-start" => {
                let raw = message.and_then(|m| m.tool_calls).ok_or_else(|| {
                    self.invalid("tool-call-start without delta.message.tool_calls".to_owned())
                })?;
                let call: ToolCallDelta<'_> = self.parse(raw)?;
                let position = self.tool_count;
                self.tool_count += 1;
                let id = tool_call_id(call.id.as_deref(), &self.id, position as usize);
                let function = call.function.unwrap_or_default();
                let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                    index: position,
                    id: Some(&id),
                    kind: Some("function"),
                    function: Some(FunctionDeltaOut {
                        name: Some(function.name.as_deref().unwrap_or_default()),
                        arguments: Some(function.arguments.as_deref().unwrap_or_default()),
                    }),
                });
                out.push_back(self.write(&delta, None)?);
            }
            "tool-call-delta" => {
                if self.tool_count == 0 {
                    return Err(self.invalid("tool-call-delta before tool-call-start".to_owned()));
                }
                let call: ToolCallDelta<'_> = match message.and_then(|m| m.tool_calls) {
                    Some(raw) => self.parse(raw)?,
                    None => ToolCallDelta::default(),
                };
                if let Some(arguments) = call
                    .function
                    .as_ref()
                    .and_then(|function| function.arguments.as_deref())
                    .filter(|arguments| !arguments.is_empty())
                {
                    let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                        index: self.tool_count - 1,
                        function: Some(FunctionDeltaOut {
                            name: None,
                            arguments: Some(arguments),
                        }),
                        ..ToolCallDeltaOut::default()
                    });
                    out.push_back(self.write(&delta, None)?);
                }
            }
            "message-end" => {
                self.finished = true;
                self.usage = Some(delta.usage.unwrap_or_default().to_usage());
                let reason = delta.finish_reason.as_deref().unwrap_or("COMPLETE");
                let finish = finish_reason(reason, self.tool_count > 0);
                out.push_back(self.write(&DeltaOut::default(), Some(finish))?);
            }
            // message-start (handled above), content-end, tool-call-end, citation-start,
            // citation-end, debug: nothing to relay.
            _ => {}
        }
        Ok(())
    }

    /// At the end of the stream: the usage chunk when the client asked for one.
    pub fn on_end(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.finished {
            return Err(self.invalid("the upstream ended the stream before message-end".to_owned()));
        }
        if !self.include_usage {
            return Ok(Vec::new());
        }
        let usage = self.usage.take().unwrap_or_default();
        let (writer, head) = self.writer_and_head();
        Ok(vec![writer.usage_chunk(head, usage)?])
    }

    /// Whether `message-end` arrived.
    pub fn saw_end(&self) -> bool {
        self.finished
    }

    /// The writer and what every chunk repeats, borrowed apart.
    fn writer_and_head(&mut self) -> (&mut ChunkWriter, ChunkHead<'_>) {
        let head = ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        };
        (&mut self.writer, head)
    }

    fn write(
        &mut self,
        delta: &DeltaOut<'_>,
        finish: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        let (writer, head) = self.writer_and_head();
        writer.write(head, 0, delta, finish)
    }
}

/// SSE decoding plus translation, for [`crate::stream_driver::drive`].
#[derive(Debug)]
pub struct CohereStream {
    decoder: SseDecoder,
    translator: StreamTranslator,
}

impl CohereStream {
    pub fn new(translator: StreamTranslator) -> Self {
        Self {
            decoder: SseDecoder::new(),
            translator,
        }
    }
}

impl ChunkSource for CohereStream {
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
                    self.translator.on_event(&payload, out)?;
                    return Ok(true);
                }
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut chunks = VecDeque::new();
        if let Some(SseEvent::Data(payload)) = self.decoder.finish() {
            self.translator.on_event(&payload, &mut chunks)?;
        }
        chunks.extend(self.translator.on_end()?);
        Ok(chunks.into())
    }

    fn is_finished(&self) -> bool {
        // Cohere keeps the connection until it closes it; `message-end` is the last event,
        // but the usage chunk is produced by `finish`, so the body's end is awaited.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_driver::collect_pieces;
    use serde_json::{json, Value};
    use switchyard_llm_types::ErrorClass;

    fn run(events: &[&str], include_usage: bool) -> Result<Vec<Value>, ProviderError> {
        let text: String = events
            .iter()
            .map(|event| format!("data: {event}\n\n"))
            .collect();
        let mut source =
            CohereStream::new(StreamTranslator::new("Cohere", "m", "f", include_usage, 5));
        let chunks = collect_pieces(&mut source, &[text.as_bytes()])?;
        Ok(chunks
            .iter()
            .map(|chunk| serde_json::from_slice(chunk.as_bytes()).unwrap())
            .collect())
    }

    const END: &str = r#"{"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"billed_units": {"input_tokens": 3.5, "output_tokens": 2}, "tokens": {"input_tokens": 40, "output_tokens": 2}}}}"#;

    #[test]
    fn thinking_lists_and_plain_content_are_read() {
        let chunks = run(
            &[
                r#"{"type": "content-start", "delta": {"message": {"content": {"type": "thinking", "thinking": "Hmm"}}}}"#,
                r#"{"type": "content-delta", "delta": {"message": {"content": [{"text": "a"}, {"text": "b"}]}}}"#,
                r#"{"type": "content-delta", "delta": {"message": {"content": "c\"d"}}}"#,
                r#"{"type": "content-delta", "delta": {"message": {"content": null}}}"#,
                END,
            ],
            true,
        )
        .unwrap();
        let deltas: Vec<&Value> = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"].get(0).map(|choice| &choice["delta"]))
            .collect();
        assert_eq!(
            deltas,
            [
                &json!({"role": "assistant", "content": ""}),
                &json!({"reasoning_content": "Hmm"}),
                &json!({"content": "ab"}),
                &json!({"content": "c\"d"}),
                &json!({}),
            ]
        );
        // The billed input count is not a whole number, so the raw count is used for it.
        assert_eq!(
            chunks.last().unwrap()["usage"],
            json!({"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42})
        );
    }

    #[test]
    fn tool_calls_without_ids_are_named_after_the_stream() {
        let chunks = run(
            &[
                r#"{"id": "r1", "type": "message-start", "delta": {"message": {"content": [], "tool_calls": []}}}"#,
                r#"{"type": "tool-call-start", "delta": {"message": {"tool_calls": {"type": "function", "function": {"name": "f"}}}}}"#,
                r#"{"type": "tool-call-delta", "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}}}"#,
                END,
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            chunks[1]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "call_r1_0", "type": "function",
                   "function": {"name": "f", "arguments": ""}})
        );
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "function": {"arguments": "{}"}})
        );
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.len(), 4);
    }

    #[test]
    fn an_error_inside_the_stream_is_an_upstream_error() {
        let error = run(&[r#"{"message": "internal server error"}"#], false).unwrap_err();
        assert_eq!(error.status(), 500);
        assert!(
            error.to_string().contains("internal server error"),
            "{error}"
        );
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for payload in [
            &b"data: {not json\n\n"[..],
            b"data: [1,2]\n\n",
            b"data: {\"type\":\"tool-call-delta\",\"delta\":{}}\n\n",
            b"data: {\"type\":\"tool-call-start\",\"delta\":{}}\n\n",
            b"data: {\"type\":\"message-start\",\"id\":\"x\"}\n\n",
        ] {
            let mut source = CohereStream::new(StreamTranslator::new("Cohere", "m", "f", false, 0));
            assert!(collect_pieces(&mut source, &[payload]).is_err());
        }
    }
}
