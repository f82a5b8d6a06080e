//! OAuth2 access tokens for Google APIs (Vertex AI), from the credential kinds Google's own
//! libraries accept as Application Default Credentials:
//!
//! - a service-account key: its private half signs an RS256 JWT assertion, which the key's
//!   `token_uri` exchanges for an access token (RFC 7523 `jwt-bearer` grant);
//! - user credentials (`"type": "authorized_user"`, what `gcloud auth application-default
//!   login` writes): the refresh token is exchanged at the token URI with the OAuth client's
//!   id and secret (RFC 6749 `refresh_token` grant);
//! - the metadata server of the machine (Compute Engine, GKE, Cloud Run): it hands out tokens
//!   of the service account attached to the machine, to requests that carry
//!   `Metadata-Flavor: Google`.
//!
//! Where the credential comes from ([`GoogleCredentials::resolve`]): the deployment's
//! `vertex_credentials` (JSON text, a mapping, or a file path), else `VERTEXAI_CREDENTIALS`,
//! else `GOOGLE_APPLICATION_CREDENTIALS` (a file path), else gcloud's well-known file, else
//! the metadata server.
//!
//! The token is cached until a minute before it expires; when it must be renewed, concurrent
//! callers wait for one exchange instead of each starting their own.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{HttpClient, ProviderError};

/// The scope Vertex AI accepts.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Renew this long before the token's stated expiry, so no call carries an expired token.
const RENEW_MARGIN: Duration = Duration::from_secs(60);
const ASSERTION_LIFETIME_SECS: u64 = 3600;
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Where Google's libraries find the metadata server unless told otherwise.
const METADATA_DEFAULT_HOST: &str = "metadata.google.internal";
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const METADATA_PROJECT_PATH: &str = "/computeMetadata/v1/project/project-id";
/// The metadata server answers within milliseconds where there is one; off Google Cloud its
/// address leads nowhere, and a call must fail quickly instead of waiting out the call timeout.
const METADATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The fields of a service-account JSON key file that the exchange needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// User credentials (`"type": "authorized_user"`): an OAuth client and a refresh token.
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    #[serde(default)]
    pub token_uri: Option<String>,
    /// The project billed for quota; used as the Vertex project when none is configured.
    #[serde(default)]
    pub quota_project_id: Option<String>,
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The machine's metadata server, where a workload on Google Cloud gets the tokens of its
/// attached service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataServer {
    /// `host[:port]`.
    pub host: String,
}

impl MetadataServer {
    /// The host Google's libraries use: `GCE_METADATA_HOST` (formerly `GCE_METADATA_ROOT`),
    /// else `GCE_METADATA_IP`, else `metadata.google.internal`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let host = ["GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP"]
            .into_iter()
            .find_map(|name| env(name).filter(|value| !value.trim().is_empty()))
            .unwrap_or_else(|| METADATA_DEFAULT_HOST.to_owned());
        Self {
            host: host.trim().trim_end_matches('/').to_owned(),
        }
    }

    /// `http://{host}`; a host written with its scheme is taken as it is.
    fn root(&self) -> String {
        if self.host.starts_with("http://") || self.host.starts_with("https://") {
            self.host.clone()
        } else {
            format!("http://{}", self.host)
        }
    }
}

/// One Google credential, by the `type` of its JSON, or the metadata server.
#[derive(Debug, Clone)]
pub enum GoogleCredentials {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
    ComputeMetadata(MetadataServer),
}

impl GoogleCredentials {
    /// Reads `vertex_credentials` as LiteLLM accepts it: the credential's JSON (as a string or
    /// an already-parsed mapping) or the path of a JSON file.
    pub fn load(credentials: &Value) -> Result<Self, String> {
        let parsed = match credentials {
            Value::Object(_) => credentials.clone(),
            Value::String(text) if text.trim_start().starts_with('{') => serde_json::from_str(text)
                .map_err(|error| format!("vertex_credentials is not valid JSON: {error}"))?,
            Value::String(path) => read_json_file(path)?,
            _ => return Err("vertex_credentials must be a JSON string or a file path".to_owned()),
        };
        match parsed.get("type").and_then(Value::as_str) {
            Some("authorized_user") => serde_json::from_value(parsed)
                .map(Self::AuthorizedUser)
                .map_err(|error| format!("not usable user credentials: {error}")),
            // Key files always say `service_account`; a bare mapping with the key's fields is
            // accepted too.
            Some("service_account") | None => serde_json::from_value(parsed)
                .map(Self::ServiceAccount)
                .map_err(|error| format!("not a service-account key: {error}")),
            Some(other) => Err(format!(
                "credentials of type {other:?} are not supported; use a service-account key or \
                 authorized_user credentials"
            )),
        }
    }

    /// The credential a Vertex deployment uses: `configured` (`vertex_credentials`), else
    /// `VERTEXAI_CREDENTIALS`, else Application Default Credentials as Google's libraries find
    /// them: the file named by `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
    /// `application_default_credentials.json` (under `CLOUDSDK_CONFIG`, else
    /// `~/.config/gcloud`) when it exists, else the metadata server. Whether there is one is
    /// only known when it is asked for a token.
    pub fn resolve(
        configured: Option<&Value>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let explicit = configured
            .cloned()
            .or_else(|| env("VERTEXAI_CREDENTIALS").map(Value::String))
            .or_else(|| env("GOOGLE_APPLICATION_CREDENTIALS").map(Value::String));
        if let Some(value) = explicit {
            return Self::load(&value);
        }
        let well_known = env("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".config/gcloud")))
            .map(|dir| dir.join("application_default_credentials.json"))
            .filter(|path| path.is_file());
        match well_known {
            Some(path) => Self::load(&Value::String(path.display().to_string())),
            None => Ok(Self::ComputeMetadata(MetadataServer::from_env(env))),
        }
    }

    /// The project the credential names, the default Vertex project. The metadata server's
    /// project is only known by asking it ([`GoogleTokenSource::metadata_project_id`]).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Self::ServiceAccount(key) => key.project_id.as_deref(),
            Self::AuthorizedUser(user) => user.quota_project_id.as_deref(),
            Self::ComputeMetadata(_) => None,
        }
    }
}

fn read_json_file(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the credentials file {path:?}: {error}"))?;
    serde_json::from_str(&text)
        .map_err(|error| format!("the credentials file {path:?} is not valid JSON: {error}"))
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Debug, Clone)]
struct CachedToken {
    value: String,
    renew_at: Instant,
}

/// How the token endpoint is asked for an access token.
enum Grant {
    /// A JWT signed with the service account's key.
    ServiceAccount {
        client_email: String,
        key_id: Option<String>,
        signing_key: jsonwebtoken::EncodingKey,
    },
    /// A user's refresh token with the OAuth client that issued it.
    RefreshToken {
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
    /// A plain `GET` of the metadata server's token, through a client of its own that gives up
    /// connecting after [`METADATA_CONNECT_TIMEOUT`].
    Metadata {
        root: String,
        client: reqwest::Client,
        /// The metadata server's project, asked once.
        project: tokio::sync::OnceCell<String>,
    },
}

/// Issues (and caches) access tokens for one credential.
pub struct GoogleTokenSource {
    grant: Grant,
    token_uri: String,
    client: HttpClient,
    cached: Mutex<Option<CachedToken>>,
    /// Held while one caller renews the token; the others wait on it and reuse the result.
    renewing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GoogleTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match &self.grant {
            Grant::ServiceAccount { client_email, .. } => client_email.as_str(),
            Grant::RefreshToken { client_id, .. } => client_id.as_str(),
            Grant::Metadata { .. } => "the metadata server's default service account",
        };
        f.debug_struct("GoogleTokenSource")
            .field("principal", &who)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn auth_error(provider: &'static str, message: String) -> ProviderError {
    ProviderError::from_upstream(provider, 401, message, None, None, None, None)
}

/// The header without which the metadata server refuses a request (so that a request a
/// server-side forgery makes on the workload's behalf cannot read its tokens).
fn metadata_flavor(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("Metadata-Flavor", "Google")
}

/// Sends `request` and reads its whole answer within `timeout`.
async fn fetch(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(http::StatusCode, bytes::Bytes), ProviderError> {
    let timed_out = || ProviderError::Timeout {
        provider,
        after: timeout,
    };
    let response = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(error)) => return Err(crate::http::transport_error(provider, error, timeout)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    match tokio::time::timeout(timeout, response.bytes()).await {
        Ok(Ok(bytes)) => Ok((status, bytes)),
        Ok(Err(error)) => Err(crate::http::transport_error(provider, error, timeout)),
        Err(_) => Err(timed_out()),
    }
}

/// A metadata server that cannot be reached means there are no credentials at all: reported
/// as such (an authentication error saying where it looked), not as an upstream outage.
fn metadata_unreachable(
    provider: &'static str,
    root: &str,
    error: &ProviderError,
) -> ProviderError {
    auth_error(
        provider,
        format!(
            "no Vertex AI credentials: vertex_credentials, VERTEXAI_CREDENTIALS and \
             GOOGLE_APPLICATION_CREDENTIALS are unset, there is no gcloud \
             application_default_credentials.json, and the GCE metadata server at {root} \
             did not answer ({error}); set one of them, or run on Google Cloud"
        ),
    )
}

impl GoogleTokenSource {
    pub fn new(credentials: &GoogleCredentials, client: HttpClient) -> Result<Self, String> {
        let (grant, token_uri) = match credentials {
            GoogleCredentials::ServiceAccount(key) => {
                let signing_key =
                    jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(
                        |error| format!("the service account's private_key is unusable: {error}"),
                    )?;
                let grant = Grant::ServiceAccount {
                    client_email: key.client_email.clone(),
                    key_id: key.private_key_id.clone(),
                    signing_key,
                };
                (grant, key.token_uri.clone())
            }
            GoogleCredentials::AuthorizedUser(user) => {
                let grant = Grant::RefreshToken {
                    client_id: user.client_id.clone(),
                    client_secret: user.client_secret.clone(),
                    refresh_token: user.refresh_token.clone(),
                };
                (grant, user.token_uri.clone())
            }
            GoogleCredentials::ComputeMetadata(server) => {
                let root = server.root();
                reqwest::Url::parse(&root)
                    .map_err(|error| format!("invalid metadata server host {root:?}: {error}"))?;
                let client = reqwest::Client::builder()
                    .connect_timeout(METADATA_CONNECT_TIMEOUT)
                    // The metadata server is on the machine's own link; never through a proxy.
                    .no_proxy()
                    .build()
                    .map_err(|error| format!("cannot build the metadata client: {error}"))?;
                let token_uri = format!("{root}{METADATA_TOKEN_PATH}");
                let grant = Grant::Metadata {
                    root,
                    client,
                    project: tokio::sync::OnceCell::new(),
                };
                (grant, Some(token_uri))
            }
        };
        Ok(Self {
            grant,
            token_uri: token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            client,
            cached: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
        })
    }

    fn fresh(&self) -> Option<String> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
            .map(|token| token.value.clone())
    }

    /// A valid access token; `provider` names errors, `timeout` bounds the exchange.
    pub async fn token(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<String, ProviderError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _renewing = self.renewing.lock().await;
        // Another caller may have renewed it while this one waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let (value, lifetime) = self.issue(provider, timeout).await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_MARGIN);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedToken {
            value: value.clone(),
            renew_at,
        });
        Ok(value)
    }

    /// Asks the token endpoint (or the metadata server) for a new token and its lifetime.
    async fn issue(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<(String, Duration), ProviderError> {
        let form: Vec<(&str, String)> = match &self.grant {
            Grant::ServiceAccount {
                client_email,
                key_id,
                signing_key,
            } => {
                let assertion = self
                    .assertion(provider, client_email, key_id, signing_key)
                    .await?;
                vec![
                    ("grant_type", JWT_BEARER_GRANT.to_owned()),
                    ("assertion", assertion),
                ]
            }
            Grant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
                ("refresh_token", refresh_token.clone()),
            ],
            Grant::Metadata { root, client, .. } => {
                let request = metadata_flavor(client.get(&self.token_uri));
                let (status, bytes) = fetch(provider, request, timeout)
                    .await
                    .map_err(|error| metadata_unreachable(provider, root, &error))?;
                return token_answer(provider, "the metadata server", status, &bytes);
            }
        };
        let request = self.client.inner().post(&self.token_uri).form(&form);
        let (status, bytes) = fetch(provider, request, timeout).await?;
        token_answer(provider, "the token endpoint", status, &bytes)
    }

    /// The project of the machine the metadata server describes, asked once and remembered.
    /// Only metadata-server credentials have a project to ask for.
    pub async fn metadata_project_id(
        &self,
        provider: &'static str,
        timeout: Duration,
    ) -> Result<String, ProviderError> {
        let Grant::Metadata {
            root,
            client,
            project,
        } = &self.grant
        else {
            return Err(ProviderError::BadRequest {
                provider,
                message: "no Vertex AI project: set vertex_project or VERTEXAI_PROJECT".to_owned(),
                param: None,
            });
        };
        let ask = || async {
            let request = metadata_flavor(client.get(format!("{root}{METADATA_PROJECT_PATH}")));
            let (status, bytes) = fetch(provider, request, timeout)
                .await
                .map_err(|error| metadata_unreachable(provider, root, &error))?;
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            if !status.is_success() || text.is_empty() {
                return Err(auth_error(
                    provider,
                    format!(
                        "the metadata server at {root} did not name the project (HTTP {}): {}; \
                         set vertex_project or VERTEXAI_PROJECT",
                        status.as_u16(),
                        text.chars().take(300).collect::<String>()
                    ),
                ));
            }
            Ok(text)
        };
        project.get_or_try_init(ask).await.cloned()
    }

    /// Signs the JWT on the blocking pool: an RSA signature takes about a millisecond.
    async fn assertion(
        &self,
        provider: &'static str,
        client_email: &str,
        key_id: &Option<String>,
        signing_key: &jsonwebtoken::EncodingKey,
    ) -> Result<String, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = key_id.clone();
        let email = client_email.to_owned();
        let audience = self.token_uri.clone();
        let key = signing_key.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let claims = Claims {
                iss: &email,
                scope: CLOUD_PLATFORM_SCOPE,
                aud: &audience,
                iat: now,
                exp: now + ASSERTION_LIFETIME_SECS,
            };
            jsonwebtoken::encode(&header, &claims, &key)
        })
        .await
        .map_err(|error| auth_error(provider, format!("signing the JWT failed: {error}")))?;
        signed.map_err(|error| auth_error(provider, format!("cannot sign the JWT: {error}")))
    }
}

/// The access token and its lifetime from a token endpoint's (or the metadata server's) JSON
/// answer, which both shape as `{access_token, expires_in, token_type}`; `issuer` names the
/// one that answered in errors.
fn token_answer(
    provider: &'static str,
    issuer: &str,
    status: http::StatusCode,
    bytes: &[u8],
) -> Result<(String, Duration), ProviderError> {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = body
            .get("error_description")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map_or_else(
                || String::from_utf8_lossy(bytes).chars().take(300).collect(),
                str::to_owned,
            );
        return Err(auth_error(
            provider,
            format!(
                "{issuer} refused the credentials (HTTP {}): {reason}",
                status.as_u16()
            ),
        ));
    }
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            auth_error(
                provider,
                format!("{issuer} answered without an access_token"),
            )
        })?;
    let lifetime = body
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(3600);
    Ok((token.to_owned(), Duration::from_secs(lifetime)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service_account(credentials: &GoogleCredentials) -> &ServiceAccountKey {
        match credentials {
            GoogleCredentials::ServiceAccount(key) => key,
            other => panic!("not a service account: {other:?}"),
        }
    }

    #[test]
    fn credentials_load_from_json_text_mapping_or_path() {
        let key = json!({"type": "service_account", "client_email": "a@b.iam", "private_key": "k",
            "token_uri": "http://t"});
        let from_text = GoogleCredentials::load(&Value::String(key.to_string())).unwrap();
        assert_eq!(service_account(&from_text).client_email, "a@b.iam");
        let from_map = GoogleCredentials::load(&key).unwrap();
        assert_eq!(
            service_account(&from_map).token_uri.as_deref(),
            Some("http://t")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sa.json");
        std::fs::write(&file, key.to_string()).unwrap();
        let from_path =
            GoogleCredentials::load(&Value::String(file.display().to_string())).unwrap();
        assert_eq!(service_account(&from_path).client_email, "a@b.iam");
        assert!(GoogleCredentials::load(&json!("/no/such/file.json")).is_err());
        assert!(GoogleCredentials::load(&json!({"type": "external_account"})).is_err());
        assert!(format!("{from_text:?}").contains("<redacted>"));
    }

    #[test]
    fn user_credentials_are_read_and_redacted() {
        let user = json!({"type": "authorized_user", "client_id": "cid", "client_secret": "cs",
            "refresh_token": "1//rt", "quota_project_id": "billing-project"});
        let credentials = GoogleCredentials::load(&user).unwrap();
        let GoogleCredentials::AuthorizedUser(loaded) = &credentials else {
            panic!("{credentials:?}")
        };
        assert_eq!(loaded.refresh_token, "1//rt");
        assert_eq!(credentials.project_id(), Some("billing-project"));
        let printed = format!("{credentials:?}");
        assert!(
            !printed.contains("1//rt") && !printed.contains("\"cs\""),
            "{printed}"
        );
        assert!(GoogleCredentials::load(&json!({"type": "authorized_user"})).is_err());
        let source = GoogleTokenSource::new(&credentials, HttpClient::new().unwrap()).unwrap();
        assert_eq!(source.token_uri, DEFAULT_TOKEN_URI);
    }

    #[test]
    fn application_default_credentials_are_found_where_google_looks() {
        let dir = tempfile::tempdir().unwrap();
        let user = json!({"type": "authorized_user", "client_id": "cid", "client_secret": "cs",
            "refresh_token": "rt"});
        let adc_file = dir.path().join("adc.json");
        std::fs::write(&adc_file, user.to_string()).unwrap();
        let gcloud = dir.path().join("gcloud");
        std::fs::create_dir(&gcloud).unwrap();
        let sa =
            json!({"type": "service_account", "client_email": "well@known", "private_key": "k"});
        std::fs::write(
            gcloud.join("application_default_credentials.json"),
            sa.to_string(),
        )
        .unwrap();
        let adc_path = adc_file.display().to_string();
        let gcloud_dir = gcloud.display().to_string();

        let env_file = |name: &str| match name {
            "GOOGLE_APPLICATION_CREDENTIALS" => Some(adc_path.clone()),
            "CLOUDSDK_CONFIG" => Some(gcloud_dir.clone()),
            _ => None,
        };
        let found = GoogleCredentials::resolve(None, env_file).unwrap();
        assert!(matches!(found, GoogleCredentials::AuthorizedUser(_)));

        let only_gcloud = |name: &str| (name == "CLOUDSDK_CONFIG").then(|| gcloud_dir.clone());
        let found = GoogleCredentials::resolve(None, only_gcloud).unwrap();
        assert_eq!(service_account(&found).client_email, "well@known");

        // The deployment's own value wins over the environment.
        let configured = json!({"client_email": "own@key", "private_key": "k"});
        let found = GoogleCredentials::resolve(Some(&configured), env_file).unwrap();
        assert_eq!(service_account(&found).client_email, "own@key");

        // With no file anywhere, the metadata server is the last resort.
        let empty_home = dir.path().join("home");
        let home = |name: &str| (name == "HOME").then(|| empty_home.display().to_string());
        let found = GoogleCredentials::resolve(None, home).unwrap();
        let GoogleCredentials::ComputeMetadata(server) = &found else {
            panic!("{found:?}")
        };
        assert_eq!(server.host, "metadata.google.internal");
        assert_eq!(found.project_id(), None);
    }

    #[test]
    fn the_metadata_host_comes_from_the_environment() {
        let host_of = |pairs: &'static [(&'static str, &'static str)]| {
            MetadataServer::from_env(|name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            })
            .root()
        };
        assert_eq!(host_of(&[]), "http://metadata.google.internal");
        assert_eq!(
            host_of(&[("GCE_METADATA_IP", "169.254.169.254")]),
            "http://169.254.169.254"
        );
        assert_eq!(
            host_of(&[
                ("GCE_METADATA_HOST", "127.0.0.1:8080/"),
                ("GCE_METADATA_IP", "169.254.169.254")
            ]),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            host_of(&[
                ("GCE_METADATA_HOST", " "),
                ("GCE_METADATA_ROOT", "legacy:1")
            ]),
            "http://legacy:1"
        );
        let source = GoogleTokenSource::new(
            &GoogleCredentials::ComputeMetadata(MetadataServer {
                host: "127.0.0.1:9".to_owned(),
            }),
            HttpClient::new().unwrap(),
        )
        .unwrap();
        assert_eq!(
            source.token_uri,
            "http://127.0.0.1:9/computeMetadata/v1/instance/service-accounts/default/token"
        );
        let bad_host = GoogleCredentials::ComputeMetadata(MetadataServer {
            host: "not a host".to_owned(),
        });
        assert!(GoogleTokenSource::new(&bad_host, HttpClient::new().unwrap()).is_err());
    }

    #[test]
    fn a_bad_private_key_is_refused_up_front() {
        let key =
            GoogleCredentials::load(&json!({"client_email": "a@b", "private_key": "not a pem"}))
                .unwrap();
        let client = HttpClient::new().unwrap();
        assert!(GoogleTokenSource::new(&key, client).is_err());
    }
}
