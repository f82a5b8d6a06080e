//! Ollama deployments (`ollama_chat/` on `/api/chat`, `ollama/` on `/api/generate`,
//! embeddings on `/api/embed`) through the real gateway, against a mock of Ollama's native API
//! that refuses bodies of the wrong shape the way Ollama does (`{"error": ".."}`, 400).

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_tests::sse::stream_text;
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{
    assert_error, assert_image_refused, chunks, header, open_stream, read_stream, send_json,
    serve_raw, ExpectedError, RawRequest,
};

fn ollama_error(status: u16, message: &str) -> (u16, &'static str, String) {
    (
        status,
        "application/json; charset=utf-8",
        json!({ "error": message }).to_string(),
    )
}

/// What is wrong with a chat message, if anything (Ollama's `api.Message`).
fn message_problem(message: &Value) -> Option<String> {
    let role = message["role"].as_str()?;
    if !matches!(role, "system" | "user" | "assistant" | "tool") {
        return Some(format!("invalid role {role:?}"));
    }
    if !message["content"].is_string() {
        return Some(
            "json: cannot unmarshal into Go struct field Message.content of type string".into(),
        );
    }
    for image in message["images"].as_array().into_iter().flatten() {
        let text = image.as_str().unwrap_or_default();
        if text.starts_with("data:") || text.starts_with("http") {
            return Some("illegal base64 data in images".into());
        }
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        if !call["function"]["arguments"].is_object() {
            return Some("tool call arguments must be an object".into());
        }
    }
    None
}

/// The mock's answer: shape checks first (400), then the model and the prompt pick the reply.
fn answer(request: &RawRequest) -> (u16, &'static str, String) {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return ollama_error(400, "invalid character in JSON body");
    };
    let Some(model) = body["model"].as_str() else {
        return ollama_error(400, "model is required");
    };
    if !body["options"].is_object() && !body["options"].is_null() {
        return ollama_error(400, "options must be an object");
    }
    if model == "missing" {
        return ollama_error(404, "model \"missing\" not found, try pulling it first");
    }
    let stream = body["stream"].as_bool().unwrap_or(true);
    let ndjson = |lines: Vec<Value>| {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        (200, "application/x-ndjson", text)
    };
    let done = |extra: Value| {
        let mut line = json!({"model": model, "created_at": "2025-06-01T10:00:00Z", "done": true,
            "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 5});
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            line[key] = value;
        }
        line
    };
    match request.target.as_str() {
        "/api/chat" => {
            let Some(messages) = body["messages"].as_array() else {
                return ollama_error(400, "messages is required");
            };
            if body.get("prompt").is_some() {
                return ollama_error(400, "unexpected field prompt");
            }
            if let Some(problem) = messages.iter().find_map(message_problem) {
                return ollama_error(400, &problem);
            }
            let last = messages
                .last()
                .map_or("", |m| m["content"].as_str().unwrap_or(""));
            match last {
                "crash" => {
                    return ollama_error(500, "llama runner process has terminated: exit status 2")
                }
                "too long" => {
                    return ollama_error(400, "the input length exceeds the context length")
                }
                _ => {}
            }
            let wants_tools = body["tools"]
                .as_array()
                .is_some_and(|tools| !tools.is_empty());
            let call = json!([{"function": {"name": "wave", "arguments": {"times": 2}}}]);
            if stream {
                let piece = |text: &str| {
                    json!({"model": model, "created_at": "2025-06-01T10:00:00Z",
                    "message": {"role": "assistant", "content": text}, "done": false})
                };
                let mut lines = vec![piece("Hel"), piece("lo!")];
                if wants_tools {
                    lines.push(json!({"model": model, "created_at": "2025-06-01T10:00:00Z",
                        "message": {"role": "assistant", "content": "", "tool_calls": call}, "done": false}));
                }
                lines.push(done(
                    json!({"message": {"role": "assistant", "content": ""}}),
                ));
                ndjson(lines)
            } else {
                let mut message =
                    json!({"role": "assistant", "content": format!("Hello from {model}")});
                if wants_tools {
                    message["tool_calls"] = call;
                }
                (
                    200,
                    "application/json; charset=utf-8",
                    done(json!({ "message": message })).to_string(),
                )
            }
        }
        "/api/generate" => {
            let Some(prompt) = body["prompt"].as_str() else {
                return ollama_error(400, "prompt is required");
            };
            if body.get("messages").is_some() || body.get("tools").is_some() {
                return ollama_error(400, "unexpected field for /api/generate");
            }
            let reply = format!("generated for {} prompt bytes", prompt.len());
            if stream {
                ndjson(vec![
                    json!({"model": model, "created_at": "2025-06-01T10:00:00Z", "response": reply, "done": false}),
                    done(json!({"response": "", "context": [1, 2]})),
                ])
            } else {
                (
                    200,
                    "application/json; charset=utf-8",
                    done(json!({ "response": reply })).to_string(),
                )
            }
        }
        "/api/embed" => {
            let Some(inputs) = body["input"].as_array() else {
                return ollama_error(400, "input must be a list of strings");
            };
            let embeddings: Vec<Value> = (0..inputs.len()).map(|i| json!([i, 0.5])).collect();
            let reply = json!({"model": model, "embeddings": embeddings, "prompt_eval_count": 6});
            (200, "application/json; charset=utf-8", reply.to_string())
        }
        _ => (404, "text/plain", "404 page not found".to_owned()),
    }
}

struct Mock {
    base: String,
    seen: Arc<Mutex<Vec<RawRequest>>>,
}

impl Mock {
    fn last_body(&self) -> (String, Value) {
        let seen = self.seen.lock().unwrap();
        let last = seen.last().expect("the mock saw a request");
        (
            last.target.clone(),
            serde_json::from_slice(&last.body).unwrap(),
        )
    }
}

async fn start_mock() -> Mock {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let base = serve_raw(move |request: &RawRequest| {
        log.lock().unwrap().push(request.clone());
        answer(request)
    })
    .await;
    Mock { base, seen }
}

fn gateway(mock: &Mock) -> Gateway {
    Gateway::start(&format!(
        r#"
model_list:
  - model_name: local-chat
    litellm_params:
      model: ollama_chat/llama3.1
      api_base: {base}
  - model_name: local-generate
    litellm_params:
      model: ollama/llama3.1
      api_base: {base}
  - model_name: local-embed
    litellm_params:
      model: ollama/all-minilm
      api_base: {base}
    model_info:
      mode: embedding
  - model_name: local-missing
    litellm_params:
      model: ollama_chat/missing
      api_base: {base}
  - model_name: local-backup
    litellm_params:
      model: ollama_chat/qwen3
      api_base: {base}
router_settings:
  num_retries: 0
  disable_cooldowns: true
  fallbacks: [{{local-missing: [local-backup]}}]
general_settings:
  master_key: {MASTER_KEY}
"#,
        base = mock.base
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_chat_tools_stream_and_generate_through_the_gateway() {
    let mock = start_mock().await;
    let gateway = gateway(&mock);

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "local-chat", "max_tokens": 20, "temperature": 0.1,
                "messages": [{"role": "system", "content": "Be kind."},
                             {"role": "user", "content": [{"type": "text", "text": "Look"},
                                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]}],
                "tools": [{"type": "function", "function": {"name": "wave", "parameters": {"type": "object"}}}]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hello from llama3.1"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let call = &reply["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], "{\"times\":2}");
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16})
    );
    let (path, sent) = mock.last_body();
    assert_eq!(path, "/api/chat");
    assert_eq!(
        sent["options"],
        json!({"num_predict": 20, "temperature": 0.1})
    );
    assert_eq!(sent["messages"][1]["images"], json!(["iVBORw0K"]));
    assert_eq!(sent["stream"], false);

    // A tool result goes back with its arguments as an object and the tool's name.
    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "local-chat", "messages": [
            {"role": "user", "content": "Wave"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "wave", "arguments": "{\"times\":2}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "waved"}]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (_, sent) = mock.last_body();
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!({"times": 2})
    );
    assert_eq!(sent["messages"][2]["tool_name"], "wave");

    let reader = open_stream(
        &gateway,
        "/v1/chat/completions",
        &json!({"model": "local-chat", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "Hi"}],
                "tools": [{"type": "function", "function": {"name": "wave"}}]}),
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
    assert!(chunks
        .iter()
        .any(|chunk| chunk["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 16);
    assert_eq!(mock.last_body().1["stream"], true);

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "local-generate", "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi"}]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (path, sent) = mock.last_body();
    assert_eq!(path, "/api/generate");
    assert_eq!(sent["prompt"], "### System:\nSys\n\n### User:\nHi\n\n");
    assert_eq!(sent["format"], "json");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "generated for 31 prompt bytes"
    );

    let reader = open_stream(
        &gateway,
        "/v1/chat/completions",
        &json!({"model": "local-generate", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let frames = read_stream(reader).await;
    assert_eq!(stream_text(&frames), "generated for 14 prompt bytes");

    let (status, _, reply) = send_json(gateway.post(
        "/v1/embeddings",
        &json!({"model": "local-embed", "input": ["a", "b", "c"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"][2]["embedding"], json!([2, 0.5]));
    assert_eq!(reply["usage"]["prompt_tokens"], 6);
    assert_eq!(
        mock.last_body(),
        (
            "/api/embed".to_owned(),
            json!({"model": "all-minilm", "input": ["a", "b", "c"]})
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_errors_map_to_openai_errors_and_fall_back() {
    let mock = start_mock().await;
    let gateway = gateway(&mock);
    let chat = |model: &str, content: &str| json!({"model": model, "messages": [{"role": "user", "content": content}]});

    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat("local-chat", "crash"))).await;
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 500,
            kind: "internal_server_error",
            param: None,
            message_prefix: "litellm.InternalServerError: Ollama_chatException - llama runner process has terminated",
        },
    );

    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat("local-chat", "too long"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("litellm.ContextWindowExceededError: Ollama_chatException - "));

    // Parameters Ollama has no equivalent for are refused by name, before any upstream call.
    let before = mock.seen.lock().unwrap().len();
    let mut body = chat("local-chat", "Hi");
    body["logit_bias"] = json!({"50256": -100});
    let (status, _, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("logit_bias"),
        "{reply}"
    );
    assert_eq!(mock.seen.lock().unwrap().len(), before);

    // A model that is not pulled (404) falls back to the backup group.
    let (status, headers, reply) =
        send_json(gateway.post("/v1/chat/completions", &chat("local-missing", "Hi"))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hello from qwen3"
    );
    assert_eq!(header(&headers, "x-litellm-attempted-fallbacks"), "1");
}

/// Bytes standing in for an image (the mock does not decode it; Ollama would), and their
/// standard base64.
const PICTURE: &str = "GIF89a\u{1}\u{0}\u{1}\u{0} pretend pixels";
const PICTURE_BASE64: &str = "R0lGODlhAQABACBwcmV0ZW5kIHBpeGVscw==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_image_urls_are_downloaded_and_sent_inline() {
    let mock = start_mock().await;
    let gateway = gateway(&mock);
    let images = serve_raw(|request: &RawRequest| match request.target.as_str() {
        "/cat.gif" => (200, "image/gif", PICTURE.to_owned()),
        "/page" => (200, "text/html; charset=utf-8", "<html></html>".to_owned()),
        _ => (404, "text/plain", "not found".to_owned()),
    })
    .await;
    let with_image = |model: &str, url: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };

    let cat = format!("{images}/cat.gif");
    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &with_image("local-chat", &cat))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (path, sent) = mock.last_body();
    assert_eq!(path, "/api/chat");
    assert_eq!(sent["messages"][0]["images"], json!([PICTURE_BASE64]));
    assert_eq!(sent["messages"][0]["content"], "What is this?");

    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &with_image("local-generate", &cat))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (path, sent) = mock.last_body();
    assert_eq!(path, "/api/generate");
    assert_eq!(sent["images"], json!([PICTURE_BASE64]));

    // Unusable images are the client's to fix: a 400 naming the URL, and Ollama is not called.
    let before = mock.seen.lock().unwrap().len();
    for (url, why) in [
        (format!("{images}/gone.png"), "HTTP 404"),
        (format!("{images}/page"), "text/html"),
        (
            "ftp://example.com/cat.png".to_owned(),
            "only http and https",
        ),
        // Port 1 on the loopback: nothing listens, the connection is refused at once.
        (
            "http://127.0.0.1:1/cat.png".to_owned(),
            "the download failed",
        ),
    ] {
        let request = with_image("local-chat", &url);
        assert_image_refused(&gateway, &request, &url, why, "Ollama_chatException").await;
    }
    assert_eq!(mock.seen.lock().unwrap().len(), before);
}
