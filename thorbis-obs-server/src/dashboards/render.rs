//! HTML for dashboards: one page, widgets as sections, charts and gauges as inline SVG. Every
//! piece of outside text goes through [`esc`].

use super::{Axis, DashboardConfig, Status, WidgetConfig, WidgetData, WidgetKind};
use std::fmt::Write;

pub(crate) use crate::api::escape_html as esc;

/// A number for people: thousands separated, at most two decimals (three below 1), the unit
/// after it.
pub(crate) fn number(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    // Money keeps its cents; other large numbers lose their decimals.
    let decimals = if unit == "$" {
        2
    } else if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').map_or((text.as_str(), ""), |(i, f)| (i, f));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let frac = frac.trim_end_matches('0');
    let sign = if v < 0.0 { "-" } else { "" };
    let n = if frac.is_empty() { format!("{sign}{grouped}") } else { format!("{sign}{grouped}.{frac}") };
    match unit {
        "" => n,
        "%" => format!("{n}%"),
        "$" => format!("${n}"),
        u => format!("{n} {u}"),
    }
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::NoData => "nodata",
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warning => "Warning",
        Status::Critical => "Critical",
        Status::NoData => "No data",
    }
}

/// Line colors with at least 3:1 contrast on white.
const PALETTE: [&str; 8] = ["#1f5fbf", "#b3261e", "#1b7a3a", "#8a4d00", "#6b3fa0", "#00707a", "#a0306e", "#4a4a4a"];

/// How line `label` is drawn: legend name, colour, right axis, unit.
fn style<'a>(w: &'a WidgetConfig, label: &'a str, i: usize) -> (&'a str, &'a str, bool, &'a str) {
    match w.series.iter().find(|s| s.column == label) {
        Some(s) => (
            s.name.as_deref().unwrap_or(label),
            s.color.as_deref().unwrap_or(PALETTE[i % PALETTE.len()]),
            s.axis == Axis::Right,
            s.unit.as_deref().unwrap_or(&w.unit),
        ),
        None => (label, PALETTE[i % PALETTE.len()], false, &w.unit),
    }
}

fn chart(w: &WidgetConfig, d: &WidgetData) -> String {
    const W: f64 = 560.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 22.0;
    if d.lines.is_empty() {
        return "<p class=\"nodata\">No data in range</p>".into();
    }
    let two_axes = d.lines.iter().enumerate().any(|(i, l)| style(w, &l.label, i).2);
    let right_edge = if two_axes { W - LEFT } else { W - 8.0 };
    // The range ending now; wider when the data is older or newer (a SQL chart of months).
    let times = || d.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0 as f64));
    let end = times().fold(d.at.0 as f64, f64::max);
    let start = times().fold(d.at.0 as f64 - w.range.get().as_millis() as f64, f64::min);
    let from_label = if start < d.at.0 as f64 - w.range.get().as_millis() as f64 {
        thorbis_obs_core::chrono::DateTime::from_timestamp_millis(start as i64)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    } else {
        format!("-{}", w.range)
    };
    // Each axis scales to its own lines: (min, top).
    let scale = |right: bool| {
        let values = || {
            d.lines
                .iter()
                .enumerate()
                .filter(move |(i, l)| style(w, &l.label, *i).2 == right)
                .flat_map(|(_, l)| l.points.iter().map(|p| p.1))
        };
        let max = values().fold(f64::MIN, f64::max);
        let min = values().fold(f64::MAX, f64::min).min(0.0);
        let top = if max > min { max + (max - min) * 0.1 } else { min + 1.0 };
        (min, top)
    };
    let (left_scale, right_scale) = (scale(false), scale(true));
    let x = |t: f64| LEFT + (t - start) / (end - start).max(1.0) * (right_edge - LEFT);
    let y = |v: f64, (min, top): (f64, f64)| 8.0 + (top - v) / (top - min) * (H - BOTTOM - 8.0);
    let summary: Vec<String> = d
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (name, _, _, unit) = style(w, &l.label, i);
            format!("{name} latest {}", l.points.last().map(|p| number(p.1, unit)).unwrap_or_default())
        })
        .collect();
    let mut s = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}: {}\" class=\"chart\">",
        esc(&w.title),
        esc(&summary.join("; "))
    );
    let b = H - BOTTOM;
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{right_edge}\" y2=\"{b}\" class=\"axis\"/><line x1=\"{LEFT}\" y1=\"8\" x2=\"{LEFT}\" y2=\"{b}\" class=\"axis\"/>"
    );
    let right_unit = d
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| style(w, &l.label, i))
        .find(|st| st.2)
        .map_or(w.unit.as_str(), |st| st.3);
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"16\" class=\"tick\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{b}\" class=\"tick\" text-anchor=\"end\">{}</text>",
        LEFT - 4.0,
        esc(&number(left_scale.1, &w.unit)),
        LEFT - 4.0,
        esc(&number(left_scale.0, &w.unit))
    );
    if two_axes {
        let _ = write!(
            s,
            "<line x1=\"{right_edge}\" y1=\"8\" x2=\"{right_edge}\" y2=\"{b}\" class=\"axis\"/>\
<text x=\"{0}\" y=\"16\" class=\"tick\">{1}</text><text x=\"{0}\" y=\"{b}\" class=\"tick\">{2}</text>",
            right_edge + 4.0,
            esc(&number(right_scale.1, right_unit)),
            esc(&number(right_scale.0, right_unit))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\" class=\"tick\">{}</text><text x=\"{right_edge}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">now</text>",
        H - 6.0,
        esc(&from_label),
        H - 6.0
    );
    for t in &w.thresholds {
        if *t > left_scale.0 && *t < left_scale.1 {
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{right_edge}\" y2=\"{0:.1}\" class=\"threshold\"/>",
                y(*t, left_scale)
            );
        }
    }
    for (i, l) in d.lines.iter().enumerate() {
        let (_, color, right, _) = style(w, &l.label, i);
        let sc = if right { right_scale } else { left_scale };
        let pts: Vec<String> = l.points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v, sc))).collect();
        if pts.len() == 1 {
            let (t, v) = l.points[0];
            let _ =
                write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>", x(t as f64), y(v, sc), esc(color));
        } else {
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                esc(color),
                pts.join(" ")
            );
        }
    }
    s.push_str("</svg><ul class=\"legend\">");
    for (i, l) in d.lines.iter().enumerate() {
        let (name, color, right, unit) = style(w, &l.label, i);
        let latest = l.points.last().map(|p| number(p.1, unit)).unwrap_or_default();
        let side = if two_axes { if right { " (right axis)" } else { " (left axis)" } } else { "" };
        let _ = write!(
            s,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}{side} <strong>{}</strong></li>",
            esc(color),
            esc(name),
            esc(&latest)
        );
    }
    s.push_str("</ul>");
    s
}

/// The number against the previous period (arrow, change, the previous value) and against
/// the target (share reached).
fn versus(w: &WidgetConfig, d: &WidgetData) -> String {
    let mut s = String::new();
    if let (Some(change), Some(previous)) = (d.change, d.previous) {
        let (arrow, word, class) = if change > 0.0 {
            ("\u{25b2}", "up", "up")
        } else if change < 0.0 {
            ("\u{25bc}", "down", "down")
        } else {
            ("\u{25b6}", "flat", "flat")
        };
        let _ = write!(
            s,
            "<p class=\"trend {class}\"><span aria-hidden=\"true\">{arrow}</span> <span class=\"sr-only\">{word}</span>{} vs previous period ({})</p>",
            esc(&number(change.abs() * 100.0, "%")),
            esc(&number(previous, &w.unit))
        );
    }
    if let (Some(share), Some(target)) = (d.of_target, d.target) {
        let _ = write!(
            s,
            "<p class=\"target\"><meter min=\"0\" max=\"1\" value=\"{:.3}\"></meter> {} of target {}</p>",
            share.clamp(0.0, 1.0),
            esc(&number(share * 100.0, "%")),
            esc(&number(target, &w.unit))
        );
    }
    s
}

/// A point on the gauge's half circle for `v` (centre 100,100, radius 80).
fn arc_point(w: &WidgetConfig, v: f64) -> (f64, f64) {
    let frac = ((v - w.min) / (w.max - w.min)).clamp(0.0, 1.0);
    let angle = std::f64::consts::PI * (1.0 - frac);
    (100.0 + 80.0 * angle.cos(), 100.0 - 80.0 * angle.sin())
}

/// A gauge's three bands as thin arcs under its track: red, yellow, green, best last.
fn bands(w: &WidgetConfig) -> String {
    let [a, b, c] = w.thresholds.as_slice() else { return String::new() };
    let (lo, hi) = (w.min, w.max);
    let ranges = if w.lower_is_worse {
        [(lo, *a, "critical"), (*a, *b, "warning"), (*b, *c, "ok"), (*c, hi, "best")]
    } else {
        [(lo, *a, "best"), (*a, *b, "ok"), (*b, *c, "warning"), (*c, hi, "critical")]
    };
    let mut s = String::new();
    for (from, to, class) in ranges {
        if to <= from {
            continue;
        }
        let (sx, sy) = arc_point(w, from);
        let (ex, ey) = arc_point(w, to);
        let _ = write!(s, "<path d=\"M{sx:.1} {sy:.1} A80 80 0 0 1 {ex:.1} {ey:.1}\" class=\"band {class}\"/>");
    }
    s
}

fn gauge(w: &WidgetConfig, d: &WidgetData) -> String {
    let Some(v) = d.value else { return "<p class=\"nodata\">No data</p>".into() };
    // A half circle from the left (min) to the right (max).
    let (ex, ey) = arc_point(w, v);
    format!(
        "<svg viewBox=\"0 0 200 120\" role=\"img\" aria-label=\"{t}: {val} of {max}\" class=\"gauge\">\
<path d=\"M20 100 A80 80 0 0 1 180 100\" class=\"track\"/>{bands}\
<path d=\"M20 100 A80 80 0 0 1 {ex:.1} {ey:.1}\" class=\"fill {c}\"/>\
<text x=\"100\" y=\"96\" text-anchor=\"middle\" class=\"gauge-value\">{val}</text>\
<text x=\"20\" y=\"116\" text-anchor=\"middle\" class=\"tick\">{mn}</text><text x=\"180\" y=\"116\" text-anchor=\"middle\" class=\"tick\">{mx}</text></svg>",
        t = esc(&w.title),
        val = esc(&number(v, &w.unit)),
        max = esc(&number(w.max, &w.unit)),
        c = status_class(d.status),
        mn = esc(&number(w.min, "")),
        mx = esc(&number(w.max, "")),
        bands = bands(w),
    ) + &versus(w, d)
}

fn table(w: &WidgetConfig, d: &WidgetData) -> String {
    if d.rows.is_empty() {
        return "<p class=\"nodata\">Nothing to show</p>".into();
    }
    let mut s = format!("<table><caption class=\"sr-only\">{}</caption><thead><tr>", esc(&w.title));
    for c in &d.columns {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(c));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &d.rows {
        s.push_str("<tr>");
        for (name, c) in d.columns.iter().zip(r) {
            // A trace id (the errors table's `trace` column) opens the trace's waterfall.
            let is_trace = name == "trace" && c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit());
            // A session id (its `session` column) opens the session's timeline.
            let is_session = name == "session"
                && (1..=64).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            // An error group's fingerprint opens its page (stack, breadcrumbs, tags).
            let is_group = name == "group"
                && (1..=40).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if is_group {
                let _ = write!(s, "<td><a href=\"/errors/{0}\">details</a></td>", esc(c));
            } else if is_trace {
                let _ = write!(s, "<td><a href=\"/traces/{0}\">{1}&hellip;</a></td>", esc(c), esc(&c[..8]));
            } else if is_session {
                let short: String = c.chars().take(8).collect();
                let _ = write!(s, "<td><a href=\"/sessions/{0}\">{1}&hellip;</a></td>", esc(c), esc(&short));
            } else {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A map widget: one row per region with its numbers and a bar for the first, scaled to the
/// largest, most first.
fn regions(w: &WidgetConfig, d: &WidgetData) -> String {
    if d.rows.is_empty() {
        return "<p class=\"nodata\">Nothing to show</p>".into();
    }
    let value = |r: &Vec<String>| r.get(1).and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite()).unwrap_or(0.0);
    let mut rows: Vec<&Vec<String>> = d.rows.iter().collect();
    rows.sort_by(|a, b| value(b).total_cmp(&value(a)));
    let max = rows.iter().map(|r| value(r)).fold(0.0, f64::max);
    let mut s = format!("<table><caption class=\"sr-only\">{}</caption><thead><tr>", esc(&w.title));
    for c in &d.columns {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(c));
    }
    s.push_str("<th scope=\"col\"><span class=\"sr-only\">share</span></th></tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        let pct = if max > 0.0 { value(r) / max * 100.0 } else { 0.0 };
        let _ = write!(s, "<td class=\"barcell\"><span class=\"bar\" style=\"width:{pct:.1}%\"></span></td></tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// One widget as a `<section>`, what the page's script swaps in on refresh.
pub fn widget_html(w: &WidgetConfig, d: &WidgetData) -> String {
    let body = match w.kind {
        _ if d.error.is_some() => {
            format!("<p class=\"nodata\" role=\"alert\">{}</p>", esc(d.error.as_deref().unwrap_or("")))
        }
        WidgetKind::Metric => match d.value {
            Some(v) => {
                let mut s = format!("<p class=\"value {}\">{}</p>", status_class(d.status), esc(&number(v, &w.unit)));
                s.push_str(&versus(w, d));
                s
            }
            None => "<p class=\"value nodata\">No data</p>".into(),
        },
        WidgetKind::Gauge => gauge(w, d),
        WidgetKind::Chart => chart(w, d),
        WidgetKind::Table => table(w, d),
        WidgetKind::Map => regions(w, d),
    };
    let at = thorbis_obs_core::chrono::DateTime::from_timestamp_millis(d.at.0)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    format!(
        "<section class=\"widget {kind}\" id=\"w-{id}\" data-widget=\"{id}\" data-refresh=\"{refresh}\" aria-labelledby=\"t-{id}\">\
<h2 id=\"t-{id}\">{title} <span class=\"badge {sc}\">{sw}</span></h2>{body}<p class=\"updated\">Updated {at}</p></section>",
        kind = match w.kind {
            WidgetKind::Metric => "metric",
            WidgetKind::Chart => "chart-widget",
            WidgetKind::Table => "table-widget",
            WidgetKind::Gauge => "gauge-widget",
            WidgetKind::Map => "table-widget map-widget",
        },
        id = esc(&w.id),
        refresh = w.refresh.get().as_millis(),
        title = esc(&w.title),
        sc = status_class(d.status),
        sw = status_word(d.status),
    )
}

const STYLE: &str = "\
*{box-sizing:border-box}body{margin:0;font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}\
header{display:flex;gap:1.5rem;align-items:baseline;padding:.8rem 1.5rem;background:#fff;border-bottom:1px solid #d0d4da}\
header h1{font-size:1.2rem;margin:0}nav a{margin-right:1rem;color:#1f5fbf}nav a[aria-current]{font-weight:700;color:#1a1a1a;text-decoration:none}\
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem;padding:1rem 1.5rem}\
.widget{background:#fff;border:1px solid #d0d4da;border-radius:8px;padding:.8rem 1rem;min-width:0}\
.chart-widget,.table-widget{grid-column:span 2}@media(max-width:760px){.chart-widget,.table-widget{grid-column:span 1}}\
h2{font-size:.95rem;margin:0 0 .5rem;display:flex;justify-content:space-between;gap:.5rem}\
.value{font-size:2.2rem;font-weight:650;margin:.2rem 0}.updated{color:#555;font-size:.75rem;margin:.4rem 0 0}\
.badge{font-size:.72rem;font-weight:600;padding:.1rem .45rem;border-radius:99px;white-space:nowrap;align-self:flex-start}\
.badge.ok{background:#dff3e4;color:#14522a}.badge.warning{background:#fff1cc;color:#6b4a00}.badge.critical{background:#fbdcda;color:#8a1c14}.badge.nodata{background:#e8e9ec;color:#444}\
.value.ok{color:#14522a}.value.warning{color:#6b4a00}.value.critical{color:#8a1c14}.nodata{color:#555}\
svg{width:100%;height:auto;display:block}.axis{stroke:#888}.threshold{stroke:#b3261e;stroke-dasharray:4 3}.tick{font-size:11px;fill:#444}\
.track{fill:none;stroke:#e3e5e9;stroke-width:16}.fill{fill:none;stroke-width:16}.fill.ok{stroke:#1b7a3a}.fill.warning{stroke:#b98900}.fill.critical{stroke:#b3261e}.fill.nodata{stroke:#888}\
.band{fill:none;stroke-width:5;transform:translate(0,0)}.band.critical{stroke:#b3261e}.band.warning{stroke:#b98900}.band.ok{stroke:#6fbf73}.band.best{stroke:#1b7a3a}\
.barcell{width:35%}.bar{display:block;height:.7em;background:#1f5fbf;border-radius:2px;min-width:1px}\
.trend{margin:0;font-size:.85rem}.trend.up{color:#14522a}.trend.down{color:#8a1c14}.target{margin:.2rem 0 0;font-size:.85rem}meter{width:6rem}\
.gauge-value{font-size:22px;font-weight:650;fill:#1a1a1a}.legend{list-style:none;padding:0;margin:.4rem 0 0;font-size:.8rem;display:flex;flex-wrap:wrap;gap:.3rem 1rem}\
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-1px}\
table{width:100%;border-collapse:collapse;font-size:.85rem}th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #e3e5e9;overflow-wrap:anywhere}th{color:#333}\
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}";

/// Re-fetches each widget at its interval; counts successful refreshes in `data-refreshed`.
const SCRIPT: &str = "\
for(const s of document.querySelectorAll('section[data-widget]')){const id=s.dataset.widget;let n=0;\
setInterval(async()=>{try{const r=await fetch('/api/v1/widgets/'+encodeURIComponent(id)+'/html');if(!r.ok)return;\
const t=document.createElement('template');t.innerHTML=(await r.text()).trim();const f=t.content.firstElementChild;\
const cur=document.getElementById('w-'+id);if(f&&cur){f.dataset.refreshed=String(++n);cur.replaceWith(f)}}catch(e){}},Number(s.dataset.refresh)||30000)}";

/// The page of `board`, with its widgets' HTML already rendered and links to every board.
pub fn page(boards: &[DashboardConfig], board: &DashboardConfig, widgets: &[String]) -> String {
    let mut nav = String::new();
    for b in boards {
        let current = if b.id == board.id { " aria-current=\"page\"" } else { "" };
        let _ = write!(nav, "<a href=\"/dashboards/{}\"{current}>{}</a>", esc(&b.id), esc(&b.title));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} - thorbis-obs</title><style>{STYLE}</style></head><body><header><h1>{title}</h1><nav aria-label=\"Dashboards\">{nav}</nav></header>\
<main>{widgets}</main><script>{SCRIPT}</script></body></html>",
        title = esc(&board.title),
        widgets = widgets.join(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(4600.4, "ms"), "4,600 ms");
        assert_eq!(number(1234567.0, "$"), "$1,234,567");
        assert_eq!(number(1950.5, "$"), "$1,950.5");
        assert_eq!(number(0.1, ""), "0.1");
        assert_eq!(number(99.5, "%"), "99.5%");
        assert_eq!(number(-12.25, ""), "-12.25");
        assert_eq!(number(f64::NAN, "ms"), "-");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<img src=x onerror=\"a\">&'"), "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;");
    }
}
