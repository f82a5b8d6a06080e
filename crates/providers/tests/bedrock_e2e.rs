//! The Bedrock adapter end to end against a local mock that verifies each request's SigV4
//! signature (by signing the received request again with the known secret and comparing) and
//! answers like Converse, ConverseStream and InvokeModel, and an STS mock that exchanges a web
//! identity token (and, for a role chain, signed `AssumeRole` calls) for temporary credentials,
//! and mocks of the EC2 instance metadata service (IMDSv2: no read without a session token) and
//! of a container credentials endpoint (no answer without the expected `Authorization`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use serde_json::{json, Value};
use support::{serve, Received, Reply};
use switchyard_llm_types::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, ErrorClass, ErrorKind,
};
use switchyard_providers::bedrock::aws_time::{format_rfc3339, parse_amz_date};
use switchyard_providers::bedrock::sigv4::{signature_headers_for, AwsCredentials, SERVICE};
use switchyard_providers::bedrock::stream::frames::{event, exception};
use switchyard_providers::{
    Bedrock, BedrockParams, BedrockTarget, CallOptions, HttpClient, Provider, ProviderError,
};

const KEY_ID: &str = "AKIDSWITCHYARDTEST";
const SECRET: &str = "test/secret+key/for/the/mock/only";
const SESSION: &str = "test-session-token";
const REGION: &str = "eu-central-1";
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

fn keys(access_key_id: &str, secret_access_key: &str, session_token: &str) -> AwsCredentials {
    AwsCredentials {
        access_key_id: access_key_id.to_owned(),
        secret_access_key: secret_access_key.to_owned(),
        session_token: Some(session_token.to_owned()),
    }
}

/// The deployment's own keys, as the mock knows them.
fn static_credentials() -> AwsCredentials {
    keys(KEY_ID, SECRET, SESSION)
}

/// Whether the request carries a valid `service` signature by `expected` (session token
/// included).
fn signature_is_valid(request: &Received, expected: &AwsCredentials, service: &str) -> bool {
    let Some(authorization) = request.headers.get("authorization") else {
        return false;
    };
    let Some(time) = request
        .headers
        .get("x-amz-date")
        .and_then(|date| parse_amz_date(date))
    else {
        return false;
    };
    if request.headers.get("x-amz-security-token") != expected.session_token.as_ref() {
        return false;
    }
    // Sign the received method, path, covered headers and body again.
    let signed_names: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(|names| names.split(';').collect())
        .unwrap_or_default();
    let covered: Vec<(&str, &str)> = signed_names
        .iter()
        .filter(|name| !matches!(**name, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|name| {
            request
                .headers
                .get(*name)
                .map(|value| (*name, value.as_str()))
        })
        .collect();
    let host = request.headers["host"].clone();
    let resigned = signature_headers_for(
        service,
        expected,
        REGION,
        &request.method,
        &format!("http://{host}{}", request.target),
        &covered,
        &request.body,
        time,
    )
    .unwrap();
    resigned
        .iter()
        .any(|(name, value)| name == "authorization" && value == authorization)
}

fn stream_body() -> Vec<u8> {
    [
        event("messageStart", r#"{"role":"assistant"}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Guten"}}"#),
        event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":" Tag"}}"#),
        event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        event(
            "contentBlockStart",
            r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"lookup"}}}"#,
        ),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"q\":1}"}}}"#,
        ),
        event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
        event("messageStop", r#"{"stopReason":"tool_use"}"#),
        event(
            "metadata",
            r#"{"usage":{"inputTokens":11,"outputTokens":4,"totalTokens":15},"metrics":{"latencyMs":100}}"#,
        ),
    ]
    .concat()
}

fn bedrock_upstream(request: &Received) -> Reply {
    bedrock_answer(request, &static_credentials())
}

/// Bedrock's answer to a request that must be signed by `signer`.
fn bedrock_answer(request: &Received, signer: &AwsCredentials) -> Reply {
    if !signature_is_valid(request, signer, SERVICE) {
        let mut reply = Reply::json(
            403,
            &json!({"message": "The request signature we calculated does not match the signature you provided."}),
        );
        reply.headers.push((
            "x-amzn-errortype".into(),
            "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"
                .into(),
        ));
        return reply;
    }
    let encoded_model = "anthropic.claude-3-5-sonnet-20240620-v1%3A0";
    let body = request.json();
    if body.pointer("/inferenceConfig/maxTokens") == Some(&json!(1)) {
        let mut reply = Reply::json(
            429,
            &json!({"message": "Too many requests, please wait before trying again."}),
        );
        reply.headers.push((
            "x-amzn-errortype".into(),
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/".into(),
        ));
        return reply;
    }
    match request.target.as_str() {
        t if t == format!("/model/{encoded_model}/converse") => {
            let mut reply = Reply::json(
                200,
                &json!({
                    "output": {"message": {"role": "assistant", "content": [{"text": "Guten Tag"}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 64,
                              "cacheReadInputTokens": 50},
                    "metrics": {"latencyMs": 90}
                }),
            );
            reply
                .headers
                .push(("x-amzn-requestid".into(), "req-123".into()));
            reply
        }
        t if t == format!("/model/{encoded_model}/converse-stream") => {
            Reply::bytes(200, "application/vnd.amazon.eventstream", stream_body())
        }
        "/model/amazon.titan-embed-text-v2%3A0/invoke" => Reply::json(
            200,
            &json!({"embedding": [body["inputText"].as_str().unwrap().len() as f64],
                    "inputTextTokenCount": 2}),
        ),
        "/model/exploding/converse-stream" => {
            let mut body = event("messageStart", r#"{"role":"assistant"}"#);
            body.extend(exception(
                "validationException",
                "Input is too long for requested model.",
            ));
            Reply::bytes(200, "application/vnd.amazon.eventstream", body)
        }
        other => Reply::json(404, &json!({"message": format!("no route {other}")})),
    }
}

fn provider(base: &str, secret: &str) -> Bedrock {
    let params = BedrockParams {
        api_base: Some(base),
        aws_access_key_id: Some(KEY_ID),
        aws_secret_access_key: Some(secret),
        aws_session_token: Some(SESSION),
        aws_region_name: Some(REGION),
        ..BedrockParams::default()
    };
    let target = BedrockTarget::resolve(params, |_| None).unwrap();
    Bedrock::new(target, HttpClient::new().unwrap()).unwrap()
}

fn chat(model: &str, max_tokens: u64) -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": model,
        "messages": [{"role": "system", "content": "Antworte auf Deutsch."},
                     {"role": "user", "content": "Hello"}],
        "max_tokens": max_tokens,
        "stream_options": {"include_usage": true}
    }))
    .unwrap()
}

#[tokio::test]
async fn signed_converse_call_is_accepted_and_translated() {
    let (base, log) = serve(bedrock_upstream).await;
    let response = provider(&base, SECRET)
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap()
        .body;
    assert_eq!(response.id, "chatcmpl-req-123");
    assert_eq!(response.choices[0].message.text(), "Guten Tag");
    assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
    let usage = response.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.cached_tokens()), (61, 50));
    assert_eq!(
        log.lock().unwrap()[0].json(),
        json!({
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
            "system": [{"text": "Antworte auf Deutsch."}],
            "inferenceConfig": {"maxTokens": 100}
        })
    );
}

#[tokio::test]
async fn a_wrong_secret_fails_the_mock_signature_check() {
    let (base, _log) = serve(bedrock_upstream).await;
    let error = provider(&base, "not-the-secret")
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication);
    assert_eq!(error.status(), 401);
}

#[tokio::test]
async fn converse_stream_frames_become_chunks() {
    let (base, _log) = serve(bedrock_upstream).await;
    let stream = provider(&base, SECRET)
        .chat_stream(&chat(MODEL, 100), &CallOptions::default())
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
    assert_eq!(text, "Guten Tag");
    let call = &chunks[3]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_1");
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(
        chunks[4]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"q\":1}"
    );
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[6]["usage"]["total_tokens"], 15);
}

#[tokio::test]
async fn throttling_and_in_stream_exceptions_are_classified() {
    let (base, _log) = serve(bedrock_upstream).await;
    let bedrock = provider(&base, SECRET);
    let error = bedrock
        .chat(&chat(MODEL, 1), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    let stream = bedrock
        .chat_stream(&chat("exploding", 100), &CallOptions::default())
        .await
        .unwrap()
        .body;
    let items: Vec<_> = stream.collect().await;
    assert!(items[0].is_ok());
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ContextWindowExceeded);
}

#[tokio::test]
async fn titan_embeddings_are_signed_and_kept_in_order() {
    let (base, log) = serve(bedrock_upstream).await;
    let request: EmbeddingRequest = serde_json::from_value(json!({
        "model": "amazon.titan-embed-text-v2:0", "input": ["a", "bbb", "cc"]
    }))
    .unwrap();
    let response = provider(&base, SECRET)
        .embeddings(&request, &CallOptions::default())
        .await
        .unwrap()
        .body;
    let vectors: Vec<&Value> = response.data.iter().map(|item| &item.embedding).collect();
    assert_eq!(vectors, [&json!([1.0]), &json!([3.0]), &json!([2.0])]);
    assert_eq!(response.usage.unwrap().prompt_tokens, 6);
    assert_eq!(log.lock().unwrap().len(), 3);
}

const OIDC_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWk6Z2F0ZXdheSJ9.c2ln";
const IRSA_ROLE: &str = "arn:aws:iam::111122223333:role/irsa-bedrock";
const IRSA_SESSION: &str = "irsa-session";
/// `AssumeRoleWithWebIdentity` of [`IRSA_ROLE`] as [`IRSA_SESSION`] with [`OIDC_TOKEN`],
/// form-encoded and unsigned, exactly as STS must receive it.
const WEB_IDENTITY_FORM: &str = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Firsa-bedrock&RoleSessionName=irsa-session&DurationSeconds=3600&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWk6Z2F0ZXdheSJ9.c2ln";
const CHAINED_ROLE: &str = "arn:aws:iam::444455556666:role/bedrock-invoker";
/// `AssumeRole` of [`CHAINED_ROLE`], which the web identity's credentials must sign.
const CHAINED_FORM: &str = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A444455556666%3Arole%2Fbedrock-invoker&RoleSessionName=chained-session&DurationSeconds=3600";

/// What STS issues for [`IRSA_ROLE`].
fn web_identity_credentials() -> AwsCredentials {
    keys(
        "ASIAWEBIDENTITY",
        "web/identity+secret",
        "IQoJb3JpZ2luX2VjEWebIdentity+token/==",
    )
}

/// What STS issues for [`CHAINED_ROLE`].
fn chained_credentials() -> AwsCredentials {
    keys("ASIACHAINED", "chained/secret", "chained-session-token")
}

/// An STS answer carrying `issued`, valid for an hour; `action` names its elements.
fn sts_credentials(action: &str, issued: &AwsCredentials) -> Reply {
    let expiration = format_rfc3339(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    let xml = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
         </{action}Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>\
         </{action}Response>",
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token.as_deref().unwrap()
    );
    Reply::bytes(200, "text/xml", xml)
}

fn sts_refusal(status: u16, code: &str, message: &str) -> Reply {
    let xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>\
         </Error></ErrorResponse>"
    );
    Reply::bytes(status, "text/xml", xml)
}

/// STS at `/`: the web identity exchange must be unsigned and carry exactly
/// [`WEB_IDENTITY_FORM`]; the chained `AssumeRole` must carry [`CHAINED_FORM`] signed (for
/// `sts`) by the web identity's credentials. Everything else is Bedrock, which must be signed
/// by `bedrock_signer`'s credentials.
fn sts_then_bedrock(bedrock_signer: AwsCredentials) -> impl Fn(&Received) -> Reply {
    move |request: &Received| {
        if request.target != "/" {
            return bedrock_answer(request, &bedrock_signer);
        }
        let form = String::from_utf8_lossy(&request.body);
        if form.starts_with("Action=AssumeRoleWithWebIdentity&") {
            if request.headers.contains_key("authorization") {
                return sts_refusal(400, "InvalidParameterValue", "the call is not signed");
            }
            if form != WEB_IDENTITY_FORM {
                return sts_refusal(
                    400,
                    "InvalidIdentityToken",
                    &format!("unexpected form {form}"),
                );
            }
            return sts_credentials("AssumeRoleWithWebIdentity", &web_identity_credentials());
        }
        if !signature_is_valid(request, &web_identity_credentials(), "sts") {
            return sts_refusal(403, "SignatureDoesNotMatch", "bad signature");
        }
        if form != CHAINED_FORM {
            return sts_refusal(400, "ValidationError", &format!("unexpected form {form}"));
        }
        sts_credentials("AssumeRole", &chained_credentials())
    }
}

/// How many STS calls of each kind the mock answered: (web identity, assume role).
fn sts_calls(log: &support::Log) -> (usize, usize) {
    let log = log.lock().unwrap();
    let action = |prefix: &str| {
        log.iter()
            .filter(|request| request.target == "/" && request.body.starts_with(prefix.as_bytes()))
            .count()
    };
    (
        action("Action=AssumeRoleWithWebIdentity&"),
        action("Action=AssumeRole&"),
    )
}

/// A pod on EKS whose service account is annotated with [`IRSA_ROLE`]: STS and Bedrock mocks
/// (Bedrock calls must be signed by `bedrock_signer`), and the token file EKS projects, not
/// written yet.
struct IrsaPod {
    base: String,
    log: support::Log,
    token_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl IrsaPod {
    async fn start(bedrock_signer: AwsCredentials) -> Self {
        let (base, log) = serve(sts_then_bedrock(bedrock_signer)).await;
        let dir = tempfile::tempdir().unwrap();
        Self {
            base,
            log,
            token_file: dir.path().join("token"),
            _dir: dir,
        }
    }

    /// A deployment with no credentials of its own in the pod's environment, assuming
    /// `role` (as `aws_role_name`) if given.
    fn bedrock(&self, role: Option<&str>, session: Option<&str>) -> Bedrock {
        let params = BedrockParams {
            api_base: Some(&self.base),
            aws_region_name: Some(REGION),
            aws_role_name: role,
            aws_session_name: session,
            ..BedrockParams::default()
        };
        let pairs = [
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                self.token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", IRSA_ROLE.to_owned()),
            ("AWS_ROLE_SESSION_NAME", IRSA_SESSION.to_owned()),
            ("AWS_STS_ENDPOINT", self.base.clone()),
        ];
        let env = move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        };
        bedrock_with(params, env)
    }
}

fn bedrock_with(params: BedrockParams<'_>, env: impl Fn(&str) -> Option<String>) -> Bedrock {
    let target = BedrockTarget::resolve(params, env).unwrap();
    Bedrock::new(target, HttpClient::new().unwrap()).unwrap()
}

/// `count` chats started at once, their outcomes in order.
async fn chats_at_once(
    provider: &Arc<Bedrock>,
    count: usize,
) -> Vec<Result<ChatCompletionResponse, ProviderError>> {
    let calls = (0..count).map(|_| {
        let provider = provider.clone();
        tokio::spawn(async move {
            provider
                .chat(&chat(MODEL, 100), &CallOptions::default())
                .await
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|call| call.unwrap().map(|answer| answer.body))
        .collect()
}

async fn chat_concurrently(provider: &Arc<Bedrock>, count: usize) {
    for outcome in chats_at_once(provider, count).await {
        assert_eq!(outcome.unwrap().choices[0].message.text(), "Guten Tag");
    }
}

/// EKS IRSA: the token file's contents are exchanged once, unsigned, for the role's temporary
/// credentials, which then sign every Bedrock call. The file is read when the first call needs
/// credentials, not when the deployment is configured.
#[tokio::test]
async fn irsa_web_identity_from_the_environment_signs_bedrock_calls() {
    let pod = IrsaPod::start(web_identity_credentials()).await;
    let provider = Arc::new(pod.bedrock(None, None));
    std::fs::write(&pod.token_file, format!("{OIDC_TOKEN}\n")).unwrap();
    chat_concurrently(&provider, 4).await;
    assert_eq!(sts_calls(&pod.log), (1, 0), "one exchange for every caller");
    let bedrock_calls = pod
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|request| request.target != "/")
        .count();
    assert_eq!(bedrock_calls, 4);
}

/// `aws_web_identity_token` (with `aws_role_name` and `aws_session_name`) in the deployment.
#[tokio::test]
async fn a_configured_web_identity_token_is_exchanged_for_the_role() {
    let (base, log) = serve(sts_then_bedrock(web_identity_credentials())).await;
    let params = BedrockParams {
        api_base: Some(&base),
        aws_region_name: Some(REGION),
        aws_web_identity_token: Some(OIDC_TOKEN),
        aws_role_name: Some(IRSA_ROLE),
        aws_session_name: Some(IRSA_SESSION),
        aws_sts_endpoint: Some(&base),
        // Keys are not what the deployment asked for: the token replaces them.
        aws_access_key_id: Some(KEY_ID),
        aws_secret_access_key: Some(SECRET),
        ..BedrockParams::default()
    };
    let provider = Arc::new(bedrock_with(params, |_| None));
    chat_concurrently(&provider, 2).await;
    assert_eq!(sts_calls(&log), (1, 0));

    let tokenless_role = BedrockParams {
        aws_web_identity_token: Some(OIDC_TOKEN),
        ..BedrockParams::default()
    };
    assert!(BedrockTarget::resolve(tokenless_role, |_| None).is_err());
}

/// IRSA credentials for one role, `aws_role_name` another: the web identity's temporary
/// credentials sign the `AssumeRole` of the second, whose credentials sign Bedrock calls.
#[tokio::test]
async fn irsa_credentials_sign_the_assume_role_of_another_role() {
    let pod = IrsaPod::start(chained_credentials()).await;
    std::fs::write(&pod.token_file, OIDC_TOKEN).unwrap();
    let provider = Arc::new(pod.bedrock(Some(CHAINED_ROLE), Some("chained-session")));
    chat_concurrently(&provider, 3).await;
    assert_eq!(sts_calls(&pod.log), (1, 1));
}

/// A token STS rejects, or no token file at all: authentication errors, and Bedrock is never
/// called.
#[tokio::test]
async fn rejected_or_missing_web_identity_tokens_are_authentication_errors() {
    let pod = IrsaPod::start(web_identity_credentials()).await;
    let missing = pod.bedrock(None, None);
    let error = missing
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
    assert!(
        error.to_string().contains("web identity token file"),
        "{error}"
    );

    std::fs::write(&pod.token_file, "eyJ.not-the-token.sig").unwrap();
    let rejected = pod.bedrock(None, None);
    let error = rejected
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
    assert_eq!(error.status(), 401);
    assert!(
        error.to_string().contains(
            "STS AssumeRoleWithWebIdentity of arn:aws:iam::111122223333:role/irsa-bedrock failed"
        ),
        "{error}"
    );
    assert!(pod
        .log
        .lock()
        .unwrap()
        .iter()
        .all(|request| request.target == "/"));
}

const IMDS_ROLE: &str = "bedrock-instance-role";
const IMDS_SESSION_TOKEN: &str = "AQAEAimds-session-token==";
const CONTAINER_TOKEN: &str = "container-authorization-token";

/// What the instance metadata service and the container endpoint hand out.
fn served_credentials() -> AwsCredentials {
    keys(
        "ASIASERVED",
        "served/secret+key",
        "IQoJb3JpZ2luX2VjEServed+token/==",
    )
}

/// The JSON both services answer, with credentials valid for `lifetime`.
fn served_json(lifetime: Duration) -> Value {
    let issued = served_credentials();
    json!({
        "Code": "Success",
        "LastUpdated": format_rfc3339(SystemTime::now()).unwrap(),
        "Type": "AWS-HMAC",
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": format_rfc3339(SystemTime::now() + lifetime).unwrap(),
    })
}

/// IMDSv2 under `/latest/`: a session token only for a `PUT` that asks for a lifetime, every
/// read refused without that token; the role list names [`IMDS_ROLE`] (or nothing, with
/// `role: false`), whose credentials last `lifetime`. Everything else is Bedrock, which must
/// be signed by the served credentials.
fn imds_then_bedrock(role: bool, lifetime: Duration) -> impl Fn(&Received) -> Reply {
    move |request: &Received| {
        if !request.target.starts_with("/latest/") {
            return bedrock_answer(request, &served_credentials());
        }
        let unauthorized = Reply::bytes(401, "text/plain", "Unauthorized");
        if request.target == "/latest/api/token" {
            let ttl = request
                .headers
                .get("x-aws-ec2-metadata-token-ttl-seconds")
                .and_then(|ttl| ttl.parse::<u32>().ok());
            return match (request.method.as_str(), ttl) {
                ("PUT", Some(1..=21600)) => Reply::bytes(200, "text/plain", IMDS_SESSION_TOKEN),
                ("PUT", _) => Reply::bytes(400, "text/plain", "Bad Request"),
                _ => Reply::bytes(405, "text/plain", "Method Not Allowed"),
            };
        }
        if request.method != "GET"
            || request
                .headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                != Some(IMDS_SESSION_TOKEN)
        {
            return unauthorized;
        }
        let roles = "/latest/meta-data/iam/security-credentials/";
        match request.target.strip_prefix(roles) {
            Some("") if role => Reply::bytes(200, "text/plain", IMDS_ROLE),
            Some(name) if role && name == IMDS_ROLE => Reply::json(200, &served_json(lifetime)),
            _ => Reply::bytes(404, "text/html", "<html>404 - Not Found</html>"),
        }
    }
}

/// A deployment with nothing configured, on a machine whose environment is `pairs`.
fn bedrock_in_env(base: &str, pairs: Vec<(&'static str, String)>) -> Bedrock {
    let params = BedrockParams {
        api_base: Some(base),
        aws_region_name: Some(REGION),
        ..BedrockParams::default()
    };
    let env = move |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    bedrock_with(params, env)
}

fn count(log: &support::Log, method: &str, target: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|request| request.method == method && request.target == target)
        .count()
}

/// On EC2 with an instance profile: one IMDSv2 exchange (token, role name, credentials) serves
/// concurrent calls, all signed with the role's temporary credentials and session token.
#[tokio::test]
async fn instance_profile_credentials_from_imdsv2_sign_bedrock_calls() {
    let (base, log) = serve(imds_then_bedrock(true, Duration::from_secs(6 * 3600))).await;
    let provider = Arc::new(bedrock_in_env(
        &base,
        vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone())],
    ));
    chat_concurrently(&provider, 4).await;
    assert_eq!(count(&log, "PUT", "/latest/api/token"), 1);
    let credentials_path = format!("/latest/meta-data/iam/security-credentials/{IMDS_ROLE}");
    assert_eq!(count(&log, "GET", &credentials_path), 1);
    // Every metadata read carried the session token (the mock refuses the others).
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .filter(|request| request.target.starts_with("/latest/meta-data/"))
        .all(|request| request.headers["x-aws-ec2-metadata-token"] == IMDS_SESSION_TOKEN));
}

/// Credentials that expire within the renewal margin are fetched again for the next call.
#[tokio::test]
async fn instance_credentials_near_their_expiry_are_fetched_again() {
    let (base, log) = serve(imds_then_bedrock(true, Duration::from_secs(60))).await;
    let provider = Arc::new(bedrock_in_env(
        &base,
        vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone())],
    ));
    chat_concurrently(&provider, 1).await;
    chat_concurrently(&provider, 1).await;
    assert_eq!(count(&log, "PUT", "/latest/api/token"), 2);
}

/// No instance metadata service (nothing listens), or one without a role: an authentication
/// error that lists every place the chain looked at, and no Bedrock call.
#[tokio::test]
async fn no_instance_credentials_is_an_error_naming_every_place_looked_at() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (base, log) = serve(imds_then_bedrock(false, Duration::from_secs(3600))).await;
    for (imds, reason) in [
        (closed.as_str(), "Connection"),
        (base.as_str(), "no IAM role"),
    ] {
        let provider = bedrock_in_env(
            &base,
            vec![
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.to_owned()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/no/such/file".to_owned()),
            ],
        );
        let error = provider
            .chat(&chat(MODEL, 100), &CallOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
        assert_eq!(error.status(), 401);
        let message = error.to_string();
        for place in [
            "aws_access_key_id",
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "shared credentials file",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            imds,
            reason,
        ] {
            assert!(message.contains(place), "{place}: {message}");
        }
    }
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .all(|request| request.target.starts_with("/latest/")));
}

/// A container credentials endpoint that answers only the expected `Authorization` header; the
/// instance metadata service (also offered) must not be asked.
fn container_then_bedrock() -> impl Fn(&Received) -> Reply {
    move |request: &Received| {
        if request.target.starts_with("/latest/") {
            return Reply::json(500, &json!({"message": "IMDS must not be asked"}));
        }
        if request.target != "/v1/credentials" {
            return bedrock_answer(request, &served_credentials());
        }
        if request.method != "GET"
            || request.headers.get("authorization").map(String::as_str) != Some(CONTAINER_TOKEN)
        {
            return Reply::json(
                401,
                &json!({"code": "AccessDenied", "message": "invalid authorization token"}),
            );
        }
        Reply::json(200, &served_json(Duration::from_secs(3600)))
    }
}

/// EKS Pod Identity / ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` with the authorization token
/// given directly or in a file (the file wins); one fetch serves concurrent calls.
#[tokio::test]
async fn container_credentials_with_their_authorization_token_sign_bedrock_calls() {
    let (base, log) = serve(container_then_bedrock()).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, format!("{CONTAINER_TOKEN}\n")).unwrap();
    let full_uri = format!("{base}/v1/credentials");
    let common = vec![
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.clone()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone()),
    ];
    let with_token = [
        common.clone(),
        vec![(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            CONTAINER_TOKEN.to_owned(),
        )],
    ]
    .concat();
    let with_file = [
        common.clone(),
        vec![
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale".to_owned()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
    ]
    .concat();
    for env in [with_token, with_file] {
        let provider = Arc::new(bedrock_in_env(&base, env));
        chat_concurrently(&provider, 3).await;
    }
    assert_eq!(count(&log, "GET", "/v1/credentials"), 2);

    // A wrong token: the endpoint's refusal is an authentication error naming it.
    let wrong = [
        common,
        vec![("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong".to_owned())],
    ]
    .concat();
    let error = bedrock_in_env(&base, wrong)
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
    assert!(
        error.to_string().contains(&full_uri) && error.to_string().contains("AccessDenied"),
        "{error}"
    );
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|request| request.target.starts_with("/latest/"))
            .count(),
        0
    );
}

/// Callers waiting while the instance metadata service refuses share that refusal instead of
/// each asking again in turn.
#[tokio::test]
async fn concurrent_callers_share_one_refusal() {
    let (base, log) = serve(imds_then_bedrock(false, Duration::from_secs(3600))).await;
    let provider = Arc::new(bedrock_in_env(
        &base,
        vec![
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/no/such/file".to_owned()),
        ],
    ));
    for outcome in chats_at_once(&provider, 4).await {
        let error = outcome.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UpstreamAuthentication, "{error}");
        assert!(error.to_string().contains("no IAM role"), "{error}");
    }
    assert_eq!(count(&log, "PUT", "/latest/api/token"), 1);
    // A later call asks again.
    let error = provider
        .chat(&chat(MODEL, 100), &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.status(), 401);
    assert_eq!(count(&log, "PUT", "/latest/api/token"), 2);
}
