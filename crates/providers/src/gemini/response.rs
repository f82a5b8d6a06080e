//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`.

use serde_json::{Map, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::usage::{CompletionTokensDetails, PromptTokensDetails};
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

/// Gemini `finishReason` → OpenAI `finish_reason` (a candidate that called a function
/// finishes with `tool_calls` whatever Gemini says, as OpenAI clients expect).
pub fn finish_reason(reason: &str, called_a_function: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => "content_filter",
        _ if called_a_function => "tool_calls",
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL and newer reasons end normally.
        _ => "stop",
    }
}

/// `usageMetadata` → OpenAI usage. Thinking tokens are billed as output, so they count in
/// `completion_tokens` and are shown as reasoning tokens.
pub fn usage(metadata: &Value) -> Usage {
    let count = |name: &str| metadata.get(name).and_then(Value::as_u64);
    let prompt = count("promptTokenCount").unwrap_or(0);
    let candidates = count("candidatesTokenCount").unwrap_or(0);
    let thoughts = count("thoughtsTokenCount");
    let mut out = Usage::new(prompt, candidates + thoughts.unwrap_or(0));
    if let Some(total) = count("totalTokenCount") {
        out.total_tokens = total.max(out.total_tokens);
    }
    out.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(count("cachedContentTokenCount").unwrap_or(0)),
        ..PromptTokensDetails::default()
    });
    if let Some(thoughts) = thoughts {
        out.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: Some(thoughts),
            ..CompletionTokensDetails::default()
        });
    }
    out
}

/// The id of the `index`-th tool call of a response: Gemini's own when it gives one, else
/// derived from the response id so that a replayed response yields the same ids.
pub fn tool_call_id(call: &Value, response_id: &str, index: usize) -> String {
    match call.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{response_id}_{index}"),
    }
}

/// What one candidate's parts say, flattened.
#[derive(Debug, Default)]
pub struct CandidateParts {
    pub text: String,
    pub reasoning: String,
    /// (name, JSON-encoded args, the raw `functionCall`)
    pub calls: Vec<(String, String, Value)>,
}

pub fn read_parts(candidate: &Value) -> CandidateParts {
    let mut out = CandidateParts::default();
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            let arguments = serde_json::to_string(call.get("args").unwrap_or(&Value::Null))
                .unwrap_or_else(|_| "{}".to_owned());
            let arguments = if arguments == "null" {
                "{}".to_owned()
            } else {
                arguments
            };
            out.calls.push((
                call["name"].as_str().unwrap_or_default().to_owned(),
                arguments,
                call.clone(),
            ));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        }
    }
    out
}

/// Converts a response body. `fallback_id` is used when the response has no `responseId`;
/// `model` when it has no `modelVersion`.
pub fn to_chat_response(
    body: &Value,
    fallback_id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    if !body.is_object() {
        return Err("expected a JSON object".to_owned());
    }
    let id = body
        .get("responseId")
        .and_then(Value::as_str)
        .unwrap_or(fallback_id)
        .to_owned();
    let candidates = body
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut choices = Vec::with_capacity(candidates.len().max(1));
    let mut call_index = 0;
    for (position, candidate) in candidates.iter().enumerate() {
        let parts = read_parts(candidate);
        let tool_calls: Vec<ToolCall> = parts
            .calls
            .iter()
            .map(|(name, arguments, raw)| {
                let call = ToolCall {
                    id: tool_call_id(raw, &id, call_index),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: name.clone(),
                        arguments: arguments.clone(),
                    },
                };
                call_index += 1;
                call
            })
            .collect();
        let mut extra = Extra::new();
        if !parts.reasoning.is_empty() {
            extra.insert("reasoning_content".into(), Value::String(parts.reasoning));
        }
        let finish = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .map(|reason| finish_reason(reason, !tool_calls.is_empty()).to_owned());
        choices.push(Choice {
            index: candidate
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|index| u32::try_from(index).ok())
                .unwrap_or_else(|| u32::try_from(position).unwrap_or(0)),
            message: ChatMessage {
                role: Role::Assistant,
                content: (!parts.text.is_empty()).then_some(MessageContent::Text(parts.text)),
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: finish,
            logprobs: None,
            extra: Map::new(),
        });
    }
    if choices.is_empty() {
        // A prompt blocked before generation has no candidates, only `promptFeedback`.
        let blocked = body.pointer("/promptFeedback/blockReason").is_some();
        if !blocked {
            return Err("the response has no candidates and no promptFeedback".to_owned());
        }
        choices.push(Choice {
            index: 0,
            message: ChatMessage {
                role: Role::Assistant,
                content: None,
                name: None,
                tool_calls: None,
                tool_call_id: None,
                extra: Extra::new(),
            },
            finish_reason: Some("content_filter".to_owned()),
            logprobs: None,
            extra: Map::new(),
        });
    }
    Ok(ChatCompletionResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: body
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_owned(),
        choices,
        usage: body.get("usageMetadata").map(usage),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_with_cached_and_thinking_usage() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think", "thought": true}, {"text": "Hello"}, {"text": " world"}]},
                "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 5,
                "totalTokenCount": 145, "cachedContentTokenCount": 100, "thoughtsTokenCount": 20},
            "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
        });
        let response = to_chat_response(&body, "fallback", "m", 7).unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "id": "resp-1", "object": "chat.completion", "created": 7, "model": "gemini-2.5-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                    "reasoning_content": "Let me think"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 25, "total_tokens": 145,
                    "prompt_tokens_details": {"cached_tokens": 100},
                    "completion_tokens_details": {"reasoning_tokens": 20}}
            })
        );
    }

    #[test]
    fn function_calls_become_tool_calls() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}}]},
                "finishReason": "STOP"}],
            "responseId": "r9"
        });
        let response = to_chat_response(&body, "fallback", "m", 0).unwrap();
        let message = serde_json::to_value(&response.choices[0].message).unwrap();
        assert_eq!(
            message,
            json!({"role": "assistant", "tool_calls": [
                {"id": "call_r9_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_r9_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]})
        );
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
    }

    #[test]
    fn finish_reasons_and_blocked_prompts() {
        for (reason, expected) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ] {
            assert_eq!(finish_reason(reason, false), expected);
        }
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}});
        let response = to_chat_response(&blocked, "chatcmpl-x", "gemini-pro", 0).unwrap();
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        assert_eq!(response.id, "chatcmpl-x");
        assert!(to_chat_response(&json!({}), "x", "m", 0).is_err());
        assert!(to_chat_response(&json!([1]), "x", "m", 0).is_err());
    }
}
