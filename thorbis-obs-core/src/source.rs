//! The `MetricSource` seam: where samples come from.

use crate::metrics::Sample;
use crate::time::Timestamp;
use async_trait::async_trait;
use core::time::Duration;

/// Why a collection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// The thing measured is not available (extension missing, permission denied); other
    /// sources keep working and this one reports `unavailable` with the reason.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The collection failed this time (connection refused, query error).
    #[error("collection failed: {0}")]
    Failed(String),
    /// The collection took longer than the source's timeout.
    #[error("collection timed out after {0:?}")]
    Timeout(Duration),
}

/// Something that produces samples on an interval: a PostgreSQL probe, an uptime check, a
/// host app's own counters.
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// A stable name, used in the `source` label of the agent's own health metrics.
    fn name(&self) -> &str;

    /// How often to collect.
    fn interval(&self) -> Duration;

    /// The longest one collection may take. Default: the interval, at most 30 s.
    fn timeout(&self) -> Duration {
        self.interval().min(Duration::from_secs(30))
    }

    /// Collects once. `now` is the scheduler's time, for timestamping samples.
    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError>;

    /// Samples to record when a collection failed or timed out, beside the scheduler's own
    /// `thorbis_source_up 0`: a Prometheus scrape's `up 0`, for one. Default: none.
    fn failure_samples(&self, now: Timestamp) -> Vec<Sample> {
        let _ = now;
        Vec::new()
    }
}
