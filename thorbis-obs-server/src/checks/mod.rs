//! The check pipeline that uptime checks ([`crate::uptime`]) and synthetic workflows
//! ([`crate::synthetic`]) share: producers run checks on a schedule and report results; the
//! [`recorder`] moves each location's tracker (failure and success thresholds), decides the
//! verdict over locations (quorum), feeds samples to the rule engine, keeps the status
//! [`Board`] and writes results to the store; [`report`] turns stored results into uptime
//! reports. It sits below the components, so that both kinds of check, the dashboards and the
//! collector's summary read it without importing each other.
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

pub mod recorder;
pub mod report;

pub use recorder::{Board, Observation, RecorderSettings, TargetSpec, TargetStatus};

use crate::api;
use crate::hub::Hub;
use crate::store::CheckKind;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use thorbis_obs_core::domain::availability::Thresholds;
use thorbis_obs_core::engine::{MaintenanceWindow, Schedule};
use thorbis_obs_core::time::HumanDuration;

/// A maintenance window of one check: `name` plus `once = { start, end }` or
/// `weekly = { days, start, duration, timezone }`.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckMaintenance {
    /// Name, for the API and logs.
    pub name: String,
    /// When it is open.
    #[serde(flatten)]
    pub schedule: Schedule,
}

impl CheckMaintenance {
    /// The engine's maintenance window for the series of one check (`label` = `endpoint` or
    /// `workflow`).
    pub fn window(&self, target: &str, label: &str) -> MaintenanceWindow {
        let m = thorbis_obs_core::rules::Matcher::new(label, thorbis_obs_core::rules::MatchOp::Equal, target)
            .map(|m| thorbis_obs_core::rules::Matchers(vec![m]))
            .unwrap_or_default();
        MaintenanceWindow {
            name: format!("{label}:{target}:{}", self.name),
            rules: Vec::new(),
            matchers: m,
            schedule: self.schedule.clone(),
        }
    }
}

/// What every kind of check falls back on when it sets nothing itself (from `[uptime]`):
/// where this agent checks from, the thresholds and the SLA target.
#[derive(Clone, Debug)]
pub struct CheckDefaults {
    /// This agent's location label.
    pub location: String,
    /// Consecutive failures before down, successes before up.
    pub thresholds: Thresholds,
    /// SLA target in percent.
    pub sla_target: f64,
}

/// What a producer (an HTTP check at one location, a workflow) gets to run with.
#[derive(Clone)]
pub struct ProducerContext {
    /// Where results go.
    pub tx: tokio::sync::mpsc::Sender<Observation>,
    /// Flips to true at shutdown.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// The agent's clock.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Agent-wide limit on checks running at once.
    pub limit: Arc<tokio::sync::Semaphore>,
}

/// Something that runs checks on a schedule and reports them.
pub trait Producer: Send + 'static {
    /// Runs until `ctx.stop` flips.
    fn start(self: Box<Self>, ctx: ProducerContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// The uptime checks and workflows an agent runs, with the recorder's settings and the status
/// board the API and dashboards read.
pub struct Monitors {
    /// Every target the producers report on.
    pub targets: Vec<TargetSpec>,
    /// The producers.
    pub producers: Vec<Box<dyn Producer>>,
    /// Recorder settings.
    pub settings: RecorderSettings,
    /// Checks running at once, at most.
    pub max_concurrency: usize,
    /// The status of every target, as the recorder last saw it.
    pub board: Arc<Board>,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            targets: Vec::new(),
            producers: Vec::new(),
            settings: RecorderSettings {
                local_locations: vec!["local".into()],
                retention: std::time::Duration::from_secs(35 * 86_400),
                stale_after_intervals: 3,
            },
            max_concurrency: 256,
            board: Arc::default(),
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

    /// Starts the recorder and every producer on `tasks`.
    pub fn spawn(self, hub: Arc<Hub>, tasks: &mut tokio::task::JoinSet<()>, stop: &tokio::sync::watch::Receiver<bool>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let ctx = ProducerContext {
            tx,
            stop: stop.clone(),
            clock: hub.clock().clone(),
            limit: Arc::new(tokio::sync::Semaphore::new(self.max_concurrency.max(1))),
        };
        tasks.spawn(recorder::run(hub, self.board, self.targets, self.settings, rx, stop.clone()));
        for p in self.producers {
            tasks.spawn(p.start(ctx.clone()));
        }
    }
}

/// Stored check results and the board, read together: what the uptime and synthetic reports,
/// the dashboards and the collector's summary show.
#[derive(Clone, Debug)]
pub struct CheckResults {
    /// The store and clock.
    pub hub: Arc<Hub>,
    /// Each target's status.
    pub board: Arc<Board>,
}

/// `?range=24h&endpoint=ID`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Ranges such as 1h, 24h, 7d, 30d (default 24h).
    pub range: Option<HumanDuration>,
    /// One endpoint or workflow.
    pub endpoint: Option<String>,
}

impl CheckResults {
    /// Reports of `kind` over `range` from the stored results, with the targets' status.
    pub async fn summary(
        &self,
        kind: CheckKind,
        range: HumanDuration,
        endpoint: Option<&str>,
    ) -> Result<(report::UptimeSummary, Vec<TargetStatus>), Response> {
        if range.get() > std::time::Duration::from_secs(400 * 86_400) || range.get().is_zero() {
            return Err(api::error(StatusCode::BAD_REQUEST, "range: between 1s and 400d"));
        }
        let now = self.hub.now();
        let since = now.minus(range.get());
        let records = match self.hub.store().check_results(kind, endpoint, since, now).await {
            Ok(r) => r,
            Err(e) => return Err(api::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        };
        let status: Vec<_> =
            self.board.targets(kind).into_iter().filter(|t| endpoint.is_none_or(|e| e == t.spec.target)).collect();
        let targets: Vec<String> = status.iter().map(|t| t.spec.target.clone()).collect();
        let settings = |t: &str| {
            status.iter().find(|s| s.spec.target == t).map(|s| (s.spec.quorum, s.spec.sla_target)).unwrap_or((1, 99.9))
        };
        let overall_sla = status.iter().map(|s| s.spec.sla_target).reduce(f64::max).unwrap_or(99.9);
        let summary = report::summarize(&records, &range.to_string(), since, now, &targets, settings, overall_sla);
        Ok((summary, status))
    }

    /// The JSON answer of `/api/v1/uptime` and `/api/v1/synthetic`.
    pub async fn report(&self, kind: CheckKind, q: ReportQuery) -> Response {
        let range = q.range.unwrap_or(HumanDuration::from_secs(86_400));
        match self.summary(kind, range, q.endpoint.as_deref()).await {
            Ok((summary, status)) => axum::Json(json!({
                "report": summary,
                "status": status,
                "scheduler": self.board.scheduler(),
            }))
            .into_response(),
            Err(r) => r,
        }
    }
}
