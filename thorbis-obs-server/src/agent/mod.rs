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
//! anything is sent), one delivery worker per channel ([`outbox`]), and the HTTP endpoints
//! ([`crate::http`]). Shutdown stops the sources, persists the state, and lets in-flight
//! deliveries finish within the shutdown timeout; whatever is left stays in the outbox.

pub mod clock;
mod from_config;
pub mod outbox;
pub mod scheduler;

pub use clock::{Clock, TokioClock, system_now};
pub use from_config::{agent_from_config, store_from_config};

use crate::config::Secret;
use crate::store::{OutboxEntry, OutboxStats, Store, StoreError};
use outbox::{ChannelCounters, Worker};
use scheduler::SourceHealth;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::engine::{AlertView, EngineOptions, MaintenanceWindow, RuleEngine};
use thorbis_obs_core::metrics::{Sample, SampleError};
use thorbis_obs_core::rules::{AlertRule, ValidateOptions};
use thorbis_obs_core::{AlertChannel, MetricSource};
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

/// State shared by the agent's tasks and handles.
pub(crate) struct Shared {
    pub(crate) engine: Mutex<RuleEngine>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sources: Mutex<BTreeMap<String, SourceHealth>>,
    pub(crate) counters: BTreeMap<String, Arc<ChannelCounters>>,
    pub(crate) wakers: BTreeMap<String, Arc<Notify>>,
    pub(crate) aliases: BTreeMap<String, String>,
    pub(crate) leader: AtomicBool,
    pub(crate) running: AtomicBool,
    pub(crate) api_token: Option<Secret>,
    pub(crate) board: crate::uptime::recorder::Board,
    #[cfg(feature = "collector")]
    pub(crate) collector: Option<Arc<crate::collector::Collector>>,
    pub(crate) dashboards: Vec<crate::dashboards::DashboardConfig>,
    /// Metric names (or, ending in `_`, prefixes) of the PostgreSQL business queries, for the
    /// summary's business impact.
    #[cfg_attr(not(feature = "collector"), allow(dead_code))]
    pub(crate) business_metrics: Vec<String>,
}

impl Shared {
    pub(crate) fn engine(&self) -> MutexGuard<'_, RuleEngine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn ingest(&self, s: &Sample) -> Result<(), SampleError> {
        self.engine().ingest(s)
    }
}

/// A cheap, cloneable handle to a running (or about to run) agent.
#[derive(Clone)]
pub struct AgentHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").field("store", &self.shared.store.describe()).finish()
    }
}

impl AgentHandle {
    /// Pushes one sample into the engine (validated; on error nothing is stored).
    pub fn push(&self, sample: &Sample) -> Result<(), SampleError> {
        self.shared.ingest(sample)
    }

    /// The alert instances now.
    pub fn alerts(&self) -> Vec<AlertView> {
        let now = self.shared.clock.now();
        self.shared.engine().alerts(now)
    }

    /// Switches a named suppression condition on, e.g. `deployment_in_progress`.
    pub fn activate_condition(&self, name: &str, for_: Option<Duration>) {
        let now = self.shared.clock.now();
        self.shared.engine().activate_condition(name, now, for_);
    }

    /// Switches a named suppression condition off.
    pub fn deactivate_condition(&self, name: &str) -> bool {
        self.shared.engine().deactivate_condition(name)
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
        self.shared.store.outbox_stats().await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// A channel with its optional policy and minimum interval between sends.
type ChannelSpec = (Arc<dyn AlertChannel>, Option<DeliveryPolicy>, Option<Duration>);

/// Builds an [`Agent`].
pub struct AgentBuilder {
    rules: Vec<AlertRule>,
    sources: Vec<Arc<dyn MetricSource>>,
    channels: Vec<ChannelSpec>,
    aliases: BTreeMap<String, String>,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    evaluation_interval: Duration,
    shutdown_timeout: Duration,
    delivery: DeliveryPolicy,
    http: Option<(SocketAddr, Option<Secret>)>,
    maintenance: Vec<MaintenanceWindow>,
    monitors: crate::uptime::Monitors,
    collector: Option<crate::collector::CollectorSection>,
    dashboards: Vec<crate::dashboards::DashboardConfig>,
    business_metrics: Vec<String>,
}

impl AgentBuilder {
    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = AlertRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Adds a metric source.
    pub fn source(mut self, source: Arc<dyn MetricSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds a channel with the default delivery policy.
    pub fn channel(mut self, channel: Arc<dyn AlertChannel>) -> Self {
        self.channels.push((channel, None, None));
        self
    }

    /// Adds a channel with its own delivery policy.
    pub fn channel_with_policy(mut self, channel: Arc<dyn AlertChannel>, policy: DeliveryPolicy) -> Self {
        self.channels.push((channel, Some(policy), None));
        self
    }

    /// Adds a channel with its own delivery policy and a minimum interval between sends (a
    /// rate limit: the outbox holds what waits, nothing is dropped).
    pub fn channel_with_limits(
        mut self,
        channel: Arc<dyn AlertChannel>,
        policy: DeliveryPolicy,
        min_interval: Option<Duration>,
    ) -> Self {
        self.channels.push((channel, Some(policy), min_interval));
        self
    }

    /// Lets rules name `alias` for the configured channel `target`.
    pub fn alias(mut self, alias: &str, target: &str) -> Self {
        self.aliases.insert(alias.to_string(), target.to_string());
        self
    }

    /// The durable store (required).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: [`TokioClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How often rules are evaluated (default 15 s).
    pub fn evaluation_interval(mut self, d: Duration) -> Self {
        self.evaluation_interval = d;
        self
    }

    /// How long shutdown waits for in-flight work (default 10 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// The delivery policy for channels without their own.
    pub fn delivery_policy(mut self, p: DeliveryPolicy) -> Self {
        self.delivery = p;
        self
    }

    /// Serves the HTTP endpoints on `addr`; `api_token` guards the write endpoints.
    pub fn http(mut self, addr: SocketAddr, api_token: Option<Secret>) -> Self {
        self.http = Some((addr, api_token));
        self
    }

    /// Maintenance windows.
    pub fn maintenance_windows(mut self, w: Vec<MaintenanceWindow>) -> Self {
        self.maintenance = w;
        self
    }

    /// Uptime checks and synthetic workflows to run (see [`crate::uptime`]).
    /// Serves `POST /v1/rum` on the HTTP listener (feature `collector`; without it the section is
    /// ignored).
    pub fn collector(mut self, c: crate::collector::CollectorSection) -> Self {
        self.collector = c.enabled.then_some(c);
        self
    }

    /// Metric names (or prefixes ending in `_`) the summary reports as business impact: what the
    /// PostgreSQL business queries produce.
    pub fn business_metrics(mut self, names: Vec<String>) -> Self {
        self.business_metrics = names;
        self
    }

    /// Dashboards served at `/` (the built-in ones when none are given).
    pub fn dashboards(mut self, d: Vec<crate::dashboards::DashboardConfig>) -> Self {
        self.dashboards = d;
        self
    }

    /// Uptime checks and synthetic workflows.
    pub fn monitors(mut self, m: crate::uptime::Monitors) -> Self {
        self.monitors = m;
        self
    }

    /// Checks the parts and builds the agent.
    pub fn build(self) -> Result<Agent, AgentError> {
        let store =
            self.store.ok_or_else(|| AgentError::Setup("the agent needs a store (e.g. SqliteStore::open)".into()))?;
        if self.evaluation_interval.is_zero() {
            return Err(AgentError::Setup("the evaluation interval must be longer than 0s".into()));
        }
        let mut names = BTreeSet::new();
        for (c, _, _) in &self.channels {
            if !names.insert(c.name().to_string()) {
                return Err(AgentError::Setup(format!("two channels are called {:?}", c.name())));
            }
        }
        for (alias, target) in &self.aliases {
            if !names.contains(target) {
                return Err(AgentError::Setup(format!("alias {alias:?} points at {target:?}, which is not a channel")));
            }
        }
        let known: BTreeSet<String> = names.iter().chain(self.aliases.keys()).cloned().collect();
        let mut engine = RuleEngine::with_options(
            self.rules,
            EngineOptions::default(),
            &ValidateOptions { known_channels: Some(known) },
        )
        .map_err(|errs| AgentError::Rules(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")))?;
        engine.set_maintenance_windows(self.maintenance).map_err(|e| AgentError::Setup(e.to_string()))?;
        let mut counters = BTreeMap::new();
        let mut wakers = BTreeMap::new();
        let mut workers = Vec::new();
        for (channel, policy, min_interval) in self.channels {
            let name = channel.name().to_string();
            let c = Arc::new(ChannelCounters::default());
            let w = Arc::new(Notify::new());
            counters.insert(name.clone(), c.clone());
            wakers.insert(name, w.clone());
            workers.push(Worker {
                channel,
                policy: policy.unwrap_or_else(|| self.delivery.clone()),
                wake: w,
                counters: c,
                min_interval,
            });
        }
        let (http, api_token) = match self.http {
            Some((a, t)) => (Some(a), t),
            None => (None, None),
        };
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        #[cfg(feature = "collector")]
        let collector = self.collector.map(|c| Arc::new(crate::collector::Collector::new(c, clock.now())));
        #[cfg(not(feature = "collector"))]
        if self.collector.is_some() {
            tracing::info!("collector: this build has no `collector` feature; /v1/rum is not served");
        }
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            store,
            clock,
            sources: Mutex::new(BTreeMap::new()),
            counters,
            wakers,
            aliases: self.aliases,
            leader: AtomicBool::new(false),
            running: AtomicBool::new(false),
            api_token,
            board: Default::default(),
            #[cfg(feature = "collector")]
            collector,
            dashboards: if self.dashboards.is_empty() { crate::dashboards::defaults() } else { self.dashboards },
            business_metrics: self.business_metrics,
        });
        crate::dashboards::keep_history(&shared, &shared.dashboards);
        Ok(Agent {
            shared,
            sources: self.sources,
            workers,
            evaluation_interval: self.evaluation_interval,
            shutdown_timeout: self.shutdown_timeout,
            http,
            monitors: self.monitors,
        })
    }
}

/// The agent; see the module docs.
pub struct Agent {
    shared: Arc<Shared>,
    sources: Vec<Arc<dyn MetricSource>>,
    workers: Vec<Worker>,
    evaluation_interval: Duration,
    shutdown_timeout: Duration,
    http: Option<SocketAddr>,
    monitors: crate::uptime::Monitors,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("sources", &self.sources.len()).field("channels", &self.workers.len()).finish()
    }
}

impl Agent {
    /// Starts building an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            rules: Vec::new(),
            sources: Vec::new(),
            channels: Vec::new(),
            aliases: BTreeMap::new(),
            store: None,
            clock: None,
            evaluation_interval: Duration::from_secs(15),
            shutdown_timeout: Duration::from_secs(10),
            delivery: DeliveryPolicy::default(),
            http: None,
            maintenance: Vec::new(),
            monitors: Default::default(),
            collector: None,
            dashboards: Vec::new(),
            business_metrics: Vec::new(),
        }
    }

    /// A handle for pushing samples and reading state.
    pub fn handle(&self) -> AgentHandle {
        AgentHandle { shared: self.shared.clone() }
    }

    /// Runs until `shutdown` completes, then shuts down gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
        let shared = self.shared.clone();
        shared.store.ping().await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let listener = match self.http {
            Some(addr) => {
                Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| AgentError::Listen { addr, source })?)
            }
            None => None,
        };
        for w in &self.workers {
            if let Err(e) = w.channel.health_check().await {
                tracing::warn!(channel = w.channel.name(), error = %e, "channel health check failed");
            }
        }
        {
            let engine = shared.engine();
            let rules: Vec<&str> = engine.rules().map(|r| r.id.as_str()).collect();
            let sources: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
            let channels: Vec<&str> = self.workers.iter().map(|w| w.channel.name()).collect();
            tracing::info!(
                store = %shared.store.describe(),
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
            self.monitors.spawn(shared.clone(), &mut tasks, &stop_rx);
        }
        #[cfg(feature = "collector")]
        if let Some(c) = &shared.collector {
            // Before the listener serves: the last hour is back when the first request comes.
            c.reload(shared.store.as_ref(), shared.clock.now()).await;
            tasks.spawn(crate::collector::run_windows(shared.clone(), c.clone(), stop_rx.clone()));
        }
        let eval = tokio::spawn(evaluate_loop(shared.clone(), self.evaluation_interval, stop_rx.clone()));
        if let Some(l) = listener {
            let router = crate::http::router(AgentHandle { shared: shared.clone() });
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let app = router.into_make_service_with_connect_info::<SocketAddr>();
                let serve = axum::serve(l, app).with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "HTTP server stopped");
                }
            });
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

/// Evaluates on an interval while this agent leads; commits notifications and state together.
async fn evaluate_loop(shared: Arc<Shared>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut carry: Vec<OutboxEntry> = Vec::new();
    let mut was_leader = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let leader = match shared.store.try_lead().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach the store for the leader lock");
                false
            }
        };
        if leader && !was_leader {
            // Becoming leader (at start, or taking over): resume from the stored state.
            match shared.store.load_snapshot().await {
                Ok(Some(snap)) => {
                    let now = shared.clock.now();
                    match shared.engine().restore(snap, now) {
                        Ok(r) => tracing::info!(restored = r.restored, dropped = ?r.dropped, "alert state restored"),
                        Err(e) => tracing::error!(error = %e, "cannot restore the alert state"),
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the alert state; not leading until it can be read");
                    continue;
                }
            }
            tracing::info!("leading: evaluating rules and sending notifications");
        } else if !leader && was_leader {
            tracing::warn!("lost the leader lock: standing by");
        }
        was_leader = leader;
        shared.leader.store(leader, Ordering::Relaxed);
        if !leader {
            continue;
        }
        commit_tick(&shared, &mut carry).await;
    }
    if was_leader {
        // Persist the latest state (and anything not yet committed) before exiting.
        let snap = shared.engine().snapshot(shared.clock.now());
        if let Err(e) = shared.store.commit_evaluation(&snap, &carry).await {
            tracing::error!(error = %e, "cannot persist the alert state at shutdown");
        }
    }
}

async fn commit_tick(shared: &Shared, carry: &mut Vec<OutboxEntry>) {
    let now = shared.clock.now();
    let (notes, snap) = {
        let mut e = shared.engine();
        let notes = e.evaluate(now);
        (notes, e.snapshot(now))
    };
    for n in notes {
        let mut seen = BTreeSet::new();
        for ch in &n.channels {
            let target = shared.aliases.get(ch).unwrap_or(ch);
            if shared.wakers.contains_key(target) && seen.insert(target.clone()) {
                carry.push(OutboxEntry { notification: n.clone(), channel: target.clone() });
            }
        }
    }
    match shared.store.commit_evaluation(&snap, carry).await {
        Ok(()) => {
            let channels: BTreeSet<&String> = carry.iter().map(|e| &e.channel).collect();
            for c in channels {
                if let Some(w) = shared.wakers.get(c) {
                    w.notify_one();
                }
            }
            carry.clear();
        }
        // The notifications stay in memory and are written with the next evaluation.
        Err(e) => tracing::error!(error = %e, pending = carry.len(), "cannot commit the evaluation; will retry"),
    }
}
