//! Authentication of callers by the gateway key they present.
//!
//! Today the one credential is the master key (`general_settings.master_key` or
//! `LITELLM_MASTER_KEY`), which makes the caller a proxy admin. Virtual keys slot in here:
//! the presented key's SHA-256 is already computed, which is how they are looked up.

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::HeaderMap;
use sha2_digest::sha256;
use subtle::ConstantTimeEq;
use switchyard_llm_types::ErrorKind;

use crate::error::ApiError;
use crate::state::Gateway;

/// Headers that may carry the key, in LiteLLM's order of precedence (after the configured
/// `litellm_key_header_name`).
const KEY_HEADERS: &[&str] = &[
    "x-litellm-api-key",
    "authorization",
    "api-key",
    "x-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];

/// How callers are checked.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Every request must carry the master key; its SHA-256 is compared in constant time.
    MasterKey { hash: [u8; 32] },
    /// No master key and the operator explicitly allowed it: every caller is admin.
    Disabled,
}

/// Who is calling. Virtual keys will add the key's identity, team and limits here.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// SHA-256 hex of the presented key (spend is tracked under it), when one was presented.
    pub key_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ProxyAdmin,
}

impl Authenticator {
    pub fn master_key(key: &str) -> Self {
        Authenticator::MasterKey {
            hash: sha256(key.as_bytes()),
        }
    }

    /// Checks the request's headers.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        custom_header: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let presented = presented_key(headers, custom_header);
        let expected = match self {
            Authenticator::Disabled => {
                return Ok(Caller {
                    role: Role::ProxyAdmin,
                    key_hash: presented.map(|key| hex_lower(&sha256(key.as_bytes()))),
                })
            }
            Authenticator::MasterKey { hash } => hash,
        };
        let Some(key) = presented else {
            return Err(auth_error("Authentication Error, No api key passed in."));
        };
        if !key.starts_with("sk-") {
            return Err(auth_error(format!(
                "Authentication Error, LiteLLM Virtual Key expected. Received={}, expected to start with 'sk-'.",
                masked(key)
            )));
        }
        let hash = sha256(key.as_bytes());
        if bool::from(hash.ct_eq(expected)) {
            Ok(Caller {
                role: Role::ProxyAdmin,
                key_hash: Some(hex_lower(&hash)),
            })
        } else {
            Err(auth_error(
                "Authentication Error, Invalid proxy server token passed",
            ))
        }
    }
}

fn auth_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Authentication, message, None)
}

/// The key from the first header that carries one, without its `Bearer ` / `Basic ` scheme.
fn presented_key<'a>(headers: &'a HeaderMap, custom_header: Option<&str>) -> Option<&'a str> {
    let custom = custom_header.and_then(|name| headers.get(name));
    let value = custom.or_else(|| KEY_HEADERS.iter().find_map(|name| headers.get(*name)))?;
    let text = value.to_str().ok()?.trim();
    let key = ["Bearer ", "bearer ", "Basic ", "basic "]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
        .unwrap_or(text)
        .trim();
    (!key.is_empty()).then_some(key)
}

/// Shows at most the last four characters of a key.
fn masked(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if key.chars().count() <= 8 {
        "****".to_owned()
    } else {
        format!("****{tail}")
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

mod sha2_digest {
    use sha2::{Digest, Sha256};

    pub fn sha256(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }
}

impl FromRequestParts<Gateway> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Gateway,
    ) -> Result<Self, Self::Rejection> {
        gateway
            .authenticator()
            .authenticate(&parts.headers, gateway.options().key_header.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn every_header_form_authenticates_the_master_key() {
        let auth = Authenticator::master_key("sk-master-123456");
        for (name, value) in [
            ("authorization", "Bearer sk-master-123456"),
            ("x-api-key", "sk-master-123456"),
            ("api-key", "sk-master-123456"),
            ("x-litellm-api-key", "Bearer sk-master-123456"),
        ] {
            assert!(
                auth.authenticate(&headers(&[(name, value)]), None).is_ok(),
                "{name}"
            );
        }
        assert!(auth
            .authenticate(
                &headers(&[("x-my-key", "sk-master-123456")]),
                Some("x-my-key")
            )
            .is_ok());
    }

    #[test]
    fn missing_wrong_and_non_sk_keys_are_401s_with_litellm_messages() {
        let auth = Authenticator::master_key("sk-master-123456");
        let cases = [
            (headers(&[]), "Authentication Error, No api key passed in."),
            (
                headers(&[("authorization", "Bearer sk-wrong")]),
                "Authentication Error, Invalid proxy server token passed",
            ),
            (
                headers(&[("authorization", "Bearer abc")]),
                "Authentication Error, LiteLLM Virtual Key expected.",
            ),
        ];
        for (headers, expected) in cases {
            let error = auth.authenticate(&headers, None).unwrap_err();
            assert_eq!(error.status(), 401);
            assert!(
                error.body().error.message.starts_with(expected),
                "{}",
                error.body().error.message
            );
            assert_eq!(error.body().error.kind.as_deref(), Some("auth_error"));
        }
    }

    #[test]
    fn x_litellm_api_key_wins_over_authorization() {
        let auth = Authenticator::master_key("sk-master-123456");
        let both = headers(&[
            ("authorization", "Bearer sk-wrong"),
            ("x-litellm-api-key", "sk-master-123456"),
        ]);
        assert!(auth.authenticate(&both, None).is_ok());
    }
}
