//! Session replay chunks: a row per chunk (session, sequence number, time range, the rrweb
//! events as one gzip blob), keyed by (session, sequence number) so a chunk the SDK sent twice
//! is kept once and chunks arriving out of order are read back in order. The SQL both backends
//! run is built here.

use thorbis_obs_core::time::Timestamp;

/// One chunk as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayChunk {
    /// The RUM session.
    pub session_id: String,
    /// Its place in the session's recording.
    pub seq: u32,
    /// Its first and last event's times, epoch ms.
    pub start_ms: i64,
    /// See `start_ms`.
    pub end_ms: i64,
    /// Its events.
    pub events: u32,
    /// The events, a JSON array, gzip-compressed.
    pub data: Vec<u8>,
}

/// What became of a chunk handed to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayStored {
    /// Kept.
    Stored,
    /// A chunk of that session and number is kept already: nothing written.
    Duplicate,
    /// The session holds its byte cap already (or would with this chunk): nothing written.
    SessionFull,
}

/// A session with replay, for the list.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplaySummary {
    /// The RUM session.
    pub session_id: String,
    /// Its first chunk's start.
    pub start: Timestamp,
    /// Its last chunk's end.
    pub end: Timestamp,
    /// Chunks kept.
    pub chunks: u64,
    /// Events kept.
    pub events: u64,
    /// Compressed bytes kept.
    pub bytes: u64,
}

/// Whether (session, seq) is kept.
pub(crate) fn exists_sql(mark: fn(usize) -> String) -> String {
    format!("SELECT 1 FROM replay_chunks WHERE session_id = {} AND seq = {}", mark(1), mark(2))
}

/// A session's bytes kept (cast: PostgreSQL's SUM of BIGINT is NUMERIC).
pub(crate) fn session_bytes_sql(mark: fn(usize) -> String) -> String {
    format!("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM replay_chunks WHERE session_id = {}", mark(1))
}

/// Insert one chunk: session, seq, start, end, events, bytes, data.
pub(crate) fn insert_sql(mark: fn(usize) -> String) -> String {
    format!(
        "INSERT INTO replay_chunks (session_id, seq, start_ms, end_ms, events, bytes, data) VALUES ({}, {}, {}, {}, \
         {}, {}, {})",
        mark(1),
        mark(2),
        mark(3),
        mark(4),
        mark(5),
        mark(6),
        mark(7)
    )
}

/// Sessions with replay, the latest first, at most `mark(1)`.
pub(crate) fn sessions_sql(mark: fn(usize) -> String) -> String {
    format!(
        "SELECT session_id, MIN(start_ms), MAX(end_ms), COUNT(*), CAST(SUM(events) AS BIGINT), CAST(SUM(bytes) AS \
         BIGINT) FROM replay_chunks GROUP BY session_id ORDER BY MAX(end_ms) DESC, session_id LIMIT {}",
        mark(1)
    )
}

/// A session's chunks in order: seq, start, end, data.
pub(crate) fn chunks_sql(mark: fn(usize) -> String) -> String {
    format!("SELECT seq, start_ms, end_ms, events, data FROM replay_chunks WHERE session_id = {} ORDER BY seq", mark(1))
}

/// Deletes the sessions whose last chunk ended before `mark(1)`.
pub(crate) fn expire_sql(mark: fn(usize) -> String) -> String {
    format!(
        "DELETE FROM replay_chunks WHERE session_id IN (SELECT session_id FROM replay_chunks GROUP BY session_id \
         HAVING MAX(end_ms) < {})",
        mark(1)
    )
}

/// Deletes whole sessions, the ones that ended first, until at most `mark(1)` bytes are kept:
/// every session the running total (latest first) takes past the cap.
pub(crate) fn evict_sql(mark: fn(usize) -> String) -> String {
    format!(
        "DELETE FROM replay_chunks WHERE session_id IN (SELECT session_id FROM (SELECT session_id, SUM(SUM(bytes)) \
         OVER (ORDER BY MAX(end_ms) DESC, session_id ROWS UNBOUNDED PRECEDING) AS total FROM replay_chunks GROUP BY \
         session_id) newest WHERE total > CAST({} AS BIGINT))",
        mark(1)
    )
}

/// Sessions and bytes kept.
pub(crate) const TOTALS_SQL: &str =
    "SELECT COUNT(DISTINCT session_id), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM replay_chunks";

/// What a prune removed: chunks past the retention, chunks of sessions evicted for the cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayPruned {
    /// Chunks of sessions that ended before the retention.
    pub expired: u64,
    /// Chunks of the oldest sessions, removed for the total cap.
    pub evicted: u64,
    /// Sessions kept after.
    pub sessions: u64,
    /// Bytes kept after.
    pub bytes: u64,
}
