//! Metric sources built into the agent, one folder or file each, every one a [`MetricSource`]:
//! the agent's own vital signs (`self`), the PostgreSQL probe (feature `postgres`), a
//! Prometheus/OpenMetrics scrape (`prometheus`, feature `scrape`) and the agent's host (`host`,
//! feature `host-metrics`). Their settings (`[[sources]]`) are always compiled, so a config
//! naming a source this build lacks is refused with the feature's name.

#[cfg(feature = "host-metrics")]
pub mod host;
pub mod postgres;
pub mod scrape;
pub mod selfcheck;

use serde::Deserialize;
use std::sync::Arc;
use thorbis_obs_core::MetricSource;
use thorbis_obs_core::time::HumanDuration;

/// One metric source: `type`, `interval` and its settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// The agent's own health: uptime, resident memory, outbox backlog.
    #[serde(rename = "self")]
    SelfCheck {
        /// How often.
        #[serde(default = "default_self_interval")]
        interval: HumanDuration,
    },
    /// The PostgreSQL probe (feature `postgres`).
    Postgres {
        /// Source name (default `postgres`).
        #[serde(default = "default_pg_name")]
        name: String,
        /// Database URL (a secret: it may hold a password).
        url: crate::secret::Secret,
        /// How often (the spec: connections 1m, performance 5m, health 30s; one probe per
        /// interval you want).
        #[serde(default = "default_pg_interval")]
        interval: HumanDuration,
        /// Sections to collect (default: all).
        #[serde(default)]
        only: Option<Vec<postgres::Section>>,
        /// Queries running longer than this are long-running.
        #[serde(default = "default_long_running")]
        long_running: HumanDuration,
        /// Per-statement timeout.
        #[serde(default = "default_statement_timeout")]
        statement_timeout: HumanDuration,
        /// Per-statement lock timeout.
        #[serde(default = "default_lock_timeout")]
        lock_timeout: HumanDuration,
        /// Business queries.
        #[serde(default)]
        business: Vec<postgres::BusinessQuery>,
    },
    /// A Prometheus or OpenMetrics text endpoint (feature `scrape`).
    Prometheus(scrape::ScrapeConfig),
    /// CPU, memory, swap, load, filesystems, disk and network I/O of the agent's host
    /// (feature `host-metrics`).
    Host {
        /// How often (default 30 s).
        #[serde(default = "default_self_interval")]
        interval: HumanDuration,
    },
}

fn default_pg_name() -> String {
    "postgres".into()
}

fn default_pg_interval() -> HumanDuration {
    HumanDuration::from_secs(60)
}

fn default_long_running() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_statement_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_lock_timeout() -> HumanDuration {
    HumanDuration::from_secs(1)
}

fn default_self_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// Every problem in `[[sources]]`, as (path, message).
pub fn problems(sources: &[SourceConfig]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = |path: String, message: String| out.push((path, message));
    for (i, s) in sources.iter().enumerate() {
        match s {
            SourceConfig::SelfCheck { interval } if interval.get().is_zero() => {
                p(format!("sources[{i}].interval"), "must be longer than 0s".into())
            }
            SourceConfig::SelfCheck { .. } => {}
            SourceConfig::Prometheus(c) => {
                if !cfg!(feature = "scrape") {
                    p(
                        format!("sources[{i}]"),
                        "the prometheus source needs the `scrape` feature of thorbis-obs-server".into(),
                    );
                }
                for (field, message) in c.problems() {
                    p(format!("sources[{i}].{field}"), message);
                }
            }
            SourceConfig::Host { interval } => {
                if !cfg!(feature = "host-metrics") {
                    p(
                        format!("sources[{i}]"),
                        "the host source needs the `host-metrics` feature of thorbis-obs-server".into(),
                    );
                }
                if interval.get().is_zero() {
                    p(format!("sources[{i}].interval"), "must be longer than 0s".into());
                }
            }
            SourceConfig::Postgres { url, interval, business, .. } => {
                if !cfg!(feature = "postgres") {
                    p(
                        format!("sources[{i}]"),
                        "the postgres probe needs the `postgres` feature of thorbis-obs-server".into(),
                    );
                }
                if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                    p(format!("sources[{i}].url"), "must be a postgres:// URL".into());
                }
                if interval.get().is_zero() {
                    p(format!("sources[{i}].interval"), "must be longer than 0s".into());
                }
                for (j, q) in business.iter().enumerate() {
                    if q.sql.trim().is_empty() {
                        p(format!("sources[{i}].business[{j}].sql"), "must not be empty".into());
                    } else if let Some(pos) = crate::sql::second_statement(&q.sql) {
                        p(
                            format!("sources[{i}].business[{j}].sql"),
                            format!("one statement only: a second one starts at byte {pos}"),
                        );
                    }
                    if !thorbis_obs_core::metrics::is_valid_name(&q.name, false) {
                        p(format!("sources[{i}].business[{j}].name"), "use [a-zA-Z_][a-zA-Z0-9_]*".into());
                    }
                }
            }
        }
    }
    out
}

/// What the configured sources write into the engine (see
/// [`thorbis_obs_core::rules::coverage`]), and the scheduler's health series of each.
pub fn producers(sources: &[SourceConfig]) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    use thorbis_obs_core::rules::coverage::Producer;
    let mut out = Vec::new();
    for s in sources {
        match s {
            SourceConfig::SelfCheck { .. } => out.push(Producer::new("source self", ["thorbis_agent_*"])),
            // Whatever the exporter serves: any name may come from it.
            SourceConfig::Prometheus(c) => out.push(Producer::new(format!("source {} (prometheus)", c.name), ["*"])),
            SourceConfig::Host { .. } => out.push(Producer::new("source host", ["host_*"])),
            SourceConfig::Postgres { name, .. } => {
                let mut names = vec!["pg_*".to_string(), "database_active_connections".to_string()];
                names.extend(
                    business_metrics(std::slice::from_ref(s))
                        .into_iter()
                        .map(|n| if n.ends_with('_') { format!("{n}*") } else { n }),
                );
                out.push(Producer::new(format!("source {name} (postgres)"), names));
            }
        }
    }
    if !sources.is_empty() {
        out.push(Producer::new(
            "scheduler (every source)",
            ["thorbis_source_up", "thorbis_source_duration_seconds", "thorbis_source_samples_rejected"],
        ));
    }
    out
}

/// Metric names (or prefixes ending in `_`) the PostgreSQL business queries of `sources`
/// produce: what the summary reports as business impact.
pub fn business_metrics(sources: &[SourceConfig]) -> Vec<String> {
    let mut names = Vec::new();
    for s in sources {
        if let SourceConfig::Postgres { business, .. } = s {
            for q in business {
                names.extend(q.metrics.values().cloned());
                names.push(format!("business_{}_", q.name));
            }
        }
    }
    names
}

impl SourceConfig {
    /// Builds the source this config describes.
    pub fn build(&self) -> Result<Arc<dyn MetricSource>, String> {
        match self {
            SourceConfig::SelfCheck { interval } => Ok(Arc::new(selfcheck::SelfCheckSource::new(interval.get()))),
            #[cfg(feature = "scrape")]
            SourceConfig::Prometheus(c) => Ok(Arc::new(c.build()?)),
            #[cfg(not(feature = "scrape"))]
            SourceConfig::Prometheus(_) => {
                Err("the prometheus source needs the `scrape` feature of thorbis-obs-server".into())
            }
            #[cfg(feature = "host-metrics")]
            SourceConfig::Host { interval } => Ok(Arc::new(host::HostSource::new(interval.get()))),
            #[cfg(not(feature = "host-metrics"))]
            SourceConfig::Host { .. } => {
                Err("the host source needs the `host-metrics` feature of thorbis-obs-server".into())
            }
            #[cfg(feature = "postgres")]
            SourceConfig::Postgres {
                name,
                url,
                interval,
                only,
                long_running,
                statement_timeout,
                lock_timeout,
                business,
            } => {
                let settings = postgres::ProbeSettings {
                    sections: only.clone().unwrap_or_else(|| postgres::Section::ALL.to_vec()),
                    long_running: long_running.get(),
                    statement_timeout: statement_timeout.get(),
                    lock_timeout: lock_timeout.get(),
                    business: business.clone(),
                };
                Ok(Arc::new(postgres::PostgresProbe::new(name, url.expose(), interval.get(), settings)))
            }
            #[cfg(not(feature = "postgres"))]
            SourceConfig::Postgres { .. } => {
                Err("the postgres probe needs the `postgres` feature of thorbis-obs-server".into())
            }
        }
    }
}
