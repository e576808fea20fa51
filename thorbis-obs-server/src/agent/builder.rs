//! [`AgentBuilder`]: checks the parts and builds the hub and the components every agent has.

use super::outbox::{ChannelCounters, Worker};
use super::{Agent, AgentError, Shared};
use crate::checks::{CheckResults, Monitors};
use crate::clock::{Clock, TokioClock};
use crate::hub::{Component, Hub};
use crate::secret::Secret;
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::engine::{EngineOptions, MaintenanceWindow, RuleEngine};
use thorbis_obs_core::rules::coverage::{Producer, RuleCoverage, coverage};
use thorbis_obs_core::rules::{AlertRule, ValidateOptions};
use thorbis_obs_core::{AlertChannel, MetricSource};
use tokio::sync::Notify;

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
    leader_lease: Option<Duration>,
    shutdown_timeout: Duration,
    delivery: DeliveryPolicy,
    http: Option<(SocketAddr, Option<Secret>)>,
    http_limits: super::HttpLimits,
    public: Option<(SocketAddr, Vec<String>)>,
    read_auth: crate::api::auth::AuthSection,
    max_sample_skew: Duration,
    audit_retention: Duration,
    reloader: Option<Arc<super::Reloader>>,
    producers: Option<Vec<Producer>>,
    maintenance: Vec<MaintenanceWindow>,
    monitors: Monitors,
    collector: Option<crate::collector::CollectorSection>,
    otlp: Option<crate::otlp::OtlpSection>,
    traces: Option<crate::traces::TracesSection>,
    dashboards: Vec<crate::dashboards::DashboardConfig>,
    sourcemaps: crate::sourcemaps::SourceMapsSection,
    business_metrics: Vec<String>,
    components: Vec<ComponentFactory>,
    #[cfg(feature = "host")]
    host_errors: Vec<crate::host::ErrorReporter>,
}

/// Makes a component once the hub exists.
type ComponentFactory = Box<dyn FnOnce(&Arc<Hub>) -> Arc<dyn Component> + Send>;

impl AgentBuilder {
    pub(super) fn new() -> Self {
        AgentBuilder {
            rules: Vec::new(),
            sources: Vec::new(),
            channels: Vec::new(),
            aliases: BTreeMap::new(),
            store: None,
            clock: None,
            evaluation_interval: Duration::from_secs(15),
            leader_lease: None,
            shutdown_timeout: Duration::from_secs(10),
            delivery: DeliveryPolicy::default(),
            http: None,
            http_limits: super::HttpLimits::default(),
            public: None,
            read_auth: Default::default(),
            max_sample_skew: Duration::from_secs(300),
            audit_retention: Duration::from_secs(90 * 86400),
            reloader: None,
            producers: None,
            maintenance: Vec::new(),
            monitors: Default::default(),
            collector: None,
            otlp: None,
            traces: None,
            dashboards: Vec::new(),
            sourcemaps: Default::default(),
            business_metrics: Vec::new(),
            components: Vec::new(),
            #[cfg(feature = "host")]
            host_errors: Vec::new(),
        }
    }

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

    /// The leader lease on a store several agents share (default three evaluation intervals;
    /// at least two): how long a standby waits for a silent leader before taking over.
    pub fn leader_lease(mut self, d: Duration) -> Self {
        self.leader_lease = Some(d);
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

    /// A listener of its own at `addr` for what browsers and exporters reach (the components'
    /// public routes and `/healthz`), answering to `hosts` (`"*"`: any); the `http` listener
    /// then is the admin one (it serves those routes too).
    pub fn public_http(mut self, addr: SocketAddr, hosts: Vec<String>) -> Self {
        self.public = Some((addr, hosts));
        self
    }

    /// Read authentication of the admin routes (see [`crate::api::auth`]); without it reads are
    /// open, and `build` refuses an `http` address off loopback.
    pub fn read_auth(mut self, auth: crate::api::auth::AuthSection) -> Self {
        self.read_auth = auth;
        self
    }

    /// Serves the HTTP endpoints on `addr`; `api_token` guards the write endpoints.
    pub fn http(mut self, addr: SocketAddr, api_token: Option<Secret>) -> Self {
        self.http = Some((addr, api_token));
        self
    }

    /// How the HTTP listener treats connections: header timeout, connection cap, `Host` names.
    pub fn http_limits(mut self, limits: super::HttpLimits) -> Self {
        self.http_limits = limits;
        self
    }

    /// Declares what writes samples into the engine and which metrics (the config's
    /// components declare themselves; a host app adds its own sources'). Once any is declared,
    /// each rule whose metric none of them writes is logged as a warning at build, and
    /// `GET /api/v1/rules` shows every rule's producers.
    pub fn producers(mut self, producers: impl IntoIterator<Item = Producer>) -> Self {
        self.producers.get_or_insert_with(Vec::new).extend(producers);
        self
    }

    /// The reload loop the agent runs in ([`super::run_reloadable`] sets it): without one,
    /// `POST /api/v1/reload` answers that this agent was not started from a config file.
    pub fn reloader(mut self, r: Arc<super::Reloader>) -> Self {
        self.reloader = Some(r);
        self
    }

    /// How long audit records are kept in the store (default 90 days).
    pub fn audit_retention(mut self, keep: Duration) -> Self {
        self.audit_retention = keep;
        self
    }

    /// How far ahead of the agent's clock a pushed sample's timestamp may be (default 5 min):
    /// a sample from the future would make every later one "out of order".
    pub fn max_sample_skew(mut self, skew: Duration) -> Self {
        self.max_sample_skew = skew;
        self
    }

    /// Maintenance windows.
    pub fn maintenance_windows(mut self, w: Vec<MaintenanceWindow>) -> Self {
        self.maintenance = w;
        self
    }

    /// Serves `POST /v1/rum` on the HTTP listener (feature `collector`; without it the section is
    /// ignored).
    pub fn collector(mut self, c: crate::collector::CollectorSection) -> Self {
        self.collector = c.enabled.then_some(c);
        self
    }

    /// Serves the OTLP intake (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`; feature `otlp`,
    /// without it the section is ignored); server errors go into the collector's error groups
    /// when there is a collector.
    pub fn otlp(mut self, o: crate::otlp::OtlpSection) -> Self {
        self.otlp = o.enabled.then_some(o);
        self
    }

    /// Keeps tail-sampled traces of the spans the OTLP intake takes (`GET /api/v1/traces`;
    /// feature `otlp`, and only with the intake).
    pub fn traces(mut self, t: crate::traces::TracesSection) -> Self {
        self.traces = t.enabled.then_some(t);
        self
    }

    /// Metric names (or prefixes ending in `_`) the summary reports as business impact: what the
    /// PostgreSQL business queries produce.
    pub fn business_metrics(mut self, names: Vec<String>) -> Self {
        self.business_metrics = names;
        self
    }

    /// Source maps: upload, storage and symbolication (see [`crate::sourcemaps`]).
    pub fn sourcemaps(mut self, s: crate::sourcemaps::SourceMapsSection) -> Self {
        self.sourcemaps = s;
        self
    }

    /// Dashboards served at `/` (the built-in ones when none are given).
    pub fn dashboards(mut self, d: Vec<crate::dashboards::DashboardConfig>) -> Self {
        self.dashboards = d;
        self
    }

    /// Uptime checks and synthetic workflows (see [`crate::checks`]).
    pub fn monitors(mut self, m: Monitors) -> Self {
        self.monitors = m;
        self
    }

    /// Adds a component, made from the hub when the agent is built: its routes are served on
    /// the HTTP listener and its background work runs with the agent's.
    pub fn component(mut self, make: impl FnOnce(&Arc<Hub>) -> Arc<dyn Component> + Send + 'static) -> Self {
        self.components.push(Box::new(make));
        self
    }

    /// A host app's error reports (its `tracing` layer and panic hook), drained every second
    /// into the collector's error groups beside the browser's (the agent needs a collector).
    #[cfg(feature = "host")]
    pub fn host_errors(mut self, reporter: crate::host::ErrorReporter) -> Self {
        self.host_errors.push(reporter);
        self
    }

    /// Checks the parts and builds the agent.
    pub fn build(self) -> Result<Agent, AgentError> {
        let store =
            self.store.ok_or_else(|| AgentError::Setup("the agent needs a store (e.g. SqliteStore::open)".into()))?;
        if self.evaluation_interval.is_zero() {
            return Err(AgentError::Setup("the evaluation interval must be longer than 0s".into()));
        }
        let leader_lease = self.leader_lease.unwrap_or(super::evaluate::default_lease(self.evaluation_interval));
        if leader_lease < self.evaluation_interval.saturating_mul(2) {
            return Err(AgentError::Setup(format!(
                "the leader lease ({leader_lease:?}) must be at least two evaluation intervals ({:?})",
                self.evaluation_interval.saturating_mul(2)
            )));
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
        let coverage = self.producers.as_ref().map(|p| coverage(&self.rules, p));
        for warning in coverage.iter().flatten().filter_map(RuleCoverage::warning) {
            tracing::warn!("{warning}");
        }
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
        if let Some(a) = http.filter(|a| !a.ip().is_loopback()) {
            if !self.read_auth.is_configured() {
                return Err(AgentError::Setup(format!(
                    "http.listen: {a} is not a loopback address, and this listener serves the dashboards, the error \
                     groups and /metrics: set http.auth (viewer_tokens or trusted_proxies) first, or keep it on \
                     loopback and put what browsers and exporters reach on [http.public]"
                )));
            }
        }
        let gate = crate::api::auth::ReadGate::new(&self.read_auth, api_token.clone());
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(TokioClock::new()));
        let hub = Arc::new(Hub::new(engine, store, clock));
        // The components every agent has, then the host's.
        let checks = CheckResults { hub: hub.clone(), board: self.monitors.board.clone() };
        let mut components: Vec<Arc<dyn Component>> = vec![
            Arc::new(crate::uptime::UptimeReports(checks.clone())),
            Arc::new(crate::synthetic::SyntheticReports(checks.clone())),
        ];
        // The trace store, fed by the OTLP intake and by the collector (the browser's spans).
        #[cfg(feature = "otlp")]
        let traces = self.traces.map(|t| Arc::new(crate::traces::TraceService::new(hub.clone(), t)));
        #[cfg(not(feature = "otlp"))]
        let _ = self.traces;
        // Source maps, and their symbolication handed to the collector as a value.
        let sourcemaps = Arc::new(crate::sourcemaps::SourceMaps::new(hub.clone(), self.sourcemaps, api_token.clone()));
        #[cfg(feature = "collector")]
        let symbolicator = sourcemaps.enabled().then(|| {
            let s = sourcemaps.clone();
            Arc::new(move |release: String, frames: Vec<thorbis_obs_core::domain::errors::StackFrame>, ids| {
                let s = s.clone();
                Box::pin(async move { s.symbolicate_with(&release, &frames, &ids).await })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
            }) as crate::hub::Symbolicator
        });
        components.push(sourcemaps);
        #[cfg(feature = "collector")]
        let collector = self.collector.map(|c| {
            let c = crate::collector::Collector::new(c, hub.clone()).with_symbolicator(symbolicator.clone());
            #[cfg(feature = "otlp")]
            let c = c.with_span_sink(traces.clone().map(|t| {
                Arc::new(move |spans, links, at| t.add_browser(spans, links, at)) as crate::collector::SpanSink
            }));
            Arc::new(c)
        });
        #[cfg(feature = "otlp")]
        if let Some(t) = &traces {
            components.push(t.clone());
        }
        // Server errors join the browser's error groups (a value handed down: neither the
        // intake nor the host's reporter knows the collector).
        #[cfg(all(feature = "collector", any(feature = "otlp", feature = "host")))]
        let error_sink = collector.clone().map(|c| {
            Arc::new(move |errors: &[thorbis_obs_core::rum::ServerError], at| c.record_server_errors(errors, at))
                as crate::hub::ErrorSink
        });
        #[cfg(all(feature = "host", feature = "collector"))]
        for r in self.host_errors {
            match &error_sink {
                Some(sink) => components.push(Arc::new(crate::host::ErrorFlush::new(r, sink.clone(), hub.clone()))),
                None => tracing::warn!("host errors: the agent has no collector; they are not kept"),
            }
        }
        #[cfg(all(feature = "host", not(feature = "collector")))]
        if !self.host_errors.is_empty() {
            tracing::warn!("host errors: this build has no `collector` feature; they are not kept");
        }
        #[cfg(feature = "otlp")]
        if let Some(o) = self.otlp {
            let sink = error_sink.clone();
            // Spans go to the trace store the same way.
            let trace_sink = traces.clone().map(|t| {
                Arc::new(move |spans: Vec<thorbis_obs_core::traces::TraceSpan>, at| t.add(spans, at))
                    as crate::otlp::TraceSink
            });
            let intake = crate::otlp::OtlpIntake::new(hub.clone(), o).map_err(AgentError::Setup)?;
            components.push(Arc::new(intake.with_error_sink(sink).with_trace_sink(trace_sink)));
        }
        #[cfg(not(feature = "otlp"))]
        if self.otlp.is_some() {
            tracing::info!("otlp: this build has no `otlp` feature; /v1/traces is not served");
        }
        #[cfg(feature = "collector")]
        let errors = {
            let feed = collector.clone().map(|c| {
                Arc::new(move |since, n| {
                    let total = c.merged_since(since).errors.values().map(|g| g.count).sum();
                    let groups = c.errors_since(since, n).into_iter().map(|g| {
                        let state = c.issue(&g.fingerprint).map_or("unresolved", |i| i.status.name());
                        (g, state)
                    });
                    (total, groups.collect())
                }) as crate::dashboards::ErrorFeed
            });
            components.push(Arc::new(
                crate::collector::CollectorService::new(collector, checks.clone(), self.business_metrics)
                    .with_api_token(api_token.clone()),
            ));
            feed
        };
        #[cfg(not(feature = "collector"))]
        let errors = {
            if self.collector.is_some() {
                tracing::info!("collector: this build has no `collector` feature; /v1/rum is not served");
            }
            let _ = self.business_metrics;
            None
        };
        components.push(Arc::new(crate::dashboards::Dashboards::new(
            self.dashboards,
            hub.clone(),
            self.monitors.board.clone(),
            errors,
        )));
        components.extend(self.components.into_iter().map(|make| make(&hub)));
        let shared = Arc::new(Shared {
            hub,
            sources: Mutex::new(BTreeMap::new()),
            counters,
            wakers,
            aliases: self.aliases,
            leader: AtomicBool::new(false),
            running: AtomicBool::new(false),
            store_ok: AtomicBool::new(true),
            unstored: Default::default(),
            api_token,
            max_sample_skew: self.max_sample_skew,
            audit_retention: self.audit_retention,
            reloader: self.reloader,
            coverage,
        });
        Ok(Agent {
            shared,
            sources: self.sources,
            workers,
            evaluation_interval: self.evaluation_interval,
            leader_lease,
            shutdown_timeout: self.shutdown_timeout,
            http,
            http_limits: self.http_limits,
            public: self.public,
            gate,
            monitors: self.monitors,
            components,
        })
    }
}
