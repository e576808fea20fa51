//! The agent's HTTP endpoints, served on loopback by an in-process agent.

use std::sync::Arc;
use std::time::Duration;
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
        .build()
        .expect("valid");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let c = reqwest::Client::new();
    let mut tries = 0;
    while c.get(format!("{base}/healthz")).send().await.is_err() {
        tries += 1;
        assert!(tries < 100, "server never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = c.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

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
    let mut tries = 0;
    while mem.sent().is_empty() {
        tries += 1;
        assert!(tries < 100, "no notification");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alerts: serde_json::Value =
        c.get(format!("{base}/api/v1/alerts")).send().await.expect("get").json().await.expect("json");
    assert_eq!(alerts["alerts"][0]["rule_id"], "payment-processing-failure");
    assert_eq!(alerts["alerts"][0]["state"], "firing");
    let text = c.get(format!("{base}/metrics")).send().await.expect("get").text().await.expect("text");
    assert!(text.contains("payment_failure_rate{provider=\"stripe\"} 0.4"), "{text}");
    assert!(text.contains("ALERTS{alertname=\"PaymentProcessingFailures\",alertstate=\"firing\",provider=\"stripe\",severity=\"critical\"} 1"), "{text}");
    assert!(text.contains("thorbis_notifications_total{channel=\"mem\",outcome=\"sent\"} 1"), "{text}");

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
    let url = format!("http://{addr}/api/v1/suppressions");
    let mut resp = None;
    for _ in 0..100 {
        if let Ok(r) = c.post(&url).bearer_auth("anything").json(&serde_json::json!({ "condition": "x" })).send().await
        {
            resp = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = resp.expect("server up");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("text").contains("set http.api_token"));
    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}
