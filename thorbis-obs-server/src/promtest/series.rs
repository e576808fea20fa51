//! promtool's input-series notation: `metric{a="b"}` and values such as `1+2x10 _ stale 5x3`.

use thorbis_obs_core::metrics::Labels;

/// One expanded value: a number, a gap (`_`), or a staleness marker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    /// A sample.
    Value(f64),
    /// No sample at this step.
    Missing,
    /// Staleness marker: the series ended (over-time windows simply have no sample here).
    Stale,
}

/// Parses `name{l1="v1", l2="v2"}` (labels optional; `{__name__="x"}` accepted).
pub fn parse_series(text: &str) -> Result<(String, Labels), String> {
    let t = text.trim();
    let (name, rest) = match t.find('{') {
        Some(i) => (t[..i].trim(), &t[i..]),
        None => (t, ""),
    };
    let mut labels = Labels::new();
    let mut metric = name.to_string();
    if !rest.is_empty() {
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| format!("series {text:?}: labels must be enclosed in {{}}"))?;
        let mut chars = inner.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let key: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_')).collect();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if key.is_empty() || chars.next() != Some('=') {
                return Err(format!("series {text:?}: expected label=\"value\""));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('"') {
                return Err(format!("series {text:?}: label {key} needs a quoted value"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => return Err(format!("series {text:?}: unterminated escape")),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("series {text:?}: unterminated label value")),
                }
            }
            if key == "__name__" {
                metric = value;
            } else {
                labels.insert(key, value);
            }
        }
    }
    if !thorbis_obs_core::metrics::is_valid_name(&metric, true) {
        return Err(format!("series {text:?}: invalid metric name {metric:?}"));
    }
    Ok((metric, labels))
}

/// Expands promtool's value notation: `a`, `a+bxn` and `a-bxn` (n+1 values: a, a+b, ...,
/// a+n*b), `axn` (a repeated n+1 times), `_`, `_xn` (n gaps), `stale`.
pub fn expand_values(text: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        let bad = || format!("value {tok:?}: expected a number, a+bxn, a-bxn, axn, _, _xn or stale");
        if tok == "_" {
            out.push(Point::Missing);
        } else if tok == "stale" {
            out.push(Point::Stale);
        } else if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| bad())?;
            out.extend(std::iter::repeat_n(Point::Missing, n));
        } else if let Some((head, n)) = tok.rsplit_once('x') {
            let n: usize = n.parse().map_err(|_| bad())?;
            if n > 1_000_000 {
                return Err(format!("value {tok:?}: at most 1000000 repetitions"));
            }
            // Split `a+b` / `a-b`, minding a leading sign and exponents.
            let split = head
                .char_indices()
                .skip(1)
                .filter(|&(i, c)| (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E'))
                .map(|(i, _)| i)
                .last();
            let (a, b) = match split {
                Some(i) => {
                    let a: f64 = head[..i].parse().map_err(|_| bad())?;
                    let b: f64 = head[i + 1..].parse().map_err(|_| bad())?;
                    (a, if &head[i..i + 1] == "-" { -b } else { b })
                }
                None => (head.parse().map_err(|_| bad())?, 0.0),
            };
            out.extend((0..=n).map(|k| Point::Value(a + b * k as f64)));
        } else {
            out.push(Point::Value(tok.parse().map_err(|_| bad())?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_promtool_notation() {
        use Point::*;
        assert_eq!(expand_values("1+2x3").expect("ok"), vec![Value(1.0), Value(3.0), Value(5.0), Value(7.0)]);
        assert_eq!(
            expand_values("10-5x2 _ stale").expect("ok"),
            vec![Value(10.0), Value(5.0), Value(0.0), Missing, Stale]
        );
        assert_eq!(
            expand_values("-1+1x1 _x2 7x1").expect("ok"),
            vec![Value(-1.0), Value(0.0), Missing, Missing, Value(7.0), Value(7.0)]
        );
        assert_eq!(expand_values("1e3+1e-1x1").expect("ok"), vec![Value(1000.0), Value(1000.1)]);
        assert!(expand_values("1+x3").is_err());
        assert!(expand_values("abc").is_err());
    }

    #[test]
    fn parses_series() {
        let (m, l) = parse_series("http_requests{job=\"api\", path=\"/a\\\"b\"}").expect("ok");
        assert_eq!(m, "http_requests");
        assert_eq!(l.get("path"), Some("/a\"b"));
        assert_eq!(parse_series("up").expect("ok").0, "up");
        assert!(parse_series("up{job=api}").is_err());
        assert!(parse_series("9up").is_err());
    }
}
