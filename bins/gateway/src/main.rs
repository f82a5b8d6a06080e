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

use crate::cli::{Cli, Command, ServeArgs};

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
    let engine = Switchyard::from_config(config)?;
    for warning in engine.warnings() {
        tracing::warn!("{warning}");
    }
    let gateway = Gateway::new(engine)?;
    let runtime = cli::runtime(args)?;
    runtime.block_on(async {
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

/// `switchyard check`: load and validate the config, print the resolved model groups.
fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let config = switchyard::config::load_file(path)?;
    let engine = Switchyard::from_config(config)?;
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
    match Gateway::new(engine.clone()) {
        Ok(_) => writeln!(out, "auth: master key set")?,
        Err(error) => writeln!(out, "auth: {error}")?,
    }
    for warning in engine.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out, "ok")?;
    Ok(())
}
