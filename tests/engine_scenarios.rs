//! Engine behaviour that promtool files cannot express: notifications, suppression,
//! maintenance windows, repeats, no-data policies, restarts and bad input.

use std::time::Duration;
use thorbis_obs::core::engine::{
    AckError, AlertState, EngineSnapshot, MaintenanceWindow, Notification, NotificationKind, RuleEngine, Schedule,
    Silence, SilenceState,
};
use thorbis_obs::core::metrics::{Labels, Sample, SampleError};
use thorbis_obs::core::rules::{NoDataPolicy, packs};
use thorbis_obs::core::time::{HumanDuration, Timestamp};

const T0: i64 = 1_795_000_000;

fn at(min: u64) -> Timestamp {
    Timestamp::from_secs(T0).plus(Duration::from_secs(min * 60))
}

fn latency(engine: &mut RuleEngine, minute: u64, value: f64) {
    let labels = Labels::new().with("service", "api");
    for k in 0..4 {
        let t = at(minute).minus(Duration::from_secs(45 - k * 15));
        engine.ingest(&Sample::new(packs::HTTP_REQUEST_DURATION, labels.clone(), value, t)).expect("valid");
    }
}

/// Drives the spec pack with one latency value per minute; returns (minute, notification).
fn run(engine: &mut RuleEngine, minutes: std::ops::Range<u64>, value: impl Fn(u64) -> f64) -> Vec<(u64, Notification)> {
    let mut out = Vec::new();
    for m in minutes {
        latency(engine, m, value(m));
        out.extend(engine.evaluate(at(m)).into_iter().map(|n| (m, n)));
    }
    out
}

fn kinds(v: &[(u64, Notification)]) -> Vec<(u64, NotificationKind, &str)> {
    v.iter().map(|(m, n)| (*m, n.kind, n.severity.as_str())).collect()
}

#[test]
fn ladder_notifies_each_rung_once_and_resolve_reaches_every_channel() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let notes = run(&mut e, 0..60, |m| if (5..40).contains(&m) { 3000.0 } else { 100.0 });
    use NotificationKind::*;
    assert_eq!(
        kinds(&notes),
        vec![(8, Firing, "warning"), (18, Escalated, "error"), (28, Escalated, "critical"), (41, Resolved, "critical")]
    );
    assert_eq!(notes[1].1.channels, ["slack", "email", "sms"]);
    assert_eq!(notes[2].1.channels, ["slack", "email", "sms", "pagerduty"]);
    assert_eq!(notes[3].1.channels, ["email", "pagerduty", "slack", "sms"]);
    assert_eq!(notes[3].1.ends_at, Some(at(41)));
    let ids: std::collections::HashSet<&str> = notes.iter().map(|(_, n)| n.id.as_str()).collect();
    assert_eq!(ids.len(), notes.len(), "ids are unique");
    assert!(notes.iter().all(|(_, n)| n.fingerprint == notes[0].1.fingerprint));
}

#[test]
fn an_acknowledgement_stops_the_ladder_and_the_resolve_still_reaches_everyone() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let slow = |m: u64| if (5..40).contains(&m) { 3000.0 } else { 100.0 };
    let mut notes = run(&mut e, 0..12, slow);
    let fp = notes[0].1.fingerprint.clone();
    assert_eq!(e.acknowledge("0000", "ana", at(12)), Err(AckError::NotFound));
    let ack = e.acknowledge(&fp, "ana", at(12)).expect("firing: acknowledged");
    assert_eq!(ack.by, "ana");
    assert!(matches!(e.acknowledge(&fp, "ben", at(13)), Err(AckError::Already(a)) if a.by == "ana"));
    assert_eq!(e.alerts(at(12))[0].acknowledged.as_ref().map(|a| a.by.as_str()), Some("ana"));
    notes.extend(run(&mut e, 12..60, slow));
    use NotificationKind::*;
    // No error (SMS) or critical (PagerDuty) rung after the ack; the ack told to who heard.
    assert_eq!(kinds(&notes), vec![(8, Firing, "warning"), (12, Acknowledged, "warning"), (41, Resolved, "critical")]);
    assert_eq!(notes[1].1.annotations.get("acknowledged_by").map(String::as_str), Some("ana"));
    assert_eq!(notes[1].1.channels, ["email", "slack"]);
    assert_eq!(notes[2].1.channels, ["email", "slack"], "the resolve goes where the alert was announced");
    // A new episode starts unacknowledged.
    let again = run(&mut e, 60..70, |_| 3000.0);
    assert_eq!(kinds(&again), vec![(63, Firing, "warning")]);
    let pending = RuleEngine::new(packs::spec_rules()).expect("valid").acknowledge(&fp, "x", at(0));
    assert_eq!(pending, Err(AckError::NotFound));
}

#[test]
fn a_silence_mutes_matching_alerts_and_what_is_owed_goes_out_when_it_ends() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let silence = |matchers: &str, start: u64, end: u64| Silence {
        id: "s1".into(),
        matchers: serde_json::from_str(matchers).expect("matchers"),
        starts_at: at(start),
        ends_at: at(end),
        created_by: "ana".into(),
        comment: "migrating the database".into(),
    };
    // A silence on another service mutes nothing; this one mutes minutes 2 to 20.
    e.set_silences(
        vec![
            silence(r#"["service=\"billing\""]"#, 0, 90),
            silence(r#"["alertname=~\"High.*\"", "service=\"api\""]"#, 2, 20),
        ],
        at(0),
    );
    assert_eq!(e.silences()[1].state(at(1)), SilenceState::Pending);
    let notes = run(&mut e, 0..30, |m| if m >= 5 { 3000.0 } else { 100.0 });
    use NotificationKind::*;
    // Firing since minute 8 but silenced: it keeps its state, and at minute 20 the rung it has
    // reached goes out once.
    assert!(e.alerts(at(19)).iter().all(|a| a.state == AlertState::Firing));
    assert_eq!(kinds(&notes), vec![(20, Firing, "error"), (28, Escalated, "critical")]);
    // Expired silences are dropped when set.
    e.set_silences(vec![silence(r#"["service=\"api\""]"#, 0, 5)], at(30));
    assert!(e.silences().is_empty());
}

#[test]
fn suppression_defers_and_drops_what_no_longer_matters() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    e.activate_condition("deployment_in_progress", at(0), None);
    // A spike entirely inside the 30m suppression: nothing is ever sent.
    let notes = run(&mut e, 0..25, |m| if (5..15).contains(&m) { 3000.0 } else { 100.0 });
    assert!(notes.is_empty(), "{:?}", kinds(&notes));
    // A spike that outlives the suppression (rule duration 30m from activation): announced once,
    // at the severity it has reached by then.
    let notes = run(&mut e, 25..40, |m| if m >= 26 { 3000.0 } else { 100.0 });
    // It fired at 29 (muted); the escalation clock runs from there.
    assert_eq!(
        kinds(&notes),
        vec![(30, NotificationKind::Firing, "warning"), (39, NotificationKind::Escalated, "error")]
    );
    assert!(e.deactivate_condition("deployment_in_progress"));
    assert!(!e.deactivate_condition("deployment_in_progress"));
}

#[test]
fn maintenance_window_mutes_matching_series_only() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let start = thorbis_obs::core::chrono::DateTime::from_timestamp(T0, 0).expect("in range");
    e.set_maintenance_windows(vec![MaintenanceWindow {
        name: "db-migration".into(),
        rules: vec!["high-response-time".into()],
        matchers: thorbis_obs::core::rules::Matchers(vec![
            thorbis_obs::core::rules::Matcher::parse("service=\"api\"").expect("valid"),
        ]),
        schedule: Schedule::Once { start, end: start + thorbis_obs::core::chrono::Duration::minutes(20) },
    }])
    .expect("valid window");
    let notes = run(&mut e, 0..30, |m| if m >= 5 { 3000.0 } else { 100.0 });
    // Fires at 8 but the window holds it back until 20, when it is announced once at the
    // severity reached by then; the ladder goes on from there.
    assert_eq!(
        kinds(&notes),
        vec![(20, NotificationKind::Firing, "error"), (28, NotificationKind::Escalated, "critical")]
    );
    assert!(e.alerts(at(29)).iter().all(|a| !a.muted));
}

#[test]
fn repeat_interval_resends_while_firing() {
    let mut rules = packs::spec_rules();
    rules[0].repeat_interval = Some(HumanDuration::from_secs(15 * 60));
    rules[0].escalation.clear();
    let mut e = RuleEngine::new(rules).expect("valid");
    let notes = run(&mut e, 0..40, |m| if m >= 5 { 3000.0 } else { 100.0 });
    use NotificationKind::*;
    assert_eq!(kinds(&notes), vec![(8, Firing, "warning"), (23, Repeat, "warning"), (38, Repeat, "warning")]);
}

#[test]
fn no_data_policies() {
    for (policy, expect_firing_after_gap) in
        [(NoDataPolicy::Ok, false), (NoDataPolicy::KeepLast, true), (NoDataPolicy::Alerting, true)]
    {
        let mut rules = packs::spec_rules();
        rules[0].no_data = policy;
        let mut e = RuleEngine::new(rules).expect("valid");
        run(&mut e, 0..10, |_| 3000.0);
        assert_eq!(e.alerts(at(10))[0].state, AlertState::Firing);
        // 20 minutes without a sample.
        for m in 10..30 {
            e.evaluate(at(m));
        }
        let firing = e.alerts(at(30)).iter().any(|a| a.state == AlertState::Firing);
        assert_eq!(firing, expect_firing_after_gap, "{policy:?}");
    }
}

#[test]
fn restart_keeps_firing_and_the_escalation_clock() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let before = run(&mut e, 0..12, |m| if m >= 5 { 3000.0 } else { 100.0 });
    assert_eq!(before.len(), 1);
    let snap = e.snapshot(at(12));
    let json = serde_json::to_string(&snap).expect("serialises");
    let restored: EngineSnapshot = serde_json::from_str(&json).expect("parses");
    assert_eq!(serde_json::to_string(&restored).expect("serialises"), json);

    // A new process: same rules, empty windows.
    let mut e2 = RuleEngine::new(packs::spec_rules()).expect("valid");
    let report = e2.restore(restored, at(13)).expect("same version");
    assert_eq!(report.restored, 1);
    // No sample for the first minutes after the restart: still firing, nothing re-sent.
    for m in 13..15 {
        assert!(e2.evaluate(at(m)).is_empty());
    }
    let after = run(&mut e2, 15..30, |_| 3000.0);
    // Fired at 8: error at 18, critical at 28, exactly as without the restart.
    assert_eq!(
        kinds(&after),
        vec![(18, NotificationKind::Escalated, "error"), (28, NotificationKind::Escalated, "critical")]
    );
    assert!(after[0].1.id != before[0].1.id);
}

#[test]
fn restore_drops_unknown_rules_and_refuses_newer_versions() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    run(&mut e, 0..10, |_| 3000.0);
    let snap = e.snapshot(at(10));
    let mut only_db = RuleEngine::new(packs::database_health_rules()).expect("valid");
    let report = only_db.restore(snap.clone(), at(10)).expect("ok");
    assert_eq!((report.restored, report.dropped.as_slice()), (0, &["high-response-time".to_string()][..]));
    let mut newer = snap;
    newer.version = 99;
    assert!(e.restore(newer, at(10)).unwrap_err().to_string().contains("newer"));
}

#[test]
fn bad_samples_are_rejected_and_change_nothing() {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let mut twin = RuleEngine::new(packs::spec_rules()).expect("valid");
    run(&mut e, 0..10, |_| 3000.0);
    run(&mut twin, 0..10, |_| 3000.0);
    let before = e.alerts(at(10));
    let l = Labels::new().with("service", "api");
    for bad in [
        Sample::new(packs::HTTP_REQUEST_DURATION, l.clone(), f64::NAN, at(10)),
        Sample::new(packs::HTTP_REQUEST_DURATION, l.clone(), f64::INFINITY, at(10)),
        Sample::new(packs::HTTP_REQUEST_DURATION, l.clone(), 1.0, at(2)),
        Sample::new("bad name", l.clone(), 1.0, at(10)),
        Sample::new(packs::HTTP_REQUEST_DURATION, Labels::new().with("0bad", "x"), 1.0, at(10)),
    ] {
        let err = e.ingest(&bad).expect_err("rejected");
        assert!(!err.to_string().is_empty());
        if let SampleError::OutOfOrder { labels, .. } = &err {
            assert_eq!(labels, &l);
        }
    }
    assert_eq!(e.alerts(at(10)), before);
    assert_eq!(e.evaluate(at(10)), twin.evaluate(at(10)));
}

#[test]
fn a_down_postgres_probe_pages_database_unreachable() {
    let mut e = RuleEngine::new(packs::database_health_rules()).expect("valid");
    for m in 0..4 {
        for (source, up) in [("postgres-health", 0.0), ("self", 0.0), ("postgres-business", 1.0)] {
            let s = Sample::new(
                packs::THORBIS_SOURCE_UP,
                Labels::new().with("source", source),
                up,
                at(m).minus(Duration::from_secs(30)),
            );
            e.ingest(&s).expect("valid");
        }
        let notes = e.evaluate(at(m));
        if m == 0 {
            assert_eq!(notes.len(), 1);
            assert_eq!(notes[0].rule_id, "database-unreachable");
            assert_eq!(notes[0].labels.get("source"), Some("postgres-health"));
            assert_eq!(notes[0].severity.as_str(), "critical");
        } else {
            assert!(notes.is_empty());
        }
    }
}

#[test]
fn the_errors_pack_pages_once_per_new_group_and_says_how_many_users() {
    use thorbis_obs::core::rum::issues::{Action, Issues};
    use thorbis_obs::core::rum::{ErrorGroup, RumWindow};
    let group = |fp: &str, env: &str, users: Vec<u64>| ErrorGroup {
        fingerprint: fp.into(),
        service: "shop".into(),
        env: env.into(),
        kind: "error".into(),
        message: "TypeError: x is undefined".into(),
        sample_stack: None,
        route: "/pay".into(),
        tags: [("release".to_string(), "1.0".to_string())].into(),
        breadcrumbs: Vec::new(),
        count: 2,
        first_seen: at(0),
        last_seen: at(0),
        users,
        users_more: 0,
        breakdown: [("release".to_string(), [("1.0".to_string(), 2)].into())].into(),
        debug_ids: Default::default(),
    };
    let mut e = RuleEngine::new(packs::error_rules()).expect("valid");
    let mut book = Issues::new();
    let mut notes = Vec::new();
    for m in 0..90 {
        let mut w = RumWindow::new(at(m));
        if m < 3 {
            w.errors.insert("a1".into(), group("a1", "production", vec![1, 2, m]));
            w.errors.insert("b2".into(), group("b2", "staging", vec![7]));
        }
        if m == 5 {
            book.act("b2", &Action::Resolved, "ana", at(m)).expect("known");
        }
        if m == 10 {
            w.errors.insert("b2".into(), group("b2", "staging", vec![8]));
        }
        book.observe(&w, at(m + 1));
        for s in book.samples(at(m + 1), "") {
            e.ingest(&s).expect("valid");
        }
        notes.extend(e.evaluate(at(m + 1)).into_iter().map(|n| (m, n)));
    }
    let seen: Vec<(u64, NotificationKind, &str, &str)> = notes
        .iter()
        .map(|(m, n)| (*m, n.kind, n.rule_id.as_str(), n.labels.get("fingerprint").unwrap_or("")))
        .collect();
    use NotificationKind::*;
    assert_eq!(
        seen,
        vec![(0, Firing, "errors-new-group", "a1"), (10, Firing, "errors-regression", "b2")],
        "once each, staging's new group not paged, no resolved messages, no spike (2 a minute)"
    );
    let first = &notes[0].1;
    assert_eq!(first.annotations["summary"], "New error in shop 1.0: TypeError: x is undefined");
    assert_eq!(first.annotations["description"], "2 events so far, 3 users affected: /errors/a1");
    assert_eq!(notes[1].1.annotations["description"], "2 events so far, 2 users affected: /errors/b2");
}

#[test]
fn the_host_pack_pages_at_its_levels_and_not_below() {
    let mut e = RuleEngine::new(packs::host_rules()).expect("valid");
    let host = Labels::new().with("host", "db1");
    let disk = host.clone().with("mountpoint", "/var").with("device", "/dev/vdb").with("fstype", "ext4");
    let mut notes = Vec::new();
    // One collection every 30 s for 40 minutes. Disk: 89.9% until 5m, 92% until 15m, 96% until
    // 25m, then 50%. Memory: 95% from 10m to 19m (9 minutes: too short), then from 25m on.
    // Load per core: 1.9 throughout (below 2).
    for half in 0..80u64 {
        let t = Timestamp::from_secs(T0).plus(Duration::from_secs(half * 30));
        let m = half / 2;
        let used = match m {
            0..5 => 0.899,
            5..15 => 0.92,
            15..25 => 0.96,
            _ => 0.5,
        };
        let memory = if (10..19).contains(&m) || m >= 25 { 0.95 } else { 0.5 };
        for (name, labels, v) in [
            (packs::HOST_FILESYSTEM_USED_RATIO, &disk, used),
            (packs::HOST_MEMORY_USED_RATIO, &host, memory),
            (packs::HOST_LOAD5_PER_CORE, &host, 1.9),
        ] {
            e.ingest(&Sample::new(name, labels.clone(), v, t)).expect("valid");
        }
        notes.extend(e.evaluate(t).into_iter().map(|n| (half, n)));
    }
    let seen: Vec<(u64, &str, NotificationKind)> =
        notes.iter().map(|(h, n)| (*h / 2, n.rule_id.as_str(), n.kind)).collect();
    use NotificationKind::*;
    assert_eq!(
        seen,
        [
            (5, "host-disk-filling", Firing),
            (15, "host-disk-full", Firing),
            (25, "host-disk-filling", Resolved),
            (25, "host-disk-full", Resolved),
            (36, "host-memory-high", Firing),
        ]
    );
    let full = &notes[1].1;
    assert_eq!(full.channels, ["slack", "pagerduty"]);
    assert_eq!(full.annotations["summary"], "/var on db1 is 96% full (over 95%)");
}

#[test]
fn every_vitals_rule_fires_at_its_level_and_not_below() {
    use thorbis_obs::core::domain::vitals::Vital;
    // (vital, warning, critical): the spec's levels for LCP, FID, CLS and TTI, Google's for INP.
    for (vital, warning, critical) in [
        (Vital::Lcp, 2500.0, 4000.0),
        (Vital::Fid, 200.0, 300.0),
        (Vital::Cls, 0.15, 0.25),
        (Vital::Tti, 500.0, 1000.0),
        (Vital::Inp, 200.0, 500.0),
    ] {
        let mut e = RuleEngine::new(packs::rum_rules()).expect("valid");
        let all = Labels::new().with("service", "shop").with("route", "all").with("device", "all");
        let one_route = Labels::new().with("service", "shop").with("route", "/slow").with("device", "all");
        let metric = format!("{}_p75", vital.metric_name());
        let mut notes = Vec::new();
        // One window a minute: just under the warning level for 10 minutes (nothing), between
        // the levels for 10, above critical for 10. A single slow route never pages.
        for m in 0..30u64 {
            let v = match m {
                0..10 => warning * 0.99,
                10..20 => (warning + critical) / 2.0,
                _ => critical * 1.2,
            };
            e.ingest(&Sample::new(metric.as_str(), all.clone(), v, at(m))).expect("valid");
            e.ingest(&Sample::new(metric.as_str(), one_route.clone(), critical * 10.0, at(m))).expect("valid");
            notes.extend(e.evaluate(at(m)).into_iter().map(|n| (m, n)));
        }
        // The 5-minute average crosses each level within 5 windows of the change.
        let seen: Vec<(u64, &str)> = notes.iter().map(|(m, n)| (*m, n.severity.as_str())).collect();
        assert_eq!(seen.len(), 2, "{vital:?}: {seen:?}");
        assert!((10..15).contains(&seen[0].0) && seen[0].1 == "warning", "{vital:?}: {seen:?}");
        assert!((20..25).contains(&seen[1].0) && seen[1].1 == "critical", "{vital:?}: {seen:?}");
        assert!(notes.iter().all(|(_, n)| n.labels.get("route") == Some("all")));
        let summary = &notes[1].1.annotations["summary"];
        assert!(summary.contains(" p75 of shop is ") && !summary.contains("00000"), "{summary}");
    }
}

#[test]
fn the_database_rules_page_at_their_levels_and_not_below() {
    let mut rules = packs::database_health_rules();
    rules.extend(packs::spec_rules().into_iter().filter(|r| r.id == "database-connections-high"));
    let mut e = RuleEngine::new(rules).expect("valid");
    let db = Labels::new().with("source", "postgres");
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let mut notes = Vec::new();
    // One probe a minute for 30 minutes: each figure at its level first (nothing), then past it.
    for m in 0..30u64 {
        let (size, lag, conns, locks) = match m {
            0..10 => (10.0 * GIB, 30.0, 80.0, 5.0),
            10..20 => (10.5 * GIB, 45.0, 85.0, 6.0),
            _ => (9.0 * GIB, 2.0, 40.0, 0.0),
        };
        for (name, v) in [
            (packs::PG_DATABASE_SIZE_BYTES, size),
            (packs::PG_REPLICATION_LAG_SECONDS, lag),
            (packs::DATABASE_ACTIVE_CONNECTIONS, conns),
            (packs::PG_LOCK_WAITS, locks),
            (packs::THORBIS_SOURCE_UP, 1.0),
        ] {
            e.ingest(&Sample::new(name, db.clone(), v, at(m))).expect("valid");
        }
        notes.extend(e.evaluate(at(m)).into_iter().map(|n| (m, n)));
    }
    use NotificationKind::*;
    let mut seen: Vec<(u64, &str, NotificationKind, &str)> =
        notes.iter().map(|(m, n)| (*m, n.rule_id.as_str(), n.kind, n.severity.as_str())).collect();
    seen.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    assert_eq!(
        seen,
        [
            (10, "database-connections-high", Firing, "warning"),
            (10, "database-size-large", Firing, "warning"),
            (10, "lock-waits-high", Firing, "warning"),
            (10, "replication-lag-high", Firing, "critical"),
            // Still over 80 within the 3-minute max when the 10-minute escalation is due.
            (20, "database-connections-high", Escalated, "error"),
            (20, "database-size-large", Resolved, "warning"),
            (20, "lock-waits-high", Resolved, "warning"),
            (20, "replication-lag-high", Resolved, "critical"),
            (22, "database-connections-high", Resolved, "error"),
        ]
    );
    let lag = notes.iter().find(|(_, n)| n.rule_id == "replication-lag-high").expect("lag").1.clone();
    assert_eq!(lag.annotations["summary"], "Replication lag is 45s (over 30s)");
    assert!(lag.channels.contains(&"pagerduty".to_string()));
    let size = notes.iter().find(|(_, n)| n.rule_id == "database-size-large").expect("size").1.clone();
    assert_eq!(size.annotations["summary"], "The database is 10.5GiB (over 10GiB)");
}
