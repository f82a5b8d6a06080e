//! The Redis ledger against a real Redis (`SWITCHYARD_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Each test uses its own key prefix and deletes only its keys.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a panic with context is the failure report"
)]

use std::sync::Arc;
use std::time::Duration;

use switchyard_budget::limits::{LimitKind, LimitRule, RateLimits, Scope, ScopeKind};
use switchyard_budget::{
    Actual, AdmissionRequest, Backend, BudgetRule, FailMode, Ledger, RedisLedger,
    RedisLedgerSettings, Refusal,
};

const T0: u64 = 1_800_000_000_000;

fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn settings(prefix: &str) -> RedisLedgerSettings {
    RedisLedgerSettings {
        prefix: prefix.to_owned(),
        op_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(30),
        ..RedisLedgerSettings::new(redis_url())
    }
}

async fn connected(prefix: &str) -> RedisLedger {
    let redis = RedisLedger::connect(settings(prefix)).unwrap();
    assert!(
        redis.wait_connected(Duration::from_secs(5)).await,
        "redis at {} is not reachable",
        redis_url()
    );
    redis
}

fn unique_prefix(test: &str) -> String {
    format!("sy-test-ledger-{test}-{}", uuid::Uuid::new_v4().simple())
}

fn limits(rpm: Option<u64>, tpm: Option<u64>, parallel: Option<u64>) -> LimitRule {
    LimitRule {
        scope: Scope::new(ScopeKind::Key, "hash-1"),
        limits: RateLimits {
            rpm,
            tpm,
            max_parallel: parallel,
        },
    }
}

fn budget(max: f64, spent: f64) -> BudgetRule {
    BudgetRule {
        scope: Scope::new(ScopeKind::Team, "team-1"),
        max_budget: max,
        soft_budget: None,
        spent,
        period_end_ms: Some(T0 + 3_600_000),
    }
}

fn request(limits: Vec<LimitRule>, budgets: Vec<BudgetRule>, cost: f64) -> AdmissionRequest {
    AdmissionRequest {
        limits,
        budgets,
        reserve_cost: cost,
        reserve_tokens: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpm_is_exact_across_replicas_under_concurrency() {
    let prefix = unique_prefix("rpm");
    // Three "replicas": three ledgers with their own pools on the same Redis and prefix.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(Ledger::with_redis(
            connected(&prefix).await,
            FailMode::Closed,
        )));
    }
    let rule = limits(Some(37), None, None);
    let mut tasks = Vec::new();
    for i in 0..150u64 {
        let ledger = Arc::clone(&replicas[(i % 3) as usize]);
        let rule = rule.clone();
        tasks.push(tokio::spawn(async move {
            ledger
                .admit(request(vec![rule], vec![], 0.0), format!("t{i}"), T0 + i)
                .await
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(ticket) => {
                assert_eq!(ticket.backend, Backend::Redis);
                admitted += 1;
            }
            Err(Refusal::RateLimited {
                kind: LimitKind::Requests,
                limit: 37,
                retry_after_secs,
                ..
            }) => assert!((1..=60).contains(&retry_after_secs)),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(admitted, 37);
    assert_eq!(replicas[0].redis_failures(), 0);
    // The window slides: a minute later there is room again.
    assert!(replicas[1]
        .admit(request(vec![rule], vec![], 0.0), "late".into(), T0 + 61_000)
        .await
        .is_ok());
    connected(&prefix).await.delete_all_keys().await.unwrap();
}

#[tokio::test]
async fn budgets_reserve_then_settle_and_seed_once() {
    let prefix = unique_prefix("budget");
    let ledger = Ledger::with_redis(connected(&prefix).await, FailMode::Closed);
    let rule = budget(1.0, 0.25);
    let a = ledger
        .admit(request(vec![], vec![rule.clone()], 0.5), "a".into(), T0)
        .await
        .unwrap();
    let b = ledger
        .admit(request(vec![], vec![rule.clone()], 0.5), "b".into(), T0)
        .await
        .unwrap();
    // 0.25 + 0.5 + 0.5 = 1.25 ≥ 1.0.
    match ledger
        .admit(request(vec![], vec![rule.clone()], 0.5), "c".into(), T0)
        .await
    {
        Err(Refusal::BudgetExceeded {
            spend, max_budget, ..
        }) => {
            assert!((spend - 1.25).abs() < 1e-9, "{spend}");
            assert_eq!(max_budget, 1.0);
        }
        other => panic!("{other:?}"),
    }
    let settled = ledger
        .settle(
            &a,
            Actual {
                cost: 0.1,
                tokens: 50,
            },
            T0 + 1,
        )
        .await;
    assert_eq!(settled.len(), 1);
    assert!((settled[0].spent_before - 0.25).abs() < 1e-9);
    assert!((settled[0].spent_after - 0.35).abs() < 1e-9);
    // A stale row (spent 0) does not re-seed the counter.
    let stale = budget(1.0, 0.0);
    let c = ledger
        .admit(request(vec![], vec![stale], 0.1), "c".into(), T0 + 2)
        .await
        .unwrap();
    ledger.settle(&b, Actual::default(), T0 + 3).await;
    let settled = ledger
        .settle(
            &c,
            Actual {
                cost: 0.05,
                tokens: 0,
            },
            T0 + 4,
        )
        .await;
    assert!((settled[0].spent_after - 0.4).abs() < 1e-9);
    // The next period is a new counter, seeded from the row's (reset) spend.
    let next = BudgetRule {
        period_end_ms: Some(T0 + 7_200_000),
        ..budget(1.0, 0.0)
    };
    let d = ledger
        .admit(request(vec![], vec![next], 0.9), "d".into(), T0 + 3_600_001)
        .await
        .unwrap();
    let settled = ledger
        .settle(
            &d,
            Actual {
                cost: 0.01,
                tokens: 0,
            },
            T0 + 3_600_002,
        )
        .await;
    assert!((settled[0].spent_after - 0.01).abs() < 1e-9);
    connected(&prefix).await.delete_all_keys().await.unwrap();
}

#[tokio::test]
async fn leases_free_what_a_dead_replica_held() {
    let prefix = unique_prefix("lease");
    let ledger = Ledger::with_redis(connected(&prefix).await, FailMode::Closed);
    let rule = limits(None, None, Some(2));
    let spend = budget(1.0, 0.0);
    // Two calls that are never settled (their replica "died").
    for id in ["x", "y"] {
        ledger
            .admit(
                request(vec![rule.clone()], vec![spend.clone()], 0.45),
                id.into(),
                T0,
            )
            .await
            .unwrap();
    }
    match ledger
        .admit(
            request(vec![rule.clone()], vec![spend.clone()], 0.45),
            "z".into(),
            T0 + 1,
        )
        .await
    {
        Err(Refusal::RateLimited {
            kind: LimitKind::MaxParallelRequests,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Past the 30 s lease, both the slots and the 0.9 reserved are given back.
    let ticket = ledger
        .admit(
            request(vec![rule], vec![spend], 0.95),
            "w".into(),
            T0 + 31_000,
        )
        .await
        .unwrap();
    assert_eq!(ticket.statuses[0].remaining, 1);
    connected(&prefix).await.delete_all_keys().await.unwrap();
}

#[tokio::test]
async fn tokens_are_corrected_by_the_real_usage() {
    let prefix = unique_prefix("tpm");
    let ledger = Ledger::with_redis(connected(&prefix).await, FailMode::Closed);
    let rule = limits(None, Some(100), None);
    let mut req = request(vec![rule.clone()], vec![], 0.0);
    req.reserve_tokens = 90;
    let first = ledger.admit(req.clone(), "a".into(), T0).await.unwrap();
    assert_eq!(first.statuses[0].remaining, 10);
    let second = ledger.admit(req.clone(), "b".into(), T0 + 1).await.unwrap();
    assert!(matches!(
        ledger.admit(req.clone(), "c".into(), T0 + 2).await,
        Err(Refusal::RateLimited {
            kind: LimitKind::Tokens,
            ..
        })
    ));
    ledger
        .settle(
            &first,
            Actual {
                cost: 0.0,
                tokens: 20,
            },
            T0 + 3,
        )
        .await;
    ledger
        .settle(
            &second,
            Actual {
                cost: 0.0,
                tokens: 20,
            },
            T0 + 3,
        )
        .await;
    let mut small = req;
    small.reserve_tokens = 5;
    let third = ledger.admit(small, "d".into(), T0 + 4).await.unwrap();
    assert_eq!(third.statuses[0].remaining, 100 - 40 - 5);
    connected(&prefix).await.delete_all_keys().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_fails_open_or_closed_as_configured() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dead = || {
        RedisLedger::connect(RedisLedgerSettings {
            prefix: unique_prefix("dead"),
            ..RedisLedgerSettings::new(format!("redis://127.0.0.1:{port}"))
        })
        .unwrap()
    };
    let rule = limits(Some(1), None, None);
    let open = Ledger::with_redis(dead(), FailMode::Open);
    let ticket = open
        .admit(request(vec![rule.clone()], vec![], 0.0), "a".into(), T0)
        .await
        .unwrap();
    assert_eq!(ticket.backend, Backend::Local);
    // The local counters still limit.
    assert!(open
        .admit(request(vec![rule.clone()], vec![], 0.0), "b".into(), T0)
        .await
        .is_err());
    assert!(open.redis_failures() >= 2);
    let closed = Ledger::with_redis(dead(), FailMode::Closed);
    assert!(matches!(
        closed
            .admit(request(vec![rule], vec![], 0.0), "c".into(), T0)
            .await,
        Err(Refusal::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_claim_is_won_by_one_replica_only() {
    let prefix = unique_prefix("claim");
    let first = Ledger::with_redis(connected(&prefix).await, FailMode::Open);
    let second = Ledger::with_redis(connected(&prefix).await, FailMode::Open);
    let ttl = Duration::from_secs(60);
    assert!(first.claim_once("alert:team-1#Budget Crossed", ttl).await);
    assert!(!second.claim_once("alert:team-1#Budget Crossed", ttl).await);
    assert!(
        second
            .claim_once("alert:team-1#Soft Budget Crossed", ttl)
            .await
    );
    // Without Redis every replica decides for itself.
    assert!(Ledger::local().claim_once("anything", ttl).await);
    connected(&prefix).await.delete_all_keys().await.unwrap();
}
