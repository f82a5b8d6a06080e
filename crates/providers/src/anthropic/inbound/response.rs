//! OpenAI chat completion → Anthropic `message`.

use serde_json::{json, Map, Value};
use switchyard_llm_types::{ChatCompletionResponse, Choice, MessageContent, ToolCall, Usage};

use super::types::{MessageUsage, MessagesResponse};

/// OpenAI `finish_reason` → Anthropic `stop_reason`, and the stop sequence that ended the
/// turn when the upstream says which (`stop_reason` on the choice: vLLM's convention, and
/// what the outbound Anthropic adapter reports).
pub fn stop_reason(
    finish_reason: Option<&str>,
    matched_stop: Option<&str>,
) -> (&'static str, Option<String>) {
    match finish_reason {
        Some("length") => ("max_tokens", None),
        Some("tool_calls" | "function_call") => ("tool_use", None),
        Some("content_filter") => ("refusal", None),
        _ => match matched_stop {
            Some(sequence) => ("stop_sequence", Some(sequence.to_owned())),
            None => ("end_turn", None),
        },
    }
}

/// The stop sequence a choice reports having matched, if any.
pub fn matched_stop_sequence(extra: &Map<String, Value>) -> Option<&str> {
    extra.get("stop_reason").and_then(Value::as_str)
}

/// OpenAI usage → Anthropic usage: cached prompt tokens move out of `input_tokens`.
pub fn message_usage(usage: &Usage) -> MessageUsage {
    let cache_read = usage.cached_tokens();
    let cache_creation = usage
        .extra
        .get("cache_creation_input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    MessageUsage {
        input_tokens: usage
            .prompt_tokens
            .saturating_sub(cache_read)
            .saturating_sub(cache_creation),
        output_tokens: usage.completion_tokens,
        cache_creation_input_tokens: cache_creation,
        cache_read_input_tokens: cache_read,
    }
}

/// A `tool_use` block; arguments that are not a JSON object (a model's malformed output) are
/// kept as a string under `input` so nothing is lost.
pub fn tool_use_block(call: &ToolCall) -> Value {
    let arguments = call.function.arguments.trim();
    let input = if arguments.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(arguments)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::String(call.function.arguments.clone()))
    };
    json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input})
}

/// Converts the engine's answer. `requested_model` names the message when the upstream did
/// not.
pub fn to_anthropic_message(
    response: ChatCompletionResponse,
    requested_model: &str,
) -> MessagesResponse {
    let ChatCompletionResponse {
        id,
        model,
        choices,
        usage,
        ..
    } = response;
    let choice = choices.into_iter().next();
    let content = choice.as_ref().map(content_blocks).unwrap_or_default();
    let (stop, sequence) = match &choice {
        Some(choice) => stop_reason(
            choice.finish_reason.as_deref(),
            matched_stop_sequence(&choice.extra),
        ),
        None => ("end_turn", None),
    };
    MessagesResponse {
        id: if id.is_empty() { new_message_id() } else { id },
        kind: "message".into(),
        role: "assistant".into(),
        model: if model.is_empty() {
            requested_model.to_owned()
        } else {
            model
        },
        content,
        stop_reason: Some(stop.to_owned()),
        stop_sequence: sequence,
        usage: usage.as_ref().map(message_usage).unwrap_or_default(),
    }
}

/// `msg_` and 24 hex digits, for answers whose upstream gave no id.
pub fn new_message_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("msg_{}", &uuid[..24])
}

fn content_blocks(choice: &Choice) -> Vec<Value> {
    let message = &choice.message;
    let mut blocks = Vec::new();
    match message.extra.get("thinking_blocks") {
        Some(Value::Array(thinking)) if !thinking.is_empty() => {
            blocks.extend(thinking.iter().cloned());
        }
        _ => {
            if let Some(reasoning) = message
                .extra
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
            {
                blocks.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
            }
        }
    }
    match &message.content {
        Some(MessageContent::Text(text)) if !text.is_empty() => {
            blocks.push(json!({"type": "text", "text": text}));
        }
        Some(MessageContent::Parts(_)) => {
            let text = message.text();
            if !text.is_empty() {
                blocks.push(json!({"type": "text", "text": text}));
            }
        }
        _ => {}
    }
    for call in message.tool_calls.iter().flatten() {
        blocks.push(tool_use_block(call));
    }
    blocks
}
