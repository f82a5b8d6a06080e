//! OpenAI `chat.completion` request → Bedrock Converse request body (the same body for
//! `Converse` and `ConverseStream`; the model goes in the URL).

use serde_json::{json, Map, Value};
use switchyard_llm_types::chat::{ImageUrl, Stop};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Tool, ToolChoice,
};

use crate::ProviderError;

const PROVIDER: &str = "Bedrock";

fn bad_request(message: String, param: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider: PROVIDER,
        message,
        param: Some(param.to_owned()),
    }
}

/// OpenAI parameters Converse has no equivalent for, that this request sets (refused unless
/// `drop_params`).
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

/// Builds the Converse body for `request`.
pub fn to_converse_request(request: &ChatCompletionRequest) -> Result<Value, ProviderError> {
    let mut body = Map::new();
    let (system, messages) = convert_messages(&request.messages)?;
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = request.max_completion_tokens.or(request.max_tokens) {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(temperature) = request.temperature {
        inference.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        inference.insert("topP".into(), json!(top_p));
    }
    match &request.stop {
        Some(Stop::One(stop)) => {
            inference.insert("stopSequences".into(), json!([stop]));
        }
        Some(Stop::Many(stops)) if !stops.is_empty() => {
            inference.insert("stopSequences".into(), json!(stops));
        }
        _ => {}
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = request.tools.as_ref().filter(|tools| !tools.is_empty()) {
        let tools = tools.iter().map(convert_tool).collect::<Result<_, _>>()?;
        let mut config = Map::new();
        config.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice(request)? {
            config.insert("toolChoice".into(), choice);
        }
        body.insert("toolConfig".into(), Value::Object(config));
    }
    // Model-specific fields Converse does not model (e.g. `top_k`) travel in
    // `additionalModelRequestFields`, as the API documents.
    let mut additional = Map::new();
    if let Some(top_k) = request.extra.get("top_k").filter(|v| !v.is_null()) {
        additional.insert("top_k".into(), top_k.clone());
    }
    if let Some(thinking) = request.extra.get("thinking").filter(|v| !v.is_null()) {
        additional.insert("thinking".into(), thinking.clone());
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    for key in ["guardrailConfig", "performanceConfig"] {
        if let Some(value) = request.extra.get(key).filter(|v| !v.is_null()) {
            body.insert(key.into(), value.clone());
        }
    }
    Ok(Value::Object(body))
}

fn tool_choice(request: &ChatCompletionRequest) -> Result<Option<Value>, ProviderError> {
    Ok(match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            // Converse has no "none": leaving the choice out lets the model decide.
            "none" => None,
            other => {
                return Err(bad_request(
                    format!(
                        "unsupported tool_choice {other:?}; expected auto, required, none or a \
                         named function"
                    ),
                    "tool_choice",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => Some(json!({"tool": {"name": named.function.name}})),
    })
}

fn convert_tool(tool: &Tool) -> Result<Value, ProviderError> {
    let function = tool
        .function
        .as_ref()
        .filter(|_| tool.kind == "function")
        .ok_or_else(|| {
            bad_request(
                format!("tool type {:?} is not supported for Bedrock", tool.kind),
                "tools",
            )
        })?;
    let mut spec = Map::new();
    spec.insert("name".into(), Value::String(function.name.clone()));
    if let Some(description) = &function.description {
        spec.insert("description".into(), Value::String(description.clone()));
    }
    let schema = function
        .parameters
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    spec.insert("inputSchema".into(), json!({ "json": schema }));
    Ok(json!({ "toolSpec": spec }))
}

/// Splits system prompts out and converts the conversation, merging same-role neighbours
/// (Converse requires alternating roles; tool results are user content).
fn convert_messages(messages: &[ChatMessage]) -> Result<(Vec<Value>, Vec<Value>), ProviderError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                for block in content_blocks(message.content.as_ref())? {
                    if block.get("text").is_none() {
                        return Err(bad_request(
                            "system messages may only hold text for Bedrock".to_owned(),
                            "messages",
                        ));
                    }
                    system.push(block);
                }
                continue;
            }
            Role::User => ("user", content_blocks(message.content.as_ref())?),
            Role::Assistant => {
                let mut blocks = content_blocks(message.content.as_ref())?;
                for call in message.tool_calls.iter().flatten() {
                    blocks.push(json!({"toolUse": {
                        "toolUseId": call.id,
                        "name": call.function.name,
                        "input": parse_arguments(&call.id, &call.function.arguments)?,
                    }}));
                }
                ("assistant", blocks)
            }
            Role::Tool => ("user", vec![tool_result(message)?]),
            Role::Function => {
                return Err(bad_request(
                    "legacy `function` role messages are not supported for Bedrock; use tool \
                     messages"
                        .to_owned(),
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
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

fn parse_arguments(id: &str, arguments: &str) -> Result<Value, ProviderError> {
    let arguments = arguments.trim();
    if arguments.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(arguments).map_err(|error| {
        bad_request(
            format!("tool call {id:?} has arguments that are not valid JSON: {error}"),
            "messages",
        )
    })
}

fn tool_result(message: &ChatMessage) -> Result<Value, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad_request("a tool message has no tool_call_id".to_owned(), "messages"))?;
    let mut content = content_blocks(message.content.as_ref())?;
    if content.is_empty() {
        // Converse rejects an empty tool result.
        content.push(json!({"text": ""}));
    }
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}

fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![json!({ "text": text })]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } if text.is_empty() => {}
                    ContentPart::Text { text, .. } => blocks.push(json!({ "text": text })),
                    ContentPart::ImageUrl { image_url, .. } => blocks.push(image_block(image_url)?),
                    ContentPart::Other(value) => {
                        return Err(bad_request(
                            format!(
                                "content part type {} is not supported for Bedrock",
                                value.get("type").unwrap_or(&Value::Null)
                            ),
                            "messages",
                        ))
                    }
                }
            }
            Ok(blocks)
        }
    }
}

/// Converse takes image bytes only (base64 in JSON): `data:` URLs are converted, remote URLs
/// are refused rather than fetched by the gateway.
fn image_block(image: &ImageUrl) -> Result<Value, ProviderError> {
    let rest = image.url.strip_prefix("data:").ok_or_else(|| {
        bad_request(
            "Bedrock accepts images as data URLs (data:image/png;base64,...) only; remote \
             image URLs are not fetched"
                .to_owned(),
            "messages",
        )
    })?;
    let (header, data) = rest.split_once(',').ok_or_else(|| {
        bad_request(
            "image data URL has no ',' before its data".to_owned(),
            "messages",
        )
    })?;
    let media_type = header.strip_suffix(";base64").ok_or_else(|| {
        bad_request(
            "image data URLs must be base64-encoded (data:<media type>;base64,<data>)".to_owned(),
            "messages",
        )
    })?;
    let format = match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(bad_request(
                format!("image type {other:?} is not supported by Bedrock (png, jpeg, gif, webp)"),
                "messages",
            ))
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        to_converse_request(&request).unwrap()
    }

    #[test]
    fn system_inference_config_and_top_k() {
        let body = convert(json!({
            "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hi"}],
            "max_tokens": 200, "temperature": 0.3, "top_p": 0.8, "stop": "END", "top_k": 5
        }));
        assert_eq!(
            body,
            json!({
                "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
                "system": [{"text": "Be brief."}],
                "inferenceConfig": {"maxTokens": 200, "temperature": 0.3, "topP": 0.8, "stopSequences": ["END"]},
                "additionalModelRequestFields": {"top_k": 5}
            })
        );
    }

    #[test]
    fn tools_tool_uses_and_results() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "18C"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"
        }));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"text": "Weather?"}]},
                {"role": "assistant", "content": [{"text": "Checking."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C"}]}}]}
            ])
        );
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}}})
        );
    }

    #[test]
    fn images_are_bytes_and_remote_urls_are_refused() {
        let body = convert(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "text", "text": "What is it?"}]}]
        }));
        assert_eq!(
            body["messages"][0]["content"],
            json!([{"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}, {"text": "What is it?"}])
        );
        for url in [
            "https://example.com/cat.png",
            "data:image/tiff;base64,AAAA",
            "data:image/png,raw",
        ] {
            let request: ChatCompletionRequest = serde_json::from_value(json!({
                "model": "m", "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}}]}]
            }))
            .unwrap();
            assert!(to_converse_request(&request).is_err(), "{url}");
        }
    }

    #[test]
    fn unsupported_parameters_are_named() {
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "seed": 1, "response_format": {"type": "json_object"}
        }))
        .unwrap();
        assert_eq!(
            unsupported_params(&request),
            vec!["seed", "response_format"]
        );
    }
}
