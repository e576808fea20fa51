//! `[otlp.forward]`: every request the intake accepted, relayed unchanged (the same bytes, the
//! same `Content-Type` and `Content-Encoding`) to another OTLP/HTTP receiver, so one agent can
//! sit in front of an OpenTelemetry Collector, Tempo, Jaeger or a Datadog Agent and still
//! compute its own request metrics.
//!
//! The intake never waits for the relay: it puts the body in a queue bounded in requests and in
//! bytes and answers its exporter. `concurrency` workers take requests from the queue and post
//! them; a failed attempt is retried per core's [`DeliveryPolicy`] (backoff with jitter, the
//! receiver's Retry-After first, given up after `retry.max_age`); a permanent failure (a 4xx
//! other than 408/429) is given up at once. A request arriving at a full queue drops the oldest
//! waiting one, as the OpenTelemetry Collector's sending queue does when full: the newest data
//! is the most useful to an on-call engineer. Everything is counted per window in
//! `otlp_forward_requests{outcome}` (`sent`, `retried`, `dropped`, `failed`) and the queue's
//! length in `otlp_forward_queue`.
//!
//! The queue is memory only: what waits at shutdown is lost (logged with its count). The
//! request's body is the reference-counted buffer the intake read, so relaying copies nothing.
//! The headers are secrets: they appear in no log, error or Debug output; the endpoint is
//! logged with its credentials redacted.

use super::ForwardSection;
use crate::clock::Clock;
use crate::http_client;
use crate::secret::redact_url;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thorbis_obs_core::delivery::{DeliveryPolicy, RetryDecision};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;
use tokio::sync::{Notify, watch};

/// One accepted request, as it came.
#[derive(Clone, Debug)]
pub(super) struct Relay {
    /// `/v1/traces`, `/v1/metrics` or `/v1/logs`.
    pub(super) path: &'static str,
    pub(super) content_type: Option<HeaderValue>,
    pub(super) content_encoding: Option<HeaderValue>,
    pub(super) body: Bytes,
}

impl Relay {
    /// The request to `path` with `headers` and `body` as received.
    pub(super) fn new(path: &'static str, headers: &HeaderMap, body: Bytes) -> Self {
        Relay {
            path,
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            content_encoding: headers.get(header::CONTENT_ENCODING).cloned(),
            body,
        }
    }
}

/// The waiting requests and their bytes.
#[derive(Debug, Default)]
struct Waiting {
    relays: VecDeque<Relay>,
    bytes: usize,
}

/// Counts since the relay started.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// What the relay has done since it started, and what waits now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardTotals {
    /// Requests the receiver took.
    pub sent: u64,
    /// Failed attempts followed by another.
    pub retried: u64,
    /// Requests dropped from a full queue.
    pub dropped: u64,
    /// Requests given up (a permanent failure, or retried past `retry.max_age`).
    pub failed: u64,
    /// Requests waiting now.
    pub queued: u64,
}

/// The relay: its queue, its client and its counts.
pub(super) struct Forwarder {
    cfg: ForwardSection,
    /// The endpoint without a trailing `/`.
    base: String,
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    clock: Arc<dyn Clock>,
    waiting: Mutex<Waiting>,
    ready: Notify,
    counts: Counts,
    /// The totals when the last window closed, so each window gets its own counts.
    reported: Mutex<ForwardTotals>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").field("endpoint", &redact_url(&self.base)).finish_non_exhaustive()
    }
}

impl Forwarder {
    /// The relay `cfg` describes; None when no endpoint is set.
    pub(super) fn new(cfg: &ForwardSection, clock: Arc<dyn Clock>) -> Result<Option<Self>, String> {
        if cfg.endpoint.is_empty() {
            return Ok(None);
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("otlp.forward.headers.{name}: not a valid header name"))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("otlp.forward.headers.{name}: not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = http_client::client(cfg.timeout.get()).map_err(|e| e.to_string())?;
        Ok(Some(Forwarder {
            cfg: cfg.clone(),
            base: cfg.endpoint.trim_end_matches('/').to_string(),
            client,
            headers,
            clock,
            waiting: Mutex::default(),
            ready: Notify::new(),
            counts: Counts::default(),
            reported: Mutex::default(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `relay`, dropping the oldest waiting requests while the queue is over either bound.
    pub(super) fn push(&self, relay: Relay) {
        let mut w = self.lock();
        while !w.relays.is_empty()
            && (w.relays.len() >= self.cfg.max_queue_requests || w.bytes + relay.body.len() > self.cfg.max_queue_bytes)
        {
            if let Some(old) = w.relays.pop_front() {
                w.bytes -= old.body.len();
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        w.bytes += relay.body.len();
        w.relays.push_back(relay);
        drop(w);
        self.ready.notify_one();
    }

    /// Waiting requests now.
    pub(super) fn queued(&self) -> usize {
        self.lock().relays.len()
    }

    fn pop(&self) -> Option<Relay> {
        let mut w = self.lock();
        let r = w.relays.pop_front()?;
        w.bytes -= r.body.len();
        Some(r)
    }

    /// The next request to relay, waiting for one; None once `stop` is set.
    async fn next(&self, stop: &mut watch::Receiver<bool>) -> Option<Relay> {
        loop {
            if *stop.borrow() {
                return None;
            }
            let wake = self.ready.notified();
            if let Some(r) = self.pop() {
                return Some(r);
            }
            tokio::select! {
                _ = wake => {}
                _ = stop.changed() => return None,
            }
        }
    }

    /// One attempt at relaying `r`.
    async fn attempt(&self, r: &Relay) -> Result<(), thorbis_obs_core::channel::DeliveryError> {
        let mut req = self.client.post(format!("{}{}", self.base, r.path)).headers(self.headers.clone());
        if let Some(ct) = &r.content_type {
            req = req.header(header::CONTENT_TYPE, ct.clone());
        }
        if let Some(ce) = &r.content_encoding {
            req = req.header(header::CONTENT_ENCODING, ce.clone());
        }
        http_client::send(req.body(r.body.clone())).await.map(|_| ())
    }

    /// Relays `r` until it is taken, given up, or `stop` is set.
    async fn deliver(&self, r: Relay, policy: &DeliveryPolicy, stop: &mut watch::Receiver<bool>) {
        let first = self.clock.now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let e = match self.attempt(&r).await {
                Ok(()) => {
                    self.counts.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => e,
            };
            let now = self.clock.now();
            match policy.decide(attempts, first, now, &e, crate::clock::random_unit()) {
                RetryDecision::RetryAt(at) => {
                    self.counts.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(endpoint = %redact_url(&self.base), path = r.path, error = %e, "OTLP relay: retrying");
                    let wait = std::time::Duration::from_millis(u64::try_from(at.0 - now.0).unwrap_or(0));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
                RetryDecision::GiveUp(why) => {
                    self.counts.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(endpoint = %redact_url(&self.base), path = r.path, error = %why, "OTLP relay: request dropped");
                    return;
                }
            }
        }
    }

    /// One worker: relays queued requests one at a time until `stop`.
    pub(super) async fn work(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let policy = self.cfg.retry.clone();
        while let Some(r) = self.next(&mut stop).await {
            self.deliver(r, &policy, &mut stop).await;
        }
        let left = self.queued();
        if left > 0 {
            tracing::info!(requests = left, "OTLP relay: stopped with requests still queued (not relayed)");
        }
    }

    /// Starts `concurrency` workers until `stop`.
    pub(super) fn start(self: &Arc<Self>, stop: &watch::Receiver<bool>) {
        tracing::info!(endpoint = %redact_url(&self.base), "OTLP relay: forwarding accepted requests");
        for _ in 0..self.cfg.concurrency.max(1) {
            tokio::spawn(self.clone().work(stop.clone()));
        }
    }

    /// What the relay has done since it started.
    pub(super) fn totals(&self) -> ForwardTotals {
        let c = &self.counts;
        ForwardTotals {
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            queued: self.queued() as u64,
        }
    }

    /// The counts since the last call as samples stamped `at`; and the queue's length.
    pub(super) fn take_samples(&self, at: Timestamp) -> Vec<Sample> {
        let now = self.totals();
        let before = std::mem::replace(&mut *self.reported.lock().unwrap_or_else(|p| p.into_inner()), now);
        let mut out: Vec<Sample> = [
            ("sent", now.sent - before.sent),
            ("retried", now.retried - before.retried),
            ("dropped", now.dropped - before.dropped),
            ("failed", now.failed - before.failed),
        ]
        .into_iter()
        .map(|(o, n)| Sample::new("otlp_forward_requests", Labels::from_pairs([("outcome", o)]), n as f64, at))
        .collect();
        out.push(Sample::new("otlp_forward_queue", Labels::default(), now.queued as f64, at));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;

    fn relay(n: usize) -> Relay {
        Relay { path: "/v1/traces", content_type: None, content_encoding: None, body: Bytes::from(vec![0u8; n]) }
    }

    fn forwarder(requests: usize, bytes: usize) -> Forwarder {
        let cfg = ForwardSection {
            endpoint: "http://127.0.0.1:9".into(),
            max_queue_requests: requests,
            max_queue_bytes: bytes,
            ..ForwardSection::default()
        };
        Forwarder::new(&cfg, Arc::new(TokioClock::new())).ok().flatten().expect("a forwarder")
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let f = forwarder(3, 1 << 20);
        for n in 1..=5 {
            f.push(relay(n));
        }
        assert_eq!(f.queued(), 3);
        assert_eq!(f.counts.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(f.pop().map(|r| r.body.len()), Some(3), "the two oldest went");
        // Bytes bound too: a 900 KiB body pushes out what does not fit beside it.
        let f = forwarder(100, 1 << 20);
        f.push(relay(200 << 10));
        f.push(relay(200 << 10));
        f.push(relay(900 << 10));
        assert_eq!(f.queued(), 1);
        assert_eq!(f.lock().bytes, 900 << 10);
        assert_eq!(f.counts.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn headers_are_secret_in_debug() {
        let mut cfg = ForwardSection { endpoint: "https://user:pw@example.test/otlp".into(), ..Default::default() };
        cfg.headers.insert("dd-api-key".into(), crate::secret::Secret::new("sekret-key"));
        let f = Forwarder::new(&cfg, Arc::new(TokioClock::new())).ok().flatten().expect("a forwarder");
        let shown = format!("{f:?}");
        assert!(!shown.contains("sekret") && !shown.contains("pw@"), "{shown}");
        assert!(f.headers.get("dd-api-key").is_some_and(HeaderValue::is_sensitive));
    }
}
