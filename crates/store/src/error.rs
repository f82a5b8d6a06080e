//! [`StoreError`] and its mapping onto the gateway-wide [`ErrorClass`].
//!
//! Messages never carry secrets: no connection URL (it may hold a password), no raw key, no
//! id of a key row, and no database `DETAIL` text (PostgreSQL puts row values there). They
//! carry the entity, the constraint or column name, and the database's own short message.

use switchyard_llm_types::error::{ErrorClass, ErrorKind};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist. `id` is absent for key rows (see module docs).
    #[error("{entity} not found{}", id.as_ref().map(|i| format!(": {i}")).unwrap_or_default())]
    NotFound {
        entity: &'static str,
        id: Option<String>,
    },
    /// A primary-key or unique constraint rejected the write.
    #[error("{entity} already exists (constraint {constraint})")]
    Conflict {
        entity: &'static str,
        constraint: String,
    },
    /// A foreign-key, not-null or check constraint rejected the write.
    #[error("{entity}: {reason}")]
    Constraint {
        entity: &'static str,
        reason: String,
    },
    /// The caller asked for something the store cannot do (bad paging, non-finite amount).
    #[error("invalid store request: {0}")]
    InvalidInput(String),
    /// The database URL or data directory is unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// The database cannot be reached right now (connection refused, pool exhausted, the
    /// SQLite worker is gone, the file is locked).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed; nothing of it was applied (each run is one transaction).
    #[error("migration {version} ({name}) failed: {reason}")]
    Migration {
        version: u32,
        name: &'static str,
        reason: String,
    },
    /// Anything else: a bug, or a database in a shape we cannot read.
    #[error("database error: {0}")]
    Internal(String),
}

impl ErrorClass for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::Conflict { .. }
            | StoreError::Constraint { .. }
            | StoreError::InvalidInput(_) => ErrorKind::BadRequest,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::Config(_) | StoreError::Migration { .. } | StoreError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Maps a PostgreSQL error. Only SQLSTATE, constraint/column names and the primary message
/// are used; `DETAIL` (which quotes row values) is dropped.
pub(crate) fn from_pg(entity: &'static str, e: &tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict {
                entity,
                constraint: db.constraint().unwrap_or("unique").to_owned(),
            };
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
            || *code == SqlState::CHECK_VIOLATION
        {
            return StoreError::Constraint {
                entity,
                reason: db.message().to_owned(),
            };
        }
        // Class 08 (connection), 53 (resources), 57P0x (shutdown): retry later, not a bug.
        let c = code.code();
        if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") {
            return StoreError::Unavailable(db.message().to_owned());
        }
        return StoreError::Internal(format!("{} ({})", db.message(), c));
    }
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Internal(e.to_string())
}

pub(crate) fn from_pool(entity: &'static str, e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match from_pg(entity, &e) {
            // Failing to open a connection is unavailability, whatever the server said.
            StoreError::Internal(m) => StoreError::Unavailable(m),
            other => other,
        },
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Maps a SQLite error with the same classes as PostgreSQL's.
pub(crate) fn from_sqlite(entity: &'static str, e: &rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(f, msg) = e {
        let message = msg.clone().unwrap_or_else(|| f.to_string());
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE => {
                return StoreError::Conflict {
                    entity,
                    constraint: message,
                };
            }
            _ => {}
        }
        // Foreign-key failures do not always carry SQLITE_CONSTRAINT_FOREIGNKEY (a
        // RESTRICT on delete reports the bare class), so any other constraint class is a
        // rejected write, like PostgreSQL's foreign-key / not-null / check violations.
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Constraint {
                entity,
                reason: message,
            };
        }
        return match f.code {
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::DiskFull
            | rusqlite::ErrorCode::ReadOnly => StoreError::Unavailable(message),
            _ => StoreError::Internal(message),
        };
    }
    StoreError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_litellm_statuses() {
        let nf = StoreError::NotFound {
            entity: "key",
            id: None,
        };
        assert_eq!(nf.status(), 404);
        assert_eq!(nf.to_string(), "key not found");
        let conflict = StoreError::Conflict {
            entity: "team",
            constraint: "LiteLLM_TeamTable_pkey".into(),
        };
        assert_eq!(conflict.status(), 400);
        assert_eq!(StoreError::Unavailable("down".into()).status(), 503);
        assert_eq!(StoreError::Internal("x".into()).status(), 500);
    }
}
