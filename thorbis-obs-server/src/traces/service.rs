//! The trace store's runtime: the buffer and the sampler behind one lock, the loop that decides
//! quiet traces every second and stores the kept ones, the pruning, and the API.

use super::TracesSection;
use crate::api;
use crate::hub::{Component, Hub};
use crate::store::{TraceQuery, TraceRow, TraceSummary};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thorbis_obs_core::domain::hash::SplitMix64;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::traces::{
    Added, AssembledTrace, BufferLimits, Policy, SamplingPolicy, TailSampler, TraceBuffer, TraceSpan, hex, parse_hex,
};

/// A stored trace's spans, inflated, at most (a blob that inflates beyond is refused).
const MAX_TRACE_JSON: u64 = 256 << 20;

/// The buffer, the sampler and the window's end, under one lock.
#[derive(Debug)]
struct Held {
    buffer: TraceBuffer,
    sampler: TailSampler,
    window_end: Option<Timestamp>,
    /// Spans of traces kept already that arrived after the decision, by trace.
    late: BTreeMap<[u8; 16], Vec<TraceSpan>>,
    /// The probabilistic policy's coin.
    rng: SplitMix64,
    /// Spans in `late`.
    late_spans: usize,
    /// Traces kept between rounds (decided early when the buffer was full), to store.
    ready: Vec<(AssembledTrace, Policy)>,
}

impl Held {
    /// Records what `trace` got: remembered for its late spans, and kept ones wait in `ready`
    /// for the round that stores them.
    fn settle(&mut self, trace: AssembledTrace, policy: Option<Policy>, now: Timestamp) {
        self.buffer.remember(trace.trace_id, policy, now);
        if let Some(p) = policy {
            self.ready.push((trace, p));
        }
    }

    /// Decides `traces` (their route heaps may hold some back until the window closes).
    fn decide_all(&mut self, traces: Vec<AssembledTrace>, now: Timestamp) {
        for t in traces {
            let rng = &mut self.rng;
            for (t, p) in self.sampler.decide(t, &mut || rng.next_unit()) {
                self.settle(t, p, now);
            }
        }
    }

    /// Closes the slowest-per-route window: what waited in its heaps is kept.
    fn close_window(&mut self, now: Timestamp) {
        for (t, p) in self.sampler.close_window() {
            self.settle(t, p, now);
        }
    }

    /// The kept traces to store, and the late spans of traces kept before, taken.
    fn take_decided(&mut self) -> (Vec<(AssembledTrace, Policy)>, Vec<AssembledTrace>) {
        self.late_spans = 0;
        let late = std::mem::take(&mut self.late)
            .into_iter()
            .map(|(trace_id, spans)| AssembledTrace { trace_id, spans, dropped_spans: 0 })
            .collect();
        (std::mem::take(&mut self.ready), late)
    }
}

/// The trace store as an agent component; see the module docs of [`super`].
pub struct TraceService {
    hub: Arc<Hub>,
    cfg: TracesSection,
    state: Mutex<Held>,
    /// Spans dropped: their trace at its span cap, or decided as dropped before they came.
    dropped_spans: AtomicU64,
    gate: api::Gate,
}

impl std::fmt::Debug for TraceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceService").field("enabled", &self.cfg.enabled).finish_non_exhaustive()
    }
}

impl TraceService {
    /// The trace store on `hub`'s store and clock.
    pub fn new(hub: Arc<Hub>, cfg: TracesSection) -> Self {
        let limits = BufferLimits {
            decision_wait: cfg.decision_wait.get(),
            max_spans: cfg.max_buffer_spans,
            max_bytes: cfg.max_buffer_bytes,
            max_spans_per_trace: cfg.max_spans_per_trace,
            ..BufferLimits::default()
        };
        let policy = SamplingPolicy {
            keep_errors: cfg.keep_errors,
            slowest_per_route: cfg.slowest_per_route,
            probability: cfg.probability,
            window: cfg.window.get(),
            ..SamplingPolicy::default()
        };
        let state = Held {
            buffer: TraceBuffer::new(limits),
            sampler: TailSampler::new(policy),
            window_end: None,
            late: BTreeMap::new(),
            rng: SplitMix64::new(seed()),
            late_spans: 0,
            ready: Vec::new(),
        };
        TraceService {
            hub,
            cfg,
            state: Mutex::new(state),
            dropped_spans: AtomicU64::new(0),
            gate: api::Gate::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes spans the intake accepted at `now` (what the agent's sink calls).
    pub fn add(&self, spans: Vec<TraceSpan>, now: Timestamp) {
        let mut st = self.lock();
        for s in spans {
            let id = s.trace_id;
            // Late spans of kept traces wait for the next round, within the buffer's bound.
            let late_room = st.late_spans < self.cfg.max_buffer_spans;
            match st.buffer.add(s, now) {
                Added::Buffered => {}
                Added::Late(Some(_), s)
                    if late_room && st.late.get(&id).is_none_or(|v| v.len() < self.cfg.max_spans_per_trace) =>
                {
                    st.late_spans += 1;
                    st.late.entry(id).or_default().push(*s);
                }
                Added::Late(..) | Added::TraceFull | Added::Duplicate | Added::TooLate => {
                    self.dropped_spans.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // A flood does not wait for the next round: the oldest traces are decided now, and
        // the kept ones wait (few) for the round to store them.
        if st.buffer.over_limits() {
            let shed = st.buffer.shed();
            st.decide_all(shed, now);
        }
    }

    /// Takes the browser's spans (sampled sessions') and the traces browser errors point at:
    /// those traces are kept, and with `keep_session_traces` so are the traces the sessions'
    /// requests started.
    pub fn add_browser(&self, spans: Vec<TraceSpan>, error_traces: Vec<[u8; 16]>, now: Timestamp) {
        {
            let mut st = self.lock();
            for id in error_traces {
                st.sampler.link(id);
            }
            if self.cfg.keep_session_traces {
                for s in &spans {
                    st.sampler.link(s.trace_id);
                }
            }
        }
        self.add(spans, now);
    }

    /// Spans waiting for their trace's decision now.
    pub fn held(&self) -> usize {
        self.lock().buffer.spans()
    }

    /// Bytes of the spans waiting (allocations counted, as `max_buffer_bytes` bounds them).
    pub fn held_bytes(&self) -> usize {
        self.lock().buffer.bytes()
    }

    /// Keeps `trace_id` when it is decided (a browser error or session points at it).
    pub fn link(&self, trace_id: [u8; 16]) {
        self.lock().sampler.link(trace_id);
    }

    /// Decides the traces due at `now`: the kept ones, with their policy, and the late spans
    /// of traces kept before.
    fn decide(&self, now: Timestamp) -> (Vec<(AssembledTrace, Policy)>, Vec<AssembledTrace>, Vec<Sample>) {
        let mut st = self.lock();
        let st = &mut *st;
        let due = st.buffer.due(now);
        st.decide_all(due, now);
        let w = i64::try_from(st.sampler.window().as_millis()).unwrap_or(60_000).max(1000);
        let end = *st.window_end.get_or_insert(Timestamp((now.0.div_euclid(w) + 1) * w));
        let mut samples = Vec::new();
        if now >= end {
            st.close_window(now);
            st.window_end = Some(Timestamp((now.0.div_euclid(w) + 1) * w));
            samples = self.window_samples(st, end);
        }
        let (kept, late) = st.take_decided();
        (kept, late, samples)
    }

    /// The window's decision counts and the buffer's size, stamped `at`.
    fn window_samples(&self, st: &mut Held, at: Timestamp) -> Vec<Sample> {
        let mut out: Vec<Sample> = st
            .sampler
            .take_counts()
            .into_iter()
            .map(|((policy, outcome), n)| {
                Sample::new(
                    "trace_decisions",
                    Labels::from_pairs([("policy", policy), ("outcome", outcome)]),
                    n as f64,
                    at,
                )
            })
            .collect();
        out.push(Sample::new("trace_buffer_spans", Labels::default(), st.buffer.spans() as f64, at));
        out.push(Sample::new("trace_buffer_traces", Labels::default(), st.buffer.traces() as f64, at));
        let dropped = self.dropped_spans.swap(0, Ordering::Relaxed) + std::mem::take(&mut st.buffer.forced);
        out.push(Sample::new("trace_spans_dropped", Labels::default(), dropped as f64, at));
        out
    }

    /// Stores the kept traces; a trace stored already (its spans came in two parts) is merged.
    async fn store(&self, kept: Vec<(AssembledTrace, Policy)>, late: Vec<AssembledTrace>) {
        // Parts of one trace in this round join before the store is asked for earlier ones.
        let mut parts: BTreeMap<[u8; 16], (AssembledTrace, Option<Policy>)> = BTreeMap::new();
        for (t, p) in kept.into_iter().map(|(t, p)| (t, Some(p))).chain(late.into_iter().map(|t| (t, None))) {
            match parts.get_mut(&t.trace_id) {
                Some((whole, policy)) => {
                    whole.spans.extend(t.spans);
                    whole.dropped_spans += t.dropped_spans;
                    *policy = policy.or(p);
                }
                None => {
                    parts.insert(t.trace_id, (t, p));
                }
            }
        }
        let mut rows = Vec::new();
        for (mut t, policy) in parts.into_values() {
            // The parts of one round together hold no span twice and no more than the cap.
            let mut seen = std::collections::HashSet::with_capacity(t.spans.len());
            t.spans.retain(|s| seen.insert(s.span_id));
            let over = t.spans.len().saturating_sub(self.cfg.max_spans_per_trace);
            t.spans.truncate(self.cfg.max_spans_per_trace);
            t.dropped_spans += over as u64;
            let id = hex(&t.trace_id);
            let mut policy = policy.map(|p| p.as_str().to_string());
            if let Ok(Some(old)) = self.hub.store().trace(&id).await {
                if let Ok(mut before) = inflate(&old.data) {
                    // Spans it has already (a retry) and spans past the cap are left out; a
                    // part that adds nothing is not written again.
                    let known: std::collections::HashSet<[u8; 8]> = before.spans.iter().map(|s| s.span_id).collect();
                    let room = self.cfg.max_spans_per_trace.saturating_sub(before.spans.len());
                    let fresh: Vec<TraceSpan> = t.spans.into_iter().filter(|s| !known.contains(&s.span_id)).collect();
                    before.dropped_spans += t.dropped_spans + fresh.len().saturating_sub(room) as u64;
                    if fresh.is_empty() {
                        continue;
                    }
                    before.spans.extend(fresh.into_iter().take(room));
                    t = before;
                }
                policy.get_or_insert(old.summary.policy);
            }
            match row(&t, policy.as_deref().unwrap_or("late")) {
                Ok(r) => rows.push(r),
                Err(e) => tracing::warn!(trace = %id, error = %e, "a trace could not be encoded"),
            }
        }
        if !rows.is_empty()
            && let Err(e) = self.hub.store().record_traces(&rows).await
        {
            tracing::warn!(error = %e, traces = rows.len(), "kept traces could not be stored");
        }
    }

    /// One round at `now`: decide what is due, store what is kept, hand the counts to the
    /// engine. The run loop calls it every second; public for hosts and benchmarks that drive
    /// their own clock.
    pub async fn round(&self, now: Timestamp) {
        let (kept, late, samples) = self.decide(now);
        self.store(kept, late).await;
        for s in &samples {
            if let Err(e) = self.hub.ingest(s) {
                tracing::debug!(metric = %s.name, error = %e, "trace sample refused");
            }
        }
    }

    /// Decides and stores what is held, then stops (at shutdown: nothing waits in memory).
    async fn flush(&self) {
        let now = self.hub.now();
        let (kept, late) = {
            let mut st = self.lock();
            let held = st.buffer.drain();
            st.decide_all(held, now);
            st.close_window(now);
            st.take_decided()
        };
        self.store(kept, late).await;
    }
}

/// A seed for the coin: the clock's nanoseconds and the process id.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// The stored row of `t`: its summary and its spans as gzip JSON.
fn row(t: &AssembledTrace, policy: &str) -> Result<TraceRow, String> {
    let json = serde_json::to_vec(t).map_err(|e| e.to_string())?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).map_err(|e| e.to_string())?;
    let data = gz.finish().map_err(|e| e.to_string())?;
    let root = t.root();
    let (service, route) = t.route_key();
    Ok(TraceRow {
        summary: TraceSummary {
            trace_id: hex(&t.trace_id),
            start: t.start(),
            duration_ms: t.duration_ms(),
            service,
            route,
            name: root.map(|r| r.name.clone()).unwrap_or_default(),
            services: t.services().join(","),
            span_count: i64::try_from(t.spans.len()).unwrap_or(i64::MAX),
            error: t.has_error(),
            policy: policy.to_string(),
            bytes: i64::try_from(data.len()).unwrap_or(i64::MAX),
        },
        data,
    })
}

/// The spans of a stored blob.
fn inflate(data: &[u8]) -> Result<AssembledTrace, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(data).take(MAX_TRACE_JSON).read_to_end(&mut json).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// `GET /api/v1/traces` and `GET /traces` query parameters (text, so an empty form field is
/// no filter).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    service: Option<String>,
    route: Option<String>,
    /// `error` or `ok`.
    status: Option<String>,
    /// Milliseconds.
    min_duration: Option<String>,
    /// Milliseconds since the epoch.
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// The store query `p` asks for, or what is wrong with it.
fn query_of(p: &ListParams) -> Result<TraceQuery, String> {
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let error = match text(&p.status).as_deref() {
        None => None,
        Some("error") => Some(true),
        Some("ok") => Some(false),
        Some(other) => return Err(format!("status {other:?}: error or ok")),
    };
    let min_duration_ms = match text(&p.min_duration) {
        None => None,
        Some(t) => match t.parse::<f64>() {
            Ok(d) if d.is_finite() && d >= 0.0 => Some(d),
            _ => return Err(format!("min_duration {t:?}: a number of milliseconds, 0 or more")),
        },
    };
    let time = |name: &str, v: &Option<String>| match text(v) {
        None => Ok(None),
        Some(t) => {
            t.parse::<i64>().map(|ms| Some(Timestamp(ms))).map_err(|_| format!("{name} {t:?}: milliseconds since 1970"))
        }
    };
    let limit = match text(&p.limit) {
        None => 100,
        Some(t) => t.parse::<usize>().map_err(|_| format!("limit {t:?}: a whole number"))?.clamp(1, 1000),
    };
    Ok(TraceQuery {
        service: text(&p.service),
        route: text(&p.route),
        error,
        min_duration_ms,
        from: time("from", &p.from)?,
        to: time("to", &p.to)?,
        limit,
    })
}

async fn list(
    State(svc): State<Arc<TraceService>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match params.map_err(|e| e.body_text()).and_then(|Query(p)| query_of(&p)) {
        Ok(q) => q,
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e),
    };
    match svc.hub.store().traces(&q).await {
        Ok(traces) => axum::Json(serde_json::json!({ "traces": traces })).into_response(),
        Err(e) => api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")),
    }
}

/// `GET /traces`: the list page.
async fn list_page(
    State(svc): State<Arc<TraceService>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match params {
        Ok(Query(p)) => p,
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let q = match query_of(&p) {
        Ok(q) => q,
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e),
    };
    let shown = super::pages::Filter {
        service: p.service.unwrap_or_default(),
        route: p.route.unwrap_or_default(),
        status: p.status.unwrap_or_default(),
        min_duration: p.min_duration.unwrap_or_default(),
    };
    match svc.hub.store().traces(&q).await {
        Ok(traces) => api::html(super::pages::list_page(&traces, &shown)),
        Err(e) => api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")),
    }
}

/// The stored trace `id` names, with a pass of the gate held while the caller inflates it; or
/// the answer to give (a malformed id, none kept, the store failing, too many at once).
async fn fetch(svc: &TraceService, id: &str) -> Result<(TraceRow, tokio::sync::OwnedSemaphorePermit), Box<Response>> {
    let id = id.to_ascii_lowercase();
    if parse_hex::<16>(&id).is_none() {
        return Err(Box::new(api::error(StatusCode::BAD_REQUEST, "a trace id is 32 hex digits")));
    }
    let pass = svc.gate.enter()?;
    match svc.hub.store().trace(&id).await {
        Ok(Some(r)) => Ok((r, pass)),
        Ok(None) => Err(Box::new(api::error(StatusCode::NOT_FOUND, format!("no trace {id} is kept")))),
        Err(e) => Err(Box::new(api::error(StatusCode::SERVICE_UNAVAILABLE, format!("the store: {e}")))),
    }
}

/// `GET /traces/{trace_id}`: the waterfall page.
async fn trace_page(State(svc): State<Arc<TraceService>>, Path(id): Path<String>) -> Response {
    let (row, _pass) = match fetch(&svc, &id).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let page = api::blocking(move || inflate(&row.data).map(|t| super::pages::trace_page(&row.summary, &t))).await;
    match page {
        Ok(Ok(html)) => api::html(html),
        Ok(Err(e)) => api::error(StatusCode::INTERNAL_SERVER_ERROR, format!("the stored trace is unreadable: {e}")),
        Err(r) => r,
    }
}

/// `GET /api/v1/traces/{trace_id}` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneParams {
    /// `otlp` for OTLP JSON.
    format: Option<String>,
}

async fn one(
    State(svc): State<Arc<TraceService>>,
    Path(id): Path<String>,
    params: Result<Query<OneParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (row, _pass) = match fetch(&svc, &id).await {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let otlp = match p.format.as_deref() {
        None | Some("") | Some("json") => false,
        Some("otlp") => true,
        Some(other) => return api::error(StatusCode::BAD_REQUEST, format!("format {other:?}: json or otlp")),
    };
    let summary = row.summary.clone();
    let body = api::blocking(move || {
        inflate(&row.data).map(|t| {
            if otlp {
                otlp_json(&t)
            } else {
                serde_json::json!({ "summary": summary, "spans": t.spans, "dropped_spans": t.dropped_spans })
            }
        })
    })
    .await;
    match body {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => api::error(StatusCode::INTERNAL_SERVER_ERROR, format!("the stored trace is unreadable: {e}")),
        Err(r) => r,
    }
}

/// The trace as an OTLP JSON `ExportTraceServiceRequest` (one resource per service), so it
/// opens in other tools.
fn otlp_json(t: &AssembledTrace) -> serde_json::Value {
    let mut by_service: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    let attrs = |a: &[(String, String)]| {
        a.iter().map(|(k, v)| serde_json::json!({ "key": k, "value": { "stringValue": v } })).collect::<Vec<_>>()
    };
    for s in &t.spans {
        let mut span = serde_json::json!({
            "traceId": hex(&s.trace_id),
            "spanId": hex(&s.span_id),
            "name": s.name,
            "kind": s.kind,
            "startTimeUnixNano": s.start_ns.to_string(),
            "endTimeUnixNano": s.end_ns.to_string(),
            "attributes": attrs(&s.attributes),
            "events": s.events.iter().map(|e| serde_json::json!({
                "name": e.name, "timeUnixNano": e.time_ns.to_string(), "attributes": attrs(&e.attributes)
            })).collect::<Vec<_>>(),
            "status": { "code": if s.error { 2 } else { 0 }, "message": s.status_message },
        });
        if let Some(p) = s.parent {
            span["parentSpanId"] = serde_json::json!(hex(&p));
        }
        by_service.entry(&s.service).or_default().push(span);
    }
    let resources: Vec<_> = by_service
        .into_iter()
        .map(|(service, spans)| {
            serde_json::json!({
                "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
                "scopeSpans": [{ "scope": { "name": "thorbis-obs" }, "spans": spans }]
            })
        })
        .collect();
    serde_json::json!({ "resourceSpans": resources })
}

#[async_trait::async_trait]
impl Component for TraceService {
    fn name(&self) -> &'static str {
        "traces"
    }

    /// `GET /api/v1/traces`, `GET /api/v1/traces/{trace_id}`, and the pages `/traces`,
    /// `/traces/{trace_id}`.
    fn routes(self: Arc<Self>) -> Router {
        if !self.cfg.enabled {
            return Router::new();
        }
        Router::new()
            .route("/api/v1/traces", get(list))
            .route("/api/v1/traces/{trace_id}", get(one))
            .route("/traces", get(list_page))
            .route("/traces/{trace_id}", get(trace_page))
            .with_state(self)
    }

    /// Every second: decide quiet traces and store the kept ones; every minute: prune.
    async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        if !self.cfg.enabled {
            return;
        }
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune: Option<Timestamp> = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => break,
            }
            let now = self.hub.now();
            self.round(now).await;
            if last_prune.is_none_or(|t| now.since(t) >= Duration::from_secs(60)) {
                last_prune = Some(now);
                let before = now.minus(self.cfg.retention.get());
                match self.hub.store().prune_traces(before, self.cfg.max_store_bytes).await {
                    Ok(n) if n > 0 => tracing::debug!(traces = n, "old traces pruned"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "traces could not be pruned"),
                }
            }
        }
        self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_round_trips_and_summarises_its_trace() {
        let span = |id: u8, parent: Option<u8>, service: &str, error: bool| TraceSpan {
            trace_id: [9; 16],
            span_id: [id; 8],
            parent: parent.map(|p| [p; 8]),
            service: service.into(),
            name: format!("op {id}"),
            kind: 2,
            start_ns: 1_000_000_000 + u64::from(id) * 1_000_000,
            end_ns: 1_050_000_000,
            error,
            status_message: String::new(),
            route: (id == 1).then(|| "/api/orders/{id}".to_string()),
            attributes: vec![("k".into(), "v".into())],
            events: vec![],
        };
        let t = AssembledTrace {
            trace_id: [9; 16],
            spans: vec![span(2, Some(1), "db", true), span(1, None, "web", false)],
            dropped_spans: 0,
        };
        let r = row(&t, "error").expect("row");
        assert_eq!(r.summary.route, "/api/orders/{id}");
        assert_eq!((r.summary.service.as_str(), r.summary.services.as_str()), ("web", "db,web"));
        assert_eq!((r.summary.span_count, r.summary.error, r.summary.duration_ms), (2, true, 49.0));
        assert_eq!(inflate(&r.data).expect("back"), t);
        let o = otlp_json(&t);
        assert_eq!(o["resourceSpans"].as_array().map(Vec::len), Some(2));
        assert_eq!(o["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["parentSpanId"], hex(&[1; 8]));
    }
}
