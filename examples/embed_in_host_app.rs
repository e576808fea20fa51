//! A host app embedding the agent runtime on its own tokio runtime, with its own
//! `MetricSource` (checkout payment failures) and its own `AlertChannel` (its pager), and the
//! handle it uses to push samples and read alert state.
//!
//! Run: `cargo run --example embed_in_host_app` (about 8 seconds; state in a temp directory).

use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thorbis_obs::core::channel::{Delivered, DeliveryError};
use thorbis_obs::core::engine::Notification;
use thorbis_obs::core::metrics::{Labels, Sample};
use thorbis_obs::core::rules::packs;
use thorbis_obs::core::time::Timestamp;
use thorbis_obs::core::{AlertChannel, CollectError, MetricSource};
use thorbis_obs_server::agent::Agent;
use thorbis_obs_server::store::sqlite::SqliteStore;

/// The host app's own counters, read by its metric source.
#[derive(Default)]
struct Checkout {
    attempts: AtomicU64,
    failures: AtomicU64,
}

/// Reports the payment failure rate of the last interval (the spec's `payment_failure_rate`).
struct CheckoutSource(Arc<Checkout>);

#[async_trait]
impl MetricSource for CheckoutSource {
    fn name(&self) -> &str {
        "checkout"
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(500)
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let attempts = self.0.attempts.swap(0, Ordering::Relaxed);
        let failures = self.0.failures.swap(0, Ordering::Relaxed);
        if attempts == 0 {
            return Ok(vec![]);
        }
        let rate = failures as f64 / attempts as f64;
        Ok(vec![Sample::new(packs::PAYMENT_FAILURE_RATE, Labels::new().with("provider", "stripe"), rate, now)])
    }
}

/// The host app's pager: here it keeps what it was asked to page.
#[derive(Default)]
struct Pager(Mutex<Vec<String>>);

#[async_trait]
impl AlertChannel for Pager {
    fn name(&self) -> &str {
        "pager"
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let line = n.headline();
        println!("PAGE  {line}");
        self.0.lock().map_err(|_| DeliveryError::retryable("pager lock poisoned"))?.push(line);
        Ok(Delivered { answer: Some("paged".into()) })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("thorbis-embed-{}", std::process::id()));
    let checkout = Arc::new(Checkout::default());
    let pager = Arc::new(Pager::default());
    let mut rules = packs::spec_rules();
    rules.retain(|r| r.id == "payment-processing-failure");
    rules[0].channels = vec!["pager".into()];
    // The spec's 1-minute window, scaled down so the demo resolves within seconds.
    rules[0].condition.duration = thorbis_obs::core::time::HumanDuration::from_secs(2);

    let agent = Agent::builder()
        .rules(rules)
        .source(Arc::new(CheckoutSource(checkout.clone())))
        .channel(pager.clone())
        .store(Arc::new(SqliteStore::open(&dir.join("thorbis.db"))?))
        .evaluation_interval(Duration::from_millis(500))
        .build()?;
    let handle = agent.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    // The app at work: healthy for 2 s, then a third of payments fail for 3 s, then healthy.
    for tick in 0..80u64 {
        let failing = (20..50).contains(&tick);
        checkout.attempts.fetch_add(3, Ordering::Relaxed);
        if failing {
            checkout.failures.fetch_add(1, Ordering::Relaxed);
        }
        // Anything else the app knows can be pushed directly.
        handle.push(&Sample::new("checkout_queue_depth", Labels::new(), (tick % 7) as f64, now()))?;
        if tick == 45 {
            for a in handle.alerts() {
                println!("STATE {} {} since {:?}", a.rule_id, a.state.as_str(), a.fired_at);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    running.await??;
    let paged = pager.0.lock().map(|v| v.len()).unwrap_or(0);
    println!("paged {paged} times (firing, then resolved); state kept in {}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    if paged != 2 {
        return Err(format!("expected a firing and a resolved page, got {paged}").into());
    }
    Ok(())
}

fn now() -> Timestamp {
    thorbis_obs_server::agent::system_now()
}
