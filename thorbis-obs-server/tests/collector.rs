//! The RUM collector over real HTTP: an in-process agent with `POST /v1/rum`, one-second
//! windows and the `rum` rule pack paging an in-memory channel. Batches are the wire schema the
//! browser SDK sends (its own tests check that); here the collector's side: admission,
//! refusals that name the problem and count nothing, windows into `/metrics`, a slow LCP
//! paging once, errors grouped by fingerprint.
#![cfg(feature = "collector")]

mod support;

use std::time::Duration;
use support::monitors::wait_for;
use support::rum::{RumAgent, metric};

const ORIGIN: &str = "https://app.example";

async fn start(per_ip_per_minute: u32) -> RumAgent {
    RumAgent::start(&format!(
        r#"client_tokens = ["ct-1"]
allowed_origins = ["{ORIGIN}"]
window = "1s"
per_ip_per_minute = {per_ip_per_minute}"#
    ))
    .await
}

fn now_ms() -> i64 {
    thorbis_obs_server::agent::system_now().0
}

/// A batch from the page view of `route` (one view per route), sampled at 10%, with `events`,
/// sent at `t` (ms since the epoch; the session starts then too).
fn batch(t: i64, route: &str, events: &[String]) -> String {
    format!(
        r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-1","sampled":true,"startedAt":{t},"sampleRate":10}},
"view":{{"id":"v{}","url":"https://app.example{route}","route":"{route}"}},"sentAt":{t},"events":[{}]}}"#,
        route.replace('/', "-"),
        events.join(",")
    )
}

/// A vital at `at` (ms since the epoch): the caller's one reading of the clock, so that every
/// event of a test carries the time the test chose.
fn vital(at: i64, name: &str, value: f64) -> String {
    format!(r#"{{"type":"vital","at":{at},"name":"{name}","value":{value},"rating":"poor","id":"m-{name}"}}"#)
}

/// An error at `at` (ms since the epoch), as [`vital`].
fn error(at: i64, message: &str, line: u32) -> String {
    format!(
        r#"{{"type":"error","at":{at},"kind":"error","message":"{message}","stack":"{message}\n    at pay (https://app.example/_next/pay.js:1:{line})","tags":{{"businessProcess":"payments"}},"count":1}}"#
    )
}

async fn post(c: &reqwest::Client, base: &str, query: &str, body: String) -> (u16, serde_json::Value, Option<String>) {
    let r = c
        .post(format!("{base}/v1/rum{query}"))
        .header("Content-Type", "text/plain;charset=UTF-8")
        .header("Origin", ORIGIN)
        .header("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let cors = r.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    if status == 202 {
        assert_eq!(cors.as_deref(), Some(ORIGIN), "an allowed origin gets its CORS header");
    }
    (status, r.json().await.unwrap_or(serde_json::Value::Null), retry)
}

async fn metrics(c: &reqwest::Client, base: &str) -> String {
    c.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_become_windows_metrics_error_groups_and_one_page() {
    let a = start(6000).await;
    let c = reqwest::Client::new();
    let t = now_ms();

    // Refusals: each names its problem, and nothing of them is counted.
    let good = batch(t, "/hs/work-orders/1042", &[vital(t, "LCP", 4600.0), vital(t, "TTFB", 120.0)]);
    let (s, body, _) = post(&c, &a.base, "", good.clone()).await;
    assert_eq!((s, body["field"].as_str()), (401, Some("token")), "{body}");
    let (s, _, _) = post(&c, &a.base, "?token=nope", good.clone()).await;
    assert_eq!(s, 401);
    let bad_value = batch(t, "/hs/work-orders/1042", &[vital(t, "LCP", 4600.0), vital(t, "CLS", -1.0)]);
    let (s, body, _) = post(&c, &a.base, "?token=ct-1", bad_value).await;
    assert_eq!((s, body["field"].as_str()), (400, Some("events[1].value")), "{body}");
    let (s, body, _) = post(&c, &a.base, "?token=ct-1", good.replace("\"events\"", "\"evnts\"")).await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("evnts")), "serde names the unknown field: {body}");
    let (s, _, _) = post(&c, &a.base, "?token=ct-1", "x".repeat(70_000)).await;
    assert_eq!(s, 413);
    let r = c
        .post(format!("{}/v1/rum?token=ct-1", a.base))
        .header("Origin", "https://evil.example")
        .header("Content-Type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(format!("{}/v1/rum?token=ct-1", a.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(good.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 415);
    // A preflight from the allowed origin.
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/v1/rum", a.base))
        .header("Origin", ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers().get("access-control-allow-methods").and_then(|v| v.to_str().ok()), Some("POST"));

    // Good batches: a slow LCP on a work order page, the same error from two lines; all three
    // inside one window (windows end on whole seconds here).
    while !(100..500).contains(&(now_ms() % 1000)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in [1042, 1043, 1044] {
        let events =
            [vital(t, "LCP", 4600.0), vital(t, "TTFB", 120.0), error(t, "TypeError: card is undefined", 10 + id)];
        let (s, body, _) = post(&c, &a.base, "?token=ct-1", batch(t, &format!("/hs/work-orders/{id}"), &events)).await;
        assert_eq!((s, body["accepted"].as_u64()), (202, Some(3)), "{body}");
    }

    // The window closes within a second: /metrics carries the p75 and the error rate. The
    // window's samples go in one at a time, the error rate last: wait for it, not for the first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut text = metrics(&c, &a.base).await;
    while !(text.contains("web_vitals_lcp_p75") && text.contains("rum_error_rate")) {
        assert!(tokio::time::Instant::now() < deadline, "no RUM metrics in\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = metrics(&c, &a.base).await;
    }
    let all = [("service", "shop"), ("env", "prod"), ("route", "all"), ("device", "all")];
    let p75 = metric(&text, "web_vitals_lcp_p75", &all).unwrap_or_else(|| panic!("no overall LCP p75 in\n{text}"));
    assert!((p75 - 4600.0).abs() <= 46.0, "p75 {p75}");
    let route = metric(&text, "web_vitals_lcp_p75", &[("route", "/hs/work-orders/:id"), ("device", "mobile")]);
    assert!(route.is_some(), "per route (ids folded) and device:\n{text}");
    let views = metric(&text, "rum_views", &[("service", "shop"), ("route", "all")]);
    assert_eq!(views, Some(30.0), "three views at 10% stand for thirty:\n{text}");
    let rate = metric(&text, "rum_error_rate", &[("service", "shop"), ("env", "prod")]);
    assert_eq!(rate, Some(0.1), "three errors per thirty views:\n{text}");
    assert!(!text.contains("CLS"), "the refused batch counted nothing");
    let refused = |o: &str| metric(&text, "thorbis_collector_batches_total", &[("outcome", o)]);
    assert_eq!(refused("accepted"), Some(3.0), "\n{text}");
    assert_eq!(refused("invalid"), Some(2.0));
    assert_eq!(refused("unauthorized"), Some(3.0), "two tokens and the origin");
    assert_eq!(refused("too_large_or_wrong_type"), Some(2.0));

    // The slow LCP pages once through the rum pack.
    wait_for("the LCP page", Duration::from_secs(10), || !a.pager.sent().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = a.pager.sent();
    let lcp: Vec<_> = sent.iter().filter(|n| n.rule_id == "web-vitals-lcp-slow").collect();
    assert_eq!(lcp.len(), 1, "one page for one slow site, not one per route: {sent:#?}");

    // Errors grouped: one group of three, with its business context and a stack.
    let errors = a.get_json("/api/v1/rum/errors?range=1h").await;
    let groups = errors["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), 1, "{errors}");
    assert_eq!(groups[0]["count"], 3);
    assert_eq!(groups[0]["tags"]["businessProcess"], "payments");
    assert_eq!(groups[0]["route"], "/hs/work-orders/:id");
    assert!(groups[0]["sample_stack"].as_str().is_some_and(|s| s.contains("pay.js")));
    assert!(a.handle.alerts().iter().any(|al| al.rule_id == "web-vitals-lcp-slow"));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_over_its_limit_gets_429_with_retry_after() {
    // 60 a minute: bursts of 10, then one a second.
    let a = start(60).await;
    let c = reqwest::Client::new();
    let t = now_ms();
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..12 {
        let (s, _, r) = post(&c, &a.base, "?token=ct-1", batch(t, "/", &[vital(t, "TTFB", 50.0)])).await;
        statuses.push(s);
        retry = retry.or(r);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 10, "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(retry.as_deref(), Some("1"), "one request a second at 60 a minute");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_rolls_up_vitals_errors_sessions_and_business() {
    let a = RumAgent::start("window = \"1s\"\nsession_idle = \"1s\"").await;
    let c = reqwest::Client::new();
    let t = now_ms();
    let page = |view: &str, events: &[String]| {
        format!(
            r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-sum","sampled":true,"startedAt":{},"sampleRate":100}},
"view":{{"id":"{view}","url":"https://app.example/hs/invoices","route":"/hs/invoices"}},"sentAt":{t},"events":[{}]}}"#,
            t - 30_000,
            events.join(",")
        )
    };
    let business = format!(
        r#"{{"type":"business","at":{t},"name":"invoice_generated","props":{{"invoiceId":"inv_1","amount":450}}}}"#
    );
    let conversion = format!(r#"{{"type":"conversion","at":{t},"conversionType":"invoice-paid","value":450}}"#);
    let action = format!(r#"{{"type":"action","at":{t},"name":"Pay","actionType":"click","target":"button#pay"}}"#);
    // Every event at `t`, the one reading of the clock: the session lasts exactly 30 s, from its
    // start to its last event.
    let first =
        page("v-one", &[vital(t, "LCP", 1900.0), vital(t, "CLS", 0.2), error(t, "TypeError: x is undefined", 3)]);
    let journey = |step: &str| format!(r#"{{"type":"journey","at":{t},"journeyType":"invoice","step":"{step}"}}"#);
    let second = page(
        "v-two",
        &[vital(t, "LCP", 2100.0), business, conversion, action, journey("opened"), journey("opened"), journey("paid")],
    );
    for body in [first, second] {
        assert_eq!(a.post(body).await, 202);
    }
    // The session ends after a second without batches, counted at a window's close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s: serde_json::Value =
            c.get(format!("{}/api/v1/summary?range=1h", a.base)).send().await.expect("get").json().await.expect("json");
        if s["user_experience"]["sessions_ended"].as_f64() == Some(1.0) {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "the session never ended: {s:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lcp = &s["performance"]["vitals"]["LCP"];
    // PromQL's p75 of [1900, 2100]: rank 0.75, so 1900 * 0.25 + 2100 * 0.75 = 2050 (each
    // neighbour within the sketch's 0.5%).
    assert!(lcp["p75"].as_f64().is_some_and(|p| (2040.0..=2060.0).contains(&p)), "{lcp}");
    assert_eq!((lcp["rating"].as_str(), lcp["spec_status"].as_str()), (Some("good"), Some("above_target")), "{lcp}");
    assert_eq!(s["performance"]["vitals"]["CLS"]["rating"], "needs-improvement");
    let rel = &s["reliability"];
    assert_eq!((rel["browser_errors"].as_f64(), rel["page_views"].as_f64()), (Some(1.0), Some(2.0)), "{rel}");
    assert_eq!(rel["browser_error_rate"].as_f64(), Some(0.5));
    let ux = &s["user_experience"];
    assert_eq!(ux["session_duration_seconds_avg"].as_f64(), Some(30.0), "from the session's start to its last event");
    assert_eq!(ux["bounce_rate"].as_f64(), Some(0.0), "two views and an action: no bounce");
    assert_eq!(ux["conversion_rates"]["invoice-paid"].as_f64(), Some(0.5));
    let funnel = &ux["funnels"]["invoice"];
    assert_eq!((funnel[0]["step"].as_str(), funnel[0]["count"].as_f64()), (Some("opened"), Some(2.0)), "{funnel}");
    assert_eq!((funnel[1]["step"].as_str(), funnel[1]["share"].as_f64()), (Some("paid"), Some(0.5)), "{funnel}");
    let b = &s["business_impact"];
    assert_eq!(
        (b["events"]["invoice_generated"]["count"].as_f64(), b["events"]["invoice_generated"]["value"].as_f64()),
        (Some(1.0), Some(450.0))
    );
    assert_eq!(b["conversions"]["invoice-paid"]["value"].as_f64(), Some(450.0));
    // /metrics has the closed window only after the summary does (the agent stores it first).
    let duration = |t: &str| metric(t, "rum_session_duration_seconds_avg", &[("service", "shop")]);
    let text = a.metrics_until("the session's duration", |t| duration(t).is_some()).await;
    assert_eq!(duration(&text), Some(30.0), "\n{text}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_groups_and_windows_survive_a_restart() {
    use std::sync::Arc;
    use thorbis_obs_server::store::Store;
    use thorbis_obs_server::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("agent.db");
    let store = || Some(Arc::new(SqliteStore::open(&path).expect("store")) as Arc<dyn Store>);
    let a = RumAgent::start_with("window = \"1s\"", None, store()).await;
    let t = now_ms();
    let events = [
        vital(t, "LCP", 4600.0),
        error(t, "TypeError: card is undefined", 7),
        error(t, "TypeError: card is undefined", 9),
    ];
    assert_eq!(a.post(batch(t, "/hs/pay", &events)).await, 202);
    // The window closes and is kept in the store.
    let reader = SqliteStore::open(&path).expect("reader");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reader.rum_windows_since(thorbis_obs_core::time::Timestamp(0)).await.expect("read").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the window was not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await;
    // A new agent on the same file still knows the last hour.
    let b = RumAgent::start_with("window = \"1s\"", None, store()).await;
    let errors = b.get_json("/api/v1/rum/errors?range=1h").await;
    assert_eq!(errors["errors"][0]["count"], 2, "{errors}");
    let summary = b.get_json("/api/v1/summary?range=1h").await;
    let p75 = summary["performance"]["vitals"]["LCP"]["p75"].as_f64().unwrap_or(0.0);
    assert!((p75 - 4600.0).abs() <= 46.0, "{summary:#}");
    b.stop().await;
}

/// Session replay over real HTTP (`POST /v1/replay`): chunks gzip-compressed and plain, out of
/// order and sent twice, read back in order; a bad token, an oversized body and events outside
/// the chunk's range are refused and leave nothing; a session at its byte cap gets 413; the
/// total cap evicts the sessions that ended first; `/metrics` reports all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_chunks_are_kept_in_order_within_their_caps() {
    use std::io::Write;
    let gz = |text: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).expect("gzip");
        e.finish().expect("gzip")
    };
    let now = thorbis_obs_server::agent::system_now().0;
    // rrweb-shaped events: a Meta, a FullSnapshot, incremental snapshots (padding that does not
    // compress, so each chunk's size is what the caps see).
    let mut seed = 7u64;
    let mut noise = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(seed >> 58) as usize] as char
            })
            .collect()
    };
    let mut events = |start: i64, pad: usize| {
        format!(
            r#"[{{"type":4,"data":{{"href":"https://app.example/invoices","width":1280,"height":800}},"timestamp":{start}}},{{"type":2,"data":{{"node":{{"type":0,"childNodes":[]}}}},"timestamp":{}}},{{"type":3,"data":{{"source":2,"type":2,"id":7,"pad":"{}"}},"timestamp":{}}}]"#,
            start + 5,
            noise(pad),
            start + 900
        )
    };
    let big: Vec<(i64, Vec<u8>)> =
        [40_000, 39_000, 38_000, 30_000, 20_000].iter().map(|ago| (now - ago, gz(&events(now - ago, 3_000)))).collect();
    let chunk = big.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    // The caps: two big chunks a session, three in all.
    let (session_cap, total_cap) = (2 * chunk + 100, 3 * chunk + 100);
    let a = RumAgent::start(&format!(
        "window = \"1s\"\nclient_tokens = [\"pk\"]\n[replay]\nmax_chunk_bytes = {0}\nmax_inflated_bytes = 65536\n\
         max_inflight_bytes = {0}\nmax_session_bytes = {session_cap}\nmax_total_bytes = {total_cap}\n\
         prune_interval = \"1s\"",
        chunk + 200
    ))
    .await;
    let c = reqwest::Client::new();
    let post = |session: &str, seq: u32, start: i64, body: Vec<u8>, gzip: bool, token: &str| {
        let enc = if gzip { "gzip" } else { "none" };
        let url = format!(
            "{}/v1/replay?token={token}&session={session}&seq={seq}&start={start}&end={}&enc={enc}",
            a.base,
            start + 900
        );
        let req = c.post(url).header("Content-Type", "text/plain").header("Origin", ORIGIN).body(body);
        async move {
            let r = req.send().await.expect("post");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    // Out of order, one gzip and one plain, the second sent twice.
    let (t0, t1) = (now - 60_000, now - 58_000);
    assert_eq!(post("s-1", 1, t1, gz(&events(t1, 10)), true, "pk").await.0, 202);
    assert_eq!(post("s-1", 0, t0, events(t0, 10).into_bytes(), false, "pk").await.0, 202);
    let (code, body) = post("s-1", 1, t1, gz(&events(t1, 10)), true, "pk").await;
    assert_eq!((code, body.as_str()), (202, r#"{"duplicate":true,"stored":false}"#));
    let s1 = a.get_json("/api/v1/replays/s-1").await;
    let seqs: Vec<u64> =
        s1["chunks"].as_array().map(|c| c.iter().filter_map(|c| c["seq"].as_u64()).collect()).unwrap_or_default();
    assert_eq!(seqs, [0, 1], "{s1}");
    let times: Vec<i64> =
        s1["events"].as_array().map(|e| e.iter().filter_map(|e| e["timestamp"].as_i64()).collect()).unwrap_or_default();
    assert_eq!(times, [t0, t0 + 5, t0 + 900, t1, t1 + 5, t1 + 900], "in order, as recorded");
    assert_eq!(s1["events"][0]["data"]["href"], "https://app.example/invoices", "events kept as sent");
    // Refused, and nothing kept: a bad token, an oversized body, events outside the range, a
    // time from the future, a body that is not gzip.
    let (code, body) = post("s-1", 2, t1, gz(&events(t1, 10)), true, "nope").await;
    assert_eq!(code, 401, "{body}");
    let (code, body) = post("s-1", 3, t1, events(t1, chunk + 300).into_bytes(), false, "pk").await;
    assert!(code == 413 && body.contains("collector.replay.max_chunk_bytes"), "{code} {body}");
    let (code, body) = post("s-1", 4, t1 + 5_000, gz(&events(t1, 10)), true, "pk").await;
    assert!(code == 400 && body.contains("events[0].timestamp"), "{code} {body}");
    let future = now + 3_600_000;
    let (code, body) = post("s-1", 5, future, gz(&events(future, 10)), true, "pk").await;
    assert!(code == 400 && body.contains("\"field\":\"end\""), "{code} {body}");
    let (code, body) = post("s-1", 6, t1, b"not gzip".to_vec(), true, "pk").await;
    assert!(code == 400 && body.contains("gzip"), "{code} {body}");
    assert_eq!(a.get_json("/api/v1/replays/s-1").await["chunks"].as_array().map(Vec::len), Some(2));
    // The session cap: two big chunks fit, the third is refused.
    for (seq, (start, data)) in big[..3].iter().enumerate() {
        let (code, body) = post("s-2", seq as u32, *start, data.clone(), true, "pk").await;
        let expected = if seq < 2 { 202 } else { 413 };
        assert_eq!(code, expected, "chunk {seq}: {body}");
        if seq == 2 {
            assert!(body.contains("collector.replay.max_session_bytes"), "{body}");
        }
    }
    // The total cap: two more sessions, ended later; the ones that ended first go whole.
    for (session, (start, data)) in [("s-3", &big[3]), ("s-4", &big[4])] {
        assert_eq!(post(session, 0, *start, data.clone(), true, "pk").await.0, 202);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let kept = loop {
        let list = a.get_json("/api/v1/replays").await;
        let ids: Vec<String> = list["sessions"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["session_id"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        if ids == ["s-4", "s-3"] {
            break list;
        }
        assert!(tokio::time::Instant::now() < deadline, "sessions kept: {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bytes: u64 =
        kept["sessions"].as_array().map(|s| s.iter().filter_map(|s| s["bytes"].as_u64()).sum()).unwrap_or(0);
    assert!(bytes <= total_cap as u64, "{kept}");
    let code = reqwest::get(format!("{}/api/v1/replays/s-2", a.base)).await.expect("get").status().as_u16();
    assert_eq!(code, 404, "an evicted session is gone whole");
    let text = a
        .metrics_until("replay figures", |t| {
            metric(t, "thorbis_replay_removed_chunks_total", &[("reason", "evicted")]).is_some_and(|v| v >= 4.0)
        })
        .await;
    let m = |name: &str, pairs: &[(&str, &str)]| metric(&text, name, pairs);
    assert_eq!(m("thorbis_replay_chunks_total", &[("outcome", "stored")]), Some(6.0));
    assert_eq!(m("thorbis_replay_chunks_total", &[("outcome", "duplicate")]), Some(1.0));
    assert_eq!(m("thorbis_replay_chunks_total", &[("outcome", "session_full")]), Some(1.0));
    assert_eq!(m("thorbis_replay_chunks_total", &[("outcome", "refused")]), Some(5.0));
    assert_eq!(m("thorbis_replay_sessions", &[]), Some(2.0));
    assert_eq!(m("thorbis_replay_bytes", &[]), Some(bytes as f64));
    // Bodies in flight are bounded: one that announces a full chunk and sends nothing holds
    // the budget (one chunk here), so the next is told to come back; once it is gone, room.
    let addr = a.base.trim_start_matches("http://").to_string();
    let start = big[4].0;
    let head = format!(
        "POST /v1/replay?token=pk&session=s-5&seq=0&start={start}&end={}&enc=gzip HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        start + 900,
        chunk + 200
    );
    let hold = async || {
        let mut held = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut held, head.as_bytes()).await.expect("write");
        held
    };
    let mut held = hold().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = post("s-6", 0, start, big[4].1.clone(), true, "pk").await;
        if code == 503 {
            assert!(body.contains("max_inflight_bytes"), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never busy: {code} {body}");
        // The held request may have come second, while this chunk's body held the budget, and
        // been told 503 itself: it is answered, so it holds nothing; announce it again.
        if !matches!(held.try_read(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            held = hold().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while post("s-6", 0, start, big[4].1.clone(), true, "pk").await.0 != 202 {
        assert!(tokio::time::Instant::now() < deadline, "no room after the held body went");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
}
