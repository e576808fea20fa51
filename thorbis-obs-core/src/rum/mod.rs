//! Real-user monitoring aggregation: what the collector makes of the browser's batches.
//!
//! A [`RumWindow`] holds one window (a minute, as the spec reports) of everything the SDK sent:
//! web vitals per route and device type in mergeable quantile sketches with their rating counts,
//! errors grouped by fingerprint, and counters for page views, actions, business events,
//! conversions, journey steps and budget violations. Windows from several agents merge exactly
//! ([`RumWindow::merge`]: sketches and counters add), so agents behind a load balancer report
//! the same figures as one agent would. [`RumWindow::samples`] turns a closed window into
//! metric samples for the rule engine and `/metrics`.
//!
//! Sampling: a sampled session stands for `100 / sampleRate` sessions, so its vitals and
//! counters are counted that many times (rounded to a whole number, between 1 and 100: rates
//! below 1% count as 1%). Errors are sent by every session, sampled or not, and are counted
//! once each (repeats folded by the SDK up to [`MAX_ERROR_REPEATS`]).
//!
//! Everything here is fed by whoever can load a page, so every map keyed by the page's data has
//! a cap: label values per window ([`LABEL_CAPS`], folded into [`OTHER`]), routes, series,
//! views, error groups with bounded messages and stacks, live sessions; values are clamped and
//! sums saturate; what a cap folded or refused is counted in `rum_capped{what}`. Error groups
//! are seen by the collector's clock, and fingerprints a page sends live in a space of their
//! own (`sdk-...`).

pub mod issues;
mod keys;
mod series;
mod sessions;
mod window;

pub use keys::{
    ALL, CounterKey, Device, FlatKey, MAX_ROUTES, OTHER_ROUTE, VitalKey, browser_family, route_pattern,
    route_pattern_into,
};
pub use series::{Counter, Distribution, Series, VitalAgg};
pub use sessions::{MAX_LIVE_SESSIONS, SessionTracker};
pub use window::{
    ErrorGroup, Ingested, LABEL_CAPS, MAX_BREADCRUMB_MESSAGE, MAX_COUNTER_SERIES, MAX_ERROR_GROUPS, MAX_ERROR_REPEATS,
    MAX_GROUP_BREADCRUMBS, MAX_GROUP_MESSAGE, MAX_GROUP_STACK, MAX_GROUP_USERS, MAX_SERVER_ERROR_REPEATS, MAX_SUM,
    MAX_VALUE, MAX_VIEWS, MAX_VITAL_SERIES, MAX_WINDOW_STACK_BYTES, OTHER, RumWindow, ServerError, VITALS_QUANTILE,
    ViewSeen, fingerprint_event, sample_weight,
};

/// How long label values a window's caps admitted stay admitted in the windows after it
/// before the caps start afresh (so new routes and names can come in): an hour. RUM windows
/// ([`RumWindow::inherit_caps`]) and span windows
/// ([`SpanWindow::inherit_caps`](crate::spans::SpanWindow::inherit_caps)) carry them; without
/// it a flood of new names every window would make new series every window.
pub const CAPS_CARRIED_MS: i64 = 3_600_000;

/// Batches and lookups the window and session tests share.
#[cfg(test)]
mod test_support {
    use crate::metrics::Sample;
    use crate::wire::Batch;

    fn batch(json: &str) -> Batch {
        let b: Batch = serde_json::from_str(json).expect("batch");
        b.validate().expect("valid");
        b
    }

    pub(super) const T: i64 = 1_764_186_600_000;

    pub(super) fn page(sampled: bool, rate: u32, route: &str, events: &str) -> Batch {
        batch(&format!(
            r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s1","sampled":{sampled},"startedAt":{T},"sampleRate":{rate}}},
            "view":{{"id":"v1","url":"https://shop.example{route}?token=x","route":"{route}"}},"sentAt":{T},"events":[{events}]}}"#
        ))
    }

    pub(super) fn vital(name: &str, value: f64) -> String {
        format!(r#"{{"type":"vital","at":{T},"name":"{name}","value":{value},"rating":"good","id":"m1"}}"#)
    }

    pub(super) fn sample<'a>(s: &'a [Sample], name: &str, pairs: &[(&str, &str)]) -> Option<&'a Sample> {
        s.iter().find(|x| x.name == name && pairs.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
    }
}
