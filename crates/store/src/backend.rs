//! The seam between the store's logic and a database driver.
//!
//! Why an object-safe async trait at the level of "run this SQL with these typed
//! parameters" rather than one method per entity or an enum over two backends: every
//! statement is built once, from the [`crate::schema::Table`] descriptions, in
//! [`crate::store`]; a backend is only driver glue (binding, decoding, transactions,
//! migrations), so adding an entity touches neither backend, and the two backends cannot
//! drift apart in behaviour. The boxed future per call costs nothing next to a database
//! round trip.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use crate::config::BackendKind;
use crate::error::StoreError;
use crate::migrations::Migration;
use crate::schema::{Kind, Val};

/// A bound parameter: the value and the column kind that decides its SQL type.
pub(crate) type Param = (Val, Kind);

/// One statement of a transaction: SQL and its parameters.
pub(crate) type Statement = (String, Vec<Param>);

/// Builds the statements of a transaction's second step from the rows its first step
/// returned (see [`Backend::execute_then`]).
pub(crate) type FollowUp =
    Box<dyn FnOnce(Vec<Vec<Val>>) -> Result<Vec<Statement>, StoreError> + Send>;

/// Columns present per table in the opened database.
pub(crate) type Columns = HashMap<String, HashSet<String>>;

#[async_trait]
pub(crate) trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Applies the migrations not yet recorded, in one transaction; returns the versions
    /// applied by this call.
    async fn migrate(&self, migrations: &'static [Migration]) -> Result<Vec<u32>, StoreError>;

    /// The columns of each of `tables` that exist in the database.
    async fn columns(&self, tables: &'static [&'static str]) -> Result<Columns, StoreError>;

    /// Runs statements in one transaction; returns the total number of rows affected.
    async fn execute(
        &self,
        entity: &'static str,
        statements: Vec<Statement>,
    ) -> Result<u64, StoreError>;

    /// Runs a query and decodes each row's columns with `out` kinds.
    async fn query(
        &self,
        entity: &'static str,
        sql: String,
        params: Vec<Param>,
        out: Vec<Kind>,
    ) -> Result<Vec<Vec<Val>>, StoreError>;

    /// Runs `first` (statements returning rows decoded with `out` kinds, e.g.
    /// `INSERT ... RETURNING`), then the statements `then` builds from every returned row,
    /// all in one transaction. Returns how many rows `first` returned. This is how a
    /// write's effects can depend on what the write actually did (spend counters follow
    /// only the spend logs that were new) without a read-then-write race.
    async fn execute_then(
        &self,
        entity: &'static str,
        first: Vec<Statement>,
        out: Vec<Kind>,
        then: FollowUp,
    ) -> Result<u64, StoreError>;
}
