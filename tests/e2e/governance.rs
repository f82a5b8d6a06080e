//! Organizations, customers, budgets and the audit log end to end, on the embedded store
//! and on PostgreSQL: LiteLLM's request and response fields, bad input as clear 4xx, an
//! organization's models limiting the keys of its teams, and audit rows only with
//! `store_audit_logs`.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::Gateway;

use crate::common::{chat_body, mock, send_json, standard_config};
use crate::keys::PgSchema;

/// Stored and returned verbatim, never interpreted.
const INJECTION: &str = "o'); DROP TABLE \"LiteLLM_OrganizationTable\"; -- \" OR 1=1";

pub(crate) fn with_audit(config: &str) -> String {
    format!("{config}litellm_settings:\n  store_audit_logs: true\n")
}

pub(crate) fn gateway_on_sqlite(config: &str, data_dir: &Path) -> Gateway {
    let dir = data_dir.to_str().expect("utf-8 temp path");
    Gateway::start_with(config, &["--data-dir", dir], &[])
}

pub(crate) fn pg_config(upstream: &MockUpstream, schema: &PgSchema) -> String {
    format!(
        "{}  database_url: \"{}\"\n",
        standard_config(upstream),
        schema.url()
    )
}

pub(crate) async fn call(
    gateway: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = gateway
        .client()
        .request(method, gateway.url(path))
        .bearer_auth(switchyard_tests::MASTER_KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, _, body) = send_json(request).await;
    (status, body)
}

pub(crate) async fn ok(gateway: &Gateway, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = call(gateway, method, path, body).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {reply}");
    reply
}

async fn expect_error(
    gateway: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
    code: u16,
    message_part: &str,
) {
    let (status, reply) = call(gateway, method, path, body).await;
    assert_eq!(status.as_u16(), code, "{method} {path}: {reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "{method} {path}: {reply}");
    assert_eq!(reply["error"]["code"], code.to_string(), "{reply}");
}

/// A chat call with the master key on behalf of end user `user`.
pub(crate) async fn chat_as_end_user(gateway: &Gateway, user: &str) -> (u16, Value) {
    let mut body = chat_body("gpt-4o");
    body["user"] = json!(user);
    let (status, _, reply) = send_json(
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(switchyard_tests::MASTER_KEY)
            .json(&body),
    )
    .await;
    (status.as_u16(), reply)
}

pub(crate) async fn chat_status(gateway: &Gateway, key: &str, model: &str) -> (u16, Value) {
    let (status, _, body) = send_json(
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body(model)),
    )
    .await;
    (status.as_u16(), body)
}

async fn budgets(gateway: &Gateway) {
    let id = format!("budget-{}", uuid::Uuid::new_v4().simple());
    let created = ok(
        gateway,
        "POST",
        "/budget/new",
        Some(
            json!({"budget_id": id, "max_budget": 10.0, "rpm_limit": 5, "budget_duration": "30d",
                    "model_max_budget": {"gpt-4o": {"max_budget": 1.0}}}),
        ),
    )
    .await;
    assert_eq!(created["budget_id"], id);
    assert_eq!(created["max_budget"], 10.0);
    assert_eq!(created["rpm_limit"], 5);
    assert_eq!(created["budget_duration"], "30d");
    assert!(created["budget_reset_at"].is_string(), "{created}");
    assert_eq!(created["created_by"], "default_user_id");
    expect_error(
        gateway,
        "POST",
        "/budget/new",
        Some(json!({"budget_id": id})),
        400,
        "already exists",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/budget/new",
        Some(json!({"max_budget": -1})),
        400,
        "max_budget",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/budget/new",
        Some(json!({"budget_duration": "soon"})),
        400,
        "budget_duration",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/budget/new",
        Some(json!({"rpm_limit": "many"})),
        400,
        "",
    )
    .await;

    let updated = ok(
        gateway,
        "POST",
        "/budget/update",
        Some(json!({"budget_id": id, "max_budget": 20.0})),
    )
    .await;
    assert_eq!(updated["max_budget"], 20.0);
    assert_eq!(updated["rpm_limit"], 5, "untouched fields stay: {updated}");
    expect_error(
        gateway,
        "POST",
        "/budget/update",
        Some(json!({"max_budget": 1})),
        400,
        "budget_id is required",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/budget/update",
        Some(json!({"budget_id": "nope-nope"})),
        404,
        "Budget not found",
    )
    .await;

    let info = ok(
        gateway,
        "POST",
        "/budget/info",
        Some(json!({"budgets": [id, "missing"]})),
    )
    .await;
    assert_eq!(info.as_array().map(Vec::len), Some(1), "{info}");
    expect_error(
        gateway,
        "POST",
        "/budget/info",
        Some(json!({"budgets": []})),
        400,
        "Specify list",
    )
    .await;
    let listed = ok(gateway, "GET", "/budget/list", None).await;
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .any(|b| b["budget_id"] == id));
    let settings = ok(
        gateway,
        "GET",
        &format!("/budget/settings?budget_id={id}"),
        None,
    )
    .await;
    let max = settings
        .as_array()
        .expect("settings")
        .iter()
        .find(|f| f["field_name"] == "max_budget")
        .expect("max_budget setting")
        .clone();
    assert_eq!(max["field_value"], 20.0);
    assert_eq!(max["field_type"], "Float");
    let deleted = ok(gateway, "POST", "/budget/delete", Some(json!({"id": id}))).await;
    assert_eq!(deleted["budget_id"], id);
    expect_error(
        gateway,
        "POST",
        "/budget/delete",
        Some(json!({"id": id})),
        404,
        "Budget not found",
    )
    .await;
}

async fn organizations(gateway: &Gateway) {
    let created = ok(
        gateway,
        "POST",
        "/organization/new",
        Some(
            json!({"organization_alias": INJECTION, "models": ["gpt-4o"], "max_budget": 100.0,
                    "metadata": {"note": INJECTION}}),
        ),
    )
    .await;
    let org = created["organization_id"]
        .as_str()
        .expect("organization_id")
        .to_owned();
    let budget_id = created["budget_id"].as_str().expect("budget_id").to_owned();
    assert_eq!(created["organization_alias"], INJECTION);
    assert_eq!(created["metadata"]["note"], INJECTION);
    assert_eq!(created["models"], json!(["gpt-4o"]));
    expect_error(
        gateway,
        "POST",
        "/organization/new",
        Some(json!({"models": []})),
        400,
        "organization_alias is required",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/organization/new",
        Some(json!({"organization_alias": "x", "budget_id": "no-such"})),
        400,
        "Budget not found",
    )
    .await;
    expect_error(
        gateway,
        "GET",
        "/organization/info?organization_id=nope",
        None,
        404,
        "Organization not found",
    )
    .await;

    let info = ok(
        gateway,
        "GET",
        &format!("/organization/info?organization_id={org}"),
        None,
    )
    .await;
    assert_eq!(info["litellm_budget_table"]["max_budget"], 100.0, "{info}");
    assert_eq!(info["members"], json!([]));
    assert_eq!(info["teams"], json!([]));

    // The organization's models limit the keys of its teams.
    let team = ok(
        gateway,
        "POST",
        "/team/new",
        Some(json!({"team_alias": "org-team", "organization_id": org})),
    )
    .await;
    let team_id = team["team_id"].as_str().expect("team_id").to_owned();
    let key = ok(
        gateway,
        "POST",
        "/key/generate",
        Some(json!({"team_id": team_id})),
    )
    .await;
    let key = key["key"].as_str().expect("key").to_owned();
    assert_eq!(chat_status(gateway, &key, "gpt-4o").await.0, 200);
    let (status, denied) = chat_status(gateway, &key, "instruct").await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["type"], "org_model_access_denied");
    let updated = ok(
        gateway,
        "PATCH",
        "/organization/update",
        Some(json!({"organization_id": org, "models": ["gpt-4o", "instruct"], "max_budget": 50.0})),
    )
    .await;
    assert_eq!(
        updated["litellm_budget_table"]["max_budget"], 50.0,
        "{updated}"
    );
    assert_eq!(updated["teams"][0]["team_id"], team_id.as_str());
    let (status, body) = chat_status(gateway, &key, "instruct").await;
    assert_ne!(status, 403, "the update applies at once: {body}");
    expect_error(
        gateway,
        "POST",
        "/organization/update",
        Some(json!({"organization_id": "nope"})),
        404,
        "Organization not found",
    )
    .await;

    // Members.
    let user_id = format!("org-user-{}", uuid::Uuid::new_v4().simple());
    let added = ok(
        gateway,
        "POST",
        "/organization/member_add",
        Some(json!({"organization_id": org, "member": {"role": "org_admin", "user_id": user_id}})),
    )
    .await;
    assert_eq!(added["organization_id"], org.as_str());
    assert_eq!(added["updated_users"][0]["user_id"], user_id.as_str());
    assert_eq!(
        added["updated_organization_memberships"][0]["user_role"],
        "org_admin"
    );
    expect_error(
        gateway,
        "POST",
        "/organization/member_add",
        Some(json!({"organization_id": org, "member": {"role": "org_admin", "user_id": user_id}})),
        400,
        "already in organization",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/organization/member_add",
        Some(json!({"organization_id": org, "member": {"role": "king", "user_id": "x"}})),
        400,
        "role",
    )
    .await;
    let member = ok(
        gateway,
        "PATCH",
        "/organization/member_update",
        Some(json!({"organization_id": org, "user_id": user_id, "role": "internal_user", "max_budget_in_organization": 5.0})),
    )
    .await;
    assert_eq!(member["user_role"], "internal_user");
    assert_eq!(
        member["litellm_budget_table"]["max_budget"], 5.0,
        "{member}"
    );
    let listed = ok(gateway, "GET", "/organization/list", None).await;
    let mine = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|o| o["organization_id"] == org.as_str())
        .expect("listed");
    assert_eq!(mine["members"].as_array().map(Vec::len), Some(1));
    // The organization's budget cannot go while the organization uses it.
    let (status, body) = call(
        gateway,
        "POST",
        "/budget/delete",
        Some(json!({"id": budget_id})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let removed = ok(
        gateway,
        "DELETE",
        "/organization/member_delete",
        Some(json!({"organization_id": org, "user_id": user_id})),
    )
    .await;
    assert_eq!(removed["user_id"], user_id.as_str());
    expect_error(
        gateway,
        "DELETE",
        "/organization/member_delete",
        Some(json!({"organization_id": org, "user_id": user_id})),
        404,
        "Member not found",
    )
    .await;

    // Deleting the organization takes its teams and their keys with it.
    let deleted = ok(
        gateway,
        "DELETE",
        "/organization/delete",
        Some(json!({"organization_ids": [org]})),
    )
    .await;
    assert_eq!(deleted[0]["organization_id"], org.as_str());
    expect_error(
        gateway,
        "GET",
        &format!("/team/info?team_id={team_id}"),
        None,
        404,
        "Team not found",
    )
    .await;
    assert_eq!(chat_status(gateway, &key, "gpt-4o").await.0, 401);
    expect_error(
        gateway,
        "POST",
        "/organization/delete",
        Some(json!({"organization_ids": [org]})),
        404,
        "Organization not found",
    )
    .await;
}

async fn customers(gateway: &Gateway) {
    let id = format!("cust-{}-{INJECTION}", uuid::Uuid::new_v4().simple());
    let created = ok(
        gateway,
        "POST",
        "/customer/new",
        Some(json!({"user_id": id, "alias": INJECTION, "max_budget": 3.0, "allowed_model_region": "eu"})),
    )
    .await;
    assert_eq!(created["user_id"], id.as_str());
    assert_eq!(created["alias"], INJECTION);
    assert_eq!(created["blocked"], false);
    assert_eq!(created["allowed_model_region"], "eu");
    assert_eq!(
        created["litellm_budget_table"]["max_budget"], 3.0,
        "{created}"
    );
    expect_error(
        gateway,
        "POST",
        "/customer/new",
        Some(json!({"user_id": id})),
        400,
        "Customer already exists",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/customer/new",
        Some(json!({"user_id": "r", "allowed_model_region": "mars"})),
        400,
        "allowed_model_region",
    )
    .await;
    expect_error(
        gateway,
        "POST",
        "/customer/new",
        Some(json!({"alias": "no id"})),
        400,
        "user_id is required",
    )
    .await;

    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    let info = ok(
        gateway,
        "GET",
        &format!("/customer/info?end_user_id={encoded}"),
        None,
    )
    .await;
    assert_eq!(info["alias"], INJECTION);
    expect_error(
        gateway,
        "GET",
        "/customer/info?end_user_id=nobody",
        None,
        400,
        "does not exist in db",
    )
    .await;

    let updated = ok(
        gateway,
        "POST",
        "/customer/update",
        Some(json!({"user_id": id, "alias": "renamed", "max_budget": 4.0})),
    )
    .await;
    assert_eq!(updated["alias"], "renamed");
    assert_eq!(
        updated["litellm_budget_table"]["max_budget"], 4.0,
        "{updated}"
    );
    expect_error(
        gateway,
        "POST",
        "/customer/update",
        Some(json!({"user_id": "nobody"})),
        400,
        "does not exist in db",
    )
    .await;

    let fresh = format!("fresh-{}", uuid::Uuid::new_v4().simple());
    let blocked = ok(
        gateway,
        "POST",
        "/customer/block",
        Some(json!({"user_ids": [id, fresh]})),
    )
    .await;
    let rows = blocked["blocked_users"].as_array().expect("blocked_users");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["blocked"] == true), "{blocked}");
    // A blocked end user's requests are refused, LiteLLM's way.
    let (status, reply) = chat_as_end_user(gateway, &id).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"]["message"],
        format!("User blocked from making LLM API Calls. User={id}")
    );
    assert_eq!(chat_as_end_user(gateway, &fresh).await.0, 400);
    let unblocked = ok(
        gateway,
        "POST",
        "/customer/unblock",
        Some(json!({"user_ids": [fresh]})),
    )
    .await;
    assert_eq!(unblocked["unblocked_users"][0]["blocked"], false);
    let (status, reply) = chat_as_end_user(gateway, &fresh).await;
    assert_eq!(status, 200, "unblocking applies at once: {reply}");
    assert_eq!(chat_as_end_user(gateway, &id).await.0, 400);
    let listed = ok(gateway, "GET", "/customer/list", None).await;
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c["user_id"] == id.as_str()));

    expect_error(
        gateway,
        "POST",
        "/customer/delete",
        Some(json!({"user_ids": [id, "nobody"]})),
        400,
        "does not exist in db",
    )
    .await;
    let deleted = ok(
        gateway,
        "POST",
        "/customer/delete",
        Some(json!({"user_ids": [id, fresh]})),
    )
    .await;
    assert_eq!(deleted["deleted_customers"], 2);
    // An end user the store does not know is not blocked.
    assert_eq!(chat_as_end_user(gateway, &id).await.0, 200);
    expect_error(
        gateway,
        "GET",
        &format!("/customer/info?end_user_id={encoded}"),
        None,
        400,
        "does not exist in db",
    )
    .await;
}

/// Every management change of the run left an audit row.
async fn audit_rows(gateway: &Gateway) {
    for (table, at_least) in [
        ("LiteLLM_OrganizationTable", 3),
        ("LiteLLM_OrganizationMembership", 3),
        ("LiteLLM_EndUserTable", 5),
        ("LiteLLM_BudgetTable", 3),
        ("LiteLLM_TeamTable", 1),
        ("LiteLLM_VerificationToken", 1),
    ] {
        let page = ok(
            gateway,
            "GET",
            &format!("/audit?table_name={table}&page_size=100"),
            None,
        )
        .await;
        let total = page["total"].as_u64().unwrap_or(0);
        assert!(total >= at_least, "{table}: {page}");
        let first = &page["audit_logs"][0];
        assert_eq!(first["table_name"], table);
        assert_eq!(first["changed_by"], "default_user_id");
        assert_eq!(
            first["changed_by_api_key"].as_str().map(str::len),
            Some(64),
            "hashed key: {first}"
        );
        let one = ok(
            gateway,
            "GET",
            &format!("/audit/{}", first["id"].as_str().expect("id")),
            None,
        )
        .await;
        assert_eq!(one["id"], first["id"]);
    }
}

async fn scenario(gateway: &Gateway) {
    budgets(gateway).await;
    organizations(gateway).await;
    customers(gateway).await;
    audit_rows(gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_customers_budgets_on_the_embedded_store() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&with_audit(&standard_config(&upstream)), data.path());
    scenario(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_customers_budgets_on_postgres() {
    let schema = PgSchema::create().await;
    let upstream = mock().await;
    let gateway = Gateway::start(&with_audit(&pg_config(&upstream, &schema)));
    scenario(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_rows_without_store_audit_logs() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&standard_config(&upstream), data.path());
    ok(
        &gateway,
        "POST",
        "/budget/new",
        Some(json!({"max_budget": 1.0})),
    )
    .await;
    ok(&gateway, "POST", "/key/generate", Some(json!({}))).await;
    let page = ok(&gateway, "GET", "/audit", None).await;
    assert_eq!(page["total"], 0, "{page}");
}
