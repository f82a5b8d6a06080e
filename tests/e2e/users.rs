//! Users and team members end to end: `/user/*` and `/team/member_*` with the master key,
//! the key `/user/new` creates used on the chat route against the mock upstream, role
//! checks and bad input — on the embedded store and on PostgreSQL
//! (`SWITCHYARD_TEST_DATABASE_URL`, default `postgresql://postgres@127.0.0.1:5432/test`).

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_mock_upstream::MockUpstream;
use switchyard_tests::Gateway;

use crate::common::{chat_body, mock, send_json, standard_config};

/// Stored and returned verbatim, never interpreted.
const INJECTION: &str = "u'); DROP TABLE \"LiteLLM_UserTable\"; -- \" OR 1=1";

fn gateway_on_sqlite(upstream: &MockUpstream, data_dir: &Path) -> Gateway {
    let dir = data_dir.to_str().expect("utf-8 temp path");
    Gateway::start_with(&standard_config(upstream), &["--data-dir", dir], &[])
}

async fn chat_as(gateway: &Gateway, key: &str) -> (StatusCode, Value) {
    let (status, _, body) = send_json(
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body("gpt-4o")),
    )
    .await;
    (status, body)
}

async fn post_ok(gateway: &Gateway, path: &str, body: Value) -> Value {
    let (status, _, reply) = send_json(gateway.post(path, &body)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {reply}");
    reply
}

async fn user_info(gateway: &Gateway, user_id: &str) -> (StatusCode, Value) {
    let (status, _, body) =
        send_json(gateway.get("/user/info").query(&[("user_id", user_id)])).await;
    (status, body)
}

async fn team_info(gateway: &Gateway, team_id: &str) -> Value {
    let (status, _, body) =
        send_json(gateway.get("/team/info").query(&[("team_id", team_id)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_error(status: StatusCode, body: &Value, code: u16, param: Option<&str>) {
    assert_eq!(status.as_u16(), code, "{body}");
    if let Some(param) = param {
        assert_eq!(body["error"]["param"], param, "{body}");
    }
}

/// Create (with an auto key), read, update, list and delete a user: the create / info /
/// delete path both backends share.
async fn user_lifecycle(gateway: &Gateway) {
    let created = post_ok(
        gateway,
        "/user/new",
        json!({
            "user_id": INJECTION,
            "user_email": "alice@example.com",
            "user_alias": INJECTION,
            "user_role": "internal_user",
            "models": ["gpt-4o"],
            "max_budget": 5.0,
            "budget_duration": "30d",
            "tpm_limit": 1000,
            "rpm_limit": 10,
            "metadata": {"note": INJECTION},
        }),
    )
    .await;
    assert_eq!(created["user_id"], INJECTION);
    assert_eq!(created["user_alias"], INJECTION);
    assert_eq!(created["metadata"]["note"], INJECTION);
    assert_eq!(created["user_role"], "internal_user");
    assert_eq!(created["max_budget"], 5.0);
    let key = created["key"]
        .as_str()
        .expect("auto-created key")
        .to_owned();
    assert!(key.starts_with("sk-"), "{created}");
    let token = created["token"].as_str().expect("token").to_owned();

    // The key works against the upstream.
    let (status, body) = chat_as(gateway, &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Info: the row, its key (hash only), no teams.
    let (status, info) = user_info(gateway, INJECTION).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["user_id"], INJECTION);
    assert_eq!(info["user_info"]["user_email"], "alice@example.com");
    assert_eq!(info["user_info"]["tpm_limit"], 1000);
    assert_eq!(info["keys"].as_array().expect("keys").len(), 1, "{info}");
    assert_eq!(info["keys"][0]["token"], token);
    assert!(
        !info.to_string().contains(&key),
        "plaintext key in /user/info"
    );
    assert_eq!(info["teams"], json!([]));

    // Update by id, then by email.
    let updated = post_ok(
        gateway,
        "/user/update",
        json!({"user_id": INJECTION, "max_budget": 7.5, "user_role": "internal_user_viewer"}),
    )
    .await;
    assert_eq!(updated["user_id"], INJECTION);
    assert_eq!(updated["data"]["max_budget"], 7.5);
    assert_eq!(updated["data"]["user_role"], "internal_user_viewer");
    assert_eq!(updated["data"]["user_alias"], INJECTION);
    let updated = post_ok(
        gateway,
        "/user/update",
        json!({"user_email": "alice@example.com", "rpm_limit": 20}),
    )
    .await;
    assert_eq!(updated["data"]["rpm_limit"], 20);
    assert_eq!(updated["data"]["max_budget"], 7.5);

    // A second user without a key; list with paging and a role filter.
    let bob = post_ok(
        gateway,
        "/user/new",
        json!({"user_email": "bob@example.com", "auto_create_key": false}),
    )
    .await;
    assert_eq!(bob["key"], Value::Null, "{bob}");
    let bob_id = bob["user_id"]
        .as_str()
        .expect("generated user_id")
        .to_owned();
    assert!(!bob_id.is_empty());
    assert_eq!(bob["user_role"], "internal_user");
    let (status, _, listed) = send_json(gateway.get("/user/list?page=1&page_size=1")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(listed["total_pages"], 2, "{listed}");
    assert_eq!(listed["users"].as_array().expect("users").len(), 1);
    let (_, _, viewers) = send_json(gateway.get("/user/list?role=internal_user_viewer")).await;
    assert_eq!(viewers["total"], 1, "{viewers}");
    assert_eq!(viewers["users"][0]["user_id"], INJECTION);

    // Delete: the user's key is rejected on the very next request.
    let deleted = post_ok(gateway, "/user/delete", json!({"user_ids": [INJECTION]})).await;
    assert_eq!(deleted["deleted_users"], json!([INJECTION]));
    let (status, body) = chat_as(gateway, &key).await;
    assert_error(status, &body, 401, None);
    assert_eq!(body["error"]["type"], "auth_error", "{body}");
    let (status, body) = user_info(gateway, INJECTION).await;
    assert_error(status, &body, 404, Some("user_id"));
    let (status, _, body) =
        send_json(gateway.post("/user/delete", &json!({"user_ids": [INJECTION]}))).await;
    assert_error(status, &body, 404, Some("user_ids"));
    let (_, _, listed) = send_json(gateway.get("/user/list")).await;
    assert_eq!(listed["total"], 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_lifecycle_on_the_embedded_store() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&upstream, data.path());
    user_lifecycle(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_members_are_added_updated_and_removed() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&upstream, data.path());
    let team = post_ok(&gateway, "/team/new", json!({"team_alias": "core"})).await;
    let team_id = team["team_id"].as_str().expect("team_id").to_owned();

    // A user created into the team, then two more added (one unknown: created).
    let carol = post_ok(
        &gateway,
        "/user/new",
        json!({"user_id": "carol", "teams": [team_id], "auto_create_key": false}),
    )
    .await;
    assert_eq!(carol["teams"], json!([team_id]));
    let added = post_ok(
        &gateway,
        "/team/member_add",
        json!({
            "team_id": team_id,
            "member": [
                {"user_id": INJECTION, "role": "admin"},
                {"user_email": "dave@example.com", "role": "user"},
            ],
            "max_budget_in_team": 3.0,
        }),
    )
    .await;
    assert_eq!(added["updated_users"].as_array().expect("users").len(), 2);
    assert_eq!(added["updated_users"][0]["user_id"], INJECTION);
    assert_eq!(
        added["updated_team_memberships"][0]["litellm_budget_table"]["max_budget"],
        3.0
    );
    assert_eq!(added["admins"], json!([INJECTION]), "{added}");
    let dave_id = added["updated_users"][1]["user_id"]
        .as_str()
        .expect("dave's id")
        .to_owned();

    let info = team_info(&gateway, &team_id).await;
    let members = info["team_info"]["members_with_roles"]
        .as_array()
        .expect("members");
    assert_eq!(members.len(), 3, "{info}");
    assert_eq!(info["team_memberships"].as_array().expect("rows").len(), 3);
    let (_, user) = user_info(&gateway, INJECTION).await;
    assert_eq!(user["teams"][0]["team_id"], team_id, "{user}");

    // Duplicate member → 400; unknown team → 404; bad role → 400.
    let (status, _, body) = send_json(gateway.post(
        "/team/member_add",
        &json!({"team_id": team_id, "member": {"user_id": "carol", "role": "user"}}),
    ))
    .await;
    assert_error(status, &body, 400, Some("member"));
    let (status, _, body) = send_json(gateway.post(
        "/team/member_add",
        &json!({"team_id": "no-such-team", "member": {"user_id": "x", "role": "user"}}),
    ))
    .await;
    assert_error(status, &body, 404, Some("team_id"));
    let (status, _, body) = send_json(gateway.post(
        "/team/member_add",
        &json!({"team_id": team_id, "member": {"user_id": "x", "role": "owner"}}),
    ))
    .await;
    assert_error(status, &body, 400, Some("member"));

    // Update: role and budget.
    let updated = post_ok(
        &gateway,
        "/team/member_update",
        json!({"team_id": team_id, "user_email": "dave@example.com", "role": "admin", "max_budget_in_team": 9.0}),
    )
    .await;
    assert_eq!(updated["user_id"], dave_id);
    assert_eq!(updated["role"], "admin");
    assert_eq!(updated["max_budget_in_team"], 9.0);
    let info = team_info(&gateway, &team_id).await;
    let admins = info["team_info"]["admins"].as_array().expect("admins");
    assert!(admins.contains(&json!(dave_id)), "{info}");
    let dave_row = info["team_memberships"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|m| m["user_id"] == dave_id)
        .expect("dave's membership")
        .clone();
    assert_eq!(dave_row["litellm_budget_table"]["max_budget"], 9.0);
    let (status, _, body) = send_json(gateway.post(
        "/team/member_update",
        &json!({"team_id": team_id, "user_id": "nobody", "role": "user"}),
    ))
    .await;
    assert_error(status, &body, 400, Some("user_id"));

    // Delete a member; again → 400.
    let after = post_ok(
        &gateway,
        "/team/member_delete",
        json!({"team_id": team_id, "user_id": INJECTION}),
    )
    .await;
    assert!(!after["members"]
        .as_array()
        .expect("members")
        .contains(&json!(INJECTION)));
    let info = team_info(&gateway, &team_id).await;
    assert_eq!(info["team_memberships"].as_array().expect("rows").len(), 2);
    assert_eq!(
        info["team_info"]["members_with_roles"]
            .as_array()
            .expect("members")
            .len(),
        2
    );
    let (_, user) = user_info(&gateway, INJECTION).await;
    assert_eq!(user["teams"], json!([]), "{user}");
    let (status, _, body) = send_json(gateway.post(
        "/team/member_delete",
        &json!({"team_id": team_id, "user_id": INJECTION}),
    ))
    .await;
    assert_error(status, &body, 400, Some("user_id"));

    // Deleting a user removes it from its teams.
    post_ok(&gateway, "/user/delete", json!({"user_ids": ["carol"]})).await;
    let info = team_info(&gateway, &team_id).await;
    assert_eq!(info["team_memberships"].as_array().expect("rows").len(), 1);
    assert_eq!(info["team_info"]["members"], json!([dave_id]), "{info}");

    // Deleting the team removes it from its members' teams.
    post_ok(&gateway, "/team/delete", json!({"team_ids": [team_id]})).await;
    let (status, user) = user_info(&gateway, &dave_id).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["user_info"]["teams"], json!([]), "{user}");
    assert_eq!(user["teams"], json!([]), "{user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_routes_need_the_master_key_and_valid_input() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&upstream, data.path());
    let created = post_ok(
        &gateway,
        "/user/new",
        json!({"user_id": "erin", "key_alias": "erin-key"}),
    )
    .await;
    assert_eq!(created["key_alias"], "erin-key");
    let key = created["key"].as_str().expect("key").to_owned();
    let team = post_ok(&gateway, "/team/new", json!({})).await;
    let team_id = team["team_id"].as_str().expect("team_id");

    // A virtual key (even the user's own) gets 401 on every route here.
    for (path, body) in [
        ("/user/new", Some(json!({"user_id": "mallory"}))),
        ("/user/info?user_id=erin", None),
        (
            "/user/update",
            Some(json!({"user_id": "erin", "user_role": "proxy_admin"})),
        ),
        ("/user/delete", Some(json!({"user_ids": ["erin"]}))),
        ("/user/list", None),
        (
            "/team/member_add",
            Some(json!({"team_id": team_id, "member": {"user_id": "erin", "role": "admin"}})),
        ),
        (
            "/team/member_update",
            Some(json!({"team_id": team_id, "user_id": "erin", "role": "admin"})),
        ),
        (
            "/team/member_delete",
            Some(json!({"team_id": team_id, "user_id": "erin"})),
        ),
    ] {
        let request = match &body {
            Some(body) => gateway.client().post(gateway.url(path)).json(body),
            None => gateway.client().get(gateway.url(path)),
        };
        let (status, _, reply) = send_json(request.bearer_auth(&key)).await;
        // Team member routes are open to team admins: others get 403 there, 401 elsewhere.
        let expected = if path.starts_with("/team/member_") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "{path}: {reply}");
        assert_eq!(reply["error"]["type"], "auth_error", "{path}: {reply}");
    }
    let (_, info) = user_info(&gateway, "erin").await;
    assert_eq!(info["user_info"]["user_role"], "internal_user");

    // Bad input: 400 naming the field.
    for (path, body, param) in [
        ("/user/new", json!({"user_role": "superuser"}), "user_role"),
        ("/user/new", json!({"max_budget": -1}), "max_budget"),
        (
            "/user/new",
            json!({"budget_duration": "soon"}),
            "budget_duration",
        ),
        ("/user/new", json!({"user_id": "erin"}), "user_id"),
        ("/user/new", json!({"teams": ["no-such-team"]}), "teams"),
        ("/user/new", json!({"models": "gpt-4o"}), "models"),
        ("/user/new", json!({"key_alias": "erin-key"}), "key_alias"),
        ("/user/new", json!({"duration": "forever"}), "duration"),
        ("/user/update", json!({"max_budget": 1}), "user_id"),
        (
            "/user/update",
            json!({"user_id": "erin", "rpm_limit": -3}),
            "rpm_limit",
        ),
        ("/user/delete", json!({}), "user_ids"),
        (
            "/team/member_add",
            json!({"member": {"user_id": "erin", "role": "user"}}),
            "team_id",
        ),
        (
            "/team/member_add",
            json!({"team_id": team_id, "member": {"role": "user"}}),
            "member",
        ),
        (
            "/team/member_delete",
            json!({"team_id": team_id}),
            "user_id",
        ),
        (
            "/team/member_update",
            json!({"team_id": team_id, "user_id": "erin", "max_budget_in_team": -1}),
            "max_budget_in_team",
        ),
    ] {
        let (status, _, reply) = send_json(gateway.post(path, &body)).await;
        assert_error(status, &reply, 400, Some(param));
        assert_eq!(reply["error"]["type"], "invalid_request_error", "{reply}");
    }
    for query in [
        "/user/info",
        "/user/list?page_size=1000",
        "/user/list?role=root",
    ] {
        let (status, _, reply) = send_json(gateway.get(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {reply}");
    }
    // Nothing above created a user or changed erin.
    let (_, _, listed) = send_json(gateway.get("/user/list")).await;
    assert_eq!(listed["total"], 1, "{listed}");
}

/// A schema of the test database, dropped when the test ends.
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    async fn create() -> Self {
        let base = std::env::var("SWITCHYARD_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("sy_e2e_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL (SWITCHYARD_TEST_DATABASE_URL) is unreachable: {e}")
            });
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create the test schema");
        Self { base, name }
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_lifecycle_on_postgres() {
    let schema = PgSchema::create().await;
    let upstream = mock().await;
    let config = format!(
        "{}  database_url: \"{}\"\n",
        standard_config(&upstream),
        schema.url()
    );
    let gateway = Gateway::start(&config);
    assert!(
        gateway.log().contains("store: PostgreSQL"),
        "{}",
        gateway.log()
    );
    user_lifecycle(&gateway).await;

    // Memberships on PostgreSQL too.
    let team = post_ok(&gateway, "/team/new", json!({})).await;
    let team_id = team["team_id"].as_str().expect("team_id");
    post_ok(
        &gateway,
        "/team/member_add",
        json!({"team_id": team_id, "member": {"user_id": INJECTION, "role": "user"}, "max_budget_in_team": 1.0}),
    )
    .await;
    let info = team_info(&gateway, team_id).await;
    assert_eq!(info["team_memberships"][0]["user_id"], INJECTION, "{info}");
    post_ok(
        &gateway,
        "/team/member_delete",
        json!({"team_id": team_id, "user_id": INJECTION}),
    )
    .await;
    let info = team_info(&gateway, team_id).await;
    assert_eq!(info["team_memberships"], json!([]), "{info}");
}
