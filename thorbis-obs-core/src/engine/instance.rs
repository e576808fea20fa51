//! One alert instance: a (rule, series) pair that is pending, firing, or resolved but not yet
//! announced as resolved. Inactive instances are not stored.

use crate::metrics::Labels;
use crate::rules::AlertRule;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The state of an alert instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds but not yet for the rule's `for`.
    Pending,
    /// Firing.
    Firing,
    /// Stopped firing; the resolved notification has not gone out yet (it is muted).
    Resolved,
}

impl AlertState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// Someone taking an alert on (PagerDuty's acknowledge).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who: a user, or the name of the token they used.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// The persisted and inspectable state of one alert instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// The series' labels.
    pub series_labels: Labels,
    /// The state.
    pub state: AlertState,
    /// First evaluation at which the condition held (start of pending).
    pub active_at: Timestamp,
    /// When it started firing; the escalation clock runs from here.
    pub fired_at: Option<Timestamp>,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// First evaluation at which the condition stopped holding while firing (`keep_firing_for`).
    pub keep_firing_since: Option<Timestamp>,
    /// The last aggregated value (None: no data).
    pub value: Option<f64>,
    /// Escalation level reached (0 = base severity). Never decreases within an episode.
    pub level: usize,
    /// Highest level announced in this episode; None when nothing was announced yet.
    pub notified_level: Option<usize>,
    /// Every channel told about this episode; resolves go to all of them.
    pub notified_channels: BTreeSet<String>,
    /// When the last notification of this episode was emitted.
    pub last_notified_at: Option<Timestamp>,
    /// Notifications emitted in this episode (part of their ids).
    pub seq: u32,
    /// Until when a missing series keeps its last state after a restore (cleared by the
    /// series' first window with data).
    #[serde(default)]
    pub no_data_grace_until: Option<Timestamp>,
    /// Who acknowledged this episode, and when: no escalation and no repeats follow, the
    /// resolve still goes out.
    #[serde(default)]
    pub acked: Option<Acknowledgement>,
    /// Whether the acknowledgement was announced to the channels that heard of the alert.
    #[serde(default)]
    pub ack_announced: bool,
    #[serde(skip)]
    pub(crate) seen_tick: u64,
}

impl Instance {
    pub(crate) fn new(series_labels: Labels, now: Timestamp) -> Self {
        Instance {
            series_labels,
            state: AlertState::Pending,
            active_at: now,
            fired_at: None,
            resolved_at: None,
            keep_firing_since: None,
            value: None,
            level: 0,
            notified_level: None,
            notified_channels: BTreeSet::new(),
            last_notified_at: None,
            seq: 0,
            no_data_grace_until: None,
            acked: None,
            ack_announced: false,
            seen_tick: 0,
        }
    }

    /// Applies one evaluation's verdict. Returns false when the instance should be dropped
    /// (pending that cleared, or resolved without anything announced).
    pub(crate) fn step(&mut self, rule: &AlertRule, holds: bool, now: Timestamp) -> bool {
        if holds {
            self.keep_firing_since = None;
            match self.state {
                AlertState::Pending => {
                    if now.since(self.active_at) >= rule.pending_for.get() {
                        self.state = AlertState::Firing;
                        self.fired_at = Some(now);
                    }
                }
                AlertState::Firing => {}
                AlertState::Resolved => {
                    // Back before the resolve was announced: for the receivers it never
                    // stopped, so the episode (and its escalation clock) continues.
                    self.state = AlertState::Firing;
                    self.resolved_at = None;
                }
            }
        } else {
            match self.state {
                AlertState::Pending => return false,
                AlertState::Firing => {
                    let since = *self.keep_firing_since.get_or_insert(now);
                    let kff = rule.keep_firing_for.get();
                    if kff.is_zero() || now.since(since) >= kff {
                        self.state = AlertState::Resolved;
                        self.resolved_at = Some(now);
                        self.keep_firing_since = None;
                    }
                }
                AlertState::Resolved => {}
            }
        }
        if self.state == AlertState::Firing {
            let fired = self.fired_at.unwrap_or(now);
            let reached = rule.escalation.iter().take_while(|s| now.since(fired) >= s.after.get()).count();
            self.level = self.level.max(reached);
        }
        !(self.state == AlertState::Resolved && self.notified_level.is_none())
    }
}
