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

use serde_json::{Map, Value};
use switchyard_llm_types::chat::{FunctionCallDelta, ToolCallDelta};
use switchyard_llm_types::{ChatCompletionChunk, ChunkChoice, ChunkJson, Delta, Role};

use super::error::{error_message, line_error};
use super::response::{finish_reason, said, tool_call, usage};
use super::think::{Split, ThinkSplitter};
use crate::ndjson::NdjsonDecoder;
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
    started: bool,
    finished: bool,
    tool_count: u32,
    /// Takes a `<think>…</think>` block at the start of the text out of the content.
    think: ThinkSplitter,
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
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            started: false,
            finished: false,
            tool_count: 0,
            think: ThinkSplitter::new(),
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

    /// Translates one line into zero or more chunks.
    pub fn on_line(&mut self, line: &[u8]) -> Result<Vec<ChunkJson>, ProviderError> {
        let event: Value = serde_json::from_slice(line)
            .map_err(|error| self.invalid(format!("undecodable stream line: {error}")))?;
        if !event.is_object() {
            return Err(self.invalid("a stream line is not a JSON object".to_owned()));
        }
        if let Some(message) = error_message(&event) {
            return Err(line_error(self.provider, message));
        }
        if self.finished {
            return Err(self.invalid("a stream line arrived after `done: true`".to_owned()));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            )?);
        }
        let said = said(&event);
        if !said.thinking.is_empty() {
            let mut delta = Delta::default();
            delta.extra.insert(
                "reasoning_content".into(),
                Value::String(said.thinking.to_owned()),
            );
            out.push(self.chunk(delta, None)?);
        }
        let split = self.think.push(said.text);
        self.push_split(&split, &mut out)?;
        for call in said.tool_calls {
            let position = self.tool_count;
            self.tool_count += 1;
            let call = tool_call(call, &self.id, position as usize)
                .map_err(|message| self.invalid(message))?;
            let delta = Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: position,
                    id: Some(call.id),
                    kind: Some(call.kind),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name),
                        arguments: Some(call.function.arguments),
                    }),
                }]),
                ..Delta::default()
            };
            out.push(self.chunk(delta, None)?);
        }
        match event.get("done") {
            Some(Value::Bool(true)) => {
                // The `done` line is the end marker (the driver stops reading after it), so
                // the usage chunk goes out with it rather than at the end of the body.
                self.finished = true;
                let held = self.think.finish();
                self.push_split(&held, &mut out)?;
                let reason = event.get("done_reason").and_then(Value::as_str);
                let finish = finish_reason(reason, self.tool_count > 0);
                out.push(self.chunk(Delta::default(), Some(finish))?);
                if self.include_usage {
                    let mut chunk = self.empty_chunk();
                    chunk.usage = Some(usage(&event));
                    out.push(self.encode(&chunk)?);
                }
            }
            Some(Value::Bool(false)) => {}
            _ => return Err(self.invalid("a stream line has no boolean `done`".to_owned())),
        }
        Ok(out)
    }

    /// The chunks of text split by the `<think>` splitter: reasoning, then content.
    fn push_split(&self, split: &Split<'_>, out: &mut Vec<ChunkJson>) -> Result<(), ProviderError> {
        if !split.reasoning.is_empty() {
            let mut delta = Delta::default();
            delta.extra.insert(
                "reasoning_content".into(),
                Value::String(split.reasoning.clone().into_owned()),
            );
            out.push(self.chunk(delta, None)?);
        }
        if !split.content.is_empty() {
            let delta = Delta {
                content: Some(split.content.clone().into_owned()),
                ..Delta::default()
            };
            out.push(self.chunk(delta, None)?);
        }
        Ok(())
    }

    /// At the end of the body: an error when the `done` line never came.
    pub fn on_end(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.finished {
            return Err(
                self.invalid("the upstream ended the stream before `done: true`".to_owned())
            );
        }
        Ok(Vec::new())
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

    fn encode(&self, chunk: &ChatCompletionChunk) -> Result<ChunkJson, ProviderError> {
        ChunkJson::from_chunk(chunk)
            .map_err(|error| self.invalid(format!("cannot encode a chunk: {error}")))
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
        match self.decoder.next_line() {
            Ok(Some(line)) => self.translator.on_line(&line).map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(self.translator.invalid(error.to_string())),
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut chunks = Vec::new();
        if let Some(line) = self.decoder.finish() {
            chunks.extend(self.translator.on_line(&line)?);
        }
        chunks.extend(self.translator.on_end()?);
        Ok(chunks)
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
