//! OpenAI chat request → Cohere v2 `POST /v2/chat` body.
//!
//! Messages keep their roles (`system`, `user`, `assistant`, `tool`); an assistant's tool calls
//! keep OpenAI's shape, and its text beside them becomes the `tool_plan` Cohere expects there.
//! Sampling parameters are renamed (`top_p` → `p`, `top_k` → `k`, `stop` →
//! `stop_sequences`); `tool_choice` has only `REQUIRED` and `NONE` (a named choice becomes
//! `REQUIRED` over that one tool); `response_format` becomes `json_object` with an optional
//! `json_schema`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;
use switchyard_llm_types::chat::Stop;
use switchyard_llm_types::{
    ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Role, ToolChoice,
};

use crate::ProviderError;

/// OpenAI parameters Cohere v2 has no counterpart for.
pub fn unsupported_params(request: &ChatCompletionRequest) -> Vec<String> {
    let mut unsupported = Vec::new();
    if request.logit_bias.is_some() {
        unsupported.push("logit_bias".to_owned());
    }
    if request.n.is_some_and(|n| n > 1) {
        unsupported.push("n".to_owned());
    }
    if request.top_logprobs.is_some() {
        unsupported.push("top_logprobs".to_owned());
    }
    if let Some(format) = &request.response_format {
        if !matches!(format.kind.as_str(), "text" | "json_object" | "json_schema") {
            unsupported.push("response_format".to_owned());
        }
    }
    unsupported
}

fn bad(provider: &'static str, message: String, param: &str) -> ProviderError {
    ProviderError::BadRequest {
        provider,
        message,
        param: Some(param.to_owned()),
    }
}

/// The `/v2/chat` body, borrowing every string from the OpenAI request it was built from:
/// serializing it writes Cohere's JSON directly, with no intermediate `serde_json::Value`
/// tree.
#[derive(Debug, Serialize)]
pub struct CohereChatRequest<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<CohereTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    /// OpenAI has no `top_k`; a client sends it as an extra field.
    #[serde(skip_serializing_if = "Option::is_none")]
    k: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<StopSequences<'a>>,
    // Cohere-only fields a client may send in the body; they reach the upstream unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_mode: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    documents: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    citation_options: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict_tools: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum Message<'a> {
    System {
        content: Cow<'a, str>,
    },
    User {
        content: UserContent<'a>,
    },
    /// Its text as `content`; or the tool calls it made, with the text written before them as
    /// the `tool_plan` Cohere expects there.
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_plan: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Vec<CohereToolCall<'a>>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: Cow<'a, str>,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(&'a str),
    Parts(Vec<UserPart<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum UserPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageRef<'a> },
}

#[derive(Debug, Serialize)]
struct ImageRef<'a> {
    url: &'a str,
}

#[derive(Debug, Serialize)]
struct CohereToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CallFunction<'a>,
}

#[derive(Debug, Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Debug, Serialize)]
struct CohereTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Debug, Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: Parameters<'a>,
}

/// A tool's parameter schema, or an empty object schema for a tool that declares none.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Parameters<'a> {
    Given(&'a Value),
    None {
        #[serde(rename = "type")]
        kind: &'static str,
        properties: EmptyObject,
    },
}

#[derive(Debug, Serialize)]
struct EmptyObject {}

#[derive(Debug, Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum StopSequences<'a> {
    One([&'a str; 1]),
    Many(&'a [String]),
}

/// Builds the v2 chat body for `request`; `stream` sets `"stream": true`.
pub fn to_cohere_request<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
    stream: bool,
) -> Result<CohereChatRequest<'a>, ProviderError> {
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(index, message)| convert_message(provider, index, message))
        .collect::<Result<Vec<_>, _>>()?;
    let (tools, tool_choice) = tools_and_choice(provider, request)?;
    let response_format =
        request
            .response_format
            .as_ref()
            .and_then(|format| match format.kind.as_str() {
                "json_object" => Some(ResponseFormat {
                    kind: "json_object",
                    json_schema: None,
                }),
                "json_schema" => Some(ResponseFormat {
                    kind: "json_object",
                    json_schema: format
                        .json_schema
                        .as_ref()
                        .and_then(|spec| spec.get("schema")),
                }),
                _ => None,
            });
    let stop_sequences = match &request.stop {
        Some(Stop::One(one)) => Some(StopSequences::One([one])),
        Some(Stop::Many(many)) if !many.is_empty() => Some(StopSequences::Many(many)),
        _ => None,
    };
    let extra = |name: &str| request.extra.get(name).filter(|value| !value.is_null());
    Ok(CohereChatRequest {
        model: &request.model,
        messages,
        stream,
        tools,
        tool_choice,
        response_format,
        // A non-finite number has no JSON form; it is left out, as a null would be.
        temperature: request.temperature.filter(|t| t.is_finite()),
        p: request.top_p.filter(|p| p.is_finite()),
        k: extra("top_k"),
        max_tokens: request.max_tokens.or(request.max_completion_tokens),
        seed: request.seed,
        frequency_penalty: request.frequency_penalty.filter(|f| f.is_finite()),
        presence_penalty: request.presence_penalty.filter(|p| p.is_finite()),
        logprobs: request.logprobs,
        stop_sequences,
        safety_mode: extra("safety_mode"),
        documents: extra("documents"),
        citation_options: extra("citation_options"),
        strict_tools: extra("strict_tools"),
        thinking: extra("thinking"),
        priority: extra("priority"),
    })
}

/// The text of a message, borrowed when it is a single string.
fn message_text(message: &ChatMessage) -> Cow<'_, str> {
    match &message.content {
        Some(MessageContent::Text(text)) => Cow::Borrowed(text),
        _ => Cow::Owned(message.text()),
    }
}

fn convert_message<'a>(
    provider: &'static str,
    index: usize,
    message: &'a ChatMessage,
) -> Result<Message<'a>, ProviderError> {
    let param = || format!("messages[{index}]");
    match message.role {
        Role::System | Role::Developer => Ok(Message::System {
            content: message_text(message),
        }),
        Role::User => Ok(Message::User {
            content: user_content(provider, &param(), message.content.as_ref())?,
        }),
        Role::Assistant => {
            let text = message_text(message);
            let calls = message
                .tool_calls
                .as_ref()
                .filter(|calls| !calls.is_empty());
            Ok(match calls {
                Some(calls) => Message::Assistant {
                    content: None,
                    tool_plan: Some(text).filter(|plan| !plan.is_empty()),
                    tool_calls: Some(
                        calls
                            .iter()
                            .map(|call| CohereToolCall {
                                id: &call.id,
                                kind: "function",
                                function: CallFunction {
                                    name: &call.function.name,
                                    arguments: &call.function.arguments,
                                },
                            })
                            .collect(),
                    ),
                },
                None => Message::Assistant {
                    content: Some(text),
                    tool_plan: None,
                    tool_calls: None,
                },
            })
        }
        Role::Tool => {
            let id = message
                .tool_call_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    let param = param();
                    bad(
                        provider,
                        format!("{param}: a tool message needs the tool_call_id it answers"),
                        &format!("{param}.tool_call_id"),
                    )
                })?;
            Ok(Message::Tool {
                tool_call_id: id,
                content: message_text(message),
            })
        }
        Role::Function => {
            let param = param();
            Err(bad(
                provider,
                format!(
                    "{param}: role 'function' is not supported by Cohere; send tool calls and \
                     role 'tool' results"
                ),
                &param,
            ))
        }
    }
}

/// A user message's content: a string, or text and image parts.
fn user_content<'a>(
    provider: &'static str,
    param: &str,
    content: Option<&'a MessageContent>,
) -> Result<UserContent<'a>, ProviderError> {
    match content {
        None => Ok(UserContent::Text("")),
        Some(MessageContent::Text(text)) => Ok(UserContent::Text(text)),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .map(|part| match part {
                ContentPart::Text { text, .. } => Ok(UserPart::Text { text }),
                ContentPart::ImageUrl { image_url, .. } => Ok(UserPart::ImageUrl {
                    image_url: ImageRef {
                        url: &image_url.url,
                    },
                }),
                ContentPart::Other(other) => Err(bad(
                    provider,
                    format!(
                        "{param}: content part of type {} is not supported by Cohere",
                        other.get("type").unwrap_or(&Value::Null)
                    ),
                    &format!("{param}.content"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(UserContent::Parts),
    }
}

/// `tools` in Cohere's (OpenAI-like) shape, and the `tool_choice` mode.
type ToolsAndChoice<'a> = (Option<Vec<CohereTool<'a>>>, Option<&'static str>);

/// `tools` in Cohere's (OpenAI-like) shape and the `tool_choice` mode, if any.
fn tools_and_choice<'a>(
    provider: &'static str,
    request: &'a ChatCompletionRequest,
) -> Result<ToolsAndChoice<'a>, ProviderError> {
    let Some(tools) = request.tools.as_ref().filter(|tools| !tools.is_empty()) else {
        return Ok((None, None));
    };
    let mut only: Option<&str> = None;
    let choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => None,
            "required" => Some("REQUIRED"),
            "none" => Some("NONE"),
            other => {
                return Err(bad(
                    provider,
                    format!("tool_choice {other:?} is not one of auto, none, required"),
                    "tool_choice",
                ))
            }
        },
        Some(ToolChoice::Named(named)) => {
            // Cohere cannot name a tool; requiring a call among only that tool means the same.
            only = Some(named.function.name.as_str());
            Some("REQUIRED")
        }
    };
    let mut out = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        let Some(function) = tool.function.as_ref().filter(|_| tool.kind == "function") else {
            return Err(bad(
                provider,
                format!("tools[{index}]: only function tools are supported by Cohere"),
                &format!("tools[{index}]"),
            ));
        };
        if only.is_some_and(|name| name != function.name) {
            continue;
        }
        out.push(CohereTool {
            kind: "function",
            function: ToolFunction {
                name: &function.name,
                description: function.description.as_deref(),
                parameters: function.parameters.as_ref().map_or(
                    Parameters::None {
                        kind: "object",
                        properties: EmptyObject {},
                    },
                    Parameters::Given,
                ),
            },
        });
    }
    if let (Some(name), true) = (only, out.is_empty()) {
        return Err(bad(
            provider,
            format!("tool_choice names {name:?}, which is not among the tools"),
            "tool_choice",
        ));
    }
    Ok((Some(out), choice))
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn request(body: Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn named_tool_choice_requires_that_tool_only() {
        let request = request(json!({
            "model": "command-r",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"type": "function", "function": {"name": "a"}},
                {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "b"}}
        }));
        let body =
            serde_json::to_value(to_cohere_request("Cohere", &request, false).unwrap()).unwrap();
        assert_eq!(body["tool_choice"], "REQUIRED");
        assert_eq!(body["tools"].as_array().unwrap().len(), 1);
        assert_eq!(body["tools"][0]["function"]["name"], "b");
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for messages in [
            json!([{"role": "tool", "content": "x"}]),
            json!([{"role": "function", "name": "f", "content": "x"}]),
            json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
        ] {
            let request = request(json!({"model": "m", "messages": messages}));
            let result = to_cohere_request("Cohere", &request, false);
            assert!(matches!(result, Err(ProviderError::BadRequest { .. })));
        }
    }
}
