//! Rate limits: who is limited ([`Scope`]), by how much ([`RateLimits`]), and the sliding
//! window arithmetic shared by the in-process ledger and the Redis script.
//!
//! A window is [`WINDOW_BUCKETS`] buckets of [`BUCKET_MS`] each (60 one-second buckets for a
//! minute). A request or its tokens are counted in the bucket of the moment they were admitted
//! and stop counting when that bucket leaves the window, so the count always covers the last
//! 59–60 seconds — a sliding window at one-second resolution, without keeping one timestamp
//! per request.

use std::collections::VecDeque;
use std::fmt;

/// Width of one window bucket, in milliseconds.
pub const BUCKET_MS: u64 = 1_000;
/// Buckets per window: `rpm` / `tpm` are per `WINDOW_BUCKETS * BUCKET_MS` (one minute).
pub const WINDOW_BUCKETS: u64 = 60;
/// The window length in milliseconds.
pub const WINDOW_MS: u64 = BUCKET_MS * WINDOW_BUCKETS;

/// What a limit or budget applies to, named as LiteLLM's rate-limit descriptors are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// A virtual key (id: its SHA-256 hex).
    Key,
    /// An internal user (`LiteLLM_UserTable`).
    User,
    /// A team.
    Team,
    /// One user inside one team (id: `team_id:user_id`).
    TeamMember,
    /// An end user: the request's `user` field (`LiteLLM_EndUserTable`).
    EndUser,
    /// One model on one key (id: `key_hash:model`), for `model_rpm_limit` / `model_max_budget`.
    ModelPerKey,
    /// An organization.
    Organization,
    /// A request tag.
    Tag,
    /// The whole proxy (`litellm_settings.max_budget`, `global_max_parallel_requests`).
    Proxy,
}

impl ScopeKind {
    /// LiteLLM's descriptor name (`api_key`, `user`, `team`, ...), used in messages and keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Key => "api_key",
            ScopeKind::User => "user",
            ScopeKind::Team => "team",
            ScopeKind::TeamMember => "team_member",
            ScopeKind::EndUser => "end_user",
            ScopeKind::ModelPerKey => "model_per_key",
            ScopeKind::Organization => "organization",
            ScopeKind::Tag => "tag",
            ScopeKind::Proxy => "proxy",
        }
    }
}

/// One limited thing: a kind and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub kind: ScopeKind,
    pub id: String,
}

impl Scope {
    pub fn new(kind: ScopeKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

/// The three request limits LiteLLM knows. `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt + completion).
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub max_parallel: Option<u64>,
}

impl RateLimits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_parallel.is_none()
    }
}

/// Limits on one scope, as one admission request carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRule {
    pub scope: Scope,
    pub limits: RateLimits,
}

/// Which limit a status or refusal is about; the suffix of LiteLLM's header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    MaxParallelRequests,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::MaxParallelRequests => "max_parallel_requests",
        }
    }
}

/// A limit's state after an admitted request, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitStatus {
    pub scope: Scope,
    pub kind: LimitKind,
    pub limit: u64,
    pub remaining: u64,
}

/// The bucket index of a moment in milliseconds since the epoch.
pub fn bucket_of(now_ms: u64) -> u64 {
    now_ms / BUCKET_MS
}

/// The oldest bucket still inside the window at `now_ms`.
pub fn oldest_live_bucket(now_ms: u64) -> u64 {
    (bucket_of(now_ms) + 1).saturating_sub(WINDOW_BUCKETS)
}

/// Whole seconds until `oldest_bucket` leaves the window (at least 1): when a refused
/// client may expect room again.
pub fn seconds_until_bucket_expires(oldest_bucket: u64, now_ms: u64) -> u64 {
    let leaves_at = (oldest_bucket + WINDOW_BUCKETS) * BUCKET_MS;
    leaves_at.saturating_sub(now_ms).div_ceil(1_000).max(1)
}

/// An in-process sliding window: per-bucket counts, oldest first.
#[derive(Debug, Clone, Default)]
pub struct SlidingWindow {
    buckets: VecDeque<(u64, u64)>,
}

impl SlidingWindow {
    fn prune(&mut self, now_ms: u64) {
        let oldest = oldest_live_bucket(now_ms);
        while self.buckets.front().is_some_and(|(idx, _)| *idx < oldest) {
            self.buckets.pop_front();
        }
    }

    /// The count over the window ending at `now_ms`.
    pub fn total(&mut self, now_ms: u64) -> u64 {
        self.prune(now_ms);
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// The oldest bucket that still counts (for `Retry-After`).
    pub fn oldest_bucket(&mut self, now_ms: u64) -> Option<u64> {
        self.prune(now_ms);
        self.buckets
            .iter()
            .find(|(_, n)| *n > 0)
            .map(|(idx, _)| *idx)
    }

    /// Adds `n` in the bucket of `now_ms`.
    pub fn add(&mut self, now_ms: u64, n: u64) {
        self.prune(now_ms);
        let idx = bucket_of(now_ms);
        match self.buckets.back_mut() {
            Some((last, count)) if *last == idx => *count += n,
            _ => self.buckets.push_back((idx, n)),
        }
    }

    /// Corrects the count of bucket `idx` (where a reservation was counted) by `delta`, if
    /// that bucket is still in the window; an expired bucket no longer matters.
    pub fn adjust(&mut self, idx: u64, delta: i64, now_ms: u64) {
        self.prune(now_ms);
        if let Some((_, count)) = self.buckets.iter_mut().find(|(i, _)| *i == idx) {
            *count = count.saturating_add_signed(delta);
        } else if delta > 0 && idx >= oldest_live_bucket(now_ms) {
            // Tokens reported for a bucket that had none reserved: insert in order.
            let at = self.buckets.partition_point(|(i, _)| *i < idx);
            self.buckets.insert(at, (idx, delta.unsigned_abs()));
        }
    }

    /// Whether nothing counts any more (the entry may be dropped).
    pub fn is_idle(&mut self, now_ms: u64) -> bool {
        self.prune(now_ms);
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_out_after_one_minute() {
        let mut window = SlidingWindow::default();
        let t0 = 1_000_000_000;
        window.add(t0, 1);
        window.add(t0 + 30_000, 2);
        assert_eq!(window.total(t0 + 30_000), 3);
        // The first bucket still counts 59.x s later...
        assert_eq!(window.total(t0 + 59_999), 3);
        // ...and not once its whole second has left the window.
        assert_eq!(window.total(t0 + 60_000), 2);
        assert_eq!(window.total(t0 + 90_000), 0);
        assert!(window.is_idle(t0 + 90_000));
    }

    #[test]
    fn retry_after_points_at_the_oldest_bucket() {
        let mut window = SlidingWindow::default();
        let t0 = 5_000_500;
        window.add(t0, 1);
        let oldest = window.oldest_bucket(t0 + 10_000).unwrap();
        assert_eq!(oldest, bucket_of(t0));
        // The bucket started at 5_000_000 and leaves at 5_060_000: 50 s after t0 + 10 s.
        assert_eq!(seconds_until_bucket_expires(oldest, t0 + 10_000), 50);
        assert_eq!(seconds_until_bucket_expires(oldest, t0 + 70_000), 1);
    }

    #[test]
    fn adjustments_correct_the_reserved_bucket_only_while_it_counts() {
        let mut window = SlidingWindow::default();
        let t0 = 2_000_000;
        window.add(t0, 100);
        window.add(t0 + 5_000, 10);
        window.adjust(bucket_of(t0), -70, t0 + 6_000);
        assert_eq!(window.total(t0 + 6_000), 40);
        // Never below zero.
        window.adjust(bucket_of(t0), -1_000, t0 + 6_000);
        assert_eq!(window.total(t0 + 6_000), 10);
        // A late, larger actual count lands in its own bucket, in order.
        window.adjust(bucket_of(t0 + 2_000), 5, t0 + 6_000);
        assert_eq!(window.total(t0 + 6_000), 15);
        assert_eq!(
            window.oldest_bucket(t0 + 6_000),
            Some(bucket_of(t0 + 2_000))
        );
        // Expired buckets are ignored.
        window.adjust(bucket_of(t0), 50, t0 + 200_000);
        assert_eq!(window.total(t0 + 200_000), 0);
    }
}
