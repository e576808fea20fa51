//! Wall-clock time driven by tokio's clock, so tests with paused time replay hours instantly.

use std::time::SystemTime;
use thorbis_obs_core::time::Timestamp;

/// The system's wall-clock time.
pub fn system_now() -> Timestamp {
    Timestamp(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
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
