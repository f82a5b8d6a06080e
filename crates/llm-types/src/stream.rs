//! A streamed chunk kept as the raw JSON of one SSE `data:` payload.
//!
//! Relaying a stream must cost microseconds per chunk, so chunks from OpenAI-compatible
//! upstreams are forwarded as the bytes they arrived as. A stage that needs the content (usage
//! accounting, guardrails, translation) parses it on demand with [`ChunkJson::parse`].

use bytes::Bytes;
use memchr::memmem;

use crate::{ChatCompletionChunk, Usage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkJson(Bytes);

impl ChunkJson {
    /// Wraps bytes that hold one JSON object (not validated here; see [`ChunkJson::parse`]).
    pub fn from_bytes(bytes: Bytes) -> Self {
        Self(bytes)
    }

    pub fn from_chunk(chunk: &ChatCompletionChunk) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(chunk).map(|bytes| Self(Bytes::from(bytes)))
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub fn parse(&self) -> Result<ChatCompletionChunk, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// The chunk's usage, parsing only chunks that mention a non-null `usage` at all.
    ///
    /// Most chunks of a stream carry no usage; the substring test skips them without a parse.
    pub fn usage(&self) -> Option<Usage> {
        let position = memmem::find(&self.0, b"\"usage\"")?;
        let after_key = &self.0[position + 7..];
        let value_start = after_key
            .iter()
            .position(|byte| !matches!(byte, b' ' | b':' | b'\n' | b'\r' | b'\t'))?;
        if after_key[value_start..].starts_with(b"null") {
            return None;
        }
        self.parse().ok().and_then(|chunk| chunk.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_found_only_when_present_and_not_null() {
        let without = ChunkJson::from_bytes(Bytes::from_static(
            br#"{"id":"a","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}"#,
        ));
        assert_eq!(without.usage(), None);
        let with = ChunkJson::from_bytes(Bytes::from_static(
            br#"{"id":"a","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
        ));
        assert_eq!(with.usage(), Some(Usage::new(3, 4)));
    }
}
