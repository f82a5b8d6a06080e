//! The Gemini (AI Studio) and Vertex AI adapters end to end against local mock servers: the
//! mocks check paths, credentials and bodies, the Vertex token endpoint verifies the signed
//! JWT with the test key's public half, a metadata-server mock hands out tokens only to requests
//! that say `Metadata-Flavor: Google`, and the Vertex mock accepts only the issued bearer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};
use support::{serve, Received, Reply};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, ErrorClass, ErrorKind,
};
use switchyard_providers::{
    CallOptions, Gemini, GeminiTarget, HttpClient, Provider, ProviderError, VertexParams,
};

const TEST_KEY: &str = include_str!("fixtures/vertex/test_service_account_key.pem");
const TEST_PUBLIC_KEY: &str = include_str!("fixtures/vertex/test_service_account_key.pub.pem");
const UNREGISTERED_KEY: &str = include_str!("fixtures/vertex/unregistered_key.pem");
const CLIENT_EMAIL: &str = "switchyard-test@test-project.iam.gserviceaccount.com";
/// The one bearer the Vertex mock accepts: the first token the token endpoint issues, and the
/// metadata server's token.
const ISSUED_BEARER: &str = "ya29.test-1";

const GEMINI_STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Bon\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"sse-1\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"jour\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 2,\"totalTokenCount\": 11},\"modelVersion\": \"gemini-2.0-flash\",\"responseId\": \"sse-1\"}\r\n\r\n",
);

fn generate_response() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1, "totalTokenCount": 10,
                          "cachedContentTokenCount": 4},
        "modelVersion": "gemini-2.0-flash", "responseId": "resp-42"
    })
}

fn google_error(code: u16, status: &str, message: &str) -> Reply {
    Reply::json(
        code,
        &json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// Answers like the Gemini API for AI Studio paths.
fn gemini_upstream(request: &Received) -> Reply {
    if request.headers.get("x-goog-api-key").map(String::as_str) != Some("g-test-key") {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
        );
    }
    match request.target.as_str() {
        "/v1beta/models/gemini-2.0-flash:generateContent" => Reply::json(200, &generate_response()),
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse" => {
            Reply::bytes(200, "text/event-stream", GEMINI_STREAM)
        }
        "/v1beta/models/busy:generateContent" => google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        "/v1beta/models/text-embedding-004:batchEmbedContents" => {
            let count = request.json()["requests"].as_array().unwrap().len();
            let embeddings: Vec<Value> = (0..count)
                .map(|i| json!({"values": [i as f64, 0.5]}))
                .collect();
            Reply::json(200, &json!({ "embeddings": embeddings }))
        }
        other => google_error(404, "NOT_FOUND", &format!("no route {other}")),
    }
}

fn chat_request(model: &str, stream: bool) -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": model,
        "messages": [{"role": "system", "content": "Réponds en français."},
                     {"role": "user", "content": "Hello"}],
        "max_tokens": 50, "stream": stream, "stream_options": {"include_usage": true}
    }))
    .unwrap()
}

fn gemini(base: &str, key: &str) -> Gemini {
    let target = GeminiTarget::ai_studio(Some(base), Some(key), |_| None);
    Gemini::new(target, HttpClient::new().unwrap()).unwrap()
}

#[tokio::test]
async fn gemini_chat_sends_the_documented_body_and_translates_the_answer() {
    let (base, log) = serve(gemini_upstream).await;
    let provider = gemini(&base, "g-test-key");
    let response = provider
        .chat(
            &chat_request("gemini-2.0-flash", false),
            &CallOptions::default(),
        )
        .await
        .unwrap()
        .body;
    let sent = log.lock().unwrap()[0].json();
    assert_eq!(
        sent,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
            "systemInstruction": {"parts": [{"text": "Réponds en français."}]},
            "generationConfig": {"maxOutputTokens": 50}
        })
    );
    assert_eq!(response.id, "resp-42");
    assert_eq!(response.choices[0].message.text(), "Bonjour");
    let usage = response.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens()
        ),
        (9, 1, 4)
    );
}

#[tokio::test]
async fn gemini_stream_becomes_openai_chunks() {
    let (base, _log) = serve(gemini_upstream).await;
    let provider = gemini(&base, "g-test-key");
    let stream = provider
        .chat_stream(
            &chat_request("gemini-2.0-flash", true),
            &CallOptions::default(),
        )
        .await
        .unwrap()
        .body;
    let chunks: Vec<Value> = stream
        .map(|chunk| serde_json::from_slice(chunk.unwrap().as_bytes()).unwrap())
        .collect()
        .await;
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 11);
    assert!(chunks.iter().all(|chunk| chunk["id"] == "sse-1"));
}

#[tokio::test]
async fn gemini_errors_and_embeddings() {
    let (base, _log) = serve(gemini_upstream).await;
    let provider = gemini(&base, "g-test-key");
    let error = provider
        .chat(&chat_request("busy", false), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(error
        .to_string()
        .starts_with("litellm.RateLimitError: GeminiException - "));

    let wrong_key = gemini(&base, "nope");
    let error = wrong_key
        .chat(
            &chat_request("gemini-2.0-flash", false),
            &CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication);

    let request: EmbeddingRequest =
        serde_json::from_value(json!({"model": "text-embedding-004", "input": ["a", "b", "c"]}))
            .unwrap();
    let response = provider
        .embeddings(&request, &CallOptions::default())
        .await
        .unwrap()
        .body;
    assert_eq!(response.data.len(), 3);
    assert_eq!(response.data[2].embedding, json!([2.0, 0.5]));
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
}

/// A token endpoint that verifies the assertion's RS256 signature and claims, and a Vertex
/// endpoint that accepts only the bearer it issued.
async fn vertex_upstream() -> (String, Arc<AtomicUsize>, support::Log) {
    let exchanges = Arc::new(AtomicUsize::new(0));
    let counter = exchanges.clone();
    let base_cell: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let audience = base_cell.clone();
    let (base, log) = serve(move |request: &Received| {
        if request.target == "/token" {
            let form = String::from_utf8(request.body.clone()).unwrap();
            let assertion = form
                .strip_prefix(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
                )
                .expect("a jwt-bearer grant");
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            validation.set_audience(&[format!("{}/token", audience.get().unwrap())]);
            validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
            return match jsonwebtoken::decode::<Claims>(assertion, &key, &validation) {
                Ok(data)
                    if data.claims.iss == CLIENT_EMAIL
                        && data.claims.scope
                            == "https://www.googleapis.com/auth/cloud-platform" =>
                {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    Reply::json(
                        200,
                        &json!({"access_token": format!("ya29.test-{n}"), "expires_in": 3599, "token_type": "Bearer"}),
                    )
                }
                Ok(_) => Reply::json(400, &json!({"error": "invalid_grant", "error_description": "wrong claims"})),
                Err(error) => Reply::json(
                    400,
                    &json!({"error": "invalid_grant", "error_description": format!("Invalid JWT Signature: {error}")}),
                ),
            };
        }
        if request.headers.get("authorization") != Some(&format!("Bearer {ISSUED_BEARER}")) {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
        }
        let prefix = "/v1/projects/test-project/locations/europe-west4/publishers/google/models/";
        match request.target.strip_prefix(prefix) {
            Some("gemini-2.0-flash:generateContent") => Reply::json(200, &generate_response()),
            Some("text-embedding-005:predict") => {
                let instances = request.json()["instances"].as_array().unwrap().len();
                let predictions: Vec<Value> = (0..instances)
                    .map(|_| json!({"embeddings": {"values": [0.25], "statistics": {"token_count": 2, "truncated": false}}}))
                    .collect();
                Reply::json(200, &json!({ "predictions": predictions }))
            }
            _ => google_error(404, "NOT_FOUND", "unknown path"),
        }
    })
    .await;
    base_cell.set(base.clone()).unwrap();
    (base, exchanges, log)
}

/// One `gemini-2.0-flash` chat.
async fn chat_flash(provider: &Gemini) -> Result<ChatCompletionResponse, ProviderError> {
    provider
        .chat(
            &chat_request("gemini-2.0-flash", false),
            &CallOptions::default(),
        )
        .await
        .map(|answer| answer.body)
}

/// `count` chats at once, each of which must be answered.
async fn chat_concurrently(provider: &Arc<Gemini>, count: usize) {
    let calls = (0..count).map(|_| {
        let provider = provider.clone();
        tokio::spawn(async move { chat_flash(&provider).await })
    });
    for call in futures::future::join_all(calls).await {
        let response = call.unwrap().unwrap();
        assert_eq!(response.choices[0].message.text(), "Bonjour");
    }
}

fn service_account(base: &str, private_key: &str) -> Value {
    json!({
        "type": "service_account", "project_id": "test-project",
        "private_key_id": "k1", "private_key": private_key,
        "client_email": CLIENT_EMAIL, "token_uri": format!("{base}/token")
    })
}

fn vertex(base: &str, credentials: &Value) -> Gemini {
    let client = HttpClient::new().unwrap();
    let params = VertexParams {
        api_base: Some(base),
        vertex_location: Some("europe-west4"),
        vertex_credentials: Some(credentials),
        ..VertexParams::default()
    };
    let target = GeminiTarget::vertex(params, &client, |_| None).unwrap();
    Gemini::new(target, client).unwrap()
}

#[tokio::test]
async fn vertex_signs_a_jwt_exchanges_it_once_and_sends_the_bearer() {
    let (base, exchanges, log) = vertex_upstream().await;
    // The key as a JSON string, as LiteLLM configs often carry it.
    let credentials = Value::String(service_account(&base, TEST_KEY).to_string());
    let provider = Arc::new(vertex(&base, &credentials));
    chat_concurrently(&provider, 8).await;
    assert_eq!(
        exchanges.load(Ordering::SeqCst),
        1,
        "one token for every caller"
    );

    let request: EmbeddingRequest =
        serde_json::from_value(json!({"model": "text-embedding-005", "input": ["x", "y"]}))
            .unwrap();
    let response = provider
        .embeddings(&request, &CallOptions::default())
        .await
        .unwrap()
        .body;
    assert_eq!(response.data.len(), 2);
    assert_eq!(response.usage.unwrap().prompt_tokens, 4);
    assert_eq!(
        exchanges.load(Ordering::SeqCst),
        1,
        "the cached token is reused"
    );
    let jwt_requests = log
        .lock()
        .unwrap()
        .iter()
        .filter(|request| request.target == "/token")
        .count();
    assert_eq!(jwt_requests, 1);
}

#[tokio::test]
async fn vertex_with_an_unregistered_key_is_an_authentication_error() {
    let (base, exchanges, _log) = vertex_upstream().await;
    let provider = vertex(&base, &service_account(&base, UNREGISTERED_KEY));
    let error: ProviderError = chat_flash(&provider).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication);
    assert!(
        error.to_string().contains("Invalid JWT Signature"),
        "{error}"
    );
    assert_eq!(exchanges.load(Ordering::SeqCst), 0);
}

/// A GCE metadata server: the default service account's token and the project id, for
/// requests that carry `Metadata-Flavor: Google` only (as the real one refuses others).
async fn metadata_server() -> (String, support::Log) {
    serve(|request: &Received| {
        if request.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return Reply::bytes(403, "text/html", "Missing Metadata-Flavor:Google header.");
        }
        let mut reply = match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => Reply::json(
                200,
                &json!({"access_token": ISSUED_BEARER, "expires_in": 3599, "token_type": "Bearer"}),
            ),
            ("GET", "/computeMetadata/v1/project/project-id") => {
                Reply::bytes(200, "application/text", "test-project")
            }
            _ => Reply::bytes(404, "text/html", "not found"),
        };
        reply
            .headers
            .push(("metadata-flavor".into(), "Google".into()));
        reply
    })
    .await
}

/// A Vertex deployment with no credentials configured anywhere, on a machine whose metadata
/// server is at `metadata_host`.
fn vertex_on_google_cloud(base: &str, metadata_host: &str, project: Option<&str>) -> Gemini {
    let client = HttpClient::new().unwrap();
    let params = VertexParams {
        api_base: Some(base),
        vertex_project: project,
        vertex_location: Some("europe-west4"),
        ..VertexParams::default()
    };
    let host = metadata_host.to_owned();
    let env = move |name: &str| (name == "GCE_METADATA_HOST").then(|| host.clone());
    let target = GeminiTarget::vertex(params, &client, env).unwrap();
    Gemini::new(target, client).unwrap()
}

#[tokio::test]
async fn vertex_falls_back_to_the_metadata_server_for_token_and_project() {
    let (base, exchanges, vertex_log) = vertex_upstream().await;
    let (metadata, metadata_log) = metadata_server().await;
    let host = metadata.trim_start_matches("http://");
    // No project configured: the metadata server's is used (the Vertex mock's path checks it).
    let provider = Arc::new(vertex_on_google_cloud(&base, host, None));
    chat_concurrently(&provider, 4).await;
    let asked: Vec<String> = metadata_log
        .lock()
        .unwrap()
        .iter()
        .map(|request| request.target.clone())
        .collect();
    let token_requests = asked
        .iter()
        .filter(|target| target.ends_with("/token"))
        .count();
    let project_requests = asked
        .iter()
        .filter(|target| target.ends_with("/project-id"))
        .count();
    assert_eq!(
        (token_requests, project_requests),
        (1, 1),
        "token and project are asked once: {asked:?}"
    );
    assert_eq!(
        exchanges.load(Ordering::SeqCst),
        0,
        "no OAuth token endpoint"
    );
    assert!(vertex_log
        .lock()
        .unwrap()
        .iter()
        .all(|request| request.headers["authorization"] == format!("Bearer {ISSUED_BEARER}")));
}

#[tokio::test]
async fn vertex_without_any_credentials_off_google_cloud_fails_fast_as_unauthenticated() {
    let (base, _exchanges, vertex_log) = vertex_upstream().await;
    // Nothing listens there: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    for project in [Some("test-project"), None] {
        let provider = vertex_on_google_cloud(&base, &host, project);
        let started = std::time::Instant::now();
        let error: ProviderError = chat_flash(&provider).await.unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
        assert_eq!(error.status(), 401);
        let message = error.to_string();
        assert!(
            message.contains("no Vertex AI credentials")
                && message.contains("metadata server")
                && message.contains(&host),
            "{message}"
        );
    }
    assert!(vertex_log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_metadata_server_refusing_the_token_is_an_authentication_error() {
    let (base, _exchanges, vertex_log) = vertex_upstream().await;
    // A server that answers like the metadata server does to a request without the header.
    let (refusing, _log) = serve(|_: &Received| {
        Reply::bytes(403, "text/html", "Missing Metadata-Flavor:Google header.")
    })
    .await;
    let provider = vertex_on_google_cloud(&base, refusing.trim_start_matches("http://"), Some("p"));
    let error = chat_flash(&provider).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication);
    assert!(
        error.to_string().contains("Missing Metadata-Flavor"),
        "{error}"
    );
    assert!(vertex_log.lock().unwrap().is_empty());
}
