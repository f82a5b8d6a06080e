//! A stored entry: `{"timestamp": <epoch seconds>, "response": <json>}`, LiteLLM's shape.
//!
//! The response is kept as the raw JSON bytes it was stored as, so an L1 hit for a non-streamed
//! request can be written to the client without a parse or a re-serialisation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A cache hit (or an entry about to be stored).
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEntry {
    /// When the entry was stored, in seconds since the Unix epoch.
    pub timestamp: f64,
    /// The response JSON (a complete, non-streamed response body).
    pub response: Bytes,
}

impl CachedEntry {
    /// An entry for `response` stamped now.
    pub fn new(response: Bytes) -> CachedEntry {
        CachedEntry {
            timestamp: now_epoch_secs(),
            response,
        }
    }

    /// Seconds since the entry was stored (zero when the clock went backwards).
    pub fn age(&self) -> Duration {
        Duration::try_from_secs_f64((now_epoch_secs() - self.timestamp).max(0.0))
            .unwrap_or(Duration::MAX)
    }

    /// Whether `s-maxage` accepts this entry.
    pub fn is_fresh_for(&self, s_maxage: Option<Duration>) -> bool {
        s_maxage.is_none_or(|limit| self.age() <= limit)
    }

    /// Parses the response into a wire type (`ChatCompletionResponse`, `Embedding`, ...).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.response)
    }

    /// The stored form: `{"timestamp":..,"response":..}`, built without re-parsing the response.
    pub fn to_stored_bytes(&self) -> Vec<u8> {
        let timestamp = serde_json::Number::from_f64(self.timestamp)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "0".to_owned());
        let mut out = Vec::with_capacity(self.response.len() + 40);
        out.extend_from_slice(b"{\"timestamp\":");
        out.extend_from_slice(timestamp.as_bytes());
        out.extend_from_slice(b",\"response\":");
        out.extend_from_slice(&self.response);
        out.push(b'}');
        out
    }

    /// Reads the stored form; `None` for anything else (a foreign or corrupt value is a miss).
    pub fn from_stored_bytes(bytes: &[u8]) -> Option<CachedEntry> {
        #[derive(Deserialize)]
        struct Stored<'a> {
            timestamp: f64,
            #[serde(borrow)]
            response: &'a RawValue,
        }
        let stored: Stored<'_> = serde_json::from_slice(bytes).ok()?;
        Some(CachedEntry {
            timestamp: stored.timestamp,
            response: Bytes::copy_from_slice(stored.response.get().as_bytes()),
        })
    }

    /// Approximate memory held by the entry, for the L1 byte bound.
    pub(crate) fn weight(&self) -> u64 {
        self.response.len() as u64 + 64
    }
}

pub(crate) fn now_epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn stored_form_is_litellm_shape_and_round_trips() {
        let entry = CachedEntry {
            timestamp: 1_700_000_000.25,
            response: Bytes::from_static(br#"{"id":"x","choices":[]}"#),
        };
        let stored = entry.to_stored_bytes();
        let value: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(
            value,
            json!({"timestamp": 1_700_000_000.25, "response": {"id": "x", "choices": []}})
        );
        assert_eq!(CachedEntry::from_stored_bytes(&stored), Some(entry));
        assert_eq!(CachedEntry::from_stored_bytes(b"not json"), None);
        assert_eq!(CachedEntry::from_stored_bytes(br#"{"response":{}}"#), None);
    }

    #[test]
    fn freshness_follows_s_maxage() {
        let mut entry = CachedEntry::new(Bytes::from_static(b"{}"));
        assert!(entry.is_fresh_for(None));
        assert!(entry.is_fresh_for(Some(Duration::from_secs(5))));
        entry.timestamp -= 10.0;
        assert!(!entry.is_fresh_for(Some(Duration::from_secs(5))));
        assert!(entry.is_fresh_for(Some(Duration::from_secs(15))));
    }
}
