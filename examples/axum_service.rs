//! An axum service with the agent embedded: `host::RequestMetrics` on its router, the
//! `metrics` recorder for what it and its dependencies count, the `tracing` error layer and the
//! panic hook for its errors, all feeding the agent in the same process (the spec's rules,
//! dashboards on http://127.0.0.1:9464/).
//!
//! Run: `cargo run --example axum_service --features host` and open http://127.0.0.1:3000/invoices/7/pay,
//! /slow and /fail; the agent's /metrics, /api/v1/rum/errors and dashboards show them within
//! ten seconds. `cargo run --example axum_service --features host -- --demo` sends a few requests to itself,
//! prints what the agent saw and exits.

use axum::Router;
use axum::extract::{MatchedPath, Path, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs::host::{ErrorReporter, MetricsRecorder, RequestMetrics};
use tracing::Instrument;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const SERVICE: &str = "billing-api";
const ENV: &str = "development";

/// The agent's config: the spec's rules, a console channel standing in for the pagers, the
/// collector (the error groups live there) and the dashboards on port 9464.
const CONFIG: &str = r#"
[agent]
data_dir = "DATA_DIR"
evaluation_interval = "5s"
[http]
listen = "127.0.0.1:9464"
[rules]
packs = ["spec"]
[channels.console]
type = "console"
[channel_aliases]
slack = "console"
email = "console"
sms = "console"
pagerduty = "console"
[collector]
window = "60s"
"#;

/// The request's span with the route template: the error layer tags errors with it and keeps
/// the request's INFO and WARN events as their breadcrumbs.
async fn request_span(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let span = tracing::info_span!("request", http.route = %route, method = %req.method());
    next.run(req).instrument(span).await
}

async fn pay(Path(id): Path<u32>) -> (StatusCode, String) {
    tracing::info!(invoice = id, "charging invoice");
    metrics::counter!("payments", "outcome" => "declined").increment(1);
    metrics::histogram!("gateway_latency_ms").record(180.0);
    // The spec's business fields: every decline of this step is one error group.
    tracing::error!(process = "invoicing", step = "charge", code = "card_declined", invoice = id, "charge failed");
    (StatusCode::PAYMENT_REQUIRED, format!("invoice {id}: card declined\n"))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    "slow\n"
}

async fn fail() -> &'static str {
    panic!("ledger out of balance");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::args().any(|a| a == "--demo");
    let dir = std::env::temp_dir().join(format!("thorbis-axum-{}", std::process::id()));

    // The setup (README, "Rust host apps").
    let requests = RequestMetrics::new(SERVICE, ENV);
    let recorder = MetricsRecorder::new(SERVICE, ENV);
    let errors = ErrorReporter::new(SERVICE, ENV).with_release(env!("CARGO_PKG_VERSION"));
    recorder.install()?;
    let log = tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry().with(log).with(errors.layer()).init();
    errors.install_panic_hook();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("thorbis-obs.toml"), CONFIG.replace("DATA_DIR", &dir.display().to_string()))?;
    let config = thorbis_obs::server::config::LoadedConfig::from_file(&dir.join("thorbis-obs.toml"))?;
    let agent = thorbis_obs::server::agent::builder_from_config(&config)
        .await?
        .source(Arc::new(requests.clone()))
        .source(Arc::new(recorder.clone()))
        .host_errors(errors.clone())
        .build()?;
    let app = Router::new()
        .route("/invoices/{id}/pay", get(pay))
        .route("/slow", get(slow))
        .route("/fail", get(fail))
        .layer(middleware::from_fn(request_span))
        .layer(requests.layer());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    tracing::info!("serving on http://127.0.0.1:3000, the agent on http://{}", config.config.http.listen);

    if demo {
        let c = reqwest::Client::new();
        for id in 1..=3 {
            c.get(format!("http://127.0.0.1:3000/invoices/{id}/pay")).send().await?;
        }
        c.get("http://127.0.0.1:3000/slow").send().await?;
        let _ = c.get("http://127.0.0.1:3000/fail").send().await; // the panic drops the connection
        // The sources are collected every 10 s: wait until the agent has both.
        let agent_base = format!("http://{}", config.config.http.listen);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let text = loop {
            let text = c.get(format!("{agent_base}/metrics")).send().await?.text().await?;
            if text.contains("payments_total{") && text.contains("http_requests{") {
                break text;
            }
            if tokio::time::Instant::now() > deadline {
                return Err("the agent did not collect the service's metrics within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for line in text.lines().filter(|l| l.contains(SERVICE) && !l.starts_with('#')) {
            println!("METRIC {line}");
        }
        let answer = c.get(format!("{agent_base}/api/v1/rum/errors")).send().await?;
        let (status, body) = (answer.status(), answer.text().await?);
        let groups: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("/api/v1/rum/errors answered {status} {body:?}: {e}"))?;
        for g in groups["errors"].as_array().into_iter().flatten() {
            println!("ERROR  {} x{} {} on {}", g["kind"], g["count"], g["message"], g["route"]);
        }
    } else {
        tokio::signal::ctrl_c().await?;
    }
    server.abort();
    let _ = stop.send(());
    running.await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
