//! OpenAI `chat.completion` request → Bedrock Converse request body (the same body for
//! `Converse` and `ConverseStream`; the model goes in the URL).

use serde::Serialize;
use serde_json::Value;
use switchyard_llm_types::chat::{ImageUrl, Stop};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, Tool, ToolChoice,
};

use crate::image_fetch::{self, FetchedImages, NO_IMAGES};
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

/// The Converse body, borrowing every string from the OpenAI request it was built from:
/// serializing it writes the provider's JSON directly, with no intermediate
/// `serde_json::Value` tree.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest<'a> {
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    /// Model-specific fields Converse does not model (e.g. `top_k`), as the API documents.
    #[serde(skip_serializing_if = "AdditionalFields::is_empty")]
    additional_model_request_fields: AdditionalFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guardrail_config: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance_config: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A `ContentBlock`: an object with exactly one of these keys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    Text(&'a str),
    Image {
        format: &'static str,
        source: ImageSource<'a>,
    },
    #[serde(rename_all = "camelCase")]
    ToolUse {
        tool_use_id: &'a str,
        name: &'a str,
        /// Parsed (not copied as text) so that invalid JSON is refused here and the body is
        /// compact whatever spacing the client used.
        input: Value,
    },
    #[serde(rename_all = "camelCase")]
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<Block<'a>>,
    },
}

#[derive(Debug, Serialize)]
struct ImageSource<'a> {
    bytes: &'a str,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_none()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolSpecEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpecEntry<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
}

#[derive(Debug, Serialize)]
struct InputSchema<'a> {
    /// The function's parameters; `None` is written as an empty object schema.
    #[serde(serialize_with = "schema_or_empty_object")]
    json: Option<&'a Value>,
}

fn schema_or_empty_object<S: serde::Serializer>(
    schema: &Option<&Value>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct EmptyObjectSchema {
        #[serde(rename = "type")]
        kind: &'static str,
        properties: Empty,
    }
    match schema {
        Some(schema) => schema.serialize(serializer),
        None => EmptyObjectSchema {
            kind: "object",
            properties: Empty {},
        }
        .serialize(serializer),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolChoiceOut<'a> {
    Auto(Empty),
    Any(Empty),
    Tool { name: &'a str },
}

/// `{}`
#[derive(Debug, Serialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct AdditionalFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a Value>,
}

impl AdditionalFields<'_> {
    fn is_empty(&self) -> bool {
        self.top_k.is_none() && self.thinking.is_none()
    }
}

/// Builds the Converse body for `request` (which must not hold remote image URLs; see
/// [`to_converse_request_with_images`]).
pub fn to_converse_request(
    request: &ChatCompletionRequest,
) -> Result<ConverseRequest<'_>, ProviderError> {
    to_converse_request_with_images(request, &NO_IMAGES)
}

/// [`to_converse_request`] with the images downloaded for the request's remote image URLs
/// (Converse takes image bytes only).
pub fn to_converse_request_with_images<'a>(
    request: &'a ChatCompletionRequest,
    fetched: &'a FetchedImages,
) -> Result<ConverseRequest<'a>, ProviderError> {
    let (system, messages) = convert_messages(&request.messages, fetched)?;
    let extra = |key: &str| request.extra.get(key).filter(|value| !value.is_null());
    let tool_config = match request.tools.as_deref() {
        Some(tools) if !tools.is_empty() => Some(ToolConfig {
            tools: tools.iter().map(convert_tool).collect::<Result<_, _>>()?,
            tool_choice: tool_choice(request)?,
        }),
        _ => None,
    };
    Ok(ConverseRequest {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens: request.max_completion_tokens.or(request.max_tokens),
            temperature: request.temperature,
            top_p: request.top_p,
            stop_sequences: match &request.stop {
                Some(Stop::One(stop)) => Some(std::slice::from_ref(stop)),
                Some(Stop::Many(stops)) if !stops.is_empty() => Some(stops.as_slice()),
                _ => None,
            },
        },
        tool_config,
        additional_model_request_fields: AdditionalFields {
            top_k: extra("top_k"),
            thinking: extra("thinking"),
        },
        guardrail_config: extra("guardrailConfig"),
        performance_config: extra("performanceConfig"),
    })
}

fn tool_choice(
    request: &ChatCompletionRequest,
) -> Result<Option<ToolChoiceOut<'_>>, ProviderError> {
    Ok(match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(ToolChoiceOut::Auto(Empty {})),
            "required" => Some(ToolChoiceOut::Any(Empty {})),
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
        Some(ToolChoice::Named(named)) => Some(ToolChoiceOut::Tool {
            name: &named.function.name,
        }),
    })
}

fn convert_tool(tool: &Tool) -> Result<ToolSpecEntry<'_>, ProviderError> {
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
    Ok(ToolSpecEntry {
        tool_spec: ToolSpec {
            name: &function.name,
            description: function.description.as_deref(),
            input_schema: InputSchema {
                json: function.parameters.as_ref(),
            },
        },
    })
}

/// The conversation being built: blocks are appended to the last message while the role
/// stays the same (Converse requires alternating roles; tool results are user content), so
/// a message that yields no block neither opens nor splits a turn.
struct Turns<'a> {
    messages: Vec<Message<'a>>,
    fetched: &'a FetchedImages,
}

impl<'a> Turns<'a> {
    fn blocks(&mut self, role: &'static str) -> &mut Vec<Block<'a>> {
        let same_role = self.messages.last().is_some_and(|turn| turn.role == role);
        if !same_role {
            self.messages.push(Message {
                role,
                content: Vec::new(),
            });
        }
        let last = self.messages.len() - 1;
        &mut self.messages[last].content
    }

    /// Appends `content`'s blocks to the turn of `role`, opening one only if there is a block.
    fn push_content(
        &mut self,
        role: &'static str,
        content: Option<&'a MessageContent>,
    ) -> Result<(), ProviderError> {
        let mut blocks = ContentBlocks::new(content, self.fetched);
        if let Some(first) = blocks.next().transpose()? {
            let turn = self.blocks(role);
            turn.push(first);
            for block in blocks {
                turn.push(block?);
            }
        }
        Ok(())
    }
}

/// Splits system prompts out and converts the conversation.
fn convert_messages<'a>(
    messages: &'a [ChatMessage],
    fetched: &'a FetchedImages,
) -> Result<(Vec<Block<'a>>, Vec<Message<'a>>), ProviderError> {
    let mut system = Vec::new();
    let mut turns = Turns {
        messages: Vec::new(),
        fetched,
    };
    for message in messages {
        match message.role {
            Role::System | Role::Developer => {
                for block in ContentBlocks::new(message.content.as_ref(), fetched) {
                    let block = block?;
                    if !matches!(block, Block::Text(_)) {
                        return Err(bad_request(
                            "system messages may only hold text for Bedrock".to_owned(),
                            "messages",
                        ));
                    }
                    system.push(block);
                }
            }
            Role::User => turns.push_content("user", message.content.as_ref())?,
            Role::Assistant => {
                turns.push_content("assistant", message.content.as_ref())?;
                for call in message.tool_calls.iter().flatten() {
                    let input = parse_arguments(&call.id, &call.function.arguments)?;
                    turns.blocks("assistant").push(Block::ToolUse {
                        tool_use_id: &call.id,
                        name: &call.function.name,
                        input,
                    });
                }
            }
            Role::Tool => {
                let result = tool_result(message, fetched)?;
                turns.blocks("user").push(result);
            }
            Role::Function => {
                return Err(bad_request(
                    "legacy `function` role messages are not supported for Bedrock; use tool \
                     messages"
                        .to_owned(),
                    "messages",
                ))
            }
        }
    }
    Ok((system, turns.messages))
}

fn parse_arguments(id: &str, arguments: &str) -> Result<Value, ProviderError> {
    let arguments = arguments.trim();
    if arguments.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(arguments).map_err(|error| {
        bad_request(
            format!("tool call {id:?} has arguments that are not valid JSON: {error}"),
            "messages",
        )
    })
}

fn tool_result<'a>(
    message: &'a ChatMessage,
    fetched: &'a FetchedImages,
) -> Result<Block<'a>, ProviderError> {
    let id = message
        .tool_call_id
        .as_deref()
        .ok_or_else(|| bad_request("a tool message has no tool_call_id".to_owned(), "messages"))?;
    let mut content =
        ContentBlocks::new(message.content.as_ref(), fetched).collect::<Result<Vec<_>, _>>()?;
    if content.is_empty() {
        // Converse rejects an empty tool result.
        content.push(Block::Text(""));
    }
    Ok(Block::ToolResult {
        tool_use_id: id,
        content,
    })
}

/// The blocks of one message's content, in order; empty text is skipped.
enum ContentBlocks<'a> {
    Done,
    One(&'a str),
    Many(std::slice::Iter<'a, ContentPart>, &'a FetchedImages),
}

impl<'a> ContentBlocks<'a> {
    fn new(content: Option<&'a MessageContent>, fetched: &'a FetchedImages) -> Self {
        match content {
            None => Self::Done,
            Some(MessageContent::Text(text)) if text.is_empty() => Self::Done,
            Some(MessageContent::Text(text)) => Self::One(text),
            Some(MessageContent::Parts(parts)) => Self::Many(parts.iter(), fetched),
        }
    }
}

impl<'a> Iterator for ContentBlocks<'a> {
    type Item = Result<Block<'a>, ProviderError>;

    fn next(&mut self) -> Option<Self::Item> {
        match std::mem::replace(self, Self::Done) {
            Self::Done => None,
            Self::One(text) => Some(Ok(Block::Text(text))),
            Self::Many(mut parts, fetched) => {
                let item = loop {
                    match parts.next()? {
                        ContentPart::Text { text, .. } if text.is_empty() => {}
                        ContentPart::Text { text, .. } => break Ok(Block::Text(text)),
                        ContentPart::ImageUrl { image_url, .. } => {
                            break image_block(image_url, fetched)
                        }
                        ContentPart::Other(value) => {
                            break Err(bad_request(
                                format!(
                                    "content part type {} is not supported for Bedrock",
                                    value.get("type").unwrap_or(&Value::Null)
                                ),
                                "messages",
                            ))
                        }
                    }
                };
                *self = Self::Many(parts, fetched);
                Some(item)
            }
        }
    }
}

/// Converse takes image bytes only (base64 in JSON): `data:` URLs are converted, and
/// `http(s)://` URLs are the images downloaded for them ([`crate::image_fetch`]).
fn image_block<'a>(
    image: &'a ImageUrl,
    fetched: &'a FetchedImages,
) -> Result<Block<'a>, ProviderError> {
    let url = image.url.as_str();
    if image_fetch::is_remote(url) {
        let downloaded = fetched.get(url).ok_or_else(|| {
            bad_request(
                format!("the image at {url} was not downloaded; Bedrock takes image bytes only"),
                "messages",
            )
        })?;
        let format = image_format(&downloaded.media_type).map_err(|why| {
            bad_request(format!("cannot use the image at {url}: {why}"), "messages")
        })?;
        return Ok(Block::Image {
            format,
            source: ImageSource {
                bytes: &downloaded.base64,
            },
        });
    }
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        bad_request(
            "Bedrock accepts images as data URLs (data:image/png;base64,...) or http(s) URLs \
             only"
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
    let format = image_format(media_type).map_err(|why| bad_request(why, "messages"))?;
    Ok(Block::Image {
        format,
        source: ImageSource { bytes: data },
    })
}

/// The Converse image `format` of a media type (the four Bedrock takes).
fn image_format(media_type: &str) -> Result<&'static str, String> {
    match media_type {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        other => Err(format!(
            "image type {other:?} is not supported by Bedrock (png, jpeg, gif, webp)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        serde_json::to_value(to_converse_request(&request).unwrap()).unwrap()
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
    fn images_are_bytes_and_undownloaded_or_unsupported_ones_are_refused() {
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
            "ftp://example.com/cat.png",
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
    fn downloaded_images_are_bytes_in_the_format_of_their_media_type() {
        use crate::image_fetch::fetched_for_tests;
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat"}},
                    {"type": "text", "text": "and"},
                    {"type": "image_url", "image_url": {"url": "HTTP://example.com/dog.gif"}}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat"}}]}]
        }))
        .unwrap();
        let fetched = fetched_for_tests(&[
            ("https://example.com/cat", "image/webp", "UklG"),
            ("HTTP://example.com/dog.gif", "image/gif", "R0lG"),
        ]);
        let body =
            serde_json::to_value(to_converse_request_with_images(&request, &fetched).unwrap())
                .unwrap();
        assert_eq!(
            body["messages"][0]["content"],
            json!([{"image": {"format": "webp", "source": {"bytes": "UklG"}}}, {"text": "and"},
                   {"image": {"format": "gif", "source": {"bytes": "R0lG"}}}])
        );
        assert_eq!(
            body["messages"][2]["content"][0]["toolResult"]["content"],
            json!([{"image": {"format": "webp", "source": {"bytes": "UklG"}}}])
        );

        let bitmap = fetched_for_tests(&[
            ("https://example.com/cat", "image/bmp", "Qk0="),
            ("HTTP://example.com/dog.gif", "image/gif", "R0lG"),
        ]);
        let error = to_converse_request_with_images(&request, &bitmap).unwrap_err();
        assert!(
            matches!(&error, ProviderError::BadRequest { message, param: Some(param), .. }
                if message.contains("https://example.com/cat") && message.contains("image/bmp")
                    && param == "messages"),
            "{error:?}"
        );
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
