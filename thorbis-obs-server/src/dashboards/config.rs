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
    /// Values are multiplied by this before they are shown (`100` shows a 0..1 error rate
    /// in %).
    #[serde(default)]
    pub scale: Option<f64>,
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
        /// How matching series combine for `metric` and `gauge` (and, in a chart of several
        /// metrics, each metric's series at each time).
        #[serde(default)]
        combine: Combine,
        /// Further metrics with the same labels, for a chart of several (the spec's
        /// performance overview: mean and slowest response time, error rate): one line per
        /// metric, named by it (style it with `series`), at most 8 in all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
    },
    /// Alert instances that are pending or firing.
    Alerts,
    /// Browser errors grouped by fingerprint (the collector's).
    Errors,
    /// Uptime checks and synthetic workflows with their verdicts.
    Uptime,
    /// One read-only query on PostgreSQL (`postgres://`, feature `postgres`: a READ ONLY
    /// transaction) or SQLite (`sqlite:PATH`: the file opened read only): a single statement
    /// with a statement timeout, at most 50 rows. `metric` and `gauge` show the
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

/// The URL the built-in boards' SQL widgets name for "the business database".
pub const BUILTIN_DATABASE: &str = "builtin:database";

/// The built-in dashboards. With `database` (`[agent] business_database`, else the first
/// PostgreSQL source's URL), the widgets that read the business database read that one (a
/// `sqlite:` database with the SQLite form of each query); without, they are left out. The
/// charts of the PostgreSQL probe's `pg_*` metrics are shown when `probed` (a PostgreSQL source
/// is configured).
pub fn defaults(database: Option<&crate::secret::Secret>, probed: bool) -> Vec<DashboardConfig> {
    let file = builtin();
    let sqlite = database.is_some_and(|db| super::sql::sqlite_path(db.expose()).is_some());
    let mut boards = file.dashboards;
    for b in &mut boards {
        b.widgets.retain_mut(|w| {
            let id = w.id.clone();
            match &mut w.source {
                DataSource::Sql { url, query, .. } if url.expose() == BUILTIN_DATABASE => match database {
                    Some(db) => {
                        *url = db.clone();
                        if let (true, Some(q)) = (sqlite, file.sqlite_queries.get(&id)) {
                            *query = q.clone();
                        }
                        true
                    }
                    None => false,
                },
                DataSource::Metric { name, .. } if name.starts_with("pg_") => probed,
                _ => true,
            }
        });
    }
    boards
}

/// The built-in boards' file: the boards, and the SQLite form of each business query by widget.
#[derive(Deserialize)]
struct Builtin {
    dashboards: Vec<DashboardConfig>,
    #[serde(default)]
    sqlite_queries: BTreeMap<String, String>,
}

fn builtin() -> Builtin {
    toml::from_str::<Builtin>(DEFAULT_DASHBOARDS)
        .unwrap_or_else(|_| Builtin { dashboards: Vec::new(), sqlite_queries: BTreeMap::new() })
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
            if let DataSource::Metric { name, also, .. } = &w.source {
                if !thorbis_obs_core::metrics::is_valid_name(name, true) {
                    out.push((format!("{at}.source.name"), format!("{name:?} is not a metric name")));
                }
                if let Some(bad) = also.iter().find(|n| !thorbis_obs_core::metrics::is_valid_name(n, true)) {
                    out.push((format!("{at}.source.also"), format!("{bad:?} is not a metric name")));
                }
                if !also.is_empty() && w.kind != WidgetKind::Chart {
                    out.push((format!("{at}.source.also"), "several metrics make a chart: kind = \"chart\"".into()));
                } else if also.len() > 7 {
                    out.push((format!("{at}.source.also"), "at most 8 metrics in one chart".into()));
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
                if st.scale.is_some_and(|x| !x.is_finite() || x == 0.0) {
                    out.push((format!("{at}.series[{k}].scale"), "a finite number other than 0".into()));
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
        let boards = defaults(None, false);
        assert_eq!(boards.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["operations", "executive"]);
        assert!(boards.iter().all(|b| !b.widgets.is_empty()));
        assert_eq!(problems(&boards), Vec::<(String, String)>::new());
        // Without a database: no SQL widget, no database chart.
        let ids = |boards: &[DashboardConfig]| -> Vec<String> {
            boards.iter().flat_map(|b| &b.widgets).map(|w| w.id.clone()).collect()
        };
        let without = ids(&boards);
        assert!(!without.iter().any(|id| id == "monthly-revenue" || id == "database-performance"), "{without:?}");
        assert!(without.iter().any(|id| id == "performance-overview"), "{without:?}");
        // With one: the spec's executive widgets read it, and the operations board charts it.
        let db = crate::secret::Secret::new("postgres://probe:pw@db.example/business");
        let with = defaults(Some(&db), true);
        assert_eq!(problems(&with), Vec::<(String, String)>::new());
        for id in
            ["monthly-revenue", "active-customers", "completion-rate", "customer-geography", "database-performance"]
        {
            assert!(ids(&with).iter().any(|w| w == id), "{id} missing");
        }
        let urls: Vec<&str> = with
            .iter()
            .flat_map(|b| &b.widgets)
            .filter_map(|w| match &w.source {
                DataSource::Sql { url, .. } => Some(url.expose()),
                _ => None,
            })
            .collect();
        assert_eq!(urls, [db.expose(); 4]);
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
