//! How many times a call is retried and how long to wait in between (LiteLLM §5.4).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use switchyard_llm_types::ErrorKind;

/// LiteLLM's default retries per model group.
pub const DEFAULT_NUM_RETRIES: u32 = 2;
const INITIAL_RETRY_DELAY_SECS: f64 = 0.5;
const MAX_RETRY_DELAY_SECS: f64 = 8.0;
const JITTER_SECS: f64 = 0.75;

#[derive(Debug, Clone, Default)]
pub struct RetrySettings {
    pub num_retries: Option<u32>,
    /// Minimum back-off (`retry_after`).
    pub min_backoff: Duration,
    /// `retry_policy`: retries per LiteLLM error class name.
    pub policy: BTreeMap<String, u32>,
}

/// LiteLLM's `retry_policy` key for an error kind.
fn policy_key(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest | ErrorKind::PayloadTooLarge => "BadRequestErrorRetries",
        ErrorKind::Authentication
        | ErrorKind::UpstreamAuthentication
        | ErrorKind::PermissionDenied => "AuthenticationErrorRetries",
        ErrorKind::Timeout => "TimeoutErrorRetries",
        ErrorKind::RateLimited => "RateLimitErrorRetries",
        ErrorKind::ContentPolicy => "ContentPolicyViolationErrorRetries",
        ErrorKind::NotFound => "NotFoundErrorRetries",
        ErrorKind::Unavailable => "ServiceUnavailableErrorRetries",
        ErrorKind::ContextWindowExceeded => "ContextWindowExceededErrorRetries",
        ErrorKind::UpstreamServerError | ErrorKind::UpstreamUnreachable | ErrorKind::Internal => {
            "InternalServerErrorRetries"
        }
    }
}

impl RetrySettings {
    /// Retries allowed for this error: a matching `retry_policy` entry (unless the request
    /// asked for no retries), else the request's, the deployment's, the router's, or 2.
    pub fn retries_for(
        &self,
        kind: ErrorKind,
        request: Option<u32>,
        deployment: Option<u32>,
    ) -> u32 {
        if request != Some(0) {
            if let Some(retries) = self.policy.get(policy_key(kind)) {
                return *retries;
            }
        }
        request
            .or(deployment)
            .or(self.num_retries)
            .unwrap_or(DEFAULT_NUM_RETRIES)
    }

    /// The retries a call starts with (before any error is known), for `x-litellm-max-retries`.
    pub fn max_retries(&self, request: Option<u32>, deployment: Option<u32>) -> u32 {
        request
            .or(deployment)
            .or(self.num_retries)
            .unwrap_or(DEFAULT_NUM_RETRIES)
    }

    /// The wait before retry number `attempt` (0-based): none when another healthy deployment
    /// can take it; else the upstream's `Retry-After` (1–60 s) or exponential back-off, with
    /// jitter.
    pub fn backoff(
        &self,
        attempt: u32,
        upstream_retry_after: Option<Duration>,
        others_healthy: bool,
    ) -> Duration {
        if others_healthy {
            return Duration::ZERO;
        }
        let jitter = rand::thread_rng().gen_range(0.0..JITTER_SECS);
        if let Some(after) = upstream_retry_after {
            if (1.0..=60.0).contains(&after.as_secs_f64()) {
                return after + Duration::from_secs_f64(jitter);
            }
        }
        let exponential = INITIAL_RETRY_DELAY_SECS * 2f64.powi(attempt.min(16) as i32);
        let base = exponential
            .max(self.min_backoff.as_secs_f64())
            .min(MAX_RETRY_DELAY_SECS);
        Duration::from_secs_f64(base + jitter)
    }
}

/// Whether an error may be retried at all (LiteLLM never retries other 4xx, and retries
/// auth errors only when the group has other deployments).
pub fn is_retryable(kind: ErrorKind, status: u16, group_size: usize) -> bool {
    match kind {
        ErrorKind::RateLimited
        | ErrorKind::Timeout
        | ErrorKind::UpstreamServerError
        | ErrorKind::UpstreamUnreachable => true,
        ErrorKind::UpstreamAuthentication | ErrorKind::PermissionDenied => group_size > 1,
        _ => status == 409,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_policy_then_request_deployment_router_default() {
        let settings = RetrySettings {
            num_retries: Some(4),
            policy: BTreeMap::from([("RateLimitErrorRetries".to_owned(), 7)]),
            ..RetrySettings::default()
        };
        assert_eq!(
            settings.retries_for(ErrorKind::RateLimited, Some(1), None),
            7
        );
        assert_eq!(
            settings.retries_for(ErrorKind::RateLimited, Some(0), None),
            0
        );
        assert_eq!(
            settings.retries_for(ErrorKind::Timeout, Some(1), Some(3)),
            1
        );
        assert_eq!(settings.retries_for(ErrorKind::Timeout, None, Some(3)), 3);
        assert_eq!(settings.retries_for(ErrorKind::Timeout, None, None), 4);
        assert_eq!(
            RetrySettings::default().retries_for(ErrorKind::Timeout, None, None),
            2
        );
    }

    #[test]
    fn backoff_is_zero_with_healthy_siblings_and_bounded_otherwise() {
        let settings = RetrySettings::default();
        assert_eq!(settings.backoff(3, None, true), Duration::ZERO);
        let first = settings.backoff(0, None, false).as_secs_f64();
        assert!((0.5..1.25).contains(&first), "{first}");
        let late = settings.backoff(10, None, false).as_secs_f64();
        assert!((8.0..8.75).contains(&late), "{late}");
        let honoured = settings
            .backoff(0, Some(Duration::from_secs(3)), false)
            .as_secs_f64();
        assert!((3.0..3.75).contains(&honoured), "{honoured}");
    }

    #[test]
    fn only_transient_errors_are_retried() {
        assert!(is_retryable(ErrorKind::RateLimited, 429, 1));
        assert!(is_retryable(ErrorKind::UpstreamServerError, 503, 1));
        assert!(!is_retryable(ErrorKind::BadRequest, 400, 3));
        assert!(!is_retryable(ErrorKind::ContextWindowExceeded, 400, 3));
        assert!(!is_retryable(ErrorKind::UpstreamAuthentication, 401, 1));
        assert!(is_retryable(ErrorKind::UpstreamAuthentication, 401, 2));
    }
}
