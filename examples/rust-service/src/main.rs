//! A Rust service instrumented the usual way (axum + tracing + tracing-opentelemetry +
//! opentelemetry-otlp), exporting its spans to the thorbis-obs agent over OTLP/HTTP:
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9464 \
//! OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20$OTLP_TOKEN" \
//! cargo run -p thorbis-obs-example-rust-service
//! ```
//!
//! Each request gets a SERVER span named `METHOD /route` with the semantic conventions'
//! `http.request.method`, `http.route` and `http.response.status_code` (the agent's
//! `http_request_duration` and `http_request_error_rate` per route come from these); the work
//! order lookup makes a CLIENT span with `db.system.name` (`db_query_duration`); a payment
//! makes a `payment.processed` span with `payment.status` (`payment_failure_rate`).
//!
//! Routes: `GET /api/work-orders/{id}`, `POST /api/payments/{id}` (every fifth declined),
//! `GET /api/reports/fail` (a 500), `GET /healthz`. `PORT` (default 3001); it prints
//! `listening on ADDR` once it serves, and flushes its spans when it gets SIGTERM or Ctrl-C.

use axum::Router;
use axum::extract::{MatchedPath, Path, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;
use tracing::{Instrument, field};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The request's SERVER span, named and labelled as OpenTelemetry's HTTP conventions say.
async fn server_span(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %req.uri().path(),
        http.response.status_code = field::Empty,
        otel.status_code = field::Empty,
    );
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    response
}

/// `GET /api/work-orders/{id}`: a query (a CLIENT span) and a little work.
async fn work_order(Path(id): Path<u64>) -> impl IntoResponse {
    let query = tracing::info_span!(
        "SELECT work_orders",
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = "SELECT",
        db.collection.name = "work_orders",
    );
    async { tokio::time::sleep(Duration::from_millis(5)).await }.instrument(query).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    format!("work order {id}: open")
}

/// `POST /api/payments/{id}`: every fifth payment is declined.
async fn payment(Path(id): Path<u64>) -> impl IntoResponse {
    let status = if id % 5 == 0 { "declined" } else { "succeeded" };
    let span = tracing::info_span!("payment.processed", payment.status = status, payment.id = id);
    async { tokio::time::sleep(Duration::from_millis(3)).await }.instrument(span).await;
    if status == "declined" { (StatusCode::PAYMENT_REQUIRED, "declined") } else { (StatusCode::OK, "paid") }
}

/// `GET /api/reports/fail`: a handler that fails (a 500: the span's status is ERROR).
async fn fail() -> impl IntoResponse {
    tracing::error!("the report query timed out");
    (StatusCode::INTERNAL_SERVER_ERROR, "report failed")
}

fn app() -> Router {
    Router::new()
        .route("/api/work-orders/{id}", get(work_order))
        .route("/api/payments/{id}", post(payment))
        .route("/api/reports/fail", get(fail))
        .route_layer(middleware::from_fn(server_span))
        .route("/healthz", get(|| async { "ok" }))
}

/// Spans to the agent: OTLP/HTTP protobuf, the endpoint and headers from the standard
/// `OTEL_EXPORTER_OTLP_*` variables, batched.
fn tracer_provider() -> Result<SdkTracerProvider, Box<dyn std::error::Error>> {
    let exporter = SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build()?;
    let resource = Resource::builder().with_service_name("rust-service").build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// SIGTERM (what an orchestrator sends) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = tracer_provider()?;
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("rust-service")))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app()).with_graceful_shutdown(shutdown_signal()).await?;
    // The batch processor sends what it holds before the process ends.
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    if let Ok(Err(e)) = flushed {
        eprintln!("flushing spans failed: {e}");
    }
    Ok(())
}
