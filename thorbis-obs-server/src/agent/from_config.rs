use super::{Agent, AgentError};
use crate::channels;
use crate::config::{LoadedConfig, SourceConfig};
use crate::sources::selfcheck::SelfCheckSource;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

/// Builds the store named by the config: `sqlite:PATH`, the default `<data_dir>/thorbis.db`,
/// or PostgreSQL.
pub async fn store_from_config(cfg: &LoadedConfig) -> Result<Arc<dyn Store>, AgentError> {
    let c = &cfg.config;
    match c.store.url.as_ref().map(|u| u.expose().to_string()) {
        None => Ok(Arc::new(SqliteStore::open(&PathBuf::from(&*c.agent.data_dir).join("thorbis.db"))?)),
        Some(u) if u.starts_with("sqlite:") => {
            Ok(Arc::new(SqliteStore::open(&PathBuf::from(u.trim_start_matches("sqlite:").trim_start_matches("//")))?))
        }
        #[cfg(feature = "postgres")]
        Some(u) => Ok(Arc::new(crate::store::postgres::PostgresStore::connect(&u).await?)),
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(AgentError::Setup("store.url: the PostgreSQL store needs the `postgres` feature".into())),
    }
}

/// Builds the agent a config describes.
pub async fn agent_from_config(cfg: &LoadedConfig) -> Result<Agent, AgentError> {
    let c = &cfg.config;
    let mut b = Agent::builder()
        .rules(cfg.rules.clone())
        .store(store_from_config(cfg).await?)
        .evaluation_interval(c.agent.evaluation_interval.get())
        .shutdown_timeout(c.agent.shutdown_timeout.get())
        .delivery_policy(c.agent.delivery.clone());
    let (monitors, check_windows) = crate::uptime::monitors_from_config(c).map_err(AgentError::Setup)?;
    let mut windows = c.maintenance_windows.clone();
    windows.extend(check_windows);
    b = b
        .maintenance_windows(windows)
        .monitors(monitors)
        .collector(c.collector.clone())
        .dashboards(c.dashboards.clone());
    for (name, ch) in &c.channels {
        let built = channels::build(name, ch, &c.agent.delivery, c.agent.log_format)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        b = b.channel_with_limits(built.channel, built.policy, built.min_interval);
    }
    for (alias, target) in &c.channel_aliases {
        b = b.alias(alias, target);
    }
    let mut business = Vec::new();
    for s in &c.sources {
        if let SourceConfig::Postgres { business: queries, .. } = s {
            for q in queries {
                business.extend(q.metrics.values().cloned());
                business.push(format!("business_{}_", q.name));
            }
        }
    }
    b = b.business_metrics(business);
    for s in &c.sources {
        match s {
            SourceConfig::SelfCheck { interval } => b = b.source(Arc::new(SelfCheckSource::new(interval.get()))),
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
                use crate::probes::postgres::{PostgresProbe, ProbeSettings, Section};
                let settings = ProbeSettings {
                    sections: only.clone().unwrap_or_else(|| Section::ALL.to_vec()),
                    long_running: long_running.get(),
                    statement_timeout: statement_timeout.get(),
                    lock_timeout: lock_timeout.get(),
                    business: business.clone(),
                };
                b = b.source(Arc::new(PostgresProbe::new(name, url.expose(), interval.get(), settings)));
            }
            #[cfg(not(feature = "postgres"))]
            SourceConfig::Postgres { .. } => {
                return Err(AgentError::Setup(
                    "the postgres probe needs the `postgres` feature of thorbis-obs-server".into(),
                ));
            }
        }
    }
    if !c.http.listen.is_empty() {
        let addr = c
            .http
            .listen
            .parse()
            .map_err(|_| AgentError::Setup(format!("http.listen: {:?} is not an address", c.http.listen)))?;
        b = b.http(addr, c.http.api_token.clone());
    }
    b.build()
}
