//! The agent runtime on paused tokio time: scheduling, source health, delivery with retries,
//! and restart from the SQLite store. A real SQLite file; channels and sources are the core
//! crate's public test doubles, since what is under test here is the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use thorbis_obs_core::channel::DeliveryError;
use thorbis_obs_core::delivery::DeliveryPolicy;
use thorbis_obs_core::engine::{AlertState, NotificationKind};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rules::{AlertRule, Condition, Matchers, NoDataPolicy, Operator, Severity};
use thorbis_obs_core::source::CollectError;
use thorbis_obs_core::testing::{InMemoryChannel, ScriptedSource};
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_core::window::Aggregation;
use thorbis_obs_server::agent::{Agent, AgentHandle, TokioClock};
use thorbis_obs_server::store::Store;
use thorbis_obs_server::store::sqlite::SqliteStore;
use tokio::sync::oneshot;

fn rule() -> AlertRule {
    AlertRule {
        id: "queue-stuck".into(),
        name: "Queue Stuck".into(),
        description: "jobs pile up".into(),
        metric: "queue_depth".into(),
        matchers: Matchers::default(),
        condition: Condition {
            operator: Operator::GreaterThan,
            threshold: 100.0,
            duration: HumanDuration::from_secs(60),
            aggregation: Aggregation::Max,
        },
        pending_for: HumanDuration::ZERO,
        keep_firing_for: HumanDuration::ZERO,
        severity: Severity::Error,
        channels: vec!["mem".into()],
        escalation: vec![],
        suppression_rules: vec![],
        labels: Default::default(),
        annotations: Default::default(),
        no_data: NoDataPolicy::Ok,
        repeat_interval: None,
        send_resolved: true,
    }
}

/// A source reporting a depth that a shared atomic controls.
fn depth_source(depth: Arc<AtomicU32>) -> Arc<ScriptedSource> {
    Arc::new(ScriptedSource::new("queue", Duration::from_secs(10), move |now| {
        Ok(vec![Sample::new(
            "queue_depth",
            Labels::new().with("queue", "emails"),
            f64::from(depth.load(Ordering::Relaxed)),
            now,
        )])
    }))
}

struct Running {
    handle: AgentHandle,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn start(store: Arc<dyn Store>, channel: InMemoryChannel, depth: Arc<AtomicU32>, policy: DeliveryPolicy) -> Running {
    let broken = Arc::new(ScriptedSource::new("broken", Duration::from_secs(10), |_| {
        Err(CollectError::Failed("connection refused".into()))
    }));
    let agent = Agent::builder()
        .rules([rule()])
        .source(depth_source(depth))
        .source(broken)
        .channel_with_policy(Arc::new(channel), policy)
        .store(store)
        .clock(Arc::new(TokioClock::starting_at(Timestamp::from_secs(1_795_000_000))))
        .evaluation_interval(Duration::from_secs(5))
        .build()
        .expect("valid agent");
    run_agent(agent)
}

/// Runs `agent` on the test's runtime until [`stop`].
fn run_agent(agent: Agent) -> Running {
    let handle = agent.handle();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        agent
            .run(async move {
                let _ = rx.await;
            })
            .await
            .expect("runs");
    });
    Running { handle, stop, task }
}

async fn stop(r: Running) {
    let _ = r.stop.send(());
    r.task.await.expect("agent task");
}

#[tokio::test(start_paused = true)]
async fn fires_delivers_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens"));
    let depth = Arc::new(AtomicU32::new(5));
    let mem = InMemoryChannel::new("mem");
    let r = start(store.clone(), mem.clone(), depth.clone(), DeliveryPolicy::default());

    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(mem.sent().is_empty());
    // The broken source is down, the good one up: one failing source stops nothing.
    let sources = r.handle.sources();
    assert!(sources["queue"].up && sources["queue"].runs >= 2, "{sources:?}");
    assert!(
        !sources["broken"].up
            && sources["broken"].last_error.as_deref() == Some("collection failed: connection refused")
    );

    depth.store(500, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let sent = mem.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, NotificationKind::Firing);
    let fired = sent[0].starts_at;
    assert_eq!(r.handle.outbox_stats().await.expect("stats").delivered, 1);
    stop(r).await;

    // A new agent on the same store: still firing from the same start, nothing resent.
    let mem2 = InMemoryChannel::new("mem");
    let r2 = start(store.clone(), mem2.clone(), depth.clone(), DeliveryPolicy::default());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(mem2.sent().is_empty(), "{:?}", mem2.sent());
    let alerts = r2.handle.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].state, alerts[0].fired_at), (AlertState::Firing, Some(fired)));

    depth.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let sent = mem2.sent();
    assert_eq!(sent.iter().map(|n| n.kind).collect::<Vec<_>>(), vec![NotificationKind::Resolved]);
    assert_eq!(sent[0].starts_at, fired);
    stop(r2).await;
}

#[tokio::test(start_paused = true)]
async fn retries_then_delivers_and_gives_up_on_permanent_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens"));
    let depth = Arc::new(AtomicU32::new(500));
    let mem = InMemoryChannel::new("mem");
    mem.fail_next([
        DeliveryError::retryable("HTTP 503: busy"),
        DeliveryError::Retryable { reason: "HTTP 429".into(), retry_after: Some(Duration::from_secs(20)) },
    ]);
    let policy = DeliveryPolicy { jitter: 0.0, ..DeliveryPolicy::default() };
    let r = start(store.clone(), mem.clone(), depth.clone(), policy);
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(mem.sent().is_empty(), "the 429's Retry-After of 20 s is honoured");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(mem.sent().len(), 1);
    let stats = r.handle.outbox_stats().await.expect("stats");
    assert_eq!((stats.delivered, stats.pending, stats.failed), (1, 0, 0));

    // A permanent failure is recorded with the receiver's answer; the alert is unaffected.
    mem.fail_next([DeliveryError::permanent("HTTP 400: invalid_payload")]);
    depth.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let failed = store.failed_deliveries(10).await.expect("reads");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].error.contains("HTTP 400: invalid_payload"), "{failed:?}");
    assert_eq!(failed[0].rule_id, "queue-stuck");
    assert!(r.handle.alerts().is_empty());
    stop(r).await;
}

/// Real exporters on loopback, in real time: Debian's prometheus-node-exporter scraped by the
/// `prometheus` source (relabelling, limits, `up`), the `host` source read beside it and
/// checked against the exporter's view of the same machine.
#[cfg(all(feature = "scrape", feature = "host-metrics"))]
mod exporters {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use thorbis_obs_core::MetricSource;
    use thorbis_obs_server::sources::SourceConfig;
    use thorbis_obs_server::sources::scrape::{ScrapeConfig, ScrapeSource};

    struct NodeExporter {
        child: Child,
        url: String,
    }

    impl Drop for NodeExporter {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn node_exporter() -> NodeExporter {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let child = Command::new("/usr/bin/prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter runs (bash scripts/test.sh installs Debian's package)");
        let url = format!("http://127.0.0.1:{port}/metrics");
        let ne = NodeExporter { child, url };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while reqwest::get(&ne.url).await.map_or(true, |r| !r.status().is_success()) {
            assert!(tokio::time::Instant::now() < deadline, "node_exporter never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ne
    }

    fn scrape(url: &str, extra: &str) -> ScrapeSource {
        let cfg: ScrapeConfig =
            toml::from_str(&format!("name = \"node\"\nurl = \"{url}\"\ninterval = \"1s\"\n{extra}")).expect("config");
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        cfg.build().expect("builds")
    }

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples.iter().find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn node_exporter_is_read_as_prometheus_reads_it() {
        let ne = node_exporter().await;
        let source = scrape(&ne.url, "");
        let now = Timestamp::from_secs(1_795_000_000);

        // The parser on one real exposition: every sample line is one series (NaN ones skipped).
        let body = reqwest::get(&ne.url).await.expect("get").text().await.expect("body");
        let lines: Vec<&str> = body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        let nan = lines.iter().filter(|l| l.ends_with(" NaN")).count();
        let read = source.read(&body, now).expect("node_exporter's exposition reads");
        assert_eq!((read.scraped, read.non_finite, read.duplicates), (lines.len(), nan, 0));
        assert_eq!(read.samples.len(), lines.len() - nan);
        assert!(read.samples.len() > 200, "{}", read.samples.len());
        // A line with many labels, read as written.
        let uname = lines.iter().find(|l| l.starts_with("node_uname_info{")).expect("uname line");
        let s = find(&read.samples, "node_uname_info", &[]).expect("uname sample");
        for (k, v) in s.labels.iter().filter(|(k, _)| !matches!(*k, "job" | "instance")) {
            assert!(uname.contains(&format!("{k}=\"{v}\"")), "{k}={v} not in {uname}");
        }

        // A collection: target labels and the scrape's own series.
        let samples = source.collect(now).await.expect("scrape");
        let up = find(&samples, "up", &[("job", "node")]).expect("up");
        assert_eq!(up.value, 1.0);
        let instance = ne.url.trim_start_matches("http://").trim_end_matches("/metrics");
        assert_eq!(up.labels.get("instance"), Some(instance));
        let scraped = find(&samples, "scrape_samples_scraped", &[]).expect("count").value;
        let kept = find(&samples, "scrape_samples_post_metric_relabeling", &[]).expect("kept").value;
        assert_eq!(kept as usize, samples.len() - 4, "every stored series but the four of the scrape");
        assert!(scraped >= kept);

        // The machine as node_exporter sees it, and as the host source does.
        let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
        let mem_kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("MemTotal");
        let ne_mem = find(&samples, "node_memory_MemTotal_bytes", &[]).expect("memory").value;
        assert_eq!(ne_mem, mem_kb * 1024.0);
        let host = SourceConfig::Host { interval: HumanDuration::from_secs(1) }.build().expect("host source");
        let h = host.collect(now).await.expect("host");
        assert_eq!(find(&h, "host_memory_total_bytes", &[]).expect("host memory").value, ne_mem);
        let cpus: std::collections::BTreeSet<_> = samples
            .iter()
            .filter(|s| s.name == "node_cpu_seconds_total")
            .filter_map(|s| s.labels.get("cpu").map(str::to_string))
            .collect();
        assert_eq!(find(&h, "host_cpu_count", &[]).expect("cpus").value, cpus.len() as f64);
        let root = [("mountpoint", "/")];
        let ne_size = find(&samples, "node_filesystem_size_bytes", &root).expect("root size").value;
        assert_eq!(find(&h, "host_filesystem_size_bytes", &root).expect("host root size").value, ne_size);
        let ne_avail = find(&samples, "node_filesystem_avail_bytes", &root).expect("root avail").value;
        let h_avail = find(&h, "host_filesystem_avail_bytes", &root).expect("host root avail").value;
        assert!((h_avail - ne_avail).abs() <= ne_size * 0.01, "{h_avail} vs {ne_avail}");
        let ratio = find(&h, "host_filesystem_used_ratio", &root).expect("ratio").value;
        assert!((ratio - (1.0 - ne_avail / ne_size)).abs() < 0.01, "{ratio}");

        // Relabelling: keep and drop on the name, extra labels.
        let only = scrape(
            &ne.url,
            "keep = \"node_load.*|node_memory_.*\"\ndrop = \"node_memory_.*\"\nlabels = { env = \"prod\" }",
        );
        let kept = only.collect(now).await.expect("scrape");
        let mut names: Vec<_> = kept.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names,
            [
                "node_load1",
                "node_load15",
                "node_load5",
                "scrape_duration_seconds",
                "scrape_samples_post_metric_relabeling",
                "scrape_samples_scraped",
                "up"
            ]
        );
        assert!(kept.iter().all(|s| s.labels.get("env") == Some("prod")));

        // sample_limit fails the whole scrape; so does a dead target, and `up` goes to 0.
        let limited = scrape(&ne.url, "sample_limit = 10");
        let e = limited.collect(now).await.expect_err("over the limit");
        assert!(e.to_string().contains("more than sample_limit = 10"), "{e}");
        drop(ne);
        let e = source.collect(now).await.expect_err("the exporter is gone");
        assert!(e.to_string().contains("connection failed"), "{e}");
        let down = source.failure_samples(now);
        assert_eq!(find(&down, "up", &[("job", "node")]).map(|s| s.value), Some(0.0));
    }

    /// Through the agent: the exporter stops, `up` drops to 0 and a rule on it pages once.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_dead_exporter_pages_through_up() {
        let ne = node_exporter().await;
        let mut down = rule();
        down.id = "exporter-down".into();
        down.name = "Exporter Down".into();
        down.metric = "up".into();
        down.condition.operator = Operator::LessThan;
        down.condition.threshold = 1.0;
        down.condition.duration = HumanDuration::from_secs(2);
        down.condition.aggregation = Aggregation::Last;
        let mem = InMemoryChannel::new("mem");
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens"));
        let agent = Agent::builder()
            .rules([down])
            .store(store)
            .source(Arc::new(scrape(&ne.url, "")))
            .source(SourceConfig::Host { interval: HumanDuration::from_secs(1) }.build().expect("host"))
            .channel(Arc::new(mem.clone()))
            .evaluation_interval(Duration::from_millis(200))
            .build()
            .expect("valid agent");
        let running = run_agent(agent);
        let handle = running.handle.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !handle.sources().values().filter(|h| h.up).count().eq(&2) {
            assert!(tokio::time::Instant::now() < deadline, "sources never up: {:?}", handle.sources());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(mem.sent().is_empty(), "{:?}", mem.sent());
        drop(ne);
        while mem.sent().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "no page: {:?}", handle.sources());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent = mem.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].kind, NotificationKind::Firing);
        assert_eq!(sent[0].labels.get("job"), Some("node"));
        assert!(!handle.sources()["node"].up);
        stop(running).await;
    }
}
