//! Error groups over time ("issues", as Sentry calls them): which release brought a group and
//! which saw it last, whether a fix regressed, the resolve / ignore workflow, users affected,
//! events per hour and the breakdown of its events by route, browser, release, industry and
//! user role.
//!
//! [`Issues`] is fed the collector's closed windows (merged across agents, so every agent on a
//! shared store holds the same book) and turns what changed into signals for the rule engine
//! ([`Issues::samples`]): `error_group_new`, `error_group_regressed` and `error_group_unignored`
//! while such an episode is under an hour old, `error_group_events_5m` per active group, and
//! `error_group_users` beside each (the `errors` rule pack reads them; a notification says how
//! many users with `{{ $values.error_group_users }}`).
//!
//! Workflow, as Sentry's: a group is unresolved, resolved, resolved in the next release, or
//! ignored (for a while, until N more events, or until M more users). An event after a plain
//! resolve is a regression; after "resolved in the next release" only an event of a release
//! newer than the one current when it was resolved is (the old release's stragglers are not);
//! an ignored group whose event or user limit is passed comes back as unresolved with a signal
//! of its own, one whose time is up comes back quietly. Releases are ordered by when the book
//! first saw them, per service.
//!
//! Bounded: at most [`MAX_ISSUES`] groups (the longest quiet goes first), [`MAX_ISSUE_USERS`]
//! distinct users counted exactly per group (then "at least"), [`MAX_BREAKDOWN_VALUES`] values
//! per breakdown key (the rest under `other`), [`MAX_RELEASES`] releases, 24 hourly counts.

use super::window::{ErrorGroup, OTHER, RumWindow};
use crate::domain::errors::truncate;
use crate::metrics::{Labels, Sample};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Error groups the book keeps; a new one beyond this pushes out the one seen longest ago.
pub const MAX_ISSUES: usize = 1_000;
/// Distinct users counted exactly per group; beyond, the count is "at least".
pub const MAX_ISSUE_USERS: usize = 500;
/// Values kept per breakdown key; the rest are counted under `other`.
pub const MAX_BREAKDOWN_VALUES: usize = 10;
/// What a group's events are broken down by.
pub const BREAKDOWN_KEYS: [&str; 5] = ["route", "browser", "release", "industry", "userRole"];
/// Releases the book orders.
pub const MAX_RELEASES: usize = 1_000;
/// Hours of events per hour kept per group (the sparkline).
pub const HOURS: usize = 24;
/// How long a new, regressed or un-ignored group keeps its signal up.
pub const EPISODE: Duration = Duration::from_secs(3600);
/// The span of `error_group_events_5m`.
pub const SPIKE_SPAN: Duration = Duration::from_secs(300);
/// Characters of the message the signals carry as `title`.
pub const TITLE_CHARS: usize = 120;

/// A new group, while its episode lasts; the value is its events so far.
pub const ERROR_GROUP_NEW: &str = "error_group_new";
/// A resolved group seen again (in a newer release, for "resolved in the next release").
pub const ERROR_GROUP_REGRESSED: &str = "error_group_regressed";
/// An ignored group past its event or user limit.
pub const ERROR_GROUP_UNIGNORED: &str = "error_group_unignored";
/// Events of one group in the last five minutes (groups not ignored, with events).
pub const ERROR_GROUP_EVENTS_5M: &str = "error_group_events_5m";
/// Users a group reached, with the labels of each signal above.
pub const ERROR_GROUP_USERS: &str = "error_group_users";

/// Adds user hash `h` to a sorted set of at most `cap`; one that does not fit counts in `more`.
pub fn add_user(users: &mut Vec<u64>, more: &mut u64, h: u64, cap: usize) {
    if let Err(i) = users.binary_search(&h) {
        if users.len() < cap {
            users.insert(i, h);
        } else {
            *more = more.saturating_add(1);
        }
    }
}

/// Adds `n` events of `value` under `key`, at most `cap` values per key (the rest under
/// [`OTHER`]); returns whether a new entry was made.
pub fn add_facet(
    map: &mut BTreeMap<String, BTreeMap<String, u64>>,
    key: &str,
    value: &str,
    n: u64,
    cap: usize,
) -> bool {
    let values = match map.get_mut(key) {
        Some(v) => v,
        None => map.entry(key.to_string()).or_default(),
    };
    if let Some(c) = values.get_mut(value) {
        *c = c.saturating_add(n);
        return false;
    }
    let key = if values.len() < cap { value } else { OTHER };
    let fresh = !values.contains_key(key);
    *values.entry(key.to_string()).or_default() += n;
    fresh
}

/// The user hash of a user id the page or server named, else of the session.
pub fn user_hash(user_id: Option<&str>, session_id: Option<&str>) -> Option<u64> {
    let (tag, id) = match (user_id.filter(|u| !u.is_empty()), session_id.filter(|s| !s.is_empty())) {
        (Some(u), _) => ("u", u),
        (None, Some(s)) => ("s", s),
        (None, None) => return None,
    };
    let mut h = crate::domain::hash::Fnv64::new();
    h.write(tag.as_bytes());
    h.write(&[0x1f]);
    h.write(id.as_bytes());
    Some(h.finish())
}

/// Where a group stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Status {
    /// Open.
    #[default]
    Unresolved,
    /// Fixed. With `release`: fixed in the release after it, so its events stay quiet.
    #[serde(rename_all = "camelCase")]
    Resolved {
        /// The release current when it was resolved "in the next release".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_next_release_after: Option<String>,
    },
    /// Muted until any of the limits.
    #[serde(rename_all = "camelCase")]
    Ignored {
        /// Until then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
        /// Until the group's event count reaches this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_events: Option<u64>,
        /// Until its users reach this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_users: Option<u64>,
    },
}

impl Status {
    /// `unresolved`, `resolved` or `ignored`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Unresolved => "unresolved",
            Status::Resolved { .. } => "resolved",
            Status::Ignored { .. } => "ignored",
        }
    }
}

/// What someone asks of a group (the API's body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Open it again.
    Unresolved,
    /// It is fixed: any later event is a regression.
    Resolved,
    /// It is fixed in the next release: events of the current release or older stay quiet.
    ResolvedInNextRelease,
    /// Mute it, for `for`, or until `count` more events, or `users` more users (any first; none
    /// given: for good).
    Ignored {
        /// For this long (`2h`, `7d`).
        #[serde(default, rename = "for")]
        for_: Option<crate::time::HumanDuration>,
        /// Until this many more events.
        #[serde(default)]
        count: Option<u64>,
        /// Until this many more users.
        #[serde(default)]
        users: Option<u64>,
    },
}

/// A status as the store keeps it: shared by agents, the newest wins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRecord {
    /// The group.
    pub fingerprint: String,
    /// Its status.
    #[serde(flatten)]
    pub status: Status,
    /// When it was set.
    pub at: Timestamp,
    /// Who set it (`thorbis-obs` when an event did).
    pub by: String,
}

/// Why a signal is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EpisodeKind {
    /// First seen.
    New,
    /// Seen after it was resolved.
    Regressed,
    /// Seen past its ignore limit.
    Unignored,
}

impl EpisodeKind {
    /// The metric of its signal.
    pub fn metric(self) -> &'static str {
        match self {
            EpisodeKind::New => ERROR_GROUP_NEW,
            EpisodeKind::Regressed => ERROR_GROUP_REGRESSED,
            EpisodeKind::Unignored => ERROR_GROUP_UNIGNORED,
        }
    }
}

/// A new, regressed or un-ignored group's signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    /// Why.
    pub kind: EpisodeKind,
    /// When it began.
    pub since: Timestamp,
    /// The release it began in (empty when the events had none).
    pub release: String,
    /// The group's events before it began.
    pub count_before: u64,
}

/// One error group over its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// The group's fingerprint.
    pub fingerprint: String,
    /// The application.
    pub service: String,
    /// Its environment.
    pub env: String,
    /// `error`, `unhandledrejection`, `captured`, `business` or `server`.
    pub kind: String,
    /// The first message seen, cut to [`TITLE_CHARS`].
    pub title: String,
    /// Events in all.
    pub count: u64,
    /// First seen (collector's clock).
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// The release of its first events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_release: Option<String>,
    /// The newest release it was seen in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_release: Option<String>,
    /// Users (hashes, sorted), at most [`MAX_ISSUE_USERS`].
    #[serde(default)]
    pub users: Vec<u64>,
    /// Users beyond those (an upper bound).
    #[serde(default)]
    pub users_more: u64,
    /// Events per hour: (hour since the epoch, events), the last [`HOURS`].
    #[serde(default)]
    pub hourly: Vec<(i64, u64)>,
    /// Events of the last windows, (window start, events), for `error_group_events_5m`.
    #[serde(default)]
    pub recent: Vec<(Timestamp, u64)>,
    /// Events by [`BREAKDOWN_KEYS`] value.
    #[serde(default)]
    pub breakdown: BTreeMap<String, BTreeMap<String, u64>>,
    /// Where it stands.
    #[serde(default)]
    pub status: Status,
    /// When and by whom that was set.
    #[serde(default)]
    pub status_at: Timestamp,
    /// See `status_at`.
    #[serde(default)]
    pub status_by: String,
    /// The latest window's group (message, sample stack, breadcrumbs, tags; its users and
    /// breakdown left out), for its page once the windows have gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<ErrorGroup>,
    /// The signal it raises, while it is younger than [`EPISODE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<Episode>,
}

impl Issue {
    /// Users reached: exact up to [`MAX_ISSUE_USERS`], then a lower bound.
    pub fn users_affected(&self) -> u64 {
        self.users.len() as u64 + if self.users.len() >= MAX_ISSUE_USERS { 0 } else { self.users_more }
    }

    /// Whether the user count is a lower bound.
    pub fn users_capped(&self) -> bool {
        self.users.len() >= MAX_ISSUE_USERS && self.users_more > 0
    }

    /// Events per hour for the [`HOURS`] hours up to `now`, oldest first.
    pub fn sparkline(&self, now: Timestamp) -> [u64; HOURS] {
        let mut out = [0; HOURS];
        let this_hour = now.as_millis().div_euclid(3_600_000);
        for (h, n) in &self.hourly {
            let ago = this_hour - h;
            if (0..HOURS as i64).contains(&ago) {
                out[HOURS - 1 - ago as usize] += n;
            }
        }
        out
    }

    fn add_window(&mut self, g: &ErrorGroup, start: Timestamp) {
        self.count = self.count.saturating_add(g.count);
        self.first_seen = self.first_seen.min(g.first_seen);
        self.last_seen = self.last_seen.max(g.last_seen);
        for h in &g.users {
            add_user(&mut self.users, &mut self.users_more, *h, MAX_ISSUE_USERS);
        }
        self.users_more = self.users_more.saturating_add(g.users_more);
        let hour = start.as_millis().div_euclid(3_600_000);
        match self.hourly.iter_mut().find(|(h, _)| *h == hour) {
            Some((_, n)) => *n += g.count,
            None => self.hourly.push((hour, g.count)),
        }
        self.hourly.sort_unstable();
        let keep_from = self.hourly.len().saturating_sub(HOURS);
        self.hourly.drain(..keep_from);
        self.recent.push((start, g.count));
        for (key, values) in &g.breakdown {
            for (value, n) in values {
                add_facet(&mut self.breakdown, key, value, *n, MAX_BREAKDOWN_VALUES);
            }
        }
        let mut latest = g.clone();
        latest.users = Vec::new();
        latest.users_more = 0;
        latest.breakdown = BTreeMap::new();
        self.latest = Some(latest);
    }

    fn labels(&self, release: Option<&str>, links: &str) -> Labels {
        let mut l = Labels::new()
            .with("fingerprint", self.fingerprint.as_str())
            .with("service", self.service.as_str())
            .with("env", self.env.as_str())
            .with("title", self.title.as_str())
            .with("url", format!("{links}/errors/{}", self.fingerprint));
        if let Some(r) = release {
            l.insert("release", r);
        }
        l
    }
}

/// A change the book made on its own (a regression, an ignore that ended), for the store.
pub type Changed = StatusRecord;

/// Why a status could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// No group by that fingerprint.
    #[error("no error group {0:?}")]
    Unknown(String),
    /// A limit of zero or a duration of zero.
    #[error("{0}")]
    Invalid(&'static str),
}

/// The error groups' book: every group seen (up to [`MAX_ISSUES`]), and the releases in the
/// order they appeared.
#[derive(Clone, Debug, Default)]
pub struct Issues {
    issues: HashMap<String, Issue>,
    /// (service, release) → when first seen.
    releases: HashMap<(String, String), Timestamp>,
}

impl Issues {
    /// An empty book.
    pub fn new() -> Self {
        Issues::default()
    }

    /// A book holding `issues` (as stored), statuses as stored too.
    pub fn from_stored(issues: impl IntoIterator<Item = Issue>) -> Self {
        let mut book = Issues::new();
        for i in issues {
            for r in [&i.first_release, &i.last_release].into_iter().flatten() {
                book.note_release(&i.service, r, i.first_seen);
            }
            if book.issues.len() < MAX_ISSUES {
                book.issues.insert(i.fingerprint.clone(), i);
            }
        }
        book
    }

    /// The group `fingerprint`.
    pub fn get(&self, fingerprint: &str) -> Option<&Issue> {
        self.issues.get(fingerprint)
    }

    /// How many groups.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// Every group.
    pub fn iter(&self) -> impl Iterator<Item = &Issue> {
        self.issues.values()
    }

    fn note_release(&mut self, service: &str, release: &str, at: Timestamp) {
        let key = (service.to_string(), release.to_string());
        if let Some(t) = self.releases.get_mut(&key) {
            *t = (*t).min(at);
            return;
        }
        if self.releases.len() >= MAX_RELEASES {
            if let Some(oldest) = self.releases.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                self.releases.remove(&oldest);
            }
        }
        self.releases.insert(key, at);
    }

    /// When `release` of `service` was first seen (unknown releases sort first).
    fn release_rank(&self, service: &str, release: &str) -> (Timestamp, String) {
        let at = self.releases.get(&(service.to_string(), release.to_string())).copied().unwrap_or(Timestamp(i64::MIN));
        (at, release.to_string())
    }

    /// The newest release of `service` the book knows.
    pub fn newest_release(&self, service: &str) -> Option<&str> {
        self.releases
            .iter()
            .filter(|((s, _), _)| s == service)
            .max_by(|a, b| (a.1, &a.0.1).cmp(&(b.1, &b.0.1)))
            .map(|((_, r), _)| r.as_str())
    }

    /// Takes a closed window's groups in (the window starting at `w.start`, closed at `now`);
    /// returns the statuses it changed (regressions, ignores that ended), for the store.
    pub fn observe(&mut self, w: &RumWindow, now: Timestamp) -> Vec<Changed> {
        let mut changed = Vec::new();
        let mut groups: Vec<&ErrorGroup> = w.errors.values().collect();
        groups.sort_by_key(|g| (g.first_seen, &g.fingerprint));
        for g in groups {
            let releases: Vec<&str> = g
                .breakdown
                .get("release")
                .map(|r| r.keys().map(String::as_str).filter(|r| *r != OTHER && !r.is_empty()).collect())
                .unwrap_or_default();
            for r in &releases {
                self.note_release(&g.service, r, g.first_seen);
            }
            let newest_here = releases.iter().max_by_key(|r| self.release_rank(&g.service, r)).map(|r| r.to_string());
            if !self.issues.contains_key(&g.fingerprint) {
                self.make_room();
                let first = g.tags.get("release").filter(|r| !r.is_empty()).cloned().or_else(|| newest_here.clone());
                let mut issue = Issue {
                    fingerprint: g.fingerprint.clone(),
                    service: g.service.clone(),
                    env: g.env.clone(),
                    kind: g.kind.clone(),
                    title: truncate(&g.message, TITLE_CHARS).to_string(),
                    count: 0,
                    first_seen: g.first_seen,
                    last_seen: g.last_seen,
                    first_release: first.clone(),
                    last_release: None,
                    users: Vec::new(),
                    users_more: 0,
                    hourly: Vec::new(),
                    recent: Vec::new(),
                    breakdown: BTreeMap::new(),
                    status: Status::Unresolved,
                    status_at: now,
                    status_by: String::new(),
                    latest: None,
                    episode: Some(Episode {
                        kind: EpisodeKind::New,
                        since: now,
                        release: first.unwrap_or_default(),
                        count_before: 0,
                    }),
                };
                issue.add_window(g, w.start);
                issue.last_release = newest_here;
                self.issues.insert(g.fingerprint.clone(), issue);
                continue;
            }
            let newer = |book: &Issues, than: &str| {
                releases.iter().any(|r| book.release_rank(&g.service, r) > book.release_rank(&g.service, than))
            };
            let Some(issue) = self.issues.get(&g.fingerprint) else { continue };
            let before = issue.count;
            let reopen = match &issue.status {
                Status::Unresolved => None,
                Status::Resolved { in_next_release_after: None } => Some(EpisodeKind::Regressed),
                Status::Resolved { in_next_release_after: Some(r) } => newer(self, r).then_some(EpisodeKind::Regressed),
                Status::Ignored { .. } => None,
            };
            let last_release = match (&issue.last_release, &newest_here) {
                (Some(old), Some(new)) if self.release_rank(&g.service, old) >= self.release_rank(&g.service, new) => {
                    Some(old.clone())
                }
                (old, new) => new.clone().or_else(|| old.clone()),
            };
            let Some(issue) = self.issues.get_mut(&g.fingerprint) else { continue };
            issue.add_window(g, w.start);
            issue.last_release = last_release;
            let reopen = reopen.or(match &issue.status {
                Status::Ignored { until_events, until_users, .. }
                    if until_events.is_some_and(|n| issue.count >= n)
                        || until_users.is_some_and(|n| issue.users_affected() >= n) =>
                {
                    Some(EpisodeKind::Unignored)
                }
                _ => None,
            });
            if let Some(kind) = reopen {
                issue.status = Status::Unresolved;
                issue.status_at = now;
                issue.status_by = "thorbis-obs".into();
                let release = newest_here.clone().or_else(|| issue.last_release.clone()).unwrap_or_default();
                issue.episode = Some(Episode { kind, since: now, release, count_before: before });
                changed.push(record(issue));
            }
        }
        let span_start = now.minus(SPIKE_SPAN);
        for issue in self.issues.values_mut() {
            issue.recent.retain(|(t, _)| *t >= span_start);
            // An ignore whose time is up ends quietly.
            if matches!(issue.status, Status::Ignored { until: Some(t), .. } if now >= t) {
                issue.status = Status::Unresolved;
                issue.status_at = now;
                issue.status_by = "thorbis-obs".into();
                changed.push(record(issue));
            }
            if issue.episode.as_ref().is_some_and(|e| now.since(e.since) >= EPISODE) {
                issue.episode = None;
            }
        }
        changed
    }

    fn make_room(&mut self) {
        if self.issues.len() < MAX_ISSUES {
            return;
        }
        if let Some(fp) =
            self.issues.values().min_by_key(|i| (i.last_seen, i.fingerprint.clone())).map(|i| i.fingerprint.clone())
        {
            self.issues.remove(&fp);
        }
    }

    /// Sets a group's status as `by` asked at `now`; returns the record to store.
    pub fn act(
        &mut self,
        fingerprint: &str,
        action: &Action,
        by: &str,
        now: Timestamp,
    ) -> Result<StatusRecord, IssueError> {
        let newest = self.issues.get(fingerprint).and_then(|i| self.newest_release(&i.service)).map(str::to_string);
        let issue = self.issues.get_mut(fingerprint).ok_or_else(|| IssueError::Unknown(fingerprint.to_string()))?;
        issue.status = match action {
            Action::Unresolved => Status::Unresolved,
            Action::Resolved => Status::Resolved { in_next_release_after: None },
            Action::ResolvedInNextRelease => Status::Resolved {
                in_next_release_after: Some(newest.or_else(|| issue.last_release.clone()).ok_or(
                    IssueError::Invalid("no release is known for this group's service: resolve it without one"),
                )?),
            },
            Action::Ignored { for_, count, users } => {
                if for_.is_some_and(|d| d.get().is_zero()) || *count == Some(0) || *users == Some(0) {
                    return Err(IssueError::Invalid("an ignore limit must be more than zero"));
                }
                Status::Ignored {
                    until: for_.map(|d| now.plus(d.get())),
                    until_events: count.map(|n| issue.count.saturating_add(n)),
                    until_users: users.map(|n| issue.users_affected().saturating_add(n)),
                }
            }
        };
        issue.status_at = now;
        issue.status_by = by.to_string();
        if !matches!(issue.status, Status::Unresolved) {
            issue.episode = None;
        }
        Ok(record(issue))
    }

    /// Takes a status another agent (or this one, before a restart) stored, when it is newer
    /// than the one held.
    pub fn apply_record(&mut self, r: &StatusRecord) {
        if let Some(issue) = self.issues.get_mut(&r.fingerprint) {
            if r.at > issue.status_at || (r.at == issue.status_at && issue.status_by.is_empty()) {
                issue.status = r.status.clone();
                issue.status_at = r.at;
                issue.status_by = r.by.clone();
                if !matches!(issue.status, Status::Unresolved) {
                    issue.episode = None;
                }
            }
        }
    }

    /// The signals for the rule engine at `now`; `links` is the agent's public address (or
    /// empty), for the `url` label.
    pub fn samples(&self, now: Timestamp, links: &str) -> Vec<Sample> {
        let mut out = Vec::new();
        for i in self.issues.values() {
            let users = i.users_affected() as f64;
            if let (Some(e), Status::Unresolved) = (&i.episode, &i.status) {
                if now.since(e.since) < EPISODE {
                    let labels = i.labels(Some(e.release.as_str()).filter(|r| !r.is_empty()), links);
                    let events = i.count.saturating_sub(e.count_before) as f64;
                    out.push(Sample::new(e.kind.metric(), labels.clone(), events, now));
                    out.push(Sample::new(ERROR_GROUP_USERS, labels, users, now));
                }
            }
            let recent: u64 = i.recent.iter().map(|(_, n)| n).sum();
            if recent > 0 && !matches!(i.status, Status::Ignored { .. }) {
                let labels = i.labels(None, links);
                out.push(Sample::new(ERROR_GROUP_EVENTS_5M, labels.clone(), recent as f64, now));
                out.push(Sample::new(ERROR_GROUP_USERS, labels, users, now));
            }
        }
        out
    }
}

fn record(issue: &Issue) -> StatusRecord {
    StatusRecord {
        fingerprint: issue.fingerprint.clone(),
        status: issue.status.clone(),
        at: issue.status_at,
        by: issue.status_by.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn t(min: i64) -> Timestamp {
        Timestamp(1_795_000_000_000 + min * MIN)
    }

    /// A window at minute `min` with `n` events of group `fp` in `release`, from `users`.
    fn window(min: i64, fp: &str, release: &str, n: u64, users: &[u64]) -> RumWindow {
        let mut w = RumWindow::new(t(min));
        let mut tags = BTreeMap::new();
        let mut breakdown = BTreeMap::new();
        if !release.is_empty() {
            tags.insert("release".to_string(), release.to_string());
            add_facet(&mut breakdown, "release", release, n, MAX_BREAKDOWN_VALUES);
        }
        add_facet(&mut breakdown, "route", "/pay", n, MAX_BREAKDOWN_VALUES);
        let g = ErrorGroup {
            fingerprint: fp.into(),
            service: "shop".into(),
            env: "production".into(),
            kind: "error".into(),
            message: "TypeError: x is undefined".into(),
            sample_stack: None,
            route: "/pay".into(),
            tags,
            breadcrumbs: Vec::new(),
            count: n,
            first_seen: t(min),
            last_seen: t(min),
            users: users.to_vec(),
            users_more: 0,
            breakdown,
            debug_ids: BTreeMap::new(),
        };
        w.errors.insert(fp.into(), g);
        w
    }

    fn signals<'a>(book: &Issues, now: Timestamp, metric: &str, out: &'a mut Vec<Sample>) -> Vec<&'a Sample> {
        *out = book.samples(now, "https://obs.example.com");
        out.iter().filter(|s| s.name == metric).collect()
    }

    #[test]
    fn a_new_group_signals_for_an_hour_with_its_release_users_and_link() {
        let mut book = Issues::new();
        assert!(book.observe(&window(0, "a1", "1.0", 3, &[1, 2]), t(1)).is_empty());
        let mut buf = Vec::new();
        let new = signals(&book, t(1), ERROR_GROUP_NEW, &mut buf);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].value, 3.0);
        assert_eq!(new[0].labels.get("release"), Some("1.0"));
        assert_eq!(new[0].labels.get("url"), Some("https://obs.example.com/errors/a1"));
        assert_eq!(new[0].labels.get("title"), Some("TypeError: x is undefined"));
        let users: Vec<_> =
            buf.iter().filter(|s| s.name == ERROR_GROUP_USERS && s.labels.get("release") == Some("1.0")).collect();
        assert_eq!(users[0].value, 2.0);
        // More events: the same signal, grown; an hour on it is gone.
        book.observe(&window(30, "a1", "1.0", 2, &[2, 3]), t(31));
        let i = book.get("a1").expect("kept");
        assert_eq!((i.count, i.users_affected()), (5, 3));
        assert_eq!(signals(&book, t(31), ERROR_GROUP_NEW, &mut buf)[0].value, 5.0);
        book.observe(&RumWindow::new(t(61)), t(62));
        assert!(signals(&book, t(62), ERROR_GROUP_NEW, &mut buf).is_empty());
    }

    #[test]
    fn a_resolved_group_seen_again_is_a_regression_once() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 1, &[1]), t(1));
        let r = book.act("a1", &Action::Resolved, "ana", t(2)).expect("known");
        assert_eq!((r.status.name(), r.by.as_str()), ("resolved", "ana"));
        let changed = book.observe(&window(3, "a1", "1.1", 4, &[5]), t(4));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].status, Status::Unresolved);
        let mut buf = Vec::new();
        let reg = signals(&book, t(4), ERROR_GROUP_REGRESSED, &mut buf);
        assert_eq!(reg.len(), 1);
        assert_eq!((reg[0].value, reg[0].labels.get("release")), (4.0, Some("1.1")));
        assert!(signals(&book, t(4), ERROR_GROUP_NEW, &mut buf).is_empty(), "the new episode ended with the resolve");
        assert_eq!(book.get("a1").map(|i| i.last_release.clone()), Some(Some("1.1".into())));
        // Unresolved now: more events are not another regression.
        assert!(book.observe(&window(5, "a1", "1.1", 1, &[5]), t(6)).is_empty());
    }

    #[test]
    fn resolved_in_the_next_release_ignores_the_old_releases_stragglers() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 1, &[1]), t(1));
        book.act("a1", &Action::ResolvedInNextRelease, "ana", t(2)).expect("a release is known");
        assert!(
            book.observe(&window(3, "a1", "1.0", 2, &[2]), t(4)).is_empty(),
            "1.0 is the release it was resolved in"
        );
        assert_eq!(book.get("a1").map(|i| i.status.name()), Some("resolved"));
        let changed = book.observe(&window(5, "a1", "1.1", 1, &[3]), t(6));
        assert_eq!(changed.len(), 1, "1.1 came after");
        let mut buf = Vec::new();
        assert_eq!(signals(&book, t(6), ERROR_GROUP_REGRESSED, &mut buf).len(), 1);
        // Without any release there is nothing to resolve "in the next one".
        let mut bare = Issues::new();
        bare.observe(&window(0, "b", "", 1, &[1]), t(1));
        assert!(matches!(bare.act("b", &Action::ResolvedInNextRelease, "ana", t(2)), Err(IssueError::Invalid(_))));
    }

    #[test]
    fn ignored_until_n_more_events_stays_quiet_until_the_nth() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 1, &[1]), t(1));
        let ignore = Action::Ignored { for_: None, count: Some(3), users: None };
        book.act("a1", &ignore, "ana", t(2)).expect("known");
        let mut buf = Vec::new();
        for m in [3, 4] {
            assert!(book.observe(&window(m, "a1", "1.0", 1, &[1]), t(m + 1)).is_empty());
            assert!(signals(&book, t(m + 1), ERROR_GROUP_UNIGNORED, &mut buf).is_empty());
            assert!(signals(&book, t(m + 1), ERROR_GROUP_EVENTS_5M, &mut buf).is_empty(), "ignored: no spike signal");
        }
        let changed = book.observe(&window(5, "a1", "1.0", 1, &[1]), t(6));
        assert_eq!(changed.len(), 1);
        assert_eq!(signals(&book, t(6), ERROR_GROUP_UNIGNORED, &mut buf).len(), 1);
        // Zero limits are refused; an unknown group too.
        let zero = Action::Ignored { for_: None, count: Some(0), users: None };
        assert!(matches!(book.act("a1", &zero, "ana", t(7)), Err(IssueError::Invalid(_))));
        assert!(matches!(book.act("zz", &Action::Resolved, "ana", t(7)), Err(IssueError::Unknown(_))));
    }

    #[test]
    fn an_ignore_for_a_while_ends_quietly() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 1, &[1]), t(1));
        let ignore =
            Action::Ignored { for_: Some(crate::time::HumanDuration::from_secs(600)), count: None, users: None };
        book.act("a1", &ignore, "ana", t(2)).expect("known");
        assert!(book.observe(&RumWindow::new(t(5)), t(6)).is_empty());
        let changed = book.observe(&RumWindow::new(t(12)), t(13));
        assert_eq!(changed.iter().map(|c| c.status.clone()).collect::<Vec<_>>(), [Status::Unresolved]);
        let mut buf = Vec::new();
        assert!(signals(&book, t(13), ERROR_GROUP_UNIGNORED, &mut buf).is_empty());
    }

    #[test]
    fn a_spike_counts_the_last_five_minutes() {
        let mut book = Issues::new();
        let mut buf = Vec::new();
        for m in 0..8 {
            book.observe(&window(m, "a1", "1.0", 20, &[m as u64]), t(m + 1));
        }
        let spike = signals(&book, t(8), ERROR_GROUP_EVENTS_5M, &mut buf);
        assert_eq!(spike[0].value, 100.0, "windows starting at minutes 3..=7");
        assert!(spike[0].labels.get("release").is_none());
    }

    #[test]
    fn users_and_breakdowns_are_bounded() {
        let mut book = Issues::new();
        let users: Vec<u64> = (0..(MAX_ISSUE_USERS as u64 + 20)).collect();
        let mut w = window(0, "a1", "1.0", 1, &users);
        let g = w.errors.get_mut("a1").expect("there");
        for r in 0..15 {
            add_facet(&mut g.breakdown, "route", &format!("/r{r}"), 1, MAX_BREAKDOWN_VALUES);
        }
        book.observe(&w, t(1));
        let i = book.get("a1").expect("kept");
        assert_eq!(i.users.len(), MAX_ISSUE_USERS);
        assert!(i.users_capped());
        assert_eq!(i.users_affected(), MAX_ISSUE_USERS as u64);
        let routes = &i.breakdown["route"];
        assert_eq!(routes.len(), MAX_BREAKDOWN_VALUES + 1);
        assert_eq!(routes.values().sum::<u64>(), 1 + 15, "one event of /pay and fifteen of the others, folded or not");
    }

    #[test]
    fn a_newer_stored_status_wins_and_an_older_one_does_not() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 1, &[1]), t(1));
        book.act("a1", &Action::Resolved, "ana", t(5)).expect("known");
        let older = StatusRecord { fingerprint: "a1".into(), status: Status::Unresolved, at: t(3), by: "bo".into() };
        book.apply_record(&older);
        assert_eq!(book.get("a1").map(|i| i.status.name()), Some("resolved"));
        let newer = StatusRecord { at: t(6), ..older };
        book.apply_record(&newer);
        assert_eq!(book.get("a1").map(|i| (i.status.name(), i.status_by.as_str())), Some(("unresolved", "bo")));
        let json = serde_json::to_string(&newer).expect("encodes");
        assert_eq!(serde_json::from_str::<StatusRecord>(&json).expect("decodes"), newer);
    }

    #[test]
    fn the_sparkline_puts_each_hour_in_its_place() {
        let mut book = Issues::new();
        book.observe(&window(0, "a1", "1.0", 2, &[1]), t(1));
        book.observe(&window(125, "a1", "1.0", 5, &[1]), t(126));
        let i = book.get("a1").expect("kept");
        let line = i.sparkline(t(130));
        assert_eq!(line[HOURS - 1], 5);
        assert_eq!(line.iter().sum::<u64>(), 7);
        assert_eq!(
            line.iter().position(|n| *n == 2),
            Some(HOURS - 1 - (t(130).as_millis() / 3_600_000 - t(0).as_millis() / 3_600_000) as usize)
        );
    }
}
