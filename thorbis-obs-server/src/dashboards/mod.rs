//! Dashboards served by the agent: `[[dashboards]]` in the config (or the spec's operational and
//! executive dashboards when there are none), each a list of widgets of kind `metric`, `chart`,
//! `table`, `gauge` or `map` with a data source (`metric`: the engine's series; `alerts`; `errors`: the
//! collector's error groups; `uptime`: the checks' status and uptime % over the widget's range) and a refresh interval.
//!
//! `GET /` and `GET /dashboards/:id` render plain HTML and CSS with inline SVG charts, readable
//! without JavaScript; a few lines of JS re-fetch each widget's HTML at its refresh interval
//! from `GET /api/v1/widgets/:id/html`. `GET /api/v1/widgets/:id` is the widget's data as JSON.
//! No framework, no CDN, no external request: it works offline.
//!
//! The component reads what others measure through what the agent hands it: the hub (series,
//! alerts), the check board, and a feed of the collector's error groups.

mod config;
mod render;
mod sql;

pub use config::{
    Axis, BUILTIN_DATABASE, Combine, Compare, DEFAULT_DASHBOARDS, DashboardConfig, DataSource, SeriesStyle,
    WidgetConfig, WidgetKind, defaults, problems,
};
pub use render::{page, widget_html};

use crate::api;
use crate::checks::Board;
use crate::hub::{Component, Hub};
use crate::store::CheckKind;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use thorbis_obs_core::rum::ErrorGroup;
use thorbis_obs_core::time::Timestamp;

/// A widget's state against its thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Within thresholds.
    Ok,
    /// Past the first.
    Warning,
    /// Past the second.
    Critical,
    /// Nothing to show.
    NoData,
}

/// One line of a chart.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// The series' labels, without `service` and `env`.
    pub label: String,
    /// `(epoch ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// A widget's data, as `GET /api/v1/widgets/:id` answers.
#[derive(Clone, Debug, Serialize)]
pub struct WidgetData {
    /// The widget id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its kind.
    pub kind: WidgetKind,
    /// When this was computed.
    pub at: Timestamp,
    /// The number (metric, gauge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The previous period's number (`compare = "previous_period"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<f64>,
    /// The change from `previous`, as a fraction (0.12 is 12% up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// The widget's target and the share of it reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// `value / target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_target: Option<f64>,
    /// Against the thresholds.
    pub status: Status,
    /// Chart lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
    /// Table header.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Table rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<Vec<String>>,
    /// Why there is no data, when the source failed (a SQL error, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn status(w: &WidgetConfig, value: Option<f64>) -> Status {
    let Some(v) = value else { return Status::NoData };
    let past = |t: f64| if w.lower_is_worse { v <= t } else { v >= t };
    match w.thresholds.as_slice() {
        // A gauge's three bands, worst first (the spec's completion rate: red up to 70, yellow
        // up to 85, then good, 95 and up best): critical, warning, ok, ok.
        [c, warn, _] if w.lower_is_worse => {
            if v < *c {
                Status::Critical
            } else if v < *warn {
                Status::Warning
            } else {
                Status::Ok
            }
        }
        [_, warn, c] => {
            if v >= *c {
                Status::Critical
            } else if v >= *warn {
                Status::Warning
            } else {
                Status::Ok
            }
        }
        [_, c] if past(*c) => Status::Critical,
        [warn, ..] if past(*warn) => Status::Warning,
        _ => Status::Ok,
    }
}

/// Several series' values as one (None when there are none).
fn combined(how: Combine, values: &[f64]) -> Option<f64> {
    let all = values.iter().copied();
    match how {
        _ if values.is_empty() => None,
        Combine::Sum => Some(all.sum()),
        Combine::Avg => Some(all.sum::<f64>() / values.len() as f64),
        Combine::Max => all.reduce(f64::max),
        Combine::Min => all.reduce(f64::min),
    }
}

fn label_text(labels: &thorbis_obs_core::Labels) -> String {
    let parts: Vec<String> =
        labels.iter().filter(|(k, _)| *k != "service" && *k != "env").map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() { "all".into() } else { parts.join(", ") }
}

/// The errors seen since a time: how many in all, and the `n` most frequent groups with their
/// workflow state (`unresolved`, `resolved`, `ignored`; the collector's, handed down by the
/// agent so this component does not import that one).
pub type ErrorFeed = Arc<dyn Fn(Timestamp, usize) -> (u64, Vec<(ErrorGroup, &'static str)>) + Send + Sync>;

/// Rows of an errors table.
const ERROR_ROWS: usize = 20;

/// The dashboards with what their widgets read.
pub struct Dashboards {
    boards: Vec<DashboardConfig>,
    hub: Arc<Hub>,
    checks: Arc<Board>,
    errors: Option<ErrorFeed>,
    /// Boards and widgets computed at once, at most.
    gate: api::Gate,
}

impl std::fmt::Debug for Dashboards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboards").field("boards", &self.boards.len()).finish_non_exhaustive()
    }
}

impl Dashboards {
    /// `boards` (the built-in ones when empty) over the hub's series and alerts, the check
    /// board, and the collector's error groups when there is a collector. Asks the engine to
    /// keep as much history as the charts show.
    pub fn new(boards: Vec<DashboardConfig>, hub: Arc<Hub>, checks: Arc<Board>, errors: Option<ErrorFeed>) -> Self {
        let boards = if boards.is_empty() { defaults(None, false) } else { boards };
        {
            let mut engine = hub.engine();
            for w in boards.iter().flat_map(|d| &d.widgets) {
                if let (WidgetKind::Chart, DataSource::Metric { name, also, .. }) = (w.kind, &w.source) {
                    for name in std::iter::once(name).chain(also) {
                        engine.store_mut().configure_metric(name, w.range.get(), false);
                    }
                }
            }
        }
        Dashboards { boards, hub, checks, errors, gate: api::Gate::default() }
    }

    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(|State(d): State<Arc<Dashboards>>| async move { d.render_board(None).await }))
            .route(
                "/dashboards/{id}",
                get(|State(d): State<Arc<Dashboards>>, Path(id): Path<String>| async move {
                    d.render_board(Some(&id)).await
                }),
            )
            .route("/api/v1/widgets/{id}", get(widget_json))
            .route("/api/v1/widgets/{id}/html", get(widget_fragment))
            .with_state(self)
    }

    async fn render_board(&self, id: Option<&str>) -> Response {
        let _pass = match self.gate.enter() {
            Ok(p) => p,
            Err(r) => return *r,
        };
        let Some(board) = (match id {
            Some(id) => self.boards.iter().find(|b| b.id == id),
            None => self.boards.first(),
        }) else {
            return api::error(StatusCode::NOT_FOUND, format!("no dashboard {:?}", id.unwrap_or("")));
        };
        let mut widgets = Vec::with_capacity(board.widgets.len());
        for w in &board.widgets {
            let d = self.data(w).await;
            widgets.push(widget_html(w, &d));
        }
        api::html(page(&self.boards, board, &widgets))
    }

    fn widget(&self, id: &str) -> Option<&WidgetConfig> {
        self.boards.iter().flat_map(|b| &b.widgets).find(|w| w.id == id)
    }

    /// Computes a widget's data now.
    pub async fn data(&self, w: &WidgetConfig) -> WidgetData {
        data(self, w).await
    }
}

#[async_trait::async_trait]
impl Component for Dashboards {
    fn name(&self) -> &'static str {
        "dashboards"
    }

    /// `GET /` (the first dashboard), `GET /dashboards/:id`, `GET /api/v1/widgets/:id` (the
    /// widget's data) and `GET /api/v1/widgets/:id/html` (its section, for the page's refresh).
    fn routes(self: Arc<Self>) -> Router {
        self.router()
    }
}

async fn widget_json(State(d): State<Arc<Dashboards>>, Path(id): Path<String>) -> Response {
    let _pass = match d.gate.enter() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match d.widget(&id) {
        Some(w) => axum::Json(d.data(w).await).into_response(),
        None => api::error(StatusCode::NOT_FOUND, format!("no widget {id:?}")),
    }
}

async fn widget_fragment(State(d): State<Arc<Dashboards>>, Path(id): Path<String>) -> Response {
    let _pass = match d.gate.enter() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match d.widget(&id) {
        Some(w) => api::html(widget_html(w, &d.data(w).await)),
        None => api::error(StatusCode::NOT_FOUND, format!("no widget {id:?}")),
    }
}

async fn data(src: &Dashboards, w: &WidgetConfig) -> WidgetData {
    let now = src.hub.now();
    let mut d = WidgetData {
        id: w.id.clone(),
        title: w.title.clone(),
        kind: w.kind,
        at: now,
        value: None,
        previous: None,
        change: None,
        target: w.target,
        of_target: None,
        status: Status::NoData,
        lines: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        error: None,
    };
    match &w.source {
        DataSource::Metric { name, labels, combine, also } if !also.is_empty() => {
            // One line per metric: its matching series combined at each time.
            let engine = src.hub.engine();
            let store = engine.store();
            let since = now.minus(w.range.get());
            for metric in std::iter::once(name).chain(also) {
                let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for &id in store.series_of(metric) {
                    let (Some(l), Some(win)) = (store.labels(id), store.window(id)) else { continue };
                    if labels.iter().all(|(k, v)| l.get(k) == Some(v.as_str())) {
                        for (t, v) in win.points_since(since) {
                            at.entry(t.0).or_default().push(v);
                        }
                    }
                }
                let points: Vec<(i64, f64)> =
                    at.into_iter().filter_map(|(t, vs)| Some((t, combined(*combine, &vs)?))).collect();
                if !points.is_empty() {
                    d.lines.push(Line { label: metric.clone(), points });
                }
            }
            d.value = d.lines.first().and_then(|l| l.points.last()).map(|p| p.1);
        }
        DataSource::Metric { name, labels, combine, .. } => {
            let engine = src.hub.engine();
            let store = engine.store();
            let since = now.minus(w.range.get());
            let mut lasts = Vec::new();
            for &id in store.series_of(name) {
                let (Some(l), Some(win)) = (store.labels(id), store.window(id)) else { continue };
                if !labels.iter().all(|(k, v)| l.get(k) == Some(v.as_str())) {
                    continue;
                }
                if let Some((_, v)) = win.last() {
                    lasts.push((label_text(l), v));
                }
                if w.kind == WidgetKind::Chart && d.lines.len() < 8 {
                    let points: Vec<(i64, f64)> = win.points_since(since).map(|(t, v)| (t.0, v)).collect();
                    if !points.is_empty() {
                        d.lines.push(Line { label: label_text(l), points });
                    }
                }
            }
            lasts.sort_by(|a, b| a.0.cmp(&b.0));
            let values: Vec<f64> = lasts.iter().map(|(_, v)| *v).collect();
            d.value = combined(*combine, &values);
            if w.kind == WidgetKind::Table {
                d.columns = vec!["series".into(), "value".into()];
                d.rows = lasts.iter().map(|(l, v)| vec![l.clone(), render::number(*v, &w.unit)]).collect();
            }
            d.lines.sort_by(|a, b| a.label.cmp(&b.label));
        }
        DataSource::Alerts => {
            let alerts = src.hub.engine().alerts(now);
            d.columns = ["alert", "state", "severity", "summary", "since"].map(String::from).to_vec();
            for a in alerts.iter().filter(|a| a.state != thorbis_obs_core::engine::AlertState::Resolved) {
                let since = a.fired_at.unwrap_or(a.active_at);
                let mins = now.since(since).as_secs() / 60;
                let mut notes = Vec::new();
                if a.muted {
                    notes.push("muted".to_string());
                }
                if let Some(ack) = &a.acknowledged {
                    notes.push(format!("acknowledged by {}", ack.by));
                }
                let state = match notes.is_empty() {
                    true => a.state.as_str().to_string(),
                    false => format!("{} ({})", a.state.as_str(), notes.join(", ")),
                };
                d.rows.push(vec![
                    a.alertname.clone(),
                    state,
                    format!("{:?}", a.severity).to_lowercase(),
                    a.annotations.get("summary").cloned().unwrap_or_default(),
                    format!("{mins} min"),
                ]);
            }
            d.value = Some(d.rows.len() as f64);
        }
        DataSource::Errors => {
            d.columns =
                ["error", "type", "count", "route", "process", "state", "last seen", "trace", "session", "group"]
                    .map(String::from)
                    .to_vec();
            if let Some(errors_since) = &src.errors {
                let (total, groups) = errors_since(now.minus(w.range.get()), ERROR_ROWS);
                for (g, state) in &groups {
                    let ago = now.since(g.last_seen).as_secs() / 60;
                    d.rows.push(vec![
                        g.message.chars().take(120).collect(),
                        g.kind.clone(),
                        g.count.to_string(),
                        g.route.clone(),
                        g.tags.get("businessProcess").cloned().unwrap_or_else(|| "-".into()),
                        (*state).to_string(),
                        format!("{ago} min ago"),
                        g.tags.get("trace_id").cloned().unwrap_or_default(),
                        g.tags.get("session_id").cloned().unwrap_or_default(),
                        g.fingerprint.clone(),
                    ]);
                }
                d.value = Some(total as f64);
            }
        }
        DataSource::Sql { url, query, timeout } => match sql::run(url.expose(), query, timeout.get()).await {
            Ok(result) => result.fill(w, &mut d),
            Err(e) => d.error = Some(e),
        },
        DataSource::Uptime => {
            // The spec's system-health table: each check with its uptime % over the range.
            d.columns = ["check", "status", "response", "checked", "uptime"].map(String::from).to_vec();
            let mut down = 0.0;
            let since = now.minus(w.range.get());
            for kind in [CheckKind::Http, CheckKind::Synthetic] {
                let targets = src.checks.targets(kind);
                let names: Vec<String> = targets.iter().map(|t| t.spec.target.clone()).collect();
                let uptime = match src.hub.store().check_results(kind, None, since, now).await {
                    Ok(records) => {
                        let settings = |name: &str| {
                            targets
                                .iter()
                                .find(|t| t.spec.target == name)
                                .map_or((1, 99.9), |t| (t.spec.quorum, t.spec.sla_target))
                        };
                        let range = w.range.to_string();
                        crate::checks::report::summarize(&records, &range, since, now, &names, settings, 99.9).endpoints
                    }
                    Err(e) => {
                        d.error = Some(format!("check results: {e}"));
                        Default::default()
                    }
                };
                for t in &targets {
                    let newest = t.locations.iter().max_by_key(|r| r.at);
                    if t.down {
                        down += 1.0;
                    }
                    let percent = uptime.get(&t.spec.target).and_then(|e| e.report.uptime_percent);
                    d.rows.push(vec![
                        t.spec.target.clone(),
                        if t.down { "down".into() } else { "up".into() },
                        newest.map(|r| render::number(r.duration_ms, "ms")).unwrap_or_else(|| "-".into()),
                        newest
                            .map(|r| format!("{} s ago", now.since(r.at).as_secs()))
                            .unwrap_or_else(|| "never".into()),
                        percent.map(|p| render::number(p, "%")).unwrap_or_else(|| "-".into()),
                    ]);
                }
            }
            d.value = Some(down);
        }
    }
    for line in &mut d.lines {
        if let Some(k) = w.series.iter().find(|s| s.column == line.label).and_then(|s| s.scale) {
            line.points.iter_mut().for_each(|p| p.1 *= k);
        }
    }
    if let (Some(v), Some(t)) = (d.value, w.target.filter(|t| *t != 0.0)) {
        d.of_target = Some(v / t);
    }
    if let (Some(v), Some(p)) = (d.value, d.previous.filter(|p| *p != 0.0)) {
        d.change = Some((v - p) / p.abs());
    }
    d.status = match (&w.source, w.kind) {
        _ if d.error.is_some() => Status::NoData,
        (DataSource::Metric { .. } | DataSource::Sql { .. }, WidgetKind::Metric | WidgetKind::Gauge) => {
            status(w, d.value)
        }
        (DataSource::Sql { .. }, WidgetKind::Chart) if d.lines.is_empty() => Status::NoData,
        (DataSource::Sql { .. }, WidgetKind::Chart) if !w.thresholds.is_empty() => status(w, d.value),
        (DataSource::Metric { .. }, WidgetKind::Chart) if d.lines.is_empty() => Status::NoData,
        // A chart's badge: its latest values, combined, against the thresholds.
        (DataSource::Metric { .. }, WidgetKind::Chart) if !w.thresholds.is_empty() => status(w, d.value),
        (DataSource::Metric { .. }, WidgetKind::Table) if d.rows.is_empty() => Status::NoData,
        (DataSource::Sql { .. }, WidgetKind::Map) if d.rows.is_empty() => Status::NoData,
        (DataSource::Alerts | DataSource::Uptime, _) if d.value.unwrap_or(0.0) > 0.0 => Status::Critical,
        (DataSource::Errors, _) if d.rows.is_empty() => Status::Ok,
        (DataSource::Errors, _) => Status::Warning,
        _ => Status::Ok,
    };
    d
}
