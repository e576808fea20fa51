use super::matcher::Matchers;
use crate::time::HumanDuration;
use crate::window::Aggregation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rule file: a top-level `rules` list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(default)]
    pub rules: Vec<AlertRule>,
}

/// How bad an alert is, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention soon.
    Warning,
    /// Something is broken.
    Error,
    /// Page someone now.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl core::fmt::Display for Severity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparison between the aggregated value and the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// `value > threshold`
    #[serde(alias = ">", alias = "gt")]
    GreaterThan,
    /// `value >= threshold`
    #[serde(alias = ">=", alias = "gte")]
    GreaterThanOrEqual,
    /// `value < threshold`
    #[serde(alias = "<", alias = "lt")]
    LessThan,
    /// `value <= threshold`
    #[serde(alias = "<=", alias = "lte")]
    LessThanOrEqual,
    /// `value == threshold`
    #[serde(alias = "==", alias = "eq")]
    Equal,
    /// `value != threshold`
    #[serde(alias = "!=", alias = "ne")]
    NotEqual,
}

impl Operator {
    /// Applies the comparison.
    #[inline]
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::GreaterThan => value > threshold,
            Operator::GreaterThanOrEqual => value >= threshold,
            Operator::LessThan => value < threshold,
            Operator::LessThanOrEqual => value <= threshold,
            Operator::Equal => value == threshold,
            Operator::NotEqual => value != threshold,
        }
    }

    /// The PromQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::GreaterThan => ">",
            Operator::GreaterThanOrEqual => ">=",
            Operator::LessThan => "<",
            Operator::LessThanOrEqual => "<=",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
        }
    }
}

/// The spec's condition: aggregate the metric over `duration`, compare with `threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The comparison.
    pub operator: Operator,
    /// The threshold.
    pub threshold: f64,
    /// The aggregation window (as in Datadog monitors), e.g. `5m`.
    pub duration: HumanDuration,
    /// How the window becomes one value (default `avg`).
    #[serde(default)]
    pub aggregation: Aggregation,
}

/// One rung of the escalation ladder: after the alert has been firing this long, notify with a
/// higher severity on these channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Time in firing before this step applies.
    pub after: HumanDuration,
    /// The new severity (must be higher than the previous rung's).
    pub severity: Severity,
    /// Channels for this and later notifications.
    pub channels: Vec<String>,
}

/// Mutes the rule while a named condition (switched on through the API) is active, for at
/// most `duration` after it was switched on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionRule {
    /// The condition's name, e.g. `deployment_in_progress`.
    pub condition: String,
    /// The longest the condition mutes this rule per activation.
    pub duration: HumanDuration,
}

/// What to do when a series has no sample in the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Treat as the condition being false: a firing alert resolves (Prometheus' behaviour).
    #[default]
    #[serde(alias = "normal")]
    Ok,
    /// Treat as the condition being true: a missing series alerts.
    Alerting,
    /// Keep whatever state the alert was in.
    #[serde(alias = "keepLast", alias = "keep_last_state")]
    KeepLast,
}

/// An alert rule in the spec's shape plus Prometheus' `for` and `keep_firing_for`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable identifier, e.g. `high-response-time`.
    pub id: String,
    /// Human name; the alert's `alertname` label is this name with spaces removed.
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
    /// The metric the condition reads.
    pub metric: String,
    /// Which series of the metric the rule applies to (default: all).
    #[serde(default, alias = "labelMatchers", alias = "label_matchers")]
    pub matchers: Matchers,
    /// The condition.
    pub condition: Condition,
    /// How long the condition must hold before firing (pending time). Default 0.
    #[serde(default, rename = "for")]
    pub pending_for: HumanDuration,
    /// How long to keep firing after the condition clears (anti-flap). Default 0.
    #[serde(default, alias = "keepFiringFor")]
    pub keep_firing_for: HumanDuration,
    /// Severity at first firing.
    pub severity: Severity,
    /// Channels notified at first firing.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The escalation ladder.
    #[serde(default)]
    pub escalation: Vec<EscalationStep>,
    /// Named conditions that mute the rule.
    #[serde(default, alias = "suppressionRules")]
    pub suppression_rules: Vec<SuppressionRule>,
    /// Labels added to the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations; `{{ $value }}`, `{{ $labels.NAME }}` and `{{ $values.METRIC }}` (the
    /// latest value of `METRIC` with the alert's labels) are expanded.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// What a series without samples in the window means.
    #[serde(default, alias = "noData")]
    pub no_data: NoDataPolicy,
    /// Re-send a still-firing alert after this long (default: the engine's, 4h).
    #[serde(default, alias = "repeatInterval", skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<HumanDuration>,
    /// Whether its receivers hear when it resolves (Alertmanager's `send_resolved`, per rule
    /// here); an event-like alert such as a new error group says `false`.
    #[serde(default = "yes", alias = "sendResolved", skip_serializing_if = "is_true")]
    pub send_resolved: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl AlertRule {
    /// The `alertname` label: the name with whitespace removed.
    pub fn alertname(&self) -> String {
        self.name.chars().filter(|c| !c.is_whitespace()).collect()
    }

    /// Severity and channels at escalation `level` (0 = the base severity).
    pub fn level(&self, level: usize) -> (Severity, &[String]) {
        match level.checked_sub(1).and_then(|i| self.escalation.get(i)) {
            Some(step) => (step.severity, &step.channels),
            None => (self.severity, &self.channels),
        }
    }
}
