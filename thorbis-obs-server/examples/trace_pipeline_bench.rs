//! The trace store's pipeline, in-process: spans through assembly (core's `TraceBuffer`), tail
//! sampling and storage (SQLite; PostgreSQL too when `THORBIS_TEST_PG_URL` is set), with the
//! service's own decision round called once a simulated second, as its run loop does once a
//! real one.
//!
//! The load: 1,000,000 spans (100,000 traces of ten spans: a server root and nine children
//! with the attributes an HTTP or database span carries, 5 services x 40 routes, 2% of traces
//! with an error, root durations spread 1..5,000 ms), handed over in batches of 512 spans as
//! the OTLP intake hands them, on a clock that advances one second per 20,000 spans: the
//! buffer holds what 20,000 spans/s with a 10 s decision wait holds.
//!
//! Printed per store: the wall time and spans/s through everything (add, decide, compress and
//! store the kept traces, the last round included), the traces kept by policy, the buffer's
//! peak (spans, bytes as it counts them) and the process RSS before and at the peak; then the
//! same load with the default 32 MiB buffer bound, which decides traces early.
//!
//! `cargo run --release -p thorbis-obs-server --example trace_pipeline_bench`
//! (PostgreSQL: `THORBIS_TEST_PG_URL=postgres://... cargo run ...`; its `traces` table is
//! emptied first). The example runs on the system allocator; the agent binary uses mimalloc.

use std::sync::Arc;
use std::time::{Duration, Instant};
use thorbis_obs_core::engine::RuleEngine;
use thorbis_obs_core::time::{HumanDuration, Timestamp};
use thorbis_obs_core::traces::TraceSpan;
use thorbis_obs_server::clock::TokioClock;
use thorbis_obs_server::hub::Hub;
use thorbis_obs_server::store::{Store, TraceQuery};
use thorbis_obs_server::traces::{TraceService, TracesSection};

const TRACES: u64 = 100_000;
const SPANS_PER_TRACE: u64 = 10;
const BATCH: usize = 512;
const RATE: u64 = 20_000;
const START_MS: i64 = 1_800_000_000_000;

/// The spans of trace `i`: deterministic, by a multiplicative hash of the index.
fn trace(i: u64) -> Vec<TraceSpan> {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&i.to_be_bytes());
    id[8..].copy_from_slice(&h.to_be_bytes());
    let start = u64::try_from(START_MS).unwrap_or(0) * 1_000_000 + i * 500_000;
    let duration = (1 + h % 5_000) * 1_000_000;
    let route = format!("/api/r{}/{{id}}", h % 40);
    let service = format!("svc-{}", h % 5);
    let error = h % 50 == 0;
    (0..SPANS_PER_TRACE)
        .map(|k| {
            let mut span_id = [0u8; 8];
            span_id[..7].copy_from_slice(&i.to_be_bytes()[1..]);
            span_id[7] = k as u8 + 1;
            let parent = (k > 0).then(|| {
                let mut p = span_id;
                p[7] = 1;
                p
            });
            let (name, attributes) = if k == 0 {
                (
                    format!("GET {route}"),
                    vec![
                        ("http.request.method".into(), "GET".into()),
                        ("http.route".into(), route.clone()),
                        ("url.path".into(), format!("/api/r{}/{}", h % 40, i)),
                        ("http.response.status_code".into(), if error { "500" } else { "200" }.into()),
                        ("server.address".into(), "api.thorbis.test".into()),
                    ],
                )
            } else {
                (
                    "SELECT work_orders".into(),
                    vec![
                        ("db.system".into(), "postgresql".into()),
                        ("db.statement".into(), "SELECT * FROM work_orders WHERE id = $1".into()),
                        ("db.name".into(), "thorbis".into()),
                    ],
                )
            };
            let child_start = start + k * duration / 20;
            TraceSpan {
                trace_id: id,
                span_id,
                parent,
                service: service.clone(),
                name,
                kind: if k == 0 { 2 } else { 3 },
                start_ns: if k == 0 { start } else { child_start },
                end_ns: if k == 0 { start + duration } else { child_start + duration / 20 },
                error: error && k == SPANS_PER_TRACE - 1,
                status_message: String::new(),
                route: (k == 0).then(|| route.clone()),
                attributes,
                events: Vec::new(),
            }
        })
        .collect()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One run over `store`; prints its line.
async fn run(label: &str, store: Arc<dyn Store>, cfg: TracesSection) -> Result<(), Box<dyn std::error::Error>> {
    let engine = RuleEngine::new(Vec::new()).map_err(|e| format!("{e:?}"))?;
    let hub = Arc::new(Hub::new(engine, store.clone(), Arc::new(TokioClock::new())));
    let wait = cfg.decision_wait.get();
    let svc = TraceService::new(hub, cfg);
    let rss0 = rss_mb();
    let (mut peak_spans, mut peak_bytes, mut peak_rss) = (0usize, 0usize, 0f64);
    let mut batch = Vec::with_capacity(BATCH);
    let mut sent = 0u64;
    let mut second = 0u64;
    let now = |sent: u64| Timestamp(START_MS + i64::try_from(sent * 1000 / RATE).unwrap_or(0));
    let t = Instant::now();
    for i in 0..TRACES {
        for s in trace(i) {
            batch.push(s);
            if batch.len() == BATCH {
                sent += BATCH as u64;
                svc.add(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)), now(sent));
            }
        }
        if sent / RATE > second {
            second = sent / RATE;
            peak_spans = peak_spans.max(svc.held());
            if svc.held_bytes() > peak_bytes {
                peak_bytes = svc.held_bytes();
                peak_rss = rss_mb();
            }
            svc.round(now(sent)).await;
        }
    }
    sent += batch.len() as u64;
    svc.add(batch, now(sent));
    // The last traces go quiet, the slowest window closes: everything decided and stored.
    let end = now(sent).plus(wait + Duration::from_secs(120));
    svc.round(end).await;
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(svc.held(), 0, "every trace decided");
    let stored = count(&*store).await?;
    println!(
        "{label:<40} {sent} spans in {wall:.2} s = {:>9.0} spans/s; traces stored {stored}; buffer peak {peak_spans} spans, \
         {:.1} MiB counted; RSS {rss0:.1} MB before, {peak_rss:.1} MB at the peak",
        sent as f64 / wall,
        peak_bytes as f64 / (1 << 20) as f64,
    );
    Ok(())
}

/// Traces stored, by policy, through the list API (newest 1,000 per policy page).
async fn count(store: &dyn Store) -> Result<String, Box<dyn std::error::Error>> {
    let mut total = 0;
    let mut before = None;
    let mut by: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    loop {
        let page = store.traces(&TraceQuery { to: before, limit: 1000, ..TraceQuery::default() }).await?;
        if page.is_empty() {
            break;
        }
        total += page.len();
        for t in &page {
            *by.entry(t.policy.clone()).or_default() += 1;
        }
        before = page.last().map(|t| t.start);
        if page.len() < 1000 {
            break;
        }
    }
    Ok(format!("{total} {by:?}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sized = TracesSection {
        max_buffer_spans: 1_000_000,
        max_buffer_bytes: 512 << 20,
        window: HumanDuration::from_secs(60),
        ..TracesSection::default()
    };
    let dir = tempfile::tempdir()?;
    let sqlite = |name: &str| -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
        Ok(Arc::new(thorbis_obs_server::store::sqlite::SqliteStore::open(&dir.path().join(name))?))
    };
    // Each run in a process of its own, so one's freed memory does not blur the next's RSS.
    match std::env::args().nth(1).as_deref() {
        Some("sqlite-sized") => run("SQLite, buffer sized (512 MiB)", sqlite("a.db")?, sized).await?,
        Some("sqlite-default") => {
            run("SQLite, default buffer (32 MiB)", sqlite("b.db")?, TracesSection::default()).await?
        }
        #[cfg(feature = "postgres")]
        Some("postgres-sized") => {
            let url = std::env::var("THORBIS_TEST_PG_URL")?;
            let pg = thorbis_obs_server::store::postgres::PostgresStore::connect(&url).await?;
            pg.prune_traces(Timestamp(i64::MAX), 0).await?;
            run("PostgreSQL, buffer sized (512 MiB)", Arc::new(pg), sized).await?;
        }
        _ => {
            println!(
                "{} spans ({} traces of {}), {} spans/s simulated, decision wait 10 s, batches of {}; 2-core machine",
                TRACES * SPANS_PER_TRACE,
                TRACES,
                SPANS_PER_TRACE,
                RATE,
                BATCH
            );
            let mut runs = vec!["sqlite-sized", "sqlite-default"];
            if cfg!(feature = "postgres") && std::env::var("THORBIS_TEST_PG_URL").is_ok() {
                runs.push("postgres-sized");
            }
            for r in runs {
                let status = std::process::Command::new(std::env::current_exe()?).arg(r).status()?;
                if !status.success() {
                    return Err(format!("{r} failed").into());
                }
            }
        }
    }
    Ok(())
}
