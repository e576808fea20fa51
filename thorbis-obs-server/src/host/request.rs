//! [`RequestMetrics`]: the tower layer and the source it feeds.
//!
//! The hot path: a request's route is axum's `MatchedPath` (an `Arc<str>`: cloning it is a
//! reference count), its method a `http::Method` (the standard ones are not allocated), and
//! it is counted into one of a few shards of core's `SpanWindow`, picked per thread, so
//! concurrent requests rarely meet on a lock and a known series allocates nothing. Each
//! collection swaps every shard for an empty window (keeping the label caps), merges them and
//! hands the samples to the engine: one sample per series per interval, stamped by the
//! scheduler, so concurrent requests can never arrive out of order. A request whose future is
//! dropped before it answers (the client went away) is not counted.

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use thorbis_obs_core::metrics::Sample;
use thorbis_obs_core::source::{CollectError, MetricSource};
use thorbis_obs_core::spans::{SpanFacts, SpanKind, SpanWindow};
use thorbis_obs_core::time::Timestamp;

/// Shards of the window; requests of one thread always use the same one.
const SHARDS: usize = 8;

/// The route label of requests no route matched (a 404 of the fallback).
pub const UNMATCHED: &str = "unmatched";

/// Which shard this thread counts into (threads take them in turn).
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    MINE.with(|s| *s)
}

#[derive(Debug)]
struct Shared {
    service: String,
    env: String,
    interval: Duration,
    shards: [Mutex<SpanWindow>; SHARDS],
}

/// Request metrics of a host app: [`RequestMetrics::layer`] for its router, and itself the
/// [`MetricSource`] to add to the agent (`AgentBuilder::source`). Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    shared: Arc<Shared>,
}

impl RequestMetrics {
    /// Metrics of service `service` in environment `env`, collected every 10 s.
    pub fn new(service: impl Into<String>, env: impl Into<String>) -> Self {
        Self::with_interval(service, env, Duration::from_secs(10))
    }

    /// The same, collected every `interval`.
    pub fn with_interval(service: impl Into<String>, env: impl Into<String>, interval: Duration) -> Self {
        RequestMetrics {
            shared: Arc::new(Shared {
                service: service.into(),
                env: env.into(),
                interval,
                shards: std::array::from_fn(|_| Mutex::new(SpanWindow::new())),
            }),
        }
    }

    /// The tower layer: `Router::layer(metrics.layer())`.
    pub fn layer(&self) -> RequestMetricsLayer {
        RequestMetricsLayer { shared: self.shared.clone() }
    }

    /// Counts one request (what the layer does when a response is ready). `route` is the
    /// matched template, None for an unmatched request; `status` None when the service failed
    /// without a response.
    pub fn record(&self, route: Option<&str>, method: &Method, status: Option<u16>, elapsed: Duration) {
        self.shared.record(route, method, status, elapsed);
    }

    /// Everything counted since the last call, as samples at `now` (what `collect` returns).
    pub fn take_samples(&self, now: Timestamp) -> Vec<Sample> {
        let mut merged = SpanWindow::new();
        for s in &self.shared.shards {
            let mut w = s.lock().unwrap_or_else(PoisonError::into_inner);
            let taken = std::mem::take(&mut *w);
            // The label caps carry on: the routes seen stay admitted, new ones stay capped.
            w.inherit_caps(&taken);
            drop(w);
            merged.merge(&taken);
        }
        if merged.spans() == 0 { Vec::new() } else { merged.samples(now) }
    }
}

impl Shared {
    fn record(&self, route: Option<&str>, method: &Method, status: Option<u16>, elapsed: Duration) {
        let facts = SpanFacts {
            service: &self.service,
            env: &self.env,
            kind: SpanKind::Server,
            route: Some(route.unwrap_or(UNMATCHED)),
            method: Some(method.as_str()),
            status_code: status.map(i64::from),
            error: status.is_none(),
            duration_ms: elapsed.as_secs_f64() * 1e3,
            ..SpanFacts::default()
        };
        self.shards[shard()].lock().unwrap_or_else(PoisonError::into_inner).record(&facts);
    }
}

#[async_trait::async_trait]
impl MetricSource for RequestMetrics {
    fn name(&self) -> &str {
        "host_requests"
    }

    fn interval(&self) -> Duration {
        self.shared.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        Ok(self.take_samples(now))
    }
}

/// The tower [`Layer`](tower::Layer) of [`RequestMetrics`].
#[derive(Clone, Debug)]
pub struct RequestMetricsLayer {
    shared: Arc<Shared>,
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetricsService { inner, shared: self.shared.clone() }
    }
}

/// The service [`RequestMetricsLayer`] wraps around a router's routes.
#[derive(Clone, Debug)]
pub struct RequestMetricsService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B, R> tower::Service<Request<B>> for RequestMetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        ResponseFuture {
            inner: self.inner.call(req),
            pending: Some(Pending { route, method, start: Instant::now(), shared: self.shared.clone() }),
        }
    }
}

/// What a request's future keeps until its response is ready.
#[derive(Debug)]
struct Pending {
    route: Option<MatchedPath>,
    method: Method,
    start: Instant,
    shared: Arc<Shared>,
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestMetricsService`]: the inner one, counted when ready.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        if let Some(p) = this.pending.take() {
            let status = out.as_ref().ok().map(|r| r.status().as_u16());
            p.shared.record(p.route.as_ref().map(MatchedPath::as_str), &p.method, status, p.start.elapsed());
        }
        Poll::Ready(out)
    }
}
