//! Delivery end to end through the agent, with real receivers on loopback: the spec's
//! escalation ladder across Slack, email, SMS and PagerDuty, and a receiver that is down for a
//! while (every notification arrives once, in order per alert).
#![cfg(all(feature = "slack", feature = "pagerduty", feature = "sms", feature = "webhook", feature = "email"))]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::receiver::{Mode, Receiver};
use support::smtp::SmtpSink;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rules::{AlertRule, EscalationStep, Severity, packs};
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_server::agent::{Agent, AgentHandle};
use thorbis_obs_server::channels::email::{EmailChannel, EmailSettings, EmailTls};
use thorbis_obs_server::channels::pagerduty::PagerDutyChannel;
use thorbis_obs_server::channels::slack::{SlackChannel, SlackStyle};
use thorbis_obs_server::channels::sms::SmsChannel;
use thorbis_obs_server::channels::webhook::WebhookChannel;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

fn now() -> Timestamp {
    thorbis_obs_server::agent::system_now()
}

fn push(h: &AgentHandle, metric: &str, v: f64) {
    h.push(&Sample::new(metric, Labels::new().with("service", "api"), v, now())).expect("valid sample");
}

async fn until(what: &str, secs: u64, cond: impl Fn() -> bool, tick: impl Fn()) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        tick();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fast_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        initial_backoff: HumanDuration(Duration::from_millis(100)),
        max_backoff: HumanDuration(Duration::from_millis(300)),
        jitter: 0.0,
        ..DeliveryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_ladder_reaches_the_right_people() {
    let slack = Receiver::start(Mode::Ok).await;
    let twilio = Receiver::start(Mode::Created).await;
    let pd = Receiver::start(Mode::Accepted).await;
    let smtp = SmtpSink::start().await;
    // The spec's high-response-time rule with its ladder scaled from minutes to seconds.
    let mut rule: AlertRule = packs::spec_rules().remove(0);
    rule.condition.duration = HumanDuration::from_secs(1);
    rule.escalation = vec![
        EscalationStep {
            after: HumanDuration::from_secs(1),
            severity: Severity::Error,
            channels: vec!["slack".into(), "email".into(), "sms".into()],
        },
        EscalationStep {
            after: HumanDuration::from_secs(2),
            severity: Severity::Critical,
            channels: vec!["slack".into(), "email".into(), "sms".into(), "pagerduty".into()],
        },
    ];
    let t = Duration::from_secs(2);
    let email = EmailSettings {
        host: "127.0.0.1".into(),
        port: Some(smtp.port),
        tls: EmailTls::None,
        username: None,
        password: None,
        from: "alerts@thorbis.test".into(),
        to: vec!["ops@thorbis.test".into()],
        allow_insecure: false,
        timeout: t,
        root_certificate_pem: None,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::builder()
        .rules([rule])
        .channel_with_limits(
            Arc::new(
                SlackChannel::new("slack", Secret::new(slack.url("/hook")), None, None, SlackStyle::Attachments, t)
                    .expect("slack"),
            ),
            fast_policy(),
            Some(Duration::from_millis(300)),
        )
        .channel_with_policy(Arc::new(EmailChannel::new("email", &email).expect("email")), fast_policy())
        .channel_with_policy(
            Arc::new(
                SmsChannel::new(
                    "sms",
                    "AC1",
                    Secret::new("tok"),
                    "+15550000000",
                    vec!["+15551111111".into()],
                    &twilio.url(""),
                    t,
                )
                .expect("sms"),
            ),
            fast_policy(),
        )
        .channel_with_policy(
            Arc::new(
                PagerDutyChannel::new("pagerduty", Secret::new("KEY"), &pd.url(""), "thorbis-obs", t).expect("pd"),
            ),
            fast_policy(),
        )
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store")))
        .evaluation_interval(Duration::from_millis(100))
        .build()
        .expect("agent");
    let h = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));

    let count = |r: &Receiver| r.requests.lock().expect("lock").len();
    until("critical reaches PagerDuty", 15, || count(&pd) >= 1, || push(&h, packs::HTTP_REQUEST_DURATION, 3000.0))
        .await;
    until("the resolve reaches PagerDuty", 15, || count(&pd) >= 2, || push(&h, packs::HTTP_REQUEST_DURATION, 100.0))
        .await;
    until("the resolve reaches Slack", 15, || count(&slack) >= 4, || push(&h, packs::HTTP_REQUEST_DURATION, 100.0))
        .await;
    until("the resolve reaches email", 15, || smtp.mails.lock().expect("lock").len() >= 4, || ()).await;
    until("the resolve reaches SMS", 15, || count(&twilio) >= 3, || ()).await;
    // Nothing left in the outbox: every notification queued was delivered, so no retry or late
    // copy is still on its way, and the counts below are final.
    support::eventually("the outbox to drain", Duration::from_secs(15), async || {
        h.outbox_stats().await.expect("stats").pending == 0
    })
    .await;

    let titles: Vec<String> = slack
        .taken()
        .iter()
        .map(|r| r.json()["attachments"][0]["fields"][0]["value"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(titles, ["WARNING", "ERROR", "CRITICAL", "CRITICAL"], "slack: firing, two escalations, resolve");
    let subjects: Vec<String> = smtp
        .mails
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m.data.lines().find(|l| l.starts_with("Subject:")).unwrap_or("").to_string())
        .collect();
    assert_eq!(subjects.len(), 4);
    assert!(subjects[0].contains("[WARNING] High Response Time firing"), "{subjects:?}");
    assert!(subjects[1].contains("[ERROR] High Response Time escalated"), "{subjects:?}");
    assert!(subjects[2].contains("[CRITICAL] High Response Time escalated"), "{subjects:?}");
    assert!(subjects[3].contains("resolved"), "{subjects:?}");
    let sms: Vec<String> = twilio
        .taken()
        .iter()
        .map(|r| r.form().into_iter().find(|(k, _)| k == "Body").map(|(_, v)| v).unwrap_or_default())
        .collect();
    assert_eq!(sms.len(), 3, "SMS joins at error: {sms:?}");
    assert!(
        sms[0].starts_with("[ERROR]") && sms[1].starts_with("[CRITICAL]") && sms[2].contains("resolved"),
        "{sms:?}"
    );
    let events: Vec<serde_json::Value> = pd.taken().iter().map(|r| r.json()).collect();
    assert_eq!(events.len(), 2, "PagerDuty only from critical on");
    assert_eq!(
        (events[0]["event_action"].as_str(), events[0]["payload"]["severity"].as_str()),
        (Some("trigger"), Some("critical"))
    );
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[0]["dedup_key"], events[1]["dedup_key"]);

    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_loses_nothing_and_keeps_order() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut rule: AlertRule = packs::spec_rules().remove(1);
    rule.channels = vec!["hook".into()];
    rule.condition.duration = HumanDuration::from_secs(1);
    rule.escalation = vec![EscalationStep {
        after: HumanDuration::from_secs(1),
        severity: Severity::Critical,
        channels: vec!["hook".into()],
    }];
    let dir = tempfile::tempdir().expect("tempdir");
    let hook =
        WebhookChannel::new("hook", Secret::new(format!("http://127.0.0.1:{port}/hook")), None, Duration::from_secs(2))
            .expect("hook");
    // Retries every 300 ms at most: enough attempts that nothing is given up while the phases
    // below take as long as a slow machine needs (the default 50 would last about 15 s).
    let policy = DeliveryPolicy { max_attempts: 1_000, ..fast_policy() };
    let agent = Agent::builder()
        .rules([rule])
        .channel_with_policy(Arc::new(hook), policy)
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store")))
        .evaluation_interval(Duration::from_millis(100))
        .build()
        .expect("agent");
    let h = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    // Fire, escalate and resolve while nobody listens on the port: each phase lasts until the
    // agent has queued its notification (a slow machine only makes it longer), not a fixed time.
    support::eventually("the firing and the escalation in the outbox", Duration::from_secs(30), async || {
        push(&h, packs::HTTP_REQUEST_ERROR_RATE, 0.5);
        h.outbox_stats().await.expect("stats").pending >= 2
    })
    .await;
    support::eventually("the resolve in the outbox", Duration::from_secs(30), async || {
        push(&h, packs::HTTP_REQUEST_ERROR_RATE, 0.0);
        h.outbox_stats().await.expect("stats").pending >= 3
    })
    .await;
    assert!(h.outbox_stats().await.expect("stats").pending >= 3, "all three wait in the outbox");
    // The receiver comes up on that port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the same port");
    let seen: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                s.lock().expect("lock").push(serde_json::from_slice(&body).unwrap_or_default());
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    until("every notification", 20, || seen.lock().expect("lock").len() >= 3, || ()).await;
    // Nothing left in the outbox: no retry or second copy is still on its way.
    support::eventually("the outbox to drain", Duration::from_secs(15), async || {
        h.outbox_stats().await.expect("stats").pending == 0
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    let kinds: Vec<&str> = got.iter().map(|v| v["thorbis"]["kind"].as_str().unwrap_or("?")).collect();
    assert_eq!(kinds, ["firing", "escalated", "resolved"], "once each, in order");
    let ids: std::collections::HashSet<&str> =
        got.iter().filter_map(|v| v["thorbis"]["notificationId"].as_str()).collect();
    assert_eq!(ids.len(), 3);
    let stats = h.outbox_stats().await.expect("stats");
    assert_eq!((stats.pending, stats.delivered), (0, 3));
    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}
