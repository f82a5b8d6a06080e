//! OpenAI `chat.completion` request → Anthropic Messages API request body.
//!
//! The body is a tree of `#[derive(Serialize)]` structs borrowing every string, schema and
//! pass-through value from the OpenAI request, serialized once; only tool-call arguments are
//! parsed (they must be valid JSON, and are sent compact).

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use switchyard_llm_types::chat::{ImageUrl, Stop};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Tool, ToolChoice,
};

use crate::ProviderError;

/// `max_tokens` is required by the Messages API; this is sent when the client gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

const PROVIDER: &str = "Anthropic";

fn bad_request(message: String, param: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider: PROVIDER,
        message,
        param: Some(param.to_owned()),
    }
}

/// OpenAI parameters the Messages API has no equivalent for, that this request sets.
///
/// With `drop_params` they are left out; without it the call is refused naming them, as
/// LiteLLM does, rather than silently answering something other than what was asked.
pub fn unsupported_params(request: &ChatCompletionRequest) -> Vec<String> {
    let mut unsupported = Vec::new();
    if request.n.is_some_and(|n| n != 1) {
        unsupported.push("n".to_owned());
    }
    let set = [
        ("seed", request.seed.is_some()),
        ("presence_penalty", request.presence_penalty.is_some()),
        ("frequency_penalty", request.frequency_penalty.is_some()),
        ("logit_bias", request.logit_bias.is_some()),
        ("logprobs", request.logprobs == Some(true)),
        ("top_logprobs", request.top_logprobs.is_some()),
        (
            "response_format",
            request
                .response_format
                .as_ref()
                .is_some_and(|format| format.kind != "text"),
        ),
    ];
    unsupported.extend(
        set.into_iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| name.to_owned()),
    );
    unsupported
}

/// A Messages API request body. Fields in the order the API reference documents them; absent
/// optional fields are left out.
#[derive(Debug, Serialize)]
pub struct MessagesBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    messages: Vec<Message<'a>>,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<StopSequences<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<AnthropicTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<AnthropicToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// `system`: one string when every part is plain text, else the text blocks.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum System<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Content<'a>,
}

/// A message's `content`: a lone plain text block is sent as its text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    /// The `text` of a client-written block, whatever its JSON type.
    Value(&'a Value),
    Blocks(Vec<Block<'a>>),
}

/// A content block. `cache_control` comes last, as the message-level one is added to the
/// message's last block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Image {
        source: ImageSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    /// Anthropic-native parts (`document`, ...) and replayed thinking blocks, as written.
    #[serde(untagged)]
    Raw(RawBlock<'a>),
}

impl<'a> Block<'a> {
    /// Sets the block's `cache_control` (a block that is not a JSON object cannot carry one).
    fn set_cache_control(&mut self, value: &'a Value) {
        match self {
            Block::Text { cache_control, .. }
            | Block::Image { cache_control, .. }
            | Block::ToolUse { cache_control, .. }
            | Block::ToolResult { cache_control, .. } => *cache_control = Some(value),
            Block::Raw(raw) if raw.value.is_object() => raw.cache_control = Some(value),
            Block::Raw(_) => {}
        }
    }

    /// The text of a block with nothing but `type: "text"` and `text`, which can be sent as a
    /// plain string.
    fn plain_text(&self) -> Option<Content<'a>> {
        match self {
            Block::Text {
                text,
                cache_control: None,
            } => Some(Content::Text(text)),
            Block::Raw(raw) => raw.plain_text().map(Content::Value),
            _ => None,
        }
    }
}

/// A block sent as the client wrote it, with the message's `cache_control` set on it if any
/// (replacing its own in place, else last).
#[derive(Debug)]
struct RawBlock<'a> {
    value: &'a Value,
    cache_control: Option<&'a Value>,
}

impl<'a> RawBlock<'a> {
    fn plain_text(&self) -> Option<&'a Value> {
        let map = self.value.as_object()?;
        let added = self.cache_control.is_some() && !map.contains_key("cache_control");
        let fields = map.len() + usize::from(added);
        (map.get("type").and_then(Value::as_str) == Some("text") && fields == 2)
            .then(|| map.get("text").unwrap_or(&Value::Null))
    }
}

impl Serialize for RawBlock<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (Some(cache_control), Value::Object(map)) = (self.cache_control, self.value) else {
            return self.value.serialize(serializer);
        };
        let mut out = serializer.serialize_map(None)?;
        for (key, value) in map {
            let value = if key == "cache_control" {
                cache_control
            } else {
                value
            };
            out.serialize_entry(key, value)?;
        }
        if !map.contains_key("cache_control") {
            out.serialize_entry("cache_control", cache_control)?;
        }
        out.end()
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

/// `stop_sequences`, from OpenAI's one string or list.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum StopSequences<'a> {
    One([&'a str; 1]),
    Many(&'a [String]),
}

#[derive(Debug, Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum AnthropicTool<'a> {
    Function {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        input_schema: InputSchema<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    /// An Anthropic-native tool (e.g. `web_search_20250305`): its type, then its fields as
    /// written.
    Native {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(flatten)]
        fields: &'a Map<String, Value>,
    },
}

/// A function's parameter schema; `{"type": "object", "properties": {}}` for a function
/// without parameters (the API requires a schema).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum InputSchema<'a> {
    Given(&'a Value),
    NoParameters {
        #[serde(rename = "type")]
        kind: &'static str,
        properties: NoProperties,
    },
}

#[derive(Debug, Serialize)]
struct NoProperties {}

#[derive(Debug, Serialize)]
struct AnthropicToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

/// `thinking`: the client's own object, or a budget from `reasoning_effort`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Thinking<'a> {
    Given(&'a Value),
    Budget {
        #[serde(rename = "type")]
        kind: &'static str,
        budget_tokens: u64,
    },
}

/// Builds the Messages API body for `request` (`stream` adds `"stream": true`).
pub fn to_messages_request(
    request: &ChatCompletionRequest,
    stream: bool,
) -> Result<MessagesBody<'_>, ProviderError> {
    let (system, messages) = convert_messages(&request.messages)?;
    let stop_sequences = match &request.stop {
        Some(Stop::One(stop)) => Some(StopSequences::One([stop])),
        Some(Stop::Many(stops)) if !stops.is_empty() => Some(StopSequences::Many(stops)),
        _ => None,
    };
    let tools = match request.tools.as_deref() {
        Some(tools) if !tools.is_empty() => {
            Some(tools.iter().map(convert_tool).collect::<Result<_, _>>()?)
        }
        _ => None,
    };
    let thinking = match request.extra.get("thinking").filter(|v| !v.is_null()) {
        Some(thinking) => Some(Thinking::Given(thinking)),
        None => reasoning_budget(request)?.map(|budget_tokens| Thinking::Budget {
            kind: "enabled",
            budget_tokens,
        }),
    };
    Ok(MessagesBody {
        model: &request.model,
        system,
        messages,
        max_tokens: request
            .max_completion_tokens
            .or(request.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.extra.get("top_k").filter(|v| !v.is_null()),
        stop_sequences,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
        tools,
        tool_choice: tool_choice(request)?,
        thinking,
        stream,
    })
}

/// `reasoning_effort` as an extended-thinking budget, with LiteLLM's budgets per level.
/// `minimal` gets the smallest budget Anthropic accepts (1024, as `low`); `none` asks for no
/// thinking. An explicit `thinking` object wins (the caller reads it first).
fn reasoning_budget(request: &ChatCompletionRequest) -> Result<Option<u64>, ProviderError> {
    let Some(effort) = request
        .extra
        .get("reasoning_effort")
        .filter(|v| !v.is_null())
    else {
        return Ok(None);
    };
    match effort.as_str() {
        Some("none" | "disable") => Ok(None),
        Some("minimal" | "low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(2048)),
        Some("high") => Ok(Some(4096)),
        _ => Err(bad_request(
            format!("unsupported reasoning_effort {effort}; expected none, minimal, low, medium or high"),
            "reasoning_effort",
        )),
    }
}

fn tool_choice(
    request: &ChatCompletionRequest,
) -> Result<Option<AnthropicToolChoice<'_>>, ProviderError> {
    let of_kind = |kind| AnthropicToolChoice {
        kind,
        name: None,
        disable_parallel_tool_use: None,
    };
    let mut choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(of_kind("auto")),
            "required" => Some(of_kind("any")),
            "none" => Some(of_kind("none")),
            other => {
                return Err(bad_request(
                    format!("unsupported tool_choice {other:?}; expected auto, required, none or a named function"),
                    "tool_choice",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => Some(AnthropicToolChoice {
            name: Some(&named.function.name),
            ..of_kind("tool")
        }),
    };
    if request.parallel_tool_calls == Some(false) {
        let choice = choice.get_or_insert_with(|| of_kind("auto"));
        if choice.kind != "none" {
            choice.disable_parallel_tool_use = Some(true);
        }
    }
    Ok(choice)
}

fn convert_tool(tool: &Tool) -> Result<AnthropicTool<'_>, ProviderError> {
    if tool.kind != "function" {
        return Ok(AnthropicTool::Native {
            kind: &tool.kind,
            fields: &tool.extra,
        });
    }
    let function = tool
        .function
        .as_ref()
        .ok_or_else(|| bad_request("a function tool has no `function`".to_owned(), "tools"))?;
    Ok(AnthropicTool::Function {
        name: &function.name,
        description: function.description.as_deref(),
        input_schema: match &function.parameters {
            Some(schema) => InputSchema::Given(schema),
            None => InputSchema::NoParameters {
                kind: "object",
                properties: NoProperties {},
            },
        },
        cache_control: tool
            .extra
            .get("cache_control")
            .or_else(|| function.extra.get("cache_control")),
    })
}

/// Splits system prompts out and converts the conversation, merging same-role neighbours.
fn convert_messages(
    messages: &[ChatMessage],
) -> Result<(Option<System<'_>>, Vec<Message<'_>>), ProviderError> {
    let mut system_blocks: Vec<Block<'_>> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Block<'_>>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                let mut blocks = content_blocks(message.content.as_ref())?;
                apply_message_cache_control(message, &mut blocks);
                system_blocks.extend(blocks);
                continue;
            }
            Role::User => {
                let mut blocks = content_blocks(message.content.as_ref())?;
                apply_message_cache_control(message, &mut blocks);
                ("user", blocks)
            }
            Role::Assistant => ("assistant", assistant_blocks(message)?),
            Role::Tool => ("user", vec![tool_result(message)?]),
            Role::Function => {
                return Err(bad_request(
                    "legacy `function` role messages are not supported for Anthropic; use tool messages".to_owned(),
                    "messages",
                ))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| {
            let content = match blocks.as_slice() {
                [only] => only.plain_text(),
                _ => None,
            };
            Message {
                role,
                content: content.unwrap_or(Content::Blocks(blocks)),
            }
        })
        .collect();
    Ok((system(system_blocks), messages))
}

/// The system prompt: plain texts joined by newlines, or the blocks when any has more than
/// text (e.g. `cache_control`).
fn system(blocks: Vec<Block<'_>>) -> Option<System<'_>> {
    if blocks.is_empty() {
        return None;
    }
    let texts: Option<Vec<Option<&str>>> = blocks
        .iter()
        .map(|block| {
            block.plain_text().map(|text| match text {
                Content::Text(text) => Some(text),
                Content::Value(value) => value.as_str(),
                Content::Blocks(_) => None,
            })
        })
        .collect();
    Some(match texts {
        None => System::Blocks(blocks),
        Some(texts) => {
            let mut texts = texts.into_iter().flatten();
            match (texts.next(), texts.next()) {
                (None, _) => System::Text(Cow::Borrowed("")),
                (Some(only), None) => System::Text(Cow::Borrowed(only)),
                (Some(first), Some(second)) => {
                    let mut joined = format!("{first}\n{second}");
                    for text in texts {
                        joined.push('\n');
                        joined.push_str(text);
                    }
                    System::Text(Cow::Owned(joined))
                }
            }
        }
    })
}

/// `cache_control` on a whole message applies to its last block.
fn apply_message_cache_control<'a>(message: &'a ChatMessage, blocks: &mut [Block<'a>]) {
    if let (Some(cache_control), Some(last)) =
        (message.extra.get("cache_control"), blocks.last_mut())
    {
        last.set_cache_control(cache_control);
    }
}

/// User/system content as Anthropic blocks; empty text is dropped (the API rejects it).
fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Block<'_>>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![Block::Text {
            text,
            cache_control: None,
        }]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } if text.is_empty() => {}
                    ContentPart::Text { text, extra } => blocks.push(Block::Text {
                        text,
                        cache_control: extra.get("cache_control"),
                    }),
                    ContentPart::ImageUrl { image_url, extra } => {
                        blocks.push(image_block(image_url, extra)?)
                    }
                    // Anthropic-native blocks (document, ...) are sent as written.
                    ContentPart::Other(value) => blocks.push(Block::Raw(RawBlock {
                        value,
                        cache_control: None,
                    })),
                }
            }
            Ok(blocks)
        }
    }
}

/// `data:` URLs become base64 sources; anything else is fetched by Anthropic from its URL.
fn image_block<'a>(
    image: &'a ImageUrl,
    part: &'a Map<String, Value>,
) -> Result<Block<'a>, ProviderError> {
    let source = if let Some(rest) = image.url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').ok_or_else(|| {
            bad_request(
                "image data URL has no ',' before its data".to_owned(),
                "messages",
            )
        })?;
        let media_type = header.strip_suffix(";base64").ok_or_else(|| {
            bad_request(
                "image data URLs must be base64-encoded (data:<media type>;base64,<data>)"
                    .to_owned(),
                "messages",
            )
        })?;
        ImageSource::Base64 { media_type, data }
    } else {
        ImageSource::Url { url: &image.url }
    };
    Ok(Block::Image {
        source,
        cache_control: part
            .get("cache_control")
            .or_else(|| image.extra.get("cache_control")),
    })
}

fn assistant_blocks(message: &ChatMessage) -> Result<Vec<Block<'_>>, ProviderError> {
    let mut blocks = Vec::new();
    // Thinking blocks from an earlier turn must be sent back unchanged (signatures included).
    if let Some(Value::Array(thinking)) = message.extra.get("thinking_blocks") {
        blocks.extend(thinking.iter().map(|value| {
            Block::Raw(RawBlock {
                value,
                cache_control: None,
            })
        }));
    }
    blocks.extend(content_blocks(message.content.as_ref())?);
    for call in message.tool_calls.iter().flatten() {
        let arguments = call.function.arguments.trim();
        let input: Value = if arguments.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(arguments).map_err(|error| {
                bad_request(
                    format!(
                        "tool call {:?} has arguments that are not valid JSON: {error}",
                        call.id
                    ),
                    "messages",
                )
            })?
        };
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input,
            cache_control: None,
        });
    }
    apply_message_cache_control(message, &mut blocks);
    Ok(blocks)
}

fn tool_result(message: &ChatMessage) -> Result<Block<'_>, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad_request("a tool message has no tool_call_id".to_owned(), "messages"))?;
    let content = match &message.content {
        None => None,
        Some(MessageContent::Text(text)) => Some(ToolResultContent::Text(text)),
        Some(content @ MessageContent::Parts(_)) => {
            Some(ToolResultContent::Blocks(content_blocks(Some(content))?))
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: id,
        content,
        cache_control: message.extra.get("cache_control"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::ErrorClass;

    use serde_json::json;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        serde_json::to_value(to_messages_request(&request, false).unwrap()).unwrap()
    }

    #[test]
    fn text_system_and_sampling_parameters() {
        let body = convert(json!({
            "model": "claude-3-5-sonnet-20241022",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "Answer in French."},
                {"role": "user", "content": "Hi"}
            ],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "stop": "END", "user": "user-42"
        }));
        assert_eq!(
            body,
            json!({
                "model": "claude-3-5-sonnet-20241022",
                "system": "Be brief.\nAnswer in French.",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 4096,
                "temperature": 0.5, "top_p": 0.9, "top_k": 40,
                "stop_sequences": ["END"],
                "metadata": {"user_id": "user-42"}
            })
        );
    }

    #[test]
    fn max_tokens_prefers_max_completion_tokens_and_stream_flag() {
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 100, "max_completion_tokens": 200, "stop": ["a", "b"]
        }))
        .unwrap();
        let body = serde_json::to_value(to_messages_request(&request, true).unwrap()).unwrap();
        assert_eq!(body["max_tokens"], 200);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stop_sequences"], json!(["a", "b"]));
        let body = convert(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100}),
        );
        assert_eq!(body["max_tokens"], 100);
    }

    #[test]
    fn system_blocks_keep_cache_control() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [
                    {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "system", "content": "Short", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"role": "user", "content": "q"}
            ]
        }));
        assert_eq!(
            body["system"],
            json!([
                {"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Short", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
            ])
        );
    }

    #[test]
    fn consecutive_same_role_messages_are_merged() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "three"}
            ]
        }));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "one"},
                    {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "a"}, {"type": "text", "text": "b"}
                ]},
                {"role": "user", "content": "three"}
            ])
        );
    }

    #[test]
    fn tools_and_tool_choice_forms() {
        let tools = json!([{"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }}, {"type": "function", "function": {"name": "noargs"}}]);
        let base = |choice: Value, parallel: Value| {
            convert(json!({
                "model": "m", "messages": [{"role": "user", "content": "x"}],
                "tools": tools, "tool_choice": choice, "parallel_tool_calls": parallel
            }))
        };
        let body = base(json!("auto"), Value::Null);
        assert_eq!(
            body["tools"],
            json!([
                {"name": "get_weather", "description": "Weather for a city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "noargs", "input_schema": {"type": "object", "properties": {}}}
            ])
        );
        assert_eq!(body["tool_choice"], json!({"type": "auto"}));
        assert_eq!(
            base(json!("required"), Value::Null)["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            base(json!("none"), Value::Null)["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            base(
                json!({"type": "function", "function": {"name": "get_weather"}}),
                json!(false)
            )["tool_choice"],
            json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true})
        );
        let body = convert(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "parallel_tool_calls": false
        }));
        assert_eq!(
            body["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"
        }))
        .unwrap();
        assert!(to_messages_request(&request, false).is_err());
    }

    #[test]
    fn tool_calls_and_tool_results() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                {"role": "user", "content": "Thanks"}
            ]
        }));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                    {"type": "text", "text": "Thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn assistant_tool_call_without_text_and_invalid_arguments() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}]}
            ]
        }));
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])
        );
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]
        }))
        .unwrap();
        assert!(to_messages_request(&request, false).is_err());
    }

    #[test]
    fn images_from_data_urls_and_http_urls() {
        let body = convert(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}, "cache_control": {"type": "ephemeral"}}
            ]}]
        }));
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Compare"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}, "cache_control": {"type": "ephemeral"}}
            ])
        );
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]
        }))
        .unwrap();
        assert!(to_messages_request(&request, false).is_err());
    }

    #[test]
    fn cache_control_on_messages_and_thinking_pass_through() {
        let body = convert(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "cached", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}
        }));
        assert_eq!(
            body["messages"][0]["content"],
            json!([{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}])
        );
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 1024})
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget_unless_thinking_is_given() {
        let with = |extra: Value| {
            let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            request
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
            to_messages_request(&request, false).map(|body| serde_json::to_value(body).unwrap())
        };
        for (effort, budget) in [
            ("minimal", 1024),
            ("low", 1024),
            ("medium", 2048),
            ("high", 4096),
        ] {
            assert_eq!(
                with(json!({"reasoning_effort": effort})).unwrap()["thinking"],
                json!({"type": "enabled", "budget_tokens": budget}),
                "{effort}"
            );
        }
        assert!(with(json!({"reasoning_effort": "none"}))
            .unwrap()
            .get("thinking")
            .is_none());
        let explicit = json!({"type": "enabled", "budget_tokens": 5000});
        assert_eq!(
            with(json!({"reasoning_effort": "low", "thinking": explicit})).unwrap()["thinking"],
            explicit
        );
        let error = with(json!({"reasoning_effort": "extreme"})).unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.to_string().contains("reasoning_effort"), "{error}");
    }

    #[test]
    fn message_cache_control_on_a_native_part_replaces_its_own_or_comes_last() {
        let document = |own: Value| {
            let mut part = json!({"type": "document", "source": {"type": "text", "data": "d"}});
            if !own.is_null() {
                part["cache_control"] = own;
                part["title"] = json!("t");
            }
            convert(json!({
                "model": "m",
                "messages": [{"role": "user", "content": [part], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
            }))["messages"][0]["content"][0]
                .clone()
        };
        let appended = document(Value::Null);
        assert_eq!(
            serde_json::to_string(&appended).unwrap(),
            r#"{"type":"document","source":{"type":"text","data":"d"},"cache_control":{"type":"ephemeral","ttl":"1h"}}"#
        );
        let replaced = document(json!({"type": "ephemeral"}));
        assert_eq!(
            serde_json::to_string(&replaced).unwrap(),
            r#"{"type":"document","source":{"type":"text","data":"d"},"cache_control":{"type":"ephemeral","ttl":"1h"},"title":"t"}"#
        );
    }

    #[test]
    fn message_cache_control_skips_a_last_part_that_is_not_an_object() {
        let body = convert(json!({
            "model": "m",
            "messages": [{"role": "user", "content": ["odd part"], "cache_control": {"type": "ephemeral"}}]
        }));
        assert_eq!(body["messages"][0]["content"], json!(["odd part"]));
    }

    #[test]
    fn parameters_without_an_anthropic_equivalent_are_named() {
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "claude", "messages": [{"role": "user", "content": "hi"}],
            "seed": 1, "n": 2, "presence_penalty": 0.1, "response_format": {"type": "json_object"}
        }))
        .unwrap();
        assert_eq!(
            unsupported_params(&request),
            vec!["n", "seed", "presence_penalty", "response_format"]
        );
        let plain: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "claude", "messages": [{"role": "user", "content": "hi"}], "n": 1, "temperature": 0.2
        }))
        .unwrap();
        assert!(unsupported_params(&plain).is_empty());
    }
}
