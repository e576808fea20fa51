//! `host::RequestMetrics` in a real axum server on loopback, under a bounded load of 8
//! concurrent clients with known per-route latencies (handlers that sleep): every request is
//! counted once in the series the OTLP intake's span metrics make (exact counts per route,
//! method and status class, the raw path never a label, unmatched requests under one label),
//! the durations' quantiles are where the sleeps put them, no sample is refused, and, through
//! an agent built from a config file with the spec's rules shortened, the slow route fires
//! `high-response-time` and the failing route `high-error-rate` to a webhook receiver.
#![cfg(all(feature = "host", feature = "webhook"))]

mod support;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thorbis_obs_core::metrics::Sample;
use thorbis_obs_core::source::{CollectError, MetricSource};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::host::RequestMetrics;

/// The layer's source as the agent collects it, keeping a copy of every sample for the test.
struct Recording {
    inner: RequestMetrics,
    seen: Arc<Mutex<Vec<Sample>>>,
}

#[async_trait::async_trait]
impl MetricSource for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn interval(&self) -> Duration {
        self.inner.interval()
    }
    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let samples = self.inner.collect(now).await?;
        self.seen.lock().expect("lock").extend(samples.iter().cloned());
        Ok(samples)
    }
}

/// Per client: (path, times). 8 clients.
const LOAD: [(&str, usize); 5] = [("/fast", 30), ("/slow", 4), ("/fail", 10), ("/items/7", 10), ("/nowhere/42", 5)];
const CLIENTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_service_reports_its_requests_and_pages_for_its_slow_and_failing_routes() {
    // The webhook receiver.
    let (hook, notes) = support::web::json_sink().await;
    // The agent, from a config file: the spec's two API rules with short windows.
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("rules.yaml"),
        concat!(
            "rules:\n",
            "  - id: high-response-time\n    name: High Response Time\n    metric: http_request_duration\n",
            "    condition: { operator: greater_than, threshold: 200, duration: 2s, aggregation: avg }\n",
            "    severity: warning\n    channels: [hook]\n",
            "  - id: high-error-rate\n    name: High Error Rate\n    metric: http_request_error_rate\n",
            "    condition: { operator: greater_than, threshold: 0.05, duration: 2s, aggregation: avg }\n",
            "    severity: error\n    channels: [hook]\n",
        ),
    )
    .expect("rules");
    let agent_port = support::agent::free_port();
    let hook_channel = format!("[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n", hook.url("/hook"));
    let config = support::agent::config_file(
        dir.path(),
        agent_port,
        "",
        &format!("[rules]\nfiles = [\"rules.yaml\"]\n{hook_channel}"),
    );
    let metrics = RequestMetrics::with_interval("orders-api", "test", Duration::from_secs(1));
    let seen: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("a valid config");
    let agent = thorbis_obs_server::agent::builder_from_config(&loaded)
        .await
        .expect("builder")
        .source(Arc::new(Recording { inner: metrics.clone(), seen: seen.clone() }))
        .build()
        .expect("agent");
    let agent_base = format!("http://127.0.0.1:{agent_port}");
    let (stop, task) = support::serve(agent, &agent_base).await;

    // The host app.
    let nap = |ms: u64| async move { tokio::time::sleep(Duration::from_millis(ms)).await };
    let app = Router::new()
        .route(
            "/fast",
            get(move || async move {
                nap(2).await;
                "fast"
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                nap(300).await;
                "slow"
            }),
        )
        .route(
            "/fail",
            get(move || async move {
                nap(1).await;
                (StatusCode::INTERNAL_SERVER_ERROR, "boom")
            }),
        )
        .route(
            "/items/{id}",
            get(move || async move {
                nap(20).await;
                "item"
            }),
        )
        .layer(metrics.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // 8 clients, each its share of every route, in turns.
    let c = reqwest::Client::new();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (c, base) = (c.clone(), base.clone());
            tokio::spawn(async move {
                for (path, times) in LOAD {
                    for _ in 0..times {
                        c.get(format!("{base}{path}")).send().await.expect("request");
                    }
                }
            })
        })
        .collect();
    for h in clients {
        h.await.expect("client");
    }

    // Every request counted once, across the collections.
    let expected: BTreeMap<(&str, &str), f64> = [
        (("/fast", "2xx"), 30.0),
        (("/slow", "2xx"), 4.0),
        (("/fail", "5xx"), 10.0),
        (("/items/{id}", "2xx"), 10.0),
        (("unmatched", "4xx"), 5.0),
    ]
    .into_iter()
    .map(|(k, n)| (k, n * CLIENTS as f64))
    .collect();
    let counted = |seen: &[Sample]| -> BTreeMap<(String, String), f64> {
        let mut out = BTreeMap::new();
        for s in seen.iter().filter(|s| s.name == "http_requests") {
            let route = s.labels.get("route").unwrap_or("").to_string();
            let class = s.labels.get("status_class").unwrap_or("").to_string();
            *out.entry((route, class)).or_default() += s.value;
        }
        out
    };
    let want: BTreeMap<(String, String), f64> =
        expected.iter().map(|((r, c), n)| ((r.to_string(), c.to_string()), *n)).collect();
    support::eventually("every request collected", Duration::from_secs(20), async || {
        counted(&seen.lock().expect("lock")) == want
    })
    .await;
    let seen_now = seen.lock().expect("lock").clone();
    assert!(
        seen_now.iter().all(|s| s.labels.get("service") == Some("orders-api") && s.labels.get("env") == Some("test"))
    );
    assert!(
        seen_now.iter().all(|s| s.labels.get("route").is_none_or(|r| !r.contains("/42") && !r.contains("/7"))),
        "raw paths are never labels"
    );
    // Quantiles where the sleeps put them (the sketch's error is 1%; the rest is scheduling).
    let quantile = |name: &str, route: &str| -> f64 {
        seen_now
            .iter()
            .filter(|s| s.name == name && s.labels.get("route") == Some(route))
            .map(|s| s.value)
            .fold(f64::NAN, f64::max)
    };
    let slow_p99 = quantile("http_request_duration_p99", "/slow");
    assert!((300.0 * 0.99..400.0).contains(&slow_p99), "slow p99 {slow_p99}");
    let item_p50 = quantile("http_request_duration_p50", "/items/{id}");
    assert!((20.0 * 0.99..120.0).contains(&item_p50), "items p50 {item_p50}");
    let fast_p50 = quantile("http_request_duration_p50", "/fast");
    assert!((2.0 * 0.99..100.0).contains(&fast_p50), "fast p50 {fast_p50}");
    let fail_rate = quantile("http_request_error_rate", "/fail");
    assert_eq!(fail_rate, 1.0);

    // No sample of the source was refused (ordering, names), and the rules fired.
    let metrics_text = c.get(format!("{agent_base}/metrics")).send().await.expect("get").text().await.expect("text");
    let rejected = metrics_text
        .lines()
        .find(|l| l.starts_with("thorbis_source_samples_rejected{") && l.contains("source=\"host_requests\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(rejected, Some(0.0), "{metrics_text}");
    support::eventually("both rules fired to the webhook", Duration::from_secs(30), async || {
        let n = notes.lock().expect("lock");
        let fired = |id: &str| n.iter().any(|v| v["status"] == "firing" && v["thorbis"]["ruleId"] == id);
        fired("high-response-time") && fired("high-error-rate")
    })
    .await;
    let n = notes.lock().expect("lock").clone();
    let firing = |id: &str| n.iter().find(|v| v["status"] == "firing" && v["thorbis"]["ruleId"] == id).cloned();
    assert_eq!(firing("high-response-time").expect("fired")["commonLabels"]["route"], "/slow");
    assert_eq!(firing("high-error-rate").expect("fired")["commonLabels"]["route"], "/fail");

    server.abort();
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
