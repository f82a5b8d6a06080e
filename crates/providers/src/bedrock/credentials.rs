//! Where a Bedrock deployment's AWS credentials come from, in the order LiteLLM and the AWS
//! SDKs look:
//!
//! 1. `aws_access_key_id` / `aws_secret_access_key` (/ `aws_session_token`) in `litellm_params`;
//! 2. `aws_profile_name`: that profile of the shared credentials file;
//! 3. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`);
//! 4. web identity (EKS "IAM roles for service accounts"): `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` (and `AWS_ROLE_SESSION_NAME`); the token file's contents are exchanged
//!    for the role's temporary credentials with STS `AssumeRoleWithWebIdentity`, a call that is
//!    not signed (the token is the proof). The file is read again at every exchange, since
//!    Kubernetes rotates the token it projects there;
//! 5. `AWS_PROFILE`: that profile of the shared credentials file;
//! 6. the `default` profile of the shared credentials file, when there is one;
//! 7. the container credentials endpoint (ECS task roles, EKS Pod Identity):
//!    `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `AWS_CONTAINER_CREDENTIALS_FULL_URI`;
//! 8. the EC2 instance metadata service (the instance profile's role), unless
//!    `AWS_EC2_METADATA_DISABLED` is `true`.
//!
//! The shared credentials file is `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`;
//! it is read once, when the configuration is loaded. Steps 7 and 8 are HTTP services of the
//! environment ([`super::credential_endpoints`]), asked when a call first needs credentials:
//! whether the instance metadata service is there is only known by asking it, so a chain with
//! nothing before it ends there, and the call's error lists every place looked at.
//!
//! A deployment's own `aws_web_identity_token` (with `aws_role_name`, and `aws_session_name`)
//! replaces that chain: the token is exchanged for `aws_role_name`'s credentials.
//!
//! Otherwise, with `aws_role_name` (and `aws_session_name`), the credentials found only sign an
//! STS `AssumeRole` call, and Bedrock calls are signed with the temporary credentials it
//! returns. Web identity credentials of that very role are used as they are; of another role,
//! they sign the `AssumeRole` call (a role chain).
//!
//! STS calls go to `aws_sts_endpoint`, else `AWS_STS_ENDPOINT`, else
//! `https://sts.{region}.amazonaws.com`. Temporary credentials (from STS, the container
//! endpoint or the instance metadata service) are cached until five minutes before they
//! expire; when they must be renewed, concurrent callers wait for one request instead of each
//! making their own.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use super::aws_time::parse_rfc3339;
use super::credential_endpoints::{
    ContainerEndpoint, CredentialEndpoint, CredentialFetcher, InstanceMetadata,
};
use super::sigv4::{signature_headers_for, AwsCredentials};
use crate::http::transport_error;
use crate::{HttpClient, ProviderError};

/// Renew temporary credentials this long before they expire (the AWS SDKs' margin).
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// How long assumed-role credentials are asked to last (STS's default).
const ROLE_SESSION_SECONDS: u32 = 3600;
const STS_SERVICE: &str = "sts";

/// The credentials a deployment names, by LiteLLM's `litellm_params` keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialParams<'a> {
    pub aws_access_key_id: Option<&'a str>,
    pub aws_secret_access_key: Option<&'a str>,
    pub aws_session_token: Option<&'a str>,
    pub aws_profile_name: Option<&'a str>,
}

/// Where a deployment's credentials come from, before any role of its own is assumed.
#[derive(Debug, Clone)]
pub enum BaseCredentials {
    /// Access keys: permanent, or temporary with their session token.
    Keys(AwsCredentials),
    /// A web identity token to exchange for a role's temporary credentials.
    WebIdentity(WebIdentityParams),
    /// An HTTP service of the environment that hands out a role's temporary credentials.
    Endpoint(CredentialEndpoint),
}

/// An STS `AssumeRoleWithWebIdentity` exchange.
#[derive(Debug, Clone)]
pub struct WebIdentityParams {
    pub role_arn: String,
    pub session_name: String,
    pub token: WebIdentityToken,
}

/// The OIDC token STS is shown.
#[derive(Clone)]
pub enum WebIdentityToken {
    /// The deployment's `aws_web_identity_token`.
    Given(String),
    /// `AWS_WEB_IDENTITY_TOKEN_FILE`, read at every exchange (the token in it is rotated).
    File(PathBuf),
}

impl std::fmt::Debug for WebIdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Given(_) => f.write_str("Given(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// `aws_session_name` when given, else a fresh name (the session name only labels the
/// session in the role's CloudTrail records).
pub fn session_name(given: Option<&str>) -> String {
    given.filter(|name| !name.is_empty()).map_or_else(
        || format!("switchyard-{}", uuid::Uuid::new_v4()),
        str::to_owned,
    )
}

/// Base credentials as the list in the module header finds them; `None` when there are none.
pub fn resolve_base(
    params: CredentialParams<'_>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<BaseCredentials>, String> {
    if params.aws_access_key_id.is_some() || params.aws_secret_access_key.is_some() {
        return keys(pair(
            params.aws_access_key_id.map(str::to_owned),
            params.aws_secret_access_key.map(str::to_owned),
            params.aws_session_token.map(str::to_owned),
        ));
    }
    if let Some(profile) = params.aws_profile_name {
        return keys(profile_credentials(profile, env, true));
    }
    let token = params
        .aws_session_token
        .map(str::to_owned)
        .or_else(|| env("AWS_SESSION_TOKEN"));
    if let Some(found) = pair(
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
        token,
    )? {
        return Ok(Some(BaseCredentials::Keys(found)));
    }
    if let Some(web_identity) = web_identity_from_env(env) {
        return Ok(Some(BaseCredentials::WebIdentity(web_identity)));
    }
    if let Some(profile) = env("AWS_PROFILE").filter(|profile| !profile.is_empty()) {
        return keys(profile_credentials(&profile, env, true));
    }
    if let Some(found) = profile_credentials("default", env, false)? {
        return Ok(Some(BaseCredentials::Keys(found)));
    }
    if let Some(container) = ContainerEndpoint::from_env(env)? {
        let endpoint = CredentialEndpoint::Container(container);
        return Ok(Some(BaseCredentials::Endpoint(endpoint)));
    }
    Ok(InstanceMetadata::from_env(env)?
        .map(|imds| BaseCredentials::Endpoint(CredentialEndpoint::InstanceMetadata(imds))))
}

/// Every place the chain looks before the instance metadata service, for the error that says
/// none of them had credentials.
const PLACES_BEFORE_INSTANCE_METADATA: &str =
    "aws_access_key_id/aws_secret_access_key, aws_profile_name, aws_web_identity_token with \
     aws_role_name, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE with \
     AWS_ROLE_ARN, AWS_PROFILE, the default profile of the shared credentials file \
     (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials), \
     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI";

/// "No credentials anywhere", listing every place looked at; `instance_metadata` says how the
/// last one, the instance metadata service, failed.
pub fn no_credentials_message(instance_metadata: &str) -> String {
    format!(
        "no AWS credentials: none in {PLACES_BEFORE_INSTANCE_METADATA}, nor from \
         {instance_metadata}"
    )
}

/// [`no_credentials_message`] for a chain that ends before the instance metadata service.
pub fn no_credentials_imds_disabled() -> String {
    no_credentials_message("the EC2 instance metadata service (AWS_EC2_METADATA_DISABLED is true)")
}

fn keys(found: Result<Option<AwsCredentials>, String>) -> Result<Option<BaseCredentials>, String> {
    found.map(|keys| keys.map(BaseCredentials::Keys))
}

/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`), as EKS sets
/// them in a pod whose service account is annotated with a role.
fn web_identity_from_env(env: &impl Fn(&str) -> Option<String>) -> Option<WebIdentityParams> {
    let token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE").filter(|file| !file.is_empty())?;
    let role_arn = env("AWS_ROLE_ARN").filter(|role| !role.is_empty())?;
    Some(WebIdentityParams {
        role_arn,
        session_name: session_name(env("AWS_ROLE_SESSION_NAME").as_deref()),
        token: WebIdentityToken::File(PathBuf::from(token_file)),
    })
}

fn pair(
    key_id: Option<String>,
    secret: Option<String>,
    token: Option<String>,
) -> Result<Option<AwsCredentials>, String> {
    match (key_id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: token.filter(|token| !token.is_empty()),
        })),
        (None, None) => Ok(None),
        _ => Err("aws_access_key_id and aws_secret_access_key must be given together".to_owned()),
    }
}

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
fn shared_credentials_file(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".aws/credentials")))
}

/// One profile's keys from the shared credentials file. A missing file or profile is an error
/// when the profile was asked for by name (`required`), and means "none" otherwise.
fn profile_credentials(
    profile: &str,
    env: &impl Fn(&str) -> Option<String>,
    required: bool,
) -> Result<Option<AwsCredentials>, String> {
    let Some(path) = shared_credentials_file(env) else {
        return if required {
            Err(format!(
                "AWS profile {profile:?}: no shared credentials file (set AWS_SHARED_CREDENTIALS_FILE)"
            ))
        } else {
            Ok(None)
        };
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) if !required => return Ok(None),
        Err(error) => {
            return Err(format!(
                "AWS profile {profile:?}: cannot read {}: {error}",
                path.display()
            ))
        }
    };
    let keys = ini_section(&text, profile);
    let get = |name: &str| {
        keys.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    match pair(
        get("aws_access_key_id"),
        get("aws_secret_access_key"),
        get("aws_session_token"),
    ) {
        Ok(Some(found)) => Ok(Some(found)),
        Ok(None) if !required => Ok(None),
        Ok(None) => Err(format!(
            "AWS profile {profile:?} has no aws_access_key_id/aws_secret_access_key in {}",
            path.display()
        )),
        Err(reason) => Err(format!(
            "AWS profile {profile:?} in {}: {reason}",
            path.display()
        )),
    }
}

/// The `key = value` lines of section `[name]` of an INI text (`#` and `;` start comments).
fn ini_section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inside = section.trim() == name;
            continue;
        }
        if inside {
            if let Some((key, value)) = line.split_once('=') {
                keys.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
    }
    keys
}

/// An STS `AssumeRole` target, by LiteLLM's `litellm_params` keys.
#[derive(Debug, Clone)]
pub struct AssumeRoleParams {
    /// `aws_role_name`: the role's ARN.
    pub role_arn: String,
    /// `aws_session_name` (LiteLLM's default when absent: a generated name).
    pub session_name: String,
    /// `aws_external_id`, when the role's trust policy requires one.
    pub external_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Assumed {
    credentials: AwsCredentials,
    renew_at: SystemTime,
}

/// Credentials for signing one deployment's calls.
#[derive(Debug)]
pub enum CredentialSource {
    Static(AwsCredentials),
    /// Temporary credentials, renewed before they expire.
    Temporary(Box<TemporarySession>),
}

/// The STS call that issues a session's credentials.
#[derive(Debug)]
enum StsCall {
    /// `AssumeRole`, signed with the signer's credentials.
    AssumeRole {
        signer: CredentialSource,
        role: AssumeRoleParams,
    },
    /// `AssumeRoleWithWebIdentity`, unsigned.
    WebIdentity(WebIdentityParams),
}

impl StsCall {
    fn action(&self) -> &'static str {
        match self {
            Self::AssumeRole { .. } => "AssumeRole",
            Self::WebIdentity(_) => "AssumeRoleWithWebIdentity",
        }
    }

    fn role_arn(&self) -> &str {
        match self {
            Self::AssumeRole { role, .. } => &role.role_arn,
            Self::WebIdentity(web_identity) => &web_identity.role_arn,
        }
    }
}

/// One STS call and where it goes.
struct StsExchange {
    call: StsCall,
    endpoint: reqwest::Url,
    region: String,
    client: HttpClient,
}

impl std::fmt::Debug for StsExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsExchange")
            .field("call", &self.call)
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// Who issues a session's temporary credentials.
#[derive(Debug)]
enum Issuer {
    Sts(StsExchange),
    /// The container credentials endpoint or the instance metadata service.
    Endpoint(CredentialFetcher),
}

/// Temporary credentials from one issuer, renewed before they expire.
#[derive(Debug)]
pub struct TemporarySession {
    issuer: Issuer,
    cached: Mutex<Option<Assumed>>,
    /// Held while one caller asks the issuer; the others wait on it and reuse the result.
    renewing: tokio::sync::Mutex<()>,
    /// The last refusal, given to the callers that were already waiting for it instead of
    /// each asking again: where there is no instance metadata service, concurrent calls then
    /// share one connect timeout rather than queue for one each.
    refused: Mutex<Option<Refusal>>,
}

#[derive(Debug)]
struct Refusal {
    at: Instant,
    status: u16,
    message: String,
}

/// An error about obtaining credentials. Refusals (bad signature, role not assumable, token
/// rejected, no credentials there) are the deployment's credential problem: authentication
/// errors whatever status the issuer used; only throttling and outages keep their meaning.
pub fn credential_error(provider: &'static str, status: u16, message: String) -> ProviderError {
    let status = match status {
        429 => 429,
        500..=599 => 503,
        _ => 401,
    };
    ProviderError::from_upstream(provider, status, message, None, None, None, None)
}

/// Sends `request` and reads its whole answer, each within `timeout`.
pub async fn send_within(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ProviderError> {
    let timed_out = || ProviderError::Timeout {
        provider,
        after: timeout,
    };
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(error)) => return Err(transport_error(provider, error, timeout)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    match tokio::time::timeout(timeout, response.bytes()).await {
        Ok(Ok(bytes)) => Ok((status, bytes)),
        Ok(Err(error)) => Err(transport_error(provider, error, timeout)),
        Err(_) => Err(timed_out()),
    }
}

impl CredentialSource {
    /// The source for `base` credentials, with `role` (if any) assumed through STS at
    /// `sts_endpoint`; see the module header for how they combine.
    pub fn new(
        base: BaseCredentials,
        role: Option<AssumeRoleParams>,
        sts_endpoint: &str,
        region: &str,
        client: HttpClient,
    ) -> Result<Self, String> {
        let sts = |call: StsCall| -> Result<Self, String> {
            let endpoint = reqwest::Url::parse(sts_endpoint)
                .map_err(|error| format!("invalid aws_sts_endpoint {sts_endpoint:?}: {error}"))?;
            Ok(Self::temporary(Issuer::Sts(StsExchange {
                call,
                endpoint,
                region: region.to_owned(),
                client: client.clone(),
            })))
        };
        match (base, role) {
            (BaseCredentials::Keys(keys), None) => Ok(Self::Static(keys)),
            (BaseCredentials::Keys(keys), Some(role)) => sts(StsCall::AssumeRole {
                signer: Self::Static(keys),
                role,
            }),
            (BaseCredentials::WebIdentity(web_identity), None) => {
                sts(StsCall::WebIdentity(web_identity))
            }
            // The web identity is that role already: no second hop, under the session name
            // the deployment asked for.
            (BaseCredentials::WebIdentity(mut web_identity), Some(role))
                if web_identity.role_arn == role.role_arn =>
            {
                web_identity.session_name = role.session_name;
                sts(StsCall::WebIdentity(web_identity))
            }
            (BaseCredentials::WebIdentity(web_identity), Some(role)) => {
                let signer = sts(StsCall::WebIdentity(web_identity))?;
                sts(StsCall::AssumeRole { signer, role })
            }
            (BaseCredentials::Endpoint(endpoint), role) => {
                let served = Self::temporary(Issuer::Endpoint(CredentialFetcher::new(endpoint)?));
                match role {
                    None => Ok(served),
                    Some(role) => sts(StsCall::AssumeRole {
                        signer: served,
                        role,
                    }),
                }
            }
        }
    }

    fn temporary(issuer: Issuer) -> Self {
        Self::Temporary(Box::new(TemporarySession {
            issuer,
            cached: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
        }))
    }

    /// Credentials valid now; `timeout` bounds each request to an issuer.
    pub async fn credentials(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<AwsCredentials, ProviderError> {
        match self {
            Self::Static(credentials) => Ok(credentials.clone()),
            Self::Temporary(session) => session.credentials(provider, timeout).await,
        }
    }
}

impl TemporarySession {
    /// The refusal that came while a caller waited since `since`, if one did.
    fn refused_since(&self, since: Instant, provider: &'static str) -> Option<ProviderError> {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused
            .as_ref()
            .filter(|refusal| refusal.at >= since)
            .map(|refusal| {
                let message = refusal.message.clone();
                ProviderError::from_upstream(
                    provider,
                    refusal.status,
                    message,
                    None,
                    None,
                    None,
                    None,
                )
            })
    }

    fn fresh(&self) -> Option<AwsCredentials> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|assumed| SystemTime::now() < assumed.renew_at)
            .map(|assumed| assumed.credentials.clone())
    }

    async fn credentials(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<AwsCredentials, ProviderError> {
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let waiting_since = Instant::now();
        let _renewing = self.renewing.lock().await;
        // Another caller may have renewed them (or been refused) while this one waited.
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        if let Some(refusal) = self.refused_since(waiting_since, provider) {
            return Err(refusal);
        }
        let issued = match &self.issuer {
            Issuer::Sts(exchange) => exchange.call(provider, timeout).await,
            Issuer::Endpoint(fetcher) => fetcher.fetch(provider, timeout).await,
        };
        let (credentials, expires) = match issued {
            Ok(issued) => issued,
            Err(error) => {
                if let ProviderError::Upstream(failure) = &error {
                    *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(Refusal {
                        at: Instant::now(),
                        status: failure.status,
                        message: failure.message.clone(),
                    });
                }
                return Err(error);
            }
        };
        let renew_at = expires
            .checked_sub(RENEW_MARGIN)
            .filter(|at| *at > SystemTime::now())
            // Credentials that expire within the margin are used once, then renewed.
            .unwrap_or_else(SystemTime::now);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Assumed {
            credentials: credentials.clone(),
            renew_at,
        });
        Ok(credentials)
    }
}

impl StsExchange {
    /// The call's form (STS query API, form-encoded POST).
    async fn form(&self, provider: &'static str) -> Result<Vec<(&str, String)>, ProviderError> {
        let (role_arn, session_name) = match &self.call {
            StsCall::AssumeRole { role, .. } => (&role.role_arn, &role.session_name),
            StsCall::WebIdentity(web_identity) => {
                (&web_identity.role_arn, &web_identity.session_name)
            }
        };
        let mut form = vec![
            ("Action", self.call.action().to_owned()),
            ("Version", "2011-06-15".to_owned()),
            ("RoleArn", role_arn.clone()),
            ("RoleSessionName", session_name.clone()),
            ("DurationSeconds", ROLE_SESSION_SECONDS.to_string()),
        ];
        match &self.call {
            StsCall::AssumeRole { role, .. } => {
                if let Some(external_id) = &role.external_id {
                    form.push(("ExternalId", external_id.clone()));
                }
            }
            StsCall::WebIdentity(web_identity) => {
                let token = web_identity_token(provider, &web_identity.token).await?;
                form.push(("WebIdentityToken", token));
            }
        }
        Ok(form)
    }

    /// One STS call: `AssumeRole` signed with the signer's (possibly themselves temporary)
    /// credentials, or `AssumeRoleWithWebIdentity` unsigned.
    async fn call(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<(AwsCredentials, SystemTime), ProviderError> {
        let body = form_encode(&self.form(provider).await?);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let mut request = self
            .client
            .inner()
            .post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, content_type);
        if let StsCall::AssumeRole { signer, .. } = &self.call {
            // Boxed: the signer may itself be a temporary session (a role chain).
            let signing = Box::pin(signer.credentials(provider, timeout)).await?;
            let url = &self.endpoint;
            let host = match (url.host_str(), url.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            };
            let signed = signature_headers_for(
                STS_SERVICE,
                &signing,
                &self.region,
                "POST",
                url.as_str(),
                &[("host", &host), ("content-type", content_type)],
                body.as_bytes(),
                SystemTime::now(),
            )
            .map_err(|message| {
                ProviderError::from_upstream(provider, 400, message, None, None, None, None)
            })?;
            for (name, value) in signed {
                if let (Ok(name), Ok(mut value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    value.set_sensitive(true);
                    request = request.header(name, value);
                }
            }
        }
        let (status, bytes) = send_within(provider, request.body(body), timeout).await?;
        let action = self.call.action();
        if !status.is_success() {
            let reason = xml_text(&bytes, "Message")
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(credential_error(
                provider,
                status.as_u16(),
                format!("STS {action} of {} failed: {reason}", self.call.role_arn()),
            ));
        }
        parse_assume_role(&bytes).ok_or_else(|| ProviderError::InvalidResponse {
            provider,
            message: format!("STS {action} answered without usable credentials"),
        })
    }
}

/// The web identity token as it is now (a token file is read afresh each time).
async fn web_identity_token(
    provider: &'static str,
    token: &WebIdentityToken,
) -> Result<String, ProviderError> {
    let text = match token {
        WebIdentityToken::Given(token) => token.clone(),
        WebIdentityToken::File(path) => tokio::fs::read_to_string(path).await.map_err(|error| {
            credential_error(
                provider,
                401,
                format!(
                    "cannot read the web identity token file {} (AWS_WEB_IDENTITY_TOKEN_FILE): \
                     {error}",
                    path.display()
                ),
            )
        })?,
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(credential_error(
            provider,
            401,
            "the web identity token is empty".to_owned(),
        ));
    }
    Ok(token.to_owned())
}

/// `application/x-www-form-urlencoded` with the unreserved set AWS expects.
fn form_encode(pairs: &[(&str, String)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>...</tag>` element, XML entities decoded.
fn xml_text(xml: &Bytes, tag: &str) -> Option<String> {
    let text = std::str::from_utf8(xml).ok()?;
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(
        text[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The credentials and their expiry from an `AssumeRoleResponse`.
fn parse_assume_role(xml: &Bytes) -> Option<(AwsCredentials, SystemTime)> {
    let credentials = AwsCredentials {
        access_key_id: xml_text(xml, "AccessKeyId").filter(|value| !value.is_empty())?,
        secret_access_key: xml_text(xml, "SecretAccessKey").filter(|value| !value.is_empty())?,
        session_token: xml_text(xml, "SessionToken").filter(|value| !value.is_empty()),
    };
    let expires = parse_rfc3339(&xml_text(xml, "Expiration")?)?;
    Some((credentials, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    /// The STS call behind a temporary source.
    fn sts_call(source: &CredentialSource) -> &StsCall {
        match source {
            CredentialSource::Temporary(session) => match &session.issuer {
                Issuer::Sts(exchange) => &exchange.call,
                other => panic!("not STS: {other:?}"),
            },
            other => panic!("not temporary: {other:?}"),
        }
    }

    /// Whether the source takes its credentials from an endpoint of the environment.
    fn is_served(source: &CredentialSource) -> bool {
        matches!(source, CredentialSource::Temporary(session)
            if matches!(session.issuer, Issuer::Endpoint(_)))
    }

    fn keys(found: BaseCredentials) -> AwsCredentials {
        match found {
            BaseCredentials::Keys(keys) => keys,
            other => panic!("not keys: {other:?}"),
        }
    }

    const FILE: &str = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s0\n\n\
        # a comment\n[team]\naws_access_key_id=AKIDTEAM\naws_secret_access_key = s1\n\
        aws_session_token = tok\n[broken]\naws_access_key_id = only\n";

    #[test]
    fn the_credential_chain_is_followed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, FILE).unwrap();
        let file = file.display().to_string();
        let key_of = |params: CredentialParams<'_>, env: &[(&str, String)]| {
            resolve_base(params, &env_of(env)).map(|found| found.map(|c| keys(c).access_key_id))
        };
        let shared = ("AWS_SHARED_CREDENTIALS_FILE", file.clone());
        let explicit = CredentialParams {
            aws_access_key_id: Some("AKIDPARAM"),
            aws_secret_access_key: Some("s"),
            aws_profile_name: Some("team"),
            ..Default::default()
        };
        assert_eq!(
            key_of(explicit, std::slice::from_ref(&shared))
                .unwrap()
                .as_deref(),
            Some("AKIDPARAM")
        );
        let named = CredentialParams {
            aws_profile_name: Some("team"),
            ..Default::default()
        };
        let env_keys = [
            shared.clone(),
            ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "s".to_owned()),
            ("AWS_PROFILE", "team".to_owned()),
        ];
        assert_eq!(
            key_of(named, &env_keys).unwrap().as_deref(),
            Some("AKIDTEAM")
        );
        let none = CredentialParams::default();
        assert_eq!(key_of(none, &env_keys).unwrap().as_deref(), Some("AKIDENV"));
        let profile_env = [shared.clone(), ("AWS_PROFILE", "team".to_owned())];
        let team = keys(resolve_base(none, &env_of(&profile_env)).unwrap().unwrap());
        assert_eq!(team.session_token.as_deref(), Some("tok"));
        assert_eq!(
            key_of(none, std::slice::from_ref(&shared))
                .unwrap()
                .as_deref(),
            Some("AKIDDEFAULT")
        );
        // Through HOME when no file is named.
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(dir.path().join(".aws/credentials"), FILE).unwrap();
        let home = ("HOME", dir.path().display().to_string());
        assert_eq!(
            key_of(none, &[home]).unwrap().as_deref(),
            Some("AKIDDEFAULT")
        );
        // Nothing anywhere (instance metadata turned off) is "no credentials"; a named profile
        // that is missing is an error.
        let nowhere = ("AWS_SHARED_CREDENTIALS_FILE", "/no/such/file".to_owned());
        let imds_off = ("AWS_EC2_METADATA_DISABLED", "true".to_owned());
        assert_eq!(key_of(none, &[nowhere.clone(), imds_off]).unwrap(), None);
        let missing = CredentialParams {
            aws_profile_name: Some("nobody"),
            ..Default::default()
        };
        assert!(key_of(missing, std::slice::from_ref(&shared)).is_err());
        assert!(key_of(named, &[nowhere]).is_err());
        let broken = CredentialParams {
            aws_profile_name: Some("broken"),
            ..Default::default()
        };
        assert!(key_of(broken, &[shared]).is_err());
    }

    #[test]
    fn web_identity_from_the_environment_comes_after_env_keys_and_before_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, FILE).unwrap();
        let shared = ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string());
        let token_file = (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".to_owned(),
        );
        let role = ("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod".to_owned());
        let none = CredentialParams::default();
        let web_identity = |env: &[(&str, String)]| match resolve_base(none, &env_of(env)) {
            Ok(Some(BaseCredentials::WebIdentity(found))) => Some(found),
            _ => None,
        };

        let found = web_identity(&[token_file.clone(), role.clone(), shared.clone()]).unwrap();
        assert_eq!(found.role_arn, "arn:aws:iam::1:role/pod");
        assert!(found.session_name.starts_with("switchyard-"));
        assert!(matches!(&found.token, WebIdentityToken::File(path)
            if path.ends_with("serviceaccount/token")));
        let named = [
            token_file.clone(),
            role.clone(),
            ("AWS_ROLE_SESSION_NAME", "pod-session".to_owned()),
            ("AWS_PROFILE", "team".to_owned()),
            shared.clone(),
        ];
        assert_eq!(web_identity(&named).unwrap().session_name, "pod-session");
        // Access keys in the environment come first; a profile the deployment names too.
        let with_keys = [
            token_file.clone(),
            role.clone(),
            ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "s".to_owned()),
        ];
        assert!(web_identity(&with_keys).is_none());
        let team = CredentialParams {
            aws_profile_name: Some("team"),
            ..CredentialParams::default()
        };
        let env = env_of(&[token_file.clone(), role.clone(), shared.clone()]);
        assert!(matches!(
            resolve_base(team, &env),
            Ok(Some(BaseCredentials::Keys(_)))
        ));
        // Half of the pair is not web identity.
        assert!(web_identity(&[token_file, shared]).is_none());
        // The token given in a deployment is never printed.
        let given = WebIdentityToken::Given("eyJ.secret.sig".to_owned());
        assert!(!format!("{given:?}").contains("secret"));
    }

    #[test]
    fn container_and_instance_metadata_come_last_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, FILE).unwrap();
        let shared = ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string());
        let no_file = ("AWS_SHARED_CREDENTIALS_FILE", "/no/such/file".to_owned());
        let full_uri = (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9/creds".to_owned(),
        );
        let imds = (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "http://127.0.0.1:10".to_owned(),
        );
        let none = CredentialParams::default();
        let found = |env: &[(&str, String)]| resolve_base(none, &env_of(env));
        let describe = |env: &[(&str, String)]| match found(env) {
            Ok(Some(BaseCredentials::Keys(keys))) => format!("keys {}", keys.access_key_id),
            Ok(Some(BaseCredentials::WebIdentity(_))) => "web identity".to_owned(),
            Ok(Some(BaseCredentials::Endpoint(CredentialEndpoint::Container(container)))) => {
                format!("container {}", container.url)
            }
            Ok(Some(BaseCredentials::Endpoint(CredentialEndpoint::InstanceMetadata(imds)))) => {
                format!("imds {}", imds.endpoint)
            }
            Ok(None) => "none".to_owned(),
            Err(error) => format!("error {error}"),
        };
        // Everything before them wins: the default profile, keys and web identity in the
        // environment.
        assert_eq!(
            describe(&[shared, full_uri.clone(), imds.clone()]),
            "keys AKIDDEFAULT"
        );
        let env_keys = [
            ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "s".to_owned()),
            full_uri.clone(),
        ];
        assert_eq!(describe(&env_keys), "keys AKIDENV");
        let irsa = [
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/token".to_owned()),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod".to_owned()),
            full_uri.clone(),
        ];
        assert_eq!(describe(&irsa), "web identity");
        // The container endpoint before the instance metadata service.
        assert_eq!(
            describe(&[no_file.clone(), full_uri.clone(), imds.clone()]),
            "container http://127.0.0.1:9/creds"
        );
        let ecs = (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/task".to_owned(),
        );
        assert_eq!(
            describe(&[no_file.clone(), ecs, full_uri]),
            "container http://169.254.170.2/v2/credentials/task"
        );
        assert_eq!(
            describe(&[no_file.clone(), imds.clone()]),
            "imds http://127.0.0.1:10"
        );
        assert_eq!(
            describe(std::slice::from_ref(&no_file)),
            "imds http://169.254.169.254"
        );
        let off = ("AWS_EC2_METADATA_DISABLED", "true".to_owned());
        assert_eq!(describe(&[no_file.clone(), imds, off]), "none");
        // A container URI that may not be used is a configuration error, not a skipped step.
        let remote = (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://credentials.example.com/".to_owned(),
        );
        assert!(describe(&[no_file, remote]).starts_with("error "));
        // The error when nothing answers names every step.
        let message = no_credentials_imds_disabled();
        for place in [
            "aws_access_key_id",
            "aws_profile_name",
            "aws_web_identity_token",
            "AWS_ACCESS_KEY_ID",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_PROFILE",
            "default profile",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "instance metadata",
        ] {
            assert!(message.contains(place), "{place}: {message}");
        }
    }

    #[test]
    fn web_identity_and_roles_combine_into_the_fewest_sts_calls() {
        let client = HttpClient::new().unwrap();
        let pod = WebIdentityParams {
            role_arn: "arn:aws:iam::1:role/pod".to_owned(),
            session_name: "from-env".to_owned(),
            token: WebIdentityToken::File(PathBuf::from("/token")),
        };
        let role = |arn: &str| AssumeRoleParams {
            role_arn: arn.to_owned(),
            session_name: "asked".to_owned(),
            external_id: None,
        };
        let source = |base: BaseCredentials, role: Option<AssumeRoleParams>| {
            CredentialSource::new(
                base,
                role,
                "https://sts.example",
                "us-east-1",
                client.clone(),
            )
        };
        let keys = AwsCredentials {
            access_key_id: "AKID".to_owned(),
            secret_access_key: "s".to_owned(),
            session_token: None,
        };
        assert!(matches!(
            source(BaseCredentials::Keys(keys.clone()), None).unwrap(),
            CredentialSource::Static(_)
        ));
        let assume = source(
            BaseCredentials::Keys(keys.clone()),
            Some(role("arn:aws:iam::2:role/b")),
        )
        .unwrap();
        assert!(matches!(
            sts_call(&assume),
            StsCall::AssumeRole {
                signer: CredentialSource::Static(_),
                ..
            }
        ));
        // Asked for the role the web identity already is: one exchange, the asked session name.
        let same_role = source(
            BaseCredentials::WebIdentity(pod.clone()),
            Some(role("arn:aws:iam::1:role/pod")),
        )
        .unwrap();
        assert!(
            matches!(sts_call(&same_role), StsCall::WebIdentity(found) if found.session_name == "asked")
        );
        // Another role: the web identity signs its AssumeRole.
        let chained = source(
            BaseCredentials::WebIdentity(pod),
            Some(role("arn:aws:iam::2:role/b")),
        )
        .unwrap();
        assert!(matches!(
            sts_call(&chained),
            StsCall::AssumeRole { signer, role }
                if matches!(sts_call(signer), StsCall::WebIdentity(_)) && role.role_arn.ends_with("/b")
        ));
        // Served credentials are used as they are, or sign the AssumeRole of a role asked for.
        let imds = || {
            BaseCredentials::Endpoint(CredentialEndpoint::InstanceMetadata(InstanceMetadata {
                endpoint: "http://127.0.0.1:9".to_owned(),
            }))
        };
        let served = source(imds(), None).unwrap();
        assert!(is_served(&served));
        let served_signer = source(imds(), Some(role("arn:aws:iam::2:role/b"))).unwrap();
        assert!(matches!(
            sts_call(&served_signer),
            StsCall::AssumeRole { signer, .. } if is_served(signer)
        ));
        assert!(CredentialSource::new(
            BaseCredentials::Keys(keys.clone()),
            Some(role("arn:aws:iam::2:role/b")),
            "not a url",
            "us-east-1",
            client.clone()
        )
        .is_err());
    }

    #[test]
    fn assume_role_answers_are_parsed() {
        let xml = Bytes::from_static(
            b"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
              <AssumeRoleResult><Credentials><AccessKeyId>ASIATEMP</AccessKeyId>\
              <SecretAccessKey>se/cr+et</SecretAccessKey><SessionToken>to&amp;ken</SessionToken>\
              <Expiration>2026-11-23T16:00:00.123Z</Expiration></Credentials></AssumeRoleResult>\
              </AssumeRoleResponse>",
        );
        let (credentials, expires) = parse_assume_role(&xml).unwrap();
        assert_eq!(credentials.access_key_id, "ASIATEMP");
        assert_eq!(credentials.secret_access_key, "se/cr+et");
        assert_eq!(credentials.session_token.as_deref(), Some("to&ken"));
        assert_eq!(
            expires
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_795_449_600
        );
        assert!(parse_assume_role(&Bytes::from_static(b"<Error/>")).is_none());
        assert!(parse_assume_role(&Bytes::from_static(b"\xff\xfe")).is_none());
        assert_eq!(
            form_encode(&[("RoleArn", "arn:aws:iam::1:role/r".to_owned())]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
        );
    }
}
