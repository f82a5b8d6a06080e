//! Two replicas sharing one PostgreSQL database: a key blocked, unblocked, rotated or
//! deleted through replica A is refused (or accepted again) by replica B within a second —
//! through Redis pub/sub when a Redis cache is configured, and through the polled change
//! counter without Redis.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::Gateway;

use crate::common::mock;
use crate::governance::{chat_as_end_user, chat_status, ok, pg_config};
use crate::keys::PgSchema;

/// LiteLLM's default auth-cache TTL is 60 s: anything well under it proves the change was
/// pushed, not waited out.
const WITHIN: Duration = Duration::from_secs(1);

/// Polls B until `key` gets `expected` on the chat route; returns how long it took.
async fn until_status(gateway: &Gateway, key: &str, expected: u16) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = chat_status(gateway, key, "gpt-4o").await;
        if status == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < WITHIN,
            "replica B still answers {status} after {:?}: {body}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn changes_reach_the_other_replica(a: &Gateway, b: &Gateway) {
    let key = ok(a, "POST", "/key/generate", Some(json!({}))).await["key"]
        .as_str()
        .expect("key")
        .to_owned();
    // B caches the key as valid.
    assert_eq!(chat_status(b, &key, "gpt-4o").await.0, 200);
    assert_eq!(chat_status(b, &key, "gpt-4o").await.0, 200);

    ok(a, "POST", "/key/block", Some(json!({"key": key}))).await;
    let took = until_status(b, &key, 401).await;
    println!("block reached replica B in {took:?}");
    ok(a, "POST", "/key/unblock", Some(json!({"key": key}))).await;
    until_status(b, &key, 200).await;

    // A model restriction applies on B too.
    ok(
        a,
        "POST",
        "/key/update",
        Some(json!({"key": key, "models": ["embed"]})),
    )
    .await;
    until_status(b, &key, 403).await;

    let rotated = ok(a, "POST", "/key/regenerate", Some(json!({"key": key}))).await;
    let new_key = rotated["key"].as_str().expect("new key").to_owned();
    until_status(b, &key, 401).await;
    ok(a, "POST", "/key/delete", Some(json!({"keys": [new_key]}))).await;
    until_status(b, &new_key, 401).await;

    // Team changes (which flush every key) travel too.
    let team = ok(
        a,
        "POST",
        "/team/new",
        Some(json!({"team_alias": "replicated"})),
    )
    .await["team_id"]
        .as_str()
        .expect("team")
        .to_owned();
    let team_key = ok(a, "POST", "/key/generate", Some(json!({"team_id": team}))).await["key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(chat_status(b, &team_key, "gpt-4o").await.0, 200);
    ok(a, "POST", "/team/block", Some(json!({"team_id": team}))).await;
    until_status(b, &team_key, 401).await;

    // A customer blocked on A is refused by B.
    let customer = format!("customer-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(chat_as_end_user(b, &customer).await.0, 200);
    ok(
        a,
        "POST",
        "/customer/block",
        Some(json!({"user_ids": [customer]})),
    )
    .await;
    let start = Instant::now();
    while chat_as_end_user(b, &customer).await.0 != 400 {
        assert!(
            start.elapsed() < WITHIN,
            "customer block did not reach replica B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_blocked_on_one_replica_is_refused_by_the_other_through_redis() {
    let schema = PgSchema::create().await;
    let upstream = mock().await;
    // A per-test namespace: other tests (and people) share this Redis.
    let namespace = format!("sy-e2e-{}", uuid::Uuid::new_v4().simple());
    let config = format!(
        "{}litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    host: 127.0.0.1\n    port: 6379\n    namespace: {namespace}\n",
        pg_config(&upstream, &schema)
    );
    let a = Gateway::start(&config);
    let b = Gateway::start(&config);
    changes_reach_the_other_replica(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_blocked_on_one_replica_is_refused_by_the_other_without_redis() {
    let schema = PgSchema::create().await;
    let upstream = mock().await;
    let config = pg_config(&upstream, &schema);
    let a = Gateway::start(&config);
    let b = Gateway::start(&config);
    changes_reach_the_other_replica(&a, &b).await;
}
