//! The OTLP/HTTP intake (feature `otlp`): `POST /v1/traces` takes the spans that Next.js
//! (`@vercel/otel`) and Rust services (`opentelemetry-otlp`) export, in protobuf or in OTLP's
//! JSON mapping, gzip or not, and turns them into request metrics per window (core's
//! [`SpanWindow`](thorbis_obs_core::spans::SpanWindow): `http_request_duration`,
//! `http_request_error_rate`, `http_requests`, `db_query_duration`,
//! `external_request_duration`), which the spec's rules read.
//!
//! What a request goes through, in order:
//! 1. token (`Authorization: Bearer` or `X-Thorbis-Token`) when `otlp.tokens` is set: 401;
//! 2. `Content-Type` `application/x-protobuf` or `application/json`, `Content-Encoding`
//!    `gzip` or none: 415;
//! 3. the body: at most `max_body_bytes` as sent and `max_decoded_bytes` once inflated (a
//!    gzip bomb stops at the cap, it is never inflated whole): 413;
//! 4. decoding with opentelemetry-proto's prost messages (or serde for JSON): 400 with the
//!    decoder's message; at most `max_items_per_request` spans or data points: 413;
//! 5. (before 3, in fact: before the body is read) a decoding slot: as many as cores decode at
//!    once and at most 64 requests wait in line; beyond, 503 with `Retry-After`, which
//!    exporters retry;
//! 6. each span: ids of the right length, an end after its start, within the last hour and
//!    not ahead of the agent's clock by more than `max_clock_skew`; a span that is not is
//!    rejected alone, counted in the answer's `partial_success` with the first reason.
//!
//! Answers follow OTLP/HTTP: 200 with `ExportTraceServiceResponse` in the request's encoding;
//! errors as a `google.rpc.Status` (protobuf) or `{"code","message"}` (JSON).
//!
//! `POST /v1/metrics` takes OTLP metrics: gauges, sums, histograms and summaries become engine
//! samples named as the OpenTelemetry Collector's Prometheus exporter names them (see
//! `metrics`); a point is rejected alone in the same way.
//!
//! `POST /v1/logs` takes OTLP log records: counted per service and severity (`log_records`),
//! and those at ERROR or above or with `exception.*` attributes handed to the error groups
//! (the collector's, beside the browser's; the agent passes them down as an [`ErrorSink`])
//! with their trace id (see `logs`).
//!
//! `[otlp.forward]` relays every accepted request, unchanged, to another OTLP/HTTP receiver
//! (an OpenTelemetry Collector, Tempo, Jaeger, a Datadog Agent) through a bounded queue with
//! retries; the intake never waits for it (see `forward`).
//!
//! `[otlp]` is read whatever the features; without the `otlp` feature there is no intake.

#[cfg(feature = "otlp")]
mod forward;
#[cfg(feature = "otlp")]
mod intake;
#[cfg(feature = "otlp")]
mod logs;
#[cfg(feature = "otlp")]
mod metrics;

#[cfg(feature = "otlp")]
pub use forward::ForwardTotals;
#[cfg(feature = "otlp")]
pub use intake::{ErrorSink, OtlpIntake, RpcStatus, TraceSink};

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::time::HumanDuration;

/// `[otlp]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSection {
    /// Serve `POST /v1/traces` on the agent's HTTP listener. Default true.
    pub enabled: bool,
    /// An address of its own for the intake too, such as `0.0.0.0:4318` (OTLP/HTTP's port, so
    /// exporters work with their defaults); it serves only the intake and takes any `Host`.
    /// Empty (default): the agent's listener only.
    pub listen: String,
    /// Tokens an exporter must send (`Authorization: Bearer <token>` or `X-Thorbis-Token`);
    /// empty: none needed (fine on loopback; set them before the intake faces a network).
    pub tokens: Vec<Secret>,
    /// Request metrics are computed per window of this length. Default 60 s.
    pub window: HumanDuration,
    /// A request body as sent, at most. Default 4 MiB.
    pub max_body_bytes: usize,
    /// A request body once inflated, at most. Default 16 MiB.
    pub max_decoded_bytes: usize,
    /// Spans, or metric data points, in one request, at most. Default 10,000 (SDKs send
    /// batches of 512 spans).
    pub max_items_per_request: usize,
    /// How far ahead of the agent's clock a span may end. Default 5 minutes.
    pub max_clock_skew: HumanDuration,
    /// Attributes on one span, span event, log record or data point, at most; an item with
    /// more is rejected alone. Default 128 (the OpenTelemetry SDKs' own default limit).
    pub max_attributes_per_item: usize,
    /// One attribute value (a string, bytes, or an array or map in all), at most; an item with
    /// a longer one is rejected alone. Default 64 KiB.
    pub max_attribute_value_bytes: usize,
    /// `[otlp.forward]`: relay accepted requests to another receiver.
    pub forward: ForwardSection,
}

/// `[otlp.forward]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardSection {
    /// The receiver's OTLP/HTTP base URL, such as `http://otel-collector:4318`; each request goes
    /// to `<endpoint>/v1/traces`, `/v1/metrics` or `/v1/logs` as it came. Empty (default): off.
    pub endpoint: String,
    /// Headers sent with every relayed request (an API key, `Authorization`), as secrets.
    pub headers: BTreeMap<String, Secret>,
    /// One attempt, at most. Default 10 s.
    pub timeout: HumanDuration,
    /// Requests relayed at once. Default 4.
    pub concurrency: usize,
    /// Requests waiting to be relayed, at most; a request arriving at a full queue drops the
    /// oldest waiting one (counted). Default 1,000.
    pub max_queue_requests: usize,
    /// Bytes waiting, at most (same rule). Default 64 MiB.
    pub max_queue_bytes: usize,
    /// Retries of a failed attempt (timeouts, connection errors, 408, 429, 5xx; Retry-After
    /// honoured). Default: from 1 s doubling to 30 s, given up after 5 minutes, as the
    /// OpenTelemetry Collector's exporters do. A partial `[otlp.forward.retry]` takes the
    /// channels' defaults for the fields it leaves out.
    pub retry: DeliveryPolicy,
}

impl Default for ForwardSection {
    fn default() -> Self {
        ForwardSection {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            timeout: HumanDuration::from_secs(10),
            concurrency: 4,
            max_queue_requests: 1000,
            max_queue_bytes: 64 << 20,
            retry: DeliveryPolicy {
                initial_backoff: HumanDuration::from_secs(1),
                max_backoff: HumanDuration::from_secs(30),
                multiplier: 2.0,
                jitter: 0.2,
                max_attempts: 100,
                max_age: HumanDuration::from_secs(300),
            },
        }
    }
}

impl Default for OtlpSection {
    fn default() -> Self {
        OtlpSection {
            enabled: true,
            listen: String::new(),
            tokens: Vec::new(),
            window: HumanDuration::from_secs(60),
            max_body_bytes: 4 << 20,
            max_decoded_bytes: 16 << 20,
            max_items_per_request: 10_000,
            max_clock_skew: HumanDuration::from_secs(300),
            max_attributes_per_item: 128,
            max_attribute_value_bytes: 64 << 10,
            forward: ForwardSection::default(),
        }
    }
}

/// What the intake writes into the engine (see [`thorbis_obs_core::rules::coverage`]); the
/// names of the OTLP metrics exporters send are not known ahead.
pub fn producers(c: &OtlpSection) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    use thorbis_obs_core::rules::coverage::Producer;
    if !c.enabled || !cfg!(feature = "otlp") {
        return Vec::new();
    }
    vec![
        Producer::new(
            "otlp intake (spans, /v1/traces)",
            [
                "http_request_duration*",
                "http_request_error_rate",
                "http_requests",
                "http_service_*",
                "db_query_*",
                "db_queries",
                "external_request_*",
                "external_requests",
                "span_metrics_capped",
                "otlp_*",
            ],
        ),
        Producer::new(
            "otlp intake (payment and login spans and log records)",
            ["payments", "payment_failure_rate", "logins", "failed_login_rate"],
        ),
        Producer::new("otlp intake (logs, /v1/logs)", ["log_records"]),
    ]
}

/// What is wrong with `[otlp]`, as (path, problem).
pub fn problems(c: &OtlpSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let w = c.window.get().as_secs_f64();
    if !(1.0..=3600.0).contains(&w) {
        out.push(("otlp.window".into(), "between 1s and 1h".into()));
    }
    if !(1024..=(64 << 20)).contains(&c.max_body_bytes) {
        out.push(("otlp.max_body_bytes".into(), "between 1 KiB and 64 MiB".into()));
    }
    if c.max_decoded_bytes < c.max_body_bytes || c.max_decoded_bytes > (256 << 20) {
        out.push(("otlp.max_decoded_bytes".into(), "at least max_body_bytes and at most 256 MiB".into()));
    }
    if !c.listen.is_empty() && c.listen.parse::<std::net::SocketAddr>().is_err() {
        out.push(("otlp.listen".into(), format!("{:?} is not an address like 0.0.0.0:4318", c.listen)));
    }
    if c.max_items_per_request == 0 {
        out.push(("otlp.max_items_per_request".into(), "at least 1".into()));
    }
    if !(1..=10_000).contains(&c.max_attributes_per_item) {
        out.push(("otlp.max_attributes_per_item".into(), "between 1 and 10,000".into()));
    }
    if !(256..=c.max_decoded_bytes).contains(&c.max_attribute_value_bytes) {
        out.push(("otlp.max_attribute_value_bytes".into(), "between 256 and max_decoded_bytes".into()));
    }
    for (i, t) in c.tokens.iter().enumerate() {
        if t.expose().trim().is_empty() {
            out.push((format!("otlp.tokens[{i}]"), "must not be empty".into()));
        }
    }
    let f = &c.forward;
    if !f.endpoint.is_empty() && !crate::secret::is_http_url(&f.endpoint) {
        let shown = crate::secret::redact_url(&f.endpoint);
        out.push(("otlp.forward.endpoint".into(), format!("{shown:?} is not an http:// or https:// URL")));
    }
    for (name, value) in &f.headers {
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            out.push((format!("otlp.forward.headers.{name}"), "not a valid header name".into()));
        }
        if value.expose().bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            out.push((format!("otlp.forward.headers.{name}"), "the value holds a line break or NUL".into()));
        }
    }
    let t = f.timeout.get().as_secs_f64();
    if !(0.1..=300.0).contains(&t) {
        out.push(("otlp.forward.timeout".into(), "between 100ms and 5m".into()));
    }
    if !(1..=64).contains(&f.concurrency) {
        out.push(("otlp.forward.concurrency".into(), "between 1 and 64".into()));
    }
    if !(1..=100_000).contains(&f.max_queue_requests) {
        out.push(("otlp.forward.max_queue_requests".into(), "between 1 and 100,000".into()));
    }
    if !((1 << 20)..=(4 << 30)).contains(&f.max_queue_bytes) {
        out.push(("otlp.forward.max_queue_bytes".into(), "between 1 MiB and 4 GiB".into()));
    }
    out
}
