//! Session replay chunks as the browser SDK sends them to `POST /v1/replay`: a session's
//! recording (rrweb events) cut into numbered chunks, each naming its session, its sequence
//! number and the time range of its events. The rules here are the ones every chunk must pass
//! before anything is stored; the server reads the body, the store keeps the chunks.
//!
//! Times are checked against the receiver's clock as batches are ([`crate::wire`]): a chunk
//! may end at most [`MAX_CLOCK_SKEW_MS`] after it and start at most [`MAX_EVENT_AGE_MS`]
//! before it (the SDK's offline queue), and covers at most [`MAX_CHUNK_SPAN_MS`].
//!
//! ```
//! use thorbis_obs_core::replay::{ChunkHead, EventHead, check_events};
//! use thorbis_obs_core::time::Timestamp;
//! let now = Timestamp::from_secs(1_800_000_000);
//! let head = ChunkHead { session: "s-1".into(), seq: 0, start_ms: now.0 - 5_000, end_ms: now.0 };
//! assert!(head.validate(now).is_ok());
//! let events = [EventHead { kind: 4, timestamp: (now.0 - 5_000) as f64 }, EventHead { kind: 2, timestamp: now.0 as f64 }];
//! assert_eq!(check_events(&head, &events), Ok(()));
//! ```

use crate::time::Timestamp;
use crate::wire::{MAX_CLOCK_SKEW_MS, MAX_EVENT_AGE_MS, is_id};

/// The longest stretch of time one chunk covers (the SDK sends every few seconds; an on-error
/// buffer holds the last 60 s).
pub const MAX_CHUNK_SPAN_MS: i64 = 10 * 60 * 1000;
/// Chunks of one session, at most (a chunk every 5 s for the SDK's 4 h session cap is 2,880).
pub const MAX_SEQ: u32 = 100_000;
/// Events in one chunk, at most.
pub const MAX_CHUNK_EVENTS: usize = 50_000;
/// How far outside its stated range an event's time may be (the page's clock ticks on while
/// the SDK cuts the chunk).
pub const EVENT_SLACK_MS: f64 = 1_000.0;

/// What a chunk says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkHead {
    /// The RUM session (the SDK's session id).
    pub session: String,
    /// Its place in the session's recording, from 0.
    pub seq: u32,
    /// Its first event's time, epoch ms (the page's clock).
    pub start_ms: i64,
    /// Its last event's time, epoch ms.
    pub end_ms: i64,
}

/// The two fields of an rrweb event every chunk's events must have (the rest is kept as sent).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
pub struct EventHead {
    /// rrweb's event type (0-6: DomContentLoaded .. Plugin).
    #[serde(rename = "type")]
    pub kind: u32,
    /// Epoch ms.
    pub timestamp: f64,
}

/// Why a chunk is refused: the field to blame and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkError {
    /// `session`, `seq`, `start`, `end` or `events[i]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn fail(field: impl Into<String>, message: impl Into<String>) -> ChunkError {
    ChunkError { field: field.into(), message: message.into() }
}

impl ChunkHead {
    /// Checks the id, the sequence number and the time range against the receiver's clock.
    pub fn validate(&self, now: Timestamp) -> Result<(), ChunkError> {
        if !is_id(&self.session) {
            return Err(fail("session", "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"));
        }
        if self.seq > MAX_SEQ {
            return Err(fail("seq", format!("at most {MAX_SEQ} chunks a session")));
        }
        if self.end_ms < self.start_ms {
            return Err(fail("end", "before start"));
        }
        if self.end_ms - self.start_ms > MAX_CHUNK_SPAN_MS {
            return Err(fail("end", format!("a chunk covers at most {} s", MAX_CHUNK_SPAN_MS / 1000)));
        }
        if self.end_ms > now.0.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(fail("end", "later than the receiver's clock allows (5 minutes ahead at most)"));
        }
        if self.start_ms < now.0.saturating_sub(MAX_EVENT_AGE_MS) {
            return Err(fail("start", "older than 24 hours"));
        }
        Ok(())
    }
}

/// Checks a chunk's events: at least one, at most [`MAX_CHUNK_EVENTS`], rrweb's types, times
/// finite and within the chunk's range (give or take [`EVENT_SLACK_MS`]).
pub fn check_events(head: &ChunkHead, events: &[EventHead]) -> Result<(), ChunkError> {
    if events.is_empty() {
        return Err(fail("events", "a chunk holds at least one event"));
    }
    if events.len() > MAX_CHUNK_EVENTS {
        return Err(fail("events", format!("at most {MAX_CHUNK_EVENTS} events a chunk")));
    }
    let (lo, hi) = (head.start_ms as f64 - EVENT_SLACK_MS, head.end_ms as f64 + EVENT_SLACK_MS);
    for (i, e) in events.iter().enumerate() {
        if e.kind > 6 {
            return Err(fail(format!("events[{i}].type"), format!("{} is not an rrweb event type (0-6)", e.kind)));
        }
        if !e.timestamp.is_finite() || e.timestamp < lo || e.timestamp > hi {
            return Err(fail(format!("events[{i}].timestamp"), "outside the chunk's start and end"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u32, start_ms: i64, end_ms: i64) -> ChunkHead {
        ChunkHead { session: "s-1".into(), seq, start_ms, end_ms }
    }

    #[test]
    fn heads_are_checked_against_the_clock() {
        let now = Timestamp::from_secs(1_800_000_000);
        let n = now.0;
        assert_eq!(head(0, n - 1000, n).validate(now), Ok(()));
        let field = |h: ChunkHead| h.validate(now).map_err(|e| e.field);
        assert_eq!(field(ChunkHead { session: "a b".into(), ..head(0, n, n) }), Err("session".into()));
        assert_eq!(field(head(MAX_SEQ + 1, n, n)), Err("seq".into()));
        assert_eq!(field(head(0, n, n - 1)), Err("end".into()));
        assert_eq!(field(head(0, n - MAX_CHUNK_SPAN_MS - 1, n)), Err("end".into()));
        assert_eq!(field(head(0, n, n + MAX_CLOCK_SKEW_MS + 1)), Err("end".into()));
        assert_eq!(field(head(0, n - MAX_EVENT_AGE_MS - 1, n - MAX_EVENT_AGE_MS + 1)), Err("start".into()));
    }

    #[test]
    fn events_must_be_rrweb_events_within_the_range() {
        let h = head(0, 10_000, 20_000);
        let e = |kind, timestamp| EventHead { kind, timestamp };
        assert_eq!(check_events(&h, &[e(4, 10_000.0), e(3, 20_500.0)]), Ok(()));
        let field = |evs: &[EventHead]| check_events(&h, evs).map_err(|e| e.field);
        assert_eq!(field(&[]), Err("events".into()));
        assert_eq!(field(&[e(4, 10_000.0), e(9, 12_000.0)]), Err("events[1].type".into()));
        assert_eq!(field(&[e(4, 5_000.0)]), Err("events[0].timestamp".into()));
        assert_eq!(field(&[e(4, f64::NAN)]), Err("events[0].timestamp".into()));
        assert_eq!(field(&vec![e(3, 15_000.0); MAX_CHUNK_EVENTS + 1]), Err("events".into()));
    }
}
