//! The backend-neutral description of a table: its columns, their kinds and roles, and the
//! conversion of a typed row to and from a list of [`Val`]s.
//!
//! Each row type is declared once with [`entity!`]; the macro emits the struct, the column
//! list and the encode/decode functions from the same field list, so the three can never
//! drift apart. The backends only ever see a [`Table`] and `Vec<Val>`, which lets one
//! implementation of insert/get/update/delete/list serve every table.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use crate::error::StoreError;

/// How a column is stored. PostgreSQL types follow LiteLLM's Prisma schema; SQLite keeps the
/// same logical type with SQLite's storage classes (see `migrations/sqlite/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `TEXT`.
    Text,
    /// `DOUBLE PRECISION` / `REAL`.
    F64,
    /// `BIGINT` / `INTEGER`.
    I64,
    /// `INTEGER` / `INTEGER`.
    I32,
    /// `BOOLEAN` / `INTEGER` 0-1.
    Bool,
    /// `TIMESTAMP(3)` (UTC, no zone) / `TEXT` `YYYY-MM-DDTHH:MM:SS.sssZ`.
    Ts,
    /// Nullable `JSONB` / `TEXT`.
    Json,
    /// `JSONB NOT NULL DEFAULT '{}'`: a missing value is stored and read as `{}`.
    JsonObj,
    /// `JSONB DEFAULT '[]'`: a missing value is stored and read as `[]`.
    JsonArr,
    /// `TEXT[]` / `TEXT` holding a JSON array of strings; NULL reads as `[]`.
    TextArr,
}

/// What the generic write paths may do with a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Part of the primary key: written on insert, used in `WHERE` otherwise.
    Pk,
    /// Ordinary data: written on insert and update.
    Data,
    /// A spend counter: written on insert, then changed only by atomic increments, so an
    /// update built from a stale read can never lose a concurrent increment.
    Counter,
    /// `created_at` / `created_by`: written on insert only.
    Created,
    /// `updated_at`: set to now by every insert and update.
    Updated,
}

/// One column of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// The exact (LiteLLM) column name, quoted in SQL.
    pub name: &'static str,
    pub kind: Kind,
    pub role: Role,
}

/// A table as the generic code paths see it.
#[derive(Debug)]
pub struct Table {
    /// The exact (LiteLLM) table name, quoted in SQL.
    pub name: &'static str,
    /// Short name of the entity for error messages (`key`, `team`, ...).
    pub entity: &'static str,
    /// Columns in struct-field order.
    pub cols: &'static [Col],
    /// Whether an empty single text primary key is replaced by a fresh UUID on insert
    /// (LiteLLM's `@default(uuid())`).
    pub generate_id: bool,
    /// Whether ids of this table must stay out of error messages (the key table: a caller
    /// that passed a raw key by mistake must not see it echoed).
    pub secret_id: bool,
    /// Stable ordering for paging, as (column, descending) pairs; the primary key ends it.
    pub order_by: &'static [(&'static str, bool)],
}

impl Table {
    /// The primary-key columns, in declaration order.
    pub fn pk(&self) -> impl Iterator<Item = &'static Col> + '_ {
        self.cols.iter().filter(|c| c.role == Role::Pk)
    }

    pub fn pk_len(&self) -> usize {
        self.pk().count()
    }

    pub fn col(&self, name: &str) -> Option<&'static Col> {
        self.cols.iter().find(|c| c.name == name)
    }

    /// An id for messages: the key parts joined, or nothing for secret tables.
    pub(crate) fn describe_id(&self, key: &[String]) -> Option<String> {
        (!self.secret_id).then(|| key.join("/"))
    }
}

/// A column value on its way to or from a backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Text(String),
    F64(f64),
    /// Both integer kinds travel as `i64`; the column [`Kind`] decides the SQL type.
    I64(i64),
    Bool(bool),
    Ts(DateTime<Utc>),
    Json(Value),
    TextArr(Vec<String>),
}

impl Val {
    /// Replaces SQL NULL by the value LiteLLM's column default would give, so rows read from
    /// a database written by older LiteLLM versions (or with absent columns) look the same.
    pub(crate) fn normalized(self, kind: Kind) -> Val {
        match (self, kind) {
            (Val::Null, Kind::JsonObj) => Val::Json(Value::Object(Default::default())),
            (Val::Null, Kind::JsonArr) => Val::Json(Value::Array(Vec::new())),
            (Val::Json(Value::Null), Kind::JsonObj) => Val::Json(Value::Object(Default::default())),
            (Val::Json(Value::Null), Kind::JsonArr) => Val::Json(Value::Array(Vec::new())),
            (Val::Null, Kind::TextArr) => Val::TextArr(Vec::new()),
            (v, _) => v,
        }
    }
}

/// The current time at the millisecond precision both backends store (`TIMESTAMP(3)`), so a
/// value written and read back compares equal.
pub fn now_ms() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Conversion of one struct field to and from a [`Val`].
pub trait FieldVal: Sized {
    fn to_val(&self) -> Val;
    fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError>;
}

fn mismatch(col: &str, v: &Val) -> StoreError {
    StoreError::Internal(format!(
        "column {col}: unexpected value kind {}",
        match v {
            Val::Null => "null",
            Val::Text(_) => "text",
            Val::F64(_) => "float",
            Val::I64(_) => "integer",
            Val::Bool(_) => "boolean",
            Val::Ts(_) => "timestamp",
            Val::Json(_) => "json",
            Val::TextArr(_) => "text array",
        }
    ))
}

/// Implements `FieldVal` for `T` and `Option<T>`; the non-optional form reads NULL as
/// `$default` (the column default in LiteLLM's schema).
macro_rules! field_val {
    ($ty:ty, $variant:ident, $default:expr, |$x:ident| $to:expr, |$y:ident| $from:expr) => {
        impl FieldVal for Option<$ty> {
            fn to_val(&self) -> Val {
                match self {
                    Some($x) => Val::$variant($to),
                    None => Val::Null,
                }
            }
            fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
                match v {
                    Val::Null => Ok(None),
                    Val::$variant($y) => Ok(Some($from)),
                    other => Err(mismatch(col, &other)),
                }
            }
        }
        impl FieldVal for $ty {
            fn to_val(&self) -> Val {
                let $x = self;
                Val::$variant($to)
            }
            fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
                Ok(<Option<$ty>>::from_val(v, col)?.unwrap_or_else(|| $default))
            }
        }
    };
}

field_val!(String, Text, String::new(), |x| x.clone(), |y| y);
field_val!(f64, F64, 0.0, |x| *x, |y| y);
field_val!(i64, I64, 0, |x| *x, |y| y);
field_val!(bool, Bool, false, |x| *x, |y| y);
field_val!(Vec<String>, TextArr, Vec::new(), |x| x.clone(), |y| y);
field_val!(Value, Json, Value::Null, |x| x.clone(), |y| y);

impl FieldVal for Option<i32> {
    fn to_val(&self) -> Val {
        self.map_or(Val::Null, |x| Val::I64(i64::from(x)))
    }
    fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
        match v {
            Val::Null => Ok(None),
            Val::I64(x) => i32::try_from(x)
                .map(Some)
                .map_err(|_| StoreError::Internal(format!("column {col}: {x} exceeds i32"))),
            other => Err(mismatch(col, &other)),
        }
    }
}

impl FieldVal for i32 {
    fn to_val(&self) -> Val {
        Val::I64(i64::from(*self))
    }
    fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
        Ok(<Option<i32>>::from_val(v, col)?.unwrap_or(0))
    }
}

impl FieldVal for Option<DateTime<Utc>> {
    fn to_val(&self) -> Val {
        // Truncated so both backends store exactly what the caller will read back.
        self.map_or(Val::Null, |t| Val::Ts(t.trunc_subsecs(3)))
    }
    fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
        match v {
            Val::Null => Ok(None),
            Val::Ts(t) => Ok(Some(t)),
            other => Err(mismatch(col, &other)),
        }
    }
}

impl FieldVal for DateTime<Utc> {
    fn to_val(&self) -> Val {
        Val::Ts(self.trunc_subsecs(3))
    }
    fn from_val(v: Val, col: &'static str) -> Result<Self, StoreError> {
        <Option<DateTime<Utc>>>::from_val(v, col)?
            .ok_or_else(|| StoreError::Internal(format!("column {col}: unexpected NULL")))
    }
}

/// Equality filters a list query applies, as (column, value) pairs. Column names come from
/// code, never from callers, so they are safe to splice into SQL; values are always bound.
pub trait ListFilter: Send + Sync {
    fn pairs(&self) -> Vec<(&'static str, String)>;
}

/// For tables listed without filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilter;

impl ListFilter for NoFilter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A row type of one table. Sealed: the set of tables is this crate's to define.
pub trait Entity: Sealed + Sized + Send + Sync + 'static {
    /// Filter accepted by [`crate::Store::list`] for this table.
    type Filter: ListFilter;
    const TABLE: &'static Table;
    /// The values in [`Table::cols`] order.
    fn encode(&self) -> Vec<Val>;
    fn decode(vals: Vec<Val>) -> Result<Self, StoreError>;
}

/// Declares a row struct and its [`Entity`] implementation from one field list:
/// `field: Type => "column", Kind, Role;`.
macro_rules! entity {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $table:literal as $ent:literal {
            filter: $filter:ty,
            generate_id: $gen:literal,
            secret_id: $secret:literal,
            order_by: [$(($ocol:literal, $odesc:literal)),* $(,)?],
        }
        {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty => $col:literal, $kind:ident, $role:ident;
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::schema::Sealed for $name {}

        impl $crate::schema::Entity for $name {
            type Filter = $filter;
            const TABLE: &'static $crate::schema::Table = &$crate::schema::Table {
                name: $table,
                entity: $ent,
                generate_id: $gen,
                secret_id: $secret,
                order_by: &[$(($ocol, $odesc)),*],
                cols: &[
                    $( $crate::schema::Col {
                        name: $col,
                        kind: $crate::schema::Kind::$kind,
                        role: $crate::schema::Role::$role,
                    }, )*
                ],
            };

            fn encode(&self) -> Vec<$crate::schema::Val> {
                vec![ $( $crate::schema::FieldVal::to_val(&self.$field), )* ]
            }

            fn decode(
                vals: Vec<$crate::schema::Val>,
            ) -> Result<Self, $crate::error::StoreError> {
                let mut it = vals.into_iter();
                Ok(Self {
                    $( $field: $crate::schema::FieldVal::from_val(
                        it.next().unwrap_or($crate::schema::Val::Null),
                        $col,
                    )?, )*
                })
            }
        }
    };
}
pub(crate) use entity;
