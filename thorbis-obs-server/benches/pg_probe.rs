//! Our full PostgreSQL probe cycle against `prometheus-postgres-exporter` (Debian, 0.11) on the
//! same database in one run: wall time per collection (median), client CPU per collection,
//! queries issued per collection (counted by pg_stat_statements per role).
//! Run: `bash scripts/bench-pg-probe.sh` (starts a throwaway cluster and the exporter).

use std::time::{Duration, Instant};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::postgres::{PostgresProbe, ProbeSettings};

const N: usize = 30;

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn queries_by(admin: &tokio_postgres::Client, role: &str) -> f64 {
    admin
        .query_one(
            "SELECT COALESCE(sum(calls), 0)::float8 FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = $1",
            &[&role],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("THORBIS_TEST_PG_URL")?;
    let exporter_bin = std::env::var("EXPORTER_BIN").unwrap_or_else(|_| "/usr/bin/prometheus-postgres-exporter".into());
    let (root, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    root.batch_execute("DROP DATABASE IF EXISTS bench_probe").await?;
    root.batch_execute("CREATE DATABASE bench_probe").await?;
    let db = format!("{}/bench_probe", &base[..base.rfind('/').ok_or("url")?]);
    let (admin, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    admin
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             DO $$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'probe_ours') THEN CREATE ROLE probe_ours LOGIN; END IF;
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'probe_exporter') THEN CREATE ROLE probe_exporter LOGIN; END IF;
             END $$;
             GRANT pg_monitor TO probe_ours, probe_exporter;
             CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text);
             INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING;",
        )
        .await?;
    let host_port = base.split('@').nth(1).and_then(|r| r.split('/').next()).ok_or("url")?.to_string();

    // The exporter.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut exporter = std::process::Command::new(&exporter_bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env("DATA_SOURCE_NAME", format!("postgresql://probe_exporter@{host_port}/bench_probe?sslmode=disable"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(&url).send().await {
            text = r.text().await.unwrap_or_default();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.batch_execute("SELECT pg_stat_statements_reset()").await?;
    let cpu0 = cpu_seconds(exporter.id());
    let mut wall = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        text = http.get(&url).send().await?.text().await?;
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let exp_cpu = (cpu_seconds(exporter.id()) - cpu0) / N as f64 * 1000.0;
    let exp_queries = queries_by(&admin, "probe_exporter").await / N as f64;
    let exp_wall = median(wall);
    let _ = exporter.kill();
    let _ = exporter.wait();
    let exp_has = |m: &str| text.lines().any(|l| l.starts_with(m));

    // Ours: the full cycle (every section), one probe keeping its connection, as in the agent.
    let probe = PostgresProbe::new(
        "pg",
        &format!("postgres://probe_ours@{host_port}/bench_probe"),
        Duration::from_secs(60),
        ProbeSettings::default(),
    );
    probe.collect_report(Timestamp(0)).await?;
    admin.batch_execute("SELECT pg_stat_statements_reset()").await?;
    let me = std::process::id();
    let cpu0 = cpu_seconds(me);
    let mut wall = Vec::new();
    let mut report = None;
    for _ in 0..N {
        let t = Instant::now();
        report = Some(probe.collect_report(Timestamp(0)).await?);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let our_cpu = (cpu_seconds(me) - cpu0) / N as f64 * 1000.0;
    let our_queries = queries_by(&admin, "probe_ours").await / N as f64;
    let our_wall = median(wall);
    let r = report.ok_or("no report")?;
    println!("PostgreSQL probe vs prometheus-postgres-exporter 0.11, same database, {N} collections each:");
    println!(
        "  wall per collection (median): ours {our_wall:.2} ms, exporter {exp_wall:.2} ms -> ratio {:.2}",
        our_wall / exp_wall
    );
    println!(
        "  client CPU per collection:    ours {our_cpu:.2} ms, exporter {exp_cpu:.2} ms (10 ms clock ticks: coarse)"
    );
    println!("  queries per collection:       ours {our_queries:.1}, exporter {exp_queries:.1}");
    println!(
        "  spec metrics the exporter lacks: blocked queries ({}), slow/frequent statements ({}), long-running count ({}); ours: {} samples, {} slowest, {} frequent",
        if exp_has("pg_blocked") { "has" } else { "missing" },
        if exp_has("pg_stat_statements") { "has" } else { "missing" },
        if exp_has("pg_long_running") { "has" } else { "missing" },
        r.samples.len(),
        r.slowest.len(),
        r.most_frequent.len()
    );
    Ok(())
}
