//! The SQLite store: one file, WAL mode, `synchronous = FULL` so a committed evaluation
//! survives a crash of the process or the machine.

use super::traces::{Param, TRACE_COLUMNS, evict_sql, list_sql, upsert_sql};
use super::{AttemptOutcome, FailedDelivery, OutboxEntry, OutboxRow, OutboxStats, Store, StoreError};
use super::{CHECK_COLUMNS, CheckRow, check_from_parts, check_row_values};
use super::{CheckKind, CheckRecord, SessionEvent, StoredRecord, TraceQuery, TraceRow, TraceSummary};
use super::{ReplayChunk, ReplayPruned, ReplayStored, ReplaySummary, replays, sessions};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use thorbis_obs_core::engine::{EngineSnapshot, Notification};
use thorbis_obs_core::time::Timestamp;

/// Schema migrations, applied in order and recorded in `schema_migrations`.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE outbox (
        notification_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        first_attempt_at BIGINT,
        next_attempt_at BIGINT NOT NULL,
        finished_at BIGINT,
        last_error TEXT,
        answer TEXT,
        PRIMARY KEY (notification_id, channel)
    );
    CREATE INDEX outbox_due ON outbox (state, channel, next_attempt_at);
    CREATE TABLE engine_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        snapshot TEXT NOT NULL,
        taken_at BIGINT NOT NULL
    );",
    // The order notifications were produced in within one evaluation, so a channel delivers
    // them in order (created_at, ord).
    "ALTER TABLE outbox ADD COLUMN ord INTEGER NOT NULL DEFAULT 0",
    // Uptime check and synthetic workflow results, for reports and location quorums.
    "CREATE TABLE check_results (
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        location TEXT NOT NULL,
        at BIGINT NOT NULL,
        success INTEGER NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        status_code INTEGER,
        failed_rule TEXT,
        error TEXT,
        cert_expires_at BIGINT,
        down INTEGER NOT NULL,
        detail TEXT
    );
    CREATE INDEX check_results_target ON check_results (kind, target, at);
    CREATE INDEX check_results_at ON check_results (kind, at)",
    // Closed RUM windows of each agent on a shared store, merged by every agent.
    "CREATE TABLE rum_windows (
        start_ms BIGINT NOT NULL,
        agent TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (start_ms, agent)
    )",
    // The leader's lease on a shared store (PostgreSQL): who holds it and how often it renewed.
    "CREATE TABLE leader_lease (
        id INTEGER PRIMARY KEY,
        holder TEXT NOT NULL,
        renewals BIGINT NOT NULL,
        renewed_ms BIGINT NOT NULL
    )",
    // Kept traces: summary columns for the lists, the spans as one compressed blob (BYTEA: a
    // blob in SQLite's NUMERIC affinity is kept as it is).
    "CREATE TABLE traces (
        trace_id TEXT PRIMARY KEY,
        start_ms BIGINT NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        service TEXT NOT NULL,
        route TEXT NOT NULL,
        name TEXT NOT NULL,
        services TEXT NOT NULL,
        span_count BIGINT NOT NULL,
        error INTEGER NOT NULL,
        policy TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        data BYTEA NOT NULL
    );
    CREATE INDEX traces_start ON traces (start_ms);
    CREATE INDEX traces_route ON traces (service, route, start_ms);
    CREATE INDEX traces_error ON traces (error, start_ms)",
    // Session timelines: a row per session per write, its events as a JSON array.
    "CREATE TABLE session_events (
        session_id TEXT NOT NULL,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT NOT NULL,
        events BIGINT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX session_events_session ON session_events (session_id, start_ms);
    CREATE INDEX session_events_end ON session_events (end_ms)",
    // Small records the agents share: silences, acknowledgements.
    "CREATE TABLE records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX records_at ON records (kind, at_ms)",
    // Session replay: a row per chunk, its rrweb events as one gzip blob.
    "CREATE TABLE replay_chunks (
        session_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT NOT NULL,
        events BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (session_id, seq)
    );
    CREATE INDEX replay_chunks_end ON replay_chunks (end_ms)",
];

/// The SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(backend)?;
        migrate(&conn)?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: path.to_path_buf() })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut c)
        })
        .await
        .map_err(|e| backend(format!("store task failed: {e}")))?
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .map_err(backend)?;
    let applied: i64 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(backend)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {m}; INSERT INTO schema_migrations VALUES ({}, strftime('%s','now')); COMMIT;",
            i + 1
        ))
        .map_err(|e| backend(format!("migration {}: {e}", i + 1)))?;
    }
    Ok(())
}

fn row_to_outbox(
    (payload, channel, attempts, first, created, next): (String, String, i64, Option<i64>, i64, i64),
) -> Result<OutboxRow, StoreError> {
    let notification: Notification =
        serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("outbox payload: {e}")))?;
    Ok(OutboxRow {
        notification,
        channel,
        attempts: attempts.max(0) as u32,
        first_attempt_at: first.map(Timestamp),
        created_at: Timestamp(created),
        next_attempt_at: Timestamp(next),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn commit_evaluation(&self, snapshot: &EngineSnapshot, entries: &[OutboxEntry]) -> Result<(), StoreError> {
        let snap = serde_json::to_string(snapshot).map_err(backend)?;
        let taken = snapshot.taken_at.as_millis();
        let rows: Vec<(String, String, String, String, i64, i64)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Ok((
                    e.notification.id.clone(),
                    e.channel.clone(),
                    e.notification.rule_id.clone(),
                    serde_json::to_string(&e.notification).map_err(backend)?,
                    e.notification.created_at.as_millis(),
                    i as i64,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO outbox (notification_id, channel, rule_id, payload, state, created_at, next_attempt_at, ord)
                         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?6)",
                    )
                    .map_err(backend)?;
                for (id, ch, rule, payload, at, ord) in &rows {
                    ins.execute(params![id, ch, rule, payload, at, ord]).map_err(backend)?;
                }
                tx.execute(
                    "INSERT INTO engine_state (id, snapshot, taken_at) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, taken_at = excluded.taken_at",
                    params![snap, taken],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn load_snapshot(&self) -> Result<Option<EngineSnapshot>, StoreError> {
        let text: Option<String> = self
            .with(|c| {
                c.query_row("SELECT snapshot FROM engine_state WHERE id = 1", [], |r| r.get(0))
                    .optional()
                    .map_err(backend)
            })
            .await?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("engine snapshot: {e}"))))
            .transpose()
    }

    async fn pending(&self, channel: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let channel = channel.to_string();
        type Raw = (String, String, i64, Option<i64>, i64, i64);
        let raw: Vec<Raw> = self
            .with(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT payload, channel, attempts, first_attempt_at, created_at, next_attempt_at FROM outbox
                         WHERE state = 'pending' AND channel = ?1 ORDER BY created_at, ord LIMIT ?2",
                    )
                    .map_err(backend)?;
                let rows = st
                    .query_map(params![channel, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await?;
        raw.into_iter().map(row_to_outbox).collect()
    }

    async fn next_due(&self, channel: &str) -> Result<Option<Timestamp>, StoreError> {
        let channel = channel.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND channel = ?1",
                params![channel],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(Timestamp))
            .map_err(backend)
        })
        .await
    }

    async fn record_attempt(
        &self,
        notification_id: &str,
        channel: &str,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let (id, channel, outcome) = (notification_id.to_string(), channel.to_string(), outcome.clone());
        self.with(move |c| {
            let n = match &outcome {
                AttemptOutcome::Delivered { at, answer } => c.execute(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?3),
                     finished_at = ?3, answer = ?4 WHERE notification_id = ?1 AND channel = ?2",
                    params![id, channel, at.as_millis(), answer],
                ),
                AttemptOutcome::Retry { at, next_at, error } => c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?3),
                     next_attempt_at = ?4, last_error = ?5 WHERE notification_id = ?1 AND channel = ?2",
                    params![id, channel, at.as_millis(), next_at.as_millis(), error],
                ),
                AttemptOutcome::Failed { at, error } => c.execute(
                    "UPDATE outbox SET state = 'failed', attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?3),
                     finished_at = ?3, last_error = ?4 WHERE notification_id = ?1 AND channel = ?2",
                    params![id, channel, at.as_millis(), error],
                ),
            }
            .map_err(backend)?;
            if n == 0 { Err(backend(format!("no outbox row for {id} on {channel}"))) } else { Ok(()) }
        })
        .await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state").map_err(backend)?;
            let mut s = OutboxStats::default();
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(backend)?;
            for row in rows {
                let (state, n) = row.map_err(backend)?;
                match state.as_str() {
                    "pending" => s.pending = n as u64,
                    "delivered" => s.delivered = n as u64,
                    _ => s.failed += n as u64,
                }
            }
            Ok(s)
        })
        .await
    }

    async fn failed_deliveries(&self, limit: usize) -> Result<Vec<FailedDelivery>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT notification_id, rule_id, channel, attempts, COALESCE(last_error, '') FROM outbox
                     WHERE state = 'failed' ORDER BY finished_at DESC LIMIT ?1",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![limit as i64], |r| {
                    Ok(FailedDelivery {
                        notification_id: r.get(0)?,
                        rule_id: r.get(1)?,
                        channel: r.get(2)?,
                        attempts: r.get::<_, i64>(3)?.max(0) as u32,
                        error: r.get(4)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn record_checks(&self, records: &[CheckRecord]) -> Result<(), StoreError> {
        let rows: Vec<CheckRow> = records.iter().map(check_row_values).collect();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            {
                let mut ins = tx
                    .prepare_cached(&format!(
                        "INSERT INTO check_results ({CHECK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    ))
                    .map_err(backend)?;
                for r in &rows {
                    ins.execute(params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11])
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn check_results(
        &self,
        kind: CheckKind,
        target: Option<&str>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CheckRecord>, StoreError> {
        let target = target.map(str::to_string);
        let rows: Vec<CheckRow> = self
            .with(move |c| {
                let mut q = c
                    .prepare_cached(&format!(
                        "SELECT {CHECK_COLUMNS} FROM check_results WHERE kind = ?1 AND at > ?2 AND at <= ?3
                         AND (?4 IS NULL OR target = ?4) ORDER BY at, rowid"
                    ))
                    .map_err(backend)?;
                let rows = q
                    .query_map(params![kind.as_str(), since.as_millis(), until.as_millis(), target], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                            r.get(10)?,
                            r.get(11)?,
                        ))
                    })
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await?;
        rows.into_iter().map(check_from_parts).collect()
    }

    async fn prune_checks(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.with(move |c| {
            c.execute("DELETE FROM check_results WHERE at < ?1", params![before.as_millis()])
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn prune_outbox(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM outbox WHERE state IN ('delivered', 'failed') AND finished_at < ?1",
                params![before.as_millis()],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn record_traces(&self, rows: &[TraceRow]) -> Result<(), StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for r in &rows {
                let s = &r.summary;
                tx.execute(
                    &upsert_sql(|n| format!("?{n}")),
                    params![
                        s.trace_id,
                        s.start.as_millis(),
                        s.duration_ms,
                        s.service,
                        s.route,
                        s.name,
                        s.services,
                        s.span_count,
                        i64::from(s.error),
                        s.policy,
                        s.bytes,
                        r.data
                    ],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn traces(&self, q: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        let (sql, params) = list_sql(q, |n| format!("?{n}"));
        self.with(move |c| {
            let mut st = c.prepare(&sql).map_err(backend)?;
            let values: Vec<rusqlite::types::Value> = params
                .into_iter()
                .map(|p| match p {
                    Param::Text(t) => rusqlite::types::Value::Text(t),
                    Param::Int(i) => rusqlite::types::Value::Integer(i),
                    Param::Int32(i) => rusqlite::types::Value::Integer(i64::from(i)),
                    Param::Float(f) => rusqlite::types::Value::Real(f),
                })
                .collect();
            let rows = st.query_map(rusqlite::params_from_iter(values), trace_summary).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn trace(&self, trace_id: &str) -> Result<Option<TraceRow>, StoreError> {
        let id = trace_id.to_string();
        self.with(move |c| {
            c.query_row(&format!("SELECT {TRACE_COLUMNS}, data FROM traces WHERE trace_id = ?1"), params![id], |r| {
                Ok(TraceRow { summary: trace_summary(r)?, data: r.get(11)? })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn prune_traces(&self, before: Timestamp, max_bytes: u64) -> Result<u64, StoreError> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self.with(move |c| {
            let old =
                c.execute("DELETE FROM traces WHERE start_ms < ?1", params![before.as_millis()]).map_err(backend)?;
            let over = c.execute(&evict_sql(|n| format!("?{n}")), params![max]).map_err(backend)?;
            Ok((old + over) as u64)
        })
        .await
    }

    async fn record_session_events(&self, events: &[SessionEvent]) -> Result<(), StoreError> {
        let chunks = sessions::chunks(events)?;
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            {
                let mut st = tx.prepare(&sessions::insert_sql(|n| format!("?{n}"))).map_err(backend)?;
                for (session, first, last, n, json) in &chunks {
                    st.execute(params![session, first, last, n, json]).map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn session_events(&self, session_id: &str, limit: usize) -> Result<Vec<SessionEvent>, StoreError> {
        let id = session_id.to_string();
        let chunks = i64::try_from(limit).unwrap_or(i64::MAX);
        let arrays = self
            .with(move |c| {
                let mut st = c.prepare(&sessions::timeline_sql(|n| format!("?{n}"))).map_err(backend)?;
                let rows = st.query_map(params![id, chunks], |r| r.get::<_, String>(0)).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)
            })
            .await?;
        sessions::flatten(arrays, limit)
    }

    async fn prune_session_events(&self, before: Timestamp, max_events: u64) -> Result<u64, StoreError> {
        let max = i64::try_from(max_events).unwrap_or(i64::MAX);
        self.with(move |c| {
            let old = c
                .execute("DELETE FROM session_events WHERE end_ms < ?1", params![before.as_millis()])
                .map_err(backend)?;
            let over = c.execute(&sessions::evict_sql(|n| format!("?{n}")), params![max]).map_err(backend)?;
            Ok((old + over) as u64)
        })
        .await
    }

    async fn record_replay_chunk(
        &self,
        chunk: &ReplayChunk,
        max_session_bytes: u64,
    ) -> Result<ReplayStored, StoreError> {
        let chunk = chunk.clone();
        let cap = i64::try_from(max_session_bytes).unwrap_or(i64::MAX);
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let mark = |n| format!("?{n}");
            let exists = tx
                .query_row(&replays::exists_sql(mark), params![chunk.session_id, chunk.seq], |_| Ok(()))
                .optional()
                .map_err(backend)?
                .is_some();
            if exists {
                return Ok(ReplayStored::Duplicate);
            }
            let held: i64 = tx
                .query_row(&replays::session_bytes_sql(mark), params![chunk.session_id], |r| r.get(0))
                .map_err(backend)?;
            let bytes = chunk.data.len() as i64;
            if held.saturating_add(bytes) > cap {
                return Ok(ReplayStored::SessionFull);
            }
            tx.execute(
                &replays::insert_sql(mark),
                params![chunk.session_id, chunk.seq, chunk.start_ms, chunk.end_ms, chunk.events, bytes, chunk.data],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(ReplayStored::Stored)
        })
        .await
    }

    async fn replay_sessions(&self, limit: usize) -> Result<Vec<ReplaySummary>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut st = c.prepare(&replays::sessions_sql(|n| format!("?{n}"))).map_err(backend)?;
            let rows = st
                .query_map(params![limit], |r| {
                    Ok(ReplaySummary {
                        session_id: r.get(0)?,
                        start: Timestamp(r.get(1)?),
                        end: Timestamp(r.get(2)?),
                        chunks: r.get::<_, i64>(3)?.max(0) as u64,
                        events: r.get::<_, i64>(4)?.max(0) as u64,
                        bytes: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn replay_chunks(&self, session_id: &str) -> Result<Vec<ReplayChunk>, StoreError> {
        let id = session_id.to_string();
        self.with(move |c| {
            let mut st = c.prepare(&replays::chunks_sql(|n| format!("?{n}"))).map_err(backend)?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok(ReplayChunk {
                        session_id: id.clone(),
                        seq: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                        start_ms: r.get(1)?,
                        end_ms: r.get(2)?,
                        events: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                        data: r.get(4)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn prune_replays(&self, before: Timestamp, max_bytes: u64) -> Result<ReplayPruned, StoreError> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mark = |n| format!("?{n}");
            let expired = c.execute(&replays::expire_sql(mark), params![before.as_millis()]).map_err(backend)? as u64;
            let evicted = c.execute(&replays::evict_sql(mark), params![max]).map_err(backend)? as u64;
            let (sessions, bytes): (i64, i64) =
                c.query_row(replays::TOTALS_SQL, [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
            Ok(ReplayPruned { expired, evicted, sessions: sessions.max(0) as u64, bytes: bytes.max(0) as u64 })
        })
        .await
    }

    async fn save_record(&self, kind: &str, id: &str, at: Timestamp, body: &str) -> Result<(), StoreError> {
        let (kind, id, body) = (kind.to_string(), id.to_string(), body.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO records (kind, id, at_ms, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (kind, id) DO UPDATE SET at_ms = excluded.at_ms, body = excluded.body",
                params![kind, id, at.as_millis(), body],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn records(&self, kind: &str, since: Timestamp, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        let kind = kind.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT id, at_ms, body FROM records WHERE kind = ?1 AND at_ms >= ?2 ORDER BY at_ms, id LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![kind, since.as_millis(), limit as i64], |r| {
                    Ok(StoredRecord { id: r.get(0)?, at: Timestamp(r.get(1)?), body: r.get(2)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn record(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.with(move |c| {
            c.query_row("SELECT id, at_ms, body FROM records WHERE kind = ?1 AND id = ?2", params![kind, id], |r| {
                Ok(StoredRecord { id: r.get(0)?, at: Timestamp(r.get(1)?), body: r.get(2)? })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn prune_records(&self, kind: &str, before: Timestamp) -> Result<u64, StoreError> {
        let kind = kind.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM records WHERE kind = ?1 AND at_ms < ?2", params![kind, before.as_millis()])
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn record_rum_window(&self, start: Timestamp, agent: &str, body: &str) -> Result<(), StoreError> {
        let (agent, body) = (agent.to_string(), body.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO rum_windows (start_ms, agent, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (start_ms, agent) DO UPDATE SET body = excluded.body",
                params![start.as_millis(), agent, body],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn rum_windows(&self, start: Timestamp) -> Result<Vec<(String, String)>, StoreError> {
        self.with(move |c| {
            let mut st =
                c.prepare("SELECT agent, body FROM rum_windows WHERE start_ms = ?1 ORDER BY agent").map_err(backend)?;
            let rows = st.query_map(params![start.as_millis()], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn rum_windows_since(&self, since: Timestamp) -> Result<Vec<(Timestamp, String, String)>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT start_ms, agent, body FROM rum_windows WHERE start_ms >= ?1 ORDER BY start_ms, agent")
                .map_err(backend)?;
            let rows = st
                .query_map(params![since.as_millis()], |r| Ok((Timestamp(r.get(0)?), r.get(1)?, r.get(2)?)))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn prune_rum_windows(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.with(move |c| {
            c.execute("DELETE FROM rum_windows WHERE start_ms < ?1", params![before.as_millis()])
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }
}

/// A trace summary from the first eleven columns ([`TRACE_COLUMNS`]).
fn trace_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<TraceSummary> {
    Ok(TraceSummary {
        trace_id: r.get(0)?,
        start: Timestamp(r.get(1)?),
        duration_ms: r.get(2)?,
        service: r.get(3)?,
        route: r.get(4)?,
        name: r.get(5)?,
        services: r.get(6)?,
        span_count: r.get(7)?,
        error: r.get::<_, i64>(8)? != 0,
        policy: r.get(9)?,
        bytes: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settled_outbox_rows_are_pruned_by_age_and_pending_ones_never() {
        use thorbis_obs_core::engine::{EngineSnapshot, SNAPSHOT_VERSION};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db")).expect("opens");
        let at = Timestamp::from_secs(1_795_000_000);
        let snap = EngineSnapshot { version: SNAPSHOT_VERSION, taken_at: at, alerts: vec![], conditions: vec![] };
        let note = |id: &str| {
            let mut n = crate::cli::test_notification(thorbis_obs_core::rules::Severity::Info);
            n.id = id.to_string();
            n
        };
        let entries: Vec<OutboxEntry> =
            ["a", "b", "c"].iter().map(|id| OutboxEntry { notification: note(id), channel: "hook".into() }).collect();
        store.commit_evaluation(&snap, &entries).await.expect("commit");
        store.record_attempt("a", "hook", &AttemptOutcome::Delivered { at, answer: None }).await.expect("record");
        let later = Timestamp::from_secs(1_795_000_600);
        store
            .record_attempt("b", "hook", &AttemptOutcome::Failed { at: later, error: "400".into() })
            .await
            .expect("record");
        assert_eq!(store.prune_outbox(Timestamp::from_secs(1_795_001_000)).await.expect("prune"), 2);
        let s = store.outbox_stats().await.expect("stats");
        assert_eq!((s.pending, s.delivered, s.failed), (1, 0, 0), "the pending row stays");
    }

    #[tokio::test]
    async fn rum_windows_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&dir.path().join("t.db")).expect("store");
        let (t1, t2) = (Timestamp::from_secs(1_795_000_000), Timestamp::from_secs(1_795_000_060));
        store.record_rum_window(t1, "a", "1").await.expect("write");
        store.record_rum_window(t1, "a", "2").await.expect("rewrite");
        store.record_rum_window(t1, "b", "3").await.expect("write");
        store.record_rum_window(t2, "a", "4").await.expect("write");
        let rows = store.rum_windows(t1).await.expect("read");
        assert_eq!(rows, [("a".to_string(), "2".to_string()), ("b".to_string(), "3".to_string())]);
        let since = store.rum_windows_since(t1).await.expect("since");
        assert_eq!(
            since.iter().map(|(t, a, _)| (t.0, a.as_str())).collect::<Vec<_>>(),
            [(t1.0, "a"), (t1.0, "b"), (t2.0, "a")]
        );
        assert_eq!(store.prune_rum_windows(t2).await.expect("prune"), 2);
        assert_eq!(store.rum_windows(t2).await.expect("read").len(), 1);
    }
}
