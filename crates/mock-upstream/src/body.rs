//! Response bodies: a fixed buffer, or an SSE stream written one frame at a time.
//!
//! The stream body is a small state machine over pre-rendered frames rather than a channel fed
//! by a spawned task: no task, no channel, and its `Drop` tells exactly whether the client left
//! before the last frame was handed over (a cancelled stream).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::render::StreamFrames;
use crate::Shared;

/// The body of every mock response.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(Box<SseBody>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        MockBody::Full(Some(bytes.into()))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            MockBody::Stream(stream) => stream.poll_next_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Stream(stream) => stream.finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            // An exact hint lets hyper send `content-length` instead of chunked encoding.
            MockBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Hands out pre-rendered SSE frames one at a time.
pub(crate) struct SseBody {
    frames: StreamFrames,
    /// Frames handed out so far.
    next: usize,
    chunk_delay: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set after a frame is handed out: the next poll first returns `Pending` once.
    yield_before_next: bool,
    /// Whether frames without a delay between them still go out in separate writes.
    per_chunk_writes: bool,
    /// Frame index at which to break the connection (`fail_after_chunks`).
    abort_at: Option<usize>,
    finished: bool,
    aborted: bool,
    shared: Arc<Shared>,
}

impl SseBody {
    pub(crate) fn new(
        frames: StreamFrames,
        chunk_delay: Duration,
        fail_after_chunks: Option<usize>,
        shared: Arc<Shared>,
    ) -> Self {
        let per_chunk_writes = !shared.options.coalesce_stream_chunks;
        // `fail_after_chunks` counts content chunks: the role chunk (chat) always goes out first.
        let abort_at = fail_after_chunks
            .map(|chunks| frames.first_content_frame + chunks.min(frames.content_frames));
        Self {
            frames,
            next: 0,
            chunk_delay: (!chunk_delay.is_zero()).then_some(chunk_delay),
            sleep: None,
            yield_before_next: false,
            per_chunk_writes,
            abort_at,
            finished: false,
            aborted: false,
            shared,
        }
    }

    fn poll_next_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        } else if self.yield_before_next {
            // hyper's HTTP/1 dispatcher flushes its write buffer when the body is not ready, so
            // one `Pending` between frames puts each frame in its own write, as a real upstream
            // does. Without it (`coalesce_stream_chunks`) hyper gathers the whole undelayed
            // stream into one write, which is much cheaper for the mock.
            self.yield_before_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.abort_at == Some(self.next) {
            self.finished = true;
            self.aborted = true;
            self.shared.streams_aborted.fetch_add(1, Ordering::SeqCst);
            // A body error makes hyper drop the connection without the chunked terminator, so
            // the client sees a truncated response, like an upstream that crashed mid-stream.
            return Poll::Ready(Some(Err(io::Error::other(
                "mock_upstream: fail_after_chunks reached",
            ))));
        }
        let start = match self.next {
            0 => 0,
            index => self.frames.frame_ends[index - 1],
        };
        let Some(&end) = self.frames.frame_ends.get(self.next) else {
            self.finished = true;
            return Poll::Ready(None);
        };
        let frame = self.frames.buffer.slice(start..end);
        self.next += 1;
        if self.next == self.frames.frame_ends.len() {
            // The last frame is handed over: from here on the stream counts as completed even if
            // the client closes before reading it.
            self.finished = true;
            self.shared.streams_completed.fetch_add(1, Ordering::SeqCst);
        } else if let Some(delay) = self.chunk_delay {
            self.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        } else {
            // Even when coalescing, flush what was written before an injected abort: hyper
            // discards its unflushed buffer when the body fails.
            self.yield_before_next = self.per_chunk_writes || self.abort_at == Some(self.next);
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        // hyper drops the body early when the connection fails or the client goes away.
        if !self.finished && !self.aborted {
            self.shared.streams_cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}
