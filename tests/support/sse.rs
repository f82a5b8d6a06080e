//! Reading a `text/event-stream` response one event at a time, noting when each arrived.
//!
//! Frames are split on the blank line that ends an SSE event; each frame keeps the instant at
//! which the bytes completing it were received, so tests can tell incremental delivery from a
//! buffered one.

use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The `data:` payload (multiple `data:` lines joined with `\n`).
    pub data: String,
    /// When the read that completed this frame returned.
    pub at: Instant,
}

impl Frame {
    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }

    /// The payload as JSON (`None` for `[DONE]` or non-JSON).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// How a read of the next frame ended, when it did not yield a frame.
#[derive(Debug)]
pub enum StreamEnd {
    /// The body ended cleanly; any incomplete trailing bytes are included.
    Eof { trailing: String },
    /// The connection failed (e.g. reset, or a chunked body cut short).
    Error(String),
    /// Nothing arrived within the timeout.
    TimedOut,
}

/// Splits a response body into SSE frames as it arrives.
pub struct SseReader {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    /// Frames already split off but not yet handed out.
    ready: std::collections::VecDeque<Frame>,
    ended: bool,
}

impl std::fmt::Debug for SseReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseReader")
            .field("buffered", &self.buffer.len())
            .field("ready", &self.ready.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: Vec::new(),
            ready: std::collections::VecDeque::new(),
            ended: false,
        }
    }

    /// The next frame, waiting at most `timeout` for more bytes between reads.
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<Frame, StreamEnd> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(frame);
            }
            if self.ended {
                return Err(StreamEnd::Eof {
                    trailing: String::from_utf8_lossy(&self.buffer).into_owned(),
                });
            }
            match tokio::time::timeout(timeout, self.body.next()).await {
                Err(_) => return Err(StreamEnd::TimedOut),
                Ok(None) => self.ended = true,
                Ok(Some(Err(error))) => {
                    self.ended = true;
                    return Err(StreamEnd::Error(error_chain(&error)));
                }
                Ok(Some(Ok(bytes))) => {
                    let at = Instant::now();
                    self.buffer.extend_from_slice(&bytes);
                    self.split_frames(at);
                }
            }
        }
    }

    /// Reads frames until `[DONE]` (included), the end of the body, or `timeout` overall.
    /// Returns the frames and how the stream ended if it ended without `[DONE]`.
    pub async fn read_to_done(&mut self, timeout: Duration) -> (Vec<Frame>, Option<StreamEnd>) {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                Ok(frame) => {
                    let done = frame.is_done();
                    frames.push(frame);
                    if done {
                        return (frames, None);
                    }
                }
                Err(end) => return (frames, Some(end)),
            }
        }
    }

    /// After `[DONE]`: whether the body then ends cleanly with nothing more in it.
    pub async fn assert_ends(&mut self, timeout: Duration) {
        match self.next_frame(timeout).await {
            Err(StreamEnd::Eof { trailing }) if trailing.trim().is_empty() => {}
            other => panic!("expected the stream to end after [DONE], got {other:?}"),
        }
    }

    fn split_frames(&mut self, at: Instant) {
        while let Some(end) = find_event_end(&self.buffer) {
            let (event_len, separator_len) = end;
            let event: Vec<u8> = self.buffer.drain(..event_len + separator_len).collect();
            let text = String::from_utf8_lossy(&event[..event_len]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
                .collect();
            if data.is_empty() {
                // A comment or a keep-alive: not a data event.
                continue;
            }
            self.ready.push_back(Frame {
                data: data.join("\n"),
                at,
            });
        }
    }
}

/// The end of the first event: (length of the event, length of the blank-line separator).
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The concatenated `choices[0].delta.content` (chat) or `choices[0].text` (completions) of
/// stream frames.
pub fn stream_text(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter_map(Frame::json)
        .filter_map(|chunk| {
            let choice = chunk.get("choices")?.get(0)?.clone();
            choice
                .pointer("/delta/content")
                .or_else(|| choice.get("text"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}
