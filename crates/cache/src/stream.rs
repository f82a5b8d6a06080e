//! Streams and the cache: reassemble a finished stream into one complete response (so it can be
//! stored like a non-streamed one), and replay a stored response as `chat.completion.chunk`s.
//!
//! Because entries are always complete responses, a streamed request can be served from an
//! entry a non-streamed request stored, and the other way round.

use std::collections::BTreeMap;

use serde_json::Value;
use switchyard_llm_types::chat::{FunctionCall, FunctionCallDelta, ToolCallDelta};
use switchyard_llm_types::{
    ChatCompletionChunk, ChatCompletionResponse, ChatMessage, Choice, ChunkChoice, ChunkJson,
    Delta, Extra, MessageContent, Role, ToolCall, Usage,
};

/// Collects a stream's chunks; [`StreamAssembler::finish`] yields the complete response.
///
/// Feed every chunk the upstream sent (in order). Content, refusal/reasoning text and tool-call
/// argument fragments are concatenated (tool calls merged by their `index`), the last
/// `finish_reason` and `usage` win.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: Option<String>,
    created: u64,
    model: String,
    system_fingerprint: Option<String>,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
    unreadable_chunks: usize,
}

#[derive(Debug, Default)]
struct ChoiceState {
    role: Option<Role>,
    content: Option<String>,
    /// Other delta fields: strings (`refusal`, `reasoning_content`) are concatenated, anything
    /// else keeps its last value.
    extra: Extra,
    tool_calls: BTreeMap<u32, ToolCallState>,
    finish_reason: Option<String>,
    logprobs: Option<Vec<Value>>,
}

#[derive(Debug, Default)]
struct ToolCallState {
    id: String,
    kind: Option<String>,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    pub fn new() -> StreamAssembler {
        StreamAssembler::default()
    }

    /// Adds one raw chunk. An unparseable chunk is remembered, and the stream is then not
    /// cacheable (a response with a hole in it must not be served again).
    pub fn push(&mut self, chunk: &ChunkJson) {
        match chunk.parse() {
            Ok(parsed) => self.push_parsed(&parsed),
            Err(_) => self.unreadable_chunks += 1,
        }
    }

    /// Adds one parsed chunk.
    pub fn push_parsed(&mut self, chunk: &ChatCompletionChunk) {
        if self.id.is_none() && !chunk.id.is_empty() {
            self.id = Some(chunk.id.clone());
        }
        if self.created == 0 {
            self.created = chunk.created;
        }
        if self.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if chunk.system_fingerprint.is_some() {
            self.system_fingerprint
                .clone_from(&chunk.system_fingerprint);
        }
        if chunk.usage.is_some() {
            self.usage.clone_from(&chunk.usage);
        }
        for choice in &chunk.choices {
            let state = self.choices.entry(choice.index).or_default();
            state.merge(choice);
        }
    }

    /// The complete response, or `None` when the stream is not fit to cache: no chunks, an
    /// unreadable chunk, or a choice that never received a `finish_reason` (cut short).
    pub fn finish(self) -> Option<ChatCompletionResponse> {
        if self.unreadable_chunks > 0 || self.choices.is_empty() {
            return None;
        }
        if self.choices.values().any(|c| c.finish_reason.is_none()) {
            return None;
        }
        let choices = self
            .choices
            .into_iter()
            .map(|(index, state)| state.into_choice(index))
            .collect();
        Some(ChatCompletionResponse {
            id: self.id.unwrap_or_default(),
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            system_fingerprint: self.system_fingerprint,
            extra: Extra::new(),
        })
    }
}

impl ChoiceState {
    fn merge(&mut self, choice: &ChunkChoice) {
        let delta = &choice.delta;
        if delta.role.is_some() {
            self.role = delta.role;
        }
        if let Some(text) = &delta.content {
            self.content.get_or_insert_with(String::new).push_str(text);
        }
        for (name, value) in &delta.extra {
            match (self.extra.get_mut(name), value) {
                (Some(Value::String(existing)), Value::String(piece)) => existing.push_str(piece),
                (_, Value::Null) => {}
                _ => {
                    self.extra.insert(name.clone(), value.clone());
                }
            }
        }
        for call in delta.tool_calls.iter().flatten() {
            let state = self.tool_calls.entry(call.index).or_default();
            if let Some(id) = call.id.as_ref().filter(|id| !id.is_empty()) {
                state.id.clone_from(id);
            }
            if call.kind.is_some() {
                state.kind.clone_from(&call.kind);
            }
            if let Some(function) = &call.function {
                if let Some(name) = &function.name {
                    state.name.push_str(name);
                }
                if let Some(arguments) = &function.arguments {
                    state.arguments.push_str(arguments);
                }
            }
        }
        if choice.finish_reason.is_some() {
            self.finish_reason.clone_from(&choice.finish_reason);
        }
        if let Some(Value::Array(items)) = choice.logprobs.as_ref().and_then(|l| l.get("content")) {
            self.logprobs
                .get_or_insert_with(Vec::new)
                .extend(items.iter().cloned());
        }
    }

    fn into_choice(self, index: u32) -> Choice {
        let tool_calls: Vec<ToolCall> = self
            .tool_calls
            .into_values()
            .map(|call| ToolCall {
                id: call.id,
                kind: call.kind.unwrap_or_else(|| "function".to_owned()),
                function: FunctionCall {
                    name: call.name,
                    arguments: call.arguments,
                },
            })
            .collect();
        let content = match (self.content, tool_calls.is_empty()) {
            (Some(text), _) => Some(MessageContent::Text(text)),
            // OpenAI sends `content: null` next to tool calls, `""` never.
            (None, false) => None,
            (None, true) => Some(MessageContent::Text(String::new())),
        };
        Choice {
            index,
            message: ChatMessage {
                role: self.role.unwrap_or(Role::Assistant),
                content,
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra: self.extra,
            },
            finish_reason: self.finish_reason,
            logprobs: self
                .logprobs
                .map(|items| serde_json::json!({ "content": items })),
            extra: Extra::new(),
        }
    }
}

/// Characters of content per replayed chunk: small enough to look like a stream to clients
/// that render incrementally, large enough to keep a hit to a handful of chunks.
pub const REPLAY_PIECE_CHARS: usize = 64;

/// Replays a complete chat response as OpenAI-shaped stream chunks: per choice a role chunk,
/// the content in pieces, tool calls (one chunk each, arguments whole), a finish chunk; then a
/// usage chunk (`choices: []`) when `include_usage`. The caller frames them as SSE and ends
/// with `data: [DONE]`.
pub fn replay_chat_stream(
    response: &ChatCompletionResponse,
    include_usage: bool,
) -> Result<Vec<ChunkJson>, serde_json::Error> {
    let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatCompletionChunk {
        id: response.id.clone(),
        object: "chat.completion.chunk".to_owned(),
        created: response.created,
        model: response.model.clone(),
        choices,
        usage,
        system_fingerprint: response.system_fingerprint.clone(),
        extra: Extra::new(),
    };
    let one = |index: u32, delta: Delta, finish_reason: Option<String>| ChunkChoice {
        index,
        delta,
        finish_reason,
        logprobs: None,
        extra: Extra::new(),
    };

    let mut chunks = Vec::new();
    for choice in &response.choices {
        let message = &choice.message;
        let mut first = Delta {
            role: Some(message.role),
            // Tool-call-only answers stream `content: null`; keep that distinction on replay.
            content: message.content.as_ref().map(|_| String::new()),
            ..Delta::default()
        };
        // Refusal / reasoning text and other message extras travel in the first delta whole.
        first.extra.clone_from(&message.extra);
        chunks.push(chunk(vec![one(choice.index, first, None)], None));

        let text = message.text();
        for piece in split_chars(&text, REPLAY_PIECE_CHARS) {
            let delta = Delta {
                content: Some(piece.to_owned()),
                ..Delta::default()
            };
            chunks.push(chunk(vec![one(choice.index, delta, None)], None));
        }
        for (position, call) in message.tool_calls.iter().flatten().enumerate() {
            let delta = Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: u32::try_from(position).unwrap_or(u32::MAX),
                    id: Some(call.id.clone()),
                    kind: Some(call.kind.clone()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                }]),
                ..Delta::default()
            };
            chunks.push(chunk(vec![one(choice.index, delta, None)], None));
        }
        let mut finish = one(choice.index, Delta::default(), choice.finish_reason.clone());
        finish.logprobs.clone_from(&choice.logprobs);
        chunks.push(chunk(vec![finish], None));
    }
    if include_usage {
        chunks.push(chunk(
            Vec::new(),
            Some(response.usage.clone().unwrap_or_default()),
        ));
    }
    chunks.iter().map(ChunkJson::from_chunk).collect()
}

/// Splits `text` into pieces of at most `size` characters, on char boundaries.
fn split_chars(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let size = size.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .char_indices()
            .nth(size)
            .map_or(rest.len(), |(position, _)| position);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn raw(value: Value) -> ChunkJson {
        ChunkJson::from_bytes(Bytes::from(serde_json::to_vec(&value).unwrap()))
    }

    #[test]
    fn text_stream_reassembles_with_usage() {
        let mut assembler = StreamAssembler::new();
        let base = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "gpt-4o"});
        let with = |choices: Value, usage: Value| {
            let mut chunk = base.clone();
            chunk["choices"] = choices;
            chunk["usage"] = usage;
            raw(chunk)
        };
        assembler.push(&with(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]), Value::Null));
        assembler.push(&with(
            json!([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]),
            Value::Null,
        ));
        assembler.push(&with(
            json!([{"index": 0, "delta": {"content": "lo é"}, "finish_reason": null}]),
            Value::Null,
        ));
        assembler.push(&with(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            Value::Null,
        ));
        assembler.push(&with(
            json!([]),
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        ));
        let response = assembler.finish().unwrap();
        assert_eq!(response.id, "chatcmpl-1");
        assert_eq!(response.created, 7);
        assert_eq!(response.model, "gpt-4o");
        assert_eq!(response.object, "chat.completion");
        assert_eq!(response.choices[0].message.text(), "Hello é");
        assert_eq!(response.choices[0].message.role, Role::Assistant);
        assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.usage, Some(Usage::new(3, 2)));
    }

    #[test]
    fn tool_call_deltas_merge_by_index() {
        let mut assembler = StreamAssembler::new();
        let chunk = |delta: Value, finish: Value| {
            raw(json!({"id": "c", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
        };
        assembler.push(&chunk(json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null));
        assembler.push(&chunk(json!({"tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\""}}]}), Value::Null));
        assembler.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ));
        assembler.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ));
        assembler.push(&chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": ":\"UTC\"}"}}]}),
            Value::Null,
        ));
        assembler.push(&chunk(json!({}), json!("tool_calls")));
        let response = assembler.finish().unwrap();
        let message = &response.choices[0].message;
        assert_eq!(message.content, None);
        let calls = message.tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "call_a");
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
        assert_eq!(calls[1].function.arguments, r#"{"tz":"UTC"}"#);
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
    }

    #[test]
    fn truncated_or_corrupt_streams_are_not_cacheable() {
        let mut cut = StreamAssembler::new();
        cut.push(&raw(
            json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "par"}}]}),
        ));
        assert!(cut.finish().is_none());

        let mut corrupt = StreamAssembler::new();
        corrupt.push(&ChunkJson::from_bytes(Bytes::from_static(b"{not json")));
        corrupt.push(&raw(json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]})));
        assert!(corrupt.finish().is_none());
        assert!(StreamAssembler::new().finish().is_none());
    }

    #[test]
    fn multiple_choices_and_reasoning_text_are_kept_apart() {
        let mut assembler = StreamAssembler::new();
        for (index, text) in [(0, "a"), (1, "b"), (0, "c"), (1, "d")] {
            assembler.push(&raw(json!({"id": "c", "choices": [
                {"index": index, "delta": {"content": text, "reasoning_content": text.to_uppercase()}}]})));
        }
        for index in [0, 1] {
            assembler.push(&raw(json!({"id": "c", "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]})));
        }
        let response = assembler.finish().unwrap();
        assert_eq!(response.choices[0].message.text(), "ac");
        assert_eq!(response.choices[1].message.text(), "bd");
        assert_eq!(response.choices[0].message.extra["reasoning_content"], "AC");
    }

    fn sample_response() -> ChatCompletionResponse {
        serde_json::from_value(json!({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 42, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "x".repeat(150)}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
        }))
        .unwrap()
    }

    #[test]
    fn replay_has_openai_chunk_shape() {
        let response = sample_response();
        let chunks = replay_chat_stream(&response, true).unwrap();
        let parsed: Vec<Value> = chunks
            .iter()
            .map(|c| serde_json::from_slice(c.as_bytes()).unwrap())
            .collect();
        // role, 3 content pieces (64 + 64 + 22), finish, usage.
        assert_eq!(parsed.len(), 6);
        for chunk in &parsed {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["id"], "chatcmpl-9");
            assert_eq!(chunk["created"], 42);
            assert_eq!(chunk["model"], "gpt-4o");
        }
        assert_eq!(
            parsed[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(
            parsed[1]["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
        assert_eq!(parsed[4]["choices"][0]["finish_reason"], "stop");
        assert_eq!(parsed[4]["choices"][0]["delta"], json!({}));
        assert_eq!(parsed[5]["choices"], json!([]));
        assert_eq!(parsed[5]["usage"]["total_tokens"], 30);

        let without_usage = replay_chat_stream(&response, false).unwrap();
        assert_eq!(without_usage.len(), 5);
        assert!(without_usage.iter().all(|c| c.usage().is_none()));
    }

    #[test]
    fn replay_then_reassemble_is_the_identity_on_content() {
        let mut response = sample_response();
        response.choices[0].message = serde_json::from_value(json!({
            "role": "assistant", "content": "Ünïcödé ✓ ".repeat(20),
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\":1}"}}]
        }))
        .unwrap();
        let mut assembler = StreamAssembler::new();
        for chunk in replay_chat_stream(&response, true).unwrap() {
            assembler.push(&chunk);
        }
        assert_eq!(assembler.finish().unwrap(), response);
    }
}
