//! Remote mode: a host app (a real axum server on loopback) whose request metrics, `metrics`
//! recorder and `tracing` errors go to a separately started `thorbis-obs` binary through
//! `host::RemoteAgent` (samples API with the API token, OTLP logs with the OTLP token). Every
//! request and counter arrives exactly, the business error is one group with its count; with
//! the agent stopped, every request still answers and the bounded queue's drops are counted.
//!
//! One test per file: the recorder and the subscriber are the process's.
#![cfg(all(feature = "host", feature = "collector", feature = "otlp"))]

mod support;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_server::host::{ErrorReporter, MetricsRecorder, RemoteAgent, RequestMetrics};
use tracing_subscriber::layer::SubscriberExt;

const API_TOKEN: &str = "api-token-for-the-host-test";
const OTLP_TOKEN: &str = "otlp-token-for-the-host-test";

async fn ok() -> &'static str {
    metrics::counter!("jobs_done", "queue" => "invoices").increment(1);
    "ok"
}

async fn fail() -> (StatusCode, &'static str) {
    tracing::error!(process = "invoicing", step = "render", code = "template_missing", "render failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "failed")
}

/// `clients` clients each sending `each` requests to `path`; every answer's status.
async fn load(c: &reqwest::Client, url: String, clients: usize, each: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..each {
                    out.push(c.get(&url).send().await.expect("request").status().as_u16());
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_app_sends_to_a_remote_agent_and_keeps_answering_when_it_is_gone() {
    // The agent binary.
    let dir = tempfile::tempdir().expect("tmp");
    let port = support::agent::free_port();
    let config = support::agent::config_file(
        dir.path(),
        port,
        &format!("api_token = \"{API_TOKEN}\"\n"),
        &format!("[otlp]\ntokens = [\"{OTLP_TOKEN}\"]\n"),
    );
    let mut agent = support::agent::spawn_agent(&config);
    let agent_base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    support::eventually("the agent answers", Duration::from_secs(30), async || {
        c.get(format!("{agent_base}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;

    // The host's instruments, pointed at it.
    let requests = RequestMetrics::with_interval("jobs-api", "test", Duration::from_millis(200));
    let recorder = MetricsRecorder::builder("jobs-api", "test").interval(Duration::from_millis(200)).build();
    recorder.install().expect("the first recorder");
    let reporter = ErrorReporter::new("jobs-api", "test").with_release("3.0.1");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(reporter.layer()))
        .expect("the first subscriber");
    let remote = RemoteAgent::builder(agent_base.clone())
        .api_token(API_TOKEN)
        .otlp_token(OTLP_TOKEN)
        .source(Arc::new(requests.clone()))
        .source(Arc::new(recorder.clone()))
        .errors(reporter.clone())
        .queue(4, 1 << 20)
        .timeout(Duration::from_secs(2))
        .spawn()
        .expect("remote");

    let app = Router::new().route("/ok", get(ok)).route("/fail", get(fail)).layer(requests.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // With the agent up: 200 jobs and 10 failures, all of them at the agent.
    let ok_statuses = load(&c, format!("{base}/ok"), 8, 25).await;
    assert!(ok_statuses.iter().all(|s| *s == 200));
    let failed = load(&c, format!("{base}/fail"), 2, 5).await;
    assert!(failed.iter().all(|s| *s == 500));
    let page =
        || async { c.get(format!("{agent_base}/metrics")).send().await.expect("get").text().await.expect("text") };
    support::eventually("the jobs and the error rate at the agent", Duration::from_secs(20), async || {
        let t = page().await;
        support::rum::metric(&t, "jobs_done_total", &[("service", "jobs-api"), ("queue", "invoices")]) == Some(200.0)
            && support::rum::metric(&t, "http_request_error_rate", &[("route", "/fail")]) == Some(1.0)
    })
    .await;
    let groups = || async {
        let v: serde_json::Value =
            c.get(format!("{agent_base}/api/v1/rum/errors")).send().await.expect("errors").json().await.expect("json");
        v["errors"].as_array().cloned().unwrap_or_default()
    };
    support::eventually("the business error at the agent", Duration::from_secs(20), async || {
        groups().await.iter().any(|g| g["kind"] == "business" && g["count"] == 10)
    })
    .await;
    let g = groups().await;
    assert_eq!(g.len(), 1, "{g:#?}");
    assert_eq!(g[0]["service"], "jobs-api");
    assert_eq!(g[0]["route"], "");
    assert_eq!(g[0]["tags"]["errorCode"], "template_missing");
    assert_eq!(g[0]["tags"]["release"], "3.0.1", "the release, as the resource's service.version");
    let before = remote.stats();
    assert!(before.sent > 0 && before.rejected == 0, "{before:?}");
    assert_eq!((before.dropped_samples, before.dropped_errors), (0, 0), "{before:?}");

    // The agent gone: every request still answers; the queue fills and drops its oldest.
    agent.kill().expect("kill");
    agent.wait().expect("wait");
    let statuses = load(&c, format!("{base}/ok"), 8, 50).await;
    assert_eq!(statuses.len(), 400);
    assert!(statuses.iter().all(|s| *s == 200));
    let failed = load(&c, format!("{base}/fail"), 1, 3).await;
    assert!(failed.iter().all(|s| *s == 500));
    support::eventually("drops counted", Duration::from_secs(30), async || {
        let s = remote.stats();
        s.dropped_samples > 0 && s.retried > 0 && s.queued <= 4
    })
    .await;
    let after = remote.stats();
    assert!(after.queued <= 4, "the queue stays bounded: {after:?}");

    server.abort();
    remote.shutdown(Duration::from_millis(100)).await;
}
