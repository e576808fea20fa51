//! The PostgreSQL server stops and restarts while the probe runs: the collection fails with
//! "database unreachable" (the agent records `thorbis_source_up 0`), never panics, and the
//! probe recovers by itself once the server is back. Its own test binary, since it restarts
//! the shared throwaway cluster (cargo runs test binaries one after another).
#![cfg(feature = "postgres")]

mod support;

use std::time::{Duration, Instant};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::postgres::{PostgresProbe, ProbeSettings, Section};

fn pg_ctl(action: &str) {
    let ctl = std::env::var("THORBIS_TEST_PG_CTL").expect("THORBIS_TEST_PG_CTL is set by scripts/test.sh");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{ctl} -m fast -w {action} >/dev/null"))
        .status()
        .expect("pg_ctl runs");
    assert!(status.success(), "pg_ctl {action}");
}

#[tokio::test]
async fn the_probe_survives_a_server_restart() {
    let url = support::pg::fresh_database("thorbis_restart").await;
    let settings = ProbeSettings { sections: vec![Section::Connections, Section::Health], ..ProbeSettings::default() };
    // A short interval keeps the reconnect backoff short.
    let probe = PostgresProbe::new("pg", &url, Duration::from_millis(200), settings);
    assert!(probe.collect_report(Timestamp(0)).await.is_ok());
    pg_ctl("stop");
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
}
