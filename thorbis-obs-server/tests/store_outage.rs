//! The store fails while an alert fires: the notification is delivered from memory during the
//! outage, and once the store takes writes again it is not delivered a second time. The store
//! is the real SQLite store behind a switch that makes its writes fail (a disk that refuses
//! writes cannot be made on demand for root, who ignores file permissions).

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use thorbis_obs_core::engine::{EngineSnapshot, Notification, NotificationKind};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::agent::{Agent, system_now};
use thorbis_obs_server::store::sqlite::SqliteStore;
use thorbis_obs_server::store::{
    AttemptOutcome, CheckKind, CheckRecord, FailedDelivery, OutboxEntry, OutboxRow, OutboxStats, ReplayChunk,
    ReplayPruned, ReplayStored, ReplaySummary, SessionEvent, Store, StoreError, StoredRecord, TraceQuery, TraceRow,
    TraceSummary,
};

mod support;

/// The real store, whose writes and outbox reads fail while `down` is set.
struct Outage {
    inner: SqliteStore,
    down: AtomicBool,
    commits: AtomicU64,
}

impl Outage {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Backend("disk I/O error (test outage)".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Outage {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn commit_evaluation(&self, s: &EngineSnapshot, e: &[OutboxEntry]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.commit_evaluation(s, e).await?;
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn load_snapshot(&self) -> Result<Option<EngineSnapshot>, StoreError> {
        self.inner.load_snapshot().await
    }
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.check()?;
        self.inner.pending(channel, limit).await
    }
    async fn next_due(&self, channel: &str) -> Result<Option<Timestamp>, StoreError> {
        self.check()?;
        self.inner.next_due(channel).await
    }
    async fn record_attempt(&self, id: &str, channel: &str, o: &AttemptOutcome) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_attempt(id, channel, o).await
    }
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.check()?;
        self.inner.outbox_stats().await
    }
    async fn failed_deliveries(&self, limit: usize) -> Result<Vec<FailedDelivery>, StoreError> {
        self.inner.failed_deliveries(limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn record_checks(&self, r: &[CheckRecord]) -> Result<(), StoreError> {
        self.inner.record_checks(r).await
    }
    async fn check_results(
        &self,
        kind: CheckKind,
        target: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        self.inner.check_results(kind, target, since, until).await
    }
    async fn prune_checks(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_checks(before).await
    }
    async fn prune_outbox(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_outbox(before).await
    }
    async fn save_record(&self, kind: &str, id: &str, at: Timestamp, body: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_record(kind, id, at, body).await
    }
    async fn records(&self, kind: &str, since: Timestamp, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.check()?;
        self.inner.records(kind, since, limit).await
    }
    async fn record(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.check()?;
        self.inner.record(kind, id).await
    }
    async fn prune_records(&self, kind: &str, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_records(kind, before).await
    }
    async fn record_rum_window(&self, start: Timestamp, agent: &str, body: &str) -> Result<(), StoreError> {
        self.inner.record_rum_window(start, agent, body).await
    }
    async fn rum_windows(&self, start: Timestamp) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.rum_windows(start).await
    }
    async fn rum_windows_since(&self, since: Timestamp) -> Result<Vec<(Timestamp, String, String)>, StoreError> {
        self.inner.rum_windows_since(since).await
    }
    async fn prune_rum_windows(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_rum_windows(before).await
    }
    async fn record_traces(&self, rows: &[TraceRow]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_traces(rows).await
    }
    async fn traces(&self, q: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        self.inner.traces(q).await
    }
    async fn trace(&self, trace_id: &str) -> Result<Option<TraceRow>, StoreError> {
        self.inner.trace(trace_id).await
    }
    async fn prune_traces(&self, before: Timestamp, max_bytes: u64) -> Result<u64, StoreError> {
        self.inner.prune_traces(before, max_bytes).await
    }
    async fn record_session_events(&self, events: &[SessionEvent]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_session_events(events).await
    }
    async fn session_events(&self, session_id: &str, limit: usize) -> Result<Vec<SessionEvent>, StoreError> {
        self.inner.session_events(session_id, limit).await
    }
    async fn prune_session_events(&self, before: Timestamp, max_rows: u64) -> Result<u64, StoreError> {
        self.inner.prune_session_events(before, max_rows).await
    }
    async fn record_replay_chunk(&self, chunk: &ReplayChunk, max: u64) -> Result<ReplayStored, StoreError> {
        self.check()?;
        self.inner.record_replay_chunk(chunk, max).await
    }
    async fn replay_sessions(&self, limit: usize) -> Result<Vec<ReplaySummary>, StoreError> {
        self.inner.replay_sessions(limit).await
    }
    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        self.inner.replay_chunks(session_id).await
    }
    async fn prune_replays(&self, before: Timestamp, max_bytes: u64) -> Result<ReplayPruned, StoreError> {
        self.inner.prune_replays(before, max_bytes).await
    }
}

fn firing(sent: &[Notification]) -> usize {
    sent.iter().filter(|n| n.kind == NotificationKind::Firing).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_pages_once_through_a_store_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Outage {
        inner: SqliteStore::open(&dir.path().join("t.db")).expect("opens"),
        down: AtomicBool::new(false),
        commits: AtomicU64::new(0),
    });
    let rules = support::orders_failing_to_mem();
    let mem = InMemoryChannel::new("mem");
    let agent = Agent::builder()
        .rules(rules)
        .channel(Arc::new(mem.clone()))
        .store(store.clone())
        .evaluation_interval(Duration::from_millis(100))
        .build()
        .expect("valid");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let commits_before = store.commits.load(Ordering::SeqCst);
    support::eventually("a first commit", Duration::from_secs(30), async || {
        store.commits.load(Ordering::SeqCst) > commits_before
    })
    .await;
    // The store goes down; then orders start failing.
    store.down.store(true, Ordering::SeqCst);
    handle.push(&Sample::new("orders_failed", Labels::new(), 10.0, system_now())).expect("sample");
    support::eventually("the page delivered from memory", Duration::from_secs(30), async || firing(&mem.sent()) == 1)
        .await;
    // The store is back: the carried evaluation commits, without the page already sent.
    let during = store.commits.load(Ordering::SeqCst);
    store.down.store(false, Ordering::SeqCst);
    support::eventually("two commits after the outage and an empty outbox", Duration::from_secs(30), async || {
        store.commits.load(Ordering::SeqCst) >= during + 2 && handle.outbox_stats().await.is_ok_and(|s| s.pending == 0)
    })
    .await;
    assert_eq!(firing(&mem.sent()), 1, "paged once: {:#?}", mem.sent());
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
