//! `cargo xtask test` and `cargo xtask ci`.
//!
//! `test` is the one command that runs every test (the README and `.ci/run` call it):
//! 1. a Python virtualenv with the official OpenAI and Anthropic SDKs for the real-client
//!    tests (`.venv/`, from `tests/python/requirements.txt`), and the packaged embedding
//!    model for the semantic-cache evaluation,
//! 2. the gateway binary, which the end-to-end tests spawn,
//! 3. every Rust test of the workspace (nextest when installed, else `cargo test`), and the
//!    doc tests,
//! 4. the SDK example, run for real against its config.
//!
//! `ci` first checks formatting and clippy, then runs `test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Skip the Python SDK test setup (the SDK tests then fail loudly if they run).
    #[arg(long)]
    pub no_python: bool,
}

pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let mut envs: Vec<(String, String)> = Vec::new();
    if !args.no_python {
        let python = python_venv(&root)?;
        envs.push(("SWITCHYARD_PYTHON".into(), python.display().to_string()));
        envs.push(("SWITCHYARD_REQUIRE_PYTHON".into(), "1".into()));
        // The evaluation then runs for real; only a failed install lets it skip.
        match embedding_model(&root, &python) {
            Ok(()) => envs.push(("SWITCHYARD_REQUIRE_EMBEDDING_MODEL".into(), "1".into())),
            #[allow(clippy::print_stderr, reason = "a developer tool's warning")]
            Err(error) => eprintln!(
                "warning: the embedding model for the semantic-cache evaluation could not be \
                 installed, so that test is skipped: {error:#}"
            ),
        }
    }
    cargo(&root, &["build", "--package", "switchyard-gateway"], &envs)?;
    if has_nextest(&root) {
        cargo(
            &root,
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            &envs,
        )?;
    } else {
        cargo(&root, &["test", "--workspace", "--no-fail-fast"], &envs)?;
    }
    cargo(&root, &["test", "--workspace", "--doc"], &envs)?;
    cargo(
        &root,
        &[
            "run",
            "--package",
            "switchyard-examples",
            "--example",
            "sdk_chat",
        ],
        &envs,
    )?;
    Ok(())
}

pub fn ci(args: &TestArgs) -> anyhow::Result<()> {
    let root = workspace_root()?;
    cargo(&root, &["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run(args)
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask must live one level below the workspace root")
}

fn cargo(root: &Path, args: &[&str], envs: &[(String, String)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn has_nextest(root: &Path) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .args(["nextest", "--version"])
        .current_dir(root)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Creates (once) `.venv` with the packages in `tests/python/requirements.txt`.
fn python_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    let requirements = root.join("tests").join("python").join("requirements.txt");
    let stamp = venv.join(".requirements-installed");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) && python.exists()
    {
        return Ok(python);
    }
    if !python.exists() {
        run_checked(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv .venv (install python3 and python3-venv)",
        )?;
    }
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install -r tests/python/requirements.txt",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Installs `tests/python/requirements-embedding.txt` into the venv (once per version of the
/// file). `--no-deps`: the model package declares sentence-transformers (and so PyTorch,
/// gigabytes) for its own loader, which `tests/python/embedding_server.py` does not use.
fn embedding_model(root: &Path, python: &Path) -> anyhow::Result<()> {
    let requirements = root
        .join("tests")
        .join("python")
        .join("requirements-embedding.txt");
    let stamp = root.join(".venv").join(".embedding-installed");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    run_checked(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "-r",
            ])
            .arg(&requirements),
        "pip install --no-deps -r tests/python/requirements-embedding.txt",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
