//! Runs workflows in headless Chromium through chromedriver (fantoccini, W3C WebDriver).
//!
//! The runner starts chromedriver on a free loopback port when first needed (or uses a
//! configured WebDriver URL) and keeps it for the agent's life; each run gets a fresh browser
//! session with a fresh, deleted-afterwards `--user-data-dir`, so no cookie or cache leaks from
//! one run into the next. Runs are serialised: Chromium is heavy, and a synthetic check is
//! about correctness, not load.

use super::{Step, StepResult, SyntheticSection, Workflow, WorkflowRun};
use crate::checks::{Observation, Producer, ProducerContext};
use crate::store::{CheckKind, CheckRecord};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// Chromium flags that work on machines without a display, GPU or outside network.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
];

/// Why the browser could not be driven at all.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// chromedriver did not start or answer.
    #[error("chromedriver: {0}")]
    Start(String),
    /// The browser session could not be opened.
    #[error("cannot open a browser session: {0}")]
    Session(String),
}

/// Drives workflows; one per agent (or per `synthetic run`).
pub struct SyntheticRunner {
    settings: SyntheticSection,
    screenshots: PathBuf,
    driver: Mutex<Option<(Option<Child>, String)>>,
    /// The process group of the chromedriver we started (its browsers join it).
    driver_group: std::sync::Mutex<Option<u32>>,
    /// The profile directory of the run in progress.
    profile: std::sync::Mutex<Option<PathBuf>>,
}

impl Drop for SyntheticRunner {
    /// Stops chromedriver with every browser it started (a run cancelled at shutdown leaves
    /// its browser behind otherwise) and removes the profile of a cancelled run.
    fn drop(&mut self) {
        let group = self.driver_group.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(pgid) = group {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let profile = self.profile.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(p) = profile {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl std::fmt::Debug for SyntheticRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyntheticRunner").field("screenshots", &self.screenshots).finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16, DriverError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| DriverError::Start(e.to_string()))?;
    l.local_addr().map(|a| a.port()).map_err(|e| DriverError::Start(e.to_string()))
}

/// A file-name-safe version of a workflow name.
fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

impl SyntheticRunner {
    /// A runner whose screenshots go to `settings.screenshots_dir` or `<data_dir>/screenshots`.
    pub fn new(settings: SyntheticSection, data_dir: &Path) -> Self {
        let screenshots = settings.screenshots_dir.clone().unwrap_or_else(|| data_dir.join("screenshots"));
        SyntheticRunner {
            settings,
            screenshots,
            driver: Mutex::new(None),
            driver_group: std::sync::Mutex::new(None),
            profile: std::sync::Mutex::new(None),
        }
    }

    /// Where screenshots go.
    pub fn screenshots_dir(&self) -> &Path {
        &self.screenshots
    }

    /// The WebDriver URL, starting chromedriver if needed (and again if it died).
    async fn driver_url(&self, slot: &mut Option<(Option<Child>, String)>) -> Result<String, DriverError> {
        if let Some(url) = &self.settings.webdriver_url {
            return Ok(url.clone());
        }
        if let Some((Some(child), url)) = slot.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(url.clone());
            }
            tracing::warn!("chromedriver exited; starting it again");
        }
        let port = free_port()?;
        let mut cmd = Command::new(&self.settings.chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| DriverError::Start(format!("cannot start {}: {e}", self.settings.chromedriver.display())))?;
        *self.driver_group.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = child.id();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(DriverError::Start(format!("no answer on port {port} within 15 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *slot = Some((Some(child), url.clone()));
        Ok(url)
    }

    async fn session(&self, driver: &str, profile: &Path) -> Result<Client, DriverError> {
        let (w, h) = self.settings.window_size.split_once('x').unwrap_or(("1280", "800"));
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={w},{h}"));
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": self.settings.chromium, "args": args }));
        caps.insert("pageLoadStrategy".into(), "normal".into());
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(driver)
            .await
            .map_err(|e| DriverError::Session(e.to_string()))
    }

    /// Runs one workflow once.
    pub async fn run(&self, wf: &Workflow) -> WorkflowRun {
        let started = Instant::now();
        let mut run = WorkflowRun {
            workflow: wf.name.clone(),
            success: false,
            duration_ms: 0.0,
            steps: Vec::new(),
            failed_step: None,
            screenshot: None,
            error: None,
        };
        let mut slot = self.driver.lock().await; // one run at a time
        let profile = std::env::temp_dir().join(format!(
            "thorbis-synthetic-{}-{}-{}",
            safe(&wf.name),
            std::process::id(),
            crate::clock::system_now().as_millis()
        ));
        *self.profile.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(profile.clone());
        let client = match self.driver_url(&mut slot).await {
            Ok(url) => self.session(&url, &profile).await,
            Err(e) => Err(e),
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                run.error = Some(e.to_string());
                run.failed_step = Some("browser".into());
                run.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                let _ = std::fs::remove_dir_all(&profile);
                return run;
            }
        };
        let deadline = started + wf.timeout.get();
        for (i, step) in wf.steps.iter().enumerate() {
            let label = step.label(i);
            let t = Instant::now();
            let left = deadline.saturating_duration_since(t);
            let result = match tokio::time::timeout(left, run_step(&client, step)).await {
                Ok(r) => r,
                Err(_) => Err(format!("the workflow's {} timeout ran out", wf.timeout)),
            };
            let ok = result.is_ok();
            run.steps.push(StepResult {
                step: label.clone(),
                kind: step.kind().into(),
                ok,
                duration_ms: t.elapsed().as_secs_f64() * 1000.0,
                error: result.err(),
            });
            if !ok {
                run.failed_step = Some(label);
                run.screenshot = self.screenshot(&client, &wf.name).await;
                break;
            }
        }
        run.success = run.failed_step.is_none();
        let _ = client.close().await;
        let _ = std::fs::remove_dir_all(&profile);
        *self.profile.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        run.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        run
    }

    async fn screenshot(&self, client: &Client, workflow: &str) -> Option<PathBuf> {
        let png = match client.screenshot().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(workflow, error = %e, "cannot take the failure screenshot");
                return None;
            }
        };
        if let Err(e) = std::fs::create_dir_all(&self.screenshots) {
            tracing::warn!(dir = %self.screenshots.display(), error = %e, "cannot create the screenshot directory");
            return None;
        }
        let path = self.screenshots.join(format!("{}-{}.png", safe(workflow), crate::clock::system_now().as_millis()));
        match std::fs::write(&path, png) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot save the failure screenshot");
                None
            }
        }
    }
}

const ELEMENT_WAIT: Duration = Duration::from_secs(10);

async fn run_step(c: &Client, step: &Step) -> Result<(), String> {
    let wait_for = |sel: &str, d: Duration| {
        let sel = sel.to_string();
        async move {
            c.wait()
                .at_most(d)
                .every(Duration::from_millis(50))
                .for_element(Locator::Css(&sel))
                .await
                .map_err(|e| format!("{sel:?} not found within {} ms: {e}", d.as_millis()))
        }
    };
    match step {
        Step::Navigate { url, .. } => c.goto(url).await.map_err(|e| format!("cannot load the page: {e}")),
        Step::Click { selector, .. } => {
            let el = wait_for(selector, ELEMENT_WAIT).await?;
            el.click().await.map_err(|e| format!("cannot click {selector:?}: {e}"))
        }
        Step::Fill { selector, value, .. } => {
            let el = wait_for(selector, ELEMENT_WAIT).await?;
            el.clear().await.map_err(|e| format!("cannot clear {selector:?}: {e}"))?;
            // The error never carries the value: it is a secret.
            el.send_keys(value.expose()).await.map_err(|_| format!("cannot type into {selector:?}"))
        }
        Step::Wait { selector, timeout, .. } => wait_for(selector, timeout.get()).await.map(|_| ()),
        Step::Back { .. } => c.back().await.map_err(|e| format!("cannot go back: {e}")),
        Step::Validate { selector, text_contains, .. } => {
            let el = c
                .find(Locator::Css(selector))
                .await
                .map_err(|_| format!("validation failed: {selector:?} not found"))?;
            if let Some(want) = text_contains {
                let text = el.text().await.map_err(|e| format!("cannot read the text of {selector:?}: {e}"))?;
                if !text.contains(want.as_str()) {
                    return Err(format!(
                        "validation failed: {selector:?} has text {text:?}, want it to contain {want:?}"
                    ));
                }
            }
            Ok(())
        }
    }
}

/// A workflow on its interval, as a [`Producer`].
#[derive(Debug)]
pub struct WorkflowProducer {
    /// Shared by every workflow of the agent.
    pub runner: Arc<SyntheticRunner>,
    /// The workflow.
    pub workflow: Arc<Workflow>,
    /// The location label.
    pub location: String,
}

/// The stored record of a run.
pub fn run_record(run: &WorkflowRun, location: &str, at: thorbis_obs_core::time::Timestamp) -> CheckRecord {
    let failing = run.steps.iter().find(|s| !s.ok);
    CheckRecord {
        kind: CheckKind::Synthetic,
        target: run.workflow.clone(),
        location: location.to_string(),
        at,
        success: run.success,
        duration_ms: run.duration_ms,
        status_code: None,
        failed_rule: run.failed_step.clone(),
        error: failing.and_then(|s| s.error.clone()).or_else(|| run.error.clone()),
        cert_expires_at: None,
        down: false,
        detail: serde_json::to_value(serde_json::json!({
            "steps": run.steps,
            "screenshot": run.screenshot,
        }))
        .ok(),
    }
}

impl Producer for WorkflowProducer {
    fn start(self: Box<Self>, ctx: ProducerContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let ProducerContext { tx, mut stop, clock, .. } = ctx;
            let interval = self.workflow.interval.get().max(Duration::from_secs(1));
            let mut ticker = crate::clock::ticker(&self.workflow.name, interval, Duration::from_secs(10));
            loop {
                let scheduled = tokio::select! {
                    t = ticker.tick() => t,
                    _ = stop.changed() => return,
                };
                let lag = tokio::time::Instant::now().saturating_duration_since(scheduled);
                let run = tokio::select! {
                    r = self.runner.run(&self.workflow) => r,
                    _ = stop.changed() => return,
                };
                let steps = run.steps.iter().map(|s| (s.step.clone(), s.duration_ms / 1000.0)).collect();
                let record = run_record(&run, &self.location, clock.now());
                if tx.send(Observation { record, lag, steps }).await.is_err() {
                    return;
                }
            }
        })
    }
}
