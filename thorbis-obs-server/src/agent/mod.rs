//! The agent runtime: a library first, the `thorbis-obs run` binary second.
//!
//! ```no_run
//! # async fn host() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use thorbis_obs_server::agent::Agent;
//! use thorbis_obs_server::channels::console::ConsoleChannel;
//! use thorbis_obs_server::store::sqlite::SqliteStore;
//!
//! let agent = Agent::builder()
//!     .rules(thorbis_obs_core::rules::packs::spec_rules())
//!     .channel(Arc::new(ConsoleChannel::new("console", false)))
//!     .alias("slack", "console").alias("email", "console").alias("sms", "console").alias("pagerduty", "console")
//!     .store(Arc::new(SqliteStore::open("data/thorbis.db".as_ref())?))
//!     .build()?;
//! let handle = agent.handle(); // push samples, read alerts, switch suppressions on
//! agent.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! What runs: every source on its interval ([`scheduler`]), the rule engine every evaluation
//! interval (its notifications and state committed to the store in one transaction before
//! anything is sent), one delivery worker per channel ([`outbox`]), the check pipeline
//! ([`crate::checks`]), every component's background work, and the HTTP endpoints: the
//! agent's own ([`http`]) merged with each component's. Shutdown stops the sources, persists
//! the state, and lets in-flight deliveries finish within the shutdown timeout; whatever is left
//! stays in the outbox.
//!
//! This is the composition root: the one place that names every component and builds them from
//! config ([`agent_from_config`]). Components never name the agent; they get the [`Hub`].

mod builder;
mod evaluate;
mod from_config;
pub mod http;
pub mod outbox;
mod reload;
pub mod scheduler;
mod serve;
mod silences;
mod unstored;

pub use crate::clock::{Clock, TokioClock, system_now};
pub use builder::AgentBuilder;
pub use from_config::{agent_from_config, builder_from_config, monitors_from_config, store_from_config};
pub use reload::{ReloadOutcome, Reloader, run_reloadable};
pub use serve::HttpLimits;

use crate::checks::Monitors;
use crate::hub::{Component, Hub};
use crate::secret::Secret;
use crate::store::{OutboxStats, StoreError};
use outbox::{ChannelCounters, Worker};
use scheduler::SourceHealth;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::MetricSource;
use thorbis_obs_core::engine::AlertView;
use thorbis_obs_core::metrics::{Sample, SampleError};
use tokio::sync::{Notify, watch};

/// Why the agent could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A rule problem (every one of them).
    #[error("invalid rules:\n{0}")]
    Rules(String),
    /// Missing or inconsistent parts.
    #[error("{0}")]
    Setup(String),
    /// The store failed at start-up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP listener could not start.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What the agent's own tasks and handles share: the hub, plus the agent's bookkeeping.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    pub(crate) sources: Mutex<BTreeMap<String, SourceHealth>>,
    pub(crate) counters: BTreeMap<String, Arc<ChannelCounters>>,
    pub(crate) wakers: BTreeMap<String, Arc<Notify>>,
    pub(crate) aliases: BTreeMap<String, String>,
    pub(crate) leader: AtomicBool,
    pub(crate) running: AtomicBool,
    /// The last commit of an evaluation (or the leader lock) reached the store.
    pub(crate) store_ok: AtomicBool,
    /// Notifications the store could not take, for the workers to deliver from memory.
    pub(crate) unstored: unstored::Unstored,
    pub(crate) api_token: Option<Secret>,
    /// How far ahead of now a pushed sample may be.
    pub(crate) max_sample_skew: Duration,
    /// How long audit records are kept.
    pub(crate) audit_retention: Duration,
    /// The reload loop this agent runs in, when it was started from a config file.
    pub(crate) reloader: Option<Arc<reload::Reloader>>,
    /// What feeds each rule, when producers were declared.
    pub(crate) coverage: Option<Vec<thorbis_obs_core::rules::coverage::RuleCoverage>>,
}

/// A cheap, cloneable handle to a running (or about to run) agent.
#[derive(Clone)]
pub struct AgentHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").field("store", &self.shared.hub.store().describe()).finish()
    }
}

impl AgentHandle {
    /// Pushes one sample into the engine (validated; on error nothing is stored).
    pub fn push(&self, sample: &Sample) -> Result<(), SampleError> {
        self.shared.hub.ingest(sample)
    }

    /// The alert instances now.
    pub fn alerts(&self) -> Vec<AlertView> {
        self.shared.hub.alerts()
    }

    /// Switches a named suppression condition on, e.g. `deployment_in_progress`.
    pub fn activate_condition(&self, name: &str, for_: Option<Duration>) {
        let now = self.shared.hub.now();
        self.shared.hub.engine().activate_condition(name, now, for_);
    }

    /// Switches a named suppression condition off.
    pub fn deactivate_condition(&self, name: &str) -> bool {
        self.shared.hub.engine().deactivate_condition(name)
    }

    /// The hub the agent's components share (engine, store, clock).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    /// Health of each source.
    pub fn sources(&self) -> BTreeMap<String, SourceHealth> {
        self.shared.sources.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// True while this agent is the leader (always, with a single-agent store).
    pub fn is_leader(&self) -> bool {
        self.shared.leader.load(Ordering::Relaxed)
    }

    /// Outbox row counts.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.shared.hub.store().outbox_stats().await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// The agent; see the module docs.
pub struct Agent {
    shared: Arc<Shared>,
    sources: Vec<Arc<dyn MetricSource>>,
    workers: Vec<Worker>,
    evaluation_interval: Duration,
    leader_lease: Duration,
    shutdown_timeout: Duration,
    http: Option<SocketAddr>,
    http_limits: HttpLimits,
    public: Option<(SocketAddr, Vec<String>)>,
    gate: Option<Arc<crate::api::auth::ReadGate>>,
    monitors: Monitors,
    components: Vec<Arc<dyn Component>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("sources", &self.sources.len()).field("channels", &self.workers.len()).finish()
    }
}

impl Agent {
    /// Starts building an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::new()
    }

    /// A handle for pushing samples and reading state.
    pub fn handle(&self) -> AgentHandle {
        AgentHandle { shared: self.shared.clone() }
    }

    /// Runs until `shutdown` completes, then shuts down gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let shared = self.shared.clone();
        shared.hub.store().ping().await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let listener = match self.http {
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| AgentError::Listen { addr, source })?)
            }
            None => None,
        };
        let public = match &self.public {
            Some((addr, hosts)) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AgentError::Listen { addr: *addr, source })?;
                Some((l, hosts.clone()))
            }
            None => None,
        };
        // Components with an address of their own (bound now, so a taken port fails the start).
        let mut own = Vec::new();
        for c in &self.components {
            if let Some(addr) = c.listen() {
                let l =
                    tokio::net::TcpListener::bind(addr).await.map_err(|source| AgentError::Listen { addr, source })?;
                tracing::info!(component = c.name(), %addr, "serving on its own listener too");
                own.push((l, c.clone()));
            }
        }
        for w in &self.workers {
            if let Err(e) = w.channel.health_check().await {
                tracing::warn!(channel = w.channel.name(), error = %e, "channel health check failed");
            }
        }
        {
            let engine = shared.hub.engine();
            let rules: Vec<&str> = engine.rules().map(|r| r.id.as_str()).collect();
            let sources: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
            let channels: Vec<&str> = self.workers.iter().map(|w| w.channel.name()).collect();
            tracing::info!(
                store = %shared.hub.store().describe(),
                http = %listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
                evaluation_interval = ?self.evaluation_interval,
                "thorbis-obs agent starting: {} sources [{}], {} rules [{}], {} channels [{}], {} uptime checks and workflows",
                sources.len(), sources.join(", "), rules.len(), rules.join(", "), channels.len(), channels.join(", "),
                self.monitors.targets.len()
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        for s in self.sources {
            tasks.spawn(scheduler::run_source(shared.clone(), s, stop_rx.clone()));
        }
        let mut workers = tokio::task::JoinSet::new();
        for w in self.workers {
            workers.spawn(w.run(shared.clone(), stop_rx.clone()));
        }
        if !self.monitors.is_empty() {
            self.monitors.spawn(shared.hub.clone(), &mut tasks, &stop_rx);
        }
        for c in &self.components {
            // Before the listener serves, so a reloaded state is there for the first request.
            c.prepare().await;
            tasks.spawn(c.clone().run(stop_rx.clone()));
        }
        let eval = tokio::spawn(evaluate::evaluate_loop(
            shared.clone(),
            self.evaluation_interval,
            self.leader_lease,
            stop_rx.clone(),
        ));
        // Public routes (ingest) never behind the read gate; the admin ones behind it when set.
        let public_routes =
            || self.components.iter().fold(http::public_router(), |r, c| r.merge(c.clone().public_routes()));
        if let Some(l) = listener {
            let admin = self
                .components
                .iter()
                .fold(http::router(AgentHandle { shared: shared.clone() }), |r, c| r.merge(c.clone().routes()));
            let admin = match &self.gate {
                Some(g) => admin
                    .layer(axum::middleware::from_fn_with_state(g.clone(), crate::api::auth::require))
                    .merge(crate::api::auth::routes(g.clone())),
                None => admin,
            };
            serve::raise_open_files_limit();
            let router =
                admin.merge(public_routes()).merge(http::readiness_router(AgentHandle { shared: shared.clone() }));
            tasks.spawn(serve::serve(l, router, self.http_limits.clone(), stop_rx.clone(), self.shutdown_timeout));
        }
        if let Some((l, hosts)) = public {
            let limits = HttpLimits { hosts, ..self.http_limits.clone() };
            serve::raise_open_files_limit();
            tasks.spawn(serve::serve(l, public_routes(), limits, stop_rx.clone(), self.shutdown_timeout));
        }
        if !own.is_empty() {
            serve::raise_open_files_limit();
        }
        for (l, c) in own {
            let limits = HttpLimits { hosts: vec!["*".into()], ..self.http_limits.clone() };
            tasks.spawn(serve::serve(l, c.public_routes(), limits, stop_rx.clone(), self.shutdown_timeout));
        }
        shared.running.store(true, Ordering::Relaxed);
        shutdown.await;
        tracing::info!("shutting down: persisting state, finishing in-flight deliveries");
        shared.running.store(false, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        if tokio::time::timeout_at(deadline, eval).await.is_err() {
            tracing::warn!("the evaluation loop did not stop in time");
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while workers.join_next().await.is_some() {}
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown timeout: abandoning in-flight work (it stays in the outbox)");
            workers.abort_all();
            tasks.abort_all();
        }
        tracing::info!("stopped");
        Ok(())
    }
}
