//! A mergeable quantile sketch with a relative-error guarantee (the DDSketch construction).
//!
//! Values are counted in logarithmic buckets: bucket `i` holds values in `(γ^(i-1), γ^i]` with
//! `γ = (1 + α) / (1 - α)`. Any quantile read back is within a relative error `α` of the true
//! sample at that rank, for any distribution, and two sketches merge exactly by adding bucket
//! counts. We use `α = 0.005` (0.5%), inside the documented 1% bound, with margin for the
//! rounding of `ln`.
//!
//! Written here rather than taken from a crate because we need the exact contract: negative
//! values and zero, a bucket cap that never silently voids the guarantee for the high
//! quantiles we alert on (collapsing merges the lowest buckets only), and a compact serde form.

use serde::{Deserialize, Serialize};

/// The relative accuracy of [`QuantileSketch::new`].
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.005;
/// Buckets kept per sign before the lowest are collapsed together.
pub const MAX_BUCKETS: usize = 4096;
/// Magnitudes below this count as zero.
const MIN_INDEXABLE: f64 = 1e-9;

/// A dense run of bucket counts starting at bucket index `offset`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
    total: u64,
}

impl Store {
    #[inline]
    fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(0);
        } else if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BUCKETS {
                // Collapse: fold the new low value into the lowest kept bucket.
                self.counts[0] += n;
                self.total += n;
                return;
            }
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        } else if (index - self.offset) as usize >= self.counts.len() {
            let needed = (index - self.offset) as usize + 1;
            if needed > MAX_BUCKETS {
                let shift = needed - MAX_BUCKETS;
                let folded: u64 = self.counts.iter().take(shift + 1).sum();
                self.counts.drain(0..shift.min(self.counts.len()));
                if let Some(first) = self.counts.first_mut() {
                    *first = folded;
                } else {
                    self.counts.push(folded);
                }
                self.offset += shift as i32;
            }
            self.counts.resize((index - self.offset) as usize + 1, 0);
        }
        self.counts[(index - self.offset) as usize] += n;
        self.total += n;
    }

    fn merge(&mut self, other: &Store) {
        if other.counts.is_empty() {
            return;
        }
        let lo = if self.counts.is_empty() { other.offset } else { self.offset.min(other.offset) };
        let hi = if self.counts.is_empty() {
            other.offset + other.counts.len() as i32
        } else {
            (self.offset + self.counts.len() as i32).max(other.offset + other.counts.len() as i32)
        };
        if (hi - lo) as usize > MAX_BUCKETS {
            // Rare: spans beyond the cap go bucket by bucket through the collapsing path.
            for (i, &c) in other.counts.iter().enumerate() {
                if c > 0 {
                    self.add(other.offset + i as i32, c);
                }
            }
            return;
        }
        if self.counts.is_empty() {
            self.offset = lo;
        } else if lo < self.offset {
            self.counts.splice(0..0, std::iter::repeat_n(0, (self.offset - lo) as usize));
            self.offset = lo;
        }
        if self.counts.len() < (hi - lo) as usize {
            self.counts.resize((hi - lo) as usize, 0);
        }
        let start = (other.offset - self.offset) as usize;
        for (dst, &c) in self.counts[start..start + other.counts.len()].iter_mut().zip(&other.counts) {
            *dst += c;
        }
        self.total += other.total;
    }

    /// Bucket index holding the value of rank `rank` (0-based), walking up (or down).
    fn index_at_rank(&self, rank: u64, descending: bool) -> Option<i32> {
        let mut seen = 0u64;
        let n = self.counts.len();
        for k in 0..n {
            let i = if descending { n - 1 - k } else { k };
            seen += self.counts[i];
            if seen > rank {
                return Some(self.offset + i as i32);
            }
        }
        None
    }
}

/// A quantile sketch; see the module docs for the guarantee.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    alpha: f64,
    gamma_ln: f64,
    positive: Store,
    negative: Store,
    zero: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantileSketch {
    /// A sketch with the default 0.5% relative accuracy.
    pub fn new() -> Self {
        Self::with_accuracy(DEFAULT_RELATIVE_ACCURACY)
    }

    /// A sketch with relative accuracy `alpha`, clamped into `[1e-4, 0.1]`.
    pub fn with_accuracy(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() { alpha.clamp(1e-4, 0.1) } else { DEFAULT_RELATIVE_ACCURACY };
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        QuantileSketch {
            alpha,
            gamma_ln: gamma.ln(),
            positive: Store::default(),
            negative: Store::default(),
            zero: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    /// The relative accuracy.
    pub fn relative_accuracy(&self) -> f64 {
        self.alpha
    }

    #[inline]
    fn index(&self, magnitude: f64) -> i32 {
        (magnitude.ln() / self.gamma_ln).ceil() as i32
    }

    #[inline]
    fn value_of(&self, index: i32) -> f64 {
        // The midpoint (in relative terms) of (γ^(i-1), γ^i].
        let gamma = self.gamma_ln.exp();
        2.0 * (self.gamma_ln * index as f64).exp() / (gamma + 1.0)
    }

    /// Adds one value; NaN and infinities are ignored (the window store rejects them earlier).
    #[inline]
    pub fn add(&mut self, value: f64) {
        self.add_n(value, 1);
    }

    /// Adds `value` as if it were seen `n` times (a sampled observation standing for `n`);
    /// NaN, infinities and `n == 0` are ignored.
    #[inline]
    pub fn add_n(&mut self, value: f64, n: u64) {
        if !value.is_finite() || n == 0 {
            return;
        }
        if value > MIN_INDEXABLE {
            let i = self.index(value);
            self.positive.add(i, n);
        } else if value < -MIN_INDEXABLE {
            let i = self.index(-value);
            self.negative.add(i, n);
        } else {
            self.zero += n;
        }
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value * n as f64;
    }

    /// Adds every count of `other`. Both must share the same accuracy; a sketch with another
    /// accuracy is merged value by value at its bucket midpoints (still within the larger α).
    pub fn merge(&mut self, other: &QuantileSketch) {
        if other.count() == 0 {
            return;
        }
        if (self.alpha - other.alpha).abs() < f64::EPSILON {
            self.positive.merge(&other.positive);
            self.negative.merge(&other.negative);
        } else {
            for (i, &c) in other.positive.counts.iter().enumerate() {
                if c > 0 {
                    let idx = self.index(other.value_of(other.positive.offset + i as i32));
                    self.positive.add(idx, c);
                }
            }
            for (i, &c) in other.negative.counts.iter().enumerate() {
                if c > 0 {
                    let idx = self.index(other.value_of(other.negative.offset + i as i32));
                    self.negative.add(idx, c);
                }
            }
        }
        self.zero += other.zero;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.positive.total + self.negative.total + self.zero
    }

    /// Sum of the values added (exact up to float rounding).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest value added (exact).
    pub fn min(&self) -> Option<f64> {
        (self.count() > 0).then_some(self.min)
    }

    /// Largest value added (exact).
    pub fn max(&self) -> Option<f64> {
        (self.count() > 0).then_some(self.max)
    }

    /// The value at quantile `q` in `[0, 1]` as PromQL's `quantile_over_time` defines it: with
    /// rank `r = q * (n - 1)`, the samples at 0-based ranks `floor(r)` and `floor(r) + 1`
    /// interpolated linearly by `r - floor(r)`. Each of the two samples is read within relative
    /// error α, so the result is too. `None` when empty or `q` is outside `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let (lower, upper, weight) = interpolation_ranks(q, n as usize);
        let a = self.value_at_rank(lower as u64)?;
        let b = if upper == lower { a } else { self.value_at_rank(upper as u64)? };
        Some(interpolate(a, b, weight))
    }

    /// The sample of 0-based `rank` in sorted order, within relative error α.
    fn value_at_rank(&self, rank: u64) -> Option<f64> {
        let n = self.count();
        if rank == 0 {
            return Some(self.min);
        }
        if rank >= n - 1 {
            return Some(self.max);
        }
        let v = if rank < self.negative.total {
            // Negatives in ascending value order are descending magnitude order.
            -self.value_of(self.negative.index_at_rank(rank, true)?)
        } else if rank < self.negative.total + self.zero {
            0.0
        } else {
            self.value_of(self.positive.index_at_rank(rank - self.negative.total - self.zero, false)?)
        };
        Some(v.clamp(self.min, self.max))
    }
}

/// PromQL's ranks for quantile `q` of `n > 0` samples: the lower and upper 0-based ranks and the
/// weight of the upper one (`rank = q * (n - 1)`, `lower = floor(rank)`,
/// `upper = min(n - 1, lower + 1)`, `weight = rank - floor(rank)`), as Prometheus'
/// `promql/quantile.go` computes them.
pub fn interpolation_ranks(q: f64, n: usize) -> (usize, usize, f64) {
    let rank = q * (n.saturating_sub(1)) as f64;
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n.saturating_sub(1) as f64);
    (lower as usize, upper as usize, rank - rank.floor())
}

/// `a * (1 - weight) + b * weight`: Prometheus' arithmetic, so equal inputs give equal bits.
pub fn interpolate(a: f64, b: f64, weight: f64) -> f64 {
    a * (1.0 - weight) + b * weight
}

/// The exact quantile `q` of `sorted` (ascending) as PromQL's `quantile_over_time` computes it
/// (see [`interpolation_ranks`]); the definition [`QuantileSketch::quantile`] approximates.
pub fn exact_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let (lower, upper, weight) = interpolation_ranks(q, sorted.len());
    Some(interpolate(*sorted.get(lower)?, *sorted.get(upper)?, weight))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_against_exact(values: &[f64]) {
        let mut sk = QuantileSketch::new();
        for &v in values {
            sk.add(v);
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0] {
            let exact = exact_quantile(&sorted, q).expect("non-empty");
            let got = sk.quantile(q).expect("non-empty");
            let err = if exact.abs() < 1e-6 { (got - exact).abs() } else { ((got - exact) / exact).abs() };
            assert!(err <= 0.01, "q={q} exact={exact} got={got} err={err}");
        }
    }

    #[test]
    fn latency_like_distribution_within_one_percent() {
        // A long-tailed, deterministic spread from 1 ms to ~60 s.
        let mut x: u64 = 42;
        let values: Vec<f64> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                // Pareto-like tail: 1 ms .. ~60 s.
                (1.0 / (1.0 - u * 0.99999)).powf(1.3).min(60_000.0)
            })
            .collect();
        check_against_exact(&values);
    }

    #[test]
    fn merge_equals_single_sketch() {
        let mut a = QuantileSketch::new();
        let mut b = QuantileSketch::new();
        let mut all = QuantileSketch::new();
        for i in 0..1000 {
            let v = (i * 7919 % 1000) as f64 + 0.5;
            if i % 2 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
            all.add(v);
        }
        a.merge(&b);
        for q in [0.5, 0.75, 0.95, 0.99] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!(a.count(), 1000);
    }

    #[test]
    fn empty_and_out_of_range() {
        let sk = QuantileSketch::new();
        assert_eq!(sk.quantile(0.5), None);
        let mut sk = QuantileSketch::new();
        sk.add(3.0);
        assert_eq!(sk.quantile(1.5), None);
        assert_eq!(sk.quantile(0.5), Some(3.0));
    }

    proptest! {
        #[test]
        fn any_values_within_one_percent(values in prop::collection::vec(
            prop_oneof![-1e6f64..1e6, 0.0f64..1.0, Just(0.0), 1e-3f64..1e9], 1..400)) {
            check_against_exact(&values);
        }
    }
}
