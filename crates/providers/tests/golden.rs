//! Golden files: for each provider in `tests/fixtures/<provider>/`, pairs of (OpenAI request →
//! exact provider request), (provider response or stream → exact OpenAI response or chunks) and
//! (provider error → status, class and message). Every stream fixture is also replayed with
//! each two-way byte split of its bytes, which must yield the same chunks.
//!
//! Fixture kinds, by file-name prefix:
//! - `request_*.json`: `{"openai": <chat request>, "provider": <body>}`
//! - `response_*.json`: `{"provider": <body>, "openai": <chat.completion>}`
//! - `stream_*.json`: `{"provider": <SSE or NDJSON text, or Bedrock events>, "include_usage": bool,
//!   "openai": [<chunks>]}`; Bedrock events are `{"event": type, "payload": {..}}` or
//!   `{"exception": type, "message": ".."}`, framed here with the event-stream encoder.
//! - `error_*.json`: `{"status": u16, "headers": {..}, "provider": <body>,
//!   "openai": {"status", "kind", "message"}}`
//! - `embed_*.json` and `rerank_*.json` (Cohere, Jina AI): `{"openai_request",
//!   "provider_request", "provider_response", "openai_response"}` — both directions of one call.
//!
//! Responses and chunks are stamped with `created: 1700000000` and, where the provider gives
//! no id, `chatcmpl-fixture`; the model is the request's `"model"` (`gemini-2.0-flash`,
//! `anthropic.claude-3-5-sonnet-20240620-v1:0`, `llama3.1` or `command-a-03-2025`). Ollama request fixtures say
//! `"endpoint": "generate"` for `/api/generate`; the others are for `/api/chat`. Anthropic
//! answers carry their own id and model (`claude-sonnet-4-20250514`), and a request fixture
//! with `"stream": true` is translated as the streaming call sends it.
//!
//! Azure (`tests/fixtures/azure/`) forwards OpenAI bodies over HTTP, so its fixtures are
//! played against a local server: `request_*.json` pin the whole request the adapter sends
//! (`"provider": {"method", "target", "headers", "body"}`, or `{"refused": <error>}` when the
//! adapter refuses it first) for a `"deployment"` (`api_version`, `api_key` or
//! `azure_ad_token`, `drop_params`) and `"gateway_usage"` (the gateway, not the client, asked
//! for the stream's usage); `response_*`, `stream_*` and `error_*` are what the adapter makes
//! of Azure's answer (`"status"`, `"headers"`, `"provider"`), on `2024-10-21` with a key.
//!
//! `SWITCHYARD_BLESS=1 cargo test -p switchyard-providers --test golden` rewrites the expected
//! halves from the current code; review the diff before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use switchyard_llm_types::{
    ChatCompletionRequest, EmbeddingRequest, ErrorClass, RerankRequest, RerankResponse,
};
use switchyard_providers::bedrock::stream::frames;
use switchyard_providers::stream_driver::{collect_pieces, ChunkSource};
use switchyard_providers::{
    anthropic, bedrock, cohere, gemini, ollama, AzureParams, CallOptions, Dialect, HttpClient,
    OpenAiCompatible, OpenAiCompatibleTarget, Provider, ProviderError,
};

const CREATED: u64 = 1_700_000_000;
const FALLBACK_ID: &str = "chatcmpl-fixture";

fn fixtures(provider: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(provider);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn bless() -> bool {
    std::env::var("SWITCHYARD_BLESS").is_ok_and(|value| value == "1")
}

/// Compares `actual` with the fixture's `key`, or writes it there when blessing.
fn check(path: &Path, fixture: &mut Value, key: &str, actual: Value) {
    if bless() {
        fixture[key] = actual;
        let text = serde_json::to_string_pretty(fixture).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
    } else {
        assert_eq!(actual, fixture[key], "{}: {key}", path.display());
    }
}

/// [`check`] on encoded JSON, which must also be byte for byte the fixture's compact
/// encoding: same keys in the same order, same number and string spelling. (Fixtures are
/// blessed from the translator's own output, so key order is the translator's.)
fn check_bytes(path: &Path, fixture: &mut Value, key: &str, actual: &[u8]) {
    let value: Value = serde_json::from_slice(actual).unwrap();
    if !bless() {
        assert_eq!(
            String::from_utf8_lossy(actual),
            serde_json::to_string(&fixture[key]).unwrap(),
            "{}: {key} (bytes)",
            path.display()
        );
    }
    check(path, fixture, key, value);
}

fn read_fixture(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An `error_*` fixture: the provider's answer (status, headers, body) through `http_error`.
fn check_error(
    path: &Path,
    fixture: &mut Value,
    http_error: impl Fn(u16, &HeaderMap, &[u8]) -> ProviderError,
) {
    let status = u16::try_from(fixture["status"].as_u64().unwrap()).unwrap();
    let error = http_error(status, &headers_of(fixture), &provider_error_body(fixture));
    check(path, fixture, "openai", error_summary(&error));
}

fn kind_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.split('_').next().unwrap().to_owned()
}

fn error_summary(error: &ProviderError) -> Value {
    json!({
        "status": error.status(),
        "kind": error.kind().label(),
        "message": error.to_string(),
    })
}

fn headers_of(fixture: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(map) = fixture["headers"].as_object() {
        for (name, value) in map {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
            );
        }
    }
    headers
}

fn provider_error_body(fixture: &Value) -> Vec<u8> {
    match &fixture["provider"] {
        Value::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

/// Replays `bytes` whole, then split at every offset: all runs must agree. The chunks of
/// the whole run must also be byte for byte the compact encoding of the expected ones.
fn replay<S: ChunkSource>(
    path: &Path,
    fixture: &Value,
    make: impl Fn() -> S,
    bytes: &[u8],
) -> Value {
    let run = |pieces: &[&[u8]]| -> Value {
        let mut source = make();
        match collect_pieces(&mut source, pieces) {
            Ok(chunks) => Value::Array(
                chunks
                    .iter()
                    .map(|chunk| serde_json::from_slice(chunk.as_bytes()).unwrap())
                    .collect(),
            ),
            Err(error) => json!({ "error": error_summary(&error) }),
        }
    };
    if let (Some(expected), false) = (fixture["openai"].as_array(), bless()) {
        let mut source = make();
        let chunks = collect_pieces(&mut source, &[bytes]).unwrap();
        let actual: Vec<String> = chunks
            .iter()
            .map(|chunk| String::from_utf8_lossy(chunk.as_bytes()).into_owned())
            .collect();
        let expected: Vec<String> = expected
            .iter()
            .map(|chunk| serde_json::to_string(chunk).unwrap())
            .collect();
        assert_eq!(actual, expected, "{}: chunk bytes", path.display());
    }
    let whole = run(&[bytes]);
    for at in 0..=bytes.len() {
        assert_eq!(
            run(&[&bytes[..at], &bytes[at..]]),
            whole,
            "{}: split at {at}",
            path.display()
        );
    }
    whole
}

#[test]
fn gemini_fixtures() {
    for path in fixtures("gemini") {
        let mut fixture = read_fixture(&path);
        match kind_of(&path).as_str() {
            "request" => {
                let request: ChatCompletionRequest =
                    serde_json::from_value(fixture["openai"].clone()).unwrap();
                let body = gemini::request::to_gemini_request("Gemini", &request).unwrap();
                let bytes = serde_json::to_vec(&body).unwrap();
                check_bytes(&path, &mut fixture, "provider", &bytes);
            }
            "response" => {
                let response = gemini::response::to_chat_response(
                    &serde_json::to_vec(&fixture["provider"]).unwrap(),
                    FALLBACK_ID,
                    "gemini-2.0-flash",
                    CREATED,
                )
                .unwrap();
                let bytes = serde_json::to_vec(&response).unwrap();
                check_bytes(&path, &mut fixture, "openai", &bytes);
            }
            "stream" => {
                let include_usage = fixture["include_usage"].as_bool().unwrap_or(false);
                let text = fixture["provider"].as_str().unwrap().to_owned();
                let chunks = replay(
                    &path,
                    &fixture,
                    || {
                        gemini::stream::GeminiStream::new(gemini::stream::StreamTranslator::new(
                            "Gemini",
                            "gemini-2.0-flash",
                            FALLBACK_ID,
                            include_usage,
                            CREATED,
                        ))
                    },
                    text.as_bytes(),
                );
                check(&path, &mut fixture, "openai", chunks);
            }
            "error" => check_error(&path, &mut fixture, |status, headers, body| {
                gemini::error::http_error("Gemini", status, headers, body)
            }),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

fn bedrock_stream_bytes(events: &Value) -> Vec<u8> {
    events
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|item| match item.get("exception") {
            Some(kind) => {
                frames::exception(kind.as_str().unwrap(), item["message"].as_str().unwrap())
            }
            None => frames::event(
                item["event"].as_str().unwrap(),
                &item["payload"].to_string(),
            ),
        })
        .collect()
}

#[test]
fn bedrock_fixtures() {
    const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    for path in fixtures("bedrock") {
        let mut fixture = read_fixture(&path);
        match kind_of(&path).as_str() {
            "request" => {
                let request: ChatCompletionRequest =
                    serde_json::from_value(fixture["openai"].clone()).unwrap();
                let body = bedrock::request::to_converse_request(&request).unwrap();
                let bytes = serde_json::to_vec(&body).unwrap();
                check_bytes(&path, &mut fixture, "provider", &bytes);
            }
            "response" => {
                let response = bedrock::response::to_chat_response(
                    &serde_json::to_vec(&fixture["provider"]).unwrap(),
                    FALLBACK_ID,
                    MODEL,
                    CREATED,
                )
                .unwrap();
                let bytes = serde_json::to_vec(&response).unwrap();
                check_bytes(&path, &mut fixture, "openai", &bytes);
            }
            "stream" => {
                let include_usage = fixture["include_usage"].as_bool().unwrap_or(false);
                let bytes = bedrock_stream_bytes(&fixture["provider"]);
                let chunks = replay(
                    &path,
                    &fixture,
                    || {
                        bedrock::stream::ConverseStream::new(
                            bedrock::stream::StreamTranslator::new(
                                "Bedrock",
                                MODEL,
                                FALLBACK_ID,
                                include_usage,
                                CREATED,
                            ),
                        )
                    },
                    &bytes,
                );
                check(&path, &mut fixture, "openai", chunks);
            }
            "error" => check_error(&path, &mut fixture, |status, headers, body| {
                bedrock::error::http_error("Bedrock", status, headers, body)
            }),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

#[test]
fn ollama_fixtures() {
    const MODEL: &str = "llama3.1";
    for path in fixtures("ollama") {
        let mut fixture = read_fixture(&path);
        match kind_of(&path).as_str() {
            "request" => {
                let request: ChatCompletionRequest =
                    serde_json::from_value(fixture["openai"].clone()).unwrap();
                let body = if fixture["endpoint"] == "generate" {
                    ollama::request::to_generate_request("Ollama", &request)
                } else {
                    ollama::request::to_chat_request("Ollama_chat", &request)
                }
                .unwrap();
                check(&path, &mut fixture, "provider", body);
            }
            "response" => {
                let response = ollama::response::to_chat_response(
                    &fixture["provider"],
                    FALLBACK_ID,
                    MODEL,
                    CREATED,
                )
                .unwrap();
                check(
                    &path,
                    &mut fixture,
                    "openai",
                    serde_json::to_value(response).unwrap(),
                );
            }
            "stream" => {
                let include_usage = fixture["include_usage"].as_bool().unwrap_or(false);
                let text = fixture["provider"].as_str().unwrap().to_owned();
                let chunks = replay(
                    &path,
                    &fixture,
                    || {
                        ollama::stream::OllamaStream::new(ollama::stream::StreamTranslator::new(
                            "Ollama_chat",
                            MODEL,
                            FALLBACK_ID,
                            include_usage,
                            CREATED,
                        ))
                    },
                    text.as_bytes(),
                );
                check(&path, &mut fixture, "openai", chunks);
            }
            "error" => check_error(&path, &mut fixture, |status, headers, body| {
                ollama::error::http_error("Ollama_chat", status, headers, body)
            }),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

#[test]
fn cohere_fixtures() {
    const MODEL: &str = "command-a-03-2025";
    for path in fixtures("cohere") {
        let mut fixture = read_fixture(&path);
        match kind_of(&path).as_str() {
            "request" => {
                let request: ChatCompletionRequest =
                    serde_json::from_value(fixture["openai"].clone()).unwrap();
                let body = cohere::request::to_cohere_request("Cohere", &request, false).unwrap();
                let bytes = serde_json::to_vec(&body).unwrap();
                check_bytes(&path, &mut fixture, "provider", &bytes);
            }
            "response" => {
                let response = cohere::response::to_chat_response(
                    &serde_json::to_vec(&fixture["provider"]).unwrap(),
                    FALLBACK_ID,
                    MODEL,
                    CREATED,
                )
                .unwrap();
                check(
                    &path,
                    &mut fixture,
                    "openai",
                    serde_json::to_value(response).unwrap(),
                );
            }
            "stream" => {
                let include_usage = fixture["include_usage"].as_bool().unwrap_or(false);
                let text = fixture["provider"].as_str().unwrap().to_owned();
                let chunks = replay(
                    &path,
                    &fixture,
                    || {
                        cohere::stream::CohereStream::new(cohere::stream::StreamTranslator::new(
                            "Cohere",
                            MODEL,
                            FALLBACK_ID,
                            include_usage,
                            CREATED,
                        ))
                    },
                    text.as_bytes(),
                );
                check(&path, &mut fixture, "openai", chunks);
            }
            "error" => check_error(&path, &mut fixture, |status, headers, body| {
                switchyard_providers::http::upstream_error("Cohere", status, headers, body)
            }),
            "embed" => {
                let request: EmbeddingRequest =
                    serde_json::from_value(fixture["openai_request"].clone()).unwrap();
                let body = cohere::embed::to_embed_request(&request);
                check(&path, &mut fixture, "provider_request", body);
                let response = cohere::embed::from_embed_response(
                    &fixture["provider_response"],
                    &request.model,
                    request.input.len(),
                )
                .unwrap();
                let response = serde_json::to_value(response).unwrap();
                check(&path, &mut fixture, "openai_response", response);
            }
            "rerank" => check_rerank(
                &path,
                &mut fixture,
                cohere::rerank::to_rerank_request,
                cohere::rerank::from_rerank_response,
            ),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

/// Both directions of one rerank call: the client's request → the provider's body, and the
/// provider's answer → the client's (with the usage accounting reads as `_usage`).
fn check_rerank(
    path: &Path,
    fixture: &mut Value,
    to_body: fn(&RerankRequest) -> Value,
    from_answer: fn(&Value, &RerankRequest, &str) -> Result<RerankResponse, String>,
) {
    let request: RerankRequest = serde_json::from_value(fixture["openai_request"].clone()).unwrap();
    check(path, fixture, "provider_request", to_body(&request));
    let response = from_answer(&fixture["provider_response"], &request, "rerank-fixture").unwrap();
    let mut value = serde_json::to_value(&response).unwrap();
    // What accounting reads (not on the wire), so the fixture pins it too.
    value["_usage"] = serde_json::to_value(&response.usage).unwrap();
    check(path, fixture, "openai_response", value);
}

#[test]
fn jina_fixtures() {
    for path in fixtures("jina") {
        let mut fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match kind_of(&path).as_str() {
            "rerank" => check_rerank(
                &path,
                &mut fixture,
                cohere::rerank::to_jina_rerank_request,
                cohere::rerank::from_jina_rerank_response,
            ),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

/// The deployment every Azure fixture calls (`azure/gpt-4o-eu`).
const AZURE_DEPLOYMENT: &str = "gpt-4o-eu";

/// An Azure deployment on `base` as the fixture's `"deployment"` describes it (default:
/// `2024-10-21` with an `api-key`).
fn azure_provider(base: &str, fixture: &Value) -> OpenAiCompatible {
    let default = json!({"api_version": "2024-10-21", "api_key": "az-fixture-key"});
    let deployment = fixture.get("deployment").unwrap_or(&default);
    let text = |key: &str| deployment[key].as_str();
    let mut target = OpenAiCompatibleTarget::azure(
        Dialect::Azure,
        AZURE_DEPLOYMENT,
        AzureParams {
            api_base: Some(base),
            api_key: text("api_key"),
            api_version: text("api_version"),
            azure_ad_token: text("azure_ad_token"),
        },
        |_| None,
    )
    .unwrap();
    target.drop_params = deployment["drop_params"].as_bool().unwrap_or(false);
    OpenAiCompatible::new(target, HttpClient::new().unwrap()).unwrap()
}

/// What Azure answers a request fixture's call: a minimal completion or stream.
fn azure_ok(stream: bool) -> support::Reply {
    if stream {
        let chunk = json!({"id": "chatcmpl-az", "object": "chat.completion.chunk",
            "created": CREATED, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]});
        support::Reply::bytes(
            200,
            "text/event-stream",
            format!("data: {chunk}\n\ndata: [DONE]\n\n"),
        )
    } else {
        support::Reply::json(
            200,
            &json!({"id": "chatcmpl-az", "object": "chat.completion",
            "created": CREATED, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}]}),
        )
    }
}

/// Azure's answer as the fixture gives it (`"status"`, default 200; `"headers"`;
/// `"provider"`, a JSON body or, for streams, the SSE text).
fn azure_reply(fixture: &Value) -> support::Reply {
    let status = u16::try_from(fixture["status"].as_u64().unwrap_or(200)).unwrap();
    let mut reply = match &fixture["provider"] {
        Value::String(text) if status == 200 => {
            support::Reply::bytes(status, "text/event-stream", text.clone())
        }
        Value::String(text) => support::Reply::bytes(status, "text/plain", text.clone()),
        body => support::Reply::json(status, body),
    };
    if let Some(headers) = fixture["headers"].as_object() {
        for (name, value) in headers {
            reply
                .headers
                .push((name.clone(), value.as_str().unwrap().to_owned()));
        }
    }
    reply
}

/// An Azure error as clients see it: status, class, message, and what the response carries
/// besides (`param`, `Retry-After`, and `provider_specific_fields` when there are any).
fn azure_error_summary(error: &ProviderError) -> Value {
    let mut summary = error_summary(error);
    summary["param"] = json!(error.param());
    summary["retry_after"] = json!(error.retry_after_secs());
    if let Some(fields) = error.provider_specific_fields() {
        summary["provider_specific_fields"] = json!(fields);
    }
    summary
}

/// Sends `request` (streamed when it says `"stream": true`) to the fixture's deployment on
/// a local server answering `reply`; returns the answer (completion, or chunks) and what the
/// server received.
async fn azure_call(
    fixture: &Value,
    request: Value,
    reply: support::Reply,
) -> (Value, Vec<support::Received>) {
    let (base, log) = support::serve(move |_| reply.clone()).await;
    let provider = azure_provider(&base, fixture);
    let request: ChatCompletionRequest = serde_json::from_value(request).unwrap();
    let options = CallOptions {
        stream_usage_added: fixture["gateway_usage"].as_bool().unwrap_or(false),
        ..CallOptions::default()
    };
    let answer = if request.stream == Some(true) {
        match provider.chat_stream(&request, &options).await {
            Ok(upstream) => {
                let items: Vec<_> = upstream.body.collect().await;
                Value::Array(
                    items
                        .into_iter()
                        .map(|item| match item {
                            Ok(chunk) => serde_json::from_slice(chunk.as_bytes()).unwrap(),
                            Err(error) => json!({"error": azure_error_summary(&error)}),
                        })
                        .collect(),
                )
            }
            Err(error) => json!({"error": azure_error_summary(&error)}),
        }
    } else {
        match provider.chat(&request, &options).await {
            Ok(upstream) => serde_json::to_value(upstream.body).unwrap(),
            Err(error) => json!({"error": azure_error_summary(&error)}),
        }
    };
    let received = log.lock().unwrap().clone();
    (answer, received)
}

/// The request as Azure received it; only the headers that carry meaning are pinned.
fn azure_request_summary(received: &support::Received) -> Value {
    let headers: serde_json::Map<String, Value> = ["api-key", "authorization", "content-type"]
        .iter()
        .filter_map(|name| {
            received
                .headers
                .get(*name)
                .map(|value| ((*name).to_owned(), json!(value)))
        })
        .collect();
    json!({
        "method": received.method,
        "target": received.target,
        "headers": headers,
        "body": received.json(),
    })
}

#[tokio::test]
async fn azure_fixtures() {
    for path in fixtures("azure") {
        let mut fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match kind_of(&path).as_str() {
            "request" => {
                let stream = fixture["openai"]["stream"] == true;
                let request = fixture["openai"].clone();
                let (answer, received) = azure_call(&fixture, request, azure_ok(stream)).await;
                let sent = match (received.as_slice(), answer.get("error")) {
                    ([one], None) => azure_request_summary(one),
                    ([], Some(error)) => json!({"refused": error}),
                    _ => panic!("{}: {received:?} → {answer}", path.display()),
                };
                check(&path, &mut fixture, "provider", sent);
            }
            "response" | "stream" | "error" => {
                // The call itself is plain: what is pinned is the answer's translation.
                let request = json!({"model": AZURE_DEPLOYMENT, "stream": kind_of(&path) == "stream",
                                     "messages": [{"role": "user", "content": "Bonjour"}]});
                let reply = azure_reply(&fixture);
                let (answer, received) = azure_call(&fixture, request, reply).await;
                assert_eq!(received.len(), 1, "{}", path.display());
                let answer = match answer.get("error") {
                    Some(error) if kind_of(&path) == "error" => error.clone(),
                    _ => answer,
                };
                check(&path, &mut fixture, "openai", answer);
            }
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}

#[test]
fn anthropic_fixtures() {
    const MODEL: &str = "claude-sonnet-4-20250514";
    for path in fixtures("anthropic") {
        let mut fixture = read_fixture(&path);
        match kind_of(&path).as_str() {
            "request" => {
                let request: ChatCompletionRequest =
                    serde_json::from_value(fixture["openai"].clone()).unwrap();
                let body =
                    anthropic::request::to_messages_request(&request, request.is_stream()).unwrap();
                let bytes = serde_json::to_vec(&body).unwrap();
                check_bytes(&path, &mut fixture, "provider", &bytes);
            }
            "response" => {
                let response =
                    anthropic::response::to_chat_response(&fixture["provider"], CREATED).unwrap();
                let bytes = serde_json::to_vec(&response).unwrap();
                check_bytes(&path, &mut fixture, "openai", &bytes);
            }
            "stream" => {
                let include_usage = fixture["include_usage"].as_bool().unwrap_or(false);
                let text = fixture["provider"].as_str().unwrap().to_owned();
                let chunks = replay(
                    &path,
                    &fixture,
                    || {
                        anthropic::stream::MessagesStream::new(
                            anthropic::stream::StreamTranslator::new(
                                "Anthropic",
                                MODEL,
                                include_usage,
                                CREATED,
                            ),
                        )
                    },
                    text.as_bytes(),
                );
                check(&path, &mut fixture, "openai", chunks);
            }
            "error" => check_error(&path, &mut fixture, |status, headers, body| {
                anthropic::error::http_error("Anthropic", status, headers, body)
            }),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        }
    }
}
