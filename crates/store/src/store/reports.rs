//! Spend reports: sums over the spend logs and the daily tag aggregates, grouped by day
//! and by a fixed set of columns. Bounded like every list (at most [`MAX_PAGE_SIZE`] groups).

use chrono::{DateTime, Utc};

use super::{quote, Dialect, Sql, Store, MAX_PAGE_SIZE};
use crate::error::StoreError;
use crate::rows::{SpendLogFilter, SpendLogRow};
use crate::schema::{Entity, Kind, ListFilter, Val};

/// A spend-log column a report may group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendDimension {
    ApiKey,
    /// The key owner (`"user"`).
    User,
    TeamId,
    EndUser,
    Model,
    ModelGroup,
}

impl SpendDimension {
    fn column(self) -> &'static str {
        match self {
            SpendDimension::ApiKey => "api_key",
            SpendDimension::User => "user",
            SpendDimension::TeamId => "team_id",
            SpendDimension::EndUser => "end_user",
            SpendDimension::Model => "model",
            SpendDimension::ModelGroup => "model_group",
        }
    }
}

/// Sums of spend logs matching the filters and `startTime` range, grouped by day (UTC,
/// `YYYY-MM-DD`) when `by_day`, then by `group_by` in order.
#[derive(Debug, Clone, Default)]
pub struct SpendTotalsQuery {
    pub filter: SpendLogFilter,
    /// Inclusive lower bound on `startTime`.
    pub start: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `startTime`.
    pub end: Option<DateTime<Utc>>,
    pub by_day: bool,
    pub group_by: Vec<SpendDimension>,
    /// At most this many groups (clamped to `1..=MAX_PAGE_SIZE`), largest spend first
    /// unless grouped by day (then by day).
    pub limit: u32,
}

/// One group of a [`SpendTotalsQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpendTotals {
    pub day: Option<String>,
    /// The group's values, in `group_by` order (`None` for SQL NULL).
    pub keys: Vec<Option<String>>,
    pub spend: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub requests: i64,
}

/// Spend of one request tag (from `LiteLLM_DailyTagSpend`).
#[derive(Debug, Clone, PartialEq)]
pub struct TagSpend {
    pub tag: String,
    pub requests: i64,
    pub spend: f64,
}

fn day_expr(dialect: Dialect) -> String {
    let start = quote("startTime");
    match dialect {
        Dialect::Postgres => format!("to_char({start}, 'YYYY-MM-DD')"),
        // Timestamps are stored as fixed-width ISO text.
        Dialect::Sqlite => format!("substr({start}, 1, 10)"),
    }
}

impl Store {
    /// Sums spend, tokens and requests of the matching spend logs per group.
    pub async fn spend_totals(&self, q: &SpendTotalsQuery) -> Result<Vec<SpendTotals>, StoreError> {
        let t = SpendLogRow::TABLE;
        let mut sql = Sql::new(self.inner.dialect);
        let Some(mut conds) = self.filter_where(&mut sql, t, q.filter.pairs())? else {
            return Ok(Vec::new());
        };
        let start = quote("startTime");
        if let Some(s) = q.start {
            conds.push(format!("{start} >= {}", sql.bind(Val::Ts(s), Kind::Ts)));
        }
        if let Some(e) = q.end {
            conds.push(format!("{start} < {}", sql.bind(Val::Ts(e), Kind::Ts)));
        }
        let mut groups: Vec<String> = Vec::new();
        if q.by_day {
            groups.push(day_expr(self.inner.dialect));
        }
        for d in &q.group_by {
            if !self.has_column(t, d.column()) {
                return Ok(Vec::new());
            }
            groups.push(quote(d.column()));
        }
        let sums = [
            ("spend", "float8"),
            ("prompt_tokens", "int8"),
            ("completion_tokens", "int8"),
            ("total_tokens", "int8"),
        ]
        .iter()
        .map(|(c, pg)| match self.inner.dialect {
            Dialect::Postgres => format!("COALESCE(SUM({}), 0)::{pg}", quote(c)),
            Dialect::Sqlite => format!("COALESCE(SUM({}), 0)", quote(c)),
        })
        .collect::<Vec<_>>();
        let count = match self.inner.dialect {
            Dialect::Postgres => "COUNT(*)::int8",
            Dialect::Sqlite => "COUNT(*)",
        };
        let mut select = groups.clone();
        select.extend(sums);
        select.push(count.to_owned());
        let mut text = format!("SELECT {} FROM {}", select.join(", "), quote(t.name));
        if !conds.is_empty() {
            text.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        if !groups.is_empty() {
            text.push_str(&format!(" GROUP BY {}", groups.join(", ")));
        }
        // Ordinal positions keep the ORDER BY valid for any grouping.
        let spend_pos = groups.len() + 1;
        if q.by_day {
            text.push_str(&format!(" ORDER BY 1, {spend_pos} DESC"));
        } else if !groups.is_empty() {
            text.push_str(&format!(" ORDER BY {spend_pos} DESC"));
        }
        let limit = sql.bind(
            Val::I64(i64::from(q.limit.clamp(1, MAX_PAGE_SIZE))),
            Kind::I64,
        );
        text.push_str(&format!(" LIMIT {limit}"));
        let mut out_kinds = vec![Kind::Text; groups.len()];
        out_kinds.extend([Kind::F64, Kind::I64, Kind::I64, Kind::I64, Kind::I64]);
        let rows = self
            .inner
            .backend
            .query(t.entity, text, sql.params, out_kinds)
            .await?;
        rows.into_iter()
            .map(|row| {
                let mut it = row.into_iter();
                let text_of = |v: Option<Val>| match v {
                    Some(Val::Text(s)) => Some(s),
                    _ => None,
                };
                let day = if q.by_day { text_of(it.next()) } else { None };
                let keys = q.group_by.iter().map(|_| text_of(it.next())).collect();
                let mut num = || match it.next() {
                    Some(Val::F64(x)) => Ok(x),
                    Some(Val::I64(n)) => Ok(n as f64),
                    _ => Err(StoreError::Internal("spend sum is not a number".into())),
                };
                let spend = num()?;
                let prompt_tokens = num()? as i64;
                let completion_tokens = num()? as i64;
                let total_tokens = num()? as i64;
                let requests = num()? as i64;
                Ok(SpendTotals {
                    day,
                    keys,
                    spend,
                    prompt_tokens,
                    completion_tokens,
                    total_tokens,
                    requests,
                })
            })
            .collect()
    }

    /// Spend and request count per request tag over the days `start_date..=end_date`
    /// (`YYYY-MM-DD`, either open), largest spend first.
    pub async fn tag_spend(
        &self,
        start_date: Option<&str>,
        end_date: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TagSpend>, StoreError> {
        const TABLE: &str = "LiteLLM_DailyTagSpend";
        let mut sql = Sql::new(self.inner.dialect);
        let date = quote("date");
        let mut conds = vec![format!("{} IS NOT NULL", quote("tag"))];
        if let Some(s) = start_date {
            conds.push(format!(
                "{date} >= {}",
                sql.bind(Val::Text(s.into()), Kind::Text)
            ));
        }
        if let Some(e) = end_date {
            conds.push(format!(
                "{date} <= {}",
                sql.bind(Val::Text(e.into()), Kind::Text)
            ));
        }
        let (requests, spend) = match self.inner.dialect {
            Dialect::Postgres => (
                "COALESCE(SUM(\"api_requests\"), 0)::int8",
                "COALESCE(SUM(\"spend\"), 0)::float8",
            ),
            Dialect::Sqlite => (
                "COALESCE(SUM(\"api_requests\"), 0)",
                "COALESCE(SUM(\"spend\"), 0)",
            ),
        };
        let limit = sql.bind(
            Val::I64(i64::from(limit.clamp(1, MAX_PAGE_SIZE))),
            Kind::I64,
        );
        let text = format!(
            "SELECT \"tag\", {requests}, {spend} FROM {} WHERE {} GROUP BY \"tag\" \
             ORDER BY 3 DESC, 1 LIMIT {limit}",
            quote(TABLE),
            conds.join(" AND ")
        );
        let rows = self
            .inner
            .backend
            .query(
                "tag spend",
                text,
                sql.params,
                vec![Kind::Text, Kind::I64, Kind::F64],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [Val::Text(tag), Val::I64(requests), Val::F64(spend)] => Some(TagSpend {
                    tag: tag.clone(),
                    requests: *requests,
                    spend: *spend,
                }),
                _ => None,
            })
            .collect())
    }
}
