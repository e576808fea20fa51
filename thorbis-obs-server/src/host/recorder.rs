//! [`MetricsRecorder`]: a recorder for the `metrics` facade whose counters, gauges and
//! histograms become engine samples, named as the OTLP intake names an OpenTelemetry SDK's
//! (core's `prometheus_name`), so a rule or a dashboard reads the same series whichever way
//! they came:
//! - a counter is its running total, named with `_total` (`orders_failed` ->
//!   `orders_failed_total`; rules take `rate` of it);
//! - a gauge is its value;
//! - a histogram gives `_count` and `_sum` (running totals) and `_p50`, `_p75`, `_p90`, `_p95`,
//!   `_p99` of the values of the interval, from core's quantile sketch (1% relative accuracy);
//! - labels: `service` and `env` (and `instance` when set), then the key's labels, at most 16,
//!   names sanitised, values cut at 128 bytes.
//!
//! The storage is metrics-util's registry of atomics, the one metrics-exporter-prometheus
//! uses (an increment is one atomic add on a handle; a histogram value one lock-free push), so
//! it is as fast; the part written here turns it into samples. A host that exports Prometheus
//! already installs both through metrics-util's `FanoutBuilder`.
//!
//! Caps: at most [`MetricsRecorderBuilder::max_series`] keys (default 2,000); a key beyond gets
//! a handle that records nothing and is counted in [`MetricsRecorder::refused`] (a label with
//! a user id in it must not grow the host's memory without end).

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::domain::errors::truncate;
use thorbis_obs_core::domain::otel::{QUANTILES, label_name, prometheus_name};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::sketch::QuantileSketch;
use thorbis_obs_core::source::{CollectError, MetricSource};
use thorbis_obs_core::time::Timestamp;

/// Keys kept by default.
const DEFAULT_MAX_SERIES: usize = 2_000;
/// Labels of a key that become sample labels, at most.
const MAX_KEY_LABELS: usize = 16;
/// A label value is cut to this many bytes.
const MAX_LABEL_VALUE: usize = 128;

struct Inner {
    service: String,
    env: String,
    instance: Option<String>,
    interval: Duration,
    max_series: usize,
    registry: Registry<Key, AtomicStorage>,
    series: AtomicUsize,
    refused: AtomicU64,
    /// Running count and sum of each histogram.
    totals: Mutex<HashMap<Key, (u64, f64)>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("service", &self.service)
            .field("env", &self.env)
            .field("series", &self.series.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A `metrics` recorder feeding the agent (see the module docs): install it with
/// `metrics::set_global_recorder(recorder.clone())` (or [`MetricsRecorder::install`]) and add
/// it as a source (`AgentBuilder::source`). Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct MetricsRecorder {
    inner: Arc<Inner>,
}

/// Options of a [`MetricsRecorder`]: `MetricsRecorder::builder(service, env)`.
#[derive(Clone, Debug)]
pub struct MetricsRecorderBuilder {
    service: String,
    env: String,
    instance: Option<String>,
    interval: Duration,
    max_series: usize,
}

impl MetricsRecorderBuilder {
    /// Collected every `interval` (default 10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// At most `n` keys (default 2,000).
    pub fn max_series(mut self, n: usize) -> Self {
        self.max_series = n;
        self
    }

    /// An `instance` label on every sample: replicas of one service that send to one remote
    /// agent each need their own, or their series would overwrite each other.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The recorder.
    pub fn build(self) -> MetricsRecorder {
        MetricsRecorder {
            inner: Arc::new(Inner {
                service: self.service,
                env: self.env,
                instance: self.instance,
                interval: self.interval,
                max_series: self.max_series,
                registry: Registry::atomic(),
                series: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                totals: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl MetricsRecorder {
    /// The metrics of service `service` in environment `env`, collected every 10 s.
    pub fn new(service: impl Into<String>, env: impl Into<String>) -> Self {
        Self::builder(service, env).build()
    }

    /// The same, with options.
    pub fn builder(service: impl Into<String>, env: impl Into<String>) -> MetricsRecorderBuilder {
        MetricsRecorderBuilder {
            service: service.into(),
            env: env.into(),
            instance: None,
            interval: Duration::from_secs(10),
            max_series: DEFAULT_MAX_SERIES,
        }
    }

    /// Installs it as the process's global recorder (what `metrics::counter!` and friends
    /// call); fails when one is installed already (use metrics-util's `FanoutBuilder` then).
    pub fn install(&self) -> Result<(), metrics::SetRecorderError<MetricsRecorder>> {
        metrics::set_global_recorder(self.clone())
    }

    /// Keys refused so far because the recorder held its maximum.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// The samples of everything recorded, at `now` (what `collect` returns).
    pub fn take_samples(&self, now: Timestamp) -> Vec<Sample> {
        let i = &self.inner;
        let mut out = Vec::new();
        i.registry.visit_counters(|key, c| {
            let name = prometheus_name(key.name(), "", true);
            out.push(Sample::new(name, self.labels(key), c.load(Ordering::Relaxed) as f64, now));
        });
        i.registry.visit_gauges(|key, g| {
            let v = f64::from_bits(g.load(Ordering::Relaxed));
            if v.is_finite() {
                out.push(Sample::new(prometheus_name(key.name(), "", false), self.labels(key), v, now));
            }
        });
        let mut totals = i.totals.lock().unwrap_or_else(PoisonError::into_inner);
        i.registry.visit_histograms(|key, h| {
            let mut sketch = QuantileSketch::new();
            h.clear_with(|values| values.iter().filter(|v| v.is_finite()).for_each(|v| sketch.add(*v)));
            let total = totals.entry(key.clone()).or_default();
            total.0 += sketch.count();
            total.1 += sketch.sum();
            let base = prometheus_name(key.name(), "", false);
            let labels = self.labels(key);
            out.push(Sample::new(format!("{base}_count"), labels.clone(), total.0 as f64, now));
            if total.1.is_finite() {
                out.push(Sample::new(format!("{base}_sum"), labels.clone(), total.1, now));
            }
            for (q, suffix) in QUANTILES {
                if let Some(v) = sketch.quantile(q) {
                    out.push(Sample::new(format!("{base}{suffix}"), labels.clone(), v, now));
                }
            }
        });
        out
    }

    fn labels(&self, key: &Key) -> Labels {
        let i = &self.inner;
        let mut labels = Labels::from_pairs([("service", i.service.as_str()), ("env", i.env.as_str())]);
        if let Some(instance) = &i.instance {
            labels.insert("instance", instance.as_str());
        }
        for l in key.labels().take(MAX_KEY_LABELS) {
            let name = label_name(l.key());
            if !matches!(name.as_str(), "service" | "env" | "instance") {
                labels.insert(name, truncate(l.value(), MAX_LABEL_VALUE));
            }
        }
        labels
    }

    /// Whether a new key may be made (counting it when it may).
    fn admit(&self) -> bool {
        let i = &self.inner;
        if i.series.fetch_add(1, Ordering::Relaxed) < i.max_series {
            return true;
        }
        i.series.fetch_sub(1, Ordering::Relaxed);
        i.refused.fetch_add(1, Ordering::Relaxed);
        false
    }
}

impl metrics::Recorder for MetricsRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let r = &self.inner.registry;
        match r.get_counter(key) {
            Some(c) => Counter::from_arc(c),
            None if self.admit() => r.get_or_create_counter(key, |c| Counter::from_arc(c.clone())),
            None => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let r = &self.inner.registry;
        match r.get_gauge(key) {
            Some(g) => Gauge::from_arc(g),
            None if self.admit() => r.get_or_create_gauge(key, |g| Gauge::from_arc(g.clone())),
            None => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let r = &self.inner.registry;
        match r.get_histogram(key) {
            Some(h) => Histogram::from_arc(h),
            None if self.admit() => r.get_or_create_histogram(key, |h| Histogram::from_arc(h.clone())),
            None => Histogram::noop(),
        }
    }
}

#[async_trait::async_trait]
impl MetricSource for MetricsRecorder {
    fn name(&self) -> &str {
        "host_metrics"
    }

    fn interval(&self) -> Duration {
        self.inner.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        Ok(self.take_samples(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        samples
            .iter()
            .find(|s| s.name == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| s.value)
    }

    #[test]
    fn counters_gauges_and_histograms_become_the_intake_s_series() {
        let r = MetricsRecorder::builder("billing", "prod").max_series(4).build();
        let t = Timestamp::from_secs(1_800_000_000);
        metrics::with_local_recorder(&r, || {
            for _ in 0..3 {
                metrics::counter!("orders_failed", "reason" => "card").increment(2);
            }
            metrics::gauge!("queue.depth").set(7.5);
            for v in 1..=100 {
                metrics::histogram!("db.query.ms").record(f64::from(v));
            }
            metrics::histogram!("db.query.ms").record(f64::NAN);
            // Over the cap: refused, counted, nothing recorded.
            metrics::counter!("per_user", "user" => "1").increment(1);
            metrics::counter!("per_user", "user" => "2").increment(1);
        });
        let s = r.take_samples(t);
        assert_eq!(value(&s, "orders_failed_total", Some(("reason", "card"))), Some(6.0));
        assert_eq!(value(&s, "queue_depth", Some(("service", "billing"))), Some(7.5));
        assert_eq!(value(&s, "db_query_ms_count", None), Some(100.0));
        assert_eq!(value(&s, "db_query_ms_sum", None), Some(5050.0));
        let p99 = value(&s, "db_query_ms_p99", None).expect("p99");
        assert!((p99 - 99.0).abs() <= 99.0 * 0.02, "p99 {p99}");
        assert_eq!(r.refused(), 1);
        assert!(s.iter().all(|x| x.name != "per_user_total" || x.labels.get("user") == Some("1")));
        // Running totals carry on; quantiles are of the interval.
        metrics::with_local_recorder(&r, || metrics::histogram!("db.query.ms").record(500.0));
        let s = r.take_samples(t.plus(Duration::from_secs(10)));
        assert_eq!(value(&s, "db_query_ms_count", None), Some(101.0));
        assert_eq!(value(&s, "orders_failed_total", None), Some(6.0));
        let p50 = value(&s, "db_query_ms_p50", None).expect("p50");
        assert!((p50 - 500.0).abs() <= 10.0, "p50 {p50}");
    }
}
