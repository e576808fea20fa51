//! `type = "prometheus"`: scrapes a Prometheus or OpenMetrics text endpoint (node_exporter, a
//! service's own `/metrics`) on an interval, as a Prometheus scrape job would, so the rule
//! engine can alert on anything an exporter already measures.
//!
//! What Prometheus users will recognise:
//! - every series gets `job` (the source's name) and `instance` (the target's `host:port`); a
//!   scraped label of the same name is kept as `exported_job` / `exported_instance`
//!   (`honor_labels: false`);
//! - `up` (1 after a good scrape, 0 after a failed or timed-out one), `scrape_duration_seconds`,
//!   `scrape_samples_scraped` and `scrape_samples_post_metric_relabeling`, with the same two
//!   labels;
//! - `scrape_timeout` (default 10 s, at most the interval), `sample_limit` (a scrape with more
//!   samples after relabelling fails whole: `up` 0, nothing stored), `body_size_limit`;
//! - the exposition's own timestamps are not used (`honor_timestamps: false`): every sample of a
//!   scrape is stamped with the scrape's time, which the store checks against its clock anyway.
//!
//! Relabelling is the common subset of `metric_relabel_configs`: `keep` and `drop` regexes on the
//! metric name (anchored, as Prometheus anchors them) and fixed extra `labels`. NaN and infinite
//! values (a summary with no observations) are skipped and counted, since the rule engine only
//! stores finite numbers.

#[cfg(feature = "scrape")]
mod source;
#[cfg(feature = "scrape")]
pub mod text;

#[cfg(feature = "scrape")]
pub use source::{ScrapeSource, Scraped};

use serde::Deserialize;
use std::collections::BTreeMap;
use thorbis_obs_core::metrics::MAX_LABELS;
use thorbis_obs_core::time::HumanDuration;

/// The settings of one `type = "prometheus"` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Source name and the `job` label (default `prometheus`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The endpoint, e.g. `http://127.0.0.1:9100/metrics`.
    pub url: String,
    /// How often (default 30 s).
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// The longest one scrape may take (default 10 s, at most the interval).
    #[serde(default = "default_timeout")]
    pub scrape_timeout: HumanDuration,
    /// Keep only metrics whose name matches (anchored).
    #[serde(default)]
    pub keep: Option<String>,
    /// Drop metrics whose name matches (anchored), after `keep`.
    #[serde(default)]
    pub drop: Option<String>,
    /// Labels added to every series (they win over scraped ones).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Most samples one scrape may keep after relabelling (default 50,000).
    #[serde(default = "default_sample_limit")]
    pub sample_limit: usize,
    /// Largest body read, in bytes (default 10 MiB).
    #[serde(default = "default_body_limit")]
    pub body_size_limit: usize,
}

fn default_name() -> String {
    "prometheus".into()
}

fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_sample_limit() -> usize {
    50_000
}

fn default_body_limit() -> usize {
    10 << 20
}

/// `pattern` anchored at both ends, as Prometheus anchors relabelling regexes.
pub(crate) fn anchored(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

impl ScrapeConfig {
    /// Every problem in this source's settings, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let host = self.url.strip_prefix("http://").or_else(|| self.url.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with(['/', ':', '?', '#'])) {
            out.push(("url", "must be an http:// or https:// URL with a host".to_string()));
        }
        if self.interval.get().is_zero() {
            out.push(("interval", "must be longer than 0s".into()));
        }
        if self.scrape_timeout.get().is_zero() {
            out.push(("scrape_timeout", "must be longer than 0s".into()));
        }
        for (field, p) in [("keep", &self.keep), ("drop", &self.drop)] {
            if let Some(Err(e)) = p.as_deref().map(anchored) {
                out.push((field, format!("not a valid regex: {e}")));
            }
        }
        for (k, v) in &self.labels {
            if !thorbis_obs_core::metrics::is_valid_name(k, false) {
                out.push(("labels", format!("{k:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")));
            } else if v.len() > thorbis_obs_core::metrics::MAX_LABEL_VALUE_LEN {
                out.push(("labels", format!("the value of {k} is too long")));
            }
        }
        if self.labels.len() > MAX_LABELS / 2 {
            out.push(("labels", format!("at most {} extra labels", MAX_LABELS / 2)));
        }
        if self.name.is_empty() || !self.name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
            out.push(("name", "use letters, digits, `_` and `-`".into()));
        }
        if self.sample_limit == 0 {
            out.push(("sample_limit", "must be at least 1".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named() {
        let cfg: ScrapeConfig = toml::from_str(
            "url = \"ftp://x\"\ninterval = \"0s\"\nkeep = \"(\"\nlabels = { \"bad-name\" = \"v\" }\nsample_limit = 0",
        )
        .expect("parses");
        let fields: Vec<_> = cfg.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["url", "interval", "keep", "labels", "sample_limit"]);
    }
}
