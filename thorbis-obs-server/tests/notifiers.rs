//! Each channel against a real receiver on loopback that checks the service's documented shape
//! and answers 200/ok, 201, 202, 400, 429 + Retry-After, 500, a hang, or garbage.
//! Each test needs only its channel's feature, so `--no-default-features --features X` runs
//! that channel's tests alone.
#![allow(dead_code, unused_imports, reason = "which helpers are used depends on the enabled channel features")]

mod support;

use std::time::Duration;
use support::receiver::{Mode, Receiver};
use thorbis_obs_core::AlertChannel;
use thorbis_obs_core::channel::DeliveryError;
use thorbis_obs_core::engine::{Notification, NotificationKind, RuleEngine};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rules::packs;
use thorbis_obs_core::time::Timestamp;
#[cfg(feature = "email")]
use thorbis_obs_server::channels::email::{EmailChannel, EmailSettings, EmailTls};
#[cfg(feature = "pagerduty")]
use thorbis_obs_server::channels::pagerduty::PagerDutyChannel;
#[cfg(feature = "slack")]
use thorbis_obs_server::channels::slack::{SlackChannel, SlackStyle};
#[cfg(feature = "sms")]
use thorbis_obs_server::channels::sms::SmsChannel;
#[cfg(feature = "webhook")]
use thorbis_obs_server::channels::webhook::{WebhookChannel, sign};
use thorbis_obs_server::config::Secret;

/// Each channel's request timeout: what a hung receiver costs (`check_answers` wants the hang cut
/// off well under 5 s), and long enough that a loaded machine answers every other request in
/// time (at 500 ms, a loopback answer slowed by a busy machine could read as "timed out").
const TIMEOUT: Duration = Duration::from_secs(2);

/// A real firing notification from the spec's high-response-time rule, and its resolve.
fn notifications() -> (Notification, Notification) {
    let mut e = RuleEngine::new(packs::spec_rules()).expect("valid");
    let l = Labels::new().with("service", "api").with("route", "/work-orders");
    let t0 = Timestamp::from_secs(1_795_000_000);
    e.ingest(&Sample::new(packs::HTTP_REQUEST_DURATION, l.clone(), 2600.0, t0)).expect("valid");
    let firing = e.evaluate(t0).remove(0);
    let t1 = t0.plus(Duration::from_secs(600));
    e.ingest(&Sample::new(packs::HTTP_REQUEST_DURATION, l, 100.0, t1)).expect("valid");
    let resolved = e.evaluate(t1).into_iter().find(|n| n.kind == NotificationKind::Resolved).expect("resolves");
    (firing, resolved)
}

/// The classification every HTTP channel shares. Each attempt is a new notification id, since
/// the SMS channel remembers recipients that already accepted an id.
async fn check_answers(r: &Receiver, ch: &dyn AlertChannel, n: &Notification, success: Mode) {
    let mut k = 0;
    let mut fresh = || {
        k += 1;
        let mut m = n.clone();
        m.id = format!("{}-check{k}", n.id);
        m
    };
    r.set(success);
    assert!(ch.send(&fresh()).await.is_ok(), "{success:?} is success");
    r.set(Mode::BadRequest);
    match ch.send(&fresh()).await {
        Err(DeliveryError::Permanent { reason }) => {
            assert!(reason.contains("400") && reason.contains("invalid_payload"), "{reason}")
        }
        other => panic!("400 must be permanent: {other:?}"),
    }
    r.set(Mode::RateLimited);
    assert_eq!(
        ch.send(&fresh()).await.err(),
        Some(DeliveryError::Retryable {
            reason: "HTTP 429: slow down".into(),
            retry_after: Some(Duration::from_secs(7))
        })
    );
    r.set(Mode::ServerError);
    assert!(matches!(ch.send(&fresh()).await, Err(DeliveryError::Retryable { .. })), "500 is retryable");
    r.set(Mode::Hang);
    let started = std::time::Instant::now();
    assert_eq!(ch.send(&fresh()).await.err(), Some(DeliveryError::retryable("timed out")));
    assert!(started.elapsed() < Duration::from_secs(5));
    r.taken();
}

#[cfg(feature = "slack")]
#[tokio::test]
async fn slack_attachments_and_blocks() {
    let r = Receiver::start(Mode::Ok).await;
    let (firing, resolved) = notifications();
    let ch = SlackChannel::new(
        "slack",
        Secret::new(r.url("/services/T0/B0/XXX")),
        Some("#alerts".into()),
        Some("Thorbis Monitor".into()),
        SlackStyle::Attachments,
        TIMEOUT,
    )
    .expect("builds");
    assert!(!format!("{ch:?}").contains("XXX"), "the webhook URL is a secret");
    ch.send(&firing).await.expect("accepted");
    ch.send(&resolved).await.expect("accepted");
    let reqs = r.taken();
    assert_eq!(reqs.len(), 2);
    let body = reqs[0].json();
    assert_eq!(reqs[0].path, "/services/T0/B0/XXX");
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(body["channel"], "#alerts");
    assert_eq!(body["username"], "Thorbis Monitor");
    assert!(body["text"].as_str().is_some_and(|t| t.contains("High Response Time")));
    let a = &body["attachments"][0];
    assert_eq!(a["color"], "#ff9500", "warning is orange");
    assert!(a["title"].as_str().is_some_and(|t| t.ends_with("High Response Time")));
    let fields: Vec<&str> =
        a["fields"].as_array().expect("fields").iter().map(|f| f["title"].as_str().expect("title")).collect();
    assert_eq!(fields, ["Severity", "Value", "Time", "Alert ID"]);
    assert_eq!(a["fields"][0]["value"], "WARNING");
    assert_eq!(a["fields"][1]["value"], "2600");
    assert_eq!(a["fields"][3]["value"], firing.id.as_str());
    assert_eq!(a["footer"], "Thorbis Monitoring");
    assert_eq!(a["ts"].as_i64(), Some(firing.created_at.as_millis() / 1000));
    let r2 = reqs[1].json();
    assert!(r2["attachments"][0]["title"].as_str().is_some_and(|t| t.contains("RESOLVED")), "{r2}");
    // The spec's emoji per severity before the rule's name (a resolve gets a check mark).
    assert!(a["title"].as_str().is_some_and(|t| t.starts_with("\u{26a0}\u{fe0f} ")), "{a}");
    assert!(r2["attachments"][0]["title"].as_str().is_some_and(|t| t.starts_with("\u{2705} ")), "{r2}");
    use thorbis_obs_core::rules::Severity;
    for (severity, emoji) in
        [(Severity::Info, "\u{2139}\u{fe0f}"), (Severity::Error, "\u{1f525}"), (Severity::Critical, "\u{1f6a8}")]
    {
        let mut n = firing.clone();
        n.severity = severity;
        ch.send(&n).await.expect("accepted");
        let title = r.taken()[0].json()["attachments"][0]["title"].as_str().unwrap_or("").to_string();
        assert_eq!(title, format!("{emoji} High Response Time"), "{severity:?}");
    }

    let blocks =
        SlackChannel::new("slack", Secret::new(r.url("/b")), None, None, SlackStyle::Blocks, TIMEOUT).expect("builds");
    blocks.send(&firing).await.expect("accepted");
    let b = r.taken()[0].json();
    assert_eq!(b["blocks"][0]["type"], "header");
    assert!(b["blocks"][2]["fields"][0]["text"].as_str().is_some_and(|t| t.contains("WARNING")));

    // Success is 200 with `ok`: any other body is an error that says what Slack answered.
    r.set(Mode::Garbage);
    match ch.send(&firing).await {
        Err(DeliveryError::Permanent { reason }) => assert!(reason.contains("instead of ok"), "{reason}"),
        other => panic!("garbage must fail: {other:?}"),
    }
    check_answers(&r, &ch, &firing, Mode::Ok).await;
}

#[cfg(feature = "pagerduty")]
#[tokio::test]
async fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
    let r = Receiver::start(Mode::Accepted).await;
    let (mut firing, resolved) = notifications();
    let ch = PagerDutyChannel::new(
        "pagerduty",
        Secret::new("R0UTINGKEY0000000000000000000000"),
        &r.url(""),
        "thorbis-obs",
        TIMEOUT,
    )
    .expect("builds");
    firing.rule_name = "x".repeat(3000);
    ch.send(&firing).await.expect("accepted");
    ch.send(&resolved).await.expect("accepted");
    let reqs = r.taken();
    assert_eq!(reqs[0].path, "/v2/enqueue");
    let t = reqs[0].json();
    assert_eq!(t["routing_key"], "R0UTINGKEY0000000000000000000000");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["payload"]["severity"], "warning");
    assert_eq!(t["payload"]["source"], "thorbis-obs");
    let summary = t["payload"]["summary"].as_str().expect("summary");
    assert!(summary.chars().count() <= 1024 && summary.ends_with('\u{2026}'), "summary cut to 1024");
    assert_eq!(t["payload"]["custom_details"]["value"], 2600.0);
    assert_eq!(t["payload"]["custom_details"]["labels"]["route"], "/work-orders");
    let dedup = t["dedup_key"].as_str().expect("dedup_key");
    assert!(!dedup.is_empty() && dedup.len() <= 255);
    let res = reqs[1].json();
    assert_eq!((res["event_action"].as_str(), res["dedup_key"].as_str()), (Some("resolve"), Some(dedup)));
    // PagerDuty's garbage body with 200 still means accepted (it is status-based).
    check_answers(&r, &ch, &firing, Mode::Accepted).await;
}

#[cfg(feature = "sms")]
#[tokio::test]
async fn twilio_one_message_per_recipient_and_retries_only_the_missing() {
    let r = Receiver::start(Mode::Created).await;
    let (mut firing, _) = notifications();
    let ch = SmsChannel::new(
        "sms",
        "AC0123",
        Secret::new("tok3n"),
        "+15550000000",
        vec!["+15551111111".into(), "+15552222222".into()],
        &r.url(""),
        TIMEOUT,
    )
    .expect("builds");
    firing.rule_name = "y".repeat(2000);
    let d = ch.send(&firing).await.expect("accepted");
    assert_eq!(d.answer.as_deref(), Some("messages SM0123456789abcdef, SM0123456789abcdef"));
    let reqs = r.taken();
    assert_eq!(reqs.len(), 2);
    for (req, to) in reqs.iter().zip(["+15551111111", "+15552222222"]) {
        assert_eq!(req.path, "/2010-04-01/Accounts/AC0123/Messages.json");
        // Basic auth AccountSid:AuthToken ("AC0123:tok3n").
        assert_eq!(req.headers["authorization"], "Basic QUMwMTIzOnRvazNu");
        assert_eq!(req.headers["content-type"], "application/x-www-form-urlencoded");
        let form = req.form();
        let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).expect(k);
        assert_eq!(get("To"), to);
        assert_eq!(get("From"), "+15550000000");
        let body = get("Body");
        assert!(body.chars().count() <= 1600 && body.ends_with('\u{2026}'), "cut to 1600 with an ellipsis");
        assert!(body.starts_with("[WARNING]"));
    }
    // A new notification: the first recipient accepts, the second gets a 500; the retry texts
    // only the second.
    let (mut other, _) = notifications();
    other.id = "another-id".into();
    r.set(Mode::CreatedOnceThenError);
    assert!(ch.send(&other).await.is_err(), "the second recipient failed");
    assert_eq!(r.taken().len(), 2);
    r.set(Mode::Created);
    ch.send(&other).await.expect("retry succeeds");
    let retry = r.taken();
    assert_eq!(retry.len(), 1, "only the missing recipient");
    assert!(retry[0].form().iter().any(|(k, v)| k == "To" && v == "+15552222222"));
    let (firing, _) = notifications();
    check_answers(&r, &ch, &firing, Mode::Created).await;
}

#[cfg(feature = "webhook")]
#[tokio::test]
async fn webhook_is_alertmanager_v4_and_signed() {
    let r = Receiver::start(Mode::Ok).await;
    let (firing, resolved) = notifications();
    let ch =
        WebhookChannel::new("ops", Secret::new(r.url("/hook")), Some(Secret::new("shh")), TIMEOUT).expect("builds");
    ch.send(&firing).await.expect("accepted");
    ch.send(&resolved).await.expect("accepted");
    let reqs = r.taken();
    let b = reqs[0].json();
    for key in [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(b.get(key).is_some(), "missing {key}");
    }
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    let a = &b["alerts"][0];
    for key in ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
        assert!(a.get(key).is_some(), "missing alerts[0].{key}");
    }
    assert_eq!(a["labels"]["alertname"], "HighResponseTime");
    assert_eq!(reqs[0].headers["x-thorbis-notification-id"], firing.id.as_str());
    let sig = reqs[0].headers["x-thorbis-signature"].to_str().expect("ascii");
    assert_eq!(sig, sign(b"shh", &reqs[0].body));
    assert_eq!(reqs[1].json()["status"], "resolved");
    assert_eq!(reqs[1].json()["alerts"][0]["endsAt"], resolved.ends_at.expect("ends").to_rfc3339());
    check_answers(&r, &ch, &firing, Mode::Ok).await;
}

#[cfg(feature = "email")]
#[tokio::test]
async fn email_arrives_multipart_to_every_recipient() {
    let sink = support::smtp::SmtpSink::start().await;
    let (firing, _) = notifications();
    let settings = EmailSettings {
        host: "127.0.0.1".into(),
        port: Some(sink.port),
        tls: EmailTls::None,
        username: None,
        password: None,
        from: "Thorbis Alerts <alerts@thorbis.test>".into(),
        to: vec!["ops@thorbis.test".into(), "engineering@thorbis.test".into()],
        allow_insecure: false,
        timeout: Duration::from_secs(5),
        root_certificate_pem: None,
    };
    let ch = EmailChannel::new("email", &settings).expect("builds");
    let d = ch.send(&firing).await.expect("accepted");
    assert!(d.answer.is_some_and(|a| a.starts_with("250")));
    let mails = sink.mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.from, "<alerts@thorbis.test>");
    assert_eq!(m.rcpt, ["<ops@thorbis.test>", "<engineering@thorbis.test>"]);
    assert!(m.data.contains("From: \"Thorbis Alerts\" <alerts@thorbis.test>"), "{}", m.data);
    assert!(m.data.contains("To: ops@thorbis.test, engineering@thorbis.test"), "{}", m.data);
    assert!(m.data.contains("Subject: [WARNING] High Response Time firing"), "{}", m.data);
    assert!(m.data.contains("multipart/alternative"));
    assert!(m.data.contains("Content-Type: text/plain") && m.data.contains("Content-Type: text/html"));
    assert!(m.data.contains(&firing.id));

    // Plain SMTP to a non-loopback host is refused up front.
    let remote = EmailSettings { host: "mail.example.com".into(), ..settings.clone() };
    assert!(EmailChannel::new("email", &remote).expect_err("refused").contains("loopback"));
    // A closed port is a retryable failure.
    let closed = EmailSettings { port: Some(1), ..settings };
    let ch = EmailChannel::new("email", &closed).expect("builds");
    assert!(matches!(ch.send(&firing).await, Err(DeliveryError::Retryable { .. })));
}

#[cfg(feature = "email")]
#[tokio::test]
async fn email_over_starttls_and_implicit_tls() {
    use support::smtp::{SinkTls, SmtpSink, self_signed};
    let (firing, _) = notifications();
    for implicit in [false, true] {
        let (acceptor, pem) = self_signed();
        let sink =
            SmtpSink::start_with(if implicit { SinkTls::Implicit(acceptor) } else { SinkTls::Starttls(acceptor) })
                .await;
        let settings = EmailSettings {
            host: "127.0.0.1".into(),
            port: Some(sink.port),
            tls: if implicit { EmailTls::Implicit } else { EmailTls::Starttls },
            username: None,
            password: None,
            from: "alerts@thorbis.test".into(),
            to: vec!["ops@thorbis.test".into()],
            allow_insecure: false,
            timeout: Duration::from_secs(5),
            root_certificate_pem: Some(pem.into_bytes()),
        };
        let ch = EmailChannel::new("email", &settings).expect("builds");
        ch.send(&firing).await.expect("accepted over TLS");
        let mails = sink.mails.lock().expect("lock").clone();
        assert_eq!(mails.len(), 1, "implicit={implicit}");
        assert!(mails[0].secure, "the message travelled over TLS (implicit={implicit})");
        // Without the private CA, the server's certificate is refused: nothing is sent in clear.
        let untrusted =
            EmailChannel::new("email", &EmailSettings { root_certificate_pem: None, ..settings }).expect("builds");
        assert!(untrusted.send(&firing).await.is_err());
        assert_eq!(sink.mails.lock().expect("lock").len(), 1);
    }
}
