//! The PostgreSQL store (feature `postgres`): the same schema as SQLite, and leader election
//! for several agents on one database.
//!
//! Leadership is a lease in the `leader_lease` row, in the way client-go's leader election
//! works (the observed-record rule): the leader renews it at every evaluation (a counter goes
//! up); another agent takes over only after it has itself watched the row stay unchanged for
//! the whole lease, on its own clock, while it could reach the database. So:
//! - a leader that exits cleanly releases the lease and the next agent leads at its next tick;
//!   one that dies is replaced one lease later;
//! - while the database is down nobody can take over, so the leader keeps evaluating and
//!   notifying from memory (see the agent's unstored lane); a standby that lost the database
//!   starts watching afresh once it is back, which gives the leader a full lease to renew;
//! - only a partition in which the leader cannot reach the database but a standby can leads to
//!   two leaders, until the old one reaches the database again and sees it lost the row: we
//!   take a possible duplicate page there over a missed one (delivery is at-least-once).
//!
//! Connections take libpq's TLS settings from the URL (`sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`; see [`crate::pg`]).

use super::sqlite::MIGRATIONS;
use super::traces::{Param, TRACE_COLUMNS, evict_sql, list_sql, upsert_sql};
use super::{AttemptOutcome, FailedDelivery, OutboxEntry, OutboxRow, OutboxStats, Store, StoreError};
use super::{CHECK_COLUMNS, check_from_parts, check_row_values};
use super::{CheckKind, CheckRecord, SessionEvent, StoredRecord, TraceQuery, TraceRow, TraceSummary};
use super::{ReplayChunk, ReplayPruned, ReplayStored, ReplaySummary, replays, sessions};
use crate::secret::redact_url;
use async_trait::async_trait;
use std::time::Duration;
use thorbis_obs_core::engine::{EngineSnapshot, Notification};
use thorbis_obs_core::time::Timestamp;
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// The advisory lock key that serialises migrations across agents ("thorbis" in ASCII, + 1).
const MIGRATION_LOCK_KEY: i64 = 0x0074_686f_7262_6973 + 1;

/// The PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    url: String,
    display: String,
    client: Mutex<Option<Client>>,
    /// This agent's name in the lease row.
    holder: String,
    lease: Mutex<LeaseView>,
}

/// What this agent knows of the lease.
#[derive(Debug, Default)]
struct LeaseView {
    leading: bool,
    /// The row as last seen by a standby (holder, renewals) and since when, on this clock.
    observed: Option<(String, i64, tokio::time::Instant)>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("db", &self.display).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    crate::pg::connect(url, "store").await.map_err(|e| backend(format!("cannot connect: {e}")))
}

impl PostgresStore {
    /// Connects and applies migrations (serialised across agents by an advisory lock).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut client = connect(url).await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY]).await.map_err(backend)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(backend)?;
        let applied: i32 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(backend)?.get(0);
        for (i, m) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
            tx.batch_execute(m).await.map_err(|e| backend(format!("migration {}: {e}", i + 1)))?;
            tx.execute(
                "INSERT INTO schema_migrations VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(PostgresStore {
            url: url.to_string(),
            display: redact_url(url),
            client: Mutex::new(Some(client)),
            holder: format!(
                "{}-{}-{:08x}",
                hostname(),
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0)
            ),
            lease: Mutex::new(LeaseView::default()),
        })
    }

    /// The data connection, reconnecting if it closed.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let mut g = self.client.lock().await;
        if g.as_ref().is_none_or(|c| c.is_closed()) {
            *g = Some(connect(&self.url).await?);
        }
        Ok(g)
    }
}

fn to_row(r: &tokio_postgres::Row) -> Result<OutboxRow, StoreError> {
    let notification: Notification =
        serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?;
    Ok(OutboxRow {
        notification,
        channel: r.get(1),
        attempts: r.get::<_, i32>(2).max(0) as u32,
        first_attempt_at: r.get::<_, Option<i64>>(3).map(Timestamp),
        created_at: Timestamp(r.get(4)),
        next_attempt_at: Timestamp(r.get(5)),
    })
}

macro_rules! client {
    ($self:ident, $g:ident) => {
        let mut $g = $self.client().await?;
        let Some($g) = $g.as_mut() else { return Err(backend("no store connection")) };
    };
}

#[async_trait]
impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.display.clone()
    }

    async fn commit_evaluation(&self, snapshot: &EngineSnapshot, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let snap = serde_json::to_string(snapshot).map_err(backend)?;
        client!(self, c);
        let tx = c.transaction().await.map_err(backend)?;
        let ins = tx
            .prepare(
                "INSERT INTO outbox (notification_id, channel, rule_id, payload, state, created_at, next_attempt_at, ord)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $6) ON CONFLICT (notification_id, channel) DO NOTHING",
            )
            .await
            .map_err(backend)?;
        for (i, e) in entries.iter().enumerate() {
            let payload = serde_json::to_string(&e.notification).map_err(backend)?;
            let ord = i as i32;
            tx.execute(
                &ins,
                &[
                    &e.notification.id,
                    &e.channel,
                    &e.notification.rule_id,
                    &payload,
                    &e.notification.created_at.as_millis(),
                    &ord,
                ],
            )
            .await
            .map_err(backend)?;
        }
        tx.execute(
            "INSERT INTO engine_state (id, snapshot, taken_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, taken_at = excluded.taken_at",
            &[&snap, &snapshot.taken_at.as_millis()],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn load_snapshot(&self) -> Result<Option<EngineSnapshot>, StoreError> {
        client!(self, c);
        let row = c.query_opt("SELECT snapshot FROM engine_state WHERE id = 1", &[]).await.map_err(backend)?;
        row.map(|r| {
            let t: String = r.get(0);
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("engine snapshot: {e}")))
        })
        .transpose()
    }

    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        client!(self, c);
        let rows = c
            .query(
                "SELECT payload, channel, attempts, first_attempt_at, created_at, next_attempt_at FROM outbox
                 WHERE state = 'pending' AND channel = $1 ORDER BY created_at, ord LIMIT $2",
                &[&channel, &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(to_row).collect()
    }

    async fn next_due(&self, channel: &str) -> Result<Option<Timestamp>, StoreError> {
        client!(self, c);
        let r = c
            .query_one("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND channel = $1", &[&channel])
            .await
            .map_err(backend)?;
        Ok(r.get::<_, Option<i64>>(0).map(Timestamp))
    }

    async fn record_attempt(
        &self,
        notification_id: &str,
        channel: &str,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        client!(self, c);
        let n = match outcome {
            AttemptOutcome::Delivered { at, answer } => {
                c.execute(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, $3),
                     finished_at = $3, answer = $4 WHERE notification_id = $1 AND channel = $2",
                    &[&notification_id, &channel, &at.as_millis(), answer],
                )
                .await
            }
            AttemptOutcome::Retry { at, next_at, error } => {
                c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, $3),
                     next_attempt_at = $4, last_error = $5 WHERE notification_id = $1 AND channel = $2",
                    &[&notification_id, &channel, &at.as_millis(), &next_at.as_millis(), error],
                )
                .await
            }
            AttemptOutcome::Failed { at, error } => {
                c.execute(
                    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, $3),
                     finished_at = $3, last_error = $4 WHERE notification_id = $1 AND channel = $2",
                    &[&notification_id, &channel, &at.as_millis(), error],
                )
                .await
            }
        }
        .map_err(backend)?;
        if n == 0 { Err(backend(format!("no outbox row for {notification_id} on {channel}"))) } else { Ok(()) }
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        client!(self, c);
        let rows = c.query("SELECT state, COUNT(*) FROM outbox GROUP BY state", &[]).await.map_err(backend)?;
        let mut s = OutboxStats::default();
        for r in rows {
            let n = r.get::<_, i64>(1).max(0) as u64;
            match r.get::<_, &str>(0) {
                "pending" => s.pending = n,
                "delivered" => s.delivered = n,
                _ => s.failed += n,
            }
        }
        Ok(s)
    }

    async fn failed_deliveries(&self, limit: usize) -> Result<Vec<FailedDelivery>, StoreError> {
        client!(self, c);
        let rows = c
            .query(
                "SELECT notification_id, rule_id, channel, attempts, COALESCE(last_error, '') FROM outbox
                 WHERE state = 'failed' ORDER BY finished_at DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| FailedDelivery {
                notification_id: r.get(0),
                rule_id: r.get(1),
                channel: r.get(2),
                attempts: r.get::<_, i32>(3).max(0) as u32,
                error: r.get(4),
            })
            .collect())
    }

    async fn record_checks(&self, records: &[CheckRecord]) -> Result<(), StoreError> {
        client!(self, c);
        let tx = c.transaction().await.map_err(backend)?;
        let ins = tx
            .prepare(&format!(
                "INSERT INTO check_results ({CHECK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .await
            .map_err(backend)?;
        for r in records {
            let v = check_row_values(r);
            tx.execute(&ins, &[&v.0, &v.1, &v.2, &v.3, &v.4, &v.5, &v.6, &v.7, &v.8, &v.9, &v.10, &v.11])
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn check_results(
        &self,
        kind: CheckKind,
        target: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        client!(self, c);
        let rows = c
            .query(
                &format!(
                    "SELECT {CHECK_COLUMNS} FROM check_results WHERE kind = $1 AND at > $2 AND at <= $3
                     AND ($4::TEXT IS NULL OR target = $4) ORDER BY at"
                ),
                &[&kind.as_str(), &since.as_millis(), &until.as_millis(), &target],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                check_from_parts((
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                    r.get(7),
                    r.get(8),
                    r.get(9),
                    r.get(10),
                    r.get(11),
                ))
            })
            .collect()
    }

    async fn prune_checks(&self, before: Timestamp) -> Result<u64, StoreError> {
        client!(self, c);
        c.execute("DELETE FROM check_results WHERE at < $1", &[&before.as_millis()]).await.map_err(backend)
    }

    async fn prune_outbox(&self, before: Timestamp) -> Result<u64, StoreError> {
        client!(self, c);
        c.execute(
            "DELETE FROM outbox WHERE state IN ('delivered', 'failed') AND finished_at < $1",
            &[&before.as_millis()],
        )
        .await
        .map_err(backend)
    }

    async fn save_record(&self, kind: &str, id: &str, at: Timestamp, body: &str) -> Result<(), StoreError> {
        client!(self, c);
        c.execute(
            "INSERT INTO records (kind, id, at_ms, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kind, id) DO UPDATE SET at_ms = excluded.at_ms, body = excluded.body",
            &[&kind, &id, &at.as_millis(), &body],
        )
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn records(&self, kind: &str, since: Timestamp, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        client!(self, c);
        let rows = c
            .query(
                "SELECT id, at_ms, body FROM records WHERE kind = $1 AND at_ms >= $2 ORDER BY at_ms, id LIMIT $3",
                &[&kind, &since.as_millis(), &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| StoredRecord { id: r.get(0), at: Timestamp(r.get(1)), body: r.get(2) }).collect())
    }

    async fn record(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        client!(self, c);
        let row = c
            .query_opt("SELECT id, at_ms, body FROM records WHERE kind = $1 AND id = $2", &[&kind, &id])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| StoredRecord { id: r.get(0), at: Timestamp(r.get(1)), body: r.get(2) }))
    }

    async fn prune_records(&self, kind: &str, before: Timestamp) -> Result<u64, StoreError> {
        client!(self, c);
        c.execute("DELETE FROM records WHERE kind = $1 AND at_ms < $2", &[&kind, &before.as_millis()])
            .await
            .map_err(backend)
    }

    async fn record_rum_window(&self, start: Timestamp, agent: &str, body: &str) -> Result<(), StoreError> {
        client!(self, c);
        c.execute(
            "INSERT INTO rum_windows (start_ms, agent, body) VALUES ($1, $2, $3)
             ON CONFLICT (start_ms, agent) DO UPDATE SET body = excluded.body",
            &[&start.as_millis(), &agent, &body],
        )
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn rum_windows(&self, start: Timestamp) -> Result<Vec<(String, String)>, StoreError> {
        client!(self, c);
        let rows = c
            .query("SELECT agent, body FROM rum_windows WHERE start_ms = $1 ORDER BY agent", &[&start.as_millis()])
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn rum_windows_since(&self, since: Timestamp) -> Result<Vec<(Timestamp, String, String)>, StoreError> {
        client!(self, c);
        let rows = c
            .query(
                "SELECT start_ms, agent, body FROM rum_windows WHERE start_ms >= $1 ORDER BY start_ms, agent",
                &[&since.as_millis()],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| (Timestamp(r.get(0)), r.get(1), r.get(2))).collect())
    }

    async fn prune_rum_windows(&self, before: Timestamp) -> Result<u64, StoreError> {
        client!(self, c);
        c.execute("DELETE FROM rum_windows WHERE start_ms < $1", &[&before.as_millis()]).await.map_err(backend)
    }

    async fn record_traces(&self, rows: &[TraceRow]) -> Result<(), StoreError> {
        client!(self, c);
        let tx = c.transaction().await.map_err(backend)?;
        let st = tx.prepare(&upsert_sql(|n| format!("${n}"))).await.map_err(backend)?;
        for r in rows {
            let s = &r.summary;
            let error = i32::from(s.error);
            tx.execute(
                &st,
                &[
                    &s.trace_id,
                    &s.start.as_millis(),
                    &s.duration_ms,
                    &s.service,
                    &s.route,
                    &s.name,
                    &s.services,
                    &s.span_count,
                    &error,
                    &s.policy,
                    &s.bytes,
                    &r.data,
                ],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn traces(&self, q: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        let (sql, params) = list_sql(q, |n| format!("${n}"));
        let values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                match p {
                    Param::Text(t) => Box::new(t),
                    Param::Int(i) => Box::new(i),
                    Param::Int32(i) => Box::new(i),
                    Param::Float(f) => Box::new(f),
                }
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        client!(self, c);
        let rows = c.query(&sql, &refs).await.map_err(backend)?;
        Ok(rows.iter().map(trace_summary).collect())
    }

    async fn trace(&self, trace_id: &str) -> Result<Option<TraceRow>, StoreError> {
        client!(self, c);
        let row = c
            .query_opt(&format!("SELECT {TRACE_COLUMNS}, data FROM traces WHERE trace_id = $1"), &[&trace_id])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| TraceRow { summary: trace_summary(&r), data: r.get(11) }))
    }

    async fn prune_traces(&self, before: Timestamp, max_bytes: u64) -> Result<u64, StoreError> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        client!(self, c);
        let old = c.execute("DELETE FROM traces WHERE start_ms < $1", &[&before.as_millis()]).await.map_err(backend)?;
        let over = c.execute(&evict_sql(|n| format!("${n}")), &[&max]).await.map_err(backend)?;
        Ok(old + over)
    }

    async fn record_session_events(&self, events: &[SessionEvent]) -> Result<(), StoreError> {
        let chunks = sessions::chunks(events)?;
        client!(self, c);
        let tx = c.transaction().await.map_err(backend)?;
        let st = tx.prepare(&sessions::insert_sql(|n| format!("${n}"))).await.map_err(backend)?;
        for (session, first, last, n, json) in &chunks {
            tx.execute(&st, &[session, first, last, n, json]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn session_events(&self, session_id: &str, limit: usize) -> Result<Vec<SessionEvent>, StoreError> {
        let chunks = i64::try_from(limit).unwrap_or(i64::MAX);
        client!(self, c);
        let rows =
            c.query(&sessions::timeline_sql(|n| format!("${n}")), &[&session_id, &chunks]).await.map_err(backend)?;
        sessions::flatten(rows.iter().map(|r| r.get::<_, String>(0)), limit)
    }

    async fn prune_session_events(&self, before: Timestamp, max_events: u64) -> Result<u64, StoreError> {
        let max = i64::try_from(max_events).unwrap_or(i64::MAX);
        client!(self, c);
        let old =
            c.execute("DELETE FROM session_events WHERE end_ms < $1", &[&before.as_millis()]).await.map_err(backend)?;
        let over = c.execute(&sessions::evict_sql(|n| format!("${n}")), &[&max]).await.map_err(backend)?;
        Ok(old + over)
    }

    async fn record_replay_chunk(
        &self,
        chunk: &ReplayChunk,
        max_session_bytes: u64,
    ) -> Result<ReplayStored, StoreError> {
        let cap = i64::try_from(max_session_bytes).unwrap_or(i64::MAX);
        let mark = |n| format!("${n}");
        client!(self, c);
        let tx = c.transaction().await.map_err(backend)?;
        let seq = i64::from(chunk.seq);
        // Writers of one session wait for each other here, so two agents cannot both pass the cap.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&chunk.session_id]).await.map_err(backend)?;
        if tx.query_opt(&replays::exists_sql(mark), &[&chunk.session_id, &seq]).await.map_err(backend)?.is_some() {
            return Ok(ReplayStored::Duplicate);
        }
        let held: i64 =
            tx.query_one(&replays::session_bytes_sql(mark), &[&chunk.session_id]).await.map_err(backend)?.get(0);
        let bytes = chunk.data.len() as i64;
        if held.saturating_add(bytes) > cap {
            return Ok(ReplayStored::SessionFull);
        }
        let (events, data) = (i64::from(chunk.events), &chunk.data);
        tx.execute(
            &replays::insert_sql(mark),
            &[&chunk.session_id, &seq, &chunk.start_ms, &chunk.end_ms, &events, &bytes, data],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ReplayStored::Stored)
    }

    async fn replay_sessions(&self, limit: usize) -> Result<Vec<ReplaySummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        client!(self, c);
        let rows = c.query(&replays::sessions_sql(|n| format!("${n}")), &[&limit]).await.map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| ReplaySummary {
                session_id: r.get(0),
                start: Timestamp(r.get(1)),
                end: Timestamp(r.get(2)),
                chunks: r.get::<_, i64>(3).max(0) as u64,
                events: r.get::<_, i64>(4).max(0) as u64,
                bytes: r.get::<_, i64>(5).max(0) as u64,
            })
            .collect())
    }

    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        client!(self, c);
        let rows = c.query(&replays::chunks_sql(|n| format!("${n}")), &[&session_id]).await.map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| ReplayChunk {
                session_id: session_id.to_string(),
                seq: u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
                start_ms: r.get(1),
                end_ms: r.get(2),
                events: u32::try_from(r.get::<_, i64>(3)).unwrap_or(u32::MAX),
                data: r.get(4),
            })
            .collect())
    }

    async fn prune_replays(&self, before: Timestamp, max_bytes: u64) -> Result<ReplayPruned, StoreError> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let mark = |n| format!("${n}");
        client!(self, c);
        let expired = c.execute(&replays::expire_sql(mark), &[&before.as_millis()]).await.map_err(backend)?;
        let evicted = c.execute(&replays::evict_sql(mark), &[&max]).await.map_err(backend)?;
        let totals = c.query_one(replays::TOTALS_SQL, &[]).await.map_err(backend)?;
        let (sessions, bytes): (i64, i64) = (totals.get(0), totals.get(1));
        Ok(ReplayPruned { expired, evicted, sessions: sessions.max(0) as u64, bytes: bytes.max(0) as u64 })
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn ping(&self) -> Result<(), StoreError> {
        client!(self, c);
        c.simple_query("SELECT 1").await.map(|_| ()).map_err(backend)
    }

    async fn try_lead(&self, lease: Duration) -> Result<bool, StoreError> {
        let mut view = self.lease.lock().await;
        let result = self.lead_step(&mut view, lease).await;
        if result.is_err() {
            // A standby starts watching afresh once the database is back.
            view.observed = None;
        }
        result
    }

    async fn release_lead(&self) -> Result<(), StoreError> {
        let mut view = self.lease.lock().await;
        if !std::mem::take(&mut view.leading) {
            return Ok(());
        }
        client!(self, c);
        c.execute(
            "UPDATE leader_lease SET holder = '', renewals = renewals + 1 WHERE id = 1 AND holder = $1",
            &[&self.holder],
        )
        .await
        .map(|_| ())
        .map_err(backend)
    }
}

/// The database's clock in milliseconds, for the lease row's `renewed_ms` (shown, not compared).
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

impl PostgresStore {
    /// One leadership step: renew as the leader, or watch (and maybe take) the lease.
    async fn lead_step(&self, view: &mut LeaseView, lease: Duration) -> Result<bool, StoreError> {
        client!(self, c);
        if view.leading {
            let renewed = c
                .execute(
                    &format!(
                        "UPDATE leader_lease SET renewals = renewals + 1, renewed_ms = {DB_NOW_MS} \
                         WHERE id = 1 AND holder = $1"
                    ),
                    &[&self.holder],
                )
                .await
                .map_err(backend)?;
            view.leading = renewed == 1;
            if !view.leading {
                tracing::warn!("another agent holds the leader lease now");
            }
            return Ok(view.leading);
        }
        let row = c.query_opt("SELECT holder, renewals FROM leader_lease WHERE id = 1", &[]).await.map_err(backend)?;
        let now = tokio::time::Instant::now();
        let take = match row {
            None => {
                let n = c
                    .execute(
                        &format!(
                            "INSERT INTO leader_lease (id, holder, renewals, renewed_ms) VALUES (1, $1, 0, {DB_NOW_MS}) \
                             ON CONFLICT (id) DO NOTHING"
                        ),
                        &[&self.holder],
                    )
                    .await
                    .map_err(backend)?;
                view.leading = n == 1;
                return Ok(view.leading);
            }
            Some(r) => {
                let (holder, renewals): (String, i64) = (r.get(0), r.get(1));
                let unchanged_for = match &view.observed {
                    Some((h, n, since)) if *h == holder && *n == renewals => now.duration_since(*since),
                    _ => {
                        view.observed = Some((holder.clone(), renewals, now));
                        Duration::ZERO
                    }
                };
                // Released (empty holder), or not renewed for a whole lease while we watched.
                (holder.is_empty() || unchanged_for >= lease).then_some((holder, renewals))
            }
        };
        let Some((holder, renewals)) = take else { return Ok(false) };
        let n = c
            .execute(
                &format!(
                    "UPDATE leader_lease SET holder = $1, renewals = renewals + 1, renewed_ms = {DB_NOW_MS} \
                     WHERE id = 1 AND holder = $2 AND renewals = $3"
                ),
                &[&self.holder, &holder, &renewals],
            )
            .await
            .map_err(backend)?;
        view.leading = n == 1;
        view.observed = None;
        if view.leading && !holder.is_empty() {
            tracing::warn!(previous = %holder, "took over the leader lease: its holder stopped renewing it");
        }
        Ok(view.leading)
    }
}

/// This machine's name for the lease row (`HOSTNAME`, then /etc/hostname).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_graphic()).take(64).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".into())
}

/// A trace summary from the first eleven columns ([`TRACE_COLUMNS`]).
fn trace_summary(r: &tokio_postgres::Row) -> TraceSummary {
    TraceSummary {
        trace_id: r.get(0),
        start: Timestamp(r.get(1)),
        duration_ms: r.get(2),
        service: r.get(3),
        route: r.get(4),
        name: r.get(5),
        services: r.get(6),
        span_count: r.get(7),
        error: r.get::<_, i32>(8) != 0,
        policy: r.get(9),
        bytes: r.get(10),
    }
}
