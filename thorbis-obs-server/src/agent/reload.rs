//! Config reload: SIGHUP or `POST /api/v1/reload` (API token or an admin) reads the config file
//! again. A file with problems is refused with every one of them and the running agent goes on.
//! A good one is built into a new agent while the old one runs (a part that cannot be built,
//! say a channel, refuses the reload the same way); then the old one stops as at shutdown (its
//! last evaluation committed, in-flight deliveries finished) and the new one starts on the same
//! store with everything that defines the alerts' past: the alert state (pending, firing,
//! escalation level, acknowledgements, suppression conditions; restored from the store as after
//! a restart, so nothing is notified twice), silences and audit records (in the store), and the
//! samples the engine holds (handed over in memory, so a `for: 5m` keeps counting). Rules,
//! channels, sources, checks, dashboards and listeners come from the new file; an alert of a
//! rule that is gone is dropped (logged). Sign-in sessions end (they live in the old agent's
//! memory), and the listeners are closed while the old agent finishes: typically well under a
//! second, in which new connections are refused (the browser SDK and OTLP exporters retry).
//!
//! Why a restart in the process rather than swapping parts in place: every part (workers,
//! schedulers, check pipeline, components) is built from the whole config and owns its tasks;
//! building a new set next to the old and handing over the state the store already keeps is one
//! path, the one restarts take and the tests prove, instead of a second path per part.

use super::{Agent, AgentError, AgentHandle};
use crate::config::LoadedConfig;
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What a reload request gets back: the new config's summary, or why it was refused.
pub type ReloadOutcome = Result<String, String>;

/// The way into a running [`run_reloadable`] loop, held by the agent's reload endpoint.
#[derive(Debug)]
pub struct Reloader {
    tx: mpsc::Sender<oneshot::Sender<ReloadOutcome>>,
    source: String,
}

/// The longest a reload request waits for its outcome.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Reloader {
    /// The config file it reads (`<default config>` for the embedded one).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Asks the loop to reload; waits for the new agent to be built (or refused).
    pub async fn request(&self) -> ReloadOutcome {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(tx).map_err(|_| "a reload is already under way".to_string())?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the agent stopped before reloading".into()),
            Err(_) => Err(format!("no outcome within {}s", REQUEST_TIMEOUT.as_secs())),
        }
    }
}

/// Runs the agent `loaded` describes until `shutdown`, reloading it on SIGHUP and on
/// `POST /api/v1/reload` (see the module docs).
pub async fn run_reloadable(loaded: LoadedConfig, shutdown: impl Future<Output = ()> + Send) -> Result<(), AgentError> {
    let (tx, mut requests) = mpsc::channel::<oneshot::Sender<ReloadOutcome>>(1);
    let reloader = Arc::new(Reloader { tx, source: source_of(&loaded) });
    let mut loaded = loaded;
    let mut agent = super::builder_from_config(&loaded).await?.reloader(reloader.clone()).build()?;
    let mut hangups = hangups();
    tokio::pin!(shutdown);
    loop {
        let handle = agent.handle();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut running = tokio::spawn(agent.run(async {
            let _ = stop_rx.await;
        }));
        let (next, next_loaded) = loop {
            let reply = tokio::select! {
                () = &mut shutdown => {
                    let _ = stop_tx.send(());
                    return running.await.map_err(|e| AgentError::Setup(format!("the agent's task failed: {e}")))?;
                }
                ended = &mut running => {
                    return ended.map_err(|e| AgentError::Setup(format!("the agent's task failed: {e}")))?;
                }
                Some(reply) = requests.recv() => Some(reply),
                Some(()) = hangups.recv() => None,
            };
            let outcome = prepare(&loaded, &handle, &reloader).await;
            let who = crate::api::auth::Principal {
                name: if reply.is_some() { "api".into() } else { "SIGHUP".into() },
                role: crate::api::auth::Role::Admin,
            };
            let answer = match &outcome {
                Ok((_, l)) => {
                    tracing::info!(config = %l.summary(), "config reloaded: starting the new agent");
                    Ok(l.summary())
                }
                Err(e) => {
                    tracing::error!(problems = %e, "config reload refused; the running config stays");
                    Err(e.clone())
                }
            };
            match reply {
                // The API's handler writes its own audit record, with the caller.
                Some(r) => {
                    let _ = r.send(answer);
                }
                None => {
                    let detail = match &answer {
                        Ok(s) => serde_json::json!({ "applied": true, "config": s }),
                        Err(e) => serde_json::json!({ "applied": false, "problems": e }),
                    };
                    let target = source_of(&loaded);
                    handle.hub().audit(&who, &Default::default(), "config.reload", &target, detail).await;
                }
            }
            if let Ok(ready) = outcome {
                break ready;
            }
        };
        let _ = stop_tx.send(());
        running.await.map_err(|e| AgentError::Setup(format!("the agent's task failed: {e}")))??;
        // The samples the old engine held go to the new one.
        let mut old = std::mem::take(handle.hub().engine().store_mut());
        std::mem::swap(next.handle().hub().engine().store_mut(), &mut old);
        agent = next;
        loaded = next_loaded;
    }
}

/// The config file's name, for the audit trail.
fn source_of(loaded: &LoadedConfig) -> String {
    loaded.source.as_ref().map_or_else(|| "<default config>".to_string(), |p| p.display().to_string())
}

/// The new agent from the file read again, on the running one's store when the store's
/// address is the same; why not, otherwise.
async fn prepare(
    loaded: &LoadedConfig,
    running: &AgentHandle,
    reloader: &Arc<Reloader>,
) -> Result<(Agent, LoadedConfig), String> {
    let new = loaded.reread().map_err(|e| format!("{}: invalid config:\n{e}", source_of(loaded)))?;
    let same_store =
        new.config.store.url == loaded.config.store.url && *new.config.agent.data_dir == *loaded.config.agent.data_dir;
    let store: Option<Arc<dyn Store>> = same_store.then(|| running.hub().store().clone());
    let builder = super::from_config::builder_with_store(&new, store).await.map_err(|e| e.to_string())?;
    let agent = builder.reloader(reloader.clone()).build().map_err(|e| e.to_string())?;
    Ok((agent, new))
}

/// SIGHUPs, as a stream of `()` (none where there are no signals).
fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut s) => {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; reload through POST /api/v1/reload"),
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}
