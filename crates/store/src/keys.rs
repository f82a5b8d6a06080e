//! Virtual keys: generation and the one-way hash under which they are stored.
//!
//! LiteLLM stores `sha256(raw).hexdigest()` in `LiteLLM_VerificationToken.token` and the
//! same value in `LiteLLM_SpendLogs.api_key`; we do exactly the same so a key created by
//! either proxy authenticates against the other.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};

/// URL-safe base64 alphabet: keys survive headers, query strings and shells unquoted.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Random characters after `sk-`: 32 × 6 bits = 192 bits of entropy.
const KEY_CHARS: usize = 32;

/// The stored form of a key: lowercase hex sha256 of the raw key, as LiteLLM computes it.
pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// A fresh key, `sk-` followed by 32 URL-safe characters drawn from the OS RNG.
pub fn generate_key() -> String {
    let mut key = String::with_capacity(3 + KEY_CHARS);
    key.push_str("sk-");
    for _ in 0..KEY_CHARS {
        key.push(char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]));
    }
    key
}

/// Whether `s` already is a stored token (64 lowercase hex digits) rather than a raw key.
pub fn is_token_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The token for a value an API caller passed as "key": LiteLLM endpoints accept either the
/// raw key or its hash, so a hash is kept and anything else is hashed.
pub fn token_for(key_or_hash: &str) -> String {
    if is_token_hash(key_or_hash) {
        key_or_hash.to_owned()
    } else {
        hash_key(key_or_hash)
    }
}

/// LiteLLM's display name for a key, `sk-...` and the last four characters.
pub fn key_name(raw: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = raw.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    format!("sk-...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        // sha256("sk-1234"), as LiteLLM stores the default master key's virtual key.
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert!(is_token_hash(&hash_key("x")));
        assert_eq!(token_for("sk-1234"), hash_key("sk-1234"));
        assert_eq!(token_for(&hash_key("a")), hash_key("a"));
    }

    #[test]
    fn generated_keys_are_prefixed_url_safe_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 35);
        assert!(a.starts_with("sk-"));
        assert!(a[3..].bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(key_name("sk-abcdefgh"), "sk-...efgh");
    }
}
