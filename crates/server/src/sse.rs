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
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use switchyard_providers::ChunkStream;

use crate::error::ApiError;

const DONE: &[u8] = b"data: [DONE]\n\n";

pub fn body(chunks: ChunkStream) -> Body {
    Body::from_stream(SseFrames {
        chunks,
        state: State::Streaming,
    })
}

enum State {
    Streaming,
    /// An error frame was sent; `[DONE]` follows.
    Failed,
    Ended,
}

struct SseFrames {
    chunks: ChunkStream,
    state: State,
}

fn frame(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 8);
    frame.put_slice(b"data: ");
    frame.put_slice(payload);
    frame.put_slice(b"\n\n");
    frame.freeze()
}

impl Stream for SseFrames {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.state {
            State::Ended => Poll::Ready(None),
            State::Failed => {
                self.state = State::Ended;
                Poll::Ready(Some(Ok(Bytes::from_static(DONE))))
            }
            State::Streaming => match self.chunks.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(frame(chunk.as_bytes())))),
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(%error, "upstream stream failed after the first byte");
                    self.state = State::Failed;
                    let error = ApiError::from_class(&error);
                    Poll::Ready(Some(Ok(frame(&error.to_json_bytes()))))
                }
                Poll::Ready(None) => {
                    self.state = State::Ended;
                    Poll::Ready(Some(Ok(Bytes::from_static(DONE))))
                }
            },
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
        let frames: Vec<Bytes> = SseFrames {
            chunks,
            state: State::Streaming,
        }
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
