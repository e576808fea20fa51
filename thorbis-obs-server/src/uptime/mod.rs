//! Uptime checks (feature `http`) and the machinery they share with synthetic workflows
//! (feature `synthetic`): results stored per check, per-location up/down trackers with
//! failure and success thresholds, the quorum over locations, the samples rules alert on, and
//! uptime reports.
//!
//! Samples, per check and location unless said otherwise:
//! - `thorbis_uptime_check_success` (1/0) and `thorbis_uptime_response_time_seconds`;
//! - `thorbis_uptime_status_code`;
//! - `thorbis_uptime_cert_expires_in_seconds` (HTTPS);
//! - `thorbis_uptime_location_down` (1/0): this location's verdict after the thresholds;
//! - `thorbis_uptime_down{endpoint}` (1/0): the verdict over locations (quorum), which the
//!   `endpoint-down` rule of the `uptime` pack reads; re-emitted every 10 s;
//! - synthetic workflows: `thorbis_synthetic_success`, `thorbis_synthetic_duration_seconds`,
//!   `thorbis_synthetic_step_duration_seconds{step}`, `thorbis_synthetic_down{workflow}`.

pub mod config;
pub mod expect;
#[cfg(feature = "http")]
pub mod http_check;
pub mod recorder;
pub mod report;

use serde::{Deserialize, Serialize};
use thorbis_obs_core::time::Timestamp;

/// What produced a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP uptime check.
    Http,
    /// A synthetic browser workflow.
    Synthetic,
}

impl CheckKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Synthetic => "synthetic",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(CheckKind::Http),
            "synthetic" => Some(CheckKind::Synthetic),
            _ => None,
        }
    }
}

/// One stored check result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// HTTP check or workflow.
    pub kind: CheckKind,
    /// Endpoint id or workflow name.
    pub target: String,
    /// Where it ran from.
    pub location: String,
    /// When it finished.
    pub at: Timestamp,
    /// Whether every rule passed.
    pub success: bool,
    /// How long it took, ms.
    pub duration_ms: f64,
    /// HTTP status, when an answer arrived.
    pub status_code: Option<u16>,
    /// The rule that failed (`status`, `body_regex`, `connect`, a workflow step...).
    pub failed_rule: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the TLS certificate expires (HTTPS).
    pub cert_expires_at: Option<Timestamp>,
    /// This location's verdict after the thresholds, as of this result.
    pub down: bool,
    /// Extra detail (a workflow's steps and screenshot).
    pub detail: Option<serde_json::Value>,
}

/// The newest result of each (target, location) among `records`.
pub fn latest_per_location(records: &[CheckRecord]) -> Vec<CheckRecord> {
    let mut latest: std::collections::BTreeMap<(&str, &str), &CheckRecord> = std::collections::BTreeMap::new();
    for r in records {
        let e = latest.entry((r.target.as_str(), r.location.as_str())).or_insert(r);
        if r.at >= e.at {
            *e = r;
        }
    }
    latest.into_values().cloned().collect()
}

/// What a producer (an HTTP check at one location, a workflow) gets to run with.
#[derive(Clone)]
pub struct ProducerContext {
    /// Where results go.
    pub tx: tokio::sync::mpsc::Sender<recorder::Observation>,
    /// Flips to true at shutdown.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// The agent's clock.
    pub clock: std::sync::Arc<dyn crate::agent::Clock>,
    /// Agent-wide limit on checks running at once.
    pub limit: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Something that runs checks on a schedule and reports them.
pub trait Producer: Send + 'static {
    /// Runs until `ctx.stop` flips.
    fn start(self: Box<Self>, ctx: ProducerContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// The uptime checks and workflows an agent runs, with the recorder's settings.
pub struct Monitors {
    /// Every target the producers report on.
    pub targets: Vec<recorder::TargetSpec>,
    /// The producers.
    pub producers: Vec<Box<dyn Producer>>,
    /// Recorder settings.
    pub settings: recorder::RecorderSettings,
    /// Checks running at once, at most.
    pub max_concurrency: usize,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            targets: Vec::new(),
            producers: Vec::new(),
            settings: recorder::RecorderSettings {
                local_locations: vec!["local".into()],
                retention: std::time::Duration::from_secs(35 * 86_400),
                stale_after_intervals: 3,
            },
            max_concurrency: 256,
        }
    }
}

impl std::fmt::Debug for Monitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitors")
            .field("targets", &self.targets.len())
            .field("producers", &self.producers.len())
            .finish()
    }
}

impl Monitors {
    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub(crate) fn spawn(
        self,
        shared: std::sync::Arc<crate::agent::Shared>,
        tasks: &mut tokio::task::JoinSet<()>,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        tasks.spawn(recorder::run(shared.clone(), self.targets, self.settings, rx, stop.clone()));
        let ctx = ProducerContext {
            tx,
            stop: stop.clone(),
            clock: shared.clock.clone(),
            limit: std::sync::Arc::new(tokio::sync::Semaphore::new(self.max_concurrency.max(1))),
        };
        for p in self.producers {
            tasks.spawn(p.start(ctx.clone()));
        }
    }
}

/// Builds what `[uptime]` and `[synthetic]` describe, with the maintenance windows of the
/// checks and workflows (engine windows matching their `endpoint` / `workflow` label).
pub fn monitors_from_config(
    c: &crate::config::AgentConfig,
) -> Result<(Monitors, Vec<thorbis_obs_core::engine::MaintenanceWindow>), String> {
    let u = &c.uptime;
    let mut m = Monitors {
        settings: recorder::RecorderSettings {
            local_locations: std::iter::once(u.location.clone()).chain(u.locations.keys().cloned()).collect(),
            retention: u.retention.get(),
            stale_after_intervals: u.stale_after_intervals,
        },
        max_concurrency: u.max_concurrency,
        ..Monitors::default()
    };
    if !u.checks.is_empty() && !cfg!(feature = "http") {
        return Err("uptime checks need the `http` feature of thorbis-obs-server".into());
    }
    if !c.synthetic.workflows.is_empty() && !cfg!(feature = "synthetic") {
        return Err("synthetic workflows need the `synthetic` feature of thorbis-obs-server".into());
    }
    let mut windows = Vec::new();
    #[cfg(feature = "http")]
    let mut pool = http_check::ClientPool::default();
    for check in &u.checks {
        m.targets.push(recorder::TargetSpec {
            kind: CheckKind::Http,
            target: check.id.clone(),
            thresholds: check.thresholds(u),
            quorum: check.quorum.unwrap_or(u.quorum),
            interval: check.interval.get(),
            sla_target: check.sla_target.unwrap_or(u.sla_target),
        });
        windows.extend(check.maintenance.iter().map(|w| w.window(&check.id, "endpoint")));
        #[cfg(feature = "http")]
        {
            let own = config::LocationConfig::default();
            let here = std::iter::once((&u.location, &own)).chain(u.locations.iter());
            for (name, loc) in here {
                let checker = http_check::HttpChecker::with_pool(check, loc, &mut pool)
                    .map_err(|e| format!("uptime check {:?}: {e}", check.id))?;
                m.producers.push(Box::new(http_check::HttpProducer {
                    checker: std::sync::Arc::new(checker),
                    location: name.clone(),
                    interval: check.interval.get(),
                }));
            }
        }
    }
    if !c.synthetic.workflows.is_empty() {
        #[cfg(feature = "synthetic")]
        {
            let runner = std::sync::Arc::new(crate::synthetic::webdriver::SyntheticRunner::new(
                c.synthetic.clone(),
                std::path::Path::new(&*c.agent.data_dir),
            ));
            for w in &c.synthetic.workflows {
                m.producers.push(Box::new(crate::synthetic::webdriver::WorkflowProducer {
                    runner: runner.clone(),
                    workflow: std::sync::Arc::new(w.clone()),
                    location: u.location.clone(),
                }));
            }
        }
    }
    for w in &c.synthetic.workflows {
        m.targets.push(recorder::TargetSpec {
            kind: CheckKind::Synthetic,
            target: w.name.clone(),
            thresholds: thorbis_obs_core::domain::availability::Thresholds {
                failure: w.failure_threshold.unwrap_or(u.failure_threshold),
                success: w.success_threshold.unwrap_or(u.success_threshold),
            },
            quorum: 1,
            interval: w.interval.get(),
            sla_target: w.sla_target.unwrap_or(u.sla_target),
        });
        windows.extend(w.maintenance.iter().map(|mw| mw.window(&w.name, "workflow")));
    }
    Ok((m, windows))
}
