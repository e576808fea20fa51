//! The OTLP/HTTP intake against real clients: the OpenTelemetry Python SDK's exporter
//! (installed by scripts/test.sh; its interpreter in THORBIS_TEST_OTEL_PYTHON) sends a known
//! set of spans, and the request metrics equal the figures computed by hand; OTLP JSON, gzip,
//! partial success, and bad input answered as OTLP/HTTP says.
#![cfg(feature = "otlp")]

mod support;

use prost::Message;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thorbis_obs_core::metrics::Sample;
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_server::agent::{AgentBuilder, system_now};
use thorbis_obs_server::clock::TokioClock;
use thorbis_obs_server::otlp::{OtlpIntake, OtlpSection, RpcStatus};
use thorbis_obs_server::secret::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

const TOKEN: &str = "otlp-test-token";

struct Running {
    base: String,
    intake: Option<Arc<OtlpIntake>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), thorbis_obs_server::agent::AgentError>>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("agent");
        }
    }

    /// The open window's figures. The agent's clock starts a minute into an hour and the window
    /// is an hour long, so no window closes while a test runs.
    fn samples(&self) -> Vec<Sample> {
        self.intake.as_ref().expect("an intake of the test's own").open_samples(Timestamp(0))
    }
}

/// An agent with the intake (hour-long windows, a token) on a loopback port.
async fn start(section: OtlpSection) -> Running {
    let hour = 3_600_000;
    let clock = TokioClock::starting_at(Timestamp(system_now().0.div_euclid(hour) * hour + 60_000));
    let slot: Arc<OnceLock<Arc<OtlpIntake>>> = Arc::default();
    let keep = slot.clone();
    let mut running = launch(|b| {
        b.clock(Arc::new(clock)).component(move |hub| {
            let intake = Arc::new(OtlpIntake::new(hub.clone(), section).expect("the intake"));
            let _ = keep.set(intake.clone());
            intake
        })
    })
    .await;
    running.intake = Some(slot.get().expect("the intake was built").clone());
    running
}

/// A quiet agent on a SQLite store in a temp dir and a loopback port, as `shape` finishes its
/// builder, running until `shutdown`.
async fn launch(shape: impl FnOnce(AgentBuilder) -> AgentBuilder) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store"));
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let agent = shape(support::quiet_agent(store).http(addr, None)).build().expect("valid");
    let base = format!("http://{addr}");
    let (stop, task) = support::serve(agent, &base).await;
    Running { base, intake: None, stop: Some(stop), task: Some(task), _dir: dir }
}

fn section() -> OtlpSection {
    OtlpSection {
        tokens: vec![Secret::new(TOKEN)],
        window: HumanDuration::from_secs(3600),
        // The agent's clock runs up to an hour behind the real one (see `Running::samples`).
        max_clock_skew: HumanDuration::from_secs(7200),
        ..OtlpSection::default()
    }
}

fn value(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find(|s| s.name == name && pairs.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| s.value)
}

fn python() -> String {
    std::env::var("THORBIS_TEST_OTEL_PYTHON")
        .expect("THORBIS_TEST_OTEL_PYTHON (a Python with opentelemetry-sdk) is set by scripts/test.sh")
}

/// Runs one of tests/otel/*.py with the SDK's Python; fails the test when it does. Its output.
fn run_python(script: &str, args: &[&str]) -> String {
    let script = format!("{}/tests/otel/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python()).arg(script).args(args).output().expect("python runs");
    assert!(
        out.status.success(),
        "the SDK's export failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_logs_from_the_python_sdk_join_the_error_groups_with_their_trace() {
    // The agent as the config builds it: the collector's error groups and the intake together.
    let agent =
        launch(|b| b.collector(thorbis_obs_server::collector::CollectorSection::default()).otlp(section())).await;
    let base = agent.base.clone();
    let c = reqwest::Client::new();
    let b = base.clone();
    let out = tokio::task::spawn_blocking(move || run_python("send_logs.py", &[&b, TOKEN])).await.expect("join");
    let trace_id = out.lines().last().unwrap_or_default().trim().to_string();
    assert_eq!(trace_id.len(), 32, "{out}");
    let mut group = serde_json::Value::Null;
    support::eventually("the server error in the error groups", Duration::from_secs(30), async || {
        let Ok(r) = c.get(format!("{base}/api/v1/rum/errors?range=1h")).send().await else { return false };
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        let groups = v["groups"].as_array().or(v["errors"].as_array()).cloned().unwrap_or_default();
        match groups.into_iter().find(|g| g["kind"] == "server") {
            Some(g) => {
                group = g;
                true
            }
            None => false,
        }
    })
    .await;
    // One group for the two occurrences, named by the exception, with the span's trace id.
    assert_eq!(group["count"], 2, "{group}");
    assert_eq!(group["service"], "checkout", "{group}");
    assert_eq!(group["message"], "ValueError: card declined", "{group}");
    assert_eq!(group["tags"]["trace_id"], trace_id.as_str(), "{group}");
    assert!(group["sample_stack"].as_str().is_some_and(|s| s.contains("Traceback")), "{group}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_s_spans_become_the_figures_computed_by_hand() {
    let agent = start(section()).await;
    let base = agent.base.clone();
    tokio::task::spawn_blocking(move || {
        run_python("send_spans.py", &[&base, TOKEN, "none"]);
        run_python("send_spans.py", &[&base, TOKEN, "gzip"])
    })
    .await
    .expect("join");
    let s = agent.samples();
    // Twice the script's spans (once plain, once gzip): the figures are the script's, counts doubled.
    let wo = [("service", "checkout"), ("env", "test"), ("route", "/api/work-orders/{id}"), ("method", "GET")];
    // 100..1000 ms: mean 550 ms; 2 of 10 answered 500.
    assert_eq!(value(&s, "http_request_duration", &wo), Some(550.0));
    assert_eq!(value(&s, "http_request_error_rate", &wo), Some(0.2));
    let with = |class| [wo[0], wo[2], ("status_class", class)];
    assert_eq!(value(&s, "http_requests", &with("2xx")), Some(16.0));
    assert_eq!(value(&s, "http_requests", &with("5xx")), Some(4.0));
    // p99 of 100..1000 ms (each twice): the largest, within the sketch's 1% bound.
    let p99 = value(&s, "http_request_duration_p99", &wo).expect("p99");
    assert!((p99 - 1000.0).abs() <= 10.0, "p99 {p99}");
    // p50 as PromQL computes it: rank 0.5 * 19 = 9.5, halfway between 500 and 600.
    let p50 = value(&s, "http_request_duration_p50", &wo).expect("p50");
    assert!((p50 - 550.0).abs() <= 5.5, "p50 {p50}");
    // The route from the span's name; ERROR status without a status code is a failure.
    let inv = [("route", "/api/invoices"), ("method", "POST")];
    assert_eq!(value(&s, "http_request_duration", &inv), Some(50.0));
    assert_eq!(value(&s, "http_request_error_rate", &inv), Some(0.2));
    // Over every route: 30 requests, 6 failed; mean (2 * 5500 + 2 * 250) / 30.
    let all = [("service", "checkout"), ("env", "test")];
    assert_eq!(value(&s, "http_service_request_error_rate", &all), Some(0.2));
    let mean = value(&s, "http_service_request_duration", &all).expect("mean");
    assert!((mean - 11_500.0 / 30.0).abs() < 1e-9, "{mean}");
    let db = [("db_system", "postgresql"), ("operation", "SELECT"), ("collection", "invoices")];
    assert_eq!(value(&s, "db_query_duration", &db), Some(25.0));
    assert_eq!(value(&s, "db_queries", &db), Some(8.0));
    let ext = [("peer", "api.stripe.com")];
    assert_eq!(value(&s, "external_request_duration", &ext), Some(400.0));
    assert_eq!(value(&s, "external_request_error_rate", &ext), Some(0.5));
    assert!(s.iter().all(|x| !x.name.starts_with("http_") || x.labels.get("route") != Some("render invoice")));
    agent.shutdown().await;
}

/// Posts OTLP JSON with the token (and `host` as the Host header when given).
async fn export_json(url: &str, host: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url).bearer_auth(TOKEN).json(body);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    req.send().await.expect("send")
}

/// The value of the series `name` whose labels include `pairs`, from the agent's /metrics.
async fn scrape(base: &str, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| pairs.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_s_metrics_become_samples_named_as_prometheus_names_them() {
    let agent = start(section()).await;
    let base = agent.base.clone();
    tokio::task::spawn_blocking(move || run_python("send_metrics.py", &[&base, TOKEN])).await.expect("join");
    let b = &agent.base;
    let svc = ("service", "checkout");
    assert_eq!(scrape(b, "orders_created_total", &[svc, ("env", "test"), ("channel", "web")]).await, Some(5.0));
    assert_eq!(scrape(b, "queue_depth", &[svc, ("queue", "emails")]).await, Some(7.0));
    assert_eq!(scrape(b, "checkout_duration_milliseconds_count", &[svc]).await, Some(4.0));
    assert_eq!(scrape(b, "checkout_duration_milliseconds_sum", &[svc]).await, Some(100.0));
    // 10 in (5, 10], 20 in (10, 25], 30 and 40 in (25, 50]: the median is the top of (10, 25],
    // the p99 99% of the way through (25, 50] by rank: 25 + 25 * (3.96 - 2) / 2.
    assert_eq!(scrape(b, "checkout_duration_milliseconds_p50", &[svc]).await, Some(25.0));
    let p99 = scrape(b, "checkout_duration_milliseconds_p99", &[svc]).await.expect("p99");
    assert!((p99 - 49.5).abs() < 1e-9, "{p99}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_points_are_checked_one_by_one() {
    let agent = start(section()).await;
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let point = |t: u64, v: f64| serde_json::json!({ "timeUnixNano": t.to_string(), "asDouble": v });
    let body = serde_json::json!({ "resourceMetrics": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "jobs" } }] },
        "scopeMetrics": [{ "metrics": [
            { "name": "jobs.waiting", "unit": "{job}", "gauge": { "dataPoints": [point(now_ns, 3.0), point(1_000_000, 4.0)] } },
            { "name": "jobs.latency", "unit": "ms", "histogram": { "aggregationTemporality": 2, "dataPoints": [{
                "timeUnixNano": now_ns.to_string(), "count": "3", "sum": 30.0,
                "bucketCounts": ["1", "2"], "explicitBounds": [5.0, 10.0]
            }] } }
        ] }]
    }] });
    let r = export_json(&format!("{}/v1/metrics", agent.base), None, &body).await;
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.expect("json");
    let partial = &answer["partialSuccess"];
    let rejected = &partial["rejectedDataPoints"];
    // The point from 1970, and the histogram whose 2 bucket counts do not fit its 2 bounds.
    assert_eq!(rejected.as_i64().or_else(|| rejected.as_str()?.parse().ok()), Some(2), "{answer}");
    assert!(partial["errorMessage"].as_str().is_some_and(|m| m.contains("jobs.waiting")), "{answer}");
    assert_eq!(scrape(&agent.base, "jobs_waiting", &[("service", "jobs")]).await, Some(3.0));
    assert_eq!(scrape(&agent.base, "jobs_latency_milliseconds_count", &[("service", "jobs")]).await, None);
    agent.shutdown().await;
}

fn span(name: &str, kind: i32, trace: u8, start_ns: u64, ms: u64) -> serde_json::Value {
    serde_json::json!({
        "traceId": format!("{:032x}", trace),
        "spanId": format!("{:016x}", trace as u64 + 1),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": start_ns.to_string(),
        "endTimeUnixNano": (start_ns + ms * 1_000_000).to_string(),
        "attributes": [
            { "key": "http.route", "value": { "stringValue": "/api/jobs/:id" } },
            { "key": "http.response.status_code", "value": { "intValue": "200" } }
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_partial_success_and_bad_input() {
    let agent = start(section()).await;
    let c = reqwest::Client::new();
    let url = format!("{}/v1/traces", agent.base);
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    // OTLP JSON: two good SERVER spans, one ending before it starts, one from 1970.
    let mut backwards = span("GET /api/jobs/1", 2, 3, now_ns, 10);
    backwards["endTimeUnixNano"] = serde_json::json!((now_ns - 1).to_string());
    let body = serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "jobs" } }] },
        "scopeSpans": [{ "spans": [
            span("GET /api/jobs/1", 2, 1, now_ns - 500_000_000, 120),
            span("GET /api/jobs/2", 2, 2, now_ns - 500_000_000, 80),
            backwards,
            span("GET /api/jobs/3", 2, 4, 1_000_000, 5),
        ] }]
    }] });
    let r = c.post(&url).bearer_auth(TOKEN).json(&body).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.headers()[reqwest::header::CONTENT_TYPE].to_str().expect("ct").starts_with("application/json"));
    let answer: serde_json::Value = r.json().await.expect("json");
    let partial = &answer["partialSuccess"];
    let rejected = &partial["rejectedSpans"];
    assert_eq!(rejected.as_i64().or_else(|| rejected.as_str()?.parse().ok()), Some(2), "{answer}");
    assert!(partial["errorMessage"].as_str().is_some_and(|m| m.contains("ends before it starts")), "{answer}");
    let s = agent.samples();
    let jobs = [("service", "jobs"), ("route", "/api/jobs/:id")];
    assert_eq!(value(&s, "http_request_duration", &jobs), Some(100.0));

    // The token comes before the body: a body announced at 100 MB that never comes, without a
    // token, is answered 401 at once (nothing of it is read); with the token, 413.
    let announce = |auth: &str| {
        format!(
            "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/x-protobuf\r\nContent-Length: 100000000\r\n\r\n\n"
        )
    };
    assert_eq!(&head_of(&agent.base, announce("")).await, b"HTTP/1.1 401");
    assert_eq!(&head_of(&agent.base, announce(&format!("Authorization: Bearer {TOKEN}\r\n"))).await, b"HTTP/1.1 413");
    // Other content types: 415, in OTLP's Status message.
    let r = c.post(&url).bearer_auth(TOKEN).header("content-type", "text/xml").body("<x/>").send().await.expect("send");
    assert_eq!(r.status(), 415);
    let status = RpcStatus::decode(r.bytes().await.expect("body")).expect("a google.rpc.Status");
    assert!(status.message.contains("application/x-protobuf"), "{}", status.message);
    // A truncated protobuf: 400 with the decoder's message.
    let good = ExportTraceServiceRequest { resource_spans: vec![] };
    let mut bytes = good.encode_to_vec();
    bytes.extend_from_slice(&[0x0a, 0xff, 0xff, 0x03, 0x01]);
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-protobuf")
        .body(bytes)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    // A gzip bomb (64 MiB of zeros in ~64 KB) stops at max_decoded_bytes: 413.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 64 << 20]).expect("write");
    let bomb = gz.finish().expect("gzip");
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_of_its_own_serves_only_the_intake_to_any_host() {
    let port = support::agent::free_port();
    let agent = start(OtlpSection { listen: format!("127.0.0.1:{port}"), ..section() }).await;
    let c = reqwest::Client::new();
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let body = serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "edge" } }] },
        "scopeSpans": [{ "spans": [span("GET /api/jobs/9", 2, 9, now_ns - 1_000_000_000, 40)] }]
    }] });
    // Exporters name the agent by whatever host they reach it as.
    let host = format!("otel-agent.internal:{port}");
    let r = export_json(&format!("http://127.0.0.1:{port}/v1/traces"), Some(&host), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(value(&agent.samples(), "http_requests", &[("service", "edge")]), Some(1.0));
    // Nothing else is served there, and the token still holds.
    let r = c.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("send");
    assert_eq!(r.status(), 404);
    let r = c.post(format!("http://127.0.0.1:{port}/v1/traces")).json(&body).send().await.expect("send");
    assert_eq!(r.status(), 401);
    agent.shutdown().await;
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// Sends `head` (a request whose body never comes) on a raw connection; the answer's first 12
/// bytes (`HTTP/1.1 401`).
async fn head_of(base: &str, head: String) -> [u8; 12] {
    let addr = base.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(head.as_bytes()).expect("write");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut got = [0u8; 12];
        s.read_exact(&mut got).expect("answered without the body");
        got
    })
    .await
    .expect("join")
}

/// What the relay's receiver took: (path, content type, content encoding, API key, body).
type Taken = Vec<(String, Option<String>, Option<String>, Option<String>, Vec<u8>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_requests_are_relayed_byte_for_byte_and_a_down_receiver_costs_only_the_oldest() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use support::web::{Reply, WebServer};
    let taken: Arc<Mutex<Taken>> = Arc::default();
    let down = Arc::new(AtomicBool::new(false));
    let (t, d) = (taken.clone(), down.clone());
    let receiver = WebServer::start(move |r| {
        if d.load(Ordering::SeqCst) {
            return Reply::new(503, "down for maintenance");
        }
        let h = |n: &str| r.header(n).map(str::to_string);
        let row = (r.path.clone(), h("content-type"), h("content-encoding"), h("x-api-key"), r.body.clone());
        t.lock().expect("lock").push(row);
        Reply::bytes("application/x-protobuf", Vec::new())
    })
    .await;
    let mut cfg = section();
    cfg.forward.endpoint = receiver.url("/");
    cfg.forward.headers.insert("x-api-key".into(), Secret::new("relay-key"));
    cfg.forward.concurrency = 1;
    cfg.forward.max_queue_requests = 5;
    cfg.forward.retry.initial_backoff = HumanDuration(Duration::from_millis(20));
    cfg.forward.retry.max_backoff = HumanDuration(Duration::from_millis(100));
    let agent = start(cfg).await;
    let c = reqwest::Client::new();
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let traces = |n: u8| {
        serde_json::json!({ "resourceSpans": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "relay" } }] },
            "scopeSpans": [{ "spans": [span(&format!("GET /api/jobs/{n}"), 2, n, now_ns - 1_000_000_000, 40)] }]
        }] })
    };
    let post = |path: &str, ct: &'static str, gzip: bool, body: Vec<u8>| {
        let mut req = c.post(format!("{}{path}", agent.base)).bearer_auth(TOKEN).header("content-type", ct);
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        req.body(body).send()
    };

    // The three signals, in both encodings, one gzipped: each arrives as it was sent.
    let json = serde_json::to_vec(&traces(1)).expect("json");
    let proto = {
        let parsed: ExportTraceServiceRequest = serde_json::from_slice(&json).expect("OTLP JSON");
        parsed.encode_to_vec()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&proto).expect("write");
    let gzipped = gz.finish().expect("gzip");
    let logs = serde_json::to_vec(&serde_json::json!({ "resourceLogs": [{ "scopeLogs": [{ "logRecords": [{
        "timeUnixNano": now_ns.to_string(), "severityNumber": 9, "body": { "stringValue": "relayed" }
    }] }] }] }))
    .expect("json");
    let metrics = serde_json::to_vec(&serde_json::json!({ "resourceMetrics": [{ "scopeMetrics": [{ "metrics": [
        { "name": "relay.depth", "gauge": { "dataPoints": [{ "timeUnixNano": now_ns.to_string(), "asDouble": 2.0 }] } }
    ] }] }] }))
    .expect("json");
    let sent = [
        ("/v1/traces", "application/json", false, json.clone()),
        ("/v1/traces", "application/x-protobuf", true, gzipped.clone()),
        ("/v1/logs", "application/json", false, logs.clone()),
        ("/v1/metrics", "application/json", false, metrics.clone()),
    ];
    for (path, ct, gzip, body) in &sent {
        assert_eq!(post(path, ct, *gzip, body.clone()).await.expect("send").status(), 200);
    }
    // A refused request is not relayed.
    assert_eq!(post("/v1/traces", "application/json", false, b"{".to_vec()).await.expect("send").status(), 400);
    let intake = agent.intake.clone().expect("intake");
    support::eventually("four requests relayed", Duration::from_secs(30), async || {
        intake.forward_totals().is_some_and(|t| t.sent >= 4)
    })
    .await;
    let got = taken.lock().expect("lock").clone();
    assert_eq!(got.len(), 4, "the refused request was not relayed");
    for (path, ct, gzip, body) in &sent {
        let same = |g: &&(String, Option<String>, Option<String>, Option<String>, Vec<u8>)| {
            g.0 == *path && g.1.as_deref() == Some(*ct) && g.2.is_some() == *gzip && g.4 == *body
        };
        assert!(got.iter().any(|g| same(&g)), "{path} {ct} gzip={gzip} not relayed as sent");
    }
    assert!(got.iter().all(|g| g.3.as_deref() == Some("relay-key")), "the configured header on each");

    // The receiver goes down: the agent answers its exporters all the same. The one worker
    // holds the first request, retrying; five wait; the fourteen oldest of the rest are dropped.
    down.store(true, Ordering::SeqCst);
    let bodies: Vec<Vec<u8>> = (1..=20).map(|n| serde_json::to_vec(&traces(100 + n)).expect("json")).collect();
    assert_eq!(post("/v1/traces", "application/json", false, bodies[0].clone()).await.expect("send").status(), 200);
    support::eventually("the relay retrying", Duration::from_secs(30), async || {
        intake.forward_totals().is_some_and(|t| t.retried >= 1)
    })
    .await;
    for body in &bodies[1..] {
        assert_eq!(post("/v1/traces", "application/json", false, body.clone()).await.expect("send").status(), 200);
    }
    let totals = intake.forward_totals().expect("totals");
    assert_eq!((totals.dropped, totals.queued), (14, 5), "{totals:?}");
    // Back up: the held request and the five newest arrive, nothing else.
    down.store(false, Ordering::SeqCst);
    support::eventually("the queue relayed", Duration::from_secs(30), async || {
        intake.forward_totals().is_some_and(|t| t.sent >= 10)
    })
    .await;
    let after: Vec<Vec<u8>> = taken.lock().expect("lock")[4..].iter().map(|g| g.4.clone()).collect();
    let mut expected = vec![bodies[0].clone()];
    expected.extend(bodies[15..].iter().cloned());
    assert_eq!(after, expected, "the first (held) request, then the five newest, in order");
    let totals = intake.forward_totals().expect("totals");
    assert_eq!((totals.sent, totals.dropped, totals.failed, totals.queued), (10, 14, 0, 0), "{totals:?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_spans_and_login_records_feed_the_spec_s_payment_and_login_rules() {
    let agent = start(section()).await;
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let attr = |k: &str, v: &str| serde_json::json!({ "key": k, "value": { "stringValue": v } });
    // Ten payments: seven succeeded, one declined, one with status ERROR and no status
    // attribute (a failure), one pending (counted, not in the rate).
    let mut spans = Vec::new();
    for (i, status) in ["succeeded"; 7].into_iter().chain(["declined", "", "pending"]).enumerate() {
        let mut s = span("payment.processed", 1, 10 + i as u8, now_ns - 1_000_000_000, 30);
        s["attributes"] =
            if status.is_empty() { serde_json::json!([]) } else { serde_json::json!([attr("payment.status", status)]) };
        if status.is_empty() {
            s["status"] = serde_json::json!({ "code": 2, "message": "card network timeout" });
        }
        spans.push(s);
    }
    let body = serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [attr("service.name", "billing"), attr("deployment.environment.name", "prod")] },
        "scopeSpans": [{ "spans": spans }]
    }] });
    assert_eq!(export_json(&format!("{}/v1/traces", agent.base), None, &body).await.status(), 200);
    // Twelve failed logins and three good ones, as log records with an event name.
    let record = |outcome: &str| {
        serde_json::json!({ "timeUnixNano": now_ns.to_string(), "severityNumber": 9, "eventName": "auth.login",
            "attributes": [attr("auth.outcome", outcome)] })
    };
    let records: Vec<_> =
        std::iter::repeat_n("failure", 12).chain(std::iter::repeat_n("success", 3)).map(record).collect();
    let body = serde_json::json!({ "resourceLogs": [{
        "resource": { "attributes": [attr("service.name", "auth")] },
        "scopeLogs": [{ "logRecords": records }]
    }] });
    assert_eq!(export_json(&format!("{}/v1/logs", agent.base), None, &body).await.status(), 200);
    let s = agent.samples();
    assert_eq!(value(&s, "payment_failure_rate", &[("service", "billing"), ("env", "prod")]), Some(2.0 / 9.0));
    assert_eq!(value(&s, "payments", &[("service", "billing"), ("outcome", "unknown")]), Some(1.0));
    // Above the spec's 0.1 (payments) and 10 a minute (logins).
    assert_eq!(value(&s, "failed_login_rate", &[("service", "auth")]), Some(12.0));
    assert_eq!(value(&s, "logins", &[("service", "auth"), ("outcome", "succeeded")]), Some(3.0));
    agent.shutdown().await;
}
