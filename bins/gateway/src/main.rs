//! `switchyard`: the gateway binary. Parses the command line, sets up logging and the runtime,
//! and hands over to the `switchyard-server` library.

mod cli;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchyard::Switchyard;
use switchyard_server::{Gateway, ShutdownSignal};
use switchyard_store::{BackendKind, Store, StoreConfig};

use crate::cli::{Cli, Command, MigrateArgs, ServeArgs};

/// Short-lived request buffers dominate allocation; mimalloc handles them far cheaper than
/// the system allocator (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long in-flight requests may run after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Some(Command::Check(args)) => check(&args.config),
        Some(Command::Migrate(args)) => migrate(args),
        None if cli.serve.validate_config => match &cli.serve.config {
            Some(config) => check(config),
            None => Err(anyhow::anyhow!("--validate_config needs --config FILE")),
        },
        None => serve(&cli.serve),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut stderr = std::io::stderr();
            let _ = writeln!(stderr, "error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config_path = args.config.clone().context(
        "no config file: pass --config FILE (or set CONFIG_FILE_PATH); see examples/quickstart.yaml",
    )?;
    let config = switchyard::config::load_file(&config_path)?;
    cli::init_logging(args, config.litellm_settings.json_logs.unwrap_or(false));
    let runtime = cli::runtime(args)?;
    // The engine is built inside the runtime: a Redis cache starts its connection tasks there.
    let engine = {
        let _runtime = runtime.enter();
        Switchyard::from_config(config)?
    };
    for warning in engine.warnings() {
        tracing::warn!("{warning}");
    }
    engine.load_tokenizers();
    // Refuse a weak master key before creating or touching any database.
    Gateway::check_master_key(&engine)?;
    let store_config = StoreConfig::from_url(engine.config().database_url(), &args.data_dir)?;
    runtime.block_on(async {
        let store = open_store(&store_config).await?;
        let gateway = Gateway::new(engine, Some(store))?;
        gateway.load_db_models().await;
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let local = listener.local_addr()?;
        tracing::info!(
            "Switchyard {} listening on http://{local} (config {})",
            switchyard::VERSION,
            config_path.display()
        );
        switchyard_server::serve(listener, gateway, ShutdownSignal::wait(), SHUTDOWN_GRACE).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Opens (and migrates) the store; the embedded default needs no server, so a quickstart
/// gateway has virtual keys too.
async fn open_store(config: &StoreConfig) -> anyhow::Result<Store> {
    let store = Store::connect(config).await.with_context(|| match config {
        StoreConfig::Sqlite { path } => {
            format!("cannot open the embedded store {}", path.display())
        }
        StoreConfig::Postgres { .. } => {
            "cannot open the PostgreSQL store (general_settings.database_url / DATABASE_URL)"
                .to_owned()
        }
    })?;
    match config {
        StoreConfig::Sqlite { path } => {
            tracing::info!("store: embedded SQLite at {}", path.display())
        }
        StoreConfig::Postgres { .. } => tracing::info!("store: PostgreSQL"),
    }
    Ok(store)
}

/// `switchyard migrate`: apply pending migrations and exit.
fn migrate(args: &MigrateArgs) -> anyhow::Result<()> {
    let config = switchyard::config::load_file(&args.config)?;
    let store_config = StoreConfig::from_url(config.database_url(), &args.data_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let applied = runtime.block_on(async {
        // `connect` applies what is pending; a second run reports nothing left to apply.
        let store = open_store(&store_config).await?;
        anyhow::Ok(store.migrate().await?)
    })?;
    let backend = match store_config.kind() {
        BackendKind::Postgres => "PostgreSQL",
        BackendKind::Sqlite => "embedded SQLite",
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "store: {backend}")?;
    writeln!(
        out,
        "migrations: up to date{}",
        if applied.is_empty() {
            String::new()
        } else {
            format!(" (applied {applied:?})")
        }
    )?;
    Ok(())
}

/// `switchyard check`: load and validate the config, print the resolved model groups.
fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let config = switchyard::config::load_file(path)?;
    // A Redis cache in the config starts its connection tasks on a runtime, even here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = {
        let _runtime = runtime.enter();
        Switchyard::from_config(config)?
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "config: {}", path.display())?;
    let groups = engine.describe_groups();
    writeln!(out, "model groups: {}", groups.len())?;
    for group in &groups {
        writeln!(out, "  {}", group.name)?;
        for deployment in &group.deployments {
            let base = match (&deployment.api_base, deployment.provider) {
                (Some(base), _) => base.as_str(),
                (None, "Mock") => "(built-in mock)",
                (None, _) => "-",
            };
            writeln!(
                out,
                "    - {}  id={}  api_base={base}",
                deployment.model, deployment.id
            )?;
        }
    }
    let aliases = &engine.config().router_settings.model_group_alias;
    if !aliases.is_empty() {
        writeln!(out, "aliases:")?;
        for (alias, target) in aliases {
            let hidden = if target.hidden { " (hidden)" } else { "" };
            writeln!(out, "  {alias} -> {}{hidden}", target.group)?;
        }
    }
    match Gateway::check_master_key(&engine) {
        Ok(_) => writeln!(out, "auth: master key set")?,
        Err(error) => writeln!(out, "auth: {error}")?,
    }
    match engine.config().database_url() {
        Some(_) => writeln!(out, "store: PostgreSQL (database_url)")?,
        None => writeln!(out, "store: embedded SQLite (--data-dir)")?,
    }
    for warning in engine.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out, "ok")?;
    Ok(())
}
