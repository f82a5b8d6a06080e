//! `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk`s.
//!
//! Each SSE event is a whole `GenerateContentResponse` holding the next piece of text (or a
//! complete function call). The stream has no end marker: it ends with the body, and it is
//! complete only if a candidate gave a `finishReason` (or the prompt was blocked). The usage
//! chunk is sent at the end because `usageMetadata` may be repeated or completed after the
//! `finishReason`.

use serde_json::{Map, Value};
use switchyard_llm_types::chat::{FunctionCallDelta, ToolCallDelta};
use switchyard_llm_types::{ChatCompletionChunk, ChunkChoice, ChunkJson, Delta, Role};

use super::error::event_error;
use super::response::{finish_reason, read_parts, tool_call_id, usage};
use crate::sse::{SseDecoder, SseEvent};
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
    usage: Option<Value>,
}

impl StreamTranslator {
    /// `fallback_id` names the chunks when the upstream gives no `responseId`.
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
        }
    }

    /// Whether a `finishReason` (or a prompt block) arrived.
    pub fn saw_finish(&self) -> bool {
        self.finished
    }

    /// Translates one event payload into zero or more chunks.
    pub fn on_event(&mut self, payload: &[u8]) -> Result<Vec<ChunkJson>, ProviderError> {
        let event: Value =
            serde_json::from_slice(payload).map_err(|error| ProviderError::InvalidResponse {
                provider: self.provider,
                message: format!("undecodable stream event: {error}"),
            })?;
        if event.get("error").is_some() {
            return Err(event_error(self.provider, &event));
        }
        if !event.is_object() {
            return Err(ProviderError::InvalidResponse {
                provider: self.provider,
                message: "a stream event is not a JSON object".to_owned(),
            });
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            if let Some(id) = event.get("responseId").and_then(Value::as_str) {
                self.id = id.to_owned();
            }
            if let Some(model) = event.get("modelVersion").and_then(Value::as_str) {
                self.model = model.to_owned();
            }
            out.push(self.chunk(
                0,
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            )?);
        }
        if let Some(metadata) = event.get("usageMetadata") {
            self.usage = Some(metadata.clone());
        }
        let candidates = event
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for candidate in candidates {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|index| u32::try_from(index).ok())
                .unwrap_or(0);
            let parts = read_parts(candidate);
            if !parts.reasoning.is_empty() {
                let mut delta = Delta::default();
                delta
                    .extra
                    .insert("reasoning_content".into(), Value::String(parts.reasoning));
                out.push(self.chunk(index, delta, None)?);
            }
            if !parts.text.is_empty() {
                let delta = Delta {
                    content: Some(parts.text),
                    ..Delta::default()
                };
                out.push(self.chunk(index, delta, None)?);
            }
            for (name, arguments, raw) in parts.calls {
                let position = self.tool_count;
                self.tool_count += 1;
                let call = ToolCallDelta {
                    index: position,
                    id: Some(tool_call_id(&raw, &self.id, position as usize)),
                    kind: Some("function".to_owned()),
                    function: Some(FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(arguments),
                    }),
                };
                let delta = Delta {
                    tool_calls: Some(vec![call]),
                    ..Delta::default()
                };
                out.push(self.chunk(index, delta, None)?);
            }
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                self.finished = true;
                let finish = finish_reason(reason, self.tool_count > 0);
                out.push(self.chunk(index, Delta::default(), Some(finish))?);
            }
        }
        if candidates.is_empty() && event.pointer("/promptFeedback/blockReason").is_some() {
            self.finished = true;
            out.push(self.chunk(0, Delta::default(), Some("content_filter"))?);
        }
        Ok(out)
    }

    /// At the end of the stream: the usage chunk when the client asked for one.
    pub fn on_end(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        if !self.finished {
            return Err(ProviderError::InvalidResponse {
                provider: self.provider,
                message: "the upstream ended the stream before a finishReason".to_owned(),
            });
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

    fn chunk(
        &self,
        index: u32,
        delta: Delta,
        finish: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        let mut chunk = self.empty_chunk();
        chunk.choices.push(ChunkChoice {
            index,
            delta,
            finish_reason: finish.map(str::to_owned),
            logprobs: None,
            extra: Map::new(),
        });
        self.encode(&chunk)
    }

    fn encode(&self, chunk: &ChatCompletionChunk) -> Result<ChunkJson, ProviderError> {
        ChunkJson::from_chunk(chunk).map_err(|error| ProviderError::InvalidResponse {
            provider: self.provider,
            message: format!("cannot encode a chunk: {error}"),
        })
    }
}

/// SSE decoding plus translation, for [`crate::stream_driver::drive`].
#[derive(Debug)]
pub struct GeminiStream {
    decoder: SseDecoder,
    translator: StreamTranslator,
}

impl GeminiStream {
    pub fn new(translator: StreamTranslator) -> Self {
        Self {
            decoder: SseDecoder::new(),
            translator,
        }
    }
}

impl ChunkSource for GeminiStream {
    fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    fn next_chunks(&mut self) -> Result<Option<Vec<ChunkJson>>, ProviderError> {
        loop {
            match self.decoder.next_event() {
                None => return Ok(None),
                Some(SseEvent::Done) => continue,
                Some(SseEvent::Data(payload)) => {
                    return self.translator.on_event(&payload).map(Some)
                }
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<ChunkJson>, ProviderError> {
        let mut chunks = Vec::new();
        if let Some(SseEvent::Data(payload)) = self.decoder.finish() {
            chunks.extend(self.translator.on_event(&payload)?);
        }
        chunks.extend(self.translator.on_end()?);
        Ok(chunks)
    }

    fn is_finished(&self) -> bool {
        // No end marker: the body's end is the stream's end.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_driver::collect_pieces;
    use serde_json::json;
    use switchyard_llm_types::ErrorClass;

    const STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Let me\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 30,\"totalTokenCount\": 30},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" check.\"}],\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 30,\"candidatesTokenCount\": 12,\"totalTokenCount\": 42,\"cachedContentTokenCount\": 10},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"r1\"}\r\n\r\n",
    );

    fn values(chunks: Vec<ChunkJson>) -> Vec<Value> {
        chunks
            .iter()
            .map(|chunk| serde_json::from_slice(chunk.as_bytes()).unwrap())
            .collect()
    }

    fn run(pieces: &[&[u8]]) -> Result<Vec<Value>, ProviderError> {
        let mut source = GeminiStream::new(StreamTranslator::new("Gemini", "m", "x", true, 5));
        collect_pieces(&mut source, pieces).map(values)
    }

    #[test]
    fn text_then_function_call_with_usage() {
        let chunks = run(&[STREAM.as_bytes()]).unwrap();
        let head = |choices: Value| {
            json!({"id": "r1", "object": "chat.completion.chunk", "created": 5,
                   "model": "gemini-2.0-flash", "choices": choices})
        };
        let delta = |delta: Value, finish: Value| {
            head(json!([{"index": 0, "delta": delta, "finish_reason": finish}]))
        };
        let mut usage_chunk = head(json!([]));
        usage_chunk["usage"] = json!({"prompt_tokens": 30, "completion_tokens": 12,
            "total_tokens": 42, "prompt_tokens_details": {"cached_tokens": 10}});
        assert_eq!(
            chunks,
            vec![
                delta(json!({"role": "assistant", "content": ""}), Value::Null),
                delta(json!({"content": "Let me"}), Value::Null),
                delta(json!({"content": " check."}), Value::Null),
                delta(
                    json!({"tool_calls": [{"index": 0, "id": "call_r1_0", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                    Value::Null
                ),
                delta(json!({}), json!("tool_calls")),
                usage_chunk,
            ]
        );
    }

    #[test]
    fn every_two_way_split_yields_the_same_chunks() {
        let whole = run(&[STREAM.as_bytes()]).unwrap();
        let bytes = STREAM.as_bytes();
        for at in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..at], &bytes[at..]]).unwrap(),
                whole,
                "split at {at}"
            );
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&single).unwrap(), whole);
    }

    #[test]
    fn truncated_or_malformed_streams_are_errors() {
        let bytes = STREAM.as_bytes();
        // Cut anywhere before the finishing event: an error, never a panic.
        let last_event = STREAM.rfind("data:").unwrap();
        for at in 0..last_event {
            assert!(run(&[&bytes[..at]]).is_err(), "cut at {at}");
        }
        assert!(run(&[b"data: {not json}\n\n"]).is_err());
        assert!(run(&[b"data: [1,2]\n\n"]).is_err());
        let error = run(&[
            b"data: {\"error\": {\"code\": 429, \"message\": \"Resource exhausted\", \"status\": \"RESOURCE_EXHAUSTED\"}}\n\n",
        ])
        .unwrap_err();
        assert_eq!(error.status(), 429);
    }

    #[test]
    fn blocked_prompt_ends_with_content_filter() {
        let chunks = run(&[
            b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 4, \"totalTokenCount\": 4}}\n\n",
        ])
        .unwrap();
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(chunks[2]["usage"]["prompt_tokens"], 4);
    }
}
