//! The collector's state: the open window with its sessions and rate limits, the recent closed
//! windows, and the loop that closes a window every period.

use super::CollectorSection;
use super::decode::{Rejection, decode};
use super::limit::RateLimit;
use crate::hub::Hub;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use thorbis_obs_core::rum::{Device, ErrorGroup, RumWindow, SessionTracker};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::traces::{TraceId, TraceSpan, browser_span, parse_hex};
use thorbis_obs_core::wire::{Batch, Event};

/// The window length in milliseconds (at least 1).
fn window_ms(cfg: &CollectorSection) -> i64 {
    i64::try_from(cfg.window.get().as_millis()).unwrap_or(60_000).max(1)
}

/// Closed windows kept in memory for the API (an hour of one-minute windows).
const KEEP_WINDOWS: usize = 60;
/// How long readers share a merged window, ms.
pub const MERGED_FRESH_MS: i64 = 1_000;
/// Ranges whose merged windows are kept.
pub const MERGED_CACHED: usize = 8;

/// Counters of what the collector took and refused.
#[derive(Debug, Default)]
pub struct Stats {
    /// By outcome: accepted, invalid, unauthorised, too large or wrong type, rate limited, other.
    pub batches: [AtomicU64; 6],
    /// Events counted.
    pub events: AtomicU64,
    /// Replay chunks by outcome: [`REPLAY_OUTCOMES`].
    pub replay_chunks: [AtomicU64; 4],
    /// Replay: sessions and compressed bytes kept, as of the last prune.
    pub replay_kept: [AtomicU64; 2],
    /// Replay chunks removed: past the retention, for the total cap.
    pub replay_removed: [AtomicU64; 2],
}

/// Outcome labels of [`Stats::replay_chunks`].
pub const REPLAY_OUTCOMES: [&str; 4] = ["stored", "duplicate", "session_full", "refused"];

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
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed) as f64;
        let sample = |name: &str, pair: Option<(&str, &str)>, v: f64| {
            thorbis_obs_core::Sample::new(name, thorbis_obs_core::Labels::from_pairs(pair), v, at)
        };
        for (o, n) in REPLAY_OUTCOMES.iter().zip(&self.replay_chunks) {
            out.push(sample("thorbis_replay_chunks_total", Some(("outcome", o)), load(n)));
        }
        out.push(sample("thorbis_replay_sessions", None, load(&self.replay_kept[0])));
        out.push(sample("thorbis_replay_bytes", None, load(&self.replay_kept[1])));
        for (r, n) in ["expired", "evicted"].iter().zip(&self.replay_removed) {
            out.push(sample("thorbis_replay_removed_chunks_total", Some(("reason", r)), load(n)));
        }
        out
    }
}

/// Errors of one batch whose stacks are read with source maps, at most (the SDK folds repeats,
/// so a real page sends a few): with the maps of at most 8 scripts a stack, a batch costs at
/// most 40 map lookups, most of them answered by the cache.
pub(super) const MAX_SYMBOLICATED: usize = 5;

/// Outcome labels of [`Stats::batches`].
pub const OUTCOMES: [&str; 6] =
    ["accepted", "invalid", "unauthorized", "too_large_or_wrong_type", "rate_limited", "other"];

struct Open {
    window: RumWindow,
    sessions: SessionTracker,
    per_ip: RateLimit,
    per_token: RateLimit,
    /// Since when the caps' admitted values are carried from window to window.
    caps_since: Timestamp,
}

/// Where the browser's spans go (the trace store): the spans of sampled sessions, and the
/// trace ids that browser errors point at (to be kept), at the arrival time. A value the agent
/// hands down: the collector does not know the trace store.
pub type SpanSink = Arc<dyn Fn(Vec<TraceSpan>, Vec<TraceId>, Timestamp) + Send + Sync>;

/// The collector's state: the open window, the limits, recent closed windows.
pub struct Collector {
    cfg: CollectorSection,
    /// This agent's name on a shared store: random per process.
    agent_id: String,
    open: Mutex<Open>,
    recent: Mutex<VecDeque<RumWindow>>,
    /// `trusted_proxies`, parsed.
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Merged windows by range (in windows since the epoch), with when they were merged.
    merged: Mutex<std::collections::HashMap<i64, (Timestamp, Arc<RumWindow>)>>,
    /// Held while merging.
    merging: Mutex<()>,
    /// What it took and refused.
    pub stats: Stats,
    /// Replay chunks read and decoded at once, bounded.
    pub(super) replay_gate: super::replay::Gate,
    /// The OTLP exporters, when `[collector.otlp]` is set.
    #[cfg(feature = "otlp")]
    otlp: Option<std::sync::Arc<super::otlp::Otlp>>,
    hub: Arc<Hub>,
    /// Timeline rows waiting for the store.
    pub(super) timeline: super::timeline::Pending,
    /// The trace store's intake, when traces are kept.
    spans: Option<SpanSink>,
    /// Source maps, when the agent has them.
    pub(super) symbolicator: Option<crate::hub::Symbolicator>,
    /// The error groups over their life.
    pub(super) book: super::issues::Book,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("window", &self.cfg.window).finish_non_exhaustive()
    }
}

impl Collector {
    /// A collector with `cfg` that feeds `hub`; its first window is the one the hub's "now"
    /// falls in (windows are aligned to multiples of their length since the epoch).
    pub fn new(cfg: CollectorSection, hub: Arc<Hub>) -> Self {
        let now = hub.now();
        let burst = |per_minute: u32| (per_minute / 10).max(10);
        let w = window_ms(&cfg);
        Collector {
            open: Mutex::new(Open {
                window: RumWindow::new(Timestamp(now.0.div_euclid(w) * w)),
                sessions: SessionTracker::default(),
                per_ip: RateLimit::new(cfg.per_ip_per_minute, burst(cfg.per_ip_per_minute)),
                per_token: RateLimit::new(cfg.per_token_per_minute, burst(cfg.per_token_per_minute)),
                caps_since: now,
            }),
            recent: Mutex::new(VecDeque::new()),
            merged: Mutex::default(),
            merging: Mutex::default(),
            trusted_proxies: cfg.trusted_proxies.iter().filter_map(|p| super::parse_cidr(p).ok()).collect(),
            stats: Stats::default(),
            replay_gate: super::replay::Gate::new(&cfg.replay),
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
            hub,
            timeline: super::timeline::Pending::default(),
            spans: None,
            symbolicator: None,
            book: Default::default(),
        }
    }

    /// Reads browser errors' stacks with `s` (source maps) when they arrive, so their groups
    /// come from the original frames, and when an error group is shown.
    pub fn with_symbolicator(mut self, s: Option<crate::hub::Symbolicator>) -> Self {
        self.symbolicator = s;
        self
    }

    /// Sends the browser's spans (and the traces its errors point at) to `sink`.
    pub fn with_span_sink(mut self, sink: Option<SpanSink>) -> Self {
        self.spans = sink;
        self
    }

    /// The config it runs with.
    pub(super) fn config(&self) -> &CollectorSection {
        &self.cfg
    }

    /// The hub it feeds.
    pub(super) fn hub(&self) -> &Arc<Hub> {
        &self.hub
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
            let Open { window, sessions, caps_since, .. } = &mut *open;
            sessions.expire(now.0, idle, window);
            let mut next = RumWindow::new(now);
            if now.0 - caps_since.0 < thorbis_obs_core::rum::CAPS_CARRIED_MS {
                next.inherit_caps(window);
            } else {
                *caps_since = now;
            }
            std::mem::replace(window, next)
        };
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_back(closed.clone());
        while recent.len() > KEEP_WINDOWS {
            recent.pop_front();
        }
        self.forget_merged();
        closed
    }

    /// Keeps a closed window in the store (it survives a restart, and agents sharing the store
    /// read it).
    async fn keep(&self, w: &RumWindow) {
        let store = self.hub.store();
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
    pub async fn reload(&self) {
        let now = self.hub.now();
        let rows = match self.hub.store().rum_windows_since(now.minus(std::time::Duration::from_secs(3600))).await {
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
        drop(recent);
        self.forget_merged();
        if reloaded > 0 {
            tracing::info!(windows = reloaded, "RUM windows of the last hour reloaded");
        }
    }

    /// Merges the other agents' windows of the same period into the closed window `own` after
    /// waiting `grace` for them to be written.
    async fn merge_shared(&self, own: RumWindow, grace: std::time::Duration) -> RumWindow {
        let start = own.start;
        tokio::time::sleep(grace).await;
        let mut merged = own;
        match self.hub.store().rum_windows(start).await {
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
        self.forget_merged();
        merged
    }

    /// The windows since `since` merged, the open one included. Readers share one merged
    /// window per range for up to [`MERGED_FRESH_MS`] (a thousand readers a second merge once,
    /// not a thousand times); at most [`MERGED_CACHED`] ranges are kept. The merge is CPU work:
    /// call it off the runtime's threads (`spawn_blocking`) when the range is long.
    pub fn merged_since(&self, since: Timestamp) -> Arc<RumWindow> {
        let now = self.hub.now();
        let w = window_ms(&self.cfg);
        // Ranges are rounded to whole windows, so nearby `since`s share an entry.
        let key = since.0.div_euclid(w);
        {
            let cache = self.merged.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((at, m)) = cache.get(&key) {
                if (0..MERGED_FRESH_MS).contains(&(now.0 - at.0)) {
                    return m.clone();
                }
            }
        }
        // One merge at a time: readers that missed the cache together wait for it and share it.
        let _merging = self.merging.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, m)) = self.merged.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            if (0..MERGED_FRESH_MS).contains(&(now.0 - at.0)) {
                return m.clone();
            }
        }
        let mut all = self.open().window.clone();
        for win in self.recent.lock().unwrap_or_else(PoisonError::into_inner).iter().filter(|win| win.start >= since) {
            all.merge(win);
        }
        let all = Arc::new(all);
        let mut cache = self.merged.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MERGED_CACHED && !cache.contains_key(&key) {
            if let Some(oldest) = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k) {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, (now, all.clone()));
        all
    }

    /// Drops the merged windows readers share (a window closed or merged).
    fn forget_merged(&self) {
        self.merged.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Counts errors that servers reported (the OTLP intake's error log records) into the open
    /// window's error groups, beside the browser's.
    pub fn record_server_errors(&self, errors: &[thorbis_obs_core::rum::ServerError], arrival: Timestamp) {
        let mut open = self.open();
        for e in errors {
            open.window.record_server_error(e, arrival);
        }
    }

    /// Error groups of the windows since `since` (the open one included), most frequent first:
    /// `limit` of them from `offset`, with how many there are in all.
    /// With `trace`, only the groups whose sample points at that trace.
    pub fn errors_page(
        &self,
        since: Timestamp,
        offset: usize,
        limit: usize,
        trace: Option<&str>,
    ) -> (usize, Vec<ErrorGroup>) {
        let merged = self.merged_since(since);
        let mut groups: Vec<&ErrorGroup> = merged
            .errors
            .values()
            .filter(|g| trace.is_none_or(|t| g.tags.get("trace_id").is_some_and(|id| id.eq_ignore_ascii_case(t))))
            .collect();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.fingerprint.cmp(&b.fingerprint)));
        (groups.len(), groups.into_iter().skip(offset).take(limit).cloned().collect())
    }

    /// The `limit` most frequent error groups since `since`.
    pub fn errors_since(&self, since: Timestamp, limit: usize) -> Vec<ErrorGroup> {
        self.errors_page(since, 0, limit, None).1
    }

    /// Admits a request before its body is read: origin, client token, rate limits, content
    /// type. Nothing of a refused request's body is read.
    pub fn admit(&self, headers: &HeaderMap, uri: &Uri, peer: SocketAddr, now: Timestamp) -> Result<(), Rejection> {
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
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = super::client_ip(peer.ip(), forwarded, &self.trusted_proxies).to_string();
        let now_ms = now.0 as f64;
        let mut open = self.open();
        // Only configured tokens have a limit of their own (made-up ones were refused above);
        // without configured tokens, only the per-IP limit applies.
        let limited = match token.as_deref() {
            Some(t) if !self.cfg.client_tokens.is_empty() => {
                open.per_token.check(t, now_ms).map_err(|w| (w, "client token"))
            }
            _ => Ok(()),
        }
        .and_then(|()| open.per_ip.check(&ip, now_ms).map_err(|w| (w, "IP")));
        if let Err((wait_ms, what)) = limited {
            let mut r = Rejection::new(StatusCode::TOO_MANY_REQUESTS, format!("rate limit of this {what}"), None);
            r.retry_after = Some((wait_ms / 1000.0).ceil().max(1.0) as u64);
            return Err(r);
        }
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("text/plain");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "text/plain" && mime != "application/json" {
            return Err(Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {mime:?}: send text/plain or application/json"),
                Some("Content-Type"),
            ));
        }
        Ok(())
    }

    pub(super) fn origin_allowed(&self, origin: &str) -> bool {
        self.cfg.allowed_origins.is_empty() || self.cfg.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Counts a request's outcome in [`Collector::stats`].
    pub fn record(&self, r: &Result<usize, Rejection>) {
        let outcome = match r {
            Ok(_) => 0,
            Err(e) => e.outcome(),
        };
        self.stats.batches[outcome].fetch_add(1, Ordering::Relaxed);
    }

    /// Decodes an admitted body and counts it into the open window.
    pub fn count(&self, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<usize, Rejection> {
        let batch = self.decode_batch(body, now)?;
        Ok(self.apply(headers, batch, now))
    }

    /// A batch read and checked, its times moved onto the collector's clock.
    pub(super) fn decode_batch(&self, body: &[u8], now: Timestamp) -> Result<Batch, Rejection> {
        let mut batch = decode(body)?;
        // The page's clock is the page's word: times move onto ours before anything counts.
        batch.align_to(now);
        Ok(batch)
    }

    /// Gives the batch's errors the fingerprint of their original frames, where the release's
    /// source maps (or the maps their scripts' debug ids name) cover them (at most [`MAX_SYMBOLICATED`] errors a batch; business errors and
    /// errors with the page's own fingerprint keep theirs).
    pub(super) async fn symbolicate(&self, batch: &mut Batch) {
        let Some(sym) = &self.symbolicator else { return };
        let release = batch.version.clone().unwrap_or_default();
        let mut done = 0;
        for e in &mut batch.events {
            let Event::Error {
                message,
                stack: Some(stack),
                fingerprint: None,
                symbolicated_fingerprint,
                debug_ids,
                ..
            } = e
            else {
                continue;
            };
            // Without a release only the scripts' debug ids can name their maps.
            if release.is_empty() && debug_ids.is_empty() {
                continue;
            }
            if done == MAX_SYMBOLICATED {
                break;
            }
            done += 1;
            let frames = thorbis_obs_core::domain::errors::parse_stack(stack);
            if frames.is_empty() {
                continue;
            }
            let read = sym(release.clone(), frames, debug_ids.clone()).await;
            if read.iter().any(|f| f.mapped) {
                *symbolicated_fingerprint =
                    Some(thorbis_obs_core::domain::errors::symbolicated_fingerprint(message, &read));
            }
        }
    }

    /// Counts a decoded batch into the open window (and the timeline, the trace store).
    pub(super) fn apply(&self, headers: &HeaderMap, batch: Batch, now: Timestamp) -> usize {
        let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let device = Device::from_user_agent(ua);
        let done = {
            let mut open = self.open();
            open.sessions.observe(&batch, now.0);
            open.window.ingest(&batch, (device, thorbis_obs_core::rum::browser_family(ua)), now)
        };
        self.stats.events.fetch_add(done.events as u64, Ordering::Relaxed);
        if self.cfg.timeline_max_events > 0 {
            self.timeline.push(super::timeline::rows_of(&batch));
        }
        if let Some(sink) = &self.spans {
            let (spans, links) = browser_traces(&batch);
            if !spans.is_empty() || !links.is_empty() {
                sink(spans, links, now);
            }
        }
        done.events
    }

    pub(super) fn cors(&self, headers: &HeaderMap, resp: &mut Response) {
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

/// The spans of a batch from a sampled session (an unsampled one sends none, and its spans
/// are not recorded if it does), and the traces its errors point at.
fn browser_traces(batch: &Batch) -> (Vec<TraceSpan>, Vec<TraceId>) {
    let spans = if batch.session.sampled {
        batch.events.iter().filter_map(|e| browser_span(batch, e)).collect()
    } else {
        Vec::new()
    };
    let links = batch
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error { trace_id: Some(t), .. } => parse_hex(t),
            _ => None,
        })
        .collect();
    (spans, links)
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Closes a window every `window`, pushing its samples into the engine, until `stop`.
pub async fn run_windows(collector: Arc<Collector>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let hub = collector.hub.clone();
    let w = window_ms(&collector.cfg);
    loop {
        // Windows end on multiples of their length since the epoch, as Prometheus aligns its
        // steps: every agent's window of a minute covers the same minute, so they merge.
        let t = hub.now().0;
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
        let dropped = collector.timeline.dropped.load(Ordering::Relaxed) as f64;
        samples.push(thorbis_obs_core::Sample::new(
            "thorbis_collector_timeline_dropped_total",
            Default::default(),
            dropped,
            now,
        ));
        collector.keep(&closed).await;
        if hub.store().is_shared() {
            // Agents behind a load balancer: every agent merges every agent's window, so each
            // (and the leader, which evaluates the rules) sees all the traffic.
            let grace = (collector.window() / 4).min(std::time::Duration::from_secs(5));
            closed = collector.merge_shared(closed, grace).await;
        }
        if let Err(e) = hub.store().prune_rum_windows(now.minus(std::time::Duration::from_secs(2 * 3600))).await {
            tracing::warn!(error = %e, "cannot prune stored RUM windows");
        }
        if !closed.is_empty() {
            samples.extend(closed.samples(now));
        }
        // Every window, events or not: an episode's signal lasts its hour.
        samples.extend(collector.observe_issues(&closed, now).await);
        #[cfg(feature = "otlp")]
        if let Some(o) = &collector.otlp {
            let errors: Vec<_> = closed.errors.values().cloned().collect();
            o.export(&samples, &errors).await;
        }
        let mut refused = 0;
        let mut first = None;
        for s in &samples {
            if let Err(e) = hub.ingest(s) {
                refused += 1;
                first.get_or_insert(e);
            }
        }
        if let Some(e) = first {
            tracing::warn!(refused, first = %e, "RUM samples refused by the engine");
        }
        tracing::debug!(samples = samples.len(), refused, errors = closed.errors.len(), "RUM window closed");
    }
}
