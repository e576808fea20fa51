//! Request metrics from spans, per window: what the OpenTelemetry Collector's spanmetrics
//! connector and Datadog's trace metrics compute, with the caps an intake that faces every
//! service (and whoever can reach it) needs.
//!
//! - SERVER spans: per service, environment, route and method, the duration sketch, the
//!   count per status class and the failures (status ERROR, or a 5xx answer). They become
//!   `http_request_duration` (mean, ms: the spec's 2000 means 2 s) with `_p50`, `_p95`, `_p99`,
//!   `_max` (exact), `http_requests{status_class}` and `http_request_error_rate` (0..1), per route and method
//!   (the spec's rules read these: a slow route pages for that route); and over every route of
//!   a service as `http_service_request_duration` (with `_p50`, `_p95`, `_p99`, `_max`),
//!   `http_service_requests{status_class}` and `http_service_request_error_rate`.
//! - CLIENT spans with a `db.system`: `db_query_duration` (mean, `_p95`, `_p99`), `db_queries`
//!   and `db_query_error_rate` per system, operation and collection.
//! - Other CLIENT spans: `external_request_duration` (mean, `_p95`, `_p99`),
//!   `external_requests` and `external_request_error_rate` per peer (`server.address`).
//! - Payments and logins the intake recognised ([`crate::domain::outcomes`]):
//!   `payments{outcome}` and `payment_failure_rate`, `logins{outcome}` and `failed_login_rate`
//!   per service and environment (the spec's payment and login rules read the rates).
//!
//! Routes are folded as the RUM collector folds them ([`route_pattern`]: ids become `:id`);
//! every label the sender chooses has a cap, beyond which values fold into [`OTHER`], and
//! each fold is counted in `span_metrics_capped{what}`.

use crate::domain::outcomes::Outcome;
use crate::metrics::{Labels, Sample};
use crate::rum::route_pattern_into;
use crate::sketch::QuantileSketch;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The label value of what a cap folded.
pub const OTHER: &str = "other";
/// Services a window keeps; further ones fold into [`OTHER`].
pub const MAX_SERVICES: usize = 50;
/// Environments a window keeps.
pub const MAX_ENVS: usize = 10;
/// Routes a window keeps per service.
pub const MAX_ROUTES_PER_SERVICE: usize = 200;
/// Database operations and collections, and external peers, a window keeps per service.
pub const MAX_TARGETS_PER_SERVICE: usize = 200;
/// Series of each kind (requests, queries, external calls) a window keeps; beyond, a new
/// series is not made and the span is counted in `span_metrics_capped{what="series"}` only.
pub const MAX_SERIES: usize = 5_000;
/// The longest duration a span may claim (a day); longer ones count as a day.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;
/// Label values are cut to this many bytes.
pub const MAX_LABEL_BYTES: usize = 128;
/// The quantiles of each duration, with their metric suffixes.
pub const QUANTILES: [(f64, &str); 3] = [(0.5, "_p50"), (0.95, "_p95"), (0.99, "_p99")];

/// The span kinds that make metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Work a service did for a request it received.
    Server,
    /// A call a service made (a query, an HTTP request).
    Client,
    /// Internal, producer, consumer, unspecified: no metric.
    Other,
}

/// What the window reads off one span (the intake takes it from OTLP's attributes).
#[derive(Clone, Copy, Debug)]
pub struct SpanFacts<'a> {
    /// `service.name` of the span's resource.
    pub service: &'a str,
    /// `deployment.environment(.name)`, empty when absent.
    pub env: &'a str,
    /// The span's kind.
    pub kind: SpanKind,
    /// The span's name.
    pub name: &'a str,
    /// `http.route`.
    pub route: Option<&'a str>,
    /// `url.path` (or the older `http.target`), used when there is no route.
    pub path: Option<&'a str>,
    /// `http.request.method` (or the older `http.method`).
    pub method: Option<&'a str>,
    /// `http.response.status_code` (or the older `http.status_code`).
    pub status_code: Option<i64>,
    /// The span's status is ERROR.
    pub error: bool,
    /// End minus start, in milliseconds.
    pub duration_ms: f64,
    /// `db.system(.name)`.
    pub db_system: Option<&'a str>,
    /// `db.operation(.name)`.
    pub db_operation: Option<&'a str>,
    /// `db.collection.name` (or the older `db.sql.table`).
    pub db_collection: Option<&'a str>,
    /// `server.address` (or the older `net.peer.name`).
    pub peer: Option<&'a str>,
}

impl Default for SpanFacts<'_> {
    fn default() -> Self {
        SpanFacts {
            service: "",
            env: "",
            kind: SpanKind::Other,
            name: "",
            route: None,
            path: None,
            method: None,
            status_code: None,
            error: false,
            duration_ms: 0.0,
            db_system: None,
            db_operation: None,
            db_collection: None,
            peer: None,
        }
    }
}

/// One series: durations, count per status class (none, 1xx .. 5xx) and failures.
#[derive(Clone, Debug, Default, PartialEq)]
struct Agg {
    sketch: QuantileSketch,
    classes: [u64; 6],
    errors: u64,
}

impl Agg {
    fn add(&mut self, duration_ms: f64, class: usize, failed: bool) {
        self.sketch.add(duration_ms);
        self.classes[class] += 1;
        self.errors += u64::from(failed);
    }

    fn merge(&mut self, other: &Agg) {
        self.sketch.merge(&other.sketch);
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.errors += other.errors;
    }

    fn count(&self) -> u64 {
        self.classes.iter().sum()
    }
}

/// Which of the three families a series belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Family {
    Request,
    Query,
    External,
    /// The requests of every route of a service (samples only, no series of its own).
    Service,
}

impl Family {
    fn metrics(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Family::Request => ("http_request_duration", "http_requests", "http_request_error_rate"),
            Family::Query => ("db_query_duration", "db_queries", "db_query_error_rate"),
            Family::External => ("external_request_duration", "external_requests", "external_request_error_rate"),
            Family::Service => {
                ("http_service_request_duration", "http_service_requests", "http_service_request_error_rate")
            }
        }
    }

    fn label_names(self) -> [&'static str; 3] {
        match self {
            Family::Request => ["route", "method", ""],
            Family::Query => ["db_system", "operation", "collection"],
            Family::External | Family::Service => ["peer", "", ""],
        }
    }
}

/// A series key: family, service, env and up to three family-specific labels.
type Key = (Family, String, String, [String; 3]);

/// Request metrics of one window; see the module docs.
///
/// Series are found by a flat key built in a reused buffer, so counting a span of a known
/// series allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct SpanWindow {
    series: HashMap<String, (Key, Agg)>,
    per_family: [usize; 4],
    services: HashSet<String>,
    envs: HashSet<String>,
    /// Distinct first labels (routes, operations and collections, peers) per family and service.
    targets: HashMap<String, HashSet<String>>,
    capped: BTreeMap<&'static str, u64>,
    spans: u64,
    /// Payments and logins (see [`crate::domain::outcomes`]) by kind, service, env and outcome.
    outcomes: BTreeMap<(Outcome, String, String, &'static str), u64>,
    /// Scratch buffers for the route and the flat keys.
    route: String,
    flat: String,
}

/// What [`SpanWindow::record`] did with a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Counted in a series.
    Counted,
    /// Not a kind that makes metrics (internal, producer, consumer).
    Skipped,
    /// Counted only in `span_metrics_capped{what="series"}`: the series cap was reached.
    Capped,
}

/// `s` cut to [`MAX_LABEL_BYTES`] at a character boundary.
fn cut(s: &str) -> &str {
    crate::domain::errors::truncate(s, MAX_LABEL_BYTES)
}

/// The method as OpenTelemetry's semantic conventions keep it: one of the known methods, or
/// `_OTHER`; `none` when the span has none.
fn method_label(m: Option<&str>) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    match m {
        None => "none",
        Some(m) => KNOWN.iter().find(|k| k.eq_ignore_ascii_case(m)).copied().unwrap_or("_OTHER"),
    }
}

/// The route of a SERVER span, written into `out`: `http.route`, else the path in its name
/// (`GET /users/{id}`), else `url.path`, folded by [`route_pattern_into`]; the bare name when
/// none of them is a path.
fn route_into(f: &SpanFacts<'_>, out: &mut String) {
    if let Some(r) = f.route.filter(|r| !r.is_empty()) {
        return route_pattern_into(r, out);
    }
    let named = f.name.split_once(' ').map_or(f.name, |(_, rest)| rest);
    if named.starts_with('/') {
        return route_pattern_into(named, out);
    }
    if let Some(p) = f.path.filter(|p| p.starts_with('/')) {
        return route_pattern_into(p, out);
    }
    out.clear();
    out.push_str(cut(f.name));
}

/// Index into [`Agg::classes`]: 0 without a status code, 1..=5 for 1xx..5xx.
fn class_of(code: Option<i64>) -> usize {
    match code {
        Some(c @ 100..=599) => (c / 100) as usize,
        _ => 0,
    }
}

const CLASS_LABELS: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

impl SpanWindow {
    /// An empty window.
    pub fn new() -> Self {
        SpanWindow::default()
    }

    /// Starts counting the caps where `previous` (the window just closed) left them: services,
    /// environments and each service's routes, queries and peers seen stay admitted and new
    /// ones stay capped, so 200 new routes every window cannot make new series every window.
    /// The intake carries them for [`CAPS_CARRIED_MS`](crate::rum::CAPS_CARRIED_MS).
    pub fn inherit_caps(&mut self, previous: &SpanWindow) {
        self.services.clone_from(&previous.services);
        self.envs.clone_from(&previous.envs);
        self.targets.clone_from(&previous.targets);
    }

    /// Spans recorded (counted or capped) in this window.
    pub fn spans(&self) -> u64 {
        self.spans
    }

    /// How many series the window holds.
    pub fn series(&self) -> usize {
        self.series.len()
    }

    fn fold(&mut self, what: &'static str) {
        *self.capped.entry(what).or_default() += 1;
    }

    /// `value` if `set` has it or room for it (then it is added), else [`OTHER`] with the
    /// fold counted under `what`.
    fn admit<'v>(
        set: &mut HashSet<String>,
        cap: usize,
        value: &'v str,
        what: &'static str,
        capped: &mut BTreeMap<&'static str, u64>,
    ) -> &'v str {
        if set.contains(value) {
            return value;
        }
        if set.len() >= cap {
            *capped.entry(what).or_default() += 1;
            return OTHER;
        }
        set.insert(value.to_string());
        value
    }

    /// Counts one payment or login of `service` in `env`; `outcome` is
    /// [`classify`](crate::domain::outcomes::classify)'s label. Services and environments share
    /// the spans' caps.
    pub fn record_outcome(&mut self, kind: Outcome, service: &str, env: &str, outcome: &'static str) {
        let service = if service.is_empty() { "unknown_service" } else { cut(service) };
        let service = Self::admit(&mut self.services, MAX_SERVICES, service, "service", &mut self.capped);
        let env = Self::admit(&mut self.envs, MAX_ENVS, cut(env), "env", &mut self.capped);
        *self.outcomes.entry((kind, service.to_string(), env.to_string(), outcome)).or_default() += 1;
    }

    /// Counts one span.
    pub fn record(&mut self, f: &SpanFacts<'_>) -> Recorded {
        let family = match (f.kind, f.db_system) {
            (SpanKind::Server, _) => Family::Request,
            (SpanKind::Client, Some(_)) => Family::Query,
            (SpanKind::Client, None) => Family::External,
            (SpanKind::Other, _) => return Recorded::Skipped,
        };
        self.spans += 1;
        let duration = if f.duration_ms.is_finite() { f.duration_ms.clamp(0.0, MAX_DURATION_MS) } else { 0.0 };
        let service = if f.service.is_empty() { "unknown_service" } else { cut(f.service) };
        let service = Self::admit(&mut self.services, MAX_SERVICES, service, "service", &mut self.capped);
        let env = Self::admit(&mut self.envs, MAX_ENVS, cut(f.env), "env", &mut self.capped);
        let class = class_of(f.status_code);
        let mut route = std::mem::take(&mut self.route);
        let mut flat = std::mem::take(&mut self.flat);
        let (l0, l1, l2): (&str, &str, &str) = match family {
            Family::Request | Family::Service => {
                route_into(f, &mut route);
                (route.as_str(), method_label(f.method), "")
            }
            Family::Query => {
                (cut(f.db_system.unwrap_or("")), cut(f.db_operation.unwrap_or("")), cut(f.db_collection.unwrap_or("")))
            }
            Family::External => (cut(f.peer.unwrap_or("")), "", ""),
        };
        // The first label (route, or operation and collection, or peer) is capped per service.
        flat.clear();
        flat.push(char::from(b'0' + family as u8));
        flat.push_str(service);
        let (what, cap) = match family {
            Family::Request | Family::Service => ("route", MAX_ROUTES_PER_SERVICE),
            Family::Query => ("query", MAX_TARGETS_PER_SERVICE),
            Family::External => ("peer", MAX_TARGETS_PER_SERVICE),
        };
        let first: std::borrow::Cow<'_, str> = match family {
            Family::Query => format!("{l1}\u{1f}{l2}").into(),
            _ => l0.into(),
        };
        if !self.targets.contains_key(flat.as_str()) {
            self.targets.insert(flat.clone(), HashSet::new());
        }
        let folded = match self.targets.get_mut(flat.as_str()) {
            Some(set) => Self::admit(set, cap, &first, what, &mut self.capped) == OTHER && first != OTHER,
            None => false,
        };
        let (l0, l1, l2) = match (folded, family) {
            (false, _) => (l0, l1, l2),
            (true, Family::Request | Family::Service) => (OTHER, l1, ""),
            (true, Family::Query) => (l0, OTHER, OTHER),
            (true, Family::External) => (OTHER, "", ""),
        };
        for part in [env, l0, l1, l2] {
            flat.push('\u{1f}');
            flat.push_str(part);
        }
        let failed = f.error || class == 5;
        let idx = family as usize;
        let outcome = match self.series.get_mut(flat.as_str()) {
            Some((_, agg)) => {
                agg.add(duration, class, failed);
                Recorded::Counted
            }
            None if self.per_family[idx] >= MAX_SERIES => {
                self.fold("series");
                Recorded::Capped
            }
            None => {
                self.per_family[idx] += 1;
                let key = (family, service.to_string(), env.to_string(), [l0, l1, l2].map(str::to_string));
                let mut agg = Agg::default();
                agg.add(duration, class, failed);
                self.series.insert(flat.clone(), (key, agg));
                Recorded::Counted
            }
        };
        self.route = route;
        self.flat = flat;
        outcome
    }

    /// Adds another window's spans (another agent's, or an earlier part of this one); the
    /// caps hold for the result.
    pub fn merge(&mut self, other: &SpanWindow) {
        for (flat, (key, agg)) in &other.series {
            if let Some((_, mine)) = self.series.get_mut(flat) {
                mine.merge(agg);
                continue;
            }
            let idx = key.0 as usize;
            if self.per_family[idx] >= MAX_SERIES {
                *self.capped.entry("series").or_default() += agg.count();
                continue;
            }
            self.per_family[idx] += 1;
            self.series.insert(flat.clone(), (key.clone(), agg.clone()));
        }
        for (what, n) in &other.capped {
            *self.capped.entry(what).or_default() += n;
        }
        for (k, n) in &other.outcomes {
            *self.outcomes.entry(k.clone()).or_default() += n;
        }
        self.spans += other.spans;
    }

    /// The window's samples, stamped `at` (its end); see the module docs.
    pub fn samples(&self, at: Timestamp) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut series: Vec<&(Key, Agg)> = self.series.values().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut overall: BTreeMap<(&str, &str), Agg> = BTreeMap::new();
        for (k, agg) in series {
            let (family, service, env, labels) = k;
            if *family == Family::Request {
                overall.entry((service, env)).or_default().merge(agg);
            }
            let mut pairs: Vec<(&str, &str)> = vec![("service", service), ("env", env)];
            for (name, value) in family.label_names().iter().zip(labels) {
                if !name.is_empty() {
                    pairs.push((name, value));
                }
            }
            push_family(&mut out, *family, &pairs, agg, at);
        }
        for ((service, env), agg) in &overall {
            push_family(&mut out, Family::Service, &[("service", *service), ("env", *env)], agg, at);
        }
        for (what, n) in &self.capped {
            out.push(Sample::new("span_metrics_capped", Labels::from_pairs([("what", *what)]), *n as f64, at));
        }
        let mut rates: BTreeMap<(Outcome, &str, &str), [f64; 2]> = BTreeMap::new();
        for ((kind, service, env, outcome), n) in &self.outcomes {
            let labels =
                Labels::from_pairs([("service", service.as_str()), ("env", env.as_str()), ("outcome", outcome)]);
            out.push(Sample::new(kind.count_metric(), labels, *n as f64, at));
            let slot = rates.entry((*kind, service, env)).or_default();
            match *outcome {
                "succeeded" => slot[0] += *n as f64,
                "failed" => slot[1] += *n as f64,
                _ => {}
            }
        }
        for ((kind, service, env), [ok, failed]) in rates {
            if let Some(v) = kind.rule_value(ok, failed) {
                let labels = Labels::from_pairs([("service", service), ("env", env)]);
                out.push(Sample::new(kind.rule_metric(), labels, v, at));
            }
        }
        out
    }
}

fn push_family(out: &mut Vec<Sample>, family: Family, pairs: &[(&str, &str)], agg: &Agg, at: Timestamp) {
    let (duration, count, error_rate) = family.metrics();
    let n = agg.count();
    if n == 0 {
        return;
    }
    let labels = Labels::from_pairs(pairs.iter().copied());
    out.push(Sample::new(duration, labels.clone(), agg.sketch.sum() / n as f64, at));
    let requests = matches!(family, Family::Request | Family::Service);
    // The slowest request, exact (the spec's performance overview charts it beside the mean).
    if let (true, Some(max)) = (requests, agg.sketch.max()) {
        out.push(Sample::new(format!("{duration}_max"), labels.clone(), max, at));
    }
    for (q, suffix) in QUANTILES {
        if !requests && suffix == "_p50" {
            continue;
        }
        if let Some(v) = agg.sketch.quantile(q) {
            out.push(Sample::new(format!("{duration}{suffix}"), labels.clone(), v, at));
        }
    }
    out.push(Sample::new(error_rate, labels.clone(), agg.errors as f64 / n as f64, at));
    if matches!(family, Family::Request | Family::Service) {
        for (class, &c) in agg.classes.iter().enumerate().filter(|(_, c)| **c > 0) {
            let mut with_class: Vec<(&str, &str)> = pairs.to_vec();
            with_class.push(("status_class", CLASS_LABELS[class]));
            out.push(Sample::new(count, Labels::from_pairs(with_class), c as f64, at));
        }
    } else {
        out.push(Sample::new(count, labels, n as f64, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server<'a>(route: &'a str, ms: f64, code: i64) -> SpanFacts<'a> {
        SpanFacts {
            service: "api",
            env: "prod",
            kind: SpanKind::Server,
            name: "GET",
            route: Some(route),
            method: Some("GET"),
            status_code: Some(code),
            duration_ms: ms,
            ..SpanFacts::default()
        }
    }

    fn value(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|s| s.name == name && pairs.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| s.value)
    }

    #[test]
    fn server_spans_give_the_spec_metrics_per_route_and_per_service() {
        let mut w = SpanWindow::new();
        for (ms, code) in [(100.0, 200), (300.0, 200), (500.0, 500), (3100.0, 200)] {
            assert_eq!(w.record(&server("/work-orders/{id}", ms, code)), Recorded::Counted);
        }
        w.record(&server("/health", 10.0, 200));
        let s = w.samples(Timestamp::from_secs(60));
        let route = [("service", "api"), ("route", "/work-orders/{id}"), ("method", "GET")];
        assert_eq!(value(&s, "http_request_duration", &route), Some(1000.0));
        assert_eq!(value(&s, "http_request_error_rate", &route), Some(0.25));
        let all = [("service", "api")];
        assert_eq!(value(&s, "http_service_request_duration", &all), Some(802.0));
        assert_eq!(value(&s, "http_service_request_error_rate", &all), Some(0.2));
        assert_eq!(value(&s, "http_request_duration_max", &route), Some(3100.0));
        assert_eq!(value(&s, "http_service_request_duration_max", &all), Some(3100.0));
        assert_eq!(value(&s, "db_query_duration_max", &all), None, "requests only");
        assert_eq!(value(&s, "http_service_requests", &[("status_class", "2xx")]), Some(4.0));
        assert_eq!(value(&s, "http_service_requests", &[("status_class", "5xx")]), Some(1.0));
        assert!(s.iter().all(|x| x.labels.get("route") != Some("all")), "no route=all series under the spec's names");
        let p99 = value(&s, "http_request_duration_p99", &route).expect("p99");
        let exact = crate::sketch::exact_quantile(&[100.0, 300.0, 500.0, 3100.0], 0.99).expect("exact");
        assert!((p99 - exact).abs() <= exact * 0.02, "{p99} vs {exact}");
    }

    #[test]
    fn route_caps_hold_across_windows_when_carried() {
        // Letters only, so the route folding keeps them apart: /r/ba, /r/ca, ...
        let word = |i: usize| format!("/r/{}{}", char::from(b'a' + (i % 26) as u8), char::from(b'a' + (i / 26) as u8));
        let mut first = SpanWindow::new();
        for i in 0..MAX_ROUTES_PER_SERVICE {
            first.record(&server(&word(i), 1.0, 200));
        }
        assert_eq!(
            first.samples(Timestamp::from_secs(60)).iter().filter(|s| s.name == "http_request_duration").count(),
            200
        );
        let mut next = SpanWindow::new();
        next.inherit_caps(&first);
        next.record(&server(&word(3), 1.0, 200));
        next.record(&server("/r/brand-new", 1.0, 200));
        let s = next.samples(Timestamp::from_secs(120));
        assert!(value(&s, "http_requests", &[("route", "/r/da")]).is_some(), "admitted routes stay admitted");
        assert!(value(&s, "http_requests", &[("route", "/r/brand-new")]).is_none());
        assert_eq!(value(&s, "http_requests", &[("route", OTHER)]), Some(1.0));
    }

    #[test]
    fn payments_and_logins_give_the_spec_s_rule_metrics() {
        let mut w = SpanWindow::new();
        for outcome in ["succeeded", "succeeded", "succeeded", "failed", "unknown"] {
            w.record_outcome(Outcome::Payment, "billing", "prod", outcome);
        }
        for _ in 0..12 {
            w.record_outcome(Outcome::Login, "auth", "prod", "failed");
        }
        w.record_outcome(Outcome::Login, "auth", "prod", "succeeded");
        let s = w.samples(Timestamp::from_secs(60));
        assert_eq!(value(&s, "payment_failure_rate", &[("service", "billing")]), Some(0.25));
        assert_eq!(value(&s, "payments", &[("service", "billing"), ("outcome", "unknown")]), Some(1.0));
        assert_eq!(value(&s, "failed_login_rate", &[("service", "auth"), ("env", "prod")]), Some(12.0));
        assert_eq!(value(&s, "logins", &[("outcome", "succeeded")]), Some(1.0));
        let mut merged = SpanWindow::new();
        merged.merge(&w);
        merged.merge(&w);
        let s = merged.samples(Timestamp::from_secs(60));
        assert_eq!(value(&s, "failed_login_rate", &[("service", "auth")]), Some(24.0));
        assert_eq!(value(&s, "payment_failure_rate", &[("service", "billing")]), Some(0.25));
    }

    #[test]
    fn routes_come_from_the_route_the_name_or_the_path_with_ids_folded() {
        let f = |route, name, path| SpanFacts { route, name, path, ..server("", 1.0, 200) };
        let route_of = |f: SpanFacts<'_>| {
            let mut out = String::from("stale");
            route_into(&f, &mut out);
            out
        };
        assert_eq!(route_of(f(Some("/users/:id"), "GET", None)), "/users/:id");
        assert_eq!(route_of(f(None, "GET /api/orders/1042", None)), "/api/orders/:id");
        assert_eq!(route_of(f(None, "GET", Some("/a/123"))), "/a/:id");
        assert_eq!(route_of(f(None, "render page", None)), "render page");
        assert_eq!(method_label(Some("get")), "GET");
        assert_eq!(method_label(Some("BREW")), "_OTHER");
    }

    #[test]
    fn clients_split_into_queries_and_external_calls() {
        let mut w = SpanWindow::new();
        let q = SpanFacts {
            service: "api",
            kind: SpanKind::Client,
            db_system: Some("postgresql"),
            db_operation: Some("SELECT"),
            db_collection: Some("invoices"),
            duration_ms: 12.0,
            ..SpanFacts::default()
        };
        w.record(&q);
        w.record(&SpanFacts { error: true, duration_ms: 30.0, ..q });
        let call = SpanFacts {
            service: "api",
            kind: SpanKind::Client,
            peer: Some("api.stripe.com"),
            status_code: Some(502),
            duration_ms: 800.0,
            ..SpanFacts::default()
        };
        w.record(&call);
        assert_eq!(w.record(&SpanFacts { kind: SpanKind::Other, ..call }), Recorded::Skipped);
        let s = w.samples(Timestamp::from_secs(60));
        let db = [("db_system", "postgresql"), ("operation", "SELECT"), ("collection", "invoices")];
        assert_eq!(value(&s, "db_query_duration", &db), Some(21.0));
        assert_eq!(value(&s, "db_queries", &db), Some(2.0));
        assert_eq!(value(&s, "db_query_error_rate", &db), Some(0.5));
        assert_eq!(value(&s, "external_request_error_rate", &[("peer", "api.stripe.com")]), Some(1.0));
        assert_eq!(value(&s, "http_requests", &[]), None, "no server span, no request metric");
    }

    #[test]
    fn hostile_labels_and_numbers_stay_bounded() {
        let mut w = SpanWindow::new();
        for i in 0..1_000 {
            let route = format!("/r{i}x");
            let service = format!("svc{}", i % 80);
            let f = SpanFacts { service: &service, ..server(&route, f64::NAN, 200) };
            w.record(&f);
        }
        assert!(w.series() <= MAX_SERVICES * (MAX_ROUTES_PER_SERVICE + 1) + 2);
        let s = w.samples(Timestamp::from_secs(60));
        let services: HashSet<&str> = s.iter().filter_map(|x| x.labels.get("service")).collect();
        assert!(services.len() <= MAX_SERVICES + 1, "{}", services.len());
        assert!(services.contains(OTHER));
        assert!(value(&s, "span_metrics_capped", &[("what", "service")]).is_some_and(|n| n > 0.0));
        assert!(s.iter().all(|x| x.value.is_finite()));
        let mut w = SpanWindow::new();
        w.record(&server("/late", 1e300, 200));
        let s = w.samples(Timestamp::from_secs(60));
        assert_eq!(value(&s, "http_request_duration", &[("route", "/late")]), Some(MAX_DURATION_MS));
        // One service with more routes than its cap: the rest fold into `other`.
        let mut w = SpanWindow::new();
        for i in 0..(MAX_ROUTES_PER_SERVICE + 50) {
            w.record(&server(&format!("/p{i}q"), 1.0, 200));
        }
        let s = w.samples(Timestamp::from_secs(60));
        assert_eq!(value(&s, "http_requests", &[("route", OTHER), ("status_class", "2xx")]), Some(50.0));
        assert_eq!(value(&s, "span_metrics_capped", &[("what", "route")]), Some(50.0));
    }

    #[test]
    fn merging_two_windows_adds_their_spans() {
        let (mut a, mut b) = (SpanWindow::new(), SpanWindow::new());
        a.record(&server("/x", 100.0, 200));
        b.record(&server("/x", 300.0, 503));
        a.merge(&b);
        let s = a.samples(Timestamp::from_secs(60));
        assert_eq!(value(&s, "http_request_duration", &[("route", "/x")]), Some(200.0));
        assert_eq!(value(&s, "http_request_error_rate", &[("route", "/x")]), Some(0.5));
        assert_eq!(a.spans(), 2);
    }
}
