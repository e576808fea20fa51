//! What `host::RequestMetrics` adds to a request, side by side with axum-prometheus (0.10,
//! metrics-exporter-prometheus underneath) doing the same job: an axum hello-world router
//! called in-process (`tower::ServiceExt::oneshot`, no sockets, so the figure is the layers'
//! own cost), bare, with our layer and with theirs, in alternating rounds; the median time per
//! request of each, and what each layer adds over the bare router. Then the same from two
//! threads at once (contention on the layers' shared state).
//!
//! `cargo run --release -p thorbis-obs-server --example host_layer_bench`

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use std::time::Instant;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::host::RequestMetrics;
use tower::ServiceExt;

const REQUESTS: u32 = 200_000;
const ROUNDS: usize = 7;

fn router() -> Router {
    Router::new().route("/", get(|| async { "hello" })).route("/users/{id}", get(|| async { "user" }))
}

/// Nanoseconds per request over `REQUESTS` requests (alternating two routes) on `threads`.
async fn per_request(app: &Router, threads: usize) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (0..threads)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..REQUESTS {
                    let uri = if i % 2 == 0 { "/" } else { "/users/42" };
                    let req = Request::builder().uri(uri).body(Body::empty()).expect("request");
                    let resp = app.clone().oneshot(req).await.expect("infallible");
                    assert!(resp.status().is_success());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    t.elapsed().as_nanos() as f64 / f64::from(REQUESTS) / threads as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ours_metrics = RequestMetrics::new("bench", "bench");
    let (theirs_layer, theirs_handle) = axum_prometheus::PrometheusMetricLayer::pair();
    let bare = router();
    let ours = router().layer(ours_metrics.layer());
    let theirs = router().layer(theirs_layer);
    println!("{REQUESTS} requests per round and thread, {ROUNDS} alternating rounds, medians; 2-core machine");
    for threads in [1, 2] {
        let mut t = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (i, app) in [&bare, &ours, &theirs].into_iter().enumerate() {
                t[i].push(per_request(app, threads).await);
            }
        }
        let [b, o, p] = t.map(median);
        println!(
            "{threads} thread(s): bare {b:.0} ns/request; thorbis-obs layer {o:.0} (+{:.0} ns); axum-prometheus {p:.0} (+{:.0} ns); added cost ours/theirs {:.2}",
            o - b,
            p - b,
            (o - b) / (p - b).max(1.0)
        );
    }
    // Both saw every request.
    let samples = ours_metrics.take_samples(Timestamp(0));
    let counted: f64 = samples.iter().filter(|s| s.name == "http_requests").map(|s| s.value).sum();
    let text = theirs_handle.render();
    println!("counted: ours {counted} requests; theirs' exposition {} bytes", text.len());
}
