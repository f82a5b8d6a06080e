//! Which backend to open, chosen from LiteLLM's `DATABASE_URL` convention.
//!
//! A `postgres://` or `postgresql://` URL selects PostgreSQL (a LiteLLM database opens as
//! is); no URL selects the embedded SQLite file `<data_dir>/switchyard.sqlite`, so a
//! gateway with keys and budgets runs with no server to operate.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// File name of the embedded database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "switchyard.sqlite";

/// Default size of the PostgreSQL connection pool.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10;

/// Where the store lives. `Debug` never prints the URL: it may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Postgres {
        /// The connection URL as given (`postgresql://user:pass@host:port/db?...`).
        url: String,
        max_connections: usize,
    },
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
}

/// The two backends, for logs and for callers that must know (e.g. `switchyard migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

impl StoreConfig {
    /// Selects the backend: a PostgreSQL URL, or (none or blank) SQLite in `data_dir`.
    /// Any other scheme is an error rather than a silent fallback, so a typo in
    /// `DATABASE_URL` cannot send production data to a local file.
    pub fn from_url(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(StoreConfig::Sqlite {
                path: data_dir.join(SQLITE_FILE_NAME),
            }),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(StoreConfig::Postgres {
                    url: u.to_owned(),
                    max_connections: DEFAULT_MAX_CONNECTIONS,
                })
            }
            Some(u) => {
                // Name only the scheme: the rest of the URL may hold credentials.
                let scheme = u.split_once("://").map_or("(none)", |(s, _)| s);
                Err(StoreError::Config(format!(
                    "unsupported database URL scheme {scheme:?}; expected postgres:// or postgresql://"
                )))
            }
        }
    }

    /// Sets the PostgreSQL pool size (ignored for SQLite, which uses one connection).
    pub fn with_max_connections(mut self, n: usize) -> Self {
        if let StoreConfig::Postgres {
            max_connections, ..
        } = &mut self
        {
            *max_connections = n.max(1);
        }
        self
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            StoreConfig::Postgres { .. } => BackendKind::Postgres,
            StoreConfig::Sqlite { .. } => BackendKind::Sqlite,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Postgres {
                max_connections, ..
            } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .field("max_connections", max_connections)
                .finish(),
            StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_backend_by_url() {
        let dir = Path::new("/data");
        assert_eq!(
            StoreConfig::from_url(None, dir).unwrap(),
            StoreConfig::Sqlite {
                path: PathBuf::from("/data/switchyard.sqlite")
            }
        );
        assert_eq!(
            StoreConfig::from_url(Some("  "), dir).unwrap().kind(),
            BackendKind::Sqlite
        );
        for u in ["postgres://u@h/db", "postgresql://u:p@h:5432/db"] {
            assert_eq!(
                StoreConfig::from_url(Some(u), dir).unwrap().kind(),
                BackendKind::Postgres
            );
        }
        let err = StoreConfig::from_url(Some("mysql://root:hunter2@h/db"), dir).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn debug_redacts_the_url() {
        let c = StoreConfig::from_url(Some("postgres://u:hunter2@h/db"), Path::new("/")).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
