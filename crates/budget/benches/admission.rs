//! Local admission cost: one request checked against a key's rpm/tpm/parallel limits, a
//! team's limits and two budgets, then settled — the work the gateway adds per call when the
//! counters are in process.
//!
//! Run with `cargo bench -p switchyard-budget --bench admission`.

#![allow(clippy::unwrap_used, reason = "benchmark set-up")]

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard_budget::limits::{LimitRule, RateLimits, Scope, ScopeKind};
use switchyard_budget::{Actual, AdmissionRequest, BudgetRule, Ledger};

fn request() -> AdmissionRequest {
    let key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    AdmissionRequest {
        limits: vec![
            LimitRule {
                scope: Scope::new(ScopeKind::Key, key),
                limits: RateLimits {
                    rpm: Some(u64::MAX / 2),
                    tpm: Some(u64::MAX / 2),
                    max_parallel: Some(1_000_000),
                },
            },
            LimitRule {
                scope: Scope::new(ScopeKind::Team, "team-1"),
                limits: RateLimits {
                    rpm: Some(u64::MAX / 2),
                    tpm: None,
                    max_parallel: None,
                },
            },
        ],
        budgets: vec![
            BudgetRule {
                scope: Scope::new(ScopeKind::Key, key),
                max_budget: f64::MAX,
                soft_budget: None,
                spent: 0.0,
                period_end_ms: Some(u64::MAX / 2),
            },
            BudgetRule {
                scope: Scope::new(ScopeKind::Team, "team-1"),
                max_budget: f64::MAX,
                soft_budget: None,
                spent: 0.0,
                period_end_ms: None,
            },
        ],
        reserve_cost: 0.01,
        reserve_tokens: 500,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn admission(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ledger = Ledger::local();
    c.bench_function("local admit + settle (2 limit levels, 2 budgets)", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let now = now_ms();
                let ticket = ledger
                    .admit(request(), "bench".to_owned(), now)
                    .await
                    .unwrap();
                ledger
                    .settle(
                        &ticket,
                        Actual {
                            cost: 0.002,
                            tokens: 120,
                        },
                        now,
                    )
                    .await
            })
        });
    });
}

criterion_group!(benches, admission);
criterion_main!(benches);
