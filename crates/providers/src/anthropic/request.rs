//! OpenAI `chat.completion` request → Anthropic Messages API request body.

use serde_json::{json, Map, Value};
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

/// Builds the Messages API body for `request` (`stream` adds `"stream": true`).
pub fn to_messages_request(
    request: &ChatCompletionRequest,
    stream: bool,
) -> Result<Value, ProviderError> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));

    let (system, messages) = convert_messages(&request.messages)?;
    if let Some(system) = system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(messages));

    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".into(), json!(top_p));
    }
    if let Some(top_k) = request.extra.get("top_k").filter(|v| !v.is_null()) {
        body.insert("top_k".into(), top_k.clone());
    }
    match &request.stop {
        Some(Stop::One(stop)) => {
            body.insert("stop_sequences".into(), json!([stop]));
        }
        Some(Stop::Many(stops)) if !stops.is_empty() => {
            body.insert("stop_sequences".into(), json!(stops));
        }
        _ => {}
    }
    if let Some(user) = &request.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if let Some(tools) = request.tools.as_ref().filter(|tools| !tools.is_empty()) {
        let tools = tools.iter().map(convert_tool).collect::<Result<_, _>>()?;
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice(request)? {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(thinking) = request.extra.get("thinking").filter(|v| !v.is_null()) {
        body.insert("thinking".into(), thinking.clone());
    } else if let Some(budget) = reasoning_budget(request)? {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(body))
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

fn tool_choice(request: &ChatCompletionRequest) -> Result<Option<Value>, ProviderError> {
    let mut choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => {
                return Err(bad_request(
                    format!("unsupported tool_choice {other:?}; expected auto, required, none or a named function"),
                    "tool_choice",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => {
            Some(json!({"type": "tool", "name": named.function.name}))
        }
    };
    if request.parallel_tool_calls == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(choice)
}

fn convert_tool(tool: &Tool) -> Result<Value, ProviderError> {
    if tool.kind != "function" {
        // An Anthropic-native tool (e.g. `web_search_20250305`): sent as written.
        let mut native = Map::new();
        native.insert("type".into(), Value::String(tool.kind.clone()));
        native.extend(tool.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        return Ok(Value::Object(native));
    }
    let function = tool
        .function
        .as_ref()
        .ok_or_else(|| bad_request("a function tool has no `function`".to_owned(), "tools"))?;
    let mut out = Map::new();
    out.insert("name".into(), Value::String(function.name.clone()));
    if let Some(description) = &function.description {
        out.insert("description".into(), Value::String(description.clone()));
    }
    let schema = function
        .parameters
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    if let Some(cache_control) = tool
        .extra
        .get("cache_control")
        .or_else(|| function.extra.get("cache_control"))
    {
        out.insert("cache_control".into(), cache_control.clone());
    }
    Ok(Value::Object(out))
}

/// Splits system prompts out and converts the conversation, merging same-role neighbours.
fn convert_messages(
    messages: &[ChatMessage],
) -> Result<(Option<Value>, Vec<Value>), ProviderError> {
    let mut system_blocks: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
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
    let system = if system_blocks.is_empty() {
        None
    } else if system_blocks.iter().all(is_plain_text) {
        let texts: Vec<&str> = system_blocks
            .iter()
            .filter_map(|block| block["text"].as_str())
            .collect();
        Some(Value::String(texts.join("\n")))
    } else {
        Some(Value::Array(system_blocks))
    };
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| {
            let content = match blocks.as_slice() {
                [only] if is_plain_text(only) => only["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect();
    Ok((system, messages))
}

/// A text block with nothing but `type` and `text`, which can be sent as a plain string.
fn is_plain_text(block: &Value) -> bool {
    block["type"] == "text" && block.as_object().is_some_and(|map| map.len() == 2)
}

/// `cache_control` on a whole message applies to its last block (when that is an object: a
/// malformed part cannot carry it, and the API will say what is wrong with the part).
fn apply_message_cache_control(message: &ChatMessage, blocks: &mut [Value]) {
    if let (Some(cache_control), Some(Value::Object(last))) =
        (message.extra.get("cache_control"), blocks.last_mut())
    {
        last.insert("cache_control".into(), cache_control.clone());
    }
}

fn text_block(text: &str, extra: Option<&Map<String, Value>>) -> Value {
    let mut block = Map::new();
    block.insert("type".into(), Value::String("text".into()));
    block.insert("text".into(), Value::String(text.to_owned()));
    if let Some(cache_control) = extra.and_then(|extra| extra.get("cache_control")) {
        block.insert("cache_control".into(), cache_control.clone());
    }
    Value::Object(block)
}

/// User/system content as Anthropic blocks; empty text is dropped (the API rejects it).
fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![text_block(text, None)]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } if text.is_empty() => {}
                    ContentPart::Text { text, extra } => blocks.push(text_block(text, Some(extra))),
                    ContentPart::ImageUrl { image_url, extra } => {
                        blocks.push(image_block(image_url, extra)?)
                    }
                    // Anthropic-native blocks (document, ...) are sent as written.
                    ContentPart::Other(value) => blocks.push(value.clone()),
                }
            }
            Ok(blocks)
        }
    }
}

/// `data:` URLs become base64 sources; anything else is fetched by Anthropic from its URL.
fn image_block(image: &ImageUrl, part: &Map<String, Value>) -> Result<Value, ProviderError> {
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
        json!({"type": "base64", "media_type": media_type, "data": data})
    } else {
        json!({"type": "url", "url": image.url})
    };
    let mut block = json!({"type": "image", "source": source});
    if let Some(cache_control) = part
        .get("cache_control")
        .or_else(|| image.extra.get("cache_control"))
    {
        block["cache_control"] = cache_control.clone();
    }
    Ok(block)
}

fn assistant_blocks(message: &ChatMessage) -> Result<Vec<Value>, ProviderError> {
    let mut blocks = Vec::new();
    // Thinking blocks from an earlier turn must be sent back unchanged (signatures included).
    if let Some(Value::Array(thinking)) = message.extra.get("thinking_blocks") {
        blocks.extend(thinking.iter().cloned());
    }
    blocks.extend(content_blocks(message.content.as_ref())?);
    for call in message.tool_calls.iter().flatten() {
        let arguments = call.function.arguments.trim();
        let input: Value = if arguments.is_empty() {
            json!({})
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
        blocks.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    apply_message_cache_control(message, &mut blocks);
    Ok(blocks)
}

fn tool_result(message: &ChatMessage) -> Result<Value, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad_request("a tool message has no tool_call_id".to_owned(), "messages"))?;
    let mut block = Map::new();
    block.insert("type".into(), Value::String("tool_result".into()));
    block.insert("tool_use_id".into(), Value::String(id.to_owned()));
    match &message.content {
        None => {}
        Some(MessageContent::Text(text)) => {
            block.insert("content".into(), Value::String(text.clone()));
        }
        Some(content @ MessageContent::Parts(_)) => {
            block.insert(
                "content".into(),
                Value::Array(content_blocks(Some(content))?),
            );
        }
    }
    if let Some(cache_control) = message.extra.get("cache_control") {
        block.insert("cache_control".into(), cache_control.clone());
    }
    Ok(Value::Object(block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::ErrorClass;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        to_messages_request(&request, false).unwrap()
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
        let body = to_messages_request(&request, true).unwrap();
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
            to_messages_request(&request, false)
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
