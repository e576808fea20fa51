//! The PostgreSQL probe (the probe itself needs feature `postgres`; its settings do not, so a
//! config naming it can be checked anywhere): connections, cache hit ratios, health and
//! configured business metrics, each section a part of one collection.
//!
//! Safety: every query runs in a READ ONLY transaction with `statement_timeout` and
//! `lock_timeout`, configured business SQL included, so a typo can neither write nor hold locks
//! on the business database. It works as a least-privilege role: `GRANT pg_monitor TO probe;`
//! (plus SELECT on the tables business queries read). A failed connection makes the collection
//! fail (the agent records `thorbis_source_up 0`); the next collection reconnects, with a
//! backoff between attempts, so the probe recovers without a restart.

#[cfg(feature = "postgres")]
mod probe;
pub mod queries;

#[cfg(feature = "postgres")]
pub use probe::PostgresProbe;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use thorbis_obs_core::metrics::Sample;

/// The probe's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Connection states, long-running and blocked queries.
    Connections,
    /// pg_stat_statements: slowest and most frequent statements.
    Performance,
    /// Cache hit ratios.
    Cache,
    /// Size, replication lag, lock waits, deadlocks.
    Health,
    /// Configured business queries.
    Business,
}

impl Section {
    /// Every section.
    pub const ALL: [Section; 5] =
        [Section::Connections, Section::Performance, Section::Cache, Section::Health, Section::Business];
}

/// A business query: its numeric result columns become metrics.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessQuery {
    /// Name, for errors and the default metric prefix.
    pub name: String,
    /// The SQL (read only; runs with the probe's timeouts).
    pub sql: String,
    /// Column -> metric name; columns not listed become `business_<name>_<column>`.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// Text columns that become labels of the row's metrics.
    #[serde(default)]
    pub label_columns: Vec<String>,
}

/// Probe settings.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Sections to collect.
    pub sections: Vec<Section>,
    /// Queries running longer than this count as long-running.
    pub long_running: Duration,
    /// Per-statement timeout.
    pub statement_timeout: Duration,
    /// Per-statement lock timeout.
    pub lock_timeout: Duration,
    /// Business queries.
    pub business: Vec<BusinessQuery>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            sections: Section::ALL.to_vec(),
            long_running: Duration::from_secs(300),
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(1),
            business: Vec::new(),
        }
    }
}

/// A blocked/blocking pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockWait {
    /// Blocked backend.
    pub blocked_pid: i32,
    /// Its user.
    pub blocked_user: Option<String>,
    /// Its statement (first 200 characters).
    pub blocked_statement: Option<String>,
    /// Blocking backend.
    pub blocking_pid: i32,
    /// Its user.
    pub blocking_user: Option<String>,
    /// Its statement (first 200 characters).
    pub blocking_statement: Option<String>,
}

/// One statement's pg_stat_statements figures (milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatementStats {
    /// pg_stat_statements' queryid.
    pub queryid: String,
    /// Normalised text (constants are `$n`), at most 200 characters.
    pub query: String,
    /// Executions.
    pub calls: f64,
    /// Total time.
    pub total_ms: f64,
    /// Mean time.
    pub mean_ms: f64,
    /// Fastest.
    pub min_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Standard deviation.
    pub stddev_ms: f64,
}

/// One collection's results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProbeReport {
    /// Samples.
    pub samples: Vec<Sample>,
    /// The 10 slowest statements by mean time (performance section).
    pub slowest: Vec<StatementStats>,
    /// The 10 most frequent statements by calls (performance section).
    pub most_frequent: Vec<StatementStats>,
    /// Lock waits (health section).
    pub lock_waits: Vec<LockWait>,
    /// Sections that could not be collected, with the reason.
    pub unavailable: BTreeMap<String, String>,
}
