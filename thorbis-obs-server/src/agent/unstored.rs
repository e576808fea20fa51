//! Notifications the store could not take. When an evaluation's commit fails, its
//! notifications stay in the evaluation's carry (committed with the next one that succeeds)
//! and are also handed here, so the channel workers deliver them while the store is down: a
//! database outage does not silence the pager. At most [`MAX_UNSTORED`] are held; more are
//! counted (`thorbis_notifications_unstored_dropped_total`) and wait for the store.
//!
//! A notification goes out once, from the outbox or from here, never both: each entry is in
//! one lane at a time, and the evaluation loop claims what it commits (`Committing`) while a
//! worker claims what it sends (`Sending`). A notification settled here (delivered, or given up
//! by the channel's policy) is dropped from the carry instead of being committed.

use crate::store::OutboxEntry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use thorbis_obs_core::engine::Notification;
use thorbis_obs_core::time::Timestamp;

/// Notifications held in memory at most.
pub(crate) const MAX_UNSTORED: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    /// Waiting for a worker (or for its retry time).
    Queued,
    /// In a commit the evaluation loop is making.
    Committing,
    /// Being sent by a worker.
    Sending,
    /// Delivered, or given up: not to be committed.
    Settled,
}

#[derive(Debug)]
struct Entry {
    notification: Notification,
    lane: Lane,
    attempts: u32,
    first_attempt_at: Option<Timestamp>,
    next_at: Timestamp,
}

/// One notification a worker took: send it, then report with [`Unstored::sent`].
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) notification: Notification,
    pub(crate) attempts: u32,
    pub(crate) first_attempt_at: Option<Timestamp>,
}

/// What happened to a notification a worker sent.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Delivered or given up.
    Settled,
    /// Try again at this time.
    RetryAt(Timestamp),
}

/// The notifications held, keyed by (notification id, channel).
#[derive(Debug, Default)]
pub(crate) struct Unstored {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
    /// Notifications that did not fit.
    pub(crate) dropped: AtomicU64,
}

fn key(e: &OutboxEntry) -> (String, String) {
    (e.notification.id.clone(), e.channel.clone())
}

impl Unstored {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before a commit: drops from `carry` what was settled here, and returns what to commit
    /// now (everything else but what a worker is sending, which waits for the next commit).
    pub(crate) fn claim_for_commit(&self, carry: &mut Vec<OutboxEntry>) -> Vec<OutboxEntry> {
        let mut held = self.lock();
        if held.is_empty() {
            return carry.clone();
        }
        carry.retain(|e| match held.get(&key(e)).map(|x| x.lane) {
            Some(Lane::Settled) => {
                held.remove(&key(e));
                false
            }
            _ => true,
        });
        let mut now = Vec::with_capacity(carry.len());
        for e in carry.iter() {
            match held.get_mut(&key(e)) {
                Some(x) if x.lane == Lane::Sending => {}
                Some(x) => {
                    x.lane = Lane::Committing;
                    now.push(e.clone());
                }
                None => now.push(e.clone()),
            }
        }
        now
    }

    /// After a commit of `committed`: on success the outbox has them (they leave memory and
    /// the carry); on failure they are held here for the workers (as far as there is room).
    pub(crate) fn after_commit(
        &self,
        committed: &[OutboxEntry],
        ok: bool,
        carry: &mut Vec<OutboxEntry>,
        at: Timestamp,
    ) {
        let mut held = self.lock();
        if ok {
            for e in committed {
                held.remove(&key(e));
            }
            carry.retain(|e| !committed.contains(e));
            return;
        }
        for e in committed {
            let room = held.len() < MAX_UNSTORED;
            match held.get_mut(&key(e)) {
                Some(x) => x.lane = Lane::Queued,
                None if room => {
                    held.insert(
                        key(e),
                        Entry {
                            notification: e.notification.clone(),
                            lane: Lane::Queued,
                            attempts: 0,
                            first_attempt_at: None,
                            next_at: at,
                        },
                    );
                }
                None => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The oldest notification for `channel` due at `now`, claimed for sending.
    pub(crate) fn take(&self, channel: &str, now: Timestamp) -> Option<Taken> {
        let mut held = self.lock();
        let (_, x) = held.iter_mut().find(|((_, c), x)| c == channel && x.lane == Lane::Queued && x.next_at <= now)?;
        x.lane = Lane::Sending;
        Some(Taken { notification: x.notification.clone(), attempts: x.attempts, first_attempt_at: x.first_attempt_at })
    }

    /// Reports a send of what [`Unstored::take`] gave.
    pub(crate) fn sent(&self, id: &str, channel: &str, at: Timestamp, outcome: Outcome) {
        let mut held = self.lock();
        let Some(x) = held.get_mut(&(id.to_string(), channel.to_string())) else { return };
        x.attempts += 1;
        x.first_attempt_at.get_or_insert(at);
        match outcome {
            Outcome::Settled => x.lane = Lane::Settled,
            Outcome::RetryAt(next) => {
                x.lane = Lane::Queued;
                x.next_at = next;
            }
        }
    }
}
