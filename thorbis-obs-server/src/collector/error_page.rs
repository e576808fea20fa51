//! One error group: `GET /api/v1/rum/errors/{fingerprint}` (JSON) and `/errors/{fingerprint}`
//! (the page the dashboards' error tables link): its message, count, first and last seen, the
//! sample's stack read with the source maps of its release (when the agent has them: original
//! file, line and function, the lines around it, in-app frames open, the rest folded), its
//! breadcrumbs, its tags, and links to its session and its trace. The stack is read when the
//! group is shown, so a map uploaded after the error arrived still reads it.

use super::CollectorService;
use crate::api::{self, escape_html as esc};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::fmt::Write;
use std::sync::Arc;
use thorbis_obs_core::domain::errors::{StackFrame, SymbolicatedFrame, parse_stack};
use thorbis_obs_core::rum::ErrorGroup;
use thorbis_obs_core::rum::issues::{Issue, Status};
use thorbis_obs_core::time::{HumanDuration, Timestamp};

#[derive(Debug, Default, Deserialize)]
pub(super) struct GroupQuery {
    range: Option<HumanDuration>,
}

/// The group (of the range's windows, else the latest the book kept), the book's entry and the
/// frames, or the answer to give.
async fn group(
    api: &CollectorService,
    fp: &str,
    q: &GroupQuery,
) -> Result<(ErrorGroup, Option<Issue>, Vec<SymbolicatedFrame>), Response> {
    let valid = (1..=40).contains(&fp.len()) && fp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(api::error(StatusCode::BAD_REQUEST, "a fingerprint is 1 to 40 letters, digits and dashes"));
    }
    let Some(c) = api.collector.clone() else {
        return Err(api::error(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)"));
    };
    let _pass = api.gate.enter().map_err(|r| *r)?;
    let since = api.checks.hub.now().minus(q.range.unwrap_or(HumanDuration::from_secs(3600)).get());
    let key = fp.to_string();
    let book = c.clone();
    let found = api::blocking(move || c.merged_since(since).errors.get(&key).cloned()).await?;
    let issue = book.issue(fp);
    let Some(g) = found.or_else(|| issue.as_ref().and_then(|i| i.latest.clone())) else {
        return Err(api::error(StatusCode::NOT_FOUND, format!("no error group {fp}")));
    };
    let frames: Vec<StackFrame> = g.sample_stack.as_deref().map(parse_stack).unwrap_or_default();
    let release = g.tags.get("release").cloned();
    let read = match (&api.collector.as_ref().and_then(|c| c.symbolicator.clone()), release) {
        (Some(sym), release) if !frames.is_empty() && (release.is_some() || !g.debug_ids.is_empty()) => {
            sym(release.unwrap_or_default(), frames, g.debug_ids.clone()).await
        }
        _ => frames
            .into_iter()
            .map(|f| {
                let in_app = f.file.as_deref().is_none_or(thorbis_obs_core::domain::errors::is_in_app);
                SymbolicatedFrame { frame: f, in_app, ..Default::default() }
            })
            .collect(),
    };
    Ok((g, issue, read))
}

/// `GET /api/v1/rum/errors/{fingerprint}?range=1h`.
pub(super) async fn group_json(
    State(api): State<Arc<CollectorService>>,
    Path(fp): Path<String>,
    Query(q): Query<GroupQuery>,
) -> Response {
    match group(&api, &fp, &q).await {
        Ok((g, issue, frames)) => {
            let now = api.checks.hub.now();
            let life = issue.map(|i| {
                json!({
                    "status": i.status,
                    "statusAt": i.status_at,
                    "statusBy": i.status_by,
                    "count": i.count,
                    "firstSeen": i.first_seen,
                    "lastSeen": i.last_seen,
                    "firstRelease": i.first_release,
                    "lastRelease": i.last_release,
                    "users": i.users_affected(),
                    "usersAtLeast": i.users_capped(),
                    "eventsPerHour": i.sparkline(now),
                    "breakdown": i.breakdown,
                    "episode": i.episode,
                })
            });
            axum::Json(json!({ "group": g, "issue": life, "frames": frames })).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /errors/{fingerprint}?range=1h`.
pub(super) async fn group_page(
    State(api): State<Arc<CollectorService>>,
    Path(fp): Path<String>,
    Query(q): Query<GroupQuery>,
) -> Response {
    match group(&api, &fp, &q).await {
        Ok((g, issue, frames)) => api::html(page(&g, issue.as_ref(), &frames, api.checks.hub.now())),
        Err(r) => r,
    }
}

fn location(f: &StackFrame) -> String {
    let mut s = f.file.clone().unwrap_or_else(|| "?".into());
    if let Some(l) = f.line {
        let _ = write!(s, ":{l}");
        if let Some(c) = f.column {
            let _ = write!(s, ":{c}");
        }
    }
    s
}

/// Events per hour as block characters, oldest first.
fn sparkline(hours: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = hours.iter().copied().max().unwrap_or(0).max(1);
    hours.iter().map(|n| if *n == 0 { ' ' } else { BARS[((n * 7) / max) as usize] }).collect()
}

/// The group's life: status and its actions, releases, users, events per hour, breakdown.
fn life(b: &mut String, g: &ErrorGroup, i: &Issue, now: Timestamp) {
    let status = match &i.status {
        Status::Unresolved => "unresolved".to_string(),
        Status::Resolved { in_next_release_after: None } => "resolved".to_string(),
        Status::Resolved { in_next_release_after: Some(r) } => format!("resolved in the release after {}", esc(r)),
        Status::Ignored { until, until_events, until_users } => {
            let mut why = Vec::new();
            if let Some(t) = until {
                why.push(format!("until {} UTC", esc(&t.to_rfc3339())));
            }
            if let Some(n) = until_events {
                why.push(format!("until {n} events"));
            }
            if let Some(n) = until_users {
                why.push(format!("until {n} users"));
            }
            if why.is_empty() { "ignored".to_string() } else { format!("ignored {}", why.join(" or ")) }
        }
    };
    let by = if i.status_by.is_empty() {
        String::new()
    } else {
        format!(" (by {}, {} UTC)", esc(&i.status_by), esc(&i.status_at.to_rfc3339()))
    };
    let _ = write!(
        b,
        "<p id=\"status\">Status: <strong>{status}</strong>{by}. In all: <strong>{}</strong> events, <strong>{}{}</strong> \
         users affected, first seen {} UTC{}, last seen {} UTC{}.</p>",
        i.count,
        i.users_affected(),
        if i.users_capped() { "+" } else { "" },
        esc(&i.first_seen.to_rfc3339()),
        i.first_release.as_deref().map(|r| format!(" in {}", esc(r))).unwrap_or_default(),
        esc(&i.last_seen.to_rfc3339()),
        i.last_release.as_deref().map(|r| format!(" in {}", esc(r))).unwrap_or_default(),
    );
    let hours = i.sparkline(now);
    let _ = write!(
        b,
        "<p>Events per hour, last 24 h: <code class=\"spark\" title=\"{}\">{}</code></p>",
        hours.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
        sparkline(&hours)
    );
    let fp = esc(&g.fingerprint);
    let _ = write!(
        b,
        "<p class=\"actions\" data-group=\"{fp}\">\
         <button data-status=\"resolved\">Resolve</button> \
         <button data-status=\"resolvedInNextRelease\">Resolve in next release</button> \
         <button data-status=\"ignored\" data-for=\"24h\">Ignore for 24 h</button> \
         <button data-status=\"ignored\" data-count=\"100\">Ignore until 100 more</button> \
         <button data-status=\"unresolved\">Unresolve</button> <span id=\"action-result\"></span></p>\
         <script>{ACTIONS}</script>"
    );
    if !i.breakdown.is_empty() {
        b.push_str("<h2>Breakdown</h2><table>");
        for (key, values) in &i.breakdown {
            let mut v: Vec<(&String, &u64)> = values.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let cells: Vec<String> = v.iter().map(|(k, n)| format!("{} ({n})", esc(k))).collect();
            let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(key), cells.join(", "));
        }
        b.push_str("</table>");
    }
}

/// The status buttons: the session's CSRF token, then the API (a token-less page that cannot
/// write says why).
const ACTIONS: &str = r#"document.querySelectorAll('.actions button').forEach(function (b) {
  b.addEventListener('click', async function () {
    var out = document.getElementById('action-result');
    var body = { status: b.dataset.status };
    if (b.dataset.for) body.for = b.dataset.for;
    if (b.dataset.count) body.count = Number(b.dataset.count);
    var headers = { 'content-type': 'application/json' };
    try {
      var s = await fetch('/api/v1/session');
      if (s.ok) headers['x-csrf-token'] = (await s.json()).csrf;
      var group = b.parentElement.dataset.group;
      var r = await fetch('/api/v1/rum/errors/' + encodeURIComponent(group) + '/status',
        { method: 'POST', headers: headers, body: JSON.stringify(body) });
      if (r.ok) { location.reload(); } else { out.textContent = (await r.json()).error; }
    } catch (e) { out.textContent = String(e); }
  });
});"#;

/// The page (every outside string escaped).
pub(crate) fn page(g: &ErrorGroup, issue: Option<&Issue>, frames: &[SymbolicatedFrame], now: Timestamp) -> String {
    let mut b = format!("<h1>{}</h1>", esc(if g.message.is_empty() { "(no message)" } else { &g.message }));
    let _ = write!(
        b,
        "<p>{} error in {}/{} on <code>{}</code>: <strong>{}</strong> times, first seen {} UTC, last seen {} UTC{}.</p>",
        esc(&g.kind),
        esc(&g.service),
        esc(&g.env),
        esc(&g.route),
        g.count,
        esc(&g.first_seen.to_rfc3339()),
        esc(&g.last_seen.to_rfc3339()),
        g.tags.get("release").map(|r| format!(", release {}", esc(r))).unwrap_or_default(),
    );
    let mut links = Vec::new();
    if let Some(s) = g.tags.get("session_id") {
        links.push(format!("<a href=\"/sessions/{0}\">session {0}</a>", esc(s)));
        links.push(format!("<a href=\"/replays/{}?t={}\">replay at the error</a>", esc(s), g.last_seen.0));
    }
    if let Some(t) = g.tags.get("trace_id") {
        links.push(format!("<a href=\"/traces/{0}\">trace {0}</a>", esc(t)));
    }
    if !links.is_empty() {
        let _ = write!(b, "<p>{}</p>", links.join(" &middot; "));
    }
    if let Some(i) = issue {
        life(&mut b, g, i, now);
    }
    b.push_str("<h2>Stack</h2>");
    if frames.is_empty() {
        b.push_str("<p>No stack was sent.</p>");
    }
    let mapped = frames.iter().any(|f| f.mapped);
    if !frames.is_empty() && !mapped {
        b.push_str("<p>Minified: no source map of this release covers these frames.</p>");
    }
    for f in frames {
        let function = f.frame.function.as_deref().unwrap_or("(anonymous)");
        let class = if f.in_app { "in-app" } else { "library" };
        let _ = write!(
            b,
            "<details class=\"frame {class}\"{}><summary><code>{}</code> at <code>{}</code>{}</summary>",
            if f.in_app { " open" } else { "" },
            esc(function),
            esc(&location(&f.frame)),
            if f.in_app { "" } else { " (library)" },
        );
        if let Some(line) = &f.context_line {
            let start = f.frame.line.unwrap_or(1) as usize - f.pre_context.len();
            b.push_str("<pre>");
            for (i, l) in f.pre_context.iter().enumerate() {
                let _ = writeln!(b, "{:>5}  {}", start + i, esc(l));
            }
            let _ = writeln!(b, "<mark>{:>5}  {}</mark>", start + f.pre_context.len(), esc(line));
            for (i, l) in f.post_context.iter().enumerate() {
                let _ = writeln!(b, "{:>5}  {}", start + f.pre_context.len() + 1 + i, esc(l));
            }
            b.push_str("</pre>");
        }
        if let Some(m) = &f.minified {
            let _ = write!(b, "<p><small>minified: <code>{}</code></small></p>", esc(&location(m)));
        }
        b.push_str("</details>");
    }
    if !g.breadcrumbs.is_empty() {
        b.push_str("<h2>Breadcrumbs</h2><table><tr><th>When (UTC)</th><th>Category</th><th>Message</th></tr>");
        for c in &g.breadcrumbs {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.at.to_rfc3339()),
                esc(&c.category),
                esc(&c.message)
            );
        }
        b.push_str("</table>");
    }
    if !g.tags.is_empty() {
        b.push_str("<h2>Tags</h2><table>");
        for (k, v) in &g.tags {
            let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        b.push_str("</table>");
    }
    api::plain_page(&format!("Error: {}", g.message), &b)
}
