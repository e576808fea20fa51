//! Check results as the store keeps them: one row per HTTP check or synthetic workflow run,
//! per location.

use serde::{Deserialize, Serialize};
use thorbis_obs_core::time::Timestamp;

/// What produced a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP uptime check.
    Http,
    /// A synthetic browser workflow.
    Synthetic,
}

impl CheckKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Synthetic => "synthetic",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(CheckKind::Http),
            "synthetic" => Some(CheckKind::Synthetic),
            _ => None,
        }
    }
}

/// One stored check result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// HTTP check or workflow.
    pub kind: CheckKind,
    /// Endpoint id or workflow name.
    pub target: String,
    /// Where it ran from.
    pub location: String,
    /// When it finished.
    pub at: Timestamp,
    /// Whether every rule passed.
    pub success: bool,
    /// How long it took, ms.
    pub duration_ms: f64,
    /// HTTP status, when an answer arrived.
    pub status_code: Option<u16>,
    /// The rule that failed (`status`, `body_regex`, `connect`, a workflow step...).
    pub failed_rule: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When the TLS certificate expires (HTTPS).
    pub cert_expires_at: Option<Timestamp>,
    /// This location's verdict after the thresholds, as of this result.
    pub down: bool,
    /// Extra detail (a workflow's steps and screenshot).
    pub detail: Option<serde_json::Value>,
}

/// The newest result of each (target, location) among `records`.
pub fn latest_per_location(records: &[CheckRecord]) -> Vec<CheckRecord> {
    let mut latest: std::collections::BTreeMap<(&str, &str), &CheckRecord> = std::collections::BTreeMap::new();
    for r in records {
        let e = latest.entry((r.target.as_str(), r.location.as_str())).or_insert(r);
        if r.at >= e.at {
            *e = r;
        }
    }
    latest.into_values().cloned().collect()
}
