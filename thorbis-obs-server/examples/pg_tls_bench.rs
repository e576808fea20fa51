//! TLS against plain TCP to the same local PostgreSQL cluster (ssl on, both allowed): the
//! connection's set-up (connect and a first `SELECT 1`), a small query on an open connection,
//! and the probe's full collection on an open connection, 30 runs each, alternating plain,
//! `sslmode=require` and `sslmode=verify-full`; medians and the ratio to plain.
//!
//! `bash scripts/bench-pg-tls.sh` (starts a throwaway cluster with a certificate made by
//! openssl, and sets THORBIS_TEST_PG_URL and PG_TLS_ROOT).

use std::time::{Duration, Instant};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::postgres::{PostgresProbe, ProbeSettings};

const N: usize = 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("THORBIS_TEST_PG_URL")?;
    let root = std::env::var("PG_TLS_ROOT")?;
    let localhost = base.replace("127.0.0.1", "localhost");
    let modes = [
        ("plain", format!("{base}?sslmode=disable")),
        ("require", format!("{base}?sslmode=require")),
        ("verify-full", format!("{localhost}?sslmode=verify-full&sslrootcert={root}")),
    ];
    // Every mode connects as it says.
    for (name, url) in &modes {
        let c = thorbis_obs_server::pg::connect(url, "bench").await?;
        let ssl: bool = c.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?.get(0);
        println!("{name}: ssl {ssl}");
    }
    let mut setup = vec![Vec::new(); modes.len()];
    let mut query = vec![Vec::new(); modes.len()];
    let mut probe = vec![Vec::new(); modes.len()];
    let probes: Vec<PostgresProbe> = modes
        .iter()
        .map(|(name, url)| PostgresProbe::new(name, url, Duration::from_secs(15), ProbeSettings::default()))
        .collect();
    let clients = {
        let mut v = Vec::new();
        for (_, url) in &modes {
            v.push(thorbis_obs_server::pg::connect(url, "bench").await?);
        }
        v
    };
    for p in &probes {
        p.collect_report(Timestamp(0)).await?; // connects, warms up
    }
    for _ in 0..N {
        for (i, (_, url)) in modes.iter().enumerate() {
            let t = Instant::now();
            let c = thorbis_obs_server::pg::connect(url, "bench").await?;
            c.query_one("SELECT 1", &[]).await?;
            setup[i].push(t.elapsed().as_secs_f64() * 1e3);
            drop(c);
            let t = Instant::now();
            clients[i].query("SELECT id, md5(id::text) FROM generate_series(1, 100) id", &[]).await?;
            query[i].push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            probes[i].collect_report(Timestamp(0)).await?;
            probe[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (s0, q0, p0) = (median(setup[0].clone()), median(query[0].clone()), median(probe[0].clone()));
    println!("{N} runs each, alternating, medians (ms; ratio to plain):");
    for (i, (name, _)) in modes.iter().enumerate() {
        let (s, q, p) = (median(setup[i].clone()), median(query[i].clone()), median(probe[i].clone()));
        println!(
            "  {name:11}: connect + SELECT 1 {s:.3} ({:.2}x); 100-row query {q:.3} ({:.2}x); probe collection {p:.3} ({:.2}x)",
            s / s0,
            q / q0,
            p / p0
        );
    }
    Ok(())
}
