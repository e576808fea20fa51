//! Windowed aggregation per series.
//!
//! Window semantics are Prometheus 3's range selectors: a window of length `w` evaluated at `t`
//! holds the samples with timestamps in `(t - w, t]` (left-open, right-closed).
//!
//! Each series keeps its raw samples for the store's retention, so avg, min, max, sum, count,
//! last and rate are exact. Series of metrics that rules read quantiles from also keep one
//! [`QuantileSketch`] per time slice: a quantile over a window merges the sketches of slices
//! lying wholly inside it and adds the raw samples of the (at most two) partial slices at its
//! edges, so window edges stay exact and only the sketch's 0.5% relative error remains.
//! Windows of at most [`EXACT_QUANTILE_MAX`] samples skip the sketches and select exactly.
//! Either way a quantile is PromQL's `quantile_over_time`: rank `q * (n - 1)`, interpolated
//! linearly between the samples at its floor and the next rank, with Prometheus' arithmetic
//! ([`crate::sketch::exact_quantile`]), so a rule moved from Prometheus alerts at the same times.
//!
//! Out-of-order policy: the samples of one series must arrive in non-decreasing time order. An
//! older sample is rejected with [`SampleError::OutOfOrder`] and nothing is stored; equal
//! timestamps are kept (several browsers can report in the same millisecond). NaN and infinite
//! values are rejected with [`SampleError::NotFinite`].

use crate::metrics::SampleError;
use crate::sketch::{QuantileSketch, interpolate, interpolation_ranks};
use crate::time::Timestamp;
use core::time::Duration;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How a window of samples becomes one number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Arithmetic mean.
    #[default]
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sum of values.
    Sum,
    /// Number of samples.
    Count,
    /// Newest value.
    Last,
    /// Per-second increase of a counter between the first and last sample of the window, with
    /// counter resets handled as Prometheus does; no extrapolation to the window edges. Needs
    /// two samples.
    Rate,
    /// Median.
    P50,
    /// 75th percentile (the spec's web-vitals aggregation).
    P75,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl Aggregation {
    /// The quantile this aggregation reads, if it is one.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Aggregation::P50 => Some(0.5),
            Aggregation::P75 => Some(0.75),
            Aggregation::P90 => Some(0.9),
            Aggregation::P95 => Some(0.95),
            Aggregation::P99 => Some(0.99),
            _ => None,
        }
    }

    /// Lower-case name as written in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
            Aggregation::Last => "last",
            Aggregation::Rate => "rate",
            Aggregation::P50 => "p50",
            Aggregation::P75 => "p75",
            Aggregation::P90 => "p90",
            Aggregation::P95 => "p95",
            Aggregation::P99 => "p99",
        }
    }
}

/// Windows with at most this many samples get exact quantiles (selection over the raw
/// samples); larger ones read the sketches.
pub const EXACT_QUANTILE_MAX: usize = 256;

/// Default width of the sketch slices.
pub const DEFAULT_SLICE: Duration = Duration::from_secs(10);

/// The samples of one series, with optional per-slice quantile sketches.
#[derive(Clone, Debug)]
pub struct SeriesWindow {
    samples: VecDeque<(i64, f64)>,
    slices: Option<VecDeque<(i64, QuantileSketch)>>,
    slice_ms: i64,
    retention_ms: i64,
    /// Timestamp of the first sample that went into a sketch slice; quantiles over ranges
    /// starting earlier fall back to the raw samples.
    sketched_from: i64,
    /// Oldest and newest timestamps, kept beside the deque header so the evaluation's search
    /// does not fetch two more cache lines per series.
    oldest: i64,
    newest: i64,
}

impl SeriesWindow {
    /// A window that keeps samples for `retention`, with sketches when `quantiles` is set.
    pub fn new(retention: Duration, quantiles: bool) -> Self {
        SeriesWindow {
            samples: VecDeque::new(),
            slices: quantiles.then(VecDeque::new),
            slice_ms: DEFAULT_SLICE.as_millis() as i64,
            retention_ms: retention.as_millis().clamp(1, i64::MAX as u128) as i64,
            sketched_from: i64::MAX,
            oldest: i64::MAX,
            newest: i64::MIN,
        }
    }

    /// Turns per-slice sketches on from now on.
    pub fn enable_quantiles(&mut self) {
        if self.slices.is_none() {
            self.slices = Some(VecDeque::new());
        }
    }

    /// Raises the retention (never lowers it below what is already asked for).
    pub fn ensure_retention(&mut self, retention: Duration) {
        self.retention_ms = self.retention_ms.max(retention.as_millis().min(i64::MAX as u128) as i64);
    }

    /// Number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when no samples are kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The newest sample.
    pub fn last(&self) -> Option<(Timestamp, f64)> {
        self.samples.back().map(|&(t, v)| (Timestamp(t), v))
    }

    /// The samples at or after `since`, oldest first.
    pub fn points_since(&self, since: Timestamp) -> impl Iterator<Item = (Timestamp, f64)> + '_ {
        let start = self.samples.partition_point(|&(t, _)| t < since.0);
        self.samples.range(start..).map(|&(t, v)| (Timestamp(t), v))
    }

    /// Timestamp of the newest sample.
    pub fn newest(&self) -> Option<Timestamp> {
        self.samples.back().map(|&(t, _)| Timestamp(t))
    }

    /// Adds a sample (see the module docs for the out-of-order and NaN policy). `metric` only
    /// names the series in errors.
    #[inline]
    pub fn push(&mut self, at: Timestamp, value: f64) -> Result<(), SampleError> {
        let t = at.0;
        if !value.is_finite() {
            return Err(SampleError::NotFinite { metric: String::new(), value });
        }
        if let Some(&(newest, _)) = self.samples.back() {
            if t < newest {
                return Err(SampleError::OutOfOrder {
                    metric: String::new(),
                    labels: Default::default(),
                    at: t,
                    newest,
                });
            }
        }
        if self.samples.is_empty() {
            self.oldest = t;
        }
        self.samples.push_back((t, value));
        self.newest = t;
        if let Some(slices) = &mut self.slices {
            let start = t.div_euclid(self.slice_ms) * self.slice_ms;
            match slices.back_mut() {
                Some((s, sk)) if *s == start => sk.add(value),
                _ => {
                    let mut sk = QuantileSketch::new();
                    sk.add(value);
                    slices.push_back((start, sk));
                }
            }
            if self.sketched_from == i64::MAX {
                self.sketched_from = t;
            }
        }
        self.evict(t);
        Ok(())
    }

    /// Drops samples and slices older than the retention relative to `now`.
    pub fn evict(&mut self, now: i64) {
        let cutoff = now.saturating_sub(self.retention_ms);
        while let Some(&(t, _)) = self.samples.front() {
            if t > cutoff {
                break;
            }
            self.samples.pop_front();
        }
        self.oldest = self.samples.front().map_or(i64::MAX, |&(t, _)| t);
        if self.samples.is_empty() {
            self.newest = i64::MIN;
        }
        if let Some(slices) = &mut self.slices {
            while let Some(&(s, _)) = slices.front() {
                if s + self.slice_ms - 1 > cutoff {
                    break;
                }
                slices.pop_front();
            }
        }
    }

    /// The samples in `(at - window, at]`.
    pub fn range(&self, at: Timestamp, window: Duration) -> (usize, usize) {
        let end = at.0;
        let start = end.saturating_sub(window.as_millis().min(i64::MAX as u128) as i64);
        let lo = self.first_after(start);
        // Evaluations usually run at "now": everything stored is at or before `end`.
        let hi = if self.newest <= end { self.samples.len() } else { self.samples.partition_point(|&(t, _)| t <= end) };
        (lo, hi.max(lo))
    }

    /// Index of the first sample later than `start`. Samples mostly arrive at a steady
    /// interval, so interpolating between the ends lands on or next to the answer and touches
    /// one or two cache lines where a binary search would touch half a dozen; a guess that is
    /// off by more than a few samples falls back to the binary search.
    fn first_after(&self, start: i64) -> usize {
        let n = self.samples.len();
        if n == 0 {
            return 0;
        }
        let (front, back) = (self.oldest, self.newest);
        if front > start {
            return 0;
        }
        if back <= start {
            return n;
        }
        let span = (back - front) as f64;
        let mut i = (((start - front) as f64 / span) * (n - 1) as f64) as usize;
        i = i.min(n - 1);
        let t = |i: usize| self.samples[i].0;
        for _ in 0..4 {
            if t(i) <= start {
                // The answer is to the right.
                if i + 1 < n && t(i + 1) > start {
                    return i + 1;
                }
                i += 1;
            } else {
                // The answer is here or to the left.
                if i == 0 || t(i - 1) <= start {
                    return i;
                }
                i -= 1;
            }
            if i >= n {
                return n;
            }
        }
        self.samples.partition_point(|&(ts, _)| ts <= start)
    }

    /// Aggregates the window `(at - window, at]`; `None` when it holds no sample (or fewer than
    /// two for `rate`).
    pub fn aggregate(&self, agg: Aggregation, at: Timestamp, window: Duration) -> Option<f64> {
        let (lo, hi) = self.range(at, window);
        if lo >= hi {
            return None;
        }
        let it = self.samples.range(lo..hi).map(|&(_, v)| v);
        let n = (hi - lo) as f64;
        match agg {
            Aggregation::Avg => Some(kahan_sum(it) / n),
            Aggregation::Sum => Some(kahan_sum(it)),
            Aggregation::Min => it.reduce(f64::min),
            Aggregation::Max => it.reduce(f64::max),
            Aggregation::Count => Some(n),
            Aggregation::Last => self.samples.get(hi - 1).map(|&(_, v)| v),
            Aggregation::Rate => self.rate(lo, hi),
            q => self.quantile(q.quantile()?, at, window, lo, hi),
        }
    }

    fn rate(&self, lo: usize, hi: usize) -> Option<f64> {
        if hi - lo < 2 {
            return None;
        }
        let mut increase = 0.0;
        let mut prev = self.samples[lo].1;
        for &(_, v) in self.samples.range(lo + 1..hi) {
            increase += if v >= prev { v - prev } else { v };
            prev = v;
        }
        let secs = (self.samples[hi - 1].0 - self.samples[lo].0) as f64 / 1000.0;
        (secs > 0.0).then(|| increase / secs)
    }

    fn quantile(&self, q: f64, at: Timestamp, window: Duration, lo: usize, hi: usize) -> Option<f64> {
        let end = at.0;
        let start = end.saturating_sub(window.as_millis().min(i64::MAX as u128) as i64);
        if hi - lo <= EXACT_QUANTILE_MAX {
            // Few samples: exact selection is cheaper than merging slice sketches.
            // PromQL's interpolation between the samples at ranks floor(r) and floor(r) + 1.
            let mut values: Vec<f64> = self.samples.range(lo..hi).map(|&(_, v)| v).collect();
            let (lower, upper, weight) = interpolation_ranks(q, values.len());
            let (_, a, above) = values.select_nth_unstable_by(lower, f64::total_cmp);
            let a = *a;
            let b = if upper > lower { above.iter().copied().min_by(f64::total_cmp).unwrap_or(a) } else { a };
            return Some(interpolate(a, b, weight));
        }
        let mut sketch = QuantileSketch::new();
        match &self.slices {
            Some(slices) if self.sketched_from <= self.samples[lo].0 => {
                // Whole slices: first ms > start and last ms <= end.
                let mut covered_lo = i64::MAX;
                let mut covered_hi = i64::MIN;
                for (s, sk) in slices.iter() {
                    if *s > start && *s + self.slice_ms - 1 <= end {
                        sketch.merge(sk);
                        covered_lo = covered_lo.min(*s);
                        covered_hi = covered_hi.max(*s + self.slice_ms - 1);
                    }
                }
                for &(t, v) in self.samples.range(lo..hi) {
                    if t < covered_lo || t > covered_hi {
                        sketch.add(v);
                    }
                }
            }
            _ => {
                for &(_, v) in self.samples.range(lo..hi) {
                    sketch.add(v);
                }
            }
        }
        sketch.quantile(q)
    }
}

/// Compensated summation, so a long window of small values next to large ones stays exact.
fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0;
    let mut c = 0.0;
    for v in values {
        let y = v - c;
        let t = sum + y;
        c = (t - sum) - y;
        sum = t;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::exact_quantile;
    use proptest::prelude::*;

    fn window_of(points: &[(i64, f64)], quantiles: bool) -> SeriesWindow {
        let mut w = SeriesWindow::new(Duration::from_secs(3600), quantiles);
        for &(t, v) in points {
            w.push(Timestamp(t), v).expect("in order");
        }
        w
    }

    #[test]
    fn window_is_left_open_right_closed() {
        let w = window_of(&[(0, 1.0), (60_000, 2.0), (120_000, 3.0)], false);
        // (0, 120000] excludes the sample at 0.
        assert_eq!(w.aggregate(Aggregation::Count, Timestamp(120_000), Duration::from_secs(120)), Some(2.0));
        assert_eq!(w.aggregate(Aggregation::Avg, Timestamp(120_000), Duration::from_secs(120)), Some(2.5));
        // A sample after `at` is not in the window.
        assert_eq!(w.aggregate(Aggregation::Max, Timestamp(60_000), Duration::from_secs(120)), Some(2.0));
        assert_eq!(w.aggregate(Aggregation::Sum, Timestamp(500_000), Duration::from_secs(60)), None);
    }

    #[test]
    fn rate_handles_counter_reset() {
        let w = window_of(&[(0, 10.0), (10_000, 20.0), (20_000, 5.0), (30_000, 15.0)], false);
        // increase 10 + 5 (reset) + 10 = 25 over 30 s.
        let r = w.aggregate(Aggregation::Rate, Timestamp(30_000), Duration::from_secs(60)).expect("two samples");
        assert!((r - 25.0 / 30.0).abs() < 1e-12);
        assert_eq!(w.aggregate(Aggregation::Rate, Timestamp(30_000), Duration::from_secs(5)), None);
    }

    #[test]
    fn bad_samples_change_nothing() {
        let mut w = window_of(&[(1000, 1.0)], true);
        assert!(matches!(w.push(Timestamp(500), 2.0), Err(SampleError::OutOfOrder { .. })));
        assert!(matches!(w.push(Timestamp(2000), f64::NAN), Err(SampleError::NotFinite { .. })));
        assert!(w.push(Timestamp(2000), f64::INFINITY).is_err());
        assert_eq!(w.len(), 1);
        assert_eq!(w.aggregate(Aggregation::P99, Timestamp(5000), Duration::from_secs(60)), Some(1.0));
    }

    #[test]
    fn quantiles_interpolate_as_promql() {
        // quantile_over_time(0.5, [1, 2, 3, 4]) = 2.5; 0.75 -> rank 2.25 -> 3.25; 0.95 -> 3.85.
        let w = window_of(&[(1000, 4.0), (2000, 1.0), (3000, 3.0), (4000, 2.0)], true);
        let at = Timestamp(4000);
        let win = Duration::from_secs(60);
        assert_eq!(w.aggregate(Aggregation::P50, at, win), Some(2.5));
        assert_eq!(w.aggregate(Aggregation::P75, at, win), Some(3.25));
        let weight = 0.95 * 3.0 - 2.0;
        assert_eq!(w.aggregate(Aggregation::P95, at, win), Some(3.0 * (1.0 - weight) + 4.0 * weight));
        // One sample: every quantile is it; two: the weight of the upper is q.
        let one = window_of(&[(1000, 7.0)], true);
        assert_eq!(one.aggregate(Aggregation::P99, Timestamp(1000), win), Some(7.0));
        let two = window_of(&[(1000, 10.0), (2000, 20.0)], true);
        assert_eq!(two.aggregate(Aggregation::P75, Timestamp(2000), win), Some(17.5));
        // The sketch path reads the same definition within its error.
        let mut sk = QuantileSketch::new();
        for v in [1.0, 2.0, 3.0, 4.0] {
            sk.add(v);
        }
        let got = sk.quantile(0.5).expect("non-empty");
        assert!((got - 2.5).abs() <= 2.5 * 0.01, "{got}");
    }

    #[test]
    fn eviction_keeps_retention() {
        let mut w = SeriesWindow::new(Duration::from_secs(60), true);
        for i in 0..1000 {
            w.push(Timestamp(i * 1000), i as f64).expect("in order");
        }
        assert_eq!(w.len(), 60);
        assert_eq!(w.aggregate(Aggregation::Min, Timestamp(999_000), Duration::from_secs(60)), Some(940.0));
    }

    #[test]
    fn large_windows_read_the_sketches_within_one_percent() {
        // 10 samples a second for an hour: windows hold far more than EXACT_QUANTILE_MAX, and
        // their edges fall inside slices.
        let mut w = SeriesWindow::new(Duration::from_secs(3600), true);
        let mut points = Vec::new();
        let mut x: u64 = 7;
        for i in 0..36_000i64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let v = 50.0 + ((x >> 33) % 100_000) as f64 / 10.0;
            w.push(Timestamp(i * 100 + 3), v).expect("in order");
            points.push((i * 100 + 3, v));
        }
        for (at, win) in [(3_599_903, 60), (1_234_567, 300), (2_000_001, 1234), (3_599_999, 3599)] {
            let start = at - win * 1000;
            let mut inside: Vec<f64> = points.iter().filter(|(t, _)| *t > start && *t <= at).map(|p| p.1).collect();
            assert!(inside.len() > EXACT_QUANTILE_MAX);
            inside.sort_by(f64::total_cmp);
            for agg in [Aggregation::P50, Aggregation::P75, Aggregation::P90, Aggregation::P95, Aggregation::P99] {
                let want = exact_quantile(&inside, agg.quantile().expect("quantile")).expect("non-empty");
                let got = w.aggregate(agg, Timestamp(at), Duration::from_secs(win as u64)).expect("non-empty");
                assert!(((got - want) / want).abs() <= 0.01, "{agg:?} at {at} over {win}s: {got} vs {want}");
            }
        }
    }

    fn exact(values: &[f64], agg: Aggregation) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(match agg {
            Aggregation::Avg => values.iter().sum::<f64>() / values.len() as f64,
            Aggregation::Sum => values.iter().sum(),
            Aggregation::Min => sorted[0],
            Aggregation::Max => sorted[sorted.len() - 1],
            Aggregation::Count => values.len() as f64,
            Aggregation::Last => values[values.len() - 1],
            q => exact_quantile(&sorted, q.quantile()?)?,
        })
    }

    proptest! {
        /// Every aggregate over random windows agrees with a brute-force filter of
        /// `(at - w, at]`: exactly for the exact ones, within 1% for quantiles.
        #[test]
        fn aggregates_match_brute_force(
            gaps in prop::collection::vec(0i64..5_000, 1..300),
            values in prop::collection::vec(0.1f64..10_000.0, 300),
            at_off in 0i64..600_000,
            window_s in 1u64..400,
        ) {
            let mut t = 0;
            let mut points = Vec::new();
            for (i, g) in gaps.iter().enumerate() {
                t += g;
                points.push((t, values[i]));
            }
            let w = window_of(&points, true);
            let at = at_off.min(t + 10_000);
            let win = Duration::from_secs(window_s);
            let inside: Vec<f64> = points.iter().filter(|(ts, _)| *ts > at - win.as_millis() as i64 && *ts <= at).map(|p| p.1).collect();
            for agg in [Aggregation::Avg, Aggregation::Sum, Aggregation::Min, Aggregation::Max, Aggregation::Count, Aggregation::Last] {
                let got = w.aggregate(agg, Timestamp(at), win);
                let want = exact(&inside, agg);
                match (got, want) {
                    (Some(g), Some(e)) => prop_assert!((g - e).abs() <= 1e-9 * e.abs().max(1.0), "{agg:?} {g} vs {e}"),
                    (g, e) => prop_assert_eq!(g, e),
                }
            }
            for agg in [Aggregation::P50, Aggregation::P75, Aggregation::P95, Aggregation::P99] {
                let got = w.aggregate(agg, Timestamp(at), win);
                let want = exact(&inside, agg);
                match (got, want) {
                    (Some(g), Some(e)) => prop_assert!(((g - e) / e).abs() <= 0.01, "{agg:?} {g} vs {e}"),
                    (g, e) => prop_assert_eq!(g, e),
                }
            }
        }
    }
}
