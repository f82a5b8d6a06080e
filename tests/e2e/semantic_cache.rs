//! The semantic cache through the real gateway: the prompt is embedded by a deployment of the
//! model list (its own mock upstream, so embedding calls and chat calls are counted apart),
//! hits skip the chat upstream and carry `x-litellm-semantic-similarity`, and other parameters
//! or another model group never share an answer.
//!
//! The mock's embeddings are a hash of the text, so two different texts are unrelated: a hit
//! here is the same prompt text in another message shape (an exact-key miss, similarity 1).
//! Real paraphrases are measured with a real model in [`crate::semantic_eval`].

use serde_json::{json, Value};
use switchyard_tests::{closed_port, Gateway, MASTER_KEY};

use crate::common::{header, mock, read_json};

fn config(chat_base: &str, embed_base: &str, cache_params: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{chat_base}"}}
  - model_name: other
    litellm_params: {{model: openai/m, api_base: "{chat_base}"}}
  - model_name: emb
    litellm_params: {{model: openai/text-embedding-3-small, api_base: "{embed_base}"}}
litellm_settings:
  cache: true
  cache_params: {cache_params}
general_settings:
  master_key: {MASTER_KEY}
"#
    )
}

/// A chat whose prompt is `text` as a plain string.
fn plain(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// The same prompt text as content parts: another exact key, the same embedded text.
fn parts(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]})
}

/// Redis connects in the background after start-up: wait until the gateway reaches it, so a
/// first answer is not stored while no connection is up (which the cache rightly skips).
async fn wait_for_redis(gateway: &Gateway) {
    for _ in 0..50 {
        let ping = gateway
            .client()
            .get(gateway.url("/cache/ping"))
            .bearer_auth(MASTER_KEY)
            .send()
            .await
            .unwrap();
        if ping.status().is_success() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the gateway never reached Redis");
}

async fn call(gateway: &Gateway, body: &Value) -> (reqwest::header::HeaderMap, Value) {
    let (status, headers, body) = read_json(
        gateway
            .post("/v1/chat/completions", body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    (headers, body)
}

/// Runs the shared scenario against a gateway whose semantic cache is `cache_params`.
async fn hits_misses_and_isolation(cache_params: &str) {
    let chat_upstream = mock().await;
    let embed_upstream = mock().await;
    let gateway = Gateway::start(&config(
        &chat_upstream.base_url(),
        &embed_upstream.base_url(),
        cache_params,
    ));
    if cache_params.contains("redis") {
        wait_for_redis(&gateway).await;
    }
    let (first_headers, first) = call(&gateway, &plain("g", "What is Rust?")).await;
    assert!(first_headers.get("x-litellm-semantic-similarity").is_none());
    assert_eq!(chat_upstream.request_count(), 1);
    assert_eq!(embed_upstream.request_count(), 1, "the prompt was embedded");

    // Same text, other message shape: exact miss, semantic hit, no chat call.
    let (headers, second) = call(&gateway, &parts("g", "What is Rust?")).await;
    assert_eq!(
        chat_upstream.request_count(),
        1,
        "a semantic hit reached the upstream"
    );
    assert_eq!(second["id"], first["id"]);
    let similarity: f64 = header(&headers, "x-litellm-semantic-similarity")
        .parse()
        .unwrap();
    assert!((similarity - 1.0).abs() < 1e-3, "{similarity}");
    assert_eq!(
        header(&headers, "x-litellm-cache-key"),
        header(&first_headers, "x-litellm-cache-key"),
        "the hit names the key its answer is stored under"
    );
    assert_eq!(header(&headers, "x-litellm-response-cost"), "0");

    // The exact repeat is answered by the exact tier, without an embedding call.
    let embeds = embed_upstream.request_count();
    let (headers, _) = call(&gateway, &plain("g", "What is Rust?")).await;
    assert!(headers.get("x-litellm-semantic-similarity").is_none());
    assert_eq!(embed_upstream.request_count(), embeds);
    assert_eq!(chat_upstream.request_count(), 1);

    // Another prompt (unrelated vector): a miss.
    call(&gateway, &parts("g", "Name three rivers")).await;
    assert_eq!(chat_upstream.request_count(), 2);
    // Other parameters: another bucket.
    let mut warmer = parts("g", "What is Rust?");
    warmer["temperature"] = json!(0.9);
    call(&gateway, &warmer).await;
    assert_eq!(
        chat_upstream.request_count(),
        3,
        "other parameters shared an answer"
    );
    // Another model group: another bucket.
    call(&gateway, &parts("other", "What is Rust?")).await;
    assert_eq!(
        chat_upstream.request_count(),
        4,
        "another group shared an answer"
    );

    // A streaming request is answered from the semantic tier as a replayed stream.
    let mut streamed = parts("g", "What is Rust?");
    streamed["stream"] = json!(true);
    let response = gateway
        .post("/v1/chat/completions", &streamed)
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .contains_key("x-litellm-semantic-similarity"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(chat_upstream.request_count(), 4);

    // no-cache skips the lookup (the fresh answer is stored again).
    let mut fresh = parts("g", "What is Rust?");
    fresh["cache"] = json!({"no-cache": true});
    call(&gateway, &fresh).await;
    assert_eq!(chat_upstream.request_count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_semantic_cache_hits_by_meaning_within_group_and_parameters() {
    hits_misses_and_isolation(
        "{type: local-semantic, similarity_threshold: 0.9, semantic_cache_embedding_model: emb}",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_semantic_cache_without_search_module_hits_by_meaning() {
    let namespace = format!(
        "sye2e-sem-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    hits_misses_and_isolation(&format!(
        "{{type: redis-semantic, host: 127.0.0.1, port: 6379, namespace: {namespace}, \
         ttl: 120, similarity_threshold: 0.9, redis_semantic_cache_embedding_model: emb}}"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_redis_semantic_entries() {
    let namespace = format!("sye2e-sem2-{}", std::process::id());
    let chat_upstream = mock().await;
    let embed_upstream = mock().await;
    let params = format!(
        "{{type: redis-semantic, host: 127.0.0.1, port: 6379, namespace: {namespace}-{}, \
         ttl: 60, redis_semantic_cache_embedding_model: emb}}",
        chat_upstream.addr().port()
    );
    let yaml = config(
        &chat_upstream.base_url(),
        &embed_upstream.base_url(),
        &params,
    );
    let one = Gateway::start(&yaml);
    let two = Gateway::start(&yaml);
    wait_for_redis(&one).await;
    wait_for_redis(&two).await;
    call(&one, &plain("g", "Shared question")).await;
    // The bucket write runs in the background; give it a moment.
    let mut hit = false;
    for _ in 0..50 {
        let (headers, _) = call(&two, &parts("g", "Shared question")).await;
        if headers.contains_key("x-litellm-semantic-similarity") {
            hit = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hit, "the second replica never saw the first one's entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_or_embedding_model_never_fails_a_request() {
    let chat_upstream = mock().await;
    let embed_upstream = mock().await;
    let port = closed_port();
    let gateway = Gateway::start(&config(
        &chat_upstream.base_url(),
        &embed_upstream.base_url(),
        &format!("{{type: redis-semantic, host: 127.0.0.1, port: {port}, redis_semantic_cache_embedding_model: emb}}"),
    ));
    call(&gateway, &plain("g", "Hello there")).await;
    let (headers, _) = call(&gateway, &parts("g", "Hello there")).await;
    assert!(headers.get("x-litellm-semantic-similarity").is_none());
    assert_eq!(chat_upstream.request_count(), 2);

    // An embedding model that is not in the model list: the semantic tier is skipped.
    let broken = Gateway::start(&config(
        &chat_upstream.base_url(),
        &embed_upstream.base_url(),
        "{type: local-semantic, semantic_cache_embedding_model: not-a-model}",
    ));
    call(&broken, &plain("g", "Hello again")).await;
    call(&broken, &parts("g", "Hello again")).await;
    assert_eq!(chat_upstream.request_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_may_only_set_its_allowed_cache_controls() {
    let chat_upstream = mock().await;
    let data = tempfile::tempdir().unwrap();
    let gateway = Gateway::start_with(
        &config(
            &chat_upstream.base_url(),
            &chat_upstream.base_url(),
            "{type: local}",
        ),
        &["--data-dir", data.path().to_str().unwrap()],
        &[],
    );
    let (status, _, generated) = read_json(
        gateway
            .post(
                "/key/generate",
                &json!({"allowed_cache_controls": ["no-cache"]}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{generated}");
    let key = generated["key"].as_str().unwrap().to_owned();
    let as_key = |body: Value| {
        gateway
            .client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let mut allowed = plain("g", "controls");
    allowed["cache"] = json!({"no-cache": true});
    let (status, _, _) = read_json(as_key(allowed).await.unwrap()).await;
    assert_eq!(status.as_u16(), 200);

    let mut refused = plain("g", "controls");
    refused["cache"] = json!({"no-cache": true, "ttl": 60});
    let calls = chat_upstream.request_count();
    let (status, _, body) = read_json(as_key(refused.clone()).await.unwrap()).await;
    assert_eq!(status.as_u16(), 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Not allowed to set ttl as a cache control. Contact admin to change permissions."
    );
    assert_eq!(
        chat_upstream.request_count(),
        calls,
        "a refused call went upstream"
    );
    // The master key may set any control.
    call(&gateway, &refused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_completions_are_cached_and_replayed() {
    let upstream = mock().await;
    let gateway = Gateway::start(&config(
        &upstream.base_url(),
        &upstream.base_url(),
        "{type: local}",
    ));
    let streamed = json!({"model": "g", "prompt": "Write a haiku", "stream": true,
        "stream_options": {"include_usage": true}});
    let read_stream = |response: reqwest::Response| async move {
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let key = response.headers()["x-litellm-cache-key"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let chunks: Vec<Value> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["text"].as_str())
            .collect();
        let usage = chunks
            .iter()
            .any(|chunk| chunk["usage"]["total_tokens"].is_u64());
        (key, content, usage)
    };
    let (key, first, _) = read_stream(
        gateway
            .post("/v1/completions", &streamed)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!first.is_empty());
    assert_eq!(upstream.request_count(), 1);
    // The completed stream was stored: the same stream request is replayed from the cache.
    let mut replayed = None;
    for _ in 0..20 {
        let before = upstream.request_count();
        let (again_key, again, usage) = read_stream(
            gateway
                .post("/v1/completions", &streamed)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if upstream.request_count() == before {
            assert_eq!(again_key, key);
            assert!(
                usage,
                "the replay ends with the usage chunk that was asked for"
            );
            replayed = Some(again);
            break;
        }
        // The store happens as the stream ends; a racing second request may miss once.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(replayed.as_deref(), Some(first.as_str()));
    // A non-streamed request with the same parameters is answered from the stored stream.
    let mut plain_request = streamed.clone();
    plain_request["stream"] = json!(false);
    plain_request["stream_options"] = Value::Null;
    let calls = upstream.request_count();
    let (status, headers, body) = read_json(
        gateway
            .post("/v1/completions", &plain_request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(header(&headers, "x-litellm-cache-key"), key);
    assert_eq!(body["choices"][0]["text"], first.as_str());
    assert_eq!(upstream.request_count(), calls);
}
