//! Per-key series: a vital's sketch and ratings, a counter's count and sum, and the map of
//! series by the flat form of their keys.

use super::keys::FlatKey;
use crate::sketch::QuantileSketch;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One vital's window: its distribution and how many values got each rating (weighted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VitalAgg {
    /// The values, weighted by the sampling rate.
    pub sketch: QuantileSketch,
    /// Weighted counts of `good`, `needs-improvement`, `poor`.
    pub ratings: [u64; 3],
}

impl VitalAgg {
    pub(super) fn merge(&mut self, other: &VitalAgg) {
        self.sketch.merge(&other.sketch);
        for (a, b) in self.ratings.iter_mut().zip(other.ratings) {
            *a += b;
        }
    }
}

/// A counter's window: how many (weighted) and the sum of their values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    /// Weighted count.
    pub count: f64,
    /// Sum of the events' values (business value, conversion value), weighted.
    pub sum: f64,
}

/// A distribution's window: a page timing's or the page's API requests' durations (weighted),
/// and for requests how many had a known status and how many of those failed (400 and up).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// The durations, weighted by the sampling rate.
    pub sketch: QuantileSketch,
    /// Requests whose status the browser reported (weighted).
    #[serde(default)]
    pub with_status: f64,
    /// Of those, the ones with a status of 400 or more.
    #[serde(default)]
    pub failed: f64,
}

impl Distribution {
    pub(super) fn merge(&mut self, other: &Distribution) {
        self.sketch.merge(&other.sketch);
        self.with_status += other.with_status;
        self.failed += other.failed;
    }
}

/// Series of one kind, by the flat form of their keys; serialised as a list of `[key, value]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series<K, V> {
    map: HashMap<String, (K, V)>,
}

impl<K, V> Default for Series<K, V> {
    fn default() -> Self {
        Series { map: HashMap::new() }
    }
}

impl<K: FlatKey + Clone, V: Default> Series<K, V> {
    /// The value of the series whose flat key is `flat`, made with `key` if it is new.
    pub(super) fn slot(&mut self, flat: &str, key: impl FnOnce() -> K) -> &mut V {
        if !self.map.contains_key(flat) {
            self.map.insert(flat.to_string(), (key(), V::default()));
        }
        match self.map.get_mut(flat) {
            Some((_, v)) => v,
            None => unreachable!("inserted above"),
        }
    }

    /// Like [`Series::slot`], but a new series is made only while there are fewer than `cap`:
    /// None when `flat` is new and the cap is reached.
    pub(super) fn capped_slot(&mut self, flat: &str, cap: usize, key: impl FnOnce() -> K) -> Option<&mut V> {
        if self.map.len() >= cap && !self.map.contains_key(flat) {
            return None;
        }
        Some(self.slot(flat, key))
    }

    pub(super) fn entry(&mut self, key: &K) -> &mut V {
        let mut flat = String::new();
        key.flat(&mut flat);
        self.slot(&flat, || key.clone())
    }
}

impl<K, V> Series<K, V> {
    /// The series, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.values().map(|(k, v)| (k, v))
    }

    /// How many series.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<K: Serialize + Ord, V: Serialize> Serialize for Series<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<(&K, &V)> = self.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.serialize(s)
    }
}

impl<'de, K: Deserialize<'de> + FlatKey, V: Deserialize<'de>> Deserialize<'de> for Series<K, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(K, V)>::deserialize(d)?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let mut flat = String::new();
            k.flat(&mut flat);
            map.insert(flat, (k, v));
        }
        Ok(Series { map })
    }
}
