//! Session timelines: what a browser session did (actions, vitals, errors, business events,
//! journey steps, conversions, the traces its requests started). The collector hands over
//! events; they are kept as chunks, one row per session per write (its events as one JSON
//! array), so a busy collector writes a row per active session every few seconds instead of a
//! row per event. A reader gets the session's chunks in time order, flattened. The SQL both
//! backends run is built here.

use super::StoreError;
use thorbis_obs_core::time::Timestamp;

/// One event of a session's timeline.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionEvent {
    /// The RUM session.
    pub session_id: String,
    /// When it happened (the collector's clock).
    pub at: Timestamp,
    /// The page view it happened in.
    pub view_id: String,
    /// The view's route (else its URL).
    pub route: String,
    /// `action`, `vital`, `error`, `business`, `journey`, `conversion` or `span`.
    pub kind: String,
    /// What: the action's name, the vital's name, the error's message, the span's name.
    pub name: String,
    /// A short detail: a vital's value and rating, a span's duration and status.
    pub detail: String,
    /// The trace it started or broke, 32 hex digits; empty when none.
    pub trace_id: String,
}

/// A session's events of one write: (session, first at, last at, how many, JSON array).
pub(crate) type Chunk = (String, i64, i64, i64, String);

/// `events` grouped by session, one chunk each.
pub(crate) fn chunks(events: &[SessionEvent]) -> Result<Vec<Chunk>, StoreError> {
    let mut by: std::collections::BTreeMap<&str, Vec<&SessionEvent>> = std::collections::BTreeMap::new();
    for e in events {
        by.entry(e.session_id.as_str()).or_default().push(e);
    }
    by.into_iter()
        .map(|(session, evs)| {
            let first = evs.iter().map(|e| e.at.as_millis()).min().unwrap_or(0);
            let last = evs.iter().map(|e| e.at.as_millis()).max().unwrap_or(0);
            let json = serde_json::to_string(&evs).map_err(|e| StoreError::Backend(format!("timeline: {e}")))?;
            Ok((session.to_string(), first, last, evs.len() as i64, json))
        })
        .collect()
}

/// The events of a session's chunks (their JSON arrays), in time order, the first `limit`.
pub(crate) fn flatten(arrays: impl IntoIterator<Item = String>, limit: usize) -> Result<Vec<SessionEvent>, StoreError> {
    let mut out = Vec::new();
    for a in arrays {
        let evs: Vec<SessionEvent> =
            serde_json::from_str(&a).map_err(|e| StoreError::Corrupt(format!("session timeline chunk: {e}")))?;
        out.extend(evs);
    }
    // Stable: events of one time keep the order they were written in.
    out.sort_by_key(|e| e.at);
    out.truncate(limit);
    Ok(out)
}

/// Insert one chunk (the five values of a [`Chunk`]).
pub(crate) fn insert_sql(mark: fn(usize) -> String) -> String {
    format!(
        "INSERT INTO session_events (session_id, start_ms, end_ms, events, data) VALUES ({}, {}, {}, {}, {})",
        mark(1),
        mark(2),
        mark(3),
        mark(4),
        mark(5)
    )
}

/// A session's chunks in time order (their JSON arrays), as many as hold the first `mark(2)`
/// events: a chunk is read only while the ones before it hold fewer (cast: PostgreSQL's SUM of
/// BIGINT is NUMERIC).
pub(crate) fn timeline_sql(mark: fn(usize) -> String) -> String {
    format!(
        "SELECT data FROM (SELECT data, start_ms, CAST(SUM(events) OVER (ORDER BY start_ms ROWS UNBOUNDED \
         PRECEDING) AS BIGINT) - events AS before FROM session_events WHERE session_id = {}) chunks WHERE before < {} \
         ORDER BY start_ms",
        mark(1),
        mark(2)
    )
}

/// Deletes the oldest chunks beyond `mark(1)` events in all, by their last event: every chunk
/// that ended no later than the newest one that brings the running total past the cap (cast:
/// PostgreSQL's SUM of BIGINT is NUMERIC).
pub(crate) fn evict_sql(mark: fn(usize) -> String) -> String {
    format!(
        "DELETE FROM session_events WHERE end_ms <= (SELECT MAX(end_ms) FROM (SELECT end_ms, SUM(events) OVER \
         (ORDER BY end_ms DESC) AS total FROM session_events) newest WHERE total > CAST({} AS BIGINT))",
        mark(1)
    )
}
