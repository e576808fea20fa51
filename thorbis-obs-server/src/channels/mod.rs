//! Alert channels built from config. Each type sits behind its own cargo feature (`webhook`,
//! `slack`, `email`, `sms`, `pagerduty`), except `console`.

pub mod console;
#[cfg(feature = "email")]
pub mod email;
#[cfg(any(feature = "webhook", feature = "slack", feature = "sms", feature = "pagerduty"))]
pub mod http_client;
#[cfg(any(feature = "pagerduty", feature = "sms"))]
pub mod pagerduty;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(feature = "sms")]
pub mod sms;
#[cfg(feature = "webhook")]
pub mod webhook;

use crate::config::{ChannelConfig, LogFormat};
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::AlertChannel;
use thorbis_obs_core::delivery::DeliveryPolicy;

/// A channel ready to use, with its retry policy and rate limit.
pub struct BuiltChannel {
    /// The channel.
    pub channel: Arc<dyn AlertChannel>,
    /// Its retry policy.
    pub policy: DeliveryPolicy,
    /// Shortest time between two sends (from `rate_limit`).
    pub min_interval: Option<Duration>,
}

/// Why a channel could not be built.
#[derive(Debug, thiserror::Error)]
#[error("channel {name}: {problem}")]
pub struct ChannelBuildError {
    /// The channel's name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// The email settings of an `email` channel config.
#[cfg(feature = "email")]
pub fn email_settings(cfg: &ChannelConfig) -> email::EmailSettings {
    use crate::config::EmailTlsConfig;
    match cfg {
        ChannelConfig::Email {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
            allow_insecure,
            timeout,
            root_certificate,
            ..
        } => email::EmailSettings {
            host: host.0.clone(),
            port: *port,
            tls: match tls {
                EmailTlsConfig::Starttls => email::EmailTls::Starttls,
                EmailTlsConfig::Implicit => email::EmailTls::Implicit,
                EmailTlsConfig::None => email::EmailTls::None,
            },
            username: username.clone(),
            password: password.clone(),
            from: from.clone(),
            to: to.clone(),
            allow_insecure: *allow_insecure,
            timeout: timeout.get(),
            root_certificate_pem: root_certificate.as_ref().and_then(|p| std::fs::read(&p.0).ok()),
        },
        _ => email::EmailSettings {
            host: String::new(),
            port: None,
            tls: email::EmailTls::Starttls,
            username: None,
            password: None,
            from: String::new(),
            to: vec![],
            allow_insecure: false,
            timeout: Duration::from_secs(10),
            root_certificate_pem: None,
        },
    }
}

/// Builds the channel `name` from its config; `default_policy` applies when it sets none.
pub fn build(
    name: &str,
    cfg: &ChannelConfig,
    default_policy: &DeliveryPolicy,
    log: LogFormat,
) -> Result<BuiltChannel, ChannelBuildError> {
    let err = |p: String| ChannelBuildError { name: name.to_string(), problem: p };
    if let Some((feature, false)) = cfg.feature() {
        return Err(err(format!("the {feature} channel needs the `{feature}` feature of thorbis-obs-server")));
    }
    let channel: Arc<dyn AlertChannel> = match cfg {
        ChannelConfig::Console { .. } => Arc::new(console::ConsoleChannel::new(name, log == LogFormat::Json)),
        #[cfg(feature = "webhook")]
        ChannelConfig::Webhook { url, hmac_secret, timeout, .. } => Arc::new(
            webhook::WebhookChannel::new(name, url.clone(), hmac_secret.clone(), timeout.get())
                .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "slack")]
        ChannelConfig::Slack { webhook_url, channel, username, style, timeout, .. } => Arc::new(
            slack::SlackChannel::new(
                name,
                webhook_url.clone(),
                channel.clone(),
                username.clone(),
                match style {
                    crate::config::SlackStyleConfig::Attachments => slack::SlackStyle::Attachments,
                    crate::config::SlackStyleConfig::Blocks => slack::SlackStyle::Blocks,
                },
                timeout.get(),
            )
            .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "email")]
        ChannelConfig::Email { .. } => Arc::new(email::EmailChannel::new(name, &email_settings(cfg)).map_err(err)?),
        #[cfg(feature = "sms")]
        ChannelConfig::Sms { account_sid, auth_token, from, to, base_url, timeout, .. } => Arc::new(
            sms::SmsChannel::new(
                name,
                account_sid.expose(),
                auth_token.clone(),
                from,
                to.clone(),
                base_url,
                timeout.get(),
            )
            .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "pagerduty")]
        ChannelConfig::Pagerduty { routing_key, base_url, source, timeout, .. } => Arc::new(
            pagerduty::PagerDutyChannel::new(name, routing_key.clone(), base_url, source, timeout.get())
                .map_err(|e| err(e.to_string()))?,
        ),
        #[allow(unreachable_patterns, reason = "which arms exist depends on the enabled channel features")]
        _ => return Err(err(format!("channel type {} is not available in this build", cfg.type_name()))),
    };
    Ok(BuiltChannel {
        channel,
        policy: cfg.delivery().cloned().unwrap_or_else(|| default_policy.clone()),
        min_interval: cfg.rate_limit().filter(|r| r.is_finite() && *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r)),
    })
}
