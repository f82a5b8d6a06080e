//! `SharedState` against the real Redis on 127.0.0.1:6379, each test under its own key
//! namespace (other people use the same Redis: nothing here flushes or scans it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic with context is the failure report"
)]

use std::time::Duration;

use switchyard_router::{SharedSettings, SharedState};

fn settings(test: &str) -> SharedSettings {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    SharedSettings {
        url: "redis://127.0.0.1:6379".to_owned(),
        namespace: format!("test-router-{test}-{}-{nanos}", std::process::id()),
        op_timeout: Duration::from_millis(500),
    }
}

fn ids() -> Vec<String> {
    vec!["d0".to_owned(), "d1".to_owned()]
}

async fn connected(test: &str) -> SharedState {
    let state = SharedState::connect(&settings(test), ids()).unwrap();
    assert!(
        state.wait_connected(Duration::from_secs(5)).await,
        "Redis at 127.0.0.1:6379 is not reachable"
    );
    state
}

/// Waits until the background writer's effects are visible in a snapshot.
async fn eventually(
    state: &SharedState,
    minute: u64,
    check: impl Fn(&[switchyard_router::MemberState]) -> bool,
) -> Vec<switchyard_router::MemberState> {
    for _ in 0..100 {
        if let Some(snapshot) = state.snapshot(&[0, 1], minute).await {
            if check(&snapshot) {
                return snapshot;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the shared state never showed the expected values");
}

#[tokio::test]
async fn writes_from_one_replica_show_in_the_others_snapshot() {
    let writer = connected("writes").await;
    // A second handle on the same namespace stands for another replica.
    let reader = SharedState::connect(
        &SharedSettings {
            namespace: writer.namespace().to_owned(),
            ..settings("unused")
        },
        ids(),
    )
    .unwrap();
    assert!(reader.wait_connected(Duration::from_secs(5)).await);
    let minute = 29_000_000;
    let empty = reader.snapshot(&[0, 1], minute).await.unwrap();
    assert!(empty.iter().all(|s| *s == Default::default()), "{empty:?}");
    writer.publish_cooldown(1, Duration::from_secs(30));
    writer.add_tokens(0, minute, 120);
    writer.add_in_flight(0, 2);
    writer.add_in_flight(0, -1);
    assert_eq!(writer.reserve_request(0, minute, None).await, Some(true));
    let seen = eventually(&reader, minute, |s| {
        s[0].tpm == 120 && s[0].rpm == 1 && s[0].in_flight == 1 && s[1].cooldown_remaining.is_some()
    })
    .await;
    let remaining = seen[1].cooldown_remaining.unwrap();
    assert!(remaining <= Duration::from_secs(30) && remaining > Duration::from_secs(25));
    // Counters are per minute.
    let next = reader.snapshot(&[0, 1], minute + 1).await.unwrap();
    assert_eq!((next[0].rpm, next[0].tpm), (0, 0));
    assert_eq!(reader.fallbacks(), 0);
}

#[tokio::test]
async fn rpm_reservations_are_exact_under_concurrency() {
    let state = std::sync::Arc::new(connected("rpm").await);
    let minute = 29_000_001;
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move { state.reserve_request(1, minute, Some(7)).await })
        })
        .collect();
    let mut granted = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == Some(true) {
            granted += 1;
        }
    }
    assert_eq!(granted, 7);
}

#[tokio::test]
async fn an_unreachable_redis_is_a_counted_fallback_not_an_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let state = SharedState::connect(
        &SharedSettings {
            url: format!("redis://127.0.0.1:{port}"),
            ..settings("down")
        },
        ids(),
    )
    .unwrap();
    assert_eq!(state.snapshot(&[0, 1], 1).await, None);
    assert_eq!(state.reserve_request(0, 1, Some(3)).await, None);
    assert!(state.fallbacks() >= 2);
    assert!(!state.ping().await);
}
