//! Dashboards served by the agent: `[[dashboards]]` in the config (or the spec's operational and
//! executive dashboards when there are none), each a list of widgets of kind `metric`, `chart`,
//! `table` or `gauge` with a data source (`metric`: the engine's series; `alerts`; `errors`: the
//! collector's error groups; `uptime`: the checks' status) and a refresh interval.
//!
//! `GET /` and `GET /dashboards/:id` render plain HTML and CSS with inline SVG charts, readable
//! without JavaScript; a few lines of JS re-fetch each widget's HTML at its refresh interval
//! from `GET /api/v1/widgets/:id/html`. `GET /api/v1/widgets/:id` is the widget's data as JSON.
//! No framework, no CDN, no external request: it works offline.

mod render;
#[cfg(feature = "postgres")]
mod sql;

pub use render::{page, widget_html};

use crate::agent::Shared;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thorbis_obs_core::time::{HumanDuration, Timestamp};

/// The dashboards used when the config has none: the spec's operational and executive boards
/// on what the agent measures itself (RUM, alerts, uptime).
pub const DEFAULT_DASHBOARDS: &str = include_str!("default_dashboards.toml");

/// `[[dashboards]]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// URL id: `/dashboards/<id>`.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Widgets, in reading order.
    #[serde(default)]
    pub widgets: Vec<WidgetConfig>,
}

/// What a widget shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WidgetKind {
    /// One number, colored by its thresholds.
    Metric,
    /// Lines over time.
    Chart,
    /// Rows.
    Table,
    /// A dial between `min` and `max`.
    Gauge,
}

/// How several matching series become one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Their sum (counts).
    #[default]
    Sum,
    /// Their mean.
    Avg,
    /// The largest.
    Max,
    /// The smallest.
    Min,
}

/// Where a widget's data comes from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataSource {
    /// Series of the engine (anything the agent measures or is pushed), by name and labels.
    Metric {
        /// Metric name.
        name: String,
        /// Label values the series must have.
        #[serde(default)]
        labels: BTreeMap<String, String>,
        /// How matching series combine for `metric` and `gauge`.
        #[serde(default)]
        combine: Combine,
    },
    /// Alert instances that are pending or firing.
    Alerts,
    /// Browser errors grouped by fingerprint (the collector's).
    Errors,
    /// Uptime checks and synthetic workflows with their verdicts.
    Uptime,
    /// One read-only PostgreSQL query (feature `postgres`): a single statement, run in a READ
    /// ONLY transaction with a statement timeout, at most 50 rows. `metric` and `gauge` show the
    /// first number of the first row; `table` the rows; `chart` the first column as time and
    /// the numeric columns as lines.
    Sql {
        /// Connection URL (a secret: never shown or logged).
        url: crate::config::Secret,
        /// The query.
        query: String,
        /// Statement timeout. Default 5 s.
        #[serde(default = "default_sql_timeout")]
        timeout: HumanDuration,
    },
}

fn default_sql_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// `[[dashboards.widgets]]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetConfig {
    /// Unique across dashboards: `/api/v1/widgets/<id>`.
    pub id: String,
    /// Heading.
    pub title: String,
    /// What it shows.
    pub kind: WidgetKind,
    /// Where the data comes from.
    pub source: DataSource,
    /// Unit shown after values (`ms`, `%`, `$`).
    #[serde(default)]
    pub unit: String,
    /// Values at or above the first are a warning, at or above the second critical (below, when
    /// `lower_is_worse`).
    #[serde(default)]
    pub thresholds: Vec<f64>,
    /// Thresholds count downwards (a completion rate, say).
    #[serde(default)]
    pub lower_is_worse: bool,
    /// Gauge bounds.
    #[serde(default)]
    pub min: f64,
    /// Gauge bounds.
    #[serde(default = "default_max")]
    pub max: f64,
    /// Time range of charts (and of the errors source). Default 1 h.
    #[serde(default = "default_range")]
    pub range: HumanDuration,
    /// How often the page re-fetches it. Default 30 s.
    #[serde(default = "default_refresh")]
    pub refresh: HumanDuration,
}

fn default_max() -> f64 {
    100.0
}

fn default_range() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

fn default_refresh() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// The built-in dashboards.
pub fn defaults() -> Vec<DashboardConfig> {
    #[derive(Deserialize)]
    struct File {
        dashboards: Vec<DashboardConfig>,
    }
    toml::from_str::<File>(DEFAULT_DASHBOARDS).map(|f| f.dashboards).unwrap_or_default()
}

/// Problems in `[[dashboards]]`, as (path, message).
pub fn problems(boards: &[DashboardConfig]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let id_ok = |s: &str| {
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut boards_seen = std::collections::BTreeSet::new();
    let mut widgets_seen = std::collections::BTreeSet::new();
    for (i, d) in boards.iter().enumerate() {
        let at = format!("dashboards[{i}]");
        if !id_ok(&d.id) {
            out.push((format!("{at}.id"), "use 1-64 letters, digits, '-' and '_'".into()));
        } else if !boards_seen.insert(d.id.clone()) {
            out.push((format!("{at}.id"), format!("{:?} is used twice", d.id)));
        }
        for (j, w) in d.widgets.iter().enumerate() {
            let at = format!("{at}.widgets[{j}]");
            if !id_ok(&w.id) {
                out.push((format!("{at}.id"), "use 1-64 letters, digits, '-' and '_'".into()));
            } else if !widgets_seen.insert(w.id.clone()) {
                out.push((format!("{at}.id"), format!("{:?} is used twice (widget ids are global)", w.id)));
            }
            if let DataSource::Metric { name, .. } = &w.source {
                if !thorbis_obs_core::metrics::is_valid_name(name, true) {
                    out.push((format!("{at}.source.name"), format!("{name:?} is not a metric name")));
                }
            } else if let DataSource::Sql { query, timeout, .. } = &w.source {
                if query.trim().trim_end_matches(';').contains(';') {
                    out.push((format!("{at}.source.query"), "one statement only".into()));
                }
                if timeout.get().is_zero() || timeout.get() > std::time::Duration::from_secs(60) {
                    out.push((format!("{at}.source.timeout"), "between 1ms and 60s".into()));
                }
            } else if w.kind != WidgetKind::Table {
                out.push((format!("{at}.kind"), "alerts, errors and uptime sources are shown as a table".into()));
            }
            if w.kind == WidgetKind::Gauge && w.min.partial_cmp(&w.max) != Some(std::cmp::Ordering::Less) {
                out.push((format!("{at}.max"), "must be above min".into()));
            }
            if w.thresholds.len() > 2 || w.thresholds.iter().any(|t| !t.is_finite()) {
                out.push((format!("{at}.thresholds"), "at most two finite numbers: warning, critical".into()));
            }
            if w.refresh.get() < std::time::Duration::from_secs(1) {
                out.push((format!("{at}.refresh"), "at least 1s".into()));
            }
            if w.range.get() > std::time::Duration::from_secs(7 * 86_400) || w.range.get().is_zero() {
                out.push((format!("{at}.range"), "between 1s and 7d".into()));
            }
        }
    }
    out
}

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
        [_, c] if past(*c) => Status::Critical,
        [warn, ..] if past(*warn) => Status::Warning,
        _ => Status::Ok,
    }
}

fn label_text(labels: &thorbis_obs_core::Labels) -> String {
    let parts: Vec<String> =
        labels.iter().filter(|(k, _)| *k != "service" && *k != "env").map(|(k, v)| format!("{k}={v}")).collect();
    if parts.is_empty() { "all".into() } else { parts.join(", ") }
}

/// Asks the engine to keep as much history as the charts show.
pub(crate) fn keep_history(shared: &Shared, boards: &[DashboardConfig]) {
    let mut engine = shared.engine();
    for w in boards.iter().flat_map(|d| &d.widgets) {
        if let (WidgetKind::Chart, DataSource::Metric { name, .. }) = (w.kind, &w.source) {
            engine.store_mut().configure_metric(name, w.range.get(), false);
        }
    }
}

/// Computes a widget's data now.
pub(crate) async fn data(shared: &Shared, w: &WidgetConfig) -> WidgetData {
    let now = shared.clock.now();
    let mut d = WidgetData {
        id: w.id.clone(),
        title: w.title.clone(),
        kind: w.kind,
        at: now,
        value: None,
        status: Status::NoData,
        lines: Vec::new(),
        columns: Vec::new(),
        rows: Vec::new(),
        error: None,
    };
    match &w.source {
        DataSource::Metric { name, labels, combine } => {
            let engine = shared.engine();
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
            let values = lasts.iter().map(|(_, v)| *v);
            d.value = match combine {
                _ if lasts.is_empty() => None,
                Combine::Sum => Some(values.sum()),
                Combine::Avg => Some(values.sum::<f64>() / lasts.len() as f64),
                Combine::Max => values.reduce(f64::max),
                Combine::Min => values.reduce(f64::min),
            };
            if w.kind == WidgetKind::Table {
                d.columns = vec!["series".into(), "value".into()];
                d.rows = lasts.iter().map(|(l, v)| vec![l.clone(), render::number(*v, &w.unit)]).collect();
            }
            d.lines.sort_by(|a, b| a.label.cmp(&b.label));
        }
        DataSource::Alerts => {
            let alerts = shared.engine().alerts(now);
            d.columns = ["alert", "state", "severity", "summary", "since"].map(String::from).to_vec();
            for a in alerts.iter().filter(|a| a.state != thorbis_obs_core::engine::AlertState::Resolved) {
                let since = a.fired_at.unwrap_or(a.active_at);
                let mins = now.since(since).as_secs() / 60;
                let state =
                    if a.muted { format!("{} (muted)", a.state.as_str()) } else { a.state.as_str().to_string() };
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
            d.columns = ["error", "count", "route", "process", "last seen"].map(String::from).to_vec();
            #[cfg(feature = "collector")]
            if let Some(c) = &shared.collector {
                let groups = c.errors_since(now.minus(w.range.get()));
                for g in groups.iter().take(20) {
                    let ago = now.since(g.last_seen).as_secs() / 60;
                    d.rows.push(vec![
                        g.message.chars().take(120).collect(),
                        g.count.to_string(),
                        g.route.clone(),
                        g.tags.get("businessProcess").cloned().unwrap_or_else(|| "-".into()),
                        format!("{ago} min ago"),
                    ]);
                }
                d.value = Some(groups.iter().fold(0.0, |n, g| n + g.count as f64));
            }
        }
        DataSource::Sql { url, query, timeout } => {
            #[cfg(feature = "postgres")]
            match sql::run(url.expose(), query, timeout.get()).await {
                Ok(result) => result.fill(w, &mut d),
                Err(e) => d.error = Some(e),
            }
            #[cfg(not(feature = "postgres"))]
            {
                let _ = (url, query, timeout);
                d.error = Some("SQL widgets need the `postgres` feature".into());
            }
        }
        DataSource::Uptime => {
            d.columns = ["check", "status", "response", "checked"].map(String::from).to_vec();
            let mut down = 0.0;
            for kind in [crate::uptime::CheckKind::Http, crate::uptime::CheckKind::Synthetic] {
                for t in shared.board.targets(kind) {
                    let newest = t.locations.iter().max_by_key(|r| r.at);
                    if t.down {
                        down += 1.0;
                    }
                    d.rows.push(vec![
                        t.spec.target.clone(),
                        if t.down { "down".into() } else { "up".into() },
                        newest.map(|r| render::number(r.duration_ms, "ms")).unwrap_or_else(|| "-".into()),
                        newest
                            .map(|r| format!("{} s ago", now.since(r.at).as_secs()))
                            .unwrap_or_else(|| "never".into()),
                    ]);
                }
            }
            d.value = Some(down);
        }
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
        (DataSource::Alerts | DataSource::Uptime, _) if d.value.unwrap_or(0.0) > 0.0 => Status::Critical,
        (DataSource::Errors, _) if d.rows.is_empty() => Status::Ok,
        (DataSource::Errors, _) => Status::Warning,
        _ => Status::Ok,
    };
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_dashboards_parse_and_pass_their_checks() {
        let boards = defaults();
        assert_eq!(boards.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["operations", "executive"]);
        assert!(boards.iter().all(|b| !b.widgets.is_empty()));
        assert_eq!(problems(&boards), Vec::<(String, String)>::new());
    }

    #[test]
    fn bad_dashboards_are_named() {
        let text = r#"
[[dashboards]]
id = "ops"
title = "Ops"
[[dashboards.widgets]]
id = "a"
title = "A"
kind = "gauge"
min = 5
max = 5
thresholds = [1, 2, 3]
source = { type = "metric", name = "bad name" }
[[dashboards.widgets]]
id = "a"
title = "Alerts"
kind = "chart"
refresh = "0s"
source = { type = "alerts" }
"#;
        #[derive(Deserialize)]
        struct F {
            dashboards: Vec<DashboardConfig>,
        }
        let f: F = toml::from_str(text).expect("parses");
        let p: Vec<String> = problems(&f.dashboards).into_iter().map(|(path, m)| format!("{path}: {m}")).collect();
        for want in [
            "dashboards[0].widgets[0].source.name",
            "dashboards[0].widgets[0].max: must be above min",
            "dashboards[0].widgets[0].thresholds",
            "dashboards[0].widgets[1].id: \"a\" is used twice",
            "dashboards[0].widgets[1].kind: alerts, errors and uptime sources are shown as a table",
            "dashboards[0].widgets[1].refresh: at least 1s",
        ] {
            assert!(p.iter().any(|x| x.starts_with(want)), "{want} missing from {p:#?}");
        }
    }

    #[test]
    fn thresholds_color_both_ways() {
        let mut w: WidgetConfig = toml::from_str(
            "id = \"x\"\ntitle = \"X\"\nkind = \"metric\"\nthresholds = [2500, 4000]\nsource = { type = \"metric\", name = \"m\" }",
        )
        .expect("widget");
        assert_eq!(status(&w, Some(1000.0)), Status::Ok);
        assert_eq!(status(&w, Some(2500.0)), Status::Warning);
        assert_eq!(status(&w, Some(4600.0)), Status::Critical);
        assert_eq!(status(&w, None), Status::NoData);
        w.lower_is_worse = true;
        w.thresholds = vec![85.0, 70.0];
        assert_eq!(status(&w, Some(90.0)), Status::Ok);
        assert_eq!(status(&w, Some(80.0)), Status::Warning);
        assert_eq!(status(&w, Some(60.0)), Status::Critical);
    }
}
