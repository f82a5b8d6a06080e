//! A fast OpenAI-compatible mock upstream with fault injection.
//!
//! Used two ways:
//! - in-process by end-to-end tests: [`MockUpstream::start`] binds `127.0.0.1:0`, the test points
//!   the gateway at [`MockUpstream::base_url`], and afterwards inspects [`MockUpstream::recorded`]
//!   and the stream counters;
//! - as its own process by the benchmark (`mock-upstream --no-record`, see `src/main.rs`).
//!
//! It is built on hyper's HTTP/1 server directly (no framework, no per-request routing tables)
//! and renders responses with string templates rather than `serde_json::Value` trees, so that in
//! the benchmark the mock's cost is small next to the gateway's.
//!
//! Endpoints (each with and without the `/v1` prefix): `POST /chat/completions`,
//! `POST /completions`, `POST /embeddings`, `GET /models`; and, with fixed answers in their
//! shape, `POST /responses` (streamed too), `GET`/`DELETE /responses/{id}`,
//! `POST /moderations`, `POST /images/generations`, `POST /audio/speech`,
//! `POST /audio/transcriptions` (multipart; the answer names the `model` field it received). Behaviour is steered per request by
//! an optional `"mock_upstream": {..}` object in the JSON body or by `x-mock-*` headers; see
//! [`faults`](crate::faults) for the keys.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

mod body;
mod endpoints;
mod faults;
mod handler;
mod render;

/// Content of every reply unless the request overrides it with `content`.
pub const DEFAULT_CONTENT: &str = "Hello from the mock upstream.";

/// What `POST /audio/speech` answers (`audio/mpeg`).
pub use endpoints::SPEECH_BYTES;

/// Number of content chunks in a stream unless the request overrides it with `chunks`.
pub const DEFAULT_CHUNKS: usize = 20;

/// Server-wide settings; per-request behaviour comes from the request itself.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Keep a copy of every request for [`MockUpstream::recorded`]. The benchmark turns this off
    /// so the mock does not grow without bound or pay for the copies.
    pub record: bool,
    /// Content chunks per stream when the request does not say.
    pub default_chunks: usize,
    /// Reply text when the request does not say.
    pub default_content: String,
    /// Let stream frames that have no `chunk_delay_ms` between them share writes (one segment
    /// for the whole stream, typically) instead of one write per frame. See `docs/benchmarks.md`
    /// for why the benchmark may want this.
    pub coalesce_stream_chunks: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            record: true,
            default_chunks: DEFAULT_CHUNKS,
            default_content: DEFAULT_CONTENT.to_owned(),
            coalesce_stream_chunks: false,
        }
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The query string without the `?`, if there was one.
    pub query: Option<String>,
    /// Header names are lower-case (as hyper normalises them), in arrival order.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body, or `Null` if the body was empty or not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub(crate) options: MockOptions,
    pub(crate) recorded: Mutex<Vec<RecordedRequest>>,
    pub(crate) requests: AtomicUsize,
    pub(crate) streams_cancelled: AtomicUsize,
    pub(crate) streams_completed: AtomicUsize,
    pub(crate) streams_aborted: AtomicUsize,
    /// Source of unique response ids (`chatcmpl-mock-N`).
    pub(crate) next_id: AtomicU64,
}

/// A running mock server. Dropping it stops the server and closes every open connection.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a recording server on `127.0.0.1` with an OS-assigned port.
    pub async fn start() -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::start_on(listener).await
    }

    /// Starts a recording server on a listener the caller bound.
    pub async fn start_on(listener: TcpListener) -> std::io::Result<MockUpstream> {
        Self::start_with(listener, MockOptions::default()).await
    }

    /// Starts a server with explicit options (e.g. recording off for the benchmark).
    pub async fn start_with(
        listener: TcpListener,
        options: MockOptions,
    ) -> std::io::Result<MockUpstream> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            recorded: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            streams_cancelled: AtomicUsize::new(0),
            streams_completed: AtomicUsize::new(0),
            streams_aborted: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(MockUpstream {
            addr,
            shared,
            accept_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, the form an OpenAI client or the gateway's `api_base` expects.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request seen so far, in arrival order (empty when recording is off).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the recorded requests (the counters keep counting).
    pub fn clear_recorded(&self) {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Requests received, counted even when recording is off.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Streams whose client went away before the last chunk was handed to the connection.
    pub fn streams_cancelled(&self) -> usize {
        self.shared.streams_cancelled.load(Ordering::SeqCst)
    }

    /// Streams whose every chunk, through `data: [DONE]`, was handed to the connection.
    pub fn streams_completed(&self) -> usize {
        self.shared.streams_completed.load(Ordering::SeqCst)
    }

    /// Streams the mock itself broke off because the request asked for `fail_after_chunks`.
    pub fn streams_aborted(&self) -> usize {
        self.shared.streams_aborted.load(Ordering::SeqCst)
    }

    /// Waits (polling, up to `timeout`) until `predicate` holds; returns whether it did.
    ///
    /// Stream counters change when the server notices a client is gone, which happens a moment
    /// after the client drops its end; tests use this instead of a fixed sleep.
    pub async fn wait_until(&self, timeout: Duration, predicate: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if predicate(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection task.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in a JoinSet owned by this task, so stopping this task stops them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Typically EMFILE under load: back off instead of spinning on the error.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow with every connection served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // Stream chunks are small writes; without TCP_NODELAY Nagle's algorithm would hold them
    // back waiting for ACKs and the client would see stalls instead of a steady stream.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| handler::handle(request, Arc::clone(&shared)));
    // A connection error (client reset, injected abort) only ends this connection.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
