//! Built-in rule packs, as data: the spec's five alert rules and its database health rules,
//! uptime, real-user monitoring, error tracking and host rules.
//!
//! The metric names are constants so probes and the SDK emit exactly what the rules read.

use super::matcher::{MatchOp, Matcher, Matchers};
use super::model::{AlertRule, Condition, EscalationStep, NoDataPolicy, Operator, Severity, SuppressionRule};
use crate::time::HumanDuration;
use crate::window::Aggregation;
use std::collections::BTreeMap;

/// API request duration in milliseconds.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration";
/// Fraction of API requests that failed (0..1).
pub const HTTP_REQUEST_ERROR_RATE: &str = "http_request_error_rate";
/// Connections in use as a percentage of `max_connections` (the spec's 80 means 80%).
pub const DATABASE_ACTIVE_CONNECTIONS: &str = "database_active_connections";
/// Fraction of payments that failed (0..1).
pub const PAYMENT_FAILURE_RATE: &str = "payment_failure_rate";
/// Failed logins per minute.
pub const FAILED_LOGIN_RATE: &str = "failed_login_rate";
/// Size of the current database in bytes.
pub const PG_DATABASE_SIZE_BYTES: &str = "pg_database_size_bytes";
/// Replication lag in seconds (largest over replicas, or the standby's own).
pub const PG_REPLICATION_LAG_SECONDS: &str = "pg_replication_lag_seconds";
/// Number of lock waits (blocked/blocking pairs).
pub const PG_LOCK_WAITS: &str = "pg_lock_waits";

fn d(s: u64) -> HumanDuration {
    HumanDuration::from_secs(s)
}

fn ch(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[expect(clippy::too_many_arguments, reason = "a table row: one argument per column of the spec's rule")]
fn rule(
    id: &str,
    name: &str,
    description: &str,
    metric: &str,
    (operator, threshold, window, aggregation): (Operator, f64, u64, Aggregation),
    severity: Severity,
    channels: &[&str],
    escalation: Vec<EscalationStep>,
) -> AlertRule {
    let mut annotations = BTreeMap::new();
    let shown = super::humanize::humanized("humanize", threshold).unwrap_or_else(|| threshold.to_string());
    annotations
        .insert("summary".to_string(), format!("{name}: {{{{ $value | humanize }}}} ({} {shown})", operator.symbol()));
    annotations.insert("description".to_string(), description.to_string());
    AlertRule {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        metric: metric.into(),
        matchers: Matchers::default(),
        condition: Condition { operator, threshold, duration: d(window), aggregation },
        pending_for: HumanDuration::ZERO,
        keep_firing_for: HumanDuration::ZERO,
        severity,
        channels: ch(channels),
        escalation,
        suppression_rules: Vec::new(),
        labels: BTreeMap::new(),
        annotations,
        no_data: NoDataPolicy::Ok,
        repeat_interval: None,
        send_resolved: true,
    }
}

/// Replaces a rule's summary: every pack's text shows its value humanized in the metric's unit.
fn with_summary(mut r: AlertRule, text: &str) -> AlertRule {
    r.annotations.insert("summary".into(), text.into());
    r
}

fn step(after_s: u64, severity: Severity, channels: &[&str]) -> EscalationStep {
    EscalationStep { after: d(after_s), severity, channels: ch(channels) }
}

/// The spec's five rules (high-response-time, high-error-rate, database-connections-high,
/// payment-processing-failure, suspicious-login-activity), with its escalation ladders and the
/// deployment suppression on high-response-time.
pub fn spec_rules() -> Vec<AlertRule> {
    use Aggregation::*;
    use Operator::GreaterThan as Gt;
    use Severity::*;
    let mut high_response = rule(
        "high-response-time",
        "High Response Time",
        "API response time exceeds acceptable threshold",
        HTTP_REQUEST_DURATION,
        (Gt, 2000.0, 300, Avg),
        Warning,
        &["slack", "email"],
        vec![
            step(600, Error, &["slack", "email", "sms"]),
            step(1200, Critical, &["slack", "email", "sms", "pagerduty"]),
        ],
    );
    high_response
        .suppression_rules
        .push(SuppressionRule { condition: "deployment_in_progress".into(), duration: d(1800) });
    vec![
        with_summary(
            high_response,
            "{{ $labels.service }} {{ $labels.method }} {{ $labels.route }} averages {{ $value | humanizeMillis }} (over 2s)",
        ),
        with_summary(
            rule(
                "high-error-rate",
                "High Error Rate",
                "API error rate exceeds acceptable threshold",
                HTTP_REQUEST_ERROR_RATE,
                (Gt, 0.05, 120, Avg),
                Error,
                &["slack", "email"],
                vec![step(300, Critical, &["slack", "email", "sms", "pagerduty"])],
            ),
            "{{ $labels.service }} {{ $labels.route }}: {{ $value | humanizePercentage }} of requests failed (over 5%)",
        ),
        with_summary(
            rule(
                "database-connections-high",
                "Database Connections High",
                "Database connection count approaching limits",
                DATABASE_ACTIVE_CONNECTIONS,
                (Gt, 80.0, 180, Max),
                Warning,
                &["slack"],
                vec![step(600, Error, &["slack", "email"])],
            ),
            "{{ $value | humanize }}% of max_connections in use (over 80%)",
        ),
        with_summary(
            rule(
                "payment-processing-failure",
                "Payment Processing Failures",
                "High rate of payment processing failures",
                PAYMENT_FAILURE_RATE,
                (Gt, 0.1, 60, Avg),
                Critical,
                &["slack", "email", "sms"],
                vec![],
            ),
            "{{ $value | humanizePercentage }} of payments failed in the last minute (over 10%)",
        ),
        with_summary(
            rule(
                "suspicious-login-activity",
                "Suspicious Login Activity",
                "Unusual login patterns detected",
                FAILED_LOGIN_RATE,
                (Gt, 10.0, 60, Sum),
                Error,
                &["slack", "email"],
                vec![step(300, Critical, &["slack", "email", "sms"])],
            ),
            "{{ $value | humanize }} failed logins in the last minute (over 10)",
        ),
    ]
}

/// The agent's per-source health gauge (1 up, 0 down).
pub const THORBIS_SOURCE_UP: &str = "thorbis_source_up";

/// The spec's database health rules: size above 10 GB (warning), replication lag above 30 s
/// (critical), more than 5 lock waits (warning), each on the newest probe value; plus
/// "database unreachable" (critical) when every run of a PostgreSQL probe in 2 minutes failed.
pub fn database_health_rules() -> Vec<AlertRule> {
    use Operator::GreaterThan as Gt;
    let mut unreachable = rule(
        "database-unreachable",
        "Database Unreachable",
        "The PostgreSQL probe cannot reach the database",
        THORBIS_SOURCE_UP,
        (Operator::LessThan, 1.0, 120, Aggregation::Max),
        Severity::Critical,
        &["slack", "email", "pagerduty"],
        vec![],
    );
    unreachable.matchers = Matchers(vec![
        super::matcher::Matcher::new("source", super::matcher::MatchOp::Regex, "postgres.*").expect("a valid pattern"),
    ]);
    vec![
        with_summary(unreachable, "PostgreSQL source {{ $labels.source }} has not answered for 2 minutes"),
        with_summary(
            rule(
                "database-size-large",
                "Database Size Large",
                "Database size exceeds 10GB",
                PG_DATABASE_SIZE_BYTES,
                (Gt, 10.0 * 1024.0 * 1024.0 * 1024.0, 300, Aggregation::Last),
                Severity::Warning,
                &["slack"],
                vec![],
            ),
            "The database is {{ $value | humanize1024 }}B (over 10GiB)",
        ),
        with_summary(
            rule(
                "replication-lag-high",
                "Replication Lag High",
                "Replication lag exceeds 30 seconds",
                PG_REPLICATION_LAG_SECONDS,
                (Gt, 30.0, 60, Aggregation::Last),
                Severity::Critical,
                &["slack", "email", "sms", "pagerduty"],
                vec![],
            ),
            "Replication lag is {{ $value | humanizeDuration }} (over 30s)",
        ),
        with_summary(
            rule(
                "lock-waits-high",
                "Lock Waits High",
                "High number of lock waits detected",
                PG_LOCK_WAITS,
                (Gt, 5.0, 60, Aggregation::Last),
                Severity::Warning,
                &["slack"],
                vec![],
            ),
            "{{ $value | humanize }} lock waits (over 5)",
        ),
    ]
}

/// An endpoint's verdict after thresholds and the location quorum (1 down, 0 up), label
/// `endpoint`; re-emitted every few seconds while checks run.
pub const THORBIS_UPTIME_DOWN: &str = "thorbis_uptime_down";
/// Seconds until the endpoint's TLS certificate expires, labels `endpoint`, `location`.
pub const THORBIS_UPTIME_CERT_EXPIRES_IN_SECONDS: &str = "thorbis_uptime_cert_expires_in_seconds";
/// A synthetic workflow's verdict after thresholds (1 failing, 0 passing), label `workflow`.
pub const THORBIS_SYNTHETIC_DOWN: &str = "thorbis_synthetic_down";

/// Uptime and synthetic rules: an endpoint down (critical: the verdict already waited for the
/// failure threshold and the location quorum, so it fires at once), a TLS certificate expiring
/// within 14 days (warning), a synthetic workflow failing (error).
pub fn uptime_rules() -> Vec<AlertRule> {
    let mut down = rule(
        "endpoint-down",
        "Endpoint Down",
        "An uptime check failed its failure threshold at a quorum of locations",
        THORBIS_UPTIME_DOWN,
        (Operator::GreaterThan, 0.0, 600, Aggregation::Last),
        Severity::Critical,
        &["slack", "pagerduty"],
        vec![],
    );
    down.annotations.insert("summary".into(), "{{ $labels.endpoint }} is down".into());
    let mut cert = rule(
        "certificate-expiring",
        "Certificate Expiring",
        "A checked endpoint's TLS certificate expires within 14 days",
        THORBIS_UPTIME_CERT_EXPIRES_IN_SECONDS,
        (Operator::LessThan, 14.0 * 86_400.0, 3600, Aggregation::Last),
        Severity::Warning,
        &["slack", "email"],
        vec![],
    );
    cert.annotations.insert(
        "summary".into(),
        "The certificate of {{ $labels.endpoint }} expires in {{ $value | humanizeDuration }}".into(),
    );
    let mut synthetic = rule(
        "synthetic-workflow-failing",
        "Synthetic Workflow Failing",
        "A synthetic browser workflow failed its failure threshold",
        THORBIS_SYNTHETIC_DOWN,
        (Operator::GreaterThan, 0.0, 3600, Aggregation::Last),
        Severity::Error,
        &["slack", "email"],
        vec![],
    );
    synthetic.annotations.insert("summary".into(), "Workflow {{ $labels.workflow }} is failing".into());
    vec![down, cert, synthetic]
}

/// The LCP p75 over every route and device, one sample per collector window (ms).
pub const WEB_VITALS_LCP_P75: &str = "web_vitals_lcp_p75";
/// Browser errors per page view over every route, one sample per collector window.
pub const RUM_ERROR_RATE: &str = "rum_error_rate";

fn all_routes() -> Matchers {
    let m = |name: &str| Matcher::new(name, MatchOp::Equal, crate::rum::ALL);
    match (m("route"), m("device")) {
        (Ok(r), Ok(d)) => Matchers(vec![r, d]),
        _ => Matchers::default(),
    }
}

/// Real-user monitoring rules on the collector's windows: for LCP, FID, CLS and TTI the p75 over
/// the spec's warning level (warning, slack) and over its critical level (critical, slack and
/// email), for INP the same at Google's levels (200 ms needs improvement, 500 ms poor), each
/// averaged over 5 minutes of windows; and browser errors above 5 per 100 page views for 5
/// minutes. All read the `route="all", device="all"` series, so a slow site pages once, not
/// once per route.
pub fn rum_rules() -> Vec<AlertRule> {
    use crate::domain::vitals::{Vital, VitalUnit};
    let mut v = Vec::new();
    for (vital, abbr, long) in [
        (Vital::Lcp, "LCP", "Largest Contentful Paint"),
        (Vital::Fid, "FID", "First Input Delay"),
        (Vital::Cls, "CLS", "Cumulative Layout Shift"),
        (Vital::Tti, "TTI", "Time to Interactive"),
        (Vital::Inp, "INP", "Interaction to Next Paint"),
    ] {
        let (warning, critical, whose) = match vital.spec_levels() {
            Some(l) => (l.warning, l.critical, "the spec's"),
            None => {
                let (good, poor) = vital.thresholds();
                (good, poor, "Google's")
            }
        };
        // CLS is a small unitless score: two decimals read better than humanize's `310m`.
        let value = match vital.unit() {
            VitalUnit::Milliseconds => "{{ $value | humanizeMillis }}",
            VitalUnit::Unitless => "{{ printf \"%.2f\" $value }}",
        };
        let shown = |level: f64| match vital.unit() {
            VitalUnit::Milliseconds => super::humanize::humanized("humanizeMillis", level).unwrap_or_default(),
            VitalUnit::Unitless => format!("{level}"),
        };
        let key = abbr.to_ascii_lowercase();
        let metric = format!("{}_p75", vital.metric_name());
        let (warn_id, warn_name) = match vital {
            Vital::Cls => (format!("web-vitals-{key}-high"), format!("High {long}")),
            _ => (format!("web-vitals-{key}-slow"), format!("Slow {long}")),
        };
        for (id, name, level, label, severity, channels) in [
            (warn_id, warn_name, warning, "warning", Severity::Warning, &["slack"][..]),
            (
                format!("web-vitals-{key}-critical"),
                format!("{long} Critical"),
                critical,
                "critical",
                Severity::Critical,
                &["slack", "email"][..],
            ),
        ] {
            let mut r = rule(
                &id,
                &name,
                &format!("The p75 {abbr} of real users is over {whose} {label} level"),
                &metric,
                (Operator::GreaterThan, level, 300, Aggregation::Avg),
                severity,
                channels,
                vec![],
            );
            r.matchers = all_routes();
            r.annotations.insert(
                "summary".into(),
                format!("{abbr} p75 of {{{{ $labels.service }}}} is {value} (over {})", shown(level)),
            );
            v.push(r);
        }
    }
    let mut errors = rule(
        "browser-error-rate-high",
        "Browser Error Rate High",
        "Real users hit more than 5 errors per 100 page views",
        RUM_ERROR_RATE,
        (Operator::GreaterThan, 0.05, 300, Aggregation::Avg),
        Severity::Error,
        &["slack", "email"],
        vec![],
    );
    errors.annotations.insert(
        "summary".into(),
        "{{ $labels.service }}: {{ $value | humanizePercentage }} browser errors per page view (over 5%)".into(),
    );
    v.push(errors);
    v
}

/// Events of one error group in five minutes above which `errors-group-spike` fires.
pub const ERROR_SPIKE_EVENTS: f64 = 50.0;

/// Error-tracking rules on the error groups' book ([`crate::rum::issues`]): a new group in
/// production, a regression, an ignored group past its limit (each fires once and is not
/// announced as resolved: they are events), and a spike of more than [`ERROR_SPIKE_EVENTS`]
/// events of one group in five minutes. Each notification names the group, its release, how
/// many events and users, and links its page (`url`: the agent's `collector.public_url` and
/// `/errors/{fingerprint}`). The signals come once per collector window, so each condition
/// looks back ten minutes.
pub fn error_rules() -> Vec<AlertRule> {
    use crate::rum::issues::*;
    let production = match Matcher::new("env", MatchOp::Regex, "prod|production") {
        Ok(m) => Matchers(vec![m]),
        Err(_) => Matchers::default(),
    };
    let signal = |id: &str, name: &str, description: &str, metric: &str, severity, channels: &[&str]| {
        let mut r = rule(
            id,
            name,
            description,
            metric,
            (Operator::GreaterThan, 0.0, 600, Aggregation::Max),
            severity,
            channels,
            vec![],
        );
        r.send_resolved = false;
        r.description = description.into();
        r
    };
    let mut new = signal(
        "errors-new-group",
        "New error group",
        "An error no one has seen before, in production",
        ERROR_GROUP_NEW,
        Severity::Warning,
        &["slack"],
    );
    new.matchers = production;
    new.annotations.insert(
        "summary".into(),
        "New error in {{ $labels.service }} {{ $labels.release }}: {{ $labels.title }}".into(),
    );
    let mut regressed = signal(
        "errors-regression",
        "Error regression",
        "An error group that was resolved is back",
        ERROR_GROUP_REGRESSED,
        Severity::Error,
        &["slack", "email"],
    );
    regressed.annotations.insert(
        "summary".into(),
        "Regression in {{ $labels.service }} {{ $labels.release }}: {{ $labels.title }}".into(),
    );
    let mut unignored = signal(
        "errors-unignored",
        "Ignored error group passed its limit",
        "An ignored error group reached the events or users it was ignored until",
        ERROR_GROUP_UNIGNORED,
        Severity::Warning,
        &["slack"],
    );
    unignored
        .annotations
        .insert("summary".into(), "Back from ignored in {{ $labels.service }}: {{ $labels.title }}".into());
    let mut spike = rule(
        "errors-group-spike",
        "Error group spike",
        "One error group had more than 50 events in five minutes",
        ERROR_GROUP_EVENTS_5M,
        (Operator::GreaterThan, ERROR_SPIKE_EVENTS, 600, Aggregation::Max),
        Severity::Error,
        &["slack", "email"],
        vec![],
    );
    spike.annotations.insert(
        "summary".into(),
        "{{ $labels.service }}: {{ $value | humanize }} events in 5 minutes of {{ $labels.title }}".into(),
    );
    let mut v = vec![new, regressed, unignored, spike];
    for r in &mut v {
        let events = if r.id == "errors-group-spike" { "in the last 5 minutes" } else { "so far" };
        r.annotations.insert(
            "description".into(),
            format!("{{{{ $value }}}} events {events}, {{{{ $values.{ERROR_GROUP_USERS} }}}} users affected: {{{{ $labels.url }}}}"),
        );
    }
    v
}

/// A filesystem's used share (1 - available / size), labels `host`, `mountpoint`, `device`,
/// `fstype` (the `host` source).
pub const HOST_FILESYSTEM_USED_RATIO: &str = "host_filesystem_used_ratio";
/// RAM in use (1 - available / total), label `host`.
pub const HOST_MEMORY_USED_RATIO: &str = "host_memory_used_ratio";
/// The 5-minute load average per logical CPU, label `host`.
pub const HOST_LOAD5_PER_CORE: &str = "host_load5_per_core";

/// Host rules on the `host` source: a filesystem over 90% used (warning) and over 95%
/// (critical, paged), memory over 90% for 10 minutes (warning), and a 5-minute load above 2 per
/// core for 15 minutes (warning). Each reads the newest value, so a disk freed is resolved at
/// the next collection.
pub fn host_rules() -> Vec<AlertRule> {
    let mut filling = rule(
        "host-disk-filling",
        "Disk Filling Up",
        "A filesystem is more than 90% used",
        HOST_FILESYSTEM_USED_RATIO,
        (Operator::GreaterThan, 0.9, 300, Aggregation::Last),
        Severity::Warning,
        &["slack"],
        vec![],
    );
    filling.annotations.insert(
        "summary".into(),
        "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ $value | humanizePercentage }} full (over 90%)".into(),
    );
    let mut full = rule(
        "host-disk-full",
        "Disk Almost Full",
        "A filesystem is more than 95% used",
        HOST_FILESYSTEM_USED_RATIO,
        (Operator::GreaterThan, 0.95, 300, Aggregation::Last),
        Severity::Critical,
        &["slack", "pagerduty"],
        vec![],
    );
    full.annotations.insert(
        "summary".into(),
        "{{ $labels.mountpoint }} on {{ $labels.host }} is {{ $value | humanizePercentage }} full (over 95%)".into(),
    );
    let mut memory = rule(
        "host-memory-high",
        "Host Memory High",
        "More than 90% of the host's memory has been in use for 10 minutes",
        HOST_MEMORY_USED_RATIO,
        (Operator::GreaterThan, 0.9, 120, Aggregation::Min),
        Severity::Warning,
        &["slack"],
        vec![],
    );
    memory.pending_for = d(600);
    memory.annotations.insert(
        "summary".into(),
        "{{ $labels.host }} has used {{ $value | humanizePercentage }} of its memory for 10 minutes".into(),
    );
    let mut load = rule(
        "host-load-high",
        "Host Load High",
        "The 5-minute load average has been above 2 per CPU for 15 minutes",
        HOST_LOAD5_PER_CORE,
        (Operator::GreaterThan, 2.0, 120, Aggregation::Min),
        Severity::Warning,
        &["slack"],
        vec![],
    );
    load.pending_for = d(900);
    load.annotations
        .insert("summary".into(), "{{ $labels.host }}: load {{ $value | humanize }} per CPU (over 2)".into());
    vec![filling, full, memory, load]
}

/// Every built-in rule.
pub fn all() -> Vec<AlertRule> {
    let mut v = spec_rules();
    v.extend(database_health_rules());
    v.extend(uptime_rules());
    v.extend(rum_rules());
    v.extend(error_rules());
    v.extend(host_rules());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::expand_template;
    use crate::metrics::Labels;

    #[test]
    fn every_pack_summary_reads_humanized() {
        let labels = Labels::new().with("service", "api").with("method", "GET").with("route", "/wo");
        let summary = |id: &str, v: f64| {
            let r = all().into_iter().find(|r| r.id == id).expect("a pack rule");
            expand_template(&r.annotations["summary"], &labels, Some(v))
        };
        assert_eq!(summary("high-response-time", 2841.623515733081), "api GET /wo averages 2.842s (over 2s)");
        assert_eq!(summary("high-error-rate", 0.3234), "api /wo: 32.34% of requests failed (over 5%)");
        assert_eq!(summary("database-size-large", 11_811_160_064.0), "The database is 11GiB (over 10GiB)");
        assert_eq!(summary("replication-lag-high", 95.0), "Replication lag is 1m 35s (over 30s)");
        assert_eq!(summary("web-vitals-lcp-slow", 4600.0), "LCP p75 of api is 4.6s (over 2.5s)");
        assert_eq!(summary("web-vitals-cls-critical", 0.31), "CLS p75 of api is 0.31 (over 0.25)");
        assert_eq!(summary("web-vitals-inp-slow", 240.0), "INP p75 of api is 240ms (over 200ms)");
        let host = Labels::new().with("host", "db1").with("mountpoint", "/var");
        let disk = all().into_iter().find(|r| r.id == "host-disk-full").expect("host pack");
        assert_eq!(
            expand_template(&disk.annotations["summary"], &host, Some(0.9712)),
            "/var on db1 is 97.12% full (over 95%)"
        );
        assert_eq!(
            summary("certificate-expiring", 86_400.0 * 3.0 + 7200.0),
            "The certificate of  expires in 3d 2h 0m 0s"
        );
        for r in all() {
            let text = expand_template(&r.annotations["summary"], &labels, Some(2841.623515733081));
            assert!(!text.contains("2841.623"), "{}: {text}", r.id);
        }
    }
}
