//! A host app with the embedded agent: a real axum server on loopback with
//! `host::RequestMetrics`, the `metrics` recorder installed beside metrics-exporter-prometheus's
//! through metrics-util's fan-out, the `tracing` error layer and the panic hook. Counters and
//! histograms a dependency-like module records show up on the agent's /metrics (and on the
//! Prometheus recorder's page) and fire a rule to a webhook receiver; a business error, an
//! `error = &e as &dyn Error` event and a panic in a handler each become one error group in
//! the agent's error API with their tags and breadcrumbs; 10,000 identical errors in a loop
//! become one group with count 10,000.
//!
//! One test per file: the recorder, the subscriber and the panic hook are the process's.
#![cfg(all(feature = "host", feature = "webhook", feature = "collector"))]

mod support;

use axum::Router;
use axum::extract::{MatchedPath, Path, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_server::host::{ErrorReporter, MetricsRecorder, RequestMetrics};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// What a dependency of the host records through the `metrics` facade.
mod gateway {
    pub(crate) fn charge(declined: bool) {
        let outcome = if declined { "declined" } else { "approved" };
        metrics::counter!("gateway_charges", "outcome" => outcome).increment(1);
        metrics::histogram!("gateway_latency_ms").record(if declined { 180.0 } else { 40.0 });
    }
}

/// The request's span, with the route template (what a host's tracing middleware sets).
async fn request_span(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let span = tracing::info_span!("request", http.route = %route, method = %req.method());
    next.run(req).instrument(span).await
}

async fn pay(Path(id): Path<u32>) -> (StatusCode, &'static str) {
    tracing::info!(invoice = id, "loaded invoice");
    tracing::warn!(attempt = 1, "gateway slow");
    gateway::charge(true);
    tracing::error!(process = "invoicing", step = "charge", code = "card_declined", invoice = id, "charge failed");
    (StatusCode::PAYMENT_REQUIRED, "declined")
}

async fn parse() -> (StatusCode, &'static str) {
    gateway::charge(false);
    if let Err(e) = "12x".parse::<u32>() {
        tracing::error!(error = &e as &dyn std::error::Error, "bad quantity");
    }
    (StatusCode::BAD_REQUEST, "bad")
}

async fn boom() -> &'static str {
    tracing::info!("about to balance the ledger");
    panic!("ledger out of balance");
}

async fn error_loop() -> &'static str {
    for i in 0..10_000 {
        tracing::error!(attempt = i, "queue consumer failed");
    }
    "looped"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_app_s_metrics_errors_and_panics_reach_the_embedded_agent() {
    // The host's instruments, installed as a host installs them.
    let requests = RequestMetrics::with_interval("billing-api", "test", Duration::from_secs(1));
    let recorder = MetricsRecorder::builder("billing-api", "test").interval(Duration::from_secs(1)).build();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus_page = prometheus.handle();
    let fanout = metrics_util::layers::FanoutBuilder::default().add_recorder(recorder.clone()).add_recorder(prometheus);
    metrics::set_global_recorder(fanout.build()).expect("the first recorder");
    let reporter = ErrorReporter::new("billing-api", "test").with_release("2.1.0");
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(reporter.layer()))
        .expect("the first subscriber");
    reporter.install_panic_hook();

    // The agent, from a config file: a rule on the dependency's counter.
    let (hook, notes) = support::web::json_sink().await;
    let dir = tempfile::tempdir().expect("tmp");
    let agent_port = support::agent::free_port();
    let rule = "[[rules.inline]]\nid = \"declines\"\nname = \"Card declines\"\nmetric = \"gateway_charges_total\"\n\
                severity = \"warning\"\nchannels = [\"hook\"]\nmatchers = { outcome = \"declined\" }\n\
                [rules.inline.condition]\noperator = \"greater_than\"\nthreshold = 3\nduration = \"1s\"\naggregation = \"last\"\n";
    let hook_channel = format!("[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n", hook.url("/hook"));
    let config = support::agent::config_file(dir.path(), agent_port, "", &format!("{rule}{hook_channel}"));
    let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("a valid config");
    let agent = thorbis_obs_server::agent::builder_from_config(&loaded)
        .await
        .expect("builder")
        .source(Arc::new(requests.clone()))
        .source(Arc::new(recorder.clone()))
        .host_errors(reporter.clone())
        .build()
        .expect("agent");
    let agent_base = format!("http://127.0.0.1:{agent_port}");
    let (stop, task) = support::serve(agent, &agent_base).await;

    // The host app.
    let app = Router::new()
        .route("/invoices/{id}/pay", get(pay))
        .route("/parse", get(parse))
        .route("/boom", get(boom))
        .route("/loop", get(error_loop))
        .layer(middleware::from_fn(request_span))
        .layer(requests.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let c = reqwest::Client::new();
    for id in 1..=5 {
        let r = c.get(format!("{base}/invoices/{id}/pay")).send().await.expect("pay");
        assert_eq!(r.status(), 402);
    }
    for _ in 0..3 {
        assert_eq!(c.get(format!("{base}/parse")).send().await.expect("parse").status(), 400);
    }
    // A panic drops the connection; the server goes on.
    assert!(c.get(format!("{base}/boom")).send().await.is_err(), "the panic closes the connection");
    assert_eq!(c.get(format!("{base}/loop")).send().await.expect("loop").status(), 200);

    // Metrics on /metrics, and the rule fired.
    let page =
        || async { c.get(format!("{agent_base}/metrics")).send().await.expect("get").text().await.expect("text") };
    support::eventually("the dependency's metrics on /metrics", Duration::from_secs(20), async || {
        let t = page().await;
        support::rum::metric(&t, "gateway_charges_total", &[("outcome", "declined")]) == Some(5.0)
            && support::rum::metric(&t, "gateway_latency_ms_count", &[]) == Some(8.0)
    })
    .await;
    let metrics_text = page().await;
    assert!(metrics_text.contains("gateway_latency_ms_p99{"), "{metrics_text}");
    let declined = support::rum::metric(
        &metrics_text,
        "gateway_charges_total",
        &[("service", "billing-api"), ("outcome", "declined")],
    );
    assert_eq!(declined, Some(5.0), "{metrics_text}");
    assert_eq!(
        support::rum::metric(&metrics_text, "gateway_latency_ms_count", &[("service", "billing-api")]),
        Some(8.0)
    );
    assert!(prometheus_page.render().contains("gateway_charges{outcome=\"declined\"} 5"), "the fan-out's other half");
    support::eventually("the declines rule fired", Duration::from_secs(20), async || {
        notes.lock().expect("lock").iter().any(|v| v["status"] == "firing" && v["thorbis"]["ruleId"] == "declines")
    })
    .await;

    // Error groups in the agent's error API.
    let groups = || async {
        let v: serde_json::Value = c
            .get(format!("{agent_base}/api/v1/rum/errors?limit=100"))
            .send()
            .await
            .expect("errors")
            .json()
            .await
            .expect("json");
        v["errors"].as_array().cloned().unwrap_or_default()
    };
    support::eventually("four error groups", Duration::from_secs(20), async || {
        let g = groups().await;
        let looped = g.iter().find(|e| e["message"] == "queue consumer failed");
        g.len() == 4 && looped.is_some_and(|e| e["count"] == 10_000)
    })
    .await;
    let g = groups().await;
    let find = |kind: &str, text: &str| {
        g.iter()
            .find(|e| e["kind"] == kind && e["message"].as_str().is_some_and(|m| m.contains(text)))
            .cloned()
            .unwrap_or_else(|| panic!("a {kind} group with {text:?}: {g:#?}"))
    };
    let business = find("business", "charge failed");
    assert_eq!(business["count"], 5);
    assert_eq!(business["service"], "billing-api");
    assert_eq!(business["route"], "/invoices/{id}/pay");
    assert_eq!(business["tags"]["errorCode"], "card_declined");
    assert_eq!(business["tags"]["workflowStep"], "charge");
    assert_eq!(business["tags"]["method"], "GET");
    assert_eq!(business["tags"]["release"], "2.1.0", "the reporter's release");
    let crumbs: Vec<&str> =
        business["breadcrumbs"].as_array().expect("breadcrumbs").iter().filter_map(|b| b["message"].as_str()).collect();
    assert_eq!(crumbs, ["loaded invoice invoice=1", "gateway slow attempt=1"]);
    let parsed = find("server", "bad quantity");
    assert_eq!(parsed["count"], 3);
    assert_eq!(parsed["message"], "ParseIntError: bad quantity: invalid digit found in string");
    assert_eq!(parsed["route"], "/parse");
    let panicked = find("server", "ledger out of balance");
    assert_eq!(panicked["count"], 1);
    assert_eq!(panicked["message"], "panic: ledger out of balance");
    assert_eq!(panicked["route"], "/boom");
    assert!(panicked["sample_stack"].as_str().is_some_and(|s| s.contains("host_app.rs")), "{panicked}");
    assert_eq!(panicked["breadcrumbs"][0]["message"], "about to balance the ledger");
    assert_eq!(reporter.dropped(), 0);

    server.abort();
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
