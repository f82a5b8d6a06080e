//! `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk`s.
//!
//! Each SSE event is a whole `GenerateContentResponse` holding the next piece of text (or a
//! complete function call). The stream has no end marker: it ends with the body, and it is
//! complete only if a candidate gave a `finishReason` (or the prompt was blocked). The usage
//! chunk is sent at the end because `usageMetadata` may be repeated or completed after the
//! `finishReason`.

use std::collections::VecDeque;

use serde_json::Value;
use switchyard_llm_types::ChunkJson;

use super::error::event_error;
use super::response::{
    finish_reason, read_parts, tool_call_id, usage, GenerateContentResponse, UsageMetadata,
};
use crate::chunk_writer::{ChunkHead, ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
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
    usage: Option<UsageMetadata>,
    writer: ChunkWriter,
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
            writer: ChunkWriter::new(provider),
        }
    }

    /// Whether a `finishReason` (or a prompt block) arrived.
    pub fn saw_finish(&self) -> bool {
        self.finished
    }

    fn invalid(&self, message: String) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message,
        }
    }

    /// Why `payload` is not a usable event (the cold path: parsed again as a value to say).
    fn undecodable(&self, payload: &[u8], typed_error: serde_json::Error) -> ProviderError {
        match serde_json::from_slice::<Value>(payload) {
            Err(error) => self.invalid(format!("undecodable stream event: {error}")),
            Ok(event) if event.get("error").is_some() => event_error(self.provider, &event),
            Ok(event) if !event.is_object() => {
                self.invalid("a stream event is not a JSON object".to_owned())
            }
            Ok(_) => self.invalid(format!("undecodable stream event: {typed_error}")),
        }
    }

    /// Translates one event payload, appending its chunks (zero or more) to `out`.
    pub fn on_event(
        &mut self,
        payload: &[u8],
        out: &mut VecDeque<ChunkJson>,
    ) -> Result<(), ProviderError> {
        let event: GenerateContentResponse<'_> =
            serde_json::from_slice(payload).map_err(|error| self.undecodable(payload, error))?;
        if event.error.is_some() {
            let value: Value = serde_json::from_slice(payload)
                .map_err(|error| self.invalid(format!("undecodable stream event: {error}")))?;
            return Err(event_error(self.provider, &value));
        }
        if !self.started {
            self.started = true;
            if let Some(id) = &event.response_id {
                self.id = id.as_ref().to_owned();
            }
            if let Some(model) = &event.model_version {
                self.model = model.as_ref().to_owned();
            }
            out.push_back(self.write(0, &DeltaOut::start(), None)?);
        }
        if let Some(metadata) = event.usage_metadata {
            self.usage = Some(metadata);
        }
        for candidate in event.candidates.iter() {
            let index = candidate
                .index
                .and_then(|index| u32::try_from(index).ok())
                .unwrap_or(0);
            let parts = read_parts(candidate);
            if !parts.reasoning.is_empty() {
                out.push_back(self.write(index, &DeltaOut::reasoning(&parts.reasoning), None)?);
            }
            if !parts.text.is_empty() {
                out.push_back(self.write(index, &DeltaOut::content(&parts.text), None)?);
            }
            for call in parts.calls {
                let position = self.tool_count;
                self.tool_count += 1;
                let id = tool_call_id(call, &self.id, position as usize);
                let arguments = call.arguments();
                let delta = DeltaOut::tool_call(ToolCallDeltaOut {
                    index: position,
                    id: Some(&id),
                    kind: Some("function"),
                    function: Some(FunctionDeltaOut {
                        name: Some(call.name.as_deref().unwrap_or_default()),
                        arguments: Some(&arguments),
                    }),
                });
                out.push_back(self.write(index, &delta, None)?);
            }
            if let Some(reason) = &candidate.finish_reason {
                self.finished = true;
                let finish = finish_reason(reason, self.tool_count > 0);
                out.push_back(self.write(index, &DeltaOut::default(), Some(finish))?);
            }
        }
        if event.candidates.is_empty() && event.prompt_blocked() {
            self.finished = true;
            out.push_back(self.write(0, &DeltaOut::default(), Some("content_filter"))?);
        }
        Ok(())
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
        let chunk = self
            .writer
            .usage_chunk(self.head(), usage(&self.usage.unwrap_or_default()))?;
        Ok(vec![chunk])
    }

    fn write(
        &mut self,
        index: u32,
        delta: &DeltaOut<'_>,
        finish: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        // Field by field: the head borrows `id` and `model` while `writer` is borrowed mutably.
        let head = ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        };
        self.writer.write(head, index, delta, finish)
    }

    fn head(&self) -> ChunkHead<'_> {
        ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
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
