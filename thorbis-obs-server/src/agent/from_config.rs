//! The agent a config describes: every component built from its own section, in one place.

use super::{Agent, AgentError};
use crate::checks::Monitors;
use crate::config::{AgentConfig, LoadedConfig};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thorbis_obs_core::engine::MaintenanceWindow;

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

/// The uptime checks and synthetic workflows of `[uptime]` and `[synthetic]`, with their
/// maintenance windows (engine windows matching their `endpoint` / `workflow` label).
pub fn monitors_from_config(c: &AgentConfig) -> Result<(Monitors, Vec<MaintenanceWindow>), String> {
    let mut monitors = c.uptime.monitors();
    let mut windows = crate::uptime::build(&c.uptime, &mut monitors)?;
    windows.extend(crate::synthetic::build(
        &c.synthetic,
        &c.uptime.defaults(),
        Path::new(&*c.agent.data_dir),
        &mut monitors,
    )?);
    Ok((monitors, windows))
}

/// Builds the agent a config describes.
pub async fn agent_from_config(cfg: &LoadedConfig) -> Result<Agent, AgentError> {
    builder_from_config(cfg).await?.build()
}

/// The builder of the agent a config describes, for a host app that adds its own parts (its
/// `host::RequestMetrics` as a source, say) before `build()`.
pub async fn builder_from_config(cfg: &LoadedConfig) -> Result<super::AgentBuilder, AgentError> {
    builder_with_store(cfg, None).await
}

/// [`builder_from_config`] on `store` when given (a reload keeps the running agent's).
pub(super) async fn builder_with_store(
    cfg: &LoadedConfig,
    store: Option<Arc<dyn Store>>,
) -> Result<super::AgentBuilder, AgentError> {
    let c = &cfg.config;
    let store = match store {
        Some(s) => s,
        None => store_from_config(cfg).await?,
    };
    let (monitors, check_windows) = monitors_from_config(c).map_err(AgentError::Setup)?;
    let mut windows = c.maintenance_windows.clone();
    windows.extend(check_windows);
    let mut b = Agent::builder()
        .rules(cfg.rules.clone())
        .store(store)
        .evaluation_interval(c.agent.evaluation_interval.get())
        .shutdown_timeout(c.agent.shutdown_timeout.get())
        .delivery_policy(c.agent.delivery.clone())
        .maintenance_windows(windows)
        .monitors(monitors)
        .collector(c.collector.clone())
        .otlp(c.otlp.clone())
        .traces(c.traces.clone())
        .producers(c.producers())
        .business_metrics(crate::sources::business_metrics(&c.sources))
        .dashboards(match c.dashboards.is_empty() {
            // The built-in boards, with the business database: the configured one, else the
            // first PostgreSQL source's.
            true => {
                let probed = c.sources.iter().find_map(|s| match s {
                    crate::sources::SourceConfig::Postgres { url, .. } => Some(url),
                    _ => None,
                });
                crate::dashboards::defaults(c.agent.business_database.as_ref().or(probed), probed.is_some())
            }
            false => c.dashboards.clone(),
        })
        .sourcemaps(c.sourcemaps.clone())
        .audit_retention(c.agent.audit_retention.get());
    if let Some(lease) = &c.store.leader_lease {
        b = b.leader_lease(lease.get());
    }
    for (name, ch) in &c.channels {
        let built = crate::channels::build(name, ch, &c.agent.delivery, c.agent.log_format)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        b = b.channel_with_limits(built.channel, built.policy, built.min_interval);
    }
    for (alias, target) in &c.channel_aliases {
        b = b.alias(alias, target);
    }
    for s in &c.sources {
        b = b.source(s.build().map_err(AgentError::Setup)?);
    }
    if !c.http.listen.is_empty() {
        let addr = c
            .http
            .listen
            .parse()
            .map_err(|_| AgentError::Setup(format!("http.listen: {:?} is not an address", c.http.listen)))?;
        b = b
            .http(addr, c.http.api_token.clone())
            .http_limits(super::HttpLimits {
                header_read_timeout: c.http.header_read_timeout.get(),
                max_connections: c.http.max_connections,
                hosts: c.http.hosts.clone(),
            })
            .max_sample_skew(c.http.max_sample_skew.get())
            .read_auth(c.http.auth.clone());
        if let Some(p) = &c.http.public {
            let addr = p
                .listen
                .parse()
                .map_err(|_| AgentError::Setup(format!("http.public.listen: {:?} is not an address", p.listen)))?;
            b = b.public_http(addr, p.hosts.clone());
        }
    }
    Ok(b)
}
