//! Web vitals: Google's ratings, the spec's NextFaster levels, and the pure parts of the CLS and
//! INP algorithms so the browser SDK and the agent compute the same numbers.
//!
//! ```
//! use thorbis_obs_core::domain::vitals::{Rating, Vital};
//!
//! let lcp = Vital::from_name("largest_contentful_paint").expect("a spec name");
//! assert_eq!(lcp, Vital::Lcp);
//! assert_eq!(lcp.rate(2500.0), Rating::Good); // exactly on the threshold is good
//! assert_eq!(lcp.rate(2500.1), Rating::NeedsImprovement);
//! ```

use serde::{Deserialize, Serialize};

/// A web-vitals metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Vital {
    /// Largest Contentful Paint, ms.
    Lcp,
    /// Interaction to Next Paint, ms.
    Inp,
    /// Cumulative Layout Shift, unitless.
    Cls,
    /// First Contentful Paint, ms.
    Fcp,
    /// Time to First Byte, ms.
    Ttfb,
    /// First Input Delay, ms. Dropped from web-vitals v5; kept because the spec names it.
    Fid,
    /// Time to Interactive, ms. Not a Google web vital; the spec tracks it.
    Tti,
}

/// The unit a vital is recorded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalUnit {
    /// Milliseconds.
    Milliseconds,
    /// A score without a unit (CLS).
    Unitless,
}

impl VitalUnit {
    /// `"ms"`, or `""` for a unitless score.
    pub const fn as_str(self) -> &'static str {
        match self {
            VitalUnit::Milliseconds => "ms",
            VitalUnit::Unitless => "",
        }
    }
}

impl Vital {
    /// Every vital, in declaration order.
    pub const ALL: [Vital; 7] = [Vital::Lcp, Vital::Inp, Vital::Cls, Vital::Fcp, Vital::Ttfb, Vital::Fid, Vital::Tti];

    /// The web-vitals short name: `"LCP"`, `"INP"`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Vital::Lcp => "LCP",
            Vital::Inp => "INP",
            Vital::Cls => "CLS",
            Vital::Fcp => "FCP",
            Vital::Ttfb => "TTFB",
            Vital::Fid => "FID",
            Vital::Tti => "TTI",
        }
    }

    /// The spec's long name, e.g. `"largest_contentful_paint"`.
    pub const fn long_name(self) -> &'static str {
        match self {
            Vital::Lcp => "largest_contentful_paint",
            Vital::Inp => "interaction_to_next_paint",
            Vital::Cls => "cumulative_layout_shift",
            Vital::Fcp => "first_contentful_paint",
            Vital::Ttfb => "time_to_first_byte",
            Vital::Fid => "first_input_delay",
            Vital::Tti => "time_to_interactive",
        }
    }

    /// Parses a short name or a long name, ignoring ASCII case: `"LCP"`, `"lcp"` and
    /// `"largest_contentful_paint"` all give [`Vital::Lcp`].
    pub fn from_name(name: &str) -> Option<Vital> {
        let name = name.trim();
        Vital::ALL.into_iter().find(|v| v.name().eq_ignore_ascii_case(name) || v.long_name().eq_ignore_ascii_case(name))
    }

    /// The metric name the agent records the vital under, e.g. `"web_vitals_lcp"`.
    pub const fn metric_name(self) -> &'static str {
        match self {
            Vital::Lcp => "web_vitals_lcp",
            Vital::Inp => "web_vitals_inp",
            Vital::Cls => "web_vitals_cls",
            Vital::Fcp => "web_vitals_fcp",
            Vital::Ttfb => "web_vitals_ttfb",
            Vital::Fid => "web_vitals_fid",
            Vital::Tti => "web_vitals_tti",
        }
    }

    /// Milliseconds for every vital but CLS, which is a unitless score.
    pub const fn unit(self) -> VitalUnit {
        match self {
            Vital::Cls => VitalUnit::Unitless,
            _ => VitalUnit::Milliseconds,
        }
    }

    /// `(good_max, needs_improvement_max)`: Google's thresholds as web-vitals publishes them.
    ///
    /// TTI has no Google threshold, so it borrows the spec's warning and critical levels
    /// (500 ms and 1000 ms): a TTI rated good is one the spec would not warn about.
    pub const fn thresholds(self) -> (f64, f64) {
        match self {
            Vital::Lcp => (2500.0, 4000.0),
            Vital::Inp => (200.0, 500.0),
            Vital::Cls => (0.1, 0.25),
            Vital::Fcp => (1800.0, 3000.0),
            Vital::Ttfb => (800.0, 1800.0),
            Vital::Fid => (100.0, 300.0),
            Vital::Tti => (500.0, 1000.0),
        }
    }

    /// Rates a value: good up to and including the first threshold, poor above the second.
    ///
    /// A negative value is clamped to 0 (web-vitals clamps `startTime - activationStart` the same
    /// way), so it rates good. NaN rates poor: a value we cannot read must not look healthy.
    pub fn rate(self, value: f64) -> Rating {
        if value.is_nan() {
            return Rating::Poor;
        }
        let value = value.max(0.0);
        let (good, poor) = self.thresholds();
        if value <= good {
            Rating::Good
        } else if value <= poor {
            Rating::NeedsImprovement
        } else {
            Rating::Poor
        }
    }

    /// The spec's NextFaster levels, for the four vitals the spec configures (LCP, FID, CLS, TTI).
    pub const fn spec_levels(self) -> Option<SpecLevels> {
        match self {
            Vital::Lcp => Some(SpecLevels { target: 1800.0, warning: 2500.0, critical: 4000.0 }),
            Vital::Fid => Some(SpecLevels { target: 100.0, warning: 200.0, critical: 300.0 }),
            Vital::Cls => Some(SpecLevels { target: 0.1, warning: 0.15, critical: 0.25 }),
            Vital::Tti => Some(SpecLevels { target: 300.0, warning: 500.0, critical: 1000.0 }),
            Vital::Inp | Vital::Fcp | Vital::Ttfb => None,
        }
    }

    /// Where a value stands against the spec's levels; `None` for vitals the spec does not
    /// configure. See [`SpecLevels::status`] for the boundaries.
    pub fn spec_status(self, value: f64) -> Option<SpecStatus> {
        self.spec_levels().map(|levels| levels.status(value))
    }
}

/// Google's rating of a vital, serialised as web-vitals does (`"needs-improvement"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rating {
    /// At or under the first threshold.
    Good,
    /// Over the first threshold, at or under the second.
    NeedsImprovement,
    /// Over the second threshold.
    Poor,
}

impl Rating {
    /// `"good"`, `"needs-improvement"` or `"poor"`, as web-vitals spells them.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rating::Good => "good",
            Rating::NeedsImprovement => "needs-improvement",
            Rating::Poor => "poor",
        }
    }
}

/// The spec's NextFaster levels for one vital.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpecLevels {
    /// What NextFaster aims for.
    pub target: f64,
    /// Above this the spec warns.
    pub warning: f64,
    /// Above this the spec calls it critical.
    pub critical: f64,
}

impl SpecLevels {
    /// Each level is an inclusive upper bound, like Google's thresholds: a value exactly on a
    /// level still belongs to the band below it. NaN is [`SpecStatus::Critical`] and negatives
    /// count as 0, matching [`Vital::rate`].
    pub fn status(&self, value: f64) -> SpecStatus {
        if value.is_nan() {
            return SpecStatus::Critical;
        }
        let value = value.max(0.0);
        if value > self.critical {
            SpecStatus::Critical
        } else if value > self.warning {
            SpecStatus::Warning
        } else if value > self.target {
            SpecStatus::AboveTarget
        } else {
            SpecStatus::MeetsTarget
        }
    }
}

/// Where a value stands against [`SpecLevels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecStatus {
    /// `value <= target`.
    MeetsTarget,
    /// `target < value <= warning`: misses the target, not yet worth a warning.
    AboveTarget,
    /// `warning < value <= critical`.
    Warning,
    /// `value > critical`.
    Critical,
}

/// The spec samples 10% of sessions for vitals.
pub const SPEC_SAMPLE_RATE_PERCENT: f64 = 10.0;
/// The spec aggregates vitals as p75.
pub const SPEC_AGGREGATION_QUANTILE: f64 = 0.75;
/// The spec reports vitals over 1-minute windows.
pub const SPEC_REPORTING_WINDOW_SECS: u64 = 60;

/// Session windows for CLS, as web-vitals computes them.
///
/// A shift joins the current window if it starts less than 1000 ms after the previous shift and
/// less than 5000 ms after the window's first shift; otherwise it opens a new window. CLS is the
/// largest window sum. Shifts right after user input are expected, so they are ignored; so are
/// non-finite or negative values, which no browser reports and which would poison the sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClsAccumulator {
    window: Option<ClsWindow>,
    max: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct ClsWindow {
    first_ms: f64,
    last_ms: f64,
    sum: f64,
}

impl ClsAccumulator {
    const GAP_MS: f64 = 1000.0;
    const WINDOW_MS: f64 = 5000.0;

    /// An accumulator with no shifts.
    pub const fn new() -> Self {
        ClsAccumulator { window: None, max: 0.0 }
    }

    /// Feeds one `layout-shift` entry, in the order the browser reported them.
    pub fn add(&mut self, start_time_ms: f64, value: f64, had_recent_input: bool) {
        if had_recent_input || !value.is_finite() || value < 0.0 || !start_time_ms.is_finite() {
            return;
        }
        let window = match self.window {
            Some(w) if start_time_ms - w.last_ms < Self::GAP_MS && start_time_ms - w.first_ms < Self::WINDOW_MS => {
                ClsWindow { last_ms: start_time_ms, sum: w.sum + value, ..w }
            }
            _ => ClsWindow { first_ms: start_time_ms, last_ms: start_time_ms, sum: value },
        };
        self.window = Some(window);
        self.max = self.max.max(window.sum);
    }

    /// The CLS so far: the largest session window sum, 0 with no shifts.
    pub fn value(&self) -> f64 {
        self.max
    }

    /// Forgets every shift, as on a bfcache restore.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

/// INP selection, as web-vitals does it.
///
/// Keeps the 10 longest interactions; an interaction's latency is its longest entry. The reported
/// value skips one interaction per 50 (about p98), so one freak interaction on a busy page does
/// not define it.
///
/// Interaction ids follow the Event Timing spec: 0 means the entry is not part of an interaction
/// (ignored), and ids only grow, so an id above every id seen so far is a new interaction. That
/// counts interactions without remembering every id. When the browser has
/// `performance.interactionCount`, pass it to [`InpAccumulator::set_interaction_count`] instead.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InpAccumulator {
    /// `(interaction_id, latency_ms)`, longest first, at most [`Self::KEEP`].
    longest: Vec<(u64, f64)>,
    max_id: u64,
    count: u64,
}

impl InpAccumulator {
    const KEEP: usize = 10;
    const SKIP_EVERY: u64 = 50;

    /// An accumulator with no interactions.
    pub const fn new() -> Self {
        InpAccumulator { longest: Vec::new(), max_id: 0, count: 0 }
    }

    /// Feeds one `event` (or `first-input`) entry.
    pub fn add(&mut self, interaction_id: u64, duration_ms: f64) {
        if interaction_id == 0 || !duration_ms.is_finite() || duration_ms < 0.0 {
            return;
        }
        if interaction_id > self.max_id {
            self.max_id = interaction_id;
            self.count = self.count.saturating_add(1);
        }
        if let Some(slot) = self.longest.iter_mut().find(|(id, _)| *id == interaction_id) {
            if duration_ms <= slot.1 {
                return;
            }
            slot.1 = duration_ms;
        } else if self.longest.len() < Self::KEEP {
            self.longest.push((interaction_id, duration_ms));
        } else {
            match self.longest.last_mut() {
                Some(shortest) if duration_ms > shortest.1 => *shortest = (interaction_id, duration_ms),
                _ => return,
            }
        }
        // Insertion sort, longest first and stable, so of two equal latencies the earlier
        // interaction stays ahead. Ten items at most: this beats a general sort and keeps the
        // browser build free of sort code.
        for i in 1..self.longest.len() {
            let mut j = i;
            while j > 0 && self.longest[j - 1].1 < self.longest[j].1 {
                self.longest.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    /// Replaces the counted interactions with the browser's `performance.interactionCount`.
    pub fn set_interaction_count(&mut self, count: u64) {
        self.count = count;
    }

    /// How many interactions the page has had.
    pub fn interaction_count(&self) -> u64 {
        self.count
    }

    /// The INP so far: the interaction at index `min(len - 1, interaction_count / 50)` of the
    /// longest-first list; `None` before the first interaction.
    pub fn value(&self) -> Option<f64> {
        let last = self.longest.len().checked_sub(1)?;
        let skip = usize::try_from(self.count / Self::SKIP_EVERY).unwrap_or(usize::MAX);
        self.longest.get(skip.min(last)).map(|&(_, latency)| latency)
    }

    /// Forgets every interaction, as on a bfcache restore.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_long_names_parse() {
        for v in Vital::ALL {
            assert_eq!(Vital::from_name(v.name()), Some(v));
            assert_eq!(Vital::from_name(&v.name().to_ascii_lowercase()), Some(v));
            assert_eq!(Vital::from_name(v.long_name()), Some(v));
            assert!(v.metric_name().starts_with("web_vitals_"));
        }
        assert_eq!(Vital::from_name("first_input_delay"), Some(Vital::Fid));
        assert_eq!(Vital::from_name("interaction_to_next_paint"), Some(Vital::Inp));
        assert_eq!(Vital::from_name("time_to_first_byte"), Some(Vital::Ttfb));
        assert_eq!(Vital::from_name("LCPX"), None);
        assert_eq!(Vital::from_name(""), None);
        assert_eq!(Vital::Cls.unit(), VitalUnit::Unitless);
        assert_eq!(Vital::Ttfb.unit().as_str(), "ms");
        assert_eq!(Vital::Ttfb.metric_name(), "web_vitals_ttfb");
    }

    #[test]
    fn serde_names_match_web_vitals() {
        assert_eq!(serde_json::to_string(&Vital::Ttfb).expect("serialise"), "\"TTFB\"");
        assert_eq!(serde_json::to_string(&Rating::NeedsImprovement).expect("serialise"), "\"needs-improvement\"");
        let r: Rating = serde_json::from_str("\"poor\"").expect("deserialise");
        assert_eq!(r, Rating::Poor);
        assert_eq!(Rating::NeedsImprovement.as_str(), "needs-improvement");
    }

    #[test]
    fn thresholds_are_inclusive_and_edge_values_are_handled() {
        let cases = [
            (Vital::Lcp, 2500.0, 2500.01, 4000.0, 4000.01),
            (Vital::Inp, 200.0, 201.0, 500.0, 501.0),
            (Vital::Cls, 0.1, 0.11, 0.25, 0.26),
            (Vital::Fcp, 1800.0, 1801.0, 3000.0, 3001.0),
            (Vital::Ttfb, 800.0, 801.0, 1800.0, 1801.0),
            (Vital::Fid, 100.0, 101.0, 300.0, 301.0),
            (Vital::Tti, 500.0, 501.0, 1000.0, 1001.0),
        ];
        for (v, good, ni, ni_edge, poor) in cases {
            assert_eq!(v.rate(good), Rating::Good, "{v:?} at {good}");
            assert_eq!(v.rate(ni), Rating::NeedsImprovement, "{v:?} at {ni}");
            assert_eq!(v.rate(ni_edge), Rating::NeedsImprovement, "{v:?} at {ni_edge}");
            assert_eq!(v.rate(poor), Rating::Poor, "{v:?} at {poor}");
        }
        assert_eq!(Vital::Lcp.rate(-5.0), Rating::Good);
        assert_eq!(Vital::Lcp.rate(f64::NAN), Rating::Poor);
        assert_eq!(Vital::Cls.rate(f64::INFINITY), Rating::Poor);
    }

    #[test]
    fn spec_levels_and_status_bands() {
        assert_eq!(Vital::Inp.spec_levels(), None);
        assert_eq!(Vital::Ttfb.spec_status(10.0), None);
        let lcp = |v| Vital::Lcp.spec_status(v);
        assert_eq!(lcp(1800.0), Some(SpecStatus::MeetsTarget));
        assert_eq!(lcp(1800.5), Some(SpecStatus::AboveTarget));
        assert_eq!(lcp(2500.0), Some(SpecStatus::AboveTarget));
        assert_eq!(lcp(2501.0), Some(SpecStatus::Warning));
        assert_eq!(lcp(4000.0), Some(SpecStatus::Warning));
        assert_eq!(lcp(4000.5), Some(SpecStatus::Critical));
        assert_eq!(lcp(f64::NAN), Some(SpecStatus::Critical));
        assert_eq!(Vital::Cls.spec_status(0.12), Some(SpecStatus::AboveTarget));
        assert_eq!(Vital::Cls.spec_status(0.2), Some(SpecStatus::Warning));
        assert_eq!(Vital::Fid.spec_levels().map(|l| l.warning), Some(200.0));
        assert_eq!(Vital::Tti.spec_status(301.0), Some(SpecStatus::AboveTarget));
    }

    #[test]
    fn cls_takes_the_largest_session_window() {
        let mut cls = ClsAccumulator::new();
        // Window 1: 0, 900, 1800 (each < 1 s apart, all < 5 s after 0) = 0.3.
        cls.add(0.0, 0.1, false);
        cls.add(900.0, 0.1, false);
        cls.add(1800.0, 0.1, false);
        // Ignored: right after input.
        cls.add(1900.0, 5.0, true);
        // A 1 s gap exactly opens a new window (the rule is "< 1000 ms").
        cls.add(2800.0, 0.05, false);
        assert!((cls.value() - 0.3).abs() < 1e-12, "got {}", cls.value());
        // Window 2 keeps growing: 2800, 3700, 4600, 5500, 6400, 7300 but 7800 - 2800 = 5000 is not
        // < 5000, so 7800 starts window 3.
        for t in [3700.0, 4600.0, 5500.0, 6400.0, 7300.0] {
            cls.add(t, 0.05, false);
        }
        assert!((cls.value() - 0.3).abs() < 1e-12, "window 2 = 0.30 ties, got {}", cls.value());
        cls.add(7800.0, 0.2, false);
        assert!((cls.value() - 0.3).abs() < 1e-12, "window 3 = 0.2, got {}", cls.value());
        cls.add(8700.0, 0.15, false);
        assert!((cls.value() - 0.35).abs() < 1e-12, "window 3 = 0.35, got {}", cls.value());
        cls.add(9000.0, f64::NAN, false);
        assert!((cls.value() - 0.35).abs() < 1e-12);
        cls.reset();
        assert_eq!(cls.value(), 0.0);
    }

    #[test]
    fn inp_groups_entries_by_interaction_and_keeps_the_ten_longest() {
        let mut inp = InpAccumulator::new();
        assert_eq!(inp.value(), None);
        inp.add(7, 40.0);
        inp.add(7, 120.0); // the same interaction's longer entry
        inp.add(7, 80.0);
        inp.add(14, 90.0);
        inp.add(0, 999.0); // not an interaction
        assert_eq!(inp.interaction_count(), 2);
        assert_eq!(inp.value(), Some(120.0));

        inp.reset();
        for id in 1..=12u64 {
            inp.add(id, id as f64 * 10.0);
        }
        // Twelve interactions, index 12 / 50 = 0: the worst.
        assert_eq!(inp.value(), Some(120.0));
        // 10 ms and 20 ms were pushed out of the top 10, so a late short entry for one of them
        // neither counts again nor enters the list.
        inp.add(1, 15.0);
        assert_eq!(inp.interaction_count(), 12);
        assert_eq!(inp.longest.len(), 10);
        assert_eq!(inp.longest.last().map(|e| e.1), Some(30.0));
    }

    #[test]
    fn inp_skips_one_interaction_per_fifty() {
        let mut inp = InpAccumulator::new();
        for id in 1..=49u64 {
            inp.add(id, id as f64);
        }
        assert_eq!(inp.value(), Some(49.0), "49 interactions: index 0");
        inp.add(50, 50.0);
        assert_eq!(inp.value(), Some(49.0), "50 interactions: index 1 of [50, 49, ...]");
        for id in 51..=120u64 {
            inp.add(id, id as f64);
        }
        assert_eq!(inp.interaction_count(), 120);
        assert_eq!(inp.value(), Some(118.0), "120 interactions: index 2 of [120, 119, 118, ...]");
        inp.set_interaction_count(10_000);
        assert_eq!(inp.value(), Some(111.0), "index capped at the last of the 10 kept");
    }
}
