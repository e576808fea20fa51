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
