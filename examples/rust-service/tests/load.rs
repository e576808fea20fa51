//! The example service under a bounded load, exporting to a real agent's OTLP intake on
//! loopback: the request, query, error and payment metrics equal what the load did.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use thorbis_obs_core::metrics::Sample;
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_server::agent::{Agent, system_now};
use thorbis_obs_server::clock::TokioClock;
use thorbis_obs_server::otlp::{OtlpIntake, OtlpSection};
use thorbis_obs_server::secret::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

const TOKEN: &str = "rust-service-token";

/// Stops the service (SIGTERM, so it flushes) when dropped, whatever the test did.
struct Service(Child);

impl Service {
    fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn value(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find(|s| s.name == name && pairs.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(|s| s.value)
}

async fn until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_under_load_feeds_the_request_query_and_payment_metrics() {
    // The agent: its clock a minute into an hour and hour-long windows, so no window closes
    // while the test runs and the open window holds everything.
    let dir = tempfile::tempdir().expect("tempdir");
    let hour = 3_600_000;
    let clock = TokioClock::starting_at(Timestamp(system_now().0.div_euclid(hour) * hour + 60_000));
    let section = OtlpSection {
        tokens: vec![Secret::new(TOKEN)],
        window: HumanDuration::from_secs(3600),
        max_clock_skew: HumanDuration::from_secs(7200),
        ..OtlpSection::default()
    };
    let slot: Arc<OnceLock<Arc<OtlpIntake>>> = Arc::default();
    let keep = slot.clone();
    let agent_port = free_port();
    let agent = Agent::builder()
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store")))
        .clock(Arc::new(clock))
        .http(([127, 0, 0, 1], agent_port).into(), None)
        .component(move |hub| {
            let intake = Arc::new(OtlpIntake::new(hub.clone(), section).expect("the intake"));
            let _ = keep.set(intake.clone());
            intake
        })
        .build()
        .expect("valid");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let intake = slot.get().expect("built").clone();

    // The service, exporting there with the standard variables.
    let port = free_port();
    let mut service = Service(
        Command::new(env!("CARGO_BIN_EXE_rust-service"))
            .env("PORT", port.to_string())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{agent_port}"))
            .env("OTEL_EXPORTER_OTLP_HEADERS", format!("Authorization=Bearer%20{TOKEN}"))
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the service starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let start = Instant::now();
    while c.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the service did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bounded load: 200 work-order lookups over 8 connections, 20 payments, 5 failures.
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let (c, base) = (c.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25u64 {
                let r = c.get(format!("{base}/api/work-orders/{}", worker * 100 + i)).send().await.expect("get");
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    for id in 1..=20 {
        c.post(format!("{base}/api/payments/{id}")).send().await.expect("post");
    }
    for _ in 0..5 {
        assert_eq!(c.get(format!("{base}/api/reports/fail")).send().await.expect("get").status(), 500);
    }
    // SIGTERM: the service flushes its batch and exits.
    service.terminate();
    until("the spans of every request", Duration::from_secs(60), || {
        let s = intake.open_samples(Timestamp(0));
        let failed = value(&s, "http_requests", &[("route", "/api/reports/fail"), ("status_class", "5xx")]);
        value(&s, "http_requests", &[("route", "/api/work-orders/{id}"), ("status_class", "2xx")]) == Some(200.0)
            && failed == Some(5.0)
            && value(&s, "payments", &[("outcome", "succeeded")]) == Some(16.0)
    })
    .await;
    let s = intake.open_samples(Timestamp(0));
    let wo = [("service", "rust-service"), ("route", "/api/work-orders/{id}"), ("method", "GET")];
    let mean = value(&s, "http_request_duration", &wo).expect("duration");
    assert!(mean >= 15.0, "each lookup sleeps 15 ms: {mean}");
    assert_eq!(value(&s, "http_request_error_rate", &wo), Some(0.0));
    let fail = [("service", "rust-service"), ("route", "/api/reports/fail")];
    assert_eq!(value(&s, "http_request_error_rate", &fail), Some(1.0));
    let q = [("db_system", "postgresql"), ("operation", "SELECT"), ("collection", "work_orders")];
    assert_eq!(value(&s, "db_queries", &q), Some(200.0));
    assert!(value(&s, "db_query_duration", &q).is_some_and(|ms| ms >= 5.0));
    // Ids 5, 10, 15 and 20 were declined: 4 of 20.
    assert_eq!(value(&s, "payment_failure_rate", &[("service", "rust-service")]), Some(0.2));
    // Answered 402, not 5xx: a declined payment is not a server error.
    let pay = [("route", "/api/payments/{id}"), ("method", "POST")];
    assert_eq!(value(&s, "http_request_error_rate", &pay), Some(0.0));

    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
