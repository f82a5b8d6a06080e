//! One closed-loop worker: one keep-alive connection, one request at a time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::CONNECTION;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::sse::DataLineCounter;
use crate::Target;

/// Highest latency the histograms hold exactly (one hour, in µs); longer ones are clamped.
const MAX_TRACKED_US: u64 = 3_600_000_000;
/// Pause after a failed connect so a dead target does not turn into a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Figures of one worker, or of all of them once merged. Only requests *started* inside the
/// measured window count, except `total_requests`, which also counts the warm-up (the benchmark
/// divides the server's CPU time over the whole run by it).
pub(crate) struct Stats {
    /// Request → last body byte, 2xx responses only (µs).
    pub latency: Histogram<u64>,
    /// Request → first body byte, 2xx responses only (µs).
    pub ttfb: Histogram<u64>,
    /// Responses received in full, any status.
    pub requests: u64,
    pub ok: u64,
    pub errors_non_2xx: u64,
    /// Connect, send or body-read failures (including bodies cut off mid-stream).
    pub errors_io: u64,
    pub total_requests: u64,
    /// `data:` lines seen in 2xx responses.
    pub data_lines: u64,
    pub status_counts: BTreeMap<u16, u64>,
    /// The first I/O error seen, to tell "connection refused" from "reset mid-body".
    pub first_error: Option<String>,
}

impl Stats {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)?,
            ttfb: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)?,
            requests: 0,
            ok: 0,
            errors_non_2xx: 0,
            errors_io: 0,
            total_requests: 0,
            data_lines: 0,
            status_counts: BTreeMap::new(),
            first_error: None,
        })
    }

    pub(crate) fn merge(&mut self, other: Stats) -> Result<()> {
        self.latency.add(&other.latency)?;
        self.ttfb.add(&other.ttfb)?;
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors_non_2xx += other.errors_non_2xx;
        self.errors_io += other.errors_io;
        self.total_requests += other.total_requests;
        self.data_lines += other.data_lines;
        for (status, count) in other.status_counts {
            *self.status_counts.entry(status).or_default() += count;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }

    fn io_error(&mut self, measured: bool, error: &anyhow::Error) {
        if measured {
            self.errors_io += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(format!("{error:#}"));
        }
    }

    fn response(&mut self, measured: bool, started: Instant, outcome: &Outcome) {
        self.total_requests += 1;
        if !measured {
            return;
        }
        self.requests += 1;
        *self
            .status_counts
            .entry(outcome.status.as_u16())
            .or_default() += 1;
        if !outcome.status.is_success() {
            self.errors_non_2xx += 1;
            return;
        }
        self.ok += 1;
        self.data_lines += outcome.data_lines;
        self.latency
            .saturating_record(micros(outcome.finished - started));
        if let Some(first_byte) = outcome.first_byte {
            self.ttfb.saturating_record(micros(first_byte - started));
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

struct Outcome {
    status: StatusCode,
    first_byte: Option<Instant>,
    finished: Instant,
    data_lines: u64,
    /// The server said `connection: close`: open a new connection for the next request.
    closing: bool,
}

/// Sends requests back to back until `deadline`; whatever is in flight then is abandoned.
pub(crate) async fn run(
    target: Arc<Target>,
    measure_start: Instant,
    deadline: Instant,
) -> Result<Stats> {
    let mut stats = Stats::new()?;
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < deadline {
        let mut sender = match connection.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => match timeout_at(deadline, connect(target.addr)).await {
                Err(_deadline) => break,
                Ok(Ok(sender)) => sender,
                Ok(Err(error)) => {
                    stats.io_error(Instant::now() >= measure_start, &error);
                    sleep_until((Instant::now() + RECONNECT_BACKOFF).min(deadline)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let measured = started >= measure_start;
        match timeout_at(deadline, exchange(&mut sender, &target)).await {
            Err(_deadline) => break,
            // The connection is dropped; the next iteration opens a new one.
            Ok(Err(error)) => stats.io_error(measured, &error),
            Ok(Ok(outcome)) => {
                stats.response(measured, started, &outcome);
                if !outcome.closing {
                    connection = Some(sender);
                }
            }
        }
    }
    Ok(stats)
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    // Requests are small single writes; never let Nagle hold one back.
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(sender: &mut SendRequest<Full<Bytes>>, target: &Target) -> Result<Outcome> {
    sender.ready().await?;
    let mut request = Request::new(Full::new(target.body.clone()));
    *request.method_mut() = target.method.clone();
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = target.headers.clone();
    let response = sender.send_request(request).await?;
    let status = response.status();
    let closing = response
        .headers()
        .get(CONNECTION)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut counter = DataLineCounter::default();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            if first_byte.is_none() && !data.is_empty() {
                first_byte = Some(Instant::now());
            }
            if target.stream {
                counter.feed(data);
            }
        }
    }
    Ok(Outcome {
        status,
        first_byte,
        finished: Instant::now(),
        data_lines: counter.count(),
        closing,
    })
}
