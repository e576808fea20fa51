//! The trace store (feature `otlp`): spans the OTLP intake accepted are assembled by trace id,
//! tail-sampled (core's [`thorbis_obs_core::traces`]: every trace with an error, the slowest
//! few per route and window, a share of the rest) and the kept traces stored whole in the
//! agent's store (SQLite, or PostgreSQL when shared), compressed, with retention by age and a
//! total size cap. `GET /api/v1/traces` lists them, `GET /api/v1/traces/{trace_id}` returns one
//! (also as OTLP JSON, `?format=otlp`); `/traces` and `/traces/{trace_id}` are their pages (the
//! list with a duration histogram, the waterfall; see `pages`).
//!
//! The intake does not know this component: the agent hands it a sink that feeds the buffer
//! (`otlp::TraceSink`), as it hands the collector's error groups down; the collector gets one
//! too (`collector::SpanSink`) for the browser SDK's spans and the traces its errors point at.
//!
//! `[traces]` is read whatever the features; without `otlp` there is no trace store.

#[cfg(feature = "otlp")]
mod pages;
#[cfg(feature = "otlp")]
mod service;

#[cfg(feature = "otlp")]
pub use service::TraceService;

use serde::Deserialize;
use thorbis_obs_core::time::HumanDuration;

/// `[traces]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesSection {
    /// Assemble, sample and store traces. Default true.
    pub enabled: bool,
    /// A trace is decided once no span of it arrived for this long. Default 10 s.
    pub decision_wait: HumanDuration,
    /// Spans waiting for their trace's decision, at most; beyond, the oldest traces are
    /// decided early. Default 200,000.
    pub max_buffer_spans: usize,
    /// Bytes of spans waiting (allocations counted), at most (same rule). Default 32 MiB: about
    /// 55,000 spans; size it as spans per second x decision wait x 600 bytes.
    pub max_buffer_bytes: usize,
    /// Spans of one trace, at most; further ones are dropped and counted. Default 10,000.
    pub max_spans_per_trace: usize,
    /// Keep every trace with an error span. Default true.
    pub keep_errors: bool,
    /// Keep the slowest this many traces per (service, route) per window. Default 5.
    pub slowest_per_route: usize,
    /// Keep this share of the other traces, 0..=1. Default 0.01.
    pub probability: f64,
    /// The window of the slowest-per-route policy. Default 60 s.
    pub window: HumanDuration,
    /// Keep every trace a sampled browser session's request started (the `linked` policy;
    /// the session sample rate, `sessionSampleRate` in the SDK, is then the share kept).
    /// Traces a browser error points at are kept either way. Default true.
    pub keep_session_traces: bool,
    /// Stored traces are deleted this long after they started. Default 72 h.
    pub retention: HumanDuration,
    /// Stored spans (compressed) in all, at most; the oldest traces go first. Default 1 GiB.
    pub max_store_bytes: u64,
}

impl Default for TracesSection {
    fn default() -> Self {
        TracesSection {
            enabled: true,
            decision_wait: HumanDuration::from_secs(10),
            max_buffer_spans: 200_000,
            max_buffer_bytes: 32 << 20,
            max_spans_per_trace: 10_000,
            keep_errors: true,
            slowest_per_route: 5,
            probability: 0.01,
            window: HumanDuration::from_secs(60),
            keep_session_traces: true,
            retention: HumanDuration::from_secs(72 * 3600),
            max_store_bytes: 1 << 30,
        }
    }
}

/// What is wrong with `[traces]`, as (path, problem).
pub fn problems(c: &TracesSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = |path: &str, why: &str| out.push((format!("traces.{path}"), why.to_string()));
    if !(1.0..=600.0).contains(&c.decision_wait.get().as_secs_f64()) {
        p("decision_wait", "between 1s and 10m");
    }
    if !(1_000..=10_000_000).contains(&c.max_buffer_spans) {
        p("max_buffer_spans", "between 1,000 and 10,000,000");
    }
    if !((1 << 20)..=(16 << 30)).contains(&c.max_buffer_bytes) {
        p("max_buffer_bytes", "between 1 MiB and 16 GiB");
    }
    if !(1..=1_000_000).contains(&c.max_spans_per_trace) {
        p("max_spans_per_trace", "between 1 and 1,000,000");
    }
    if c.slowest_per_route > 1_000 {
        p("slowest_per_route", "at most 1,000");
    }
    if !(0.0..=1.0).contains(&c.probability) {
        p("probability", "between 0 and 1");
    }
    if !(1.0..=86_400.0).contains(&c.window.get().as_secs_f64()) {
        p("window", "between 1s and 24h");
    }
    if c.retention.get().as_secs() < 60 {
        p("retention", "at least 1m");
    }
    if c.max_store_bytes < (1 << 20) {
        p("max_store_bytes", "at least 1 MiB");
    }
    out
}

/// What the trace store writes into the engine (see [`thorbis_obs_core::rules::coverage`]).
pub fn producers(c: &TracesSection) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    if !c.enabled || !cfg!(feature = "otlp") {
        return Vec::new();
    }
    vec![thorbis_obs_core::rules::coverage::Producer::new(
        "trace store",
        ["trace_decisions", "trace_buffer_spans", "trace_buffer_traces", "trace_spans_dropped"],
    )]
}
