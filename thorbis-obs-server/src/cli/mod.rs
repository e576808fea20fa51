//! The `thorbis-obs` command line.

mod alerts;
mod checks;
#[cfg(feature = "client")]
mod client;
#[cfg(all(feature = "collector", feature = "otlp", feature = "client"))]
mod demo;
mod sourcemaps;

use crate::config::{DEFAULT_CONFIG, LoadedConfig, LogFormat};
use crate::promtest::run_test_file;
use crate::rules_file::load_rule_file;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thorbis_obs_core::rules::{AlertRule, RuleFile, ValidateOptions, packs};

/// thorbis-obs: metrics, alert rules, probes and notifications for Thorbis Business OS.
#[derive(Debug, Parser)]
#[command(name = "thorbis-obs", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: sources, rules, notifications, HTTP endpoints.
    Run {
        /// Config file (TOML, or YAML by extension). Without it: the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format (overrides the config's).
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with alert rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Notification channels.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Run one probe collection and print it.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Uptime reports from stored check results.
    #[command(subcommand)]
    Uptime(checks::UptimeCommand),
    /// Synthetic browser workflows.
    #[command(subcommand)]
    Synthetic(checks::SyntheticCommand),
    /// A running agent's alerts: list, acknowledge, silence (`--url`, `--token`).
    Alerts(alerts::AlertsArgs),
    /// Read authentication helpers.
    #[command(subcommand)]
    Auth(alerts::AuthCommand),
    /// Source maps: upload a release's to a running agent, list them.
    Sourcemaps(sourcemaps::SourcemapsArgs),
    /// The agent on its default config with simulated traffic: boards fill and one alert
    /// fires, escalates and resolves on the console.
    #[cfg(all(feature = "collector", feature = "otlp", feature = "client"))]
    Demo(demo::DemoArgs),
}

/// `thorbis-obs probe ...`
#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// One collection of the PostgreSQL probe (needs the `postgres` feature).
    Postgres {
        /// Database URL (postgres://user@host:port/db).
        #[arg(long)]
        url: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "prometheus")]
        format: ProbeFormat,
        /// Sections (comma separated): connections, performance, cache, health, business.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
    },
    /// One HTTP check, printed; exit code 0 when up, 1 when down, 2 on a usage error.
    Http(Box<checks::HttpProbeArgs>),
}

/// Probe output formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProbeFormat {
    /// Prometheus text lines.
    Prometheus,
    /// JSON (samples, lock waits, unavailable sections).
    Json,
}

/// `thorbis-obs notify ...`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification through one configured channel and print the receiver's answer.
    Test {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Channel name (as configured, or an alias).
        #[arg(long)]
        channel: String,
        /// Severity of the test notification.
        #[arg(long, value_enum, default_value = "warning")]
        severity: SeverityArg,
    },
}

/// Severities on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SeverityArg {
    /// info
    Info,
    /// warning
    Warning,
    /// error
    Error,
    /// critical
    Critical,
}

/// `thorbis-obs config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file: reports every problem with its path.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the embedded default config.
    Default,
}

/// Log formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable.
    Text,
    /// JSON lines.
    Json,
}

/// `thorbis-obs rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files (YAML, TOML or JSON); errors name file:line and the field path.
    Check {
        /// Channel names rules may use (comma separated); unknown channels are errors.
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Also list, for each rule, what in the config produces its metric, and warn for a
        /// rule nothing feeds (the rules of the files, else the config's own).
        #[arg(long)]
        coverage: bool,
        /// The agent config the coverage is checked against (default: the embedded one).
        #[arg(long, requires = "coverage")]
        config: Option<PathBuf>,
        /// Rule files.
        #[arg(required_unless_present = "coverage")]
        files: Vec<PathBuf>,
    },
    /// Run promtool-style unit tests (`promtool test rules` format) against our rule files.
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a built-in rule pack as YAML.
    Pack {
        /// Which pack.
        #[arg(value_enum, default_value = "all")]
        pack: Pack,
    },
}

/// Built-in rule packs.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Pack {
    /// The spec's five alert rules.
    Spec,
    /// The spec's database health rules.
    Database,
    /// Endpoint down, certificate expiring, synthetic workflow failing.
    Uptime,
    /// Slow LCP p75 of real users, browser error rate.
    Rum,
    /// New error group in production, regression, ignored group back, error group spike.
    Errors,
    /// Disk over 90% / 95%, memory over 90% for 10 minutes, load over 2 per CPU (the `host` source).
    Host,
    /// All of them.
    All,
}

/// Runs the CLI, writing to `out` and `err`; returns the process exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match cli.command {
        Command::Run { config, log_format } => run_agent(config, log_format, err),
        Command::Config(ConfigCommand::Check { file }) => match LoadedConfig::from_file(&file) {
            Ok(c) => {
                let _ = writeln!(out, "{}: OK: {}", file.display(), c.summary());
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = writeln!(err, "{}: invalid config:\n{e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Probe(ProbeCommand::Postgres { url, format, only }) => probe_postgres(&url, format, only, out, err),
        Command::Probe(ProbeCommand::Http(args)) => checks::probe_http(*args, out, err),
        Command::Uptime(c) => checks::uptime(c, out, err),
        Command::Synthetic(c) => checks::synthetic(c, out, err),
        Command::Alerts(a) => alerts::alerts(a, out, err),
        Command::Auth(c) => alerts::auth(c, out, err),
        Command::Sourcemaps(a) => sourcemaps::sourcemaps(a, out, err),
        #[cfg(all(feature = "collector", feature = "otlp", feature = "client"))]
        Command::Demo(a) => demo::demo(a, out, err),
        Command::Notify(NotifyCommand::Test { config, channel, severity }) => {
            notify_test(&config, &channel, severity, out, err)
        }
        Command::Config(ConfigCommand::Default) => {
            let _ = write!(out, "{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::Rules(RulesCommand::Check { channels, coverage, config, files }) => {
            let opts = ValidateOptions { known_channels: channels.map(|c| c.into_iter().collect()) };
            let mut failed = false;
            let mut loaded = Vec::new();
            for f in &files {
                match load_rule_file(f, &opts) {
                    Ok(rules) => {
                        let _ = writeln!(out, "Checking {}\n  SUCCESS: {} rules found", f.display(), rules.len());
                        loaded.extend(rules);
                    }
                    Err(e) => {
                        failed = true;
                        let _ = writeln!(err, "Checking {}\n  FAILED:\n{e}", f.display());
                    }
                }
            }
            if coverage && !failed && !print_coverage(config.as_deref(), loaded, out, err) {
                failed = true;
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Command::Rules(RulesCommand::Test { files }) => {
            let mut failed = false;
            for f in &files {
                let _ = writeln!(out, "Unit Testing:  {}", f.display());
                let o = run_test_file(f);
                if o.ok() {
                    let _ = writeln!(out, "  SUCCESS ({} alert tests)\n", o.passed);
                } else {
                    failed = true;
                    let _ = writeln!(out, "  FAILED:");
                    for e in o.errors.iter().chain(o.failures.iter()) {
                        let _ = writeln!(out, "{e}");
                    }
                    let _ = writeln!(out);
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Command::Rules(RulesCommand::Pack { pack }) => {
            let rules = match pack {
                Pack::Spec => packs::spec_rules(),
                Pack::Database => packs::database_health_rules(),
                Pack::Uptime => packs::uptime_rules(),
                Pack::Rum => packs::rum_rules(),
                Pack::Errors => packs::error_rules(),
                Pack::Host => packs::host_rules(),
                Pack::All => packs::all(),
            };
            match serde_yaml_ng::to_string(&RuleFile { rules }) {
                Ok(y) => {
                    let _ = write!(out, "{y}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(err, "cannot render the pack: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A current-thread runtime, or the error written to `err`.
pub(crate) fn runtime(err: &mut dyn Write) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            let _ = writeln!(err, "cannot start the runtime: {e}");
            None
        }
    }
}

/// Prints what feeds each rule (`rules`, else the config's), against `config` (else the
/// embedded default). False when the config cannot be read; a rule nothing feeds is a
/// warning, not a failure.
fn print_coverage(config: Option<&Path>, rules: Vec<AlertRule>, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let Some(loaded) = load_config(config, err) else { return false };
    let rules = if rules.is_empty() { loaded.rules.clone() } else { rules };
    let producers = loaded.config.producers();
    let shown = config.map_or_else(|| "the embedded default config".to_string(), |p| p.display().to_string());
    let _ = writeln!(out, "Coverage against {shown}:");
    let report = thorbis_obs_core::rules::coverage::coverage(&rules, &producers);
    let width = report.iter().map(|c| c.rule.len()).max().unwrap_or(0);
    for c in &report {
        let by = if c.fed() { c.producers.join(", ") } else { "NOTHING".to_string() };
        let _ = writeln!(out, "  {:width$}  {} <- {by}", c.rule, c.metric);
    }
    let blind: Vec<_> = report.iter().filter_map(|c| c.warning()).collect();
    let _ = writeln!(out, "  {} of {} rules fed", report.len() - blind.len(), report.len());
    for w in blind {
        let _ = writeln!(out, "  WARNING: {w}");
    }
    true
}

/// The config at `path`, else the embedded default; None (the problem written to `err`) when
/// it is invalid.
pub(super) fn load_config(path: Option<&Path>, err: &mut dyn Write) -> Option<LoadedConfig> {
    let loaded = match path {
        Some(f) => LoadedConfig::from_file(f),
        None => LoadedConfig::default_config(),
    };
    loaded.map_err(|e| writeln!(err, "invalid config:\n{e}")).ok()
}

fn run_agent(config: Option<PathBuf>, log_format: Option<LogFormatArg>, err: &mut dyn Write) -> ExitCode {
    let Some(mut loaded) = load_config(config.as_deref(), err) else { return ExitCode::FAILURE };
    if let Some(f) = log_format {
        loaded.config.agent.log_format = match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    crate::telemetry::init(loaded.config.agent.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(crate::agent::run_reloadable(loaded, shutdown_signal()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "agent failed");
            let _ = writeln!(err, "thorbis-obs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A notification that says it is a test.
pub fn test_notification(severity: thorbis_obs_core::rules::Severity) -> thorbis_obs_core::engine::Notification {
    use thorbis_obs_core::engine::{Notification, NotificationKind};
    use thorbis_obs_core::metrics::Labels;
    let now = crate::agent::system_now();
    let labels = Labels::new().with("alertname", "ThorbisTestNotification").with("severity", severity.as_str());
    let fingerprint = thorbis_obs_core::engine::fingerprint("thorbis-test", &labels);
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("summary".to_string(), "A test notification from `thorbis-obs notify test`".to_string());
    Notification {
        id: format!("{fingerprint}-{}-0", now.as_millis()),
        kind: NotificationKind::Firing,
        rule_id: "thorbis-test".into(),
        rule_name: "Thorbis Test Notification".into(),
        alertname: "ThorbisTestNotification".into(),
        description: "If you can read this, the channel works.".into(),
        severity,
        level: 0,
        value: Some(1.0),
        operator: thorbis_obs_core::rules::Operator::GreaterThan,
        threshold: 0.0,
        labels,
        annotations,
        fingerprint,
        starts_at: now,
        ends_at: None,
        created_at: now,
        channels: vec![],
    }
}

fn notify_test(
    config: &std::path::Path,
    channel: &str,
    severity: SeverityArg,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    use thorbis_obs_core::rules::Severity;
    let loaded = match LoadedConfig::from_file(config) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "invalid config:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let name = loaded.resolve_channel(channel).to_string();
    let Some(cfg) = loaded.config.channels.get(&name) else {
        let names: Vec<&String> = loaded.config.channels.keys().collect();
        let _ = writeln!(err, "no channel {channel:?}; configured channels: {names:?}");
        return ExitCode::FAILURE;
    };
    let built = match crate::channels::build(&name, cfg, &loaded.config.agent.delivery, loaded.config.agent.log_format)
    {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return ExitCode::FAILURE;
        }
    };
    let severity = match severity {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Warning => Severity::Warning,
        SeverityArg::Error => Severity::Error,
        SeverityArg::Critical => Severity::Critical,
    };
    let n = test_notification(severity);
    let Some(runtime) = runtime(err) else { return ExitCode::FAILURE };
    match runtime.block_on(built.channel.send(&n)) {
        Ok(d) => {
            let _ = writeln!(out, "{name}: accepted: {}", d.answer.unwrap_or_else(|| "(no answer)".into()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "postgres")]
fn probe_postgres(
    url: &str,
    format: ProbeFormat,
    only: Option<Vec<String>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    use crate::sources::postgres::{PostgresProbe, ProbeSettings, Section};
    let mut settings = ProbeSettings::default();
    if let Some(only) = only {
        let mut sections = Vec::new();
        for name in only {
            match serde_json::from_value::<Section>(serde_json::Value::String(name.clone())) {
                Ok(s) => sections.push(s),
                Err(_) => {
                    let _ = writeln!(
                        err,
                        "--only: unknown section {name:?}; sections are connections, performance, cache, health, business"
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        settings.sections = sections;
    }
    let Some(runtime) = runtime(err) else { return ExitCode::FAILURE };
    let probe = PostgresProbe::new("postgres", url, std::time::Duration::from_secs(60), settings);
    match runtime.block_on(probe.collect_report(crate::agent::system_now())) {
        Ok(report) => {
            match format {
                ProbeFormat::Json => {
                    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default());
                }
                ProbeFormat::Prometheus => {
                    for s in &report.samples {
                        let labels =
                            if s.labels.is_empty() { String::new() } else { s.labels.to_string().replace(", ", ",") };
                        let _ = writeln!(out, "{}{} {}", s.name, labels, s.value);
                    }
                    for (section, reason) in &report.unavailable {
                        let _ = writeln!(out, "# unavailable {section}: {reason}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "probe failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "postgres"))]
fn probe_postgres(_: &str, _: ProbeFormat, _: Option<Vec<String>>, _: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let _ = writeln!(err, "the PostgreSQL probe needs the `postgres` feature of thorbis-obs-server");
    ExitCode::FAILURE
}
