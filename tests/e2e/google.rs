//! Gemini (`gemini/`) and Vertex AI (`vertex_ai/`) deployments through the real gateway,
//! against a local mock of the Google APIs: the mock checks paths, the API key or the bearer
//! token, and (for Vertex) runs a token endpoint that verifies the service account's RS256 JWT
//! with the test key's public half, and a GCE metadata server that answers only requests
//! carrying `Metadata-Flavor: Google`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::sse::stream_text;
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{
    assert_error, assert_image_refused, chunks, open_stream, read_stream, send_json, serve_images,
    serve_raw, ExpectedError, RawRequest, PNG_BASE64,
};

pub(crate) const API_KEY: &str = "g-e2e-key";
const TEST_KEY: &str =
    include_str!("../../crates/providers/tests/fixtures/vertex/test_service_account_key.pem");
const TEST_PUBLIC_KEY: &str =
    include_str!("../../crates/providers/tests/fixtures/vertex/test_service_account_key.pub.pem");
const CLIENT_EMAIL: &str = "switchyard-e2e@test-project.iam.gserviceaccount.com";
/// What `authorized_user` credentials with the values below must send to the token endpoint.
const USER_REFRESH_FORM: &str = "grant_type=refresh_token&client_id=e2e-client.apps.googleusercontent.com&client_secret=e2e-secret&refresh_token=1%2F%2Fe2e-refresh";

pub(crate) struct Mock {
    pub(crate) base: String,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    token_exchanges: Arc<AtomicUsize>,
}

const STREAM: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":7},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"e2e-stream\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo!\"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"e2e-stream\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"wave\",\"args\":{\"times\":2}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":4,\"totalTokenCount\":11,\"cachedContentTokenCount\":3},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"e2e-stream\"}\r\n\r\n",
);

fn google_error(code: u16, status: &str, message: &str) -> (u16, &'static str, String) {
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    (code, "application/json", body.to_string())
}

/// The GCE metadata server's token (the bearer the Vertex mock accepts) and project.
fn metadata(seen: &RawRequest, path: &str) -> (u16, &'static str, String) {
    if seen.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
        return (
            403,
            "text/html",
            "Missing Metadata-Flavor:Google header.".into(),
        );
    }
    match path {
        "instance/service-accounts/default/token" => {
            let body =
                json!({"access_token": "ya29.e2e-1", "expires_in": 3599, "token_type": "Bearer"});
            (200, "application/json", body.to_string())
        }
        "project/project-id" => (200, "application/text", "e2e-project".into()),
        _ => (404, "text/html", "not found".into()),
    }
}

fn answer(seen: &RawRequest, base: &str, exchanges: &AtomicUsize) -> (u16, &'static str, String) {
    if let Some(path) = seen.target.strip_prefix("/computeMetadata/v1/") {
        return metadata(seen, path);
    }
    if seen.target == "/token" {
        let form = String::from_utf8_lossy(&seen.body).into_owned();
        if form.starts_with("grant_type=refresh_token&") {
            // `authorized_user` credentials: the exact client and refresh token, form-encoded.
            if form != USER_REFRESH_FORM {
                return (
                    400,
                    "application/json",
                    json!({"error": "invalid_grant", "error_description": form}).to_string(),
                );
            }
            let n = exchanges.fetch_add(1, Ordering::SeqCst) + 1;
            let body = json!({"access_token": format!("ya29.e2e-{n}"), "expires_in": 3600,
                              "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/cloud-platform"});
            return (200, "application/json", body.to_string());
        }
        let Some(assertion) = form.strip_prefix(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=",
        ) else {
            return (
                400,
                "application/json",
                r#"{"error":"unsupported_grant_type"}"#.into(),
            );
        };
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[format!("{base}/token")]);
        validation.set_issuer(&[CLIENT_EMAIL]);
        return match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
            Ok(_) => {
                let n = exchanges.fetch_add(1, Ordering::SeqCst) + 1;
                let body = json!({"access_token": format!("ya29.e2e-{n}"), "expires_in": 3600, "token_type": "Bearer"});
                (200, "application/json", body.to_string())
            }
            Err(error) => (
                400,
                "application/json",
                json!({"error": "invalid_grant", "error_description": error.to_string()})
                    .to_string(),
            ),
        };
    }
    let vertex_prefix = "/v1/projects/e2e-project/locations/us-east5/publishers/google/models/";
    let route = if let Some(rest) = seen.target.strip_prefix(vertex_prefix) {
        if seen.headers.get("authorization").map(String::as_str) != Some("Bearer ya29.e2e-1") {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
        }
        rest
    } else if let Some(rest) = seen.target.strip_prefix("/v1beta/models/") {
        if seen.headers.get("x-goog-api-key").map(String::as_str) != Some(API_KEY) {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
            );
        }
        rest
    } else {
        return google_error(404, "NOT_FOUND", "unknown path");
    };
    let body: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    if body["contents"][0]["parts"][0]["text"] == "overload" {
        return google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        );
    }
    match route {
        "gemini-2.0-flash:generateContent" => {
            let reply = json!({
                "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from Gemini"}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
                                  "totalTokenCount": 10, "cachedContentTokenCount": 2},
                "modelVersion": "gemini-2.0-flash-001", "responseId": "e2e-response"
            });
            (200, "application/json", reply.to_string())
        }
        "gemini-2.0-flash:streamGenerateContent?alt=sse" => {
            (200, "text/event-stream", STREAM.to_owned())
        }
        "text-embedding-004:batchEmbedContents" => {
            let count = body["requests"].as_array().map_or(0, Vec::len);
            let embeddings: Vec<Value> = (0..count).map(|i| json!({"values": [i, 1]})).collect();
            (
                200,
                "application/json",
                json!({ "embeddings": embeddings }).to_string(),
            )
        }
        _ => google_error(404, "NOT_FOUND", "unknown model"),
    }
}

pub(crate) async fn start_mock() -> Mock {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let token_exchanges = Arc::new(AtomicUsize::new(0));
    // The token endpoint's audience is the mock's own URL, known once it is bound.
    let own_base = Arc::new(Mutex::new(String::new()));
    let (log, exchanges, base_slot) = (seen.clone(), token_exchanges.clone(), own_base.clone());
    let base = serve_raw(move |request: &RawRequest| {
        let base = base_slot.lock().unwrap().clone();
        let reply = answer(request, &base, &exchanges);
        log.lock().unwrap().push(request.clone());
        reply
    })
    .await;
    *own_base.lock().unwrap() = base.clone();
    Mock {
        base,
        seen,
        token_exchanges,
    }
}

fn gemini_gateway(mock: &Mock) -> Gateway {
    Gateway::start(&format!(
        r#"
model_list:
  - model_name: gemini-flash
    litellm_params:
      model: gemini/gemini-2.0-flash
      api_base: {base}
      api_key: {API_KEY}
  - model_name: gemini-embed
    litellm_params:
      model: gemini/text-embedding-004
      api_base: {base}
      api_key: {API_KEY}
    model_info:
      mode: embedding
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#,
        base = mock.base
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_chat_stream_errors_and_embeddings_through_the_gateway() {
    let mock = start_mock().await;
    let gateway = gemini_gateway(&mock);

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "gemini-flash", "messages": [
            {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hello from Gemini"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    let sent: Value = serde_json::from_slice(&mock.seen.lock().unwrap()[0].body).unwrap();
    assert_eq!(
        sent["systemInstruction"],
        json!({"parts": [{"text": "Be kind."}]})
    );

    let reader = open_stream(
        &gateway,
        "/v1/chat/completions",
        &json!({"model": "gemini-flash", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let frames = read_stream(reader).await;
    assert_eq!(stream_text(&frames), "Hello!");
    let chunks = chunks(&frames);
    let call = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .expect("a tool-call chunk");
    assert_eq!(call["function"]["name"], "wave");
    assert_eq!(call["function"]["arguments"], "{\"times\":2}");
    assert!(chunks
        .iter()
        .any(|chunk| chunk["choices"][0]["finish_reason"] == "tool_calls"));
    let usage = chunks.last().unwrap()["usage"].clone();
    assert_eq!(usage["total_tokens"], 11, "{usage}");

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "gemini-flash", "messages": [{"role": "user", "content": "overload"}]}),
    ))
    .await;
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 429,
            kind: "rate_limit_error",
            param: None,
            message_prefix: "litellm.RateLimitError: GeminiException - Resource has been exhausted",
        },
    );

    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "gemini-embed", "input": ["a", "b"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"][1]["embedding"], json!([1, 1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_tokens_come_from_the_service_account_and_are_reused() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("service-account.json");
    let key = json!({
        "type": "service_account", "project_id": "e2e-project", "private_key_id": "kid-1",
        "private_key": TEST_KEY, "client_email": CLIENT_EMAIL,
        "token_uri": format!("{}/token", mock.base)
    });
    std::fs::write(&key_path, key.to_string()).unwrap();
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: vertex-flash
    litellm_params:
      model: vertex_ai/gemini-2.0-flash
      api_base: {base}
      vertex_project: e2e-project
      vertex_location: us-east5
      vertex_credentials: {path}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#,
        base = mock.base,
        path = key_path.display()
    ));
    vertex_chats_succeed(&gateway, 3).await;
    assert_eq!(mock.token_exchanges.load(Ordering::SeqCst), 1);
    // The credentials never reach a client.
    let (_, _, info) = send_json(gateway.get("/model/info")).await;
    assert!(!info.to_string().contains("vertex_credentials"), "{info}");
}

/// `count` chats with `vertex-flash`, each of which must be answered.
async fn vertex_chats_succeed(gateway: &Gateway, count: usize) {
    for _ in 0..count {
        let (status, _, reply) = send_json(gateway.post(
            "/v1/chat/completions",
            &json!({"model": "vertex-flash", "messages": [{"role": "user", "content": "Hi"}]}),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(
            reply["choices"][0]["message"]["content"],
            "Hello from Gemini"
        );
    }
}

/// A gateway with a `vertex-flash` deployment that names neither credentials nor project:
/// both come from what `env` leads to.
fn vertex_without_credentials(mock: &Mock, env: &[(&str, &str)]) -> Gateway {
    Gateway::start_with(
        &format!(
            r#"
model_list:
  - model_name: vertex-flash
    litellm_params:
      model: vertex_ai/gemini-2.0-flash
      api_base: {base}
      vertex_location: us-east5
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#,
            base = mock.base
        ),
        &[],
        env,
    )
}

/// Application Default Credentials as `gcloud auth application-default login` writes them
/// (`authorized_user`), found through `GOOGLE_APPLICATION_CREDENTIALS`: the refresh token is
/// exchanged once at the file's token URI and the bearer is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_uses_user_credentials_from_google_application_credentials() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let adc_path = dir.path().join("application_default_credentials.json");
    let user = json!({
        "type": "authorized_user", "client_id": "e2e-client.apps.googleusercontent.com",
        "client_secret": "e2e-secret", "refresh_token": "1//e2e-refresh",
        "quota_project_id": "e2e-project", "token_uri": format!("{}/token", mock.base)
    });
    std::fs::write(&adc_path, user.to_string()).unwrap();
    let adc_path = adc_path.display().to_string();
    let gateway =
        vertex_without_credentials(&mock, &[("GOOGLE_APPLICATION_CREDENTIALS", &adc_path)]);
    vertex_chats_succeed(&gateway, 2).await;
    assert_eq!(mock.token_exchanges.load(Ordering::SeqCst), 1);
    let seen = mock.seen.lock().unwrap();
    // The project came from the credentials' quota_project_id (the mock's path checks it).
    assert!(seen
        .iter()
        .any(|request| request.target.starts_with("/v1/projects/e2e-project/")));
}

/// On Google Cloud with no credentials configured anywhere: the metadata server (at
/// `GCE_METADATA_HOST`) gives the token and, with no `vertex_project`, the project; each is
/// asked once.
/// A `vertex-flash` gateway whose token and project come from the mock's metadata server, as
/// on Google Cloud (no gcloud credentials file to find: `HOME` is the empty directory
/// returned, to keep while the gateway runs).
fn vertex_on_the_metadata_server(mock: &Mock) -> (Gateway, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let empty = home.path().display().to_string();
    let host = mock.base.trim_start_matches("http://").to_owned();
    let gateway = vertex_without_credentials(
        mock,
        &[
            ("GCE_METADATA_HOST", &host),
            ("CLOUDSDK_CONFIG", &empty),
            ("HOME", &empty),
        ],
    );
    (gateway, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_on_google_cloud_uses_the_metadata_server() {
    let mock = start_mock().await;
    let (gateway, _home) = vertex_on_the_metadata_server(&mock);
    vertex_chats_succeed(&gateway, 3).await;
    let seen = mock.seen.lock().unwrap();
    let asked = |path: &str| {
        seen.iter()
            .filter(|request| request.target == format!("/computeMetadata/v1/{path}"))
            .count()
    };
    assert_eq!(asked("instance/service-accounts/default/token"), 1);
    assert_eq!(asked("project/project-id"), 1);
    assert_eq!(mock.token_exchanges.load(Ordering::SeqCst), 0);
}

/// The parts of the last `generateContent` call the mock received, and how many it received.
fn last_generate_parts(mock: &Mock) -> (Value, usize) {
    let seen = mock.seen.lock().unwrap();
    let calls: Vec<&RawRequest> = seen
        .iter()
        .filter(|request| request.target.contains(":generateContent"))
        .collect();
    let parts = calls.last().map_or(Value::Null, |request| {
        serde_json::from_slice::<Value>(&request.body).unwrap()["contents"][0]["parts"].clone()
    });
    (parts, calls.len())
}

fn with_images(model: &str, urls: &[&str]) -> Value {
    let mut content = vec![json!({"type": "text", "text": "What is this?"})];
    for url in urls {
        content.push(json!({"type": "image_url", "image_url": {"url": url}}));
    }
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// AI Studio cannot read web URLs: the gateway downloads them and sends them inline, as
/// LiteLLM does, but leaves Files API URIs to Gemini; an unusable image is a 400 naming it,
/// and Gemini is not called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_gets_web_images_inline() {
    let mock = start_mock().await;
    let gateway = gemini_gateway(&mock);
    let images = serve_images().await;
    let cat = format!("{images}/cat.png");
    let file = "https://generativelanguage.googleapis.com/v1beta/files/e2e-file";

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &with_images("gemini-flash", &[&cat, file]),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (parts, calls) = last_generate_parts(&mock);
    assert_eq!(
        parts,
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": file}}
        ])
    );

    for (url, why) in [
        (format!("{images}/gone.png"), "HTTP 404"),
        (format!("{images}/page"), "text/html"),
    ] {
        let request = with_images("gemini-flash", &[&url]);
        assert_image_refused(&gateway, &request, &url, why, "GeminiException").await;
    }
    assert_eq!(last_generate_parts(&mock).1, calls);
}

/// Vertex AI reads typed `https://` URLs itself; a plain `http://` one is downloaded and sent
/// inline, as LiteLLM does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vertex_gets_plain_http_images_inline_and_https_ones_by_uri() {
    let mock = start_mock().await;
    let (gateway, _home) = vertex_on_the_metadata_server(&mock);
    let images = serve_images().await;
    let cat = format!("{images}/cat.png");
    let web = "https://example.com/photos/dog.webp";
    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &with_images("vertex-flash", &[&cat, web]),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        last_generate_parts(&mock).0,
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
            {"fileData": {"mimeType": "image/webp", "fileUri": web}}
        ])
    );
}
