//! The browser SDK end to end in a real headless Chromium: a local page with a late large
//! image (LCP), a layout shift, a click handler that blocks the main thread for 150 ms, a
//! thrown error, an unhandled rejection, a business CustomEvent, an SPA route change and a
//! typed email; a local receiver captures the SDK's batches. Every batch must pass core's wire
//! validation, and each event and value is asserted. The page is driven by our own synthetic
//! workflow runner (chromedriver).
//!
//! The same page loads Google's `web-vitals` (6.2.3): our LCP, FCP and TTFB must equal its
//! values within 1 ms, CLS within 0.001, and INP exactly, for the same page and interactions.
//!
//! Needs the SDK's plain-browser build and web-vitals: `bash scripts/build-sdk.sh`
//! (scripts/test.sh runs it and exports THORBIS_SDK_WEB_DIR and THORBIS_WEB_VITALS_JS).
#![cfg(feature = "synthetic")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::web::{Reply, WebServer};
use thorbis_obs_core::wire::Batch;
use thorbis_obs_server::synthetic::webdriver::SyntheticRunner;
use thorbis_obs_server::synthetic::{SyntheticSection, WorkflowFile};

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SDK end to end</title></head>
<body>
<main>
  <h1 id="title">Work orders</h1>
  <input id="email" placeholder="Customer email">
  <button id="block">Block 150 ms</button>
  <button id="business">Create work order</button>
  <button id="throw">Throw</button>
  <button id="reject">Reject</button>
  <button id="route">Open invoice</button>
  <button id="done">Done</button>
</main>
<script type="module">
import initWasm, * as obs from "/sdk/thorbis_obs_wasm.js";
import { onLCP, onFCP, onTTFB, onCLS, onINP } from "/vendor/web-vitals.js";
const reference = (m) => navigator.sendBeacon("/reference",
  JSON.stringify({ name: m.name, value: m.value, navigationType: m.navigationType }));
for (const on of [onLCP, onFCP, onTTFB, onCLS, onINP]) on(reference);
await initWasm({ module_or_path: "/sdk/thorbis_obs_wasm_bg.wasm" });
obs.init({ endpoint: "/v1/rum", clientToken: "ct-1", service: "e2e", env: "test", version: "1.2.3", flushIntervalMs: 400 });
const on = (id, f) => document.getElementById(id).addEventListener("click", f);
on("block", () => { const t = performance.now(); while (performance.now() - t < 150) {} });
on("business", () => document.dispatchEvent(new CustomEvent("work-order-created",
  { detail: { id: "wo_1", industry: "home-services", priority: "high", estimatedValue: 450 } })));
on("throw", () => setTimeout(() => { throw new TypeError("boom from e2e"); }));
on("reject", () => { Promise.reject(new Error("rejected in e2e")); });
on("route", () => history.pushState({}, "", "/hs/invoices/42?token=abc123&q=open&contact=jo@x.io"));
on("done", () => {
  obs.track("e2e_done", { step: 9 });
  obs.flush();
  const p = document.createElement("p"); p.id = "flushed"; document.body.appendChild(p);
  // web-vitals handles event entries in idle periods: give it a quiet second before the page goes.
  setTimeout(() => {
    const q = document.createElement("p"); q.id = "settled"; document.body.appendChild(q);
  }, 1000);
});
// A late, large image: the LCP element; inserted above the content, it shifts the layout.
setTimeout(() => {
  const img = document.createElement("img");
  img.id = "hero"; img.width = 900; img.height = 420; img.src = "/hero.svg";
  document.querySelector("main").prepend(img);
}, 300);
</script>
</body></html>"#;

/// A 900x420 SVG of 300 circles: Chrome leaves low-entropy images (under 0.05 bits per
/// pixel, a plain rectangle say) out of LCP, so the hero carries about 12 KB of detail.
fn hero() -> Vec<u8> {
    let mut svg = String::from(r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="420">"#);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        svg.push_str(&format!(
            r##"<circle cx="{}" cy="{}" r="{}" fill="#{:06x}"/>"##,
            x % 900,
            (x >> 10) % 420,
            5 + (x >> 20) % 40,
            (x >> 30) & 0xff_ffff
        ));
    }
    svg.push_str("</svg>");
    svg.into_bytes()
}

fn workflow(base: &str) -> String {
    format!(
        r##"[[workflows]]
name = "sdk-e2e"
timeout = "60s"
steps = [
  {{ type = "navigate", url = "{base}/app/orders" }},
  {{ type = "wait", selector = "#hero", timeout = "10s" }},
  {{ type = "fill", selector = "#email", value = "typed-secret@example.com" }},
  {{ type = "click", selector = "#block" }},
  {{ type = "click", selector = "#business" }},
  {{ type = "click", selector = "#throw" }},
  {{ type = "click", selector = "#reject" }},
  {{ type = "click", selector = "#route" }},
  {{ type = "click", selector = "#done" }},
  {{ type = "wait", selector = "#flushed" }},
  {{ type = "wait", selector = "#settled" }},
  {{ type = "navigate", url = "{base}/blank" }},
  {{ type = "back" }},
  {{ type = "validate", selector = "#settled" }},
  {{ type = "navigate", url = "{base}/blank" }},
]
"##
    )
}

/// A batch as it arrived: (request path with query, body).
type Captured = (String, Vec<u8>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reports_vitals_errors_actions_and_business_events_from_chromium() {
    let sdk_dir = std::env::var("THORBIS_SDK_WEB_DIR").unwrap_or_else(|_| {
        panic!("THORBIS_SDK_WEB_DIR is not set: run `bash scripts/build-sdk.sh` (scripts/test.sh does) and point it at target/sdk/web")
    });
    let sdk_dir = std::path::PathBuf::from(sdk_dir);
    assert!(sdk_dir.join("thorbis_obs_wasm_bg.wasm").exists(), "no SDK build in {}", sdk_dir.display());
    let web_vitals = std::env::var("THORBIS_WEB_VITALS_JS").unwrap_or_else(|_| {
        panic!("THORBIS_WEB_VITALS_JS is not set: run `bash scripts/build-sdk.sh` (it installs web-vitals 6.2.3 under target/tools)")
    });
    let web_vitals = std::fs::read(&web_vitals).unwrap_or_else(|e| panic!("cannot read {web_vitals}: {e}"));
    let batches: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let reference: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let got = batches.clone();
    let got_reference = reference.clone();
    let web = WebServer::start(move |r| {
        let path = r.path.split('?').next().unwrap_or("");
        match path {
            "/v1/rum" => {
                got.lock().expect("lock").push((r.path.clone(), r.body.clone()));
                Reply::new(202, "")
            }
            "/reference" => {
                if let Ok(v) = serde_json::from_slice(&r.body) {
                    got_reference.lock().expect("lock").push(v);
                }
                Reply::new(200, "")
            }
            "/vendor/web-vitals.js" => Reply::bytes("text/javascript", web_vitals.clone()),
            "/app/orders" => Reply::html(PAGE),
            "/blank" => Reply::html("<!doctype html><title>blank</title><p>bye</p>"),
            "/hero.svg" => Reply::bytes("image/svg+xml", hero()),
            p if p.starts_with("/sdk/") => {
                let file = sdk_dir.join(p.trim_start_matches("/sdk/"));
                let ct = if p.ends_with(".wasm") { "application/wasm" } else { "text/javascript" };
                match std::fs::read(&file) {
                    Ok(b) => Reply::bytes(ct, b),
                    Err(_) => Reply::new(404, "no such file"),
                }
            }
            _ => Reply::new(404, "not found"),
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("wf.toml");
    std::fs::write(&file, workflow(&web.url(""))).expect("write");
    let wf = WorkflowFile::load(&file).expect("workflow");
    let runner = SyntheticRunner::new(SyntheticSection::default(), dir.path());
    let run = runner.run(&wf.workflows[0]).await;
    assert!(run.success, "{run:#?}");
    drop(runner);

    // The page-exit beacon carries CLS and INP; give it a moment to land.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let has_inp = batches.lock().expect("lock").iter().any(|(_, b)| String::from_utf8_lossy(b).contains("\"INP\""));
        let reference_inp = reference.lock().expect("lock").iter().any(|v| v["name"] == "INP");
        if (has_inp && reference_inp) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raw = batches.lock().expect("lock").clone();
    assert!(!raw.is_empty(), "no batch arrived");
    let mut events = Vec::new();
    let mut views = Vec::new();
    for (path, body) in &raw {
        assert!(path.contains("token=ct-1"), "the client token rides in the URL: {path}");
        let text = String::from_utf8_lossy(body);
        for secret in ["typed-secret", "jo@x.io", "abc123"] {
            assert!(!text.contains(secret), "{secret:?} leaked into a batch: {text}");
        }
        let batch: Batch = serde_json::from_slice(body).unwrap_or_else(|e| panic!("not a wire batch ({e}): {text}"));
        if let Err(e) = batch.validate() {
            panic!("batch refused by the collector's validation: {} at {}: {text}", e.message(), e.path());
        }
        assert_eq!((batch.service.as_str(), batch.env.as_str()), ("e2e", "test"));
        let v: serde_json::Value = serde_json::from_slice(body).expect("json");
        views.push(v["view"].clone());
        events.extend(v["events"].as_array().cloned().unwrap_or_default());
    }
    let find = |ty: &str, key: &str, want: &str| -> Vec<serde_json::Value> {
        events.iter().filter(|e| e["type"] == ty && e[key].as_str() == Some(want)).cloned().collect()
    };
    let first_load_vital = |name: &str| {
        let v: Vec<_> =
            find("vital", "name", name).into_iter().filter(|e| e["navigationType"] != "back-forward-cache").collect();
        assert!(!v.is_empty(), "no {name} in {events:#?}");
        v[v.len() - 1].clone()
    };
    let vital = first_load_vital;
    let lcp = vital("LCP");
    assert_eq!(lcp["target"], "img#hero", "{lcp}");
    assert!(lcp["value"].as_f64().is_some_and(|v| v >= 300.0), "the image came at 300 ms: {lcp}");
    let fcp = vital("FCP");
    assert!(fcp["value"].as_f64().is_some_and(|v| v > 0.0 && v <= lcp["value"].as_f64().unwrap_or(0.0)));
    assert!(vital("TTFB")["value"].as_f64().is_some_and(|v| v >= 0.0));
    let cls = vital("CLS");
    assert!(cls["value"].as_f64().is_some_and(|v| v > 0.0), "the image shifted the layout: {cls}");
    let inp = vital("INP");
    assert!(inp["value"].as_f64().is_some_and(|v| v >= 150.0), "the 150 ms handler: {inp}");
    assert_eq!(inp["target"], "button#block", "{inp}");
    assert!(!find("vital", "name", "FID").is_empty(), "first input delay");
    for v in ["LCP", "FCP", "TTFB", "CLS", "INP"] {
        let e = vital(v);
        assert!(["good", "needs-improvement", "poor"].contains(&e["rating"].as_str().unwrap_or("")), "{e}");
        assert_eq!(e["navigationType"], "navigate");
    }

    // Fidelity: the same metrics from Google's web-vitals on the same page.
    let reference = reference.lock().expect("lock").clone();
    for (name, tolerance) in [("LCP", 1.0), ("FCP", 1.0), ("TTFB", 1.0), ("CLS", 0.001), ("INP", 0.0)] {
        let first_load = |v: &&serde_json::Value| v["name"] == name && v["navigationType"] != "back-forward-cache";
        let theirs = reference.iter().rev().find(first_load).and_then(|v| v["value"].as_f64());
        let theirs = theirs.unwrap_or_else(|| panic!("web-vitals reported no {name}: {reference:?}"));
        let ours = first_load_vital(name)["value"].as_f64().unwrap_or(f64::NAN);
        eprintln!("fidelity {name}: ours {ours}, web-vitals {theirs}");
        assert!((ours - theirs).abs() <= tolerance, "{name}: ours {ours}, web-vitals {theirs}");
    }

    // The page came back from the back/forward cache: new metric ids, TTFB 0, FCP and LCP
    // measured from the restore, as web-vitals does (it reported the restore too).
    let restored: Vec<_> = events.iter().filter(|e| e["navigationType"] == "back-forward-cache").collect();
    for name in ["TTFB", "FCP", "LCP"] {
        let ours =
            restored.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no restored {name}: {restored:#?}"));
        assert_ne!(ours["id"], vital(name)["id"], "a restore gets new metric ids");
        let theirs = reference
            .iter()
            .find(|v| v["name"] == name && v["navigationType"] == "back-forward-cache")
            .and_then(|v| v["value"].as_f64())
            .unwrap_or_else(|| panic!("web-vitals reported no restored {name}: {reference:?}"));
        let ours = ours["value"].as_f64().unwrap_or(f64::NAN);
        eprintln!("bfcache {name}: ours {ours}, web-vitals {theirs}");
        assert!(
            (ours - theirs).abs() <= 20.0,
            "restored {name}: ours {ours}, web-vitals {theirs} (one frame apart at most)"
        );
    }
    assert_eq!(restored.iter().find(|e| e["name"] == "TTFB").map(|e| e["value"].clone()), Some(serde_json::json!(0)));

    let actions: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "action")
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    for name in ["Block 150 ms", "Create work order", "Open invoice", "Done"] {
        assert!(actions.iter().any(|a| a == name), "action {name:?} missing from {actions:?}");
    }
    let created = find("business", "name", "work_order_created");
    assert_eq!(created.len(), 1, "{events:#?}");
    assert_eq!(created[0]["props"]["workOrderId"], "wo_1");
    assert_eq!(created[0]["props"]["estimatedValue"], 450);
    assert_eq!(find("business", "name", "e2e_done").len(), 1);

    let errors: Vec<&serde_json::Value> = events.iter().filter(|e| e["type"] == "error").collect();
    let thrown = errors.iter().find(|e| e["message"].as_str().is_some_and(|m| m.contains("TypeError: boom from e2e")));
    let thrown = thrown.unwrap_or_else(|| panic!("the thrown error is missing: {errors:#?}"));
    assert_eq!(thrown["kind"], "error");
    assert!(thrown["stack"].as_str().is_some_and(|s| s.contains("boom from e2e")));
    let crumbs = thrown["breadcrumbs"].as_array().cloned().unwrap_or_default();
    assert!(crumbs.iter().any(|c| c["category"] == "ui.click" && c["message"] == "button#throw"), "{crumbs:?}");
    let rejected = errors.iter().find(|e| e["message"].as_str().is_some_and(|m| m.contains("rejected in e2e")));
    assert_eq!(rejected.map(|e| e["kind"].clone()), Some(serde_json::json!("unhandledrejection")));

    // The route change opened a new view with the secrets scrubbed from its URL.
    let invoice = views.iter().find(|v| v["route"] == "/hs/invoices/42").unwrap_or_else(|| panic!("{views:#?}"));
    let url = invoice["url"].as_str().unwrap_or("");
    assert!(url.contains("token=[redacted]") && url.contains("q=open") && url.contains("contact=[redacted]"), "{url}");
    assert!(invoice["referrer"].as_str().is_some_and(|r| r.ends_with("/app/orders")), "{invoice}");
}
