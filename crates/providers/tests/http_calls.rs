//! The shared upstream call ([`HttpClient::post`], [`read_body`], [`read_json`]) against a
//! tiny local server: what comes back for 2xx, non-2xx and silent answers, and when.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use switchyard_llm_types::ErrorClass;
use switchyard_providers::http::{
    check_stream_content_type, insert_extra_headers, read_body, read_json, upstream_error,
    with_call_headers, ErrorClassifier,
};
use switchyard_providers::{HttpClient, ProviderError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every connection with `head` (status line and headers), then `body`, then
/// keeps the connection open without sending more.
async fn serve(head: &'static str, body: &'static str) -> reqwest::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let answer = format!("{head}\r\n\r\n{body}");
                let _ = socket.write_all(answer.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    reqwest::Url::parse(&format!("http://{address}/v1/x")).unwrap()
}

fn teapot(provider: &'static str, status: u16, _: &HeaderMap, body: &[u8]) -> ProviderError {
    ProviderError::InvalidResponse {
        provider,
        message: format!("classified {status}: {}", String::from_utf8_lossy(body)),
    }
}

async fn post(
    url: reqwest::Url,
    wait: Duration,
    classify: ErrorClassifier,
) -> Result<reqwest::Response, ProviderError> {
    let client = HttpClient::new().unwrap();
    client
        .post(
            "Test",
            url,
            HeaderMap::new(),
            b"{}".to_vec(),
            wait,
            classify,
        )
        .await
}

#[tokio::test]
async fn a_2xx_answer_comes_back_before_its_body_and_the_body_has_a_deadline() {
    // Headers promise a chunked body that never arrives: a stream that stalls.
    let url = serve("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked", "").await;
    let started = tokio::time::Instant::now();
    let response = post(url, Duration::from_secs(5), upstream_error)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = read_body("Test", response, started, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{error:?}"
    );
}

#[tokio::test]
async fn non_2xx_answers_go_through_the_adapters_classifier() {
    let url = serve("HTTP/1.1 418 I'm a teapot\r\ncontent-length: 5", "short").await;
    let error = post(url, Duration::from_secs(5), teapot).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        ProviderError::InvalidResponse {
            provider: "Test",
            message: "classified 418: short".to_owned(),
        }
        .to_string()
    );
}

#[tokio::test]
async fn retry_after_reaches_the_error_and_a_missing_error_body_leaves_the_status() {
    // The body is announced but never sent: the status and headers still speak.
    let url = serve(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 100",
        "",
    )
    .await;
    let error = post(url, Duration::from_millis(500), upstream_error)
        .await
        .unwrap_err();
    assert_eq!(error.status(), 429);
    assert_eq!(error.retry_after_secs(), Some(7));
    assert!(error.to_string().contains("empty body"), "{error}");
}

#[tokio::test]
async fn headers_that_do_not_come_in_time_are_a_timeout_and_bad_json_is_invalid() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent =
        reqwest::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let wait = Duration::from_millis(200);
    let error = post(silent, wait, upstream_error).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Timeout { after, .. } if after == wait),
        "{error:?}"
    );
    drop(listener);

    let url = serve("HTTP/1.1 200 OK\r\ncontent-length: 8", "not json").await;
    let started = tokio::time::Instant::now();
    let response = post(url, Duration::from_secs(5), upstream_error)
        .await
        .unwrap();
    let error = read_json::<Value>("Test", response, started, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::InvalidResponse { .. }),
        "{error:?}"
    );
}

#[test]
fn stream_content_types() {
    let mut headers = HeaderMap::new();
    assert!(check_stream_content_type("Test", &headers, &["text/event-stream"], "x").is_ok());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    assert!(check_stream_content_type("Test", &headers, &["text/event-stream"], "x").is_ok());
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let error = check_stream_content_type(
        "Test",
        &headers,
        &["text/event-stream"],
        "text/event-stream",
    )
    .unwrap_err();
    assert!(
        error.to_string().ends_with(
            "a stream was requested but the upstream answered \"application/json\", not \
         text/event-stream"
        ),
        "{error}"
    );
    assert!(check_stream_content_type("Test", &headers, &["json"], "x").is_ok());
}

#[test]
fn call_headers_win_and_extra_headers_are_checked() {
    let mut base = HeaderMap::new();
    base.insert("x-a", HeaderValue::from_static("deployment"));
    base.insert("x-b", HeaderValue::from_static("deployment"));
    let mut call = HeaderMap::new();
    call.insert("x-a", HeaderValue::from_static("call"));
    let merged = with_call_headers(base, &call);
    assert_eq!(
        (merged["x-a"].as_bytes(), merged["x-b"].as_bytes()),
        (&b"call"[..], &b"deployment"[..])
    );

    let mut headers = HeaderMap::new();
    let extra = BTreeMap::from([("x-c".to_owned(), "1".to_owned())]);
    insert_extra_headers(&mut headers, &extra).unwrap();
    assert_eq!(headers["x-c"], "1");
    let bad = BTreeMap::from([("bad name".to_owned(), "1".to_owned())]);
    assert!(insert_extra_headers(&mut headers, &bad)
        .unwrap_err()
        .contains("invalid header name"));
}
