//! Integration tests against the real Redis at 127.0.0.1:6379 (CI starts it; if it is not
//! reachable these tests fail rather than skip). Every test uses its own namespace so tests
//! running in parallel never see each other's keys.

// Test helpers may fail loudly: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::{ClientLike, Config, KeysInterface};
use serde_json::json;
use switchyard_cache::{
    CacheKey, CacheSettings, CallType, Controls, ResponseCache, StreamAssembler,
};
use switchyard_llm_types::{ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A namespace unique to this test and run.
fn namespace(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sytest-{test}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Redis-backed cache in namespace `ns`, connected before it is returned (the cache itself
/// connects in the background; a test must not race the first connection).
async fn redis_cache(ns: &str, tweak: impl FnOnce(&mut CacheSettings)) -> ResponseCache {
    let mut settings = CacheSettings::redis(REDIS_URL);
    settings.namespace = Some(ns.to_owned());
    // Generous for a loaded CI machine; the production default is 50 ms.
    if let Some(redis) = settings.redis.as_mut() {
        redis.op_timeout = Duration::from_millis(500);
    }
    tweak(&mut settings);
    let cache = ResponseCache::new(settings).expect("cache builds");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cache.l2_connected() {
        assert!(
            Instant::now() < deadline,
            "Redis at {REDIS_URL} is not reachable; these tests need it running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cache
}

/// A plain client for checking what is in Redis independently of the cache.
async fn raw_client() -> fred::clients::Client {
    let client =
        fred::clients::Client::new(Config::from_url(REDIS_URL).expect("url"), None, None, None);
    client
        .init()
        .await
        .expect("Redis at 127.0.0.1:6379 must be running");
    client
}

fn chat(text: &str) -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": text}],
        "temperature": 0
    }))
    .expect("request")
}

fn response_bytes(text: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        }))
        .expect("json"),
    )
}

#[tokio::test]
async fn l2_roundtrip_in_litellm_shape() {
    let ns = namespace("roundtrip");
    let cache = redis_cache(&ns, |_| {}).await;
    let key = CacheKey::for_chat("gpt-4o", &chat("hello"));
    let controls = Controls::default();
    cache.store(&key, response_bytes("hi there"), &controls);
    cache.wait_for_writes().await;

    let stored: Option<String> = raw_client()
        .await
        .get(cache.storage_key(&key, &controls))
        .await
        .expect("get");
    let stored: serde_json::Value =
        serde_json::from_str(&stored.expect("entry in redis")).expect("json");
    assert!(stored["timestamp"].as_f64().expect("timestamp") > 1.6e9);
    assert_eq!(
        stored["response"]["choices"][0]["message"]["content"],
        "hi there"
    );
    assert_eq!(cache.storage_key(&key, &controls), format!("{ns}:{key}"));

    // A second instance (nothing in its L1) reads it from L2.
    let other = redis_cache(&ns, |_| {}).await;
    let hit = other.lookup(&key, &controls).await.expect("L2 hit");
    let parsed: ChatCompletionResponse = hit.parse().expect("response");
    assert_eq!(parsed.choices[0].message.text(), "hi there");
    assert_eq!(other.metrics().snapshot().l2_hits, 1);
    cache.flush(None).await.expect("flush");
}

#[tokio::test]
async fn l2_hit_is_promoted_to_l1() {
    let ns = namespace("promote");
    let writer = redis_cache(&ns, |_| {}).await;
    let reader = redis_cache(&ns, |_| {}).await;
    let key = CacheKey::for_chat("g", &chat("promote me"));
    let controls = Controls::default();
    writer.store(&key, response_bytes("x"), &controls);
    writer.wait_for_writes().await;

    assert!(reader.lookup(&key, &controls).await.is_some());
    // Remove it from Redis behind the reader's back: the next hit must come from L1.
    let _: i64 = raw_client()
        .await
        .del(reader.storage_key(&key, &controls))
        .await
        .expect("del");
    assert!(reader.lookup(&key, &controls).await.is_some());
    let snapshot = reader.metrics().snapshot();
    assert_eq!((snapshot.l2_hits, snapshot.l1_hits), (1, 1));
}

#[tokio::test]
async fn ttl_expires_in_both_tiers() {
    let ns = namespace("ttl");
    let cache = redis_cache(&ns, |_| {}).await;
    let reader = redis_cache(&ns, |_| {}).await;
    let key = CacheKey::for_chat("g", &chat("short lived"));
    let short = Controls {
        ttl: Some(Duration::from_millis(700)),
        ..Controls::default()
    };
    cache.store(&key, response_bytes("x"), &short);
    cache.wait_for_writes().await;
    // Promoted into the reader's L1 with Redis's remaining TTL, not the 600 s default.
    assert!(reader.lookup(&key, &Controls::default()).await.is_some());
    assert!(cache.lookup(&key, &Controls::default()).await.is_some());
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(cache.lookup(&key, &Controls::default()).await.is_none());
    assert!(reader.lookup(&key, &Controls::default()).await.is_none());
    let pttl: i64 = raw_client()
        .await
        .pttl(cache.storage_key(&key, &Controls::default()))
        .await
        .expect("pttl");
    assert_eq!(pttl, -2, "Redis must have expired the key");
}

#[tokio::test]
async fn s_maxage_rejects_entries_older_than_asked() {
    let ns = namespace("smaxage");
    let cache = redis_cache(&ns, |_| {}).await;
    let reader = redis_cache(&ns, |_| {}).await;
    let key = CacheKey::for_chat("g", &chat("age"));
    cache.store(&key, response_bytes("x"), &Controls::default());
    cache.wait_for_writes().await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let strict = Controls {
        s_maxage: Some(Duration::from_secs(1)),
        ..Controls::default()
    };
    let lenient = Controls {
        s_maxage: Some(Duration::from_secs(60)),
        ..Controls::default()
    };
    assert!(
        cache.lookup(&key, &strict).await.is_none(),
        "L1 entry too old"
    );
    assert!(
        reader.lookup(&key, &strict).await.is_none(),
        "L2 entry too old"
    );
    assert!(reader.lookup(&key, &lenient).await.is_some());
    cache.flush(None).await.expect("flush");
}

#[tokio::test]
async fn delete_and_flush_stay_within_the_namespace() {
    let ns = namespace("flush");
    let other_ns = namespace("flush-other");
    let cache = redis_cache(&ns, |_| {}).await;
    let neighbour = redis_cache(&other_ns, |_| {}).await;
    let raw = raw_client().await;
    let unrelated = format!("{ns}-unrelated:not-a-cache-key");
    let _: () = raw
        .set(&unrelated, "keep me", None, None, false)
        .await
        .expect("set");

    let controls = Controls::default();
    let keys: Vec<CacheKey> = (0..5)
        .map(|i| CacheKey::for_chat("g", &chat(&format!("q{i}"))))
        .collect();
    for key in &keys {
        cache.store(key, response_bytes("x"), &controls);
        neighbour.store(key, response_bytes("y"), &controls);
    }
    cache.wait_for_writes().await;
    neighbour.wait_for_writes().await;

    // Delete one by its storage key (the x-litellm-cache-key value).
    let deleted = cache
        .delete(&[cache.storage_key(&keys[0], &controls)])
        .await
        .expect("delete");
    assert_eq!(deleted, 1);
    assert!(cache.lookup(&keys[0], &controls).await.is_none());
    assert!(cache.lookup(&keys[1], &controls).await.is_some());

    // Flush the rest of this namespace.
    let flushed = cache.flush(None).await.expect("flush");
    assert_eq!(flushed, 4);
    for key in &keys {
        assert!(cache.lookup(key, &controls).await.is_none());
        let survivor: Option<String> = raw
            .get(neighbour.storage_key(key, &controls))
            .await
            .expect("get");
        assert!(survivor.is_some(), "another namespace's entry must survive");
    }
    let kept: Option<String> = raw.get(&unrelated).await.expect("get");
    assert_eq!(kept.as_deref(), Some("keep me"));
    let _: i64 = raw.del(&unrelated).await.expect("cleanup");
    neighbour.flush(None).await.expect("cleanup");
}

#[tokio::test]
async fn two_replicas_share_l2() {
    let ns = namespace("replicas");
    let a = redis_cache(&ns, |_| {}).await;
    let b = redis_cache(&ns, |_| {}).await;
    let controls = Controls::default();

    // A streamed answer on replica A, reassembled and stored...
    let mut assembler = StreamAssembler::new();
    for chunk in [
        json!({"id": "c1", "created": 3, "model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Par"}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "is"}, "finish_reason": "stop"}]}),
    ] {
        assembler.push_parsed(&serde_json::from_value(chunk).expect("chunk"));
    }
    let complete = assembler.finish().expect("complete stream");
    let mut streamed = chat("capital of France?");
    streamed.stream = Some(true);
    let key_a = CacheKey::for_chat("gpt-4o", &streamed);
    a.store(
        &key_a,
        Bytes::from(serde_json::to_vec(&complete).expect("json")),
        &controls,
    );
    a.wait_for_writes().await;

    // ...is a hit for a non-streamed request on replica B.
    let key_b = CacheKey::for_chat("gpt-4o", &chat("capital of France?"));
    assert_eq!(key_a, key_b);
    let hit: ChatCompletionResponse = b
        .lookup(&key_b, &controls)
        .await
        .expect("shared hit")
        .parse()
        .expect("response");
    assert_eq!(hit.choices[0].message.text(), "Paris");
    a.flush(None).await.expect("flush");
}

#[tokio::test]
async fn embedding_batches_hit_per_item_across_replicas() {
    let ns = namespace("embed");
    let a = redis_cache(&ns, |_| {}).await;
    let b = redis_cache(&ns, |_| {}).await;
    let controls = Controls::default();
    assert!(a.applies(CallType::Embedding, &controls));
    let first: EmbeddingRequest =
        serde_json::from_value(json!({"model": "embed", "input": ["a", "b"]})).expect("req");
    let split = a.lookup_embeddings("embed", &first, &controls).await;
    assert_eq!(split.misses, vec![0, 1]);
    let upstream = serde_json::from_value(json!({"object": "list", "model": "embed-v1",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]},
                 {"object": "embedding", "index": 1, "embedding": [0.2]}],
        "usage": {"prompt_tokens": 2, "total_tokens": 2}}))
    .expect("resp");
    a.store_embeddings(&split, &upstream, &controls)
        .expect("store");
    a.wait_for_writes().await;

    let second: EmbeddingRequest =
        serde_json::from_value(json!({"model": "embed", "input": ["c", "b", "a"]})).expect("req");
    let split = b.lookup_embeddings("embed", &second, &controls).await;
    assert_eq!(split.misses, vec![0]);
    let miss_request = split.miss_request(&second).expect("one miss");
    assert_eq!(miss_request.input.len(), 1);
    let upstream = serde_json::from_value(json!({"model": "embed-v1",
        "data": [{"index": 0, "embedding": [0.3]}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
    .expect("resp");
    let merged = split.merge("embed", Some(&upstream)).expect("merge");
    let vectors: Vec<serde_json::Value> = merged.data.iter().map(|e| e.embedding.clone()).collect();
    assert_eq!(vectors, vec![json!([0.3]), json!([0.2]), json!([0.1])]);
    assert_eq!(b.metrics().snapshot().l2_hits, 2);
    a.flush(None).await.expect("flush");
}

#[tokio::test]
async fn redis_unreachable_degrades_to_l1_quickly() {
    // A closed loopback port: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut settings = CacheSettings::redis(format!("redis://127.0.0.1:{port}"));
    settings.namespace = Some(namespace("down"));
    let cache = ResponseCache::new(settings).expect("builds even though Redis is down");
    let controls = Controls::default();
    let key = CacheKey::for_chat("g", &chat("anyone there?"));

    let started = Instant::now();
    assert!(cache.lookup(&key, &controls).await.is_none());
    cache.store(&key, response_bytes("x"), &controls);
    cache.wait_for_writes().await;
    // L1 still serves.
    assert!(cache.lookup(&key, &controls).await.is_some());
    let embeddings: EmbeddingRequest =
        serde_json::from_value(json!({"model": "e", "input": ["a", "b"]})).expect("req");
    let split = cache.lookup_embeddings("e", &embeddings, &controls).await;
    assert_eq!(split.misses, vec![0, 1]);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    assert!(cache.metrics().snapshot().l2_errors >= 2);
    assert!(cache.ping().await.is_err());
    assert!(cache.flush(None).await.is_err());
}

#[tokio::test]
async fn ping_reports_redis_round_trip() {
    let cache = redis_cache(&namespace("ping"), |_| {}).await;
    let report = cache.ping().await.expect("ping");
    assert_eq!(report.cache_type, "redis");
    assert!(report.redis_latency.expect("latency") < Duration::from_secs(1));
}

#[tokio::test]
async fn settings_map_builds_a_redis_cache_from_env_fallbacks() {
    let serde_json::Value::Object(map) = json!({"cache": true}) else {
        unreachable!()
    };
    let env = |name: &str| match name {
        "REDIS_HOST" => Some("127.0.0.1".to_owned()),
        "REDIS_PORT" => Some("6379".to_owned()),
        _ => None,
    };
    let cache = ResponseCache::from_settings(&map, &env)
        .expect("valid")
        .expect("enabled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cache.l2_connected() {
        assert!(Instant::now() < deadline, "Redis must be reachable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cache.ping().await.is_ok());
}

#[tokio::test]
async fn hung_redis_costs_at_most_the_op_timeout() {
    // Accepts connections and reads, never answers: a hung server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut settings = CacheSettings::redis(format!("redis://127.0.0.1:{port}"));
    settings.namespace = Some(namespace("hung"));
    let cache = ResponseCache::new(settings).expect("builds");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let controls = Controls::default();
    for attempt in 0..5 {
        let key = CacheKey::for_chat("g", &chat(&format!("hung {attempt}")));
        let started = Instant::now();
        assert!(cache.lookup(&key, &controls).await.is_none());
        // 50 ms op timeout, plus scheduling slack on a loaded machine.
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "lookup took {:?}",
            started.elapsed()
        );
    }
    cache.store(
        &CacheKey::for_chat("g", &chat("hung store")),
        response_bytes("x"),
        &controls,
    );
    let started = Instant::now();
    cache.wait_for_writes().await;
    assert!(started.elapsed() < Duration::from_millis(300));
    server.abort();
}
