//! [`RemoteAgent`]: the host's request metrics, `metrics` recorder and error reports sent to an
//! agent in another process, from a background task, through a bounded queue: the request
//! path only ever counts into memory and never waits on the network.
//!
//! - Samples (every source, at its own interval) go to the agent's `POST /api/v1/samples` as
//!   JSON, at most 1,000 per request (the API takes 256 KiB), with the API token.
//! - Errors (drained every second, one entry per fingerprint with its count) go to the OTLP
//!   intake's `POST /v1/logs` as protobuf log records at ERROR severity with OpenTelemetry's
//!   `exception.*` attributes and the intake's conventions for the rest (`business.process`,
//!   `business.step`, `business.code`, `thorbis.error.count`, `thorbis.breadcrumbs`), with the
//!   OTLP token.
//! - The queue holds at most `queue_requests` requests and `queue_bytes` bytes; when full, the
//!   oldest request is dropped (what the OpenTelemetry Collector's sending queue does), and its
//!   samples or errors are counted in [`RemoteStats`]. One request is sent at a time; a
//!   connection error, a timeout, 408, 429 or a 5xx keeps it at the head of the queue and the
//!   sender waits 1 s, doubling to 30 s, before trying again; another 4xx drops it as
//!   `rejected` (sending it again would not help).
//!
//! Replicas of one service that send to one agent need an `instance` label each (the sources'
//! builders take one), or their series would overwrite each other; errors need none.

use super::errors::ErrorReporter;
use crate::clock::system_now as wall_now;
use crate::secret::Secret;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::rum::ServerError;
use thorbis_obs_core::source::MetricSource;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Samples per request to the samples API.
const SAMPLES_PER_REQUEST: usize = 1_000;
/// How often errors are drained.
const ERROR_INTERVAL: Duration = Duration::from_secs(1);
/// The sender's first and longest wait after a failure.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// OpenTelemetry's ERROR severity number.
const SEVERITY_ERROR: i32 = 17;

/// Why a [`RemoteAgent`] cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The agent's address is not an http(s) URL.
    #[error("the remote agent's address {0:?} is not an http:// or https:// URL")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Not within a tokio runtime.
    #[error("a remote agent needs a tokio runtime (call spawn from within one)")]
    Runtime,
}

/// What the background task has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Requests the agent accepted.
    pub sent: u64,
    /// Attempts that failed and will be tried again (connection, timeout, 408, 429, 5xx).
    pub retried: u64,
    /// Requests the agent refused with another 4xx (dropped).
    pub rejected: u64,
    /// Samples dropped because the queue was full.
    pub dropped_samples: u64,
    /// Errors (repeats included) dropped because the queue was full.
    pub dropped_errors: u64,
    /// Requests waiting now.
    pub queued: u64,
}

/// Options of a [`RemoteAgent`]: `RemoteAgent::builder(url)`.
pub struct RemoteAgentBuilder {
    base: String,
    api_token: Option<Secret>,
    otlp_token: Option<Secret>,
    sources: Vec<Arc<dyn MetricSource>>,
    errors: Option<ErrorReporter>,
    queue_requests: usize,
    queue_bytes: usize,
    timeout: Duration,
}

impl std::fmt::Debug for RemoteAgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAgentBuilder")
            .field("base", &crate::secret::redact_url(&self.base))
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl RemoteAgentBuilder {
    /// The agent's API token (`[http] api_token`), for the samples API.
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.api_token = Some(Secret::new(token));
        self
    }

    /// The OTLP intake's token (one of `otlp.tokens`), for the errors; defaults to the API
    /// token.
    pub fn otlp_token(mut self, token: impl Into<String>) -> Self {
        self.otlp_token = Some(Secret::new(token));
        self
    }

    /// A source to collect at its interval and send (`RequestMetrics`, `MetricsRecorder`).
    pub fn source(mut self, source: Arc<dyn MetricSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// The error reports to send.
    pub fn errors(mut self, reporter: ErrorReporter) -> Self {
        self.errors = Some(reporter);
        self
    }

    /// At most `requests` requests and `bytes` bytes wait (default 256 and 16 MiB).
    pub fn queue(mut self, requests: usize, bytes: usize) -> Self {
        self.queue_requests = requests.max(1);
        self.queue_bytes = bytes;
        self
    }

    /// How long one request may take (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the background tasks on the current tokio runtime.
    pub fn spawn(self) -> Result<RemoteAgent, RemoteError> {
        if !crate::secret::is_http_url(&self.base) {
            return Err(RemoteError::Url(crate::secret::redact_url(&self.base)));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RemoteError::Runtime)?;
        let client =
            reqwest::Client::builder().timeout(self.timeout).build().map_err(|e| RemoteError::Client(e.to_string()))?;
        let queue = Arc::new(Queue {
            jobs: Mutex::new(VecDeque::new()),
            bytes: AtomicU64::new(0),
            max_requests: self.queue_requests,
            max_bytes: self.queue_bytes,
            ready: Notify::new(),
            done: Default::default(),
            stats: Counters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let base = self.base.trim_end_matches('/').to_string();
        let otlp_token = self.otlp_token.or_else(|| self.api_token.clone());
        let sender = Sender { client, base: base.clone(), api_token: self.api_token, otlp_token, queue: queue.clone() };
        let send_task = runtime.spawn(sender.run(stopped.clone()));
        let producer = Producer { sources: self.sources, errors: self.errors, queue: queue.clone() };
        let produce_task = runtime.spawn(producer.run(stopped));
        Ok(RemoteAgent { queue, stop, tasks: Mutex::new(vec![produce_task, send_task]) })
    }
}

/// The background sender of a host's metrics and errors to a remote agent (see the module
/// docs). Stops when dropped; [`RemoteAgent::shutdown`] sends what is left first.
#[derive(Debug)]
pub struct RemoteAgent {
    queue: Arc<Queue>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RemoteAgent {
    /// A sender to the agent at `base` (`http://agent:9464`).
    pub fn builder(base: impl Into<String>) -> RemoteAgentBuilder {
        RemoteAgentBuilder {
            base: base.into(),
            api_token: None,
            otlp_token: None,
            sources: Vec::new(),
            errors: None,
            queue_requests: 256,
            queue_bytes: 16 << 20,
            timeout: Duration::from_secs(5),
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.queue.stats;
        RemoteStats {
            sent: c.sent.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            dropped_samples: c.dropped_samples.load(Ordering::Relaxed),
            dropped_errors: c.dropped_errors.load(Ordering::Relaxed),
            queued: self.queue.jobs.lock().unwrap_or_else(PoisonError::into_inner).len() as u64,
        }
    }

    /// Collects once more, then gives the sender up to `grace` to empty the queue, and stops.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let all = futures_join(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(queued = self.stats().queued, "remote agent: requests left unsent at shutdown");
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

impl Drop for RemoteAgent {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            t.abort();
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    dropped_samples: AtomicU64,
    dropped_errors: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Samples,
    Logs,
}

/// One request waiting: what it carries and how many samples or errors.
#[derive(Debug)]
struct Job {
    kind: Kind,
    body: Vec<u8>,
    items: u64,
}

#[derive(Debug)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    bytes: AtomicU64,
    max_requests: usize,
    max_bytes: usize,
    ready: Notify,
    /// Set when the producer has made its last request.
    done: std::sync::atomic::AtomicBool,
    stats: Counters,
}

impl Queue {
    /// Appends `job`, dropping the oldest ones while it is full.
    fn push(&self, job: Job) {
        let size = job.body.len() as u64;
        if size > self.max_bytes as u64 {
            self.count_dropped(&job);
            return;
        }
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        while !jobs.is_empty()
            && (jobs.len() >= self.max_requests || self.bytes.load(Ordering::Relaxed) + size > self.max_bytes as u64)
        {
            if let Some(old) = jobs.pop_front() {
                self.bytes.fetch_sub(old.body.len() as u64, Ordering::Relaxed);
                self.count_dropped(&old);
            }
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        jobs.push_back(job);
        drop(jobs);
        self.ready.notify_one();
    }

    fn count_dropped(&self, job: &Job) {
        let counter = match job.kind {
            Kind::Samples => &self.stats.dropped_samples,
            Kind::Logs => &self.stats.dropped_errors,
        };
        counter.fetch_add(job.items, Ordering::Relaxed);
    }

    /// The oldest waiting request's kind and body (left in the queue).
    fn head(&self) -> Option<(Kind, Vec<u8>)> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).front().map(|j| (j.kind, j.body.clone()))
    }

    /// Removes the head if it is still the request that was sent (the producer may have
    /// dropped it meanwhile).
    fn pop_if(&self, body: &[u8]) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.front().is_some_and(|j| j.body == body) {
            if let Some(j) = jobs.pop_front() {
                self.bytes.fetch_sub(j.body.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

struct Producer {
    sources: Vec<Arc<dyn MetricSource>>,
    errors: Option<ErrorReporter>,
    queue: Arc<Queue>,
}

impl Producer {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut due: Vec<tokio::time::Instant> = self.sources.iter().map(|_| tokio::time::Instant::now()).collect();
        let mut tick = tokio::time::interval(ERROR_INTERVAL.min(
            self.sources.iter().map(|s| s.interval()).min().unwrap_or(ERROR_INTERVAL).max(Duration::from_millis(10)),
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            let now = tokio::time::Instant::now();
            for (source, due) in self.sources.iter().zip(due.iter_mut()) {
                if now >= *due || stopping {
                    *due = now + source.interval();
                    self.collect(source.as_ref()).await;
                }
            }
            if let Some(r) = &self.errors {
                let errors = r.drain();
                if !errors.is_empty() {
                    let items = errors.iter().map(|e| e.count).sum();
                    self.queue.push(Job { kind: Kind::Logs, body: logs_request(&errors).encode_to_vec(), items });
                }
            }
            if stopping {
                self.queue.done.store(true, Ordering::Release);
                self.queue.ready.notify_one();
                return;
            }
        }
    }

    async fn collect(&self, source: &dyn MetricSource) {
        match source.collect(wall_now()).await {
            Ok(samples) => {
                for chunk in samples.chunks(SAMPLES_PER_REQUEST) {
                    match serde_json::to_vec(chunk) {
                        Ok(body) => self.queue.push(Job { kind: Kind::Samples, body, items: chunk.len() as u64 }),
                        Err(e) => {
                            tracing::warn!(source = source.name(), error = %e, "remote agent: cannot encode samples")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(source = source.name(), error = %e, "remote agent: collection failed"),
        }
    }
}

struct Sender {
    client: reqwest::Client,
    base: String,
    api_token: Option<Secret>,
    otlp_token: Option<Secret>,
    queue: Arc<Queue>,
}

impl Sender {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wait = BACKOFF.0;
        loop {
            let Some((kind, body)) = self.queue.head() else {
                // Empty: done once the producer is (it collects once more when stopping).
                if self.queue.done.load(Ordering::Acquire) {
                    return;
                }
                self.queue.ready.notified().await;
                continue;
            };
            let (path, token, content_type) = match kind {
                Kind::Samples => ("/api/v1/samples", &self.api_token, "application/json"),
                Kind::Logs => ("/v1/logs", &self.otlp_token, "application/x-protobuf"),
            };
            let mut req = self
                .client
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone());
            if let Some(t) = token {
                req = req.bearer_auth(t.expose());
            }
            let status = req.send().await.map(|r| r.status());
            let c = &self.queue.stats;
            match status {
                Ok(s) if s.is_success() => {
                    c.sent.fetch_add(1, Ordering::Relaxed);
                    self.queue.pop_if(&body);
                    wait = BACKOFF.0;
                }
                Ok(s) if s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429 => {
                    tracing::warn!(status = s.as_u16(), path, "remote agent: request refused, dropped");
                    c.rejected.fetch_add(1, Ordering::Relaxed);
                    self.queue.pop_if(&body);
                }
                other => {
                    c.retried.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = &other {
                        tracing::debug!(error = %crate::secret::redact_url(&e.to_string()), "remote agent: send failed");
                    }
                    // Stopping: what is left is not worth holding the host's shutdown for.
                    if *stop.borrow() {
                        return;
                    }
                    let stopped = tokio::select! {
                        _ = tokio::time::sleep(wait) => false,
                        r = stop.changed() => r.is_ok(),
                    };
                    if stopped {
                        return;
                    }
                    wait = (wait * 2).min(BACKOFF.1);
                }
            }
        }
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

/// The OTLP logs request of a drain's errors, grouped by service and env.
fn logs_request(errors: &[ServerError]) -> ExportLogsServiceRequest {
    let now_ns = u64::try_from(wall_now().0).unwrap_or(0).saturating_mul(1_000_000);
    let mut resources: Vec<ResourceLogs> = Vec::new();
    for e in errors {
        let mut attrs = vec![text("exception.message", &e.message)];
        if let Some(t) = &e.exception_type {
            attrs.push(text("exception.type", t));
        }
        if let Some(s) = &e.stack {
            attrs.push(text("exception.stacktrace", s));
        }
        if !e.route.is_empty() {
            attrs.push(text("http.route", &e.route));
        }
        if let Some([process, step, code]) = &e.business {
            attrs.extend([text("business.process", process), text("business.step", step), text("business.code", code)]);
        }
        attrs.push(KeyValue {
            key: "thorbis.error.count".into(),
            value: Some(AnyValue { value: Some(Value::IntValue(i64::try_from(e.count).unwrap_or(i64::MAX))) }),
            ..KeyValue::default()
        });
        if !e.breadcrumbs.is_empty() {
            if let Ok(json) = serde_json::to_string(&e.breadcrumbs) {
                attrs.push(text("thorbis.breadcrumbs", &json));
            }
        }
        for (k, v) in &e.tags {
            if k != "severity" && k != "release" {
                attrs.push(text(k, v));
            }
        }
        let record = LogRecord {
            time_unix_nano: now_ns,
            observed_time_unix_nano: now_ns,
            severity_number: SEVERITY_ERROR,
            severity_text: "ERROR".into(),
            body: Some(AnyValue { value: Some(Value::StringValue(e.message.clone())) }),
            attributes: attrs,
            ..LogRecord::default()
        };
        // The release travels as the resource's `service.version`, where the intake reads it.
        let mut resource = vec![text("service.name", &e.service), text("deployment.environment.name", &e.env)];
        if let Some(r) = e.tags.get("release") {
            resource.push(text("service.version", r));
        }
        let same = |r: &&mut ResourceLogs| r.resource.as_ref().is_some_and(|r| r.attributes == resource);
        match resources.iter_mut().find(|r| same(r)) {
            Some(r) => r.scope_logs[0].log_records.push(record),
            None => resources.push(ResourceLogs {
                resource: Some(Resource { attributes: resource.clone(), ..Resource::default() }),
                scope_logs: vec![ScopeLogs { log_records: vec![record], ..ScopeLogs::default() }],
                ..ResourceLogs::default()
            }),
        }
    }
    ExportLogsServiceRequest { resource_logs: resources }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_requests_and_counts_what_they_carried() {
        let q = Queue {
            jobs: Mutex::new(VecDeque::new()),
            bytes: AtomicU64::new(0),
            max_requests: 3,
            max_bytes: 100,
            ready: Notify::new(),
            done: Default::default(),
            stats: Counters::default(),
        };
        for i in 0..5u8 {
            q.push(Job { kind: Kind::Samples, body: vec![i; 10], items: 7 });
        }
        q.push(Job { kind: Kind::Logs, body: vec![9; 80], items: 3 });
        // Five requests into three places: two dropped; the 80 bytes need one more out.
        assert_eq!(q.stats.dropped_samples.load(Ordering::Relaxed), 3 * 7);
        let left: Vec<u8> = q.jobs.lock().expect("lock").iter().map(|j| j.body[0]).collect();
        assert_eq!(left, [3, 4, 9]);
        assert_eq!(q.bytes.load(Ordering::Relaxed), 100);
        // Too big for the queue at all: dropped alone.
        q.push(Job { kind: Kind::Logs, body: vec![1; 101], items: 5 });
        assert_eq!(q.stats.dropped_errors.load(Ordering::Relaxed), 5);
        assert_eq!(q.jobs.lock().expect("lock").len(), 3, "nothing else dropped for it");
    }
}
