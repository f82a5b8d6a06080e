//! Anthropic Messages request → OpenAI chat request.
//!
//! The mapping is the inverse of the outbound adapter's ([`crate::anthropic::request`]):
//! `system` becomes a leading system message; `tool_use` blocks become `tool_calls`;
//! `tool_result` blocks become `role: tool` messages placed before the rest of their user turn
//! (OpenAI wants them right after the assistant's calls); images become `image_url` parts
//! (base64 sources as `data:` URLs); `cache_control` stays on the part, message or tool it was
//! on; `tool_choice` any/tool/none → required/named/none and `disable_parallel_tool_use` →
//! `parallel_tool_calls: false`; `metadata.user_id` → `user`; `stop_sequences` → `stop`;
//! `top_k` and `thinking` are passed on as they are.

use serde_json::{Map, Value};
use switchyard_llm_types::chat::{
    FunctionCall, FunctionDefinition, ImageUrl, NamedFunction, NamedToolChoice, Stop,
};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, Extra, MessageContent, Role, StreamOptions,
    Tool, ToolCall, ToolChoice,
};

use super::types::{
    ContentBlock, ImageSource, InputContent, InputMessage, InputRole, MessagesRequest,
    SystemPrompt, TextBlock, ToolChoiceParam, ToolDefinition, ToolResultContent,
};
use super::InboundError;

const CACHE_CONTROL: &str = "cache_control";

/// Translates a Messages request. Streams ask for the final usage chunk, which becomes the
/// usage of Anthropic's `message_delta`.
pub fn to_chat_request(request: MessagesRequest) -> Result<ChatCompletionRequest, InboundError> {
    let MessagesRequest {
        model,
        messages,
        max_tokens,
        system,
        stop_sequences,
        temperature,
        top_p,
        top_k,
        metadata,
        tools,
        tool_choice,
        thinking,
        stream,
        mut extra,
    } = request;

    let mut chat_messages = Vec::with_capacity(messages.len() + 1);
    if let Some(system) = system {
        chat_messages.push(system_message(system));
    }
    for (index, message) in messages.into_iter().enumerate() {
        convert_message(message, index, &mut chat_messages)?;
    }

    if let Some(top_k) = top_k {
        extra.insert("top_k".into(), top_k.into());
    }
    if let Some(thinking) = thinking.filter(|value| !value.is_null()) {
        extra.insert("thinking".into(), thinking);
    }
    let (tool_choice, parallel_tool_calls) = match tool_choice {
        None => (None, None),
        Some(choice) => convert_tool_choice(choice),
    };
    let stream = stream.filter(|stream| *stream);
    Ok(ChatCompletionRequest {
        model,
        messages: chat_messages,
        stream,
        stream_options: stream.map(|_| StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        temperature,
        top_p,
        stop: stop_sequences
            .filter(|stops| !stops.is_empty())
            .map(Stop::Many),
        max_tokens,
        user: metadata.and_then(|metadata| metadata.user_id),
        tools: tools.map(|tools| tools.into_iter().map(convert_tool).collect()),
        tool_choice,
        parallel_tool_calls,
        extra,
        ..ChatCompletionRequest::default()
    })
}

fn message(role: Role, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage {
        role,
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Extra::new(),
    }
}

fn with_cache_control(cache_control: Option<Value>) -> Extra {
    let mut extra = Extra::new();
    if let Some(cache_control) = cache_control {
        extra.insert(CACHE_CONTROL.into(), cache_control);
    }
    extra
}

fn text_part(text: String, cache_control: Option<Value>) -> ContentPart {
    ContentPart::Text {
        text,
        extra: with_cache_control(cache_control),
    }
}

/// Parts that are plain text (no `cache_control`) collapse to one string; the most widely
/// accepted content form.
fn collapse(parts: Vec<ContentPart>, separator: &str) -> Option<MessageContent> {
    if parts.is_empty() {
        return None;
    }
    let all_plain = parts
        .iter()
        .all(|part| matches!(part, ContentPart::Text { extra, .. } if extra.is_empty()));
    if !all_plain {
        return Some(MessageContent::Parts(parts));
    }
    let texts: Vec<String> = parts
        .into_iter()
        .filter_map(|part| match part {
            ContentPart::Text { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    Some(MessageContent::Text(texts.join(separator)))
}

fn system_message(system: SystemPrompt) -> ChatMessage {
    let content = match system {
        SystemPrompt::Text(text) => Some(MessageContent::Text(text)),
        SystemPrompt::Blocks(blocks) => collapse(
            blocks
                .into_iter()
                .map(
                    |TextBlock {
                         text,
                         cache_control,
                         ..
                     }| text_part(text, cache_control),
                )
                .collect(),
            "\n",
        ),
    };
    message(Role::System, content)
}

fn convert_message(
    input: InputMessage,
    index: usize,
    out: &mut Vec<ChatMessage>,
) -> Result<(), InboundError> {
    match (input.role, input.content) {
        (InputRole::User, InputContent::Text(text)) => {
            out.push(message(Role::User, Some(MessageContent::Text(text))));
        }
        (InputRole::Assistant, InputContent::Text(text)) => {
            out.push(message(Role::Assistant, Some(MessageContent::Text(text))));
        }
        (InputRole::User, InputContent::Blocks(blocks)) => user_blocks(blocks, index, out)?,
        (InputRole::Assistant, InputContent::Blocks(blocks)) => {
            out.push(assistant_blocks(blocks, index)?);
        }
    }
    Ok(())
}

/// A user turn: its `tool_result` blocks as tool messages, then the rest as one user message.
fn user_blocks(
    blocks: Vec<ContentBlock>,
    index: usize,
    out: &mut Vec<ChatMessage>,
) -> Result<(), InboundError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (block_index, block) in blocks.into_iter().enumerate() {
        let path = || format!("messages.{index}.content.{block_index}");
        match block {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error: _,
                cache_control,
            } => {
                let content = match content {
                    None => None,
                    Some(ToolResultContent::Text(text)) => Some(MessageContent::Text(text)),
                    Some(ToolResultContent::Blocks(blocks)) => {
                        let parts = blocks
                            .into_iter()
                            .map(|block| user_part(block, &path))
                            .collect::<Result<Vec<_>, _>>()?;
                        Some(MessageContent::Parts(parts))
                    }
                };
                let mut tool = message(Role::Tool, content);
                tool.tool_call_id = Some(tool_use_id);
                tool.extra = with_cache_control(cache_control);
                out.push(tool);
            }
            other => parts.push(user_part(other, &path)?),
        }
    }
    if !parts.is_empty() {
        let content = match parts.as_slice() {
            [ContentPart::Text { extra, .. }] if extra.is_empty() => collapse(parts, ""),
            _ => Some(MessageContent::Parts(parts)),
        };
        out.push(message(Role::User, content));
    }
    Ok(())
}

fn user_part(block: ContentBlock, path: &dyn Fn() -> String) -> Result<ContentPart, InboundError> {
    Ok(match block {
        ContentBlock::Text {
            text,
            cache_control,
            extra: _,
        } => text_part(text, cache_control),
        ContentBlock::Image {
            source,
            cache_control,
        } => image_part(source, cache_control),
        ContentBlock::ToolUse { .. } => {
            return Err(InboundError::new(
                format!("{}: tool_use blocks belong in assistant messages", path()),
                path(),
            ))
        }
        ContentBlock::ToolResult { .. } => {
            return Err(InboundError::new(
                format!(
                    "{}: tool_result blocks cannot be nested in a tool_result",
                    path()
                ),
                path(),
            ))
        }
        ContentBlock::Other(value) => ContentPart::Other(value),
    })
}

fn image_part(source: ImageSource, cache_control: Option<Value>) -> ContentPart {
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url,
        // A Files API reference has no OpenAI equivalent: the block goes on as written.
        ImageSource::Other(source) => {
            let mut block = Map::new();
            block.insert("type".into(), Value::String("image".into()));
            block.insert("source".into(), source);
            if let Some(cache_control) = cache_control {
                block.insert(CACHE_CONTROL.into(), cache_control);
            }
            return ContentPart::Other(Value::Object(block));
        }
    };
    ContentPart::ImageUrl {
        image_url: ImageUrl {
            url,
            detail: None,
            extra: Extra::new(),
        },
        extra: with_cache_control(cache_control),
    }
}

fn assistant_blocks(blocks: Vec<ContentBlock>, index: usize) -> Result<ChatMessage, InboundError> {
    let mut parts = Vec::new();
    let mut tool_calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    let mut reasoning = String::new();
    let mut last_cache_control = None;
    for (block_index, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::Text {
                text,
                cache_control,
                extra: _,
            } => parts.push(text_part(text, cache_control)),
            ContentBlock::ToolUse {
                id,
                name,
                input,
                cache_control,
            } => {
                let input = if input.is_null() {
                    Value::Object(Map::new())
                } else {
                    input
                };
                tool_calls.push(ToolCall {
                    id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name,
                        arguments: input.to_string(),
                    },
                });
                last_cache_control = cache_control;
            }
            ContentBlock::Other(block) => match block.get("type").and_then(Value::as_str) {
                Some("thinking" | "redacted_thinking") => {
                    if let Some(text) = block.get("thinking").and_then(Value::as_str) {
                        reasoning.push_str(text);
                    }
                    thinking_blocks.push(block);
                }
                _ => parts.push(ContentPart::Other(block)),
            },
            ContentBlock::Image { .. } | ContentBlock::ToolResult { .. } => {
                let path = format!("messages.{index}.content.{block_index}");
                return Err(InboundError::new(
                    format!("{path}: assistant messages hold text, tool_use and thinking blocks"),
                    path,
                ));
            }
        }
    }
    let mut out = message(Role::Assistant, collapse(parts, ""));
    if !tool_calls.is_empty() {
        out.tool_calls = Some(tool_calls);
    }
    if !thinking_blocks.is_empty() {
        out.extra
            .insert("reasoning_content".into(), Value::String(reasoning));
        out.extra
            .insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    // `cache_control` on the final tool_use block marks the whole turn, as it does outbound.
    if let Some(cache_control) = last_cache_control {
        out.extra.insert(CACHE_CONTROL.into(), cache_control);
    }
    Ok(out)
}

fn convert_tool(tool: ToolDefinition) -> Tool {
    let ToolDefinition {
        kind,
        name,
        description,
        input_schema,
        cache_control,
        mut extra,
    } = tool;
    match kind.as_deref() {
        None | Some("custom") => Tool {
            kind: "function".into(),
            function: Some(FunctionDefinition {
                name,
                description,
                parameters: Some(input_schema.unwrap_or_else(|| Value::Object(Map::new()))),
                strict: None,
                extra: Extra::new(),
            }),
            extra: with_cache_control(cache_control),
        },
        Some(server_tool) => {
            // An Anthropic server tool: every field as written.
            extra.insert("name".into(), Value::String(name));
            if let Some(description) = description {
                extra.insert("description".into(), Value::String(description));
            }
            if let Some(schema) = input_schema {
                extra.insert("input_schema".into(), schema);
            }
            if let Some(cache_control) = cache_control {
                extra.insert(CACHE_CONTROL.into(), cache_control);
            }
            Tool {
                kind: server_tool.to_owned(),
                function: None,
                extra,
            }
        }
    }
}

fn convert_tool_choice(choice: ToolChoiceParam) -> (Option<ToolChoice>, Option<bool>) {
    let parallel = |disable: Option<bool>| disable.filter(|disable| *disable).map(|_| false);
    match choice {
        ToolChoiceParam::Auto {
            disable_parallel_tool_use,
        } => (
            Some(ToolChoice::Mode("auto".into())),
            parallel(disable_parallel_tool_use),
        ),
        ToolChoiceParam::Any {
            disable_parallel_tool_use,
        } => (
            Some(ToolChoice::Mode("required".into())),
            parallel(disable_parallel_tool_use),
        ),
        ToolChoiceParam::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            Some(ToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: NamedFunction { name },
            })),
            parallel(disable_parallel_tool_use),
        ),
        ToolChoiceParam::None => (Some(ToolChoice::Mode("none".into())), None),
    }
}
