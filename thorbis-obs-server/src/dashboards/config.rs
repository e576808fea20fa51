//! `[[dashboards]]`: boards of widgets, each with a kind, a data source, thresholds and a refresh
//! interval; the built-in boards; their checks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thorbis_obs_core::time::HumanDuration;

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
    /// Regions from a SQL widget's rows (region, then numbers), each with a bar for its first
    /// number: the spec's customer geography, without a tile server or map data.
    Map,
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

/// How one series of a chart is drawn (the spec's performance overview: average and max
/// response time on the left axis, error rate on the right).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesStyle {
    /// The SQL column (or the series' label text) it applies to.
    pub column: String,
    /// The name in the legend (default: the column).
    #[serde(default)]
    pub name: Option<String>,
    /// Which y axis.
    #[serde(default)]
    pub axis: Axis,
    /// `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
    /// The unit on that axis (default: the widget's).
    #[serde(default)]
    pub unit: Option<String>,
}

/// A chart's y axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Left.
    #[default]
    Left,
    /// Right.
    Right,
}

/// What a number is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The previous period: a SQL widget's second row.
    PreviousPeriod,
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
        url: crate::secret::Secret,
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
    /// A goal the number is shown against (`1,000` active customers: "87% of target").
    #[serde(default)]
    pub target: Option<f64>,
    /// A chart's series by name (a SQL column, or a metric series' label text): the name shown,
    /// the y axis (`left` or `right`, each with its own scale) and a `#rrggbb` colour. Series
    /// not listed keep the palette and the left axis.
    #[serde(default)]
    pub series: Vec<SeriesStyle>,
    /// `previous_period`: the second row of a SQL widget's result is the previous period
    /// (a query ordered newest first, as the spec's monthly revenue is); the number is shown
    /// with its change and a trend arrow.
    #[serde(default)]
    pub compare: Option<Compare>,
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
                if let Some(pos) = crate::sql::second_statement(query) {
                    out.push((
                        format!("{at}.source.query"),
                        format!("one statement only: a second one starts at byte {pos}"),
                    ));
                }
                if timeout.get().is_zero() || timeout.get() > std::time::Duration::from_secs(60) {
                    out.push((format!("{at}.source.timeout"), "between 1ms and 60s".into()));
                }
            } else if w.kind != WidgetKind::Table {
                out.push((format!("{at}.kind"), "alerts, errors and uptime sources are shown as a table".into()));
            }
            if w.kind == WidgetKind::Map && !matches!(w.source, DataSource::Sql { .. }) {
                out.push((format!("{at}.kind"), "a map reads a SQL widget's rows: region, then numbers".into()));
            }
            if w.kind == WidgetKind::Gauge && w.min.partial_cmp(&w.max) != Some(std::cmp::Ordering::Less) {
                out.push((format!("{at}.max"), "must be above min".into()));
            }
            let bands = if w.kind == WidgetKind::Gauge { 3 } else { 2 };
            if w.thresholds.len() > bands || w.thresholds.iter().any(|t| !t.is_finite()) {
                let what = if bands == 3 {
                    "at most three finite numbers: critical, warning and good bands of a gauge"
                } else {
                    "at most two finite numbers: warning, critical"
                };
                out.push((format!("{at}.thresholds"), what.into()));
            } else if !w.thresholds.is_sorted_by(|a, b| a < b) && !w.thresholds.is_sorted_by(|a, b| a > b) {
                out.push((format!("{at}.thresholds"), "must rise or fall".into()));
            }
            for (k, st) in w.series.iter().enumerate() {
                let hex = |c: &str| c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
                if st.color.as_deref().is_some_and(|c| !hex(c)) {
                    out.push((format!("{at}.series[{k}].color"), "use #rrggbb".into()));
                }
            }
            if !w.series.is_empty() && w.kind != WidgetKind::Chart {
                out.push((format!("{at}.series"), "only charts have series".into()));
            }
            if w.target.is_some_and(|t| !t.is_finite()) {
                out.push((format!("{at}.target"), "must be a finite number".into()));
            }
            if w.compare.is_some() && !matches!(w.source, DataSource::Sql { .. }) {
                out.push((format!("{at}.compare"), "previous_period reads a SQL widget's second row".into()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboards::{Status, status};

    #[test]
    fn the_built_in_dashboards_parse_and_pass_their_checks() {
        let boards = defaults();
        assert_eq!(boards.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["operations", "executive"]);
        assert!(boards.iter().all(|b| !b.widgets.is_empty()));
        assert_eq!(problems(&boards), Vec::<(String, String)>::new());
    }

    #[test]
    fn bands_targets_and_comparisons_are_checked() {
        let text = r#"
[[dashboards]]
id = "exec"
title = "Exec"
[[dashboards.widgets]]
id = "three-on-a-number"
title = "A"
kind = "metric"
thresholds = [1, 2, 3]
compare = "previous_period"
source = { type = "metric", name = "x" }
[[dashboards.widgets]]
id = "zigzag"
title = "B"
kind = "gauge"
thresholds = [70, 95, 85]
target = 1000
source = { type = "metric", name = "x" }
"#;
        #[derive(Deserialize)]
        struct File {
            dashboards: Vec<DashboardConfig>,
        }
        let boards = toml::from_str::<File>(text).expect("parses").dashboards;
        let p: Vec<String> = problems(&boards).into_iter().map(|(path, m)| format!("{path}: {m}")).collect();
        assert_eq!(
            p,
            [
                "dashboards[0].widgets[0].thresholds: at most two finite numbers: warning, critical",
                "dashboards[0].widgets[0].compare: previous_period reads a SQL widget's second row",
                "dashboards[0].widgets[1].thresholds: must rise or fall",
            ]
        );
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
thresholds = [1, 2, 3, 4]
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
