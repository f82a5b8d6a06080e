//! `switchyard-loadgen`: a closed-loop HTTP/1.1 load generator for the benchmark.
//!
//! Each of `--concurrency` workers owns one keep-alive connection and sends its next request as
//! soon as the previous response has been read to the end (closed loop: the offered load adapts
//! to the server, so latency figures are not inflated by a queue inside the load generator).
//!
//! Runs `--warmup-secs` unmeasured, then `--duration-secs` measured, then stops by itself:
//! requests still in flight at the deadline are abandoned and not counted. Prints one JSON
//! object on stdout (see [`report`]). Only loopback targets are accepted: this tool exists to
//! measure a server on this machine, never to send load anywhere else.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use clap::Parser;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Uri};
use tokio::time::Instant;

mod report;
mod sse;
mod worker;

#[derive(Parser, Debug)]
#[command(
    name = "switchyard-loadgen",
    about = "Closed-loop HTTP/1.1 load generator (loopback only)"
)]
struct Args {
    /// Target URL, e.g. http://127.0.0.1:4000/v1/chat/completions (loopback hosts only).
    #[arg(long)]
    url: String,
    /// HTTP method; defaults to POST when a body is given, GET otherwise.
    #[arg(long)]
    method: Option<String>,
    /// Extra request header `name: value`; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body read from a file.
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Unmeasured seconds before the measurement (connections are warm when it starts).
    #[arg(long, default_value_t = 0.0)]
    warmup_secs: f64,
    /// Treat responses as SSE streams: also measure time to first body byte and count `data:`
    /// lines per response.
    #[arg(long)]
    stream: bool,
    /// Tokio worker threads; 1 runs everything on the calling thread (cheapest on a pinned core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// What every worker needs to build its requests; shared read-only.
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stream: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let target = Arc::new(target_from_args(&args)?);
    let warmup = seconds("--warmup-secs", args.warmup_secs)?;
    let duration = seconds("--duration-secs", args.duration_secs)?;
    if duration.is_zero() {
        bail!("--duration-secs must be positive");
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }

    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let summary = runtime.block_on(run(target, args.concurrency, warmup, duration))?;
    let report = report::render(&summary, args.concurrency, duration, args.stream);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{report}")?;
    stdout.flush()?;
    Ok(())
}

async fn run(
    target: Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<worker::Stats> {
    let start = Instant::now();
    let measure_start = start + warmup;
    let deadline = measure_start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(worker::run(Arc::clone(&target), measure_start, deadline));
    }
    let mut total = worker::Stats::new()?;
    while let Some(result) = tasks.join_next().await {
        total.merge(result.context("a worker task failed")??)?;
    }
    Ok(total)
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

fn target_from_args(args: &Args) -> Result<Target> {
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("--url {:?} is not a URL", args.url))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url must be http:// (TLS is not supported; the benchmark runs on loopback)");
    }
    let authority = uri.authority().context("--url needs a host")?.clone();
    let addr = loopback_addr(authority.host(), authority.port_u16().unwrap_or(80))?;

    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => Bytes::from(body.clone()),
        (None, Some(path)) => Bytes::from(
            std::fs::read(path)
                .with_context(|| format!("reading --body-file {}", path.display()))?,
        ),
        (None, None) => Bytes::new(),
    };
    let method = match &args.method {
        Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("--method {method:?} is not an HTTP method"))?,
        None if body.is_empty() => Method::GET,
        None => Method::POST,
    };

    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_str(authority.as_str())?);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header {header:?} must look like 'name: value'"))?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("bad header name in {header:?}"))?,
            HeaderValue::from_str(value.trim())
                .with_context(|| format!("bad header value in {header:?}"))?,
        );
    }
    if !body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }

    // Requests carry only the path; the host goes in the Host header (origin form, as HTTP/1.1
    // clients send to an origin server).
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let uri: Uri = path.parse()?;
    Ok(Target {
        addr,
        method,
        uri,
        headers,
        body,
        stream: args.stream,
    })
}

/// Resolves `host` without DNS, accepting only loopback addresses.
fn loopback_addr(host: &str, port: u16) -> Result<SocketAddr> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .with_context(|| format!("host {host:?} must be localhost or a loopback IP address"))?
    };
    if !ip.is_loopback() {
        bail!(
            "refusing to send load to {ip}: only loopback targets (127.0.0.0/8, ::1) are allowed"
        );
    }
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(loopback_addr("127.0.0.1", 80).is_ok());
        assert!(loopback_addr("127.1.2.3", 80).is_ok());
        assert!(loopback_addr("localhost", 80).is_ok());
        assert!(loopback_addr("[::1]", 80).is_ok());
        assert!(loopback_addr("10.0.0.1", 80).is_err());
        assert!(loopback_addr("192.168.1.1", 80).is_err());
        assert!(loopback_addr("example.com", 80).is_err());
    }

    #[test]
    fn targets_are_built_from_arguments() {
        let args = Args::parse_from([
            "switchyard-loadgen",
            "--url",
            "http://127.0.0.1:4000/v1/chat/completions?x=1",
            "--header",
            "Authorization: Bearer sk-1",
            "--body",
            "{}",
        ]);
        let target = target_from_args(&args).unwrap();
        assert_eq!(target.addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(target.method, Method::POST);
        assert_eq!(target.uri, "/v1/chat/completions?x=1");
        assert_eq!(target.headers["authorization"], "Bearer sk-1");
        assert_eq!(target.headers["host"], "127.0.0.1:4000");
        assert_eq!(target.headers["content-type"], "application/json");

        let args = Args::parse_from(["switchyard-loadgen", "--url", "https://127.0.0.1/"]);
        assert!(target_from_args(&args).is_err());
    }
}
