//! The hub every component receives: the rule engine, the store and the clock, with the few
//! things components do with them (push a sample, read "now", read the alerts). The agent
//! builds one and hands out `Arc<Hub>`; a component never sees the agent itself.

use crate::api::Caller;
use crate::api::auth::Principal;
use crate::clock::Clock;
use crate::store::Store;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thorbis_obs_core::engine::{AlertView, RuleEngine};
use thorbis_obs_core::metrics::{Sample, SampleError};
use thorbis_obs_core::time::Timestamp;

/// Where a component hands the errors servers report (the OTLP intake's log records, a host
/// app's `tracing` errors): the agent passes the collector's error groups down as this, so
/// neither knows the collector.
pub type ErrorSink = Arc<dyn Fn(&[thorbis_obs_core::rum::ServerError], Timestamp) + Send + Sync>;

/// Reads a browser stack's minified frames (innermost first) as the developer wrote them, for a
/// release and the debug ids of its scripts (by script URL): the agent hands the source maps'
/// symbolication down as this, so the collector does not know the source-map store.
pub type Symbolicator = Arc<
    dyn Fn(
            String,
            Vec<thorbis_obs_core::domain::errors::StackFrame>,
            std::collections::BTreeMap<String, String>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Vec<thorbis_obs_core::domain::errors::SymbolicatedFrame>> + Send>,
        > + Send
        + Sync,
>;

/// The engine, the store and the clock that components share.
pub struct Hub {
    engine: Mutex<RuleEngine>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("store", &self.store.describe()).finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub over `engine`, `store` and `clock`.
    pub fn new(engine: RuleEngine, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Hub { engine: Mutex::new(engine), store, clock }
    }

    /// The current time by the agent's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Pushes one sample into the engine (validated; on error nothing is stored).
    pub fn ingest(&self, s: &Sample) -> Result<(), SampleError> {
        self.engine().ingest(s)
    }

    /// The alert instances now.
    pub fn alerts(&self) -> Vec<AlertView> {
        let now = self.now();
        self.engine().alerts(now)
    }

    /// The engine, locked (a panic while it was held does not poison it for the others).
    pub fn engine(&self) -> MutexGuard<'_, RuleEngine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The durable store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Writes an audit record: `who` (from `caller`'s address) did `action` to `target`, with
    /// `detail`. Kept in the store (kind `audit`) so every agent sharing it lists it; when the
    /// store cannot take it the record goes to the log at WARN, whole, and the action stands.
    pub async fn audit(&self, who: &Principal, caller: &Caller, action: &str, target: &str, detail: serde_json::Value) {
        let at = self.now();
        let record = AuditRecord {
            at,
            who: who.name.clone(),
            role: who.role.as_str().to_string(),
            from: caller.peer.map(|p| p.to_string()),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        };
        let id = format!("{}-{:08x}", at.0, (crate::clock::random_unit() * f64::from(u32::MAX)) as u32);
        let saved = match serde_json::to_string(&record) {
            Ok(body) => self.store.save_record(AUDIT_KIND, &id, at, &body).await,
            Err(e) => Err(crate::store::StoreError::Backend(e.to_string())),
        };
        match saved {
            Ok(()) => tracing::info!(who = %record.who, action, target, "audit"),
            Err(e) => tracing::warn!(error = %e, record = ?record, "audit record not stored"),
        }
    }
}

/// The store's record kind of the audit trail.
pub const AUDIT_KIND: &str = "audit";

/// One state-changing action: who, what, to what, when, from where.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// When (the agent's clock).
    pub at: Timestamp,
    /// The token's name (`api_token`, `viewer_tokens[0]`), the user's or the proxy's user.
    pub who: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The peer's address.
    pub from: Option<String>,
    /// `silence.create`, `silence.expire`, `alert.ack`, `suppression.activate`, `config.reload`...
    pub action: String,
    /// What it was done to: a silence id, a fingerprint, a condition, a file.
    pub target: String,
    /// The action's parameters (matchers, duration, comment...).
    pub detail: serde_json::Value,
}

/// A part of the agent built from its own config section: the routes it serves on the
/// agent's listener and the work it runs in the background. The agent keeps a list of them:
/// adding one is one line of wiring (see the crate docs).
#[async_trait::async_trait]
pub trait Component: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// The HTTP routes it serves on the admin side (default: none): pages and APIs staff read,
    /// behind `http.auth` when it is set.
    fn routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
    }

    /// The routes browsers and exporters must reach (default: none): served on
    /// `[http.public]` when there is one, and on the admin listener too, never behind
    /// `http.auth` (they check their own credentials).
    fn public_routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
    }

    /// An address of its own on which its public routes are served too, besides the agent's
    /// listeners (default: none), such as OTLP's conventional port for exporters. That listener takes any
    /// `Host` (it serves no page a browser could be steered to) and has the agent's other limits.
    fn listen(&self) -> Option<std::net::SocketAddr> {
        None
    }

    /// Work done before the listener serves, such as reloading state (default: none).
    async fn prepare(&self) {}

    /// Its background work until `stop` flips (default: none).
    async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let _ = stop;
    }
}
