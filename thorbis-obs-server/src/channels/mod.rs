//! Alert channels: each type's settings (`config`, always compiled), its implementation behind
//! its own cargo feature (`webhook`, `slack`, `email`, `sms`, `pagerduty`; `console` always),
//! and [`build`], which makes a channel of a config.

pub mod config;
pub mod console;
#[cfg(feature = "email")]
pub mod email;
#[cfg(feature = "pagerduty")]
pub mod pagerduty;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(feature = "sms")]
pub mod sms;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use config::{ChannelConfig, problems};

use crate::telemetry::LogFormat;
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

/// Cuts `s` to at most `max` characters, ending with an ellipsis when cut (the length limits of
/// PagerDuty's summary and of an SMS).
#[cfg(any(feature = "pagerduty", feature = "sms"))]
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
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
        ChannelConfig::Console(_) => Arc::new(console::ConsoleChannel::new(name, log == LogFormat::Json)),
        #[cfg(feature = "webhook")]
        ChannelConfig::Webhook(c) => Arc::new(
            webhook::WebhookChannel::new(name, c.url.clone(), c.hmac_secret.clone(), c.timeout.get())
                .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "slack")]
        ChannelConfig::Slack(c) => Arc::new(
            slack::SlackChannel::new(
                name,
                c.webhook_url.clone(),
                c.channel.clone(),
                c.username.clone(),
                c.style,
                c.timeout.get(),
            )
            .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "email")]
        ChannelConfig::Email(c) => {
            Arc::new(email::EmailChannel::new(name, &email::EmailSettings::from_config(c)).map_err(err)?)
        }
        #[cfg(feature = "sms")]
        ChannelConfig::Sms(c) => Arc::new(
            sms::SmsChannel::new(
                name,
                c.account_sid.expose(),
                c.auth_token.clone(),
                &c.from,
                c.to.clone(),
                &c.base_url,
                c.timeout.get(),
            )
            .map_err(|e| err(e.to_string()))?,
        ),
        #[cfg(feature = "pagerduty")]
        ChannelConfig::Pagerduty(c) => Arc::new(
            pagerduty::PagerDutyChannel::new(name, c.routing_key.clone(), &c.base_url, &c.source, c.timeout.get())
                .map_err(|e| err(e.to_string()))?,
        ),
        #[allow(unreachable_patterns, reason = "which arms exist depends on the enabled channel features")]
        _ => return Err(err(format!("channel type {} is not available in this build", cfg.type_name()))),
    };
    Ok(BuiltChannel {
        channel,
        policy: cfg.delivery().cloned().unwrap_or_else(|| default_policy.clone()),
        min_interval: cfg.min_interval(),
    })
}
