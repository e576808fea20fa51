//! The agent's configuration: one TOML file (YAML accepted), `${ENV_VAR}` references for
//! secrets, and `thorbis-obs config check` reporting every problem with its path.
//!
//! With no file the agent runs on [`DEFAULT_CONFIG`]: a SQLite store in `./thorbis-data`, the
//! spec's rule packs, a `console` channel standing in for slack, email, sms and pagerduty,
//! and a self-check source.
//!
//! This module only aggregates: each component owns its section's type and its checks
//! (`channels::problems`, `uptime::problems`, ...); what is checked here is what crosses
//! sections (channel aliases, the channels rules name, rule packs and files) and the agent's
//! own sections.

pub use crate::channels::ChannelConfig;
pub use crate::secret::{EnvString, Secret, expand_env, expand_with};
pub use crate::sources::SourceConfig;
pub use crate::telemetry::LogFormat;

use crate::rules_file::{Format, LocatedError, load_rule_file, parse_located};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::engine::MaintenanceWindow;
use thorbis_obs_core::rules::{AlertRule, ValidateOptions, packs, validate_rules};
use thorbis_obs_core::time::HumanDuration;

/// The configuration the agent runs on when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Process-wide settings.
    #[serde(default)]
    pub agent: AgentSection,
    /// Where state lives.
    #[serde(default)]
    pub store: StoreSection,
    /// The HTTP endpoints.
    #[serde(default)]
    pub http: HttpSection,
    /// Alert rules.
    #[serde(default)]
    pub rules: RulesSection,
    /// Named channels.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Rule channel names that stand for configured channels, e.g. `slack = "console"`.
    #[serde(default)]
    pub channel_aliases: BTreeMap<String, String>,
    /// Metric sources.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Maintenance windows.
    #[serde(default)]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// Uptime checks (feature `http`).
    #[serde(default)]
    pub uptime: crate::uptime::UptimeSection,
    /// Synthetic browser workflows (feature `synthetic`).
    #[serde(default)]
    pub synthetic: crate::synthetic::SyntheticSection,
    /// The RUM collector, `POST /v1/rum` (feature `collector`).
    #[serde(default)]
    pub collector: crate::collector::CollectorSection,
    /// The OTLP/HTTP intake, `POST /v1/traces` (feature `otlp`).
    #[serde(default)]
    pub otlp: crate::otlp::OtlpSection,
    /// The trace store: tail-sampled traces from the OTLP intake (feature `otlp`).
    #[serde(default)]
    pub traces: crate::traces::TracesSection,
    /// Dashboards served at `/`; none: the built-in operational and executive boards.
    #[serde(default)]
    pub dashboards: Vec<crate::dashboards::DashboardConfig>,
    /// Source maps (see [`crate::sourcemaps`]).
    #[serde(default)]
    pub sourcemaps: crate::sourcemaps::SourceMapsSection,
}

/// `[agent]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Directory for the SQLite store and other files.
    pub data_dir: EnvString,
    /// How often rules are evaluated.
    pub evaluation_interval: HumanDuration,
    /// How long shutdown may wait for in-flight deliveries.
    pub shutdown_timeout: HumanDuration,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// Retries for every channel unless the channel says otherwise.
    pub delivery: DeliveryPolicy,
    /// How long audit records (who silenced, acknowledged, reloaded...) are kept (default 90 days).
    pub audit_retention: HumanDuration,
    /// The business database the built-in boards' SQL widgets read (the spec's executive
    /// widgets), `postgres://...` or `sqlite:PATH`, with the spec's tables (examples/postgres).
    /// Default: the first `type = "postgres"` source's database; with neither, the widgets are
    /// left out.
    pub business_database: Option<Secret>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            data_dir: EnvString("./thorbis-data".into()),
            evaluation_interval: HumanDuration::from_secs(15),
            shutdown_timeout: HumanDuration::from_secs(10),
            log_format: LogFormat::Text,
            delivery: DeliveryPolicy::default(),
            audit_retention: HumanDuration::from_secs(90 * 86400),
            business_database: None,
        }
    }
}

/// `[store]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite:PATH` (default: `<data_dir>/thorbis.db`) or a `postgres://` URL.
    pub url: Option<Secret>,
    /// On a store several agents share: how long the leader's lease runs, i.e. how long a
    /// standby waits for a leader that stopped renewing before it takes over (default three
    /// evaluation intervals; at least two).
    pub leader_lease: Option<HumanDuration>,
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Listen address; loopback by default. Empty disables the server.
    pub listen: String,
    /// Bearer token for the write endpoints (suppressions, samples). Without one they refuse.
    pub api_token: Option<Secret>,
    /// `Host` names (no port) requests may carry: the names the agent is reached by. Default
    /// `localhost`, `127.0.0.1` and `::1`; `"*"` takes any (not behind a browser: a web page
    /// could then reach the agent through DNS rebinding).
    pub hosts: Vec<String>,
    /// Connections open at once, at most (default 1,024); more are closed at once.
    pub max_connections: usize,
    /// A request's headers must arrive within this; an idle keep-alive connection closes after
    /// it (default 10 s).
    pub header_read_timeout: HumanDuration,
    /// How far ahead of the agent's clock a pushed sample may be (default 5 min).
    pub max_sample_skew: HumanDuration,
    /// Read authentication of the admin side (see [`crate::api::auth`]).
    pub auth: crate::api::auth::AuthSection,
    /// A listener of its own for what browsers and exporters must reach (`/v1/rum`, OTLP,
    /// `/healthz`); then `listen` is the admin listener (it serves those routes too).
    pub public: Option<PublicListener>,
}

/// `[http.public]`: the ingest listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicListener {
    /// Its address, e.g. `0.0.0.0:8080`.
    pub listen: String,
    /// `Host` names it answers to (default `"*"`: it serves nothing a page could read through
    /// DNS rebinding).
    #[serde(default = "any_host")]
    pub hosts: Vec<String>,
}

fn any_host() -> Vec<String> {
    vec!["*".into()]
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "127.0.0.1:9464".into(),
            api_token: None,
            hosts: crate::api::LOOPBACK_HOSTS.map(String::from).to_vec(),
            max_connections: 1024,
            header_read_timeout: HumanDuration::from_secs(10),
            max_sample_skew: HumanDuration::from_secs(300),
            auth: Default::default(),
            public: None,
        }
    }
}

/// `[rules]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// Built-in packs: `spec`, `database`, `uptime`, `rum`.
    pub packs: Vec<String>,
    /// Rule files (YAML, TOML, JSON), relative to the config file.
    pub files: Vec<PathBuf>,
    /// Rules written in the config itself.
    pub inline: Vec<AlertRule>,
}

/// A config problem, located by a path such as `channels.hook.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where (a dotted path, or `file:line: path` for rule files).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}", file = file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Syntax or type error.
    #[error("{0}")]
    Parse(LocatedError),
    /// Problems found after parsing, every one of them.
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

/// A config with its rules loaded and everything checked.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: AgentConfig,
    /// Every rule: packs, files, inline.
    pub rules: Vec<AlertRule>,
    /// Where the config came from (None: the embedded default).
    pub source: Option<PathBuf>,
}

impl LoadedConfig {
    /// Reads, parses and checks a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.to_path_buf(), source })?;
        let format = if Format::from_path(path) == Some(Format::Yaml) { Format::Yaml } else { Format::Toml };
        Self::from_text(&text, format, path, Some(path.to_path_buf()))
    }

    /// One line of what it holds: rules, channels, sources, checks, workflows.
    pub fn summary(&self) -> String {
        let c = &self.config;
        format!(
            "{} rules, {} channels, {} sources, {} uptime checks, {} synthetic workflows",
            self.rules.len(),
            c.channels.len(),
            c.sources.len(),
            c.uptime.checks.len(),
            c.synthetic.workflows.len()
        )
    }

    /// Reads its file again (the embedded default when it had none), checked.
    pub fn reread(&self) -> Result<Self, ConfigError> {
        match &self.source {
            Some(p) => Self::from_file(p),
            None => Self::default_config(),
        }
    }

    /// The embedded default config.
    pub fn default_config() -> Result<Self, ConfigError> {
        Self::from_text(DEFAULT_CONFIG, Format::Toml, Path::new("<default config>"), None)
    }

    fn from_text(text: &str, format: Format, path: &Path, source: Option<PathBuf>) -> Result<Self, ConfigError> {
        let config: AgentConfig =
            parse_located(text, format, path).map_err(|e| ConfigError::Parse(locate_channel_error(e, text, format)))?;
        let base = source.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        let (rules, problems) = check(&config, base);
        if problems.is_empty() {
            Ok(LoadedConfig { config, rules, source })
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Channel names rules may use: configured channels and aliases.
    pub fn channel_names(&self) -> BTreeSet<String> {
        channel_names(&self.config)
    }

    /// The configured channel a rule's channel name resolves to.
    pub fn resolve_channel<'a>(&'a self, name: &'a str) -> &'a str {
        self.config.channel_aliases.get(name).map(String::as_str).unwrap_or(name)
    }
}

/// serde reads a `[channels.NAME]` table whole before it knows the channel's type, so a parse
/// error inside one stops at `channels.NAME`: read that table again to name the field
/// (`channels.pager.routing_key`).
fn locate_channel_error(mut e: LocatedError, text: &str, format: Format) -> LocatedError {
    let Some(name) = e.path.strip_prefix("channels.").filter(|n| !n.contains('.')) else { return e };
    let raw: Option<serde_json::Value> = match format {
        Format::Toml => toml::from_str(text).ok(),
        Format::Yaml => serde_yaml_ng::from_str(text).ok(),
        Format::Json => serde_json::from_str(text).ok(),
    };
    let Some(table) = raw.and_then(|mut v| v.get_mut("channels")?.get_mut(name).map(serde_json::Value::take)) else {
        return e;
    };
    if let Some((field, message)) = ChannelConfig::field_error(table) {
        if !field.is_empty() {
            e.path = format!("{}.{field}", e.path);
        }
        e.message = message;
    }
    e
}

impl AgentConfig {
    /// Everything this config makes that writes samples into the engine, with the metric names
    /// each writes: what `rules check --coverage`, `GET /api/v1/rules` and the start-up
    /// warning read.
    pub fn producers(&self) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
        let mut out = crate::sources::producers(&self.sources);
        out.extend(crate::uptime::producers(&self.uptime));
        out.extend(crate::synthetic::producers(&self.synthetic));
        out.extend(crate::collector::producers(&self.collector));
        out.extend(crate::otlp::producers(&self.otlp));
        out.extend(crate::traces::producers(&self.traces));
        out
    }
}

fn channel_names(c: &AgentConfig) -> BTreeSet<String> {
    c.channels.keys().chain(c.channel_aliases.keys()).cloned().collect()
}

/// Checks everything that parsing cannot: returns the rules and every problem found.
fn check(c: &AgentConfig, base: &Path) -> (Vec<AlertRule>, Vec<ConfigProblem>) {
    let mut problems = Vec::new();
    let mut p = |path: String, message: String| problems.push(ConfigProblem { path, message });
    if c.agent.evaluation_interval.get().is_zero() {
        p("agent.evaluation_interval".into(), "must be longer than 0s".into());
    }
    if let Some(lease) = &c.store.leader_lease {
        let least = c.agent.evaluation_interval.get().saturating_mul(2);
        if lease.get() < least {
            p("store.leader_lease".into(), format!("must be at least two evaluation intervals ({least:?})"));
        }
    }
    if c.agent.data_dir.trim().is_empty() {
        p("agent.data_dir".into(), "must not be empty".into());
    }
    if let Some(url) = &c.agent.business_database {
        let u = url.expose();
        let pg = u.starts_with("postgres://") || u.starts_with("postgresql://");
        let sqlite = u.strip_prefix("sqlite:").is_some_and(|path| !path.is_empty());
        if !(pg || sqlite) {
            p("agent.business_database".into(), "use postgres://... or sqlite:PATH".into());
        }
    }
    if let Some(url) = &c.store.url {
        let u = url.expose();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            if !cfg!(feature = "postgres") {
                p("store.url".into(), "the PostgreSQL store needs the `postgres` feature".into());
            }
        } else if !u.starts_with("sqlite:") {
            p("store.url".into(), "must start with sqlite: or postgres://".into());
        }
    }
    if !c.http.listen.is_empty() && c.http.listen.parse::<std::net::SocketAddr>().is_err() {
        p("http.listen".into(), format!("{:?} is not an address such as 127.0.0.1:9464", c.http.listen));
    }
    if c.http.hosts.is_empty() {
        p("http.hosts".into(), "at least one name the agent is reached by (or \"*\" for any)".into());
    }
    if c.http.max_connections == 0 {
        p("http.max_connections".into(), "must be at least 1".into());
    }
    if c.http.header_read_timeout.get().is_zero() {
        p("http.header_read_timeout".into(), "must be longer than 0s".into());
    }
    for (path, message) in c.http.auth.problems() {
        p(path, message);
    }
    if let Some(public) = &c.http.public {
        if public.listen.parse::<std::net::SocketAddr>().is_err() {
            p("http.public.listen".into(), format!("{:?} is not an address such as 0.0.0.0:8080", public.listen));
        }
        if public.hosts.is_empty() {
            p("http.public.hosts".into(), "at least one name (or \"*\" for any)".into());
        }
    }
    if !c.http.listen.is_empty() && !crate::api::auth::is_loopback(&c.http.listen) && !c.http.auth.is_configured() {
        p(
            "http.listen".into(),
            format!(
                "{} is not a loopback address, and this listener serves the dashboards, the error groups and /metrics: \
                 set http.auth (viewer_tokens or trusted_proxies) first, or keep it on loopback and put what browsers \
                 and exporters reach on [http.public]",
                c.http.listen
            ),
        );
    }
    let sections = [
        crate::channels::problems(&c.channels),
        crate::sources::problems(&c.sources),
        crate::uptime::problems(&c.uptime),
        crate::synthetic::problems(&c.synthetic),
        crate::collector::problems(&c.collector),
        crate::otlp::problems(&c.otlp),
        crate::traces::problems(&c.traces),
        crate::dashboards::problems(&c.dashboards),
        crate::sourcemaps::problems(&c.sourcemaps),
    ];
    for (path, message) in sections.into_iter().flatten() {
        p(path, message);
    }
    for (alias, target) in &c.channel_aliases {
        if !c.channels.contains_key(target) {
            p(format!("channel_aliases.{alias}"), format!("points at {target:?}, which is not a configured channel"));
        }
    }
    for (i, w) in c.maintenance_windows.iter().enumerate() {
        if let Err(e) = w.validate() {
            p(format!("maintenance_windows[{i}]"), e.to_string());
        }
    }
    let mut rules = Vec::new();
    for (i, name) in c.rules.packs.iter().enumerate() {
        match name.as_str() {
            "spec" => rules.extend(packs::spec_rules()),
            "database" => rules.extend(packs::database_health_rules()),
            "uptime" => rules.extend(packs::uptime_rules()),
            "rum" => rules.extend(packs::rum_rules()),
            "errors" => rules.extend(packs::error_rules()),
            "host" => rules.extend(packs::host_rules()),
            other => p(
                format!("rules.packs[{i}]"),
                format!("unknown pack {other:?}; packs are spec, database, uptime, rum, errors and host"),
            ),
        }
    }
    let known = ValidateOptions { known_channels: Some(channel_names(c)) };
    for (i, f) in c.rules.files.iter().enumerate() {
        match load_rule_file(&base.join(f), &known) {
            Ok(r) => rules.extend(r),
            Err(e) => p(format!("rules.files[{i}]"), e.to_string()),
        }
    }
    let inline_start = rules.len();
    rules.extend(c.rules.inline.iter().cloned());
    if let Err(errs) = validate_rules(&rules, &known) {
        for e in errs {
            let where_ = if e.index >= inline_start {
                e.path.replacen(&format!("rules[{}]", e.index), &format!("rules.inline[{}]", e.index - inline_start), 1)
            } else {
                format!("rules ({}): {}", e.rule_id.clone().unwrap_or_default(), e.path)
            };
            p(where_, e.message);
        }
    }
    (rules, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_loads() {
        let c = LoadedConfig::default_config().expect("the embedded default is valid");
        assert_eq!(c.rules.len(), 31, "spec 5, database 4, uptime 3, rum 11, errors 4, host 4");
        assert_eq!(c.resolve_channel("pagerduty"), "console");
    }
}
