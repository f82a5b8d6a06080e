//! L1: the in-process tier, a `moka` cache bounded by entry count and total bytes, with a TTL
//! per entry.
//!
//! moka bounds one weighted capacity; giving every entry a weight of at least
//! `max_bytes / max_entries` makes the byte bound imply the count bound, so a single capacity
//! enforces both.

use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use crate::entry::CachedEntry;

#[derive(Debug, Clone)]
struct Slot {
    entry: CachedEntry,
    ttl: Option<Duration>,
}

struct SlotExpiry;

impl Expiry<String, Slot> for SlotExpiry {
    fn expire_after_create(&self, _key: &String, slot: &Slot, _now: Instant) -> Option<Duration> {
        slot.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        slot: &Slot,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        // A rewrite starts the new entry's own TTL.
        slot.ttl
    }
}

#[derive(Clone)]
pub(crate) struct L1 {
    cache: Cache<String, Slot>,
    max_item_bytes: u64,
}

impl std::fmt::Debug for L1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L1")
            .field("entries", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .finish()
    }
}

impl L1 {
    pub(crate) fn new(max_entries: u64, max_bytes: u64, max_item_bytes: u64) -> L1 {
        let floor = (max_bytes / max_entries.max(1)).max(1);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |_key: &String, slot: &Slot| {
                let weight = slot.entry.weight().max(floor);
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(SlotExpiry)
            .build();
        L1 {
            cache,
            max_item_bytes,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<CachedEntry> {
        self.cache.get(key).map(|slot| slot.entry)
    }

    /// Inserts unless the entry is larger than the per-item bound; a zero TTL is not stored.
    pub(crate) fn insert(&self, key: String, entry: CachedEntry, ttl: Option<Duration>) {
        if entry.weight() > self.max_item_bytes || ttl.is_some_and(|ttl| ttl.is_zero()) {
            // Keep an older, smaller entry from outliving a newer write it no longer matches.
            self.cache.invalidate(&key);
            return;
        }
        self.cache.insert(key, Slot { entry, ttl });
    }

    pub(crate) fn remove(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Removes every entry whose key starts with `prefix` (all entries for an empty prefix).
    pub(crate) fn remove_prefix(&self, prefix: &str) {
        if prefix.is_empty() {
            self.cache.invalidate_all();
            return;
        }
        let keys: Vec<String> = self
            .cache
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| (*key).clone())
            .collect();
        for key in keys {
            self.cache.invalidate(&key);
        }
    }

    /// Removes every un-namespaced entry (keys without a `:`).
    pub(crate) fn remove_unprefixed(&self) {
        let keys: Vec<String> = self
            .cache
            .iter()
            .filter(|(key, _)| !key.contains(':'))
            .map(|(key, _)| (*key).clone())
            .collect();
        for key in keys {
            self.cache.invalidate(&key);
        }
    }

    #[cfg(test)]
    pub(crate) fn sync(&self) -> (u64, u64) {
        self.cache.run_pending_tasks();
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(size: usize) -> CachedEntry {
        CachedEntry::new(Bytes::from(vec![b'x'; size]))
    }

    #[test]
    fn bounded_by_entry_count() {
        let l1 = L1::new(10, 1_000_000, 1_000_000);
        for i in 0..100 {
            l1.insert(format!("k{i}"), entry(10), None);
        }
        let (count, _) = l1.sync();
        assert!(count <= 10, "{count} entries");
    }

    #[test]
    fn bounded_by_total_bytes() {
        let l1 = L1::new(1_000, 10_000, 10_000);
        for i in 0..100 {
            l1.insert(format!("k{i}"), entry(1_000), None);
        }
        let (count, bytes) = l1.sync();
        assert!(bytes <= 10_000, "{bytes} bytes");
        assert!(count <= 10, "{count} entries");
    }

    #[test]
    fn oversized_items_and_zero_ttl_are_not_kept() {
        let l1 = L1::new(10, 1_000_000, 100);
        l1.insert("big".into(), entry(1_000), None);
        assert!(l1.get("big").is_none());
        l1.insert("zero".into(), entry(1), Some(Duration::ZERO));
        assert!(l1.get("zero").is_none());
    }

    #[test]
    fn per_entry_ttl_expires() {
        let l1 = L1::new(10, 1_000_000, 1_000_000);
        l1.insert("short".into(), entry(1), Some(Duration::from_millis(50)));
        l1.insert("long".into(), entry(1), Some(Duration::from_secs(60)));
        assert!(l1.get("short").is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(l1.get("short").is_none());
        assert!(l1.get("long").is_some());
    }

    #[test]
    fn prefix_removal_spares_other_namespaces() {
        let l1 = L1::new(10, 1_000_000, 1_000_000);
        l1.insert("a:1".into(), entry(1), None);
        l1.insert("b:1".into(), entry(1), None);
        l1.insert("plain".into(), entry(1), None);
        l1.remove_prefix("a:");
        assert!(l1.get("a:1").is_none());
        assert!(l1.get("b:1").is_some());
        l1.remove_unprefixed();
        assert!(l1.get("plain").is_none());
        assert!(l1.get("b:1").is_some());
    }
}
