//! Traces: spans assembled by trace id, and tail sampling (the OpenTelemetry Collector's
//! tail-sampling processor is the reference for the vocabulary).
//!
//! [`TraceBuffer`] holds each trace's spans until the trace has been quiet for the decision
//! wait (default 10 s), then hands it over whole. It is bounded in spans, in bytes and in spans
//! per trace: a full buffer decides its oldest traces early, a trace past its span cap drops
//! further spans (counted), so it never grows without bound. A span id seen twice in a trace
//! (an exporter's retry) counts once. Traces decided are remembered (a bounded list), so spans
//! arriving late, within twice the decision wait, join the decision their trace got; later
//! ones are dropped (a sender repeating old trace ids cannot make a kept trace grow forever).
//!
//! [`TailSampler`] decides, per assembled trace, in this order:
//! 1. `error`: a trace with an error span is kept;
//! 2. `linked`: a trace a kept browser error or session points at is kept;
//! 3. `slowest`: per (service, route) of the root span, the K slowest traces of each sampling
//!    window are kept: a trace waits in its route's heap of K until the window closes, and one
//!    pushed out of it (or never slow enough to enter) goes on to 4;
//! 4. `probabilistic`: a share of the rest (default 1%), by an injected random number.
//!
//! Every decision is counted by policy and outcome ([`TailSampler::take_counts`]). The caller
//! owns the clock and the randomness, so the sampler is deterministic under test.

use crate::time::Timestamp;
use crate::wire::{Batch, Event, PropValue};
use core::time::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// A trace id.
pub type TraceId = [u8; 16];

/// A span id.
pub type SpanId = [u8; 8];

/// A span's kind, as OTLP numbers it (0 unspecified, 1 internal, 2 server, 3 client,
/// 4 producer, 5 consumer).
pub type SpanKindCode = u8;

/// An event on a span (an exception, a log line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Its name (`exception`).
    pub name: String,
    /// When, in nanoseconds since the epoch.
    pub time_ns: u64,
    /// Its attributes, as text.
    pub attributes: Vec<(String, String)>,
}

/// One span as the trace store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSpan {
    /// The trace.
    #[serde(with = "hex_bytes")]
    pub trace_id: TraceId,
    /// The span.
    #[serde(with = "hex_bytes")]
    pub span_id: SpanId,
    /// The parent span, if any.
    #[serde(with = "hex_opt")]
    pub parent: Option<SpanId>,
    /// `service.name` of its resource.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SpanKindCode,
    /// Start, in nanoseconds since the epoch.
    pub start_ns: u64,
    /// End, in nanoseconds since the epoch.
    pub end_ns: u64,
    /// Its status is ERROR, or it answered 5xx.
    pub error: bool,
    /// The status message, if any.
    pub status_message: String,
    /// `http.route` (or the framework's own route attribute), for grouping.
    pub route: Option<String>,
    /// Its attributes, as text.
    pub attributes: Vec<(String, String)>,
    /// Its events.
    pub events: Vec<SpanEvent>,
}

/// What one heap allocation costs beyond its bytes, roughly (the allocator's size classes and
/// headers): counted so the buffer's byte bound is close to the memory it takes.
const ALLOCATION: usize = 32;

/// The bytes of a string as held: nothing when empty, else its length and an allocation.
fn held(s: &str) -> usize {
    if s.is_empty() { 0 } else { s.len() + ALLOCATION }
}

impl TraceSpan {
    /// Roughly the memory it holds, allocations included (for the buffer's byte bound).
    pub fn approx_bytes(&self) -> usize {
        let pairs = |a: &[(String, String)]| {
            if a.is_empty() { 0 } else { ALLOCATION + a.iter().map(|(k, v)| 48 + held(k) + held(v)).sum::<usize>() }
        };
        core::mem::size_of::<TraceSpan>()
            + held(&self.service)
            + held(&self.name)
            + held(&self.status_message)
            + self.route.as_deref().map_or(0, held)
            + pairs(&self.attributes)
            + if self.events.is_empty() { 0 } else { ALLOCATION }
            + self
                .events
                .iter()
                .map(|e| core::mem::size_of::<SpanEvent>() + held(&e.name) + pairs(&e.attributes))
                .sum::<usize>()
    }

    /// Its duration in milliseconds (0 when it ends before it starts).
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }
}

/// A trace's spans, assembled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssembledTrace {
    /// The trace.
    #[serde(with = "hex_bytes")]
    pub trace_id: TraceId,
    /// Its spans, in arrival order.
    pub spans: Vec<TraceSpan>,
    /// Spans refused because the trace reached its span cap.
    pub dropped_spans: u64,
}

impl AssembledTrace {
    /// The root: the earliest span without a parent in the trace (a span whose parent never
    /// arrived counts as a root); None for an empty trace.
    pub fn root(&self) -> Option<&TraceSpan> {
        let ids: HashSet<SpanId> = self.spans.iter().map(|s| s.span_id).collect();
        let roots = self.spans.iter().filter(|s| s.parent.is_none_or(|p| !ids.contains(&p)));
        roots.min_by_key(|s| (s.parent.is_some(), s.start_ns))
    }

    /// From the earliest start to the latest end, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        let start = self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = self.spans.iter().map(|s| s.end_ns).max().unwrap_or(0);
        end.saturating_sub(start) as f64 / 1e6
    }

    /// The earliest start, in milliseconds since the epoch.
    pub fn start(&self) -> Timestamp {
        let ns = self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
        Timestamp(i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
    }

    /// True when a span failed.
    pub fn has_error(&self) -> bool {
        self.spans.iter().any(|s| s.error)
    }

    /// The root's service and route (else its name): the key of the `slowest` policy.
    pub fn route_key(&self) -> (String, String) {
        match self.root() {
            Some(r) => (r.service.clone(), r.route.clone().unwrap_or_else(|| r.name.clone())),
            None => (String::new(), String::new()),
        }
    }

    /// The services that took part, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut s: Vec<String> = self.spans.iter().map(|s| s.service.clone()).collect();
        s.sort();
        s.dedup();
        s
    }

    fn approx_bytes(&self) -> usize {
        self.spans.iter().map(TraceSpan::approx_bytes).sum()
    }
}

/// The buffer's bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct BufferLimits {
    /// A trace is decided once no span of it arrived for this long.
    pub decision_wait: Duration,
    /// Spans held in all, at most; beyond, the oldest traces are decided early.
    pub max_spans: usize,
    /// Bytes held in all (by [`TraceSpan::approx_bytes`]), at most; same rule.
    pub max_bytes: usize,
    /// Spans of one trace, at most; further ones are dropped and counted.
    pub max_spans_per_trace: usize,
    /// Decided traces remembered for their late spans.
    pub remembered: usize,
}

impl Default for BufferLimits {
    fn default() -> Self {
        BufferLimits {
            decision_wait: Duration::from_secs(10),
            max_spans: 200_000,
            max_bytes: 64 << 20,
            max_spans_per_trace: 10_000,
            remembered: 100_000,
        }
    }
}

/// What a trace waiting for its decision costs beyond its spans (its map entry, its list).
const PENDING_BYTES: usize = 160;

/// Spans a trace holds before its span ids get a set (below, a scan finds a repeat).
const SCAN_IDS: usize = 16;

/// A trace waiting for its decision.
#[derive(Debug)]
struct Pending {
    spans: Vec<TraceSpan>,
    /// The span ids, once the trace has more than [`SCAN_IDS`] spans.
    ids: Option<HashSet<SpanId>>,
    bytes: usize,
    first: Timestamp,
    last: Timestamp,
    dropped: u64,
}

/// What became of a span handed to [`TraceBuffer::add`].
#[derive(Clone, Debug, PartialEq)]
pub enum Added {
    /// Held until its trace is decided.
    Buffered,
    /// Its trace was decided already: the decision it got, for the caller to apply, and the
    /// span back.
    Late(Option<Policy>, Box<TraceSpan>),
    /// Its trace is at its span cap: dropped.
    TraceFull,
    /// A span of its trace with its id was taken already (an exporter's retry): dropped.
    Duplicate,
    /// Its trace was decided more than twice the decision wait ago: dropped.
    TooLate,
}

/// Spans by trace, until each trace is decided; see the module docs.
#[derive(Debug, Default)]
pub struct TraceBuffer {
    limits: BufferLimits,
    pending: HashMap<TraceId, Pending>,
    spans: usize,
    bytes: usize,
    /// Decided traces, oldest first, and what they got when.
    decided: VecDeque<TraceId>,
    decisions: HashMap<TraceId, (Option<Policy>, Timestamp)>,
    /// Decided before their wait because the buffer was full.
    pub forced: u64,
}

impl TraceBuffer {
    /// An empty buffer with these bounds.
    pub fn new(limits: BufferLimits) -> Self {
        TraceBuffer { limits, ..TraceBuffer::default() }
    }

    /// Spans held now.
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// Traces held now.
    pub fn traces(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held now (approximately).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes one span, arrived at `now`.
    pub fn add(&mut self, span: TraceSpan, now: Timestamp) -> Added {
        if let Some((d, at)) = self.decisions.get(&span.trace_id) {
            let grace = self.limits.decision_wait.saturating_mul(2);
            return if now.since(*at) > grace { Added::TooLate } else { Added::Late(*d, Box::new(span)) };
        }
        let mut bytes = span.approx_bytes();
        let p = self.pending.entry(span.trace_id).or_insert_with(|| {
            bytes += PENDING_BYTES;
            // Most traces a buffer holds at once have one span so far: room for one.
            Pending { spans: Vec::with_capacity(1), ids: None, bytes: 0, first: now, last: now, dropped: 0 }
        });
        if p.spans.len() >= self.limits.max_spans_per_trace {
            p.dropped += 1;
            return Added::TraceFull;
        }
        let repeat = match &mut p.ids {
            Some(ids) => !ids.insert(span.span_id),
            None => p.spans.iter().any(|s| s.span_id == span.span_id),
        };
        if repeat {
            return Added::Duplicate;
        }
        if p.ids.is_none() && p.spans.len() >= SCAN_IDS {
            let ids: HashSet<SpanId> = p.spans.iter().map(|s| s.span_id).chain([span.span_id]).collect();
            bytes += ids.capacity() * 16 + ALLOCATION;
            p.ids = Some(ids);
        } else if let Some(ids) = &p.ids {
            bytes += if ids.len() == ids.capacity() { 0 } else { 16 };
        }
        p.last = now;
        p.bytes += bytes;
        p.spans.push(span);
        self.spans += 1;
        self.bytes += bytes;
        Added::Buffered
    }

    fn take(&mut self, id: &TraceId) -> Option<AssembledTrace> {
        let p = self.pending.remove(id)?;
        self.spans -= p.spans.len();
        self.bytes -= p.bytes;
        Some(AssembledTrace { trace_id: *id, spans: p.spans, dropped_spans: p.dropped })
    }

    /// The traces quiet for the decision wait at `now`, and while the buffer is over its
    /// bounds, the ones that arrived first; removed from the buffer, oldest first.
    pub fn due(&mut self, now: Timestamp) -> Vec<AssembledTrace> {
        let quiet = now.minus(self.limits.decision_wait);
        let mut ids: Vec<(Timestamp, TraceId)> =
            self.pending.iter().filter(|(_, p)| p.last <= quiet).map(|(id, p)| (p.first, *id)).collect();
        ids.sort();
        let mut out: Vec<AssembledTrace> = ids.iter().filter_map(|(_, id)| self.take(id)).collect();
        out.extend(self.shed());
        out
    }

    /// True when the buffer holds more than its bounds allow.
    pub fn over_limits(&self) -> bool {
        self.spans > self.limits.max_spans || self.bytes > self.limits.max_bytes
    }

    /// When over its bounds: the traces that arrived first, removed until the buffer is back
    /// under nine tenths of them (so a flood sorts the buffer once in a while, not per span).
    pub fn shed(&mut self) -> Vec<AssembledTrace> {
        if !self.over_limits() {
            return Vec::new();
        }
        let (spans, bytes) = (self.limits.max_spans / 10 * 9, self.limits.max_bytes / 10 * 9);
        let mut rest: Vec<(Timestamp, TraceId)> = self.pending.iter().map(|(id, p)| (p.first, *id)).collect();
        rest.sort();
        let mut out = Vec::new();
        for (_, id) in rest {
            if self.spans <= spans && self.bytes <= bytes {
                break;
            }
            if let Some(t) = self.take(&id) {
                self.forced += 1;
                out.push(t);
            }
        }
        out
    }

    /// Every trace held, decided now (at shutdown).
    pub fn drain(&mut self) -> Vec<AssembledTrace> {
        let ids: Vec<TraceId> = self.pending.keys().copied().collect();
        ids.iter().filter_map(|id| self.take(id)).collect()
    }

    /// Remembers what `trace` got at `now`, so its late spans follow it.
    pub fn remember(&mut self, trace: TraceId, decision: Option<Policy>, now: Timestamp) {
        if self.decisions.insert(trace, (decision, now)).is_none() {
            self.decided.push_back(trace);
        }
        while self.decided.len() > self.limits.remembered {
            if let Some(old) = self.decided.pop_front() {
                self.decisions.remove(&old);
            }
        }
    }
}

/// Why a trace was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// It has an error span.
    Error,
    /// A kept browser error or session points at it.
    Linked,
    /// Among the slowest K of its route in its window.
    Slowest,
    /// The probabilistic share of the rest.
    Probabilistic,
}

impl Policy {
    /// Its name, as in config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Error => "error",
            Policy::Linked => "linked",
            Policy::Slowest => "slowest",
            Policy::Probabilistic => "probabilistic",
        }
    }
}

/// The sampling policies' settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingPolicy {
    /// Keep every trace with an error span.
    pub keep_errors: bool,
    /// The slowest this many traces per (service, route) per window are kept (0: off).
    pub slowest_per_route: usize,
    /// The share of the rest kept, 0..=1.
    pub probability: f64,
    /// The window of the `slowest` policy.
    pub window: Duration,
    /// Routes with a heap of their own, at most; traces of further routes go to the
    /// probabilistic policy.
    pub max_routes: usize,
    /// Bytes of traces waiting in heaps, at most; beyond, the window closes early.
    pub max_heap_bytes: usize,
}

impl Default for SamplingPolicy {
    fn default() -> Self {
        SamplingPolicy {
            keep_errors: true,
            slowest_per_route: 5,
            probability: 0.01,
            window: Duration::from_secs(60),
            max_routes: 5_000,
            max_heap_bytes: 64 << 20,
        }
    }
}

/// The tail sampler; see the module docs.
#[derive(Debug, Default)]
pub struct TailSampler {
    policy: SamplingPolicy,
    /// Per (service, route): the slowest traces of the window so far, at most K.
    heaps: HashMap<(String, String), Vec<(f64, AssembledTrace)>>,
    heap_bytes: usize,
    linked: HashSet<TraceId>,
    linked_order: VecDeque<TraceId>,
    counts: BTreeMap<(&'static str, &'static str), u64>,
}

/// Linked trace ids remembered, at most.
const MAX_LINKED: usize = 100_000;

impl TailSampler {
    /// A sampler with these policies.
    pub fn new(policy: SamplingPolicy) -> Self {
        TailSampler { policy, ..TailSampler::default() }
    }

    /// The window of the `slowest` policy.
    pub fn window(&self) -> Duration {
        self.policy.window
    }

    /// Keeps `trace` when it is decided (a browser error or session points at it).
    pub fn link(&mut self, trace: TraceId) {
        if self.linked.insert(trace) {
            self.linked_order.push_back(trace);
        }
        while self.linked_order.len() > MAX_LINKED {
            if let Some(old) = self.linked_order.pop_front() {
                self.linked.remove(&old);
            }
        }
    }

    fn count(&mut self, policy: &'static str, outcome: &'static str) {
        *self.counts.entry((policy, outcome)).or_default() += 1;
    }

    /// The rest: kept with the configured probability (`random` in `[0, 1)`).
    fn rest(&mut self, trace: AssembledTrace, random: f64, out: &mut Vec<(AssembledTrace, Option<Policy>)>) {
        if random < self.policy.probability {
            self.count("probabilistic", "kept");
            out.push((trace, Some(Policy::Probabilistic)));
        } else {
            self.count("probabilistic", "dropped");
            out.push((trace, None));
        }
    }

    /// Decides `trace`. Returns the traces decided now, each with its policy (None: dropped):
    /// `trace` itself, or one its route's heap pushed out, or none while it waits in a heap.
    pub fn decide(
        &mut self,
        trace: AssembledTrace,
        random: &mut dyn FnMut() -> f64,
    ) -> Vec<(AssembledTrace, Option<Policy>)> {
        let mut out = Vec::new();
        if self.policy.keep_errors && trace.has_error() {
            self.count("error", "kept");
            out.push((trace, Some(Policy::Error)));
            return out;
        }
        if self.linked.remove(&trace.trace_id) {
            self.count("linked", "kept");
            out.push((trace, Some(Policy::Linked)));
            return out;
        }
        let k = self.policy.slowest_per_route;
        let key = trace.route_key();
        if k == 0 || (!self.heaps.contains_key(&key) && self.heaps.len() >= self.policy.max_routes) {
            let r = random();
            self.rest(trace, r, &mut out);
            return out;
        }
        let duration = trace.duration_ms();
        let bytes = trace.approx_bytes();
        let heap = self.heaps.entry(key).or_default();
        heap.push((duration, trace));
        self.heap_bytes += bytes;
        if heap.len() > k {
            // The fastest leaves; ties leave the newest first, so the earliest slow ones stay.
            let i = heap
                .iter()
                .enumerate()
                .min_by(|(i, a), (j, b)| a.0.total_cmp(&b.0).then(j.cmp(i)))
                .map_or(0, |(i, _)| i);
            let (_, out_of_heap) = heap.swap_remove(i);
            self.heap_bytes -= out_of_heap.approx_bytes();
            let r = random();
            self.rest(out_of_heap, r, &mut out);
        }
        if self.heap_bytes > self.policy.max_heap_bytes {
            out.extend(self.close_window());
        }
        out
    }

    /// Closes the `slowest` policy's window: every trace waiting in a heap is kept.
    pub fn close_window(&mut self) -> Vec<(AssembledTrace, Option<Policy>)> {
        let mut out = Vec::new();
        for (_, heap) in self.heaps.drain() {
            for (_, t) in heap {
                out.push((t, Some(Policy::Slowest)));
            }
        }
        for _ in 0..out.len() {
            self.count("slowest", "kept");
        }
        self.heap_bytes = 0;
        out
    }

    /// Traces waiting in heaps now.
    pub fn waiting(&self) -> usize {
        self.heaps.values().map(Vec::len).sum()
    }

    /// The decisions since the last call, by (policy, outcome), reset.
    pub fn take_counts(&mut self) -> BTreeMap<(&'static str, &'static str), u64> {
        std::mem::take(&mut self.counts)
    }
}

/// Hex text for fixed-size ids in serde.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_hex(&text).ok_or_else(|| serde::de::Error::custom(format!("not {} hex bytes", N)))
    }
}

/// [`hex_bytes`] for an optional id (`null` when absent).
mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 8]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&super::hex(v)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 8]>, D::Error> {
        match <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? {
            None => Ok(None),
            Some(t) => super::parse_hex(&t).map(Some).ok_or_else(|| serde::de::Error::custom("not 8 hex bytes")),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// `N` bytes from exactly `2N` hex digits.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.as_bytes();
    if t.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(t[2 * i])? << 4 | digit(t[2 * i + 1])?;
    }
    Some(out)
}

/// Span kind codes used here (OTLP's numbering).
const KIND_INTERNAL: SpanKindCode = 1;
const KIND_CLIENT: SpanKindCode = 3;

/// The browser's part of a trace: one [`Event::Span`] of `batch` (the SDK's traced fetch or
/// `startSpan`) as the trace store keeps spans. Its resource is the batch's: `service.name`,
/// `deployment.environment.name`, `service.version`, and the RUM session and view it came
/// from (`session.id`, `thorbis.view.id`, `thorbis.view.route`), so a trace page can link
/// them. Call it on a validated batch moved onto the collector's clock
/// ([`crate::wire::Batch::align_to`]); None for other events.
pub fn browser_span(batch: &Batch, event: &Event) -> Option<TraceSpan> {
    let Event::Span {
        at,
        trace_id,
        span_id,
        parent_span_id,
        name,
        op,
        duration_ms,
        status,
        method,
        url,
        status_code,
        attrs,
    } = event
    else {
        return None;
    };
    let start_ns = u64::try_from(at.as_millis()).ok()?.saturating_mul(1_000_000);
    // Validated: finite, 0 ..= an hour.
    let end_ns = start_ns.saturating_add((duration_ms.clamp(0.0, 3.6e6) * 1e6) as u64);
    let mut attributes: Vec<(String, String)> = vec![
        ("thorbis.op".into(), op.clone()),
        ("deployment.environment.name".into(), batch.env.clone()),
        ("session.id".into(), batch.session.id.clone()),
        ("thorbis.view.id".into(), batch.view.id.clone()),
    ];
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            attributes.push((k.into(), v));
        }
    };
    push("service.version", batch.version.clone());
    push("thorbis.view.route", batch.view.route.clone());
    push("http.request.method", method.clone());
    push("url.full", url.clone());
    push("http.response.status_code", status_code.map(|c| c.to_string()));
    for (k, v) in attrs {
        let v = match v {
            PropValue::Text(t) => t.clone(),
            PropValue::Number(n) => n.to_string(),
            PropValue::Bool(b) => b.to_string(),
        };
        attributes.push((k.clone(), v));
    }
    let error = status.as_deref() == Some("error") || status_code.is_some_and(|c| c >= 500);
    Some(TraceSpan {
        trace_id: parse_hex(trace_id)?,
        span_id: parse_hex(span_id)?,
        parent: parent_span_id.as_deref().and_then(parse_hex),
        service: batch.service.clone(),
        name: name.clone(),
        kind: if op == "http.client" { KIND_CLIENT } else { KIND_INTERNAL },
        start_ns,
        end_ns,
        error,
        status_message: String::new(),
        route: batch.view.route.clone().or_else(|| Some(batch.view.url.clone())),
        attributes,
        events: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u8, id: u8, parent: Option<u8>, route: &str, ms: u64, error: bool) -> TraceSpan {
        TraceSpan {
            trace_id: [trace; 16],
            span_id: [id; 8],
            parent: parent.map(|p| [p; 8]),
            service: "api".into(),
            name: format!("GET {route}"),
            kind: 2,
            start_ns: 1_000_000_000,
            end_ns: 1_000_000_000 + ms * 1_000_000,
            error,
            status_message: String::new(),
            route: Some(route.into()),
            attributes: vec![],
            events: vec![],
        }
    }

    #[test]
    fn a_trace_is_decided_once_quiet_and_its_late_spans_follow_it() {
        let mut b = TraceBuffer::new(BufferLimits::default());
        assert_eq!(b.add(span(1, 1, None, "/a", 30, false), Timestamp(0)), Added::Buffered);
        assert_eq!(b.add(span(1, 2, Some(1), "/a", 10, false), Timestamp(4_000)), Added::Buffered);
        assert!(b.due(Timestamp(12_000)).is_empty(), "the second span reset the wait");
        let due = b.due(Timestamp(14_000));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].spans.len(), 2);
        assert_eq!(due[0].root().map(|r| r.span_id), Some([1; 8]));
        b.remember([1; 16], Some(Policy::Slowest), Timestamp(14_000));
        let late = span(1, 3, Some(1), "/a", 5, false);
        assert_eq!(b.add(late.clone(), Timestamp(15_000)), Added::Late(Some(Policy::Slowest), Box::new(late)));
        assert_eq!((b.spans(), b.traces()), (0, 0));
        // Twice the wait after the decision, the trace takes no more.
        assert_eq!(b.add(span(1, 4, Some(1), "/a", 5, false), Timestamp(34_001)), Added::TooLate);
        // A retried span counts once.
        assert_eq!(b.add(span(2, 1, None, "/a", 5, false), Timestamp(0)), Added::Buffered);
        assert_eq!(b.add(span(2, 1, None, "/a", 5, false), Timestamp(1)), Added::Duplicate);
        assert_eq!(b.spans(), 1);
    }

    #[test]
    fn the_buffer_stays_within_its_bounds() {
        let limits = BufferLimits { max_spans: 100, max_spans_per_trace: 10, ..BufferLimits::default() };
        let mut b = TraceBuffer::new(limits);
        for t in 0..50u8 {
            for s in 0..12u8 {
                b.add(span(t, s + 1, None, "/a", 1, false), Timestamp(i64::from(t)));
            }
            let early = b.due(Timestamp(i64::from(t)));
            assert!(b.spans() <= 100, "{} spans held", b.spans());
            assert!(early.iter().all(|e| e.spans.len() == 10 && e.dropped_spans == 2));
        }
        assert!(b.forced > 0);
        let first = b.drain();
        assert!(first.iter().all(|t| t.trace_id[0] >= 40), "the oldest were decided first");
    }

    #[test]
    fn sampling_keeps_errors_the_slowest_k_and_a_share_of_the_rest() {
        let policy = SamplingPolicy { slowest_per_route: 2, probability: 0.5, ..SamplingPolicy::default() };
        let mut s = TailSampler::new(policy);
        let mut kept = Vec::new();
        let mut coin = 0u32;
        let mut random = || {
            coin += 1;
            if coin % 2 == 0 { 0.9 } else { 0.1 }
        };
        // Ten traces of /a with durations 10..100 ms; trace 3 failed.
        for i in 0..10u8 {
            let t = AssembledTrace {
                trace_id: [i; 16],
                spans: vec![span(i, 1, None, "/a", u64::from(i) * 10 + 10, i == 3)],
                dropped_spans: 0,
            };
            kept.extend(s.decide(t, &mut random).into_iter().filter_map(|(t, p)| p.map(|p| (t.trace_id[0], p))));
        }
        kept.extend(s.close_window().into_iter().filter_map(|(t, p)| p.map(|p| (t.trace_id[0], p))));
        let by = |p: Policy| kept.iter().filter(|(_, q)| *q == p).map(|(i, _)| *i).collect::<Vec<_>>();
        assert_eq!(by(Policy::Error), [3]);
        let mut slow = by(Policy::Slowest);
        slow.sort();
        assert_eq!(slow, [8, 9], "the two slowest of the route");
        // Seven others went through the coin: heads (0.1 < 0.5) for every other one.
        assert_eq!(by(Policy::Probabilistic).len(), 4);
        let counts = s.take_counts();
        assert_eq!(counts.get(&("probabilistic", "dropped")), Some(&3));
        assert_eq!(counts.get(&("slowest", "kept")), Some(&2));
    }

    #[test]
    fn a_browser_span_event_becomes_a_client_span_of_its_session() {
        let batch: Batch = serde_json::from_value(serde_json::json!({
            "v": 1, "service": "web", "env": "prod", "version": "1.2",
            "session": { "id": "s1", "sampled": true, "startedAt": 1_000 },
            "view": { "id": "v1", "url": "https://a.test/orders/7", "route": "/orders/[id]" },
            "sentAt": 5_000,
            "events": [
                { "type": "span", "at": 2_000, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "spanId": "00f067aa0ba902b7", "name": "POST /api/pay", "op": "http.client",
                  "durationMs": 12.5, "method": "POST", "statusCode": 502, "attrs": { "a.b": 1 } },
                { "type": "span", "at": 2_000, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                  "spanId": "00f067aa0ba902b8", "parentSpanId": "00f067aa0ba902b7", "name": "render",
                  "op": "ui", "durationMs": 1 },
                { "type": "timing", "at": 2_000, "name": "t", "durationMs": 1 }
            ]
        }))
        .expect("a batch");
        batch.validate().expect("valid");
        let spans: Vec<TraceSpan> = batch.events.iter().filter_map(|e| browser_span(&batch, e)).collect();
        assert_eq!(spans.len(), 2, "only span events");
        let s = &spans[0];
        assert_eq!(
            (hex(&s.trace_id), hex(&s.span_id)),
            ("4bf92f3577b34da6a3ce929d0e0e4736".into(), "00f067aa0ba902b7".into())
        );
        assert_eq!((s.kind, s.start_ns, s.end_ns), (3, 2_000_000_000, 2_012_500_000));
        assert!(s.error, "a 502 is an error");
        assert_eq!(s.route.as_deref(), Some("/orders/[id]"));
        let attr = |k: &str| s.attributes.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (attr("session.id"), attr("http.response.status_code"), attr("a.b")),
            (Some("s1"), Some("502"), Some("1"))
        );
        assert_eq!((spans[1].kind, spans[1].parent), (1, Some(s.span_id)));
        assert!(!spans[1].error);
    }

    #[test]
    fn linked_traces_are_kept_and_roots_survive_cycles_and_missing_parents() {
        let mut s = TailSampler::new(SamplingPolicy { probability: 0.0, slowest_per_route: 0, ..Default::default() });
        s.link([7; 16]);
        let t =
            AssembledTrace { trace_id: [7; 16], spans: vec![span(7, 1, Some(9), "/b", 5, false)], dropped_spans: 0 };
        assert_eq!(s.decide(t, &mut || 0.5)[0].1, Some(Policy::Linked));
        // A cycle (1 -> 2 -> 1) has no root; a missing parent makes one.
        let cyc = AssembledTrace {
            trace_id: [8; 16],
            spans: vec![span(8, 1, Some(2), "/c", 5, false), span(8, 2, Some(1), "/c", 5, false)],
            dropped_spans: 0,
        };
        assert!(cyc.root().is_none());
        assert_eq!(cyc.route_key(), (String::new(), String::new()));
        assert_eq!(s.decide(cyc, &mut || 0.5)[0].1, None);
    }

    #[test]
    fn ids_round_trip_as_hex() {
        let s = span(0xab, 0x01, Some(0x02), "/a", 1, false);
        let json = serde_json::to_string(&s).expect("json");
        assert!(json.contains(&"ab".repeat(16)) && json.contains("\"parent\":\"0202020202020202\""), "{json}");
        assert_eq!(serde_json::from_str::<TraceSpan>(&json).expect("back"), s);
        assert!(parse_hex::<8>("zz02020202020202").is_none());
    }
}
