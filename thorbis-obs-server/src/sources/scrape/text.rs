//! The Prometheus text exposition format (0.0.4) and its OpenMetrics 1.0 superset, read into
//! flat samples the way Prometheus stores them: one series per line, so a histogram is its
//! `_bucket{le=...}`, `_sum` and `_count` lines and a summary its `{quantile=...}` lines.
//!
//! Written here rather than taken from a crate because none of the maintained ones reads real
//! exporter output correctly, measured on node_exporter 1.5's /metrics and a few lines the
//! format allows (2026-12-02):
//! - `prometheus-parse` 0.2.5 splits labels on `,` and `=` and matches them with `[^}]+`, so a
//!   label value holding a comma, an `=`, an escaped quote or a `}` is mangled or the whole line
//!   is silently dropped;
//! - `nom-openmetrics` 0.2 refuses the whole exposition when a line carries a timestamp;
//! - `openmetrics-parser` 0.5 refuses a histogram whose `_sum` has fewer labels than its buckets
//!   (valid in both formats), took 6.1 ms for node_exporter's 57 KB, and is LGPL-3.0 where this
//!   workspace is MIT or Apache-2.0.
//!
//! The grammar is Prometheus' own lexer's (`model/textparse/promlex.l`): `#` lines are `HELP`,
//! `TYPE`, OpenMetrics' `UNIT` and `EOF`, or comments; a sample line is a name, optional
//! `{label="value",...}` (escapes `\\`, `\"`, `\n`; a trailing comma; Prometheus 3's quoted
//! names `{"my.metric", "a.b"="v"}`), a value (Go float syntax with `NaN`, `+Inf`, `-Inf`), and an
//! optional timestamp, then an optional OpenMetrics exemplar after ` # ` that is skipped. Any
//! other line fails the whole exposition with its line number, as a Prometheus scrape does:
//! nothing of a half-read page is kept.

use std::fmt;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample<'a> {
    /// The series' metric name.
    pub name: std::borrow::Cow<'a, str>,
    /// Its labels in the order written.
    pub labels: Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    /// The value (may be NaN or infinite: the caller decides).
    pub value: f64,
}

/// Why an exposition was refused: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

impl std::error::Error for ParseError {}

/// Reads every sample of `text`, calling `each` for each one in order. Stops at the first
/// malformed line (or at OpenMetrics' `# EOF`) and returns the error for it.
pub fn parse<'a>(
    text: &'a str,
    mut each: impl FnMut(ParsedSample<'a>) -> Result<(), String>,
) -> Result<(), ParseError> {
    for (i, raw) in text.split('\n').enumerate() {
        let err = |problem: String| ParseError { line: i + 1, problem };
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("EOF") => return Ok(()),
                Some("TYPE") => match (words.next(), words.next()) {
                    (Some(_), Some(t)) if TYPES.contains(&t) => {}
                    (Some(_), Some(t)) => return Err(err(format!("unknown metric type {t:?}"))),
                    _ => return Err(err("TYPE needs a metric name and a type".into())),
                },
                // HELP, UNIT and any other comment carry nothing we keep.
                _ => {}
            }
            continue;
        }
        let sample = sample_line(line).map_err(err)?;
        each(sample).map_err(err)?;
    }
    Ok(())
}

const TYPES: [&str; 9] =
    ["counter", "gauge", "histogram", "summary", "untyped", "unknown", "gaugehistogram", "stateset", "info"];

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Splits a bare (unquoted) name off the front of `s`.
fn bare_name(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.is_empty() || !is_name_start(b[0]) {
        return None;
    }
    let end = b.iter().position(|&c| !is_name_char(c)).unwrap_or(b.len());
    Some((&s[..end], &s[end..]))
}

/// Reads a `"..."` string with the format's escapes off the front of `s` (which starts at the
/// opening quote).
fn quoted(s: &str) -> Result<(std::borrow::Cow<'_, str>, &str), String> {
    let body = &s[1..];
    let mut owned: Option<String> = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = match owned {
                    Some(o) => std::borrow::Cow::Owned(o),
                    None => std::borrow::Cow::Borrowed(&body[..i]),
                };
                return Ok((value, &body[i + 1..]));
            }
            '\\' => {
                let o = owned.get_or_insert_with(|| body[..i].to_string());
                match chars.next() {
                    Some((_, '\\')) => o.push('\\'),
                    Some((_, '"')) => o.push('"'),
                    Some((_, 'n')) => o.push('\n'),
                    Some((_, other)) => return Err(format!("unknown escape \\{other} in a quoted string")),
                    None => return Err("a quoted string is not closed".into()),
                }
            }
            c => {
                if let Some(o) = owned.as_mut() {
                    o.push(c);
                }
            }
        }
    }
    Err("a quoted string is not closed".into())
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn sample_line(line: &str) -> Result<ParsedSample<'_>, String> {
    let (mut name, rest) = match bare_name(line) {
        Some((n, rest)) => (Some(std::borrow::Cow::Borrowed(n)), rest),
        None if line.starts_with('{') => (None, line),
        None => return Err(format!("a sample starts with a metric name, not {:?}", first_chars(line))),
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(inner) = skip_blanks(rest).strip_prefix('{') {
        rest = skip_blanks(inner);
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = if rest.starts_with('"') {
                quoted(rest)?
            } else {
                let (n, after) =
                    bare_name(rest).ok_or_else(|| format!("a label name expected at {:?}", first_chars(rest)))?;
                (std::borrow::Cow::Borrowed(n), after)
            };
            let after = skip_blanks(after);
            if let Some(v) = after.strip_prefix('=') {
                let v = skip_blanks(v);
                if !v.starts_with('"') {
                    return Err(format!("the value of label {label:?} must be quoted"));
                }
                let (value, after) = quoted(v)?;
                labels.push((label, value));
                rest = skip_blanks(after);
            } else if name.is_none() && labels.is_empty() {
                // Prometheus 3: `{"metric.name", ...}` names the metric inside the braces.
                name = Some(label);
                rest = after;
            } else {
                return Err(format!("label {label:?} has no value"));
            }
            if let Some(after) = rest.strip_prefix(',') {
                rest = skip_blanks(after);
            } else if !rest.starts_with('}') {
                return Err(format!("`,` or `}}` expected at {:?}", first_chars(rest)));
            }
        }
    }
    let name = name.ok_or_else(|| "a sample has no metric name".to_string())?;
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("a value expected after {name:?}"));
    }
    let mut fields = rest.split([' ', '\t']).filter(|f| !f.is_empty());
    let value = fields.next().ok_or_else(|| format!("{name:?} has no value"))?;
    let value = go_float(value).ok_or_else(|| format!("bad value {:?} for {name:?}", first_chars(value)))?;
    match fields.next() {
        None | Some("#") => {}
        Some(ts) => {
            if ts.parse::<i64>().is_err() && ts.parse::<f64>().map_or(true, |t| !t.is_finite()) {
                return Err(format!("bad timestamp {:?} for {name:?}", first_chars(ts)));
            }
            match fields.next() {
                None | Some("#") => {}
                Some(extra) => return Err(format!("unexpected {:?} after the timestamp", first_chars(extra))),
            }
        }
    }
    Ok(ParsedSample { name, labels, value })
}

/// Go's `strconv.ParseFloat` spellings the exporters write: decimals, exponents, `NaN`,
/// `Inf`, `+Inf`, `-Inf` (any case).
fn go_float(s: &str) -> Option<f64> {
    let unsigned = s.trim_start_matches(['+', '-']);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    // Rust accepts what Go does for these, and nothing that starts with a letter otherwise.
    if !unsigned.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    s.parse().ok()
}

fn first_chars(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, labels, value) of each sample.
    type Read = (String, Vec<(String, String)>, f64);

    fn all(text: &str) -> Result<Vec<Read>, ParseError> {
        let mut out = Vec::new();
        parse(text, |s| {
            out.push((
                s.name.into_owned(),
                s.labels.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
                s.value,
            ));
            Ok(())
        })?;
        Ok(out)
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_the_format_documentations_example() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
"#;
        let got = all(text).expect("valid");
        assert_eq!(got.len(), 11);
        assert_eq!(got[0], ("http_requests_total".into(), l(&[("method", "post"), ("code", "200")]), 1027.0));
        assert_eq!(got[1].2, 3.0);
        assert_eq!(got[2].1, l(&[("path", "C:\\DIR\\FILE.TXT"), ("error", "Cannot find file:\n\"FILE.TXT\"")]));
        assert_eq!(got[3], ("metric_without_timestamp_and_labels".into(), vec![], 12.47));
        assert_eq!(got[4].2, f64::INFINITY);
        assert_eq!(got[6], ("http_request_duration_seconds_bucket".into(), l(&[("le", "+Inf")]), 144320.0));
        assert_eq!(got[8].0, "http_request_duration_seconds_count");
        assert_eq!(got[9], ("rpc_duration_seconds".into(), l(&[("quantile", "0.5")]), 4773.0));
        assert_eq!(got[10].2, 1.7560473e7);
    }

    #[test]
    fn keeps_what_the_crates_lose() {
        // A comma, an `=`, an escaped quote and a `}` inside values; a trailing comma; tabs.
        let text = "a{path=\"/x,y\",q=\"k=v\",e=\"say \\\"hi\\\"\",b=\"}\",} 1.5 1395066363000\nb_total\t3\n";
        let got = all(text).expect("valid");
        assert_eq!(got[0].1, l(&[("path", "/x,y"), ("q", "k=v"), ("e", "say \"hi\""), ("b", "}")]));
        assert_eq!(got[1], ("b_total".into(), vec![], 3.0));
    }

    #[test]
    fn openmetrics_and_prometheus_3_spellings() {
        let text = "# TYPE x counter\n# UNIT x seconds\nx_total{a=\"1\"} 2 # {trace_id=\"abc\"} 0.5 1.2\n{\"my.metric\", \"b.c\"=\"v\"} NaN 1700000000.123\n# EOF\nignored after eof\n";
        let got = all(text).expect("valid");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "x_total");
        assert_eq!(got[1].0, "my.metric");
        assert_eq!(got[1].1, l(&[("b.c", "v")]));
        assert!(got[1].2.is_nan());
    }

    #[test]
    fn malformed_lines_name_the_line_and_the_problem() {
        let cases = [
            ("ok 1\nbad{a=\"x} 1\n", 2, "not closed"),
            ("x{a=1} 2\n", 1, "must be quoted"),
            ("x 1\n\ny abc\n", 3, "bad value"),
            ("x{a=\"1\" b=\"2\"} 1\n", 1, "`,` or `}` expected"),
            ("x\n", 1, "a value expected"),
            ("9x 1\n", 1, "starts with a metric name"),
            ("x 1 tomorrow\n", 1, "bad timestamp"),
            ("# TYPE x meter\n", 1, "unknown metric type"),
            ("x{a=\"\\q\"} 1\n", 1, "unknown escape"),
            ("x 1 2 3\n", 1, "after the timestamp"),
        ];
        for (text, line, want) in cases {
            let e = all(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_callback_can_refuse() {
        let e =
            parse("a 1\nb 2\n", |s| if s.name == "b" { Err("too many".into()) } else { Ok(()) }).expect_err("refused");
        assert_eq!(e.to_string(), "line 2: too many");
    }
}
