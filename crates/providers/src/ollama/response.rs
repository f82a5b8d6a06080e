//! Ollama `/api/chat` and `/api/generate` answers → OpenAI `chat.completion`.
//!
//! A chat answer carries `message` (`content`, `thinking`, `tool_calls` with arguments as JSON
//! objects); a generate answer carries `response` (and `thinking`). Both end with `done: true`,
//! `done_reason` and the token counts `prompt_eval_count` / `eval_count`. Reasoning comes back
//! as OpenAI's `reasoning_content`: Ollama's `thinking`, and a `<think>…</think>` block at the
//! start of the text ([`super::think`]), which is taken out of the content.

use serde_json::{Map, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, MessageContent, Role, ToolCall, Usage,
};

use super::think;

/// Ollama `done_reason` → OpenAI `finish_reason`. An answer that called a tool finishes with
/// `tool_calls` (Ollama says `stop`); `load` / `unload` (an empty request that only loaded or
/// unloaded the model) end normally.
pub fn finish_reason(done_reason: Option<&str>, called_a_tool: bool) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ if called_a_tool => "tool_calls",
        _ => "stop",
    }
}

/// `prompt_eval_count` / `eval_count` → OpenAI usage (absent counts are zero: Ollama leaves out
/// `prompt_eval_count` when the whole prompt came from its cache).
pub fn usage(body: &Value) -> Usage {
    let count = |name: &str| body.get(name).and_then(Value::as_u64).unwrap_or(0);
    Usage::new(count("prompt_eval_count"), count("eval_count"))
}

/// One tool call of an answer: (id, name, JSON-encoded arguments). Ollama gives no ids, so
/// one is derived from the response id and the call's position, stable across replays.
pub fn tool_call(call: &Value, response_id: &str, index: usize) -> Result<ToolCall, String> {
    let function = call
        .get("function")
        .ok_or("a tool call has no `function`")?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a tool call has no function `name`")?;
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => "{}".to_owned(),
        // Some servers already send the arguments encoded.
        Some(Value::String(text)) => text.clone(),
        Some(other) => serde_json::to_string(other).map_err(|error| error.to_string())?,
    };
    let id = match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{response_id}_{index}"),
    };
    Ok(ToolCall {
        id,
        kind: "function".to_owned(),
        function: FunctionCall {
            name: name.to_owned(),
            arguments,
        },
    })
}

/// What one answer (or stream line) says: text, reasoning and tool calls.
#[derive(Debug, Default)]
pub struct Said<'a> {
    pub text: &'a str,
    pub thinking: &'a str,
    pub tool_calls: &'a [Value],
}

/// Reads a chat (`message`) or generate (`response`) answer.
pub fn said(body: &Value) -> Said<'_> {
    fn str_at(value: Option<&Value>) -> &str {
        value.and_then(Value::as_str).unwrap_or_default()
    }
    match body.get("message") {
        Some(message) => Said {
            text: str_at(message.get("content")),
            thinking: str_at(message.get("thinking")),
            tool_calls: message
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        },
        None => Said {
            text: str_at(body.get("response")),
            thinking: str_at(body.get("thinking")),
            tool_calls: &[],
        },
    }
}

/// Builds the `chat.completion` for a whole (non-streamed) answer.
pub fn to_chat_response(
    body: &Value,
    id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    if !body.is_object() || (body.get("message").is_none() && body.get("response").is_none()) {
        return Err("the answer has neither `message` nor `response`".to_owned());
    }
    let said = said(body);
    // Reasoning written inline in the text (`<think>…</think>`) joins Ollama's `thinking`.
    let (inline_reasoning, text) = think::split_whole(said.text);
    let text_is_empty = text.is_empty();
    let tool_calls = said
        .tool_calls
        .iter()
        .enumerate()
        .map(|(index, call)| tool_call(call, id, index))
        .collect::<Result<Vec<_>, _>>()?;
    let mut message = ChatMessage {
        role: Role::Assistant,
        content: Some(MessageContent::Text(text.into_owned())),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    };
    let reasoning = said.thinking.to_owned() + &inline_reasoning;
    if !reasoning.is_empty() {
        message
            .extra
            .insert("reasoning_content".into(), Value::String(reasoning));
    }
    let called = !tool_calls.is_empty();
    if called {
        message.tool_calls = Some(tool_calls);
        if text_is_empty {
            message.content = None;
        }
    }
    let done_reason = body.get("done_reason").and_then(Value::as_str);
    Ok(ChatCompletionResponse {
        id: id.to_owned(),
        object: "chat.completion".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason(done_reason, called).to_owned()),
            logprobs: None,
            extra: Map::new(),
        }],
        usage: Some(usage(body)),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_answer_with_tool_calls_and_thinking() {
        let body = json!({"model": "qwen3", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "", "thinking": "Need weather.",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            "done": true, "done_reason": "stop", "prompt_eval_count": 20, "eval_count": 9});
        let response = to_chat_response(&body, "chatcmpl-1", "qwen3", 5).unwrap();
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(value["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            value["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "call_chatcmpl-1_0", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
        );
        assert_eq!(value["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            value["choices"][0]["message"]["reasoning_content"],
            "Need weather."
        );
        assert_eq!(value["usage"]["total_tokens"], 29);
    }

    #[test]
    fn generate_answer_and_lengths() {
        let body = json!({"model": "llama3", "response": "Hi there", "done": true,
            "done_reason": "length", "context": [1, 2], "prompt_eval_count": 3, "eval_count": 2});
        let response = to_chat_response(&body, "x", "llama3", 5).unwrap();
        assert_eq!(response.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(response.choices[0].message.text(), "Hi there");
        assert!(to_chat_response(&json!({"done": true}), "x", "m", 5).is_err());
        assert!(to_chat_response(&json!([1]), "x", "m", 5).is_err());
        let bad_call = json!({"message": {"content": "", "tool_calls": [{"function": {}}]}});
        assert!(to_chat_response(&bad_call, "x", "m", 5).is_err());
    }
}
