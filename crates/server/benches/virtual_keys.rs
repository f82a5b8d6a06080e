//! Run with: `cargo bench -p switchyard-server --bench virtual_keys`
//!
//! What resolving a virtual key costs on the request path once it is cached: the whole
//! authentication of a request's headers (find the key header, SHA-256, one cache lookup,
//! the expiry / block checks), the cache lookup alone, and the master key for comparison
//! (SHA-256 and a constant-time compare, no cache).

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use switchyard_server::auth::Authenticator;
use switchyard_server::virtual_keys::VirtualKeys;
use switchyard_store::{hash_key, KeyRow, Store, StoreConfig};

const MASTER: &str = "sk-bench-master-0123456789";
const VIRTUAL: &str = "sk-bench-virtual-key-0123456789abcdef";

fn bearer(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).expect("header"),
    );
    headers
}

fn resolution(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (auth, keys) = runtime.block_on(async {
        let config = StoreConfig::from_url(None, dir.path()).expect("config");
        let store = Store::connect(&config).await.expect("store");
        store
            .insert(&KeyRow {
                token: hash_key(VIRTUAL),
                models: vec!["gpt-4o".into()],
                ..KeyRow::default()
            })
            .await
            .expect("insert key");
        let keys = VirtualKeys::new(store, Duration::from_secs(3600));
        let auth = Authenticator::master_key(MASTER).with_virtual_keys(keys.clone());
        // Warm the cache: the benchmark measures hits.
        auth.authenticate(&bearer(VIRTUAL), None)
            .await
            .expect("virtual key authenticates");
        (auth, keys)
    });
    let virtual_headers = bearer(VIRTUAL);
    let master_headers = bearer(MASTER);
    let hash = hash_key(VIRTUAL);

    let mut group = c.benchmark_group("virtual_key");
    group.bench_function("authenticate_cached_virtual_key", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let caller = auth.authenticate(black_box(&virtual_headers), None).await;
                    black_box(caller.expect("ok"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("cache_lookup_only", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(keys.resolve(black_box(&hash)).await.expect("ok"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("authenticate_master_key", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let caller = auth.authenticate(black_box(&master_headers), None).await;
                    black_box(caller.expect("ok"));
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, resolution);
criterion_main!(benches);
