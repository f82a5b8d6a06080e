//! OpenAI `chat.completion` request → Ollama `/api/chat` (`ollama_chat/`) or `/api/generate`
//! (`ollama/`) body.
//!
//! Both endpoints take sampling settings in `options` (Ollama's names: `num_predict` for
//! `max_tokens`, `repeat_penalty` for `frequency_penalty`, as LiteLLM maps them) and
//! structured output in `format` (`"json"`, or a JSON schema). `/api/chat` takes the messages
//! as they are, with images as bare base64 and tool-call arguments as JSON objects;
//! `/api/generate` takes one prompt, built from the messages with LiteLLM's `### User:` /
//! `### System:` / `### Assistant:` template, and the images of the user turns.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use switchyard_llm_types::chat::Stop;
use switchyard_llm_types::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role};

use crate::image_fetch::{self, FetchedImages};
use crate::ProviderError;

/// Which Ollama endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/chat` (`ollama_chat/`): messages, tools.
    Chat,
    /// `/api/generate` (`ollama/`): one prompt, no tools.
    Generate,
}

/// Keys a client may pass beside the OpenAI ones (LiteLLM forwards them) that are Ollama
/// runtime options, so they go into `options`.
const OPTION_KEYS: &[&str] = &[
    "top_k",
    "min_p",
    "typical_p",
    "num_ctx",
    "num_keep",
    "num_batch",
    "num_gpu",
    "num_gqa",
    "num_thread",
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "repeat_last_n",
    "repeat_penalty",
    "tfs_z",
    "penalize_newline",
    "numa",
    "use_mmap",
    "use_mlock",
];

fn bad_request(provider: &'static str, message: String, param: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider,
        message,
        param: Some(param.to_owned()),
    }
}

/// OpenAI parameters Ollama has no equivalent for, that this request sets (refused unless
/// `drop_params`). `user` and `parallel_tool_calls` are accepted and have no effect, and
/// `tool_choice` is accepted and not sent (Ollama has none; LiteLLM drops it too).
pub fn unsupported_params(request: &ChatCompletionRequest, endpoint: Endpoint) -> Vec<String> {
    let mut unsupported = Vec::new();
    if request.logit_bias.is_some() {
        unsupported.push("logit_bias".to_owned());
    }
    if request.logprobs.is_some() {
        unsupported.push("logprobs".to_owned());
    }
    if request.top_logprobs.is_some() {
        unsupported.push("top_logprobs".to_owned());
    }
    if request.n.is_some_and(|n| n != 1) {
        unsupported.push("n".to_owned());
    }
    if let Some(format) = &request.response_format {
        if !matches!(format.kind.as_str(), "text" | "json_object" | "json_schema") {
            unsupported.push("response_format".to_owned());
        }
    }
    if endpoint == Endpoint::Generate {
        if request
            .tools
            .as_ref()
            .is_some_and(|tools| !tools.is_empty())
        {
            unsupported.push("tools".to_owned());
        }
        if request.tool_choice.is_some() {
            unsupported.push("tool_choice".to_owned());
        }
    }
    unsupported
}

/// The `/api/chat` body for `request`. `provider` names errors. Remote (`http(s)://`) image
/// URLs are refused: the adapter downloads them first and calls
/// [`to_chat_request_with_images`].
pub fn to_chat_request(
    provider: &'static str,
    request: &ChatCompletionRequest,
) -> Result<Value, ProviderError> {
    to_chat_request_with_images(provider, request, &FetchedImages::none())
}

/// [`to_chat_request`] with the images downloaded for the request's remote image URLs.
pub fn to_chat_request_with_images(
    provider: &'static str,
    request: &ChatCompletionRequest,
    fetched: &FetchedImages,
) -> Result<Value, ProviderError> {
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert(
        "messages".into(),
        Value::Array(chat_messages(provider, &request.messages, fetched)?),
    );
    body.insert("options".into(), Value::Object(options(request)));
    body.insert("stream".into(), Value::Bool(request.is_stream()));
    if let Some(tools) = request.tools.as_ref().filter(|tools| !tools.is_empty()) {
        let tools = serde_json::to_value(tools)
            .map_err(|error| bad_request(provider, format!("invalid tools: {error}"), "tools"))?;
        body.insert("tools".into(), tools);
    }
    insert_common(&mut body, request);
    Ok(Value::Object(body))
}

/// The `/api/generate` body for `request` (remote image URLs refused, as for
/// [`to_chat_request`]).
pub fn to_generate_request(
    provider: &'static str,
    request: &ChatCompletionRequest,
) -> Result<Value, ProviderError> {
    to_generate_request_with_images(provider, request, &FetchedImages::none())
}

/// [`to_generate_request`] with the images downloaded for the request's remote image URLs.
pub fn to_generate_request_with_images(
    provider: &'static str,
    request: &ChatCompletionRequest,
    fetched: &FetchedImages,
) -> Result<Value, ProviderError> {
    let (prompt, images) = prompt_of(provider, &request.messages, fetched)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::String(request.model.clone()));
    body.insert("prompt".into(), Value::String(prompt));
    body.insert("options".into(), Value::Object(options(request)));
    body.insert("stream".into(), Value::Bool(request.is_stream()));
    if !images.is_empty() {
        body.insert(
            "images".into(),
            Value::Array(images.into_iter().map(Value::String).collect()),
        );
    }
    insert_common(&mut body, request);
    Ok(Value::Object(body))
}

/// `format`, `keep_alive` and `think`: top-level fields both endpoints take.
fn insert_common(body: &mut Map<String, Value>, request: &ChatCompletionRequest) {
    if let Some(format) = format(request) {
        body.insert("format".into(), format);
    }
    if let Some(keep_alive) = request.extra.get("keep_alive").filter(|v| !v.is_null()) {
        body.insert("keep_alive".into(), keep_alive.clone());
    }
    if let Some(think) = think(request) {
        body.insert("think".into(), think);
    }
}

/// `response_format` → `format`: `"json"` for a JSON object, the schema itself for a JSON
/// schema.
fn format(request: &ChatCompletionRequest) -> Option<Value> {
    let format = request.response_format.as_ref()?;
    match format.kind.as_str() {
        "json_object" => Some(Value::String("json".to_owned())),
        "json_schema" => format
            .json_schema
            .as_ref()
            .and_then(|schema| schema.get("schema"))
            .cloned(),
        _ => None,
    }
}

/// `think` as given, else from `reasoning_effort`: gpt-oss models take the level itself,
/// others a switch that is on for low/medium/high (LiteLLM's mapping).
fn think(request: &ChatCompletionRequest) -> Option<Value> {
    if let Some(think) = request.extra.get("think").filter(|v| !v.is_null()) {
        return Some(think.clone());
    }
    let effort = request.extra.get("reasoning_effort")?.as_str()?;
    if request.model.starts_with("gpt-oss") {
        Some(Value::String(effort.to_owned()))
    } else {
        Some(Value::Bool(matches!(effort, "low" | "medium" | "high")))
    }
}

/// The `options` object: native options the client passed (an `options` object or known
/// option keys), then the mapped OpenAI parameters, which win.
fn options(request: &ChatCompletionRequest) -> Map<String, Value> {
    let mut options = match request.extra.get("options") {
        Some(Value::Object(native)) => native.clone(),
        _ => Map::new(),
    };
    for key in OPTION_KEYS {
        if let Some(value) = request.extra.get(*key).filter(|v| !v.is_null()) {
            options.insert((*key).to_owned(), value.clone());
        }
    }
    if let Some(max) = request.max_completion_tokens.or(request.max_tokens) {
        options.insert("num_predict".into(), json!(max));
    }
    if let Some(temperature) = request.temperature {
        options.insert("temperature".into(), json!(temperature));
    }
    if let Some(top_p) = request.top_p {
        options.insert("top_p".into(), json!(top_p));
    }
    if let Some(seed) = request.seed {
        options.insert("seed".into(), json!(seed));
    }
    if let Some(penalty) = request.frequency_penalty {
        options.insert("repeat_penalty".into(), json!(penalty));
    }
    if let Some(penalty) = request.presence_penalty {
        options.insert("presence_penalty".into(), json!(penalty));
    }
    match &request.stop {
        Some(Stop::One(stop)) => {
            options.insert("stop".into(), json!([stop]));
        }
        Some(Stop::Many(stops)) if !stops.is_empty() => {
            options.insert("stop".into(), json!(stops));
        }
        _ => {}
    }
    options
}

/// An OpenAI image URL as Ollama takes it: bare base64. Ollama cannot fetch URLs itself, so
/// an `http(s)://` image is the one downloaded for it ([`super::images`]).
fn image_base64(
    provider: &'static str,
    url: &str,
    fetched: &FetchedImages,
) -> Result<String, ProviderError> {
    if let Some(rest) = url.strip_prefix("data:") {
        return match rest.split_once(";base64,") {
            Some((_, data)) => Ok(data.to_owned()),
            None => Err(bad_request(
                provider,
                "an image data URL must be base64-encoded (data:<type>;base64,...)".to_owned(),
                "messages",
            )),
        };
    }
    if image_fetch::is_remote(url) {
        return match fetched.get(url) {
            Some(image) => Ok(image.base64.clone()),
            None => Err(bad_request(
                provider,
                format!("the image at {url} was not downloaded; Ollama takes images inline"),
                "messages",
            )),
        };
    }
    if url.contains("://") {
        return Err(bad_request(
            provider,
            format!("cannot use the image at {url}: only http and https URLs are fetched"),
            "messages",
        ));
    }
    // Already bare base64, as some clients send for Ollama.
    Ok(url.to_owned())
}

/// A message's text parts joined, and its images as base64.
fn text_and_images(
    provider: &'static str,
    content: Option<&MessageContent>,
    fetched: &FetchedImages,
) -> Result<(String, Vec<String>), ProviderError> {
    match content {
        None => Ok((String::new(), Vec::new())),
        Some(MessageContent::Text(text)) => Ok((text.clone(), Vec::new())),
        Some(MessageContent::Parts(parts)) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for part in parts {
                match part {
                    ContentPart::Text { text: piece, .. } => text.push_str(piece),
                    ContentPart::ImageUrl { image_url, .. } => {
                        images.push(image_base64(provider, &image_url.url, fetched)?);
                    }
                    ContentPart::Other(other) => {
                        return Err(bad_request(
                            provider,
                            format!(
                                "content part type {} is not supported by Ollama",
                                other.get("type").unwrap_or(&Value::Null)
                            ),
                            "messages",
                        ))
                    }
                }
            }
            Ok((text, images))
        }
    }
}

/// Tool-call arguments as the JSON object Ollama expects (OpenAI sends a JSON string).
fn parse_arguments(
    provider: &'static str,
    call_id: &str,
    arguments: &str,
) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(arguments).map_err(|error| {
        bad_request(
            provider,
            format!("the arguments of tool call {call_id:?} are not valid JSON: {error}"),
            "messages",
        )
    })
}

fn chat_messages(
    provider: &'static str,
    messages: &[ChatMessage],
    fetched: &FetchedImages,
) -> Result<Vec<Value>, ProviderError> {
    // Ollama names the tool a result answers (`tool_name`); OpenAI gives the call id.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let role = match message.role {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool | Role::Function => "tool",
        };
        let (content, images) = text_and_images(provider, message.content.as_ref(), fetched)?;
        let mut item = Map::new();
        item.insert("role".into(), Value::String(role.to_owned()));
        item.insert("content".into(), Value::String(content));
        if !images.is_empty() {
            item.insert(
                "images".into(),
                Value::Array(images.into_iter().map(Value::String).collect()),
            );
        }
        if let Some(thinking) = message
            .extra
            .get("reasoning_content")
            .and_then(Value::as_str)
        {
            item.insert("thinking".into(), Value::String(thinking.to_owned()));
        }
        let calls = message.tool_calls.as_deref().unwrap_or_default();
        if !calls.is_empty() {
            let mut converted = Vec::with_capacity(calls.len());
            for call in calls {
                call_names.insert(&call.id, &call.function.name);
                converted.push(json!({"function": {
                    "name": call.function.name,
                    "arguments": parse_arguments(provider, &call.id, &call.function.arguments)?,
                }}));
            }
            item.insert("tool_calls".into(), Value::Array(converted));
        }
        if role == "tool" {
            let name = message
                .tool_call_id
                .as_deref()
                .and_then(|id| call_names.get(id).copied())
                .or(message.name.as_deref());
            if let Some(name) = name {
                item.insert("tool_name".into(), Value::String(name.to_owned()));
            }
        }
        out.push(Value::Object(item));
    }
    Ok(out)
}

/// LiteLLM's prompt for `/api/generate`: consecutive user (and tool) messages merged under
/// `### User:`, system messages under `### System:`, assistant messages (with their tool calls
/// as pretty JSON) under `### Assistant:`, each block followed by a blank line. Images of user
/// turns are collected for the top-level `images`.
pub fn prompt_of(
    provider: &'static str,
    messages: &[ChatMessage],
    fetched: &FetchedImages,
) -> Result<(String, Vec<String>), ProviderError> {
    let mut prompt = String::new();
    let mut images = Vec::new();
    let mut index = 0;
    let block = |prompt: &mut String, title: &str, text: &str| {
        if !text.is_empty() {
            prompt.push_str("### ");
            prompt.push_str(title);
            prompt.push_str(":\n");
            prompt.push_str(text);
            prompt.push_str("\n\n");
        }
    };
    while index < messages.len() {
        let mut user = String::new();
        while let Some(message) = messages
            .get(index)
            .filter(|message| matches!(message.role, Role::User | Role::Tool | Role::Function))
        {
            let (text, found) = text_and_images(provider, message.content.as_ref(), fetched)?;
            user.push_str(&text);
            images.extend(found);
            index += 1;
        }
        block(&mut prompt, "User", &user);
        let mut system = String::new();
        while let Some(message) = messages
            .get(index)
            .filter(|message| matches!(message.role, Role::System | Role::Developer))
        {
            system.push_str(&message.text());
            index += 1;
        }
        block(&mut prompt, "System", &system);
        let mut assistant = String::new();
        while let Some(message) = messages
            .get(index)
            .filter(|message| message.role == Role::Assistant)
        {
            assistant.push_str(&message.text());
            let calls = message.tool_calls.as_deref().unwrap_or_default();
            if !calls.is_empty() {
                let mut listed = Vec::with_capacity(calls.len());
                for call in calls {
                    listed.push(json!({
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": parse_arguments(provider, &call.id, &call.function.arguments)?,
                        },
                    }));
                }
                let listed = serde_json::to_string_pretty(&listed).map_err(|error| {
                    bad_request(
                        provider,
                        format!("cannot encode tool calls: {error}"),
                        "messages",
                    )
                })?;
                assistant.push_str("Tool Calls: ");
                assistant.push_str(&listed);
            }
            index += 1;
        }
        block(&mut prompt, "Assistant", &assistant);
    }
    Ok((prompt, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> ChatCompletionRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn options_format_keep_alive_and_think() {
        let request = request(json!({
            "model": "llama3.1", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END",
            "frequency_penalty": 1.1, "top_k": 40, "num_ctx": 8192, "keep_alive": "5m",
            "response_format": {"type": "json_object"}, "reasoning_effort": "low"
        }));
        let body = to_chat_request("Ollama", &request).unwrap();
        assert_eq!(
            body["options"],
            json!({"top_k": 40, "num_ctx": 8192, "num_predict": 50, "temperature": 0.2,
                   "top_p": 0.9, "seed": 7, "repeat_penalty": 1.1, "stop": ["END"]})
        );
        assert_eq!(body["format"], "json");
        assert_eq!(body["keep_alive"], "5m");
        assert_eq!(body["think"], true);
        assert_eq!(body["stream"], false);
        assert!(unsupported_params(&request, Endpoint::Chat).is_empty());
    }

    #[test]
    fn generate_prompt_merges_turns_like_litellm() {
        let request = request(json!({"model": "llama3", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is "},
                {"type": "text", "text": "this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "look", "arguments": "{\"x\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
            {"role": "user", "content": "So?"}
        ]}));
        let body = to_generate_request("Ollama", &request).unwrap();
        assert_eq!(
            body["prompt"],
            "### System:\nBe brief.\n\n### User:\nWhat is this?\n\n### Assistant:\nTool Calls: \
             [\n  {\n    \"id\": \"c1\",\n    \"type\": \"function\",\n    \"function\": {\n      \
             \"name\": \"look\",\n      \"arguments\": {\n        \"x\": 1\n      }\n    }\n  }\n]\n\n\
             ### User:\na catSo?\n\n"
        );
        assert_eq!(body["images"], json!(["iVBOR"]));
        assert_eq!(
            unsupported_params(
                &self::request(
                    json!({"model": "m", "messages": [], "logprobs": true, "n": 2,
                    "tools": [{"type": "function", "function": {"name": "f"}}]})
                ),
                Endpoint::Generate
            ),
            vec!["logprobs", "n", "tools"]
        );
    }

    #[test]
    fn bad_images_and_arguments_are_client_errors() {
        let remote = request(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
        );
        assert!(matches!(
            to_chat_request("Ollama", &remote),
            Err(ProviderError::BadRequest { .. })
        ));
        let other_scheme = request(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}}]}]}),
        );
        assert!(to_chat_request("Ollama", &other_scheme).is_err());
        let broken = request(json!({"model": "m", "messages": [{"role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}]}]}));
        assert!(to_chat_request("Ollama", &broken).is_err());
        assert!(to_generate_request("Ollama", &broken).is_err());
    }

    #[test]
    fn downloaded_images_are_sent_inline_on_both_endpoints() {
        let request = request(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Two cats"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}}]}]}),
        );
        let fetched = crate::image_fetch::fetched_for_tests(&[(
            "https://example.com/cat.png",
            "image/png",
            "iVBOR",
        )]);
        let chat = to_chat_request_with_images("Ollama", &request, &fetched).unwrap();
        assert_eq!(chat["messages"][0]["images"], json!(["iVBOR", "R0lG"]));
        let generate = to_generate_request_with_images("Ollama", &request, &fetched).unwrap();
        assert_eq!(generate["images"], json!(["iVBOR", "R0lG"]));
    }
}
