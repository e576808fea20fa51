//! The agent's configuration: one TOML file (YAML accepted), `${ENV_VAR}` references for
//! secrets, and `thorbis-obs config check` reporting every problem with its path.
//!
//! With no file the agent runs on [`DEFAULT_CONFIG`]: a SQLite store in `./thorbis-data`, the
//! spec's rule packs, a `console` channel standing in for slack, email, sms and pagerduty,
//! and a self-check source.

mod secret;

pub use secret::{EnvString, Secret, expand_env, expand_with};

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
    pub uptime: crate::uptime::config::UptimeSection,
    /// Synthetic browser workflows (feature `synthetic`).
    #[serde(default)]
    pub synthetic: crate::synthetic::SyntheticSection,
    /// The RUM collector, `POST /v1/rum` (feature `collector`).
    #[serde(default)]
    pub collector: crate::collector::CollectorSection,
    /// Dashboards served at `/`; none: the built-in operational and executive boards.
    #[serde(default)]
    pub dashboards: Vec<crate::dashboards::DashboardConfig>,
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
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            data_dir: EnvString("./thorbis-data".into()),
            evaluation_interval: HumanDuration::from_secs(15),
            shutdown_timeout: HumanDuration::from_secs(10),
            log_format: LogFormat::Text,
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[store]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite:PATH` (default: `<data_dir>/thorbis.db`) or a `postgres://` URL.
    pub url: Option<Secret>,
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Listen address; loopback by default. Empty disables the server.
    pub listen: String,
    /// Bearer token for the write endpoints (suppressions, samples). Without one they refuse.
    pub api_token: Option<Secret>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection { listen: "127.0.0.1:9464".into(), api_token: None }
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

/// One channel: `type` and its settings. Every type also takes `delivery` (retry policy) and
/// `rate_limit` (messages per second; Slack defaults to 1).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Prints notifications to stdout.
    Console {
        /// Retries (rarely needed for stdout).
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second.
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// POSTs the Alertmanager v4 webhook payload.
    Webhook {
        /// Receiver URL (may carry a token: treated as a secret).
        url: Secret,
        /// Shared secret for the HMAC-SHA256 signature header.
        #[serde(default)]
        hmac_secret: Option<Secret>,
        /// Per-request timeout.
        #[serde(default = "default_timeout")]
        timeout: HumanDuration,
        /// Retries.
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second.
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret).
        webhook_url: Secret,
        /// Channel override, e.g. `#alerts`.
        #[serde(default)]
        channel: Option<String>,
        /// Username override.
        #[serde(default)]
        username: Option<String>,
        /// `attachments` (the spec's) or `blocks`.
        #[serde(default)]
        style: SlackStyleConfig,
        /// Per-request timeout.
        #[serde(default = "default_timeout")]
        timeout: HumanDuration,
        /// Retries.
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second (default 1, Slack's limit per webhook).
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// Email over SMTP.
    Email {
        /// SMTP host.
        host: EnvString,
        /// SMTP port (default by `tls`: 587, 465 or 25).
        #[serde(default)]
        port: Option<u16>,
        /// `starttls` (default), `implicit` or `none`.
        #[serde(default)]
        tls: EmailTlsConfig,
        /// Login.
        #[serde(default)]
        username: Option<Secret>,
        /// Password.
        #[serde(default)]
        password: Option<Secret>,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// Allow `tls = "none"` to a host that is not loopback.
        #[serde(default)]
        allow_insecure: bool,
        /// A PEM file (path relative to the working directory) with an extra trusted root
        /// certificate, for a server with a private CA.
        #[serde(default)]
        root_certificate: Option<EnvString>,
        /// Per-message timeout.
        #[serde(default = "default_timeout")]
        timeout: HumanDuration,
        /// Retries.
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second.
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// SMS through Twilio.
    Sms {
        /// Twilio account SID.
        account_sid: Secret,
        /// Twilio auth token.
        auth_token: Secret,
        /// Sending number.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// API base URL.
        #[serde(default = "twilio_base")]
        base_url: EnvString,
        /// Per-request timeout.
        #[serde(default = "default_timeout")]
        timeout: HumanDuration,
        /// Retries.
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second.
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// PagerDuty Events API v2.
    Pagerduty {
        /// Integration (routing) key.
        routing_key: Secret,
        /// API base URL.
        #[serde(default = "pagerduty_base")]
        base_url: EnvString,
        /// `payload.source`.
        #[serde(default = "default_source")]
        source: String,
        /// Per-request timeout.
        #[serde(default = "default_timeout")]
        timeout: HumanDuration,
        /// Retries.
        #[serde(default)]
        delivery: Option<DeliveryPolicy>,
        /// Messages per second.
        #[serde(default)]
        rate_limit: Option<f64>,
    },
    /// Any other type.
    #[serde(other)]
    Unsupported,
}

/// Slack message layout in config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackStyleConfig {
    /// Legacy attachments (the spec's message).
    #[default]
    Attachments,
    /// Block Kit.
    Blocks,
}

/// SMTP security in config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTlsConfig {
    /// STARTTLS.
    #[default]
    Starttls,
    /// Implicit TLS.
    Implicit,
    /// Plain (loopback only unless allowed).
    None,
}

impl ChannelConfig {
    /// The type name as written in config.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::Console { .. } => "console",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Email { .. } => "email",
            ChannelConfig::Sms { .. } => "sms",
            ChannelConfig::Pagerduty { .. } => "pagerduty",
            ChannelConfig::Unsupported => "unsupported",
        }
    }

    /// The channel's rate limit in messages per second (None: unlimited).
    pub fn rate_limit(&self) -> Option<f64> {
        match self {
            ChannelConfig::Console { rate_limit, .. }
            | ChannelConfig::Webhook { rate_limit, .. }
            | ChannelConfig::Email { rate_limit, .. }
            | ChannelConfig::Sms { rate_limit, .. }
            | ChannelConfig::Pagerduty { rate_limit, .. } => *rate_limit,
            ChannelConfig::Slack { rate_limit, .. } => Some(rate_limit.unwrap_or(1.0)),
            ChannelConfig::Unsupported => None,
        }
    }

    /// The channel's own delivery policy.
    pub fn delivery(&self) -> Option<&DeliveryPolicy> {
        match self {
            ChannelConfig::Console { delivery, .. }
            | ChannelConfig::Webhook { delivery, .. }
            | ChannelConfig::Slack { delivery, .. }
            | ChannelConfig::Email { delivery, .. }
            | ChannelConfig::Sms { delivery, .. }
            | ChannelConfig::Pagerduty { delivery, .. } => delivery.as_ref(),
            ChannelConfig::Unsupported => None,
        }
    }

    /// The cargo feature this channel type needs, and whether this build has it.
    pub fn feature(&self) -> Option<(&'static str, bool)> {
        match self {
            ChannelConfig::Webhook { .. } => Some(("webhook", cfg!(feature = "webhook"))),
            ChannelConfig::Slack { .. } => Some(("slack", cfg!(feature = "slack"))),
            ChannelConfig::Email { .. } => Some(("email", cfg!(feature = "email"))),
            ChannelConfig::Sms { .. } => Some(("sms", cfg!(feature = "sms"))),
            ChannelConfig::Pagerduty { .. } => Some(("pagerduty", cfg!(feature = "pagerduty"))),
            _ => None,
        }
    }
}

fn twilio_base() -> EnvString {
    EnvString("https://api.twilio.com".into())
}

fn pagerduty_base() -> EnvString {
    EnvString("https://events.pagerduty.com".into())
}

fn default_source() -> String {
    "thorbis-obs".into()
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// One metric source: `type`, `interval` and its settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// The agent's own health: uptime, resident memory, outbox backlog.
    #[serde(rename = "self")]
    SelfCheck {
        /// How often.
        #[serde(default = "default_self_interval")]
        interval: HumanDuration,
    },
    /// The PostgreSQL probe (feature `postgres`).
    Postgres {
        /// Source name (default `postgres`).
        #[serde(default = "default_pg_name")]
        name: String,
        /// Database URL (a secret: it may hold a password).
        url: Secret,
        /// How often (the spec: connections 1m, performance 5m, health 30s; one probe per
        /// interval you want).
        #[serde(default = "default_pg_interval")]
        interval: HumanDuration,
        /// Sections to collect (default: all).
        #[serde(default)]
        only: Option<Vec<crate::probes::postgres::Section>>,
        /// Queries running longer than this are long-running.
        #[serde(default = "default_long_running")]
        long_running: HumanDuration,
        /// Per-statement timeout.
        #[serde(default = "default_statement_timeout")]
        statement_timeout: HumanDuration,
        /// Per-statement lock timeout.
        #[serde(default = "default_lock_timeout")]
        lock_timeout: HumanDuration,
        /// Business queries.
        #[serde(default)]
        business: Vec<crate::probes::postgres::BusinessQuery>,
    },
}

fn default_pg_name() -> String {
    "postgres".into()
}

fn default_pg_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}

fn default_long_running() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_statement_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_lock_timeout() -> HumanDuration {
    HumanDuration::from_secs(1)
}

fn default_self_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
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

    /// The embedded default config.
    pub fn default_config() -> Result<Self, ConfigError> {
        Self::from_text(DEFAULT_CONFIG, Format::Toml, Path::new("<default config>"), None)
    }

    fn from_text(text: &str, format: Format, path: &Path, source: Option<PathBuf>) -> Result<Self, ConfigError> {
        let config: AgentConfig = parse_located(text, format, path).map_err(ConfigError::Parse)?;
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
    if c.agent.data_dir.trim().is_empty() {
        p("agent.data_dir".into(), "must not be empty".into());
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
    for (name, ch) in &c.channels {
        let path = format!("channels.{name}");
        if !thorbis_obs_core::metrics::is_valid_name(&name.replace('-', "_"), false) {
            p(path.clone(), "channel names use letters, digits, '_' and '-'".into());
        }
        if let Some((feature, false)) = ch.feature() {
            p(
                format!("{path}.type"),
                format!("the {feature} channel needs the `{feature}` feature of thorbis-obs-server"),
            );
        }
        if ch.rate_limit().is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            p(format!("{path}.rate_limit"), "must be a positive number of messages per second".into());
        }
        let url_ok = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        match ch {
            ChannelConfig::Console { .. } => {}
            ChannelConfig::Webhook { url, timeout, .. } => {
                if !url_ok(url.expose()) {
                    p(format!("{path}.url"), "must be an http:// or https:// URL".into());
                }
                if timeout.get().is_zero() {
                    p(format!("{path}.timeout"), "must be longer than 0s".into());
                }
            }
            ChannelConfig::Slack { webhook_url, .. } => {
                if !url_ok(webhook_url.expose()) {
                    p(format!("{path}.webhook_url"), "must be an http:// or https:// URL".into());
                }
            }
            ChannelConfig::Sms { base_url, to, account_sid, .. } => {
                if !url_ok(base_url) {
                    p(format!("{path}.base_url"), "must be an http:// or https:// URL".into());
                }
                if to.is_empty() {
                    p(format!("{path}.to"), "at least one recipient".into());
                }
                if account_sid.is_empty() {
                    p(format!("{path}.account_sid"), "missing".into());
                }
            }
            ChannelConfig::Pagerduty { base_url, routing_key, .. } => {
                if !url_ok(base_url) {
                    p(format!("{path}.base_url"), "must be an http:// or https:// URL".into());
                }
                if routing_key.is_empty() {
                    p(format!("{path}.routing_key"), "missing".into());
                }
            }
            ChannelConfig::Email { root_certificate, .. } => {
                if let Some(pem) = root_certificate {
                    if let Err(e) = std::fs::read(&pem.0) {
                        p(format!("{path}.root_certificate"), format!("cannot read {}: {e}", pem.0));
                    }
                }
                #[cfg(feature = "email")]
                if let Err(e) = crate::channels::email::check(&crate::channels::email_settings(ch)) {
                    p(path.clone(), e);
                }
            }
            ChannelConfig::Unsupported => p(
                format!("{path}.type"),
                "unknown channel type; types are console, webhook, slack, email, sms and pagerduty".into(),
            ),
        }
    }
    for (alias, target) in &c.channel_aliases {
        if !c.channels.contains_key(target) {
            p(format!("channel_aliases.{alias}"), format!("points at {target:?}, which is not a configured channel"));
        }
    }
    for (i, s) in c.sources.iter().enumerate() {
        match s {
            SourceConfig::SelfCheck { interval } if interval.get().is_zero() => {
                p(format!("sources[{i}].interval"), "must be longer than 0s".into())
            }
            SourceConfig::SelfCheck { .. } => {}
            SourceConfig::Postgres { url, interval, business, .. } => {
                if !cfg!(feature = "postgres") {
                    p(
                        format!("sources[{i}]"),
                        "the postgres probe needs the `postgres` feature of thorbis-obs-server".into(),
                    );
                }
                if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                    p(format!("sources[{i}].url"), "must be a postgres:// URL".into());
                }
                if interval.get().is_zero() {
                    p(format!("sources[{i}].interval"), "must be longer than 0s".into());
                }
                for (j, q) in business.iter().enumerate() {
                    if q.sql.trim().is_empty() {
                        p(format!("sources[{i}].business[{j}].sql"), "must not be empty".into());
                    }
                    if !thorbis_obs_core::metrics::is_valid_name(&q.name, false) {
                        p(format!("sources[{i}].business[{j}].name"), "use [a-zA-Z_][a-zA-Z0-9_]*".into());
                    }
                }
            }
        }
    }
    for (path, message) in crate::uptime::config::problems(&c.uptime, &c.synthetic) {
        p(path, message);
    }
    for (path, message) in crate::collector::problems(&c.collector) {
        p(path, message);
    }
    for (path, message) in crate::dashboards::problems(&c.dashboards) {
        p(path, message);
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
            other => p(
                format!("rules.packs[{i}]"),
                format!("unknown pack {other:?}; packs are spec, database, uptime and rum"),
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
        assert_eq!(c.rules.len(), 14, "spec 5, database 4, uptime 3, rum 2");
        assert_eq!(c.resolve_channel("pagerduty"), "console");
    }
}
