//! Replication lag on both sides: a streaming standby made with pg_basebackup from the
//! throwaway cluster. The standby reports the time since its last replayed transaction, the
//! primary the largest replay lag of its replicas.
#![cfg(feature = "postgres")]

use std::time::Duration;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::postgres::{PostgresProbe, ProbeSettings, Section};

fn sh(cmd: &str) {
    let ok = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("sh runs").success();
    assert!(ok, "failed: {cmd}");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by scripts/test.sh"))
}

fn lag(r: &thorbis_obs_server::sources::postgres::ProbeReport) -> f64 {
    r.samples.iter().find(|s| s.name == "pg_replication_lag_seconds").map(|s| s.value).expect("lag reported")
}

#[tokio::test]
async fn replication_lag_on_primary_and_standby() {
    let primary = env("THORBIS_TEST_PG_URL");
    let (bindir, tmp, as_pg) = (
        env("THORBIS_TEST_PG_BINDIR"),
        env("THORBIS_TEST_PG_TMP"),
        std::env::var("THORBIS_TEST_PG_AS").unwrap_or_default(),
    );
    let port = primary.rsplit(':').next().and_then(|r| r.split('/').next()).expect("port").to_string();
    let sport = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let standby = format!("{tmp}/standby-{}", std::process::id());
    sh(&format!(
        "{as_pg} {bindir}/pg_basebackup --checkpoint=fast -D {standby} -R -X stream -h 127.0.0.1 -p {port} -U postgres"
    ));
    sh(&format!(
        "{as_pg} {bindir}/pg_ctl -D {standby} -l {standby}.log -w -o '-p {sport} -k {tmp} -c listen_addresses=127.0.0.1 -c hot_standby=on -c shared_preload_libraries=pg_stat_statements' start >/dev/null"
    ));
    let settings = || ProbeSettings { sections: vec![Section::Health], ..ProbeSettings::default() };
    let on_standby = PostgresProbe::new(
        "standby",
        &format!("postgres://postgres@127.0.0.1:{sport}/postgres"),
        Duration::from_secs(1),
        settings(),
    );
    let on_primary = PostgresProbe::new("primary", &primary, Duration::from_secs(1), settings());
    // A write on the primary, replayed on the standby.
    let (c, conn) = tokio_postgres::connect(&primary, tokio_postgres::NoTls).await.expect("primary");
    tokio::spawn(conn);
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS replica_probe (t timestamptz); INSERT INTO replica_probe VALUES (now())",
    )
    .await
    .expect("write");
    let mut replicas = 0i64;
    for _ in 0..100 {
        replicas = c.query_one("SELECT count(*) FROM pg_stat_replication", &[]).await.expect("replicas").get(0);
        if replicas > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replicas, 1, "the standby streams from the primary");
    let s = on_standby.collect_report(Timestamp(0)).await.expect("standby collects");
    let p = on_primary.collect_report(Timestamp(0)).await.expect("primary collects");
    sh(&format!(
        "{as_pg} {bindir}/pg_ctl -D {standby} -m immediate -w stop >/dev/null; rm -rf {standby} {standby}.log"
    ));
    let (ls, lp) = (lag(&s), lag(&p));
    assert!((0.0..60.0).contains(&ls), "standby: seconds since the last replayed transaction: {ls}");
    assert!((0.0..60.0).contains(&lp), "primary: largest replay lag: {lp}");
}
