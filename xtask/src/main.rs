//! `cargo xtask`: the project's only automation entry point.
//!
//! - `cargo xtask test`  — every test, exactly what CI and the README run.
//! - `cargo xtask bench` — the gateway benchmark harness (see `docs/benchmarks.md`).
//! - `cargo xtask ci`    — lint gates, then `test`.

use clap::{Parser, Subcommand};

mod bench;
mod test;

#[derive(Parser)]
#[command(name = "xtask", about = "Switchyard project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every test: Rust unit and end-to-end tests, and the OpenAI and Anthropic SDK client tests.
    Test(test::TestArgs),
    /// Formatting and clippy gates, then every test.
    Ci(test::TestArgs),
    /// Benchmark the gateway against a mock upstream (direct vs through the gateway).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Ci(args) => test::ci(&args),
        Command::Bench(args) => bench::run(&args),
    }
}
