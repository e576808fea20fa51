//! The server side of `scripts/bench-host.sh`: an axum hello-world on one core (a
//! current-thread runtime), bare, with `host::RequestMetrics` (collected every 10 s, as the
//! agent would), with it sending to a remote agent that is down (`ours-remote-down`: a
//! `host::RemoteAgent` to a closed port, collecting every second, its queue full and dropping:
//! the request path must not notice), or with axum-prometheus (0.10,
//! metrics-exporter-prometheus underneath), for oha to load over loopback.
//!
//! `host_http_server bare|ours|ours-remote-down|theirs PORT`

use axum::Router;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::host::{RemoteAgent, RequestMetrics};

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
        "ours-remote-down" => {
            let metrics = RequestMetrics::with_interval("bench", "bench", Duration::from_secs(1));
            // Nothing listens on port 9 of loopback (discard): every send fails at once.
            let remote = RemoteAgent::builder("http://127.0.0.1:9")
                .source(Arc::new(metrics.clone()))
                .queue(8, 1 << 20)
                .spawn()
                .expect("remote");
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    let s = remote.stats();
                    eprintln!(
                        "remote down: {} samples dropped, {} attempts failed, {} queued",
                        s.dropped_samples, s.retried, s.queued
                    );
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
