//! Instrumentation for Rust host apps (feature `host`): what a service that embeds the agent
//! (or sits beside one) adds to its own code.
//!
//! - [`RequestMetrics`]: a tower layer for axum routers that measures every request (the
//!   route template from axum's `MatchedPath`, never the raw path; method; status class;
//!   duration) and is itself a [`MetricSource`](thorbis_obs_core::MetricSource) the agent
//!   collects on its interval. It produces exactly the series the OTLP intake's span metrics
//!   produce (core's [`SpanWindow`](thorbis_obs_core::spans::SpanWindow) does the counting for
//!   both): `http_request_duration` (mean ms, with `_p50`, `_p95`, `_p99`),
//!   `http_requests{status_class}`, `http_request_error_rate`, per service, env, route and
//!   method, and the `http_service_*` rollups, so the spec's rules and the dashboards read the
//!   same names whichever way the numbers came.
//! - [`MetricsRecorder`]: a recorder for the `metrics` facade (what the host and its
//!   dependencies count), a source too; series named as the OTLP intake names an OpenTelemetry
//!   SDK's.
//! - [`ErrorReporter`]: `tracing` ERROR events (its [`ErrorLayer`]) and panics (its panic hook)
//!   as error groups beside the browser's, with the business fingerprint, tags and breadcrumbs,
//!   folded per fingerprint; the agent drains it (`AgentBuilder::host_errors`).
//! - [`RemoteAgent`]: the same sent to an agent in another process through a bounded queue.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use std::sync::Arc;
//! use thorbis_obs_server::host::RequestMetrics;
//!
//! let metrics = RequestMetrics::new("work-orders-api", "production");
//! let app: Router = Router::new().route("/work-orders/{id}", get(|| async { "ok" })).layer(metrics.layer());
//! let agent = thorbis_obs_server::agent::Agent::builder().source(Arc::new(metrics.clone()));
//! ```
//!
//! Written here, not taken from axum-prometheus or metrics-exporter-prometheus: those export
//! to Prometheus text, while this feeds the agent's engine in-process with the intake's series
//! and caps, without a lock shared by every request or an allocation per request. The
//! recorder's storage is metrics-util's registry; the error layer is ours because
//! sentry-tracing sends to Sentry's envelope API, not to these groups.

mod errors;
mod recorder;
mod remote;
mod request;

#[cfg(feature = "collector")]
pub(crate) use errors::ErrorFlush;
pub use errors::{ErrorLayer, ErrorReporter, MAX_PENDING, MAX_REQUEST_BREADCRUMBS, MAX_TAGS};
pub use recorder::{MetricsRecorder, MetricsRecorderBuilder};
pub use remote::{RemoteAgent, RemoteAgentBuilder, RemoteError, RemoteStats};
pub use request::{RequestMetrics, RequestMetricsLayer, RequestMetricsService, ResponseFuture, UNMATCHED};
