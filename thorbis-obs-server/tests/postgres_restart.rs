//! The PostgreSQL server stops and restarts while the probe runs: the collection fails with
//! "database unreachable" (the agent records `thorbis_source_up 0`), never panics, and the
//! probe recovers by itself once the server is back. An agent whose store is on that server
//! keeps leading through the outage: an alert that fires meanwhile is paged from memory, once,
//! and not again when the store is back. Its own test binary, since it restarts the shared
//! throwaway cluster (cargo runs test binaries one after another).
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use thorbis_obs_core::engine::NotificationKind;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::agent::{Agent, system_now};
use thorbis_obs_server::sources::postgres::{PostgresProbe, ProbeSettings, Section};
use thorbis_obs_server::store::postgres::PostgresStore;

fn pg_ctl(action: &str) {
    let ctl = std::env::var("THORBIS_TEST_PG_CTL").expect("THORBIS_TEST_PG_CTL is set by scripts/test.sh");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{ctl} -m fast -w {action} >/dev/null"))
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl {action}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_survives_a_server_restart_and_the_agent_says_its_store_is_down() {
    let url = support::pg::fresh_database("thorbis_restart").await;
    let settings = ProbeSettings { sections: vec![Section::Connections, Section::Health], ..ProbeSettings::default() };
    // A short interval keeps the reconnect backoff short.
    let probe = PostgresProbe::new("pg", &url, Duration::from_millis(200), settings);
    assert!(probe.collect_report(Timestamp(0)).await.is_ok());
    // An agent on the same server, its store: while the store is down, /readyz fails and
    // thorbis_store_up says 0; when it is back, both recover.
    let store_url = support::pg::fresh_database("thorbis_restart_store").await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let rules = support::orders_failing_to_mem();
    let mem = InMemoryChannel::new("mem");
    let firing = |mem: &InMemoryChannel| mem.sent().iter().filter(|n| n.kind == NotificationKind::Firing).count();
    let agent = Agent::builder()
        .rules(rules)
        .channel(Arc::new(mem.clone()))
        .store(Arc::new(PostgresStore::connect(&store_url).await.expect("store")))
        .evaluation_interval(Duration::from_millis(200))
        .http(addr, None)
        .build()
        .expect("valid");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let ready = |c: reqwest::Client| async move {
        let status = c.get(format!("http://{addr}/readyz")).send().await.ok()?.status().as_u16();
        let m = c.get(format!("http://{addr}/metrics")).send().await.ok()?.text().await.ok()?;
        let up = m.lines().find_map(|l| l.strip_prefix("thorbis_store_up ")).map(|v| v.trim().to_string())?;
        Some((status, up))
    };
    support::eventually("the agent ready", Duration::from_secs(30), async || {
        ready(c.clone()).await == Some((200, "1".into()))
    })
    .await;
    pg_ctl("stop");
    support::eventually("/readyz and thorbis_store_up to say the store is down", Duration::from_secs(30), async || {
        ready(c.clone()).await == Some((503, "0".into()))
    })
    .await;
    // Orders start failing while the store is down: the leader pages from memory.
    handle.push(&Sample::new("orders_failed", Labels::new(), 10.0, system_now())).expect("sample");
    support::eventually("the page delivered while the store is down", Duration::from_secs(30), async || {
        firing(&mem) == 1
    })
    .await;
    assert!(handle.is_leader(), "still leading while the store is down");
    let e = probe.collect_report(Timestamp(0)).await.expect_err("the server is down");
    assert!(e.to_string().contains("database unreachable") || e.to_string().contains("collection failed"), "{e}");
    let e = probe.collect_report(Timestamp(0)).await.expect_err("still down");
    assert!(e.to_string().contains("database unreachable"), "{e}");
    pg_ctl("start");
    let start = Instant::now();
    loop {
        match probe.collect_report(Timestamp(0)).await {
            Ok(r) => {
                assert!(r.samples.iter().any(|s| s.name == "pg_database_size_bytes"));
                break;
            }
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(20), "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    support::eventually("the agent ready again, its outbox empty", Duration::from_secs(30), async || {
        ready(c.clone()).await == Some((200, "1".into())) && handle.outbox_stats().await.is_ok_and(|s| s.pending == 0)
    })
    .await;
    assert!(handle.is_leader(), "the lease renewed after the outage");
    assert_eq!(firing(&mem), 1, "paged once: {:#?}", mem.sent());
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
