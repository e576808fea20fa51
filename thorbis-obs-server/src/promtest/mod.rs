//! `thorbis-obs rules test`: promtool-style unit tests for our rule files.
//!
//! The test file format is `promtool test rules`' own (rule_files, evaluation_interval,
//! tests[].interval, input_series, alert_rule_test[].eval_time/alertname/exp_alerts), with our
//! rule files in `rule_files`. Semantics:
//! - series samples sit at `i * interval` from time 0; `_` is a gap, `stale` ends nothing but
//!   adds no sample (our conditions are over-time aggregations, which skip staleness markers);
//! - rules are evaluated every `evaluation_interval` from 0 up to the largest `eval_time`;
//! - an alert test compares the alerts *firing* (not pending) at `eval_time` whose `alertname`
//!   matches: the rule's `name` with spaces removed (the `alertname` label), or its `id`;
//! - expected labels get `alertname` added (as promtool does); our alert labels are series
//!   labels + rule labels + `alertname` + `severity`, so `exp_labels` list `severity` too;
//! - windows are `(t - duration, t]` (Prometheus 3); Prometheus 2 includes a sample exactly at
//!   `t - duration`.
//! - `promql_expr_test` is not supported (our rules have no PromQL) and is reported as an error.

pub mod series;

use crate::rules_file::{Format, load_rule_file, parse_located};
use serde::Deserialize;
use series::{Point, expand_values, parse_series};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use thorbis_obs_core::engine::{AlertState, RuleEngine};
use thorbis_obs_core::metrics::Labels;
use thorbis_obs_core::rules::ValidateOptions;
use thorbis_obs_core::time::{HumanDuration, Timestamp};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<HumanDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<HumanDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: HumanDuration,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

/// The outcome of one test file.
#[derive(Debug, Default)]
pub struct FileOutcome {
    /// Alert tests that passed.
    pub passed: usize,
    /// Failure reports, promtool style.
    pub failures: Vec<String>,
    /// Errors that stopped a test group (bad series, bad rule file).
    pub errors: Vec<String>,
}

impl FileOutcome {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.errors.is_empty()
    }
}

type AlertSet = Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>;

/// Runs one promtool-style test file.
pub fn run_test_file(path: &Path) -> FileOutcome {
    let mut out = FileOutcome::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(format!("{}: cannot read: {e}", path.display()));
            return out;
        }
    };
    let file: TestFile = match parse_located(&text, Format::from_path(path).unwrap_or(Format::Yaml), path) {
        Ok(f) => f,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    let _ = &file.group_eval_order;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rules = Vec::new();
    for rf in &file.rule_files {
        let p: PathBuf = dir.join(rf);
        match load_rule_file(&p, &ValidateOptions::default()) {
            Ok(r) => rules.extend(r),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    if !out.errors.is_empty() {
        return out;
    }
    let eval_interval = file.evaluation_interval.map(|d| d.get()).unwrap_or(std::time::Duration::from_secs(60));
    if eval_interval.is_zero() {
        out.errors.push(format!("{}: evaluation_interval must be longer than 0s", path.display()));
        return out;
    }
    for (gi, group) in file.tests.iter().enumerate() {
        let label = group.name.clone().unwrap_or_else(|| format!("tests[{gi}]"));
        let _ = (&group.external_labels, &group.external_url);
        if !group.promql_expr_test.is_empty() {
            out.errors.push(format!("{label}: promql_expr_test is not supported (our rules are not PromQL)"));
            continue;
        }
        match run_group(group, rules.clone(), eval_interval) {
            Ok(results) => {
                for (test, got) in results {
                    let exp = expected(test);
                    if sorted(&got) == sorted(&exp) {
                        out.passed += 1;
                    } else {
                        out.failures.push(report(&label, test, &exp, &got));
                    }
                }
            }
            Err(e) => out.errors.push(format!("{label}: {e}")),
        }
    }
    out
}

fn expected(t: &AlertTest) -> AlertSet {
    t.exp_alerts
        .iter()
        .map(|a| {
            let mut l = a.exp_labels.clone();
            l.insert("alertname".into(), t.alertname.clone());
            (l, a.exp_annotations.clone())
        })
        .collect()
}

fn sorted(v: &AlertSet) -> AlertSet {
    let mut v = v.clone();
    v.sort();
    v
}

fn run_group(
    group: &TestGroup,
    rules: Vec<thorbis_obs_core::rules::AlertRule>,
    eval: std::time::Duration,
) -> Result<Vec<(&AlertTest, AlertSet)>, String> {
    let interval = group.interval.map(|d| d.get()).unwrap_or(eval);
    if interval.is_zero() {
        return Err("interval must be longer than 0s".into());
    }
    let mut engine =
        RuleEngine::new(rules).map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "))?;
    let mut samples: Vec<(i64, String, Labels, f64)> = Vec::new();
    for s in &group.input_series {
        let (name, labels) = parse_series(&s.series)?;
        for (i, p) in expand_values(&s.values)?.into_iter().enumerate() {
            if let Point::Value(v) = p {
                samples.push((i as i64 * interval.as_millis() as i64, name.clone(), labels.clone(), v));
            }
        }
    }
    samples.sort_by_key(|s| s.0);
    let mut tests: Vec<&AlertTest> = group.alert_rule_test.iter().collect();
    tests.sort_by_key(|t| t.eval_time);
    let max_t = tests.last().map(|t| t.eval_time.get().as_millis() as i64).unwrap_or(0);
    let step = eval.as_millis() as i64;
    let mut results = Vec::new();
    let mut next_sample = 0;
    let mut next_test = 0;
    let mut t = 0i64;
    while t <= max_t {
        while next_sample < samples.len() && samples[next_sample].0 <= t {
            let (at, name, labels, v) = &samples[next_sample];
            let id = engine.store_mut().series_id(name, labels);
            engine.store_mut().push(id, Timestamp(*at), *v).map_err(|e| e.to_string())?;
            next_sample += 1;
        }
        engine.evaluate(Timestamp(t));
        // Tests due before the next evaluation see this evaluation's state.
        while next_test < tests.len() && (tests[next_test].eval_time.get().as_millis() as i64) < t + step {
            let test = tests[next_test];
            let firing: AlertSet = engine
                .alerts_where(Timestamp(t), |r| {
                    r.id == test.alertname || r.name.chars().filter(|c| !c.is_whitespace()).eq(test.alertname.chars())
                })
                .into_iter()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| {
                    let mut labels: BTreeMap<String, String> =
                        a.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    labels.insert("alertname".into(), test.alertname.clone());
                    (labels, a.annotations)
                })
                .collect();
            results.push((test, firing));
            next_test += 1;
        }
        t += step;
    }
    Ok(results)
}

fn fmt_alerts(set: &AlertSet) -> String {
    let mut s = String::from("[");
    for (i, (l, a)) in sorted(set).iter().enumerate() {
        let _ = write!(
            s,
            "\n            {i}:\n              Labels:{}\n              Annotations:{}",
            fmt_map(l),
            fmt_map(a)
        );
    }
    if !set.is_empty() {
        s.push_str("\n            ");
    }
    s.push(']');
    s
}

fn fmt_map(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn report(group: &str, t: &AlertTest, exp: &AlertSet, got: &AlertSet) -> String {
    format!(
        "    {group}: alertname: {}, time: {},\n        exp:{},\n        got:{}",
        t.alertname,
        t.eval_time,
        fmt_alerts(exp),
        fmt_alerts(got)
    )
}
