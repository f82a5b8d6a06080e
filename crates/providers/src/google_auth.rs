//! OAuth2 access tokens for Google APIs from a service-account key (Vertex AI).
//!
//! The key's private half signs an RS256 JWT assertion, which the key's `token_uri` exchanges
//! for an access token (RFC 7523 `jwt-bearer` grant). The token is cached until a minute
//! before it expires; when it must be renewed, concurrent callers wait for one exchange
//! instead of each starting their own.

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

impl ServiceAccountKey {
    /// Reads `vertex_credentials` as LiteLLM accepts it: the key's JSON (as a string or an
    /// already-parsed mapping) or the path of a key file.
    pub fn load(credentials: &Value) -> Result<Self, String> {
        let parsed = match credentials {
            Value::Object(_) => credentials.clone(),
            Value::String(text) if text.trim_start().starts_with('{') => serde_json::from_str(text)
                .map_err(|error| format!("vertex_credentials is not valid JSON: {error}"))?,
            Value::String(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the service-account file {path:?}: {error}")
                })?;
                serde_json::from_str(&text).map_err(|error| {
                    format!("the service-account file {path:?} is not valid JSON: {error}")
                })?
            }
            _ => return Err("vertex_credentials must be a JSON string or a file path".to_owned()),
        };
        if parsed.get("type").and_then(Value::as_str) == Some("authorized_user") {
            return Err(
                "user credentials (authorized_user) are not supported; use a service-account key"
                    .to_owned(),
            );
        }
        serde_json::from_value(parsed)
            .map_err(|error| format!("not a service-account key: {error}"))
    }
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

/// Issues (and caches) access tokens for one service account.
pub struct GoogleTokenSource {
    client_email: String,
    key_id: Option<String>,
    token_uri: String,
    signing_key: jsonwebtoken::EncodingKey,
    client: HttpClient,
    cached: Mutex<Option<CachedToken>>,
    /// Held while one caller renews the token; the others wait on it and reuse the result.
    renewing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GoogleTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleTokenSource")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn auth_error(provider: &'static str, message: String) -> ProviderError {
    ProviderError::from_upstream(provider, 401, message, None, None, None, None)
}

impl GoogleTokenSource {
    pub fn new(key: &ServiceAccountKey, client: HttpClient) -> Result<Self, String> {
        let signing_key = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
            .map_err(|error| format!("the service account's private_key is unusable: {error}"))?;
        Ok(Self {
            client_email: key.client_email.clone(),
            key_id: key.private_key_id.clone(),
            token_uri: key
                .token_uri
                .clone()
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            signing_key,
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
        let assertion = self.assertion(provider).await?;
        let (value, lifetime) = self.exchange(provider, &assertion, timeout).await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_MARGIN);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedToken {
            value: value.clone(),
            renew_at,
        });
        Ok(value)
    }

    /// Signs the JWT on the blocking pool: an RSA signature takes about a millisecond.
    async fn assertion(&self, provider: &'static str) -> Result<String, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        let email = self.client_email.clone();
        let audience = self.token_uri.clone();
        let key = self.signing_key.clone();
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

    async fn exchange(
        &self,
        provider: &'static str,
        assertion: &str,
        timeout: Duration,
    ) -> Result<(String, Duration), ProviderError> {
        // The assertion is base64url and dots: nothing in it needs form-encoding.
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let request = self
            .client
            .inner()
            .post(&self.token_uri)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send();
        let response = match tokio::time::timeout(timeout, request).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider,
                    after: timeout,
                })
            }
            Ok(Err(error)) => return Err(crate::http::transport_error(provider, error, timeout)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let bytes = match tokio::time::timeout(timeout, response.bytes()).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) => return Err(crate::http::transport_error(provider, error, timeout)),
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider,
                    after: timeout,
                })
            }
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .map_or_else(
                    || String::from_utf8_lossy(&bytes).chars().take(300).collect(),
                    str::to_owned,
                );
            return Err(auth_error(
                provider,
                format!(
                    "the token endpoint refused the service account (HTTP {}): {reason}",
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
                    "the token endpoint answered without an access_token".to_owned(),
                )
            })?;
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok((token.to_owned(), Duration::from_secs(lifetime)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_load_from_json_text_mapping_or_path() {
        let key = json!({"type": "service_account", "client_email": "a@b.iam", "private_key": "k",
            "token_uri": "http://t"});
        let from_text = ServiceAccountKey::load(&Value::String(key.to_string())).unwrap();
        assert_eq!(from_text.client_email, "a@b.iam");
        let from_map = ServiceAccountKey::load(&key).unwrap();
        assert_eq!(from_map.token_uri.as_deref(), Some("http://t"));
        let file = std::env::temp_dir().join(format!("sa-{}.json", std::process::id()));
        std::fs::write(&file, key.to_string()).unwrap();
        let from_path =
            ServiceAccountKey::load(&Value::String(file.display().to_string())).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(from_path.client_email, "a@b.iam");
        assert!(ServiceAccountKey::load(&json!("/no/such/file.json")).is_err());
        assert!(ServiceAccountKey::load(&json!({"type": "authorized_user"})).is_err());
        assert!(format!("{from_text:?}").contains("<redacted>"));
    }

    #[test]
    fn a_bad_private_key_is_refused_up_front() {
        let key =
            ServiceAccountKey::load(&json!({"client_email": "a@b", "private_key": "not a pem"}))
                .unwrap();
        let client = HttpClient::new().unwrap();
        assert!(GoogleTokenSource::new(&key, client).is_err());
    }
}
