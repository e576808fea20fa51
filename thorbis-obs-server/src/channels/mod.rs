//! Alert channels built from config. Each type sits behind its own feature, except `console`.

pub mod console;
#[cfg(feature = "webhook")]
pub mod webhook;

use crate::config::{ChannelConfig, LogFormat};
use std::sync::Arc;
use thorbis_obs_core::AlertChannel;
use thorbis_obs_core::delivery::DeliveryPolicy;

/// A channel ready to use, with its retry policy.
pub struct BuiltChannel {
    /// The channel.
    pub channel: Arc<dyn AlertChannel>,
    /// Its retry policy.
    pub policy: DeliveryPolicy,
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

/// Builds the channel `name` from its config; `default_policy` applies when it sets none.
pub fn build(
    name: &str,
    cfg: &ChannelConfig,
    default_policy: &DeliveryPolicy,
    log: LogFormat,
) -> Result<BuiltChannel, ChannelBuildError> {
    let err = |p: &str| ChannelBuildError { name: name.to_string(), problem: p.to_string() };
    match cfg {
        ChannelConfig::Console { delivery } => Ok(BuiltChannel {
            channel: Arc::new(console::ConsoleChannel::new(name, log == LogFormat::Json)),
            policy: delivery.clone().unwrap_or_else(|| default_policy.clone()),
        }),
        #[cfg(feature = "webhook")]
        ChannelConfig::Webhook { url, hmac_secret, timeout, delivery } => Ok(BuiltChannel {
            channel: Arc::new(
                webhook::WebhookChannel::new(name, url.clone(), hmac_secret.clone(), timeout.get())
                    .map_err(|e| err(&e.to_string()))?,
            ),
            policy: delivery.clone().unwrap_or_else(|| default_policy.clone()),
        }),
        #[cfg(not(feature = "webhook"))]
        ChannelConfig::Webhook { .. } => Err(err("the webhook channel needs the `webhook` feature")),
        ChannelConfig::Unsupported => Err(err("unknown or unavailable channel type")),
    }
}
