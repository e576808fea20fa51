//! The rule engine: deterministic, with injected time.
//!
//! Feed it samples with [`RuleEngine::ingest`], call [`RuleEngine::evaluate`] on an interval
//! with the current time, and deliver the [`Notification`]s it returns. Per (rule, series) it
//! keeps an alert instance that moves inactive -> pending -> firing -> resolved:
//!
//! - the condition aggregates the rule's metric over `(now - duration, now]` and compares it
//!   with the threshold; a series with no sample in the window follows the rule's `no_data`
//!   policy (`ok` resolves, `alerting` fires, `keep_last` keeps the state);
//! - `for` is Prometheus' pending time and `keep_firing_for` its anti-flap hold;
//! - while firing, the escalation ladder raises the level with time in firing (never lowers it);
//! - notifications come only from transitions: firing, escalated, repeat (after the repeat
//!   interval) and resolved. Each announces a state once; what is muted (suppression
//!   conditions, maintenance windows) is held back and announced when the mute ends, if it
//!   still matters: an alert that fired and resolved entirely while muted sends nothing;
//! - [`RuleEngine::snapshot`] and [`RuleEngine::restore`] carry the alert state over a restart.
//!   After a restore, a series that has not reported again keeps its state for one window
//!   instead of resolving for lack of data.

mod instance;
pub mod mute;
mod notification;
mod snapshot;

pub use instance::{Acknowledgement, AlertState, Instance};
pub use mute::{ActiveCondition, MAX_SILENCES, MaintenanceWindow, Schedule, Silence, SilenceState};
pub use notification::{Notification, NotificationKind, format_value};
pub use snapshot::{AlertSnapshot, EngineSnapshot, RestoreReport, SNAPSHOT_VERSION, SnapshotError};

use crate::domain::hash::Fnv64;
use crate::metrics::{Labels, Sample, SampleError};
use crate::rules::{AlertRule, NoDataPolicy, RuleError, Severity, ValidateOptions, validate_rules};
use crate::series::{SeriesId, SeriesMap, SeriesStore};
use crate::time::Timestamp;
use core::time::Duration;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Re-send a still-firing alert after this long, unless the rule says otherwise.
    /// Alertmanager's default: 4h.
    pub repeat_interval: Duration,
    /// How long samples of metrics no rule reads are kept.
    pub default_retention: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            repeat_interval: Duration::from_secs(4 * 3600),
            default_retention: Duration::from_secs(15 * 60),
        }
    }
}

struct CompiledRule {
    rule: AlertRule,
    alertname: String,
    extra_labels: Labels,
}

/// Why an alert could not be acknowledged.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AckError {
    /// No alert has that fingerprint.
    #[error("no alert has that fingerprint (GET /api/v1/alerts lists them)")]
    NotFound,
    /// It is pending or resolved.
    #[error("the alert is {} (only a firing alert can be acknowledged)", .0.as_str())]
    NotFiring(AlertState),
    /// Someone acknowledged it already.
    #[error("already acknowledged by {} at {}", .0.by, .0.at.0)]
    Already(Acknowledgement),
}

/// A read-only view of one alert instance, for APIs, dashboards and tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    /// The rule's id.
    pub rule_id: String,
    /// The `alertname` label.
    pub alertname: String,
    /// State.
    pub state: AlertState,
    /// Severity now.
    pub severity: Severity,
    /// Series labels + rule labels + `alertname` + `severity`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    /// Last value (None: no data).
    pub value: Option<f64>,
    /// Start of pending.
    pub active_at: Timestamp,
    /// Start of firing.
    pub fired_at: Option<Timestamp>,
    /// Escalation level.
    pub level: usize,
    /// Stable id of the instance.
    pub fingerprint: String,
    /// True when a suppression condition, maintenance window or silence mutes it now.
    pub muted: bool,
    /// Who acknowledged it, when someone did.
    pub acknowledged: Option<Acknowledgement>,
}

/// The alert rule engine; see the module docs.
pub struct RuleEngine {
    rules: Vec<CompiledRule>,
    by_id: HashMap<String, usize>,
    store: SeriesStore,
    instances: Vec<SeriesMap<Instance>>,
    conditions: Vec<ActiveCondition>,
    maintenance: Vec<MaintenanceWindow>,
    silences: Vec<Silence>,
    options: EngineOptions,
    tick: u64,
    last_gc: Option<Timestamp>,
}

impl core::fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RuleEngine").field("rules", &self.rules.len()).field("series", &self.store.len()).finish()
    }
}

impl RuleEngine {
    /// An engine for `rules` with default options. Rules are validated first.
    pub fn new(rules: Vec<AlertRule>) -> Result<Self, Vec<RuleError>> {
        Self::with_options(rules, EngineOptions::default(), &ValidateOptions::default())
    }

    /// An engine with explicit options and validation settings (e.g. known channels).
    pub fn with_options(
        rules: Vec<AlertRule>,
        options: EngineOptions,
        validate: &ValidateOptions,
    ) -> Result<Self, Vec<RuleError>> {
        validate_rules(&rules, validate)?;
        let mut store = SeriesStore::new(options.default_retention);
        for r in &rules {
            // Keep one extra window so a late evaluation still sees the whole range.
            store.configure_metric(
                &r.metric,
                r.condition.duration.get() * 2,
                r.condition.aggregation.quantile().is_some(),
            );
        }
        let by_id = rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        let instances = rules.iter().map(|_| SeriesMap::default()).collect();
        let rules = rules
            .into_iter()
            .map(|rule| CompiledRule {
                alertname: rule.alertname(),
                extra_labels: rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                rule,
            })
            .collect();
        Ok(RuleEngine {
            rules,
            by_id,
            store,
            instances,
            conditions: Vec::new(),
            maintenance: Vec::new(),
            silences: Vec::new(),
            options,
            tick: 0,
            last_gc: None,
        })
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &AlertRule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// Validates and stores one sample; on error nothing changes.
    pub fn ingest(&mut self, sample: &Sample) -> Result<(), SampleError> {
        self.store.ingest(sample).map(|_| ())
    }

    /// The series store, for hot paths that push by [`SeriesId`].
    pub fn store_mut(&mut self) -> &mut SeriesStore {
        &mut self.store
    }

    /// The series store.
    pub fn store(&self) -> &SeriesStore {
        &self.store
    }

    /// Switches a named suppression condition on at `now`, until `for_` elapses (or until
    /// [`RuleEngine::deactivate_condition`]). Each rule listing it stays muted for at most its
    /// own suppression duration.
    pub fn activate_condition(&mut self, name: &str, now: Timestamp, for_: Option<Duration>) {
        self.conditions.retain(|c| c.name != name);
        self.conditions.push(ActiveCondition { name: name.to_string(), since: now, until: for_.map(|d| now.plus(d)) });
    }

    /// Switches a named condition off. Returns whether it was on.
    pub fn deactivate_condition(&mut self, name: &str) -> bool {
        let before = self.conditions.len();
        self.conditions.retain(|c| c.name != name);
        before != self.conditions.len()
    }

    /// Active conditions.
    pub fn conditions(&self) -> &[ActiveCondition] {
        &self.conditions
    }

    /// Replaces the maintenance windows (validated).
    pub fn set_maintenance_windows(&mut self, windows: Vec<MaintenanceWindow>) -> Result<(), mute::ScheduleError> {
        for w in &windows {
            w.validate()?;
        }
        self.maintenance = windows;
        Ok(())
    }

    fn rule_muted(&self, ri: usize, now: Timestamp) -> bool {
        let rule = &self.rules[ri].rule;
        self.conditions.iter().any(|c| c.mutes(rule, now))
    }

    fn instance_muted(&self, ri: usize, rule_muted: bool, inst: &Instance, now: Timestamp) -> bool {
        let labels = &inst.series_labels;
        if rule_muted || self.maintenance.iter().any(|w| w.mutes(&self.rules[ri].rule.id, labels, now)) {
            return true;
        }
        if self.silences.is_empty() {
            return false;
        }
        // Silences match what the receivers see: the alert's labels.
        let (alert, _) = alert_labels_and_annotations(&self.rules[ri], inst, &self.store);
        self.silences.iter().any(|s| s.mutes(&alert, now))
    }

    /// Replaces the silences (the store holds them, so agents sharing it share them); at most
    /// [`MAX_SILENCES`], expired ones dropped.
    pub fn set_silences(&mut self, silences: Vec<Silence>, now: Timestamp) {
        self.silences = silences.into_iter().filter(|s| s.state(now) != SilenceState::Expired).collect();
        self.silences.truncate(MAX_SILENCES);
    }

    /// The silences held.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Acknowledges the firing alert with `fingerprint` on behalf of `by`: its escalation and
    /// repeats stop, the channels that heard of it are told at the next evaluation, its resolve
    /// still goes out. Acknowledging it again is a no-op answered with who did first.
    pub fn acknowledge(&mut self, fingerprint_: &str, by: &str, now: Timestamp) -> Result<Acknowledgement, AckError> {
        for ri in 0..self.rules.len() {
            let id = self.rules[ri].rule.id.clone();
            for inst in self.instances[ri].values_mut() {
                if fingerprint(&id, &inst.series_labels) != fingerprint_ {
                    continue;
                }
                if inst.state != AlertState::Firing {
                    return Err(AckError::NotFiring(inst.state));
                }
                if let Some(a) = &inst.acked {
                    return Err(AckError::Already(a.clone()));
                }
                let ack = Acknowledgement { by: by.to_string(), at: now };
                inst.acked = Some(ack.clone());
                return Ok(ack);
            }
        }
        Err(AckError::NotFound)
    }

    /// Evaluates every rule at `now` and returns the notifications due, in rule order.
    pub fn evaluate(&mut self, now: Timestamp) -> Vec<Notification> {
        let mut out = Vec::new();
        self.evaluate_into(now, &mut out);
        out
    }

    /// [`RuleEngine::evaluate`] appending to a caller's buffer.
    pub fn evaluate_into(&mut self, now: Timestamp, out: &mut Vec<Notification>) {
        self.tick += 1;
        let tick = self.tick;
        for ri in 0..self.rules.len() {
            let rule_muted = self.rule_muted(ri, now);
            let cr = &self.rules[ri];
            let rule = &cr.rule;
            let window = rule.condition.duration.get();
            let instances = &mut self.instances[ri];
            for &sid in self.store.series_of(&rule.metric) {
                let (Some(labels), Some(w)) = (self.store.labels(sid), self.store.window(sid)) else { continue };
                if !rule.matchers.matches(labels) {
                    continue;
                }
                let value = w.aggregate(rule.condition.aggregation, now, window);
                let holds = match value {
                    Some(v) => Some(rule.condition.operator.holds(v, rule.condition.threshold)),
                    None => no_data_verdict(rule.no_data, instances.get(&sid), now, w.last().is_some()),
                };
                match (instances.get_mut(&sid), holds) {
                    (Some(inst), Some(h)) => {
                        inst.seen_tick = tick;
                        inst.value = value;
                        // The series has data again: the restore's grace has done its job, and
                        // a later gap is a real one, as it would be without the restart.
                        if value.is_some() {
                            inst.no_data_grace_until = None;
                        }
                        if !inst.step(rule, h, now) {
                            instances.remove(&sid);
                        }
                    }
                    (Some(inst), None) => inst.seen_tick = tick,
                    (None, Some(true)) => {
                        let mut inst = Instance::new(labels.clone(), now);
                        inst.seen_tick = tick;
                        inst.value = value;
                        if inst.step(rule, true, now) {
                            instances.insert(sid, inst);
                        }
                    }
                    (None, _) => {}
                }
            }
            // Instances whose series is gone from the store: no data.
            let missing: Vec<SeriesId> =
                instances.iter().filter(|(_, i)| i.seen_tick != tick).map(|(s, _)| *s).collect();
            for sid in missing {
                let holds = no_data_verdict(rule.no_data, instances.get(&sid), now, false);
                if let (Some(inst), Some(h)) = (instances.get_mut(&sid), holds) {
                    inst.value = None;
                    if !inst.step(rule, h, now) {
                        instances.remove(&sid);
                    }
                }
            }
            self.announce(ri, rule_muted, now, out);
        }
        let gc_every = self.options.default_retention / 2;
        if self.last_gc.is_none_or(|t| now.since(t) >= gc_every) {
            self.collect_garbage(now);
        }
    }

    /// Emits what each instance of rule `ri` owes its receivers.
    fn announce(&mut self, ri: usize, rule_muted: bool, now: Timestamp, out: &mut Vec<Notification>) {
        let repeat = self.rules[ri].rule.repeat_interval.map(|d| d.get()).unwrap_or(self.options.repeat_interval);
        let mut done = Vec::new();
        let first = out.len();
        let sids: Vec<SeriesId> = self.instances[ri].keys().copied().collect();
        for sid in sids {
            let muted = {
                let inst = &self.instances[ri][&sid];
                if inst.state == AlertState::Pending {
                    continue;
                }
                self.instance_muted(ri, rule_muted, inst, now)
            };
            if muted {
                continue;
            }
            let cr = &self.rules[ri];
            let Some(inst) = self.instances[ri].get_mut(&sid) else { continue };
            let kind = match (inst.state, inst.notified_level) {
                // Acknowledged: told once to whoever heard of it, then quiet until it resolves.
                (AlertState::Firing, Some(_)) if inst.acked.is_some() && !inst.ack_announced => {
                    NotificationKind::Acknowledged
                }
                (AlertState::Firing, Some(_)) if inst.acked.is_some() => continue,
                (AlertState::Firing, None) => NotificationKind::Firing,
                (AlertState::Firing, Some(l)) if inst.level > l => NotificationKind::Escalated,
                (AlertState::Firing, Some(_)) if inst.last_notified_at.is_some_and(|t| now.since(t) >= repeat) => {
                    NotificationKind::Repeat
                }
                (AlertState::Resolved, Some(_)) if !cr.rule.send_resolved => {
                    done.push(sid);
                    continue;
                }
                (AlertState::Resolved, Some(_)) => NotificationKind::Resolved,
                _ => continue,
            };
            let channels: Vec<String> = if matches!(kind, NotificationKind::Resolved | NotificationKind::Acknowledged) {
                inst.notified_channels.iter().cloned().collect()
            } else {
                cr.rule.level(inst.level).1.to_vec()
            };
            out.push(build_notification(cr, inst, &self.store, kind, channels, now));
            inst.seq += 1;
            inst.last_notified_at = Some(now);
            if kind == NotificationKind::Resolved {
                done.push(sid);
            } else if kind == NotificationKind::Acknowledged {
                inst.ack_announced = true;
            } else {
                inst.notified_level = Some(inst.level);
                inst.notified_channels.extend(cr.rule.level(inst.level).1.iter().cloned());
            }
        }
        for sid in done {
            self.instances[ri].remove(&sid);
        }
        // Deterministic order whatever the map's: by series labels.
        out[first..].sort_by(|a, b| a.labels.cmp(&b.labels));
    }

    /// Drops old samples and empty series no alert refers to.
    pub fn collect_garbage(&mut self, now: Timestamp) -> usize {
        self.last_gc = Some(now);
        let instances = &self.instances;
        self.store.collect_garbage(now, |sid| instances.iter().any(|m| m.contains_key(&sid)))
    }

    /// Every alert instance (pending, firing, or resolved but not yet announced).
    pub fn alerts(&self, now: Timestamp) -> Vec<AlertView> {
        self.alerts_where(now, |_| true)
    }

    /// The alert instances of the rules `keep` selects.
    pub fn alerts_where(&self, now: Timestamp, keep: impl Fn(&AlertRule) -> bool) -> Vec<AlertView> {
        let mut v = Vec::new();
        for (ri, map) in self.instances.iter().enumerate() {
            let cr = &self.rules[ri];
            if map.is_empty() || !keep(&cr.rule) {
                continue;
            }
            let rule_muted = self.rule_muted(ri, now);
            for inst in map.values() {
                let (labels, annotations) = alert_labels_and_annotations(cr, inst, &self.store);
                v.push(AlertView {
                    rule_id: cr.rule.id.clone(),
                    alertname: cr.alertname.clone(),
                    state: inst.state,
                    severity: cr.rule.level(inst.level).0,
                    fingerprint: fingerprint(&cr.rule.id, &inst.series_labels),
                    muted: self.instance_muted(ri, rule_muted, inst, now),
                    acknowledged: inst.acked.clone(),
                    labels,
                    annotations,
                    value: inst.value,
                    active_at: inst.active_at,
                    fired_at: inst.fired_at,
                    level: inst.level,
                });
            }
        }
        v.sort_by(|a, b| (&a.rule_id, &a.labels).cmp(&(&b.rule_id, &b.labels)));
        v
    }

    /// The alert state, for persisting.
    pub fn snapshot(&self, now: Timestamp) -> EngineSnapshot {
        let mut alerts = Vec::new();
        for (ri, map) in self.instances.iter().enumerate() {
            for inst in map.values() {
                alerts.push(AlertSnapshot { rule_id: self.rules[ri].rule.id.clone(), instance: inst.clone() });
            }
        }
        alerts.sort_by(|a, b| (&a.rule_id, &a.instance.series_labels).cmp(&(&b.rule_id, &b.instance.series_labels)));
        EngineSnapshot { version: SNAPSHOT_VERSION, taken_at: now, alerts, conditions: self.conditions.clone() }
    }

    /// Replaces the alert state with a snapshot's. Instances of rules that no longer exist are
    /// dropped and reported. Missing series keep their state for one window after `now`.
    pub fn restore(&mut self, snapshot: EngineSnapshot, now: Timestamp) -> Result<RestoreReport, SnapshotError> {
        if snapshot.version > SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(snapshot.version));
        }
        let mut report = RestoreReport::default();
        for m in &mut self.instances {
            m.clear();
        }
        for a in snapshot.alerts {
            let Some(&ri) = self.by_id.get(&a.rule_id) else {
                report.dropped.push(a.rule_id);
                continue;
            };
            let rule = &self.rules[ri].rule;
            let sid = self.store.series_id(&rule.metric, &a.instance.series_labels);
            let mut inst = a.instance;
            inst.no_data_grace_until = Some(now.plus(rule.condition.duration.get()));
            self.instances[ri].insert(sid, inst);
            report.restored += 1;
        }
        self.conditions = snapshot.conditions;
        Ok(report)
    }
}

/// The verdict for a window without samples: Some(holds) or None to keep the state.
///
/// The restore's grace covers a series the store holds nothing for (its source has not
/// collected since the restart); a series with older samples just has a gap, and gets the
/// policy, as it would have without the restart.
fn no_data_verdict(policy: NoDataPolicy, inst: Option<&Instance>, now: Timestamp, has_history: bool) -> Option<bool> {
    if !has_history && inst.and_then(|i| i.no_data_grace_until).is_some_and(|g| now < g) {
        return None;
    }
    match policy {
        NoDataPolicy::Ok => Some(false),
        NoDataPolicy::Alerting => Some(true),
        NoDataPolicy::KeepLast => None,
    }
}

pub use crate::rules::humanize::humanized;
use crate::rules::humanize::{printf_call, printf_float};

/// Stable id of an alert instance: FNV-1a of the rule id and the series labels.
pub fn fingerprint(rule_id: &str, series_labels: &Labels) -> String {
    let mut h = Fnv64::new();
    h.write(rule_id.as_bytes());
    h.write(&[0xff]);
    h.write(&series_labels.stable_hash().to_le_bytes());
    format!("{:016x}", h.finish())
}

fn alert_labels_and_annotations(
    cr: &CompiledRule,
    inst: &Instance,
    store: &SeriesStore,
) -> (Labels, BTreeMap<String, String>) {
    let mut labels = inst.series_labels.merged(&cr.extra_labels);
    labels.insert("alertname", cr.alertname.clone());
    labels.insert("severity", cr.rule.level(inst.level).0.as_str());
    let sibling = |metric: &str| {
        store.find(metric, &inst.series_labels).and_then(|sid| store.window(sid)).and_then(|w| w.last()).map(|(_, v)| v)
    };
    let annotations = cr
        .rule
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), expand_template_with(v, &labels, inst.value, sibling)))
        .collect();
    (labels, annotations)
}

fn build_notification(
    cr: &CompiledRule,
    inst: &Instance,
    store: &SeriesStore,
    kind: NotificationKind,
    channels: Vec<String>,
    now: Timestamp,
) -> Notification {
    let (labels, mut annotations) = alert_labels_and_annotations(cr, inst, store);
    if let Some(a) = &inst.acked {
        annotations.insert("acknowledged_by".into(), a.by.clone());
    }
    let fp = fingerprint(&cr.rule.id, &inst.series_labels);
    let starts_at = inst.fired_at.unwrap_or(inst.active_at);
    Notification {
        id: format!("{fp}-{}-{}", starts_at.as_millis(), inst.seq),
        kind,
        rule_id: cr.rule.id.clone(),
        rule_name: cr.rule.name.clone(),
        alertname: cr.alertname.clone(),
        description: cr.rule.description.clone(),
        severity: cr.rule.level(inst.level).0,
        level: inst.level,
        value: inst.value,
        operator: cr.rule.condition.operator,
        threshold: cr.rule.condition.threshold,
        labels,
        annotations,
        fingerprint: fp,
        starts_at,
        ends_at: if kind == NotificationKind::Resolved { inst.resolved_at } else { None },
        created_at: now,
        channels,
    }
}

/// Expands `{{ $value }}` and `{{ $labels.NAME }}` (spaces inside the braces optional), a
/// number through one of Prometheus' formatting functions ([`humanized`]:
/// `{{ $value | humanize }}`, `{{ humanize $value }}`) or Go's `{{ printf "%.2f" $value }}`.
/// Anything else between braces is left as written.
pub fn expand_template(text: &str, labels: &Labels, value: Option<f64>) -> String {
    expand_template_with(text, labels, value, |_| None)
}

/// [`expand_template`], and `{{ $values.METRIC }}`: the latest value of the series of `METRIC`
/// with the alert's series labels, as `sibling` finds it (`no data` when there is none). A
/// restricted form of Prometheus' `query` template function: an error group's alert on its
/// event count can say how many users it reached.
pub fn expand_template_with(
    text: &str,
    labels: &Labels,
    value: Option<f64>,
    sibling: impl Fn(&str) -> Option<f64>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let expr = after[..close].trim();
        // `{{ printf "%.2f" $value }}`: Go's printf with one float verb.
        if let Some((format, arg)) = printf_call(expr) {
            let v = if arg == "$value" { Some(value) } else { arg.strip_prefix("$values.").map(|m| sibling(m.trim())) };
            match v.map(|v| v.map(|v| printf_float(format, v))) {
                Some(Some(Some(t))) => out.push_str(&t),
                Some(None) => out.push_str("no data"),
                _ => out.push_str(&rest[open..open + 2 + close + 2]),
            }
            rest = &after[close + 2..];
            continue;
        }
        // `{{ $value | humanize }}` or `{{ humanize $value }}`: one of Prometheus' formatting
        // functions applied to a number.
        let (expr, function) = match expr.split_once('|') {
            Some((e, f)) => (e.trim(), Some(f.trim())),
            None => match expr.split_once(' ') {
                Some((f, e)) if humanized(f, 0.0).is_some() => (e.trim(), Some(f)),
                _ => (expr, None),
            },
        };
        let number = |v: Option<f64>| match (v, function) {
            (None, _) => Some("no data".to_string()),
            (Some(v), None) => Some(format_value(v)),
            (Some(v), Some(f)) => humanized(f, v),
        };
        let text = if expr == "$value" {
            number(value)
        } else if let Some(name) = expr.strip_prefix("$labels.").filter(|_| function.is_none()) {
            Some(labels.get(name.trim()).unwrap_or("").to_string())
        } else if let Some(metric) = expr.strip_prefix("$values.") {
            number(sibling(metric.trim()))
        } else {
            None
        };
        match text {
            Some(t) => out.push_str(&t),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_pipe_or_call_the_functions() {
        let labels = Labels::new().with("route", "/pay");
        let t =
            |text: &str, v: Option<f64>| expand_template_with(text, &labels, v, |m| (m == "share").then_some(0.323));
        assert_eq!(t("{{ $value | humanize }} ms on {{ $labels.route }}", Some(2841.62)), "2.842k ms on /pay");
        assert_eq!(t("{{humanizeDuration $value}}", Some(3725.0)), "1h 2m 5s");
        assert_eq!(t("{{ $values.share | humanizePercentage }}", None), "32.3%");
        assert_eq!(t("{{ $value | humanize }}", None), "no data");
        assert_eq!(
            t("{{ $value | shout }}", Some(1.0)),
            "{{ $value | shout }}",
            "an unknown function is left as written"
        );
        assert_eq!(t("{{ $value }}", Some(2841.623515733081)), "2841.623515733081", "unchanged without a function");
        // Go's printf with one float verb, as Prometheus' templates have it.
        assert_eq!(t("{{ printf \"%.2f\" $value }}", Some(0.31000000000000005)), "0.31");
        assert_eq!(t("CLS {{printf \"%.3g\" $value}} on {{ $labels.route }}", Some(0.123456)), "CLS 0.123 on /pay");
        assert_eq!(t("{{ printf \"%d%%\" $values.nothing }}", None), "no data");
        assert_eq!(t("{{ printf \"%.1f%%\" $value }}", Some(32.34)), "32.3%");
        assert_eq!(t("{{ printf \"%s\" $value }}", Some(1.0)), "{{ printf \"%s\" $value }}", "an unknown verb stays");
    }
}
