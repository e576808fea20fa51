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
async fn sqlite_keeps_traces_whole_within_age_and_size_and_timelines_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db")).expect("store");
    retention_and_size_cap(&store).await;
    timelines_in_order_and_pruned(&store).await;
    replays_kept_once_capped_and_pruned_by_session(&store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_traces_whole_within_age_and_size_and_timelines_in_order() {
    let url = support::pg::fresh_database("traces").await;
    let store = thorbis_obs_server::store::postgres::PostgresStore::connect(&url).await.expect("store");
    retention_and_size_cap(&store).await;
    timelines_in_order_and_pruned(&store).await;
    replays_kept_once_capped_and_pruned_by_session(&store).await;
}

/// Session replay chunks: kept once per (session, number), read in number order, refused past
/// the session's cap; pruned by age of the session's last chunk, then whole sessions, the
/// earliest ended first, down to the byte cap.
async fn replays_kept_once_capped_and_pruned_by_session(store: &dyn Store) {
    use thorbis_obs_server::store::{ReplayChunk, ReplayStored};
    let at0 = 1_800_000_000_000;
    let chunk = |session: &str, seq: u32, end_s: i64, bytes: usize| ReplayChunk {
        session_id: session.into(),
        seq,
        start_ms: at0 + end_s * 1000 - 500,
        end_ms: at0 + end_s * 1000,
        events: 3,
        data: vec![seq as u8; bytes],
    };
    // a: three chunks of 100 bytes, written out of order, one twice; b: 250 bytes; c: 100.
    for (c, expected) in [
        (chunk("a", 2, 3, 100), ReplayStored::Stored),
        (chunk("a", 0, 1, 100), ReplayStored::Stored),
        (chunk("a", 1, 2, 100), ReplayStored::Stored),
        (chunk("a", 1, 2, 100), ReplayStored::Duplicate),
        (chunk("a", 3, 4, 100), ReplayStored::SessionFull),
        (chunk("b", 0, 10, 250), ReplayStored::Stored),
        (chunk("c", 0, 20, 100), ReplayStored::Stored),
    ] {
        assert_eq!(store.record_replay_chunk(&c, 300).await.expect("record"), expected, "{} {}", c.session_id, c.seq);
    }
    let a = store.replay_chunks("a").await.expect("read");
    assert_eq!(
        a.iter().map(|c| (c.seq, c.data[0], c.data.len())).collect::<Vec<_>>(),
        [(0, 0, 100), (1, 1, 100), (2, 2, 100)]
    );
    let list = store.replay_sessions(10).await.expect("list");
    let summary: Vec<(&str, u64, u64, i64)> =
        list.iter().map(|s| (s.session_id.as_str(), s.chunks, s.bytes, s.end.0 - at0)).collect();
    assert_eq!(summary, [("c", 1, 100, 20_000), ("b", 1, 250, 10_000), ("a", 3, 300, 3_000)]);
    // Nothing past the retention; 400 bytes in all: c (100) and b (350) fit, a goes whole.
    let p = store.prune_replays(Timestamp(at0), 400).await.expect("prune");
    assert_eq!((p.expired, p.evicted, p.sessions, p.bytes), (0, 3, 2, 350));
    // Sessions that ended before 15 s go.
    let p = store.prune_replays(Timestamp(at0 + 15_000), 1 << 30).await.expect("prune");
    assert_eq!((p.expired, p.evicted, p.sessions, p.bytes), (1, 0, 1, 100));
    assert!(store.replay_chunks("b").await.expect("read").is_empty());
    assert_eq!(store.replay_sessions(10).await.expect("list").len(), 1);
}

/// Session timelines: read back by session in time order (at most the limit asked), pruned
/// by age and then to the newest events, whole chunks at a time.
async fn timelines_in_order_and_pruned(store: &dyn Store) {
    let at0 = 1_800_000_000_000;
    let ev = |session: &str, i: i64| thorbis_obs_server::store::SessionEvent {
        session_id: session.into(),
        at: Timestamp(at0 + i * 1000),
        view_id: "v1".into(),
        route: "/orders".into(),
        kind: "action".into(),
        name: format!("click {i}"),
        detail: String::new(),
        trace_id: if i % 2 == 0 { "ab".repeat(16) } else { String::new() },
    };
    // Ten writes of five events (as the collector flushes), each out of order, two sessions:
    // a chunk of s1 (4 events) and one of s2 (1) per write.
    for k in 0..10 {
        let rows: Vec<_> = (5 * k..5 * k + 5).rev().map(|i| ev(if i % 5 == 0 { "s2" } else { "s1" }, i)).collect();
        store.record_session_events(&rows).await.expect("record");
    }
    let s1 = store.session_events("s1", 1000).await.expect("read");
    assert_eq!(s1.len(), 40);
    assert!(s1.windows(2).all(|w| w[0].at < w[1].at), "time order");
    assert_eq!(s1[1].trace_id, "ab".repeat(16));
    assert_eq!(store.session_events("s1", 3).await.expect("read").len(), 3, "the limit holds");
    assert!(store.session_events("nobody", 10).await.expect("read").is_empty());
    // Chunks that ended before event 10 go (4), then the oldest beyond 20 events (8 more: the
    // newest 20 events are the last four writes).
    let pruned = store.prune_session_events(Timestamp(at0 + 10_000), 20).await.expect("prune");
    assert_eq!(pruned, 12);
    let mut left = Vec::new();
    for session in ["s1", "s2"] {
        left.extend(store.session_events(session, 1000).await.expect("read").iter().map(|e| (e.at.0 - at0) / 1000));
    }
    left.sort();
    assert_eq!(left, (30..50).collect::<Vec<_>>());
}

/// The agent as `thorbis-obs run` wires it (collector, OTLP intake, trace store) on SQLite
/// in a temporary directory, serving on a loopback port: the directory, the base URL, the
/// stop sender and task.
async fn wired_agent(traces: TracesSection) -> (tempfile::TempDir, String, support::Serving) {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let agent = support::quiet_agent(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store")))
        .http(addr, None)
        .collector(thorbis_obs_server::collector::CollectorSection::default())
        .otlp(OtlpSection { tokens: vec![Secret::new(TOKEN)], ..OtlpSection::default() })
        .traces(traces)
        .build()
        .expect("valid");
    let base = format!("http://{addr}");
    let serving = support::serve(agent, &base).await;
    (dir, base, serving)
}

/// The wall clock in nanoseconds since the epoch (span times must be near the agent's).
fn now_ns() -> u64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    u64::try_from(d.as_nanos()).expect("ns")
}

/// A browser batch (the SDK's wire format) of session `session`, sampled or not, with `events`.
fn browser_batch(session: &str, sampled: bool, now_ms: i64, events: serde_json::Value) -> String {
    serde_json::json!({
        "v": 1, "service": "web", "env": "test",
        "session": { "id": session, "sampled": sampled, "startedAt": now_ms - 5_000 },
        "view": { "id": format!("view-{session}"), "url": "http://app.test/orders/7", "route": "/orders/[id]" },
        "sentAt": now_ms,
        "events": events,
    })
    .to_string()
}

/// One server span as OTLP JSON: `parent` (hex) under the browser's span when given.
fn otlp_span(trace: &str, span: &str, parent: Option<&str>, start_ns: u64) -> serde_json::Value {
    let mut s = serde_json::json!({
        "traceId": trace, "spanId": span, "name": "GET /api/orders/[id]", "kind": 2,
        "startTimeUnixNano": start_ns.to_string(), "endTimeUnixNano": (start_ns + 40_000_000).to_string(),
        "attributes": [{ "key": "http.route", "value": { "stringValue": "/api/orders/[id]" } }],
    });
    if let Some(p) = parent {
        s["parentSpanId"] = p.into();
    }
    serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "api" } }] },
        "scopeSpans": [{ "spans": [s] }],
    }]})
}

/// The browser's part of traces, through the agent as it is wired: a sampled session's
/// request span joins the server's spans under one trace (kept: linked to the session); a
/// trace a browser error points at is kept though nothing else would keep it; a trace no one
/// links is dropped; an unsampled session's spans are not taken. The session's timeline lists
/// its events with their traces, and the error group points at the session and the trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_spans_join_their_traces_and_sessions_keep_them() {
    // Nothing is kept by the slowest or probabilistic policies: what is kept, a link kept.
    let traces = TracesSection {
        decision_wait: HumanDuration::from_secs(1),
        slowest_per_route: 0,
        probability: 0.0,
        ..TracesSection::default()
    };
    let (_dir, base, (stop, task)) = wired_agent(traces).await;
    let c = reqwest::Client::new();
    let ns = now_ns();
    let now_ms = i64::try_from(ns / 1_000_000).expect("ms");
    let (a, b, d, e) = ("a".repeat(32), "b".repeat(32), "d".repeat(32), "e".repeat(32));
    let browser_span = "1".repeat(16);

    // Server spans: A under the browser's span, B and D alone.
    for (trace, span, parent) in
        [(&a, "2".repeat(16), Some(browser_span.as_str())), (&b, "3".repeat(16), None), (&d, "4".repeat(16), None)]
    {
        let r = c
            .post(format!("{base}/v1/traces"))
            .bearer_auth(TOKEN)
            .json(&otlp_span(trace, &span, parent, ns + 1_000_000))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
    // The sampled session: the request span of A, an error pointing at B, a click.
    let events = serde_json::json!([
        { "type": "action", "at": now_ms - 100, "name": "Open order", "actionType": "click", "target": "button#open" },
        { "type": "span", "at": now_ms, "traceId": a, "spanId": browser_span, "name": "GET /api/orders/7",
          "op": "http.client", "durationMs": 60.5, "status": "ok", "method": "GET",
          "url": "http://app.test/api/orders/7", "statusCode": 200 },
        { "type": "error", "at": now_ms + 1, "kind": "captured", "message": "Error: cannot render order", "count": 1,
          "traceId": b },
    ]);
    let r = c
        .post(format!("{base}/v1/rum"))
        .body(browser_batch("sess-1", true, now_ms + 2, events))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    // An unsampled session's span (the SDK sends none; the collector takes none either).
    let events = serde_json::json!([{ "type": "span", "at": now_ms, "traceId": e, "spanId": "5".repeat(16),
        "name": "GET /x", "op": "http.client", "durationMs": 3 }]);
    let r = c
        .post(format!("{base}/v1/rum"))
        .body(browser_batch("sess-2", false, now_ms + 2, events))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    // A bad span id refuses the batch with the field named.
    let events = serde_json::json!([{ "type": "span", "at": now_ms, "traceId": a, "spanId": "XYZ",
        "name": "GET /x", "op": "http.client", "durationMs": 3 }]);
    let r = c
        .post(format!("{base}/v1/rum"))
        .body(browser_batch("sess-3", true, now_ms + 2, events))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("events[0].spanId"));

    let get = |url: String| {
        let c = c.clone();
        async move { c.get(url).send().await.ok()?.json::<serde_json::Value>().await.ok() }
    };
    support::eventually("A and B kept", Duration::from_secs(30), async || {
        get(format!("{base}/api/v1/traces?limit=10")).await.and_then(|v| v["traces"].as_array().map(Vec::len))
            == Some(2)
    })
    .await;
    let list = get(format!("{base}/api/v1/traces?limit=10")).await.expect("list");
    let ids: Vec<&str> =
        list["traces"].as_array().expect("traces").iter().filter_map(|t| t["trace_id"].as_str()).collect();
    assert!(ids.contains(&a.as_str()) && ids.contains(&b.as_str()), "{list}");
    assert!(list["traces"].as_array().expect("traces").iter().all(|t| t["policy"] == "linked"), "{list}");
    let one = get(format!("{base}/api/v1/traces/{a}")).await.expect("trace A");
    assert_eq!(one["summary"]["span_count"], 2, "{one}");
    assert_eq!(one["summary"]["services"], "api,web", "{one}");
    assert_eq!(one["summary"]["service"], "web", "the browser's span is the root: {one}");
    let spans = one["spans"].as_array().expect("spans");
    let server = spans.iter().find(|s| s["service"] == "api").expect("server span");
    assert_eq!(server["parent"], browser_span.as_str(), "the server span is the browser span's child");
    let page = c.get(format!("{base}/traces/{a}")).send().await.expect("get").text().await.expect("html");
    assert!(page.contains("href=\"/sessions/sess-1\""), "the trace links its browser session");
    // D (no link) dropped, E (unsampled) never taken.
    for id in [&d, &e] {
        assert_eq!(c.get(format!("{base}/api/v1/traces/{id}")).send().await.expect("get").status(), 404);
    }
    // The session's timeline: the click, the request with its trace, the error with its trace.
    let mut timeline = serde_json::Value::Null;
    support::eventually("the timeline stored", Duration::from_secs(30), async || {
        timeline = get(format!("{base}/api/v1/sessions/sess-1")).await.unwrap_or_default();
        timeline["events"].as_array().is_some_and(|e| e.len() == 3)
    })
    .await;
    let kinds: Vec<&str> =
        timeline["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["action", "span", "error"], "in time order: {timeline}");
    assert_eq!(timeline["events"][1]["trace_id"], a.as_str());
    assert_eq!(timeline["events"][2]["trace_id"], b.as_str());
    let page = c.get(format!("{base}/sessions/sess-1")).send().await.expect("get").text().await.expect("html");
    assert!(page.contains(&format!("href=\"/traces/{a}\"")) && page.contains("Open order"), "{page}");
    assert_eq!(c.get(format!("{base}/api/v1/sessions/bad%20id")).send().await.expect("get").status(), 400);
    // The error group points at its session and trace, and is found by the trace.
    let groups = get(format!("{base}/api/v1/rum/errors?trace_id={b}")).await.expect("groups");
    let g = &groups["errors"][0];
    assert_eq!(
        (g["tags"]["session_id"].as_str(), g["tags"]["trace_id"].as_str()),
        (Some("sess-1"), Some(b.as_str())),
        "{groups}"
    );
    let none = get(format!("{base}/api/v1/rum/errors?trace_id={a}")).await.expect("groups");
    assert_eq!(none["total"], 0, "{none}");

    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}

/// OTLP JSON of `spans` (id, parent, name, start and end in ns) of one trace of service `api`.
fn otlp_spans(trace: &str, spans: &[(String, Option<String>, String, u64, u64)]) -> String {
    let spans: Vec<serde_json::Value> = spans
        .iter()
        .map(|(id, parent, name, start, end)| {
            let mut s = serde_json::json!({ "traceId": trace, "spanId": id, "name": name, "kind": 1,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string() });
            if let Some(p) = parent {
                s["parentSpanId"] = p.as_str().into();
            }
            s
        })
        .collect();
    serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "api" } }] },
        "scopeSpans": [{ "spans": spans }],
    }]})
    .to_string()
}

/// Hostile traces through the real intake: 100,000 spans in one trace are capped at the
/// documented 10,000 (the trace counts what it left out), stored whole and drawn in
/// part; parent cycles, a span its own parent, missing parents and a child that starts before
/// its parent are stored and drawn, every span once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_malformed_traces_are_capped_stored_and_drawn() {
    // Both traces are kept as their route's slowest, when the policy's window closes: a
    // window of 2 s, not the default minute, which the test would wait for.
    let traces = TracesSection {
        decision_wait: HumanDuration::from_secs(1),
        window: HumanDuration::from_secs(2),
        ..TracesSection::default()
    };
    let (_dir, base, (stop, task)) = wired_agent(traces).await;
    let c = reqwest::Client::new();
    let now_ns = now_ns();
    let post = |body: String| {
        let c = c.clone();
        let url = format!("{base}/v1/traces");
        async move {
            let r = c
                .post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
    };
    // 100,000 spans of one trace, in 40 requests; every span under the root.
    let huge = "c".repeat(32);
    let id = |i: u64| format!("{:016x}", i + 1);
    for chunk in 0..40u64 {
        let spans: Vec<_> = (chunk * 2_500..(chunk + 1) * 2_500)
            .map(|i| {
                let parent = (i > 0).then(|| id(0));
                (id(i), parent, format!("step {i}"), now_ns + i * 1_000, now_ns + i * 1_000 + 500)
            })
            .collect();
        post(otlp_spans(&huge, &spans)).await;
    }
    // A malformed one: R the root; A and B each other's parent; S its own parent; M's parent
    // never came; K starts 5 s before its parent R (a skewed clock).
    let odd = "9".repeat(32);
    let s = |name: &str, id: &str, parent: Option<&str>, start: u64, end: u64| {
        (id.repeat(16), parent.map(|p| p.repeat(16)), name.to_string(), start, end)
    };
    post(otlp_spans(
        &odd,
        &[
            s("root R", "1", None, now_ns, now_ns + 50_000_000),
            s("cycle A", "2", Some("3"), now_ns + 1_000_000, now_ns + 2_000_000),
            s("cycle B", "3", Some("2"), now_ns + 2_000_000, now_ns + 3_000_000),
            s("self S", "4", Some("4"), now_ns + 3_000_000, now_ns + 4_000_000),
            s("orphan M", "5", Some("e"), now_ns + 4_000_000, now_ns + 5_000_000),
            s("skewed K", "6", Some("1"), now_ns - 5_000_000_000, now_ns - 4_990_000_000),
        ],
    ))
    .await;

    let json = |url: String| {
        let c = c.clone();
        async move { c.get(url).send().await.ok()?.json::<serde_json::Value>().await.ok() }
    };
    let mut big = serde_json::Value::Null;
    support::eventually("both traces stored", Duration::from_secs(60), async || {
        big = json(format!("{base}/api/v1/traces/{huge}")).await.unwrap_or_default();
        let odd_ok = json(format!("{base}/api/v1/traces/{odd}")).await.is_some_and(|v| v["summary"]["span_count"] == 6);
        odd_ok && big["summary"]["span_count"].is_number()
    })
    .await;
    assert_eq!(big["summary"]["span_count"], 10_000, "capped at max_spans_per_trace");
    assert_eq!(big["spans"].as_array().map(Vec::len), Some(10_000), "the stored trace is whole");
    let dropped = big["dropped_spans"].as_u64().expect("dropped_spans");
    assert!((1..=90_000).contains(&dropped), "the trace says spans were left out: {dropped}");
    let page = c.get(format!("{base}/traces/{huge}")).send().await.expect("get");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("8000 more spans not drawn"));
    let page = c.get(format!("{base}/traces/{odd}")).send().await.expect("get").text().await.expect("html");
    for name in ["root R", "cycle A", "cycle B", "self S", "orphan M", "skewed K"] {
        assert_eq!(page.matches(&format!("<summary>{name}")).count(), 1, "{name} drawn once");
    }
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
