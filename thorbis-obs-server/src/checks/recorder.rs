//! The recorder: every check result (HTTP or synthetic) passes through it. It moves the
//! location's tracker (thresholds), decides the target's verdict over locations (quorum),
//! feeds the samples to the rule engine, keeps the status board the API shows, and writes the
//! results to the store in batches (a failed write is retried with the next batch).

use crate::hub::Hub;
use crate::store::{CheckKind, CheckRecord, latest_per_location};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::domain::availability::{EndpointTracker, Thresholds, Transition, quorum_down};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;
use tokio::sync::{mpsc, watch};

/// What the recorder knows about one target (an endpoint or a workflow).
#[derive(Clone, Debug, Serialize)]
pub struct TargetSpec {
    /// HTTP or synthetic.
    pub kind: CheckKind,
    /// Endpoint id or workflow name.
    pub target: String,
    /// Thresholds per location.
    pub thresholds: Thresholds,
    /// Locations that must say down.
    pub quorum: usize,
    /// How often it runs.
    #[serde(skip)]
    pub interval: Duration,
    /// SLA target for reports, percent.
    pub sla_target: f64,
}

/// One finished check, as a producer reports it.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The result (its `down` field is set by the recorder).
    pub record: CheckRecord,
    /// How late the check started against its schedule.
    pub lag: Duration,
    /// Per-step durations in seconds (synthetic workflows).
    pub steps: Vec<(String, f64)>,
}

/// Recent scheduling lags, exact percentiles over the last 100,000 checks.
#[derive(Debug, Default)]
struct Lags {
    micros: VecDeque<u64>,
    total: u64,
}

/// Scheduling figures for the API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SchedulerStats {
    /// Checks finished since start.
    pub checks: u64,
    /// Median start lag over the recent checks, ms.
    pub lag_p50_ms: f64,
    /// 99th percentile start lag, ms.
    pub lag_p99_ms: f64,
    /// Largest recent start lag, ms.
    pub lag_max_ms: f64,
}

/// The status the API shows: each target's verdict and newest result per location.
#[derive(Debug, Default)]
pub struct Board {
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
struct BoardInner {
    targets: BTreeMap<(CheckKind, String), TargetSpec>,
    verdicts: BTreeMap<(CheckKind, String), bool>,
    latest: BTreeMap<(CheckKind, String, String), CheckRecord>,
    lags: Lags,
}

/// One target's status.
#[derive(Clone, Debug, Serialize)]
pub struct TargetStatus {
    /// The target.
    #[serde(flatten)]
    pub spec: TargetSpec,
    /// The verdict over locations.
    pub down: bool,
    /// Newest result per location.
    pub locations: Vec<CheckRecord>,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BoardInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every target of `kind` with its status.
    pub fn targets(&self, kind: CheckKind) -> Vec<TargetStatus> {
        let b = self.lock();
        b.targets
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(key, spec)| TargetStatus {
                spec: spec.clone(),
                down: b.verdicts.get(key).copied().unwrap_or(false),
                locations: b
                    .latest
                    .range((key.0, key.1.clone(), String::new())..)
                    .take_while(|((k, t, _), _)| *k == key.0 && *t == key.1)
                    .map(|(_, r)| r.clone())
                    .collect(),
            })
            .collect()
    }

    /// The SLA target of a target, if known.
    pub fn sla_target(&self, kind: CheckKind, target: &str) -> Option<f64> {
        self.lock().targets.get(&(kind, target.to_string())).map(|s| s.sla_target)
    }

    /// Scheduling figures.
    pub fn scheduler(&self) -> SchedulerStats {
        let b = self.lock();
        let mut v: Vec<u64> = b.lags.micros.iter().copied().collect();
        v.sort_unstable();
        let pick = |q: f64| {
            if v.is_empty() {
                0.0
            } else {
                v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0
            }
        };
        SchedulerStats {
            checks: b.lags.total,
            lag_p50_ms: pick(0.5),
            lag_p99_ms: pick(0.99),
            lag_max_ms: v.last().map(|m| *m as f64 / 1000.0).unwrap_or(0.0),
        }
    }
}

/// How the recorder runs.
#[derive(Clone, Debug)]
pub struct RecorderSettings {
    /// Locations this agent checks from (their trackers live here).
    pub local_locations: Vec<String>,
    /// Results older than this are deleted.
    pub retention: Duration,
    /// A location's verdict counts while younger than this many intervals.
    pub stale_after_intervals: u32,
}

type Key = (CheckKind, String);

struct Recorder {
    hub: Arc<Hub>,
    board: Arc<Board>,
    settings: RecorderSettings,
    specs: HashMap<Key, TargetSpec>,
    trackers: HashMap<(CheckKind, String, String), EndpointTracker>,
    /// (down, at) per location, local and remote.
    states: HashMap<Key, BTreeMap<String, (bool, Timestamp)>>,
    batch: Vec<CheckRecord>,
}

const MAX_UNWRITTEN: usize = 200_000;

fn names(kind: CheckKind) -> (&'static str, &'static str, &'static str) {
    // (label, success metric, duration metric)
    match kind {
        CheckKind::Http => ("endpoint", "thorbis_uptime_check_success", "thorbis_uptime_response_time_seconds"),
        CheckKind::Synthetic => ("workflow", "thorbis_synthetic_success", "thorbis_synthetic_duration_seconds"),
    }
}

fn prefix(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Http => "thorbis_uptime",
        CheckKind::Synthetic => "thorbis_synthetic",
    }
}

impl Recorder {
    fn stale_window(&self, spec: &TargetSpec) -> Duration {
        spec.interval.saturating_mul(self.settings.stale_after_intervals.max(1))
    }

    fn ingest(&self, name: &str, labels: Labels, value: f64, at: Timestamp) {
        if let Err(e) = self.hub.ingest(&Sample::new(name, labels, value, at)) {
            tracing::debug!(metric = name, error = %e, "check sample rejected");
        }
    }

    /// The verdict over fresh locations, emitted as `{prefix}_down`.
    fn verdict(&self, key: &Key, now: Timestamp) -> bool {
        let Some(spec) = self.specs.get(key) else { return false };
        let fresh_since = now.minus(self.stale_window(spec));
        // This agent's own locations always count (as up until they say otherwise), so the
        // quorum is not capped by whichever location happened to report first.
        let empty = BTreeMap::new();
        let locs = self.states.get(key).unwrap_or(&empty);
        let fresh = locs.iter().filter(|(_, (_, at))| *at >= fresh_since).map(|(_, (d, _))| *d);
        let silent_local = self.settings.local_locations.iter().filter(|l| !locs.contains_key(*l)).map(|_| false);
        let down = quorum_down(fresh.chain(silent_local), spec.quorum);
        let (label, _, _) = names(key.0);
        self.ingest(
            &format!("{}_down", prefix(key.0)),
            Labels::new().with(label, key.1.clone()),
            f64::from(u8::from(down)),
            now,
        );
        let mut b = self.board.lock();
        let before = b.verdicts.insert(key.clone(), down);
        if before != Some(down) && (before.is_some() || down) {
            if down {
                tracing::warn!(kind = key.0.as_str(), target = %key.1, "down at a quorum of locations");
            } else {
                tracing::info!(kind = key.0.as_str(), target = %key.1, "up again");
            }
        }
        down
    }

    fn observe(&mut self, o: Observation) {
        let mut r = o.record;
        let key = (r.kind, r.target.clone());
        let Some(spec) = self.specs.get(&key) else {
            tracing::warn!(target = %r.target, "result for an unknown check dropped");
            return;
        };
        let tracker = self
            .trackers
            .entry((r.kind, r.target.clone(), r.location.clone()))
            .or_insert_with(|| EndpointTracker::new(spec.thresholds));
        match tracker.record(r.success) {
            Some(Transition::WentDown) => tracing::warn!(
                kind = r.kind.as_str(), target = %r.target, location = %r.location,
                failed_rule = r.failed_rule.as_deref().unwrap_or(""), error = r.error.as_deref().unwrap_or(""),
                "failure threshold reached at this location"
            ),
            Some(Transition::CameBack) => {
                tracing::info!(kind = r.kind.as_str(), target = %r.target, location = %r.location, "success threshold reached")
            }
            None => {}
        }
        r.down = tracker.is_down();
        let (label, success_metric, duration_metric) = names(r.kind);
        let labels = Labels::new().with(label, r.target.clone()).with("location", r.location.clone());
        let at = r.at;
        self.ingest(success_metric, labels.clone(), f64::from(u8::from(r.success)), at);
        self.ingest(duration_metric, labels.clone(), r.duration_ms / 1000.0, at);
        self.ingest(&format!("{}_location_down", prefix(r.kind)), labels.clone(), f64::from(u8::from(r.down)), at);
        if let Some(code) = r.status_code {
            self.ingest("thorbis_uptime_status_code", labels.clone(), f64::from(code), at);
        }
        if let Some(exp) = r.cert_expires_at {
            let left = (exp.as_millis() - at.as_millis()) as f64 / 1000.0;
            self.ingest(
                thorbis_obs_core::rules::packs::THORBIS_UPTIME_CERT_EXPIRES_IN_SECONDS,
                labels.clone(),
                left,
                at,
            );
        }
        for (step, secs) in &o.steps {
            self.ingest(
                "thorbis_synthetic_step_duration_seconds",
                labels.clone().with("step", step.clone()),
                *secs,
                at,
            );
        }
        self.states.entry(key.clone()).or_default().insert(r.location.clone(), (r.down, at));
        {
            let mut b = self.board.lock();
            b.lags.total += 1;
            if b.lags.micros.len() >= 100_000 {
                b.lags.micros.pop_front();
            }
            b.lags.micros.push_back(o.lag.as_micros().min(u128::from(u64::MAX)) as u64);
            b.latest.insert((r.kind, r.target.clone(), r.location.clone()), r.clone());
        }
        self.verdict(&key, at);
        if self.batch.len() >= MAX_UNWRITTEN {
            self.batch.remove(0);
            tracing::warn!("the store is not taking check results: dropping the oldest unwritten one");
        }
        self.batch.push(r);
    }

    async fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        match self.hub.store().record_checks(&self.batch).await {
            Ok(()) => self.batch.clear(),
            Err(e) => {
                tracing::error!(error = %e, unwritten = self.batch.len(), "cannot store check results; will retry")
            }
        }
    }

    /// Reads other agents' newest results (a shared store) into the location states.
    async fn merge_remote(&mut self, now: Timestamp) {
        let longest = self.specs.values().map(|s| self.stale_window(s)).max().unwrap_or_default();
        for kind in [CheckKind::Http, CheckKind::Synthetic] {
            if !self.specs.keys().any(|(k, _)| *k == kind) {
                continue;
            }
            let rows = match self.hub.store().check_results(kind, None, now.minus(longest), now).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read other locations' results");
                    return;
                }
            };
            for r in latest_per_location(&rows) {
                if self.settings.local_locations.contains(&r.location) {
                    continue;
                }
                let key = (r.kind, r.target.clone());
                if self.specs.contains_key(&key) {
                    let locs = self.states.entry(key).or_default();
                    let e = locs.entry(r.location.clone()).or_insert((r.down, r.at));
                    if r.at >= e.1 {
                        *e = (r.down, r.at);
                    }
                }
            }
        }
    }

    /// Resumes the trackers from the newest stored result of each local location.
    async fn resume(&mut self, now: Timestamp) {
        let longest = self.specs.values().map(|s| self.stale_window(s)).max().unwrap_or_default();
        for kind in [CheckKind::Http, CheckKind::Synthetic] {
            let Ok(rows) = self.hub.store().check_results(kind, None, now.minus(longest), now).await else { continue };
            for r in latest_per_location(&rows) {
                let key = (r.kind, r.target.clone());
                let Some(spec) = self.specs.get(&key) else { continue };
                if self.settings.local_locations.contains(&r.location) {
                    self.trackers.insert(
                        (r.kind, r.target.clone(), r.location.clone()),
                        EndpointTracker::resumed(spec.thresholds, r.down),
                    );
                }
                self.states.entry(key).or_default().insert(r.location.clone(), (r.down, r.at));
            }
        }
    }
}

/// Runs the recorder until `stop` flips and the producers have hung up; writes what is left.
pub(crate) async fn run(
    hub: Arc<Hub>,
    board: Arc<Board>,
    targets: Vec<TargetSpec>,
    settings: RecorderSettings,
    mut rx: mpsc::Receiver<Observation>,
    mut stop: watch::Receiver<bool>,
) {
    {
        let mut b = board.lock();
        for t in &targets {
            b.targets.insert((t.kind, t.target.clone()), t.clone());
        }
    }
    let specs = targets.into_iter().map(|t| ((t.kind, t.target.clone()), t)).collect();
    let mut rec =
        Recorder { hub, board, settings, specs, trackers: HashMap::new(), states: HashMap::new(), batch: Vec::new() };
    rec.resume(rec.hub.now()).await;
    let shared_store = rec.hub.store().is_shared();
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    // The verdicts are re-emitted (and, on a shared store, other agents' locations read) at
    // the shortest check interval, between 1 s and 10 s.
    let beat = rec.specs.values().map(|s| s.interval).min().unwrap_or(Duration::from_secs(10));
    let mut heartbeat = tokio::time::interval(beat.clamp(Duration::from_secs(1), Duration::from_secs(10)));
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    for t in [&mut flush, &mut heartbeat, &mut prune] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let mut stopping = false;
    loop {
        tokio::select! {
            o = rx.recv() => match o {
                Some(o) => rec.observe(o),
                None => break,
            },
            _ = flush.tick() => rec.flush().await,
            _ = heartbeat.tick() => {
                let now = rec.hub.now();
                if shared_store {
                    rec.merge_remote(now).await;
                }
                let keys: Vec<Key> = rec.specs.keys().cloned().collect();
                for k in &keys {
                    rec.verdict(k, now);
                }
            }
            _ = prune.tick() => {
                let before = rec.hub.now().minus(rec.settings.retention);
                match rec.hub.store().prune_checks(before).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "old check results pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot prune check results"),
                }
            }
            _ = stop.changed(), if !stopping => stopping = true,
        }
    }
    rec.flush().await;
}
