//! `mock-upstream`: the mock as a process, for the benchmark and for manual testing.
//!
//! Prints exactly one line, `listening on http://ADDR`, once the socket is bound (so a parent
//! process that asked for `--port 0` learns the port), then serves until SIGTERM or SIGINT.

use std::io::Write as _;

use anyhow::Result;
use clap::Parser;
use switchyard_mock_upstream::{MockOptions, MockUpstream, DEFAULT_CHUNKS, DEFAULT_CONTENT};

#[derive(Parser, Debug)]
#[command(
    name = "mock-upstream",
    about = "OpenAI-compatible mock upstream with fault injection"
)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one (printed on the first line of stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Do not keep a copy of each request (the benchmark runs this way).
    #[arg(long)]
    no_record: bool,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Content chunks per stream when the request does not say.
    #[arg(long, default_value_t = DEFAULT_CHUNKS)]
    chunks: usize,
    /// Reply text when the request does not say.
    #[arg(long, default_value = DEFAULT_CONTENT)]
    content: String,
    /// Let undelayed stream frames share writes instead of one write per frame.
    #[arg(long)]
    coalesce_chunks: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    let options = MockOptions {
        record: !args.no_record,
        default_chunks: args.chunks,
        default_content: args.content,
        coalesce_stream_chunks: args.coalesce_chunks,
    };
    let mock = MockUpstream::start_with(listener, options).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", mock.addr())?;
        stdout.flush()?;
    }
    wait_for_shutdown_signal().await?;
    drop(mock);
    Ok(())
}

#[cfg(unix)]
async fn wait_for_shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_shutdown_signal() -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}
