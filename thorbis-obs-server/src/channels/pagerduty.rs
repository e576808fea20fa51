//! PagerDuty Events API v2: `trigger` on firing, escalation and repeat, `resolve` on resolved,
//! with `dedup_key` = the alert's fingerprint so the incident resolves. PagerDuty answers 202;
//! 400 is not retried, 429 and 5xx are.

use crate::http_client;
use crate::secret::Secret;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;
use thorbis_obs_core::engine::{Notification, NotificationKind};
use thorbis_obs_core::rules::Severity;
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// Longest summary PagerDuty accepts.
pub const MAX_SUMMARY: usize = 1024;

/// Sends PagerDuty events.
pub struct PagerDutyChannel {
    name: String,
    routing_key: Secret,
    base_url: String,
    source: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for PagerDutyChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyChannel").field("name", &self.name).field("base_url", &self.base_url).finish()
    }
}

impl PagerDutyChannel {
    /// A channel sending to `{base_url}/v2/enqueue`.
    pub fn new(
        name: &str,
        routing_key: Secret,
        base_url: &str,
        source: &str,
        timeout: Duration,
    ) -> Result<Self, DeliveryError> {
        Ok(PagerDutyChannel {
            name: name.into(),
            routing_key,
            base_url: base_url.trim_end_matches('/').to_string(),
            source: source.into(),
            client: http_client::client(timeout)?,
        })
    }

    /// The event for `n`.
    pub fn event(&self, n: &Notification) -> Value {
        let dedup_key = super::truncate(&n.fingerprint, 255);
        if n.kind == NotificationKind::Resolved {
            return json!({ "routing_key": self.routing_key.expose(), "event_action": "resolve", "dedup_key": dedup_key });
        }
        // Events API v2: an acknowledge carries only the dedup key of the incident.
        if n.kind == NotificationKind::Acknowledged {
            return json!({ "routing_key": self.routing_key.expose(), "event_action": "acknowledge", "dedup_key": dedup_key });
        }
        let severity = match n.severity {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": super::truncate(&n.headline(), MAX_SUMMARY),
                "source": self.source,
                "severity": severity,
                "timestamp": n.created_at.to_rfc3339(),
                "component": n.labels.get("service").unwrap_or(&n.rule_id),
                "class": n.rule_id,
                "custom_details": {
                    "value": n.value,
                    "threshold": n.threshold,
                    "labels": n.labels,
                    "annotations": n.annotations,
                    "notification_id": n.id,
                    "escalation_level": n.level,
                },
            },
        })
    }
}

#[async_trait]
impl AlertChannel for PagerDutyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let req = self.client.post(format!("{}/v2/enqueue", self.base_url)).json(&self.event(n));
        let (status, body) = http_client::send(req).await?;
        Ok(http_client::answer(status, &body))
    }
}
