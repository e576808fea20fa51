//! The trace store's list query over a store holding 1,000,000 spans (100,000 kept traces of
//! ten spans, 50 services x 40 routes, 2% errors, durations spread 1..5,000 ms, an hour of
//! starts), through the [`Store`] trait, side by side with the same question asked of the
//! same SQLite file directly (rusqlite, a hand-written `SELECT`, no trait, no row mapping
//! beyond the id): medians of 21 runs each, for the queries the page and the API make.
//!
//! `cargo run --release -p thorbis-obs-server --example trace_list_bench -- [DIR]`
//! (the SQLite file goes into DIR, default a temporary directory; it is left there). With
//! `THORBIS_TEST_PG_URL` set, the same rows go into that PostgreSQL too (its `traces` table
//! emptied first) and the queries run there, beside the same SQL sent by tokio-postgres.

use std::time::Instant;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::store::sqlite::SqliteStore;
use thorbis_obs_server::store::{Store, TraceQuery, TraceRow, TraceSummary};

const TRACES: i64 = 100_000;
const SPANS_PER_TRACE: i64 = 10;
const RUNS: usize = 21;
const START: i64 = 1_800_000_000_000;

fn row(i: i64) -> TraceRow {
    // A deterministic spread: a multiplicative hash of the index.
    let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    TraceRow {
        summary: TraceSummary {
            trace_id: format!("{:032x}", (i as u128) * 0x1_0000_0001),
            start: Timestamp(START + i * 36),
            duration_ms: 1.0 + (h % 5_000) as f64,
            service: format!("svc-{}", h % 50),
            route: format!("/api/r{}/{{id}}", h % 40),
            name: "GET".into(),
            services: "web,api,db".into(),
            span_count: SPANS_PER_TRACE,
            error: h % 50 == 0,
            policy: "probabilistic".into(),
            bytes: 600,
        },
        data: vec![0u8; 600],
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("thorbis-trace-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("traces.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path)?;
    let t = Instant::now();
    for chunk in (0..TRACES).collect::<Vec<_>>().chunks(5_000) {
        let rows: Vec<TraceRow> = chunk.iter().map(|&i| row(i)).collect();
        store.record_traces(&rows).await?;
    }
    println!(
        "store: {} traces, {} spans, written in {:.1} s ({})",
        TRACES,
        TRACES * SPANS_PER_TRACE,
        t.elapsed().as_secs_f64(),
        path.display()
    );
    let plain = rusqlite::Connection::open(&path)?;
    println!("SQLite:");
    compare(&store, async |filter: &str| -> Result<usize, Box<dyn std::error::Error>> {
        let mut st = plain.prepare_cached(&format!(
            "SELECT trace_id, start_ms, duration_ms, service, route FROM traces {filter} ORDER BY start_ms DESC LIMIT 100"
        ))?;
        Ok(st.query_map([], |r| r.get::<_, String>(0))?.count())
    })
    .await?;
    // The same rows in PostgreSQL, when a server is given (its `traces` table is emptied).
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("THORBIS_TEST_PG_URL") {
        let pg = thorbis_obs_server::store::postgres::PostgresStore::connect(&url).await?;
        pg.prune_traces(Timestamp(i64::MAX), 0).await?;
        let t = Instant::now();
        for chunk in (0..TRACES).collect::<Vec<_>>().chunks(5_000) {
            let rows: Vec<TraceRow> = chunk.iter().map(|&i| row(i)).collect();
            pg.record_traces(&rows).await?;
        }
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client.execute("ANALYZE traces", &[]).await?;
        println!("PostgreSQL: {} traces written in {:.1} s", TRACES, t.elapsed().as_secs_f64());
        let error_as_int = |f: &str| f.replace("error = 1", "error = 1::integer");
        compare(&pg, async |filter: &str| -> Result<usize, Box<dyn std::error::Error>> {
            let sql = format!(
                "SELECT trace_id, start_ms, duration_ms, service, route FROM traces {} ORDER BY start_ms DESC LIMIT 100",
                error_as_int(filter)
            );
            Ok(client.query(&sql, &[]).await?.len())
        })
        .await?;
    }
    Ok(())
}

/// The list queries through `store` and through `plain` (a hand-written query with the given
/// filter, the peer): medians of [`RUNS`] each.
async fn compare(
    store: &dyn Store,
    mut plain: impl AsyncFnMut(&str) -> Result<usize, Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let cases: [(&str, TraceQuery, String); 4] = [
        ("newest 100", TraceQuery { limit: 100, ..TraceQuery::default() }, String::new()),
        (
            "one service and route, newest 100",
            TraceQuery {
                service: Some("svc-7".into()),
                route: Some("/api/r7/{id}".into()),
                limit: 100,
                ..TraceQuery::default()
            },
            "WHERE service = 'svc-7' AND route = '/api/r7/{id}'".into(),
        ),
        (
            "errors, newest 100",
            TraceQuery { error: Some(true), limit: 100, ..TraceQuery::default() },
            "WHERE error = 1".into(),
        ),
        (
            "slower than 4,500 ms in the last 10 min, newest 100",
            TraceQuery {
                min_duration_ms: Some(4_500.0),
                from: Some(Timestamp(START + TRACES * 36 - 600_000)),
                limit: 100,
                ..TraceQuery::default()
            },
            format!("WHERE duration_ms >= 4500 AND start_ms >= {}", START + TRACES * 36 - 600_000),
        ),
    ];
    println!("{:<52} {:>12} {:>12} {:>7}", "query", "store (ms)", "plain (ms)", "ratio");
    for (name, q, filter) in cases {
        let mut ours = Vec::new();
        let mut bare = Vec::new();
        let mut found = (0, 0);
        for _ in 0..RUNS {
            let t = Instant::now();
            found.0 = store.traces(&q).await?.len();
            ours.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            found.1 = plain(&filter).await?;
            bare.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(found.0, found.1, "{name}: both see the same rows");
        assert!(found.0 > 0, "{name}: the query finds traces");
        let (o, b) = (median(ours), median(bare));
        println!("{name:<52} {o:>12.3} {b:>12.3} {:>7.2}", o / b.max(1e-9));
    }
    Ok(())
}
