//! `thorbis-obs probe http`, `thorbis-obs uptime report`, `thorbis-obs synthetic run`.

use super::runtime;
use crate::uptime::CheckKind;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use thorbis_obs_core::time::HumanDuration;

/// `thorbis-obs probe http URL ...`
#[derive(Debug, Args)]
pub struct HttpProbeArgs {
    /// The URL.
    pub url: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request header `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    pub body: Option<String>,
    /// Whole-check timeout.
    #[arg(long, default_value = "10s")]
    pub timeout: HumanDuration,
    /// Accepted status: `200`, `2xx` or `200-299` (repeatable; default 200-399).
    #[arg(long = "expect-status")]
    pub expect_status: Vec<String>,
    /// Fail when the answer takes longer, e.g. `300ms`.
    #[arg(long)]
    pub max_response_time: Option<HumanDuration>,
    /// The body must contain this.
    #[arg(long)]
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    #[arg(long)]
    pub body_regex: Option<String>,
    /// `PATH=VALUE`: the JSON body's PATH (`status`, `data.items[0].id`) must equal VALUE
    /// (read as JSON when it parses, else as a string). Repeatable.
    #[arg(long = "json-path", value_name = "PATH=VALUE")]
    pub json_path: Vec<String>,
    /// The TLS certificate must be valid for longer than this, e.g. `14d`.
    #[arg(long)]
    pub cert_expires_in_more_than: Option<HumanDuration>,
    /// Accept any certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Extra root certificate (PEM).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run the check this many times in a row and print each (for measurements).
    #[arg(long, default_value_t = 1, hide = true)]
    pub repeat: u32,
}

/// `thorbis-obs uptime ...`
#[derive(Debug, Subcommand)]
pub enum UptimeCommand {
    /// Uptime per endpoint and overall from the store the config names.
    Report {
        /// Config file (default: the embedded default config).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Range: 1h, 24h, 7d, 30d (any duration).
        #[arg(long, default_value = "24h")]
        range: HumanDuration,
        /// Only this endpoint.
        #[arg(long)]
        endpoint: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `thorbis-obs synthetic ...`
#[derive(Debug, Subcommand)]
pub enum SyntheticCommand {
    /// Run the workflows of a file once and print a step table; exit 1 when one fails.
    Run {
        /// Workflow file (TOML `[[workflows]]`, or YAML/JSON `workflows:`).
        file: PathBuf,
        /// Chromium binary.
        #[arg(long, default_value = "/usr/bin/chromium")]
        chromium: PathBuf,
        /// chromedriver binary.
        #[arg(long, default_value = "/usr/bin/chromedriver")]
        chromedriver: PathBuf,
        /// Use a running WebDriver server instead.
        #[arg(long)]
        webdriver_url: Option<String>,
        /// Where failure screenshots go.
        #[arg(long, default_value = "./thorbis-data/screenshots")]
        screenshots: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn usage(err: &mut dyn Write, message: String) -> ExitCode {
    let _ = writeln!(err, "{message}");
    ExitCode::from(2)
}

/// Builds the check config `probe http` describes.
#[cfg(feature = "http")]
fn http_check_config(a: &HttpProbeArgs) -> Result<crate::uptime::config::HttpCheckConfig, String> {
    use crate::uptime::config::{Expect, StatusRange};
    let mut expect = Expect::default();
    for s in &a.expect_status {
        expect.status.push(StatusRange::parse(s).map_err(|e| format!("--expect-status: {e}"))?);
    }
    expect.max_response_time = a.max_response_time;
    expect.body_contains = a.body_contains.clone();
    expect.body_regex = a.body_regex.clone();
    expect.cert_expires_in_more_than = a.cert_expires_in_more_than;
    for jp in &a.json_path {
        let (path, value) = jp.split_once('=').ok_or_else(|| format!("--json-path {jp:?}: write PATH=VALUE"))?;
        let v = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        expect.json.insert(path.to_string(), v);
    }
    let mut headers = std::collections::BTreeMap::new();
    for h in &a.headers {
        // The argument is not echoed: its value may be a secret.
        let (k, v) = h.split_once(':').ok_or_else(|| "--header: write 'Name: value'".to_string())?;
        headers.insert(k.trim().to_string(), crate::config::Secret::new(v.trim()));
    }
    Ok(crate::uptime::config::HttpCheckConfig {
        id: "cli".into(),
        url: crate::config::Secret::new(a.url.clone()),
        method: a.method.clone(),
        headers,
        body: a.body.clone().map(crate::config::Secret::new),
        timeout: a.timeout,
        interval: HumanDuration::from_secs(60),
        failure_threshold: None,
        success_threshold: None,
        quorum: None,
        sla_target: None,
        follow_redirects: true,
        insecure_skip_verify: a.insecure,
        ca_file: a.ca_file.clone(),
        expect,
        maintenance: Vec::new(),
    })
}

#[cfg(feature = "http")]
pub(super) fn probe_http(a: HttpProbeArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    use crate::uptime::http_check::HttpChecker;
    let cfg = match http_check_config(&a) {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let checker = match HttpChecker::new(&cfg, &Default::default()) {
        Ok(c) => c,
        Err(e) => return usage(err, e),
    };
    let Some(rt) = runtime(err) else { return ExitCode::FAILURE };
    let mut all_up = true;
    for _ in 0..a.repeat.max(1) {
        let o = rt.block_on(checker.run());
        all_up &= o.success;
        let now = crate::agent::system_now();
        if a.json {
            let _ = writeln!(out, "{}", serde_json::to_string(&checker.record("cli", now, &o)).unwrap_or_default());
            continue;
        }
        let status = o.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let cert = o
            .cert_expires_at
            .map(|c| {
                format!(", certificate expires in {:.1} days", (c.as_millis() - now.as_millis()) as f64 / 86_400_000.0)
            })
            .unwrap_or_default();
        let verdict = if o.success { "UP".to_string() } else { "DOWN".to_string() };
        let why = o.failure.as_ref().map(|f| format!(" ({f})")).unwrap_or_default();
        let _ = writeln!(out, "{verdict}: status {status}, {:.1} ms{cert}{why}", o.elapsed.as_secs_f64() * 1000.0);
    }
    if all_up { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(not(feature = "http"))]
pub(super) fn probe_http(_: HttpProbeArgs, _: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    usage(err, "HTTP checks need the `http` feature of thorbis-obs-server".into())
}

pub(super) fn uptime(c: UptimeCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let UptimeCommand::Report { config, range, endpoint, json } = c;
    let Some(loaded) = super::load_config(config.as_deref(), err) else { return ExitCode::FAILURE };
    let Some(rt) = runtime(err) else { return ExitCode::FAILURE };
    let u = &loaded.config.uptime;
    let result = rt.block_on(async {
        let store = crate::agent::store_from_config(&loaded).await.map_err(|e| e.to_string())?;
        let now = crate::agent::system_now();
        let since = now.minus(range.get());
        let records =
            store.check_results(CheckKind::Http, endpoint.as_deref(), since, now).await.map_err(|e| e.to_string())?;
        let targets: Vec<String> =
            u.checks.iter().map(|c| c.id.clone()).filter(|id| endpoint.as_ref().is_none_or(|e| e == id)).collect();
        let settings = |id: &str| {
            let c = u.checks.iter().find(|c| c.id == id);
            (c.and_then(|c| c.quorum).unwrap_or(u.quorum), c.and_then(|c| c.sla_target).unwrap_or(u.sla_target))
        };
        Ok::<_, String>(crate::checks::report::summarize(
            &records,
            &range.to_string(),
            since,
            now,
            &targets,
            settings,
            u.sla_target,
        ))
    });
    match result {
        Ok(summary) => {
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
            } else {
                let _ = write!(out, "{}", crate::checks::report::render_table(&summary));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "cannot read check results: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "synthetic")]
pub(super) fn synthetic(c: SyntheticCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    use crate::synthetic::webdriver::SyntheticRunner;
    use crate::synthetic::{SyntheticSection, WorkflowFile, render_runs};
    let SyntheticCommand::Run { file, chromium, chromedriver, webdriver_url, screenshots, json } = c;
    let wf = match WorkflowFile::load(&file) {
        Ok(f) => f,
        Err(e) => return usage(err, e.to_string()),
    };
    let settings = SyntheticSection {
        chromium,
        chromedriver,
        webdriver_url,
        screenshots_dir: Some(screenshots),
        ..SyntheticSection::default()
    };
    let Some(rt) = runtime(err) else { return ExitCode::FAILURE };
    let runner = SyntheticRunner::new(settings, std::path::Path::new("."));
    let runs: Vec<_> = rt.block_on(async {
        let mut runs = Vec::new();
        for w in &wf.workflows {
            runs.push(runner.run(w).await);
        }
        runs
    });
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&runs).unwrap_or_default());
    } else {
        let _ = write!(out, "{}", render_runs(&runs));
    }
    if runs.iter().all(|r| r.success) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(not(feature = "synthetic"))]
pub(super) fn synthetic(_: SyntheticCommand, _: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    usage(err, "synthetic workflows need the `synthetic` feature of thorbis-obs-server".into())
}
