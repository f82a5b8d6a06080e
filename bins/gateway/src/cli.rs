//! Command-line flags (LiteLLM's names, so existing start scripts keep working), logging and
//! the runtime.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM gateway compatible with LiteLLM Proxy"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate a config, and print the resolved model groups and deployments.
    Check(CheckArgs),
    /// Apply pending database migrations (PostgreSQL from database_url / DATABASE_URL, else
    /// the embedded store in --data-dir) and exit.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    pub config: PathBuf,
    /// Directory of the embedded store (used when no database URL is configured).
    #[arg(
        long = "data-dir",
        alias = "data_dir",
        env = "SWITCHYARD_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// LiteLLM-format config.yaml.
    #[arg(long, short = 'c', env = "CONFIG_FILE_PATH")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, env = "PORT", default_value_t = 4000)]
    pub port: u16,
    /// Directory of the embedded store (virtual keys, users, teams, spend), used when no
    /// database URL is configured (general_settings.database_url / DATABASE_URL).
    #[arg(
        long = "data-dir",
        alias = "data_dir",
        env = "SWITCHYARD_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// Runtime worker threads (LiteLLM's worker processes); default: one per core.
    #[arg(long = "num_workers", alias = "num-workers", env = "NUM_WORKERS")]
    pub num_workers: Option<usize>,
    /// Debug-level logs.
    #[arg(long = "detailed_debug", alias = "detailed-debug")]
    pub detailed_debug: bool,
    /// Info-level logs (the default).
    #[arg(long)]
    pub debug: bool,
    /// Validate the config and exit (same as `switchyard check`).
    #[arg(long = "validate_config", alias = "validate-config")]
    pub validate_config: bool,
    /// LiteLLM server-runner flags, accepted so start scripts keep working; they have no
    /// effect here (one process serves on all cores).
    #[arg(long = "run_gunicorn", hide = true)]
    pub run_gunicorn: bool,
    #[arg(long = "run_hypercorn", hide = true)]
    pub run_hypercorn: bool,
    #[arg(long = "run_granian", hide = true)]
    pub run_granian: bool,
    #[arg(long = "telemetry", hide = true, num_args = 0..=1)]
    pub telemetry: Option<Option<String>>,
    #[arg(long = "max_requests_before_restart", hide = true)]
    pub max_requests_before_restart: Option<u64>,
}

pub fn init_logging(args: &ServeArgs, json: bool) {
    let default_level = if args.detailed_debug {
        "debug"
    } else {
        match std::env::var("LITELLM_LOG")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Ok("debug") => "debug",
            Ok("error") => "error",
            Ok("warning") | Ok("warn") => "warn",
            _ => "info",
        }
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn runtime(args: &ServeArgs) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = args
        .num_workers
        .or_else(|| {
            std::env::var("SWITCHYARD_WORKER_THREADS")
                .ok()?
                .parse()
                .ok()
        })
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    // One worker: a current-thread runtime serves everything on the calling thread, with no
    // hand-off between an accept thread and a worker (measurably cheaper per request).
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build()
}
