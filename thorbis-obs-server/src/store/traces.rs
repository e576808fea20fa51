//! Kept traces: one row per trace (its summary columns for the list queries, its spans as one
//! compressed blob), so a reader gets a whole trace or none of it. The SQL both backends run
//! is built here; each binds the parameters its own way.

use thorbis_obs_core::time::Timestamp;

/// The columns of `traces`, in the order [`TraceRow`] lists them.
pub(crate) const TRACE_COLUMNS: &str =
    "trace_id, start_ms, duration_ms, service, route, name, services, span_count, error, policy, bytes";

/// A kept trace's summary: what the list shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TraceSummary {
    /// The trace id, 32 hex digits.
    pub trace_id: String,
    /// Its earliest span's start.
    pub start: Timestamp,
    /// From the earliest start to the latest end.
    pub duration_ms: f64,
    /// The root span's service.
    pub service: String,
    /// The root span's route (else its name).
    pub route: String,
    /// The root span's name.
    pub name: String,
    /// Every service that took part, comma separated.
    pub services: String,
    /// Its spans.
    pub span_count: i64,
    /// A span failed.
    pub error: bool,
    /// Why it was kept (`error`, `linked`, `slowest`, `probabilistic`).
    pub policy: String,
    /// The stored blob's size.
    pub bytes: i64,
}

/// A kept trace: its summary and its spans (core's `AssembledTrace` as JSON, gzip).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// The summary.
    pub summary: TraceSummary,
    /// The spans, compressed.
    pub data: Vec<u8>,
}

/// What the list asks for; every field narrows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    /// The root's service.
    pub service: Option<String>,
    /// The root's route.
    pub route: Option<String>,
    /// Only failed (true) or only clean (false) traces.
    pub error: Option<bool>,
    /// At least this long.
    pub min_duration_ms: Option<f64>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// A bound parameter of a built query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    /// An INTEGER column (PostgreSQL binds it as 32 bits).
    Int32(i32),
    Float(f64),
}

/// The list query for `q`, with placeholders as `mark(n)` writes the n-th (1-based): `?1` for
/// SQLite, `$1` for PostgreSQL.
pub(crate) fn list_sql(q: &TraceQuery, mark: fn(usize) -> String) -> (String, Vec<Param>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let mut add = |clause: &str, p: Param| {
        params.push(p);
        clauses.push(clause.replace('#', &mark(params.len())));
    };
    if let Some(s) = &q.service {
        add("service = #", Param::Text(s.clone()));
    }
    if let Some(r) = &q.route {
        add("route = #", Param::Text(r.clone()));
    }
    if let Some(e) = q.error {
        add("error = #", Param::Int32(i32::from(e)));
    }
    if let Some(d) = q.min_duration_ms {
        add("duration_ms >= #", Param::Float(d));
    }
    if let Some(f) = q.from {
        add("start_ms >= #", Param::Int(f.as_millis()));
    }
    if let Some(t) = q.to {
        add("start_ms < #", Param::Int(t.as_millis()));
    }
    let filter = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    params.push(Param::Int(i64::try_from(q.limit.clamp(1, 1000)).unwrap_or(1000)));
    let limit = mark(params.len());
    (format!("SELECT {TRACE_COLUMNS} FROM traces{filter} ORDER BY start_ms DESC, trace_id DESC LIMIT {limit}"), params)
}

/// Inserts a trace, or replaces the row of one stored already (its late spans joined it);
/// the twelve values in [`TRACE_COLUMNS`] order, then the blob.
pub(crate) fn upsert_sql(mark: fn(usize) -> String) -> String {
    let values: Vec<String> = (1..=12).map(mark).collect();
    let updates: Vec<String> =
        TRACE_COLUMNS.split(", ").skip(1).chain(["data"]).map(|c| format!("{c} = excluded.{c}")).collect();
    format!(
        "INSERT INTO traces ({TRACE_COLUMNS}, data) VALUES ({}) ON CONFLICT (trace_id) DO UPDATE SET {}",
        values.join(", "),
        updates.join(", ")
    )
}

/// Deletes the oldest traces beyond `max_bytes` of blobs in all (`mark(1)` is the bound; cast,
/// since PostgreSQL's SUM of BIGINT is NUMERIC).
pub(crate) fn evict_sql(mark: fn(usize) -> String) -> String {
    format!(
        "DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM (SELECT trace_id, \
         SUM(bytes) OVER (ORDER BY start_ms DESC, trace_id DESC) AS total FROM traces) newest \
         WHERE total > CAST({} AS BIGINT))",
        mark(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_binds_what_is_asked() {
        let q = TraceQuery {
            service: Some("api".into()),
            error: Some(true),
            min_duration_ms: Some(250.0),
            limit: 5_000,
            ..TraceQuery::default()
        };
        let (sql, params) = list_sql(&q, |n| format!("${n}"));
        assert!(
            sql.ends_with(
                "WHERE service = $1 AND error = $2 AND duration_ms >= $3 ORDER BY start_ms DESC, trace_id DESC LIMIT $4"
            ),
            "{sql}"
        );
        assert_eq!(params, [Param::Text("api".into()), Param::Int32(1), Param::Float(250.0), Param::Int(1000)]);
    }
}
