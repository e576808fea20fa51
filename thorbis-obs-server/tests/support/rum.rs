//! An in-process agent with the RUM collector on a loopback port, the `rum` rule pack and an
//! in-memory channel called `pager` standing for slack and email, for the collector and
//! dashboard tests.

use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_server::agent::{Agent, AgentError, AgentHandle};
use thorbis_obs_server::collector::CollectorSection;
use thorbis_obs_server::store::sqlite::SqliteStore;

/// A running agent.
pub struct RumAgent {
    pub handle: AgentHandle,
    pub pager: Arc<InMemoryChannel>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
    _dir: tempfile::TempDir,
}

impl RumAgent {
    /// Starts one with `[collector]` settings `collector` (TOML), evaluating every 100 ms, and
    /// waits until it answers HTTP.
    pub async fn start(collector: &str) -> RumAgent {
        Self::start_with(collector, None, None).await
    }

    /// [`RumAgent::start`], with `slack` going to `hook` instead of the pager when given, on
    /// `store` (a fresh SQLite file when `None`).
    pub async fn start_with(
        collector: &str,
        hook: Option<Arc<dyn thorbis_obs_core::AlertChannel>>,
        store: Option<Arc<dyn thorbis_obs_server::store::Store>>,
    ) -> RumAgent {
        let dir = tempfile::tempdir().expect("tmp");
        let store = match store {
            Some(s) => s,
            None => Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("store")),
        };
        let pager = Arc::new(InMemoryChannel::new("pager"));
        let port = super::agent::free_port();
        let collector: CollectorSection = toml::from_str(collector).expect("collector config");
        let mut b = Agent::builder().rules(thorbis_obs_core::rules::packs::rum_rules()).channel(pager.clone());
        b = match hook {
            Some(h) => {
                let name = h.name().to_string();
                b.channel(h).alias("slack", &name)
            }
            None => b.alias("slack", "pager"),
        };
        let agent = b
            .alias("email", "pager")
            .store(store)
            .evaluation_interval(Duration::from_millis(100))
            .http(format!("127.0.0.1:{port}").parse().expect("addr"), None)
            .collector(collector)
            .build()
            .expect("agent");
        let handle = agent.handle();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = rx.await;
        }));
        let base = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while c.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the agent did not start listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        RumAgent { handle, pager, base, stop, task, _dir: dir }
    }

    /// Posts a batch to `/v1/rum` as the SDK does (text/plain); returns the status.
    pub async fn post(&self, body: String) -> u16 {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/rum", self.base))
            .header("Content-Type", "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .await
            .expect("post");
        r.status().as_u16()
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        r.json().await.unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// Polls `/metrics` (every 100 ms, 15 s at most) until `ready` holds; returns that text.
    pub async fn metrics_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let text =
                reqwest::get(format!("{}/metrics", self.base)).await.expect("metrics").text().await.expect("text");
            if ready(&text) {
                return text;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}: no {what} in /metrics:\n{text}", self.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops it and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("agent");
    }
}

/// The value of the first `/metrics` line of `name` that has every label pair.
pub fn metric(text: &str, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| pairs.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
