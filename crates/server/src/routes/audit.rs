//! `GET /audit` and `GET /audit/{id}`: reading `LiteLLM_AuditLog`, the record of management
//! changes written when `litellm_settings.store_audit_logs` is on ([`super::admin::audit`]).
//! Proxy admins and proxy admin viewers only.

use axum::extract::{Path, State};
use axum::Json;
use http::Uri;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_llm_types::ErrorKind;
use switchyard_store::{AuditLogFilter, AuditLogRow, Page};

use super::admin::{self, invalid, AdminCaller};
use crate::error::ApiError;
use crate::state::Gateway;

const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_PAGE_SIZE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    page: Option<u32>,
    page_size: Option<u32>,
    action: Option<String>,
    table_name: Option<String>,
    object_id: Option<String>,
}

/// `GET /audit?page=&page_size=&action=&table_name=&object_id=` →
/// `{"audit_logs", "total", "page", "page_size", "total_pages"}`, newest first.
pub async fn list(
    State(gateway): State<Gateway>,
    AdminCaller(_caller): AdminCaller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let query: ListQuery = admin::query(&uri)?;
    let store = admin::store(&gateway)?;
    let page = query.page.unwrap_or(1);
    let size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if page < 1 {
        return Err(invalid("page", "page must be >= 1"));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(invalid(
            "page_size",
            format!("page_size must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let filter = AuditLogFilter {
        table_name: query.table_name,
        object_id: query.object_id,
        action: query.action,
    };
    let rows = store
        .list::<AuditLogRow>(&filter, Page::numbered(page, size))
        .await?;
    let total = store.count::<AuditLogRow>(&filter).await?;
    Ok(Json(json!({
        "audit_logs": rows,
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": total.div_ceil(u64::from(size)),
    })))
}

/// `GET /audit/{id}` → one entry.
pub async fn one(
    State(gateway): State<Gateway>,
    AdminCaller(_caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = admin::store(&gateway)?;
    let row = store.get::<AuditLogRow>(&[&id]).await?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            format!("Audit log not found, passed id={id}"),
            Some("id"),
        )
    })?;
    Ok(Json(json!(row)))
}
