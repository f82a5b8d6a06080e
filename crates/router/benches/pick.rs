//! Run with: `cargo bench -p switchyard-router --bench pick`
//!
//! What choosing a deployment costs on the hot path, with local state: resolving a model name
//! and picking among the healthy deployments of a group of ten under each routing strategy
//! (with latency samples, token counts and prices in place, and `rpm`/`tpm` limits and
//! context windows checked), and a pick that has to skip a cooling deployment.

#![allow(
    clippy::panic,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use switchyard_router::health::Failure;
use switchyard_router::{Deployment, InFlightGuard, PickRequest, Router, RoutingStrategy, Weights};

fn group_of_ten() -> Vec<Deployment<()>> {
    (0..10)
        .map(|index| Deployment {
            id: format!("deployment-{index}"),
            model_name: "gpt-4o".to_owned(),
            litellm_model: format!("openai/gpt-4o-{index}"),
            weights: Weights {
                weight: Some(1.0 + index as f64),
                ..Weights::default()
            },
            order: None,
            cooldown_time: None,
            num_retries: None,
            cost_per_token: Some(1e-6 * (1.0 + index as f64)),
            max_input_tokens: Some(128_000),
            handle: (),
        })
        .collect()
}

fn pick(c: &mut Criterion) {
    let router = Router::new(group_of_ten(), []);
    let resolved = router
        .resolve("gpt-4o")
        .unwrap_or_else(|error| panic!("{error}"));
    c.bench_function("resolve + pick, group of 10", |b| {
        b.iter(|| {
            let resolved = router.resolve(black_box("gpt-4o"));
            black_box(resolved.map(|r| router.pick(&r, &[])))
        })
    });
    c.bench_function("pick only, group of 10", |b| {
        b.iter(|| black_box(router.pick(black_box(&resolved), &[])))
    });
    let failure = Failure {
        status: Some(429),
        retry_after: None,
    };
    router.record_failure(3, failure);
    c.bench_function("pick, group of 10, one cooling", |b| {
        b.iter(|| black_box(router.pick(black_box(&resolved), &[])))
    });
    let request = PickRequest {
        input_tokens: 500,
        stream: false,
    };
    for strategy in [
        RoutingStrategy::SimpleShuffle,
        RoutingStrategy::LeastBusy,
        RoutingStrategy::LatencyBased,
        RoutingStrategy::UsageBased,
        RoutingStrategy::CostBased,
    ] {
        let router = Router::new(limited_group_of_ten(), [])
            .with_strategy(strategy)
            .with_pre_call_checks(true);
        let _in_flight = warm_up(&router);
        let resolved = router
            .resolve("gpt-4o")
            .unwrap_or_else(|error| panic!("{error}"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        c.bench_function(
            &format!(
                "pick {}, group of 10, limits + context checks",
                strategy.name()
            ),
            |b| {
                b.iter(|| {
                    black_box(router.pick_with(black_box(&resolved), &[], &request, None, &mut rng))
                })
            },
        );
    }
}

/// The group of ten with generous `rpm`/`tpm` limits (checked on every pick, never hit).
fn limited_group_of_ten() -> Vec<Deployment<()>> {
    let mut deployments = group_of_ten();
    for deployment in &mut deployments {
        deployment.weights.rpm = Some(1_000_000_000);
        deployment.weights.tpm = Some(1_000_000_000_000);
    }
    deployments
}

/// Gives every deployment latency samples, token counts and calls in flight, so each
/// strategy reads real state.
fn warm_up(router: &Router<()>) -> Vec<InFlightGuard> {
    let mut guards = Vec::new();
    for index in 0..router.deployments().len() {
        for _ in 0..3 {
            if let Some(guard) = router.try_begin_call(index, false) {
                guard.finish(Some(&tokens(10 + index as u64)));
            }
        }
        guards.extend(router.try_begin_call(index, false));
    }
    // Some calls stay in flight (until the caller drops them) for least-busy to compare.
    guards.truncate(5);
    guards
}

fn tokens(completion: u64) -> switchyard_llm_types::Usage {
    switchyard_llm_types::Usage {
        prompt_tokens: 100,
        completion_tokens: completion,
        total_tokens: 100 + completion,
        ..Default::default()
    }
}

criterion_group!(benches, pick);
criterion_main!(benches);
