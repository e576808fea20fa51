//! Synthetic workflows in a real headless Chromium (Debian's chromium and chromium-driver,
//! which scripts/test.sh installs) against a local test site with a form: a workflow that
//! passes, one that fails at a known step with its screenshot written, the CLI's step table
//! and exit code, and a workflow inside a running agent whose failure pages once.
#![cfg(feature = "synthetic")]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::web::{Reply, WebServer};
use thorbis_obs_server::synthetic::webdriver::SyntheticRunner;
use thorbis_obs_server::synthetic::{SyntheticSection, WorkflowFile};

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><title>Work orders</title></head>
<body>
  <h1>New work order</h1>
  <form id="order" onsubmit="event.preventDefault(); setTimeout(function () {
      var p = document.createElement('p'); p.id = 'result';
      p.textContent = 'Work order created for ' + document.getElementById('customer').value;
      document.body.appendChild(p); }, 300);">
    <label for="customer">Customer</label> <input id="customer" name="customer">
    <button id="create" type="submit">Create</button>
  </form>
</body></html>"#;

async fn site() -> WebServer {
    WebServer::start(|r| if r.path == "/orders/new" { Reply::html(FORM) } else { Reply::new(404, "not found") }).await
}

fn workflows(url: &str) -> String {
    format!(
        r##"[[workflows]]
name = "create-work-order"
steps = [
  {{ type = "navigate", url = "{url}" }},
  {{ type = "fill", selector = "#customer", value = "Acme Plumbing" }},
  {{ type = "click", selector = "#create" }},
  {{ type = "wait", selector = "#result", timeout = "5s" }},
  {{ type = "validate", selector = "#result", text_contains = "Work order created for Acme Plumbing" }},
]

[[workflows]]
name = "broken-checkout"
steps = [
  {{ type = "navigate", url = "{url}" }},
  {{ type = "fill", selector = "#customer", value = "Acme" }},
  {{ type = "click", selector = "#create" }},
  {{ type = "validate", name = "invoice-link", selector = "a#invoice" }},
  {{ type = "click", selector = "#never-reached" }},
]
"##
    )
}

fn require_browser() {
    for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install Debian's chromium and chromium-driver (bash scripts/test.sh does)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_and_a_failing_workflow_in_chromium() {
    require_browser();
    let web = site().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("workflows.toml");
    std::fs::write(&file, workflows(&web.url("/orders/new"))).expect("write");
    let wf = WorkflowFile::load(&file).expect("workflows");
    let shots = dir.path().join("shots");
    let runner = SyntheticRunner::new(
        SyntheticSection { screenshots_dir: Some(shots.clone()), ..SyntheticSection::default() },
        dir.path(),
    );

    let pass = runner.run(&wf.workflows[0]).await;
    assert!(pass.success, "{pass:#?}");
    assert_eq!(pass.steps.len(), 5);
    assert!(pass.steps.iter().all(|s| s.ok && s.duration_ms >= 0.0));
    // The wait step waited for the 300 ms the page takes to answer. The page's 300 ms start at
    // the submit, inside the click step, so they are split between the click and the wait by
    // however long the click's round trip took: only together do the two steps cover them all.
    let click_and_wait = pass.steps[2].duration_ms + pass.steps[3].duration_ms;
    assert!(click_and_wait >= 250.0, "{:?} {:?}", pass.steps[2], pass.steps[3]);
    assert!(pass.screenshot.is_none());

    let fail = runner.run(&wf.workflows[1]).await;
    assert!(!fail.success);
    assert_eq!(fail.failed_step.as_deref(), Some("invoice-link"));
    assert_eq!(fail.steps.len(), 4, "the run stops at the failing step");
    let err = fail.steps[3].error.as_deref().unwrap_or("");
    assert!(err.contains("a#invoice") && err.contains("not found"), "{err}");
    let shot = fail.screenshot.as_ref().expect("a screenshot");
    assert!(shot.starts_with(&shots), "{shot:?}");
    let png = std::fs::read(shot).expect("screenshot file");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "a real PNG: {} bytes", png.len());
    // The typed value is a secret: it never appears in results.
    assert!(!serde_json::to_string(&fail).expect("json").contains("Acme"));
}

#[test]
fn the_cli_prints_a_step_table_and_exits_1_on_failure() {
    require_browser();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let web = rt.block_on(site());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("workflows.toml");
    std::fs::write(&file, workflows(&web.url("/orders/new"))).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["synthetic", "run"])
        .arg(&file)
        .arg("--screenshots")
        .arg(dir.path().join("shots"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("workflow create-work-order: PASSED"), "{stdout}");
    assert!(stdout.contains("workflow broken-checkout: FAILED"), "{stdout}");
    assert!(stdout.contains("invoice-link") && stdout.contains("screenshot: "), "{stdout}");
    drop(rt);

    // A bad workflow file: exit 2 and the field named.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[workflows]]\nname = \"x\"\nsteps = [{ type = \"navigate\", url = \"ftp://x\" }]\n")
        .expect("w");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["synthetic", "run"])
        .arg(&bad)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("workflows[0].steps[0].url"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_workflow_in_the_agent_pages_once_with_its_screenshot() {
    require_browser();
    let web = site().await;
    let dir = tempfile::tempdir().expect("tmp");
    let config = format!(
        "[agent]\ndata_dir = \"{data}\"\n[uptime]\nfailure_threshold = 2\n[[synthetic.workflows]]\nname = \"checkout\"\ninterval = \"1s\"\n\
         steps = [{{ type = \"navigate\", url = \"{url}\" }}, {{ type = \"validate\", selector = \"#total\" }}]\n",
        data = dir.path().display(),
        url = web.url("/orders/new"),
    );
    let store =
        Arc::new(thorbis_obs_server::store::sqlite::SqliteStore::open(&dir.path().join("s.db")).expect("store"));
    let port = support::agent::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let agent = support::monitors::start(&config, store, Some(addr));
    let pager = agent.pager.clone();
    support::monitors::wait_for("a page for the failing workflow", Duration::from_secs(40), || {
        !pager.sent().is_empty()
    })
    .await;
    // The report reads stored results, written once a second: ask until both failures are in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/synthetic?range=1h"))
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if status["report"]["endpoints"]["checkout"]["checks"].as_u64().is_some_and(|n| n >= 2) {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "the failures were not stored: {status:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let png = reqwest::get(format!("http://{addr}/api/v1/synthetic/checkout/screenshot")).await.expect("get");
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    agent.stop().await;
    // Stopping the agent stops chromedriver and every browser it started, even one cut off
    // in the middle of a run.
    let marker = format!("thorbis-synthetic-checkout-{}-", std::process::id());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while browsers_with(&marker) > 0 {
        assert!(std::time::Instant::now() < deadline, "a browser outlived the agent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let sent = pager.sent();
    assert_eq!(sent.len(), 1, "one page");
    assert_eq!(sent[0].rule_id, "synthetic-workflow-failing");
    assert_eq!(sent[0].labels.get("workflow"), Some("checkout"));
    let newest = &status["status"][0]["locations"][0];
    assert_eq!(newest["failed_rule"], "2-validate", "{status:#}");
    assert!(newest["detail"]["screenshot"].as_str().is_some_and(|p| p.starts_with(&*dir.path().to_string_lossy())));
    let report = &status["report"]["endpoints"]["checkout"];
    assert!(report["checks"].as_u64().is_some_and(|n| n >= 2), "{status:#}");
    assert_eq!(report["successful_checks"], 0);
}

/// Processes whose command line contains `marker`.
fn browsers_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .filter(|c| String::from_utf8_lossy(c).contains(marker))
                .count()
        })
        .unwrap_or(0)
}
