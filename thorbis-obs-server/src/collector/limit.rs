//! Per-key rate limits (per client token, per IP) with the generic cell rate algorithm: each
//! key keeps one timestamp, the "theoretical arrival time" of its next request, so a limit
//! costs 16 bytes a key and one comparison a request, and bursts of up to `burst` requests
//! pass at once.
//!
//! Hand-written rather than taken from `governor` because it reads the agent's clock (tests
//! drive it) and is a dozen lines; `governor` brings its own clock and a concurrent map we do
//! not need behind the collector's mutex.

use std::collections::HashMap;

/// A limit of `per_minute` requests a minute per key, with bursts of `burst`.
#[derive(Debug)]
pub struct RateLimit {
    /// Milliseconds between requests at the sustained rate.
    interval_ms: f64,
    /// How far ahead of now a key's arrival time may run: `(burst - 1) * interval`.
    tolerance_ms: f64,
    next: HashMap<String, f64>,
}

impl RateLimit {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let interval_ms = if per_minute == 0 { 0.0 } else { 60_000.0 / f64::from(per_minute) };
        RateLimit { interval_ms, tolerance_ms: interval_ms * f64::from(burst.max(1) - 1), next: HashMap::new() }
    }

    /// Admits one request of `key` at `now_ms`, or says how many milliseconds to wait.
    pub fn check(&mut self, key: &str, now_ms: f64) -> Result<(), f64> {
        if self.interval_ms == 0.0 {
            return Ok(());
        }
        if self.next.len() > 100_000 {
            // Forget keys that are idle (their arrival time has passed): they start afresh.
            self.next.retain(|_, t| *t > now_ms);
        }
        let tat = self.next.get(key).copied().unwrap_or(now_ms).max(now_ms);
        if tat - now_ms > self.tolerance_ms {
            return Err(tat - now_ms - self.tolerance_ms);
        }
        self.next.insert(key.to_string(), tat + self.interval_ms);
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
}
