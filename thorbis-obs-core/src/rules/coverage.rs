//! Which configured producer can feed each rule: a rule whose metric nothing produces is
//! healthy and blind at once (rules default to `no_data: ok`), so the agent says so at start,
//! `thorbis-obs rules check --coverage` lists it and `GET /api/v1/rules` shows it.
//!
//! A producer declares the metric names it writes, exactly or as a prefix ending in `*`
//! (`web_vitals_*`). Names are all this checks: a rule whose matchers select series no
//! producer labels that way still counts as fed.

use super::AlertRule;
use serde::Serialize;

/// Something that writes samples: a source, an intake, the checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Producer {
    /// What it is, as people call it (`otlp intake (spans)`, `source postgres`).
    pub name: String,
    /// Metric names it writes; a trailing `*` makes a prefix.
    pub metrics: Vec<String>,
}

impl Producer {
    /// A producer of `metrics`.
    pub fn new(name: impl Into<String>, metrics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Producer { name: name.into(), metrics: metrics.into_iter().map(Into::into).collect() }
    }

    /// True when it writes `metric`.
    pub fn produces(&self, metric: &str) -> bool {
        self.metrics.iter().any(|m| match m.strip_suffix('*') {
            Some(prefix) => metric.starts_with(prefix),
            None => m == metric,
        })
    }
}

/// One rule and what can feed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleCoverage {
    /// The rule's id.
    pub rule: String,
    /// The metric it reads.
    pub metric: String,
    /// The producers that write the metric; empty when none does.
    pub producers: Vec<String>,
}

impl RuleCoverage {
    /// True when some producer writes the rule's metric.
    pub fn fed(&self) -> bool {
        !self.producers.is_empty()
    }

    /// The warning for a rule nothing feeds.
    pub fn warning(&self) -> Option<String> {
        (!self.fed()).then(|| {
            format!(
                "rule {:?} reads {:?}, which nothing configured produces: it stays quiet whatever happens \
                 (only an OTLP exporter's metric or POST /api/v1/samples of that name would feed it)",
                self.rule, self.metric
            )
        })
    }
}

/// What feeds each of `rules`, in their order.
pub fn coverage(rules: &[AlertRule], producers: &[Producer]) -> Vec<RuleCoverage> {
    rules
        .iter()
        .map(|r| RuleCoverage {
            rule: r.id.clone(),
            metric: r.metric.clone(),
            producers: producers.iter().filter(|p| p.produces(&r.metric)).map(|p| p.name.clone()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_prefixes() {
        let rules = super::super::packs::spec_rules();
        let producers = [
            Producer::new("otlp intake (spans)", ["http_request_duration*", "http_request_error_rate"]),
            Producer::new("collector", ["web_vitals_*", "payment_failure_rate"]),
            Producer::new("otlp intake (logs)", ["payment_failure_rate"]),
        ];
        let c = coverage(&rules, &producers);
        let of = |id: &str| c.iter().find(|x| x.rule == id).expect("rule");
        assert_eq!(of("high-response-time").producers, ["otlp intake (spans)"]);
        assert_eq!(of("payment-processing-failure").producers, ["collector", "otlp intake (logs)"]);
        let blind = of("database-connections-high");
        assert!(!blind.fed());
        assert!(blind.warning().is_some_and(|w| w.contains("database_active_connections")), "{blind:?}");
        assert!(of("high-error-rate").warning().is_none());
        assert!(!Producer::new("x", ["web_vitals_*"]).produces("web_vital"));
    }
}
