//! Server-sent-event decoding for upstream streams.
//!
//! Yields the `data:` payload of each event as a zero-copy slice of the received bytes; the
//! common case (one `data:` line per event) never copies. Handles events split across reads,
//! several events per read, `\r\n` line endings, comments and multi-line data.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

/// What one decoded event carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseEvent {
    /// A `data:` payload (the `event:` name, if any, is ignored for OpenAI streams).
    Data(Bytes),
    /// `data: [DONE]`: the stream's normal end.
    Done,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: BytesMut,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a complete event.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let (end, separator) = find_event_end(&self.buffer)?;
            let event = self.buffer.split_to(end).freeze();
            self.buffer.advance(separator);
            if let Some(decoded) = decode_event(event) {
                return Some(decoded);
            }
        }
    }

    /// At end of input: an unterminated final event, if any (some servers omit the blank line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buffer.iter().all(u8::is_ascii_whitespace) {
            self.buffer.clear();
            return None;
        }
        let event = std::mem::take(&mut self.buffer).freeze();
        decode_event(event)
    }
}

/// Position of the blank line ending the first event, and the separator's length.
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = memmem::find(buffer, b"\n\n").map(|at| (at, 2));
    let crlf = memmem::find(buffer, b"\r\n\r\n").map(|at| (at, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn decode_event(event: Bytes) -> Option<SseEvent> {
    let mut data: Option<Bytes> = None;
    let mut joined: Option<Vec<u8>> = None;
    let mut start = 0;
    while start < event.len() {
        let line_end = memchr::memchr(b'\n', &event[start..]).map_or(event.len(), |at| start + at);
        let mut line = event.slice(start..line_end);
        if line.ends_with(b"\r") {
            line.truncate(line.len() - 1);
        }
        start = line_end + 1;
        let Some(rest) = line.strip_prefix(b"data:") else {
            continue; // `event:`, `id:`, `retry:` and `:` comments carry nothing we relay.
        };
        let offset = line.len() - rest.len() + usize::from(rest.first() == Some(&b' '));
        let payload = line.slice(offset..);
        match (&mut data, &mut joined) {
            (None, _) => data = Some(payload),
            (Some(first), None) => {
                let mut buffer = first.to_vec();
                buffer.push(b'\n');
                buffer.extend_from_slice(&payload);
                joined = Some(buffer);
            }
            (Some(_), Some(buffer)) => {
                buffer.push(b'\n');
                buffer.extend_from_slice(&payload);
            }
        }
    }
    let payload = match joined {
        Some(buffer) => Bytes::from(buffer),
        None => data?,
    };
    if payload.as_ref() == b"[DONE]" {
        Some(SseEvent::Done)
    } else if payload.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(SseEvent::Data(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(decoder: &mut SseDecoder) -> Vec<SseEvent> {
        std::iter::from_fn(|| decoder.next_event()).collect()
    }

    #[test]
    fn events_split_across_reads_are_reassembled() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: {\"a\":");
        assert!(drain(&mut decoder).is_empty());
        decoder.push(b"1}\n\ndata: {\"b\":2}\n\ndata: [DO");
        assert_eq!(
            drain(&mut decoder),
            vec![
                SseEvent::Data(Bytes::from_static(b"{\"a\":1}")),
                SseEvent::Data(Bytes::from_static(b"{\"b\":2}"))
            ]
        );
        decoder.push(b"NE]\n\n");
        assert_eq!(drain(&mut decoder), vec![SseEvent::Done]);
    }

    #[test]
    fn crlf_comments_event_names_and_multiline_data() {
        let mut decoder = SseDecoder::new();
        decoder.push(b": keep-alive\r\n\r\nevent: message\r\ndata: line1\r\ndata:line2\r\n\r\n");
        assert_eq!(
            drain(&mut decoder),
            vec![SseEvent::Data(Bytes::from_static(b"line1\nline2"))]
        );
    }

    #[test]
    fn unterminated_final_event_is_returned_by_finish() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: {\"last\":true}");
        assert!(drain(&mut decoder).is_empty());
        assert_eq!(
            decoder.finish(),
            Some(SseEvent::Data(Bytes::from_static(b"{\"last\":true}")))
        );
        assert_eq!(decoder.finish(), None);
    }
}
