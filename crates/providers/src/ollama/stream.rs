//! Ollama's NDJSON stream (`"stream": true` on `/api/chat` or `/api/generate`) → OpenAI
//! `chat.completion.chunk`s.
//!
//! Every line is a JSON object with the next piece of `message.content` (chat) or `response`
//! (generate), possibly `thinking`, and on chat complete `tool_calls` (Ollama sends each call
//! whole, never argument fragments). `thinking` goes out as `delta.reasoning_content`, and so
//! does a `<think>…</think>` block at the start of the text, whose tags may be cut across
//! lines ([`super::think`]). The last line has `done: true` with `done_reason` and the
//! token counts; a stream that ends without it was cut. A line `{"error": ".."}` is a failure
//! after the 200.
//!
//! Lines are parsed into a borrowing struct ([`Line`]) and chunks written by [`ChunkWriter`]
//! into a reused buffer, so a text line allocates nothing of its own beyond its share of the
//! output buffer. A line that does not fit the struct (an error line, a field of an unexpected
//! type) takes the slow path: parsed as a JSON value and read leniently, as before.

use std::borrow::Cow;
use std::collections::VecDeque;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use switchyard_llm_types::{ChunkJson, Usage};

use super::error::{error_message, line_error};
use super::response::{finish_reason, said, tool_call, usage, Said};
use super::think::{Split, ThinkSplitter};
use crate::chunk_writer::{ChunkHead, ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::ndjson::NdjsonDecoder;
use crate::stream_driver::ChunkSource;
use crate::ProviderError;

/// One NDJSON line as the translation reads it; other fields are skipped, not built.
#[derive(Debug, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    message: Option<LineMessage<'a>>,
    #[serde(borrow)]
    response: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    done: Option<bool>,
    #[serde(borrow)]
    done_reason: Option<Cow<'a, str>>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    /// Only whether it is there: an error line is read on the slow path.
    error: Option<IgnoredAny>,
}

/// `message` of a chat line.
#[derive(Debug, Deserialize)]
struct LineMessage<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    tool_calls: Option<Vec<Value>>,
}

impl Line<'_> {
    fn said(&self) -> Said<'_> {
        fn text<'s>(value: &'s Option<Cow<'_, str>>) -> &'s str {
            value.as_deref().unwrap_or_default()
        }
        match &self.message {
            Some(message) => Said {
                text: text(&message.content),
                thinking: text(&message.thinking),
                tool_calls: message.tool_calls.as_deref().unwrap_or_default(),
            },
            None => Said {
                text: text(&self.response),
                thinking: text(&self.thinking),
                tool_calls: &[],
            },
        }
    }
}

/// What one line says, read from either [`Line`] or a JSON value.
struct LineView<'a> {
    said: Said<'a>,
    /// `Some(true)` on the last line.
    done: Option<bool>,
    done_reason: Option<&'a str>,
    usage: Usage,
}

/// Translation state for one stream.
#[derive(Debug)]
pub struct StreamTranslator {
    provider: &'static str,
    include_usage: bool,
    /// Apart from `writer`, so that a chunk's head can borrow it while the writer writes.
    names: ChunkNames,
    started: bool,
    finished: bool,
    tool_count: u32,
    /// Takes a `<think>…</think>` block at the start of the text out of the content.
    think: ThinkSplitter,
    writer: ChunkWriter,
}

impl StreamTranslator {
    /// `id` names the chunks (Ollama gives none).
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
            names: ChunkNames {
                id: id.to_owned(),
                model: model.to_owned(),
                created,
            },
            started: false,
            finished: false,
            tool_count: 0,
            think: ThinkSplitter::new(),
            writer: ChunkWriter::new(provider),
        }
    }

    /// Whether the `done: true` line arrived.
    pub fn saw_done(&self) -> bool {
        self.finished
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message,
        }
    }

    /// Translates one line, appending its chunks (zero or more) to `out`; on an error nothing
    /// of the line is appended.
    pub fn on_line(
        &mut self,
        line: &[u8],
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        // Only an object is a line (serde would also read a struct from an array).
        let is_object = line.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
        let typed = is_object
            .then(|| serde_json::from_slice::<Line<'_>>(line).ok())
            .flatten()
            .filter(|typed| typed.error.is_none());
        let value;
        let view = match &typed {
            Some(typed) => LineView {
                said: typed.said(),
                done: typed.done,
                done_reason: typed.done_reason.as_deref(),
                usage: Usage::new(
                    typed.prompt_eval_count.unwrap_or(0),
                    typed.eval_count.unwrap_or(0),
                ),
            },
            None => {
                value = self.parse_leniently(line)?;
                LineView {
                    said: said(&value),
                    done: value.get("done").and_then(Value::as_bool),
                    done_reason: value.get("done_reason").and_then(Value::as_str),
                    usage: usage(&value),
                }
            }
        };
        let mark = out.len();
        let translated = self.translate(view, out);
        if translated.is_err() {
            out.truncate(mark);
        }
        translated
    }

    /// The slow path: the line as a JSON object that is not an error.
    fn parse_leniently(&self, line: &[u8]) -> Result<Value, ProviderError> {
        let event: Value = serde_json::from_slice(line)
            .map_err(|error| self.invalid(format!("undecodable stream line: {error}")))?;
        if !event.is_object() {
            return Err(self.invalid("a stream line is not a JSON object".to_owned()));
        }
        if let Some(message) = error_message(&event) {
            return Err(line_error(self.provider, message));
        }
        Ok(event)
    }

    fn translate(
        &mut self,
        line: LineView<'_>,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        if self.finished {
            return Err(self.invalid("a stream line arrived after `done: true`".to_owned()));
        }
        let Some(done) = line.done else {
            return Err(self.invalid("a stream line has no boolean `done`".to_owned()));
        };
        if !self.started {
            self.started = true;
            out.push_back(self.write(&DeltaOut::start(), None)?);
        }
        let said = &line.said;
        if !said.thinking.is_empty() {
            out.push_back(self.write(&DeltaOut::reasoning(said.thinking), None)?);
        }
        let split = self.think.push(said.text);
        self.write_split(&split, out)?;
        for call in said.tool_calls {
            let position = self.tool_count;
            self.tool_count += 1;
            let call = tool_call(call, &self.names.id, position as usize)
                .map_err(|message| self.invalid(message))?;
            let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                index: position,
                id: Some(&call.id),
                kind: Some("function"),
                function: Some(FunctionDeltaOut {
                    name: Some(&call.function.name),
                    arguments: Some(&call.function.arguments),
                }),
            });
            out.push_back(self.write(&delta, None)?);
        }
        if done {
            // The `done` line is the end marker (the driver stops reading after it), so
            // the usage chunk goes out with it rather than at the end of the body.
            self.finished = true;
            let held = self.think.finish();
            self.write_split(&held, out)?;
            let finish = finish_reason(line.done_reason, self.tool_count > 0);
            out.push_back(self.write(&DeltaOut::default(), Some(finish))?);
            if self.include_usage {
                out.push_back(self.writer.usage_chunk(self.names.head(), line.usage)?);
            }
        }
        Ok(())
    }

    /// The chunks of text split by the `<think>` splitter: reasoning, then content.
    fn write_split(
        &mut self,
        split: &Split<'_>,
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        if !split.reasoning.is_empty() {
            out.push_back(self.write(&DeltaOut::reasoning(&split.reasoning), None)?);
        }
        if !split.content.is_empty() {
            out.push_back(self.write(&DeltaOut::content(&split.content), None)?);
        }
        Ok(())
    }

    /// At the end of the body: an error when the `done` line never came.
    pub fn on_end(&mut self) -> Result<(), ProviderError> {
        if !self.finished {
            return Err(
                self.invalid("the upstream ended the stream before `done: true`".to_owned())
            );
        }
        Ok(())
    }

    fn write(
        &mut self,
        delta: &DeltaOut<'_>,
        finish: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        self.writer.write(self.names.head(), 0, delta, finish)
    }
}

/// What names every chunk of the stream.
#[derive(Debug)]
struct ChunkNames {
    id: String,
    model: String,
    created: u64,
}

impl ChunkNames {
    fn head(&self) -> ChunkHead<'_> {
        ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }
}

/// NDJSON decoding plus translation, for [`crate::stream_driver::drive`].
#[derive(Debug)]
pub struct OllamaStream {
    decoder: NdjsonDecoder,
    translator: StreamTranslator,
}

impl OllamaStream {
    pub fn new(translator: StreamTranslator) -> Self {
        Self {
            decoder: NdjsonDecoder::new(),
            translator,
        }
    }
}

impl ChunkSource for OllamaStream {
    fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    fn next_chunks(&mut self) -> Result<Option<Vec<ChunkJson>>, ProviderError> {
        let mut out = VecDeque::new();
        Ok(self.next_chunks_into(&mut out)?.then(|| out.into()))
    }

    fn next_chunks_into(&mut self, out: &mut VecDeque<ChunkJson>) -> Result<bool, ProviderError> {
        match self.decoder.next_line() {
            Ok(Some(line)) => self.translator.on_line(&line, out).map(|()| true),
            Ok(None) => Ok(false),
            Err(error) => Err(self.translator.invalid(error.to_string())),
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut chunks = VecDeque::new();
        if let Some(line) = self.decoder.finish() {
            self.translator.on_line(&line, &mut chunks)?;
        }
        self.translator.on_end()?;
        Ok(chunks.into())
    }

    fn is_finished(&self) -> bool {
        self.translator.saw_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_driver::collect_pieces;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    const STREAM: &str = concat!(
        "{\"model\":\"llama3.1\",\"created_at\":\"2025-05-24T02:12:05Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Let me\"},\"done\":false}\n",
        "{\"model\":\"llama3.1\",\"created_at\":\"2025-05-24T02:12:05Z\",\"message\":{\"role\":\"assistant\",\"content\":\" check.\"},\"done\":false}\n",
        "{\"model\":\"llama3.1\",\"created_at\":\"2025-05-24T02:12:05Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},\"done\":false}\n",
        "{\"model\":\"llama3.1\",\"created_at\":\"2025-05-24T02:12:06Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":1000,\"prompt_eval_count\":30,\"eval_count\":12}\n",
    );

    fn values(chunks: Vec<ChunkJson>) -> Vec<Value> {
        chunks
            .iter()
            .map(|chunk| serde_json::from_slice(chunk.as_bytes()).unwrap())
            .collect()
    }

    fn run(pieces: &[&[u8]]) -> Result<Vec<Value>, ProviderError> {
        let mut source = OllamaStream::new(StreamTranslator::new("Ollama", "m", "x", true, 5));
        collect_pieces(&mut source, pieces).map(values)
    }

    #[test]
    fn text_then_tool_call_with_usage() {
        let chunks = run(&[STREAM.as_bytes()]).unwrap();
        let delta = |delta: Value, finish: Value| {
            json!({"id": "x", "object": "chat.completion.chunk", "created": 5, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        assert_eq!(
            chunks,
            vec![
                delta(json!({"role": "assistant", "content": ""}), Value::Null),
                delta(json!({"content": "Let me"}), Value::Null),
                delta(json!({"content": " check."}), Value::Null),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "call_x_0", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                    Value::Null
                ),
                delta(json!({}), json!("tool_calls")),
                json!({"id": "x", "object": "chat.completion.chunk", "created": 5, "model": "m",
                       "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12,
                       "total_tokens": 42}}),
            ]
        );
    }

    #[test]
    fn lines_of_unexpected_shape_are_read_leniently_and_failures_add_nothing() {
        // Odd field types leave the fast path; the slow path reads what it can, as before.
        let odd = concat!(
            "{\"message\":{\"content\":\"Hi\",\"thinking\":7},\"done\":false}\n",
            "{\"response\":\"\",\"done\":true,\"eval_count\":1.5,\"prompt_eval_count\":2}\n",
        );
        let chunks = run(&[odd.as_bytes()]).unwrap();
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(chunks[3]["usage"]["total_tokens"], 2);
        assert!(run(&[b"[null,null,null,true]\n"]).is_err());

        let mut source = OllamaStream::new(StreamTranslator::new("Ollama", "m", "x", true, 5));
        let mut out = VecDeque::new();
        source.push(b"{\"message\":{\"content\":\"Hi\"},\"done\":false}\n");
        assert!(source.next_chunks_into(&mut out).unwrap());
        assert_eq!(out.len(), 2);
        // Text, then a tool call without a name: the line fails and adds no chunk.
        source.push(b"{\"message\":{\"content\":\"more\",\"tool_calls\":[{\"function\":{}}]},\"done\":false}\n");
        assert!(source.next_chunks_into(&mut out).is_err());
        assert_eq!(out.len(), 2);
    }

    /// A small deterministic generator (xorshift), so property runs are reproducible.
    fn pieces_of(bytes: &[u8], mut state: u64) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < bytes.len() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let end = (start + 1 + (state % 40) as usize).min(bytes.len());
            pieces.push(&bytes[start..end]);
            start = end;
        }
        pieces
    }

    #[test]
    fn any_split_yields_the_same_chunks() {
        let whole = run(&[STREAM.as_bytes()]).unwrap();
        let bytes = STREAM.as_bytes();
        for at in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..at], &bytes[at..]]).unwrap(),
                whole,
                "split at {at}"
            );
        }
        for seed in 1..200u64 {
            assert_eq!(
                run(&pieces_of(bytes, seed * 7919)).unwrap(),
                whole,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn truncated_or_malformed_streams_are_errors() {
        let bytes = STREAM.as_bytes();
        let last_line = STREAM.trim_end().rfind('\n').unwrap() + 1;
        for at in 0..last_line + 20 {
            assert!(run(&[&bytes[..at]]).is_err(), "cut at {at}");
        }
        assert!(run(&[b"{not json}\n"]).is_err());
        assert!(run(&[b"[1,2]\n"]).is_err());
        assert!(run(&[b"{\"message\":{\"content\":\"x\"}}\n"]).is_err());
        let error = run(&[b"{\"error\":\"llama runner process has terminated\"}\n"]).unwrap_err();
        assert_eq!(error.status(), 500);
        // Arbitrary bytes never panic.
        let mut state = 99u64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let cut = (state % bytes.len() as u64) as usize;
            let mut noisy = bytes.to_vec();
            noisy[cut] = noisy[cut].wrapping_add(1 + (state % 200) as u8);
            let _ = run(&pieces_of(&noisy, state));
        }
    }
}
