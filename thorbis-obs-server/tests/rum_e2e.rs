//! The browser-to-alert loop in one agent, with real parts only: headless Chromium opens a page
//! that loads the SDK (the plain-browser build of `scripts/build-sdk.sh`) pointed at the agent's
//! collector; the page paints its largest image after 2.8 s and throws errors; the agent's
//! `/metrics` shows the LCP p75 and an error rate, the errors API groups the errors; the `rum`
//! pack's rules fire and a local webhook receiver gets the LCP page once; the dashboard shows
//! the slow LCP with the alert and the errors.
#![cfg(all(feature = "collector", feature = "synthetic", feature = "webhook"))]

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::chrome::{chromium, section};
use support::rum::{RumAgent, metric};
use support::sdk::{hero, sdk_dir, sdk_file};
use support::web::{Reply, WebServer};
use thorbis_obs_server::channels::webhook::WebhookChannel;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::synthetic::webdriver::SyntheticRunner;
use thorbis_obs_server::synthetic::{SyntheticSection, WorkflowFile};

fn page(agent: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slow work orders</title></head>
<body><main><h1>Work orders</h1><p>Loading the board...</p></main>
<script type="module">
import * as obs from "/sdk/index.js";
obs.init({{ endpoint: "{agent}/v1/rum", service: "shop", env: "e2e", flushIntervalMs: 500 }});
// The largest paint comes late: a slow page by the spec's 2.5 s LCP warning level.
setTimeout(() => {{
  const img = document.createElement("img");
  img.id = "hero"; img.width = 900; img.height = 420; img.src = "/hero.svg";
  img.onload = () => {{
    setTimeout(() => {{ throw new TypeError("card is undefined"); }});
    Promise.reject(new Error("payment timed out"));
    setTimeout(() => document.body.insertAdjacentHTML("beforeend", "<p id='done'>done</p>"), 500);
  }};
  document.querySelector("main").append(img);
}}, 2800);
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_page_in_chromium_pages_through_the_agent_and_shows_on_the_dashboard() {
    // The webhook receiver.
    let (receiver, hooks) = support::web::json_sink().await;
    let hook =
        WebhookChannel::new("hook", Secret::new(receiver.url("/hook")), None, Duration::from_secs(5)).expect("hook");
    let agent = RumAgent::start_with("window = \"1s\"", Some(Arc::new(hook)), None).await;

    // The site, on its own origin: the SDK posts to the agent's (text/plain, no preflight).
    let sdk = sdk_dir();
    let html = page(&agent.base);
    let site = WebServer::start(move |r| {
        let path = r.path.split('?').next().unwrap_or("");
        sdk_file(&sdk, path).unwrap_or_else(|| match path {
            "/hs/work-orders" => Reply::html(&html),
            "/hero.svg" => Reply::bytes("image/svg+xml", hero()),
            "/blank" => Reply::html("<!doctype html><title>blank</title><p>bye</p>"),
            _ => Reply::new(404, "not found"),
        })
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("wf.toml");
    let wf = format!(
        r##"[[workflows]]
name = "slow-page"
timeout = "60s"
steps = [
  {{ type = "navigate", url = "{}" }},
  {{ type = "wait", selector = "#done", timeout = "20s" }},
  {{ type = "navigate", url = "{}" }},
]
"##,
        site.url("/hs/work-orders"),
        site.url("/blank")
    );
    std::fs::write(&file, wf).expect("write");
    let workflow = WorkflowFile::load(&file).expect("workflow");
    let runner = SyntheticRunner::new(SyntheticSection::default(), dir.path());
    let run = runner.run(&workflow.workflows[0]).await;
    assert!(run.success, "{run:#?}");
    drop(runner);

    // /metrics: the LCP p75 and the error rate of the window the beacons landed in.
    let all = [("service", "shop"), ("route", "all"), ("device", "all")];
    // A window's samples go in one at a time, the error rate last: wait for both.
    let text = agent
        .metrics_until("LCP and an error rate", |t| {
            metric(t, "web_vitals_lcp_p75", &all).is_some()
                && metric(t, "rum_error_rate", &[("service", "shop")]).is_some()
        })
        .await;
    let lcp = metric(&text, "web_vitals_lcp_p75", &all).unwrap_or(0.0);
    assert!((2800.0..6000.0).contains(&lcp), "the image came at 2.8 s: LCP p75 {lcp}");
    assert!(metric(&text, "rum_error_rate", &[("service", "shop")]).is_some(), "an error rate per window:\n{text}");

    // The errors, grouped.
    let errors = agent.get_json("/api/v1/rum/errors").await;
    let messages: Vec<&str> =
        errors["errors"].as_array().into_iter().flatten().filter_map(|g| g["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("TypeError: card is undefined")), "{errors}");
    assert!(messages.iter().any(|m| m.contains("payment timed out")), "{errors}");

    // Both rum rules fire (errors per page view are far above 5 per 100) and the webhook
    // receiver gets the LCP page once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let hooks_for = |alertname: &str| -> Vec<serde_json::Value> {
        hooks
            .lock()
            .expect("lock")
            .iter()
            .filter(|h| h["alerts"][0]["labels"]["alertname"] == alertname)
            .cloned()
            .collect()
    };
    while hooks_for("SlowLargestContentfulPaint").is_empty() || hooks_for("BrowserErrorRateHigh").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "webhooks so far: {:#?}", hooks.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fired = hooks_for("SlowLargestContentfulPaint");
    assert_eq!(fired.len(), 1, "one page for one slow page: {fired:#?}");
    assert_eq!(fired[0]["status"], "firing");
    assert_eq!(fired[0]["alerts"][0]["labels"]["service"], "shop");

    // The dashboard shows it.
    let (dom, log) = chromium(&format!("{}/", agent.base), &["--dump-dom"]).await;
    assert!(!log.lines().any(|l| l.contains(":CONSOLE")), "console messages on the dashboard:\n{log}");
    let lcp_widget = section(&dom, "lcp-p75");
    assert!(lcp_widget.contains("Critical") || lcp_widget.contains("Warning"), "{lcp_widget}");
    assert!(
        section(&dom, "active-alerts").contains("SlowLargestContentfulPaint"),
        "{}",
        section(&dom, "active-alerts")
    );
    assert!(
        section(&dom, "browser-errors").contains("TypeError: card is undefined"),
        "{}",
        section(&dom, "browser-errors")
    );
    agent.stop().await;
}
