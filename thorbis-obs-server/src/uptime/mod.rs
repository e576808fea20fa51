//! Uptime checks (feature `http`): HTTP checks with their expectations, run from this agent's
//! location and its extra vantage points, reported through the check pipeline
//! ([`crate::checks`]) that also carries synthetic workflows. `[uptime]` is read whatever the
//! features; without `http` a config with checks is refused with the feature's name.
//!
//! Route: `GET /api/v1/uptime?range=24h&endpoint=ID`: uptime reports per endpoint and overall
//! from stored results (ranges such as 1h, 24h, 7d, 30d), each check's status per location, and
//! the check scheduler's start lag.

pub mod config;
pub mod expect;
#[cfg(feature = "http")]
pub mod http_check;

pub use crate::store::{CheckKind, CheckRecord};
pub use config::{UptimeSection, problems};

use crate::api;
use crate::checks::{CheckResults, Monitors, RecorderSettings, ReportQuery, TargetSpec};
use crate::hub::Component;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use thorbis_obs_core::engine::MaintenanceWindow;

impl UptimeSection {
    /// The check pipeline with this section's recorder settings and nothing to run yet.
    pub fn monitors(&self) -> Monitors {
        Monitors {
            settings: RecorderSettings {
                local_locations: std::iter::once(self.location.clone()).chain(self.locations.keys().cloned()).collect(),
                retention: self.retention.get(),
                stale_after_intervals: self.stale_after_intervals,
            },
            max_concurrency: self.max_concurrency,
            ..Monitors::default()
        }
    }
}

/// What the uptime checks write into the engine (see [`thorbis_obs_core::rules::coverage`]).
pub fn producers(u: &UptimeSection) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    if u.checks.is_empty() {
        return Vec::new();
    }
    vec![thorbis_obs_core::rules::coverage::Producer::new("uptime checks", ["thorbis_uptime_*"])]
}

/// Adds the HTTP checks of `u` to `m` (a producer per check and location) and returns their
/// maintenance windows (engine windows matching their `endpoint` label).
pub fn build(u: &UptimeSection, m: &mut Monitors) -> Result<Vec<MaintenanceWindow>, String> {
    if !u.checks.is_empty() && !cfg!(feature = "http") {
        return Err("uptime checks need the `http` feature of thorbis-obs-server".into());
    }
    let mut windows = Vec::new();
    #[cfg(feature = "http")]
    let mut pool = http_check::ClientPool::default();
    for check in &u.checks {
        m.targets.push(TargetSpec {
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
    Ok(windows)
}

/// The uptime reports as an agent component (the checks themselves run in the check pipeline).
#[derive(Debug)]
pub struct UptimeReports(pub CheckResults);

impl Component for UptimeReports {
    fn name(&self) -> &'static str {
        "uptime"
    }

    /// `GET /api/v1/uptime`.
    fn routes(self: std::sync::Arc<Self>) -> Router {
        Router::new().route("/api/v1/uptime", get(uptime)).with_state(self.0.clone())
    }
}

async fn uptime(State(r): State<CheckResults>, q: Result<Query<ReportQuery>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => r.report(CheckKind::Http, q).await,
        Err(e) => api::error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}
