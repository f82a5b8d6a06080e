//! Writes OpenAI `chat.completion.chunk` JSON straight into a reused output buffer, for the
//! adapters that translate streams (Gemini, Bedrock, Anthropic).
//!
//! A translated stream event used to become a [`ChatCompletionChunk`] (owned strings, maps)
//! and then bytes. Here the chunk is a borrowed view of the event it came from, serialized
//! once into a [`BytesMut`] whose filled part is split off as the chunk's [`Bytes`]: chunks
//! share the buffer's allocation until it is full, so a stream event costs no allocation
//! beyond its share of the output buffer. The bytes are exactly what serializing the
//! equivalent [`ChatCompletionChunk`] gives (same keys, same order), which the unit tests
//! below check.
//!
//! [`ChatCompletionChunk`]: switchyard_llm_types::ChatCompletionChunk
//! [`Bytes`]: bytes::Bytes

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::Map;
use switchyard_llm_types::{ChatCompletionChunk, ChunkJson, Usage};

use crate::ProviderError;

/// Room for a few dozen typical chunks per allocation.
const BUFFER_CAPACITY: usize = 8 * 1024;

/// What every chunk of one stream repeats.
#[derive(Debug, Clone, Copy)]
pub struct ChunkHead<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

/// A chunk's `delta`, borrowed from the event it translates. Fields in the order of
/// `switchyard_llm_types::Delta` (`reasoning_content` is one of its extra fields).
#[derive(Debug, Default, Serialize)]
pub struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
}

impl<'a> DeltaOut<'a> {
    /// The first delta of a stream: the role, and empty content.
    pub fn start() -> Self {
        Self {
            role: Some("assistant"),
            content: Some(""),
            ..Self::default()
        }
    }

    pub fn content(text: &'a str) -> Self {
        Self {
            content: Some(text),
            ..Self::default()
        }
    }

    pub fn reasoning(text: &'a str) -> Self {
        Self {
            reasoning_content: Some(text),
            ..Self::default()
        }
    }

    pub fn tool_call(call: ToolCallDeltaOut<'a>) -> Self {
        Self {
            tool_calls: Some([call]),
            ..Self::default()
        }
    }
}

/// One entry of `delta.tool_calls`, as `switchyard_llm_types::chat::ToolCallDelta` writes it.
#[derive(Debug, Default, Serialize)]
pub struct ToolCallDeltaOut<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDeltaOut<'a>>,
}

#[derive(Debug, Default, Serialize)]
pub struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a str>,
}

/// The empty `delta` of a chunk that only carries a finish reason.
#[derive(Debug, Default, Serialize)]
pub struct EmptyDelta {}

#[derive(Serialize)]
struct ChunkOut<'a, D: ?Sized> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a, D>; 1],
}

#[derive(Serialize)]
struct ChoiceOut<'a, D: ?Sized> {
    index: u32,
    delta: &'a D,
    finish_reason: Option<&'a str>,
    /// The stop sequence that ended the turn (a choice extra field; see
    /// [`ChunkWriter::write_finish`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<&'a str>,
}

/// The reused output buffer of one stream.
#[derive(Debug)]
pub struct ChunkWriter {
    /// Names encoding errors.
    provider: &'static str,
    buffer: BytesMut,
}

impl ChunkWriter {
    pub fn new(provider: &'static str) -> Self {
        Self {
            provider,
            buffer: BytesMut::new(),
        }
    }

    fn encode_error(&self, error: serde_json::Error) -> ProviderError {
        ProviderError::InvalidResponse {
            provider: self.provider,
            message: format!("cannot encode a chunk: {error}"),
        }
    }

    /// One chunk with one choice.
    pub fn write(
        &mut self,
        head: ChunkHead<'_>,
        index: u32,
        delta: &DeltaOut<'_>,
        finish_reason: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        self.write_delta(head, index, delta, finish_reason)
    }

    /// [`ChunkWriter::write`] with a delta of the adapter's own shape, for fields
    /// [`DeltaOut`] does not have (e.g. Anthropic's `thinking_blocks`). Its fields must come in
    /// the order `switchyard_llm_types::Delta` writes them: `role`, `content`, `tool_calls`,
    /// then the extra fields.
    pub fn write_delta<D: Serialize + ?Sized>(
        &mut self,
        head: ChunkHead<'_>,
        index: u32,
        delta: &D,
        finish_reason: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        self.write_choice(head, index, delta, finish_reason, None)
    }

    /// The chunk that ends a choice: an empty delta, the finish reason and, when a stop
    /// sequence ended the turn, that sequence as the choice's `stop_reason` (vLLM's convention
    /// for OpenAI-shaped answers).
    pub fn write_finish(
        &mut self,
        head: ChunkHead<'_>,
        index: u32,
        finish_reason: &str,
        stop_reason: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        self.write_choice(
            head,
            index,
            &EmptyDelta {},
            Some(finish_reason),
            stop_reason,
        )
    }

    fn write_choice<D: Serialize + ?Sized>(
        &mut self,
        head: ChunkHead<'_>,
        index: u32,
        delta: &D,
        finish_reason: Option<&str>,
        stop_reason: Option<&str>,
    ) -> Result<ChunkJson, ProviderError> {
        let chunk = ChunkOut {
            id: head.id,
            object: "chat.completion.chunk",
            created: head.created,
            model: head.model,
            choices: [ChoiceOut {
                index,
                delta,
                finish_reason,
                stop_reason,
            }],
        };
        if self.buffer.capacity() - self.buffer.len() < 512 {
            // Reclaims the old allocation when every chunk split from it was dropped.
            self.buffer.reserve(BUFFER_CAPACITY);
        }
        if let Err(error) = serde_json::to_writer((&mut self.buffer).writer(), &chunk) {
            self.buffer.clear();
            return Err(self.encode_error(error));
        }
        Ok(ChunkJson::from_bytes(self.buffer.split().freeze()))
    }

    /// The chunk with no choices that carries a stream's usage (once, at the end: written
    /// through the typed chunk, as its shape is the usage's).
    pub fn usage_chunk(
        &self,
        head: ChunkHead<'_>,
        usage: Usage,
    ) -> Result<ChunkJson, ProviderError> {
        let chunk = ChatCompletionChunk {
            id: head.id.to_owned(),
            object: "chat.completion.chunk".to_owned(),
            created: head.created,
            model: head.model.to_owned(),
            choices: Vec::new(),
            usage: Some(usage),
            system_fingerprint: None,
            extra: Map::new(),
        };
        ChunkJson::from_chunk(&chunk).map_err(|error| self.encode_error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_llm_types::chat::{FunctionCallDelta, ToolCallDelta};
    use switchyard_llm_types::{ChunkChoice, Delta, Role};

    const HEAD: ChunkHead<'static> = ChunkHead {
        id: "chatcmpl-1",
        created: 1_700_000_000,
        model: "m",
    };

    /// What the typed chunk of the same content serializes to.
    fn reference(index: u32, delta: Delta, finish_reason: Option<&str>) -> Vec<u8> {
        let chunk = ChatCompletionChunk {
            id: HEAD.id.to_owned(),
            object: "chat.completion.chunk".to_owned(),
            created: HEAD.created,
            model: HEAD.model.to_owned(),
            choices: vec![ChunkChoice {
                index,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
                logprobs: None,
                extra: Map::new(),
            }],
            usage: None,
            system_fingerprint: None,
            extra: Map::new(),
        };
        serde_json::to_vec(&chunk).unwrap()
    }

    #[test]
    fn chunks_are_byte_for_byte_the_typed_chunks() {
        let mut writer = ChunkWriter::new("Test");
        let mut check = |index, out: DeltaOut<'_>, typed: Delta, finish: Option<&str>| {
            let written = writer.write(HEAD, index, &out, finish).unwrap();
            assert_eq!(
                String::from_utf8_lossy(written.as_bytes()),
                String::from_utf8_lossy(&reference(index, typed, finish))
            );
        };
        check(
            0,
            DeltaOut::start(),
            Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        );
        check(
            1,
            DeltaOut::content("a \"quoted\"\nline é"),
            Delta {
                content: Some("a \"quoted\"\nline é".to_owned()),
                ..Delta::default()
            },
            None,
        );
        let mut reasoning = Delta::default();
        reasoning
            .extra
            .insert("reasoning_content".into(), "hmm".into());
        check(0, DeltaOut::reasoning("hmm"), reasoning, None);
        check(
            0,
            DeltaOut::tool_call(ToolCallDeltaOut {
                index: 2,
                id: Some("call_1"),
                kind: Some("function"),
                function: Some(FunctionDeltaOut {
                    name: Some("get_weather"),
                    arguments: Some("{\"city\":\"Paris\"}"),
                }),
            }),
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: 2,
                    id: Some("call_1".to_owned()),
                    kind: Some("function".to_owned()),
                    function: Some(FunctionCallDelta {
                        name: Some("get_weather".to_owned()),
                        arguments: Some("{\"city\":\"Paris\"}".to_owned()),
                    }),
                }]),
                ..Delta::default()
            },
            None,
        );
        check(0, DeltaOut::default(), Delta::default(), Some("stop"));
    }

    #[test]
    fn finish_chunks_and_own_deltas_are_byte_for_byte_the_typed_chunks() {
        let mut writer = ChunkWriter::new("Test");
        let written = writer.write_finish(HEAD, 0, "stop", Some("END")).unwrap();
        let mut typed: ChatCompletionChunk =
            serde_json::from_slice(&reference(0, Delta::default(), Some("stop"))).unwrap();
        typed.choices[0]
            .extra
            .insert("stop_reason".into(), "END".into());
        assert_eq!(
            String::from_utf8_lossy(written.as_bytes()),
            serde_json::to_string(&typed).unwrap()
        );
        let written = writer.write_finish(HEAD, 0, "length", None).unwrap();
        assert_eq!(
            written.as_bytes(),
            &reference(0, Delta::default(), Some("length"))[..]
        );

        #[derive(Serialize)]
        struct Own<'a> {
            reasoning_content: &'a str,
            signature: &'a str,
        }
        let written = writer
            .write_delta(
                HEAD,
                0,
                &Own {
                    reasoning_content: "r",
                    signature: "s",
                },
                None,
            )
            .unwrap();
        let mut own = Delta::default();
        own.extra.insert("reasoning_content".into(), "r".into());
        own.extra.insert("signature".into(), "s".into());
        assert_eq!(written.as_bytes(), &reference(0, own, None)[..]);
    }

    #[test]
    fn chunks_stay_intact_when_the_buffer_is_reused() {
        let mut writer = ChunkWriter::new("Test");
        let long = "x".repeat(3000);
        let chunks: Vec<ChunkJson> = (0..20)
            .map(|index| {
                writer
                    .write(HEAD, index, &DeltaOut::content(&long), None)
                    .unwrap()
            })
            .collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let parsed = chunk.parse().unwrap();
            assert_eq!(parsed.choices[0].index as usize, index);
            assert_eq!(parsed.choices[0].delta.content.as_deref(), Some(&*long));
        }
    }
}
