//! Muting: named suppression conditions switched on through the API, maintenance windows, and
//! silences (Alertmanager's: label matchers over a time range, with an author and a comment).

use crate::metrics::Labels;
use crate::rules::{AlertRule, Matchers};
use crate::time::{HumanDuration, Timestamp};
use chrono::{Datelike, NaiveTime, TimeZone, Weekday};
use serde::{Deserialize, Serialize};

/// A named condition such as `deployment_in_progress`, switched on at `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveCondition {
    /// The condition's name.
    pub name: String,
    /// When it was switched on.
    pub since: Timestamp,
    /// When it switches itself off (None: until switched off, bounded by each rule's duration).
    pub until: Option<Timestamp>,
}

impl ActiveCondition {
    /// True when it mutes `rule` at `now`.
    pub fn mutes(&self, rule: &AlertRule, now: Timestamp) -> bool {
        if now < self.since || self.until.is_some_and(|u| now >= u) {
            return false;
        }
        rule.suppression_rules.iter().any(|s| s.condition == self.name && now < self.since.plus(s.duration.get()))
    }
}

/// Silences an engine holds at most (more are refused by whoever creates them).
pub const MAX_SILENCES: usize = 1_000;

/// A silence, as Alertmanager's: alerts whose labels (the series', the rule's, `alertname`
/// and `severity`) match every matcher send nothing from `starts_at` to `ends_at`. They keep
/// their state, and what they owe goes out when it ends, as with suppressions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// What it matches (`=`, `!=`, `=~`, `!~`); at least one.
    pub matchers: Matchers,
    /// When it starts.
    pub starts_at: Timestamp,
    /// When it ends (expiring it sets this to now).
    pub ends_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Where a silence is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// Muting.
    Active,
    /// Over.
    Expired,
}

impl SilenceState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// Its state at `now`.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// True when it mutes an alert with `labels` at `now`.
    pub fn mutes(&self, labels: &Labels, now: Timestamp) -> bool {
        self.state(now) == SilenceState::Active && !self.matchers.0.is_empty() && self.matchers.matches(labels)
    }
}

/// When a maintenance window is open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Once, from `start` (inclusive) to `end` (exclusive).
    Once {
        /// Start (RFC 3339).
        start: chrono::DateTime<chrono::Utc>,
        /// End (RFC 3339).
        end: chrono::DateTime<chrono::Utc>,
    },
    /// Every week on `days`, from local time `start` for `duration`, in `timezone` (an IANA
    /// name such as `America/New_York`, or `UTC`), daylight saving time included.
    Weekly {
        /// Days the window opens, e.g. `[sat, sun]`.
        days: Vec<Weekday>,
        /// Local opening time, `HH:MM`.
        start: String,
        /// How long it stays open (at most 7 days).
        duration: HumanDuration,
        /// IANA time zone.
        #[serde(default = "utc")]
        timezone: String,
    },
}

fn utc() -> String {
    "UTC".into()
}

/// A maintenance window: while open, matching alerts keep their state but send nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    /// Name, for the API and logs.
    pub name: String,
    /// Rule ids it applies to (empty: every rule).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Series it applies to (empty: every series).
    #[serde(default)]
    pub matchers: Matchers,
    /// When it is open.
    #[serde(flatten)]
    pub schedule: Schedule,
}

/// Why a maintenance window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance window {name:?}: {problem}")]
pub struct ScheduleError {
    /// The window's name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

impl MaintenanceWindow {
    /// Checks the time zone, start time and duration.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        let err = |p: String| ScheduleError { name: self.name.clone(), problem: p };
        match &self.schedule {
            Schedule::Once { start, end } if end <= start => Err(err("end must be after start".into())),
            Schedule::Once { .. } => Ok(()),
            Schedule::Weekly { days, start, duration, timezone } => {
                if days.is_empty() {
                    return Err(err("weekly windows need at least one day".into()));
                }
                NaiveTime::parse_from_str(start, "%H:%M").map_err(|_| err(format!("start {start:?} is not HH:MM")))?;
                if duration.get().is_zero() || duration.get().as_secs() > 7 * 86_400 {
                    return Err(err("duration must be between 1s and 7d".into()));
                }
                timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                    err(format!("unknown time zone {timezone:?}; use an IANA name such as Europe/Berlin"))
                })?;
                Ok(())
            }
        }
    }

    /// True when the window is open at `now` for `rule_id` and series `labels`.
    pub fn mutes(&self, rule_id: &str, labels: &Labels, now: Timestamp) -> bool {
        if !self.rules.is_empty() && !self.rules.iter().any(|r| r == rule_id) {
            return false;
        }
        self.is_open(now) && self.matchers.matches(labels)
    }

    /// True when the window is open at `now`. An invalid window is never open.
    pub fn is_open(&self, now: Timestamp) -> bool {
        match &self.schedule {
            Schedule::Once { start, end } => Timestamp::from(*start) <= now && now < Timestamp::from(*end),
            Schedule::Weekly { days, start, duration, timezone } => {
                let (Ok(tz), Ok(t), Some(now_utc)) =
                    (timezone.parse::<chrono_tz::Tz>(), NaiveTime::parse_from_str(start, "%H:%M"), now.to_datetime())
                else {
                    return false;
                };
                let today = now_utc.with_timezone(&tz).date_naive();
                (0..=8).any(|back| {
                    let Some(day) = today.checked_sub_days(chrono::Days::new(back)) else { return false };
                    if !days.contains(&day.weekday()) {
                        return false;
                    }
                    // A start time skipped by a DST jump opens at the first valid instant after.
                    let opened = tz
                        .from_local_datetime(&day.and_time(t))
                        .earliest()
                        .or_else(|| tz.from_local_datetime(&(day.and_time(t) + chrono::Duration::hours(1))).earliest());
                    opened.is_some_and(|o| {
                        let o = Timestamp(o.timestamp_millis());
                        o <= now && now < o.plus(duration.get())
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::from(chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339").with_timezone(&chrono::Utc))
    }

    #[test]
    fn weekly_window_follows_time_zone_and_dst() {
        let w = MaintenanceWindow {
            name: "sunday".into(),
            rules: vec![],
            matchers: Matchers::default(),
            schedule: Schedule::Weekly {
                days: vec![Weekday::Sun],
                start: "02:30".into(),
                duration: HumanDuration::from_secs(3600),
                timezone: "America/New_York".into(),
            },
        };
        w.validate().expect("valid");
        // 2026-11-29 is a Sunday; New York is UTC-5 in winter: 02:30 local = 07:30Z.
        assert!(w.is_open(at("2026-11-29T07:30:00Z")));
        assert!(w.is_open(at("2026-11-29T08:29:59Z")));
        assert!(!w.is_open(at("2026-11-29T08:30:00Z")));
        assert!(!w.is_open(at("2026-11-29T02:30:00Z")));
        // Summer (UTC-4): 2026-07-05 is a Sunday, 02:30 local = 06:30Z.
        assert!(w.is_open(at("2026-07-05T06:45:00Z")));
        // 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 -> 03:00).
        assert!(w.is_open(at("2026-03-08T07:45:00Z")));
    }

    #[test]
    fn bad_windows_are_named() {
        let w = MaintenanceWindow {
            name: "x".into(),
            rules: vec![],
            matchers: Matchers::default(),
            schedule: Schedule::Weekly {
                days: vec![Weekday::Mon],
                start: "25:00".into(),
                duration: HumanDuration::from_secs(60),
                timezone: "Mars/Olympus".into(),
            },
        };
        assert!(w.validate().unwrap_err().to_string().contains("25:00"));
    }
}
