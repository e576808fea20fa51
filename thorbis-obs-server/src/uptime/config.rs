//! `[uptime]`: this agent's location, extra vantage points, thresholds, quorum, and the HTTP
//! checks with their expectations and maintenance windows.

use crate::checks::{CheckDefaults, CheckMaintenance};
use crate::secret::Secret;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use thorbis_obs_core::domain::availability::Thresholds;
use thorbis_obs_core::time::HumanDuration;

/// `[uptime]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UptimeSection {
    /// This agent's location label (default `local`). Agents sharing a PostgreSQL store see
    /// each other's locations.
    pub location: String,
    /// Extra vantage points of this agent, e.g. a second network interface or a proxy.
    pub locations: BTreeMap<String, LocationConfig>,
    /// Locations that must say down before an endpoint is down (default 1).
    pub quorum: usize,
    /// Consecutive failures before down (default 3).
    pub failure_threshold: u32,
    /// Consecutive successes before up again (default 2).
    pub success_threshold: u32,
    /// SLA target in percent for reports (default 99.9).
    pub sla_target: f64,
    /// How long check results are kept (default 35d, so 30-day reports are whole).
    pub retention: HumanDuration,
    /// Checks running at once, at most (default 256).
    pub max_concurrency: usize,
    /// A location's verdict counts for the quorum while its newest result is younger than
    /// this many of the check's intervals (default 3).
    pub stale_after_intervals: u32,
    /// The HTTP checks.
    pub checks: Vec<HttpCheckConfig>,
}

impl Default for UptimeSection {
    fn default() -> Self {
        let t = Thresholds::default();
        UptimeSection {
            location: "local".into(),
            locations: BTreeMap::new(),
            quorum: 1,
            failure_threshold: t.failure,
            success_threshold: t.success,
            sla_target: 99.9,
            retention: HumanDuration::from_secs(35 * 86_400),
            max_concurrency: 256,
            stale_after_intervals: 3,
            checks: Vec::new(),
        }
    }
}

/// An extra vantage point of this agent.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// Source address for the checks' connections.
    pub local_address: Option<IpAddr>,
    /// HTTP(S) proxy the checks go through (a secret: it may hold credentials).
    pub proxy: Option<Secret>,
}

/// One HTTP check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// Stable id: the `endpoint` label and the report key.
    pub id: String,
    /// The URL (a secret: query strings carry tokens).
    pub url: Secret,
    /// HTTP method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers (values are secrets).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Request body.
    #[serde(default)]
    pub body: Option<Secret>,
    /// Whole-check timeout (default 30 s, the spec's).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// How often (default 60 s, the spec's).
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Overrides `[uptime].failure_threshold`.
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// Overrides `[uptime].success_threshold`.
    #[serde(default)]
    pub success_threshold: Option<u32>,
    /// Overrides `[uptime].quorum`.
    #[serde(default)]
    pub quorum: Option<usize>,
    /// Overrides `[uptime].sla_target`.
    #[serde(default)]
    pub sla_target: Option<f64>,
    /// Follow redirects (default true, at most 10).
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Accept any certificate (expiry is still read and checked).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Extra root certificate (PEM) to trust.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// What a healthy answer looks like.
    #[serde(default)]
    pub expect: Expect,
    /// Windows during which this check's failures alert nobody.
    #[serde(default)]
    pub maintenance: Vec<CheckMaintenance>,
}

impl UptimeSection {
    /// What checks fall back on: this location, the thresholds and the SLA target.
    pub fn defaults(&self) -> CheckDefaults {
        CheckDefaults {
            location: self.location.clone(),
            thresholds: Thresholds { failure: self.failure_threshold, success: self.success_threshold },
            sla_target: self.sla_target,
        }
    }
}

impl HttpCheckConfig {
    /// The thresholds for this check.
    pub fn thresholds(&self, s: &UptimeSection) -> Thresholds {
        Thresholds {
            failure: self.failure_threshold.unwrap_or(s.failure_threshold),
            success: self.success_threshold.unwrap_or(s.success_threshold),
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn yes() -> bool {
    true
}

/// Accepted status codes: `200`, `"2xx"`, or `"200-299"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted.
    pub low: u16,
    /// Highest accepted.
    pub high: u16,
}

impl StatusRange {
    /// Parses `200`, `2xx` or `200-299`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a status code, a class such as \"2xx\" or a range such as \"200-299\"");
        let t = text.trim();
        let code = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c)).ok_or_else(bad);
        if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
            let c = class.parse::<u16>().ok().filter(|c| (1..=5).contains(c)).ok_or_else(bad)?;
            return Ok(StatusRange { low: c * 100, high: c * 100 + 99 });
        }
        if let Some((a, b)) = t.split_once('-') {
            let (low, high) = (code(a)?, code(b)?);
            return if low <= high { Ok(StatusRange { low, high }) } else { Err(bad()) };
        }
        let c = code(t)?;
        Ok(StatusRange { low: c, high: c })
    }

    /// True when `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.low..=self.high).contains(&code)
    }
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high { write!(f, "{}", self.low) } else { write!(f, "{}-{}", self.low, self.high) }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Code(c) => StatusRange::parse(&c.to_string()),
            Raw::Text(t) => StatusRange::parse(&t),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// What a healthy answer looks like. Every rule set must pass; the first that fails is
/// recorded. Without `status`, 200-399 pass (the spec fails 400 and above).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Accepted status codes.
    pub status: Vec<StatusRange>,
    /// The answer (headers and body) must arrive within this.
    pub max_response_time: Option<HumanDuration>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// The body must not contain this text.
    pub body_not_contains: Option<String>,
    /// The body must match this regular expression.
    pub body_regex: Option<String>,
    /// JSON paths (`status`, `data.items[0].id`, optionally with a leading `$.`) and the value
    /// each must equal (compared as JSON: `"ok"`, `200`, `true`).
    pub json: BTreeMap<String, serde_json::Value>,
    /// Response headers that must be present and match a regular expression.
    pub headers: BTreeMap<String, String>,
    /// The TLS certificate must be valid for longer than this (HTTPS only).
    pub cert_expires_in_more_than: Option<HumanDuration>,
    /// At most this many body bytes are read and checked (default 1 MiB).
    pub max_body_bytes: Option<usize>,
}

/// Every problem in `[uptime]`, as (path, message).
pub fn problems(u: &UptimeSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = |path: String, message: String| out.push((path, message));
    let label_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !label_ok(&u.location) {
        p("uptime.location".into(), "use letters, digits, '-' and '_'".into());
    }
    for (name, l) in &u.locations {
        if !label_ok(name) || *name == u.location {
            p(
                format!("uptime.locations.{name}"),
                "a location name of letters, digits, '-' and '_', not this agent's own".into(),
            );
        }
        if l.local_address.is_none() && l.proxy.is_none() {
            p(
                format!("uptime.locations.{name}"),
                "set local_address or proxy (or it is the same vantage point)".into(),
            );
        }
        if let Some(px) = &l.proxy {
            let v = px.expose();
            if !(v.starts_with("http://") || v.starts_with("https://") || v.starts_with("socks5://")) {
                p(format!("uptime.locations.{name}.proxy"), "must be an http://, https:// or socks5:// URL".into());
            }
        }
    }
    if !(u.sla_target > 0.0 && u.sla_target <= 100.0) {
        p("uptime.sla_target".into(), "must be a percentage above 0 and at most 100".into());
    }
    if u.max_concurrency == 0 {
        p("uptime.max_concurrency".into(), "must be at least 1".into());
    }
    if !u.checks.is_empty() && !cfg!(feature = "http") {
        p("uptime.checks".into(), "HTTP checks need the `http` feature of thorbis-obs-server".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, c) in u.checks.iter().enumerate() {
        let path = format!("uptime.checks[{i}]");
        if !label_ok(&c.id) {
            p(format!("{path}.id"), "use letters, digits, '-' and '_'".into());
        } else if !ids.insert(c.id.as_str()) {
            p(format!("{path}.id"), format!("{:?} is used by another check", c.id));
        }
        if !crate::secret::is_http_url(c.url.expose()) {
            p(format!("{path}.url"), "must be an http:// or https:// URL".into());
        }
        if c.method.is_empty() || !c.method.chars().all(|ch| ch.is_ascii_alphabetic()) {
            p(format!("{path}.method"), format!("{:?} is not an HTTP method", c.method));
        }
        if c.interval.get() < std::time::Duration::from_secs(1) {
            p(format!("{path}.interval"), "must be at least 1s".into());
        }
        if c.timeout.get().is_zero() {
            p(format!("{path}.timeout"), "must be longer than 0s".into());
        }
        if c.failure_threshold == Some(0) || c.success_threshold == Some(0) {
            p(path.clone(), "thresholds must be at least 1".into());
        }
        if c.sla_target.is_some_and(|t| !(t > 0.0 && t <= 100.0)) {
            p(format!("{path}.sla_target"), "must be a percentage above 0 and at most 100".into());
        }
        if let Some(f) = &c.ca_file {
            if let Err(e) = std::fs::metadata(f) {
                p(format!("{path}.ca_file"), format!("cannot read {}: {e}", f.display()));
            }
        }
        if let Err(e) = super::expect::CompiledExpect::new(&c.expect) {
            p(path.clone(), e);
        }
        for (j, m) in c.maintenance.iter().enumerate() {
            if let Err(e) = m.window(&c.id, "endpoint").validate() {
                p(format!("{path}.maintenance[{j}]"), e.problem);
            }
        }
    }
    if u.failure_threshold == 0 || u.success_threshold == 0 {
        p("uptime".into(), "thresholds must be at least 1".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(StatusRange::parse("2xx").unwrap(), StatusRange { low: 200, high: 299 });
        assert_eq!(StatusRange::parse("200-204").unwrap(), StatusRange { low: 200, high: 204 });
        assert_eq!(StatusRange::parse("301").unwrap().to_string(), "301");
        for bad in ["6xx", "299-200", "abc", "42", "2x"] {
            assert!(StatusRange::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}
