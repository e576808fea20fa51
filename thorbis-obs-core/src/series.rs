//! The series registry: one [`SeriesWindow`] per (metric, label set).
//!
//! Lookups by name and labels hash strings, so hot paths resolve a [`SeriesId`] once and push
//! by id afterwards.

use crate::metrics::{Labels, Sample, SampleError};
use crate::time::Timestamp;
use crate::window::SeriesWindow;
use core::time::Duration;
use std::collections::HashMap;

/// A handle to one series in a [`SeriesStore`]; valid until the series is collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

/// A map keyed by [`SeriesId`] with a multiplicative hash: ids are small dense integers, so
/// SipHash's DoS resistance buys nothing on the evaluation hot path.
pub type SeriesMap<V> = HashMap<SeriesId, V, core::hash::BuildHasherDefault<IdHasher>>;

/// The hasher behind [`SeriesMap`].
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

impl core::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Debug)]
struct Series {
    name: String,
    labels: Labels,
    window: SeriesWindow,
}

#[derive(Debug, Default)]
struct Metric {
    by_labels: HashMap<Labels, SeriesId>,
    ids: Vec<SeriesId>,
    retention: Option<Duration>,
    quantiles: bool,
}

/// Every series the engine knows, grouped by metric name.
#[derive(Debug)]
pub struct SeriesStore {
    metrics: HashMap<String, Metric>,
    series: Vec<Option<Series>>,
    free: Vec<u32>,
    default_retention: Duration,
    max_series: usize,
}

/// Live series a store holds at most (a few tens of MB with an hour of points each).
pub const MAX_SERIES: usize = 50_000;

impl Default for SeriesStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(3600))
    }
}

impl SeriesStore {
    /// A store that keeps samples for `default_retention` unless a metric asks for more.
    pub fn new(default_retention: Duration) -> Self {
        SeriesStore {
            metrics: HashMap::new(),
            series: Vec::new(),
            free: Vec::new(),
            default_retention,
            max_series: MAX_SERIES,
        }
    }

    /// Sets how many series may be live at once (default [`MAX_SERIES`]).
    pub fn set_max_series(&mut self, max: usize) {
        self.max_series = max;
    }

    /// Asks that `metric` keep at least `retention` of samples, with quantile sketches when
    /// `quantiles` is set. Applies to existing and future series.
    pub fn configure_metric(&mut self, metric: &str, retention: Duration, quantiles: bool) {
        let m = self.metrics.entry(metric.to_string()).or_default();
        m.retention = Some(m.retention.unwrap_or(Duration::ZERO).max(retention));
        m.quantiles |= quantiles;
        let (ret, q) = (m.retention.unwrap_or(self.default_retention), m.quantiles);
        for id in m.ids.clone() {
            if let Some(Some(s)) = self.series.get_mut(id.0 as usize) {
                s.window.ensure_retention(ret);
                if q {
                    s.window.enable_quantiles();
                }
            }
        }
    }

    /// The id of `name{labels}`, creating the series if needed.
    pub fn series_id(&mut self, name: &str, labels: &Labels) -> SeriesId {
        if let Some(id) = self.metrics.get(name).and_then(|m| m.by_labels.get(labels)) {
            return *id;
        }
        let m = self.metrics.entry(name.to_string()).or_default();
        let retention = m.retention.unwrap_or(self.default_retention).max(self.default_retention);
        let series = Series {
            name: name.to_string(),
            labels: labels.clone(),
            window: SeriesWindow::new(retention, m.quantiles),
        };
        let id = match self.free.pop() {
            Some(slot) => {
                self.series[slot as usize] = Some(series);
                SeriesId(slot)
            }
            None => {
                self.series.push(Some(series));
                SeriesId((self.series.len() - 1) as u32)
            }
        };
        m.by_labels.insert(labels.clone(), id);
        m.ids.push(id);
        id
    }

    /// The id of `name{labels}` if it exists.
    pub fn find(&self, name: &str, labels: &Labels) -> Option<SeriesId> {
        self.metrics.get(name)?.by_labels.get(labels).copied()
    }

    /// Validates and stores a sample. On error nothing is stored. A sample of a new series is
    /// refused while the maximum of series ([`MAX_SERIES`] by default) are live (they expire with their samples), so no
    /// sender can grow the store without bound.
    pub fn ingest(&mut self, sample: &Sample) -> Result<SeriesId, SampleError> {
        sample.validate()?;
        if self.len() >= self.max_series && self.find(&sample.name, &sample.labels).is_none() {
            return Err(SampleError::TooManySeries {
                metric: sample.name.clone(),
                labels: sample.labels.clone(),
                limit: self.max_series,
            });
        }
        let id = self.series_id(&sample.name, &sample.labels);
        self.push(id, sample.timestamp, sample.value).map(|()| id)
    }

    /// Pushes a value into a series by id (the hot path: no hashing). Errors name the series.
    #[inline]
    pub fn push(&mut self, id: SeriesId, at: Timestamp, value: f64) -> Result<(), SampleError> {
        let Some(Some(s)) = self.series.get_mut(id.0 as usize) else {
            return Err(SampleError::InvalidMetricName(format!("<collected series #{}>", id.0)));
        };
        s.window.push(at, value).map_err(|e| match e {
            SampleError::OutOfOrder { at, newest, .. } => {
                SampleError::OutOfOrder { metric: s.name.clone(), labels: s.labels.clone(), at, newest }
            }
            SampleError::NotFinite { value, .. } => SampleError::NotFinite { metric: s.name.clone(), value },
            other => other,
        })
    }

    /// Every metric name with at least one series, sorted.
    pub fn metric_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> =
            self.metrics.iter().filter(|(_, m)| !m.ids.is_empty()).map(|(k, _)| k.as_str()).collect();
        v.sort_unstable();
        v
    }

    /// The series of one metric.
    pub fn series_of(&self, metric: &str) -> &[SeriesId] {
        self.metrics.get(metric).map(|m| m.ids.as_slice()).unwrap_or(&[])
    }

    /// The window of a series.
    pub fn window(&self, id: SeriesId) -> Option<&SeriesWindow> {
        self.series.get(id.0 as usize)?.as_ref().map(|s| &s.window)
    }

    /// The labels of a series.
    pub fn labels(&self, id: SeriesId) -> Option<&Labels> {
        self.series.get(id.0 as usize)?.as_ref().map(|s| &s.labels)
    }

    /// The metric name of a series.
    pub fn name(&self, id: SeriesId) -> Option<&str> {
        self.series.get(id.0 as usize)?.as_ref().map(|s| s.name.as_str())
    }

    /// Number of live series.
    pub fn len(&self) -> usize {
        self.series.len() - self.free.len()
    }

    /// True when no series is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicts old samples everywhere and removes series left empty, except those `keep` says
    /// are still referenced. Returns how many series were removed.
    pub fn collect_garbage(&mut self, now: Timestamp, keep: impl Fn(SeriesId) -> bool) -> usize {
        let mut removed = 0;
        for slot in 0..self.series.len() {
            let id = SeriesId(slot as u32);
            let Some(s) = self.series[slot].as_mut() else { continue };
            s.window.evict(now.0);
            if !s.window.is_empty() || keep(id) {
                continue;
            }
            if let Some(m) = self.metrics.get_mut(&s.name) {
                m.by_labels.remove(&s.labels);
                m.ids.retain(|x| *x != id);
            }
            self.series[slot] = None;
            self.free.push(slot as u32);
            removed += 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Aggregation;

    #[test]
    fn ingest_names_bad_series() {
        let mut st = SeriesStore::default();
        let l = Labels::new().with("route", "/a");
        st.ingest(&Sample::new("lat", l.clone(), 1.0, Timestamp(10))).expect("valid");
        let e = st.ingest(&Sample::new("lat", l.clone(), 1.0, Timestamp(5))).unwrap_err().to_string();
        assert!(e.contains("lat{route=\"/a\"}") && e.contains("out-of-order"), "{e}");
        assert_eq!(st.len(), 1);
        let id = st.find("lat", &l).expect("exists");
        assert_eq!(
            st.window(id).and_then(|w| w.aggregate(Aggregation::Count, Timestamp(10), Duration::from_secs(1))),
            Some(1.0)
        );
    }

    #[test]
    fn garbage_collection_frees_and_reuses() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        let a = st.series_id("m", &Labels::new().with("a", "1"));
        st.push(a, Timestamp(0), 1.0).expect("ok");
        let b = st.series_id("m", &Labels::new().with("a", "2"));
        st.push(b, Timestamp(100_000), 1.0).expect("ok");
        assert_eq!(st.collect_garbage(Timestamp(100_000), |_| false), 1);
        assert_eq!(st.series_of("m"), &[b]);
        let c = st.series_id("m", &Labels::new().with("a", "3"));
        assert_eq!(c, a, "slot reused");
    }

    #[test]
    fn new_series_are_refused_at_the_cap_and_admitted_again_after_expiry() {
        let mut st = SeriesStore::new(Duration::from_secs(60));
        st.set_max_series(100);
        for i in 0..100 {
            st.ingest(&Sample::new("m", Labels::new().with("i", i.to_string()), 1.0, Timestamp(0))).expect("room");
        }
        let new = Sample::new("m", Labels::new().with("i", "new"), 1.0, Timestamp(1));
        let e = st.ingest(&new).expect_err("full");
        assert!(e.to_string().contains("series limit"), "{e}");
        // Existing series still take samples.
        st.ingest(&Sample::new("m", Labels::new().with("i", "7"), 2.0, Timestamp(2))).expect("existing");
        // Once the old samples expire and their series are collected, new ones come in.
        st.collect_garbage(Timestamp(120_000), |_| false);
        st.ingest(&Sample::new("m", Labels::new().with("i", "new"), 1.0, Timestamp(120_000))).expect("room again");
    }
}
