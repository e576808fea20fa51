//! The PostgreSQL store and leader election, against the throwaway cluster that
//! `scripts/test.sh` starts (its URL in THORBIS_TEST_PG_URL).
#![cfg(feature = "postgres")]

mod support;

use support::pg::fresh_database;

use std::time::{Duration, Instant};
use thorbis_obs_core::engine::{EngineSnapshot, SNAPSHOT_VERSION};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::store::postgres::PostgresStore;
use thorbis_obs_server::store::{AttemptOutcome, OutboxEntry, Store};

fn notification(id: &str) -> thorbis_obs_core::engine::Notification {
    let mut engine =
        thorbis_obs_core::engine::RuleEngine::new(thorbis_obs_core::rules::packs::spec_rules()).expect("valid");
    let at = Timestamp::from_secs(1_795_000_000);
    engine
        .ingest(&thorbis_obs_core::metrics::Sample::new("payment_failure_rate", Default::default(), 0.5, at))
        .expect("valid");
    let mut n = engine.evaluate(at).remove(0);
    n.id = id.to_string();
    n
}

#[tokio::test]
async fn store_contract() {
    let url = fresh_database("thorbis_contract").await;
    let store = PostgresStore::connect(&url).await.expect("connects and migrates");
    // A second connect finds the schema in place.
    let store2 = PostgresStore::connect(&url).await.expect("idempotent migrations");
    assert!(!store.describe().contains("postgres@"), "no credentials in {}", store.describe());
    let at = Timestamp::from_secs(1_795_000_000);
    let snap = EngineSnapshot { version: SNAPSHOT_VERSION, taken_at: at, alerts: vec![], conditions: vec![] };
    let entries = vec![
        OutboxEntry { notification: notification("n1"), channel: "hook".into() },
        OutboxEntry { notification: notification("n2"), channel: "hook".into() },
    ];
    store.commit_evaluation(&snap, &entries).await.expect("commit");
    store.commit_evaluation(&snap, &entries[..1]).await.expect("a repeated row is ignored");
    assert_eq!(store2.load_snapshot().await.expect("load"), Some(snap));
    let due = store.pending("hook", 10).await.expect("pending");
    assert_eq!(due.iter().map(|r| r.notification.id.as_str()).collect::<Vec<_>>(), ["n1", "n2"]);
    store
        .record_attempt("n1", "hook", &AttemptOutcome::Delivered { at, answer: Some("ok".into()) })
        .await
        .expect("record");
    let later = Timestamp::from_secs(1_795_000_060);
    store
        .record_attempt("n2", "hook", &AttemptOutcome::Retry { at, next_at: later, error: "HTTP 503".into() })
        .await
        .expect("record");
    let waiting = store.pending("hook", 10).await.expect("pending");
    assert_eq!((waiting.len(), waiting[0].next_attempt_at, waiting[0].attempts), (1, later, 1));
    assert_eq!(store.next_due("hook").await.expect("next"), Some(later));
    store
        .record_attempt("n2", "hook", &AttemptOutcome::Failed { at: later, error: "HTTP 400: bad".into() })
        .await
        .expect("record");
    let s = store.outbox_stats().await.expect("stats");
    assert_eq!((s.pending, s.delivered, s.failed), (0, 1, 1));
    assert_eq!(store.failed_deliveries(5).await.expect("failed")[0].error, "HTTP 400: bad");
    assert!(store.record_attempt("nope", "hook", &AttemptOutcome::Failed { at, error: String::new() }).await.is_err());
    // Settled rows go by age; the one delivered before `later` is gone, the later failure stays.
    assert_eq!(store.prune_outbox(later).await.expect("prune"), 1);
    let s = store.outbox_stats().await.expect("stats");
    assert_eq!((s.pending, s.delivered, s.failed), (0, 0, 1));
    // Shared RUM windows: one per agent and start, the newest body wins, pruned by start.
    store.record_rum_window(at, "a", "{\"v\":1}").await.expect("window");
    store.record_rum_window(at, "a", "{\"v\":2}").await.expect("rewritten");
    store2.record_rum_window(at, "b", "{}").await.expect("window");
    store.record_rum_window(later, "a", "{}").await.expect("window");
    let rows = store2.rum_windows(at).await.expect("read");
    assert_eq!(rows, [("a".to_string(), "{\"v\":2}".to_string()), ("b".to_string(), "{}".to_string())]);
    assert_eq!(store2.rum_windows_since(at).await.expect("since").len(), 3);
    assert_eq!(store.prune_rum_windows(later).await.expect("prune"), 2);
    assert_eq!(store.rum_windows(later).await.expect("read").len(), 1);
    // One leader at a time: a lease that a standby takes over only after watching it go
    // unrenewed for the whole lease, or at once when released.
    let lease = Duration::from_millis(600);
    assert!(store.try_lead(lease).await.expect("lease"));
    assert!(!store2.try_lead(lease).await.expect("lease"));
    assert!(store.try_lead(lease).await.expect("still leading"));
    tokio::time::sleep(lease).await;
    assert!(!store2.try_lead(lease).await.expect("lease"), "renewed since store2 looked");
    // The leader stops renewing (it died or hangs): store2 takes over once it has watched a lease.
    let start = Instant::now();
    while !store2.try_lead(lease).await.expect("lease") {
        assert!(start.elapsed() < Duration::from_secs(10), "a silent leader is replaced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old leader learns it lost the lease at its next renewal.
    assert!(!store.try_lead(lease).await.expect("lease"));
    // A released lease goes to the next agent that asks, without waiting.
    store2.release_lead().await.expect("release");
    assert!(store.try_lead(lease).await.expect("lease"));
}

/// Two agents on one database (the binary's webhook channel is the receiver's feed).
#[cfg(feature = "webhook")]
mod ha {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::routing::post;
    use std::process::Child;
    use std::sync::{Arc, Mutex};
    use support::agent::{free_port, orders_failing_rule, spawn_agent};

    #[derive(Default)]
    struct Receiver {
        seen: Mutex<Vec<serde_json::Value>>,
    }

    async fn hook(State(r): State<Arc<Receiver>>, body: Bytes) -> &'static str {
        r.seen.lock().expect("lock").push(serde_json::from_slice(&body).unwrap_or_default());
        "ok"
    }

    struct AgentProc {
        child: Child,
        base: String,
    }

    impl Drop for AgentProc {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn start_agent(dir: &std::path::Path, name: &str, db: &str, hook: &str) -> AgentProc {
        let port = free_port();
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                r#"
    [agent]
    data_dir = "{data}"
    evaluation_interval = "1s"
    [store]
    url = "{db}"
    leader_lease = "2s"
    [http]
    listen = "127.0.0.1:{port}"
    api_token = "t"
    [channels.hook]
    type = "webhook"
    url = "{hook}"
    {rule}
    "#,
                data = dir.join(name).display(),
                rule = orders_failing_rule("3s")
            ),
        )
        .expect("config");
        let child = spawn_agent(&cfg);
        AgentProc { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// The webhook receiver the agents' `hook` channel posts to, and its URL.
    async fn start_receiver() -> (Arc<Receiver>, String) {
        let receiver = Arc::new(Receiver::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = Router::new().route("/hook", post(hook_handler)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        (receiver, hook)
    }

    async fn is_leader(client: &reqwest::Client, a: &AgentProc) -> Option<bool> {
        let v: serde_json::Value = client.get(format!("{}/readyz", a.base)).send().await.ok()?.json().await.ok()?;
        v["leader"].as_bool()
    }

    async fn push(client: &reqwest::Client, a: &AgentProc, value: f64) {
        let _ = client
            .post(format!("{}/api/v1/samples", a.base))
            .bearer_auth("t")
            .json(&serde_json::json!([{ "name": "orders_failed", "value": value }]))
            .send()
            .await;
    }

    fn kinds(r: &Receiver) -> Vec<String> {
        r.seen.lock().expect("lock").iter().map(|v| v["thorbis"]["kind"].as_str().unwrap_or("?").to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_agents_one_leader_and_a_takeover() {
        let db = fresh_database("thorbis_ha").await;
        let (receiver, hook) = start_receiver().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let client = reqwest::Client::new();

        let a = start_agent(dir.path(), "a", &db, &hook);
        let start = Instant::now();
        while is_leader(&client, &a).await != Some(true) {
            assert!(start.elapsed() < Duration::from_secs(20), "agent a never led");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let b = start_agent(dir.path(), "b", &db, &hook);
        while is_leader(&client, &b).await.is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "agent b never started");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(is_leader(&client, &b).await, Some(false), "b stands by while a leads");

        // Both agents see the metric; only the leader notifies.
        let deadline = Instant::now() + Duration::from_secs(20);
        while kinds(&receiver).is_empty() {
            assert!(Instant::now() < deadline, "no notification");
            push(&client, &a, 12.0).await;
            push(&client, &b, 12.0).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for _ in 0..15 {
            push(&client, &a, 12.0).await;
            push(&client, &b, 12.0).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(kinds(&receiver), ["firing"], "exactly one notification from two agents");

        // The leader dies; b takes over once it has watched the lease (2 s) go unrenewed,
        // resuming the state: no second "firing", and the resolve comes from b.
        drop(a);
        let t = Instant::now();
        while is_leader(&client, &b).await != Some(true) {
            assert!(t.elapsed() < Duration::from_secs(10), "b did not take over");
            push(&client, &b, 12.0).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let takeover = t.elapsed();
        let deadline = Instant::now() + Duration::from_secs(20);
        while kinds(&receiver).len() < 2 {
            assert!(Instant::now() < deadline, "no resolve after takeover: {:?}", kinds(&receiver));
            push(&client, &b, 1.0).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(kinds(&receiver), ["firing", "resolved"], "takeover after {takeover:?}");
        drop(b);
    }

    /// `thorbis-obs alerts ...` against `a`, its stdout (the command must succeed).
    fn cli(a: &AgentProc, args: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
            .args(["alerts", "--url", &a.base, "--token", "t"])
            .args(args)
            .output()
            .expect("the CLI runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "alerts {args:?}: {stdout}{stderr}");
        stdout.into_owned()
    }

    async fn alert(client: &reqwest::Client, a: &AgentProc) -> Option<serde_json::Value> {
        let v: serde_json::Value =
            client.get(format!("{}/api/v1/alerts", a.base)).send().await.ok()?.json().await.ok()?;
        v["alerts"].as_array()?.first().cloned()
    }

    /// A silence made with the CLI on the standby mutes the leader's alert, still mutes it
    /// after the standby took over, and when the CLI expires it the owed notification goes out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silence_from_the_cli_holds_on_both_agents_until_it_is_expired() {
        let db = fresh_database("thorbis_ha_silence").await;
        let (receiver, hook) = start_receiver().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let client = reqwest::Client::new();
        let a = start_agent(dir.path(), "a", &db, &hook);
        support::eventually("a leads", Duration::from_secs(20), async || is_leader(&client, &a).await == Some(true))
            .await;
        let b = start_agent(dir.path(), "b", &db, &hook);
        support::eventually("b answers", Duration::from_secs(30), async || is_leader(&client, &b).await.is_some())
            .await;

        // The silence, through the standby.
        let id = cli(&b, &["silence", "add", "alertname=~\"Orders.*\"", "--duration", "1h", "--comment", "migration"]);
        let id = id.trim().to_string();
        assert_eq!(id.len(), 16, "the new silence's id: {id:?}");
        let listed = cli(&a, &["silence", "list"]);
        assert!(listed.contains(&id) && listed.contains("active") && listed.contains("migration"), "{listed}");

        // The leader's alert fires, muted.
        support::eventually("a's alert firing and muted", Duration::from_secs(30), async || {
            push(&client, &a, 12.0).await;
            push(&client, &b, 12.0).await;
            alert(&client, &a).await.is_some_and(|v| v["state"] == "firing" && v["muted"] == true)
        })
        .await;
        // The leader dies; b takes over, restores the alert and applies the stored silence.
        drop(a);
        support::eventually("b leads, the alert firing and muted", Duration::from_secs(30), async || {
            push(&client, &b, 12.0).await;
            is_leader(&client, &b).await == Some(true)
                && alert(&client, &b).await.is_some_and(|v| v["state"] == "firing" && v["muted"] == true)
        })
        .await;
        let listed = cli(&b, &["list"]);
        assert!(listed.contains("firing (muted)"), "{listed}");
        assert!(kinds(&receiver).is_empty(), "nothing sent while silenced: {:?}", kinds(&receiver));

        // Expired through the CLI: the owed firing goes out, once.
        assert_eq!(cli(&b, &["silence", "expire", &id]).trim(), format!("expired {id}"));
        support::eventually("the owed notification", Duration::from_secs(20), async || {
            push(&client, &b, 12.0).await;
            !kinds(&receiver).is_empty()
        })
        .await;
        assert_eq!(kinds(&receiver), ["firing"]);
        // Both actions are in the shared audit trail.
        let audit: serde_json::Value =
            client.get(format!("{}/api/v1/audit", b.base)).send().await.expect("audit").json().await.expect("json");
        let actions: Vec<&str> =
            audit["records"].as_array().expect("records").iter().filter_map(|r| r["action"].as_str()).collect();
        assert_eq!(actions, ["silence.expire", "silence.create"]);
        drop(b);
    }

    async fn hook_handler(state: State<Arc<Receiver>>, body: Bytes) -> &'static str {
        hook(state, body).await
    }
}
