//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_llm_types::chat::FunctionCall;
use switchyard_llm_types::usage::{CompletionTokensDetails, PromptTokensDetails};
use switchyard_llm_types::{
    ChatCompletionResponse, ChatMessage, Choice, Extra, MessageContent, Role, ToolCall, Usage,
};

use crate::borrowed::{InlineFirst, Str};

/// Gemini `finishReason` → OpenAI `finish_reason` (a candidate that called a function
/// finishes with `tool_calls` whatever Gemini says, as OpenAI clients expect).
pub fn finish_reason(reason: &str, called_a_function: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => "content_filter",
        _ if called_a_function => "tool_calls",
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL and newer reasons end normally.
        _ => "stop",
    }
}

/// A `GenerateContentResponse` (a whole response, or one stream event), parsed straight
/// from the received bytes: strings are borrowed from them unless they hold escapes, and
/// fields this adapter does not read are skipped, never built.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse<'a> {
    #[serde(default, borrow)]
    pub candidates: InlineFirst<Candidate<'a>>,
    #[serde(default, borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    pub model_version: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub response_id: Option<Str<'a>>,
    /// Only streams carry one (an error after the 200); its content is read from the raw
    /// event on that cold path.
    #[serde(default)]
    pub error: Option<IgnoredAny>,
}

impl GenerateContentResponse<'_> {
    /// Whether the prompt was blocked before any generation.
    pub fn prompt_blocked(&self) -> bool {
        self.prompt_feedback
            .as_ref()
            .is_some_and(|feedback| feedback.block_reason.is_some())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(default, borrow)]
    pub block_reason: Option<Str<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(default, borrow)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Str<'a>>,
    #[serde(default)]
    pub index: Option<u64>,
}

impl<'a> Candidate<'a> {
    /// The candidate's `index`, or `position` when it gives none.
    pub fn index_or(&self, position: usize) -> u32 {
        self.index
            .and_then(|index| u32::try_from(index).ok())
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(0))
    }

    pub fn parts(&self) -> impl Iterator<Item = &Part<'a>> {
        self.content.iter().flat_map(|content| content.parts.iter())
    }
}

#[derive(Debug, Deserialize)]
pub struct CandidateContent<'a> {
    #[serde(default, borrow)]
    pub parts: InlineFirst<Part<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(default, borrow)]
    pub text: Option<Str<'a>>,
    /// `true` on a thought summary (reasoning), not answer text.
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, borrow)]
    pub function_call: Option<FunctionCallPart<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallPart<'a> {
    #[serde(default, borrow)]
    pub name: Option<Str<'a>>,
    /// Kept as a value: OpenAI wants the arguments as compact JSON text.
    #[serde(default)]
    pub args: Option<Value>,
    #[serde(default, borrow)]
    pub id: Option<Str<'a>>,
}

impl FunctionCallPart<'_> {
    /// The arguments as OpenAI's JSON text (`{}` when Gemini gave none).
    pub fn arguments(&self) -> String {
        match &self.args {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
}

/// `usageMetadata`: token counts, each absent when Gemini leaves it out.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
    #[serde(default)]
    pub total_token_count: Option<u64>,
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
}

/// `usageMetadata` → OpenAI usage. Thinking tokens are billed as output, so they count in
/// `completion_tokens` and are shown as reasoning tokens.
pub fn usage(metadata: &UsageMetadata) -> Usage {
    let prompt = metadata.prompt_token_count.unwrap_or(0);
    let candidates = metadata.candidates_token_count.unwrap_or(0);
    let thoughts = metadata.thoughts_token_count;
    let mut out = Usage::new(prompt, candidates + thoughts.unwrap_or(0));
    if let Some(total) = metadata.total_token_count {
        out.total_tokens = total.max(out.total_tokens);
    }
    out.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(metadata.cached_content_token_count.unwrap_or(0)),
        ..PromptTokensDetails::default()
    });
    if let Some(thoughts) = thoughts {
        out.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: Some(thoughts),
            ..CompletionTokensDetails::default()
        });
    }
    out
}

/// The id of the `index`-th tool call of a response: Gemini's own when it gives one, else
/// derived from the response id so that a replayed response yields the same ids.
pub fn tool_call_id(call: &FunctionCallPart<'_>, response_id: &str, index: usize) -> String {
    match call.id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{response_id}_{index}"),
    }
}

/// What one candidate's parts say, flattened. A single piece of text stays borrowed from the
/// parsed body; only several pieces are joined into a new string.
#[derive(Debug, Default)]
pub struct CandidateParts<'p, 'a> {
    pub text: Cow<'p, str>,
    pub reasoning: Cow<'p, str>,
    pub calls: Vec<&'p FunctionCallPart<'a>>,
}

fn append<'p>(joined: &mut Cow<'p, str>, piece: &'p str) {
    if joined.is_empty() {
        *joined = Cow::Borrowed(piece);
    } else {
        joined.to_mut().push_str(piece);
    }
}

pub fn read_parts<'p, 'a>(candidate: &'p Candidate<'a>) -> CandidateParts<'p, 'a> {
    let mut out = CandidateParts::default();
    for part in candidate.parts() {
        if let Some(call) = &part.function_call {
            out.calls.push(call);
        } else if let Some(text) = &part.text {
            if part.thought == Some(true) {
                append(&mut out.reasoning, text);
            } else {
                append(&mut out.text, text);
            }
        }
    }
    out
}

/// Parses a response body (or stream event).
pub fn parse(body: &[u8]) -> Result<GenerateContentResponse<'_>, String> {
    serde_json::from_slice(body).map_err(|error| error.to_string())
}

/// Converts a response body. `fallback_id` is used when the response has no `responseId`;
/// `model` when it has no `modelVersion`.
pub fn to_chat_response(
    body: &[u8],
    fallback_id: &str,
    model: &str,
    created: u64,
) -> Result<ChatCompletionResponse, String> {
    let body = parse(body)?;
    let id = body
        .response_id
        .as_deref()
        .unwrap_or(fallback_id)
        .to_owned();
    let mut choices = Vec::with_capacity(body.candidates.len().max(1));
    let mut call_index = 0;
    for (position, candidate) in body.candidates.iter().enumerate() {
        let parts = read_parts(candidate);
        let tool_calls: Vec<ToolCall> = parts
            .calls
            .iter()
            .map(|call| {
                let tool_call = ToolCall {
                    id: tool_call_id(call, &id, call_index),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: call.name.as_deref().unwrap_or_default().to_owned(),
                        arguments: call.arguments(),
                    },
                };
                call_index += 1;
                tool_call
            })
            .collect();
        let mut extra = Extra::new();
        if !parts.reasoning.is_empty() {
            extra.insert(
                "reasoning_content".into(),
                Value::String(parts.reasoning.into_owned()),
            );
        }
        let finish = candidate
            .finish_reason
            .as_deref()
            .map(|reason| finish_reason(reason, !tool_calls.is_empty()).to_owned());
        choices.push(Choice {
            index: candidate.index_or(position),
            message: ChatMessage {
                role: Role::Assistant,
                content: (!parts.text.is_empty())
                    .then(|| MessageContent::Text(parts.text.into_owned())),
                name: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                tool_call_id: None,
                extra,
            },
            finish_reason: finish,
            logprobs: None,
            extra: Map::new(),
        });
    }
    if choices.is_empty() {
        // A prompt blocked before generation has no candidates, only `promptFeedback`.
        if !body.prompt_blocked() {
            return Err("the response has no candidates and no promptFeedback".to_owned());
        }
        choices.push(Choice {
            index: 0,
            message: ChatMessage {
                role: Role::Assistant,
                content: None,
                name: None,
                tool_calls: None,
                tool_call_id: None,
                extra: Extra::new(),
            },
            finish_reason: Some("content_filter".to_owned()),
            logprobs: None,
            extra: Map::new(),
        });
    }
    Ok(ChatCompletionResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: body.model_version.as_deref().unwrap_or(model).to_owned(),
        choices,
        usage: body.usage_metadata.as_ref().map(usage),
        system_fingerprint: None,
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_with_cached_and_thinking_usage() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think", "thought": true}, {"text": "Hello"}, {"text": " world"}]},
                "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 5,
                "totalTokenCount": 145, "cachedContentTokenCount": 100, "thoughtsTokenCount": 20},
            "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
        });
        let response =
            to_chat_response(&serde_json::to_vec(&body).unwrap(), "fallback", "m", 7).unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "id": "resp-1", "object": "chat.completion", "created": 7, "model": "gemini-2.5-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                    "reasoning_content": "Let me think"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 25, "total_tokens": 145,
                    "prompt_tokens_details": {"cached_tokens": 100},
                    "completion_tokens_details": {"reasoning_tokens": 20}}
            })
        );
    }

    #[test]
    fn function_calls_become_tool_calls() {
        let body = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}}]},
                "finishReason": "STOP"}],
            "responseId": "r9"
        });
        let response =
            to_chat_response(&serde_json::to_vec(&body).unwrap(), "fallback", "m", 0).unwrap();
        let message = serde_json::to_value(&response.choices[0].message).unwrap();
        assert_eq!(
            message,
            json!({"role": "assistant", "tool_calls": [
                {"id": "call_r9_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_r9_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]})
        );
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("tool_calls")
        );
    }

    #[test]
    fn finish_reasons_and_blocked_prompts() {
        for (reason, expected) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ] {
            assert_eq!(finish_reason(reason, false), expected);
        }
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}});
        let response = to_chat_response(
            &serde_json::to_vec(&blocked).unwrap(),
            "chatcmpl-x",
            "gemini-pro",
            0,
        )
        .unwrap();
        assert_eq!(
            response.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        assert_eq!(response.id, "chatcmpl-x");
        assert!(to_chat_response(b"{}", "x", "m", 0).is_err());
        assert!(to_chat_response(b"[1]", "x", "m", 0).is_err());
    }
}
