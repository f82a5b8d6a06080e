//! The local ledger's arithmetic with an injected clock (ms since the epoch).

use super::*;
use crate::limits::{LimitRule, RateLimits, Scope, ScopeKind};

const T0: u64 = 1_800_000_000_000;

fn key_limits(rpm: Option<u64>, tpm: Option<u64>, parallel: Option<u64>) -> LimitRule {
    LimitRule {
        scope: Scope::new(ScopeKind::Key, "k1"),
        limits: RateLimits {
            rpm,
            tpm,
            max_parallel: parallel,
        },
    }
}

fn budget(kind: ScopeKind, max: f64, spent: f64, period_end_ms: Option<u64>) -> BudgetRule {
    BudgetRule {
        scope: Scope::new(kind, "b1"),
        max_budget: max,
        soft_budget: None,
        spent,
        period_end_ms,
    }
}

fn request(
    limits: Vec<LimitRule>,
    budgets: Vec<BudgetRule>,
    cost: f64,
    tokens: u64,
) -> AdmissionRequest {
    AdmissionRequest {
        limits,
        budgets,
        reserve_cost: cost,
        reserve_tokens: tokens,
    }
}

async fn admit(ledger: &Ledger, request: AdmissionRequest, now: u64) -> Result<Ticket, Refusal> {
    ledger.admit(request, format!("t-{now}"), now).await
}

#[tokio::test]
async fn rpm_admits_exactly_the_limit_per_window() {
    let ledger = Ledger::local();
    let rule = key_limits(Some(3), None, None);
    for i in 0..3 {
        let ticket = admit(&ledger, request(vec![rule.clone()], vec![], 0.0, 0), T0 + i)
            .await
            .unwrap();
        assert_eq!(ticket.backend, Backend::Local);
        assert_eq!(ticket.statuses[0].remaining, 2 - i);
        assert_eq!(ticket.statuses[0].limit, 3);
    }
    let refused = admit(
        &ledger,
        request(vec![rule.clone()], vec![], 0.0, 0),
        T0 + 10_000,
    )
    .await
    .unwrap_err();
    match refused {
        Refusal::RateLimited {
            kind,
            limit,
            retry_after_secs,
            ..
        } => {
            assert_eq!(kind, LimitKind::Requests);
            assert_eq!(limit, 3);
            assert_eq!(retry_after_secs, 50);
        }
        other => panic!("{other:?}"),
    }
    // A minute later the window has slid past the first three.
    assert!(
        admit(&ledger, request(vec![rule], vec![], 0.0, 0), T0 + 60_000)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn max_parallel_counts_calls_until_they_settle() {
    let ledger = Ledger::local();
    let rule = key_limits(None, None, Some(2));
    let first = admit(&ledger, request(vec![rule.clone()], vec![], 0.0, 0), T0)
        .await
        .unwrap();
    let _second = admit(&ledger, request(vec![rule.clone()], vec![], 0.0, 0), T0)
        .await
        .unwrap();
    let refused = admit(&ledger, request(vec![rule.clone()], vec![], 0.0, 0), T0)
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        Refusal::RateLimited {
            kind: LimitKind::MaxParallelRequests,
            retry_after_secs: 1,
            ..
        }
    ));
    ledger.settle(&first, Actual::default(), T0 + 5).await;
    assert!(admit(&ledger, request(vec![rule], vec![], 0.0, 0), T0 + 6)
        .await
        .is_ok());
}

#[tokio::test]
async fn budgets_count_reservations_and_settle_to_the_real_cost() {
    let ledger = Ledger::local();
    let rule = budget(ScopeKind::Key, 1.0, 0.1, None);
    let req = || request(vec![], vec![rule.clone()], 0.4, 0);
    // 0.1 spent: 0.5, 0.9, then 1.3 committed (admitted while under 1.0).
    let a = admit(&ledger, req(), T0).await.unwrap();
    let b = admit(&ledger, req(), T0).await.unwrap();
    let _c = admit(&ledger, req(), T0).await.unwrap();
    match admit(&ledger, req(), T0).await.unwrap_err() {
        Refusal::BudgetExceeded {
            spend, max_budget, ..
        } => {
            assert!((spend - 1.3).abs() < 1e-9, "{spend}");
            assert_eq!(max_budget, 1.0);
        }
        other => panic!("{other:?}"),
    }
    // The first call really cost 0.05: spent 0.15, reserved 0.8 → 0.95 < 1.0.
    let settled = ledger
        .settle(
            &a,
            Actual {
                cost: 0.05,
                tokens: 0,
            },
            T0 + 1,
        )
        .await;
    assert_eq!(settled.len(), 1);
    assert!((settled[0].spent_before - 0.1).abs() < 1e-9);
    assert!((settled[0].spent_after - 0.15).abs() < 1e-9);
    let d = admit(&ledger, req(), T0 + 2).await.unwrap();
    // Settling a failed call gives its reservation back at no cost.
    let settled = ledger.settle(&b, Actual::default(), T0 + 3).await;
    assert!((settled[0].spent_after - 0.15).abs() < 1e-9);
    let settled = ledger
        .settle(
            &d,
            Actual {
                cost: 0.4,
                tokens: 0,
            },
            T0 + 4,
        )
        .await;
    assert!((settled[0].spent_after - 0.55).abs() < 1e-9);
    // The seed is read once per counter: a later, stale row value does not replace it.
    let stale = budget(ScopeKind::Key, 1.0, 0.0, None);
    match admit(
        &ledger,
        request(vec![], vec![stale.clone(), stale], 0.0, 0),
        T0 + 5,
    )
    .await
    {
        Ok(_) => {}
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_new_period_starts_from_zero() {
    let ledger = Ledger::local();
    let period_1 = budget(ScopeKind::Team, 5.0, 5.0, Some(T0 + 30_000));
    assert!(matches!(
        admit(&ledger, request(vec![], vec![period_1], 0.0, 0), T0).await,
        Err(Refusal::BudgetExceeded { .. })
    ));
    // The caller computes the next period (and spend 0, the stored reset being past).
    let period_2 = budget(ScopeKind::Team, 5.0, 0.0, Some(T0 + 60_000));
    let ticket = admit(
        &ledger,
        request(vec![], vec![period_2], 1.0, 0),
        T0 + 31_000,
    )
    .await
    .unwrap();
    let settled = ledger
        .settle(
            &ticket,
            Actual {
                cost: 2.0,
                tokens: 0,
            },
            T0 + 32_000,
        )
        .await;
    assert_eq!(settled[0].spent_after, 2.0);
    // The old period's counter is swept once over; the current one stays.
    ledger.local.sweep(T0 + 40_000);
    assert_eq!(ledger.local.entries().1, 1);
}

#[tokio::test]
async fn tpm_counts_reserved_tokens_then_the_real_usage() {
    let ledger = Ledger::local();
    let rule = key_limits(None, Some(1_000), None);
    let ticket = admit(&ledger, request(vec![rule.clone()], vec![], 0.0, 900), T0)
        .await
        .unwrap();
    assert_eq!(ticket.statuses[0].remaining, 100);
    // 900 reserved < 1000: room left, admitted.
    let second = admit(
        &ledger,
        request(vec![rule.clone()], vec![], 0.0, 900),
        T0 + 1,
    )
    .await
    .unwrap();
    // 1800 ≥ 1000: refused.
    assert!(matches!(
        admit(
            &ledger,
            request(vec![rule.clone()], vec![], 0.0, 10),
            T0 + 2
        )
        .await,
        Err(Refusal::RateLimited {
            kind: LimitKind::Tokens,
            ..
        })
    ));
    // Both really used 100 tokens: 200 counted, room again.
    ledger
        .settle(
            &ticket,
            Actual {
                cost: 0.0,
                tokens: 100,
            },
            T0 + 3,
        )
        .await;
    ledger
        .settle(
            &second,
            Actual {
                cost: 0.0,
                tokens: 100,
            },
            T0 + 3,
        )
        .await;
    let third = admit(&ledger, request(vec![rule], vec![], 0.0, 10), T0 + 4)
        .await
        .unwrap();
    assert_eq!(third.statuses[0].remaining, 1_000 - 200 - 10);
}

#[tokio::test]
async fn a_refusal_on_one_level_records_nothing_on_the_others() {
    let ledger = Ledger::local();
    let rpm = key_limits(Some(1), None, Some(1));
    let spent = budget(ScopeKind::User, 1.0, 1.0, None);
    for _ in 0..3 {
        assert!(matches!(
            admit(
                &ledger,
                request(vec![rpm.clone()], vec![spent.clone()], 0.1, 0),
                T0
            )
            .await,
            Err(Refusal::BudgetExceeded { .. })
        ));
    }
    // Neither the request count nor the in-flight slot was taken.
    let ticket = admit(&ledger, request(vec![rpm], vec![], 0.0, 0), T0)
        .await
        .unwrap();
    assert_eq!(ticket.statuses.len(), 2);
}

#[tokio::test]
async fn nothing_to_check_admits_without_counters() {
    let ledger = Ledger::local();
    let ticket = admit(&ledger, AdmissionRequest::default(), T0)
        .await
        .unwrap();
    assert_eq!(ticket.backend, Backend::None);
    assert!(ledger
        .settle(&ticket, Actual::default(), T0)
        .await
        .is_empty());
    assert_eq!(ledger.local.entries(), (0, 0));
}

#[test]
fn thresholds_are_crossed_once() {
    let settled = SettledBudget {
        rule: budget(ScopeKind::Key, 10.0, 0.0, None),
        spent_before: 7.9,
        spent_after: 8.1,
    };
    assert!(settled.crossed(8.0));
    assert!(!settled.crossed(7.0));
    assert!(!settled.crossed(9.0));
}

#[test]
fn the_counter_key_names_scope_and_period() {
    assert_eq!(
        budget(ScopeKind::Team, 1.0, 0.0, Some(42)).counter_key(),
        "team:b1@42"
    );
    assert_eq!(
        budget(ScopeKind::Key, 1.0, 0.0, None).counter_key(),
        "api_key:b1@0"
    );
}
