//! Bedrock deployments through the real gateway, against a local mock of the Bedrock runtime
//! that verifies every request's SigV4 signature (by signing the received request again with
//! the known secret and comparing) and answers Converse and ConverseStream (real
//! event-stream frames), and an STS endpoint that checks the signature of `AssumeRole` calls
//! (and that `AssumeRoleWithWebIdentity` calls are unsigned and carry the expected token) and
//! issues temporary credentials the runtime mock then accepts; likewise a container
//! credentials endpoint (which checks the `Authorization` header) and an EC2 instance metadata
//! service (IMDSv2: nothing without a session token obtained by `PUT`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchyard_providers::bedrock::aws_time::{format_rfc3339, parse_amz_date};
use switchyard_providers::bedrock::sigv4::{signature_headers_for, AwsCredentials};
use switchyard_providers::bedrock::stream::frames::event;
use switchyard_tests::sse::stream_text;
use switchyard_tests::{Gateway, MASTER_KEY};

use crate::common::{
    assert_error, assert_image_refused, chunks, open_stream, read_stream, send_json, serve_images,
    serve_raw_with, ExpectedError, RawReply, RawRequest, PNG_BASE64,
};

const KEY_ID: &str = "AKIDE2ESWITCHYARD";
const SECRET: &str = "e2e/secret/for/the/mock";
const REGION: &str = "us-west-2";
/// What the STS mock hands out for [`ROLE_ARN`].
const TEMP_KEY_ID: &str = "ASIAE2ETEMPORARY";
const TEMP_SECRET: &str = "temporary/secret";
const TEMP_TOKEN: &str = "FwoGZXIvYXdzE+e2e/session==";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/switchyard-e2e";
const SESSION_NAME: &str = "e2e-session";
/// What the container endpoint and the instance metadata service hand out.
const SERVED_KEY_ID: &str = "ASIAE2ESERVED";
const SERVED_SECRET: &str = "served/e2e+secret";
const SERVED_TOKEN: &str = "IQoJe2e/served+session==";
/// The `Authorization` the container endpoint expects.
const CONTAINER_TOKEN: &str = "e2e-pod-identity-token";
const IMDS_SESSION_TOKEN: &str = "e2e-imds-session-token";
/// The web identity token the STS mock accepts (for [`ROLE_ARN`], as [`SESSION_NAME`]).
const OIDC_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZTJlIn0.c2ln";

/// The mock's state: STS calls answered (`AssumeRole`, `AssumeRoleWithWebIdentity`),
/// credentials served (container endpoint, instance metadata), and the key id that signed each
/// runtime call.
#[derive(Clone, Default)]
struct Seen {
    sts_calls: Arc<AtomicUsize>,
    web_identity_calls: Arc<AtomicUsize>,
    container_fetches: Arc<AtomicUsize>,
    imds_fetches: Arc<AtomicUsize>,
    runtime_signers: Arc<Mutex<Vec<String>>>,
}

/// The access key id and service of a SigV4 `Authorization` header's credential scope.
fn credential_scope(authorization: &str) -> Option<(&str, &str)> {
    let scope = authorization
        .split("Credential=")
        .nth(1)?
        .split(',')
        .next()?;
    let mut parts = scope.split('/');
    let key_id = parts.next()?;
    let service = parts.nth(2)?;
    Some((key_id, service))
}

/// Signs the received request again with the secret the mock knows for its key id (and, for
/// temporary credentials, the session token it issued) and compares.
fn signature_is_valid(request: &RawRequest) -> bool {
    let (Some(authorization), Some(time)) = (
        request.headers.get("authorization"),
        request
            .headers
            .get("x-amz-date")
            .and_then(|date| parse_amz_date(date)),
    ) else {
        return false;
    };
    let Some((key_id, service)) = credential_scope(authorization) else {
        return false;
    };
    let (secret, session_token) = match key_id {
        KEY_ID => (SECRET, None),
        TEMP_KEY_ID => (TEMP_SECRET, Some(TEMP_TOKEN)),
        SERVED_KEY_ID => (SERVED_SECRET, Some(SERVED_TOKEN)),
        _ => return false,
    };
    if request
        .headers
        .get("x-amz-security-token")
        .map(String::as_str)
        != session_token
    {
        return false;
    }
    let signed: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(|names| names.split(';').collect())
        .unwrap_or_default();
    let covered: Vec<(&str, &str)> = signed
        .iter()
        .filter(|name| !matches!(**name, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|name| {
            request
                .headers
                .get(*name)
                .map(|value| (*name, value.as_str()))
        })
        .collect();
    let credentials = AwsCredentials {
        access_key_id: key_id.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: session_token.map(str::to_owned),
    };
    let uri = format!("http://{}{}", request.headers["host"], request.target);
    signature_headers_for(
        service,
        &credentials,
        REGION,
        &request.method,
        &uri,
        &covered,
        &request.body,
        time,
    )
    .is_ok_and(|expected| {
        expected
            .iter()
            .any(|(name, value)| name == "authorization" && value == authorization)
    })
}

fn xml(status: u16, body: String) -> RawReply {
    RawReply::new(status, "text/xml", body)
}

/// STS `AssumeRoleWithWebIdentity`: an unsigned call with the expected role, session name and
/// token gets the temporary credentials.
fn assume_role_with_web_identity(request: &RawRequest, seen: &Seen) -> RawReply {
    let form = String::from_utf8_lossy(&request.body).into_owned();
    let expected = format!("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fswitchyard-e2e&RoleSessionName=e2e-session&DurationSeconds=3600&WebIdentityToken={OIDC_TOKEN}");
    if request.headers.contains_key("authorization") || form != expected {
        return xml(400, format!("<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>unexpected call {form}</Message></Error></ErrorResponse>"));
    }
    seen.web_identity_calls.fetch_add(1, Ordering::SeqCst);
    temporary_credentials("AssumeRoleWithWebIdentity")
}

/// STS `AssumeRole` (query API): a valid `sts` signature by the base key and the expected role
/// and session name get temporary credentials.
fn assume_role(request: &RawRequest, seen: &Seen) -> RawReply {
    let signed_for_sts = request
        .headers
        .get("authorization")
        .and_then(|authorization| credential_scope(authorization))
        == Some((KEY_ID, "sts"));
    if !signed_for_sts || !signature_is_valid(request) {
        return xml(403, "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error></ErrorResponse>".to_owned());
    }
    let form = String::from_utf8_lossy(&request.body).into_owned();
    let expected = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fswitchyard-e2e&RoleSessionName=e2e-session&DurationSeconds=3600";
    if form != expected {
        return xml(400, format!("<ErrorResponse><Error><Code>ValidationError</Code><Message>unexpected form {form}</Message></Error></ErrorResponse>"));
    }
    seen.sts_calls.fetch_add(1, Ordering::SeqCst);
    temporary_credentials("AssumeRole")
}

/// The `{action}Response` that issues the temporary credentials, valid for an hour.
fn temporary_credentials(action: &str) -> RawReply {
    let expiration = format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    xml(
        200,
        format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
             <AssumedRoleUser><Arn>{ROLE_ARN}/{SESSION_NAME}</Arn><AssumedRoleId>AROA:{SESSION_NAME}</AssumedRoleId></AssumedRoleUser>\
             <Credentials><AccessKeyId>{TEMP_KEY_ID}</AccessKeyId><SecretAccessKey>{TEMP_SECRET}</SecretAccessKey>\
             <SessionToken>{TEMP_TOKEN}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
             </{action}Result></{action}Response>"
        ),
    )
}

/// The JSON the container endpoint and IMDS answer, valid for an hour.
fn served_credentials() -> RawReply {
    let expiration = format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    let body = json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": SERVED_KEY_ID,
        "SecretAccessKey": SERVED_SECRET,
        "Token": SERVED_TOKEN,
        "Expiration": expiration,
    });
    RawReply::new(200, "application/json", body.to_string())
}

/// The container credentials endpoint at `/container-credentials`: only with the expected
/// `Authorization`.
fn container_credentials(request: &RawRequest, seen: &Seen) -> RawReply {
    if request.headers.get("authorization").map(String::as_str) != Some(CONTAINER_TOKEN) {
        let refusal = json!({"code": "AccessDenied", "message": "bad authorization token"});
        return RawReply::new(401, "application/json", refusal.to_string());
    }
    seen.container_fetches.fetch_add(1, Ordering::SeqCst);
    served_credentials()
}

/// IMDSv2 under `/latest/`: a session token for a `PUT` with a lifetime; every read without
/// it refused; the instance profile's role is `e2e-instance-role`.
fn instance_metadata(request: &RawRequest, seen: &Seen) -> RawReply {
    let text = |status: u16, body: &str| RawReply::new(status, "text/plain", body.to_owned());
    if request.target == "/latest/api/token" {
        let asks_lifetime = request
            .headers
            .contains_key("x-aws-ec2-metadata-token-ttl-seconds");
        return if request.method == "PUT" && asks_lifetime {
            text(200, IMDS_SESSION_TOKEN)
        } else {
            text(400, "Bad Request")
        };
    }
    if request
        .headers
        .get("x-aws-ec2-metadata-token")
        .map(String::as_str)
        != Some(IMDS_SESSION_TOKEN)
    {
        return text(401, "Unauthorized");
    }
    match request.target.as_str() {
        "/latest/meta-data/iam/security-credentials/" => text(200, "e2e-instance-role"),
        "/latest/meta-data/iam/security-credentials/e2e-instance-role" => {
            seen.imds_fetches.fetch_add(1, Ordering::SeqCst);
            served_credentials()
        }
        _ => text(404, "Not Found"),
    }
}

fn answer(request: &RawRequest, seen: &Seen) -> RawReply {
    if request.target == "/container-credentials" {
        return container_credentials(request, seen);
    }
    if request.target.starts_with("/latest/") {
        return instance_metadata(request, seen);
    }
    if request.method == "POST" && request.target == "/" {
        return if request
            .body
            .starts_with(b"Action=AssumeRoleWithWebIdentity&")
        {
            assume_role_with_web_identity(request, seen)
        } else {
            assume_role(request, seen)
        };
    }
    let json_reply = |status: u16, error_type: Option<&str>, body: Value| {
        let mut reply = RawReply::new(status, "application/json", body.to_string());
        if let Some(error_type) = error_type {
            reply.headers.push((
                "x-amzn-errortype",
                format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ));
        }
        reply
    };
    if !signature_is_valid(request) {
        return json_reply(
            403,
            Some("InvalidSignatureException"),
            json!({"message": "The request signature we calculated does not match the signature you provided."}),
        );
    }
    if let Some((key_id, _)) = request
        .headers
        .get("authorization")
        .and_then(|authorization| credential_scope(authorization))
    {
        seen.runtime_signers.lock().unwrap().push(key_id.to_owned());
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    if body.pointer("/messages/0/content/0/text") == Some(&json!("too long")) {
        return json_reply(
            400,
            Some("ValidationException"),
            json!({"message": "Input is too long for requested model."}),
        );
    }
    let model = "/model/amazon.nova-lite-v1%3A0";
    match request.target.strip_prefix(model) {
        Some("/converse") => json_reply(
            200,
            None,
            json!({
                "output": {"message": {"role": "assistant", "content": [{"text": "Hallo from Bedrock"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13},
                "metrics": {"latencyMs": 10}
            }),
        ),
        Some("/converse-stream") => {
            let frames = [
                event("messageStart", r#"{"role":"assistant"}"#),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hal"}}"#),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"lo"}}"#),
                event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
                event("messageStop", r#"{"stopReason":"max_tokens"}"#),
                event(
                    "metadata",
                    r#"{"usage":{"inputTokens":9,"outputTokens":2,"totalTokens":31,"cacheReadInputTokens":20},"metrics":{"latencyMs":10}}"#,
                ),
            ]
            .concat();
            RawReply::new(200, "application/vnd.amazon.eventstream", frames)
        }
        _ => json_reply(
            404,
            Some("ResourceNotFoundException"),
            json!({"message": "unknown model"}),
        ),
    }
}

async fn start_mock() -> (String, Seen) {
    let seen = Seen::default();
    let state = seen.clone();
    let base = serve_raw_with(move |request: &RawRequest| answer(request, &state)).await;
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_calls_are_signed_and_translated_through_the_gateway() {
    let (base, _) = start_mock().await;
    let gateway = signed_gateway(&base);

    let (status, _, reply) = say_hi(&gateway, "nova").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "Hallo from Bedrock"
    );
    assert_eq!(reply["usage"]["total_tokens"], 13);

    let reader = open_stream(
        &gateway,
        "/v1/chat/completions",
        &json!({"model": "nova", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let frames = read_stream(reader).await;
    assert_eq!(stream_text(&frames), "Hallo");
    let chunks = chunks(&frames);
    assert!(chunks
        .iter()
        .any(|chunk| chunk["choices"][0]["finish_reason"] == "length"));
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 20,
        "{usage}"
    );

    let (status, _, reply) = send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": "nova", "messages": [{"role": "user", "content": "too long"}]}),
    ))
    .await;
    assert_error(
        status,
        &reply,
        &ExpectedError {
            status: 400,
            kind: "invalid_request_error",
            param: None,
            message_prefix:
                "litellm.ContextWindowExceededError: BedrockException - Input is too long",
        },
    );

    let (status, _, reply) = say_hi(&gateway, "nova-wrong-secret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
}

/// A gateway with `nova` (keys from the standard AWS variables) and `nova-wrong-secret`
/// deployments of the mock at `base`.
fn signed_gateway(base: &str) -> Gateway {
    Gateway::start_with(
        &format!(
            r#"
model_list:
  - model_name: nova
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
  - model_name: nova-wrong-secret
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_access_key_id: {KEY_ID}
      aws_secret_access_key: not-the-secret
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
        ),
        &[],
        // The first deployment takes its credentials from the standard AWS variables.
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
}

/// A one-message chat with `model`: status, headers, body.
async fn say_hi(gateway: &Gateway, model: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    send_json(gateway.post(
        "/v1/chat/completions",
        &json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}),
    ))
    .await
}

fn chat_ok(reply: &Value) {
    assert_eq!(
        reply["choices"][0]["message"]["content"], "Hallo from Bedrock",
        "{reply}"
    );
}

/// `aws_profile_name` (and `AWS_PROFILE`) read keys from the shared credentials file named by
/// `AWS_SHARED_CREDENTIALS_FILE`; the mock accepts only the right profile's signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_credentials_come_from_a_named_profile() {
    let (base, seen) = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = AKIDWRONGDEFAULT\naws_secret_access_key = wrong\n\n\
             [e2e]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let gateway = Gateway::start_with(
        &format!(
            r#"
model_list:
  - model_name: nova-profile
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_profile_name: e2e
  - model_name: nova-env-profile
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
  - model_name: nova-default-profile
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_profile_name: default
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
        ),
        &[],
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", &file),
            ("AWS_PROFILE", "e2e"),
        ],
    );
    for model in ["nova-profile", "nova-env-profile"] {
        let (status, _, reply) = say_hi(&gateway, model).await;
        assert_eq!(status, StatusCode::OK, "{model}: {reply}");
        chat_ok(&reply);
    }
    let (status, _, reply) = say_hi(&gateway, "nova-default-profile").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert_eq!(seen.sts_calls.load(Ordering::SeqCst), 0);
}

/// `aws_role_name` + `aws_session_name`: the base keys sign one STS `AssumeRole` call (to
/// `aws_sts_endpoint`), and every Bedrock call, concurrent ones included, is signed with the
/// temporary credentials, which are reused until they near their expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_assumes_a_role_once_and_signs_with_its_credentials() {
    let (base, seen) = start_mock().await;
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: nova-role
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_access_key_id: {KEY_ID}
      aws_secret_access_key: {SECRET}
      aws_role_name: {ROLE_ARN}
      aws_session_name: {SESSION_NAME}
      aws_sts_endpoint: {base}
  - model_name: nova-role-bad-base
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_access_key_id: {KEY_ID}
      aws_secret_access_key: not-the-secret
      aws_role_name: {ROLE_ARN}
      aws_session_name: {SESSION_NAME}
      aws_sts_endpoint: {base}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
    ));
    let body = json!({"model": "nova-role", "messages": [{"role": "user", "content": "Hi"}]});
    let calls = (0..4).map(|_| send_json(gateway.post("/v1/chat/completions", &body)));
    for (status, _, reply) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{reply}");
        chat_ok(&reply);
    }
    let (status, _, reply) = send_json(gateway.post("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(seen.sts_calls.load(Ordering::SeqCst), 1, "one AssumeRole");
    let signers = seen.runtime_signers.lock().unwrap().clone();
    assert_eq!(signers.len(), 5);
    assert!(signers.iter().all(|key| key == TEMP_KEY_ID), "{signers:?}");

    // STS refuses a badly signed AssumeRole: an authentication error, no Bedrock call.
    let (status, _, reply) = say_hi(&gateway, "nova-role-bad-base").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AssumeRole"),
        "{reply}"
    );
    assert_eq!(seen.runtime_signers.lock().unwrap().len(), 5);
}

/// Web identity, both ways: `aws_web_identity_token` (here through `os.environ/`) with
/// `aws_role_name`, and EKS's `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`. Each is exchanged
/// once, unsigned, at STS; the temporary credentials sign the Bedrock calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_exchanges_a_web_identity_token_for_the_role() {
    let (base, seen) = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, OIDC_TOKEN).unwrap();
    let token_file = token_file.display().to_string();
    let gateway = Gateway::start_with(
        &format!(
            r#"
model_list:
  - model_name: nova-web-identity
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
      aws_web_identity_token: os.environ/E2E_OIDC_TOKEN
      aws_role_name: {ROLE_ARN}
      aws_session_name: {SESSION_NAME}
      aws_sts_endpoint: {base}
  - model_name: nova-irsa
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
        ),
        &[],
        &[
            ("E2E_OIDC_TOKEN", OIDC_TOKEN),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file),
            ("AWS_ROLE_ARN", ROLE_ARN),
            ("AWS_ROLE_SESSION_NAME", SESSION_NAME),
            ("AWS_STS_ENDPOINT", &base),
        ],
    );
    for model in ["nova-web-identity", "nova-irsa"] {
        for _ in 0..2 {
            let (status, _, reply) = say_hi(&gateway, model).await;
            assert_eq!(status, StatusCode::OK, "{model}: {reply}");
            chat_ok(&reply);
        }
    }
    assert_eq!(
        seen.web_identity_calls.load(Ordering::SeqCst),
        2,
        "one exchange per deployment"
    );
    assert_eq!(seen.sts_calls.load(Ordering::SeqCst), 0);
    let signers = seen.runtime_signers.lock().unwrap().clone();
    assert_eq!(signers, vec![TEMP_KEY_ID; 4]);
    // The token never reaches a client.
    let (_, _, info) = send_json(gateway.get("/model/info")).await;
    assert!(!info.to_string().contains(OIDC_TOKEN), "{info}");
}

/// `times` chats with `nova`, each answered.
async fn say_hi_ok(gateway: &Gateway, times: usize) {
    for _ in 0..times {
        let (status, _, reply) = say_hi(gateway, "nova").await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        chat_ok(&reply);
    }
}

/// No credentials configured anywhere but the environment's HTTP services: first a container
/// endpoint (EKS Pod Identity style, with its token file), which wins over the instance
/// metadata service also offered; then, without it, the instance metadata service (IMDSv2).
/// Either's temporary credentials sign the Bedrock calls, fetched once for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_signs_with_container_or_instance_profile_credentials() {
    let (base, seen) = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, CONTAINER_TOKEN).unwrap();
    let token_file = token_file.display().to_string();
    let container_uri = format!("{base}/container-credentials");
    let config = format!(
        r#"
model_list:
  - model_name: nova
    litellm_params:
      model: bedrock/amazon.nova-lite-v1:0
      api_base: {base}
      aws_region_name: {REGION}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER_KEY}
"#
    );
    // Nothing from a credentials file the machine running the tests may have.
    let no_file = ("AWS_SHARED_CREDENTIALS_FILE", "/no/such/credentials");
    let imds = ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.as_str());
    let in_container = Gateway::start_with(
        &config,
        &[],
        &[
            no_file,
            imds,
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
        ],
    );
    say_hi_ok(&in_container, 3).await;
    assert_eq!(seen.container_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(seen.imds_fetches.load(Ordering::SeqCst), 0);
    drop(in_container);

    let on_ec2 = Gateway::start_with(&config, &[], &[no_file, imds]);
    say_hi_ok(&on_ec2, 3).await;
    assert_eq!(seen.imds_fetches.load(Ordering::SeqCst), 1);
    let signers = seen.runtime_signers.lock().unwrap().clone();
    assert_eq!(signers, vec![SERVED_KEY_ID; 6]);
}

/// Remote image URLs are downloaded by the gateway and sent as Converse image bytes (Converse
/// takes no URLs); an image that cannot be used is a 400 naming it, and Bedrock is not called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_gets_remote_images_as_bytes() {
    let seen = Seen::default();
    let state = seen.clone();
    let converse_bodies = Arc::new(Mutex::new(Vec::<Value>::new()));
    let log = converse_bodies.clone();
    let base = serve_raw_with(move |request: &RawRequest| {
        if request.target.contains("/converse") {
            let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            log.lock().unwrap().push(body);
        }
        answer(request, &state)
    })
    .await;
    let images = serve_images().await;
    let gateway = signed_gateway(&base);
    let with_image = |url: &str, stream: bool| {
        json!({"model": "nova", "stream": stream, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    let expected_content = json!([
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG_BASE64}}}
    ]);

    let cat = format!("{images}/cat.png");
    let (status, _, reply) =
        send_json(gateway.post("/v1/chat/completions", &with_image(&cat, false))).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    chat_ok(&reply);
    let sent = converse_bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["messages"][0]["content"], expected_content);

    let reader = open_stream(&gateway, "/v1/chat/completions", &with_image(&cat, true)).await;
    assert_eq!(stream_text(&read_stream(reader).await), "Hallo");
    let sent = converse_bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["messages"][0]["content"], expected_content);

    let calls_before = converse_bodies.lock().unwrap().len();
    for (url, why) in [
        (format!("{images}/gone.png"), "HTTP 404"),
        (format!("{images}/page"), "text/html"),
        (format!("{images}/cat.bmp"), "image/bmp"),
    ] {
        let request = with_image(&url, false);
        assert_image_refused(&gateway, &request, &url, why, "BedrockException").await;
    }
    assert_eq!(converse_bodies.lock().unwrap().len(), calls_before);
}
