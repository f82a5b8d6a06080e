//! Cohere v2 chat response → OpenAI `chat.completion`.
//!
//! `message.content` text parts join into `content` (`thinking` parts into
//! `reasoning_content`); `tool_calls` keep their ids; a `tool_plan` given with tool calls is
//! the text the model wrote before calling, so it becomes `content` when there is no other
//! text. Usage is what Cohere bills (`usage.billed_units`), else the raw `usage.tokens`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Number, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

/// Cohere's `finish_reason` → OpenAI's.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match reason {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        // COMPLETE, STOP_SEQUENCE, and ERROR / TIMEOUT (the text so far is the answer, as
        // LiteLLM maps them).
        _ => "stop",
    }
}

/// `usage` (or a stream's `delta.usage`) as Cohere reports it: the tokens it bills and the
/// raw token counts.
#[derive(Debug, Default, Deserialize)]
pub struct CohereUsage {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default)]
    tokens: Option<TokenCounts>,
}

/// Counts are JSON numbers (Cohere's schema says `number`): one that is not a whole number is
/// treated as absent, so the other group's count is used.
#[derive(Debug, Default, Deserialize)]
struct TokenCounts {
    #[serde(default)]
    input_tokens: Option<Number>,
    #[serde(default)]
    output_tokens: Option<Number>,
}

impl TokenCounts {
    fn input(&self) -> Option<u64> {
        self.input_tokens.as_ref().and_then(Number::as_u64)
    }

    fn output(&self) -> Option<u64> {
        self.output_tokens.as_ref().and_then(Number::as_u64)
    }
}

impl CohereUsage {
    /// OpenAI usage: what Cohere bills (`billed_units`), else the raw `tokens`, per side.
    pub fn to_usage(&self) -> Usage {
        let side = |read: fn(&TokenCounts) -> Option<u64>| {
            self.billed_units
                .as_ref()
                .and_then(read)
                .or_else(|| self.tokens.as_ref().and_then(read))
                .unwrap_or(0)
        };
        Usage::new(side(TokenCounts::input), side(TokenCounts::output))
    }
}

/// `usage` of a whole response → OpenAI usage (zero when absent or unreadable).
pub fn usage(raw: Option<&Value>) -> Usage {
    raw.and_then(|raw| CohereUsage::deserialize(raw).ok())
        .unwrap_or_default()
        .to_usage()
}

/// Text and reasoning of a `content` array (or of one content delta object).
pub fn content_text(content: Option<&Value>) -> (String, String) {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut read = |part: &Value| {
        if let Some(piece) = part.get("text").and_then(Value::as_str) {
            text.push_str(piece);
        }
        if let Some(piece) = part.get("thinking").and_then(Value::as_str) {
            thinking.push_str(piece);
        }
    };
    match content {
        Some(Value::Array(parts)) => parts.iter().for_each(&mut read),
        Some(Value::String(plain)) => text.push_str(plain),
        Some(part @ Value::Object(_)) => read(part),
        _ => {}
    }
    (text, thinking)
}

/// A tool call's id, or for a call that carries none, one made from the response id and the
/// call's position.
pub fn tool_call_id<'a>(id: Option<&'a str>, response_id: &str, index: usize) -> Cow<'a, str> {
    match id {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(format!("call_{response_id}_{index}")),
    }
}

/// One Cohere tool call → OpenAI's; `index` names calls that carry no id.
pub fn tool_call(call: &Value, response_id: &str, index: usize) -> ToolCall {
    let function = call.get("function");
    let text = |value: Option<&Value>| match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    ToolCall {
        id: tool_call_id(call.get("id").and_then(Value::as_str), response_id, index).into_owned(),
        kind: "function".to_owned(),
        function: FunctionCall {
            name: text(function.and_then(|f| f.get("name"))),
            arguments: text(function.and_then(|f| f.get("arguments"))),
        },
    }
}

pub fn to_chat_response(
    body: &Value,
    fallback_id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    let message = body
        .get("message")
        .filter(|message| message.is_object())
        .ok_or("expected a JSON object with a `message`")?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(fallback_id)
        .to_owned();
    let (mut text, thinking) = content_text(message.get("content"));
    let tool_calls: Vec<ToolCall> = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(index, call)| tool_call(call, &id, index))
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() {
        if let Some(plan) = message.get("tool_plan").and_then(Value::as_str) {
            text.push_str(plan);
        }
    }
    let mut extra = Extra::new();
    if !thinking.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(thinking));
    }
    if let Some(citations) = message
        .get("citations")
        .filter(|c| c.as_array().is_some_and(|items| !items.is_empty()))
    {
        extra.insert("citations".into(), citations.clone());
    }
    let finish = body
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(|reason| finish_reason(reason, !tool_calls.is_empty()).to_owned());
    Ok(ChatCompletionResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: Role::Assistant,
                content: (!text.is_empty() || tool_calls.is_empty())
                    .then_some(MessageContent::Text(text)),
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: finish,
            logprobs: body.get("logprobs").filter(|v| !v.is_null()).cloned(),
            extra: Extra::new(),
        }],
        usage: Some(usage(body.get("usage"))),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_prefers_billed_units() {
        let raw = json!({"billed_units": {"input_tokens": 5, "output_tokens": 3},
                         "tokens": {"input_tokens": 200, "output_tokens": 3}});
        assert_eq!(usage(Some(&raw)), Usage::new(5, 3));
        let tokens_only = json!({"tokens": {"input_tokens": 9, "output_tokens": 1}});
        assert_eq!(usage(Some(&tokens_only)), Usage::new(9, 1));
        assert_eq!(usage(None), Usage::new(0, 0));
    }

    #[test]
    fn a_body_without_message_is_rejected() {
        assert!(to_chat_response(&json!({"id": "x"}), "f", "m", 0).is_err());
        assert!(to_chat_response(&json!([1]), "f", "m", 0).is_err());
    }
}
