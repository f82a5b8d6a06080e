//! OpenAI `chat.completion` request → Gemini `generateContent` request body (the same body for
//! Google AI Studio and Vertex AI).

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;
use switchyard_llm_types::chat::{ImageUrl, Stop};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, Extra, MessageContent, Role, Tool, ToolChoice,
};

use crate::image_fetch::{self, FetchedImages, NO_IMAGES};
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

/// The `generateContent` body, borrowing every string from the OpenAI request it was built
/// from: serializing it writes the provider's JSON directly, with no intermediate
/// `serde_json::Value` tree. Field order is the order the API reference documents.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<GeminiTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig<'a>,
    /// Gemini-only fields a client may send as extra body fields, in either spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_settings: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content: Option<&'a Value>,
}

/// One turn of `contents`.
#[derive(Debug, Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<Part<'a>>,
}

/// A `Part`: an object with exactly one of these keys (serde's external tagging is exactly
/// that shape).
#[derive(Debug, Serialize)]
enum Part<'a> {
    #[serde(rename = "text")]
    Text(&'a str),
    #[serde(rename = "inlineData")]
    InlineData {
        #[serde(rename = "mimeType")]
        mime_type: &'a str,
        data: &'a str,
    },
    #[serde(rename = "fileData")]
    FileData {
        #[serde(rename = "mimeType")]
        mime_type: &'a str,
        #[serde(rename = "fileUri")]
        file_uri: &'a str,
    },
    #[serde(rename = "functionCall")]
    FunctionCall {
        name: &'a str,
        /// Parsed (not copied as text) so that invalid JSON is refused here and the body is
        /// compact whatever spacing the client used.
        args: Value,
    },
    #[serde(rename = "functionResponse")]
    FunctionResponse {
        name: &'a str,
        response: FunctionResult<'a>,
    },
}

/// A tool result: Gemini requires an object.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum FunctionResult<'a> {
    /// The tool answered a JSON object: sent as the response itself.
    Object(Value),
    /// Anything else: `{"content": <text>}`.
    Text { content: Cow<'a, str> },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum GeminiTool<'a> {
    Functions {
        #[serde(rename = "functionDeclarations")]
        function_declarations: Vec<FunctionDeclaration<'a>>,
    },
    /// A Gemini-native tool (`googleSearch`, `codeExecution`, ...), sent as written.
    Native(&'a Extra),
}

#[derive(Debug, Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<CleanSchema<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<CleanSchema<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig<'_> {
    fn is_empty(&self) -> bool {
        let Self {
            temperature,
            top_p,
            top_k,
            max_output_tokens,
            stop_sequences,
            candidate_count,
            presence_penalty,
            frequency_penalty,
            seed,
            response_logprobs,
            logprobs,
            response_mime_type,
            response_schema,
            thinking_config,
        } = self;
        temperature.is_none()
            && top_p.is_none()
            && top_k.is_none()
            && max_output_tokens.is_none()
            && stop_sequences.is_none()
            && candidate_count.is_none()
            && presence_penalty.is_none()
            && frequency_penalty.is_none()
            && seed.is_none()
            && response_logprobs.is_none()
            && logprobs.is_none()
            && response_mime_type.is_none()
            && response_schema.is_none()
            && thinking_config.is_none()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

/// Builds the `generateContent` body for `request`. `provider` names errors.
pub fn to_gemini_request<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
) -> Result<GenerateContentRequest<'a>, ProviderError> {
    to_gemini_request_with_images(provider, request, &NO_IMAGES)
}

/// [`to_gemini_request`] with the images downloaded for some of the request's remote image
/// URLs (see [`ai_studio_downloads`] and [`vertex_downloads`]): those are sent inline.
pub fn to_gemini_request_with_images<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
    fetched: &'a FetchedImages,
) -> Result<GenerateContentRequest<'a>, ProviderError> {
    let (system_instruction, contents) = convert_messages(provider, &request.messages, fetched)?;
    let tools = match request.tools.as_deref() {
        Some(tools) => convert_tools(provider, tools)?,
        None => Vec::new(),
    };
    // A client may spell these either way; the snake_case spelling wins when both are given.
    let extra = |camel: &str, snake: &str| {
        let present = |key: &str| request.extra.get(key).filter(|value| !value.is_null());
        present(snake).or_else(|| present(camel))
    };
    Ok(GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config: tool_config(provider, request)?,
        generation_config: generation_config(request),
        safety_settings: extra("safetySettings", "safety_settings"),
        cached_content: extra("cachedContent", "cached_content"),
    })
}

fn generation_config(request: &ChatCompletionRequest) -> GenerationConfig<'_> {
    let (response_mime_type, response_schema) = match request.response_format.as_ref() {
        Some(format) if format.kind == "json_object" => (Some("application/json"), None),
        Some(format) if format.kind == "json_schema" => (
            Some("application/json"),
            format
                .json_schema
                .as_ref()
                .and_then(|schema| schema.get("schema"))
                .map(CleanSchema),
        ),
        _ => (None, None),
    };
    GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.extra.get("top_k").filter(|v| !v.is_null()),
        max_output_tokens: request.max_completion_tokens.or(request.max_tokens),
        stop_sequences: match &request.stop {
            Some(Stop::One(stop)) => Some(std::slice::from_ref(stop)),
            Some(Stop::Many(stops)) if !stops.is_empty() => Some(stops.as_slice()),
            _ => None,
        },
        candidate_count: request.n,
        presence_penalty: request.presence_penalty,
        frequency_penalty: request.frequency_penalty,
        seed: request.seed,
        response_logprobs: (request.logprobs == Some(true)).then_some(true),
        logprobs: request.top_logprobs,
        response_mime_type,
        response_schema,
        thinking_config: thinking_budget(request).map(|budget| ThinkingConfig {
            thinking_budget: budget,
            include_thoughts: (budget > 0).then_some(true),
        }),
    }
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

/// A JSON schema as Gemini accepts it, written while serializing: Gemini's schema is an
/// OpenAPI subset, so the JSON-Schema keywords it rejects are left out.
#[derive(Debug, Clone, Copy)]
pub struct CleanSchema<'a>(pub &'a Value);

impl Serialize for CleanSchema<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(None)?;
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("additionalProperties" | "$schema" | "strict", _) => {}
                        // `properties` maps names to schemas; a property may be called anything.
                        ("properties", Value::Object(properties)) => {
                            out.serialize_entry(key, &CleanProperties(properties))?
                        }
                        ("properties", other) => out.serialize_entry(key, other)?,
                        _ => out.serialize_entry(key, &CleanSchema(value))?,
                    }
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(CleanSchema)),
            other => other.serialize(serializer),
        }
    }
}

/// A schema's `properties`: names kept as they are, each schema cleaned.
struct CleanProperties<'a>(&'a Extra);

impl Serialize for CleanProperties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, sub)| (name, CleanSchema(sub))))
    }
}

fn convert_tools<'a>(
    provider: &'static str,
    tools: &'a [Tool],
) -> Result<Vec<GeminiTool<'a>>, ProviderError> {
    let mut declarations = Vec::with_capacity(tools.len());
    let mut out = Vec::with_capacity(1);
    for tool in tools {
        if tool.kind != "function" {
            out.push(GeminiTool::Native(&tool.extra));
            continue;
        }
        let function = tool.function.as_ref().ok_or_else(|| {
            bad_request(
                provider,
                "a function tool has no `function`".to_owned(),
                "tools",
            )
        })?;
        // Gemini rejects an object schema with no properties: a function without arguments
        // is declared without `parameters`.
        let parameters = function.parameters.as_ref().filter(|parameters| {
            parameters
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|properties| !properties.is_empty())
        });
        declarations.push(FunctionDeclaration {
            name: &function.name,
            description: function.description.as_deref(),
            parameters: parameters.map(CleanSchema),
        });
    }
    if !declarations.is_empty() {
        out.insert(
            0,
            GeminiTool::Functions {
                function_declarations: declarations,
            },
        );
    }
    Ok(out)
}

fn tool_config<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
) -> Result<Option<ToolConfig<'a>>, ProviderError> {
    let (mode, allowed_function_names) = match &request.tool_choice {
        None => return Ok(None),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => ("AUTO", None),
            "none" => ("NONE", None),
            "required" => ("ANY", None),
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
        Some(ToolChoice::Named(named)) => ("ANY", Some([named.function.name.as_str()])),
    };
    Ok(Some(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names,
        },
    }))
}

/// `contents` being built: parts are appended to the last turn while the role stays the
/// same (Gemini wants alternating turns; tool results join the user turn that follows the
/// model's calls), so a message that yields no part neither opens nor splits a turn.
#[derive(Default)]
struct Turns<'a>(Vec<Content<'a>>);

impl<'a> Turns<'a> {
    fn parts(&mut self, role: &'static str) -> &mut Vec<Part<'a>> {
        let same_role = self.0.last().is_some_and(|turn| turn.role == role);
        if !same_role {
            self.0.push(Content {
                role,
                parts: Vec::new(),
            });
        }
        let last = self.0.len() - 1;
        &mut self.0[last].parts
    }

    /// Appends `content`'s parts to the turn of `role`, opening one only if there is a part.
    fn push_content(
        &mut self,
        provider: &'static str,
        role: &'static str,
        content: Option<&'a MessageContent>,
        fetched: &'a FetchedImages,
    ) -> Result<(), ProviderError> {
        let mut parts = ContentParts::new(provider, content, fetched);
        if let Some(first) = parts.next().transpose()? {
            let turn = self.parts(role);
            turn.push(first);
            for part in parts {
                turn.push(part?);
            }
        }
        Ok(())
    }
}

/// Splits system prompts out and converts the conversation into `contents`.
fn convert_messages<'a>(
    provider: &'static str,
    messages: &'a [ChatMessage],
    fetched: &'a FetchedImages,
) -> Result<(Option<SystemInstruction<'a>>, Vec<Content<'a>>), ProviderError> {
    let mut system_parts = Vec::new();
    let mut turns = Turns::default();
    // Gemini answers a function call by name, OpenAI by call id: remember which is which
    // (a short list searched from the end: the latest call with an id wins).
    let mut call_names: Vec<(&str, &str)> = Vec::new();
    for message in messages {
        match message.role {
            Role::System | Role::Developer => {
                for part in ContentParts::new(provider, message.content.as_ref(), fetched) {
                    system_parts.push(part?);
                }
            }
            Role::User => {
                turns.push_content(provider, "user", message.content.as_ref(), fetched)?
            }
            Role::Assistant => {
                turns.push_content(provider, "model", message.content.as_ref(), fetched)?;
                for call in message.tool_calls.iter().flatten() {
                    call_names.push((&call.id, &call.function.name));
                    let args = parse_arguments(provider, &call.id, &call.function.arguments)?;
                    turns.parts("model").push(Part::FunctionCall {
                        name: &call.function.name,
                        args,
                    });
                }
            }
            Role::Tool | Role::Function => {
                let name = message
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| {
                        call_names
                            .iter()
                            .rev()
                            .find(|(call_id, _)| *call_id == id)
                            .map(|(_, name)| *name)
                    })
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
                turns.parts("user").push(function_response(name, message));
            }
        }
    }
    let system = (!system_parts.is_empty()).then_some(SystemInstruction {
        parts: system_parts,
    });
    Ok((system, turns.0))
}

fn parse_arguments(
    provider: &'static str,
    id: &str,
    arguments: &str,
) -> Result<Value, ProviderError> {
    let arguments = arguments.trim();
    if arguments.is_empty() {
        return Ok(Value::Object(Extra::new()));
    }
    serde_json::from_str(arguments).map_err(|error| {
        bad_request(
            provider,
            format!("tool call {id:?} has arguments that are not valid JSON: {error}"),
            "messages",
        )
    })
}

/// The text of a message, borrowed when it is a single string.
fn message_text(message: &ChatMessage) -> Cow<'_, str> {
    match &message.content {
        Some(MessageContent::Text(text)) => Cow::Borrowed(text),
        _ => Cow::Owned(message.text()),
    }
}

/// A tool result: a JSON object is sent as the response itself, anything else as
/// `{"content": <text>}` (Gemini requires an object).
fn function_response<'a>(name: &'a str, message: &'a ChatMessage) -> Part<'a> {
    let text = message_text(message);
    // Only text that starts like an object can be one: skip the parse for plain text.
    let object = text
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(&text).ok())
        .flatten()
        .filter(Value::is_object);
    let response = match object {
        Some(object) => FunctionResult::Object(object),
        None => FunctionResult::Text { content: text },
    };
    Part::FunctionResponse { name, response }
}

/// The parts of one message's content, in order; empty text is skipped.
enum ContentParts<'a> {
    Done,
    One(&'a str),
    Many(
        &'static str,
        std::slice::Iter<'a, ContentPart>,
        &'a FetchedImages,
    ),
}

impl<'a> ContentParts<'a> {
    fn new(
        provider: &'static str,
        content: Option<&'a MessageContent>,
        fetched: &'a FetchedImages,
    ) -> Self {
        match content {
            None => Self::Done,
            Some(MessageContent::Text(text)) if text.is_empty() => Self::Done,
            Some(MessageContent::Text(text)) => Self::One(text),
            Some(MessageContent::Parts(parts)) => Self::Many(provider, parts.iter(), fetched),
        }
    }
}

impl<'a> Iterator for ContentParts<'a> {
    type Item = Result<Part<'a>, ProviderError>;

    fn next(&mut self) -> Option<Self::Item> {
        match std::mem::replace(self, Self::Done) {
            Self::Done => None,
            Self::One(text) => Some(Ok(Part::Text(text))),
            Self::Many(provider, mut parts, fetched) => {
                let item = loop {
                    match parts.next()? {
                        ContentPart::Text { text, .. } if text.is_empty() => {}
                        ContentPart::Text { text, .. } => break Ok(Part::Text(text)),
                        ContentPart::ImageUrl { image_url, .. } => {
                            break image_part(provider, image_url, fetched)
                        }
                        ContentPart::Other(value) => {
                            break Err(bad_request(
                                provider,
                                format!(
                                    "content part type {} is not supported for Gemini",
                                    value.get("type").unwrap_or(&Value::Null)
                                ),
                                "messages",
                            ))
                        }
                    }
                };
                *self = Self::Many(provider, parts, fetched);
                Some(item)
            }
        }
    }
}

/// `data:` URLs and downloaded images are sent inline; other URLs (`https://`, `gs://`) as
/// file references with the media type from `format` or the file extension.
fn image_part<'a>(
    provider: &'static str,
    image: &'a ImageUrl,
    fetched: &'a FetchedImages,
) -> Result<Part<'a>, ProviderError> {
    let format = image.extra.get("format").and_then(Value::as_str);
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
        return Ok(Part::InlineData { mime_type, data });
    }
    if let Some(downloaded) = fetched.get(&image.url) {
        return Ok(Part::InlineData {
            mime_type: format.unwrap_or(&downloaded.media_type),
            data: &downloaded.base64,
        });
    }
    let mime_type = format.unwrap_or_else(|| mime_from_extension(&image.url));
    Ok(Part::FileData {
        mime_type,
        file_uri: &image.url,
    })
}

/// Extensions by which LiteLLM types a Vertex AI file URI (an `https://` URL without one of
/// them, and without `format`, is downloaded instead).
const VERTEX_FILE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "mp4", "mov", "mpeg", "mpg", "avi", "wmv", "mpegps", "flv",
    "mp3", "wav", "pdf", "txt",
];

/// Whether Google AI Studio gets `image` downloaded and inline, as LiteLLM sends it: every
/// `http(s)://` URL but the file references AI Studio reads itself (Files API URIs,
/// YouTube videos).
pub fn ai_studio_downloads(image: &ImageUrl) -> bool {
    image_fetch::is_remote(&image.url) && !ai_studio_reads_itself(&image.url)
}

/// Whether Vertex AI gets `image` downloaded and inline, as LiteLLM sends it: `http://`
/// URLs, and `https://` URLs whose media type neither `format` nor the extension gives (the
/// rest, and `gs://` URIs, are file references Vertex reads itself).
pub fn vertex_downloads(image: &ImageUrl) -> bool {
    if !image_fetch::is_remote(&image.url) {
        return false;
    }
    let secure = image
        .url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    let typed = image.extra.get("format").is_some_and(Value::is_string)
        || VERTEX_FILE_EXTENSIONS.contains(&extension(&image.url).as_str());
    !(secure && typed)
}

/// Files API URIs and YouTube URLs, which AI Studio accepts as `fileData`.
fn ai_studio_reads_itself(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let path = &after_scheme[authority.len()..];
    match host.as_str() {
        "generativelanguage.googleapis.com" => path.contains("/files/"),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "youtu.be" => true,
        _ => false,
    }
}

/// The lowercase extension of a URL's path (query and fragment left out).
fn extension(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default()
}

fn mime_from_extension(url: &str) -> &'static str {
    match extension(url).as_str() {
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
    use serde_json::json;

    fn convert(request: Value) -> Value {
        let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
        serde_json::to_value(to_gemini_request("Gemini", &request).unwrap()).unwrap()
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
    fn downloaded_images_are_inline_with_their_media_type_unless_format_says_otherwise() {
        use crate::image_fetch::fetched_for_tests;
        let request: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/dog", "format": "image/heic"}},
                {"type": "image_url", "image_url": {"url": "gs://bucket/bird.png"}}
            ]}]
        }))
        .unwrap();
        let fetched = fetched_for_tests(&[
            ("https://example.com/cat", "image/webp", "UklG"),
            ("https://example.com/dog", "image/jpeg", "/9j/"),
        ]);
        let body = serde_json::to_value(
            to_gemini_request_with_images("Gemini", &request, &fetched).unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"inlineData": {"mimeType": "image/webp", "data": "UklG"}},
                {"inlineData": {"mimeType": "image/heic", "data": "/9j/"}},
                {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/bird.png"}}
            ])
        );
    }

    #[test]
    fn ai_studio_downloads_web_urls_and_vertex_only_untyped_or_plain_http_ones() {
        let image = |url: &str, format: Option<&str>| -> ImageUrl {
            serde_json::from_value(json!({"url": url, "format": format})).unwrap()
        };
        let cases = [
            // (url, format, AI Studio downloads, Vertex downloads)
            ("https://example.com/cat.png", None, true, false),
            ("HTTPS://example.com/cat.JPG?size=2", None, true, false),
            ("https://example.com/cat.gif", None, true, true),
            ("https://example.com/cat", None, true, true),
            ("https://example.com/cat", Some("image/png"), true, false),
            ("http://example.com/cat.png", None, true, true),
            ("gs://bucket/cat.png", None, false, false),
            ("data:image/png;base64,AAAA", None, false, false),
            (
                "https://generativelanguage.googleapis.com/v1beta/files/abc",
                None,
                false,
                true,
            ),
            ("https://www.youtube.com/watch?v=abc", None, false, true),
            (
                "https://example.com/files/youtube.com/cat.png",
                None,
                true,
                false,
            ),
        ];
        for (url, format, ai_studio, vertex) in cases {
            assert_eq!(ai_studio_downloads(&image(url, format)), ai_studio, "{url}");
            assert_eq!(vertex_downloads(&image(url, format)), vertex, "{url}");
        }
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
