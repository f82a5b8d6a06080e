//! Anthropic Messages API response → OpenAI `chat.completion`.

use serde_json::{Map, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::usage::PromptTokensDetails;
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything newer end the turn normally.
        _ => "stop",
    }
}

/// Anthropic `usage` → OpenAI usage: cache reads and writes are prompt tokens too.
pub fn usage(usage: &Value) -> Usage {
    let count = |name: &str| usage.get(name).and_then(Value::as_u64);
    let input = count("input_tokens").unwrap_or(0);
    let output = count("output_tokens").unwrap_or(0);
    let cache_read = count("cache_read_input_tokens");
    let cache_creation = count("cache_creation_input_tokens");
    let prompt = input + cache_read.unwrap_or(0) + cache_creation.unwrap_or(0);
    let mut out = Usage::new(prompt, output);
    out.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(cache_read.unwrap_or(0)),
        ..PromptTokensDetails::default()
    });
    if let Some(tokens) = cache_creation {
        out.extra
            .insert("cache_creation_input_tokens".into(), tokens.into());
    }
    if let Some(tokens) = cache_read {
        out.extra
            .insert("cache_read_input_tokens".into(), tokens.into());
    }
    out
}

/// The stop sequence that ended the turn, as `stop_reason` on the choice (vLLM's convention
/// for OpenAI-shaped answers): `finish_reason` alone cannot tell it from a natural end.
pub fn matched_stop(body: &Value) -> Map<String, Value> {
    let mut extra = Map::new();
    if body.get("stop_reason").and_then(Value::as_str) == Some("stop_sequence") {
        if let Some(sequence) = body.get("stop_sequence").and_then(Value::as_str) {
            extra.insert("stop_reason".into(), Value::String(sequence.to_owned()));
        }
    }
    extra
}

/// Converts a Messages API response body. `created` is the Unix time to stamp it with.
pub fn to_chat_response(body: &Value, created: u64) -> Result<ChatCompletionResponse, String> {
    if body.get("type").and_then(Value::as_str) != Some("message") {
        return Err("expected an object of type \"message\"".to_owned());
    }
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the message has no content array")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block["thinking"].as_str().unwrap_or_default());
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: block["name"].as_str().unwrap_or_default().to_owned(),
                    arguments: serde_json::to_string(block.get("input").unwrap_or(&Value::Null))
                        .unwrap_or_else(|_| "{}".to_owned()),
                },
            }),
            _ => {}
        }
    }
    let mut extra = Extra::new();
    if !thinking_blocks.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(reasoning));
        extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    let message = ChatMessage {
        role: Role::Assistant,
        content: (!text.is_empty()).then_some(MessageContent::Text(text)),
        name: None,
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        tool_call_id: None,
        extra,
    };
    let finish = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(|reason| finish_reason(reason).to_owned());
    Ok(ChatCompletionResponse {
        id: body["id"].as_str().unwrap_or_default().to_owned(),
        object: "chat.completion".to_owned(),
        created,
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish,
            logprobs: None,
            extra: matched_stop(body),
        }],
        usage: body.get("usage").map(usage),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_response_with_cached_usage() {
        let body = json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": "claude-3-5-sonnet-20241022",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20,
                      "cache_read_input_tokens": 100, "output_tokens": 5}
        });
        let response = to_chat_response(&body, 1_700_000_000).unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "object": "chat.completion",
                "created": 1_700_000_000u64, "model": "claude-3-5-sonnet-20241022",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                          "prompt_tokens_details": {"cached_tokens": 100},
                          "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100}
            })
        );
    }

    #[test]
    fn tool_use_and_thinking_blocks() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4",
            "content": [
                {"type": "thinking", "thinking": "Need weather.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 50, "output_tokens": 30}
        });
        let response = to_chat_response(&body, 1).unwrap();
        let message = serde_json::to_value(&response.choices[0].message).unwrap();
        assert_eq!(
            message,
            json!({
                "role": "assistant",
                "tool_calls": [{"id": "toolu_01", "type": "function",
                                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                "reasoning_content": "Need weather.",
                "thinking_blocks": [{"type": "thinking", "thinking": "Need weather.", "signature": "sig"}]
            })
        );
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
        let usage = response.usage.unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens()
            ),
            (50, 30, 0)
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop), finish);
        }
    }

    #[test]
    fn non_message_bodies_are_rejected() {
        assert!(to_chat_response(&json!({"type": "error"}), 0).is_err());
    }
}
