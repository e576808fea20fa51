//! Loopback receivers shared by the notifier tests.
#![allow(dead_code, unreachable_pub, missing_docs, reason = "test support: each test binary uses part of it")]

pub mod agent;
pub mod chrome;
pub mod monitors;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod receiver;
#[cfg(feature = "collector")]
pub mod rum;
pub mod sdk;
pub mod smtp;
pub mod tls;
pub mod web;

use std::time::Duration;

/// Polls `cond` every 50 ms until it holds; fails the test after `limit`. For conditions that
/// need `.await` (an HTTP answer, the outbox's counts); [`monitors::wait_for`] takes a plain
/// closure. Waiting for what the test needs, instead of sleeping a fixed time, keeps the fast
/// path fast and lets a loaded machine take longer.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An agent builder for tests that need an agent but no paging: the database rule pack, one
/// in-memory channel that every rule channel name points at, and `store`.
pub fn quiet_agent(
    store: std::sync::Arc<dyn thorbis_obs_server::store::Store>,
) -> thorbis_obs_server::agent::AgentBuilder {
    thorbis_obs_server::agent::Agent::builder()
        .rules(thorbis_obs_core::rules::packs::database_health_rules())
        .channel(std::sync::Arc::new(thorbis_obs_core::testing::InMemoryChannel::new("mem")))
        .alias("slack", "mem")
        .alias("email", "mem")
        .alias("pagerduty", "mem")
        .alias("sms", "mem")
        .store(store)
}

/// The rule the paging tests use: `orders_failed` above 5 (max over 10 m) pages the channel
/// called `mem`.
pub fn orders_failing_to_mem() -> Vec<thorbis_obs_core::rules::AlertRule> {
    let yaml = "rules:\n  - id: orders-failing\n    name: Orders Failing\n    metric: orders_failed\n    condition: { operator: greater_than, threshold: 5, duration: 10m, aggregation: max }\n    severity: critical\n    channels: [mem]\n";
    thorbis_obs_server::rules_file::parse_rule_text(
        yaml,
        std::path::Path::new("r.yaml"),
        &thorbis_obs_core::rules::ValidateOptions::default(),
    )
    .expect("rule")
}

/// A running agent: stop it with the sender, then await the task.
pub type Serving =
    (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), thorbis_obs_server::agent::AgentError>>);

/// Runs `agent` until the returned sender fires, once `base`'s `/healthz` answers.
pub async fn serve(agent: thorbis_obs_server::agent::Agent, base: &str) -> Serving {
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    eventually("the agent up", Duration::from_secs(30), async || c.get(format!("{base}/healthz")).send().await.is_ok())
        .await;
    (stop, task)
}
