//! The evaluation loop: while this agent leads, evaluate the rules every interval and commit
//! the notifications with the state that produced them, before anything is sent.

use super::Shared;
use crate::store::OutboxEntry;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// Delivered and failed outbox rows are kept this long (the alerts API shows recent failures).
const OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// The longest wait for the store's leadership answer (shorter when the interval is).
const LEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the leader prunes the outbox.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The default leader lease on a shared store: three evaluation intervals.
pub(super) fn default_lease(interval: Duration) -> Duration {
    interval.saturating_mul(3)
}

/// Evaluates on an interval while this agent leads; commits notifications and state together.
///
/// Leadership is renewed every interval (a lease of `lease` on a shared store). A leader that
/// cannot reach the store keeps leading: no other agent can take the lease over while the store
/// is down, and the notifications go out from memory (see `unstored`).
pub(super) async fn evaluate_loop(
    shared: Arc<Shared>,
    interval: Duration,
    lease: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut carry: Vec<OutboxEntry> = Vec::new();
    let mut was_leader = false;
    let mut last_prune: Option<thorbis_obs_core::time::Timestamp> = None;
    // Acknowledgements a standby stored recently are applied when this agent leads.
    let mut acks_since = shared.hub.now().minus(super::silences::ACK_RETENTION);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let asked = tokio::time::timeout(interval.min(LEAD_TIMEOUT), shared.hub.store().try_lead(lease)).await;
        let leader = match asked {
            Ok(Ok(l)) => l,
            failed => {
                shared.store_ok.store(false, Ordering::Relaxed);
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", interval.min(LEAD_TIMEOUT)),
                };
                if was_leader {
                    tracing::error!(%error, "cannot reach the store to renew the leader lease; leading on from memory");
                } else {
                    tracing::error!(%error, "cannot reach the store for the leader lease");
                }
                was_leader
            }
        };
        if leader && !was_leader {
            // Becoming leader (at start, or taking over): resume from the stored state.
            match shared.hub.store().load_snapshot().await {
                Ok(Some(snap)) => {
                    let now = shared.hub.now();
                    match shared.hub.engine().restore(snap, now) {
                        Ok(r) => tracing::info!(restored = r.restored, dropped = ?r.dropped, "alert state restored"),
                        Err(e) => tracing::error!(error = %e, "cannot restore the alert state"),
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the alert state; not leading until it can be read");
                    continue;
                }
            }
            tracing::info!("leading: evaluating rules and sending notifications");
        } else if !leader && was_leader {
            tracing::warn!("lost the leader lock: standing by");
        }
        was_leader = leader;
        shared.leader.store(leader, Ordering::Relaxed);
        if !leader {
            continue;
        }
        super::silences::sync(&shared, &mut acks_since).await;
        commit_tick(&shared, &mut carry).await;
        let now = shared.hub.now();
        if last_prune.is_none_or(|t| now.since(t) >= PRUNE_EVERY) {
            last_prune = Some(now);
            match shared.hub.store().prune_outbox(now.minus(OUTBOX_RETENTION)).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "settled outbox rows pruned"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
            }
            let store = shared.hub.store();
            let ended = store.prune_records("silence", now.minus(super::silences::SILENCE_RETENTION)).await;
            let acked = store.prune_records("ack", now.minus(super::silences::ACK_RETENTION)).await;
            if let Err(e) = ended.and(acked) {
                tracing::warn!(error = %e, "cannot prune silences and acknowledgements");
            }
            if let Err(e) = store.prune_records(crate::hub::AUDIT_KIND, now.minus(shared.audit_retention)).await {
                tracing::warn!(error = %e, "cannot prune the audit trail");
            }
        }
    }
    if was_leader {
        // Persist the latest state (and anything not yet committed) before exiting.
        let snap = shared.hub.engine().snapshot(shared.hub.now());
        let batch = shared.unstored.claim_for_commit(&mut carry);
        if let Err(e) = shared.hub.store().commit_evaluation(&snap, &batch).await {
            tracing::error!(error = %e, "cannot persist the alert state at shutdown");
        }
        if let Err(e) = shared.hub.store().release_lead().await {
            tracing::warn!(error = %e, "cannot release the leader lease; another agent takes over when it runs out");
        }
    }
}

async fn commit_tick(shared: &Shared, carry: &mut Vec<OutboxEntry>) {
    let now = shared.hub.now();
    let (notes, snap) = {
        let mut e = shared.hub.engine();
        let notes = e.evaluate(now);
        (notes, e.snapshot(now))
    };
    for n in notes {
        let mut seen = BTreeSet::new();
        for ch in &n.channels {
            let target = shared.aliases.get(ch).unwrap_or(ch);
            if shared.wakers.contains_key(target) && seen.insert(target.clone()) {
                carry.push(OutboxEntry { notification: n.clone(), channel: target.clone() });
            }
        }
    }
    // What a worker delivered from memory while the store was down is not committed again.
    let batch = shared.unstored.claim_for_commit(carry);
    let committed = shared.hub.store().commit_evaluation(&snap, &batch).await;
    // `/readyz` and `thorbis_store_up` say whether the last commit went through.
    shared.store_ok.store(committed.is_ok(), Ordering::Relaxed);
    shared.unstored.after_commit(&batch, committed.is_ok(), carry, now);
    if let Err(e) = &committed {
        // The notifications stay in the carry, written with the next evaluation that commits;
        // meanwhile the workers deliver them from memory.
        tracing::error!(error = %e, pending = carry.len(), "cannot commit the evaluation; will retry");
    }
    let channels: BTreeSet<&String> = batch.iter().map(|e| &e.channel).collect();
    for c in channels {
        if let Some(w) = shared.wakers.get(c) {
            w.notify_one();
        }
    }
}
