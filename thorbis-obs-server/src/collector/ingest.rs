//! The collector at run time: admission, decoding, windows (see the module above).

use super::CollectorSection;
use super::limit::RateLimit;
use crate::agent::AgentHandle;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use thorbis_obs_core::rum::{Device, ErrorGroup, RumWindow, SessionTracker};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::wire::{self, Batch};

/// The window length in milliseconds (at least 1).
fn window_ms(cfg: &CollectorSection) -> i64 {
    i64::try_from(cfg.window.get().as_millis()).unwrap_or(60_000).max(1)
}

/// Closed windows kept in memory for the API (an hour of one-minute windows).
const KEEP_WINDOWS: usize = 60;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// What was wrong.
    pub message: String,
    /// The field, e.g. `events[3].value`, when one is to blame.
    pub field: Option<String>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Rejection { status, message: message.into(), field: field.map(str::to_string), retry_after: None }
    }

    fn outcome(&self) -> usize {
        match self.status.as_u16() {
            400 => 1,
            401 | 403 => 2,
            413 | 415 => 3,
            429 => 4,
            _ => 5,
        }
    }
}

/// Decodes and validates one batch body: size, JSON (lone UTF-16 surrogates, which the page's
/// `JSON.stringify` writes for broken strings, become U+FFFD instead of failing the batch), and
/// core's wire rules. Never panics, whatever the bytes.
pub fn decode(body: &[u8]) -> Result<Batch, Rejection> {
    if let Err(e) = wire::check_size(body.len()) {
        return Err(Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, e.message(), None));
    }
    let body = replace_lone_surrogates(body);
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        // Parsed again to name the field: tracking the path costs the happy path a third.
        Err(plain) => {
            let de = &mut serde_json::Deserializer::from_slice(&body);
            let e = match serde_path_to_error::deserialize::<_, Batch>(de) {
                Ok(_) => return Err(Rejection::new(StatusCode::BAD_REQUEST, plain.to_string(), None)),
                Err(e) => e,
            };
            let path = e.path().to_string();
            let field = (path != ".").then_some(path);
            return Err(Rejection::new(StatusCode::BAD_REQUEST, e.into_inner().to_string(), field.as_deref()));
        }
    };
    batch.validate().map_err(|e| Rejection::new(StatusCode::BAD_REQUEST, e.message(), Some(e.path())))?;
    Ok(batch)
}

/// `\uD800`-`\uDBFF` not followed by `\uDC00`-`\uDFFF`, or a trailing surrogate alone, become
/// `\uFFFD`. The body is borrowed unchanged when it has no `\u` escape of a surrogate.
fn replace_lone_surrogates(body: &[u8]) -> Cow<'_, [u8]> {
    let surrogate_at = |b: &[u8], i: usize| -> Option<u16> {
        let esc = b.get(i..i + 6)?;
        if esc[0] != b'\\' || esc[1] != b'u' {
            return None;
        }
        let hex = std::str::from_utf8(&esc[2..]).ok()?;
        u16::from_str_radix(hex, 16).ok().filter(|u| (0xD800..=0xDFFF).contains(u))
    };
    if !memchr::memmem::find_iter(body, b"\\u").any(|i| matches!(body.get(i + 2), Some(b'd' | b'D'))) {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            // An escaped backslash is not the start of an escape: copy both.
            if body.get(i + 1) == Some(&b'\\') {
                out.extend_from_slice(b"\\\\");
                i += 2;
                continue;
            }
            if let Some(u) = surrogate_at(body, i) {
                let paired = (0xD800..=0xDBFF).contains(&u)
                    && surrogate_at(body, i + 6).is_some_and(|l| (0xDC00..=0xDFFF).contains(&l));
                if paired {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    out.extend_from_slice(b"\\uFFFD");
                    i += 6;
                }
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// Counters of what the collector took and refused.
#[derive(Debug, Default)]
pub struct Stats {
    /// By outcome: accepted, invalid, unauthorised, too large or wrong type, rate limited, other.
    pub batches: [AtomicU64; 6],
    /// Events counted.
    pub events: AtomicU64,
}

impl Stats {
    /// `thorbis_collector_batches_total{outcome}` and `thorbis_collector_events_total` at `at`.
    pub fn samples(&self, at: Timestamp) -> Vec<thorbis_obs_core::Sample> {
        let mut out: Vec<_> = OUTCOMES
            .iter()
            .zip(&self.batches)
            .map(|(o, n)| {
                let labels = thorbis_obs_core::Labels::from_pairs([("outcome", *o)]);
                thorbis_obs_core::Sample::new(
                    "thorbis_collector_batches_total",
                    labels,
                    n.load(Ordering::Relaxed) as f64,
                    at,
                )
            })
            .collect();
        let events = self.events.load(Ordering::Relaxed) as f64;
        out.push(thorbis_obs_core::Sample::new("thorbis_collector_events_total", Default::default(), events, at));
        out
    }
}

/// Outcome labels of [`Stats::batches`].
pub const OUTCOMES: [&str; 6] =
    ["accepted", "invalid", "unauthorized", "too_large_or_wrong_type", "rate_limited", "other"];

struct Open {
    window: RumWindow,
    sessions: SessionTracker,
    per_ip: RateLimit,
    per_token: RateLimit,
}

/// The collector's state: the open window, the limits, recent closed windows.
pub struct Collector {
    cfg: CollectorSection,
    /// This agent's name on a shared store: random per process.
    agent_id: String,
    open: Mutex<Open>,
    recent: Mutex<VecDeque<RumWindow>>,
    /// What it took and refused.
    pub stats: Stats,
    /// The OTLP exporters, when `[collector.otlp]` is set.
    #[cfg(feature = "otlp")]
    otlp: Option<std::sync::Arc<super::otlp::Otlp>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("window", &self.cfg.window).finish_non_exhaustive()
    }
}

impl Collector {
    /// A collector with `cfg`; its first window is the one `now` falls in (windows are aligned
    /// to multiples of their length since the epoch).
    pub fn new(cfg: CollectorSection, now: Timestamp) -> Self {
        let burst = |per_minute: u32| (per_minute / 10).max(10);
        let w = window_ms(&cfg);
        Collector {
            open: Mutex::new(Open {
                window: RumWindow::new(Timestamp(now.0.div_euclid(w) * w)),
                sessions: SessionTracker::default(),
                per_ip: RateLimit::new(cfg.per_ip_per_minute, burst(cfg.per_ip_per_minute)),
                per_token: RateLimit::new(cfg.per_token_per_minute, burst(cfg.per_token_per_minute)),
            }),
            recent: Mutex::new(VecDeque::new()),
            stats: Stats::default(),
            #[cfg(feature = "otlp")]
            otlp: cfg.otlp.as_ref().and_then(|o| match super::otlp::Otlp::new(o) {
                Ok(x) => Some(std::sync::Arc::new(x)),
                Err(e) => {
                    tracing::error!(error = %e, "OTLP export is off");
                    None
                }
            }),
            agent_id: format!(
                "agent-{}-{:x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0)
            ),
            cfg,
        }
    }

    /// The aggregation window.
    pub fn window(&self) -> std::time::Duration {
        self.cfg.window.get()
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the open window at `now` and returns it (a new one opens); sessions idle for
    /// `session_idle` end into it.
    pub fn close_window(&self, now: Timestamp) -> RumWindow {
        let idle = i64::try_from(self.cfg.session_idle.get().as_millis()).unwrap_or(i64::MAX);
        let closed = {
            let mut open = self.open();
            let Open { window, sessions, .. } = &mut *open;
            sessions.expire(now.0, idle, window);
            std::mem::replace(window, RumWindow::new(now))
        };
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_back(closed.clone());
        while recent.len() > KEEP_WINDOWS {
            recent.pop_front();
        }
        closed
    }

    /// Keeps a closed window in the store (it survives a restart, and agents sharing the store
    /// read it).
    async fn keep(&self, store: &dyn crate::store::Store, w: &RumWindow) {
        if w.is_empty() {
            return;
        }
        match serde_json::to_string(w) {
            Ok(body) => {
                if let Err(e) = store.record_rum_window(w.start, &self.agent_id, &body).await {
                    tracing::warn!(error = %e, "cannot store the RUM window; it lives in memory only");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode the RUM window"),
        }
    }

    /// Reloads the windows of the last hour from the store (all agents' merged by period), as
    /// an agent does when it starts.
    pub(crate) async fn reload(&self, store: &dyn crate::store::Store, now: Timestamp) {
        let rows = match store.rum_windows_since(now.minus(std::time::Duration::from_secs(3600))).await {
            Ok(r) => r,
            Err(e) => return tracing::warn!(error = %e, "cannot reload the stored RUM windows"),
        };
        let mut by_start: std::collections::BTreeMap<i64, RumWindow> = std::collections::BTreeMap::new();
        for (start, agent, body) in rows {
            match serde_json::from_str::<RumWindow>(&body) {
                Ok(w) => by_start.entry(start.0).or_insert_with(|| RumWindow::new(start)).merge(&w),
                Err(e) => tracing::warn!(agent = %agent, error = %e, "a stored RUM window cannot be read; skipped"),
            }
        }
        let reloaded = by_start.len();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.extend(by_start.into_values());
        while recent.len() > KEEP_WINDOWS {
            recent.pop_front();
        }
        if reloaded > 0 {
            tracing::info!(windows = reloaded, "RUM windows of the last hour reloaded");
        }
    }

    /// Merges the other agents' windows of the same period into the closed window `own` after
    /// waiting `grace` for them to be written.
    async fn merge_shared(
        &self,
        store: &dyn crate::store::Store,
        own: RumWindow,
        grace: std::time::Duration,
    ) -> RumWindow {
        let start = own.start;
        tokio::time::sleep(grace).await;
        let mut merged = own;
        match store.rum_windows(start).await {
            Ok(rows) => {
                for (agent, body) in rows.iter().filter(|(a, _)| *a != self.agent_id) {
                    match serde_json::from_str::<RumWindow>(body) {
                        Ok(w) => merged.merge(&w),
                        Err(e) => {
                            tracing::warn!(agent = %agent, error = %e, "a shared RUM window cannot be read; skipped")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the other agents' RUM windows"),
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = recent.iter_mut().rev().find(|w| w.start == start) {
            *w = merged.clone();
        }
        merged
    }

    /// The windows since `since` merged, the open one included.
    pub fn merged_since(&self, since: Timestamp) -> RumWindow {
        let mut all = self.open().window.clone();
        for w in self.recent.lock().unwrap_or_else(PoisonError::into_inner).iter().filter(|w| w.start >= since) {
            all.merge(w);
        }
        all
    }

    /// Error groups of the windows since `since` (the open one included), most frequent first.
    pub fn errors_since(&self, since: Timestamp) -> Vec<ErrorGroup> {
        let mut groups: Vec<ErrorGroup> = self.merged_since(since).errors.into_values().collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.fingerprint.cmp(&b.fingerprint)));
        groups
    }

    fn admit(&self, headers: &HeaderMap, uri: &Uri, peer: SocketAddr, now: Timestamp) -> Result<(), Rejection> {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if !self.origin_allowed(origin) {
                return Err(Rejection::new(
                    StatusCode::FORBIDDEN,
                    format!("origin {origin} is not in collector.allowed_origins"),
                    Some("Origin"),
                ));
            }
        }
        let token = query_param(uri, "token")
            .or_else(|| headers.get("x-thorbis-token").and_then(|v| v.to_str().ok()).map(str::to_string));
        if !self.cfg.client_tokens.is_empty() {
            let known = token.as_deref().is_some_and(|t| self.cfg.client_tokens.iter().any(|k| k.expose() == t));
            if !known {
                let what = if token.is_some() { "unknown client token" } else { "missing client token" };
                return Err(Rejection::new(StatusCode::UNAUTHORIZED, what, Some("token")));
            }
        }
        let ip = self
            .cfg
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| peer.ip().to_string());
        let now_ms = now.0 as f64;
        let mut open = self.open();
        // Requests without a token have no per-token limit, only the per-IP one.
        let limited = match token.as_deref() {
            Some(t) => open.per_token.check(t, now_ms).map_err(|w| (w, "client token")),
            None => Ok(()),
        }
        .and_then(|()| open.per_ip.check(&ip, now_ms).map_err(|w| (w, "IP")));
        if let Err((wait_ms, what)) = limited {
            let mut r = Rejection::new(StatusCode::TOO_MANY_REQUESTS, format!("rate limit of this {what}"), None);
            r.retry_after = Some((wait_ms / 1000.0).ceil().max(1.0) as u64);
            return Err(r);
        }
        Ok(())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.cfg.allowed_origins.is_empty() || self.cfg.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Takes one request: checks, decodes, counts. Returns the number of events counted.
    pub fn take(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        peer: SocketAddr,
        body: &[u8],
        now: Timestamp,
    ) -> Result<usize, Rejection> {
        let r = self.admit(headers, uri, peer, now).and_then(|()| self.count(headers, body, now));
        let outcome = match &r {
            Ok(_) => 0,
            Err(e) => e.outcome(),
        };
        self.stats.batches[outcome].fetch_add(1, Ordering::Relaxed);
        r
    }

    /// Decodes an admitted body and counts it into the open window.
    fn count(&self, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<usize, Rejection> {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("text/plain");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "text/plain" && mime != "application/json" {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {mime:?}: send text/plain or application/json"),
                Some("Content-Type"),
            ));
        }
        let batch = decode(body)?;
        let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let device = Device::from_user_agent(ua);
        let done = {
            let mut open = self.open();
            open.sessions.observe(&batch, now.0);
            open.window.ingest(&batch, device)
        };
        self.stats.events.fetch_add(done.events as u64, Ordering::Relaxed);
        Ok(done.events)
    }

    fn cors(&self, headers: &HeaderMap, resp: &mut Response) {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let allow = match origin {
            Some(o) if self.origin_allowed(o) => {
                if self.cfg.allowed_origins.is_empty() {
                    "*".to_string()
                } else {
                    o.to_string()
                }
            }
            _ => return,
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn refuse(r: &Rejection) -> Response {
    let mut body = json!({ "error": r.message });
    if let Some(f) = &r.field {
        body["field"] = json!(f);
    }
    let mut resp = (r.status, axum::Json(body)).into_response();
    if let Some(s) = r.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// `POST /v1/rum`.
pub(crate) async fn ingest(
    State(h): State<AgentHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let Some(c) = h.shared().collector.clone() else {
        return refuse(&Rejection::new(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)", None));
    };
    let now = h.shared().clock.now();
    let result = match body {
        Ok(b) => c.take(&headers, &uri, peer, &b, now),
        Err(e) => {
            let r = Rejection::new(e.status(), e.body_text(), None);
            c.stats.batches[r.outcome()].fetch_add(1, Ordering::Relaxed);
            Err(r)
        }
    };
    let mut resp = match result {
        Ok(n) => (StatusCode::ACCEPTED, axum::Json(json!({ "accepted": n }))).into_response(),
        Err(r) => {
            tracing::debug!(status = r.status.as_u16(), error = %r.message, field = ?r.field, "RUM batch refused");
            refuse(&r)
        }
    };
    c.cors(&headers, &mut resp);
    resp
}

/// `OPTIONS /v1/rum`: CORS preflight.
pub(crate) async fn preflight(State(h): State<AgentHandle>, headers: HeaderMap) -> Response {
    let Some(c) = h.shared().collector.clone() else { return StatusCode::NOT_FOUND.into_response() };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !c.origin_allowed(origin) {
        return refuse(&Rejection::new(
            StatusCode::FORBIDDEN,
            format!("origin {origin} is not allowed"),
            Some("Origin"),
        ));
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    c.cors(&headers, &mut resp);
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, X-Thorbis-Token"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

/// Closes a window every `window`, pushing its samples into the engine, until `stop`.
pub(crate) async fn run_windows(
    shared: std::sync::Arc<crate::agent::Shared>,
    collector: std::sync::Arc<Collector>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let w = window_ms(&collector.cfg);
    loop {
        // Windows end on multiples of their length since the epoch, as Prometheus aligns its
        // steps: every agent's window of a minute covers the same minute, so they merge.
        let t = shared.clock.now().0;
        let end = (t.div_euclid(w) + 1) * w;
        let wait = std::time::Duration::from_millis(u64::try_from(end - t).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
        let now = Timestamp(end);
        let mut closed = collector.close_window(now);
        // The collector's own totals, so refusals show in /metrics and can be alerted on.
        let mut samples = collector.stats.samples(now);
        collector.keep(shared.store.as_ref(), &closed).await;
        if shared.store.is_shared() {
            // Agents behind a load balancer: every agent merges every agent's window, so each
            // (and the leader, which evaluates the rules) sees all the traffic.
            let grace = (collector.window() / 4).min(std::time::Duration::from_secs(5));
            closed = collector.merge_shared(shared.store.as_ref(), closed, grace).await;
        }
        if let Err(e) = shared.store.prune_rum_windows(now.minus(std::time::Duration::from_secs(2 * 3600))).await {
            tracing::warn!(error = %e, "cannot prune stored RUM windows");
        }
        if !closed.is_empty() {
            samples.extend(closed.samples(now));
        }
        #[cfg(feature = "otlp")]
        if let Some(o) = &collector.otlp {
            let errors: Vec<_> = closed.errors.values().cloned().collect();
            o.export(&samples, &errors).await;
        }
        let mut refused = 0;
        for s in &samples {
            if let Err(e) = shared.ingest(s) {
                refused += 1;
                tracing::warn!(metric = %s.name, error = %e, "RUM sample refused by the engine");
            }
        }
        tracing::debug!(samples = samples.len(), refused, errors = closed.errors.len(), "RUM window closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let body = br#"{"a":"x\ud83d","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00y"}"#;
        let fixed = replace_lone_surrogates(body);
        let v: serde_json::Value = serde_json::from_slice(&fixed).expect("parses now");
        assert_eq!(v["a"], "x\u{fffd}");
        assert_eq!(v["b"], "\u{1f600}", "a pair is kept");
        assert_eq!(v["c"], "\\ud800", "an escaped backslash is text");
        assert_eq!(v["d"], "\u{fffd}y");
        assert!(matches!(replace_lone_surrogates(br#"{"a":"plain \u00e9"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn decode_names_the_field() {
        let e = decode(br#"{"v":1}"#).expect_err("incomplete");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("missing field"), "{e:?}");
        let e = decode(b"not json").expect_err("garbage");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = decode(&vec![b' '; 70_000]).expect_err("big");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
