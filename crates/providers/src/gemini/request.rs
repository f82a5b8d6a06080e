//! OpenAI `chat.completion` request → Gemini `generateContent` request body (the same body for
//! Google AI Studio and Vertex AI).

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use switchyard_llm_types::chat::{ImageUrl, Stop};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Tool, ToolChoice,
};

use crate::ProviderError;

fn bad_request(provider: &'static str, message: String, param: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider,
        message,
        param: Some(param.to_owned()),
    }
}

/// OpenAI parameters Gemini has no equivalent for, that this request sets (refused unless
/// `drop_params`). `user` and `parallel_tool_calls` are accepted and have no effect, as in
/// LiteLLM.
pub fn unsupported_params(request: &ChatCompletionRequest) -> Vec<String> {
    let mut unsupported = Vec::new();
    if request.logit_bias.is_some() {
        unsupported.push("logit_bias".to_owned());
    }
    if let Some(format) = &request.response_format {
        if !matches!(format.kind.as_str(), "text" | "json_object" | "json_schema") {
            unsupported.push("response_format".to_owned());
        }
    }
    unsupported
}

/// Builds the `generateContent` body for `request`. `provider` names errors.
pub fn to_gemini_request(
    provider: &'static str,
    request: &ChatCompletionRequest,
) -> Result<Value, ProviderError> {
    let mut body = Map::new();
    let (system, contents) = convert_messages(provider, &request.messages)?;
    body.insert("contents".into(), Value::Array(contents));
    if let Some(system) = system {
        body.insert("systemInstruction".into(), system);
    }
    if let Some(tools) = request.tools.as_ref().filter(|tools| !tools.is_empty()) {
        body.insert("tools".into(), convert_tools(provider, tools)?);
    }
    if let Some(config) = tool_config(provider, request)? {
        body.insert("toolConfig".into(), config);
    }
    let config = generation_config(request);
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    for key in [
        "safetySettings",
        "safety_settings",
        "cachedContent",
        "cached_content",
    ] {
        if let Some(value) = request.extra.get(key).filter(|v| !v.is_null()) {
            let name = if key.contains('_') {
                snake_to_camel(key)
            } else {
                key.to_owned()
            };
            body.insert(name, value.clone());
        }
    }
    Ok(Value::Object(body))
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn generation_config(request: &ChatCompletionRequest) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        config.insert("topP".into(), json!(top_p));
    }
    if let Some(top_k) = request.extra.get("top_k").filter(|v| !v.is_null()) {
        config.insert("topK".into(), top_k.clone());
    }
    if let Some(max) = request.max_completion_tokens.or(request.max_tokens) {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    match &request.stop {
        Some(Stop::One(stop)) => {
            config.insert("stopSequences".into(), json!([stop]));
        }
        Some(Stop::Many(stops)) if !stops.is_empty() => {
            config.insert("stopSequences".into(), json!(stops));
        }
        _ => {}
    }
    if let Some(n) = request.n {
        config.insert("candidateCount".into(), json!(n));
    }
    if let Some(penalty) = request.presence_penalty {
        config.insert("presencePenalty".into(), json!(penalty));
    }
    if let Some(penalty) = request.frequency_penalty {
        config.insert("frequencyPenalty".into(), json!(penalty));
    }
    if let Some(seed) = request.seed {
        config.insert("seed".into(), json!(seed));
    }
    if request.logprobs == Some(true) {
        config.insert("responseLogprobs".into(), Value::Bool(true));
    }
    if let Some(top) = request.top_logprobs {
        config.insert("logprobs".into(), json!(top));
    }
    if let Some(format) = &request.response_format {
        match format.kind.as_str() {
            "json_object" => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            "json_schema" => {
                config.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = format.json_schema.as_ref().and_then(|s| s.get("schema")) {
                    config.insert("responseSchema".into(), clean_schema(schema));
                }
            }
            _ => {}
        }
    }
    if let Some(budget) = thinking_budget(request) {
        let mut thinking = Map::new();
        thinking.insert("thinkingBudget".into(), json!(budget));
        if budget > 0 {
            thinking.insert("includeThoughts".into(), Value::Bool(true));
        }
        config.insert("thinkingConfig".into(), Value::Object(thinking));
    }
    config
}

/// `reasoning_effort` (or Anthropic-style `thinking.budget_tokens`) as a thinking budget,
/// with the budgets LiteLLM uses for each effort level.
fn thinking_budget(request: &ChatCompletionRequest) -> Option<u64> {
    if let Some(budget) = request
        .extra
        .get("thinking")
        .and_then(|thinking| thinking.get("budget_tokens"))
        .and_then(Value::as_u64)
    {
        return Some(budget);
    }
    match request.extra.get("reasoning_effort")?.as_str()? {
        "disable" | "none" => Some(0),
        "minimal" => Some(128),
        "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        _ => None,
    }
}

/// Gemini's schema is an OpenAPI subset: JSON-Schema keywords it rejects are removed.
pub fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(key.as_str(), "additionalProperties" | "$schema" | "strict")
                })
                .map(|(key, value)| {
                    // `properties` maps names to schemas; a property may be called anything.
                    let value = if key == "properties" {
                        match value {
                            Value::Object(properties) => Value::Object(
                                properties
                                    .iter()
                                    .map(|(name, sub)| (name.clone(), clean_schema(sub)))
                                    .collect(),
                            ),
                            other => other.clone(),
                        }
                    } else {
                        clean_schema(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn convert_tools(provider: &'static str, tools: &[Tool]) -> Result<Value, ProviderError> {
    let mut declarations = Vec::with_capacity(tools.len());
    let mut native = Vec::new();
    for tool in tools {
        if tool.kind != "function" {
            // A Gemini-native tool (`googleSearch`, `codeExecution`, ...) is sent as written.
            native.push(Value::Object(tool.extra.clone()));
            continue;
        }
        let function = tool.function.as_ref().ok_or_else(|| {
            bad_request(
                provider,
                "a function tool has no `function`".to_owned(),
                "tools",
            )
        })?;
        let mut declaration = Map::new();
        declaration.insert("name".into(), Value::String(function.name.clone()));
        if let Some(description) = &function.description {
            declaration.insert("description".into(), Value::String(description.clone()));
        }
        // Gemini rejects an object schema with no properties: a function without arguments
        // is declared without `parameters`.
        if let Some(parameters) = function.parameters.as_ref().filter(|parameters| {
            parameters
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|properties| !properties.is_empty())
        }) {
            declaration.insert("parameters".into(), clean_schema(parameters));
        }
        declarations.push(Value::Object(declaration));
    }
    let mut out = Vec::new();
    if !declarations.is_empty() {
        out.push(json!({ "functionDeclarations": declarations }));
    }
    out.extend(native);
    Ok(Value::Array(out))
}

fn tool_config(
    provider: &'static str,
    request: &ChatCompletionRequest,
) -> Result<Option<Value>, ProviderError> {
    let config = match &request.tool_choice {
        None => return Ok(None),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "none" => json!({"mode": "NONE"}),
            "required" => json!({"mode": "ANY"}),
            other => {
                return Err(bad_request(
                    provider,
                    format!(
                        "unsupported tool_choice {other:?}; expected auto, required, none or a \
                         named function"
                    ),
                    "tool_choice",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => {
            json!({"mode": "ANY", "allowedFunctionNames": [named.function.name]})
        }
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
}

/// Splits system prompts out and converts the conversation into `contents`, merging
/// same-role neighbours (tool results join the user turn that follows the model's calls).
fn convert_messages(
    provider: &'static str,
    messages: &[ChatMessage],
) -> Result<(Option<Value>, Vec<Value>), ProviderError> {
    let mut system_parts = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Gemini answers a function call by name, OpenAI by call id: remember which is which.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for message in messages {
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                system_parts.extend(content_parts(provider, message.content.as_ref())?);
                continue;
            }
            Role::User => ("user", content_parts(provider, message.content.as_ref())?),
            Role::Assistant => {
                let mut parts = content_parts(provider, message.content.as_ref())?;
                for call in message.tool_calls.iter().flatten() {
                    call_names.insert(&call.id, &call.function.name);
                    parts.push(json!({"functionCall": {
                        "name": call.function.name,
                        "args": parse_arguments(provider, &call.id, &call.function.arguments)?,
                    }}));
                }
                ("model", parts)
            }
            Role::Tool | Role::Function => {
                let name = message
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied())
                    .or(message.name.as_deref())
                    .ok_or_else(|| {
                        bad_request(
                            provider,
                            "a tool message answers no earlier tool call (unknown \
                             tool_call_id and no name)"
                                .to_owned(),
                            "messages",
                        )
                    })?;
                ("user", vec![function_response(name, message)])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let system = (!system_parts.is_empty()).then(|| json!({ "parts": system_parts }));
    let contents = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    Ok((system, contents))
}

fn parse_arguments(
    provider: &'static str,
    id: &str,
    arguments: &str,
) -> Result<Value, ProviderError> {
    let arguments = arguments.trim();
    if arguments.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(arguments).map_err(|error| {
        bad_request(
            provider,
            format!("tool call {id:?} has arguments that are not valid JSON: {error}"),
            "messages",
        )
    })
}

/// A tool result: a JSON object is sent as the response itself, anything else as
/// `{"content": <text>}` (Gemini requires an object).
fn function_response(name: &str, message: &ChatMessage) -> Value {
    let text = message.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    json!({"functionResponse": {"name": name, "response": response}})
}

fn content_parts(
    provider: &'static str,
    content: Option<&MessageContent>,
) -> Result<Vec<Value>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) if text.is_empty() => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![json!({ "text": text })]),
        Some(MessageContent::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } if text.is_empty() => {}
                    ContentPart::Text { text, .. } => out.push(json!({ "text": text })),
                    ContentPart::ImageUrl { image_url, .. } => {
                        out.push(image_part(provider, image_url)?)
                    }
                    ContentPart::Other(value) => {
                        return Err(bad_request(
                            provider,
                            format!(
                                "content part type {} is not supported for Gemini",
                                value.get("type").unwrap_or(&Value::Null)
                            ),
                            "messages",
                        ))
                    }
                }
            }
            Ok(out)
        }
    }
}

/// `data:` URLs are sent inline; other URLs (`https://`, `gs://`) as file references with the
/// media type from `format` or the file extension.
fn image_part(provider: &'static str, image: &ImageUrl) -> Result<Value, ProviderError> {
    if let Some(rest) = image.url.strip_prefix("data:") {
        let (header, data) = rest.split_once(',').ok_or_else(|| {
            bad_request(
                provider,
                "image data URL has no ',' before its data".to_owned(),
                "messages",
            )
        })?;
        let mime_type = header.strip_suffix(";base64").ok_or_else(|| {
            bad_request(
                provider,
                "image data URLs must be base64-encoded (data:<media type>;base64,<data>)"
                    .to_owned(),
                "messages",
            )
        })?;
        return Ok(json!({"inlineData": {"mimeType": mime_type, "data": data}}));
    }
    let mime_type = image
        .extra
        .get("format")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| mime_from_extension(&image.url).to_owned());
    Ok(json!({"fileData": {"mimeType": mime_type, "fileUri": image.url}}))
}

fn mime_from_extension(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        to_gemini_request("Gemini", &request).unwrap()
    }

    #[test]
    fn system_sampling_and_json_schema() {
        let body = convert(json!({
            "model": "gemini-2.0-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"}
            ],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "n": 2,
            "stop": ["END"],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema":
                {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}}}
        }));
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "generationConfig": {
                    "temperature": 0.5, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                    "stopSequences": ["END"], "candidateCount": 2,
                    "responseMimeType": "application/json",
                    "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}}
                }
            })
        );
    }

    #[test]
    fn tool_calls_and_results_are_paired_by_name() {
        let body = convert(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters":
                {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "noargs", "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }));
        assert_eq!(
            body["contents"][1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
        );
        assert_eq!(
            body["contents"][2],
            json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}}]})
        );
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [
                {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
                {"name": "noargs"}
            ]}])
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );
    }

    #[test]
    fn images_inline_and_by_uri() {
        let body = convert(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}}
            ]}]
        }));
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"text": "Compare"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}}
            ])
        );
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        for request in [
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}),
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]}),
        ] {
            let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
            assert!(to_gemini_request("Gemini", &request).is_err());
        }
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget() {
        let body = convert(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"
        }));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
    }
}
