//! Uptime report math over stored check results: uptime, response times, downtime events, SLA,
//! MTTR and MTBF.
//!
//! ```
//! use thorbis_obs_core::domain::uptime::{uptime_report, CheckResult, SlaStatus};
//! use thorbis_obs_core::time::Timestamp;
//!
//! let checks: Vec<CheckResult> = (1..=1000)
//!     .map(|i| CheckResult { at: Timestamp::from_secs(i * 60), success: i != 500, response_time_ms: 80.0 })
//!     .collect();
//! let report = uptime_report(&checks, Timestamp::from_secs(0), Timestamp::from_secs(60_000), 99.9);
//! assert_eq!(report.uptime_percent, Some(99.9));
//! assert_eq!(report.sla_status, SlaStatus::Met);
//! assert_eq!(report.downtime_events.len(), 1);
//! ```

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// One stored check.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// When the check ran.
    pub at: Timestamp,
    /// Whether the endpoint was healthy.
    pub success: bool,
    /// How long the check took, ms.
    pub response_time_ms: f64,
}

/// A stretch of downtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DowntimeEvent {
    /// The first failed check after a success, or the range start when the range opens failing
    /// (nothing says the endpoint was up before that check).
    pub start: Timestamp,
    /// The first successful check after the failures; `None` when still down at the range end.
    pub end: Option<Timestamp>,
    /// `end - start`, or `range_end - start` while ongoing.
    pub duration_ms: i64,
    /// Failed checks in the event.
    pub failed_checks: u64,
}

/// Whether a report meets its SLA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    /// Uptime at or above the target.
    Met,
    /// Uptime below the target.
    Breached,
    /// No checks in the range.
    NoData,
}

/// Uptime over a time range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UptimeReport {
    /// Exclusive start of the range.
    pub range_start: Timestamp,
    /// Inclusive end of the range.
    pub range_end: Timestamp,
    /// Checks in the range.
    pub checks: u64,
    /// Successful checks in the range.
    pub successful_checks: u64,
    /// `successful_checks * 100 / checks`; `None` without checks. The spec reports 0% there,
    /// which reads as a total outage when nothing was measured.
    pub uptime_percent: Option<f64>,
    /// Mean response time of every check with a finite, non-negative time (failed checks
    /// included, as in the spec); `None` without one.
    pub average_response_ms: Option<f64>,
    /// 95th percentile response time, nearest rank on the sorted times (no interpolation), over
    /// the same checks as the average.
    pub p95_response_ms: Option<f64>,
    /// Downtime events in time order.
    pub downtime_events: Vec<DowntimeEvent>,
    /// Sum of the events' durations.
    pub total_downtime_ms: i64,
    /// The SLA target, percent.
    pub sla_target_percent: f64,
    /// Whether `uptime_percent` meets the target.
    pub sla_status: SlaStatus,
    /// Mean time to recovery: the mean duration of the closed events; an ongoing outage has no
    /// recovery yet. `None` without a closed event.
    pub mttr_ms: Option<f64>,
    /// Mean time between failures, the standard way: total up time (range length minus total
    /// downtime) divided by the number of downtime events, ongoing included. `None` without a
    /// failure.
    pub mtbf_ms: Option<f64>,
}

/// Tolerance for the SLA comparison, so float rounding of e.g. 999/1000 cannot breach 99.9.
const SLA_EPSILON: f64 = 1e-9;

fn sla_status(uptime_percent: Option<f64>, target: f64) -> SlaStatus {
    match uptime_percent {
        None => SlaStatus::NoData,
        Some(u) if u + SLA_EPSILON >= target => SlaStatus::Met,
        Some(_) => SlaStatus::Breached,
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    // Multiplying before dividing keeps 999 of 1000 at exactly the double nearest 99.9.
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn range_ms(start: Timestamp, end: Timestamp) -> i64 {
    end.as_millis().saturating_sub(start.as_millis()).max(0)
}

/// Builds the report of the results with `range_start < at <= range_end` (left-open, like a
/// Prometheus range); the input may be unsorted. Until a failed check, the endpoint counts as up.
pub fn uptime_report(
    results: &[CheckResult],
    range_start: Timestamp,
    range_end: Timestamp,
    sla_target_percent: f64,
) -> UptimeReport {
    let mut in_range: Vec<CheckResult> =
        results.iter().filter(|r| r.at > range_start && r.at <= range_end).copied().collect();
    // Stable, so checks stored with the same timestamp keep their stored order.
    in_range.sort_by_key(|r| r.at);

    let checks = in_range.len() as u64;
    let successful_checks = in_range.iter().filter(|r| r.success).count() as u64;

    let mut times: Vec<f64> =
        in_range.iter().map(|r| r.response_time_ms).filter(|t| t.is_finite() && *t >= 0.0).collect();
    times.sort_by(f64::total_cmp);
    let average_response_ms = (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64);
    let p95_response_ms = nearest_rank(&times, 95);

    let downtime_events = downtime_events(&in_range, range_start, range_end);
    let total_downtime_ms = downtime_events.iter().map(|e| e.duration_ms).fold(0i64, i64::saturating_add);
    let closed: Vec<i64> = downtime_events.iter().filter(|e| e.end.is_some()).map(|e| e.duration_ms).collect();
    let mttr_ms = mean_ms(closed.iter().copied().fold(0i64, i64::saturating_add), closed.len() as u64);
    let up_ms = range_ms(range_start, range_end).saturating_sub(total_downtime_ms).max(0);
    let mtbf_ms = mean_ms(up_ms, downtime_events.len() as u64);

    let uptime_percent = percent(successful_checks, checks);
    UptimeReport {
        range_start,
        range_end,
        checks,
        successful_checks,
        uptime_percent,
        average_response_ms,
        p95_response_ms,
        downtime_events,
        total_downtime_ms,
        sla_target_percent,
        sla_status: sla_status(uptime_percent, sla_target_percent),
        mttr_ms,
        mtbf_ms,
    }
}

fn mean_ms(total: i64, count: u64) -> Option<f64> {
    (count > 0).then(|| total as f64 / count as f64)
}

/// Nearest rank: the value at 1-based rank `ceil(percentile * n / 100)` of the sorted values,
/// in integers so that float rounding never moves the rank.
fn nearest_rank(sorted: &[f64], percentile: usize) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (percentile.saturating_mul(n)).div_ceil(100);
    sorted.get(rank.clamp(1, n) - 1).copied()
}

fn downtime_events(sorted: &[CheckResult], range_start: Timestamp, range_end: Timestamp) -> Vec<DowntimeEvent> {
    let mut events = Vec::new();
    let mut open: Option<(Timestamp, u64)> = None;
    for (i, r) in sorted.iter().enumerate() {
        match (r.success, open) {
            (false, None) => open = Some((if i == 0 { range_start } else { r.at }, 1)),
            (false, Some((start, failed))) => open = Some((start, failed + 1)),
            (true, Some((start, failed_checks))) => {
                events.push(DowntimeEvent {
                    start,
                    end: Some(r.at),
                    duration_ms: range_ms(start, r.at),
                    failed_checks,
                });
                open = None;
            }
            (true, None) => {}
        }
    }
    if let Some((start, failed_checks)) = open {
        events.push(DowntimeEvent { start, end: None, duration_ms: range_ms(start, range_end), failed_checks });
    }
    events
}

/// Combines reports into one overall report, as the spec's `calculateOverallUptime` does for
/// several endpoints over the same range (it also works for consecutive ranges of one endpoint).
///
/// Checks, successful checks and downtime are summed and the uptime is recomputed from the sums,
/// so an endpoint checked more often weighs more. The average response time is weighted by each
/// report's checks. The exact combined p95 needs the raw times, so this gives the largest p95 of
/// the inputs, an upper bound on it. MTTR is recomputed from the inputs' closed events and MTBF
/// as the summed up time (range length minus downtime, per report) over all failures, i.e. per
/// endpoint-hour. The range spans the earliest start to the latest end. `downtime_events` is left
/// empty: events of different endpoints do not form one timeline.
pub fn combine_reports(reports: &[UptimeReport], sla_target_percent: f64) -> UptimeReport {
    let range_start = reports.iter().map(|r| r.range_start).min().unwrap_or_default();
    let range_end = reports.iter().map(|r| r.range_end).max().unwrap_or_default();
    let checks = reports.iter().map(|r| r.checks).fold(0u64, u64::saturating_add);
    let successful_checks = reports.iter().map(|r| r.successful_checks).fold(0u64, u64::saturating_add);

    let (weighted_sum, weight) = reports
        .iter()
        .filter_map(|r| r.average_response_ms.map(|avg| (avg, r.checks as f64)))
        .fold((0.0, 0.0), |(s, w), (avg, n)| (s + avg * n, w + n));
    let average_response_ms = (weight > 0.0).then(|| weighted_sum / weight);
    let p95_response_ms = reports.iter().filter_map(|r| r.p95_response_ms).reduce(f64::max);

    let total_downtime_ms = reports.iter().map(|r| r.total_downtime_ms).fold(0i64, i64::saturating_add);
    let (closed_ms, closed_count) = reports
        .iter()
        .flat_map(|r| r.downtime_events.iter())
        .filter(|e| e.end.is_some())
        .fold((0i64, 0u64), |(ms, n), e| (ms.saturating_add(e.duration_ms), n + 1));
    let failures = reports.iter().map(|r| r.downtime_events.len() as u64).sum::<u64>();
    let up_ms = reports
        .iter()
        .map(|r| range_ms(r.range_start, r.range_end).saturating_sub(r.total_downtime_ms).max(0))
        .fold(0i64, i64::saturating_add);

    let uptime_percent = percent(successful_checks, checks);
    UptimeReport {
        range_start,
        range_end,
        checks,
        successful_checks,
        uptime_percent,
        average_response_ms,
        p95_response_ms,
        downtime_events: Vec::new(),
        total_downtime_ms,
        sla_target_percent,
        sla_status: sla_status(uptime_percent, sla_target_percent),
        mttr_ms: mean_ms(closed_ms, closed_count),
        mtbf_ms: mean_ms(up_ms, failures),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(at_ms: i64, success: bool, response_time_ms: f64) -> CheckResult {
        CheckResult { at: Timestamp::from_millis(at_ms), success, response_time_ms }
    }

    /// One check a minute over 10 minutes; down at minutes 3-4 and 7.
    fn two_outages() -> Vec<CheckResult> {
        let mut v = vec![
            check(600_000, true, 100.0),
            check(60_000, true, 10.0),
            check(120_000, true, 20.0),
            check(180_000, false, 5000.0),
            check(240_000, false, 5000.0),
            check(300_000, true, 30.0),
            check(360_000, true, 40.0),
            check(420_000, false, 5000.0),
            check(480_000, true, 50.0),
            check(540_000, true, 60.0),
        ];
        // Outside the left-open range: exactly at the start, and after the end.
        v.push(check(0, false, 1.0));
        v.push(check(600_001, false, 1.0));
        v
    }

    #[test]
    fn report_with_two_outages() {
        let r = uptime_report(&two_outages(), Timestamp::from_millis(0), Timestamp::from_millis(600_000), 99.0);
        assert_eq!(r.checks, 10);
        assert_eq!(r.successful_checks, 7);
        assert_eq!(r.uptime_percent, Some(70.0));
        assert_eq!(r.sla_status, SlaStatus::Breached);
        // (10+20+30+40+50+60+100 + 3*5000) / 10
        assert_eq!(r.average_response_ms, Some(1531.0));
        // ceil(0.95 * 10) = rank 10: the largest.
        assert_eq!(r.p95_response_ms, Some(5000.0));
        assert_eq!(
            r.downtime_events,
            vec![
                DowntimeEvent {
                    start: Timestamp::from_millis(180_000),
                    end: Some(Timestamp::from_millis(300_000)),
                    duration_ms: 120_000,
                    failed_checks: 2,
                },
                DowntimeEvent {
                    start: Timestamp::from_millis(420_000),
                    end: Some(Timestamp::from_millis(480_000)),
                    duration_ms: 60_000,
                    failed_checks: 1,
                },
            ]
        );
        assert_eq!(r.total_downtime_ms, 180_000);
        assert_eq!(r.mttr_ms, Some(90_000.0));
        // (600 000 - 180 000) up over 2 failures.
        assert_eq!(r.mtbf_ms, Some(210_000.0));
    }

    #[test]
    fn ongoing_outage_runs_to_range_end_and_has_no_recovery() {
        let results = [check(2_000, false, 1.0), check(1_000, true, 1.0), check(3_000, false, 1.0)];
        let r = uptime_report(&results, Timestamp::from_millis(0), Timestamp::from_millis(10_000), 50.0);
        assert_eq!(
            r.downtime_events,
            vec![DowntimeEvent {
                start: Timestamp::from_millis(2_000),
                end: None,
                duration_ms: 8_000,
                failed_checks: 2
            }]
        );
        assert_eq!(r.total_downtime_ms, 8_000);
        assert_eq!(r.mttr_ms, None);
        assert_eq!(r.mtbf_ms, Some(2_000.0));
        assert_eq!(r.sla_status, SlaStatus::Breached);
        assert_eq!(r.p95_response_ms, Some(1.0));
    }

    #[test]
    fn a_range_that_opens_failing_starts_the_event_at_the_range_start() {
        let results = [check(5_000, false, 1.0), check(6_000, true, 1.0)];
        let r = uptime_report(&results, Timestamp::from_millis(1_000), Timestamp::from_millis(9_000), 50.0);
        assert_eq!(r.downtime_events.len(), 1);
        assert_eq!(r.downtime_events[0].start, Timestamp::from_millis(1_000));
        assert_eq!(r.downtime_events[0].duration_ms, 5_000);
        assert_eq!(r.sla_status, SlaStatus::Met);
    }

    #[test]
    fn empty_range_has_no_data_rather_than_zero_uptime() {
        let r = uptime_report(&two_outages(), Timestamp::from_millis(700_000), Timestamp::from_millis(800_000), 99.9);
        assert_eq!(r.checks, 0);
        assert_eq!(r.uptime_percent, None);
        assert_eq!(r.sla_status, SlaStatus::NoData);
        assert_eq!(r.average_response_ms, None);
        assert_eq!(r.p95_response_ms, None);
        assert!(r.downtime_events.is_empty());
        assert_eq!((r.mttr_ms, r.mtbf_ms), (None, None));
    }

    #[test]
    fn sla_exactly_at_target_is_met() {
        let results: Vec<CheckResult> = (1..=1000).map(|i| check(i, i != 1000, 1.0)).collect();
        let r = uptime_report(&results, Timestamp::from_millis(0), Timestamp::from_millis(1000), 99.9);
        assert_eq!(r.successful_checks, 999);
        assert_eq!(r.sla_status, SlaStatus::Met);
        let r = uptime_report(&results, Timestamp::from_millis(0), Timestamp::from_millis(1000), 99.91);
        assert_eq!(r.sla_status, SlaStatus::Breached);
    }

    #[test]
    fn p95_is_nearest_rank_and_ignores_unusable_times() {
        let mut results: Vec<CheckResult> = (1..=20).map(|i| check(i, true, (21 - i) as f64)).collect();
        results.push(check(21, true, f64::NAN));
        let r = uptime_report(&results, Timestamp::from_millis(0), Timestamp::from_millis(100), 99.0);
        // Times 1..=20: rank ceil(95 * 20 / 100) = 19.
        assert_eq!(r.p95_response_ms, Some(19.0));
        assert_eq!(r.average_response_ms, Some(10.5));
        assert_eq!(r.checks, 21);
    }

    #[test]
    fn combine_sums_checks_and_weights_averages() {
        let a = uptime_report(&two_outages(), Timestamp::from_millis(0), Timestamp::from_millis(600_000), 99.0);
        let b_results: Vec<CheckResult> = (1..=30).map(|i| check(i * 20_000, true, 10.0)).collect();
        let b = uptime_report(&b_results, Timestamp::from_millis(0), Timestamp::from_millis(600_000), 99.0);
        let all = combine_reports(&[a, b], 90.0);
        assert_eq!((all.checks, all.successful_checks), (40, 37));
        assert_eq!(all.uptime_percent, Some(92.5));
        assert_eq!(all.sla_status, SlaStatus::Met);
        // (1531 * 10 + 10 * 30) / 40
        assert_eq!(all.average_response_ms, Some(390.25));
        assert_eq!(all.p95_response_ms, Some(5000.0));
        assert_eq!(all.total_downtime_ms, 180_000);
        assert_eq!(all.mttr_ms, Some(90_000.0));
        // (420 000 + 600 000) up over 2 failures.
        assert_eq!(all.mtbf_ms, Some(510_000.0));
        assert!(all.downtime_events.is_empty());
        assert_eq!(combine_reports(&[], 99.0).sla_status, SlaStatus::NoData);
    }
}
