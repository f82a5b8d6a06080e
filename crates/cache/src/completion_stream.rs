//! Legacy `/completions` streams: reassembling one for the cache, and replaying a hit.
//!
//! A `text_completion` chunk has the shape of a complete response whose choices carry a piece
//! of `text`; the stream is complete when every choice has a `finish_reason`.

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_llm_types::{ChunkJson, CompletionChoice, CompletionResponse, Extra, Usage};

/// Collects a completion stream's chunks into the complete response.
#[derive(Debug, Default)]
pub struct CompletionStreamAssembler {
    /// `id`, `created` and `model` of the first chunk.
    head: Option<(String, u64, String)>,
    choices: BTreeMap<u32, CompletionChoice>,
    usage: Option<Usage>,
    /// A chunk could not be read: the stream is not stored.
    broken: bool,
}

impl CompletionStreamAssembler {
    pub fn new() -> CompletionStreamAssembler {
        CompletionStreamAssembler::default()
    }

    pub fn push(&mut self, chunk: &ChunkJson) {
        let Ok(parsed) = serde_json::from_slice::<CompletionResponse>(chunk.as_bytes()) else {
            self.broken = true;
            return;
        };
        for piece in &parsed.choices {
            let choice = self
                .choices
                .entry(piece.index)
                .or_insert_with(|| CompletionChoice {
                    text: String::new(),
                    index: piece.index,
                    logprobs: None,
                    finish_reason: None,
                    extra: Extra::new(),
                });
            choice.text.push_str(&piece.text);
            if piece.finish_reason.is_some() {
                choice.finish_reason.clone_from(&piece.finish_reason);
            }
        }
        if parsed.usage.is_some() {
            self.usage = parsed.usage.clone();
        }
        if self.head.is_none() {
            self.head = Some((parsed.id, parsed.created, parsed.model));
        }
    }

    /// The complete response, or `None` when a chunk was unreadable, there was no choice, or
    /// a choice never finished (a truncated stream is not an answer to keep).
    pub fn finish(self) -> Option<CompletionResponse> {
        let (id, created, model) = self.head?;
        if self.broken
            || self.choices.is_empty()
            || self
                .choices
                .values()
                .any(|choice| choice.finish_reason.is_none())
        {
            return None;
        }
        Some(CompletionResponse {
            id,
            object: "text_completion".to_owned(),
            created,
            model,
            choices: self.choices.into_values().collect(),
            usage: self.usage,
            extra: Extra::new(),
        })
    }
}

/// Replays a complete completion as stream chunks: one per choice with its whole text and
/// finish reason, then a usage chunk (`choices: []`) when `include_usage`.
pub fn replay_completion_stream(
    response: &CompletionResponse,
    include_usage: bool,
) -> Result<Vec<ChunkJson>, serde_json::Error> {
    let chunk = |choices: serde_json::Value, usage: Option<&Usage>| {
        let mut value = json!({
            "id": response.id,
            "object": "text_completion",
            "created": response.created,
            "model": response.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            value["usage"] = serde_json::to_value(usage)?;
        }
        serde_json::to_vec(&value).map(|bytes| ChunkJson::from_bytes(bytes.into()))
    };
    let mut chunks = Vec::with_capacity(response.choices.len() + 1);
    for choice in &response.choices {
        chunks.push(chunk(
            json!([{
                "text": choice.text,
                "index": choice.index,
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
            }]),
            None,
        )?);
    }
    if include_usage {
        let usage = response.usage.clone().unwrap_or_default();
        chunks.push(chunk(json!([]), Some(&usage))?);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(value: serde_json::Value) -> ChunkJson {
        ChunkJson::from_bytes(serde_json::to_vec(&value).unwrap().into())
    }

    #[test]
    fn a_finished_stream_reassembles_and_replays() {
        let mut assembler = CompletionStreamAssembler::new();
        for (text, finish) in [("Hel", None), ("lo", None), ("", Some("stop"))] {
            assembler.push(&chunk(json!({"id": "c1", "object": "text_completion",
                "created": 7, "model": "m",
                "choices": [{"text": text, "index": 0, "finish_reason": finish}]})));
        }
        assembler.push(&chunk(
            json!({"id": "c1", "object": "text_completion", "created": 7,
            "model": "m", "choices": [],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}}),
        ));
        let response = assembler.finish().unwrap();
        assert_eq!(response.choices[0].text, "Hello");
        assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(response.usage.as_ref().unwrap().total_tokens, 5);

        let replay = replay_completion_stream(&response, true).unwrap();
        assert_eq!(replay.len(), 2);
        let mut again = CompletionStreamAssembler::new();
        for piece in &replay {
            again.push(piece);
        }
        assert_eq!(again.finish().unwrap(), response);
        assert_eq!(replay_completion_stream(&response, false).unwrap().len(), 1);
    }

    #[test]
    fn unfinished_or_unreadable_streams_are_not_kept() {
        let mut unfinished = CompletionStreamAssembler::new();
        unfinished.push(&chunk(
            json!({"id": "c", "choices": [{"text": "x", "index": 0}]}),
        ));
        assert!(unfinished.finish().is_none());
        let mut broken = CompletionStreamAssembler::new();
        broken.push(&chunk(
            json!({"id": "c", "choices": [{"text": "x", "index": 0,
            "finish_reason": "stop"}]}),
        ));
        broken.push(&ChunkJson::from_bytes(bytes::Bytes::from_static(
            b"not json",
        )));
        assert!(broken.finish().is_none());
        assert!(CompletionStreamAssembler::new().finish().is_none());
    }
}
