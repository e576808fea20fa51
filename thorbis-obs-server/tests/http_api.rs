//! The agent's HTTP endpoints, served on loopback by an in-process agent.

mod support;

use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::rules::coverage::Producer;
use thorbis_obs_core::rules::packs;
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_server::agent::Agent;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_and_guard_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let mut rules = packs::spec_rules();
    for r in &mut rules {
        r.channels = vec!["mem".into()];
        for s in &mut r.escalation {
            s.channels = vec!["mem".into()];
        }
    }
    let mem = InMemoryChannel::new("mem");
    let agent = Agent::builder()
        .rules(rules)
        .channel(Arc::new(mem.clone()))
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .evaluation_interval(Duration::from_millis(200))
        .http(addr, Some(Secret::new("s3cret")))
        .producers([Producer::new("payments service", ["payment_failure_rate"])])
        .build()
        .expect("valid");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let c = reqwest::Client::new();
    support::eventually("the server to come up", Duration::from_secs(30), async || {
        c.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let ready = c.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    // Each rule with what feeds it: the declared producer feeds the payment rule only.
    let listed: serde_json::Value =
        c.get(format!("{base}/api/v1/rules")).send().await.expect("get").json().await.expect("json");
    let rule = |id: &str| listed["rules"].as_array().and_then(|r| r.iter().find(|x| x["id"] == id)).cloned();
    let payment = rule("payment-processing-failure").expect("listed");
    assert_eq!(payment["producers"], serde_json::json!(["payments service"]));
    assert_eq!((payment["fed"].clone(), payment["metric"].clone()), (true.into(), "payment_failure_rate".into()));
    assert_eq!(rule("high-response-time").map(|r| r["fed"].clone()), Some(false.into()));
    assert_eq!(listed["rules"].as_array().map(Vec::len), Some(5));

    // Writes need the token.
    let body =
        serde_json::json!([{ "name": "payment_failure_rate", "labels": { "provider": "stripe" }, "value": 0.4 }]);
    let r = c.post(format!("{base}/api/v1/samples")).json(&body).send().await.expect("post");
    assert_eq!(r.status(), 401);
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("wrong").json(&body).send().await.expect("post");
    assert_eq!(r.status(), 401);
    // A bad batch stores nothing and names the bad sample.
    let bad = serde_json::json!([
        { "name": "payment_failure_rate", "value": 0.4 },
        { "name": "bad name", "value": 1.0 }
    ]);
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("s3cret").json(&bad).send().await.expect("post");
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.expect("json");
    assert!(err["error"].as_str().is_some_and(|e| e.starts_with("[1]: invalid metric name")), "{err}");
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("s3cret").json(&body).send().await.expect("post");
    assert_eq!(r.status(), 200);

    // The alert fires and shows in the API and in /metrics.
    support::monitors::wait_for("a notification", Duration::from_secs(30), || !mem.sent().is_empty()).await;
    let alerts: serde_json::Value =
        c.get(format!("{base}/api/v1/alerts")).send().await.expect("get").json().await.expect("json");
    assert_eq!(alerts["alerts"][0]["rule_id"], "payment-processing-failure");
    assert_eq!(alerts["alerts"][0]["state"], "firing");
    // The channel holds the notification before the agent counts the delivery: read /metrics
    // until the count is in (10 s at most; the assertions below say what is missing).
    let sent = "thorbis_notifications_total{channel=\"mem\",outcome=\"sent\"} 1";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = c.get(format!("{base}/metrics")).send().await.expect("get").text().await.expect("text");
        if text.contains(sent) || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("payment_failure_rate{provider=\"stripe\"} 0.4"), "{text}");
    assert!(text.contains("ALERTS{alertname=\"PaymentProcessingFailures\",alertstate=\"firing\",provider=\"stripe\",severity=\"critical\"} 1"), "{text}");
    assert!(text.contains(sent), "{text}");

    // Suppressions: token, validation, effect.
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30m" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .bearer_auth("s3cret")
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30 minutes" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .bearer_auth("s3cret")
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30m" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(handle.alerts().iter().all(|a| a.rule_id != "high-response-time" || a.muted));

    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}

#[tokio::test]
async fn write_endpoints_are_off_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let agent = Agent::builder()
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .http(addr, None)
        .build()
        .expect("valid");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    support::eventually("the server to come up", Duration::from_secs(30), async || {
        c.get(format!("http://{addr}/healthz")).send().await.is_ok()
    })
    .await;
    let url = format!("http://{addr}/api/v1/suppressions");
    let r = c.post(&url).bearer_auth("anything").json(&serde_json::json!({ "condition": "x" })).send().await;
    let r = r.expect("server up");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("text").contains("set http.api_token"));
    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}

/// A host app's own component: its route is served beside the agent's, it reads the hub, and
/// its background work starts with the agent and stops with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_component_serves_its_routes_and_runs_with_the_agent() {
    use axum::extract::State;
    use std::sync::atomic::{AtomicBool, Ordering};
    use thorbis_obs_server::hub::{Component, Hub};

    struct Hello {
        hub: Arc<Hub>,
        ran: AtomicBool,
        stopped: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Component for Hello {
        fn name(&self) -> &'static str {
            "hello"
        }

        fn routes(self: Arc<Self>) -> axum::Router {
            axum::Router::new()
                .route(
                    "/api/v1/hello",
                    axum::routing::get(|State(h): State<Arc<Hello>>| async move {
                        format!("{} rules", h.hub.engine().rules().count())
                    }),
                )
                .with_state(self)
        }

        async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
            self.ran.store(true, Ordering::SeqCst);
            let _ = stop.changed().await;
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let made: Arc<std::sync::Mutex<Option<Arc<Hello>>>> = Arc::default();
    let keep = made.clone();
    let agent = support::quiet_agent(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .http(addr, None)
        .component(move |hub| {
            let c = Arc::new(Hello { hub: hub.clone(), ran: AtomicBool::new(false), stopped: AtomicBool::new(false) });
            *keep.lock().expect("lock") = Some(c.clone());
            c
        })
        .build()
        .expect("valid");
    let hello = made.lock().expect("lock").clone().expect("made at build");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/hello");
    support::eventually("the component's route", Duration::from_secs(30), async || {
        c.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let text = c.get(&url).send().await.expect("get").text().await.expect("text");
    assert_eq!(text, format!("{} rules", packs::database_health_rules().len()));
    assert!(hello.ran.load(Ordering::SeqCst), "run() started with the agent");
    assert!(!hello.stopped.load(Ordering::SeqCst));
    // The agent's own routes are still there beside it.
    assert_eq!(c.get(format!("http://{addr}/healthz")).send().await.expect("healthz").status(), 200);
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
    assert!(hello.stopped.load(Ordering::SeqCst), "run() saw the stop");
}
