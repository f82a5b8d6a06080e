//! Temporary credentials the compute environment serves over HTTP: the last two steps of the
//! credential chain (see [`super::credentials`]), as the AWS SDKs take them.
//!
//! - The container credentials endpoint. ECS gives a task its role through
//!   `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, a path on `http://169.254.170.2`; EKS Pod
//!   Identity (or any local credentials agent) through `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
//!   which must be `https`, or `http` to a loopback address or one of the link-local addresses
//!   ECS and EKS serve from, so that credentials never cross a network in clear text. The
//!   `Authorization` header is the contents of `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read
//!   at every fetch, since EKS rotates it), else `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
//! - The EC2 instance metadata service (IMDS), version 2 only: a `PUT` of `/latest/api/token`
//!   yields a session token without which the service answers nothing, then
//!   `/latest/meta-data/iam/security-credentials/` names the instance profile's role and
//!   `.../security-credentials/{role}` gives its credentials. IMDSv1 (plain `GET`s) is not
//!   used: it is what server-side request forgery reads credentials through. The service is at
//!   `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254` (or
//!   `http://[fd00:ec2::254]` with `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`);
//!   `AWS_EC2_METADATA_DISABLED=true` takes it out of the chain.
//!
//! Both answer JSON with `AccessKeyId`, `SecretAccessKey`, `Token` and `Expiration` (IMDS adds
//! `Code`, `Success` when all is well). Both are asked through a client of their own that gives
//! up connecting within a second or two: off AWS the addresses lead nowhere, and a call must
//! fail quickly instead of waiting out its timeout.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::aws_time::parse_rfc3339;
use super::credentials::{credential_error, no_credentials_message, send_within};
use super::encode_segment;
use super::sigv4::AwsCredentials;
use crate::ProviderError;

/// Where ECS serves a task's credentials; `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is a path on it.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// The addresses besides loopback that `AWS_CONTAINER_CREDENTIALS_FULL_URI` may name over
/// plain `http`: ECS's, and EKS Pod Identity's (IPv4 and IPv6).
const CONTAINER_LINK_LOCAL_HOSTS: [&str; 3] = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];
const IMDS_IPV4_ENDPOINT: &str = "http://169.254.169.254";
const IMDS_IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";
const IMDS_TOKEN_PATH: &str = "/latest/api/token";
const IMDS_ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const IMDS_TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const IMDS_TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// The session token's lifetime the SDKs ask for (six hours, the maximum); a token is used only
/// for the two reads that follow it.
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";
/// IMDS is on the instance's own link: it answers within milliseconds or is not there.
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The container endpoint is a local agent; the SDKs allow it a little longer.
const CONTAINER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Neither service takes long to answer once connected; a call's own (possibly long) timeout
/// bounds each request only when it is shorter.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP endpoint of the environment that serves a role's temporary credentials.
#[derive(Debug, Clone)]
pub enum CredentialEndpoint {
    Container(ContainerEndpoint),
    InstanceMetadata(InstanceMetadata),
}

/// The container credentials endpoint (ECS task role, EKS Pod Identity).
#[derive(Debug, Clone)]
pub struct ContainerEndpoint {
    pub url: reqwest::Url,
    /// The environment variable the URL came from, to name in errors.
    pub variable: &'static str,
    pub authorization: Option<ContainerAuthorization>,
}

/// The `Authorization` header the container endpoint expects.
#[derive(Clone)]
pub enum ContainerAuthorization {
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Token(String),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read at every fetch.
    File(PathBuf),
}

impl std::fmt::Debug for ContainerAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The EC2 instance metadata service.
#[derive(Debug, Clone)]
pub struct InstanceMetadata {
    /// Scheme, host and port, no trailing slash.
    pub endpoint: String,
}

fn set(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.trim().is_empty())
}

impl ContainerEndpoint {
    /// The endpoint the environment names, if any: the relative URI before the full one.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let authorization = set(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
            .map(|file| ContainerAuthorization::File(PathBuf::from(file)))
            .or_else(|| {
                set(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
                    .map(|token| ContainerAuthorization::Token(token.trim().to_owned()))
            });
        if let Some(relative) = set(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let variable = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
            // Joined as text: a value without its leading slash would change the host.
            if !relative.starts_with('/') {
                return Err(format!("{variable} {relative:?} must start with '/'"));
            }
            let url = reqwest::Url::parse(&format!("{ECS_CREDENTIALS_HOST}{relative}"))
                .map_err(|error| format!("invalid {variable} {relative:?}: {error}"))?;
            return Ok(Some(Self {
                url,
                variable,
                authorization,
            }));
        }
        let Some(full) = set(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
            return Ok(None);
        };
        let variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
        let url = reqwest::Url::parse(full.trim())
            .map_err(|error| format!("invalid {variable} {full:?}: {error}"))?;
        let allowed = match url.scheme() {
            "https" => true,
            "http" => url.host_str().is_some_and(plain_http_allowed),
            _ => false,
        };
        if !allowed {
            return Err(format!(
                "{variable} {full:?} must be https, or http to a loopback address, 169.254.170.2 \
                 (ECS) or 169.254.170.23 / fd00:ec2::23 (EKS Pod Identity)"
            ));
        }
        Ok(Some(Self {
            url,
            variable,
            authorization,
        }))
    }
}

/// Whether credentials may be fetched from `host` without TLS: only from this machine or the
/// link-local agents of ECS and EKS. Host names other than `localhost` are refused rather than
/// resolved, since what a name resolves to can change after this check.
fn plain_http_allowed(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(address) => {
            address.is_loopback()
                || CONTAINER_LINK_LOCAL_HOSTS
                    .iter()
                    .any(|allowed| allowed.parse() == Ok(address))
        }
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

impl InstanceMetadata {
    /// The service as the environment configures it; `None` when `AWS_EC2_METADATA_DISABLED`
    /// is `true`.
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        if set(env, "AWS_EC2_METADATA_DISABLED")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
        {
            return Ok(None);
        }
        let endpoint = match set(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            Some(endpoint) => {
                let trimmed = endpoint.trim().trim_end_matches('/');
                reqwest::Url::parse(trimmed).map_err(|error| {
                    format!("invalid AWS_EC2_METADATA_SERVICE_ENDPOINT {endpoint:?}: {error}")
                })?;
                trimmed.to_owned()
            }
            None => match set(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
                None => IMDS_IPV4_ENDPOINT.to_owned(),
                Some(mode) if mode.trim().eq_ignore_ascii_case("ipv4") => {
                    IMDS_IPV4_ENDPOINT.to_owned()
                }
                Some(mode) if mode.trim().eq_ignore_ascii_case("ipv6") => {
                    IMDS_IPV6_ENDPOINT.to_owned()
                }
                Some(mode) => {
                    return Err(format!(
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be IPv4 or IPv6, not {mode:?}"
                    ))
                }
            },
        };
        Ok(Some(Self { endpoint }))
    }
}

/// Asks one [`CredentialEndpoint`] for credentials.
pub struct CredentialFetcher {
    endpoint: CredentialEndpoint,
    client: reqwest::Client,
}

impl std::fmt::Debug for CredentialFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CredentialFetcher")
            .field(&self.endpoint)
            .finish()
    }
}

impl CredentialFetcher {
    pub fn new(endpoint: CredentialEndpoint) -> Result<Self, String> {
        let connect_timeout = match endpoint {
            CredentialEndpoint::Container(_) => CONTAINER_CONNECT_TIMEOUT,
            CredentialEndpoint::InstanceMetadata(_) => IMDS_CONNECT_TIMEOUT,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Both services are on this machine or its own link; never through a proxy.
            .no_proxy()
            .build()
            .map_err(|error| format!("cannot build the AWS credentials client: {error}"))?;
        Ok(Self { endpoint, client })
    }

    pub fn endpoint(&self) -> &CredentialEndpoint {
        &self.endpoint
    }

    /// Fresh credentials and when they expire; `timeout` bounds each request (within
    /// [`REQUEST_TIMEOUT`]).
    pub async fn fetch(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<(AwsCredentials, SystemTime), ProviderError> {
        let timeout = timeout.min(REQUEST_TIMEOUT);
        match &self.endpoint {
            CredentialEndpoint::Container(container) => {
                self.ask_container(container, provider, timeout).await
            }
            CredentialEndpoint::InstanceMetadata(imds) => {
                self.ask_instance_metadata(imds, provider, timeout).await
            }
        }
    }

    async fn ask_container(
        &self,
        container: &ContainerEndpoint,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<(AwsCredentials, SystemTime), ProviderError> {
        let failed = |status: u16, reason: String| {
            credential_error(
                provider,
                status,
                format!(
                    "cannot get AWS credentials from the container endpoint {} ({}): {reason}",
                    container.url, container.variable
                ),
            )
        };
        let mut request = self.client.get(container.url.clone());
        if let Some(authorization) = &container.authorization {
            let mut value = container_authorization(authorization)
                .await
                .map_err(|reason| failed(401, reason))?;
            value.set_sensitive(true);
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let (status, body) = send_within(provider, request, timeout)
            .await
            .map_err(|error| failed(401, error.to_string()))?;
        if !status.is_success() {
            return Err(failed(status.as_u16(), answer_text(status, &body)));
        }
        parse_served_credentials(&body).map_err(|reason| failed(401, reason))
    }

    /// The IMDSv2 exchange. Anything short of credentials means the instance has none to give
    /// (not on EC2, IMDS turned off, no instance profile): reported with every other place the
    /// chain looked at, unless IMDS only failed for the moment (5xx, 429).
    async fn ask_instance_metadata(
        &self,
        imds: &InstanceMetadata,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<(AwsCredentials, SystemTime), ProviderError> {
        let endpoint = &imds.endpoint;
        let none_here = |status: Option<StatusCode>, reason: String| {
            let status = status.map_or(401, |status| status.as_u16());
            let message = no_credentials_message(&format!(
                "the EC2 instance metadata service at {endpoint}, which gave none ({reason})"
            ));
            credential_error(provider, status, message)
        };
        let token_request = self
            .client
            .put(format!("{endpoint}{IMDS_TOKEN_PATH}"))
            .header(IMDS_TOKEN_TTL_HEADER, IMDS_TOKEN_TTL_SECONDS);
        let (status, body) = send_within(provider, token_request, timeout)
            .await
            .map_err(|error| none_here(None, error.to_string()))?;
        if !status.is_success() {
            let reason = format!("session token refused: {}", answer_text(status, &body));
            return Err(none_here(Some(status), reason));
        }
        let mut token = HeaderValue::from_bytes(String::from_utf8_lossy(&body).trim().as_bytes())
            .map_err(|_| none_here(None, "unusable session token".to_owned()))?;
        token.set_sensitive(true);
        let read = |path: String| {
            let request = self
                .client
                .get(format!("{endpoint}{path}"))
                .header(IMDS_TOKEN_HEADER, token.clone());
            async move {
                let (status, body) = send_within(provider, request, timeout)
                    .await
                    .map_err(|error| none_here(None, error.to_string()))?;
                if status.is_success() {
                    Ok(body)
                } else {
                    let reason = if status == StatusCode::NOT_FOUND {
                        "no IAM role is attached to the instance".to_owned()
                    } else {
                        answer_text(status, &body)
                    };
                    Err(none_here(Some(status), reason))
                }
            }
        };
        let roles = read(IMDS_ROLE_PATH.to_owned()).await?;
        let roles = String::from_utf8_lossy(&roles);
        let Some(role) = roles.lines().map(str::trim).find(|line| !line.is_empty()) else {
            return Err(none_here(
                None,
                "no IAM role is attached to the instance".to_owned(),
            ));
        };
        let body = read(format!("{IMDS_ROLE_PATH}{}", encode_segment(role))).await?;
        parse_served_credentials(&body)
            .map_err(|reason| none_here(None, format!("role {role}: {reason}")))
    }
}

/// The `Authorization` value: the token file's contents as they are now, else the token.
async fn container_authorization(
    authorization: &ContainerAuthorization,
) -> Result<HeaderValue, String> {
    let token = match authorization {
        ContainerAuthorization::Token(token) => token.clone(),
        ContainerAuthorization::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|error| {
                format!(
                    "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {error}",
                    path.display()
                )
            })?
            .trim()
            .to_owned(),
    };
    HeaderValue::from_str(&token)
        .map_err(|_| "the container authorization token is not a valid header value".to_owned())
}

/// `HTTP {status}: {the start of the body}`.
fn answer_text(status: StatusCode, body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
    format!("HTTP {}: {}", status.as_u16(), text.trim())
}

/// The JSON both services answer (ECS reports errors as `code` / `message`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServedCredentials {
    #[serde(default, alias = "code")]
    code: Option<String>,
    #[serde(default, alias = "message")]
    message: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    secret_access_key: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Credentials and their expiry from a container endpoint's or IMDS's answer.
fn parse_served_credentials(body: &[u8]) -> Result<(AwsCredentials, SystemTime), String> {
    let served: ServedCredentials = serde_json::from_slice(body)
        .map_err(|error| format!("the answer is not credentials JSON: {error}"))?;
    if let Some(code) = served.code.filter(|code| code != "Success") {
        return Err(format!(
            "{code}: {}",
            served.message.unwrap_or_else(|| "no message".to_owned())
        ));
    }
    let non_empty = |value: Option<String>| value.filter(|value| !value.is_empty());
    let (Some(access_key_id), Some(secret_access_key)) = (
        non_empty(served.access_key_id),
        non_empty(served.secret_access_key),
    ) else {
        return Err("the answer has no AccessKeyId and SecretAccessKey".to_owned());
    };
    let expiration =
        non_empty(served.expiration).ok_or_else(|| "the answer has no Expiration".to_owned())?;
    let expires = parse_rfc3339(&expiration)
        .ok_or_else(|| format!("the answer's Expiration {expiration:?} is not a UTC time"))?;
    let credentials = AwsCredentials {
        access_key_id,
        secret_access_key,
        session_token: non_empty(served.token),
    };
    Ok((credentials, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn container(pairs: &'static [(&'static str, &'static str)]) -> Result<Option<String>, String> {
        ContainerEndpoint::from_env(&env_of(pairs))
            .map(|found| found.map(|endpoint| endpoint.url.to_string()))
    }

    #[test]
    fn the_container_endpoint_comes_from_the_relative_uri_before_the_full_one() {
        assert_eq!(container(&[]).unwrap(), None);
        assert_eq!(
            container(&[
                (
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "/v2/credentials/abc"
                ),
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://127.0.0.1:9/creds"
                ),
            ])
            .unwrap()
            .as_deref(),
            Some("http://169.254.170.2/v2/credentials/abc")
        );
        assert_eq!(
            container(&[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds"
            )])
            .unwrap()
            .as_deref(),
            Some("http://127.0.0.1:9/creds")
        );
        // A relative URI without its slash would move the host.
        assert!(
            container(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ".evil.example/x")]).is_err()
        );
    }

    fn with_full_uri(uri: &str) -> Result<Option<ContainerEndpoint>, String> {
        ContainerEndpoint::from_env(&|name: &str| {
            (name == "AWS_CONTAINER_CREDENTIALS_FULL_URI").then(|| uri.to_owned())
        })
    }

    #[test]
    fn a_full_uri_over_plain_http_must_stay_on_this_machine_or_the_aws_link() {
        for allowed in [
            "http://127.0.0.1:8080/creds",
            "http://127.1.2.3/creds",
            "http://[::1]:80/creds",
            "http://localhost/creds",
            "http://169.254.170.2/v1/credentials",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "https://credentials.example.com/role",
        ] {
            assert!(matches!(with_full_uri(allowed), Ok(Some(_))), "{allowed}");
        }
        for refused in [
            "http://10.0.0.5/creds",
            "http://credentials.example.com/role",
            "http://169.254.169.254/latest",
            "ftp://127.0.0.1/creds",
            "not a url",
        ] {
            assert!(with_full_uri(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_token_file_wins_over_the_token_and_is_never_printed() {
        let both = ContainerEndpoint::from_env(&env_of(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
        ]))
        .unwrap()
        .unwrap();
        assert!(
            matches!(&both.authorization, Some(ContainerAuthorization::File(path))
            if path.ends_with("token"))
        );
        let token = ContainerEndpoint::from_env(&env_of(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"),
        ]))
        .unwrap()
        .unwrap();
        assert!(!format!("{token:?}").contains("secret-token"));
        assert!(
            matches!(&token.authorization, Some(ContainerAuthorization::Token(value))
            if value == "secret-token")
        );
    }

    #[test]
    fn the_instance_metadata_service_is_on_unless_turned_off() {
        let endpoint = |pairs: &'static [(&'static str, &'static str)]| {
            InstanceMetadata::from_env(&env_of(pairs)).map(|found| found.map(|imds| imds.endpoint))
        };
        assert_eq!(
            endpoint(&[]).unwrap().as_deref(),
            Some("http://169.254.169.254")
        );
        assert_eq!(
            endpoint(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")])
                .unwrap()
                .as_deref(),
            Some("http://[fd00:ec2::254]")
        );
        assert_eq!(
            endpoint(&[
                (
                    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                    "http://127.0.0.1:1338/"
                ),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"),
            ])
            .unwrap()
            .as_deref(),
            Some("http://127.0.0.1:1338")
        );
        assert_eq!(
            endpoint(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]).unwrap(),
            None
        );
        assert!(endpoint(&[("AWS_EC2_METADATA_DISABLED", "false")])
            .unwrap()
            .is_some());
        assert!(endpoint(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5")]).is_err());
        assert!(endpoint(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "no scheme")]).is_err());
    }

    #[test]
    fn served_credentials_are_parsed_and_failures_explained() {
        let imds = br#"{"Code":"Success","LastUpdated":"2026-11-23T10:00:00Z","Type":"AWS-HMAC",
            "AccessKeyId":"ASIAINSTANCE","SecretAccessKey":"in/stance+secret",
            "Token":"IQoJinstance==","Expiration":"2026-11-23T16:00:00Z"}"#;
        let (credentials, expires) = parse_served_credentials(imds).unwrap();
        assert_eq!(credentials.access_key_id, "ASIAINSTANCE");
        assert_eq!(credentials.secret_access_key, "in/stance+secret");
        assert_eq!(credentials.session_token.as_deref(), Some("IQoJinstance=="));
        assert_eq!(Some(expires), parse_rfc3339("2026-11-23T16:00:00Z"));
        // ECS: no Code; a local agent may serve keys without a session token.
        let ecs = br#"{"AccessKeyId":"AKIDAGENT","SecretAccessKey":"s","Expiration":"2026-11-23T16:00:00Z","RoleArn":"arn:aws:iam::1:role/task"}"#;
        assert_eq!(parse_served_credentials(ecs).unwrap().0.session_token, None);
        let refused =
            br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 cannot assume the role"}"#;
        let reason = parse_served_credentials(refused).unwrap_err();
        assert!(reason.contains("AssumeRoleUnauthorizedAccess: EC2 cannot assume the role"));
        let ecs_error = br#"{"code":"InvalidToken","message":"bad authorization"}"#;
        assert!(parse_served_credentials(ecs_error)
            .unwrap_err()
            .contains("InvalidToken: bad authorization"));
        let no_expiry = br#"{"AccessKeyId":"A","SecretAccessKey":"s","Token":"t"}"#;
        assert!(parse_served_credentials(no_expiry)
            .unwrap_err()
            .contains("Expiration"));
        let local_time =
            br#"{"AccessKeyId":"A","SecretAccessKey":"s","Expiration":"2026-11-23T16:00:00+01:00"}"#;
        assert!(parse_served_credentials(local_time).is_err());
        assert!(parse_served_credentials(br#"{"AccessKeyId":"A"}"#).is_err());
        assert!(parse_served_credentials(b"<html>").is_err());
    }
}
