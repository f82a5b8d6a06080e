//! Embedded SQLite backend: one connection owned by a dedicated OS thread.
//!
//! rusqlite blocks, so no SQLite call may run on the async runtime. Each operation is sent
//! as a closure to the worker thread and its result comes back on a oneshot channel. One
//! connection serializes all writes, which is what SQLite does anyway, and makes
//! `spend = spend + ?` increments trivially exact; WAL mode keeps the file readable by
//! other processes (backups, `sqlite3` inspection) meanwhile.

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::backend::{Backend, Columns, FollowUp, Param, Statement};
use crate::config::BackendKind;
use crate::error::{from_sqlite, StoreError};
use crate::migrations::{Migration, BOOKKEEPING_TABLE};
use crate::schema::{Kind, Val};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Timestamp text format: fixed width, so string order is time order.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

pub(crate) struct SqliteBackend {
    jobs: mpsc::Sender<Job>,
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite worker thread has stopped".into())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    let conn = Connection::open(path).map_err(|e| from_sqlite("database", &e))?;
    let err = |e: rusqlite::Error| from_sqlite("database", &e);
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    // `journal_mode` answers with a row, so it is read rather than executed.
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(err)?;
    Ok(conn)
}

fn to_sql(v: Val) -> Result<SqlValue, StoreError> {
    Ok(match v {
        Val::Null => SqlValue::Null,
        Val::Text(s) => SqlValue::Text(s),
        Val::F64(x) => SqlValue::Real(x),
        Val::I64(x) => SqlValue::Integer(x),
        Val::Bool(b) => SqlValue::Integer(i64::from(b)),
        Val::Ts(t) => SqlValue::Text(t.format(TS_FORMAT).to_string()),
        Val::Json(j) => SqlValue::Text(
            serde_json::to_string(&j).map_err(|e| StoreError::Internal(e.to_string()))?,
        ),
        Val::TextArr(a) => SqlValue::Text(
            serde_json::to_string(&a).map_err(|e| StoreError::Internal(e.to_string()))?,
        ),
    })
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // SQLite's own CURRENT_TIMESTAMP form, should a row be written by hand.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| StoreError::Internal(format!("unreadable timestamp {s:?}")))
}

fn text<'a>(v: &ValueRef<'a>, kind: Kind) -> Result<&'a str, StoreError> {
    match v {
        ValueRef::Text(b) => std::str::from_utf8(b)
            .map_err(|_| StoreError::Internal("column holds invalid UTF-8".into())),
        _ => Err(StoreError::Internal(format!(
            "expected text for a {kind:?} column, found {:?}",
            v.data_type()
        ))),
    }
}

fn from_sql(v: ValueRef<'_>, kind: Kind) -> Result<Val, StoreError> {
    if let ValueRef::Null = v {
        return Ok(Val::Null);
    }
    let bad = || {
        StoreError::Internal(format!(
            "unexpected {:?} in a {kind:?} column",
            v.data_type()
        ))
    };
    Ok(match kind {
        Kind::Text => Val::Text(text(&v, kind)?.to_owned()),
        Kind::F64 => match v {
            ValueRef::Real(x) => Val::F64(x),
            ValueRef::Integer(i) => Val::F64(i as f64),
            _ => return Err(bad()),
        },
        Kind::I64 | Kind::I32 => match v {
            ValueRef::Integer(i) => Val::I64(i),
            _ => return Err(bad()),
        },
        Kind::Bool => match v {
            ValueRef::Integer(i) => Val::Bool(i != 0),
            _ => return Err(bad()),
        },
        Kind::Ts => Val::Ts(parse_ts(text(&v, kind)?)?),
        Kind::Json | Kind::JsonObj | Kind::JsonArr => Val::Json(
            serde_json::from_str(text(&v, kind)?)
                .map_err(|e| StoreError::Internal(format!("unreadable JSON column: {e}")))?,
        ),
        Kind::TextArr => Val::TextArr(
            serde_json::from_str(text(&v, kind)?)
                .map_err(|e| StoreError::Internal(format!("unreadable array column: {e}")))?,
        ),
    })
}

fn bind(params: Vec<Param>) -> Result<Vec<SqlValue>, StoreError> {
    params.into_iter().map(|(v, _)| to_sql(v)).collect()
}

impl SqliteBackend {
    /// Starts the worker thread and opens (creating if needed) the database file.
    pub(crate) async fn open(path: &Path) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), StoreError>>();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("switchyard-sqlite".into())
            .spawn(move || {
                let mut conn = match open_connection(&path) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Ends when the last `Store` clone (the last sender) is dropped.
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start SQLite worker: {e}")))?;
        ready_rx.await.map_err(|_| gone())??;
        Ok(Self { jobs })
    }

    /// Runs `f` on the worker thread and awaits its result without blocking the runtime.
    async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    async fn migrate(&self, migrations: &'static [Migration]) -> Result<Vec<u32>, StoreError> {
        self.call(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("migration", &e);
            // IMMEDIATE takes the write lock up front, so two processes migrating the same
            // file run one after the other instead of failing half way.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS \"{BOOKKEEPING_TABLE}\" (
                    \"version\" INTEGER NOT NULL PRIMARY KEY,
                    \"name\" TEXT NOT NULL,
                    \"applied_at\" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                )"
            ))
            .map_err(err)?;
            let done: HashSet<i64> = {
                let mut stmt = tx
                    .prepare(&format!("SELECT \"version\" FROM \"{BOOKKEEPING_TABLE}\""))
                    .map_err(err)?;
                let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(err)?;
                rows.collect::<Result<_, _>>().map_err(err)?
            };
            let mut applied = Vec::new();
            for m in migrations {
                if done.contains(&i64::from(m.version)) {
                    continue;
                }
                let fail = |e: rusqlite::Error| StoreError::Migration {
                    version: m.version,
                    name: m.name,
                    reason: from_sqlite("migration", &e).to_string(),
                };
                tx.execute_batch(m.sql).map_err(fail)?;
                tx.execute(
                    &format!(
                        "INSERT INTO \"{BOOKKEEPING_TABLE}\" (\"version\", \"name\") VALUES (?1, ?2)"
                    ),
                    rusqlite::params![i64::from(m.version), m.name],
                )
                .map_err(fail)?;
                applied.push(m.version);
            }
            tx.commit().map_err(err)?;
            Ok(applied)
        })
        .await
    }

    async fn columns(&self, tables: &'static [&'static str]) -> Result<Columns, StoreError> {
        self.call(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("schema", &e);
            let mut out = Columns::new();
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(err)?;
            for t in tables {
                let cols: HashSet<String> = stmt
                    .query_map([t], |r| r.get::<_, String>(0))
                    .map_err(err)?
                    .collect::<Result<_, _>>()
                    .map_err(err)?;
                if !cols.is_empty() {
                    out.insert((*t).to_owned(), cols);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn execute(
        &self,
        entity: &'static str,
        statements: Vec<Statement>,
    ) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite(entity, &e);
            let tx = conn.transaction().map_err(err)?;
            let mut n = 0u64;
            for (sql, params) in statements {
                let values = bind(params)?;
                let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
                n += stmt.execute(params_from_iter(values)).map_err(err)? as u64;
            }
            tx.commit().map_err(err)?;
            Ok(n)
        })
        .await
    }

    async fn query(
        &self,
        entity: &'static str,
        sql: String,
        params: Vec<Param>,
        out: Vec<Kind>,
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        self.call(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite(entity, &e);
            let values = bind(params)?;
            let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
            let mut rows = stmt.query(params_from_iter(values)).map_err(err)?;
            let mut result = Vec::new();
            // Every row is stepped, which also completes an UPDATE ... RETURNING.
            while let Some(row) = rows.next().map_err(err)? {
                let vals = out
                    .iter()
                    .enumerate()
                    .map(|(i, k)| from_sql(row.get_ref(i).map_err(err)?, *k))
                    .collect::<Result<Vec<_>, _>>()?;
                result.push(vals);
            }
            Ok(result)
        })
        .await
    }

    async fn execute_then(
        &self,
        entity: &'static str,
        first: Vec<Statement>,
        out: Vec<Kind>,
        then: FollowUp,
    ) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite(entity, &e);
            let tx = conn.transaction().map_err(err)?;
            let mut returned = Vec::new();
            for (sql, params) in first {
                let values = bind(params)?;
                let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
                let mut rows = stmt.query(params_from_iter(values)).map_err(err)?;
                while let Some(row) = rows.next().map_err(err)? {
                    let vals = out
                        .iter()
                        .enumerate()
                        .map(|(i, k)| from_sql(row.get_ref(i).map_err(err)?, *k))
                        .collect::<Result<Vec<_>, _>>()?;
                    returned.push(vals);
                }
            }
            let count = returned.len() as u64;
            for (sql, params) in then(returned)? {
                let values = bind(params)?;
                let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
                stmt.execute(params_from_iter(values)).map_err(err)?;
            }
            tx.commit().map_err(err)?;
            Ok(count)
        })
        .await
    }
}
