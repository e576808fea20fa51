//! The Next.js example (`examples/nextjs`): built with `next build` (Turbopack) against the
//! local SDK package, served with `next start`, visited in headless Chromium; its beacons
//! reach a local receiver through the app's `/v1/rum` rewrite and pass the wire validation.
//!
//! Needs the example's node_modules: scripts/test.sh copies the SDK package into
//! `examples/nextjs/vendor`, runs `npm install` there and exports THORBIS_NEXTJS_DIR.
#![cfg(feature = "synthetic")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::web::{Reply, WebServer};
use thorbis_obs_server::synthetic::webdriver::SyntheticRunner;
use thorbis_obs_server::synthetic::{SyntheticSection, WorkflowFile};

/// Kills the process group of `next start` when the test ends, however it ends.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{}", self.0)]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nextjs_example_builds_serves_and_its_beacons_arrive() {
    let dir = std::env::var("THORBIS_NEXTJS_DIR").unwrap_or_else(|_| {
        panic!("THORBIS_NEXTJS_DIR is not set: scripts/test.sh prepares examples/nextjs (SDK package + npm install)")
    });
    let dir = std::path::PathBuf::from(dir);
    let next = dir.join("node_modules/.bin/next");
    assert!(next.exists(), "{} is missing: run npm install in {}", next.display(), dir.display());

    let batches: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let got = batches.clone();
    let receiver = WebServer::start(move |r| {
        if r.path.starts_with("/v1/rum") {
            got.lock().expect("lock").push(r.body.clone());
            Reply::new(202, "")
        } else {
            Reply::new(404, "")
        }
    })
    .await;

    let build = tokio::process::Command::new(&next)
        .arg("build")
        .current_dir(&dir)
        .env("THORBIS_AGENT_URL", receiver.url(""))
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .output()
        .await
        .expect("next build runs");
    assert!(
        build.status.success(),
        "next build failed:\n{}\n{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );

    let port = support::agent::free_port();
    let mut cmd = tokio::process::Command::new(&next);
    cmd.args(["start", "-p", &port.to_string(), "-H", "127.0.0.1"])
        .current_dir(&dir)
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .process_group(0);
    let child = cmd.spawn().expect("next start");
    let _group = Group(child.id().expect("pid"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "next start did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let base = format!("http://127.0.0.1:{port}");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("wf.toml");
    std::fs::write(
        &file,
        format!(
            r##"[[workflows]]
name = "nextjs"
steps = [
  {{ type = "navigate", url = "{base}/" }},
  {{ type = "validate", selector = "h1", text_contains = "Work orders" }},
  {{ type = "click", selector = "#create" }},
  {{ type = "navigate", url = "{base}/missing-page" }},
]
"##
        ),
    )
    .expect("write");
    let wf = WorkflowFile::load(&file).expect("workflow");
    let runner = SyntheticRunner::new(SyntheticSection::default(), tmp.path());
    let run = runner.run(&wf.workflows[0]).await;
    assert!(run.success, "{run:#?}");
    drop(runner);

    // Until every event asserted below is in (30 s at most; then the assertions say what is
    // missing): the page-exit beacons land after the browser has moved on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events: Vec<serde_json::Value> = batches
            .lock()
            .expect("lock")
            .iter()
            .map(|b| {
                let batch: thorbis_obs_core::wire::Batch = serde_json::from_slice(b).expect("a wire batch");
                batch.validate().unwrap_or_else(|e| panic!("invalid batch: {} at {}", e.message(), e.path()));
                assert_eq!(batch.service, "thorbis-nextjs-example");
                serde_json::from_slice::<serde_json::Value>(b).expect("json")
            })
            .flat_map(|v| v["events"].as_array().cloned().unwrap_or_default())
            .collect();
        let done = events.iter().any(|e| e["name"] == "work_order_created")
            && events.iter().any(|e| e["type"] == "vital" && e["name"] == "FCP")
            && events.iter().any(|e| e["type"] == "action" && e["name"] == "Create work order");
        if done || tokio::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let created = events.iter().find(|e| e["name"] == "work_order_created").unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(created["props"]["workOrderId"], "wo_42");
    assert!(events.iter().any(|e| e["type"] == "vital" && e["name"] == "FCP"), "{events:#?}");
    assert!(events.iter().any(|e| e["type"] == "action" && e["name"] == "Create work order"), "{events:#?}");
}
