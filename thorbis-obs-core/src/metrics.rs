//! Samples and label sets.
//!
//! A [`Sample`] is one observation of a named metric with a label set at a time. Label sets are
//! kept sorted by name so two sets with the same pairs compare, hash and print the same.

use crate::time::Timestamp;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Longest metric or label name accepted.
pub const MAX_NAME_LEN: usize = 200;
/// Longest label value accepted.
pub const MAX_LABEL_VALUE_LEN: usize = 1024;
/// Most labels on one series.
pub const MAX_LABELS: usize = 32;

/// A sorted, duplicate-free set of `name=value` pairs.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// The empty set.
    pub const fn new() -> Self {
        Labels(Vec::new())
    }

    /// Builds a set from pairs; a later pair with the same name replaces an earlier one.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut l = Labels::new();
        for (k, v) in pairs {
            l.insert(k, v);
        }
        l
    }

    /// Sets `name` to `value`, replacing any previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name.as_str())) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    /// Builder form of [`Labels::insert`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => Some(self.0.remove(i).1),
            Err(_) => None,
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// Pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `self` with every pair of `other` added on top (other wins on conflicts).
    pub fn merged(&self, other: &Labels) -> Labels {
        let mut out = self.clone();
        for (k, v) in other.iter() {
            out.insert(k, v);
        }
        out
    }

    /// A stable 64-bit FNV-1a hash of the pairs, the same on every platform and run.
    pub fn stable_hash(&self) -> u64 {
        let mut h = crate::domain::hash::Fnv64::new();
        for (k, v) in self.iter() {
            h.write(k.as_bytes());
            h.write(&[0xff]);
            h.write(v.as_bytes());
            h.write(&[0xfe]);
        }
        h.finish()
    }

    /// Checks names and sizes: label names are `[a-zA-Z_][a-zA-Z0-9_]*`, values at most
    /// [`MAX_LABEL_VALUE_LEN`] bytes, at most [`MAX_LABELS`] pairs.
    pub fn validate(&self) -> Result<(), SampleError> {
        if self.0.len() > MAX_LABELS {
            return Err(SampleError::TooManyLabels(self.0.len()));
        }
        for (k, v) in self.iter() {
            if !is_valid_name(k, false) {
                return Err(SampleError::InvalidLabelName(k.to_string()));
            }
            if v.len() > MAX_LABEL_VALUE_LEN {
                return Err(SampleError::LabelValueTooLong { name: k.to_string(), len: v.len() });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prometheus text form: `{a="1", b="x"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        f.write_str("}")
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = <std::collections::BTreeMap<String, String>>::deserialize(d)?;
        Ok(Labels(map.into_iter().collect()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Labels::from_pairs(iter)
    }
}

/// True for `[a-zA-Z_:][a-zA-Z0-9_:]*` (metric names, colons allowed) or
/// `[a-zA-Z_][a-zA-Z0-9_]*` (label names), at most [`MAX_NAME_LEN`] bytes.
pub fn is_valid_name(name: &str, allow_colon: bool) -> bool {
    let ok_first = |c: u8| c.is_ascii_alphabetic() || c == b'_' || (allow_colon && c == b':');
    let ok_rest = |c: u8| ok_first(c) || c.is_ascii_digit();
    let b = name.as_bytes();
    !b.is_empty() && b.len() <= MAX_NAME_LEN && ok_first(b[0]) && b[1..].iter().all(|&c| ok_rest(c))
}

/// Why a sample was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// The metric name is empty or has characters outside `[a-zA-Z0-9_:]`.
    #[error("invalid metric name {0:?}: use [a-zA-Z_:][a-zA-Z0-9_:]*, at most 200 bytes")]
    InvalidMetricName(String),
    /// A label name has characters outside `[a-zA-Z0-9_]`.
    #[error("invalid label name {0:?}: use [a-zA-Z_][a-zA-Z0-9_]*, at most 200 bytes")]
    InvalidLabelName(String),
    /// A label value is too long.
    #[error("label {name:?} has a value of {len} bytes; the limit is 1024")]
    LabelValueTooLong {
        /// Label name.
        name: String,
        /// Its value's length.
        len: usize,
    },
    /// Too many labels.
    #[error("{0} labels on one series; the limit is 32")]
    TooManyLabels(usize),
    /// NaN or an infinity: such a sample would poison every aggregate of its window.
    #[error("sample value {value} for {metric} is not finite: NaN and infinities are rejected")]
    NotFinite {
        /// Metric name.
        metric: String,
        /// The value.
        value: f64,
    },
    /// Older than the newest sample already stored for the series.
    #[error(
        "out-of-order sample for {metric}{labels}: timestamp {at} is older than the newest stored {newest}; \
         samples of one series must arrive in time order"
    )]
    OutOfOrder {
        /// Metric name.
        metric: String,
        /// Series labels.
        labels: Labels,
        /// The rejected timestamp (ms).
        at: i64,
        /// The newest stored timestamp (ms).
        newest: i64,
    },
    /// The engine holds as many series as it may; a new one is refused until old ones expire.
    #[error("series limit of {limit} reached: {metric}{labels} is a new series and was not stored")]
    TooManySeries {
        /// Metric name.
        metric: String,
        /// Series labels.
        labels: Labels,
        /// The limit.
        limit: usize,
    },
}

/// One observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Metric name, e.g. `http_request_duration`.
    pub name: String,
    /// Series labels.
    #[serde(default)]
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// When it was observed.
    pub timestamp: Timestamp,
}

impl Sample {
    /// A sample.
    pub fn new(name: impl Into<String>, labels: Labels, value: f64, timestamp: Timestamp) -> Self {
        Sample { name: name.into(), labels, value, timestamp }
    }

    /// Checks the name, labels and that the value is finite.
    pub fn validate(&self) -> Result<(), SampleError> {
        if !is_valid_name(&self.name, true) {
            return Err(SampleError::InvalidMetricName(self.name.clone()));
        }
        self.labels.validate()?;
        if !self.value.is_finite() {
            return Err(SampleError::NotFinite { metric: self.name.clone(), value: self.value });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_and_deduplicated() {
        let a = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(a.to_string(), "{a=\"1\", b=\"3\"}");
        let b = Labels::new().with("a", "1").with("b", "3");
        assert_eq!(a, b);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), Labels::new().with("a", "1").stable_hash());
    }

    #[test]
    fn invalid_samples_are_named() {
        let s = Sample::new("bad name", Labels::new(), 1.0, Timestamp(0));
        assert!(matches!(s.validate(), Err(SampleError::InvalidMetricName(_))));
        let s = Sample::new("ok", Labels::new(), f64::NAN, Timestamp(0));
        assert!(s.validate().unwrap_err().to_string().contains("not finite"));
        let s = Sample::new("ok", Labels::new().with("9x", "v"), 1.0, Timestamp(0));
        assert!(matches!(s.validate(), Err(SampleError::InvalidLabelName(_))));
    }
}
