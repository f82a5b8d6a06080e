//! `text-completion-openai/`: chat requests served by the legacy `/completions` endpoint.
//!
//! The messages become one prompt (their texts, one per line); the completion's text becomes
//! the assistant message, and streamed `text_completion` chunks become chat chunks.

use futures::StreamExt;
use serde_json::Value;
use switchyard_llm_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice,
    ChunkChoice, ChunkJson, CompletionRequest, CompletionResponse, Delta, Extra,
};

use crate::{ChunkStream, ProviderError};

pub(super) fn chat_to_completion(request: &ChatCompletionRequest) -> CompletionRequest {
    let prompt = request
        .messages
        .iter()
        .map(ChatMessage::text)
        .collect::<Vec<_>>()
        .join("\n");
    CompletionRequest {
        model: request.model.clone(),
        prompt: Value::String(prompt),
        max_tokens: request.max_tokens.or(request.max_completion_tokens),
        temperature: request.temperature,
        top_p: request.top_p,
        n: request.n,
        stream: request.stream,
        stream_options: request.stream_options.clone(),
        stop: request.stop.clone(),
        user: request.user.clone(),
        seed: request.seed,
        extra: Extra::new(),
    }
}

pub(super) fn completion_to_chat(response: CompletionResponse) -> ChatCompletionResponse {
    ChatCompletionResponse {
        id: response.id,
        object: "chat.completion".to_owned(),
        created: response.created,
        model: response.model,
        choices: response
            .choices
            .into_iter()
            .map(|choice| Choice {
                index: choice.index,
                message: ChatMessage::assistant(choice.text),
                finish_reason: choice.finish_reason,
                logprobs: None,
                extra: Extra::new(),
            })
            .collect(),
        usage: response.usage,
        system_fingerprint: None,
        extra: Extra::new(),
    }
}

pub(super) fn completion_chunks_to_chat(
    stream: ChunkStream,
    provider: &'static str,
) -> ChunkStream {
    stream
        .map(move |item| {
            let chunk = item?;
            let completion: CompletionResponse =
                serde_json::from_slice(chunk.as_bytes()).map_err(|error| {
                    ProviderError::InvalidResponse {
                        provider,
                        message: format!("unreadable text_completion chunk: {error}"),
                    }
                })?;
            let chat = ChatCompletionChunk {
                id: completion.id,
                object: "chat.completion.chunk".to_owned(),
                created: completion.created,
                model: completion.model,
                choices: completion
                    .choices
                    .into_iter()
                    .map(|choice| ChunkChoice {
                        index: choice.index,
                        delta: Delta {
                            content: Some(choice.text),
                            ..Delta::default()
                        },
                        finish_reason: choice.finish_reason,
                        ..ChunkChoice::default()
                    })
                    .collect(),
                usage: completion.usage,
                system_fingerprint: None,
                extra: Extra::new(),
            };
            ChunkJson::from_chunk(&chat).map_err(|error| ProviderError::InvalidResponse {
                provider,
                message: error.to_string(),
            })
        })
        .boxed()
}
