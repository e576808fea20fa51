//! `[synthetic]` and workflow files: browser settings, workflows and their steps, and their
//! checks.

use crate::checks::CheckMaintenance;
use crate::rules_file::{Format, LocatedError, parse_located};
use crate::secret::Secret;
use serde::Deserialize;
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

/// Every problem in `[synthetic]`, as (path, message).
pub fn problems(s: &SyntheticSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = |path: String, message: String| out.push((path, message));
    if !s.workflows.is_empty() && !cfg!(feature = "synthetic") {
        p("synthetic.workflows".into(), "workflows need the `synthetic` feature of thorbis-obs-server".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, w) in s.workflows.iter().enumerate() {
        for problem in w.problems(&format!("synthetic.workflows[{i}]")) {
            let (path, message) = problem.split_once(": ").unwrap_or(("synthetic", &problem));
            p(path.to_string(), message.to_string());
        }
        if !names.insert(w.name.as_str()) {
            p(format!("synthetic.workflows[{i}].name"), format!("{:?} is used by another workflow", w.name));
        }
    }
    if s.window_size.split_once('x').is_none_or(|(a, b)| a.parse::<u32>().is_err() || b.parse::<u32>().is_err()) {
        p("synthetic.window_size".into(), "must be WIDTHxHEIGHT, e.g. 1280x800".into());
    }
    out
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
