//! Engine invariants under random timelines (proptest): no resolve without firing, escalation
//! only upward, nothing sent while suppressed, unique ids, and snapshot/restore changes
//! nothing.

use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use thorbis_obs::core::engine::{Notification, NotificationKind, RuleEngine};
use thorbis_obs::core::metrics::{Labels, Sample};
use thorbis_obs::core::rules::{AlertRule, NoDataPolicy, Severity, packs};
use thorbis_obs::core::time::{HumanDuration, Timestamp};

const T0: i64 = 1_795_000_000;

fn at(min: u64) -> Timestamp {
    Timestamp::from_secs(T0).plus(Duration::from_secs(min * 60))
}

fn rules() -> Vec<AlertRule> {
    let mut v = packs::spec_rules();
    let mut held = v[0].clone();
    held.id = "held-latency".into();
    held.name = "Held Latency".into();
    held.pending_for = HumanDuration::from_secs(180);
    held.keep_firing_for = HumanDuration::from_secs(120);
    held.no_data = NoDataPolicy::KeepLast;
    held.repeat_interval = Some(HumanDuration::from_secs(900));
    held.suppression_rules.clear();
    v.push(held);
    v
}

#[derive(Clone, Debug)]
struct Timeline {
    /// Per minute, per series: None (no sample) or the latency.
    values: Vec<[Option<f64>; 3]>,
    /// deployment_in_progress switched on at this minute, off at the second (if any).
    deploy: Option<(u64, Option<u64>)>,
    restore_at: u64,
}

fn timeline() -> impl Strategy<Value = Timeline> {
    let value = prop_oneof![3 => Just(Some(100.0)), 4 => Just(Some(3000.0)), 1 => Just(None)];
    (
        prop::collection::vec([value.clone(), value.clone(), value], 20..90),
        prop::option::of((0u64..60, prop::option::of(1u64..40))),
        0u64..90,
    )
        .prop_map(|(values, deploy, restore_at)| Timeline {
            deploy: deploy.map(|(s, d)| (s, d.map(|d| s + d))),
            restore_at: restore_at % values.len() as u64,
            values,
        })
}

fn series(i: usize) -> Labels {
    Labels::new().with("service", "api").with("pod", format!("pod-{i}"))
}

fn feed(e: &mut RuleEngine, minute: u64, row: &[Option<f64>; 3], log: &mut Vec<Sample>) {
    for (i, v) in row.iter().enumerate() {
        if let Some(v) = v {
            for k in 0..3 {
                let s = Sample::new(
                    packs::HTTP_REQUEST_DURATION,
                    series(i),
                    *v,
                    at(minute).minus(Duration::from_secs(40 - k * 20)),
                );
                e.ingest(&s).expect("valid");
                log.push(s);
            }
        }
    }
}

fn deploy_events(e: &mut RuleEngine, t: &Timeline, m: u64) {
    if let Some((on, off)) = t.deploy {
        if m == on {
            e.activate_condition("deployment_in_progress", at(m), None);
        }
        if off == Some(m) {
            e.deactivate_condition("deployment_in_progress");
        }
    }
}

fn muted_at(t: &Timeline, m: u64) -> bool {
    match t.deploy {
        // The rule's suppression lasts 30m from activation, or until switched off.
        Some((on, off)) => m >= on && m < on + 30 && off.is_none_or(|o| m < o),
        None => false,
    }
}

fn run(t: &Timeline, restart: bool) -> Vec<(u64, Notification)> {
    let mut e = RuleEngine::new(rules()).expect("valid");
    let mut log = Vec::new();
    let mut out = Vec::new();
    for (m, row) in t.values.iter().enumerate() {
        let m = m as u64;
        if restart && m == t.restore_at {
            let json = serde_json::to_string(&e.snapshot(at(m))).expect("serialises");
            let mut fresh = RuleEngine::new(rules()).expect("valid");
            fresh.restore(serde_json::from_str(&json).expect("parses"), at(m)).expect("restores");
            // The sources would re-collect: replay what the windows held.
            for s in &log {
                fresh.ingest(s).expect("valid");
            }
            e = fresh;
        }
        deploy_events(&mut e, t, m);
        feed(&mut e, m, row, &mut log);
        out.extend(e.evaluate(at(m)).into_iter().map(|n| (m, n)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn notification_sequences_are_well_formed(t in timeline()) {
        let notes = run(&t, false);
        let mut ids = std::collections::HashSet::new();
        // Per alert: Some(severity announced) while an episode is open.
        let mut open: HashMap<String, Severity> = HashMap::new();
        for (m, n) in &notes {
            prop_assert!(ids.insert(n.id.clone()), "duplicate id {}", n.id);
            if n.rule_id == "high-response-time" {
                prop_assert!(!muted_at(&t, *m), "sent at minute {m} while suppressed: {n:?}");
            }
            let key = format!("{}/{}", n.rule_id, n.fingerprint);
            match n.kind {
                NotificationKind::Firing => {
                    prop_assert!(!open.contains_key(&key), "firing twice without resolve at {m}");
                    open.insert(key, n.severity);
                }
                NotificationKind::Escalated => {
                    let prev = open.get(&key).copied();
                    prop_assert!(prev.is_some_and(|p| n.severity > p), "escalation not upward at {m}: {prev:?} -> {}", n.severity);
                    open.insert(key, n.severity);
                }
                NotificationKind::Repeat => {
                    prop_assert_eq!(open.get(&key).copied(), Some(n.severity), "repeat of an unannounced alert at {}", m);
                }
                NotificationKind::Resolved => {
                    prop_assert!(open.remove(&key).is_some(), "resolve without firing at {m}");
                    prop_assert!(n.ends_at.is_some());
                }
                // These timelines acknowledge nothing.
                NotificationKind::Acknowledged => prop_assert!(false, "an acknowledgement nobody made at {m}"),
            }
        }
    }

    #[test]
    fn snapshot_and_restore_change_nothing(t in timeline()) {
        let straight = run(&t, false);
        let restarted = run(&t, true);
        prop_assert_eq!(straight, restarted);
    }
}
