//! The built-in dashboards in a real headless Chromium (Debian's): an in-process agent with
//! seeded series, a firing alert and a browser error from the collector; Chromium loads the
//! page, runs its refresh script for a while (virtual time), and the test reads the rendered DOM:
//! each widget shows the seeded numbers, no console error was logged, and screenshots of both
//! boards are saved under the cargo target's tmp directory for people to look at.
#![cfg(feature = "collector")]

mod support;

use std::time::Duration;
use support::chrome::{chromium, section};
use support::rum::RumAgent;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_server::agent::{AgentHandle, system_now};

fn push(h: &AgentHandle, name: &str, pairs: &[(&str, &str)], value: f64, ago_s: u64) {
    let mut labels = Labels::from_pairs([("service", "shop"), ("env", "prod")]);
    for (k, v) in pairs {
        labels.insert(*k, *v);
    }
    let at = system_now().minus(Duration::from_secs(ago_s));
    h.push(&Sample::new(name, labels, value, at)).expect("sample");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_dashboards_show_seeded_numbers_in_chromium() {
    let agent = RumAgent::start("window = \"1s\"").await;
    let (h, base) = (agent.handle.clone(), agent.base.clone());
    let c = reqwest::Client::new();

    // Seeded: LCP p75 over the last 20 minutes (a slow site now), INP, CLS, the error rate,
    // page views and business figures.
    let all = [("route", "all"), ("device", "all")];
    for (ago, v) in [(1200, 2100.0), (600, 3300.0), (2, 4600.0)] {
        push(&h, "web_vitals_lcp_p75", &all, v, ago);
        push(&h, "rum_views", &[("route", "all")], v / 100.0, ago);
    }
    push(&h, "web_vitals_inp_p75", &all, 180.0, 2);
    push(&h, "web_vitals_cls_p75", &all, 0.05, 2);
    push(&h, "rum_error_rate", &[], 0.03, 2);
    push(&h, "business_events", &[("name", "work_order_created")], 12.0, 2);
    push(&h, "business_events", &[("name", "invoice_generated")], 7.0, 2);
    push(&h, "business_value", &[("name", "payment_processed")], 4500.0, 2);
    // A browser error through the collector, from an unsampled session (errors only, so its
    // window computes no error rate over the seeded one).
    let t = system_now().0;
    let body = format!(
        r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-1","sampled":false,"startedAt":{t}}},"view":{{"id":"v-1","url":"https://app.example/hs/pay","route":"/hs/pay"}},"sentAt":{t},"events":[{{"type":"error","at":{t},"kind":"error","message":"TypeError: card is undefined <b>","stack":"TypeError: card is undefined\n    at pay (https://app.example/pay.js:1:2)","tags":{{"businessProcess":"payments"}},"count":2}}]}}"#
    );
    let r =
        c.post(format!("{base}/v1/rum")).header("Content-Type", "text/plain").body(body).send().await.expect("post");
    assert_eq!(r.status().as_u16(), 202);
    // The slow LCP fires the rum pack's rule.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !h.alerts().iter().any(|a| a.rule_id == "web-vitals-lcp-slow") {
        assert!(tokio::time::Instant::now() < deadline, "the LCP rule did not fire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The widget JSON.
    let w: serde_json::Value =
        c.get(format!("{base}/api/v1/widgets/lcp-p75")).send().await.expect("get").json().await.expect("json");
    assert_eq!((w["value"].as_f64(), w["status"].as_str()), (Some(4600.0), Some("critical")), "{w}");
    let missing = c.get(format!("{base}/api/v1/widgets/nope")).send().await.expect("get");
    assert_eq!(missing.status().as_u16(), 404);

    // The page in Chromium, its refresh script given 40 s of virtual time (widgets refresh every
    // 10-30 s).
    let (dom, log) = chromium(&format!("{base}/"), &["--virtual-time-budget=40000", "--dump-dom"]).await;
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages on the dashboard: {console:#?}");
    assert!(dom.contains("<h1>Operations</h1>"), "{dom}");
    assert!(section(&dom, "lcp-p75").contains("4,600 ms"), "{}", section(&dom, "lcp-p75"));
    assert!(section(&dom, "lcp-p75").contains("Critical"));
    assert!(section(&dom, "inp-p75").contains("180 ms"));
    assert!(section(&dom, "cls-p75").contains("0.05"));
    assert!(section(&dom, "browser-error-rate").contains("aria-label=\"Browser errors per page view: 0.03 of 0.2\""));
    let chart = section(&dom, "lcp-p75-chart");
    assert!(chart.contains("<polyline") && chart.contains("latest 4,600 ms"), "{chart}");
    let alerts = section(&dom, "active-alerts");
    assert!(alerts.contains("SlowLargestContentfulPaint") && alerts.contains("firing"), "{alerts}");
    assert!(alerts.contains("LCP p75 of shop is 4.6s"), "the rule's summary: {alerts}");
    let errors = section(&dom, "browser-errors");
    assert!(errors.contains("TypeError: card is undefined &lt;b&gt;"), "escaped, not markup: {errors}");
    assert!(errors.contains("payments") && errors.contains("/hs/pay"), "{errors}");
    // The spec's error table: each group's type and workflow state.
    assert!(errors.contains("<th scope=\"col\">type</th>") && errors.contains("<td>unresolved</td>"), "{errors}");
    assert!(dom.contains("data-refreshed=\""), "the refresh script swapped widgets in");

    // The executive board, by its link.
    let (exec, _) = chromium(&format!("{base}/dashboards/executive"), &["--dump-dom"]).await;
    assert!(section(&exec, "work-orders-created").contains(">12<"), "{}", section(&exec, "work-orders-created"));
    assert!(section(&exec, "payments-value").contains("$4,500"));

    // Screenshots for people.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (board, file) in [("", "dashboard-operations.png"), ("dashboards/executive", "dashboard-executive.png")] {
        let path = shots.join(file);
        let _ = std::fs::remove_file(&path);
        chromium(&format!("{base}/{board}"), &[&format!("--screenshot={}", path.display())]).await;
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} looks empty", path.display());
        eprintln!("screenshot: {}", path.display());
    }
    agent.stop().await;
}
