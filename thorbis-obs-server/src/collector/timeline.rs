//! Session timelines: each accepted batch becomes rows of its session's timeline (actions,
//! vitals, errors, business events, journey steps, conversions, the spans of traced requests),
//! held in a bounded queue and written to the store every two seconds; pruned by age and by a
//! total row cap, oldest first. Sampled sessions record every kind; unsampled ones (which send
//! errors only) their errors. Resource timings, long tasks and timings stay out: they are
//! many and the RUM windows already count them.

use super::Collector;
use crate::store::SessionEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thorbis_obs_core::wire::{Batch, Event, PropValue};

/// Rows waiting for the store, at most; beyond, new rows are dropped (counted).
pub const MAX_PENDING: usize = 20_000;
/// Longest name or detail kept, in bytes.
const MAX_TEXT: usize = 300;

/// `s` cut to at most [`MAX_TEXT`] bytes on a character boundary.
fn cut(s: &str) -> String {
    thorbis_obs_core::domain::errors::truncate(s, MAX_TEXT).to_string()
}

/// A vital's value as people read it: CLS unitless, the rest in ms.
fn vital(name: &str, value: f64, rating: &str) -> String {
    if name == "CLS" { format!("{value:.3} ({rating})") } else { format!("{value:.0} ms ({rating})") }
}

/// Properties as `k=v, k=v`.
fn props(p: &std::collections::BTreeMap<String, PropValue>) -> String {
    let text: Vec<String> = p
        .iter()
        .map(|(k, v)| match v {
            PropValue::Text(t) => format!("{k}={t}"),
            PropValue::Number(n) => format!("{k}={n}"),
            PropValue::Bool(b) => format!("{k}={b}"),
        })
        .collect();
    cut(&text.join(", "))
}

/// The timeline rows of a validated batch already on the collector's clock.
pub fn rows_of(batch: &Batch) -> Vec<SessionEvent> {
    let sampled = batch.session.sampled;
    let route = cut(batch.view.route.as_deref().unwrap_or(&batch.view.url));
    let row = |at, kind: &str, name: &str, detail: String, trace_id: Option<&String>| SessionEvent {
        session_id: batch.session.id.clone(),
        at,
        view_id: batch.view.id.clone(),
        route: route.clone(),
        kind: kind.into(),
        name: cut(name),
        detail,
        trace_id: trace_id.cloned().unwrap_or_default(),
    };
    let mut out = Vec::new();
    for e in &batch.events {
        let r = match e {
            Event::Error { at, kind, message, trace_id, count, .. } => {
                let detail = if *count > 1 { format!("{kind}, {count} times") } else { kind.clone() };
                row(*at, "error", message, detail, trace_id.as_ref())
            }
            _ if !sampled => continue,
            Event::Vital { at, name, value, rating, .. } => row(*at, "vital", name, vital(name, *value, rating), None),
            Event::Action { at, name, target, .. } => {
                row(*at, "action", name, cut(target.as_deref().unwrap_or_default()), None)
            }
            Event::Business { at, name, props: p, .. } => row(*at, "business", name, props(p), None),
            Event::Journey { at, journey_type, step, .. } => row(*at, "journey", journey_type, cut(step), None),
            Event::Conversion { at, conversion_type, value, .. } => {
                row(*at, "conversion", conversion_type, format!("{value}"), None)
            }
            Event::Span { at, name, op, duration_ms, status_code, trace_id, .. } => {
                let code = status_code.map(|c| format!(", {c}")).unwrap_or_default();
                row(*at, "span", name, format!("{op}, {duration_ms:.0} ms{code}"), Some(trace_id))
            }
            Event::Timing { .. } | Event::Resource { .. } | Event::LongTask { .. } => continue,
        };
        out.push(r);
    }
    out
}

/// Rows of one session between two writes, at most (one stored chunk); beyond, its rows are
/// dropped and counted, so no session's chunk can be large however fast it sends.
pub const MAX_PER_SESSION: usize = 500;

/// Rows waiting for the store, and how many each session has among them.
#[derive(Debug, Default)]
struct Queue {
    rows: Vec<SessionEvent>,
    /// Bounded by the rows: every session in it has at least one.
    per_session: std::collections::HashMap<String, usize>,
}

/// Rows waiting for the store.
#[derive(Debug, Default)]
pub struct Pending {
    queue: Mutex<Queue>,
    /// Rows dropped: the queue was full, or their session had its share.
    pub dropped: AtomicU64,
}

impl Pending {
    /// Queues `rows` (what does not fit is dropped and counted).
    pub fn push(&self, rows: Vec<SessionEvent>) {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut dropped = 0;
        for r in rows {
            let n = q.per_session.get(&r.session_id).copied().unwrap_or(0);
            if q.rows.len() >= MAX_PENDING || n >= MAX_PER_SESSION {
                dropped += 1;
                continue;
            }
            q.per_session.insert(r.session_id.clone(), n + 1);
            q.rows.push(r);
        }
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// What is queued, taken.
    pub fn take(&self) -> Vec<SessionEvent> {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.per_session.clear();
        std::mem::take(&mut q.rows)
    }
}

/// How often queued rows are written.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How often old rows are pruned.
const PRUNE_EVERY_MS: i64 = 10 * 60 * 1000;

/// Writes what is queued; a store that refuses keeps nothing of it (logged).
async fn flush(c: &Collector) {
    let rows = c.timeline.take();
    if rows.is_empty() {
        return;
    }
    if let Err(e) = c.hub().store().record_session_events(&rows).await {
        tracing::warn!(error = %e, rows = rows.len(), "cannot store session timeline events; they are lost");
    }
}

/// Writes queued timeline rows every two seconds (and at shutdown), and prunes by age and by
/// the row cap every ten minutes.
pub async fn run_timeline(c: Arc<Collector>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let cfg = c.config().clone();
    if cfg.timeline_max_events == 0 {
        return;
    }
    let mut pruned_at = i64::MIN;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = stop.changed() => true,
        };
        flush(&c).await;
        if stopping {
            break;
        }
        let now = c.hub().now();
        if now.0.saturating_sub(pruned_at) >= PRUNE_EVERY_MS {
            pruned_at = now.0;
            let before = now.minus(cfg.timeline_retention.get());
            if let Err(e) = c.hub().store().prune_session_events(before, cfg.timeline_max_events).await {
                tracing::warn!(error = %e, "cannot prune session timelines");
            }
        }
    }
}

/// `/sessions/{id}`: the events in time order, a heading where the view changes; spans and
/// errors link their traces.
pub fn page(id: &str, events: &[SessionEvent]) -> String {
    use crate::api::escape_html as esc;
    use std::fmt::Write;
    let mut body = format!(
        "<h1>Session <code>{0}</code></h1><p><a href=\"/replays/{0}\">replay</a> (when the session was recorded)</p>",
        esc(id)
    );
    if events.is_empty() {
        body.push_str("<p>Nothing recorded for this session (timelines are kept for sampled sessions; errors for every session).</p>");
        return crate::api::plain_page(&format!("Session {id}"), &body);
    }
    let t0 = events[0].at;
    let _ = write!(
        body,
        "<p>{} events from {} over {} s</p>",
        events.len(),
        esc(&t0.to_rfc3339()),
        events.last().map_or(0, |e| e.at.0.saturating_sub(t0.0)) / 1000
    );
    let mut view = None;
    for e in events {
        if view != Some(&e.view_id) {
            if view.is_some() {
                body.push_str("</tbody></table>");
            }
            view = Some(&e.view_id);
            let _ = write!(
                body,
                "<h2>View {} <small><code>{}</code></small></h2><table><thead><tr><th scope=\"col\">At</th>\
                 <th scope=\"col\">What</th><th scope=\"col\">Name</th><th scope=\"col\">Detail</th><th scope=\"col\">Trace</th></tr></thead><tbody>",
                esc(&e.route),
                esc(&e.view_id)
            );
        }
        let trace = if e.trace_id.is_empty() {
            String::new()
        } else {
            format!(
                "<a href=\"/traces/{0}\">{1}&hellip;</a>",
                esc(&e.trace_id),
                esc(&e.trace_id[..8.min(e.trace_id.len())])
            )
        };
        let class = if e.kind == "error" { " class=\"err\"" } else { "" };
        let _ = write!(
            body,
            "<tr><td>+{:.1} s</td><td{class}>{}</td><td>{}</td><td>{}</td><td>{trace}</td></tr>",
            e.at.0.saturating_sub(t0.0) as f64 / 1000.0,
            esc(&e.kind),
            esc(&e.name),
            esc(&e.detail)
        );
    }
    body.push_str("</tbody></table>");
    crate::api::plain_page(&format!("Session {id}"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(session: &str) -> SessionEvent {
        SessionEvent {
            session_id: session.into(),
            at: thorbis_obs_core::time::Timestamp(0),
            view_id: "v".into(),
            route: "/".into(),
            kind: "action".into(),
            name: "click".into(),
            detail: String::new(),
            trace_id: String::new(),
        }
    }

    #[test]
    fn a_session_gets_its_share_and_the_queue_its_bound() {
        let p = Pending::default();
        p.push((0..MAX_PER_SESSION + 10).map(|_| row("loud")).collect());
        p.push(vec![row("quiet")]);
        assert_eq!(p.dropped.load(Ordering::Relaxed), 10, "the loud session's rows past its share");
        let taken = p.take();
        assert_eq!(taken.len(), MAX_PER_SESSION + 1);
        // After a write, the share starts again; the queue as a whole stays bounded.
        for i in 0..(MAX_PENDING / MAX_PER_SESSION + 5) {
            p.push((0..MAX_PER_SESSION).map(|_| row(&format!("s{i}"))).collect());
        }
        assert_eq!(p.take().len(), MAX_PENDING);
    }
}
