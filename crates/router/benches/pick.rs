//! Run with: `cargo bench -p switchyard-router --bench pick`
//!
//! What choosing a deployment costs on the hot path, with local state: resolving a model name
//! and picking among the healthy deployments of a group of ten (simple-shuffle weights, and
//! least-busy), and a pick that has to skip a cooling deployment.

#![allow(
    clippy::panic,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard_router::health::Failure;
use switchyard_router::{Deployment, Router, Weights};

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
    router.health().record_failure(3, failure, 10, None);
    c.bench_function("pick, group of 10, one cooling", |b| {
        b.iter(|| black_box(router.pick(black_box(&resolved), &[])))
    });
    let least_busy = Router::new(group_of_ten(), [])
        .with_strategy(switchyard_router::strategy::RoutingStrategy::LeastBusy);
    let resolved = least_busy
        .resolve("gpt-4o")
        .unwrap_or_else(|error| panic!("{error}"));
    c.bench_function("pick least-busy, group of 10", |b| {
        b.iter(|| black_box(least_busy.pick(black_box(&resolved), &[])))
    });
}

criterion_group!(benches, pick);
criterion_main!(benches);
