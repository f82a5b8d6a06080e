//! Bedrock Converse response → OpenAI `chat.completion`.

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::usage::PromptTokensDetails;
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

use crate::borrowed::Str;

/// Converse `stopReason` → OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // end_turn, stop_sequence and newer reasons end the turn normally.
        _ => "stop",
    }
}

/// Converse `usage`: token counts, each absent when Bedrock leaves it out.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

/// Converse `usage` → OpenAI usage: cache reads and writes are prompt tokens too.
pub fn usage(usage: &TokenUsage) -> Usage {
    let input = usage.input_tokens.unwrap_or(0);
    let output = usage.output_tokens.unwrap_or(0);
    let cache_read = usage.cache_read_input_tokens;
    let cache_write = usage.cache_write_input_tokens;
    let mut out = Usage::new(
        input + cache_read.unwrap_or(0) + cache_write.unwrap_or(0),
        output,
    );
    out.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(cache_read.unwrap_or(0)),
        ..PromptTokensDetails::default()
    });
    if let Some(tokens) = cache_write {
        out.extra
            .insert("cache_creation_input_tokens".into(), tokens.into());
    }
    if let Some(tokens) = cache_read {
        out.extra
            .insert("cache_read_input_tokens".into(), tokens.into());
    }
    out
}

/// A Converse response, parsed straight from the received bytes: strings are borrowed from
/// them unless they hold escapes, and fields this adapter does not read are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse<'a> {
    #[serde(default, borrow)]
    output: Option<Output<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Debug, Deserialize)]
struct Output<'a> {
    #[serde(default, borrow)]
    message: Option<OutputMessage<'a>>,
}

#[derive(Debug, Deserialize)]
struct OutputMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Vec<ContentBlock<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentBlock<'a> {
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default, borrow)]
    tool_use: Option<ToolUse<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<ReasoningContent<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    #[serde(default, borrow)]
    tool_use_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    name: Option<Str<'a>>,
    /// Kept as a value: OpenAI wants the arguments as compact JSON text.
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningContent<'a> {
    #[serde(default, borrow)]
    reasoning_text: Option<ReasoningText<'a>>,
}

#[derive(Debug, Deserialize)]
struct ReasoningText<'a> {
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
}

/// Converts a Converse response body. Converse bodies carry no id: `id` names the completion.
pub fn to_chat_response(
    body: &[u8],
    id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    let body: ConverseResponse<'_> =
        serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let blocks = body
        .output
        .and_then(|output| output.message)
        .and_then(|message| message.content)
        .ok_or("the response has no output.message.content array")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &blocks {
        if let Some(piece) = &block.text {
            text.push_str(piece);
        } else if let Some(tool_use) = &block.tool_use {
            tool_calls.push(ToolCall {
                id: tool_use
                    .tool_use_id
                    .as_deref()
                    .unwrap_or_default()
                    .to_owned(),
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: tool_use.name.as_deref().unwrap_or_default().to_owned(),
                    arguments: serde_json::to_string(
                        tool_use.input.as_ref().unwrap_or(&Value::Null),
                    )
                    .unwrap_or_else(|_| "{}".to_owned()),
                },
            });
        } else if let Some(piece) = block
            .reasoning_content
            .as_ref()
            .and_then(|content| content.reasoning_text.as_ref())
            .and_then(|reasoning| reasoning.text.as_deref())
        {
            reasoning.push_str(piece);
        }
    }
    let mut extra = Extra::new();
    if !reasoning.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(reasoning));
    }
    Ok(ChatCompletionResponse {
        id: id.to_owned(),
        object: "chat.completion".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: Role::Assistant,
                content: (!text.is_empty()).then_some(MessageContent::Text(text)),
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: body
                .stop_reason
                .as_deref()
                .map(|reason| finish_reason(reason).to_owned()),
            logprobs: None,
            extra: Map::new(),
        }],
        usage: body.usage.as_ref().map(usage),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_tool_use_and_cached_usage() {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 20, "outputTokens": 10, "totalTokens": 130,
                      "cacheReadInputTokens": 100, "cacheWriteInputTokens": 0},
            "metrics": {"latencyMs": 420}
        });
        let response =
            to_chat_response(&serde_json::to_vec(&body).unwrap(), "chatcmpl-1", "m", 3).unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 3, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking.",
                    "tool_calls": [{"id": "tooluse_abc", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 10, "total_tokens": 130,
                    "prompt_tokens_details": {"cached_tokens": 100},
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100}
            })
        );
    }

    #[test]
    fn stop_reasons() {
        for (reason, expected) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(reason), expected);
        }
        assert!(to_chat_response(br#"{"output": {}}"#, "x", "m", 0).is_err());
    }
}
