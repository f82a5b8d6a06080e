//! Cohere v2 chat response → OpenAI `chat.completion`.
//!
//! `message.content` text parts join into `content` (`thinking` parts into
//! `reasoning_content`); `tool_calls` keep their ids; a `tool_plan` given with tool calls is
//! the text the model wrote before calling, so it becomes `content` when there is no other
//! text. Usage is what Cohere bills (`usage.billed_units`), else the raw `usage.tokens`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Number, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

use crate::borrowed::Str;

/// Cohere's `finish_reason` → OpenAI's.
pub fn finish_reason(reason: &str, has_tool_calls: bool) -> &'static str {
    if has_tool_calls {
        return "tool_calls";
    }
    match reason {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        // COMPLETE, STOP_SEQUENCE, and ERROR / TIMEOUT (the text so far is the answer, as
        // LiteLLM maps them).
        _ => "stop",
    }
}

/// `usage` (or a stream's `delta.usage`) as Cohere reports it: the tokens it bills and the
/// raw token counts.
#[derive(Debug, Default, Deserialize)]
pub struct CohereUsage {
    #[serde(default)]
    billed_units: Option<TokenCounts>,
    #[serde(default)]
    tokens: Option<TokenCounts>,
}

/// Counts are JSON numbers (Cohere's schema says `number`): one that is not a whole number is
/// treated as absent, so the other group's count is used.
#[derive(Debug, Default, Deserialize)]
struct TokenCounts {
    #[serde(default)]
    input_tokens: Option<Number>,
    #[serde(default)]
    output_tokens: Option<Number>,
}

impl TokenCounts {
    fn input(&self) -> Option<u64> {
        self.input_tokens.as_ref().and_then(Number::as_u64)
    }

    fn output(&self) -> Option<u64> {
        self.output_tokens.as_ref().and_then(Number::as_u64)
    }
}

impl CohereUsage {
    /// OpenAI usage: what Cohere bills (`billed_units`), else the raw `tokens`, per side.
    pub fn to_usage(&self) -> Usage {
        let side = |read: fn(&TokenCounts) -> Option<u64>| {
            self.billed_units
                .as_ref()
                .and_then(read)
                .or_else(|| self.tokens.as_ref().and_then(read))
                .unwrap_or(0)
        };
        Usage::new(side(TokenCounts::input), side(TokenCounts::output))
    }
}

/// A chat response, parsed straight from the received bytes: strings are borrowed from them
/// unless they hold escapes, and fields this adapter does not read are skipped, never built.
#[derive(Debug, Deserialize)]
struct CohereResponse<'a> {
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Str<'a>>,
    #[serde(default, borrow)]
    message: Option<ResponseMessage<'a>>,
    #[serde(default)]
    usage: Option<CohereUsage>,
    /// Relayed as it is.
    #[serde(default)]
    logprobs: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ResponseMessage<'a> {
    #[serde(default, borrow)]
    content: Option<ContentText<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<CohereToolCall<'a>>>,
    #[serde(default, borrow)]
    tool_plan: Option<Str<'a>>,
    /// Relayed as they are.
    #[serde(default)]
    citations: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CohereToolCall<'a> {
    #[serde(default, borrow)]
    id: Option<Str<'a>>,
    #[serde(default, borrow)]
    function: Option<CohereFunction<'a>>,
}

/// Name and arguments are text; anything else found there is relayed as its JSON text.
#[derive(Debug, Deserialize)]
struct CohereFunction<'a> {
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// A JSON value as text: a string's content, `""` for none, else the value's compact JSON.
fn json_text(raw: Option<&RawValue>) -> Result<String, serde_json::Error> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    if raw.get().starts_with('"') {
        serde_json::from_str(raw.get())
    } else {
        Ok(serde_json::from_str::<Value>(raw.get())?.to_string())
    }
}

/// One part of `message.content`.
#[derive(Debug, Deserialize)]
struct ContentPart<'a> {
    #[serde(default, borrow)]
    text: Option<Str<'a>>,
    #[serde(default, borrow)]
    thinking: Option<Str<'a>>,
}

/// `message.content` read as its joined text and reasoning: `text` parts join into the
/// answer, `thinking` parts into the reasoning. A single piece stays borrowed from the body.
/// Cohere sends an array of parts; a lone part object or a plain string is read too.
#[derive(Debug, Default)]
struct ContentText<'a> {
    text: Cow<'a, str>,
    thinking: Cow<'a, str>,
}

fn append<'a>(joined: &mut Cow<'a, str>, piece: Str<'a>) {
    if joined.is_empty() {
        *joined = piece.into_cow();
    } else {
        joined.to_mut().push_str(&piece);
    }
}

impl<'a> ContentText<'a> {
    fn add(&mut self, part: ContentPart<'a>) {
        if let Some(text) = part.text {
            append(&mut self.text, text);
        }
        if let Some(thinking) = part.thinking {
            append(&mut self.thinking, thinking);
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ContentVisitor(PhantomData))
    }
}

struct ContentVisitor<'a>(PhantomData<ContentText<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
    type Value = ContentText<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of content parts, a content part or a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(ContentText {
            text: Cow::Borrowed(text),
            ..ContentText::default()
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(ContentText {
            text: Cow::Owned(text.to_owned()),
            ..ContentText::default()
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut parts: A) -> Result<Self::Value, A::Error> {
        let mut content = ContentText::default();
        while let Some(part) = parts.next_element::<ContentPart<'a>>()? {
            content.add(part);
        }
        Ok(content)
    }

    fn visit_map<A: MapAccess<'de>>(self, part: A) -> Result<Self::Value, A::Error> {
        let mut content = ContentText::default();
        content.add(ContentPart::deserialize(MapAccessDeserializer::new(part))?);
        Ok(content)
    }
}

/// A tool call's id, or for a call that carries none, one made from the response id and the
/// call's position.
pub fn tool_call_id<'a>(id: Option<&'a str>, response_id: &str, index: usize) -> Cow<'a, str> {
    match id {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(format!("call_{response_id}_{index}")),
    }
}

/// One Cohere tool call → OpenAI's; `index` names calls that carry no id.
fn tool_call(
    call: &CohereToolCall<'_>,
    response_id: &str,
    index: usize,
) -> Result<ToolCall, serde_json::Error> {
    let function = call.function.as_ref();
    Ok(ToolCall {
        id: tool_call_id(call.id.as_deref(), response_id, index).into_owned(),
        kind: "function".to_owned(),
        function: FunctionCall {
            name: json_text(function.and_then(|f| f.name))?,
            arguments: json_text(function.and_then(|f| f.arguments))?,
        },
    })
}

/// Converts a response body. `fallback_id` is used when the response has no `id`.
pub fn to_chat_response(
    body: &[u8],
    fallback_id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    let body: CohereResponse<'_> =
        serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let message = body
        .message
        .ok_or("expected a JSON object with a `message`")?;
    let id = body.id.as_deref().unwrap_or(fallback_id).to_owned();
    let ContentText { text, thinking } = message.content.unwrap_or_default();
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, call)| tool_call(call, &id, index))
        .collect::<Result<Vec<ToolCall>, _>>()
        .map_err(|error| error.to_string())?;
    let mut text = text.into_owned();
    if text.is_empty() {
        if let Some(plan) = &message.tool_plan {
            text.push_str(plan);
        }
    }
    let mut extra = Extra::new();
    if !thinking.is_empty() {
        extra.insert(
            "reasoning_content".into(),
            Value::String(thinking.into_owned()),
        );
    }
    if let Some(citations) = message
        .citations
        .filter(|c| c.as_array().is_some_and(|items| !items.is_empty()))
    {
        extra.insert("citations".into(), citations);
    }
    let finish = body
        .finish_reason
        .as_deref()
        .map(|reason| finish_reason(reason, !tool_calls.is_empty()).to_owned());
    Ok(ChatCompletionResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: Role::Assistant,
                content: (!text.is_empty() || tool_calls.is_empty())
                    .then_some(MessageContent::Text(text)),
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: finish,
            logprobs: body.logprobs,
            extra: Extra::new(),
        }],
        usage: Some(body.usage.unwrap_or_default().to_usage()),
        system_fingerprint: None,
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(body: &Value) -> Result<ChatCompletionResponse, String> {
        to_chat_response(&serde_json::to_vec(body).unwrap(), "f", "m", 0)
    }

    #[test]
    fn usage_prefers_billed_units() {
        let usage_of = |usage: Value| {
            convert(&json!({"message": {"content": []}, "usage": usage}))
                .unwrap()
                .usage
                .unwrap()
        };
        let raw = json!({"billed_units": {"input_tokens": 5, "output_tokens": 3},
                         "tokens": {"input_tokens": 200, "output_tokens": 3}});
        assert_eq!(usage_of(raw), Usage::new(5, 3));
        let tokens_only = json!({"tokens": {"input_tokens": 9, "output_tokens": 1}});
        assert_eq!(usage_of(tokens_only), Usage::new(9, 1));
        assert_eq!(usage_of(Value::Null), Usage::new(0, 0));
    }

    #[test]
    fn content_parts_strings_and_non_text_arguments_are_read() {
        let response = convert(
            &json!({"id": "r1", "finish_reason": "COMPLETE", "message": {
            "content": [{"type": "thinking", "thinking": "Hm"}, {"type": "text", "text": "a\"b"},
                        {"type": "text", "text": "c"}],
            "tool_calls": [{"function": {"name": "f", "arguments": {"x": [1, 2.5]}}},
                           {"id": "call_9", "function": {"name": "g", "arguments": null}}]}}),
        )
        .unwrap();
        let message = serde_json::to_value(&response.choices[0].message).unwrap();
        assert_eq!(
            message,
            json!({"role": "assistant", "content": "a\"bc", "reasoning_content": "Hm",
                "tool_calls": [
                    {"id": "call_r1_0", "type": "function",
                     "function": {"name": "f", "arguments": "{\"x\":[1,2.5]}"}},
                    {"id": "call_9", "type": "function", "function": {"name": "g", "arguments": ""}}]})
        );
        let plain = convert(&json!({"message": {"content": "just text"}})).unwrap();
        assert_eq!(
            plain.choices[0].message.content,
            Some(MessageContent::Text("just text".to_owned()))
        );
    }

    #[test]
    fn a_body_without_message_is_rejected() {
        assert!(convert(&json!({"id": "x"})).is_err());
        assert!(convert(&json!({"id": "x", "message": null})).is_err());
        assert!(convert(&json!([1])).is_err());
        assert!(to_chat_response(b"{not json", "f", "m", 0).is_err());
    }
}
