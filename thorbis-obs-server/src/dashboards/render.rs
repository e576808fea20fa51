//! HTML for dashboards: one page, widgets as sections, charts and gauges as inline SVG. Every
//! piece of outside text goes through [`esc`].

use super::{DashboardConfig, Status, WidgetConfig, WidgetData, WidgetKind};
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

fn chart(w: &WidgetConfig, d: &WidgetData) -> String {
    const W: f64 = 560.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 22.0;
    if d.lines.is_empty() {
        return "<p class=\"nodata\">No data in range</p>".into();
    }
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
    let max = d.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(f64::MIN, f64::max);
    let min = d.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(f64::MAX, f64::min).min(0.0);
    let top = if max > min { max + (max - min) * 0.1 } else { min + 1.0 };
    let x = |t: f64| LEFT + (t - start) / (end - start).max(1.0) * (W - LEFT - 8.0);
    let y = |v: f64| 8.0 + (top - v) / (top - min) * (H - BOTTOM - 8.0);
    let summary: Vec<String> = d
        .lines
        .iter()
        .map(|l| format!("{} latest {}", l.label, l.points.last().map(|p| number(p.1, &w.unit)).unwrap_or_default()))
        .collect();
    let mut s = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}: {}\" class=\"chart\">",
        esc(&w.title),
        esc(&summary.join("; "))
    );
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" class=\"axis\"/><line x1=\"{LEFT}\" y1=\"8\" x2=\"{LEFT}\" y2=\"{b}\" class=\"axis\"/>",
        b = H - BOTTOM,
        r = W - 8.0
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"16\" class=\"tick\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">{}</text>",
        LEFT - 4.0,
        esc(&number(top, &w.unit)),
        LEFT - 4.0,
        H - BOTTOM,
        esc(&number(min, &w.unit))
    );
    let _ = write!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\" class=\"tick\">{}</text><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">now</text>",
        H - 6.0,
        esc(&from_label),
        W - 8.0,
        H - 6.0
    );
    for t in &w.thresholds {
        if *t > min && *t < top {
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" class=\"threshold\"/>",
                y(*t),
                W - 8.0
            );
        }
    }
    for (i, l) in d.lines.iter().enumerate() {
        let pts: Vec<String> = l.points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v))).collect();
        let color = PALETTE[i % PALETTE.len()];
        if pts.len() == 1 {
            let (t, v) = l.points[0];
            let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>", x(t as f64), y(v));
        } else {
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }
    s.push_str("</svg><ul class=\"legend\">");
    for (i, l) in d.lines.iter().enumerate() {
        let latest = l.points.last().map(|p| number(p.1, &w.unit)).unwrap_or_default();
        let _ = write!(
            s,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{} <strong>{}</strong></li>",
            PALETTE[i % PALETTE.len()],
            esc(&l.label),
            esc(&latest)
        );
    }
    s.push_str("</ul>");
    s
}

fn gauge(w: &WidgetConfig, d: &WidgetData) -> String {
    let Some(v) = d.value else { return "<p class=\"nodata\">No data</p>".into() };
    let frac = ((v - w.min) / (w.max - w.min)).clamp(0.0, 1.0);
    // A half circle from the left (min) to the right (max).
    let angle = std::f64::consts::PI * (1.0 - frac);
    let (cx, cy, r) = (100.0, 100.0, 80.0);
    let (ex, ey) = (cx + r * angle.cos(), cy - r * angle.sin());
    format!(
        "<svg viewBox=\"0 0 200 120\" role=\"img\" aria-label=\"{t}: {val} of {max}\" class=\"gauge\">\
<path d=\"M20 100 A80 80 0 0 1 180 100\" class=\"track\"/>\
<path d=\"M20 100 A80 80 0 0 1 {ex:.1} {ey:.1}\" class=\"fill {c}\"/>\
<text x=\"100\" y=\"96\" text-anchor=\"middle\" class=\"gauge-value\">{val}</text>\
<text x=\"20\" y=\"116\" text-anchor=\"middle\" class=\"tick\">{mn}</text><text x=\"180\" y=\"116\" text-anchor=\"middle\" class=\"tick\">{mx}</text></svg>",
        t = esc(&w.title),
        val = esc(&number(v, &w.unit)),
        max = esc(&number(w.max, &w.unit)),
        c = status_class(d.status),
        mn = esc(&number(w.min, "")),
        mx = esc(&number(w.max, "")),
    )
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

/// One widget as a `<section>`, what the page's script swaps in on refresh.
pub fn widget_html(w: &WidgetConfig, d: &WidgetData) -> String {
    let body = match w.kind {
        _ if d.error.is_some() => {
            format!("<p class=\"nodata\" role=\"alert\">{}</p>", esc(d.error.as_deref().unwrap_or("")))
        }
        WidgetKind::Metric => match d.value {
            Some(v) => format!("<p class=\"value {}\">{}</p>", status_class(d.status), esc(&number(v, &w.unit))),
            None => "<p class=\"value nodata\">No data</p>".into(),
        },
        WidgetKind::Gauge => gauge(w, d),
        WidgetKind::Chart => chart(w, d),
        WidgetKind::Table => table(w, d),
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
