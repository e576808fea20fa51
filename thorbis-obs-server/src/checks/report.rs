//! Uptime reports from stored results: per endpoint, per location and overall (core's
//! uptime math), for `/api/v1/uptime` and `thorbis-obs uptime report`.
//!
//! With one location an endpoint's report is its raw checks. With several, every check is a
//! point on one timeline whose verdict is the quorum's: the endpoint counts as down at a check
//! when at least `quorum` locations' newest results (that one included) failed. So one bad
//! vantage point lowers its own location's report, not the endpoint's. Response times are the
//! raw ones of every location.

use crate::store::CheckRecord;
use serde::Serialize;
use std::collections::BTreeMap;
use thorbis_obs_core::domain::availability::quorum_down;
use thorbis_obs_core::domain::uptime::{CheckResult, UptimeReport, combine_reports, uptime_report};
use thorbis_obs_core::time::Timestamp;

/// One endpoint's report with its locations'.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointReport {
    /// Over the quorum timeline.
    #[serde(flatten)]
    pub report: UptimeReport,
    /// Raw, per location.
    pub locations: BTreeMap<String, UptimeReport>,
}

/// Reports for a range.
#[derive(Clone, Debug, Serialize)]
pub struct UptimeSummary {
    /// The range's name, e.g. `24h`.
    pub range: String,
    /// When the report was made.
    pub generated_at: Timestamp,
    /// Per endpoint.
    pub endpoints: BTreeMap<String, EndpointReport>,
    /// All endpoints together.
    pub overall: UptimeReport,
}

/// Builds the reports of `records` (one kind) over `(start, end]`; `settings(target)` gives a
/// target's (quorum, SLA target); `targets` are listed even without results.
pub fn summarize(
    records: &[CheckRecord],
    range: &str,
    start: Timestamp,
    end: Timestamp,
    targets: &[String],
    settings: impl Fn(&str) -> (usize, f64),
    overall_sla: f64,
) -> UptimeSummary {
    let mut by_target: BTreeMap<&str, Vec<&CheckRecord>> = targets.iter().map(|t| (t.as_str(), Vec::new())).collect();
    for r in records.iter().filter(|r| r.at > start && r.at <= end) {
        by_target.entry(r.target.as_str()).or_default().push(r);
    }
    let mut endpoints = BTreeMap::new();
    for (target, mut recs) in by_target {
        recs.sort_by_key(|r| r.at);
        let (quorum, sla) = settings(target);
        // Every location that reported in the range counts from the start, as not failing until
        // it says otherwise: the quorum is capped by the locations known, not by those heard
        // from so far.
        let mut latest_failed: BTreeMap<&str, bool> = recs.iter().map(|r| (r.location.as_str(), false)).collect();
        let mut timeline = Vec::with_capacity(recs.len());
        let mut per_location: BTreeMap<String, Vec<CheckResult>> = BTreeMap::new();
        for r in &recs {
            latest_failed.insert(r.location.as_str(), !r.success);
            let point = CheckResult { at: r.at, success: r.success, response_time_ms: r.duration_ms };
            per_location.entry(r.location.clone()).or_default().push(point);
            let success = !quorum_down(latest_failed.values().copied(), quorum);
            timeline.push(CheckResult { success, ..point });
        }
        let locations = per_location.into_iter().map(|(l, c)| (l, uptime_report(&c, start, end, sla))).collect();
        endpoints.insert(
            target.to_string(),
            EndpointReport { report: uptime_report(&timeline, start, end, sla), locations },
        );
    }
    let all: Vec<UptimeReport> = endpoints.values().map(|e| e.report.clone()).collect();
    let mut overall = combine_reports(&all, overall_sla);
    if all.is_empty() {
        overall.range_start = start;
        overall.range_end = end;
    }
    UptimeSummary { range: range.to_string(), generated_at: end, endpoints, overall }
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "-".into())
}

fn dur(v: Option<f64>) -> String {
    v.map(|x| thorbis_obs_core::time::format_duration(std::time::Duration::from_millis(x.max(0.0) as u64)))
        .unwrap_or_else(|| "-".into())
}

/// A plain-text table of a summary.
pub fn render_table(s: &UptimeSummary) -> String {
    let mut out = format!(
        "uptime over {} ending {}\n{:<24} {:>8} {:>7} {:>7} {:>8} {:>8} {:>6} {:>10} {:>9} {:>10} {:>10}\n",
        s.range,
        s.generated_at.to_rfc3339(),
        "endpoint",
        "uptime%",
        "checks",
        "ok",
        "avg ms",
        "p95 ms",
        "downs",
        "downtime",
        "sla",
        "mttr",
        "mtbf"
    );
    let mut row = |name: &str, r: &UptimeReport| {
        let uptime = r.uptime_percent.map(|u| format!("{u:.3}")).unwrap_or_else(|| "-".into());
        let sla = match r.sla_status {
            thorbis_obs_core::domain::uptime::SlaStatus::Met => "met",
            thorbis_obs_core::domain::uptime::SlaStatus::Breached => "BREACHED",
            thorbis_obs_core::domain::uptime::SlaStatus::NoData => "no data",
        };
        out.push_str(&format!(
            "{:<24} {:>8} {:>7} {:>7} {:>8} {:>8} {:>6} {:>10} {:>9} {:>10} {:>10}\n",
            name,
            uptime,
            r.checks,
            r.successful_checks,
            ms(r.average_response_ms),
            ms(r.p95_response_ms),
            r.downtime_events.len(),
            dur(Some(r.total_downtime_ms as f64)),
            sla,
            dur(r.mttr_ms),
            dur(r.mtbf_ms),
        ));
    };
    for (name, e) in &s.endpoints {
        row(name, &e.report);
    }
    row("(overall)", &s.overall);
    for (name, e) in &s.endpoints {
        for ev in &e.report.downtime_events {
            out.push_str(&format!(
                "  {name} down from {} to {} ({})\n",
                ev.start.to_rfc3339(),
                ev.end.map(|t| t.to_rfc3339()).unwrap_or_else(|| "now".into()),
                dur(Some(ev.duration_ms as f64)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CheckKind;

    fn rec(target: &str, location: &str, at_s: i64, success: bool) -> CheckRecord {
        CheckRecord {
            kind: CheckKind::Http,
            target: target.into(),
            location: location.into(),
            at: Timestamp::from_secs(at_s),
            success,
            duration_ms: 10.0,
            status_code: Some(200),
            failed_rule: None,
            error: None,
            cert_expires_at: None,
            down: false,
            detail: None,
        }
    }

    #[test]
    fn one_bad_location_does_not_take_the_endpoint_down_with_a_quorum_of_two() {
        let mut recs = Vec::new();
        for i in 1..=10 {
            recs.push(rec("api", "eu", i * 60, true));
            recs.push(rec("api", "us", i * 60 + 1, !(4..=6).contains(&i))); // us fails 3 times
        }
        let s = summarize(&recs, "1h", Timestamp::from_secs(0), Timestamp::from_secs(3600), &[], |_| (2, 99.0), 99.0);
        let api = &s.endpoints["api"];
        assert_eq!(api.report.uptime_percent, Some(100.0));
        assert_eq!(api.locations["us"].successful_checks, 7);
        assert_eq!(api.locations["us"].downtime_events.len(), 1);
        let s1 = summarize(&recs, "1h", Timestamp::from_secs(0), Timestamp::from_secs(3600), &[], |_| (1, 99.0), 99.0);
        // The check points of eu while us is failing count as down too: 6 of 20.
        assert_eq!(s1.endpoints["api"].report.uptime_percent, Some(70.0));
        assert_eq!(s1.endpoints["api"].report.downtime_events.len(), 1);
        let table = render_table(&s1);
        assert!(table.contains("api") && table.contains("BREACHED"), "{table}");
    }

    #[test]
    fn configured_targets_without_results_show_no_data() {
        let s = summarize(
            &[],
            "24h",
            Timestamp::from_secs(0),
            Timestamp::from_secs(10),
            &["idle".into()],
            |_| (1, 99.9),
            99.9,
        );
        assert_eq!(s.endpoints["idle"].report.checks, 0);
        assert_eq!(s.endpoints["idle"].report.sla_status, thorbis_obs_core::domain::uptime::SlaStatus::NoData);
    }
}
