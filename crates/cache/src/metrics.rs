//! Counters for the cache, plain atomics so any exporter (Prometheus, `/cache/ping`) can read
//! them without this crate knowing about it; and the gate that rate-limits L2 warnings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Monotonic counters since the cache was built.
#[derive(Debug, Default)]
pub struct CacheMetrics {
    /// Lookups answered from the in-process tier.
    pub l1_hits: AtomicU64,
    /// Lookups answered from Redis (then promoted to L1).
    pub l2_hits: AtomicU64,
    /// Lookups that found nothing usable (absent, expired, older than `s-maxage`).
    pub misses: AtomicU64,
    /// Entries written (L1, plus L2 when configured).
    pub stores: AtomicU64,
    /// Redis calls that failed, timed out, or were skipped because no connection was up; each
    /// one degraded to L1-only instead of failing the request.
    pub l2_errors: AtomicU64,
    /// Prompts answered by a similar stored prompt (semantic tier).
    pub semantic_hits: AtomicU64,
    /// Semantic lookups that found no prompt similar enough (or whose answer had expired).
    pub semantic_misses: AtomicU64,
}

/// A point-in-time copy of [`CacheMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub l2_errors: u64,
    pub semantic_hits: u64,
    pub semantic_misses: u64,
}

impl CacheMetrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            l1_hits: self.l1_hits.load(Ordering::Relaxed),
            l2_hits: self.l2_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            l2_errors: self.l2_errors.load(Ordering::Relaxed),
            semantic_hits: self.semantic_hits.load(Ordering::Relaxed),
            semantic_misses: self.semantic_misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Lets one warning through per interval: a Redis outage at thousands of requests per second
/// must not turn into thousands of log lines per second.
#[derive(Debug)]
pub(crate) struct WarnGate {
    start: Instant,
    interval: Duration,
    /// Milliseconds since `start` of the last warning, plus one (0 = never warned).
    last: AtomicU64,
}

impl WarnGate {
    pub(crate) fn new(interval: Duration) -> WarnGate {
        WarnGate {
            start: Instant::now(),
            interval,
            last: AtomicU64::new(0),
        }
    }

    /// True for the first caller, then for the first caller after each `interval`.
    pub(crate) fn allow(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now < last.saturating_add(interval) {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_gate_lets_one_through_per_interval() {
        let gate = WarnGate::new(Duration::from_millis(100));
        assert!(gate.allow());
        assert!(!gate.allow());
        assert!(!gate.allow());
        std::thread::sleep(Duration::from_millis(120));
        assert!(gate.allow());
        assert!(!gate.allow());
    }
}
