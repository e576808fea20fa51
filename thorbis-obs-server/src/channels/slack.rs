//! Slack incoming webhooks: the spec's attachment message (coloured by severity, title with the
//! rule name, fields Severity / Value / Time / Alert ID, footer "Thorbis Monitoring", ts) or a
//! Block Kit variant. Slack answers 200 with the body `ok`; any other answer is an error.
//! Slack allows about one message per second per webhook: the channel's default rate limit.

pub use super::config::SlackStyle;

use crate::http_client;
use crate::secret::Secret;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;
use thorbis_obs_core::engine::{Notification, NotificationKind, format_value};
use thorbis_obs_core::rules::Severity;
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// Posts to a Slack incoming webhook.
pub struct SlackChannel {
    name: String,
    webhook_url: Secret,
    channel: Option<String>,
    username: Option<String>,
    style: SlackStyle,
    client: reqwest::Client,
}

impl std::fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackChannel").field("name", &self.name).field("webhook_url", &self.webhook_url).finish()
    }
}

/// The spec's colours: info #36a64f, warning #ff9500, error #ff0000, critical #8b0000.
pub fn color(s: Severity) -> &'static str {
    match s {
        Severity::Info => "#36a64f",
        Severity::Warning => "#ff9500",
        Severity::Error => "#ff0000",
        Severity::Critical => "#8b0000",
    }
}

fn emoji(n: &Notification) -> &'static str {
    if n.kind == NotificationKind::Resolved {
        return "\u{2705}";
    }
    if n.kind == NotificationKind::Acknowledged {
        return "\u{1f440}";
    }
    match n.severity {
        Severity::Info => "\u{2139}\u{fe0f}",
        Severity::Warning => "\u{26a0}\u{fe0f}",
        Severity::Error => "\u{1f525}",
        Severity::Critical => "\u{1f6a8}",
    }
}

/// The title line: emoji, RESOLVED/ESCALATED marker and the rule's name.
pub fn title(n: &Notification) -> String {
    let marker = match n.kind {
        NotificationKind::Resolved => "RESOLVED: ",
        NotificationKind::Escalated => "ESCALATED: ",
        NotificationKind::Acknowledged => "ACKNOWLEDGED: ",
        _ => "",
    };
    let by = match (n.kind, n.annotations.get("acknowledged_by")) {
        (NotificationKind::Acknowledged, Some(who)) => format!(" (by {who})"),
        _ => String::new(),
    };
    format!("{} {marker}{}{by}", emoji(n), n.rule_name)
}

impl SlackChannel {
    /// A Slack channel posting to `webhook_url`.
    pub fn new(
        name: &str,
        webhook_url: Secret,
        channel: Option<String>,
        username: Option<String>,
        style: SlackStyle,
        timeout: Duration,
    ) -> Result<Self, DeliveryError> {
        Ok(SlackChannel {
            name: name.into(),
            webhook_url,
            channel,
            username,
            style,
            client: http_client::client(timeout)?,
        })
    }

    /// The JSON body for `n`.
    pub fn payload(&self, n: &Notification) -> Value {
        let value = n.value.map(format_value).unwrap_or_else(|| "no data".into());
        let time = n.created_at.to_rfc3339();
        let severity = n.severity.as_str().to_uppercase();
        let color = if n.kind == NotificationKind::Resolved { color(Severity::Info) } else { color(n.severity) };
        let mut body = match self.style {
            SlackStyle::Attachments => json!({
                "text": n.headline(),
                "attachments": [{
                    "color": color,
                    "title": title(n),
                    "text": n.description,
                    "fields": [
                        { "title": "Severity", "value": severity, "short": true },
                        { "title": "Value", "value": value, "short": true },
                        { "title": "Time", "value": time, "short": true },
                        { "title": "Alert ID", "value": n.id, "short": true },
                    ],
                    "footer": "Thorbis Monitoring",
                    "ts": n.created_at.as_millis() / 1000,
                }],
            }),
            SlackStyle::Blocks => json!({
                "text": n.headline(),
                "blocks": [
                    { "type": "header", "text": { "type": "plain_text", "text": title(n) } },
                    { "type": "section", "text": { "type": "mrkdwn", "text": n.description } },
                    { "type": "section", "fields": [
                        { "type": "mrkdwn", "text": format!("*Severity*\n{severity}") },
                        { "type": "mrkdwn", "text": format!("*Value*\n{value}") },
                        { "type": "mrkdwn", "text": format!("*Time*\n{time}") },
                        { "type": "mrkdwn", "text": format!("*Alert ID*\n{}", n.id) },
                    ]},
                    { "type": "context", "elements": [{ "type": "mrkdwn", "text": "Thorbis Monitoring" }] },
                ],
            }),
        };
        if let Some(c) = &self.channel {
            body["channel"] = json!(c);
        }
        if let Some(u) = &self.username {
            body["username"] = json!(u);
        }
        body
    }
}

#[async_trait]
impl AlertChannel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let req = self.client.post(self.webhook_url.expose()).json(&self.payload(n));
        let (status, body) = http_client::send(req).await?;
        if body.trim() != "ok" {
            // Slack's success is exactly `ok`; anything else is a rejection it explains.
            return Err(DeliveryError::permanent(format!(
                "HTTP {status}: Slack answered {:?} instead of ok",
                body.chars().take(200).collect::<String>()
            )));
        }
        Ok(Delivered { answer: Some("ok".into()) })
    }
}
