//! The server side of `scripts/bench-host.sh`: an axum hello-world on one core (a
//! current-thread runtime), bare, with `host::RequestMetrics` (collected every 10 s, as the
//! agent would) or with axum-prometheus (0.10, metrics-exporter-prometheus underneath), for
//! oha to load over loopback.
//!
//! `host_http_server bare|ours|theirs PORT`

use axum::Router;
use axum::routing::get;
use std::time::Duration;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::host::RequestMetrics;

fn router() -> Router {
    Router::new().route("/", get(|| async { "hello" })).route("/users/{id}", get(|| async { "user" }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(port)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: host_http_server bare|ours|theirs PORT");
        std::process::exit(2);
    };
    let app = match mode.as_str() {
        "bare" => router(),
        "ours" => {
            let metrics = RequestMetrics::new("bench", "bench");
            let collected = metrics.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    let _ = collected.take_samples(Timestamp(0));
                }
            });
            router().layer(metrics.layer())
        }
        "theirs" => {
            let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
            // Prometheus scrapes every 10 s too.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tick.tick().await;
                    let _ = handle.render();
                }
            });
            router().layer(layer)
        }
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
