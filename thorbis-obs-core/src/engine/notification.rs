use crate::metrics::Labels;
use crate::rules::{Operator, Severity};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a notification was emitted. Notifications are only emitted on these transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The alert started firing (or first became announceable after a suppression ended).
    Firing,
    /// The alert climbed a rung of its escalation ladder.
    Escalated,
    /// Still firing after the repeat interval.
    Repeat,
    /// The alert stopped firing; sent to every channel that heard about it.
    Resolved,
    /// Someone acknowledged the alert (annotation `acknowledged_by`); sent to every channel that
    /// heard about it; escalation and repeats stop until it resolves.
    Acknowledged,
}

impl NotificationKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Escalated => "escalated",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Acknowledged => "acknowledged",
        }
    }

    /// Alertmanager's status word: `resolved` or `firing`.
    pub fn status(self) -> &'static str {
        if self == NotificationKind::Resolved { "resolved" } else { "firing" }
    }
}

/// One message for the channels: what happened to which alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and deterministic: `{fingerprint}-{starts_at ms}-{sequence}`. Receivers and the
    /// outbox dedup on it.
    pub id: String,
    /// The transition.
    pub kind: NotificationKind,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's name.
    pub rule_name: String,
    /// The `alertname` label.
    pub alertname: String,
    /// The rule's description.
    pub description: String,
    /// Severity now (after escalation).
    pub severity: Severity,
    /// Escalation level: 0 for the base severity, k for the k-th escalation step.
    pub level: usize,
    /// The aggregated value that decided the state (None when there was no data).
    pub value: Option<f64>,
    /// The rule's operator.
    pub operator: Operator,
    /// The rule's threshold.
    pub threshold: f64,
    /// Series labels + rule labels + `alertname` + `severity`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Stable id of the alert instance (rule id + series labels): PagerDuty's dedup key.
    pub fingerprint: String,
    /// When the alert started firing.
    pub starts_at: Timestamp,
    /// When it resolved (resolved notifications only).
    pub ends_at: Option<Timestamp>,
    /// When the engine emitted this notification.
    pub created_at: Timestamp,
    /// Channels to deliver to.
    pub channels: Vec<String>,
}

impl Notification {
    /// A short one-line text: `[CRITICAL] High Error Rate firing: value 0.12 (> 0.05)`.
    pub fn headline(&self) -> String {
        let value = self.value.map(format_value).unwrap_or_else(|| "no data".into());
        format!(
            "[{}] {} {}: value {} ({} {})",
            self.severity.as_str().to_uppercase(),
            self.rule_name,
            self.kind.as_str(),
            value,
            self.operator.symbol(),
            format_value(self.threshold)
        )
    }
}

pub use crate::rules::humanize::format_value;
