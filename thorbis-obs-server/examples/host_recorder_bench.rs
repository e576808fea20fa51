//! Throughput of `host::MetricsRecorder` against metrics-exporter-prometheus's recorder (0.18)
//! doing the same job: two threads at once, each calling the `metrics` macros as a host's code
//! and its dependencies do (`counter!` with a label, looked up on every call; `histogram!`
//! likewise; and increments on a counter handle the code keeps), in alternating rounds; medians
//! of operations per second across both threads, and the ratio ours/theirs. Then each
//! recorder's export of what was recorded (our samples, their Prometheus text), to show both
//! counted every call.
//!
//! `cargo run --release -p thorbis-obs-server --example host_recorder_bench`

use metrics::Recorder;
use std::sync::Arc;
use std::time::Instant;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::host::MetricsRecorder;

const OPS: u64 = 2_000_000;
const ROUNDS: usize = 7;
const THREADS: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Op {
    CounterMacro,
    HistogramMacro,
    CounterHandle,
}

/// Operations per second of `op` on `recorder` from `THREADS` threads, `OPS` each.
fn throughput(recorder: Arc<dyn Recorder + Send + Sync>, op: Op) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let r = recorder.clone();
            std::thread::spawn(move || {
                let _guard = metrics::set_default_local_recorder(&*r);
                let route = if t == 0 { "/invoices/{id}" } else { "/users/{id}" };
                match op {
                    Op::CounterMacro => {
                        for _ in 0..OPS {
                            metrics::counter!("http_hits", "route" => route).increment(1);
                        }
                    }
                    Op::HistogramMacro => {
                        for i in 0..OPS {
                            metrics::histogram!("db_query_ms", "route" => route).record((i % 500) as f64);
                        }
                    }
                    Op::CounterHandle => {
                        let c = metrics::counter!("jobs", "queue" => route);
                        for _ in 0..OPS {
                            c.increment(1);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    (OPS * THREADS as u64) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let ours = MetricsRecorder::new("bench", "bench");
    let theirs = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let theirs_page = theirs.handle();
    let ours_dyn: Arc<dyn Recorder + Send + Sync> = Arc::new(ours.clone());
    let theirs_dyn: Arc<dyn Recorder + Send + Sync> = Arc::new(theirs);
    println!("{OPS} operations per thread, {THREADS} threads, {ROUNDS} alternating rounds, medians; 2-core machine");
    for op in [Op::CounterMacro, Op::HistogramMacro, Op::CounterHandle] {
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            o.push(throughput(ours_dyn.clone(), op));
            t.push(throughput(theirs_dyn.clone(), op));
            // Histograms are drained by each exporter's scrape; do it between rounds as a
            // scrape would, so neither holds millions of values.
            let _ = ours.take_samples(Timestamp(0));
            let _ = theirs_page.render();
        }
        let (o, t) = (median(o), median(t));
        println!(
            "{op:?}: thorbis-obs {:.1} M ops/s; metrics-exporter-prometheus {:.1} M ops/s; ours/theirs {:.2}x",
            o / 1e6,
            t / 1e6,
            o / t
        );
    }
    let samples = ours.take_samples(Timestamp(0));
    let hits: f64 = samples.iter().filter(|s| s.name == "http_hits_total").map(|s| s.value).sum();
    let page = theirs_page.render();
    let theirs_hits: f64 = page
        .lines()
        .filter(|l| l.starts_with("http_hits{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!(
        "counted http_hits: ours {hits}, theirs {theirs_hits} (each {} expected)",
        OPS * (THREADS * ROUNDS) as u64
    );
}
