//! The `AlertChannel` seam: where notifications leave the engine.

use crate::engine::Notification;
use async_trait::async_trait;
use core::time::Duration;

/// Why a delivery failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying: timeouts, connection errors, 408, 429, 5xx.
    #[error("retryable delivery failure: {reason}")]
    Retryable {
        /// What happened (never a secret such as a webhook URL or token).
        reason: String,
        /// The receiver's Retry-After, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: other 4xx, a rejected payload, bad credentials.
    #[error("permanent delivery failure: {reason}")]
    Permanent {
        /// What happened, with the receiver's answer when it gave one.
        reason: String,
    },
}

impl DeliveryError {
    /// A retryable failure without Retry-After.
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError::Retryable { reason: reason.into(), retry_after: None }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent { reason: reason.into() }
    }

    /// True for [`DeliveryError::Retryable`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. })
    }

    /// Classifies an HTTP status: 2xx is not an error (None); 408, 429 and 5xx are retryable;
    /// every other status is permanent. `body` is the receiver's answer, kept short.
    pub fn from_http_status(status: u16, body: &str, retry_after: Option<Duration>) -> Option<Self> {
        let body: String = body.chars().take(512).collect();
        match status {
            200..=299 => None,
            408 | 429 | 500..=599 => {
                Some(DeliveryError::Retryable { reason: format!("HTTP {status}: {body}"), retry_after })
            }
            _ => Some(DeliveryError::Permanent { reason: format!("HTTP {status}: {body}") }),
        }
    }
}

/// What the receiver answered when it accepted a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The receiver's answer (e.g. Slack's `ok`, Twilio's message sid), for logs and the CLI.
    pub answer: Option<String>,
}

/// A place notifications go: Slack, email, SMS, PagerDuty, a webhook, a test buffer.
///
/// Implementations must be idempotent per [`Notification::id`] where the receiver allows it
/// (PagerDuty's dedup key), because delivery is at-least-once.
#[async_trait]
pub trait AlertChannel: Send + Sync {
    /// The channel's configured name, as rules refer to it.
    fn name(&self) -> &str;

    /// Delivers one notification.
    async fn send(&self, notification: &Notification) -> Result<Delivered, DeliveryError>;

    /// Checks at start-up that the channel can work (credentials present, URL well-formed),
    /// so a broken channel says why then, not at 3 a.m. Default: nothing to check.
    async fn health_check(&self) -> Result<(), DeliveryError> {
        Ok(())
    }
}
