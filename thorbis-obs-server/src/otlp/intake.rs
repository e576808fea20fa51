//! `POST /v1/traces`: checks, bounded inflating and decoding, span validation, the window of
//! request metrics and the loop that closes it (see the module docs of [`super`]).

use super::OtlpSection;
use super::forward::{ForwardTotals, Forwarder, Relay};
use super::logs::{Origin, exception_error};
use crate::api;
use crate::hub::{Component, Hub};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thorbis_obs_core::domain::outcomes;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rum::ServerError;
use thorbis_obs_core::spans::{SpanFacts, SpanKind, SpanWindow};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::traces::{SpanEvent, TraceSpan};

/// Spans older than this (by their end) are rejected: an exporter retries for minutes, not
/// hours, and an older span would land in a window long closed.
const MAX_SPAN_AGE: Duration = Duration::from_secs(3600);
/// Exceptions (span `exception` events) taken from one request, at most; more are counted in
/// the spans' metrics but not grouped.
const MAX_ERRORS_PER_REQUEST: usize = 1000;
/// Requests waiting for a decoding slot, at most (their bodies not read yet); beyond, 503 with
/// `Retry-After`, which exporters retry. Requests decode at once on as many slots as cores.
const INTAKE_QUEUE: usize = 64;

/// The body encoding, from `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`: the body of an OTLP/HTTP error answer in protobuf (opentelemetry-proto
/// does not carry it).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The gRPC status code (3 invalid argument, 14 unavailable, 16 unauthenticated).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Why a request was refused whole.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into() }
    }
}

/// Request outcomes, in `otlp_requests{outcome}`.
const OUTCOMES: [&str; 7] = ["ok", "unauthorized", "unsupported", "too_large", "invalid", "busy", "partial"];

/// The intake's counts since the last window closed.
#[derive(Debug, Default)]
struct Stats {
    requests: [AtomicU64; 7],
    accepted: AtomicU64,
    rejected: AtomicU64,
    points_accepted: AtomicU64,
    points_rejected: AtomicU64,
    records_accepted: AtomicU64,
    records_rejected: AtomicU64,
}

impl Stats {
    fn outcome(&self, status: StatusCode) {
        let i = match status.as_u16() {
            200 => 0,
            401 | 403 => 1,
            415 => 2,
            413 => 3,
            503 | 429 => 5,
            _ => 4,
        };
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as samples, reset: `otlp_requests{outcome}` and `otlp_spans{outcome}`.
    fn take_samples(&self, at: Timestamp) -> Vec<Sample> {
        let mut out: Vec<Sample> = OUTCOMES
            .iter()
            .zip(&self.requests)
            .map(|(o, n)| {
                Sample::new(
                    "otlp_requests",
                    Labels::from_pairs([("outcome", *o)]),
                    n.swap(0, Ordering::Relaxed) as f64,
                    at,
                )
            })
            .collect();
        for (metric, o, n) in [
            ("otlp_spans", "accepted", &self.accepted),
            ("otlp_spans", "rejected", &self.rejected),
            ("otlp_data_points", "accepted", &self.points_accepted),
            ("otlp_data_points", "rejected", &self.points_rejected),
            ("otlp_log_records", "accepted", &self.records_accepted),
            ("otlp_log_records", "rejected", &self.records_rejected),
        ] {
            out.push(Sample::new(
                metric,
                Labels::from_pairs([("outcome", o)]),
                n.swap(0, Ordering::Relaxed) as f64,
                at,
            ));
        }
        out
    }
}

/// The OTLP intake as an agent component.
pub struct OtlpIntake {
    hub: Arc<Hub>,
    cfg: OtlpSection,
    window: Mutex<SpanWindow>,
    queue: Queue,
    stats: Stats,
    /// Log records of the open window per (service, severity).
    logs: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Where error log records go (the collector's error groups), when anywhere.
    errors: Option<ErrorSink>,
    /// Where accepted spans go (the trace store), when anywhere.
    traces: Option<TraceSink>,
    /// The relay of accepted requests, when `[otlp.forward]` has an endpoint.
    forward: Option<Arc<Forwarder>>,
    /// When the caps carried from window to window last started afresh.
    caps_since: Mutex<Option<Timestamp>>,
}

pub use crate::hub::ErrorSink;

/// Where the intake hands the spans it accepted, for assembly into traces: the agent passes
/// the trace store down as this.
pub type TraceSink = Arc<dyn Fn(Vec<TraceSpan>, Timestamp) + Send + Sync>;

/// Services the window's `log_records` keep; further ones count under `other`.
const MAX_LOG_SERVICES: usize = 50;

/// Decoding slots and the requests waiting for one.
#[derive(Debug)]
struct Queue {
    slots: Arc<tokio::sync::Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// One waiting request; leaving the line (served or gone) decrements the count.
struct InLine(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InLine {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Queue {
    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Queue { slots: Arc::new(tokio::sync::Semaphore::new(cores.max(2))), waiting: Arc::default() }
    }

    /// A decoding slot, after waiting in line when all are taken; refused when the line is full.
    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let busy = || Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the intake queue is full; retry");
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= INTAKE_QUEUE {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        let _line = InLine(self.waiting.clone());
        self.slots.clone().acquire_owned().await.map_err(|_| busy())
    }
}

impl std::fmt::Debug for OtlpIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpIntake").field("enabled", &self.cfg.enabled).finish_non_exhaustive()
    }
}

/// What one request's spans came to.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Tally {
    /// Items taken (for metrics: points turned into samples).
    pub(super) accepted: u64,
    /// Items refused before the engine.
    pub(super) rejected: u64,
    /// Accepted points whose sample the engine refused.
    pub(super) refused_by_engine: u64,
    /// Why the first refused item was.
    pub(super) first_reason: Option<String>,
}

impl OtlpIntake {
    /// The intake on `hub`'s engine and clock; an error names what in `[otlp.forward]` cannot
    /// be used.
    pub fn new(hub: Arc<Hub>, cfg: OtlpSection) -> Result<Self, String> {
        let forward = Forwarder::new(&cfg.forward, hub.clock().clone())?.map(Arc::new);
        Ok(OtlpIntake {
            hub,
            cfg,
            window: Mutex::new(SpanWindow::new()),
            queue: Queue::new(),
            stats: Stats::default(),
            logs: Mutex::new(BTreeMap::new()),
            errors: None,
            traces: None,
            forward,
            caps_since: Mutex::new(None),
        })
    }

    /// Hands the errors of error log records to `sink` (None: they are only counted).
    pub fn with_error_sink(mut self, sink: Option<ErrorSink>) -> Self {
        self.errors = sink;
        self
    }

    /// Hands every accepted span to `sink` (None: spans only make metrics).
    pub fn with_trace_sink(mut self, sink: Option<TraceSink>) -> Self {
        self.traces = sink;
        self
    }

    fn count_logs(&self, counts: BTreeMap<(String, &'static str), u64>) {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        for ((service, severity), n) in counts {
            let known = logs.keys().any(|(s, _)| *s == service);
            let services = logs.keys().map(|(s, _)| s).collect::<std::collections::BTreeSet<_>>().len();
            let service = if known || services < MAX_LOG_SERVICES { service } else { "other".to_string() };
            *logs.entry((service, severity)).or_default() += n;
        }
    }

    fn open(&self) -> MutexGuard<'_, SpanWindow> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Token, content type and encoding: everything that is checked before the body is read.
    fn admit(&self, headers: &HeaderMap) -> Result<(Encoding, bool), Refusal> {
        if !self.cfg.tokens.is_empty() {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let token = bearer.or_else(|| headers.get("x-thorbis-token").and_then(|v| v.to_str().ok()));
            let known = token.is_some_and(|t| self.cfg.tokens.iter().any(|k| k.matches(t)));
            if !known {
                let what = if token.is_some() { "unknown token" } else { "missing token (Authorization: Bearer)" };
                return Err(Refusal::new(StatusCode::UNAUTHORIZED, what));
            }
        }
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let encoding = match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
            "application/json" => Encoding::Json,
            _ => {
                return Err(Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Content-Type {ct:?}: application/x-protobuf or application/json"),
                ));
            }
        };
        let gzip = match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim) {
            None | Some("") | Some("identity") => false,
            Some(e) if e.eq_ignore_ascii_case("gzip") => true,
            Some(e) => {
                return Err(Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Content-Encoding {e:?}: gzip or none"),
                ));
            }
        };
        Ok((encoding, gzip))
    }

    /// Inflates (bounded), decodes and counts one body. CPU work: runs off the runtime.
    fn process(
        &self,
        raw: Bytes,
        gzip: bool,
        encoding: Encoding,
        now: Timestamp,
        signal: Signal,
    ) -> Result<Tally, Refusal> {
        let body = if gzip { Bytes::from(inflate(&raw, self.cfg.max_decoded_bytes)?) } else { raw };
        match signal {
            Signal::Traces => {
                let request = decode(&body, encoding, &self.cfg)?;
                drop(body);
                let mut errors = Vec::new();
                let mut accepted = self.traces.as_ref().map(|_| Vec::new());
                let tally = count(&request, &mut self.open(), now, &self.cfg, &mut errors, accepted.as_mut());
                if let (Some(sink), false) = (&self.errors, errors.is_empty()) {
                    sink(&errors, now);
                }
                // The accepted spans move out of the request (no copies), off the window's lock.
                if let (Some(sink), Some(accepted)) = (&self.traces, accepted) {
                    sink(trace_spans(request, &accepted), now);
                }
                Ok(tally)
            }
            Signal::Logs => {
                let request: ExportLogsServiceRequest = decode_as(&body, encoding, "logs")?;
                drop(body);
                too_many(super::logs::records(&request), "log records", &self.cfg)?;
                let read = super::logs::read(&request, now, &self.cfg);
                self.count_logs(read.counts);
                if !read.outcomes.is_empty() {
                    let mut window = self.open();
                    for (kind, service, env, outcome) in &read.outcomes {
                        window.record_outcome(*kind, service, env, outcome);
                    }
                }
                if let (Some(sink), false) = (&self.errors, read.errors.is_empty()) {
                    sink(&read.errors, now);
                }
                Ok(read.tally)
            }
            Signal::Metrics => {
                let request: ExportMetricsServiceRequest = decode_as(&body, encoding, "metrics")?;
                drop(body);
                too_many(super::metrics::points(&request), "data points", &self.cfg)?;
                let (samples, mut tally) = super::metrics::samples(&request, now, &self.cfg);
                // The engine refuses what breaks its rules (its series cap, an out-of-order time).
                for point in &samples {
                    let mut refused = false;
                    for s in point {
                        if let Err(e) = self.hub.ingest(s) {
                            refused = true;
                            tally.first_reason.get_or_insert_with(|| format!("metric {:?}: {e}", s.name));
                        }
                    }
                    tally.refused_by_engine += u64::from(refused);
                }
                Ok(tally)
            }
        }
    }

    /// What `[otlp.forward]` has relayed since the start; None without an endpoint.
    pub fn forward_totals(&self) -> Option<ForwardTotals> {
        self.forward.as_ref().map(|f| f.totals())
    }

    /// The open window's request metrics so far, stamped `at` (the window stays open).
    pub fn open_samples(&self, at: Timestamp) -> Vec<Sample> {
        self.open().samples(at)
    }

    /// Closes the open window: its metrics and the intake's counts, stamped `end`. The next
    /// window inherits the caps (admitted services and routes) for an hour at a time.
    fn close(&self, end: Timestamp) -> Vec<Sample> {
        let closed = {
            let mut since = self.caps_since.lock().unwrap_or_else(|p| p.into_inner());
            let started = *since.get_or_insert(end);
            let mut next = SpanWindow::new();
            let mut open = self.open();
            if end.0 - started.0 < thorbis_obs_core::rum::CAPS_CARRIED_MS {
                next.inherit_caps(&open);
            } else {
                *since = Some(end);
            }
            std::mem::replace(&mut *open, next)
        };
        let mut samples = closed.samples(end);
        let logs = std::mem::take(&mut *self.logs.lock().unwrap_or_else(|p| p.into_inner()));
        for ((service, severity), n) in logs {
            let labels = Labels::from_pairs([("service", service.as_str()), ("severity", severity)]);
            samples.push(Sample::new("log_records", labels, n as f64, end));
        }
        samples.extend(self.stats.take_samples(end));
        if let Some(f) = &self.forward {
            samples.extend(f.take_samples(end));
        }
        samples
    }
}

/// The OTLP signals the intake takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// The OTLP/HTTP path.
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// Decodes an (inflated) body as `T` in its encoding.
fn decode_as<T: Message + Default + serde::de::DeserializeOwned>(
    body: &[u8],
    encoding: Encoding,
    what: &str,
) -> Result<T, Refusal> {
    let bad = |e: String| Refusal::new(StatusCode::BAD_REQUEST, format!("not an OTLP {what} request: {e}"));
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|e| bad(e.to_string())),
        Encoding::Json => serde_json::from_slice::<T>(body).map_err(|e| bad(e.to_string())),
    }
}

/// 413 when a request holds more items than `otlp.max_items_per_request`.
fn too_many(n: usize, what: &str, cfg: &OtlpSection) -> Result<(), Refusal> {
    if n > cfg.max_items_per_request {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{n} {what} in one request; at most {} (otlp.max_items_per_request)", cfg.max_items_per_request),
        ));
    }
    Ok(())
}

/// Decodes a trace request; refuses one with more spans than the config allows.
fn decode(body: &[u8], encoding: Encoding, cfg: &OtlpSection) -> Result<ExportTraceServiceRequest, Refusal> {
    let request: ExportTraceServiceRequest = decode_as(body, encoding, "trace")?;
    let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    too_many(spans, "spans", cfg)?;
    Ok(request)
}

/// Checks each span against the clock and its ids, and counts the good ones into `window`;
/// the exceptions they recorded (`exception` events) go to `errors`, at most
/// [`MAX_ERRORS_PER_REQUEST`]; with `accepted`, whether each span (in order) was accepted.
fn count(
    request: &ExportTraceServiceRequest,
    window: &mut SpanWindow,
    now: Timestamp,
    cfg: &OtlpSection,
    errors: &mut Vec<ServerError>,
    mut accepted: Option<&mut Vec<bool>>,
) -> Tally {
    let newest = now.plus(cfg.max_clock_skew.get());
    let oldest = now.minus(MAX_SPAN_AGE);
    let mut tally = Tally::default();
    for rs in &request.resource_spans {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = str_attr(attrs, &["service.name"]).unwrap_or("unknown_service");
        let env = str_attr(attrs, &["deployment.environment.name", "deployment.environment"]).unwrap_or("");
        let release = str_attr(attrs, &["service.version"]);
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            let checked = check_span(span, oldest, newest, cfg);
            if let Some(a) = accepted.as_deref_mut() {
                a.push(checked.is_ok());
            }
            match checked {
                Ok(duration_ms) => {
                    // A span past a cap is still accepted: span_metrics_capped counts it.
                    window.record(&facts(span, service, env, duration_ms));
                    let error = span.status.as_ref().is_some_and(|s| s.code == 2);
                    if let Some(kind) = outcomes::server_event(&span.name) {
                        window.record_outcome(kind, service, env, outcome(kind, &span.attributes, error));
                    }
                    for e in span.events.iter().filter(|e| e.name == "exception") {
                        if errors.len() >= MAX_ERRORS_PER_REQUEST {
                            break;
                        }
                        let at = Origin {
                            service,
                            env,
                            release,
                            route: str_attr(&span.attributes, &["http.route", "next.route"]),
                            trace_id: &span.trace_id,
                            span_id: &span.span_id,
                        };
                        let fallback = span.status.as_ref().map(|s| s.message.as_str()).filter(|m| !m.is_empty());
                        errors.push(exception_error(&e.attributes, fallback, "ERROR", &at));
                    }
                    tally.accepted += 1;
                }
                Err(why) => {
                    tally.rejected += 1;
                    tally.first_reason.get_or_insert(why);
                }
            }
        }
    }
    tally
}

/// An attribute value as text: strings as they are, numbers and booleans formatted, arrays
/// and maps as JSON-ish lists.
fn value_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => thorbis_obs_core::traces::hex(b),
        Some(Value::StringValueStrindex(i)) => format!("#{i}"),
        Some(Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().map(|v| value_text(Some(v))).collect::<Vec<_>>().join(", "))
        }
        Some(Value::KvlistValue(m)) => format!(
            "{{{}}}",
            m.values
                .iter()
                .map(|kv| format!("{}: {}", kv.key, value_text(kv.value.as_ref())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The trace store's copies of the spans `accepted` marks (in the request's order), moved out
/// of the request.
fn trace_spans(request: ExportTraceServiceRequest, accepted: &[bool]) -> Vec<TraceSpan> {
    let mut out = Vec::with_capacity(accepted.iter().filter(|a| **a).count());
    let mut marks = accepted.iter();
    for rs in request.resource_spans {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = str_attr(attrs, &["service.name"]).unwrap_or("unknown_service").to_string();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            if marks.next().copied().unwrap_or(false) {
                out.push(trace_span(span, &service));
            }
        }
    }
    out
}

/// Attributes as text pairs, the keys moved.
fn text_pairs(a: Vec<KeyValue>) -> Vec<(String, String)> {
    a.into_iter()
        .map(|kv| {
            let v = match kv.value.and_then(|v| v.value) {
                Some(Value::StringValue(s)) => s,
                other => value_text(other.map(|v| AnyValue { value: Some(v) }).as_ref()),
            };
            (kv.key, v)
        })
        .collect()
}

/// The trace store's copy of an accepted span of `service`.
fn trace_span(span: Span, service: &str) -> TraceSpan {
    let code = int_attr(&span.attributes, &["http.response.status_code", "http.status_code"]);
    let route = str_attr(&span.attributes, &["http.route", "next.route"]).map(str::to_string);
    let (error, status_message) = match span.status {
        Some(s) => (s.code == 2, s.message),
        None => (false, String::new()),
    };
    TraceSpan {
        trace_id: <[u8; 16]>::try_from(span.trace_id.as_slice()).unwrap_or_default(),
        span_id: <[u8; 8]>::try_from(span.span_id.as_slice()).unwrap_or_default(),
        parent: <[u8; 8]>::try_from(span.parent_span_id.as_slice()).ok().filter(|p| p.iter().any(|b| *b != 0)),
        service: service.to_string(),
        name: span.name,
        kind: u8::try_from(span.kind).unwrap_or(0),
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        error: error || code.is_some_and(|c| (500..600).contains(&c)),
        status_message,
        route,
        attributes: text_pairs(span.attributes),
        events: span
            .events
            .into_iter()
            .map(|e| SpanEvent { name: e.name, time_ns: e.time_unix_nano, attributes: text_pairs(e.attributes) })
            .collect(),
    }
}

/// The outcome label of a payment or login span or record: its status attribute, else
/// `failed` when the span's status is ERROR.
pub(super) fn outcome(kind: outcomes::Outcome, attrs: &[KeyValue], error: bool) -> &'static str {
    match (outcomes::classify(str_attr(attrs, kind.status_keys())), error) {
        ("unknown", true) => "failed",
        (label, _) => label,
    }
}

/// Inflates a gzip body up to `max` bytes (see [`crate::api::inflate_gzip`]).
fn inflate(raw: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    crate::api::inflate_gzip(raw, max, "otlp.max_decoded_bytes").map_err(|e| Refusal::new(e.status, e.message))
}

/// A string attribute: the first of `keys` present with a string value.
pub(super) fn str_attr<'a>(attrs: &'a [KeyValue], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| {
        attrs.iter().find(|a| a.key == *k).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    })
}

/// An integer attribute (an int, or a string of digits as some SDKs send status codes).
pub(super) fn int_attr(attrs: &[KeyValue], keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| {
        attrs.iter().find(|a| a.key == *k).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            Value::StringValue(s) => s.trim().parse().ok(),
            Value::DoubleValue(d) if d.is_finite() => Some(*d as i64),
            _ => None,
        })
    })
}

/// The bytes of an attribute value: a string's or bytes' length, an array's or map's values
/// summed (with their keys).
pub(super) fn value_bytes(v: Option<&AnyValue>) -> usize {
    match v.and_then(|v| v.value.as_ref()) {
        None
        | Some(Value::BoolValue(_) | Value::IntValue(_) | Value::DoubleValue(_) | Value::StringValueStrindex(_)) => 8,
        Some(Value::StringValue(s)) => s.len(),
        Some(Value::BytesValue(b)) => b.len(),
        Some(Value::ArrayValue(a)) => a.values.iter().map(|v| value_bytes(Some(v))).sum(),
        Some(Value::KvlistValue(m)) => m.values.iter().map(|kv| kv.key.len() + value_bytes(kv.value.as_ref())).sum(),
    }
}

/// Whether `attrs` are within `otlp.max_attributes_per_item` and
/// `otlp.max_attribute_value_bytes`; else why not, naming `what` and the attribute.
pub(super) fn check_attributes(attrs: &[KeyValue], what: &dyn Fn() -> String, cfg: &OtlpSection) -> Result<(), String> {
    if attrs.len() > cfg.max_attributes_per_item {
        return Err(format!(
            "{}: {} attributes; at most {} (otlp.max_attributes_per_item)",
            what(),
            attrs.len(),
            cfg.max_attributes_per_item
        ));
    }
    match attrs.iter().map(|kv| (kv, value_bytes(kv.value.as_ref()))).find(|(_, n)| *n > cfg.max_attribute_value_bytes)
    {
        Some((kv, n)) => Err(format!(
            "{}: attribute {:?} of {n} bytes; at most {} (otlp.max_attribute_value_bytes)",
            what(),
            cut(&kv.key),
            cfg.max_attribute_value_bytes
        )),
        None => Ok(()),
    }
}

/// The span's duration in ms when it is one to count; else why not.
fn check_span(span: &Span, oldest: Timestamp, newest: Timestamp, cfg: &OtlpSection) -> Result<f64, String> {
    let what = || format!("span {:?}", cut(&span.name));
    check_attributes(&span.attributes, &what, cfg)?;
    for e in &span.events {
        check_attributes(&e.attributes, &|| format!("span {:?}, event {:?}", cut(&span.name), cut(&e.name)), cfg)?;
    }
    let zero = |b: &[u8]| b.iter().all(|x| *x == 0);
    if span.trace_id.len() != 16 || zero(&span.trace_id) {
        return Err(format!("span {:?}: trace id must be 16 bytes, not all zero", cut(&span.name)));
    }
    if span.span_id.len() != 8 || zero(&span.span_id) {
        return Err(format!("span {:?}: span id must be 8 bytes, not all zero", cut(&span.name)));
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(format!("span {:?}: ends before it starts", cut(&span.name)));
    }
    let end_ms = i64::try_from(span.end_time_unix_nano / 1_000_000).unwrap_or(i64::MAX);
    if end_ms > newest.0 {
        return Err(format!("span {:?}: ends ahead of the agent's clock (otlp.max_clock_skew)", cut(&span.name)));
    }
    if end_ms < oldest.0 {
        return Err(format!("span {:?}: ended more than an hour ago", cut(&span.name)));
    }
    Ok((span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6)
}

/// At most 64 characters of a name, for messages.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// What the window reads off a span; OpenTelemetry's current attribute names first, then the
/// older ones SDKs still send.
fn facts<'a>(span: &'a Span, service: &'a str, env: &'a str, duration_ms: f64) -> SpanFacts<'a> {
    let a = span.attributes.as_slice();
    let kind = match span.kind {
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        _ => SpanKind::Other,
    };
    SpanFacts {
        service,
        env,
        kind,
        name: &span.name,
        route: str_attr(a, &["http.route"]),
        path: str_attr(a, &["url.path", "http.target"]),
        method: str_attr(a, &["http.request.method", "http.method"]),
        status_code: int_attr(a, &["http.response.status_code", "http.status_code"]),
        error: span.status.as_ref().is_some_and(|s| s.code == 2),
        duration_ms,
        db_system: str_attr(a, &["db.system.name", "db.system"]),
        db_operation: str_attr(a, &["db.operation.name", "db.operation"]),
        db_collection: str_attr(a, &["db.collection.name", "db.sql.table"]),
        peer: str_attr(a, &["server.address", "net.peer.name"]),
    }
}

/// An answer in the request's encoding (protobuf when it could not be told).
fn answer(encoding: Encoding, status: StatusCode, body: Vec<u8>) -> Response {
    let ct = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

fn refuse(encoding: Encoding, r: &Refusal) -> Response {
    let code = match r.status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        503 | 429 => 14,      // UNAVAILABLE
        _ => 2,               // UNKNOWN
    };
    let body = match encoding {
        Encoding::Protobuf => RpcStatus { code, message: r.message.clone() }.encode_to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&serde_json::json!({ "code": code, "message": r.message })).unwrap_or_default()
        }
    };
    let mut resp = answer(encoding, r.status, body);
    if matches!(r.status.as_u16(), 429 | 503) {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// `POST /v1/traces`.
async fn traces(State(intake): State<Arc<OtlpIntake>>, headers: HeaderMap, body: Body) -> Response {
    export(intake, headers, body, Signal::Traces).await
}

/// `POST /v1/logs`.
async fn logs(State(intake): State<Arc<OtlpIntake>>, headers: HeaderMap, body: Body) -> Response {
    export(intake, headers, body, Signal::Logs).await
}

/// `POST /v1/metrics`.
async fn metrics(State(intake): State<Arc<OtlpIntake>>, headers: HeaderMap, body: Body) -> Response {
    export(intake, headers, body, Signal::Metrics).await
}

/// One export request of `signal`, answered as OTLP/HTTP says.
async fn export(intake: Arc<OtlpIntake>, headers: HeaderMap, body: Body, signal: Signal) -> Response {
    let guess = if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json")) {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    match intake_request(&intake, &headers, body, signal).await {
        Ok((encoding, tally)) => {
            let rejected = tally.rejected + tally.refused_by_engine;
            let (a, r) = match signal {
                Signal::Traces => (&intake.stats.accepted, &intake.stats.rejected),
                Signal::Metrics => (&intake.stats.points_accepted, &intake.stats.points_rejected),
                Signal::Logs => (&intake.stats.records_accepted, &intake.stats.records_rejected),
            };
            a.fetch_add(tally.accepted.saturating_sub(tally.refused_by_engine), Ordering::Relaxed);
            r.fetch_add(rejected, Ordering::Relaxed);
            if rejected > 0 {
                intake.stats.requests[6].fetch_add(1, Ordering::Relaxed);
            } else {
                intake.stats.outcome(StatusCode::OK);
            }
            let n = i64::try_from(rejected).unwrap_or(i64::MAX);
            let message = tally.first_reason.clone().unwrap_or_default();
            let body = match signal {
                Signal::Traces => encode(
                    encoding,
                    &ExportTraceServiceResponse {
                        partial_success: (n > 0)
                            .then_some(ExportTracePartialSuccess { rejected_spans: n, error_message: message }),
                    },
                ),
                Signal::Logs => encode(
                    encoding,
                    &ExportLogsServiceResponse {
                        partial_success: (n > 0).then_some(ExportLogsPartialSuccess {
                            rejected_log_records: n,
                            error_message: message.clone(),
                        }),
                    },
                ),
                Signal::Metrics => encode(
                    encoding,
                    &ExportMetricsServiceResponse {
                        partial_success: (n > 0)
                            .then_some(ExportMetricsPartialSuccess { rejected_data_points: n, error_message: message }),
                    },
                ),
            };
            answer(encoding, StatusCode::OK, body)
        }
        Err(r) => {
            intake.stats.outcome(r.status);
            tracing::debug!(status = r.status.as_u16(), error = %r.message, "OTLP request refused");
            refuse(guess, &r)
        }
    }
}

/// A response message in the request's encoding.
fn encode<T: Message + serde::Serialize>(encoding: Encoding, msg: &T) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    }
}

async fn intake_request(
    intake: &Arc<OtlpIntake>,
    headers: &HeaderMap,
    body: Body,
    signal: Signal,
) -> Result<(Encoding, Tally), Refusal> {
    let (encoding, gzip) = intake.admit(headers)?;
    let _slot = intake.queue.enter().await?;
    let raw = api::read_body(headers, body, intake.cfg.max_body_bytes, api::BODY_TIMEOUT)
        .await
        .map_err(|e| Refusal::new(e.status, e.message))?;
    let now = intake.hub.now();
    let this = intake.clone();
    let relay = intake.forward.as_ref().map(|_| Relay::new(signal.path(), headers, raw.clone()));
    let tally = api::blocking(move || this.process(raw, gzip, encoding, now, signal))
        .await
        .map_err(|_| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "the decoding failed"))??;
    if let (Some(f), Some(r)) = (&intake.forward, relay) {
        f.push(r);
    }
    Ok((encoding, tally))
}

/// Closes a window every `window`, aligned to multiples of its length, pushing its samples
/// into the engine, until `stop`.
async fn run_windows(intake: Arc<OtlpIntake>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let w = i64::try_from(intake.cfg.window.get().as_millis()).unwrap_or(60_000).max(1000);
    loop {
        let t = intake.hub.now().0;
        let end = (t.div_euclid(w) + 1) * w;
        let wait = Duration::from_millis(u64::try_from(end - t).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        let samples = intake.close(Timestamp(end));
        let mut refused = 0;
        for s in &samples {
            if let Err(e) = intake.hub.ingest(s) {
                refused += 1;
                tracing::debug!(error = %e, metric = %s.name, "span metric refused by the engine");
            }
        }
        tracing::debug!(samples = samples.len(), refused, "span window closed");
    }
}

#[async_trait::async_trait]
impl Component for OtlpIntake {
    fn name(&self) -> &'static str {
        "otlp"
    }

    /// `POST /v1/traces`, `POST /v1/metrics`, `POST /v1/logs`.
    fn public_routes(self: Arc<Self>) -> Router {
        if !self.cfg.enabled {
            return Router::new();
        }
        Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/metrics", post(metrics))
            .route("/v1/logs", post(logs))
            .with_state(self)
    }

    /// `otlp.listen`, when set.
    fn listen(&self) -> Option<std::net::SocketAddr> {
        if !self.cfg.enabled {
            return None;
        }
        self.cfg.listen.parse().ok()
    }

    async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        if self.cfg.enabled {
            if let Some(f) = &self.forward {
                f.start(&stop);
            }
            run_windows(self, stop).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn valid_body() -> Vec<u8> {
        let now_ns = 1_800_000_000_000_000_000u64;
        let kv = |k: &str, v: Value| KeyValue {
            key: k.into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(v) }),
            ..KeyValue::default()
        };
        let span = |i: u8| Span {
            trace_id: vec![i + 1; 16],
            span_id: vec![i + 1; 8],
            name: format!("GET /r/{i}"),
            kind: 2,
            start_time_unix_nano: now_ns - 5_000_000,
            end_time_unix_nano: now_ns,
            attributes: vec![kv("http.response.status_code", Value::IntValue(200))],
            ..Span::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: vec![kv("service.name", Value::StringValue("svc".into()))],
                    ..Default::default()
                }),
                scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                    spans: (0..20).map(span).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    /// Random bytes and mutated requests: decoding either refuses with a 4xx or counts what it
    /// decoded, every span accepted or rejected exactly once; never a panic.
    fn survives(body: Vec<u8>, encoding: Encoding) {
        let cfg = OtlpSection::default();
        let now = Timestamp(1_800_000_000_000);
        match decode(&body, encoding, &cfg) {
            Err(r) => assert!(r.status.is_client_error(), "{:?}", r),
            Ok(req) => {
                let spans: usize = req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
                let mut w = SpanWindow::new();
                let t = count(&req, &mut w, now, &cfg, &mut Vec::new(), None);
                assert_eq!((t.accepted + t.rejected) as usize, spans);
                assert!(w.samples(now).iter().all(|s| s.value.is_finite()));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            survives(body.clone(), Encoding::Protobuf);
            survives(body, Encoding::Json);
        }

        #[test]
        fn mutated_requests_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
            let mut body = valid_body();
            for (at, byte) in flips {
                let i = at.index(body.len());
                body[i] = byte;
            }
            let keep = cut.index(body.len() + 1);
            body.truncate(keep.max(1));
            survives(body, Encoding::Protobuf);
        }
    }

    #[test]
    fn the_valid_body_counts_all_its_spans() {
        let cfg = OtlpSection::default();
        let req = decode(&valid_body(), Encoding::Protobuf, &cfg).expect("valid");
        let mut w = SpanWindow::new();
        let t = count(&req, &mut w, Timestamp(1_800_000_000_000), &cfg, &mut Vec::new(), None);
        assert_eq!((t.accepted, t.rejected), (20, 0));
    }

    #[test]
    fn exception_events_become_errors_with_their_trace_and_route() {
        use opentelemetry_proto::tonic::common::v1::AnyValue;
        use opentelemetry_proto::tonic::trace::v1::span::Event;
        let cfg = OtlpSection::default();
        let mut req = decode(&valid_body(), Encoding::Protobuf, &cfg).expect("valid");
        let text = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(v.into())) }),
            ..KeyValue::default()
        };
        let span = &mut req.resource_spans[0].scope_spans[0].spans[3];
        span.attributes.push(text("http.route", "/api/invoices/[id]"));
        span.events.push(Event { name: "log".into(), ..Event::default() });
        span.events.push(Event {
            name: "exception".into(),
            attributes: vec![
                text("exception.type", "TypeError"),
                text("exception.message", "Cannot read properties of undefined (reading 'total')"),
                text("exception.stacktrace", "TypeError: Cannot read properties\n    at GET (/app/.next/server/app/api/invoices/[id]/route.js:1:99)"),
            ],
            ..Event::default()
        });
        let mut errors = Vec::new();
        let mut w = SpanWindow::new();
        count(&req, &mut w, Timestamp(1_800_000_000_000), &cfg, &mut errors, None);
        assert_eq!(errors.len(), 1, "only the exception event: {errors:?}");
        let e = &errors[0];
        assert_eq!(e.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(e.route, "/api/invoices/[id]");
        assert_eq!(e.tags.get("trace_id").map(String::as_str), Some("04".repeat(16).as_str()));
        assert!(e.stack.as_deref().is_some_and(|s| s.contains("route.js")));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 50 << 20]).expect("write");
        let bomb = gz.finish().expect("finish");
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let e = inflate(&bomb, 1 << 20).expect_err("over the cap");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(inflate(b"not gzip", 1 << 20).is_err_and(|e| e.status == StatusCode::BAD_REQUEST));
    }

    #[test]
    fn spans_are_checked_against_the_clock_and_their_ids() {
        let now = Timestamp::from_secs(1_800_000_000);
        let ns = |t: Timestamp| t.0 as u64 * 1_000_000;
        let good = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /x".into(),
            start_time_unix_nano: ns(now) - 250_000_000,
            end_time_unix_nano: ns(now),
            ..Span::default()
        };
        let (oldest, newest) = (now.minus(MAX_SPAN_AGE), now.plus(Duration::from_secs(300)));
        let cfg = OtlpSection::default();
        assert_eq!(check_span(&good, oldest, newest, &cfg), Ok(250.0));
        let text = |k: &str, n: usize| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(Value::StringValue("x".repeat(n))) }),
            ..KeyValue::default()
        };
        let long = Span { attributes: vec![text("db.query.text", (64 << 10) + 1)], ..good.clone() };
        let why = check_span(&long, oldest, newest, &cfg).expect_err("too long");
        assert!(why.contains("\"db.query.text\" of 65537 bytes") && why.contains("max_attribute_value_bytes"), "{why}");
        let many = Span { attributes: (0..129).map(|i| text(&format!("k{i}"), 1)).collect(), ..good.clone() };
        assert!(check_span(&many, oldest, newest, &cfg).is_err_and(|w| w.contains("129 attributes")));
        let nested = AnyValue {
            value: Some(Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue { value: Some(Value::StringValue("y".repeat(40 << 10))) }; 2],
            })),
        };
        let arrays = Span {
            attributes: vec![KeyValue { key: "a".into(), value: Some(nested), ..KeyValue::default() }],
            ..good.clone()
        };
        assert!(check_span(&arrays, oldest, newest, &cfg).is_err(), "an array counts all its values");
        assert_eq!(
            check_span(&Span { attributes: vec![text("ok", 64 << 10)], ..good.clone() }, oldest, newest, &cfg),
            Ok(250.0)
        );
        let bad = [
            Span { trace_id: vec![0; 16], ..good.clone() },
            Span { span_id: vec![1; 4], ..good.clone() },
            Span { start_time_unix_nano: ns(now) + 1, ..good.clone() },
            Span { end_time_unix_nano: ns(now) + 3_600_000_000_000, ..good.clone() },
            Span { start_time_unix_nano: 0, end_time_unix_nano: 1, ..good.clone() },
        ];
        for b in bad {
            assert!(check_span(&b, oldest, newest, &cfg).is_err(), "{b:?}");
        }
    }
}
