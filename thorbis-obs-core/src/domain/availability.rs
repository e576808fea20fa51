//! Whether an endpoint is up or down, from a stream of checks: consecutive-failure and
//! consecutive-success thresholds (Gatus' `failure-threshold` 3 and `success-threshold` 2 by
//! default), so one blip pages nobody, and a quorum over locations, so one bad vantage point
//! does not either.
//!
//! ```
//! use thorbis_obs_core::domain::availability::{EndpointTracker, Thresholds, Transition};
//!
//! let mut t = EndpointTracker::new(Thresholds::default());
//! assert_eq!(t.record(false), None); // one failure: still up
//! assert_eq!(t.record(false), None);
//! assert_eq!(t.record(false), Some(Transition::WentDown)); // the third in a row
//! assert_eq!(t.record(true), None); // one success: still down
//! assert_eq!(t.record(true), Some(Transition::CameBack));
//! ```

use serde::{Deserialize, Serialize};

/// How many checks in a row flip the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive failures before an up endpoint is down (at least 1).
    pub failure: u32,
    /// Consecutive successes before a down endpoint is up again (at least 1).
    pub success: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { failure: 3, success: 2 }
    }
}

/// A change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// Up to down.
    WentDown,
    /// Down to up.
    CameBack,
}

/// Up/down state of one endpoint seen from one location. It starts up: nothing says
/// otherwise until `failure` checks in a row fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointTracker {
    thresholds: Thresholds,
    down: bool,
    /// Failures in a row (while up) or successes in a row (while down).
    streak: u32,
}

impl EndpointTracker {
    /// A tracker in the up state. Thresholds of 0 count as 1.
    pub fn new(thresholds: Thresholds) -> Self {
        let thresholds = Thresholds { failure: thresholds.failure.max(1), success: thresholds.success.max(1) };
        EndpointTracker { thresholds, down: false, streak: 0 }
    }

    /// A tracker resumed in a known state (e.g. after a restart).
    pub fn resumed(thresholds: Thresholds, down: bool) -> Self {
        EndpointTracker { down, ..Self::new(thresholds) }
    }

    /// Records one check; returns the transition it caused, if any.
    pub fn record(&mut self, success: bool) -> Option<Transition> {
        // A check that agrees with the current state breaks the opposite streak.
        if success != self.down {
            self.streak = 0;
            return None;
        }
        self.streak = self.streak.saturating_add(1);
        let needed = if self.down { self.thresholds.success } else { self.thresholds.failure };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.down = !self.down;
        Some(if self.down { Transition::WentDown } else { Transition::CameBack })
    }

    /// True while down.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// Checks in a row against the current state so far.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }
}

/// The verdict over locations: down when at least `quorum` of the reporting locations say
/// down. A quorum larger than the number of reporting locations is capped at that number, so
/// an endpoint checked from fewer locations than configured can still be down; a quorum of 0
/// counts as 1. Without any reporting location, nothing is down.
///
/// ```
/// use thorbis_obs_core::domain::availability::quorum_down;
/// assert!(!quorum_down([true, false, false], 2));
/// assert!(quorum_down([true, true, false], 2));
/// assert!(quorum_down([true], 2)); // one location left, and it says down
/// assert!(!quorum_down(std::iter::empty(), 1));
/// ```
pub fn quorum_down(location_down: impl IntoIterator<Item = bool>, quorum: usize) -> bool {
    let (mut reporting, mut down) = (0usize, 0usize);
    for d in location_down {
        reporting += 1;
        down += usize::from(d);
    }
    reporting > 0 && down >= quorum.max(1).min(reporting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blip_between_failures_resets_the_streak() {
        let mut t = EndpointTracker::new(Thresholds::default());
        for ok in [false, false, true, false, false] {
            assert_eq!(t.record(ok), None);
        }
        assert!(!t.is_down());
        assert_eq!(t.record(false), Some(Transition::WentDown));
        assert!(t.is_down());
        // A failure while down breaks the recovery streak.
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(Transition::CameBack));
    }

    #[test]
    fn thresholds_of_one_flip_on_every_change() {
        let mut t = EndpointTracker::new(Thresholds { failure: 0, success: 1 });
        assert_eq!(t.thresholds().failure, 1);
        assert_eq!(t.record(false), Some(Transition::WentDown));
        assert_eq!(t.record(true), Some(Transition::CameBack));
        let mut r = EndpointTracker::resumed(Thresholds::default(), true);
        assert!(r.is_down());
        assert_eq!(r.record(true), None);
        assert_eq!(r.streak(), 1);
    }

    #[test]
    fn quorum_is_capped_by_the_reporting_locations() {
        assert!(quorum_down([true, false], 1));
        assert!(!quorum_down([false, false], 1));
        assert!(quorum_down([true, true], 3));
        assert!(quorum_down([true], 0));
    }
}
