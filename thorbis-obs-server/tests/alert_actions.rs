//! Acknowledgements and silences through the API of an agent built from a config file, with a
//! PagerDuty channel and an "sms" webhook pointed at receivers on loopback: the rule's ladder
//! (PagerDuty and Slack, then SMS after three seconds of firing) stops at the acknowledgement
//! (PagerDuty gets the `acknowledge` event, Slack a message naming who acknowledged, SMS
//! nothing, the resolve still goes out); a silence keeps a
//! matching alert quiet while it fires and its owed notification goes out when the silence is
//! expired.
#![cfg(all(feature = "pagerduty", feature = "webhook", feature = "slack"))]

mod support;

use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, Sample};

const TOKEN: &str = "admin-token-for-the-ack-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_stops_the_ladder_and_a_silence_holds_what_is_owed() {
    let (pd, pd_events) = support::web::json_sink().await;
    let (sms, sms_messages) = support::web::json_sink().await;
    let (slack, slack_messages) = support::web::json_sink().await;
    let dir = tempfile::tempdir().expect("tmp");
    let port = support::agent::free_port();
    let rule = "[[rules.inline]]\nid = \"high-response-time\"\nname = \"High Response Time\"\n\
                metric = \"http_request_duration\"\nseverity = \"warning\"\nchannels = [\"pd\", \"chat\"]\n\
                [rules.inline.condition]\noperator = \"greater_than\"\nthreshold = 2000\nduration = \"1s\"\naggregation = \"max\"\n\
                [[rules.inline.escalation]]\nafter = \"3s\"\nseverity = \"critical\"\nchannels = [\"pd\", \"sms\"]\n";
    let channels = format!(
        "[channels.pd]\ntype = \"pagerduty\"\nrouting_key = \"R0UT1NGKEY\"\nbase_url = \"{}\"\n\
         [channels.sms]\ntype = \"webhook\"\nurl = \"{}\"\n\
         [channels.chat]\ntype = \"slack\"\nwebhook_url = \"{}\"\n",
        pd.url(""),
        sms.url("/sms"),
        slack.url("/services/T/B/X")
    );
    let config = support::agent::config_file(
        dir.path(),
        port,
        &format!("api_token = \"{TOKEN}\"\n"),
        &format!("{rule}{channels}"),
    );
    let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("a valid config");
    let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
    let handle = agent.handle();
    let base = format!("http://127.0.0.1:{port}");
    let (stop, task) = support::serve(agent, &base).await;

    // Latency of two services, fed every 100 ms: api slow now, billing slow later.
    let slow = std::sync::Arc::new(std::sync::Mutex::new(vec![("api", 3000.0), ("billing", 100.0)]));
    let feeding = {
        let slow = slow.clone();
        tokio::spawn(async move {
            loop {
                let now = thorbis_obs_server::agent::system_now();
                let values = slow.lock().expect("lock").clone();
                for (service, v) in values {
                    let labels = Labels::new().with("service", service);
                    let _ = handle.push(&Sample::new("http_request_duration", labels, v, now));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let set = |service: &'static str, v: f64| {
        for s in slow.lock().expect("lock").iter_mut().filter(|s| s.0 == service) {
            s.1 = v;
        }
    };
    let c = reqwest::Client::new();
    let actions = |events: &std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>| -> Vec<String> {
        events.lock().expect("lock").iter().map(|e| e["event_action"].as_str().unwrap_or("").to_string()).collect()
    };
    support::eventually("PagerDuty triggered", Duration::from_secs(20), async || actions(&pd_events) == ["trigger"])
        .await;
    let alerts = || async {
        let v: serde_json::Value =
            c.get(format!("{base}/api/v1/alerts")).send().await.expect("alerts").json().await.expect("json");
        v["alerts"].as_array().cloned().or_else(|| v.as_array().cloned()).unwrap_or_default()
    };
    let api = alerts().await.into_iter().find(|a| a["labels"]["service"] == "api").expect("the api alert");
    let fp = api["fingerprint"].as_str().expect("fingerprint").to_string();

    // Acknowledge: refused without the token, 404 for no such alert, then taken.
    let ack = |fp: String, token: Option<&'static str>| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let mut r = c.post(format!("{base}/api/v1/alerts/{fp}/ack")).json(&serde_json::json!({ "by": "ana" }));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.expect("ack");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(ack(fp.clone(), None).await.0, 401);
    assert_eq!(ack("0123456789abcdef".into(), Some(TOKEN)).await.0, 404);
    let (status, body) = ack(fp.clone(), Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ack(fp.clone(), Some(TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already acknowledged by ana"), "{body}");
    support::eventually("PagerDuty acknowledged", Duration::from_secs(20), async || {
        actions(&pd_events) == ["trigger", "acknowledge"]
    })
    .await;
    {
        let events = pd_events.lock().expect("lock");
        assert_eq!(events[1]["dedup_key"], events[0]["dedup_key"], "the incident the trigger opened");
    }
    // The ladder's critical rung is reached (the alert's level), but nothing more is sent.
    support::eventually("the ladder reached its critical rung", Duration::from_secs(20), async || {
        alerts().await.iter().any(|a| a["fingerprint"] == fp.as_str() && a["level"] == 1)
    })
    .await;
    let api = alerts().await.into_iter().find(|a| a["fingerprint"] == fp.as_str()).expect("alert");
    assert_eq!(api["acknowledged"]["by"], "ana");
    // The evaluation that reached the rung has committed (the alert shows it): no SMS, no
    // second PagerDuty trigger.
    assert!(sms_messages.lock().expect("lock").is_empty(), "no SMS step after the ack");
    assert_eq!(actions(&pd_events), ["trigger", "acknowledge"]);
    // It resolves: the resolve still goes out.
    set("api", 100.0);
    support::eventually("PagerDuty resolved", Duration::from_secs(20), async || {
        actions(&pd_events) == ["trigger", "acknowledge", "resolve"]
    })
    .await;
    assert!(sms_messages.lock().expect("lock").is_empty());
    support::eventually("Slack heard the resolve", Duration::from_secs(20), async || {
        slack_messages.lock().expect("lock").len() >= 3
    })
    .await;
    let titles: Vec<String> = slack_messages
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m["attachments"][0]["title"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles[1].ends_with("ACKNOWLEDGED: High Response Time (by ana)"), "{titles:?}");
    assert!(titles[2].contains("RESOLVED: High Response Time"), "{titles:?}");

    // A silence on billing, then billing slows down: it fires, muted, and sends nothing.
    let r = c
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "matchers": ["service=\"billing\"", "alertname=~\"High.*\""],
            "duration": "1h", "createdBy": "ana", "comment": "billing database migration",
        }))
        .send()
        .await
        .expect("silence");
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().await.expect("json")["id"].as_str().expect("id").to_string();
    let bad = c
        .post(format!("{base}/api/v1/silences"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "matchers": [], "duration": "1h", "createdBy": "ana", "comment": "x" }))
        .send()
        .await
        .expect("silence");
    assert_eq!(bad.status(), 400);
    set("billing", 3000.0);
    support::eventually("billing fires, muted", Duration::from_secs(20), async || {
        alerts()
            .await
            .iter()
            .any(|a| a["labels"]["service"] == "billing" && a["state"] == "firing" && a["muted"] == true)
    })
    .await;
    assert_eq!(actions(&pd_events).len(), 3, "nothing sent for billing while silenced");
    let listed: serde_json::Value =
        c.get(format!("{base}/api/v1/silences")).send().await.expect("list").json().await.expect("json");
    assert_eq!(listed["silences"][0]["state"], "active");
    assert_eq!(listed["silences"][0]["createdBy"], "ana");
    // Expired: what billing owes goes out (the rung it has reached).
    let r = c.delete(format!("{base}/api/v1/silences/{id}")).bearer_auth(TOKEN).send().await.expect("expire");
    assert_eq!(r.status(), 200);
    support::eventually("billing's page after the silence", Duration::from_secs(20), async || {
        actions(&pd_events).len() == 4
    })
    .await;
    let last = pd_events.lock().expect("lock")[3].clone();
    assert_eq!(last["event_action"], "trigger");
    assert_eq!(last["payload"]["component"], "billing", "{last}");
    let listed: serde_json::Value =
        c.get(format!("{base}/api/v1/silences")).send().await.expect("list").json().await.expect("json");
    assert_eq!(listed["silences"][0]["state"], "expired");

    feeding.abort();
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
