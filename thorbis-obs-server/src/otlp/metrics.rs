//! `POST /v1/metrics`: OTLP data points as engine samples, named as the OpenTelemetry
//! Collector's Prometheus exporter names them (core's [`prometheus_name`]).
//!
//! - gauges and sums: one sample per data point (a cumulative sum is the running total, a
//!   delta sum the increment since the exporter's last point; a monotonic sum ends in
//!   `_total`);
//! - histograms (explicit buckets, exponential ones turned explicit) and summaries: `_count`,
//!   `_sum` and the quantiles `_p50`, `_p75`, `_p90`, `_p95`, `_p99`, interpolated within the
//!   bucket as Prometheus' `histogram_quantile` does (a summary's own quantiles where it has
//!   them);
//! - labels: `service` and `env` from the resource's `service.name` and
//!   `deployment.environment(.name)` (its other attributes are dropped: cardinality), then the
//!   point's attributes, at most [`MAX_POINT_LABELS`], names sanitised, values cut at 128 bytes.
//!
//! A point is rejected alone (counted in the answer's `partial_success`) when its time is more
//! than an hour old or ahead of the agent's clock by more than `otlp.max_clock_skew`, when a
//! value is not finite, or when the engine refuses the sample (its series cap, an out-of-order
//! time). The engine's own series cap (50,000) bounds what a sender can create.

use super::OtlpSection;
use super::intake::{Tally, check_attributes, str_attr};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, number_data_point};
use std::time::Duration;
use thorbis_obs_core::domain::otel::{QUANTILES, bucket_quantile, exponential_buckets, label_name, prometheus_name};
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::Timestamp;

/// Attributes of a point that become labels, at most; the rest are dropped.
pub(super) const MAX_POINT_LABELS: usize = 16;
/// Label values are cut to this many bytes.
const MAX_VALUE_BYTES: usize = 128;
/// Buckets of an exponential histogram, at most (OpenTelemetry SDKs default to 160).
const MAX_EXPONENTIAL_BUCKETS: usize = 512;
/// Points older than this are rejected.
const MAX_POINT_AGE: Duration = Duration::from_secs(3600);

/// The number of data points in a request.
pub(super) fn points(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

/// A label value from an attribute value: strings as they are, numbers and booleans written
/// out, cut at [`MAX_VALUE_BYTES`]; None for arrays, maps and bytes.
fn label_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) if d.is_finite() => d.to_string(),
        Value::BoolValue(b) => b.to_string(),
        _ => return None,
    };
    Some(thorbis_obs_core::domain::errors::truncate(&s, MAX_VALUE_BYTES).to_string())
}

/// The labels of one point: `service`, `env`, then its attributes.
fn labels_of(service: &str, env: &str, attrs: &[KeyValue]) -> Labels {
    let mut pairs: Vec<(String, String)> = vec![("service".into(), service.into())];
    if !env.is_empty() {
        pairs.push(("env".into(), env.into()));
    }
    for a in attrs.iter().take(MAX_POINT_LABELS) {
        let name = label_name(&a.key);
        if name == "service" || name == "env" || name == "__name__" {
            continue;
        }
        if let Some(v) = a.value.as_ref().and_then(|v| v.value.as_ref()).and_then(label_value) {
            pairs.push((name, v));
        }
    }
    Labels::from_pairs(pairs)
}

/// The samples of a request, one group per accepted data point, and what was rejected before
/// the engine saw it.
pub(super) fn samples(
    req: &ExportMetricsServiceRequest,
    now: Timestamp,
    cfg: &OtlpSection,
) -> (Vec<Vec<Sample>>, Tally) {
    let newest = now.plus(cfg.max_clock_skew.get());
    let oldest = now.minus(MAX_POINT_AGE);
    let mut out = Vec::new();
    let mut tally = Tally::default();
    let reject = |tally: &mut Tally, why: String| {
        tally.rejected += 1;
        tally.first_reason.get_or_insert(why);
    };
    let at_of = |name: &str, t: u64, attrs: &[KeyValue]| -> Result<Timestamp, String> {
        check_attributes(attrs, &|| format!("metric {name:?}"), cfg)?;
        let ms = i64::try_from(t / 1_000_000).unwrap_or(i64::MAX);
        if ms > newest.0 {
            Err(format!("metric {name:?}: a point ahead of the agent's clock (otlp.max_clock_skew)"))
        } else if ms < oldest.0 {
            Err(format!("metric {name:?}: a point more than an hour old"))
        } else {
            Ok(Timestamp(ms))
        }
    };
    for rm in &req.resource_metrics {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
        let service = str_attr(attrs, &["service.name"]).unwrap_or("unknown_service");
        let env = str_attr(attrs, &["deployment.environment.name", "deployment.environment"]).unwrap_or("");
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let short: String = m.name.chars().take(64).collect();
            let name_of = |monotonic| prometheus_name(&m.name, &m.unit, monotonic);
            let point = |p: &NumberDataPoint| match (
                at_of(&short, p.time_unix_nano, &p.attributes),
                number(p.value.as_ref()),
            ) {
                (Ok(at), Some(v)) => Ok((labels_of(service, env, &p.attributes), v, at)),
                (Err(why), _) => Err(why),
                (_, None) => Err(format!("metric {short:?}: a value that is not a finite number")),
            };
            match &m.data {
                None => {}
                Some(Data::Gauge(g)) => number_points(&mut out, &mut tally, &g.data_points, &name_of(false), &point),
                Some(Data::Sum(s)) => {
                    number_points(&mut out, &mut tally, &s.data_points, &name_of(s.is_monotonic), &point)
                }
                Some(Data::Histogram(h)) => {
                    let name = prometheus_name(&m.name, &m.unit, false);
                    for p in &h.data_points {
                        let Some(at) = kept(&mut tally, at_of(&short, p.time_unix_nano, &p.attributes)) else {
                            continue;
                        };
                        let labels = labels_of(service, env, &p.attributes);
                        let quantiles = |q| bucket_quantile(&p.explicit_bounds, &p.bucket_counts, q);
                        if p.count > 0 && !p.bucket_counts.is_empty() && quantiles(0.5).is_none() {
                            reject(&mut tally, format!("metric {short:?}: buckets that do not match their bounds"));
                            continue;
                        }
                        push_distribution(&mut out, &name, &labels, at, p.count, p.sum, quantiles);
                        tally.accepted += 1;
                    }
                }
                Some(Data::ExponentialHistogram(h)) => {
                    let name = prometheus_name(&m.name, &m.unit, false);
                    for p in &h.data_points {
                        let Some(at) = kept(&mut tally, at_of(&short, p.time_unix_nano, &p.attributes)) else {
                            continue;
                        };
                        let (offset, counts) =
                            p.positive.as_ref().map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()));
                        let Some((bounds, counts)) =
                            exponential_buckets(p.scale, offset, counts, p.zero_count, MAX_EXPONENTIAL_BUCKETS)
                        else {
                            reject(&mut tally, format!("metric {short:?}: an exponential histogram out of range"));
                            continue;
                        };
                        let labels = labels_of(service, env, &p.attributes);
                        push_distribution(&mut out, &name, &labels, at, p.count, p.sum, |q| {
                            bucket_quantile(&bounds, &counts, q)
                        });
                        tally.accepted += 1;
                    }
                }
                Some(Data::Summary(s)) => {
                    let name = prometheus_name(&m.name, &m.unit, false);
                    for p in &s.data_points {
                        let Some(at) = kept(&mut tally, at_of(&short, p.time_unix_nano, &p.attributes)) else {
                            continue;
                        };
                        let labels = labels_of(service, env, &p.attributes);
                        let own =
                            |q: f64| p.quantile_values.iter().find(|v| (v.quantile - q).abs() < 1e-9).map(|v| v.value);
                        push_distribution(&mut out, &name, &labels, at, p.count, Some(p.sum), own);
                        tally.accepted += 1;
                    }
                }
            }
        }
    }
    // Non-finite figures never reach the engine.
    for group in &mut out {
        group.retain(|s| s.value.is_finite());
    }
    (out, tally)
}

/// The point's time when it is in range; else the rejection is counted.
fn kept(tally: &mut Tally, at: Result<Timestamp, String>) -> Option<Timestamp> {
    match at {
        Ok(at) => Some(at),
        Err(why) => {
            tally.rejected += 1;
            tally.first_reason.get_or_insert(why);
            None
        }
    }
}

/// Gauge and sum points: one sample each, or a rejection.
fn number_points(
    out: &mut Vec<Vec<Sample>>,
    tally: &mut Tally,
    points: &[NumberDataPoint],
    name: &str,
    point: &impl Fn(&NumberDataPoint) -> Result<(Labels, f64, Timestamp), String>,
) {
    for p in points {
        match point(p) {
            Ok((labels, v, at)) => {
                out.push(vec![Sample::new(name, labels, v, at)]);
                tally.accepted += 1;
            }
            Err(why) => {
                tally.rejected += 1;
                tally.first_reason.get_or_insert(why);
            }
        }
    }
}

fn number(v: Option<&number_data_point::Value>) -> Option<f64> {
    let v = match v? {
        number_data_point::Value::AsDouble(d) => *d,
        number_data_point::Value::AsInt(i) => *i as f64,
    };
    v.is_finite().then_some(v)
}

fn push_distribution(
    groups: &mut Vec<Vec<Sample>>,
    name: &str,
    labels: &Labels,
    at: Timestamp,
    count: u64,
    sum: Option<f64>,
    quantile: impl Fn(f64) -> Option<f64>,
) {
    let mut out = vec![Sample::new(format!("{name}_count"), labels.clone(), count as f64, at)];
    if let Some(s) = sum.filter(|s| s.is_finite()) {
        out.push(Sample::new(format!("{name}_sum"), labels.clone(), s, at));
    }
    if count > 0 {
        for (q, suffix) in QUANTILES {
            if let Some(v) = quantile(q) {
                out.push(Sample::new(format!("{name}{suffix}"), labels.clone(), v, at));
            }
        }
    }
    groups.push(out);
}
