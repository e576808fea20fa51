//! The trace store: tail sampling of what a real OpenTelemetry SDK sends (the Python SDK,
//! installed by scripts/test.sh; its interpreter in THORBIS_TEST_OTEL_PYTHON), the API, and
//! the stores' retention and size cap (SQLite, and PostgreSQL on the test cluster).
#![cfg(feature = "otlp")]

mod support;

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_server::otlp::{OtlpIntake, OtlpSection, TraceSink};
use thorbis_obs_server::secret::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;
use thorbis_obs_server::store::{Store, TraceQuery, TraceRow, TraceSummary};
use thorbis_obs_server::traces::{TraceService, TracesSection};

const TOKEN: &str = "trace-store-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_the_slowest_five_per_route_and_about_one_percent_of_the_rest_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let otlp = OtlpSection { tokens: vec![Secret::new(TOKEN)], ..OtlpSection::default() };
    // A window of an hour: the slowest-per-route heaps are kept when the agent stops.
    let traces = TracesSection {
        decision_wait: HumanDuration::from_secs(3),
        window: HumanDuration::from_secs(3600),
        ..TracesSection::default()
    };
    // The two components as the agent wires them, built here so the test can see the buffer.
    let slot: Arc<OnceLock<Arc<TraceService>>> = Arc::default();
    let (keep, give) = (slot.clone(), slot.clone());
    let agent = support::quiet_agent(Arc::new(SqliteStore::open(&db).expect("store")))
        .http(addr, None)
        .component(move |hub| {
            let svc = Arc::new(TraceService::new(hub.clone(), traces));
            let _ = keep.set(svc.clone());
            svc
        })
        .component(move |hub| {
            let svc = give.get().expect("the trace store first").clone();
            let sink: TraceSink = Arc::new(move |spans, at| svc.add(spans, at));
            Arc::new(OtlpIntake::new(hub.clone(), otlp).expect("intake").with_trace_sink(Some(sink)))
        })
        .build()
        .expect("valid");
    let svc = slot.get().expect("built").clone();
    let base = format!("http://{addr}");
    let (stop, task) = support::serve(agent, &base).await;
    let c = reqwest::Client::new();

    let python = std::env::var("THORBIS_TEST_OTEL_PYTHON")
        .expect("THORBIS_TEST_OTEL_PYTHON (a Python with opentelemetry-sdk) is set by scripts/test.sh");
    let script = format!("{}/tests/otel/send_traces.py", env!("CARGO_MANIFEST_DIR"));
    let b = base.clone();
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new(python).arg(script).args([&b, TOKEN]).output())
            .await
            .expect("join")
            .expect("python runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let split = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(split.len(), 32, "the split trace's id: {split:?}");

    // Error traces are kept as soon as they are decided: the 20 and the split one.
    let mut errors = serde_json::Value::Null;
    support::eventually("21 error traces listed", Duration::from_secs(60), async || {
        let Ok(r) = c.get(format!("{base}/api/v1/traces?status=error&limit=100")).send().await else { return false };
        errors = r.json().await.unwrap_or_default();
        errors["traces"].as_array().is_some_and(|t| t.len() == 21)
    })
    .await;
    // The split trace, whole: both batches, the child under the root.
    let one: serde_json::Value =
        c.get(format!("{base}/api/v1/traces/{split}")).send().await.expect("get").json().await.expect("json");
    assert_eq!(one["summary"]["span_count"], 2, "{one}");
    assert_eq!(one["summary"]["policy"], "error");
    let spans = one["spans"].as_array().cloned().unwrap_or_default();
    let root = spans.iter().find(|s| s["parent"].is_null()).expect("a root");
    let child = spans.iter().find(|s| !s["parent"].is_null()).expect("a child");
    assert_eq!(child["parent"], root["span_id"]);
    assert_eq!(root["route"], "/api/payments");
    let otlp: serde_json::Value = c
        .get(format!("{base}/api/v1/traces/{split}?format=otlp"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(otlp["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().map(Vec::len), Some(2), "{otlp}");
    // Its pages: the list links it, the waterfall draws both spans, the failed one red, and
    // outlines the critical path.
    let list = c.get(format!("{base}/traces?status=error&min_duration=")).send().await.expect("get");
    assert_eq!(list.status(), 200);
    assert!(list.text().await.expect("html").contains(&format!("href=\"/traces/{split}\"")));
    let page = c.get(format!("{base}/traces/{split}")).send().await.expect("get").text().await.expect("html");
    for needle in
        ["<svg", "POST /api/payments", "card network timeout", "#b3261e", "critical path", "data-critical=\"true\""]
    {
        assert!(page.contains(needle), "{needle} missing from the waterfall");
    }
    // Bad ids and filters are refused with what is wrong.
    let r = c.get(format!("{base}/api/v1/traces/not-a-trace")).send().await.expect("get");
    assert_eq!(r.status(), 400);
    let r = c.get(format!("{base}/api/v1/traces?status=slow")).send().await.expect("get");
    assert_eq!(r.status(), 400);
    let r = c.get(format!("{base}/api/v1/traces?min_duration=-5")).send().await.expect("get");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("min_duration"));
    assert_eq!(c.get(format!("{base}/api/v1/traces/{}", "0".repeat(32))).send().await.expect("get").status(), 404);

    // Every trace decided (3 s quiet), then stop: the heaps of the slowest are kept at the end.
    support::eventually("every trace decided", Duration::from_secs(60), async || svc.held() == 0).await;
    let _ = stop.send(());
    task.await.expect("join").expect("agent");

    let store = SqliteStore::open(&db).expect("reopen");
    let kept = store.traces(&TraceQuery { limit: 1000, ..TraceQuery::default() }).await.expect("list");
    let by = |policy: &str| kept.iter().filter(|t| t.policy == policy).collect::<Vec<&TraceSummary>>();
    assert_eq!(by("error").len(), 21);
    assert!(by("error").iter().all(|t| t.error));
    for route in ["/api/orders/{id}", "/api/invoices/{id}"] {
        let mut slow: Vec<f64> = by("slowest").iter().filter(|t| t.route == route).map(|t| t.duration_ms).collect();
        slow.sort_by(f64::total_cmp);
        assert_eq!(slow, [1005.0, 1006.0, 1007.0, 1008.0, 1009.0], "{route}");
    }
    // 1,970 clean traces went through the 1% coin: 19.7 expected; [3, 40] holds with
    // probability above 1 - 1e-6 (binomial, n 1,970, p 0.01).
    let probabilistic = by("probabilistic").len();
    assert!((3..=40).contains(&probabilistic), "{probabilistic} kept by probability");
    assert_eq!(kept.len(), 21 + 10 + probabilistic, "nothing kept for another reason");
}

fn row(i: i64, bytes: usize) -> TraceRow {
    TraceRow {
        summary: TraceSummary {
            trace_id: format!("{i:032x}"),
            start: Timestamp(1_800_000_000_000 + i * 1000),
            duration_ms: i as f64,
            service: "api".into(),
            route: if i % 2 == 0 { "/even".into() } else { "/odd".into() },
            name: "GET".into(),
            services: "api".into(),
            span_count: 3,
            error: i % 10 == 0,
            policy: "probabilistic".into(),
            bytes: bytes as i64,
        },
        data: vec![i as u8; bytes],
    }
}

/// Retention by age, then the oldest beyond the size cap, whole rows only; the list's filters.
async fn retention_and_size_cap(store: &dyn Store) {
    let rows: Vec<TraceRow> = (0..100).map(|i| row(i, 1000)).collect();
    store.record_traces(&rows).await.expect("record");
    // Stored again (late spans): replaced, not doubled.
    store.record_traces(&[row(99, 1000)]).await.expect("record again");
    let all = store.traces(&TraceQuery { limit: 1000, ..TraceQuery::default() }).await.expect("list");
    assert_eq!(all.len(), 100);
    assert_eq!(all[0].trace_id, format!("{:032x}", 99), "newest first");
    let q = TraceQuery {
        route: Some("/even".into()),
        error: Some(true),
        min_duration_ms: Some(20.0),
        limit: 1000,
        ..TraceQuery::default()
    };
    let picked: Vec<f64> = store.traces(&q).await.expect("list").iter().map(|t| t.duration_ms).collect();
    assert_eq!(picked, [90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0]);
    // Older than trace 10: 10 deleted; then 50 KB of the newest stay.
    let pruned = store.prune_traces(Timestamp(1_800_000_000_000 + 10_000), 50_000).await.expect("prune");
    assert_eq!(pruned, 50);
    let left = store.traces(&TraceQuery { limit: 1000, ..TraceQuery::default() }).await.expect("list");
    let ids: Vec<String> = left.iter().map(|t| t.trace_id.clone()).collect();
    assert_eq!(ids, (50..100).rev().map(|i| format!("{i:032x}")).collect::<Vec<_>>());
    let whole = store.trace(&format!("{:032x}", 77)).await.expect("get").expect("kept");
    assert_eq!(whole.data, vec![77u8; 1000]);
    assert!(store.trace(&format!("{:032x}", 3)).await.expect("get").is_none());
}

#[tokio::test]
async fn sqlite_keeps_traces_whole_within_age_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    retention_and_size_cap(&SqliteStore::open(&dir.path().join("t.db")).expect("store")).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_traces_whole_within_age_and_size() {
    let url = support::pg::fresh_database("traces").await;
    let store = thorbis_obs_server::store::postgres::PostgresStore::connect(&url).await.expect("store");
    retention_and_size_cap(&store).await;
}
