//! Crash recovery with the real binary: an alert fires, the agent is killed with SIGKILL while
//! a slow webhook receiver holds the delivery, and a restarted agent delivers it. The receiver
//! ends with the notification at least once and only ever with the same id (at-least-once
//! delivery, deduplicated by `X-Thorbis-Notification-Id`), and the alert is still firing with
//! its original start time.
#![cfg(feature = "webhook")]

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::agent::{free_port, orders_failing_rule, spawn_agent};
use support::eventually;

#[derive(Default)]
struct Receiver {
    /// (notification id, body) of every request that arrived.
    seen: Mutex<Vec<(String, serde_json::Value)>>,
    /// While set, requests are held (never answered until cleared).
    slow: AtomicBool,
    /// Requests answered with 200.
    accepted: Mutex<Vec<String>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let id = headers.get("x-thorbis-notification-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    r.seen.lock().expect("lock").push((id.clone(), json));
    while r.slow.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.accepted.lock().expect("lock").push(id);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_delivery_loses_nothing_and_keeps_the_alert() {
    let receiver = Arc::new(Receiver { slow: AtomicBool::new(true), ..Default::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook_addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/hook", post(hook)).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });

    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
data_dir = "{data}"
evaluation_interval = "1s"
shutdown_timeout = "2s"
[http]
listen = "127.0.0.1:{port}"
api_token = "test-token"
[channels.hook]
type = "webhook"
url = "http://{hook_addr}/hook"
timeout = "30s"
{rule}
"#,
            data = dir.path().join("data").display(),
            rule = orders_failing_rule("10s")
        ),
    )
    .expect("config");

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // Keep the failing-orders metric high for the whole test, whichever agent is up.
    let pusher = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let _ = client
                    .post(format!("{base}/api/v1/samples"))
                    .bearer_auth("test-token")
                    .json(&serde_json::json!([{ "name": "orders_failed", "labels": { "shop": "eu" }, "value": 12.0 }]))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let mut agent = spawn_agent(&config);
    eventually("the first delivery to reach the receiver", Duration::from_secs(30), async || {
        !receiver.seen.lock().expect("lock").is_empty()
    })
    .await;
    // The receiver holds the request: kill the agent mid-delivery.
    agent.kill().expect("SIGKILL");
    let _ = agent.wait();
    let first_id = receiver.seen.lock().expect("lock")[0].0.clone();
    let starts_at = receiver.seen.lock().expect("lock")[0].1["alerts"][0]["startsAt"].as_str().map(str::to_string);
    assert!(receiver.accepted.lock().expect("lock").is_empty());

    receiver.slow.store(false, Ordering::Relaxed);
    let mut agent = spawn_agent(&config);
    eventually("the redelivery", Duration::from_secs(30), async || {
        receiver.accepted.lock().expect("lock").contains(&first_id)
    })
    .await;

    // The alert is still firing, from its original start.
    let alerts: serde_json::Value =
        client.get(format!("{base}/api/v1/alerts")).send().await.expect("api").json().await.expect("json");
    let a = &alerts["alerts"][0];
    assert_eq!(a["state"], "firing", "{alerts}");
    // Give the restarted agent a few evaluations: nothing new must be sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = receiver.seen.lock().expect("lock").clone();
    assert!(
        seen.iter().all(|(id, _)| *id == first_id),
        "only the one notification, maybe twice: {:?}",
        seen.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|(_, b)| b["alerts"][0]["startsAt"].as_str().map(str::to_string) == starts_at));
    assert!(seen.len() <= 2);
    let fired_at = a["fired_at"].as_i64().expect("fired_at");
    let first_starts = starts_at.expect("startsAt");
    assert!(
        first_id.contains(&format!("-{fired_at}-")),
        "id {first_id} carries the original start {fired_at} ({first_starts})"
    );

    pusher.abort();
    let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).status();
    let status = agent.wait().expect("exits");
    assert!(status.success(), "graceful shutdown on SIGTERM: {status:?}");
}
