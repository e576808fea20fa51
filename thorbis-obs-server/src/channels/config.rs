//! `[channels.NAME]`: each channel type's settings, always compiled (so a config naming a
//! channel this build lacks is still read and refused with the feature's name), with their
//! checks.

use crate::secret::{EnvString, Secret};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::time::HumanDuration;

/// One channel: `type` and its settings. Every type also takes `delivery` (retry policy) and
/// `rate_limit` (messages per second; Slack defaults to 1).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// Prints notifications to stdout.
    Console(ConsoleConfig),
    /// POSTs the Alertmanager v4 webhook payload.
    Webhook(WebhookConfig),
    /// Slack incoming webhook.
    Slack(SlackConfig),
    /// Email over SMTP.
    Email(EmailConfig),
    /// SMS through Twilio.
    Sms(SmsConfig),
    /// PagerDuty Events API v2.
    Pagerduty(PagerdutyConfig),
    /// Any other type.
    #[serde(other)]
    Unsupported,
}

/// `type = "console"`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Retries (rarely needed for stdout).
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// `type = "webhook"`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Receiver URL (may carry a token: treated as a secret).
    pub url: Secret,
    /// Shared secret for the HMAC-SHA256 signature header.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries.
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// `type = "slack"`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The webhook URL (a secret).
    pub webhook_url: Secret,
    /// Channel override, e.g. `#alerts`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Username override.
    #[serde(default)]
    pub username: Option<String>,
    /// `attachments` (the spec's) or `blocks`.
    #[serde(default)]
    pub style: SlackStyle,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries.
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second (default 1, Slack's limit per webhook).
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// Slack message layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackStyle {
    /// Legacy attachments, as in the spec.
    #[default]
    Attachments,
    /// Block Kit sections.
    Blocks,
}

/// `type = "email"`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP host.
    pub host: EnvString,
    /// SMTP port (default by `tls`: 587, 465 or 25).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default)]
    pub tls: EmailTls,
    /// Login.
    #[serde(default)]
    pub username: Option<Secret>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Allow `tls = "none"` to a host that is not loopback.
    #[serde(default)]
    pub allow_insecure: bool,
    /// A PEM file (path relative to the working directory) with an extra trusted root
    /// certificate, for a server with a private CA.
    #[serde(default)]
    pub root_certificate: Option<EnvString>,
    /// Per-message timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries.
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: loopback only unless explicitly allowed.
    None,
}

/// `type = "sms"`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Twilio account SID.
    pub account_sid: Secret,
    /// Twilio auth token.
    pub auth_token: Secret,
    /// Sending number.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// API base URL.
    #[serde(default = "twilio_base")]
    pub base_url: EnvString,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries.
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// `type = "pagerduty"`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// Integration (routing) key.
    pub routing_key: Secret,
    /// API base URL.
    #[serde(default = "pagerduty_base")]
    pub base_url: EnvString,
    /// `payload.source`.
    #[serde(default = "default_source")]
    pub source: String,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Retries.
    #[serde(default)]
    pub delivery: Option<DeliveryPolicy>,
    /// Messages per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
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

impl ChannelConfig {
    /// The type name as written in config.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::Console(_) => "console",
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Email(_) => "email",
            ChannelConfig::Sms(_) => "sms",
            ChannelConfig::Pagerduty(_) => "pagerduty",
            ChannelConfig::Unsupported => "unsupported",
        }
    }

    /// The channel's rate limit in messages per second (None: unlimited).
    pub fn rate_limit(&self) -> Option<f64> {
        match self {
            ChannelConfig::Console(c) => c.rate_limit,
            ChannelConfig::Webhook(c) => c.rate_limit,
            ChannelConfig::Email(c) => c.rate_limit,
            ChannelConfig::Sms(c) => c.rate_limit,
            ChannelConfig::Pagerduty(c) => c.rate_limit,
            ChannelConfig::Slack(c) => Some(c.rate_limit.unwrap_or(1.0)),
            ChannelConfig::Unsupported => None,
        }
    }

    /// The shortest time between two sends, from the rate limit.
    pub fn min_interval(&self) -> Option<Duration> {
        self.rate_limit().filter(|r| r.is_finite() && *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r))
    }

    /// The channel's own delivery policy.
    pub fn delivery(&self) -> Option<&DeliveryPolicy> {
        match self {
            ChannelConfig::Console(c) => c.delivery.as_ref(),
            ChannelConfig::Webhook(c) => c.delivery.as_ref(),
            ChannelConfig::Slack(c) => c.delivery.as_ref(),
            ChannelConfig::Email(c) => c.delivery.as_ref(),
            ChannelConfig::Sms(c) => c.delivery.as_ref(),
            ChannelConfig::Pagerduty(c) => c.delivery.as_ref(),
            ChannelConfig::Unsupported => None,
        }
    }

    /// The cargo feature this channel type needs, and whether this build has it.
    pub fn feature(&self) -> Option<(&'static str, bool)> {
        match self {
            ChannelConfig::Webhook(_) => Some(("webhook", cfg!(feature = "webhook"))),
            ChannelConfig::Slack(_) => Some(("slack", cfg!(feature = "slack"))),
            ChannelConfig::Email(_) => Some(("email", cfg!(feature = "email"))),
            ChannelConfig::Sms(_) => Some(("sms", cfg!(feature = "sms"))),
            ChannelConfig::Pagerduty(_) => Some(("pagerduty", cfg!(feature = "pagerduty"))),
            _ => None,
        }
    }

    /// Names the field a parse error inside one channel table is about. serde reads a tagged
    /// table whole before it knows the type, so its own error stops at `channels.NAME`; this
    /// reads `table` (the same table, as JSON) again as the named type's settings and returns
    /// the field's path inside the table (`routing_key`) and what is wrong with it.
    pub fn field_error(mut table: serde_json::Value) -> Option<(String, String)> {
        fn locate<T: DeserializeOwned>(v: serde_json::Value) -> Option<(String, String)> {
            let e = serde_path_to_error::deserialize::<_, T>(v).err()?;
            let mut path = e.path().to_string();
            let message = e.into_inner().to_string();
            // A missing field is reported at its table: name the field itself.
            if path == "." {
                path = missing_field(&message).unwrap_or_default().to_string();
            }
            Some((path, message))
        }
        let kind = table.as_object_mut()?.remove("type")?;
        match kind.as_str()? {
            "console" => locate::<ConsoleConfig>(table),
            "webhook" => locate::<WebhookConfig>(table),
            "slack" => locate::<SlackConfig>(table),
            "email" => locate::<EmailConfig>(table),
            "sms" => locate::<SmsConfig>(table),
            "pagerduty" => locate::<PagerdutyConfig>(table),
            _ => None,
        }
    }
}

/// `url` from serde's "missing field `url`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Every problem in `[channels]`, as (path, message).
pub fn problems(channels: &BTreeMap<String, ChannelConfig>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = |path: String, message: String| out.push((path, message));
    let url_ok = crate::secret::is_http_url;
    for (name, ch) in channels {
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
        match ch {
            ChannelConfig::Console(_) => {}
            ChannelConfig::Webhook(c) => {
                if !url_ok(c.url.expose()) {
                    p(format!("{path}.url"), "must be an http:// or https:// URL".into());
                }
                if c.timeout.get().is_zero() {
                    p(format!("{path}.timeout"), "must be longer than 0s".into());
                }
            }
            ChannelConfig::Slack(c) => {
                if !url_ok(c.webhook_url.expose()) {
                    p(format!("{path}.webhook_url"), "must be an http:// or https:// URL".into());
                }
            }
            ChannelConfig::Sms(c) => {
                if !url_ok(&c.base_url) {
                    p(format!("{path}.base_url"), "must be an http:// or https:// URL".into());
                }
                if c.to.is_empty() {
                    p(format!("{path}.to"), "at least one recipient".into());
                }
                if c.account_sid.is_empty() {
                    p(format!("{path}.account_sid"), "missing".into());
                }
            }
            ChannelConfig::Pagerduty(c) => {
                if !url_ok(&c.base_url) {
                    p(format!("{path}.base_url"), "must be an http:// or https:// URL".into());
                }
                if c.routing_key.is_empty() {
                    p(format!("{path}.routing_key"), "missing".into());
                }
            }
            ChannelConfig::Email(c) => {
                if let Some(pem) = &c.root_certificate {
                    if let Err(e) = std::fs::read(&pem.0) {
                        p(format!("{path}.root_certificate"), format!("cannot read {}: {e}", pem.0));
                    }
                }
                #[cfg(feature = "email")]
                if let Err(e) = super::email::check(&super::email::EmailSettings::from_config(c)) {
                    // The check says `field: problem`; the path names the field.
                    match e.split_once(": ") {
                        Some((field, message)) if !field.contains(' ') => p(format!("{path}.{field}"), message.into()),
                        _ => p(path.clone(), e),
                    }
                }
            }
            ChannelConfig::Unsupported => p(
                format!("{path}.type"),
                "unknown channel type; types are console, webhook, slack, email, sms and pagerduty".into(),
            ),
        }
    }
    out
}
