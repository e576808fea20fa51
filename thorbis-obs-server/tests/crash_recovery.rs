//! Crash recovery with the real binary: an alert fires, the agent is killed with SIGKILL while
//! a slow webhook receiver holds the delivery, and a restarted agent delivers it. The receiver
//! ends with the notification at least once and only ever with the same id (at-least-once
//! delivery, deduplicated by `X-Thorbis-Notification-Id`), and the alert is still firing with
//! its original start time. Module `reload`: the binary reloading its config file (SIGHUP and
//! the API) keeps the alert state.
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

#[cfg(unix)]
mod reload {
    //! Config reload on the `thorbis-obs` binary: a broken file (SIGHUP or `POST /api/v1/reload`)
    //! is refused with its problems and the running config stays; a good one (SIGHUP) brings a new
    //! rule in while the firing, acknowledged alert keeps its state: no second "firing", the
    //! acknowledgement still there, and the samples the old engine held feed the new rule at once.
    //! Every attempt is in the audit trail.

    use super::support;
    use std::time::Duration;

    const TOKEN: &str = "token-for-the-reload-test";

    struct Proc(std::process::Child);

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn write_config(path: &std::path::Path, dir: &std::path::Path, port: u16, hook: &str, extra: &str) {
        let text = format!(
            "[agent]\ndata_dir = \"{data}\"\nevaluation_interval = \"500ms\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             api_token = \"{TOKEN}\"\n[channels.hook]\ntype = \"webhook\"\nurl = \"{hook}\"\n{rule}{extra}",
            data = dir.join("data").display(),
            rule = support::agent::orders_failing_rule("1m"),
        );
        std::fs::write(path, text).expect("config");
    }

    fn hangup(p: &Proc) {
        let status = std::process::Command::new("kill").args(["-HUP", &p.0.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    fn notes(seen: &std::sync::Mutex<Vec<serde_json::Value>>) -> Vec<(String, String)> {
        seen.lock()
            .expect("lock")
            .iter()
            .map(|v| {
                let s = |x: &serde_json::Value| x.as_str().unwrap_or("?").to_string();
                (s(&v["thorbis"]["ruleId"]), s(&v["thorbis"]["kind"]))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bad_file_is_refused_and_a_good_one_keeps_the_alert_state() {
        let dir = tempfile::tempdir().expect("tmp");
        let port = support::agent::free_port();
        let (sink, seen) = support::web::json_sink().await;
        let hook = sink.url("/hook");
        let path = dir.path().join("agent.toml");
        write_config(&path, dir.path(), port, &hook, "");
        let agent = Proc(support::agent::spawn_agent(&path));
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::new();
        let get = |p: &str| {
            let (c, url) = (c.clone(), format!("{base}{p}"));
            async move {
                let r = c.get(url).bearer_auth(TOKEN).send().await.ok()?;
                r.json::<serde_json::Value>().await.ok()
            }
        };

        // The alert fires and is acknowledged.
        support::eventually("the alert fires", Duration::from_secs(30), async || {
            let _ = c
                .post(format!("{base}/api/v1/samples"))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!([{ "name": "orders_failed", "value": 12.0 }]))
                .send()
                .await;
            !seen.lock().expect("lock").is_empty()
        })
        .await;
        let alerts = get("/api/v1/alerts").await.expect("alerts");
        let fingerprint = alerts["alerts"][0]["fingerprint"].as_str().expect("fingerprint").to_string();
        let ack =
            c.post(format!("{base}/api/v1/alerts/{fingerprint}/ack")).bearer_auth(TOKEN).send().await.expect("ack");
        assert_eq!(ack.status(), 200);
        support::eventually("the acknowledgement sent", Duration::from_secs(20), async || notes(&seen).len() == 2)
            .await;

        // A broken file: refused through the API with its problems, and on SIGHUP.
        std::fs::write(
            &path,
            std::fs::read_to_string(&path).expect("read").replace("threshold = 5", "threshold = \"lots\""),
        )
        .expect("write");
        let refused = c.post(format!("{base}/api/v1/reload")).bearer_auth(TOKEN).send().await.expect("reload");
        assert_eq!(refused.status(), 422);
        let body: serde_json::Value = refused.json().await.expect("json");
        assert!(body["problems"].as_str().unwrap_or("").contains("threshold"), "{body}");
        hangup(&agent);
        support::eventually("the SIGHUP refusal in the audit trail", Duration::from_secs(20), async || {
            get("/api/v1/audit?action=config.reload").await.is_some_and(|v| {
                v["records"].as_array().is_some_and(|r| {
                    r.iter().any(|x| {
                        x["who"] == "SIGHUP"
                            && x["detail"]["applied"] == false
                            && x["detail"]["problems"].as_str().is_some_and(|p| p.contains("threshold"))
                    })
                })
            })
        })
        .await;
        let rules = get("/api/v1/rules").await.expect("still serving");
        assert_eq!(rules["rules"].as_array().map(Vec::len), Some(1), "the running config stays: {rules}");

        // A good file with a second rule on the same metric: applied on SIGHUP.
        let second = "\n[[rules.inline]]\nid = \"orders-slipping\"\nname = \"Orders Slipping\"\nmetric = \"orders_failed\"\n\
                      severity = \"warning\"\nchannels = [\"hook\"]\n[rules.inline.condition]\noperator = \"greater_than\"\n\
                      threshold = 3\nduration = \"1m\"\naggregation = \"max\"\n";
        write_config(&path, dir.path(), port, &hook, second);
        hangup(&agent);
        // No samples are pushed from here on: the new rule fires on the samples handed over.
        support::eventually("the new rule's notification", Duration::from_secs(30), async || {
            notes(&seen).iter().any(|(rule, kind)| rule == "orders-slipping" && kind == "firing")
        })
        .await;
        let alerts = get("/api/v1/alerts").await.expect("alerts");
        let old = alerts["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["fingerprint"] == fingerprint.as_str()))
            .cloned()
            .expect("the old alert is still there");
        assert_eq!(
            (old["state"].as_str(), old["acknowledged"]["by"].as_str()),
            (Some("firing"), Some("api_token")),
            "{old}"
        );
        let mut got = notes(&seen);
        got.sort();
        assert_eq!(
            got,
            [
                ("orders-failing".to_string(), "acknowledged".to_string()),
                ("orders-failing".to_string(), "firing".to_string()),
                ("orders-slipping".to_string(), "firing".to_string()),
            ],
            "one firing per alert across the reload"
        );
        let audit = get("/api/v1/audit?action=config.reload").await.expect("audit");
        let applied: Vec<(String, bool)> = audit["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| (r["who"].as_str().unwrap_or("").to_string(), r["detail"]["applied"].as_bool().unwrap_or(false)))
            .collect();
        assert_eq!(
            applied,
            [("SIGHUP".to_string(), true), ("SIGHUP".to_string(), false), ("api_token".to_string(), false)],
            "newest first"
        );
        drop(agent);
    }
}
