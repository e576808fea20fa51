//! Sessions in progress, ended after idling into a window's session figures.

use super::window::{RumWindow, sample_weight};
use crate::wire::{Batch, Event};
use std::collections::HashMap;

/// Sessions in progress, to measure their duration and bounces when they end.
///
/// A session ends after `idle_ms` without a batch (the SDK's 15 minutes by default); it is then
/// counted into the window being closed: `rum_sessions_ended`, `rum_session_seconds` (the sum of
/// durations, from the session's start to its last event, by the page's clock) and
/// `rum_bounces` (sessions of one page view and no action). Only sampled sessions, weighted.
#[derive(Clone, Debug, Default)]
pub struct SessionTracker {
    live: HashMap<String, LiveSession>,
    /// New sessions not tracked since the last [`SessionTracker::expire`] (the tracker was full).
    untracked: u64,
}

#[derive(Clone, Debug)]
struct LiveSession {
    service: String,
    env: String,
    started_at: i64,
    last_event: i64,
    /// Arrival time of the last batch, by the collector's clock.
    last_seen: i64,
    first_view: String,
    more_views: bool,
    acted: bool,
    weight: f64,
}

/// Sessions tracked at most; beyond, new sessions are not tracked (their windows still count,
/// and `rum_capped{what="session"}` counts them): at most a few tens of MB however many ids a
/// page makes up.
pub const MAX_LIVE_SESSIONS: usize = 50_000;

impl SessionTracker {
    /// Notes a validated batch arriving at `now_ms`.
    pub fn observe(&mut self, batch: &Batch, now_ms: i64) {
        if !batch.session.sampled {
            return;
        }
        let last_event = batch.events.iter().map(|e| e.at().0).max().unwrap_or(batch.sent_at.0);
        let acted = batch.events.iter().any(|e| matches!(e, Event::Action { .. }));
        if let Some(s) = self.live.get_mut(&batch.session.id) {
            s.last_event = s.last_event.max(last_event);
            s.last_seen = now_ms;
            s.more_views |= s.first_view != batch.view.id;
            s.acted |= acted;
            return;
        }
        if self.live.len() >= MAX_LIVE_SESSIONS {
            self.untracked += 1;
            return;
        }
        let weight = sample_weight(batch) as f64;
        self.live.insert(
            batch.session.id.clone(),
            LiveSession {
                service: batch.service.clone(),
                env: batch.env.clone(),
                started_at: batch.session.started_at.0,
                last_event,
                last_seen: now_ms,
                first_view: batch.view.id.clone(),
                more_views: false,
                acted,
                weight,
            },
        );
    }

    /// Ends the sessions idle for `idle_ms` at `now_ms` into `window`; returns how many ended.
    pub fn expire(&mut self, now_ms: i64, idle_ms: i64, window: &mut RumWindow) -> usize {
        let ended: Vec<String> =
            self.live.iter().filter(|(_, s)| now_ms - s.last_seen >= idle_ms).map(|(id, _)| id.clone()).collect();
        if self.untracked > 0 {
            window.add_capped("session", std::mem::take(&mut self.untracked));
        }
        let mut buf = String::new();
        for id in &ended {
            let Some(s) = self.live.remove(id) else { continue };
            let scope = (window.capped("service", &s.service), window.capped("env", &s.env));
            let seconds = ((s.last_event - s.started_at).max(0) as f64) / 1000.0;
            window.count(&mut buf, "rum_sessions_ended", scope, &[], s.weight, 0.0);
            window.count(&mut buf, "rum_session_seconds", scope, &[], s.weight, seconds);
            if !s.more_views && !s.acted {
                window.count(&mut buf, "rum_bounces", scope, &[], s.weight, 0.0);
            }
        }
        ended.len()
    }

    /// Sessions in progress.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rum::test_support::{T, page, sample, vital};
    use crate::time::Timestamp;

    #[test]
    fn sessions_end_after_idle_with_their_duration_and_bounces() {
        let mut tracker = SessionTracker::default();
        // (event at T + ms, of kind click or a vital)
        let at = |ms: i64, kind: &str| (ms, kind == "click");
        let one = |session: &str, view: &str, (ms, click): (i64, bool)| {
            let event = if click {
                format!(r#"{{"type":"action","at":{T},"name":"Go","actionType":"click"}}"#)
            } else {
                vital("TTFB", 5.0)
            };
            let mut b = page(true, 50, "/a", &event);
            b.session.id = session.into();
            b.view.id = view.into();
            for e in &mut b.events {
                if let Event::Vital { at, .. } | Event::Action { at, .. } = e {
                    *at = Timestamp(T + ms);
                }
            }
            b
        };
        // s1: two views over 90 s; s2: one view, no action (a bounce); s3 still active.
        tracker.observe(&one("s1", "v1", at(0, "ttfb")), 0);
        tracker.observe(&one("s1", "v2", at(90_000, "ttfb")), 90_000);
        tracker.observe(&one("s2", "v3", at(10_000, "ttfb")), 10_000);
        tracker.observe(&one("s3", "v4", at(0, "click")), 0);
        tracker.observe(&one("s3", "v4", at(1_000_000, "ttfb")), 1_000_000);
        let mut w = RumWindow::new(Timestamp(T));
        assert_eq!(tracker.expire(1_000_000, 900_000, &mut w), 2);
        assert_eq!(tracker.len(), 1);
        let s = w.samples(Timestamp(T));
        // Both started at T: durations 90 s and 10 s (each standing for two at 50%), one bounce.
        assert_eq!(sample(&s, "rum_session_duration_seconds_avg", &[]).map(|x| x.value), Some(50.0));
        assert_eq!(sample(&s, "rum_bounce_rate", &[]).map(|x| x.value), Some(0.5));
    }
}
