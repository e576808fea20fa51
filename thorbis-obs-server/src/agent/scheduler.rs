//! Runs each metric source on its interval: a random phase so sources do not all fire at
//! once, never two overlapping runs of one source (the next run waits for the previous), a
//! per-run timeout, and the source's own health recorded as samples
//! (`thorbis_source_up`, `thorbis_source_duration_seconds`, `thorbis_source_samples_rejected`:
//! the samples of that collection the engine refused) that rules can alert on.

use super::Shared;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::{CollectError, MetricSource};
use tokio::sync::watch;

/// Health of one source, as last seen.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceHealth {
    /// The last run succeeded.
    pub up: bool,
    /// Runs so far.
    pub runs: u64,
    /// Failed runs so far.
    pub failures: u64,
    /// Duration of the last run, seconds.
    pub last_duration_seconds: f64,
    /// The last error, if the last run failed.
    pub last_error: Option<String>,
    /// Samples the last run produced.
    pub last_samples: usize,
}

/// Runs `source` until `stop` flips to true.
pub(crate) async fn run_source(shared: Arc<Shared>, source: Arc<dyn MetricSource>, mut stop: watch::Receiver<bool>) {
    let interval = source.interval().max(Duration::from_millis(10));
    let name = source.name().to_string();
    let labels = Labels::new().with("source", name.clone());
    let mut ticker = crate::clock::ticker(&name, interval, Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let now = shared.hub.now();
        let started = tokio::time::Instant::now();
        let result = match tokio::time::timeout(source.timeout(), source.collect(now)).await {
            Ok(r) => r,
            Err(_) => Err(CollectError::Timeout(source.timeout())),
        };
        let took = started.elapsed().as_secs_f64();
        let (up, error, samples) = match result {
            Ok(samples) => (true, None, samples),
            Err(e) => (false, Some(e.to_string()), source.failure_samples(shared.hub.now())),
        };
        let n = samples.len();
        let mut rejected = 0;
        for s in &samples {
            if let Err(e) = shared.hub.ingest(s) {
                rejected += 1;
                tracing::debug!(source = %name, error = %e, "sample rejected");
            }
        }
        if rejected > 0 {
            tracing::warn!(source = %name, rejected, "source produced invalid samples; they were dropped");
        }
        let at = shared.hub.now();
        let _ = shared.hub.ingest(&Sample::new("thorbis_source_up", labels.clone(), if up { 1.0 } else { 0.0 }, at));
        let _ = shared.hub.ingest(&Sample::new("thorbis_source_duration_seconds", labels.clone(), took, at));
        let _ = shared.hub.ingest(&Sample::new("thorbis_source_samples_rejected", labels.clone(), rejected as f64, at));
        match &error {
            Some(e) => tracing::warn!(source = %name, error = %e, "source failed"),
            None => tracing::debug!(source = %name, samples = n, seconds = took, "source collected"),
        }
        let mut health = shared.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = health.entry(name.clone()).or_default();
        h.up = up;
        h.runs += 1;
        h.failures += u64::from(!up);
        h.last_duration_seconds = took;
        h.last_error = error;
        h.last_samples = n;
    }
}
