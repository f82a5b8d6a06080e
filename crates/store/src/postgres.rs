//! PostgreSQL backend: a `deadpool-postgres` pool running the statements built by
//! [`crate::store`], against LiteLLM's tables in the connection's current schema.
//!
//! The URL is LiteLLM's `DATABASE_URL`; a non-default schema is chosen the libpq way, with
//! `?options=-c%20search_path%3Dname`. Connections are plain TCP for now (no TLS).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::backend::{Backend, Columns, FollowUp, Param, Statement};
use crate::config::BackendKind;
use crate::error::{from_pg, from_pool, StoreError};
use crate::migrations::{Migration, BOOKKEEPING_TABLE};
use crate::schema::{Kind, Val};

/// Advisory-lock key serializing concurrent `migrate` runs (several gateway replicas
/// starting at once) on one database.
const MIGRATION_LOCK: i64 = 0x5357_5943_4844_0001;

pub(crate) struct PgBackend {
    pool: Pool,
}

type BoxedParam = Box<dyn ToSql + Sync + Send>;

fn to_sql(v: Val, kind: Kind) -> Result<BoxedParam, StoreError> {
    let b: BoxedParam =
        match (kind, v) {
            (Kind::Text, Val::Text(s)) => Box::new(s),
            (Kind::Text, Val::Null) => Box::new(None::<String>),
            (Kind::F64, Val::F64(x)) => Box::new(x),
            (Kind::F64, Val::Null) => Box::new(None::<f64>),
            (Kind::I64, Val::I64(x)) => Box::new(x),
            (Kind::I64, Val::Null) => Box::new(None::<i64>),
            (Kind::I32, Val::I64(x)) => Box::new(i32::try_from(x).map_err(|_| {
                StoreError::InvalidInput(format!("{x} does not fit a 32-bit column"))
            })?),
            (Kind::I32, Val::Null) => Box::new(None::<i32>),
            (Kind::Bool, Val::Bool(b)) => Box::new(b),
            (Kind::Bool, Val::Null) => Box::new(None::<bool>),
            // Columns are `TIMESTAMP(3)` without zone holding UTC, as Prisma writes them.
            (Kind::Ts, Val::Ts(t)) => Box::new(t.naive_utc()),
            (Kind::Ts, Val::Null) => Box::new(None::<NaiveDateTime>),
            (Kind::Json | Kind::JsonObj | Kind::JsonArr, Val::Json(j)) => Box::new(j),
            (Kind::Json | Kind::JsonObj | Kind::JsonArr, Val::Null) => Box::new(None::<Value>),
            (Kind::TextArr, Val::TextArr(a)) => Box::new(a),
            (Kind::TextArr, Val::Null) => Box::new(None::<Vec<String>>),
            (kind, v) => {
                return Err(StoreError::Internal(format!(
                    "cannot bind {v:?} as {kind:?}"
                )))
            }
        };
    Ok(b)
}

fn bind(params: Vec<Param>) -> Result<Vec<BoxedParam>, StoreError> {
    params.into_iter().map(|(v, k)| to_sql(v, k)).collect()
}

fn refs(boxed: &[BoxedParam]) -> Vec<&(dyn ToSql + Sync)> {
    boxed
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn decode(entity: &'static str, row: &Row, out: &[Kind]) -> Result<Vec<Val>, StoreError> {
    let err = |e: tokio_postgres::Error| from_pg(entity, &e);
    out.iter()
        .enumerate()
        .map(|(i, kind)| {
            Ok(match kind {
                Kind::Text => row
                    .try_get::<_, Option<String>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, Val::Text),
                Kind::F64 => row
                    .try_get::<_, Option<f64>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, Val::F64),
                Kind::I64 => row
                    .try_get::<_, Option<i64>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, Val::I64),
                Kind::I32 => row
                    .try_get::<_, Option<i32>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, |x| Val::I64(i64::from(x))),
                Kind::Bool => row
                    .try_get::<_, Option<bool>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, Val::Bool),
                Kind::Ts => row
                    .try_get::<_, Option<NaiveDateTime>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, |t| Val::Ts(t.and_utc())),
                Kind::Json | Kind::JsonObj | Kind::JsonArr => row
                    .try_get::<_, Option<Value>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, Val::Json),
                // LiteLLM's arrays may hold NULL elements in principle; they carry nothing.
                Kind::TextArr => row
                    .try_get::<_, Option<Vec<Option<String>>>>(i)
                    .map_err(err)?
                    .map_or(Val::Null, |a| {
                        Val::TextArr(a.into_iter().flatten().collect())
                    }),
            })
        })
        .collect()
}

impl PgBackend {
    pub(crate) async fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(10));
        }
        let manager = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                // Fast recycling skips a round trip per checkout; a dead connection is
                // detected by its first query and replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| StoreError::Config(format!("cannot build PostgreSQL pool: {e}")))?;
        // Open one connection now so an unreachable server fails `connect`, not the first
        // request.
        drop(pool.get().await.map_err(|e| from_pool("database", e))?);
        Ok(Self { pool })
    }

    async fn client(&self, entity: &'static str) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| from_pool(entity, e))
    }
}

#[async_trait]
impl Backend for PgBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    async fn migrate(&self, migrations: &'static [Migration]) -> Result<Vec<u32>, StoreError> {
        const E: &str = "migration";
        let mut client = self.client(E).await?;
        let tx = client.transaction().await.map_err(|e| from_pg(E, &e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1::int8)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| from_pg(E, &e))?;
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS \"{BOOKKEEPING_TABLE}\" (
                \"version\" INTEGER NOT NULL PRIMARY KEY,
                \"name\" TEXT NOT NULL,
                \"applied_at\" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
            )"
        ))
        .await
        .map_err(|e| from_pg(E, &e))?;
        let done: HashSet<i32> = tx
            .query(
                &format!("SELECT \"version\" FROM \"{BOOKKEEPING_TABLE}\""),
                &[],
            )
            .await
            .map_err(|e| from_pg(E, &e))?
            .iter()
            .map(|r| r.try_get::<_, i32>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| from_pg(E, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            let version = i32::try_from(m.version).unwrap_or(i32::MAX);
            if done.contains(&version) {
                continue;
            }
            let fail = |e: tokio_postgres::Error| StoreError::Migration {
                version: m.version,
                name: m.name,
                reason: from_pg(E, &e).to_string(),
            };
            tx.batch_execute(m.sql).await.map_err(fail)?;
            tx.execute(
                &format!(
                    "INSERT INTO \"{BOOKKEEPING_TABLE}\" (\"version\", \"name\") VALUES ($1::int4, $2::text)"
                ),
                &[&version, &m.name],
            )
            .await
            .map_err(fail)?;
            applied.push(m.version);
        }
        tx.commit().await.map_err(|e| from_pg(E, &e))?;
        Ok(applied)
    }

    async fn columns(&self, tables: &'static [&'static str]) -> Result<Columns, StoreError> {
        const E: &str = "schema";
        let client = self.client(E).await?;
        let names: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
        // `current_schema()` is the schema unqualified names resolve to (the first of
        // search_path that exists), i.e. where our statements find LiteLLM's tables.
        let rows = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
                &[&names],
            )
            .await
            .map_err(|e| from_pg(E, &e))?;
        let mut out = Columns::new();
        for r in rows {
            let t: String = r.try_get(0).map_err(|e| from_pg(E, &e))?;
            let c: String = r.try_get(1).map_err(|e| from_pg(E, &e))?;
            out.entry(t).or_default().insert(c);
        }
        Ok(out)
    }

    async fn execute(
        &self,
        entity: &'static str,
        statements: Vec<Statement>,
    ) -> Result<u64, StoreError> {
        let mut client = self.client(entity).await?;
        if let [(sql, params)] = statements.as_slice() {
            let boxed = bind(params.clone())?;
            return client
                .execute(sql.as_str(), &refs(&boxed))
                .await
                .map_err(|e| from_pg(entity, &e));
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| from_pg(entity, &e))?;
        let mut n = 0;
        for (sql, params) in statements {
            let boxed = bind(params)?;
            n += tx
                .execute(sql.as_str(), &refs(&boxed))
                .await
                .map_err(|e| from_pg(entity, &e))?;
        }
        tx.commit().await.map_err(|e| from_pg(entity, &e))?;
        Ok(n)
    }

    async fn query(
        &self,
        entity: &'static str,
        sql: String,
        params: Vec<Param>,
        out: Vec<Kind>,
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        let client = self.client(entity).await?;
        // Query shapes repeat per table and filter set, so a per-connection statement
        // cache saves a parse round trip on the hot paths (key lookup, spend increments).
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(|e| from_pg(entity, &e))?;
        let boxed = bind(params)?;
        let rows = client
            .query(&stmt, &refs(&boxed))
            .await
            .map_err(|e| from_pg(entity, &e))?;
        rows.iter().map(|r| decode(entity, r, &out)).collect()
    }

    async fn execute_then(
        &self,
        entity: &'static str,
        first: Vec<Statement>,
        out: Vec<Kind>,
        then: FollowUp,
    ) -> Result<u64, StoreError> {
        let err = |e: tokio_postgres::Error| from_pg(entity, &e);
        let mut client = self.client(entity).await?;
        let tx = client.transaction().await.map_err(err)?;
        // `first` statements vary in size (multi-row inserts) and are not cached: caching
        // every row count would pile up large prepared statements on each connection.
        let mut returned = Vec::new();
        for (sql, params) in first {
            let boxed = bind(params)?;
            for row in tx.query(sql.as_str(), &refs(&boxed)).await.map_err(err)? {
                returned.push(decode(entity, &row, &out)?);
            }
        }
        let count = returned.len() as u64;
        // The follow-up statements repeat the same few texts (one per counter table and
        // daily table): cached, they save a parse round trip each.
        for (sql, params) in then(returned)? {
            let boxed = bind(params)?;
            let stmt = tx.prepare_cached(&sql).await.map_err(err)?;
            tx.execute(&stmt, &refs(&boxed)).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(count)
    }
}
