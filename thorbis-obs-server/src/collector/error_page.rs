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
use thorbis_obs_core::time::HumanDuration;

#[derive(Debug, Default, Deserialize)]
pub(super) struct GroupQuery {
    range: Option<HumanDuration>,
}

/// The group and its frames, or the answer to give.
async fn group(
    api: &CollectorService,
    fp: &str,
    q: &GroupQuery,
) -> Result<(ErrorGroup, Vec<SymbolicatedFrame>), Response> {
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
    let found = api::blocking(move || c.merged_since(since).errors.get(&key).cloned()).await?;
    let Some(g) = found else {
        return Err(api::error(StatusCode::NOT_FOUND, format!("no error group {fp} in the range")));
    };
    let frames: Vec<StackFrame> = g.sample_stack.as_deref().map(parse_stack).unwrap_or_default();
    let read = match (&api.collector.as_ref().and_then(|c| c.symbolicator.clone()), g.tags.get("release")) {
        (Some(sym), Some(release)) if !frames.is_empty() => sym(release.clone(), frames).await,
        _ => frames
            .into_iter()
            .map(|f| {
                let in_app = f.file.as_deref().is_none_or(thorbis_obs_core::domain::errors::is_in_app);
                SymbolicatedFrame { frame: f, in_app, ..Default::default() }
            })
            .collect(),
    };
    Ok((g, read))
}

/// `GET /api/v1/rum/errors/{fingerprint}?range=1h`.
pub(super) async fn group_json(
    State(api): State<Arc<CollectorService>>,
    Path(fp): Path<String>,
    Query(q): Query<GroupQuery>,
) -> Response {
    match group(&api, &fp, &q).await {
        Ok((g, frames)) => axum::Json(json!({ "group": g, "frames": frames })).into_response(),
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
        Ok((g, frames)) => api::html(page(&g, &frames)),
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

/// The page (every outside string escaped).
pub(crate) fn page(g: &ErrorGroup, frames: &[SymbolicatedFrame]) -> String {
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
    }
    if let Some(t) = g.tags.get("trace_id") {
        links.push(format!("<a href=\"/traces/{0}\">trace {0}</a>", esc(t)));
    }
    if !links.is_empty() {
        let _ = write!(b, "<p>{}</p>", links.join(" &middot; "));
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
