//! The trace pages: `/traces` (a filter form, the duration histogram of the selection as SVG,
//! the list) and `/traces/{trace_id}` (the waterfall as server-rendered SVG: one row per span,
//! indented under its parent, bars coloured by service, errors in red, the critical path
//! outlined; each span's attributes and events in a `<details>` below). Plain HTML and CSS, no
//! script, every outside text escaped. A trace with more than [`MAX_ROWS`] spans draws the first
//! ones in tree order and says how many it left out.

use crate::api::{escape_html as esc, plain_page as page};
use crate::store::TraceSummary;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use thorbis_obs_core::traces::{AssembledTrace, SpanId, TraceSpan, hex};

/// Spans drawn at most; the rest are counted.
pub(super) const MAX_ROWS: usize = 2_000;

/// Colours for services (contrast >= 3:1 against white for the bars), errors in red.
const PALETTE: [&str; 8] = ["#1a73e8", "#188038", "#8430ce", "#e8710a", "#007b83", "#a142f4", "#5f6368", "#b06000"];
const ERROR: &str = "#b3261e";

fn colour(service: &str) -> &'static str {
    let mut h = thorbis_obs_core::domain::hash::Fnv64::new();
    h.write(service.as_bytes());
    PALETTE[(h.finish() % PALETTE.len() as u64) as usize]
}

fn ms(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0} ms") } else { format!("{v:.2} ms") }
}

/// The rows in tree order: (span index, depth). Roots (no parent, or a parent that never came)
/// by start; children by start under their parent; spans only a cycle reaches come last.
fn tree_order(spans: &[TraceSpan]) -> Vec<(usize, usize)> {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent.filter(|p| ids.contains(p) && *p != s.span_id) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_ns, i));
    by_start(&mut roots);
    for v in children.values_mut() {
        by_start(v);
    }
    let mut out = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push((i, depth));
        if let Some(kids) = children.get(&spans[i].span_id) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    out.extend((0..spans.len()).filter(|&i| !seen[i]).map(|i| (i, 0)));
    out
}

/// The critical path: from the earliest root, the child that ends last, and so on down.
fn critical_path(spans: &[TraceSpan], order: &[(usize, usize)]) -> HashSet<usize> {
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        if let Some(p) = s.parent {
            children.entry(p).or_default().push(i);
        }
    }
    let mut path = HashSet::new();
    let mut at = order.first().map(|(i, _)| *i);
    while let Some(i) = at {
        if !path.insert(i) {
            break;
        }
        at = children.get(&spans[i].span_id).and_then(|k| k.iter().copied().max_by_key(|&c| (spans[c].end_ns, c)));
    }
    path
}

/// `/traces/{trace_id}`.
pub(super) fn trace_page(summary: &TraceSummary, t: &AssembledTrace) -> String {
    let spans = &t.spans;
    let order = tree_order(spans);
    let critical = critical_path(spans, &order);
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_ns).max().unwrap_or(t0);
    let total = t1.saturating_sub(t0).max(1) as f64;
    let drawn = &order[..order.len().min(MAX_ROWS)];
    let (label_w, bar_w, row_h) = (330.0, 640.0, 20.0);
    let height = row_h * drawn.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg role=\"img\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" aria-label=\"Waterfall of {n} spans over {d}\">",
        w = label_w + bar_w + 10.0,
        n = spans.len(),
        d = esc(&ms(total / 1e6)),
    );
    for (row, &(i, depth)) in drawn.iter().enumerate() {
        let s = &spans[i];
        let y = row as f64 * row_h + 20.0;
        let x = label_w + (s.start_ns.saturating_sub(t0)) as f64 / total * bar_w;
        let w = (s.end_ns.saturating_sub(s.start_ns) as f64 / total * bar_w).max(1.0);
        let fill = if s.error { ERROR } else { colour(&s.service) };
        let name: String = s.name.chars().take(40).collect();
        let on_path = critical.contains(&i);
        let stroke = if on_path { " stroke=\"#000\" stroke-width=\"2\"" } else { "" };
        let _ = write!(
            svg,
            "<g><title>{title}</title><text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">{label}</text>\
             <rect x=\"{x:.1}\" y=\"{ry}\" width=\"{w:.1}\" height=\"14\" fill=\"{fill}\"{stroke} data-critical=\"{on_path}\"/></g>",
            title = esc(&format!(
                "{} ({}): {}{}{}",
                s.name,
                s.service,
                ms(s.duration_ms()),
                if s.error { ", error" } else { "" },
                if on_path { ", critical path" } else { "" }
            )),
            tx = 4 + depth.min(20) * 12,
            ty = y + 11.0,
            label = esc(&name),
            ry = y,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{label_w}\" y=\"12\" font-size=\"11\">0</text><text x=\"{}\" y=\"12\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        label_w + bar_w,
        esc(&ms(total / 1e6))
    );
    let mut details = String::new();
    for &(i, depth) in drawn {
        let s = &spans[i];
        let _ = write!(
            details,
            "<details style=\"margin-left:{}px\"><summary>{}{} <small>{} &middot; {}</small></summary><table>",
            depth.min(20) * 12,
            if s.error { "<span class=\"err\">error</span> " } else { "" },
            esc(&s.name),
            esc(&s.service),
            esc(&ms(s.duration_ms()))
        );
        let _ = write!(
            details,
            "<tr><th scope=\"row\">span</th><td><code>{}</code>{}</td></tr>",
            hex(&s.span_id),
            s.parent.map(|p| format!(" under <code>{}</code>", hex(&p))).unwrap_or_default()
        );
        if !s.status_message.is_empty() {
            let _ = write!(details, "<tr><th scope=\"row\">status</th><td>{}</td></tr>", esc(&s.status_message));
        }
        for (k, v) in &s.attributes {
            let v: String = v.chars().take(2000).collect();
            let _ = write!(details, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(k), esc(&v));
        }
        for e in &s.events {
            let attrs: Vec<String> = e
                .attributes
                .iter()
                .map(|(k, v)| format!("{}={}", esc(k), esc(&v.chars().take(2000).collect::<String>())))
                .collect();
            let _ = write!(
                details,
                "<tr><th scope=\"row\">event {}</th><td><pre>{}</pre></td></tr>",
                esc(&e.name),
                attrs.join("\n")
            );
        }
        details.push_str("</table></details>");
    }
    let left_out = spans.len().saturating_sub(drawn.len());
    let more = if left_out > 0 {
        format!("<p>{left_out} more spans not drawn (at most {MAX_ROWS}).</p>")
    } else {
        String::new()
    };
    let id = esc(&summary.trace_id);
    // Where it came from: the browser sessions and views of its browser spans.
    let mut sessions: Vec<(String, String)> = Vec::new();
    for s in spans {
        let attr = |k: &str| s.attributes.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        if let Some(session) = attr("session.id") {
            let view = attr("thorbis.view.route").unwrap_or_default();
            if !sessions.iter().any(|(a, b)| *a == session && *b == view) && sessions.len() < 10 {
                sessions.push((session, view));
            }
        }
    }
    let mut links = String::new();
    for (session, view) in &sessions {
        let _ = write!(
            links,
            " &middot; browser session <a href=\"/sessions/{0}\">{0}</a> on {1} \
             (<a href=\"/replays/{0}?t={2}\">replay at this trace</a>)",
            esc(session),
            esc(view),
            summary.start.0
        );
    }
    let errors = if summary.error || spans.iter().any(|s| s.events.iter().any(|e| e.name == "exception")) {
        format!(" &middot; <a href=\"/api/v1/rum/errors?trace_id={id}\">its error groups</a>")
    } else {
        String::new()
    };
    let body = format!(
        "<p><a href=\"/traces\">Traces</a></p><h1>Trace <code>{id}</code></h1>\
         <p>{root} &middot; {dur} &middot; {n} spans &middot; services {services} &middot; kept: {policy}{err} \
         &middot; <a href=\"/api/v1/traces/{id}?format=otlp\">OTLP JSON</a>{errors}{links}</p>\
         <p>Bars are coloured by service; red is an error; outlined bars are the critical path.</p>\
         <figure>{svg}</figure>{more}<h2>Spans</h2>{details}",
        root = esc(&format!("{} {}", summary.service, summary.route)),
        dur = esc(&ms(summary.duration_ms)),
        n = spans.len(),
        services = esc(&summary.services),
        policy = esc(&summary.policy),
        err = if summary.error { " &middot; <span class=\"err\">error</span>" } else { "" },
    );
    page(&format!("Trace {}", summary.trace_id), &body)
}

/// The filter values shown back in the form.
#[derive(Debug, Default)]
pub(super) struct Filter {
    pub(super) service: String,
    pub(super) route: String,
    pub(super) status: String,
    pub(super) min_duration: String,
}

/// Log-spaced bins of `durations` as an SVG bar chart.
fn histogram(durations: &[f64]) -> String {
    let (lo, hi) = durations.iter().fold((f64::MAX, 0.0f64), |(a, b), &d| (a.min(d.max(0.01)), b.max(d)));
    if durations.is_empty() || hi <= 0.0 {
        return String::new();
    }
    const BINS: usize = 20;
    let (l0, l1) = (lo.ln(), (hi * 1.0001).ln().max(lo.ln() + 1e-9));
    let mut counts = [0usize; BINS];
    for &d in durations {
        let b = (((d.max(0.01).ln() - l0) / (l1 - l0)) * BINS as f64) as usize;
        counts[b.min(BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<svg role=\"img\" width=\"620\" height=\"130\" aria-label=\"Durations of the {} traces listed, from {} to {}\">",
        durations.len(),
        esc(&ms(lo)),
        esc(&ms(hi))
    );
    for (i, c) in counts.iter().enumerate() {
        let h = *c as f64 / top * 100.0;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"28\" height=\"{h:.1}\" fill=\"#1a73e8\"><title>{c}</title></rect>",
            10 + i * 30,
            110.0 - h
        );
    }
    let _ = write!(
        svg,
        "<text x=\"10\" y=\"125\" font-size=\"11\">{}</text><text x=\"610\" y=\"125\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        esc(&ms(lo)),
        esc(&ms(hi))
    );
    svg
}

/// `/traces`.
pub(super) fn list_page(traces: &[TraceSummary], f: &Filter) -> String {
    let selected = |v: &str| if f.status == v { " selected" } else { "" };
    let mut rows = String::new();
    for t in traces {
        let when = t.start.to_rfc3339();
        let _ = write!(
            rows,
            "<tr><td>{when}</td><td><a href=\"/traces/{id}\">{service} {route}</a></td><td>{dur}</td><td>{n}</td><td>{err}</td><td>{policy}</td></tr>",
            id = esc(&t.trace_id),
            service = esc(&t.service),
            route = esc(&t.route),
            dur = esc(&ms(t.duration_ms)),
            n = t.span_count,
            err = if t.error { "<span class=\"err\">error</span>" } else { "" },
            policy = esc(&t.policy),
        );
    }
    let durations: Vec<f64> = traces.iter().map(|t| t.duration_ms).collect();
    let body = format!(
        "<h1>Traces</h1><form method=\"get\" action=\"/traces\">\
         <label>Service <input name=\"service\" value=\"{service}\"></label>\
         <label>Route <input name=\"route\" value=\"{route}\"></label>\
         <label>Status <select name=\"status\"><option value=\"\">any</option><option value=\"error\"{e}>error</option><option value=\"ok\"{o}>ok</option></select></label>\
         <label>At least <input name=\"min_duration\" size=\"6\" value=\"{min}\"> ms</label><button>Filter</button></form>\
         <figure>{hist}<figcaption>Durations of the traces listed (log scale)</figcaption></figure>\
         <table><caption>{n} traces, newest first</caption><thead><tr><th scope=\"col\">Start</th><th scope=\"col\">Root</th>\
         <th scope=\"col\">Duration</th><th scope=\"col\">Spans</th><th scope=\"col\">Error</th><th scope=\"col\">Kept as</th></tr></thead><tbody>{rows}</tbody></table>",
        service = esc(&f.service),
        route = esc(&f.route),
        e = selected("error"),
        o = selected("ok"),
        min = esc(&f.min_duration),
        hist = histogram(&durations),
        n = traces.len(),
    );
    page("Traces", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, parent: Option<u8>, start: u64, end: u64) -> TraceSpan {
        TraceSpan {
            trace_id: [1; 16],
            span_id: [id; 8],
            parent: parent.map(|p| [p; 8]),
            service: "api".into(),
            name: format!("<op {id}>"),
            kind: 1,
            start_ns: start,
            end_ns: end,
            error: id == 3,
            status_message: String::new(),
            route: None,
            attributes: vec![("q".into(), "<script>".into())],
            events: vec![],
        }
    }

    #[test]
    fn rows_follow_the_tree_and_cycles_do_not_loop() {
        // 1 -> (2 -> 4), 3; 5 and 6 point at each other (a cycle); 7's parent never came.
        let spans = vec![
            span(4, Some(2), 30, 40),
            span(1, None, 0, 100),
            span(3, Some(1), 50, 90),
            span(2, Some(1), 10, 60),
            span(5, Some(6), 0, 1),
            span(6, Some(5), 0, 1),
            span(7, Some(9), 5, 6),
        ];
        let order: Vec<(u8, usize)> = tree_order(&spans).iter().map(|&(i, d)| (spans[i].span_id[0], d)).collect();
        assert_eq!(order, [(1, 0), (2, 1), (4, 2), (3, 1), (7, 0), (5, 0), (6, 0)]);
        let path: HashSet<u8> =
            critical_path(&spans, &tree_order(&spans)).iter().map(|&i| spans[i].span_id[0]).collect();
        assert_eq!(path, HashSet::from([1, 3]), "the child that ends last, from the root");
    }

    #[test]
    fn the_page_escapes_and_caps() {
        let spans: Vec<TraceSpan> =
            (0..(MAX_ROWS + 5)).map(|i| span((i % 250) as u8, None, i as u64, i as u64 + 10)).collect();
        let t = AssembledTrace { trace_id: [1; 16], spans, dropped_spans: 0 };
        let summary = TraceSummary {
            trace_id: hex(&[1; 16]),
            start: thorbis_obs_core::time::Timestamp(0),
            duration_ms: 1.0,
            service: "api".into(),
            route: "/x".into(),
            name: "GET".into(),
            services: "api".into(),
            span_count: t.spans.len() as i64,
            error: true,
            policy: "error".into(),
            bytes: 1,
        };
        let html = trace_page(&summary, &t);
        assert!(!html.contains("<script>") && !html.contains("<op "), "escaped");
        assert!(html.contains("5 more spans not drawn"));
        assert!(html.contains(ERROR), "the error span is red");
    }
}
