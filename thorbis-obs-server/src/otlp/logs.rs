//! `POST /v1/logs`: log records counted per service and severity (`log_records`), and the
//! ones that report an error (severity ERROR or above, or `exception.*` attributes) handed to
//! the error groups (the collector's, beside the browser's) with their trace id.
//!
//! A host app's error reports (`thorbis_obs::host` in remote mode) travel as such records with
//! three conventions of ours besides OpenTelemetry's `exception.*`: `business.process`,
//! `business.step` and `business.code` (all three: the spec's business fingerprint),
//! `thorbis.error.count` (repeats folded into one record, at most
//! [`MAX_SERVER_ERROR_REPEATS`]) and `thorbis.breadcrumbs` (a JSON array of
//! `{"at", "category", "message"}`, at most [`MAX_BREADCRUMBS`]; crumbs outside the hour before
//! the agent's clock, or ahead of it by more than the skew, are left out; a value that does not
//! parse is ignored, the error kept).
//!
//! A record is rejected alone when its time (or, without one, the time it was observed) is more
//! than an hour old or ahead of the agent's clock by more than `otlp.max_clock_skew`.

use super::OtlpSection;
use super::intake::{Tally, check_attributes, int_attr, outcome, str_attr, value_bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::collections::BTreeMap;
use std::time::Duration;
use thorbis_obs_core::domain::outcomes::{self, Outcome};
use thorbis_obs_core::rum::{MAX_SERVER_ERROR_REPEATS, ServerError};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::wire::{Breadcrumb, MAX_BREADCRUMBS};

/// Records older than this are rejected.
const MAX_RECORD_AGE: Duration = Duration::from_secs(3600);
/// OpenTelemetry's first ERROR severity number.
const SEVERITY_ERROR: i32 = 17;
/// A message or type is cut to this many bytes (the error groups cut messages further).
const MAX_TEXT: usize = 4096;
/// A stack is cut to this many bytes (the error groups keep 4 KiB of a sample stack).
const MAX_STACK: usize = 16 * 1024;

/// The number of log records in a request.
pub(super) fn records(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum()
}

/// The severity family of a severity number, as OpenTelemetry's ranges name them.
pub(super) fn severity(n: i32) -> &'static str {
    match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

fn cut(s: &str, max: usize) -> String {
    thorbis_obs_core::domain::errors::truncate(s, max).to_string()
}

fn hex(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty() && bytes.iter().any(|b| *b != 0)).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a request's records come to: the errors to group, what was rejected, and the counts
/// per (service, severity).
pub(super) struct Read {
    pub(super) errors: Vec<ServerError>,
    pub(super) tally: Tally,
    pub(super) counts: BTreeMap<(String, &'static str), u64>,
    /// Payments and logins the records reported: (kind, service, env, outcome).
    pub(super) outcomes: Vec<(Outcome, String, String, &'static str)>,
}

/// Reads a request's records (see the module docs).
pub(super) fn read(req: &ExportLogsServiceRequest, now: Timestamp, cfg: &OtlpSection) -> Read {
    let newest = now.plus(cfg.max_clock_skew.get());
    let oldest = now.minus(MAX_RECORD_AGE);
    let mut out = Read { errors: Vec::new(), tally: Tally::default(), counts: BTreeMap::new(), outcomes: Vec::new() };
    for rl in &req.resource_logs {
        let attrs = rl.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = str_attr(attrs, &["service.name"]).unwrap_or("unknown_service");
        let env = str_attr(attrs, &["deployment.environment.name", "deployment.environment"]).unwrap_or("");
        let release = str_attr(attrs, &["service.version"]);
        for r in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
            let t = if r.time_unix_nano > 0 { r.time_unix_nano } else { r.observed_time_unix_nano };
            let ms = i64::try_from(t / 1_000_000).unwrap_or(i64::MAX);
            if ms > newest.0 || ms < oldest.0 {
                out.tally.rejected += 1;
                out.tally.first_reason.get_or_insert_with(|| {
                    let when = if ms > newest.0 {
                        "ahead of the agent's clock (otlp.max_clock_skew)"
                    } else {
                        "more than an hour old"
                    };
                    format!("a log record of {:?} {when}", cut(service, 64))
                });
                continue;
            }
            let what = || format!("a log record of {:?}", cut(service, 64));
            let body_bytes = r.body.as_ref().map_or(0, |b| value_bytes(Some(b)));
            let checked = check_attributes(&r.attributes, &what, cfg).and_then(|()| {
                if body_bytes > cfg.max_attribute_value_bytes {
                    return Err(format!(
                        "{}: a body of {body_bytes} bytes; at most {} (otlp.max_attribute_value_bytes)",
                        what(),
                        cfg.max_attribute_value_bytes
                    ));
                }
                Ok(())
            });
            if let Err(why) = checked {
                out.tally.rejected += 1;
                out.tally.first_reason.get_or_insert(why);
                continue;
            }
            out.tally.accepted += 1;
            *out.counts.entry((cut(service, 128), severity(r.severity_number))).or_default() += 1;
            if let Some(e) = server_error(r, (service, env, release), (oldest, newest)) {
                out.errors.push(e);
            }
            let name =
                if r.event_name.is_empty() { str_attr(&r.attributes, &["event.name"]) } else { Some(&*r.event_name) };
            if let Some(kind) = name.and_then(outcomes::server_event) {
                let label = outcome(kind, &r.attributes, false);
                out.outcomes.push((kind, service.to_string(), env.to_string(), label));
            }
        }
    }
    out
}

/// The error a record reports, if it reports one; its breadcrumbs kept within `span`.
fn server_error(
    r: &LogRecord,
    (service, env, release): (&str, &str, Option<&str>),
    span: (Timestamp, Timestamp),
) -> Option<ServerError> {
    let a = r.attributes.as_slice();
    let exception = str_attr(a, &["exception.type"]).or(str_attr(a, &["exception.message"]));
    if r.severity_number < SEVERITY_ERROR && exception.is_none() {
        return None;
    }
    let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    };
    let at = Origin {
        service,
        env,
        release,
        route: str_attr(a, &["http.route"]),
        trace_id: &r.trace_id,
        span_id: &r.span_id,
    };
    let mut e = exception_error(a, body, severity(r.severity_number), &at);
    let business = ["business.process", "business.step", "business.code"].map(|k| str_attr(a, &[k]));
    if let [Some(process), Some(step), Some(code)] = business {
        e.business = Some([cut(process, 256), cut(step, 256), cut(code, 256)]);
    }
    e.count = int_attr(a, &["thorbis.error.count"])
        .map_or(1, |n| u64::try_from(n).unwrap_or(1).clamp(1, MAX_SERVER_ERROR_REPEATS));
    if let Some(json) = str_attr(a, &["thorbis.breadcrumbs"]) {
        let crumbs: Vec<Breadcrumb> = serde_json::from_str(json).unwrap_or_default();
        if crumbs.len() <= MAX_BREADCRUMBS {
            e.breadcrumbs = crumbs.into_iter().filter(|b| b.at >= span.0 && b.at <= span.1).collect();
        }
    }
    Some(e)
}

/// Where an error was reported: the resource's service and env, the route, the trace.
pub(super) struct Origin<'a> {
    pub(super) service: &'a str,
    pub(super) env: &'a str,
    /// The resource's `service.version`: the error's release.
    pub(super) release: Option<&'a str>,
    pub(super) route: Option<&'a str>,
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
}

/// The error group entry of OpenTelemetry's `exception.*` attributes `a` (a log record's, or a
/// span's `exception` event's), with `fallback` as the message when there is no
/// `exception.message`.
pub(super) fn exception_error(a: &[KeyValue], fallback: Option<&str>, severity: &str, at: &Origin<'_>) -> ServerError {
    let message = str_attr(a, &["exception.message"]).or(fallback).unwrap_or("(no message)");
    let mut tags = BTreeMap::new();
    tags.insert("severity".to_string(), severity.to_string());
    if let Some(t) = hex(at.trace_id) {
        tags.insert("trace_id".to_string(), t);
    }
    if let Some(s) = hex(at.span_id) {
        tags.insert("span_id".to_string(), s);
    }
    if let Some(r) = at.release.filter(|r| !r.is_empty()) {
        tags.insert("release".to_string(), cut(r, 128));
    }
    // Who it happened to (OpenTelemetry's `enduser.id`), for the users a group reached.
    if let Some(u) = str_attr(a, &["enduser.id", "user.id"]) {
        tags.insert("enduser.id".to_string(), cut(u, 128));
    }
    ServerError {
        service: cut(at.service, 128),
        env: cut(at.env, 128),
        exception_type: str_attr(a, &["exception.type"]).map(|t| cut(t, 256)),
        message: cut(message, MAX_TEXT),
        stack: str_attr(a, &["exception.stacktrace"]).map(|s| cut(s, MAX_STACK)),
        route: at.route.map(|r| cut(r, 256)).unwrap_or_default(),
        tags,
        ..ServerError::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn errors_and_exceptions_are_picked_and_every_record_counted() {
        let now = Timestamp::from_secs(1_800_000_000);
        let ns = now.0 as u64 * 1_000_000;
        let record = |sev: i32, body: &str, attrs: Vec<KeyValue>, t: u64| LogRecord {
            time_unix_nano: t,
            severity_number: sev,
            body: Some(AnyValue { value: Some(Value::StringValue(body.into())) }),
            attributes: attrs,
            trace_id: vec![0xab; 16],
            ..LogRecord::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "api"), kv("service.version", "2.3.1")],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(9, "started", vec![], ns),
                        record(17, "invoice 42 failed", vec![kv("enduser.id", "u-7")], ns),
                        record(
                            13,
                            "retrying",
                            vec![kv("exception.type", "Timeout"), kv("exception.message", "db")],
                            ns,
                        ),
                        record(17, "too old", vec![], 1_000_000),
                    ],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let r = read(&req, now, &OtlpSection::default());
        assert_eq!((r.tally.accepted, r.tally.rejected), (3, 1));
        assert_eq!(r.errors.len(), 2);
        assert_eq!(r.errors[0].message, "invoice 42 failed");
        assert_eq!(r.errors[0].tags.get("trace_id").map(String::as_str), Some("ab".repeat(16).as_str()));
        assert_eq!(r.errors[1].exception_type.as_deref(), Some("Timeout"));
        // The resource's version is the release; the record's end user is who it reached.
        assert_eq!(r.errors[0].tags.get("release").map(String::as_str), Some("2.3.1"));
        assert_eq!(r.errors[0].tags.get("enduser.id").map(String::as_str), Some("u-7"));
        assert_eq!(r.errors[1].tags.get("release").map(String::as_str), Some("2.3.1"));
        assert_eq!(r.counts.get(&("api".to_string(), "ERROR")), Some(&1));
        assert_eq!(r.counts.get(&("api".to_string(), "INFO")), Some(&1));
    }

    #[test]
    fn host_conventions_give_the_business_fingerprint_count_and_breadcrumbs() {
        let now = Timestamp::from_secs(1_800_000_000);
        let ns = now.0 as u64 * 1_000_000;
        let crumbs = format!(
            r#"[{{"at":{},"category":"INFO","message":"loaded invoice"}},{{"at":{},"category":"WARN","message":"from the future"}}]"#,
            now.0 - 500,
            now.0 + 3_600_000
        );
        let int = |k: &str, n: i64| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::IntValue(n)) }),
            ..KeyValue::default()
        };
        let record = |attrs: Vec<KeyValue>| LogRecord {
            time_unix_nano: ns,
            severity_number: 17,
            body: Some(AnyValue { value: Some(Value::StringValue("charge failed".into())) }),
            attributes: attrs,
            ..LogRecord::default()
        };
        let business =
            vec![kv("business.process", "invoicing"), kv("business.step", "charge"), kv("business.code", "E42")];
        let mut first = business.clone();
        first.extend([int("thorbis.error.count", 10_000), kv("thorbis.breadcrumbs", &crumbs)]);
        let mut forged = business.clone();
        forged.extend([int("thorbis.error.count", -5), kv("thorbis.breadcrumbs", "not json")]);
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: vec![kv("service.name", "api")], ..Resource::default() }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record(first), record(forged), record(business[..2].to_vec())],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let r = read(&req, now, &OtlpSection::default());
        assert_eq!(r.errors.len(), 3);
        let e = &r.errors[0];
        assert_eq!(e.business, Some(["invoicing".to_string(), "charge".to_string(), "E42".to_string()]));
        assert_eq!(e.count, 10_000);
        let kept: Vec<&str> = e.breadcrumbs.iter().map(|b| b.message.as_str()).collect();
        assert_eq!(kept, ["loaded invoice"], "the crumb from the future is left out");
        // A negative count counts once, an unreadable crumb list is ignored, the error kept.
        assert_eq!((r.errors[1].count, r.errors[1].breadcrumbs.len()), (1, 0));
        assert_eq!(r.errors[1].fingerprint(), e.fingerprint());
        // Two of the three fields are no business fingerprint.
        assert_eq!(r.errors[2].business, None);
    }
}
