//! Time as the engine sees it: millisecond timestamps and human durations.
//!
//! The engine never reads a clock: every call takes `now` so a test can replay an hour in a
//! millisecond. Durations use the spec's strings (`"30s"`, `"5m"`, `"1h"`) and Prometheus'
//! compound form (`"1h30m"`, `"150ms"`).

use core::fmt;
use core::time::Duration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch (UTC). Negative values are before 1970.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, with a fraction.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// As a chrono UTC date-time (None when out of chrono's range).
    pub fn to_datetime(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.0)
    }

    /// RFC 3339 text with millisecond precision, e.g. `2026-11-26T19:51:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => format!("@{}ms", self.0),
        }
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(dt: chrono::DateTime<chrono::Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration: expected a number and a unit such as \"30s\", \"5m\" or \"1h\"")]
    Empty,
    /// A leading minus sign.
    #[error("duration {0:?} is negative: durations must be zero or more")]
    Negative(String),
    /// A character that is neither a digit nor a known unit.
    #[error(
        "invalid duration {input:?}: {problem}; expected forms like \"30s\", \"5m\", \"1h\", \"1h30m\" (units ms, s, m, h, d, w)"
    )]
    Invalid {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Larger than the engine can represent.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `"30s"`, `"5m"`, `"1h"`, `"10m"`, `"1h30m"`, `"250ms"`, `"7d"`, `"2w"`; `"0"` is zero.
///
/// ```
/// use thorbis_obs_core::time::parse_duration;
/// assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
/// assert!(parse_duration("5 minutes").is_err());
/// assert!(parse_duration("-1m").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(input.to_string()));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = |problem: &str| DurationError::Invalid { input: input.to_string(), problem: problem.to_string() };
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    let mut last_rank = usize::MAX;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid(&format!("expected a number at position {start}")));
        }
        let number: u128 = s[start..i].parse().map_err(|_| DurationError::Overflow(input.to_string()))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let (rank, millis) = match unit {
            "w" => (0, 604_800_000u128),
            "d" => (1, 86_400_000),
            "h" => (2, 3_600_000),
            "m" => (3, 60_000),
            "s" => (4, 1_000),
            "ms" => (5, 1),
            "" if i < bytes.len() => {
                return Err(invalid(&format!("unexpected character {:?}", s[i..].chars().next().unwrap_or(' '))));
            }
            "" => return Err(invalid("a number needs a unit")),
            other => return Err(invalid(&format!("unknown unit {other:?}"))),
        };
        if last_rank != usize::MAX && rank <= last_rank {
            return Err(invalid("units must go from largest to smallest, each once"));
        }
        last_rank = rank;
        total = number
            .checked_mul(millis)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(input.to_string()))?;
        if i < bytes.len() && !bytes[i].is_ascii_digit() {
            return Err(invalid(&format!("unexpected character {:?}", s[i..].chars().next().unwrap_or(' '))));
        }
    }
    let ms = u64::try_from(total).map_err(|_| DurationError::Overflow(input.to_string()))?;
    if ms > i64::MAX as u64 / 2 {
        return Err(DurationError::Overflow(input.to_string()));
    }
    Ok(Duration::from_millis(ms))
}

/// Formats a duration the way [`parse_duration`] reads it (`"1h30m"`, `"250ms"`, `"0s"`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in
        [("w", 604_800_000u128), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)]
    {
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

/// A duration that reads and writes as text (`"5m"`), for rule and config files.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Zero.
    pub const ZERO: HumanDuration = HumanDuration(Duration::ZERO);

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }

    /// The std duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl core::str::FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"1h\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                if v == 0 {
                    Ok(HumanDuration::ZERO)
                } else {
                    Err(E::custom(format!("bare number {v} has no unit: write \"{v}s\" or \"{v}m\"")))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                if v < 0 {
                    Err(E::custom(format!("duration {v} is negative: durations must be zero or more")))
                } else {
                    self.visit_u64(v as u64)
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_name_the_problem() {
        let e = parse_duration("5 minutes").unwrap_err().to_string();
        assert!(e.contains("5 minutes") && e.contains("unexpected character"), "{e}");
        let e = parse_duration("-1m").unwrap_err().to_string();
        assert!(e.contains("negative"), "{e}");
        assert!(parse_duration("5").unwrap_err().to_string().contains("needs a unit"));
        assert!(parse_duration("5y").unwrap_err().to_string().contains("unknown unit"));
        assert!(parse_duration("5m1h").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
    }

    #[test]
    fn format_round_trips() {
        for s in ["30s", "5m", "1h30m", "250ms", "2w3d"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
    }
}
