//! OpenTelemetry metrics as Prometheus-style samples: the name translation the OpenTelemetry
//! Collector's Prometheus exporter applies, and quantiles read off histogram buckets.
//!
//! ```
//! use thorbis_obs_core::domain::otel::{bucket_quantile, prometheus_name};
//!
//! assert_eq!(prometheus_name("http.server.request.duration", "s", false), "http_server_request_duration_seconds");
//! assert_eq!(prometheus_name("orders.created", "{order}", true), "orders_created_total");
//! // 10 requests under 100 ms, 10 between 100 and 200 ms: the median is 100 ms.
//! assert_eq!(bucket_quantile(&[100.0, 200.0], &[10, 10, 0], 0.5), Some(100.0));
//! ```

/// OpenTelemetry units as the Prometheus suffixes the Collector writes.
const UNITS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("%", "percent"),
    ("Hz", "hertz"),
];

/// The quantiles a histogram's samples give, with the suffixes of their names (the OTLP
/// intake's histograms and a host app's `metrics` histograms alike).
pub const QUANTILES: [(f64, &str); 5] = [(0.5, "_p50"), (0.75, "_p75"), (0.9, "_p90"), (0.95, "_p95"), (0.99, "_p99")];

/// Longest name kept (bytes); longer names are cut.
pub const MAX_NAME: usize = 200;

/// The Prometheus name of an OpenTelemetry metric: characters outside `[a-zA-Z0-9_:]` become
/// `_` (runs collapse to one), a leading digit gets a `_`; the unit becomes a suffix unless the
/// name ends in it already (`s` -> `_seconds`, `By` -> `_bytes`, `1` on a gauge -> `_ratio`;
/// `{annotations}` are dropped, `x/y` becomes `x_per_y`); a monotonic sum ends in `_total`.
pub fn prometheus_name(name: &str, unit: &str, monotonic_sum: bool) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    push_sanitized(&mut out, name);
    let unit = unit_suffix(unit, monotonic_sum);
    if !unit.is_empty() && !out.ends_with(&format!("_{unit}")) && out != unit {
        out.push('_');
        out.push_str(&unit);
    }
    if monotonic_sum && !out.ends_with("_total") {
        out.push_str("_total");
    }
    if out.len() > MAX_NAME {
        out.truncate(MAX_NAME);
    }
    if out.is_empty() { "_".to_string() } else { out }
}

/// A label name the way [`prometheus_name`] writes names (without units).
pub fn label_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    push_sanitized(&mut out, key);
    out.truncate(MAX_NAME.min(out.len()));
    if out.is_empty() { "_".to_string() } else { out }
}

fn push_sanitized(out: &mut String, s: &str) {
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        if out.is_empty() && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(c);
    }
    while out.len() > 1 && out.ends_with('_') {
        out.pop();
    }
}

fn unit_suffix(unit: &str, monotonic_sum: bool) -> String {
    // `{request}`-style annotations carry no unit.
    let mut plain = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = (depth - 1).max(0),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.trim();
    if plain == "1" {
        return if monotonic_sum { String::new() } else { "ratio".into() };
    }
    let word = |u: &str| UNITS.iter().find(|(k, _)| *k == u).map_or_else(|| label_name(u), |(_, v)| (*v).to_string());
    match plain.split_once('/') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => {
            let per = match b {
                "s" => "second".to_string(),
                "m" => "minute".to_string(),
                "h" => "hour".to_string(),
                "d" => "day".to_string(),
                other => word(other),
            };
            format!("{}_per_{per}", word(a))
        }
        _ if plain.is_empty() => String::new(),
        _ => word(plain),
    }
}

/// The `q` quantile (0..=1) of a histogram with explicit bucket `bounds` (upper bounds,
/// ascending) and `counts` (one more than the bounds: the last bucket is `(last bound, +inf)`),
/// interpolated linearly within the bucket it falls in, as Prometheus' `histogram_quantile`
/// does: the first bucket starts at 0 (or at its bound when that is negative), and a quantile in
/// the open last bucket is the last bound. None without observations or with inconsistent
/// input.
pub fn bucket_quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    if counts.len() != bounds.len() + 1 || !q.is_finite() || bounds.iter().any(|b| !b.is_finite()) {
        return None;
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    let total: u64 = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut seen = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        let before = seen;
        seen = seen.saturating_add(c);
        if (seen as f64) < rank || c == 0 {
            continue;
        }
        let Some(&upper) = bounds.get(i) else {
            return bounds.last().copied();
        };
        let lower = if i == 0 { upper.min(0.0) } else { bounds[i - 1] };
        let within = (rank - before as f64) / c as f64;
        return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
    }
    bounds.last().copied()
}

/// The explicit form of an exponential histogram's positive buckets: the upper bounds and
/// counts [`bucket_quantile`] takes, with the zero bucket first (`[0, 0]`). Bucket `i` (from
/// `offset`) covers `(base^(offset+i), base^(offset+i+1)]` with `base = 2^(2^-scale)`. None when
/// the scale is out of OpenTelemetry's range (-10..=20) or there are more than `max_buckets`.
pub fn exponential_buckets(
    scale: i32,
    offset: i32,
    counts: &[u64],
    zero_count: u64,
    max_buckets: usize,
) -> Option<(Vec<f64>, Vec<u64>)> {
    if !(-10..=20).contains(&scale) || counts.len() > max_buckets {
        return None;
    }
    let base = 2f64.powf(2f64.powi(-scale));
    let mut bounds = Vec::with_capacity(counts.len() + 1);
    let mut out = Vec::with_capacity(counts.len() + 2);
    bounds.push(0.0);
    out.push(zero_count);
    for (i, &c) in counts.iter().enumerate() {
        let upper = base.powf(f64::from(offset) + i as f64 + 1.0);
        if !upper.is_finite() || bounds.last().is_some_and(|b| upper <= *b) {
            return None;
        }
        bounds.push(upper);
        out.push(c);
    }
    out.push(0);
    Some((bounds, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_collector_s_prometheus_rules() {
        assert_eq!(prometheus_name("http.server.request.duration", "s", false), "http_server_request_duration_seconds");
        assert_eq!(prometheus_name("system.memory.usage", "By", false), "system_memory_usage_bytes");
        assert_eq!(prometheus_name("requests", "{request}", true), "requests_total");
        assert_eq!(prometheus_name("cpu.utilization", "1", false), "cpu_utilization_ratio");
        assert_eq!(prometheus_name("throughput", "By/s", false), "throughput_bytes_per_second");
        assert_eq!(prometheus_name("latency_seconds", "s", false), "latency_seconds");
        assert_eq!(prometheus_name("jobs_total", "", true), "jobs_total");
        assert_eq!(prometheus_name("9lives..x--y", "", false), "_9lives_x_y");
        assert_eq!(prometheus_name("queue.size", "weird unit!", false), "queue_size_weird_unit");
        assert_eq!(prometheus_name("", "", false), "_");
        assert!(prometheus_name(&"n".repeat(500), "s", false).len() <= MAX_NAME);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        // 100 values: 10 in (0, 10], 40 in (10, 20], 50 in (20, 50], none above.
        let bounds = [10.0, 20.0, 50.0];
        let counts = [10, 40, 50, 0];
        assert_eq!(bucket_quantile(&bounds, &counts, 0.1), Some(10.0));
        assert_eq!(bucket_quantile(&bounds, &counts, 0.3), Some(15.0));
        assert_eq!(bucket_quantile(&bounds, &counts, 0.75), Some(35.0));
        assert_eq!(bucket_quantile(&bounds, &counts, 1.0), Some(50.0));
        // In the open last bucket: its lower bound.
        assert_eq!(bucket_quantile(&bounds, &[0, 0, 1, 9], 0.99), Some(50.0));
        assert_eq!(bucket_quantile(&bounds, &[0, 0, 0, 0], 0.5), None);
        assert_eq!(bucket_quantile(&bounds, &[1, 2], 0.5), None, "counts must be one more than bounds");
        assert_eq!(bucket_quantile(&[5.0, 1.0], &[1, 1, 1], 0.5), None, "bounds must ascend");
        assert_eq!(bucket_quantile(&[f64::NAN], &[1, 1], 0.5), None);
    }

    #[test]
    fn exponential_buckets_become_explicit_ones() {
        // Scale 0: base 2; offset 0 covers (1, 2], (2, 4], (4, 8].
        let (bounds, counts) = exponential_buckets(0, 0, &[1, 2, 1], 0, 160).expect("valid");
        assert_eq!(bounds, [0.0, 2.0, 4.0, 8.0]);
        assert_eq!(counts, [0, 1, 2, 1, 0]);
        let median = bucket_quantile(&bounds, &counts, 0.5).expect("median");
        assert!((2.0..=4.0).contains(&median), "{median}");
        assert!(exponential_buckets(21, 0, &[1], 0, 160).is_none());
        assert!(exponential_buckets(0, 0, &[1; 200], 0, 160).is_none());
        assert!(exponential_buckets(0, 2000, &[1], 0, 160).is_none(), "2^2001 is not finite");
    }
}
