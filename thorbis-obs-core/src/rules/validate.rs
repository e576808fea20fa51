use super::model::AlertRule;
use crate::metrics::is_valid_name;
use std::collections::{BTreeSet, HashSet};

/// One problem in a rule set, located by a field path such as `rules[2].escalation[1].after`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleError {
    /// Index of the rule in its list.
    pub index: usize,
    /// The rule's id, when it has one.
    pub rule_id: Option<String>,
    /// Field path, e.g. `rules[0].condition.threshold`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What validation checks beyond the rules themselves.
#[derive(Clone, Debug, Default)]
pub struct ValidateOptions {
    /// When set, every channel a rule names must be one of these.
    pub known_channels: Option<BTreeSet<String>>,
}

/// Checks a rule set and returns every problem found (not just the first).
pub fn validate_rules(rules: &[AlertRule], opts: &ValidateOptions) -> Result<(), Vec<RuleError>> {
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        let mut err = |field: &str, message: String| {
            errors.push(RuleError {
                index: i,
                rule_id: (!r.id.is_empty()).then(|| r.id.clone()),
                path: format!("rules[{i}]{}{field}", if field.is_empty() { "" } else { "." }),
                message,
            })
        };
        if r.id.trim().is_empty() {
            err("id", "must not be empty".into());
        } else if !r.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            err("id", format!("{:?} may only hold letters, digits, '-', '_' and '.'", r.id));
        } else if !ids.insert(r.id.as_str()) {
            err("id", format!("{:?} is used by an earlier rule; ids must be unique", r.id));
        }
        if r.name.trim().is_empty() {
            err("name", "must not be empty".into());
        }
        if r.metric.trim().is_empty() {
            err("metric", "must not be empty".into());
        } else if !is_valid_name(&r.metric, true) {
            err("metric", format!("{:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", r.metric));
        }
        if !r.condition.threshold.is_finite() {
            err("condition.threshold", "must be a finite number".into());
        }
        if r.condition.duration.get().is_zero() {
            err("condition.duration", "the aggregation window must be longer than 0s, e.g. \"5m\"".into());
        }
        let mut prev_after = None;
        let mut prev_sev = r.severity;
        for (j, step) in r.escalation.iter().enumerate() {
            if step.after.get().is_zero() {
                err(&format!("escalation[{j}].after"), "must be longer than 0s".into());
            }
            if let Some(p) = prev_after {
                if step.after <= p {
                    err(
                        &format!("escalation[{j}].after"),
                        format!("{} is not after the previous step's {p}: steps must increase in time", step.after),
                    );
                }
            }
            if step.severity <= prev_sev {
                err(
                    &format!("escalation[{j}].severity"),
                    format!(
                        "{} does not raise the previous severity {prev_sev}: steps must increase in severity",
                        step.severity
                    ),
                );
            }
            prev_after = Some(step.after);
            prev_sev = prev_sev.max(step.severity);
        }
        for (j, s) in r.suppression_rules.iter().enumerate() {
            if s.condition.trim().is_empty() {
                err(&format!("suppression_rules[{j}].condition"), "must name a condition".into());
            }
            if s.duration.get().is_zero() {
                err(&format!("suppression_rules[{j}].duration"), "must be longer than 0s".into());
            }
        }
        for k in r.labels.keys() {
            if !is_valid_name(k, false) {
                err(&format!("labels.{k}"), "label names must match [a-zA-Z_][a-zA-Z0-9_]*".into());
            } else if k == "alertname" || k == "severity" {
                err(&format!("labels.{k}"), format!("{k} is set by the engine and cannot be overridden"));
            }
        }
        if let Some(known) = &opts.known_channels {
            let lists = std::iter::once(("channels".to_string(), &r.channels)).chain(
                r.escalation.iter().enumerate().map(|(j, s)| (format!("escalation[{j}].channels"), &s.channels)),
            );
            for (field, list) in lists {
                for (k, ch) in list.iter().enumerate() {
                    if !known.contains(ch) {
                        let names: Vec<&str> = known.iter().map(String::as_str).collect();
                        err(
                            &format!("{field}[{k}]"),
                            format!("unknown channel {ch:?}; configured channels: {}", names.join(", ")),
                        );
                    }
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::packs::spec_rules;

    #[test]
    fn spec_pack_is_valid() {
        let known = ["slack", "email", "sms", "pagerduty"].iter().map(|s| s.to_string()).collect();
        validate_rules(&spec_rules(), &ValidateOptions { known_channels: Some(known) }).expect("valid");
    }

    #[test]
    fn problems_are_located() {
        let mut rules = spec_rules();
        rules[0].escalation[1].after = rules[0].escalation[0].after;
        rules[0].escalation[1].severity = crate::rules::Severity::Warning;
        rules[1].metric = String::new();
        rules[2].id = rules[0].id.clone();
        rules[3].channels.push("teams".into());
        let known = ["slack", "email", "sms", "pagerduty"].iter().map(|s| s.to_string()).collect();
        let errs = validate_rules(&rules, &ValidateOptions { known_channels: Some(known) }).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter().any(|t| t.starts_with("rules[0].escalation[1].after") && t.contains("increase in time")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("rules[0].escalation[1].severity")), "{text:?}");
        assert!(text.iter().any(|t| t == "rules[1].metric: must not be empty"), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("rules[2].id") && t.contains("unique")), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("rules[3].channels[3]") && t.contains("\"teams\"")), "{text:?}");
    }
}
