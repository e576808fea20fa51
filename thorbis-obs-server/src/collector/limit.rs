//! Per-key rate limits (per client token, per IP) with the generic cell rate algorithm: each
//! key keeps one timestamp, the "theoretical arrival time" of its next request, so a limit
//! costs 16 bytes a key and one comparison a request, and bursts of up to `burst` requests
//! pass at once.
//!
//! Keys are kept as 64-bit hashes (SipHash with a key random per process, so a sender cannot
//! aim collisions), never as the sender's strings: a key costs the same 16 bytes however long
//! the token or address. At most [`MAX_KEYS`] are kept; when that many are busy at once, new
//! keys share one overflow key (a flood of made-up addresses limits itself, not the others).
//!
//! Hand-written rather than taken from `governor` because it reads the agent's clock (tests
//! drive it) and is a dozen lines; `governor` brings its own clock and a concurrent map we do
//! not need behind the collector's mutex.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Keys kept at most per limit.
pub const MAX_KEYS: usize = 100_000;

/// A limit of `per_minute` requests a minute per key, with bursts of `burst`.
#[derive(Debug)]
pub struct RateLimit {
    /// Milliseconds between requests at the sustained rate.
    interval_ms: f64,
    /// How far ahead of now a key's arrival time may run: `(burst - 1) * interval`.
    tolerance_ms: f64,
    next: HashMap<u64, f64>,
    hasher: RandomState,
}

/// The key every new key shares while the map is full of busy ones.
const OVERFLOW: u64 = 0;

impl RateLimit {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let interval_ms = if per_minute == 0 { 0.0 } else { 60_000.0 / f64::from(per_minute) };
        RateLimit {
            interval_ms,
            tolerance_ms: interval_ms * f64::from(burst.max(1) - 1),
            next: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.next.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// Admits one request of `key` at `now_ms`, or says how many milliseconds to wait.
    pub fn check(&mut self, key: &str, now_ms: f64) -> Result<(), f64> {
        if self.interval_ms == 0.0 {
            return Ok(());
        }
        let mut k = self.hasher.hash_one(key).max(1);
        if self.next.len() >= MAX_KEYS && !self.next.contains_key(&k) {
            // Forget keys that are idle (their arrival time has passed): they start afresh.
            self.next.retain(|_, t| *t > now_ms);
            if self.next.len() >= MAX_KEYS {
                k = OVERFLOW;
            }
        }
        let tat = self.next.get(&k).copied().unwrap_or(now_ms).max(now_ms);
        if tat - now_ms > self.tolerance_ms {
            return Err(tat - now_ms - self.tolerance_ms);
        }
        self.next.insert(k, tat + self.interval_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn bursts_pass_then_the_sustained_rate_applies() {
        // 60 a minute (one a second), bursts of 3.
        let mut l = RateLimit::new(60, 3);
        for _ in 0..3 {
            assert!(l.check("ip", 0.0).is_ok());
        }
        let wait = l.check("ip", 0.0).expect_err("the fourth at once is refused");
        assert!((wait - 1000.0).abs() < 1e-6, "{wait}");
        assert!(l.check("other", 0.0).is_ok(), "keys are independent");
        assert!(l.check("ip", 1000.0).is_ok(), "a second later, one more");
        assert!(l.check("ip", 1000.0).is_err());
        assert!(RateLimit::new(0, 1).check("ip", 0.0).is_ok(), "0 is no limit");
    }

    #[test]
    fn a_flood_of_keys_is_bounded_and_shares_one_limit() {
        let mut l = RateLimit::new(60, 1);
        for i in 0..(super::MAX_KEYS + 5_000) {
            let _ = l.check(&format!("{i:0>1024}"), 0.0);
        }
        assert!(l.len() <= super::MAX_KEYS + 1, "{}", l.len());
        // The keys beyond the cap shared the overflow key: all but its first were refused.
        assert!(l.check("yet-another", 0.0).is_err());
        // Once the keys are idle they are forgotten and a new key starts afresh.
        assert!(l.check("later", 10_000.0).is_ok());
        assert!(l.len() < 10, "{}", l.len());
    }
}
