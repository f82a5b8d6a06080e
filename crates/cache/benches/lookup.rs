//! Run with: `cargo bench -p switchyard-cache --bench lookup`
//!
//! The cache's hot paths, in process: an exact L1 hit (key computation + lookup) and the
//! semantic tier's scan of a bucket (the nearest of N stored prompt vectors), for a small
//! (384) and a large (1536) embedding. The async lookups are driven with a current-thread
//! runtime's `block_on`, whose own cost (a few tens of ns) is included.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::json;
use switchyard_cache::semantic::{best_match, normalized};
use switchyard_cache::{CacheKey, CacheSettings, Controls, ResponseCache, SemanticSettings};
use switchyard_llm_types::ChatCompletionRequest;

fn request(text: &str) -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for a retail store."},
            {"role": "user", "content": text}
        ],
        "temperature": 0.2,
        "max_tokens": 256
    }))
    .unwrap()
}

/// Deterministic pseudo-random unit vectors (no RNG dependency).
fn vector(seed: u64, dimensions: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let raw = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    normalized(raw).unwrap()
}

fn exact_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = ResponseCache::new(CacheSettings::local()).unwrap();
    let controls = Controls::default();
    let hit = request("What are your opening hours on Sunday?");
    let answer = Bytes::from(vec![b'x'; 1024]);
    cache.store(&CacheKey::for_chat("gpt-4o", &hit), answer, &controls);
    c.bench_function("l1_hit_key_and_lookup", |b| {
        b.iter(|| {
            let key = CacheKey::for_chat("gpt-4o", black_box(&hit));
            runtime
                .block_on(cache.lookup(&key, &controls))
                .expect("hit")
        })
    });
    let key = CacheKey::for_chat("gpt-4o", &hit);
    c.bench_function("l1_hit_lookup_only", |b| {
        b.iter(|| {
            runtime
                .block_on(cache.lookup(black_box(&key), &controls))
                .expect("hit")
        })
    });
    c.bench_function("exact_key_only", |b| {
        b.iter(|| CacheKey::for_chat("gpt-4o", black_box(&hit)))
    });
}

fn semantic_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("semantic_best_match");
    for dimensions in [384, 1536] {
        for entries in [128, 1024] {
            let stored: Vec<Vec<f32>> = (0..entries)
                .map(|seed| vector(seed as u64, dimensions))
                .collect();
            let query = vector(1_000_000, dimensions);
            group.bench_with_input(
                BenchmarkId::new(format!("dim{dimensions}"), entries),
                &stored,
                |b, stored| {
                    b.iter(|| best_match(black_box(&query), stored.iter().map(Vec::as_slice), 0.9))
                },
            );
        }
    }
    group.finish();
}

fn semantic_local_lookup(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut settings = CacheSettings::local();
    settings.semantic = Some(SemanticSettings::new("emb"));
    let cache = ResponseCache::new(settings).unwrap();
    let controls = Controls::default();
    let dimensions = 384;
    // A full default bucket (128 prompts); the query is close to the last one stored.
    let mut last = None;
    for n in 0..128 {
        let request = request(&format!("question number {n}"));
        let key = CacheKey::for_chat("gpt-4o", &request);
        let bucket = CacheKey::semantic_bucket_for_chat("gpt-4o", &request);
        cache.store(&key, Bytes::from(vec![b'x'; 1024]), &controls);
        let stored = vector(n, dimensions);
        cache.semantic_store(&bucket, stored.clone(), &key, &controls);
        last = Some((bucket, stored));
    }
    let (bucket, stored) = last.unwrap();
    let mut query = stored;
    query[0] += 0.05;
    let query = normalized(query).unwrap();
    c.bench_function("semantic_local_hit_bucket_128_dim384", |b| {
        b.iter(|| {
            runtime
                .block_on(cache.semantic_lookup(&bucket, black_box(&query), &controls))
                .expect("hit")
        })
    });
}

criterion_group!(benches, exact_hit, semantic_scan, semantic_local_lookup);
criterion_main!(benches);
