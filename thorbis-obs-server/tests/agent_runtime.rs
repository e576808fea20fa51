//! The agent runtime on paused tokio time: scheduling, source health, delivery with retries,
//! and restart from the SQLite store. A real SQLite file; channels and sources are the core
//! crate's public test doubles, since what is under test here is the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use thorbis_obs_core::channel::DeliveryError;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::engine::{AlertState, NotificationKind};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rules::{AlertRule, Condition, Matchers, NoDataPolicy, Operator, Severity};
use thorbis_obs_core::source::CollectError;
use thorbis_obs_core::testing::{InMemoryChannel, ScriptedSource};
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_core::window::Aggregation;
use thorbis_obs_server::agent::{Agent, AgentHandle, TokioClock};
use thorbis_obs_server::store::Store;
use thorbis_obs_server::store::sqlite::SqliteStore;
use tokio::sync::oneshot;

fn rule() -> AlertRule {
    AlertRule {
        id: "queue-stuck".into(),
        name: "Queue Stuck".into(),
        description: "jobs pile up".into(),
        metric: "queue_depth".into(),
        matchers: Matchers::default(),
        condition: Condition {
            operator: Operator::GreaterThan,
            threshold: 100.0,
            duration: HumanDuration::from_secs(60),
            aggregation: Aggregation::Max,
        },
        pending_for: HumanDuration::ZERO,
        keep_firing_for: HumanDuration::ZERO,
        severity: Severity::Error,
        channels: vec!["mem".into()],
        escalation: vec![],
        suppression_rules: vec![],
        labels: Default::default(),
        annotations: Default::default(),
        no_data: NoDataPolicy::Ok,
        repeat_interval: None,
        send_resolved: true,
    }
}

/// A source reporting a depth that a shared atomic controls.
fn depth_source(depth: Arc<AtomicU32>) -> Arc<ScriptedSource> {
    Arc::new(ScriptedSource::new("queue", Duration::from_secs(10), move |now| {
        Ok(vec![Sample::new(
            "queue_depth",
            Labels::new().with("queue", "emails"),
            f64::from(depth.load(Ordering::Relaxed)),
            now,
        )])
    }))
}

struct Running {
    handle: AgentHandle,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn start(store: Arc<dyn Store>, channel: InMemoryChannel, depth: Arc<AtomicU32>, policy: DeliveryPolicy) -> Running {
    let broken = Arc::new(ScriptedSource::new("broken", Duration::from_secs(10), |_| {
        Err(CollectError::Failed("connection refused".into()))
    }));
    let agent = Agent::builder()
        .rules([rule()])
        .source(depth_source(depth))
        .source(broken)
        .channel_with_policy(Arc::new(channel), policy)
        .store(store)
        .clock(Arc::new(TokioClock::starting_at(Timestamp::from_secs(1_795_000_000))))
        .evaluation_interval(Duration::from_secs(5))
        .build()
        .expect("valid agent");
    let handle = agent.handle();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        agent
            .run(async move {
                let _ = rx.await;
            })
            .await
            .expect("runs");
    });
    Running { handle, stop, task }
}

async fn stop(r: Running) {
    let _ = r.stop.send(());
    r.task.await.expect("agent task");
}

#[tokio::test(start_paused = true)]
async fn fires_delivers_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens"));
    let depth = Arc::new(AtomicU32::new(5));
    let mem = InMemoryChannel::new("mem");
    let r = start(store.clone(), mem.clone(), depth.clone(), DeliveryPolicy::default());

    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(mem.sent().is_empty());
    // The broken source is down, the good one up: one failing source stops nothing.
    let sources = r.handle.sources();
    assert!(sources["queue"].up && sources["queue"].runs >= 2, "{sources:?}");
    assert!(
        !sources["broken"].up
            && sources["broken"].last_error.as_deref() == Some("collection failed: connection refused")
    );

    depth.store(500, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let sent = mem.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, NotificationKind::Firing);
    let fired = sent[0].starts_at;
    assert_eq!(r.handle.outbox_stats().await.expect("stats").delivered, 1);
    stop(r).await;

    // A new agent on the same store: still firing from the same start, nothing resent.
    let mem2 = InMemoryChannel::new("mem");
    let r2 = start(store.clone(), mem2.clone(), depth.clone(), DeliveryPolicy::default());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(mem2.sent().is_empty(), "{:?}", mem2.sent());
    let alerts = r2.handle.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].state, alerts[0].fired_at), (AlertState::Firing, Some(fired)));

    depth.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let sent = mem2.sent();
    assert_eq!(sent.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NotificationKind::Resolved]);
    assert_eq!(sent[0].starts_at, fired);
    stop(r2).await;
}

#[tokio::test(start_paused = true)]
async fn retries_then_delivers_and_gives_up_on_permanent_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens"));
    let depth = Arc::new(AtomicU32::new(500));
    let mem = InMemoryChannel::new("mem");
    mem.fail_next([
        DeliveryError::retryable("HTTP 503: busy"),
        DeliveryError::Retryable { reason: "HTTP 429".into(), retry_after: Some(Duration::from_secs(20)) },
    ]);
    let policy = DeliveryPolicy { jitter: 0.0, ..DeliveryPolicy::default() };
    let r = start(store.clone(), mem.clone(), depth.clone(), policy);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(mem.sent().is_empty(), "the 429's Retry-After of 20 s is honoured");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(mem.sent().len(), 1);
    let stats = r.handle.outbox_stats().await.expect("stats");
    assert_eq!((stats.delivered, stats.pending, stats.failed), (1, 0, 0));

    // A permanent failure is recorded with the receiver's answer; the alert is unaffected.
    mem.fail_next([DeliveryError::permanent("HTTP 400: invalid_payload")]);
    depth.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let failed = store.failed_deliveries(10).await.expect("reads");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].error.contains("HTTP 400: invalid_payload"), "{failed:?}");
    assert_eq!(failed[0].rule_id, "queue-stuck");
    assert!(r.handle.alerts().is_empty());
    stop(r).await;
}
