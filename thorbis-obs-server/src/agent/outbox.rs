//! Delivery workers: one per channel, so a slow receiver never holds up the others. Each
//! takes due rows from the store, sends them, and records the outcome; failures are retried
//! per the channel's [`DeliveryPolicy`].

use super::Shared;
use crate::store::{AttemptOutcome, OutboxRow};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use thorbis_obs_core::AlertChannel;
use thorbis_obs_core::delivery::{DeliveryPolicy, RetryDecision};
use tokio::sync::{Notify, watch};

/// Longest a worker sleeps before looking at the store again.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Delivery counters of one channel.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// Accepted by the receiver.
    pub sent: std::sync::atomic::AtomicU64,
    /// Failed attempts that will be retried.
    pub retried: std::sync::atomic::AtomicU64,
    /// Given up.
    pub failed: std::sync::atomic::AtomicU64,
    /// Sum of send latencies in microseconds (with `sent + retried + failed` attempts).
    pub latency_us: std::sync::atomic::AtomicU64,
}

pub(crate) struct Worker {
    pub(crate) channel: Arc<dyn AlertChannel>,
    pub(crate) policy: DeliveryPolicy,
    pub(crate) wake: Arc<Notify>,
    pub(crate) counters: Arc<ChannelCounters>,
    pub(crate) min_interval: Option<Duration>,
}

impl Worker {
    pub(crate) async fn run(self, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
        let name = self.channel.name().to_string();
        let mut last_send: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            // Only the leader delivers: with several agents on one store, followers stand by.
            if !shared.leader.load(Ordering::Relaxed) {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            self.deliver_unstored(&shared, &mut last_send).await;
            let rows = match shared.hub.store().pending(&name, 32).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(channel = %name, error = %e, "cannot read the outbox");
                    Vec::new()
                }
            };
            // Deliver in the order produced; a row waiting for its retry holds the rest (the
            // same receiver would refuse them too), so one alert's notifications never
            // overtake each other.
            let mut wait = if rows.is_empty() { IDLE_POLL } else { Duration::ZERO };
            for row in rows {
                let now = shared.hub.now();
                if row.next_attempt_at > now {
                    wait = row.next_attempt_at.since(now).min(IDLE_POLL);
                    break;
                }
                if let (Some(gap), Some(last)) = (self.min_interval, last_send) {
                    tokio::time::sleep_until(last + gap).await;
                }
                last_send = Some(tokio::time::Instant::now());
                // In-flight sends finish even when a stop arrives; the agent bounds the wait.
                let settled = self.deliver(&shared, row).await;
                if *stop.borrow() {
                    return;
                }
                if !settled {
                    // Waiting for a retry (the next read sleeps until it is due), or the store
                    // refused the update: pause briefly rather than spin.
                    wait = Duration::from_millis(100);
                    break;
                }
            }
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Sends one row and records the outcome; false when it waits for a retry.
    async fn deliver(&self, shared: &Shared, row: OutboxRow) -> bool {
        let name = self.channel.name();
        let n = &row.notification;
        let outcome = self.attempt(shared, n, row.attempts, row.first_attempt_at).await;
        let settled = !matches!(outcome, AttemptOutcome::Retry { .. });
        if let Err(e) = shared.hub.store().record_attempt(&n.id, name, &outcome).await {
            // The row stays pending and is retried: at-least-once, never lost.
            tracing::error!(channel = name, id = %n.id, error = %e, "cannot record the delivery attempt");
            return false;
        }
        settled
    }

    /// Sends what the store could not take (see [`super::unstored`]), due ones first come.
    async fn deliver_unstored(&self, shared: &Shared, last_send: &mut Option<tokio::time::Instant>) {
        let name = self.channel.name();
        while let Some(t) = shared.unstored.take(name, shared.hub.now()) {
            if let (Some(gap), Some(last)) = (self.min_interval, *last_send) {
                tokio::time::sleep_until(last + gap).await;
            }
            *last_send = Some(tokio::time::Instant::now());
            tracing::warn!(channel = name, id = %t.notification.id, "the store is down: delivering from memory");
            let outcome = self.attempt(shared, &t.notification, t.attempts, t.first_attempt_at).await;
            let (at, next) = match outcome {
                AttemptOutcome::Retry { at, next_at, .. } => (at, super::unstored::Outcome::RetryAt(next_at)),
                AttemptOutcome::Delivered { at, .. } | AttemptOutcome::Failed { at, .. } => {
                    (at, super::unstored::Outcome::Settled)
                }
            };
            shared.unstored.sent(&t.notification.id, name, at, next);
        }
    }

    /// One send of `n` (its `attempts` so far, the first at `first`), counted and logged; the
    /// outcome says what the channel's policy makes of a failure.
    async fn attempt(
        &self,
        shared: &Shared,
        n: &thorbis_obs_core::engine::Notification,
        attempts: u32,
        first: Option<thorbis_obs_core::time::Timestamp>,
    ) -> AttemptOutcome {
        let name = self.channel.name();
        let started = tokio::time::Instant::now();
        let result = self.channel.send(n).await;
        let us = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.counters.latency_us.fetch_add(us, Ordering::Relaxed);
        let at = shared.hub.now();
        match result {
            Ok(d) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(channel = name, id = %n.id, rule = %n.rule_id, kind = n.kind.as_str(), "notification delivered");
                AttemptOutcome::Delivered { at, answer: d.answer }
            }
            Err(e) => {
                let first = first.unwrap_or(at);
                match self.policy.decide(attempts + 1, first, at, &e, crate::clock::random_unit()) {
                    RetryDecision::RetryAt(next_at) => {
                        self.counters.retried.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(channel = name, id = %n.id, error = %e, retry_in_ms = next_at.as_millis() - at.as_millis(), "delivery failed; will retry");
                        AttemptOutcome::Retry { at, next_at, error: e.to_string() }
                    }
                    RetryDecision::GiveUp(reason) => {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(channel = name, id = %n.id, rule = %n.rule_id, error = %reason, "delivery failed for good");
                        AttemptOutcome::Failed { at, error: reason }
                    }
                }
            }
        }
    }
}
