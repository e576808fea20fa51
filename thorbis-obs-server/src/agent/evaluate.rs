//! The evaluation loop: while this agent leads, evaluate the rules every interval and commit
//! the notifications with the state that produced them, before anything is sent.

use super::Shared;
use crate::store::OutboxEntry;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// Evaluates on an interval while this agent leads; commits notifications and state together.
pub(super) async fn evaluate_loop(shared: Arc<Shared>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut carry: Vec<OutboxEntry> = Vec::new();
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let leader = match shared.hub.store().try_lead().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the store for the leader lock");
                false
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
        commit_tick(&shared, &mut carry).await;
    }
    if was_leader {
        // Persist the latest state (and anything not yet committed) before exiting.
        let snap = shared.hub.engine().snapshot(shared.hub.now());
        if let Err(e) = shared.hub.store().commit_evaluation(&snap, &carry).await {
            tracing::error!(error = %e, "cannot persist the alert state at shutdown");
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
    match shared.hub.store().commit_evaluation(&snap, carry).await {
        Ok(()) => {
            let channels: BTreeSet<&String> = carry.iter().map(|e| &e.channel).collect();
            for c in channels {
                if let Some(w) = shared.wakers.get(c) {
                    w.notify_one();
                }
            }
            carry.clear();
        }
        // The notifications stay in memory and are written with the next evaluation.
        Err(e) => tracing::error!(error = %e, pending = carry.len(), "cannot commit the evaluation; will retry"),
    }
}
