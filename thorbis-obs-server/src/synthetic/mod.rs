//! Synthetic workflows: named lists of browser steps (navigate, click, fill, wait, back, validate)
//! run in a real headless Chromium through chromedriver (feature `synthetic`). Each run
//! records its duration per step and the step that failed; a failure saves a PNG screenshot
//! under the data directory, linked from the result. Results pass through the same recorder
//! as uptime checks, so thresholds, the store, reports and the `synthetic-workflow-failing`
//! rule apply.
//!
//! ```toml
//! [[synthetic.workflows]]
//! name = "create-work-order"
//! interval = "5m"
//! steps = [
//!   { type = "navigate", url = "https://app.example.com/login" },
//!   { type = "fill", selector = "#email", value = "synthetic@example.com" },
//!   { type = "click", selector = "button[type=submit]" },
//!   { type = "wait", selector = "#dashboard", timeout = "10s" },
//!   { type = "validate", selector = "h1", text_contains = "Dashboard" },
//! ]
//! ```

#[cfg(feature = "synthetic")]
pub mod webdriver;

use crate::config::Secret;
use crate::rules_file::{Format, LocatedError, parse_located};
use crate::uptime::config::CheckMaintenance;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thorbis_obs_core::time::HumanDuration;

/// `[synthetic]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSection {
    /// The Chromium binary (default `/usr/bin/chromium`, Debian's).
    pub chromium: PathBuf,
    /// The chromedriver binary the agent starts on a free loopback port (default
    /// `/usr/bin/chromedriver`).
    pub chromedriver: PathBuf,
    /// Use a WebDriver server that is already running instead of starting chromedriver.
    pub webdriver_url: Option<String>,
    /// Where failure screenshots go (default `<data_dir>/screenshots`).
    pub screenshots_dir: Option<PathBuf>,
    /// Browser window size, `WIDTHxHEIGHT` (default `1280x800`).
    pub window_size: String,
    /// The workflows.
    pub workflows: Vec<Workflow>,
}

impl Default for SyntheticSection {
    fn default() -> Self {
        SyntheticSection {
            chromium: "/usr/bin/chromium".into(),
            chromedriver: "/usr/bin/chromedriver".into(),
            webdriver_url: None,
            screenshots_dir: None,
            window_size: "1280x800".into(),
            workflows: Vec::new(),
        }
    }
}

/// A workflow file for `thorbis-obs synthetic run`: `[[workflows]]` tables (TOML) or a
/// `workflows:` list (YAML, JSON), plus optional `[synthetic]`-style browser settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// The workflows.
    pub workflows: Vec<Workflow>,
}

impl WorkflowFile {
    /// Reads a workflow file; errors carry the file, line and field.
    pub fn load(path: &Path) -> Result<Self, LocatedError> {
        let text = std::fs::read_to_string(path).map_err(|e| LocatedError {
            file: path.to_path_buf(),
            path: String::new(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        let format = Format::from_path(path).unwrap_or(Format::Toml);
        let file: WorkflowFile = parse_located(&text, format, path)?;
        let problems = file.workflows.iter().enumerate().flat_map(|(i, w)| w.problems(&format!("workflows[{i}]")));
        let problems: Vec<String> = problems.collect();
        if let Some(first) = problems.first() {
            let (p, m) = first.split_once(": ").unwrap_or(("", first));
            return Err(LocatedError {
                file: path.to_path_buf(),
                path: p.to_string(),
                line: 0,
                column: 0,
                message: m.to_string(),
            });
        }
        Ok(file)
    }
}

/// A named list of steps with an interval.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Name: the `workflow` label and the report key.
    pub name: String,
    /// How often (default 5m, the spec's).
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// The whole run's limit (default 60 s).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Overrides `[uptime].failure_threshold`.
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// Overrides `[uptime].success_threshold`.
    #[serde(default)]
    pub success_threshold: Option<u32>,
    /// Overrides `[uptime].sla_target`.
    #[serde(default)]
    pub sla_target: Option<f64>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Windows during which this workflow's failures alert nobody.
    #[serde(default)]
    pub maintenance: Vec<CheckMaintenance>,
}

fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_wait() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// One step. Selectors are CSS. `click` and `fill` wait up to 10 s for their element, like
/// Playwright's; `validate` looks once (the spec's `page.$`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Loads a URL and waits for the page to load.
    Navigate {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
        /// The URL.
        url: String,
    },
    /// Clicks an element.
    Click {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
        /// CSS selector.
        selector: String,
    },
    /// Types into an input (the value is a secret: it never appears in results or logs).
    Fill {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
        /// CSS selector.
        selector: String,
        /// What to type.
        value: Secret,
    },
    /// Waits for an element to appear.
    Wait {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
        /// CSS selector.
        selector: String,
        /// How long at most (default 10 s, the spec's).
        #[serde(default = "default_wait")]
        timeout: HumanDuration,
    },
    /// Goes back in the session history (a page kept in the back/forward cache is restored).
    Back {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
    },
    /// Checks an element exists, and optionally that its text contains something.
    Validate {
        /// Optional step name.
        #[serde(default)]
        name: Option<String>,
        /// CSS selector.
        selector: String,
        /// Text the element must contain.
        #[serde(default)]
        text_contains: Option<String>,
    },
}

impl Step {
    /// `navigate`, `click`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Navigate { .. } => "navigate",
            Step::Click { .. } => "click",
            Step::Fill { .. } => "fill",
            Step::Wait { .. } => "wait",
            Step::Back { .. } => "back",
            Step::Validate { .. } => "validate",
        }
    }

    /// The step's label: its name, or `N-kind` (1-based).
    pub fn label(&self, index: usize) -> String {
        let name = match self {
            Step::Navigate { name, .. }
            | Step::Click { name, .. }
            | Step::Fill { name, .. }
            | Step::Wait { name, .. }
            | Step::Back { name }
            | Step::Validate { name, .. } => name,
        };
        name.clone().unwrap_or_else(|| format!("{}-{}", index + 1, self.kind()))
    }

    fn selector(&self) -> Option<&str> {
        match self {
            Step::Navigate { .. } | Step::Back { .. } => None,
            Step::Click { selector, .. }
            | Step::Fill { selector, .. }
            | Step::Wait { selector, .. }
            | Step::Validate { selector, .. } => Some(selector),
        }
    }
}

impl Workflow {
    /// What is wrong with it, each as `path: message`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            out.push(format!("{path}.name: use letters, digits, '-' and '_'"));
        }
        if self.interval.get().is_zero() {
            out.push(format!("{path}.interval: must be longer than 0s"));
        }
        if self.timeout.get().is_zero() {
            out.push(format!("{path}.timeout: must be longer than 0s"));
        }
        if self.steps.is_empty() {
            out.push(format!("{path}.steps: a workflow needs at least one step"));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if let Step::Navigate { url, .. } = s {
                if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://")) {
                    out.push(format!("{path}.steps[{i}].url: must be an http://, https:// or file:// URL"));
                }
            }
            if s.selector().is_some_and(|sel| sel.trim().is_empty()) {
                out.push(format!("{path}.steps[{i}].selector: must not be empty"));
            }
        }
        for (i, m) in self.maintenance.iter().enumerate() {
            if let Err(e) = m.window(&self.name, "workflow").validate() {
                out.push(format!("{path}.maintenance[{i}]: {}", e.problem));
            }
        }
        out
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's label.
    pub step: String,
    /// Its kind.
    pub kind: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, ms.
    pub duration_ms: f64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One run of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The workflow.
    pub workflow: String,
    /// Every step passed.
    pub success: bool,
    /// The whole run, ms.
    pub duration_ms: f64,
    /// The steps that ran (the failing one last).
    pub steps: Vec<StepResult>,
    /// The failing step's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// The screenshot taken at the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<PathBuf>,
    /// A failure before the first step (browser or driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A plain-text table of runs.
pub fn render_runs(runs: &[WorkflowRun]) -> String {
    let mut out = String::new();
    for r in runs {
        out.push_str(&format!(
            "workflow {}: {} in {:.0} ms\n",
            r.workflow,
            if r.success { "PASSED" } else { "FAILED" },
            r.duration_ms
        ));
        out.push_str(&format!("  {:<4} {:<28} {:<9} {:>10}  {}\n", "#", "step", "result", "ms", "error"));
        for (i, s) in r.steps.iter().enumerate() {
            out.push_str(&format!(
                "  {:<4} {:<28} {:<9} {:>10.0}  {}\n",
                i + 1,
                s.step,
                if s.ok { "ok" } else { "FAILED" },
                s.duration_ms,
                s.error.as_deref().unwrap_or("")
            ));
        }
        if let Some(e) = &r.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if let Some(p) = &r.screenshot {
            out.push_str(&format!("  screenshot: {}\n", p.display()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_workflows_are_named() {
        let f: WorkflowFile = toml::from_str(
            r##"[[workflows]]
name = "login"
steps = [
  { type = "navigate", url = "http://127.0.0.1:1/" },
  { type = "fill", selector = "#email", value = "a@b.c" },
  { type = "wait", selector = "#x" },
  { type = "validate", name = "greeting", selector = "h1", text_contains = "Hi" },
  { type = "back" },
]"##,
        )
        .unwrap();
        let w = &f.workflows[0];
        assert!(w.problems("w").is_empty());
        assert_eq!(w.steps[1].label(1), "2-fill");
        assert_eq!(w.steps[3].label(3), "greeting");
        assert_eq!(w.steps[4].label(4), "5-back");
        assert!(!format!("{w:?}").contains("a@b.c"), "the fill value is a secret");
        let bad: WorkflowFile =
            toml::from_str("[[workflows]]\nname = \"a b\"\nsteps = [{ type = \"navigate\", url = \"ftp://x\" }, { type = \"click\", selector = \" \" }]")
                .unwrap();
        let p = bad.workflows[0].problems("workflows[0]");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[1].starts_with("workflows[0].steps[0].url"));
        assert!(
            toml::from_str::<WorkflowFile>(
                "[[workflows]]\nname = \"a\"\nsteps = [{ type = \"hover\", selector = \"x\" }]"
            )
            .is_err()
        );
    }
}
