//! An in-process agent running uptime checks or workflows, with an in-memory channel called
//! `pager` that every rule channel name maps to, for the uptime and synthetic tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_server::agent::{Agent, AgentHandle};
use thorbis_obs_server::config::AgentConfig;
use thorbis_obs_server::store::Store;

/// A running agent: its handle, its pager, and how to stop it.
pub struct Running {
    pub handle: AgentHandle,
    pub pager: Arc<InMemoryChannel>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), thorbis_obs_server::agent::AgentError>>,
}

impl Running {
    /// Stops the agent and waits for it (the recorder writes what it holds on the way out).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("agent");
    }
}

/// Starts an agent on `config` (TOML) with the uptime rule pack, evaluating every 100 ms.
pub fn start(config: &str, store: Arc<dyn Store>, http: Option<SocketAddr>) -> Running {
    let cfg: AgentConfig = toml::from_str(config).expect("config");
    let (monitors, windows) = thorbis_obs_server::agent::monitors_from_config(&cfg).expect("monitors");
    let pager = Arc::new(InMemoryChannel::new("pager"));
    let mut b = Agent::builder()
        .rules(thorbis_obs_core::rules::packs::uptime_rules())
        .channel(pager.clone())
        .alias("slack", "pager")
        .alias("pagerduty", "pager")
        .alias("email", "pager")
        .store(store)
        .evaluation_interval(Duration::from_millis(100))
        .maintenance_windows(windows)
        .monitors(monitors);
    if let Some(addr) = http {
        b = b.http(addr, None);
    }
    let agent = b.build().expect("agent");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    Running { handle, pager, stop, task }
}

/// Polls `f` every 20 ms until it holds; fails the test after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stored results of an HTTP check at a location, from the last ten minutes.
pub async fn stored(store: &dyn Store, target: &str, location: &str) -> usize {
    let now = thorbis_obs_server::agent::system_now();
    store
        .check_results(
            thorbis_obs_server::uptime::CheckKind::Http,
            Some(target),
            now.minus(Duration::from_secs(600)),
            now,
        )
        .await
        .expect("read")
        .iter()
        .filter(|r| r.location == location)
        .count()
}

/// Waits until the store holds at least `n` results of `target` from each of `locations`.
pub async fn wait_stored(store: &dyn Store, target: &str, locations: &[&str], n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        for l in locations {
            all &= stored(store, target, l).await >= n;
        }
        if all {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "fewer than {n} stored results of {target} at {locations:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
