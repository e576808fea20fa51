//! Benchmarks of thorbis-obs-core.
//! Core benchmarks: window ingest throughput and one evaluation tick of 1,000 rules over
//! 10,000 series. Run with `cargo bench --bench core`; `scripts/bench-core.sh` prints the
//! figures against the targets.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use thorbis_obs::core::engine::RuleEngine;
use thorbis_obs::core::metrics::Labels;
use thorbis_obs::core::rules::{AlertRule, Condition, Matchers, NoDataPolicy, Operator, Severity};
use thorbis_obs::core::series::{SeriesId, SeriesStore};
use thorbis_obs::core::time::{HumanDuration, Timestamp};
use thorbis_obs::core::window::{Aggregation, SeriesWindow};

const N: u64 = 100_000;

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(N));
    for quantiles in [false, true] {
        let name = if quantiles { "with_quantile_sketch" } else { "avg_min_max_sum_count" };
        g.bench_function(BenchmarkId::new("window_push", name), |b| {
            b.iter_batched_ref(
                || SeriesWindow::new(Duration::from_secs(300), quantiles),
                |w| {
                    // 100k samples 10 ms apart: the window evicts as it goes (300 s retention).
                    for i in 0..N {
                        let v = ((i * 7919) % 5000) as f64 + 0.5;
                        let _ = w.push(Timestamp((i * 10) as i64), black_box(v));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    // Through the store by SeriesId, round robin over 10,000 series (cache misses included).
    for quantiles in [false, true] {
        let name = if quantiles { "with_quantile_sketch" } else { "avg_min_max_sum_count" };
        g.bench_function(BenchmarkId::new("store_push_10000_series", name), |b| {
            b.iter_batched_ref(
                || {
                    let mut st = SeriesStore::new(Duration::from_secs(300));
                    st.configure_metric("m", Duration::from_secs(300), quantiles);
                    let ids: Vec<SeriesId> =
                        (0..10_000).map(|i| st.series_id("m", &Labels::new().with("i", i.to_string()))).collect();
                    (st, ids)
                },
                |(st, ids)| {
                    for i in 0..N {
                        let v = ((i * 7919) % 5000) as f64 + 0.5;
                        let _ = st.push(ids[(i % 10_000) as usize], Timestamp((i * 10) as i64), black_box(v));
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn rule(i: usize) -> AlertRule {
    let aggregation = [Aggregation::Avg, Aggregation::Max, Aggregation::Sum, Aggregation::P95][i % 4];
    AlertRule {
        id: format!("rule-{i}"),
        name: format!("Rule {i}"),
        description: String::new(),
        metric: format!("metric_{i}"),
        matchers: Matchers::default(),
        condition: Condition {
            operator: Operator::GreaterThan,
            threshold: if aggregation == Aggregation::Sum { 20_000.0 } else { 900.0 },
            duration: HumanDuration::from_secs(300),
            aggregation,
        },
        pending_for: HumanDuration::from_secs(60),
        keep_firing_for: HumanDuration::ZERO,
        severity: Severity::Warning,
        channels: vec!["slack".into()],
        escalation: vec![],
        suppression_rules: vec![],
        labels: Default::default(),
        annotations: Default::default(),
        no_data: NoDataPolicy::Ok,
        repeat_interval: None,
        send_resolved: true,
    }
}

/// 1,000 rules, each on its own metric with 10 series (10,000 series), a sample every 10 s for
/// the 15 minutes the store retains (90 per series, 30 in each 5-minute window); 10% of the
/// series breach their threshold.
fn engine_1000_rules_10000_series() -> (RuleEngine, Timestamp) {
    let mut engine = RuleEngine::new((0..1000).map(rule).collect()).expect("valid rules");
    let now = Timestamp::from_secs(1_800_000_000);
    for r in 0..1000 {
        for s in 0..10 {
            let labels = Labels::new().with("instance", format!("host-{s}")).with("job", "api");
            let id = engine.store_mut().series_id(&format!("metric_{r}"), &labels);
            for k in 0..90u64 {
                let at = now.minus(Duration::from_secs(890 - k * 10));
                let v = if s == 0 { 1000.0 + k as f64 } else { (k * 13 % 500) as f64 };
                engine.store_mut().push(id, at, v).expect("in order");
            }
        }
    }
    (engine, now)
}

fn evaluate(c: &mut Criterion) {
    let (mut engine, now) = engine_1000_rules_10000_series();
    // Warm up: move breaching instances to pending and then firing.
    engine.evaluate(now.minus(Duration::from_secs(60)));
    let notes = engine.evaluate(now);
    assert_eq!(notes.len(), 1000, "one firing notification per rule on the first firing tick");
    let mut g = c.benchmark_group("evaluate");
    g.bench_function("1000_rules_10000_series_tick", |b| {
        b.iter(|| black_box(engine.evaluate(black_box(now))));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = ingest, evaluate
}
criterion_main!(benches);
