//! LiteLLM's roles, route by route: every management route called with a key of each role
//! (proxy admin user, proxy admin viewer, internal user, internal user viewer, team admin,
//! key owner), expecting LiteLLM's 401 / 403 or success.

use serde_json::{json, Value};
use switchyard_tests::Gateway;

use crate::common::{mock, send_json, standard_config};
use crate::governance::{gateway_on_sqlite, ok};

/// What a route requires (mirrors the server's `roles::ROUTE_ACCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Admin,
    AdminRead,
    /// Open to team admins for their team; the request here targets a team the internal
    /// user does not administer.
    TeamAdmin,
    TeamRead,
}

async fn as_key(
    gateway: &Gateway,
    key: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = gateway
        .client()
        .request(method.clone(), gateway.url(path))
        .bearer_auth(key);
    if method != reqwest::Method::GET {
        request = request.json(body);
    }
    let (status, _, reply) = send_json(request).await;
    (status.as_u16(), reply)
}

async fn user_with_key(gateway: &Gateway, role: &str) -> (String, String) {
    let user_id = format!("{role}-{}", uuid::Uuid::new_v4().simple());
    let created = ok(
        gateway,
        "POST",
        "/user/new",
        Some(json!({"user_id": user_id, "user_role": role})),
    )
    .await;
    let key = created["key"].as_str().expect("user key").to_owned();
    (user_id, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_management_route_checks_the_role() {
    let upstream = mock().await;
    let data = tempfile::tempdir().expect("temp dir");
    let gateway = gateway_on_sqlite(&standard_config(&upstream), data.path());

    let (_, admin) = user_with_key(&gateway, "proxy_admin").await;
    let (_, viewer) = user_with_key(&gateway, "proxy_admin_viewer").await;
    let (_, internal) = user_with_key(&gateway, "internal_user").await;
    let (_, internal_viewer) = user_with_key(&gateway, "internal_user_viewer").await;
    let (boss_id, boss) = user_with_key(&gateway, "internal_user").await;
    let own_team = ok(
        &gateway,
        "POST",
        "/team/new",
        Some(json!({"team_alias": "boss-team"})),
    )
    .await["team_id"]
        .as_str()
        .expect("team_id")
        .to_owned();
    ok(
        &gateway,
        "POST",
        "/team/member_add",
        Some(json!({"team_id": own_team, "member": {"role": "admin", "user_id": boss_id}})),
    )
    .await;
    let other_team = ok(
        &gateway,
        "POST",
        "/team/new",
        Some(json!({"team_alias": "other"})),
    )
    .await["team_id"]
        .as_str()
        .expect("team_id")
        .to_owned();
    let other_key = ok(
        &gateway,
        "POST",
        "/key/generate",
        Some(json!({"team_id": other_team})),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_owned();

    // (method, path, body, requirement). Bodies are valid enough that an admin passes the
    // role check; TeamAdmin / TeamRead requests target `other_team`.
    let routes: Vec<(&str, String, Value, Needs)> = vec![
        (
            "POST",
            "/key/generate".into(),
            json!({"team_id": other_team}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/key/update".into(),
            json!({"key": other_key}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/key/block".into(),
            json!({"key": other_key}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/key/unblock".into(),
            json!({"key": other_key}),
            Needs::TeamAdmin,
        ),
        (
            "GET",
            format!("/key/list?team_id={other_team}"),
            json!({}),
            Needs::TeamRead,
        ),
        (
            "POST",
            "/team/new".into(),
            json!({"team_alias": "x"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/team/update".into(),
            json!({"team_id": other_team}),
            Needs::Admin,
        ),
        (
            "POST",
            "/team/block".into(),
            json!({"team_id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/team/unblock".into(),
            json!({"team_id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/team/delete".into(),
            json!({"team_ids": ["none"]}),
            Needs::Admin,
        ),
        (
            "GET",
            format!("/team/info?team_id={other_team}"),
            json!({}),
            Needs::TeamRead,
        ),
        ("GET", "/team/list".into(), json!({}), Needs::AdminRead),
        (
            "POST",
            "/team/member_add".into(),
            json!({"team_id": other_team, "member": {"role": "user", "user_id": "m1"}}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/team/member_update".into(),
            json!({"team_id": other_team, "user_id": "m1"}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/team/member_delete".into(),
            json!({"team_id": other_team, "user_id": "m1"}),
            Needs::TeamAdmin,
        ),
        (
            "POST",
            "/user/new".into(),
            json!({"user_id": format!("n-{}", uuid::Uuid::new_v4())}),
            Needs::Admin,
        ),
        (
            "POST",
            "/user/update".into(),
            json!({"user_id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/user/delete".into(),
            json!({"user_ids": ["none"]}),
            Needs::Admin,
        ),
        (
            "GET",
            "/user/info?user_id=none".into(),
            json!({}),
            Needs::AdminRead,
        ),
        ("GET", "/user/list".into(), json!({}), Needs::AdminRead),
        (
            "POST",
            "/organization/new".into(),
            json!({"organization_alias": "o"}),
            Needs::Admin,
        ),
        (
            "PATCH",
            "/organization/update".into(),
            json!({"organization_id": "none"}),
            Needs::Admin,
        ),
        (
            "DELETE",
            "/organization/delete".into(),
            json!({"organization_ids": ["none"]}),
            Needs::Admin,
        ),
        (
            "POST",
            "/organization/member_add".into(),
            json!({"organization_id": "none", "member": {"role": "internal_user", "user_id": "x"}}),
            Needs::Admin,
        ),
        (
            "PATCH",
            "/organization/member_update".into(),
            json!({"organization_id": "none", "user_id": "x"}),
            Needs::Admin,
        ),
        (
            "DELETE",
            "/organization/member_delete".into(),
            json!({"organization_id": "none", "user_id": "x"}),
            Needs::Admin,
        ),
        (
            "GET",
            "/organization/info?organization_id=none".into(),
            json!({}),
            Needs::AdminRead,
        ),
        (
            "GET",
            "/organization/list".into(),
            json!({}),
            Needs::AdminRead,
        ),
        (
            "POST",
            "/customer/new".into(),
            json!({"user_id": format!("c-{}", uuid::Uuid::new_v4())}),
            Needs::Admin,
        ),
        (
            "POST",
            "/customer/update".into(),
            json!({"user_id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/customer/delete".into(),
            json!({"user_ids": ["none"]}),
            Needs::Admin,
        ),
        (
            "POST",
            "/customer/block".into(),
            json!({"user_ids": ["blocked-by-admin"]}),
            Needs::Admin,
        ),
        (
            "POST",
            "/customer/unblock".into(),
            json!({"user_ids": ["blocked-by-admin"]}),
            Needs::Admin,
        ),
        (
            "GET",
            "/customer/info?end_user_id=none".into(),
            json!({}),
            Needs::AdminRead,
        ),
        ("GET", "/customer/list".into(), json!({}), Needs::AdminRead),
        (
            "POST",
            "/budget/new".into(),
            json!({"max_budget": 1}),
            Needs::Admin,
        ),
        (
            "POST",
            "/budget/update".into(),
            json!({"budget_id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/budget/delete".into(),
            json!({"id": "none"}),
            Needs::Admin,
        ),
        (
            "POST",
            "/budget/info".into(),
            json!({"budgets": ["none"]}),
            Needs::AdminRead,
        ),
        ("GET", "/budget/list".into(), json!({}), Needs::AdminRead),
        (
            "GET",
            "/budget/settings?budget_id=none".into(),
            json!({}),
            Needs::AdminRead,
        ),
        ("GET", "/audit".into(), json!({}), Needs::AdminRead),
        ("POST", "/cache/flushall".into(), json!({}), Needs::Admin),
        ("GET", "/health".into(), json!({}), Needs::AdminRead),
    ];

    for (method, path, body, needs) in &routes {
        let route = format!("{method} {path}");
        // The proxy_admin user's key is an admin: never a 401 / 403.
        let (status, reply) = as_key(&gateway, &admin, method, path, body).await;
        assert!(
            status != 401 && status != 403,
            "admin on {route}: {status} {reply}"
        );

        let (status, reply) = as_key(&gateway, &viewer, method, path, body).await;
        match needs {
            Needs::AdminRead | Needs::TeamRead => {
                assert!(
                    status != 401 && status != 403,
                    "viewer on {route}: {status} {reply}"
                )
            }
            Needs::Admin | Needs::TeamAdmin => {
                assert_eq!(status, 403, "viewer on {route}: {reply}");
                let message = reply["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.starts_with(
                        "user not allowed to access this route, role= proxy_admin_viewer"
                    ),
                    "{reply}"
                );
                assert_eq!(reply["error"]["type"], "auth_error");
            }
        }

        for (who, key) in [
            ("internal_user", &internal),
            ("internal_user_viewer", &internal_viewer),
            ("team admin of another team", &boss),
        ] {
            let (status, reply) = as_key(&gateway, key, method, path, body).await;
            let expected = match needs {
                Needs::Admin | Needs::AdminRead => 401,
                Needs::TeamAdmin | Needs::TeamRead => 403,
            };
            assert_eq!(status, expected, "{who} on {route}: {reply}");
            assert_eq!(reply["error"]["type"], "auth_error", "{reply}");
            if expected == 401 {
                let message = reply["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("Only proxy admin can be used"), "{reply}");
            }
        }
    }

    // A team admin manages the keys and members of their own team.
    let generated = as_key(
        &gateway,
        &boss,
        "POST",
        "/key/generate",
        &json!({"team_id": own_team}),
    )
    .await;
    assert_eq!(generated.0, 200, "{}", generated.1);
    let team_key = generated.1["key"].as_str().expect("key").to_owned();
    for (method, path, body) in [
        (
            "POST",
            "/key/update".to_owned(),
            json!({"key": team_key, "key_alias": format!("a-{}", uuid::Uuid::new_v4())}),
        ),
        ("POST", "/key/block".to_owned(), json!({"key": team_key})),
        ("POST", "/key/unblock".to_owned(), json!({"key": team_key})),
        ("GET", format!("/key/info?key={team_key}"), json!({})),
        ("GET", format!("/key/list?team_id={own_team}"), json!({})),
        ("GET", format!("/team/info?team_id={own_team}"), json!({})),
        (
            "POST",
            "/team/member_add".to_owned(),
            json!({"team_id": own_team, "member": {"role": "user", "user_id": format!("m-{}", uuid::Uuid::new_v4())}}),
        ),
    ] {
        let (status, reply) = as_key(&gateway, &boss, method, &path, &body).await;
        assert_eq!(status, 200, "team admin on {method} {path}: {reply}");
    }
    // ...but not team settings, and not keys outside a team.
    assert_eq!(
        as_key(
            &gateway,
            &boss,
            "POST",
            "/team/update",
            &json!({"team_id": own_team})
        )
        .await
        .0,
        401
    );
    assert_eq!(
        as_key(&gateway, &boss, "POST", "/key/generate", &json!({}))
            .await
            .0,
        403
    );
    // Moving a key of their team into another team is refused.
    assert_eq!(
        as_key(
            &gateway,
            &boss,
            "POST",
            "/key/update",
            &json!({"key": team_key, "team_id": other_team})
        )
        .await
        .0,
        403
    );
    let rotated = as_key(
        &gateway,
        &boss,
        "POST",
        "/key/regenerate",
        &json!({"key": team_key}),
    )
    .await;
    assert_eq!(rotated.0, 200, "{}", rotated.1);
    let rotated_key = rotated.1["key"].as_str().expect("key").to_owned();
    let removed = as_key(
        &gateway,
        &boss,
        "POST",
        "/key/delete",
        &json!({"keys": [rotated_key]}),
    )
    .await;
    assert_eq!(removed.0, 200, "{}", removed.1);

    // A key's owner reads its own key, and nobody else's.
    let (status, reply) = as_key(&gateway, &internal, "GET", "/key/info", &json!({})).await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = as_key(
        &gateway,
        &internal,
        "GET",
        &format!("/key/info?key={other_key}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    let (status, _) = as_key(
        &gateway,
        &viewer,
        "GET",
        &format!("/key/info?key={other_key}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);

    // Demoting the proxy admin takes effect on their key at once.
    let admin_info = as_key(&gateway, &admin, "GET", "/key/info", &json!({}))
        .await
        .1;
    let admin_user = admin_info["info"]["user_id"]
        .as_str()
        .expect("owner")
        .to_owned();
    ok(
        &gateway,
        "POST",
        "/user/update",
        Some(json!({"user_id": admin_user, "user_role": "internal_user"})),
    )
    .await;
    let (status, reply) = as_key(&gateway, &admin, "GET", "/team/list", &json!({})).await;
    assert_eq!(status, 401, "{reply}");
}
