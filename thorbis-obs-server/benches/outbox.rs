//! Outbox throughput: notifications persisted per second (committed with the engine snapshot,
//! as the evaluation loop does), and delivered per second by the agent's webhook worker to a
//! local HTTP receiver, on SQLite and (with feature `postgres` and THORBIS_TEST_PG_URL set)
//! PostgreSQL. Run: `bash scripts/bench-outbox.sh` (starts a throwaway PostgreSQL cluster).

use axum::Router;
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use thorbis_obs_core::engine::{EngineSnapshot, Notification, NotificationKind, SNAPSHOT_VERSION};
use thorbis_obs_core::metrics::Labels;
use thorbis_obs_core::rules::{Operator, Severity};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::agent::Agent;
use thorbis_obs_server::channels::webhook::WebhookChannel;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;
use thorbis_obs_server::store::{OutboxEntry, Store};

fn notification(i: usize, now: Timestamp) -> Notification {
    Notification {
        id: format!("bench-{i:08}"),
        kind: NotificationKind::Firing,
        rule_id: "bench".into(),
        rule_name: "Bench".into(),
        alertname: "Bench".into(),
        description: String::new(),
        severity: Severity::Warning,
        level: 0,
        value: Some(1.0),
        operator: Operator::GreaterThan,
        threshold: 0.5,
        labels: Labels::new().with("i", i.to_string()),
        annotations: Default::default(),
        fingerprint: format!("{i:016x}"),
        starts_at: now,
        ends_at: None,
        created_at: now,
        channels: vec!["hook".into()],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db"))?);
    run(sqlite, "SQLite, synchronous=FULL").await?;
    latency(dir.path()).await?;
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("THORBIS_TEST_PG_URL") {
        let pg: Arc<dyn Store> = Arc::new(thorbis_obs_server::store::postgres::PostgresStore::connect(&url).await?);
        run(pg, "PostgreSQL 15, local, fsync off").await?;
    }
    Ok(())
}

async fn run(store: Arc<dyn Store>, label: &str) -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::var("OUTBOX_N").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let batch = 50;
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let now = Timestamp(1_795_000_000_000);
    let snap = EngineSnapshot { version: SNAPSHOT_VERSION, taken_at: now, alerts: vec![], conditions: vec![] };
    let t0 = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(batch) {
        let entries: Vec<OutboxEntry> =
            chunk.iter().map(|&i| OutboxEntry { notification: notification(i, now), channel: "hook".into() }).collect();
        store.commit_evaluation(&snap, &entries).await?;
    }
    let persist = t0.elapsed();

    let hook = WebhookChannel::new("hook", Secret::new(format!("http://{addr}/hook")), None, Duration::from_secs(5))?;
    let agent = Agent::builder().channel(Arc::new(hook)).store(store.clone()).build()?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let t1 = Instant::now();
    let running = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    loop {
        if store.outbox_stats().await?.delivered as usize >= total {
            break;
        }
        if t1.elapsed() > Duration::from_secs(120) {
            return Err("delivery did not finish in 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deliver = t1.elapsed();
    let _ = stop.send(());
    running.await??;
    println!(
        "outbox ({label}): {total} notifications persisted in batches of {batch}: {:.0}/s; \
         delivered to a loopback webhook receiver: {:.0}/s (receiver saw {})",
        total as f64 / persist.as_secs_f64(),
        total as f64 / deliver.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    Ok(())
}

/// The added latency between an alert's transition (the evaluation that produced the
/// notification) and the receiver's accept, over spaced-out transitions on a healthy receiver.
async fn latency(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use thorbis_obs_core::metrics::Sample;
    use thorbis_obs_core::rules::{AlertRule, Condition, Matchers, NoDataPolicy};
    use thorbis_obs_core::time::HumanDuration;
    use thorbis_obs_core::window::Aggregation;
    let transitions: usize = std::env::var("LATENCY_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let arrivals: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    let a = arrivals.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let a = a.clone();
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let created = v["thorbis"]["createdAtMs"].as_i64().unwrap_or(0);
                a.lock().map(|mut l| l.push(wall_ms() - created)).ok();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let rule = AlertRule {
        id: "toggle".into(),
        name: "Toggle".into(),
        description: String::new(),
        metric: "toggle".into(),
        matchers: Matchers::default(),
        condition: Condition {
            operator: Operator::GreaterThan,
            threshold: 0.5,
            duration: HumanDuration(Duration::from_millis(100)),
            aggregation: Aggregation::Last,
        },
        pending_for: HumanDuration::ZERO,
        keep_firing_for: HumanDuration::ZERO,
        severity: Severity::Warning,
        channels: vec!["hook".into()],
        escalation: vec![],
        suppression_rules: vec![],
        labels: Default::default(),
        annotations: Default::default(),
        no_data: NoDataPolicy::KeepLast,
        repeat_interval: None,
        send_resolved: true,
    };
    let hook = WebhookChannel::new("hook", Secret::new(format!("http://{addr}/hook")), None, Duration::from_secs(5))?;
    let agent = Agent::builder()
        .rules([rule])
        .channel(Arc::new(hook))
        .store(Arc::new(SqliteStore::open(&dir.join("latency.db"))?))
        .evaluation_interval(Duration::from_millis(50))
        .build()?;
    let h = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    for i in 0..transitions {
        let v = if i % 2 == 0 { 1.0 } else { 0.0 };
        h.push(&Sample::new("toggle", Labels::new(), v, Timestamp(wall_ms())))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while arrivals.lock().map(|l| l.len()).unwrap_or(0) <= i && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let _ = stop.send(());
    running.await??;
    let mut l = arrivals.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_unstable();
    let pct = |q: f64| l.get(((l.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0);
    println!(
        "outbox latency (SQLite, webhook on loopback): {} transitions, transition -> receiver accept: p50 {} ms, p99 {} ms, max {} ms",
        l.len(),
        pct(0.5),
        pct(0.99),
        l.last().copied().unwrap_or(0)
    );
    Ok(())
}

fn wall_ms() -> i64 {
    thorbis_obs_server::agent::system_now().as_millis()
}
