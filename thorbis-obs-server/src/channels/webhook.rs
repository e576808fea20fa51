//! The generic webhook channel: Alertmanager's v4 webhook payload, so anything that accepts
//! Alertmanager webhooks works. With a shared secret, the body is signed with HMAC-SHA256 in
//! `X-Thorbis-Signature: sha256=<hex>`. Every request carries `X-Thorbis-Notification-Id`,
//! the id receivers dedup on (delivery is at-least-once).

use crate::http_client;
use crate::secret::Secret;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;
use thorbis_obs_core::engine::Notification;
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// POSTs notifications as Alertmanager v4 webhook payloads.
pub struct WebhookChannel {
    name: String,
    url: Secret,
    hmac_secret: Option<Secret>,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel").field("name", &self.name).field("url", &self.url).finish()
    }
}

impl WebhookChannel {
    /// A webhook channel; `timeout` bounds each request.
    pub fn new(name: &str, url: Secret, hmac_secret: Option<Secret>, timeout: Duration) -> Result<Self, DeliveryError> {
        Ok(WebhookChannel { name: name.to_string(), url, hmac_secret, client: http_client::client(timeout)? })
    }
}

/// The Alertmanager v4 webhook body for one notification (one alert per message).
pub fn alertmanager_payload(receiver: &str, n: &Notification) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> =
        n.labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let ends = n.ends_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", n.alertname),
        "truncatedAlerts": 0,
        "status": n.kind.status(),
        "receiver": receiver,
        "groupLabels": { "alertname": n.alertname },
        "commonLabels": labels,
        "commonAnnotations": n.annotations,
        "externalURL": "",
        "alerts": [{
            "status": n.kind.status(),
            "labels": labels,
            "annotations": n.annotations,
            "startsAt": n.starts_at.to_rfc3339(),
            "endsAt": ends,
            "generatorURL": "",
            "fingerprint": n.fingerprint,
        }],
        "thorbis": {
            "notificationId": n.id,
            "kind": n.kind,
            "ruleId": n.rule_id,
            "value": n.value,
            "level": n.level,
            "createdAtMs": n.created_at.as_millis(),
        },
    })
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

#[async_trait]
impl AlertChannel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let body = serde_json::to_vec(&alertmanager_payload(&self.name, n))
            .map_err(|e| DeliveryError::permanent(format!("cannot encode payload: {e}")))?;
        let mut req = self
            .client
            .post(self.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Thorbis-Notification-Id", &n.id);
        if let Some(s) = &self.hmac_secret {
            req = req.header("X-Thorbis-Signature", sign(s.expose().as_bytes(), &body));
        }
        let (status, text) = http_client::send(req.body(body)).await?;
        Ok(http_client::answer(status, &text))
    }
}
