//! Prometheus' template functions for numbers, as its alert templates print them: `humanize`,
//! `humanize1024`, `humanizePercentage`, `humanizeDuration`, our `humanizeMillis`, and Go's
//! `printf` with one float verb. Used by annotation templates and by the packs to write their
//! thresholds the way their summaries show values.

/// Formats a value the way Prometheus templates print `$value`: shortest round-trip form.
pub fn format_value(v: f64) -> String {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// `v` as Prometheus' template function `f` prints it (`humanize`: `%.4g` with SI prefixes;
/// `humanize1024`: binary prefixes; `humanizePercentage`; `humanizeDuration`: seconds as
/// `1d 2h 3m 4s` or `2.841s`), or as our one addition, `humanizeMillis`: `humanizeDuration` of a
/// value in milliseconds (`2841.6` -> `2.842s`; Prometheus users divide in PromQL, our rules
/// cannot), since the spec's timings are in ms. None for another name.
pub fn humanized(f: &str, v: f64) -> Option<String> {
    if f == "humanizeMillis" {
        return humanized("humanizeDuration", v / 1000.0);
    }
    const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
    const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
    // Scales |v| into [1, 1000) with SI prefixes, as Prometheus' loops do.
    let si = |mut v: f64| {
        let mut prefix = "";
        if v.abs() >= 1.0 {
            for p in BIG {
                if v.abs() < 1000.0 {
                    break;
                }
                prefix = p;
                v /= 1000.0;
            }
        } else {
            for p in SMALL {
                if v.abs() >= 1.0 {
                    break;
                }
                prefix = p;
                v *= 1000.0;
            }
        }
        (v, prefix)
    };
    Some(match f {
        "humanize" if v == 0.0 || !v.is_finite() => g4(v),
        "humanize" => {
            let (v, p) = si(v);
            format!("{}{p}", g4(v))
        }
        "humanize1024" if v.abs() <= 1.0 || !v.is_finite() => g4(v),
        "humanize1024" => {
            let mut v = v;
            let mut prefix = "";
            for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
                if v.abs() < 1024.0 {
                    break;
                }
                prefix = p;
                v /= 1024.0;
            }
            format!("{}{prefix}", g4(v))
        }
        "humanizePercentage" => format!("{}%", g4(v * 100.0)),
        "humanizeDuration" if !v.is_finite() => g4(v),
        "humanizeDuration" if v == 0.0 => format!("{}s", g4(v)),
        "humanizeDuration" if v.abs() >= 1.0 => {
            let sign = if v < 0.0 { "-" } else { "" };
            let secs = v.abs().trunc() as i64;
            let (d, h, m, s) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
            if d != 0 {
                format!("{sign}{d}d {h}h {m}m {s}s")
            } else if h != 0 {
                format!("{sign}{h}h {m}m {s}s")
            } else if m != 0 {
                format!("{sign}{m}m {s}s")
            } else {
                format!("{sign}{}s", g4(v.abs()))
            }
        }
        "humanizeDuration" => {
            let (v, p) = si(v);
            format!("{}{p}s", g4(v))
        }
        _ => return None,
    })
}

/// `printf "FORMAT" ARG` split into its format and argument.
pub(crate) fn printf_call(expr: &str) -> Option<(&str, &str)> {
    let rest = expr.strip_prefix("printf")?.trim_start().strip_prefix('"')?;
    let (format, arg) = rest.split_once('"')?;
    Some((format, arg.trim()))
}

/// Go's `fmt.Sprintf(format, v)` for a format with exactly one `%f`, `%.Nf`, `%g`, `%.Ng`, `%d`
/// or `%v` verb (and `%%`); None for any other format, which is then left as written.
pub(crate) fn printf_float(format: &str, v: f64) -> Option<String> {
    let mut out = String::new();
    let mut used = false;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = Some(digits.parse::<usize>().ok()?.min(17));
        }
        if used {
            return None;
        }
        used = true;
        match (chars.next()?, precision) {
            ('f', p) => out.push_str(&format!("{:.*}", p.unwrap_or(6), v)),
            ('g', None) | ('v', None) => out.push_str(&format_value(v)),
            ('g', Some(p)) => out.push_str(&g_precision(v, p.max(1))),
            ('d', None) if v.is_finite() && v == v.trunc() => out.push_str(&format!("{}", v as i64)),
            _ => return None,
        }
    }
    used.then_some(out)
}

/// Go's `%.4g`: four significant digits, trailing zeros dropped, exponent form below 1e-4 and
/// from 1e4 (`1.235e+04`).
fn g4(v: f64) -> String {
    g_precision(v, 4)
}

/// Go's `%.Pg`: `p` significant digits, trailing zeros dropped, exponent form below 1e-4 and
/// from 10^p.
fn g_precision(v: f64, p: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.*e}", p - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    trim(&format!("{:.*}", (p as i32 - 1 - exp) as usize, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_numbers_read_as_prometheus_prints_them() {
        // The figures Prometheus' own template tests expect.
        let cases: &[(&str, f64, &str)] = &[
            ("humanize", 0.0, "0"),
            ("humanize", 1.0, "1"),
            ("humanize", 1234.0, "1.234k"),
            ("humanize", 1234567.0, "1.235M"),
            ("humanize", 2841.623515733081, "2.842k"),
            ("humanize", 0.00123, "1.23m"),
            ("humanize", -1234.0, "-1.234k"),
            ("humanize", f64::INFINITY, "+Inf"),
            ("humanizePercentage", 0.323, "32.3%"),
            ("humanizePercentage", 0.0, "0%"),
            ("humanizePercentage", 1.5, "150%"),
            ("humanizeDuration", 0.0, "0s"),
            ("humanizeDuration", 0.1, "100ms"),
            ("humanizeDuration", 0.0001, "100us"),
            ("humanizeDuration", 1.0, "1s"),
            ("humanizeDuration", 2.841, "2.841s"),
            ("humanizeDuration", 60.0, "1m 0s"),
            ("humanizeDuration", 3600.0, "1h 0m 0s"),
            ("humanizeDuration", 86400.0, "1d 0h 0m 0s"),
            ("humanizeDuration", 90061.5, "1d 1h 1m 1s"),
            ("humanizeDuration", -3725.0, "-1h 2m 5s"),
            ("humanize1024", 0.5, "0.5"),
            ("humanize1024", 1024.0, "1ki"),
            ("humanize1024", 1_048_576.0, "1Mi"),
            ("humanize1024", 11_811_160_064.0, "11Gi"),
            ("humanize1024", 1500.0, "1.465ki"),
            ("humanizeMillis", 2841.623515733081, "2.842s"),
            ("humanizeMillis", 180.0, "180ms"),
            ("humanizeMillis", 90_000.0, "1m 30s"),
        ];
        for (f, v, want) in cases {
            assert_eq!(humanized(f, *v).as_deref(), Some(*want), "{f}({v})");
        }
        assert_eq!(humanized("title", 1.0), None);
        assert_eq!(g4(12345.0), "1.234e+04");
        assert_eq!(g4(0.00001234), "1.234e-05");
    }

    #[test]
    fn printf_takes_one_float_verb() {
        assert_eq!(printf_float("%.2f", 0.31000000000000005).as_deref(), Some("0.31"));
        assert_eq!(printf_float("%.3g ms", 1234.5).as_deref(), Some("1.23e+03 ms"));
        assert_eq!(printf_float("%d%%", 12.0).as_deref(), Some("12%"));
        assert_eq!(printf_float("%f and %f", 1.0), None);
        assert_eq!(g_precision(1234567.0, 3), "1.23e+06");
    }
}
