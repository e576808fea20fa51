//! Durable state: the notification outbox and the engine's alert-state snapshot.
//!
//! The evaluation loop writes the notifications it produced and the snapshot that says they
//! were produced in one transaction ([`Store::commit_evaluation`]), before anything is sent:
//! a crash after that point loses nothing, and a restart resumes from the same state. Channel
//! workers then deliver due rows and record each attempt. Rows are keyed by (notification id,
//! channel), so writing the same notification twice is a no-op.
//!
//! Backends: SQLite (default, a file under the data directory) and PostgreSQL (feature
//! `postgres`), with the same schema.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

mod checks;
mod replays;
mod sessions;
mod traces;

use async_trait::async_trait;
pub use checks::{CheckKind, CheckRecord, latest_per_location};
pub use replays::{ReplayChunk, ReplayPruned, ReplayStored, ReplaySummary};
pub use sessions::SessionEvent;
use thorbis_obs_core::engine::{EngineSnapshot, Notification};
use thorbis_obs_core::time::Timestamp;
pub use traces::{TraceQuery, TraceRow, TraceSummary};

/// One notification for one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The notification.
    pub notification: Notification,
    /// The configured channel it goes to.
    pub channel: String,
}

/// A stored outbox row due for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    /// The notification.
    pub notification: Notification,
    /// The channel.
    pub channel: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt was made.
    pub first_attempt_at: Option<Timestamp>,
    /// When the row was written.
    pub created_at: Timestamp,
    /// When it may be attempted (again).
    pub next_attempt_at: Timestamp,
}

/// The result of one delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// The receiver accepted it.
    Delivered {
        /// When.
        at: Timestamp,
        /// The receiver's answer.
        answer: Option<String>,
    },
    /// Failed; try again at `next_at`.
    Retry {
        /// When the attempt was made.
        at: Timestamp,
        /// When to try again.
        next_at: Timestamp,
        /// Why it failed.
        error: String,
    },
    /// Failed for good (permanent error or retries exhausted).
    Failed {
        /// When.
        at: Timestamp,
        /// Why.
        error: String,
    },
}

/// Column list of `check_results`, in the order [`check_row_values`] binds and
/// [`check_from_parts`] reads.
pub(crate) const CHECK_COLUMNS: &str =
    "kind, target, location, at, success, duration_ms, status_code, failed_rule, error, cert_expires_at, down, detail";

/// A stored check row as plain values.
pub(crate) type CheckRow = (
    String,
    String,
    String,
    i64,
    i32,
    f64,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i32,
    Option<String>,
);

/// The values to store for a record.
pub(crate) fn check_row_values(r: &CheckRecord) -> CheckRow {
    (
        r.kind.as_str().to_string(),
        r.target.clone(),
        r.location.clone(),
        r.at.as_millis(),
        i32::from(r.success),
        r.duration_ms,
        r.status_code.map(i32::from),
        r.failed_rule.clone(),
        r.error.clone(),
        r.cert_expires_at.map(Timestamp::as_millis),
        i32::from(r.down),
        r.detail.as_ref().map(|d| d.to_string()),
    )
}

/// A record from stored values; a row that does not read back is corrupt, named.
pub(crate) fn check_from_parts(row: CheckRow) -> Result<CheckRecord, StoreError> {
    let (kind, target, location, at, success, duration_ms, status, failed_rule, error, cert, down, detail) = row;
    let kind = CheckKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("check_results.kind {kind:?}")))?;
    let status_code = status
        .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("check_results.status_code {s}"))))
        .transpose()?;
    let detail = detail
        .map(|d| serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(format!("check_results.detail: {e}"))))
        .transpose()?;
    Ok(CheckRecord {
        kind,
        target,
        location,
        at: Timestamp(at),
        success: success != 0,
        duration_ms,
        status_code,
        failed_rule,
        error,
        cert_expires_at: cert.map(Timestamp),
        down: down != 0,
        detail,
    })
}

/// A failed delivery, for `/api/v1/alerts` and logs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FailedDelivery {
    /// Notification id.
    pub notification_id: String,
    /// Rule id.
    pub rule_id: String,
    /// Channel.
    pub channel: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, with the receiver's answer.
    pub error: String,
}

/// Row counts by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStats {
    /// Waiting for delivery or a retry.
    pub pending: u64,
    /// Accepted by the receiver.
    pub delivered: u64,
    /// Given up.
    pub failed: u64,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("store error: {0}")]
    Backend(String),
    /// A stored row could not be read back.
    #[error("corrupt store row: {0}")]
    Corrupt(String),
}

/// A small record of [`Store::save_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its id within its kind.
    pub id: String,
    /// The time it is looked up by.
    pub at: Timestamp,
    /// Its body (JSON).
    pub body: String,
}

/// Where the agent keeps its durable state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs: `sqlite:/path` or `postgres://host/db` (never credentials).
    fn describe(&self) -> String;

    /// Writes an evaluation's notifications and the engine snapshot atomically.
    async fn commit_evaluation(&self, snapshot: &EngineSnapshot, entries: &[OutboxEntry]) -> Result<(), StoreError>;

    /// The last committed snapshot.
    async fn load_snapshot(&self) -> Result<Option<EngineSnapshot>, StoreError>;

    /// The oldest pending rows of `channel`, in the order they were produced (due or not: the
    /// worker delivers a channel's notifications in order, so a row waiting for its retry
    /// holds the ones behind it).
    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError>;

    /// The earliest `next_attempt_at` of a pending row of `channel`.
    async fn next_due(&self, channel: &str) -> Result<Option<Timestamp>, StoreError>;

    /// Records an attempt on (notification id, channel).
    async fn record_attempt(
        &self,
        notification_id: &str,
        channel: &str,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError>;

    /// Row counts.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// The most recent failed deliveries.
    async fn failed_deliveries(&self, limit: usize) -> Result<Vec<FailedDelivery>, StoreError>;

    /// Checks the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Appends check results (uptime checks and synthetic workflows).
    async fn record_checks(&self, records: &[CheckRecord]) -> Result<(), StoreError>;

    /// Results of `kind` with `since < at <= until`, oldest first; of one target when given.
    async fn check_results(
        &self,
        kind: CheckKind,
        target: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CheckRecord>, StoreError>;

    /// Deletes results with `at < before`; returns how many.
    async fn prune_checks(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Deletes outbox rows settled (delivered, or failed for good) before `before`; rows still
    /// to be delivered are never deleted. Returns how many.
    async fn prune_outbox(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Saves a small record of `kind` (`silence`, `ack`) under `id`, replacing one of that kind
    /// and id; `at` is the time it is looked up by (a silence's end, an acknowledgement's time).
    /// The agents sharing the store share them.
    async fn save_record(&self, kind: &str, id: &str, at: Timestamp, body: &str) -> Result<(), StoreError>;

    /// Records of `kind` whose `at` is at or after `since`, by `at`, at most `limit`.
    async fn records(&self, kind: &str, since: Timestamp, limit: usize) -> Result<Vec<StoredRecord>, StoreError>;

    /// The record `id` of `kind`, if there is one.
    async fn record(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, StoreError>;

    /// Deletes records of `kind` whose `at` is before `before`; returns how many.
    async fn prune_records(&self, kind: &str, before: Timestamp) -> Result<u64, StoreError>;

    /// Keeps an agent's closed RUM window (core's `RumWindow` as JSON) starting at `start`, so the
    /// agents sharing the store can merge them.
    async fn record_rum_window(&self, start: Timestamp, agent: &str, body: &str) -> Result<(), StoreError>;

    /// Every agent's window starting at `start`, as `(agent, body)`.
    async fn rum_windows(&self, start: Timestamp) -> Result<Vec<(String, String)>, StoreError>;

    /// Every agent's windows starting at or after `since`, as `(start, agent, body)`, oldest
    /// first: what an agent reloads when it starts.
    async fn rum_windows_since(&self, since: Timestamp) -> Result<Vec<(Timestamp, String, String)>, StoreError>;

    /// Deletes windows starting before `before`; returns how many.
    async fn prune_rum_windows(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Keeps kept traces; a trace stored again replaces its row (its late spans joined it).
    async fn record_traces(&self, rows: &[TraceRow]) -> Result<(), StoreError>;

    /// The summaries of the traces `q` selects, newest first.
    async fn traces(&self, q: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError>;

    /// One trace, whole, by its 32-hex-digit id.
    async fn trace(&self, trace_id: &str) -> Result<Option<TraceRow>, StoreError>;

    /// Deletes the traces that started before `before`, then the oldest ones beyond
    /// `max_bytes` of stored spans in all; returns how many.
    async fn prune_traces(&self, before: Timestamp, max_bytes: u64) -> Result<u64, StoreError>;

    /// Keeps events of session timelines.
    async fn record_session_events(&self, events: &[SessionEvent]) -> Result<(), StoreError>;

    /// A session's events in time order, the first `limit` of them.
    async fn session_events(&self, session_id: &str, limit: usize) -> Result<Vec<SessionEvent>, StoreError>;

    /// Deletes the timeline chunks that ended before `before`, then the oldest chunks beyond
    /// `max_events` events in all; returns how many chunks.
    async fn prune_session_events(&self, before: Timestamp, max_events: u64) -> Result<u64, StoreError>;

    /// Keeps a session replay chunk unless one of its session and number is kept already or
    /// the session would hold more than `max_session_bytes`.
    async fn record_replay_chunk(
        &self,
        chunk: &ReplayChunk,
        max_session_bytes: u64,
    ) -> Result<ReplayStored, StoreError>;

    /// Sessions with replay, the latest first, at most `limit`.
    async fn replay_sessions(&self, limit: usize) -> Result<Vec<ReplaySummary>, StoreError>;

    /// A session's replay chunks in order.
    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError>;

    /// Deletes the sessions whose replay ended before `before`, then whole sessions, the
    /// earliest ended first, until at most `max_bytes` are kept.
    async fn prune_replays(&self, before: Timestamp, max_bytes: u64) -> Result<ReplayPruned, StoreError>;

    /// True when several agents share this store, so their check locations count together.
    fn is_shared(&self) -> bool {
        false
    }

    /// Takes or keeps the leader role; only the leader evaluates and notifies. A store that
    /// only one agent can use is always the leader. On a shared store the role is a lease of
    /// `lease`: `Ok(true)` means no other agent can take over within `lease` of the call (the
    /// caller renews well within it), and the leader's errors do not hand it over by
    /// themselves (see the PostgreSQL store).
    async fn try_lead(&self, lease: std::time::Duration) -> Result<bool, StoreError> {
        let _ = lease;
        Ok(true)
    }

    /// Gives the leader role up at shutdown, so the next agent takes over without waiting out
    /// the lease.
    async fn release_lead(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
