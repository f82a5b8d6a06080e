//! Test harness: one fresh database per test, for either backend.
//!
//! PostgreSQL tests get their own schema (`sy_test_<uuid>`) in the database named by
//! `SWITCHYARD_TEST_DATABASE_URL` (default `postgresql://postgres@127.0.0.1:5432/test`),
//! selected through the URL's `options=-c search_path=...`, so tests run in parallel
//! without colliding; the schema is dropped when the test ends, pass or fail. An
//! unreachable server fails the test: CI provides PostgreSQL, and a silent skip would hide
//! a broken backend. SQLite tests get a temporary data directory.

#![allow(dead_code)]
// Test code: a panic is the failure report (clippy only exempts #[test] fns themselves).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use switchyard_store::migrations::SHARED_TABLES;
use switchyard_store::{Store, StoreConfig};
use tempfile::TempDir;

pub const DEFAULT_URL: &str = "postgresql://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub fn base_url() -> String {
    std::env::var("SWITCHYARD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A plain client on `url` (its connection task runs on the current runtime).
pub async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL (SWITCHYARD_TEST_DATABASE_URL) is unreachable; these tests need it: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A schema created for one test and dropped (CASCADE) when this guard drops, even while
/// unwinding from a failed assertion.
pub struct PgSchema {
    pub name: String,
    /// The base URL with `search_path` set to the schema.
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> Self {
        let base = base_url();
        let name = format!("sy_test_{}", uuid::Uuid::new_v4().simple());
        client(&base)
            .await
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Self { name, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = base_url();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside (or after) the test's runtime; a private runtime on its own
        // thread avoids blocking or nesting runtimes.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((c, conn)) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = c.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// A store on a fresh database, plus what is needed to inspect that database directly.
pub struct TestDb {
    // Field order matters: the store (and its pool) drops before the schema.
    pub store: Store,
    pub config: StoreConfig,
    pub backend: Backend,
    pub schema: Option<PgSchema>,
    pub dir: Option<TempDir>,
}

impl TestDb {
    pub async fn open(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => {
                let schema = PgSchema::create().await;
                let config = StoreConfig::from_url(Some(&schema.url), std::path::Path::new("."))
                    .unwrap()
                    .with_max_connections(8);
                let store = Store::connect(&config)
                    .await
                    .expect("connect PostgreSQL store");
                Self {
                    store,
                    config,
                    backend,
                    schema: Some(schema),
                    dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // A nested, not yet existing directory: the store must create it.
                let data_dir = dir.path().join("data");
                let config = StoreConfig::from_url(None, &data_dir).unwrap();
                let store = Store::connect(&config).await.expect("open SQLite store");
                Self {
                    store,
                    config,
                    backend,
                    schema: None,
                    dir: Some(dir),
                }
            }
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        match &self.config {
            StoreConfig::Sqlite { path } => path.clone(),
            StoreConfig::Postgres { .. } => panic!("not a SQLite database"),
        }
    }

    /// Every value of every row of every table (ours and LiteLLM's), as text.
    pub async fn dump(&self) -> String {
        let mut tables: Vec<&str> = SHARED_TABLES.to_vec();
        tables.push("switchyard_migrations");
        match self.backend {
            Backend::Postgres => {
                let url = &self.schema.as_ref().unwrap().url;
                let c = client(url).await;
                let mut out = String::new();
                for t in tables {
                    let rows = c
                        .query(&format!("SELECT row_to_json(t)::text FROM \"{t}\" t"), &[])
                        .await
                        .unwrap();
                    for r in rows {
                        out.push_str(&r.get::<_, String>(0));
                        out.push('\n');
                    }
                }
                out
            }
            Backend::Sqlite => {
                let path = self.sqlite_path();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).unwrap();
                    let mut out = String::new();
                    for t in tables {
                        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                        let n = stmt.column_count();
                        let mut rows = stmt.query([]).unwrap();
                        while let Some(row) = rows.next().unwrap() {
                            for i in 0..n {
                                use rusqlite::types::ValueRef;
                                match row.get_ref(i).unwrap() {
                                    ValueRef::Text(b) | ValueRef::Blob(b) => {
                                        out.push_str(&String::from_utf8_lossy(b))
                                    }
                                    ValueRef::Integer(x) => out.push_str(&x.to_string()),
                                    ValueRef::Real(x) => out.push_str(&x.to_string()),
                                    ValueRef::Null => {}
                                }
                                out.push('|');
                            }
                            out.push('\n');
                        }
                    }
                    out
                })
                .await
                .unwrap()
            }
        }
    }
}

/// Declares `postgres` and `sqlite` test cases running the same async test body.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::common::Backend::Postgres).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::common::Backend::Sqlite).await
                }
            }
        )*
    };
}
