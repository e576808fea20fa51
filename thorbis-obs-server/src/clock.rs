//! Time: the wall clock driven by tokio's clock (so tests with paused time replay hours
//! instantly), and the schedule of recurring jobs. A leaf: it imports nothing of this crate.

use std::time::Duration;

use std::time::SystemTime;
use thorbis_obs_core::time::Timestamp;

/// The system's wall-clock time.
pub fn system_now() -> Timestamp {
    Timestamp(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
}

/// A pseudo-random fraction in [0, 1) from the clock's nanoseconds (for retry jitter: spread,
/// not secrecy).
pub fn random_unit() -> f64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut x = u64::from(nanos) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A source of "now" for the engine.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The wall clock at start-up plus tokio's monotonic time since then.
#[derive(Debug, Clone)]
pub struct TokioClock {
    wall: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors at the current wall-clock time.
    pub fn new() -> Self {
        TokioClock { wall: system_now(), start: tokio::time::Instant::now() }
    }

    /// Anchors at `wall`.
    pub fn starting_at(wall: Timestamp) -> Self {
        TokioClock { wall, start: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        self.wall.plus(self.start.elapsed())
    }
}

/// A pseudo-random fraction in [0, 1) from the source name and the clock, for the phase.
fn phase(name: &str) -> f64 {
    let mut h = thorbis_obs_core::domain::hash::Fnv64::new();
    h.write(name.as_bytes());
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    h.write(&nanos.to_le_bytes());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A schedule for a recurring job: the first tick after a random part of one interval (at
/// most `max_phase`, so jobs do not all fire at once), then every interval; a run that
/// overruns delays the next tick instead of bunching them.
pub fn ticker(name: &str, interval: Duration, max_phase: Duration) -> tokio::time::Interval {
    let first = interval.mul_f64(phase(name)).min(max_phase);
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}
