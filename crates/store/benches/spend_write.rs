//! Run with: `cargo bench -p switchyard-store --bench spend_write`
//! (needs PostgreSQL: `SWITCHYARD_TEST_DATABASE_URL`, default
//! `postgresql://postgres@127.0.0.1:5432/test`; a fresh schema is created and dropped).
//!
//! Spend-log write throughput: one `Store::record_spend` batch of 1,000 rows (the spend
//! writer's batch size) — the rows, the key/user/team/member/end-user counters and the daily
//! user/team/tag aggregates in one transaction — reported as rows per second. Rows spread
//! over 10 keys, 5 end users and 2 tags, like a busy gateway's batch.

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "benchmark set-up: a failure to build the fixture should stop the run loudly"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use switchyard_store::{hash_key, KeyRow, SpendLogRow, Store, StoreConfig, TeamRow, UserRow};

const BATCH: usize = 1_000;
const KEYS: usize = 10;

fn base_url() -> String {
    std::env::var("SWITCHYARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&base_url(), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL is unreachable");
    tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
}

fn batch(next: &AtomicU64) -> Vec<SpendLogRow> {
    let now = Utc::now();
    (0..BATCH)
        .map(|i| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            let mut row = SpendLogRow::new(format!("bench-{id}"), "acompletion", now, now);
            row.api_key = hash_key(&format!("sk-bench-key-{}", i % KEYS));
            row.spend = 0.000_123;
            row.prompt_tokens = 120;
            row.completion_tokens = 40;
            row.total_tokens = 160;
            row.model = "gpt-4o-mini".into();
            row.model_group = Some("gpt".into());
            row.custom_llm_provider = Some("openai".into());
            row.user = Some("bench-user".into());
            row.team_id = Some("bench-team".into());
            row.end_user = Some(format!("customer-{}", i % 5));
            row.request_tags = json!(["bench", format!("shard-{}", i % 2)]);
            row.status = Some("success".into());
            row
        })
        .collect()
}

fn spend_write(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let schema = format!("sy_bench_{}", uuid::Uuid::new_v4().simple());
    runtime.block_on(admin(&format!("CREATE SCHEMA \"{schema}\"")));
    let url = format!("{}?options=-c%20search_path%3D{schema}", base_url());
    let store = runtime.block_on(async {
        let config = StoreConfig::from_url(Some(&url), std::path::Path::new("."))
            .expect("config")
            .with_max_connections(4);
        let store = Store::connect(&config).await.expect("connect");
        store
            .insert(&UserRow {
                user_id: "bench-user".into(),
                ..Default::default()
            })
            .await
            .expect("user");
        store
            .insert(&TeamRow {
                team_id: "bench-team".into(),
                ..Default::default()
            })
            .await
            .expect("team");
        for k in 0..KEYS {
            store
                .insert(&KeyRow {
                    token: hash_key(&format!("sk-bench-key-{k}")),
                    user_id: Some("bench-user".into()),
                    team_id: Some("bench-team".into()),
                    ..Default::default()
                })
                .await
                .expect("key");
        }
        store
    });
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("spend_write");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("record_spend, batch of 1000 rows (PostgreSQL)", |b| {
        b.iter_batched(
            || batch(&next),
            |rows| {
                let outcome = runtime
                    .block_on(store.record_spend(&rows))
                    .expect("record_spend");
                assert_eq!(outcome.inserted, BATCH as u64);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(store);
    runtime.block_on(admin(&format!("DROP SCHEMA \"{schema}\" CASCADE")));
}

criterion_group!(benches, spend_write);
criterion_main!(benches);
