//! Synthetic workflows: named lists of browser steps (navigate, click, fill, wait, back, validate)
//! run in a real headless Chromium through chromedriver (feature `synthetic`). Each run
//! records its duration per step and the step that failed; a failure saves a PNG screenshot
//! under the data directory, linked from the result. Results pass through the same recorder
//! as uptime checks, so thresholds, the store, reports and the `synthetic-workflow-failing`
//! rule apply.
//!
//! ```toml
//! [[synthetic.workflows]]
//! name = "create-work-order"
//! interval = "5m"
//! steps = [
//!   { type = "navigate", url = "https://app.example.com/login" },
//!   { type = "fill", selector = "#email", value = "synthetic@example.com" },
//!   { type = "click", selector = "button[type=submit]" },
//!   { type = "wait", selector = "#dashboard", timeout = "10s" },
//!   { type = "validate", selector = "h1", text_contains = "Dashboard" },
//! ]
//! ```

mod config;
#[cfg(feature = "synthetic")]
pub mod webdriver;

pub use config::{Step, SyntheticSection, Workflow, WorkflowFile, problems};

use crate::api;
use crate::checks::{CheckDefaults, CheckResults, Monitors, ReportQuery, TargetSpec};
use crate::hub::Component;
use crate::store::CheckKind;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thorbis_obs_core::engine::MaintenanceWindow;

/// What the synthetic workflows write into the engine (see
/// [`thorbis_obs_core::rules::coverage`]).
pub fn producers(s: &SyntheticSection) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    if s.workflows.is_empty() {
        return Vec::new();
    }
    vec![thorbis_obs_core::rules::coverage::Producer::new("synthetic workflows", ["thorbis_synthetic_*"])]
}

/// Adds the workflows of `s` to `m` (run from `defaults.location`, with the `[uptime]`
/// thresholds and SLA target unless a workflow sets its own; screenshots under `data_dir`) and
/// returns their maintenance windows (engine windows matching their `workflow` label).
pub fn build(
    s: &SyntheticSection,
    defaults: &CheckDefaults,
    data_dir: &Path,
    m: &mut Monitors,
) -> Result<Vec<MaintenanceWindow>, String> {
    if s.workflows.is_empty() {
        return Ok(Vec::new());
    }
    if !cfg!(feature = "synthetic") {
        return Err("synthetic workflows need the `synthetic` feature of thorbis-obs-server".into());
    }
    #[cfg(feature = "synthetic")]
    {
        let runner = std::sync::Arc::new(webdriver::SyntheticRunner::new(s.clone(), data_dir));
        for w in &s.workflows {
            m.producers.push(Box::new(webdriver::WorkflowProducer {
                runner: runner.clone(),
                workflow: std::sync::Arc::new(w.clone()),
                location: defaults.location.clone(),
            }));
        }
    }
    #[cfg(not(feature = "synthetic"))]
    let _ = data_dir;
    let mut windows = Vec::new();
    for w in &s.workflows {
        m.targets.push(TargetSpec {
            kind: CheckKind::Synthetic,
            target: w.name.clone(),
            thresholds: thorbis_obs_core::domain::availability::Thresholds {
                failure: w.failure_threshold.unwrap_or(defaults.thresholds.failure),
                success: w.success_threshold.unwrap_or(defaults.thresholds.success),
            },
            quorum: 1,
            interval: w.interval.get(),
            sla_target: w.sla_target.unwrap_or(defaults.sla_target),
        });
        windows.extend(w.maintenance.iter().map(|mw| mw.window(&w.name, "workflow")));
    }
    Ok(windows)
}

/// `GET /api/v1/synthetic?range=24h`: reports like `/api/v1/uptime`, with each location's newest
/// run and its steps; `GET /api/v1/synthetic/:workflow/screenshot`: the PNG saved at the
/// workflow's newest failure (only files the agent wrote itself are served).
#[derive(Debug)]
pub struct SyntheticReports(pub CheckResults);

impl Component for SyntheticReports {
    fn name(&self) -> &'static str {
        "synthetic"
    }

    fn routes(self: std::sync::Arc<Self>) -> Router {
        Router::new()
            .route("/api/v1/synthetic", get(report))
            .route("/api/v1/synthetic/{workflow}/screenshot", get(screenshot))
            .with_state(self.0.clone())
    }
}

async fn report(State(r): State<CheckResults>, q: Result<Query<ReportQuery>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => r.report(CheckKind::Synthetic, q).await,
        Err(e) => api::error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}

async fn screenshot(State(r): State<CheckResults>, UrlPath(workflow): UrlPath<String>) -> Response {
    let path = r
        .board
        .targets(CheckKind::Synthetic)
        .into_iter()
        .filter(|t| t.spec.target == workflow)
        .flat_map(|t| t.locations)
        .filter_map(|r| r.detail?.get("screenshot")?.as_str().map(PathBuf::from))
        .next();
    let Some(path) = path else {
        return api::error(StatusCode::NOT_FOUND, format!("no screenshot for workflow {workflow:?}"));
    };
    match tokio::fs::read(&path).await {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(e) => api::error(StatusCode::NOT_FOUND, format!("the screenshot is gone: {e}")),
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's label.
    pub step: String,
    /// Its kind.
    pub kind: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, ms.
    pub duration_ms: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The workflow.
    pub workflow: String,
    /// Every step passed.
    pub success: bool,
    /// The whole run, ms.
    pub duration_ms: f64,
    /// The steps that ran (the failing one last).
    pub steps: Vec<StepResult>,
    /// The failing step's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// The screenshot taken at the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<PathBuf>,
    /// A failure before the first step (browser or driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A plain-text table of runs.
pub fn render_runs(runs: &[WorkflowRun]) -> String {
    let mut out = String::new();
    for r in runs {
        out.push_str(&format!(
            "workflow {}: {} in {:.0} ms\n",
            r.workflow,
            if r.success { "PASSED" } else { "FAILED" },
            r.duration_ms
        ));
        out.push_str(&format!("  {:<4} {:<28} {:<9} {:>10}  {}\n", "#", "step", "result", "ms", "error"));
        for (i, s) in r.steps.iter().enumerate() {
            out.push_str(&format!(
                "  {:<4} {:<28} {:<9} {:>10.0}  {}\n",
                i + 1,
                s.step,
                if s.ok { "ok" } else { "FAILED" },
                s.duration_ms,
                s.error.as_deref().unwrap_or("")
            ));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if let Some(p) = &r.screenshot {
            out.push_str(&format!("  screenshot: {}\n", p.display()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_workflows_are_named() {
        let f: WorkflowFile = toml::from_str(
            r##"[[workflows]]
name = "login"
steps = [
  { type = "navigate", url = "http://127.0.0.1:1/" },
  { type = "fill", selector = "#email", value = "a@b.c" },
  { type = "wait", selector = "#x" },
  { type = "validate", name = "greeting", selector = "h1", text_contains = "Hi" },
  { type = "back" },
]"##,
        )
        .unwrap();
        let w = &f.workflows[0];
        assert!(w.problems("w").is_empty());
        assert_eq!(w.steps[1].label(1), "2-fill");
        assert_eq!(w.steps[3].label(3), "greeting");
        assert_eq!(w.steps[4].label(4), "5-back");
        assert!(!format!("{w:?}").contains("a@b.c"), "the fill value is a secret");
        let bad: WorkflowFile =
            toml::from_str("[[workflows]]\nname = \"a b\"\nsteps = [{ type = \"navigate\", url = \"ftp://x\" }, { type = \"click\", selector = \" \" }]")
                .unwrap();
        let p = bad.workflows[0].problems("workflows[0]");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[1].starts_with("workflows[0].steps[0].url"));
        assert!(
            toml::from_str::<WorkflowFile>(
                "[[workflows]]\nname = \"a\"\nsteps = [{ type = \"hover\", selector = \"x\" }]"
            )
            .is_err()
        );
    }
}
