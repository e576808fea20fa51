//! One window of RUM data: ingesting batches, merging agents' windows, error groups and the
//! window's samples.

use super::issues::{MAX_BREAKDOWN_VALUES, add_facet, add_user, user_hash};
use super::keys::{ALL, CounterKey, Device, MAX_ROUTES, OTHER_ROUTE, VitalKey, route_pattern};
use super::series::{Counter, Distribution, Series, VitalAgg};
use crate::domain::errors::{StackFrame, business_fingerprint, error_fingerprint, parse_stack, truncate};
use crate::domain::outcomes::{self, Outcome};
use crate::domain::vitals::{Rating, Vital};
use crate::metrics::{Labels, Sample};
use crate::time::Timestamp;
use crate::wire::{Batch, Breadcrumb, Event, PropValue};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Error groups kept per window; further new groups are counted under `rum_errors` only.
pub const MAX_ERROR_GROUPS: usize = 1000;
/// Distinct values a window keeps per label the page chooses; further values are counted under
/// [`OTHER`], and each fold in `rum_capped{what}`. Routes have their own cap ([`MAX_ROUTES`]).
pub const LABEL_CAPS: &[(&str, usize)] =
    &[("service", 10), ("env", 10), ("name", 200), ("type", 50), ("journey", 50), ("step", 200), ("kind", 20)];
/// The label value of what a cap folded.
pub const OTHER: &str = "other";
/// Vital series (service, env, vital, route, device) per window; beyond, a new series is not
/// made and the value is counted in `rum_capped{what="series"}` only.
pub const MAX_VITAL_SERIES: usize = 5_000;
/// Counter series per window, likewise.
pub const MAX_COUNTER_SERIES: usize = 5_000;
/// Page views tracked per window for `rum_views`; beyond, `rum_capped{what="view"}`.
pub const MAX_VIEWS: usize = 20_000;
/// Repeats one error event may claim (the SDK folds repeats of a minute into `count`).
pub const MAX_ERROR_REPEATS: u32 = 1_000;
/// Repeats one server error may claim (a host app folds a second's repeats into `count`).
pub const MAX_SERVER_ERROR_REPEATS: u64 = 1_000_000;
/// A business or conversion value of one event is clamped to this magnitude, and a window's
/// sums saturate at [`MAX_SUM`]: a forged `1e308` cannot overflow a sum to infinity.
pub const MAX_VALUE: f64 = 1e12;
/// See [`MAX_VALUE`].
pub const MAX_SUM: f64 = 1e15;
/// An error group keeps at most this many characters of its message...
pub const MAX_GROUP_MESSAGE: usize = 1_024;
/// ... and of its sample stack ...
pub const MAX_GROUP_STACK: usize = 4_096;
/// ... and a window's groups keep at most this many bytes of sample stacks and breadcrumbs in
/// all.
pub const MAX_WINDOW_STACK_BYTES: usize = 1 << 20;
/// Users an error group keeps per window (the rest are counted, not named); they and the
/// breakdown count in [`MAX_WINDOW_STACK_BYTES`] too.
pub const MAX_GROUP_USERS: usize = 64;
/// An error group keeps the last this many breadcrumbs of its first error...
pub const MAX_GROUP_BREADCRUMBS: usize = 20;
/// ... each message and category cut to this many bytes.
pub const MAX_BREADCRUMB_MESSAGE: usize = 256;
/// The quantile the spec reports web vitals at.
pub const VITALS_QUANTILE: f64 = 0.75;

/// The business value of an event's properties: the first finite number among `amount`,
/// `value`, `actualValue`, `estimatedValue`.
fn business_value(props: &BTreeMap<String, PropValue>) -> Option<f64> {
    ["amount", "value", "actualValue", "estimatedValue"].iter().find_map(|k| match props.get(*k) {
        Some(PropValue::Number(n)) if n.is_finite() => Some(*n),
        _ => None,
    })
}

/// How many sessions a batch's session stands for: `100 / sampleRate`, rounded, between 1 and
/// 100 (1 when the SDK sent no rate): a rate below 1% counts as 1%, so one forged batch weighs
/// at most what 100 honest ones do.
pub fn sample_weight(batch: &Batch) -> u64 {
    batch
        .session
        .sample_rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map_or(1, |r| (100.0 / r.clamp(1.0, 100.0)).round() as u64)
}

/// `v` with its magnitude at most `max` (NaN as 0).
fn clamp_abs(v: f64, max: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v.clamp(-max, max) }
}

/// An error a server reported, as the OTLP intake reads it off a log record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerError {
    /// `service.name` of the record's resource.
    pub service: String,
    /// `deployment.environment(.name)`.
    pub env: String,
    /// `exception.type`, when the record has one.
    pub exception_type: Option<String>,
    /// `exception.message`, else the record's body.
    pub message: String,
    /// `exception.stacktrace`.
    pub stack: Option<String>,
    /// `http.route`, when the record has one.
    pub route: String,
    /// `trace_id`, `span_id` (hex) and `severity`, for finding the request it broke.
    pub tags: BTreeMap<String, String>,
    /// The spec's business fields `[process, step, code]`: when present they are the
    /// fingerprint, exactly as a browser's business error's (kind `business`, tags
    /// `businessProcess`, `workflowStep`, `errorCode`).
    pub business: Option<[String; 3]>,
    /// How many times it happened (a sender that folds repeats reports one with its count);
    /// 0 counts as 1.
    pub count: u64,
    /// What happened before it (the request's last INFO and WARN events).
    pub breadcrumbs: Vec<Breadcrumb>,
}

impl ServerError {
    /// The group it joins: the business fingerprint (`sdk-` and 16 hex digits, the browser's)
    /// when it has business fields, else core's fingerprint of its type, message and the
    /// application's frames of its stack (Python, Rust and Node.js stacks, the runtime's
    /// frames left out).
    pub fn fingerprint(&self) -> String {
        if let Some([process, step, code]) = &self.business {
            return format!("sdk-{}", business_fingerprint(process, step, code));
        }
        let frames = self.stack.as_deref().map(crate::domain::errors::parse_server_stack).unwrap_or_default();
        let kind = self.exception_type.as_deref().unwrap_or("Error");
        error_fingerprint(kind, &self.message, &frames)
    }
}

/// Errors that share a fingerprint, within a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorGroup {
    /// 16 hex digits: core's `error_fingerprint` of type, message and top frames; `sdk-` and
    /// 16 hex digits for a fingerprint the page sent (the spec's `business_fingerprint` of
    /// `[process, step, code]`, or the host app's parts), a space of its own so a page cannot
    /// join a group the collector computed.
    pub fingerprint: String,
    /// The application.
    pub service: String,
    /// Its environment.
    pub env: String,
    /// The SDK's kind: `error`, `unhandledrejection`, `captured` or `business`.
    pub kind: String,
    /// The message of the first one seen (`TypeError: x is undefined`), at most
    /// [`MAX_GROUP_MESSAGE`] bytes.
    pub message: String,
    /// A stack of one of them, at most [`MAX_GROUP_STACK`] bytes (none once the window holds
    /// [`MAX_WINDOW_STACK_BYTES`]).
    pub sample_stack: Option<String>,
    /// The route it happened on.
    pub route: String,
    /// Business context tags (`businessProcess`, `industry`, `workflowStep`, ...).
    pub tags: BTreeMap<String, String>,
    /// What happened before the first one seen: the page's breadcrumbs, or a server's last
    /// INFO and WARN events of the request; at most [`MAX_GROUP_BREADCRUMBS`], each message
    /// cut to [`MAX_BREADCRUMB_MESSAGE`] bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breadcrumbs: Vec<Breadcrumb>,
    /// How many times (repeats folded by the SDK included).
    pub count: u64,
    /// Hashes of the users it reached ([`user_hash`](super::issues::user_hash): the page's
    /// `userId`, else its session), sorted, at most [`MAX_GROUP_USERS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<u64>,
    /// Users it reached beyond those (an upper bound: some may be among them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users_more: u64,
    /// Its events by route, browser, release, industry and user role
    /// ([`BREAKDOWN_KEYS`](super::issues::BREAKDOWN_KEYS)), at most
    /// [`MAX_BREAKDOWN_VALUES`](super::issues::MAX_BREAKDOWN_VALUES) values a key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: BTreeMap<String, BTreeMap<String, u64>>,
    /// The source map debug ids of the sample stack's scripts, by script URL (the page's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub debug_ids: BTreeMap<String, String>,
    /// When it first reached a collector (by the collector's clock, not the page's).
    pub first_seen: Timestamp,
    /// When it last reached a collector.
    pub last_seen: Timestamp,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ErrorGroup {
    fn merge(&mut self, other: &ErrorGroup) {
        self.count += other.count;
        for h in &other.users {
            add_user(&mut self.users, &mut self.users_more, *h, MAX_GROUP_USERS);
        }
        self.users_more = self.users_more.saturating_add(other.users_more);
        for (key, values) in &other.breakdown {
            for (value, n) in values {
                add_facet(&mut self.breakdown, key, value, *n, MAX_BREAKDOWN_VALUES);
            }
        }
        if other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
            self.message.clone_from(&other.message);
            self.sample_stack.clone_from(&other.sample_stack);
            self.breadcrumbs.clone_from(&other.breadcrumbs);
            self.debug_ids.clone_from(&other.debug_ids);
        }
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

/// Adds an event's user and breakdown values to `g`, within the window's byte budget.
fn add_facts(g: &mut ErrorGroup, bytes: &mut usize, user: Option<u64>, facets: &[(&str, &str)], n: u64) {
    if let Some(h) = user {
        let before = g.users.len();
        if *bytes + 8 <= MAX_WINDOW_STACK_BYTES {
            add_user(&mut g.users, &mut g.users_more, h, MAX_GROUP_USERS);
            *bytes += 8 * (g.users.len() - before);
        } else if g.users.binary_search(&h).is_err() {
            g.users_more = g.users_more.saturating_add(1);
        }
    }
    for (key, value) in facets.iter().filter(|(_, v)| !v.is_empty()) {
        let cost = 32 + key.len() + value.len();
        if *bytes + cost > MAX_WINDOW_STACK_BYTES {
            let known = g.breakdown.get(*key).is_some_and(|m| m.contains_key(*value));
            if !known {
                continue;
            }
        }
        if add_facet(&mut g.breakdown, key, value, n, MAX_BREAKDOWN_VALUES) {
            *bytes += cost;
        }
    }
}

/// The fingerprint of an error event: the business fingerprint when the SDK sent one, else
/// type, message and frames (parsed from the raw stack when the SDK sent no frames).
pub fn fingerprint_event(message: &str, stack: Option<&str>, fingerprint: Option<&[String]>) -> String {
    if let Some([process, step, code]) = fingerprint {
        return format!("sdk-{}", business_fingerprint(process, step, code));
    }
    if let Some(parts) = fingerprint {
        return format!("sdk-{}", crate::domain::hash::fingerprint_hex(parts.iter().map(String::as_str)));
    }
    let (kind, text) = crate::domain::errors::split_error_kind(message);
    let frames: Vec<StackFrame> = stack.map(parse_stack).unwrap_or_default();
    error_fingerprint(kind, text, &frames)
}

/// The flat form of a counter or distribution key, into `buf`.
fn flat_key(buf: &mut String, metric: &str, scope: (&str, &str), extra: &[(&str, &str)]) {
    buf.clear();
    buf.push_str(metric);
    for (k, v) in [("service", scope.0), ("env", scope.1)].iter().chain(extra) {
        buf.push('\u{1f}');
        buf.push_str(k);
        buf.push('\u{1f}');
        buf.push_str(v);
    }
}

fn counter_key(metric: &str, scope: (&str, &str), extra: &[(&str, &str)]) -> CounterKey {
    let mut labels = vec![("service".to_string(), scope.0.to_string()), ("env".to_string(), scope.1.to_string())];
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    CounterKey { metric: metric.to_string(), labels }
}

/// The path of a resource URL when it is one of the page's API requests (`/api/...`).
fn api_path(url: &str) -> Option<&str> {
    let path = match url.find("://") {
        Some(i) => &url[i + 3..][url[i + 3..].find('/')?..],
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    (path == "/api" || path.starts_with("/api/")).then_some(path)
}

/// One window of RUM data, mergeable across agents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RumWindow {
    /// Start of the window.
    pub start: Timestamp,
    /// Vitals by series.
    pub vitals: Series<VitalKey, VitalAgg>,
    /// Counters by series.
    pub counters: Series<CounterKey, Counter>,
    /// Page timings (`rum_timing_ms` by name and route) and API requests
    /// (`rum_api_duration_ms` by route) by series.
    #[serde(default)]
    pub distributions: Series<CounterKey, Distribution>,
    /// Error groups by fingerprint.
    pub errors: HashMap<String, ErrorGroup>,
    /// Page views active in the window (sampled sessions), by view id: a view whose batches
    /// span two windows counts in both, and one reaching two agents counts once when their
    /// windows merge.
    #[serde(default)]
    pub views: HashMap<String, ViewSeen>,
    /// Routes seen, for the [`MAX_ROUTES`] cap.
    #[serde(default)]
    routes: HashSet<String>,
    /// Fingerprints of errors seen in this window, by a hash of message, stack and the SDK's
    /// fingerprint: a repeated error is not parsed again.
    #[serde(skip)]
    fingerprints: HashMap<u64, String>,
    /// Values seen per capped label ([`LABEL_CAPS`]).
    #[serde(skip)]
    label_values: HashMap<&'static str, HashSet<String>>,
    /// Bytes of sample stacks kept by the error groups.
    #[serde(skip)]
    stack_bytes: usize,
    /// What the caps folded or refused, by what (`name`, `series`, `view`...).
    #[serde(default)]
    pub capped: BTreeMap<String, u64>,
}

/// A page view seen in a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSeen {
    /// The application.
    pub service: String,
    /// Its environment.
    pub env: String,
    /// [`route_pattern`] of the view.
    pub route: String,
    /// How many views it stands for (`100 / sampleRate`).
    pub weight: f64,
}

/// What one batch added, for the collector's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events counted.
    pub events: usize,
    /// Errors among them.
    pub errors: usize,
}

impl RumWindow {
    /// An empty window starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        RumWindow { start, ..RumWindow::default() }
    }

    /// Starts counting the caps where `previous` (the window just closed) left them: routes and
    /// label values seen stay admitted and new ones stay capped, so a flood of new names every
    /// window cannot make new series every window. The collector carries them for an hour.
    pub fn inherit_caps(&mut self, previous: &RumWindow) {
        self.routes.clone_from(&previous.routes);
        self.label_values.clone_from(&previous.label_values);
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.vitals.is_empty() && self.counters.is_empty() && self.errors.is_empty() && self.views.is_empty()
    }

    fn route(&mut self, view_route: &str) -> String {
        let r = route_pattern(view_route);
        if self.routes.contains(&r) {
            return r;
        }
        if self.routes.len() >= MAX_ROUTES {
            self.note_capped("route");
            return OTHER_ROUTE.to_string();
        }
        self.routes.insert(r.clone());
        r
    }

    fn note_capped(&mut self, what: &str) {
        self.add_capped(what, 1);
    }

    pub(super) fn add_capped(&mut self, what: &str, n: u64) {
        match self.capped.get_mut(what) {
            Some(c) => *c += n,
            None => {
                self.capped.insert(what.to_string(), n);
            }
        }
    }

    /// `value` of `label`, or [`OTHER`] once the window holds the label's cap of values.
    pub(super) fn capped<'a>(&mut self, label: &'static str, value: &'a str) -> &'a str {
        let cap = LABEL_CAPS.iter().find(|(l, _)| *l == label).map_or(usize::MAX, |(_, c)| *c);
        let seen = self.label_values.entry(label).or_default();
        if seen.contains(value) {
            return value;
        }
        if seen.len() >= cap {
            self.note_capped(label);
            return OTHER;
        }
        seen.insert(value.to_string());
        value
    }

    /// Adds to the counter `metric` of `service`, `env` and `extra` labels; allocates only for
    /// a new series.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn count(
        &mut self,
        buf: &mut String,
        metric: &str,
        scope: (&str, &str),
        extra: &[(&str, &str)],
        n: f64,
        value: f64,
    ) {
        flat_key(buf, metric, scope, extra);
        let Some(c) = self.counters.capped_slot(buf, MAX_COUNTER_SERIES, || counter_key(metric, scope, extra)) else {
            self.note_capped("series");
            return;
        };
        c.count = (c.count + n).min(MAX_SUM);
        c.sum = clamp_abs(c.sum + clamp_abs(value, MAX_VALUE) * n, MAX_SUM);
    }

    /// Adds a duration (weighted `n`) to the distribution `metric` with `extra` labels; a
    /// request's `status` counts towards its error share.
    fn observe(
        &mut self,
        buf: &mut String,
        (metric, scope, extra): (&str, (&str, &str), &[(&str, &str)]),
        n: u64,
        value: f64,
        status: Option<u16>,
    ) {
        flat_key(buf, metric, scope, extra);
        let Some(d) = self.distributions.capped_slot(buf, MAX_COUNTER_SERIES, || counter_key(metric, scope, extra))
        else {
            self.note_capped("series");
            return;
        };
        d.sketch.add_n(value.clamp(0.0, MAX_VALUE), n);
        if let Some(code) = status.filter(|c| *c > 0) {
            d.with_status = (d.with_status + n as f64).min(MAX_SUM);
            if code >= 400 {
                d.failed = (d.failed + n as f64).min(MAX_SUM);
            }
        }
    }

    fn fingerprint(&mut self, message: &str, stack: Option<&str>, sdk: Option<&[String]>) -> String {
        use std::hash::{Hash, Hasher};
        // Within one process and window only: std's hasher is faster than the stable FNV.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (message, stack, sdk).hash(&mut h);
        let key = h.finish();
        if let Some(fp) = self.fingerprints.get(&key) {
            return fp.clone();
        }
        let fp = fingerprint_event(message, stack, sdk);
        if self.fingerprints.len() < MAX_ERROR_GROUPS {
            self.fingerprints.insert(key, fp.clone());
        }
        fp
    }

    /// Adds `n` occurrences to the group `fp`, making it (with the other fields) when it is new
    /// and there is room; `tags` is only built for a new group.
    #[allow(clippy::too_many_arguments)]
    fn add_error(
        &mut self,
        fp: String,
        scope: (&str, &str),
        kind: &str,
        message: &str,
        stack: Option<&str>,
        route: &str,
        tags: impl FnOnce() -> BTreeMap<String, String>,
        crumbs: &[Breadcrumb],
        (user, facets): (Option<u64>, &[(&str, &str)]),
        n: u64,
        arrival: Timestamp,
    ) {
        if let Some(g) = self.errors.get_mut(&fp) {
            g.count += n;
            g.last_seen = g.last_seen.max(arrival);
            add_facts(g, &mut self.stack_bytes, user, facets, n);
            return;
        }
        if self.errors.len() >= MAX_ERROR_GROUPS {
            self.note_capped("error_group");
            return;
        }
        let sample_stack = stack.map(|s| truncate(s, MAX_GROUP_STACK)).filter(|s| {
            let fits = self.stack_bytes + s.len() <= MAX_WINDOW_STACK_BYTES;
            self.stack_bytes += if fits { s.len() } else { 0 };
            fits
        });
        let cut = |s: &str| truncate(s, MAX_BREADCRUMB_MESSAGE).to_string();
        let crumbs: Vec<Breadcrumb> = crumbs[crumbs.len().saturating_sub(MAX_GROUP_BREADCRUMBS)..]
            .iter()
            .map(|b| Breadcrumb { at: b.at, category: cut(&b.category), message: cut(&b.message) })
            .collect();
        let crumb_bytes: usize = crumbs.iter().map(|b| b.category.len() + b.message.len() + 8).sum();
        let breadcrumbs = if self.stack_bytes + crumb_bytes <= MAX_WINDOW_STACK_BYTES {
            self.stack_bytes += crumb_bytes;
            crumbs
        } else {
            Vec::new()
        };
        self.errors.insert(
            fp.clone(),
            ErrorGroup {
                fingerprint: fp.clone(),
                service: scope.0.to_string(),
                env: scope.1.to_string(),
                kind: kind.to_string(),
                message: truncate(message, MAX_GROUP_MESSAGE).to_string(),
                sample_stack: sample_stack.map(str::to_string),
                route: route.to_string(),
                tags: tags(),
                breadcrumbs,
                count: n,
                first_seen: arrival,
                last_seen: arrival,
                users: Vec::new(),
                users_more: 0,
                breakdown: BTreeMap::new(),
                debug_ids: BTreeMap::new(),
            },
        );
        if let Some(g) = self.errors.get_mut(&fp) {
            add_facts(g, &mut self.stack_bytes, user, facets, n);
        }
    }

    /// Counts an error a server reported (an OTLP log record at ERROR or above, or with
    /// `exception.*` attributes; a host app's `tracing` error or panic) into the window's error
    /// groups, beside the browser's, under the same caps: kind `business` when it has business
    /// fields, else `server`, grouped by [`ServerError::fingerprint`]. Its `count` is clamped to
    /// [`MAX_SERVER_ERROR_REPEATS`]. It does not count in `rum_errors` (the intake counts log
    /// records).
    pub fn record_server_error(&mut self, e: &ServerError, arrival: Timestamp) {
        let service = self.capped("service", &e.service).to_string();
        let env = self.capped("env", &e.env).to_string();
        let message = match &e.exception_type {
            Some(t) if !e.message.starts_with(t.as_str()) => format!("{t}: {}", e.message),
            _ => e.message.clone(),
        };
        let fp = e.fingerprint();
        let route = if e.route.is_empty() { String::new() } else { self.route(&e.route) };
        let tags = || {
            let mut t = e.tags.clone();
            if let Some([process, step, code]) = &e.business {
                for (k, v) in [("businessProcess", process), ("workflowStep", step), ("errorCode", code)] {
                    t.insert(k.to_string(), v.clone());
                }
            }
            t
        };
        let kind = if e.business.is_some() { "business" } else { "server" };
        let n = e.count.clamp(1, MAX_SERVER_ERROR_REPEATS);
        let scope = (service.as_str(), env.as_str());
        let tag = |k: &str| e.tags.get(k).map(String::as_str);
        let user = user_hash(tag("enduser.id").or(tag("user.id")).or(tag("userId")), None);
        let facets = [
            ("route", route.as_str()),
            ("release", tag("release").unwrap_or_default()),
            ("industry", tag("industry").unwrap_or_default()),
            ("userRole", tag("userRole").or(tag("enduser.role")).unwrap_or_default()),
        ];
        let stack = e.stack.as_deref();
        self.add_error(fp, scope, kind, &message, stack, &route, tags, &e.breadcrumbs, (user, &facets), n, arrival);
    }

    /// Counts a validated batch from a browser of class `device` that reached the collector at
    /// `arrival` (error groups are seen then, by the collector's clock). Every label the page
    /// chooses is capped ([`LABEL_CAPS`]), and so are series, views, repeats and values.
    pub fn ingest(&mut self, batch: &Batch, (device, browser): (Device, &str), arrival: Timestamp) -> Ingested {
        let weight = sample_weight(batch);
        let w = weight as f64;
        let route = self.route(batch.view.route.as_deref().unwrap_or(&batch.view.url));
        let scope = (self.capped("service", &batch.service), self.capped("env", &batch.env));
        let mut buf = String::with_capacity(128);
        let mut done = Ingested::default();
        // Sampled sessions send every kind; unsampled ones errors only.
        let sampled = batch.session.sampled;
        if sampled {
            self.count(&mut buf, "rum_batches", scope, &[], w, 0.0);
            if !self.views.contains_key(&batch.view.id) {
                if self.views.len() < MAX_VIEWS {
                    let seen = ViewSeen {
                        service: scope.0.to_string(),
                        env: scope.1.to_string(),
                        route: route.clone(),
                        weight: w,
                    };
                    self.views.insert(batch.view.id.clone(), seen);
                } else {
                    self.note_capped("view");
                }
            }
        }
        for e in &batch.events {
            done.events += 1;
            match e {
                Event::Vital { name, value, .. } if sampled => {
                    let Some(vital) = Vital::from_name(name) else { continue };
                    buf.clear();
                    for part in [scope.0, scope.1, vital.name(), route.as_str(), device.as_str()] {
                        buf.push_str(part);
                        buf.push('\u{1f}');
                    }
                    let Some(agg) = self.vitals.capped_slot(&buf, MAX_VITAL_SERIES, || VitalKey {
                        service: scope.0.to_string(),
                        env: scope.1.to_string(),
                        vital,
                        route: route.clone(),
                        device,
                    }) else {
                        self.note_capped("series");
                        continue;
                    };
                    agg.sketch.add_n(*value, weight);
                    // Rated here, not trusted from the page: the thresholds are core's.
                    let i = match vital.rate(*value) {
                        Rating::Good => 0,
                        Rating::NeedsImprovement => 1,
                        Rating::Poor => 2,
                    };
                    agg.ratings[i] += weight;
                }
                Event::Action { .. } if sampled => self.count(&mut buf, "rum_actions", scope, &[], w, 0.0),
                Event::LongTask { duration_ms, .. } if sampled => {
                    self.count(&mut buf, "rum_long_tasks", scope, &[], w, *duration_ms);
                }
                Event::Timing { name, duration_ms, .. } if sampled => {
                    let name = self.capped("name", name);
                    let labels = [("name", name), ("route", route.as_str())];
                    self.observe(&mut buf, ("rum_timing_ms", scope, &labels), weight, *duration_ms, None);
                }
                Event::Resource {
                    url, kind, transfer_bytes, duration_ms, over_budget, near_budget, status, ..
                } if sampled => {
                    let kind = self.capped("kind", kind);
                    let bytes = *transfer_bytes as f64;
                    self.count(&mut buf, "rum_resources", scope, &[("kind", kind)], w, bytes);
                    for (budget, level) in [(over_budget, "error"), (near_budget, "warning")] {
                        if let Some(k) = budget {
                            let k = self.capped("kind", k);
                            let labels = [("kind", k), ("level", level)];
                            self.count(&mut buf, "rum_budget_violations", scope, &labels, w, 0.0);
                        }
                    }
                    if let Some(path) = api_path(url) {
                        let api_route = self.route(path);
                        let labels = [("route", api_route.as_str())];
                        self.observe(&mut buf, ("rum_api_duration_ms", scope, &labels), weight, *duration_ms, *status);
                    }
                }
                Event::Business { name, props, .. } if sampled => {
                    let v = business_value(props);
                    if name == outcomes::BROWSER_PAYMENT_EVENT {
                        let status = match props.get("status") {
                            Some(PropValue::Text(s)) => Some(s.as_str()),
                            _ => None,
                        };
                        let labels = [("outcome", outcomes::classify(status))];
                        self.count(&mut buf, Outcome::Payment.count_metric(), scope, &labels, w, 0.0);
                    }
                    let name = self.capped("name", name);
                    self.count(&mut buf, "business_events", scope, &[("name", name)], w, v.unwrap_or(0.0));
                }
                Event::Journey { journey_type, step, .. } if sampled => {
                    let labels =
                        [("journey", self.capped("journey", journey_type)), ("step", self.capped("step", step))];
                    self.count(&mut buf, "journey_steps", scope, &labels, w, 0.0);
                }
                Event::Conversion { conversion_type, value, .. } if sampled => {
                    let kind = self.capped("type", conversion_type);
                    self.count(&mut buf, "conversions", scope, &[("type", kind)], w, *value);
                }
                Event::Error {
                    kind,
                    message,
                    stack,
                    fingerprint,
                    tags,
                    breadcrumbs,
                    count,
                    trace_id,
                    symbolicated_fingerprint,
                    debug_ids,
                    ..
                } => {
                    done.errors += 1;
                    let n = u64::from((*count).clamp(1, MAX_ERROR_REPEATS));
                    self.count(&mut buf, "rum_errors", scope, &[("kind", kind)], n as f64, 0.0);
                    // A page's own fingerprint wins; else the one of the original frames, when
                    // source maps read the stack (two builds of one bug, one group).
                    let fp = match (fingerprint, symbolicated_fingerprint) {
                        (None, Some(fp)) => fp.clone(),
                        _ => self.fingerprint(message, stack.as_deref(), fingerprint.as_deref()),
                    };
                    let text = |k: &str| match tags.get(k) {
                        Some(PropValue::Text(s)) => s.as_str(),
                        _ => "",
                    };
                    // The page's tags, then where to find the rest of the story: the session's
                    // timeline and the trace the error broke.
                    let page_tags = tags;
                    let tags = || {
                        let mut t: BTreeMap<String, String> = page_tags
                            .iter()
                            .filter_map(|(k, v)| match v {
                                PropValue::Text(s) => Some((k.clone(), s.clone())),
                                _ => None,
                            })
                            .collect();
                        t.insert("session_id".into(), batch.session.id.clone());
                        if let Some(release) = &batch.version {
                            t.insert("release".into(), release.clone());
                        }
                        if let Some(id) = trace_id {
                            t.insert("trace_id".into(), id.clone());
                        }
                        t
                    };
                    let user = user_hash(Some(text("userId")), Some(&batch.session.id));
                    let facets = [
                        ("route", route.as_str()),
                        ("browser", browser),
                        ("release", batch.version.as_deref().unwrap_or_default()),
                        ("industry", text("industry")),
                        ("userRole", text("userRole")),
                    ];
                    let facts = (user, &facets[..]);
                    let stack = stack.as_deref();
                    let key = fp.clone();
                    self.add_error(fp, scope, kind, message, stack, &route, tags, breadcrumbs, facts, n, arrival);
                    // The sample's scripts' debug ids, beside its stack and in the same budget.
                    let cost: usize = debug_ids.iter().map(|(u, i)| u.len() + i.len()).sum();
                    if let Some(g) = self.errors.get_mut(&key) {
                        if cost > 0 && g.debug_ids.is_empty() && self.stack_bytes + cost <= MAX_WINDOW_STACK_BYTES {
                            g.debug_ids = debug_ids.clone();
                            self.stack_bytes += cost;
                        }
                    }
                }
                _ => {}
            }
        }
        done
    }

    /// Adds another agent's window of the same period.
    pub fn merge(&mut self, other: &RumWindow) {
        for (k, v) in other.vitals.iter() {
            self.vitals.entry(k).merge(v);
        }
        for (k, v) in other.counters.iter() {
            let c = self.counters.entry(k);
            c.count = (c.count + v.count).min(MAX_SUM);
            c.sum = clamp_abs(c.sum + v.sum, MAX_SUM);
        }
        for (k, v) in other.distributions.iter() {
            self.distributions.entry(k).merge(v);
        }
        for (what, n) in &other.capped {
            *self.capped.entry(what.clone()).or_default() += n;
        }
        for (k, v) in &other.errors {
            match self.errors.get_mut(k) {
                Some(g) => g.merge(v),
                None => {
                    self.errors.insert(k.clone(), v.clone());
                }
            }
        }
        self.routes.extend(other.routes.iter().cloned());
        for (id, v) in &other.views {
            self.views.entry(id.clone()).or_insert_with(|| v.clone());
        }
    }

    /// The window's figures as samples at `at`:
    /// - `web_vitals_<vital>_p75` and `web_vitals_<vital>_count` by `service`, `env`, `route`,
    ///   `device`, plus `route="all", device="all"` over every route and device;
    /// - `web_vitals_<vital>_ratings` by `rating` (`good`, `needs-improvement`, `poor`), all
    ///   routes and devices;
    /// - `rum_views`: page views active in the window (by route and `all`), `rum_actions`, `rum_long_tasks`, `rum_errors` (by
    ///   kind), `rum_error_rate` (errors per active page view),
    ///   `business_events` and `business_value` (by name), `conversions` and
    ///   `conversion_value` (by type), `journey_steps` (by journey and step): counts per
    ///   window, weighted by the sampling rate;
    /// - `rum_timing_ms_p75` and `_count` by timing `name` (`page_load_complete`: the
    ///   navigation's `loadEventEnd`; `route_change`; the page's own `addTiming`) and route;
    ///   `rum_api_duration_ms_p75` and `_count` of the page's requests under `/api/` by route,
    ///   and `rum_api_error_rate` (status 400 and up, of those whose status the browser
    ///   reported); each also with `route="all"`;
    /// - `rum_resources` and `rum_resource_transfer_bytes` by `kind` (script, stylesheet,
    ///   image, font, other), and `rum_budget_violations` by `kind` and `level` (`warning`,
    ///   `error`);
    /// - `payments{outcome}` and `payment_failure_rate` from `payment_processed` business
    ///   events by their `status` prop (see [`crate::domain::outcomes`]);
    /// - `rum_session_duration_seconds_avg` and `rum_bounce_rate` of the sessions that ended in
    ///   the window (see [`SessionTracker`](super::SessionTracker));
    /// - `rum_capped{what}`: what the window's caps folded into [`OTHER`] or refused.
    pub fn samples(&self, at: Timestamp) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut overall: BTreeMap<(&str, &str, Vital), VitalAgg> = BTreeMap::new();
        let mut series: Vec<(&VitalKey, &VitalAgg)> = self.vitals.iter().collect();
        series.sort_by(|a, b| a.0.cmp(b.0));
        for (k, agg) in series {
            overall.entry((&k.service, &k.env, k.vital)).or_default().merge(agg);
            push_vital(&mut out, at, &k.service, &k.env, k.vital, &k.route, k.device.as_str(), agg, false);
        }
        for ((service, env, vital), agg) in &overall {
            push_vital(&mut out, at, service, env, *vital, ALL, ALL, agg, true);
        }
        let mut counters: Vec<(&CounterKey, &Counter)> = self.counters.iter().collect();
        counters.sort_by(|a, b| a.0.cmp(b.0));
        let mut views: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut by_route: BTreeMap<(&str, &str, &str), f64> = BTreeMap::new();
        for v in self.views.values() {
            *views.entry((v.service.clone(), v.env.clone())).or_default() += v.weight;
            *by_route.entry((&v.service, &v.env, &v.route)).or_default() += v.weight;
        }
        for ((service, env, route), n) in by_route {
            let labels = Labels::from_pairs([("service", service), ("env", env), ("route", route)]);
            out.push(Sample::new("rum_views", labels, n, at));
        }
        let mut errors: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut payments: BTreeMap<(String, String), [f64; 2]> = BTreeMap::new();
        let mut sessions: BTreeMap<(String, String), [f64; 3]> = BTreeMap::new();
        for (k, &c) in counters {
            let labels = Labels::from_pairs(k.labels.iter().cloned());
            let scope =
                || (labels.get("service").unwrap_or("").to_string(), labels.get("env").unwrap_or("").to_string());
            match k.metric.as_str() {
                "rum_sessions_ended" => sessions.entry(scope()).or_default()[0] += c.count,
                "rum_session_seconds" => sessions.entry(scope()).or_default()[1] += c.sum,
                "rum_bounces" => sessions.entry(scope()).or_default()[2] += c.count,
                _ => {}
            }
            if k.metric == Outcome::Payment.count_metric() {
                let slot = payments.entry(scope()).or_default();
                match labels.get("outcome") {
                    Some("succeeded") => slot[0] += c.count,
                    Some("failed") => slot[1] += c.count,
                    _ => {}
                }
            }
            if k.metric == "rum_errors" {
                let scope =
                    (labels.get("service").unwrap_or("").to_string(), labels.get("env").unwrap_or("").to_string());
                *errors.entry(scope).or_default() += c.count;
            }
            out.push(Sample::new(k.metric.clone(), labels.clone(), c.count, at));
            let value_metric = match k.metric.as_str() {
                "business_events" => Some("business_value"),
                "conversions" => Some("conversion_value"),
                "rum_resources" => Some("rum_resource_transfer_bytes"),
                _ => None,
            };
            if let Some(m) = value_metric {
                out.push(Sample::new(m, labels, c.sum, at));
            }
        }
        push_distributions(&mut out, at, &self.distributions);
        for ((service, env), [ok, failed]) in &payments {
            if let Some(v) = Outcome::Payment.rule_value(*ok, *failed) {
                let labels = Labels::from_pairs([("service", service.as_str()), ("env", env.as_str())]);
                out.push(Sample::new(Outcome::Payment.rule_metric(), labels, v, at));
            }
        }
        for (what, n) in &self.capped {
            out.push(Sample::new("rum_capped", Labels::from_pairs([("what", what.as_str())]), *n as f64, at));
        }
        for ((service, env), n) in &views {
            let labels = Labels::from_pairs([("service", service.as_str()), ("env", env.as_str()), ("route", ALL)]);
            out.push(Sample::new("rum_views", labels, *n, at));
        }
        for ((service, env), [ended, seconds, bounces]) in &sessions {
            if *ended > 0.0 {
                let labels = Labels::from_pairs([("service", service.as_str()), ("env", env.as_str())]);
                out.push(Sample::new("rum_session_duration_seconds_avg", labels.clone(), seconds / ended, at));
                out.push(Sample::new("rum_bounce_rate", labels, bounces / ended, at));
            }
        }
        let scopes: std::collections::BTreeSet<_> = views.keys().chain(errors.keys()).collect();
        for (service, env) in scopes {
            let v = views.get(&(service.clone(), env.clone())).copied().unwrap_or(0.0);
            let e = errors.get(&(service.clone(), env.clone())).copied().unwrap_or(0.0);
            if v > 0.0 {
                let labels = Labels::from_pairs([("service", service.as_str()), ("env", env.as_str())]);
                out.push(Sample::new("rum_error_rate", labels, e / v, at));
            }
        }
        out
    }
}

/// `{metric}_p75` and `{metric}_count` of each distribution series and of each one's
/// `route="all"` total; `rum_api_error_rate` for API requests with a known status.
fn push_distributions(out: &mut Vec<Sample>, at: Timestamp, series: &Series<CounterKey, Distribution>) {
    let mut all: BTreeMap<(String, Vec<(String, String)>), Distribution> = BTreeMap::new();
    let mut sorted: Vec<(&CounterKey, &Distribution)> = series.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (k, d) in sorted {
        let total: Vec<(String, String)> =
            k.labels.iter().map(|(l, v)| (l.clone(), if l == "route" { ALL.to_string() } else { v.clone() })).collect();
        all.entry((k.metric.clone(), total)).or_default().merge(d);
        push_distribution(out, at, &k.metric, Labels::from_pairs(k.labels.iter().cloned()), d);
    }
    for ((metric, labels), d) in &all {
        push_distribution(out, at, metric, Labels::from_pairs(labels.iter().cloned()), d);
    }
}

fn push_distribution(out: &mut Vec<Sample>, at: Timestamp, metric: &str, labels: Labels, d: &Distribution) {
    if let Some(p75) = d.sketch.quantile(VITALS_QUANTILE) {
        out.push(Sample::new(format!("{metric}_p75"), labels.clone(), p75, at));
    }
    if metric == "rum_api_duration_ms" && d.with_status > 0.0 {
        out.push(Sample::new("rum_api_error_rate", labels.clone(), d.failed / d.with_status, at));
    }
    out.push(Sample::new(format!("{metric}_count"), labels, d.sketch.count() as f64, at));
}

#[allow(clippy::too_many_arguments)]
fn push_vital(
    out: &mut Vec<Sample>,
    at: Timestamp,
    service: &str,
    env: &str,
    vital: Vital,
    route: &str,
    device: &str,
    agg: &VitalAgg,
    ratings: bool,
) {
    let labels = Labels::from_pairs([("service", service), ("env", env), ("route", route), ("device", device)]);
    let base = vital.metric_name();
    if let Some(p75) = agg.sketch.quantile(VITALS_QUANTILE) {
        out.push(Sample::new(format!("{base}_p75"), labels.clone(), p75, at));
    }
    out.push(Sample::new(format!("{base}_count"), labels, agg.sketch.count() as f64, at));
    if ratings {
        for (rating, n) in ["good", "needs-improvement", "poor"].iter().zip(agg.ratings) {
            let labels = Labels::from_pairs([("service", service), ("env", env), ("rating", rating)]);
            out.push(Sample::new(format!("{base}_ratings"), labels, n as f64, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rum::test_support::{T, page, sample, vital};

    #[test]
    fn timings_api_requests_and_transfer_are_kept() {
        let mut w = RumWindow::new(Timestamp(T));
        let timing = |ms: f64| format!(r#"{{"type":"timing","at":{T},"name":"page_load_complete","durationMs":{ms}}}"#);
        let res = |url: &str, kind: &str, bytes: u64, ms: f64, extra: &str| {
            format!(
                r#"{{"type":"resource","at":{T},"url":"{url}","kind":"{kind}","transferBytes":{bytes},"durationMs":{ms}{extra}}}"#
            )
        };
        let events = [
            timing(1000.0),
            timing(3000.0),
            res("https://shop.example/api/invoices/1042?x=1", "other", 500, 80.0, r#","status":200"#),
            res("https://shop.example/api/invoices/7", "other", 500, 120.0, r#","status":502"#),
            res("/api/invoices/8", "other", 500, 100.0, ""),
            res("https://shop.example/_next/main.js", "script", 150_000, 40.0, r#","nearBudget":"script""#),
            res("https://shop.example/_next/vendor.js", "script", 60_000, 40.0, r#","overBudget":"script""#),
            res("https://cdn.example/x/api/nope", "other", 10, 5.0, r#","status":404"#),
        ]
        .join(",");
        // Sampled at 50%: every figure counts twice.
        w.ingest(&page(true, 50, "/invoices/1042", &events), (Device::Desktop, "Chrome"), Timestamp(T));
        let s = w.samples(Timestamp(T + 60_000));
        let load = [("name", "page_load_complete"), ("route", "/invoices/:id")];
        // Each value stands for two page loads: PromQL's p75 of [1000, 1000, 3000, 3000] is at
        // rank 2.25, between two 3000s (within the sketch's error).
        let p75 = sample(&s, "rum_timing_ms_p75", &load).expect("load p75").value;
        assert!((p75 - 3000.0).abs() <= 3000.0 * 0.01, "{p75}");
        assert_eq!(sample(&s, "rum_timing_ms_count", &load).map(|x| x.value), Some(4.0));
        let all = [("name", "page_load_complete"), ("route", ALL)];
        assert_eq!(sample(&s, "rum_timing_ms_count", &all).map(|x| x.value), Some(4.0));
        // Three requests under /api/ (the CDN's `/x/api/` is not one), one failed of two with a status.
        let api = [("route", "/api/invoices/:id")];
        assert_eq!(sample(&s, "rum_api_duration_ms_count", &api).map(|x| x.value), Some(6.0));
        assert_eq!(sample(&s, "rum_api_error_rate", &api).map(|x| x.value), Some(0.5));
        assert!(sample(&s, "rum_api_duration_ms_p75", &[("route", ALL)]).is_some());
        let script = [("kind", "script")];
        assert_eq!(sample(&s, "rum_resources", &script).map(|x| x.value), Some(4.0));
        assert_eq!(sample(&s, "rum_resource_transfer_bytes", &script).map(|x| x.value), Some(420_000.0));
        let level = |l: &str| sample(&s, "rum_budget_violations", &[("kind", "script"), ("level", l)]).map(|x| x.value);
        assert_eq!((level("warning"), level("error")), (Some(2.0), Some(2.0)));
        // Another agent's window of the same minute merges.
        let mut other = RumWindow::new(Timestamp(T));
        other.ingest(&page(true, 100, "/invoices/1042", &timing(5000.0)), (Device::Desktop, "Chrome"), Timestamp(T));
        w.merge(&other);
        let s = w.samples(Timestamp(T + 60_000));
        assert_eq!(sample(&s, "rum_timing_ms_count", &load).map(|x| x.value), Some(5.0));
    }

    #[test]
    fn server_errors_group_beside_the_browser_s_without_counting_as_rum_errors() {
        let mut w = RumWindow::default();
        let e = ServerError {
            service: "api".into(),
            env: "prod".into(),
            exception_type: Some("PaymentDeclined".into()),
            message: "card 4242 declined".into(),
            stack: Some("Traceback (most recent call last):\n  File \"pay.py\", line 3, in pay\n".into()),
            route: "/api/invoices/1042/pay".into(),
            tags: [("trace_id".to_string(), "ab".repeat(16))].into_iter().collect(),
            ..ServerError::default()
        };
        let t = Timestamp::from_secs(1_800_000_000);
        w.record_server_error(&e, t);
        w.record_server_error(&e, t.plus(std::time::Duration::from_secs(5)));
        assert_eq!(w.errors.len(), 1);
        let g = w.errors.values().next().expect("a group");
        assert_eq!((g.kind.as_str(), g.count, g.service.as_str()), ("server", 2, "api"));
        assert_eq!(g.message, "PaymentDeclined: card 4242 declined");
        assert_eq!(g.route, "/api/invoices/:id/pay");
        assert_eq!(g.tags.get("trace_id").map(String::len), Some(32));
        assert!(w.samples(t).iter().all(|s| s.name != "rum_errors"));
    }

    #[test]
    fn server_business_errors_join_the_browser_s_group_with_count_and_breadcrumbs() {
        let mut w = RumWindow::new(Timestamp(T));
        let crumb = |i: i64| Breadcrumb { at: Timestamp(T + i), category: "INFO".into(), message: format!("step {i}") };
        let business = |msg: &str, count: u64| ServerError {
            service: "api".into(),
            env: "prod".into(),
            message: msg.into(),
            business: Some(["invoicing".into(), "charge".into(), "card_declined".into()]),
            count,
            breadcrumbs: (0..30).map(crumb).collect(),
            ..ServerError::default()
        };
        // Two messages, one business step and code: one group; the count folded in is kept,
        // a forged count is clamped.
        w.record_server_error(&business("invoice 1 declined", 10_000), Timestamp(T));
        w.record_server_error(&business("invoice 2 declined", 0), Timestamp(T + 1));
        w.record_server_error(&business("invoice 3 declined", u64::MAX), Timestamp(T + 2));
        assert_eq!(w.errors.len(), 1);
        let g = w.errors.values().next().expect("a group");
        let expected = format!("sdk-{}", business_fingerprint("invoicing", "charge", "card_declined"));
        assert_eq!(g.fingerprint, expected, "the browser's business fingerprint");
        assert_eq!((g.kind.as_str(), g.count), ("business", 10_000 + 1 + MAX_SERVER_ERROR_REPEATS));
        assert_eq!(g.message, "invoice 1 declined");
        assert_eq!(g.tags.get("errorCode").map(String::as_str), Some("card_declined"));
        // The last twenty breadcrumbs of the first one.
        assert_eq!(g.breadcrumbs.len(), MAX_GROUP_BREADCRUMBS);
        assert_eq!(g.breadcrumbs.last().map(|b| b.message.as_str()), Some("step 29"));
        assert_eq!(g.breadcrumbs[0].message, "step 10");
    }

    #[test]
    fn a_group_counts_its_users_and_breaks_its_events_down_within_caps() {
        let mut w = RumWindow::new(Timestamp(T));
        let server = |user: &str, release: &str| ServerError {
            service: "api".into(),
            env: "prod".into(),
            message: "db down".into(),
            route: "/pay".into(),
            tags: [("release".to_string(), release.to_string()), ("enduser.id".to_string(), user.to_string())].into(),
            ..ServerError::default()
        };
        for i in 0..(MAX_GROUP_USERS + 6) {
            w.record_server_error(&server(&format!("u{i}"), &format!("1.{}", i % 12)), Timestamp(T));
        }
        w.record_server_error(&server("u0", "1.0"), Timestamp(T));
        let g = w.errors.values().next().expect("one group");
        assert_eq!(g.users.len(), MAX_GROUP_USERS);
        assert_eq!(g.users_more, 6, "the users beyond the cap are counted");
        let releases = &g.breakdown["release"];
        assert_eq!(releases.len(), crate::rum::issues::MAX_BREAKDOWN_VALUES + 1, "ten releases and other");
        assert_eq!(releases.values().sum::<u64>(), g.count);
        assert_eq!(g.breakdown["route"]["/pay"], g.count);
        // Merged with another agent's window: users are a union, counts add.
        let mut other = w.clone();
        other.merge(&w);
        let m = other.errors.values().next().expect("one group");
        assert_eq!((m.users.len(), m.breakdown["route"]["/pay"]), (MAX_GROUP_USERS, 2 * g.count));
    }

    #[test]
    fn vitals_are_weighted_by_the_sample_rate_and_rated_by_core() {
        let mut w = RumWindow::new(Timestamp(T));
        // One session at 100%: LCP 1000; one at 10% standing for ten: LCP 4500.
        w.ingest(&page(true, 100, "/a", &vital("LCP", 1000.0)), (Device::Desktop, "Chrome"), Timestamp(T));
        w.ingest(&page(true, 10, "/a", &vital("LCP", 4500.0)), (Device::Desktop, "Chrome"), Timestamp(T));
        // Unsampled sessions send no vitals (and would not be counted).
        w.ingest(&page(false, 10, "/a", &vital("LCP", 9000.0)), (Device::Desktop, "Chrome"), Timestamp(T));
        let s = w.samples(Timestamp(T + 60_000));
        let p75 = sample(&s, "web_vitals_lcp_p75", &[("route", "/a"), ("device", "desktop")]).expect("p75");
        assert!((p75.value - 4500.0).abs() <= 4500.0 * 0.01, "10 of 11 values are 4500: {}", p75.value);
        let count = sample(&s, "web_vitals_lcp_count", &[("route", "all")]).expect("count");
        assert_eq!(count.value, 11.0);
        let poor = sample(&s, "web_vitals_lcp_ratings", &[("rating", "poor")]).expect("ratings");
        assert_eq!(poor.value, 10.0, "4500 ms is poor, whatever the page said");
        let good = sample(&s, "web_vitals_lcp_ratings", &[("rating", "good")]).expect("ratings");
        assert_eq!(good.value, 1.0);
    }

    #[test]
    fn errors_group_by_fingerprint_and_count_every_session() {
        let err = |msg: &str, line: u32| {
            format!(
                r#"{{"type":"error","at":{T},"kind":"error","message":"{msg}","stack":"{msg}\n    at pay (https://shop.example/app.js?v=2:1:{line})","count":2}}"#
            )
        };
        let business = format!(
            r#"{{"type":"error","at":{},"kind":"business","message":"Error: Card declined","fingerprint":["payments","charge","card_declined"],"tags":{{"businessProcess":"payments"}},"count":1}}"#,
            T + 5
        );
        let mut w = RumWindow::new(Timestamp(T));
        // Unsampled sessions send errors, and they count, once each.
        w.ingest(
            &page(false, 10, "/pay", &[err("TypeError: x is undefined", 10), business.clone()].join(",")),
            (Device::Mobile, "Chrome"),
            Timestamp(T),
        );
        // The same error from another line groups with it (lines are not part of the fingerprint).
        w.ingest(
            &page(true, 10, "/pay", &err("TypeError: x is undefined", 99)),
            (Device::Mobile, "Chrome"),
            Timestamp(T),
        );
        w.ingest(&page(true, 10, "/pay", &vital("TTFB", 100.0)), (Device::Mobile, "Chrome"), Timestamp(T));
        assert_eq!(w.errors.len(), 2, "{:#?}", w.errors);
        let typed = w.errors.values().find(|g| g.kind == "error").expect("group");
        assert_eq!(typed.count, 4);
        assert_eq!(typed.route, "/pay");
        let biz = &w.errors[&format!("sdk-{}", business_fingerprint("payments", "charge", "card_declined"))];
        assert_eq!(biz.tags.get("businessProcess").map(String::as_str), Some("payments"));
        let s = w.samples(Timestamp(T + 60_000));
        let errors: f64 = s.iter().filter(|x| x.name == "rum_errors").map(|x| x.value).sum();
        assert_eq!(errors, 5.0);
        // One view standing for ten: five errors per ten views.
        assert_eq!(sample(&s, "rum_error_rate", &[]).map(|x| x.value), Some(0.5));
    }

    #[test]
    fn payment_events_give_the_spec_s_failure_rate() {
        let pay = |status: &str| {
            format!(
                r#"{{"type":"business","at":{T},"name":"payment_processed","props":{{"amount":90,"status":"{status}"}}}}"#
            )
        };
        let events = ["succeeded", "succeeded", "paid", "declined", "pending"].map(pay).join(",");
        let mut w = RumWindow::new(Timestamp(T));
        // A 50% sample: each event stands for two.
        w.ingest(&page(true, 50, "/pay", &events), (Device::Desktop, "Chrome"), Timestamp(T));
        let s = w.samples(Timestamp(T + 60_000));
        let count = |o| sample(&s, "payments", &[("outcome", o)]).map(|x| x.value);
        assert_eq!((count("succeeded"), count("failed"), count("unknown")), (Some(6.0), Some(2.0), Some(2.0)));
        // One failure in four known outcomes; the pending one is not counted either way.
        let rate = sample(&s, "payment_failure_rate", &[("service", "shop"), ("env", "prod")]).map(|x| x.value);
        assert_eq!(rate, Some(0.25));
        assert_eq!(sample(&s, "business_events", &[("name", "payment_processed")]).map(|x| x.value), Some(10.0));
    }

    #[test]
    fn windows_merge_exactly_and_survive_serde() {
        let events = [
            vital("INP", 120.0),
            format!(r#"{{"type":"business","at":{T},"name":"invoice_generated","props":{{"amount":450}}}}"#),
            format!(r#"{{"type":"conversion","at":{T},"conversionType":"invoice-paid","value":450}}"#),
            format!(r#"{{"type":"journey","at":{T},"journeyType":"work-order","step":"created"}}"#),
        ]
        .join(",");
        let mut one = RumWindow::new(Timestamp(T));
        let mut a = RumWindow::new(Timestamp(T));
        let mut b = RumWindow::new(Timestamp(T));
        for i in 0..10 {
            let p = page(true, 50, "/hs/invoices/42", &events.replace("120", &(100 + i * 10).to_string()));
            one.ingest(&p, (Device::Desktop, "Chrome"), Timestamp(T));
            if i % 2 == 0 {
                a.ingest(&p, (Device::Desktop, "Chrome"), Timestamp(T))
            } else {
                b.ingest(&p, (Device::Desktop, "Chrome"), Timestamp(T))
            };
        }
        let text = serde_json::to_string(&b).expect("serialise");
        let b: RumWindow = serde_json::from_str(&text).expect("deserialise");
        a.merge(&b);
        let (mut x, mut y) = (one.samples(Timestamp(T)), a.samples(Timestamp(T)));
        let key = |s: &Sample| format!("{}{:?}", s.name, s.labels);
        x.sort_by_key(key);
        y.sort_by_key(key);
        assert_eq!(x, y, "two agents' halves merge into the one agent's window");
        let value = sample(&x, "business_value", &[("name", "invoice_generated")]).expect("value");
        assert_eq!(value.value, 9000.0, "ten invoices of 450, each standing for two");
        assert!(sample(&x, "journey_steps", &[("journey", "work-order"), ("step", "created")]).is_some());
        assert_eq!(sample(&x, "conversions", &[("type", "invoice-paid")]).map(|s| s.value), Some(20.0));
    }

    #[test]
    fn routes_are_capped() {
        let mut w = RumWindow::new(Timestamp(T));
        for i in 0..(MAX_ROUTES + 20) {
            w.ingest(
                &page(true, 100, &format!("/r{i}x/page"), &vital("TTFB", 5.0)),
                (Device::Desktop, "Chrome"),
                Timestamp(T),
            );
        }
        let routes: std::collections::BTreeSet<_> = w.vitals.iter().map(|(k, _)| k.route.clone()).collect();
        assert_eq!(routes.len(), MAX_ROUTES + 1);
        assert!(routes.contains(OTHER_ROUTE));
    }

    #[test]
    fn a_forged_batch_weighs_no_more_than_a_hundred_honest_ones() {
        let mut w = RumWindow::new(Timestamp(T));
        let mut forged = page(true, 1, "/a", &vital("LCP", 3_000_000.0));
        forged.session.sample_rate = Some(0.0001);
        w.ingest(&forged, (Device::Desktop, "Chrome"), Timestamp(T));
        let huge = format!(
            r#"{{"type":"error","at":{T},"kind":"error","message":"x","count":4294967295}},{{"type":"conversion","at":{T},"conversionType":"paid","value":1e308}},{{"type":"conversion","at":{T},"conversionType":"paid","value":1e308}}"#
        );
        w.ingest(&page(true, 100, "/a", &huge), (Device::Desktop, "Chrome"), Timestamp(T));
        let s = w.samples(Timestamp(T + 60_000));
        assert_eq!(sample(&s, "web_vitals_lcp_count", &[("route", "all")]).map(|x| x.value), Some(100.0));
        assert_eq!(sample(&s, "rum_views", &[("route", "all")]).map(|x| x.value), Some(100.0), "the view weighs 100");
        let errors: f64 = s.iter().filter(|x| x.name == "rum_errors").map(|x| x.value).sum();
        assert_eq!(errors, f64::from(MAX_ERROR_REPEATS));
        let value = sample(&s, "conversion_value", &[("type", "paid")]).expect("value").value;
        assert!(value.is_finite() && value <= MAX_SUM, "{value}");
        // And the window still round-trips (an infinite sum would be written as null).
        let back: RumWindow = serde_json::from_str(&serde_json::to_string(&w).expect("json")).expect("reads back");
        assert_eq!(back.counters, w.counters);
    }

    #[test]
    fn labels_the_page_chooses_are_capped_and_counted() {
        let mut w = RumWindow::new(Timestamp(T));
        for i in 0..500 {
            let ev = format!(r#"{{"type":"business","at":{T},"name":"event-{i}","props":{{}}}}"#);
            w.ingest(&page(true, 100, "/a", &ev), (Device::Desktop, "Chrome"), Timestamp(T));
        }
        let s = w.samples(Timestamp(T + 60_000));
        let names = s.iter().filter(|x| x.name == "business_events").count();
        let cap = LABEL_CAPS.iter().find(|(l, _)| *l == "name").map(|(_, c)| *c).expect("cap");
        assert_eq!(names, cap + 1, "the cap plus `other`");
        assert_eq!(sample(&s, "business_events", &[("name", OTHER)]).map(|x| x.value), Some((500 - cap) as f64));
        assert_eq!(sample(&s, "rum_capped", &[("what", "name")]).map(|x| x.value), Some((500 - cap) as f64));
    }

    #[test]
    fn a_page_cannot_join_or_rewrite_a_group_the_collector_computed() {
        let mut w = RumWindow::new(Timestamp(T));
        let real =
            format!(r#"{{"type":"error","at":{T},"kind":"error","message":"TypeError: x is undefined","count":1}}"#);
        w.ingest(&page(true, 100, "/pay", &real), (Device::Desktop, "Chrome"), Timestamp(T + 10));
        let server_fp = w.errors.keys().next().expect("group").clone();
        // A forged error claiming the server's fingerprint and an old time.
        let spoof = format!(
            r#"{{"type":"error","at":{T},"kind":"error","message":"SPOOFED: payments down","fingerprint":["{server_fp}"],"count":1}}"#
        );
        let mut forged = page(true, 100, "/pay", &spoof);
        forged.sent_at = Timestamp(0);
        forged.align_to(Timestamp(T + 20));
        w.ingest(&forged, (Device::Desktop, "Chrome"), Timestamp(T + 20));
        let g = &w.errors[&server_fp];
        assert_eq!(g.message, "TypeError: x is undefined");
        assert_eq!(g.count, 1);
        assert_eq!(g.first_seen, Timestamp(T + 10), "seen by the collector's clock");
        assert_eq!(w.errors.len(), 2, "the forged one is a group of its own");
    }

    #[test]
    fn caps_hold_across_windows_when_carried() {
        let name = |w: &mut RumWindow, n: &str| {
            let ev = format!(r#"{{"type":"business","at":{T},"name":"{n}","props":{{}}}}"#);
            w.ingest(&page(true, 100, "/a", &ev), (Device::Desktop, "Chrome"), Timestamp(T));
        };
        let cap = LABEL_CAPS.iter().find(|(l, _)| *l == "name").map(|(_, c)| *c).expect("cap");
        let mut first = RumWindow::new(Timestamp(T));
        for i in 0..cap {
            name(&mut first, &format!("n{i}"));
        }
        let mut next = RumWindow::new(Timestamp(T + 60_000));
        next.inherit_caps(&first);
        name(&mut next, "n3");
        name(&mut next, "brand-new");
        let s = next.samples(Timestamp(T + 120_000));
        assert!(sample(&s, "business_events", &[("name", "n3")]).is_some(), "admitted names stay admitted");
        assert!(sample(&s, "business_events", &[("name", "brand-new")]).is_none());
        assert_eq!(sample(&s, "business_events", &[("name", OTHER)]).map(|x| x.value), Some(1.0));
    }
}
