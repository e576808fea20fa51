//! The delivery policy, as pure code: exponential backoff with jitter, Retry-After, and limits
//! on attempts and age. The agent's outbox asks it what to do after each failed attempt.

use crate::channel::DeliveryError;
use crate::time::{HumanDuration, Timestamp};
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Retry settings for one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Delay after the first failure.
    pub initial_backoff: HumanDuration,
    /// Largest delay between attempts.
    pub max_backoff: HumanDuration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Fraction of each delay taken off at random (0 = none, 0.5 = up to half), so many
    /// agents retrying the same receiver spread out.
    pub jitter: f64,
    /// Attempts in all before giving up.
    pub max_attempts: u32,
    /// Give up when the next attempt would be this long after the first.
    pub max_age: HumanDuration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            initial_backoff: HumanDuration::from_secs(1),
            max_backoff: HumanDuration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: 50,
            max_age: HumanDuration::from_secs(24 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Stop; the reason is kept with the notification.
    GiveUp(String),
}

impl DeliveryPolicy {
    /// The backoff before attempt `attempt + 1` after `attempt` failures (1-based), before
    /// jitter: `initial * multiplier^(attempt-1)`, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.multiplier.max(1.0).powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.initial_backoff.get().as_secs_f64() * exp).min(self.max_backoff.get().as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// Decides after `attempts` failed attempts, the first made at `first_attempt`, the last
    /// failing with `error` at `now`. `random` is a uniform number in `[0, 1)` (injected, so
    /// the policy stays deterministic under test). A receiver's Retry-After wins over the
    /// backoff, since retrying earlier only earns another 429.
    pub fn decide(
        &self,
        attempts: u32,
        first_attempt: Timestamp,
        now: Timestamp,
        error: &DeliveryError,
        random: f64,
    ) -> RetryDecision {
        let retry_after = match error {
            DeliveryError::Permanent { reason } => {
                return RetryDecision::GiveUp(format!("permanent failure: {reason}"));
            }
            DeliveryError::Retryable { retry_after, .. } => *retry_after,
        };
        if attempts >= self.max_attempts {
            return RetryDecision::GiveUp(format!("gave up after {attempts} attempts: {error}"));
        }
        let delay = match retry_after {
            Some(d) => d,
            None => {
                let r = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
                self.backoff(attempts).mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * r)
            }
        };
        let next = now.plus(delay);
        if next.since(first_attempt) > self.max_age.get() {
            return RetryDecision::GiveUp(format!(
                "gave up: next attempt would be past the max age of {}: {error}",
                self.max_age
            ));
        }
        RetryDecision::RetryAt(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(4), Duration::from_secs(8));
        assert_eq!(p.backoff(30), Duration::from_secs(300));
    }

    #[test]
    fn decisions() {
        let p = DeliveryPolicy::default();
        let t0 = Timestamp(0);
        let e = DeliveryError::retryable("HTTP 503");
        assert_eq!(p.decide(1, t0, t0, &e, 0.0), RetryDecision::RetryAt(Timestamp(1000)));
        // Full jitter sample takes 20% off.
        assert_eq!(p.decide(2, t0, t0, &e, 1.0), RetryDecision::RetryAt(Timestamp(1600)));
        let ra = DeliveryError::Retryable { reason: "429".into(), retry_after: Some(Duration::from_secs(42)) };
        assert_eq!(p.decide(1, t0, t0, &ra, 0.5), RetryDecision::RetryAt(Timestamp(42_000)));
        assert!(
            matches!(p.decide(1, t0, t0, &DeliveryError::permanent("HTTP 400"), 0.0), RetryDecision::GiveUp(r) if r.contains("400"))
        );
        assert!(matches!(p.decide(50, t0, t0, &e, 0.0), RetryDecision::GiveUp(_)));
        let late = Timestamp::from_secs(24 * 3600);
        assert!(matches!(p.decide(3, t0, late, &e, 0.0), RetryDecision::GiveUp(r) if r.contains("max age")));
    }
}
