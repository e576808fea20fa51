//! The `self` source: the agent's own vital signs, so rules can watch the watcher.

use async_trait::async_trait;
use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::{CollectError, MetricSource};

/// Reports `thorbis_agent_uptime_seconds` and, on Linux, `thorbis_agent_resident_memory_bytes`.
#[derive(Debug)]
pub struct SelfCheckSource {
    interval: Duration,
    started: std::time::Instant,
}

impl SelfCheckSource {
    /// A self-check every `interval`.
    pub fn new(interval: Duration) -> Self {
        SelfCheckSource { interval, started: std::time::Instant::now() }
    }
}

/// Resident set size from /proc/self/status (None elsewhere).
pub fn resident_memory_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

#[async_trait]
impl MetricSource for SelfCheckSource {
    fn name(&self) -> &str {
        "self"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let mut v =
            vec![Sample::new("thorbis_agent_uptime_seconds", Labels::new(), self.started.elapsed().as_secs_f64(), now)];
        if let Some(rss) = resident_memory_bytes() {
            v.push(Sample::new("thorbis_agent_resident_memory_bytes", Labels::new(), rss, now));
        }
        Ok(v)
    }
}
