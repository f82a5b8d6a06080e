//! Relaying a chunk stream as server-sent events.
//!
//! Each upstream chunk is written as `data: <json>\n\n` the moment it arrives (hyper flushes
//! whenever the body has nothing more ready), and the stream ends with `data: [DONE]\n\n`. An
//! error after the first byte cannot change the status any more, so it is sent in-band as
//! `data: {"error": {...}}` followed by `[DONE]`, as LiteLLM does.
//!
//! When the client disconnects, hyper drops this body, which drops the upstream stream and
//! with it the upstream connection: the provider call is cancelled.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use switchyard_providers::ChunkStream;

use crate::error::ApiError;

const DONE: &[u8] = b"data: [DONE]\n\n";

/// How many times the relay yields without getting a new chunk before it writes what it has.
/// One is not always enough: the task that decodes upstream chunks may not be next in line.
const MAX_IDLE_YIELDS: u8 = 2;

pub fn body(chunks: ChunkStream) -> Body {
    Body::from_stream(SseFrames::new(chunks))
}

enum State {
    Streaming,
    /// An error frame was sent; `[DONE]` follows.
    Failed,
    Ended,
}

/// Turns chunks into SSE frames, coalescing frames that are ready back to back.
///
/// hyper writes (one `writev`) whenever the body answers `Pending`, and hyper's client hands
/// upstream chunks over one at a time through a channel: relaying each chunk the moment it is
/// taken would cost one system call per chunk even when the upstream sent twenty at once.
/// So after taking a chunk, the relay yields to let the upstream connection task decode
/// whatever else has already arrived, and writes the batch when yields bring nothing new.
/// Chunks that arrive spaced in time are still written as each arrives (one extra task poll of
/// delay); the first frame of a stream is never held back, so time to first byte is unchanged.
struct SseFrames {
    chunks: ChunkStream,
    state: State,
    /// Frames taken but not yet handed to hyper.
    batch: BytesMut,
    /// Yields in a row that brought no new chunk; the batch is written after
    /// [`MAX_IDLE_YIELDS`] of them.
    idle_yields: u8,
    /// Whether any frame has been handed to hyper yet.
    started: bool,
    /// A pending yield to the back of the run queue. A plain self-wake would land in tokio's
    /// LIFO slot and run the relay again before the upstream connection task.
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl SseFrames {
    fn new(chunks: ChunkStream) -> Self {
        Self {
            chunks,
            state: State::Streaming,
            batch: BytesMut::new(),
            idle_yields: 0,
            started: false,
            yielding: None,
        }
    }

    fn push_frame(&mut self, payload: &[u8]) {
        self.batch.reserve(payload.len() + 8);
        self.batch.put_slice(b"data: ");
        self.batch.put_slice(payload);
        self.batch.put_slice(b"\n\n");
    }

    fn take_batch(&mut self) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.started = true;
        self.idle_yields = 0;
        Poll::Ready(Some(Ok(self.batch.split().freeze())))
    }
}

impl Stream for SseFrames {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(yielding) = self.yielding.as_mut() {
            if yielding.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.yielding = None;
        }
        loop {
            match self.state {
                State::Ended if self.batch.is_empty() => return Poll::Ready(None),
                State::Ended => return self.take_batch(),
                State::Failed => {
                    self.batch.put_slice(DONE);
                    self.state = State::Ended;
                }
                State::Streaming => match self.chunks.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        self.push_frame(chunk.as_bytes());
                        if !self.started {
                            return self.take_batch();
                        }
                        self.idle_yields = 0;
                    }
                    Poll::Ready(Some(Err(error))) => {
                        tracing::warn!(%error, "upstream stream failed after the first byte");
                        let error = ApiError::from_class(&error);
                        self.push_frame(&error.to_json_bytes());
                        self.state = State::Failed;
                    }
                    Poll::Ready(None) => {
                        self.batch.put_slice(DONE);
                        self.state = State::Ended;
                    }
                    Poll::Pending if self.batch.is_empty() => return Poll::Pending,
                    Poll::Pending if self.idle_yields < MAX_IDLE_YIELDS => {
                        // Let the upstream connection task run, then come back for more.
                        self.idle_yields += 1;
                        let mut yielding = Box::pin(tokio::task::yield_now());
                        if yielding.as_mut().poll(cx).is_pending() {
                            self.yielding = Some(yielding);
                            return Poll::Pending;
                        }
                    }
                    Poll::Pending => return self.take_batch(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use switchyard_llm_types::ChunkJson;
    use switchyard_providers::ProviderError;

    async fn collect(chunks: ChunkStream) -> String {
        let frames: Vec<Bytes> = SseFrames::new(chunks)
            .map(|frame| match frame {
                Ok(bytes) => bytes,
                Err(never) => match never {},
            })
            .collect()
            .await;
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn frames_chunks_and_ends_with_done() {
        let chunks = futures::stream::iter(vec![
            Ok(ChunkJson::from_bytes(Bytes::from_static(b"{\"a\":1}"))),
            Ok(ChunkJson::from_bytes(Bytes::from_static(b"{\"b\":2}"))),
        ])
        .boxed();
        assert_eq!(
            collect(chunks).await,
            "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n"
        );
    }

    #[tokio::test]
    async fn an_error_mid_stream_is_sent_in_band_then_done() {
        let chunks = futures::stream::iter(vec![
            Ok(ChunkJson::from_bytes(Bytes::from_static(b"{\"a\":1}"))),
            Err(ProviderError::Connection {
                provider: "OpenAI",
                message: "reset".into(),
            }),
        ])
        .boxed();
        let text = collect(chunks).await;
        assert!(
            text.starts_with("data: {\"a\":1}\n\ndata: {\"error\":{"),
            "{text}"
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
    }
}

#[cfg(test)]
mod batching_tests {
    use super::*;
    use futures::StreamExt;
    use switchyard_llm_types::ChunkJson;

    /// Upstream chunks handed over one at a time by another task (as hyper's client does)
    /// reach the client in few writes when they are already available.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn chunks_available_together_are_coalesced() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<ChunkJson>(1);
        tokio::spawn(async move {
            for index in 0..20 {
                let chunk = ChunkJson::from_bytes(Bytes::from(format!("{{\"i\":{index}}}")));
                if sender.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        let chunks = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (Ok(chunk), receiver))
        })
        .boxed();
        // Both tasks run on the runtime's worker, as the server's and the upstream's
        // connection tasks do (the test body itself runs outside the worker).
        let batches: Vec<Bytes> = tokio::spawn(
            SseFrames::new(chunks)
                .map(|frame| match frame {
                    Ok(bytes) => bytes,
                    Err(never) => match never {},
                })
                .collect(),
        )
        .await
        .unwrap();
        let text: String = batches
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(text.matches("data: {").count(), 20);
        assert!(text.ends_with("data: [DONE]\n\n"));
        assert!(batches.len() <= 4, "{} batches", batches.len());
    }
}
