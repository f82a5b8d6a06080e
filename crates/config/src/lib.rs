//! LiteLLM-format `config.yaml` → validated, immutable Switchyard settings.
//!
//! Loading runs in two phases, so `switchyard check` and the server share one code path:
//! 1. [`raw`]: read the YAML (and its `include:` files), apply `environment_variables`, and
//!    resolve every `os.environ/NAME` string against an [`Env`] overlay — never mutating the
//!    process environment, so loading is testable and thread-safe.
//! 2. [`settings`]: turn each section into typed settings. Every error names the dotted field
//!    path and the reason; keys we do not act on yet are collected into
//!    [`Config::unsupported`] for one start-up warning instead of being silently ignored.
//!
//! # Layout
//! - [`env`] — the environment overlay and `os.environ/` resolution.
//! - [`fields`] — typed extraction of one YAML mapping with path-naming errors.
//! - [`settings`] — the typed sections (`model_list`, `router_settings`, ...).
//! - [`deployment_id`] — LiteLLM-compatible deployment ids for entries without `model_info.id`.
//! - [`secret`] — a string that never prints.

pub mod deployment_id;
pub mod env;
pub mod fields;
mod raw;
pub mod secret;
pub mod settings;

use std::path::{Path, PathBuf};

pub use env::Env;
pub use secret::Secret;
pub use settings::{
    Config, GeneralSettings, LitellmParams, LitellmSettings, ModelEntry, ModelInfo, RouterRedis,
    RouterSettings, RoutingStrategyArgs,
};

/// Why a config could not be loaded. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: invalid YAML: {reason}")]
    Yaml { file: PathBuf, reason: String },
    #[error("{path}: environment variable {name} is not set (referenced as os.environ/{name})")]
    MissingEnv { path: String, name: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl ConfigError {
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Loads a config file against the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, Env::from_process())
}

/// Loads a config file against the given environment (tests pass a fixed one).
pub fn load_file_with_env(path: &Path, env: Env) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut config = load_str(&text, path, base_dir, env)?;
    config.source = Some(path.to_owned());
    Ok(config)
}

/// Loads config text; `file` names it in errors, `base_dir` anchors relative `include:` paths.
pub fn load_str(text: &str, file: &Path, base_dir: &Path, env: Env) -> Result<Config, ConfigError> {
    let document = raw::read_document(text, file, base_dir)?;
    settings::Config::from_document(document, env)
}
