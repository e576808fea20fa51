//! SQL widgets: one statement, read only, with a statement timeout, at most 50 rows.
//!
//! - PostgreSQL (`postgres://`, feature `postgres`): run the way all configured SQL is
//!   ([`crate::sql::query_json`], the PostgreSQL probe's business queries too), in a READ ONLY
//!   transaction with `statement_timeout`. Connections are kept per URL and reopened when closed.
//! - SQLite (`sqlite:PATH`, the store's own rusqlite, so no extra dependency): the file opened
//!   read only with `query_only` on, a watchdog thread that interrupts the statement at the
//!   timeout, a connection per run (opening a local file costs microseconds).

use super::{Line, WidgetConfig, WidgetData, WidgetKind};
use std::time::Duration;

/// Rows a widget shows at most.
const MAX_ROWS: usize = 50;

/// A query's columns and rows, values as text (`None` for NULL).
pub(crate) struct SqlResult {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    /// Numbers of each row by column, where the value is one.
    numbers: Vec<Vec<Option<f64>>>,
}

/// The file of a `sqlite:` URL (`sqlite:/var/lib/app.db`, `sqlite:///var/lib/app.db`).
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    (!rest.is_empty()).then_some(rest)
}

/// Runs `query` on `url`; errors never carry the URL.
pub(crate) async fn run(url: &str, query: &str, timeout: Duration) -> Result<SqlResult, String> {
    if let Some(path) = sqlite_path(url) {
        let (path, query) = (path.to_string(), query.to_string());
        return tokio::task::spawn_blocking(move || run_sqlite(&path, &query, timeout))
            .await
            .map_err(|e| format!("the query did not finish: {e}"))?;
    }
    #[cfg(feature = "postgres")]
    return run_postgres(url, query, timeout).await;
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (query, timeout);
        Err("PostgreSQL SQL widgets need the `postgres` feature (sqlite: URLs work without it)".into())
    }
}

/// One statement on a SQLite file, read only, interrupted at `timeout`.
fn run_sqlite(path: &str, query: &str, timeout: Duration) -> Result<SqlResult, String> {
    use rusqlite::OpenFlags;
    let conn =
        rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| format!("database unreachable: {e}"))?;
    conn.pragma_update(None, "query_only", true).map_err(|e| e.to_string())?;
    // The timeout: a watchdog interrupts the statement unless told it finished first.
    let interrupt = conn.get_interrupt_handle();
    let (finished, finish) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finish.recv_timeout(timeout) {
            interrupt.interrupt();
        }
    });
    let result = read_rows(&conn, query, timeout);
    drop(finished);
    let _ = watchdog.join();
    result
}

/// The rows of `query` on `conn`, at most [`MAX_ROWS`].
fn read_rows(conn: &rusqlite::Connection, query: &str, timeout: Duration) -> Result<SqlResult, String> {
    use rusqlite::types::ValueRef;
    let timed_out = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted) => {
            format!("canceling statement due to statement timeout ({} ms)", timeout.as_millis())
        }
        _ => e.to_string(),
    };
    let mut stmt = conn.prepare(query).map_err(timed_out)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut out = SqlResult { columns, rows: Vec::new(), numbers: Vec::new() };
    let mut rows = stmt.query([]).map_err(timed_out)?;
    while let Some(row) = rows.next().map_err(timed_out)? {
        if out.rows.len() >= MAX_ROWS {
            break;
        }
        let mut cells = Vec::with_capacity(out.columns.len());
        let mut nums = Vec::with_capacity(out.columns.len());
        for i in 0..out.columns.len() {
            let (cell, num) = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => (None, None),
                ValueRef::Integer(n) => (Some(n.to_string()), Some(n as f64)),
                ValueRef::Real(x) => (Some(x.to_string()), x.is_finite().then_some(x)),
                ValueRef::Text(t) => {
                    let t = String::from_utf8_lossy(t).into_owned();
                    let n = t.parse::<f64>().ok().filter(|x| x.is_finite());
                    (Some(t), n)
                }
                ValueRef::Blob(b) => (Some(format!("<{} bytes>", b.len())), None),
            };
            cells.push(cell);
            nums.push(num);
        }
        out.rows.push(cells);
        out.numbers.push(nums);
    }
    Ok(out)
}

#[cfg(feature = "postgres")]
static CLIENTS: std::sync::OnceLock<tokio::sync::Mutex<std::collections::HashMap<String, tokio_postgres::Client>>> =
    std::sync::OnceLock::new();

/// One statement on PostgreSQL; see the module docs.
#[cfg(feature = "postgres")]
async fn run_postgres(url: &str, query: &str, timeout: Duration) -> Result<SqlResult, String> {
    use tokio_postgres::Client;
    let hide = |e: String| e.replace(url, "<url>");
    let clients = CLIENTS.get_or_init(Default::default);
    let mut clients = clients.lock().await;
    if clients.get(url).is_none_or(Client::is_closed) {
        let client = tokio::time::timeout(timeout.max(Duration::from_secs(1)), crate::pg::connect(url, "sql widget"))
            .await
            .map_err(|_| "database unreachable: connect timed out".to_string())?
            .map_err(|e| hide(format!("database unreachable: {e}")))?;
        clients.insert(url.to_string(), client);
    }
    let Some(client) = clients.get_mut(url) else { return Err("no connection".into()) };
    let db = |e: tokio_postgres::Error| {
        hide(e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))
    };
    let tx = client.build_transaction().read_only(true).start().await.map_err(db)?;
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", timeout.as_millis())).await.map_err(db)?;
    let result = crate::sql::query_json(&tx, query, MAX_ROWS).await.map_err(hide)?;
    tx.rollback().await.map_err(db)?;
    let columns = result.columns;
    let rows = result.rows;
    let mut out = SqlResult { columns, rows: Vec::new(), numbers: Vec::new() };
    for obj in rows {
        let mut cells = Vec::with_capacity(out.columns.len());
        let mut nums = Vec::with_capacity(out.columns.len());
        for c in &out.columns {
            let v = obj.get(c).unwrap_or(&serde_json::Value::Null);
            nums.push(match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            });
            cells.push(match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            });
        }
        out.rows.push(cells);
        out.numbers.push(nums);
    }
    Ok(out)
}

/// Epoch ms of a chart's x value: a timestamp string or epoch seconds or milliseconds.
fn time_of(text: &str, number: Option<f64>) -> Option<i64> {
    if let Some(n) = number {
        return Some(if n.abs() < 1e11 { (n * 1000.0) as i64 } else { n as i64 });
    }
    thorbis_obs_core::chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| thorbis_obs_core::chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%:z").ok())
        .map(|t| t.timestamp_millis())
}

impl SqlResult {
    /// Puts the result into a widget's data.
    pub(crate) fn fill(self, w: &WidgetConfig, d: &mut WidgetData) {
        d.value = self.numbers.first().and_then(|r| r.iter().flatten().next().copied());
        if w.compare.is_some() {
            d.previous = self.numbers.get(1).and_then(|r| r.iter().flatten().next().copied());
        }
        match w.kind {
            WidgetKind::Table | WidgetKind::Map => {
                d.columns = self.columns;
                // The database's own text: a table shows exactly what the query returned.
                d.rows = self
                    .rows
                    .iter()
                    .map(|cells| cells.iter().map(|c| c.clone().unwrap_or_else(|| "-".into())).collect())
                    .collect();
            }
            WidgetKind::Chart => {
                for (i, name) in self.columns.iter().enumerate().skip(1) {
                    let mut points: Vec<(i64, f64)> = self
                        .rows
                        .iter()
                        .zip(&self.numbers)
                        .filter_map(|(cells, nums)| {
                            let t = time_of(cells.first()?.as_deref()?, nums.first().copied().flatten())?;
                            Some((t, nums.get(i).copied().flatten()?))
                        })
                        .collect();
                    points.sort_by_key(|p| p.0);
                    if !points.is_empty() {
                        d.lines.push(Line { label: name.clone(), points });
                    }
                }
                d.value = d.lines.iter().filter_map(|l| l.points.last().map(|p| p.1)).reduce(f64::max);
            }
            WidgetKind::Metric | WidgetKind::Gauge => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboards::{BUILTIN_DATABASE, DataSource, defaults};
    use crate::secret::Secret;

    /// The built-in boards on a SQLite business database seeded as the demo seeds one: the
    /// SQLite form of each business query gives the numbers the PostgreSQL example gives.
    #[tokio::test]
    async fn the_built_in_business_queries_run_on_sqlite() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("business.db");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(include_str!("../cli/demo_business.sql")).expect("seed");
        drop(conn);
        let url = format!("sqlite:{}", path.display());
        let boards = defaults(Some(&Secret::new(url.clone())), false);
        let mut results = std::collections::BTreeMap::new();
        for w in boards.iter().flat_map(|b| &b.widgets) {
            if let DataSource::Sql { url: u, query, timeout } = &w.source {
                assert_eq!(u.expose(), url);
                assert!(!query.contains("business_core."), "{}: the PostgreSQL form on SQLite", w.id);
                let r = run(u.expose(), query, timeout.get()).await.unwrap_or_else(|e| panic!("{}: {e}", w.id));
                results.insert(w.id.clone(), r);
            }
        }
        let ids: Vec<&str> = results.keys().map(String::as_str).collect();
        assert_eq!(ids, ["active-customers", "completion-rate", "customer-geography", "monthly-revenue"]);
        let first = |id: &str, row: usize| results[id].numbers[row].iter().flatten().next().copied();
        assert_eq!((first("monthly-revenue", 0), first("monthly-revenue", 1)), (Some(1250.5), Some(800.0)));
        assert_eq!((first("active-customers", 0), first("active-customers", 1)), (Some(4.0), Some(1.0)));
        assert_eq!(first("completion-rate", 0), Some(37.5));
        let geo: Vec<Vec<Option<String>>> = results["customer-geography"].rows.clone();
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            geo,
            [
                vec![text("TX"), text("4"), text("1600.25")],
                vec![text("CA"), text("3"), text("550.25")],
                vec![text("NY"), text("2"), text("0")]
            ]
        );
        // Without a business database the widgets are left out; the URL marker never runs.
        assert!(defaults(None, false).iter().flat_map(|b| &b.widgets).all(|w| match &w.source {
            DataSource::Sql { url, .. } => url.expose() != BUILTIN_DATABASE,
            _ => true,
        }));
        // Read only, and the timeout interrupts a long statement.
        let e = run(&url, "DELETE FROM invoices", Duration::from_secs(1)).await.err().unwrap_or_default();
        assert!(e.contains("readonly"), "{e}");
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n";
        let e = run(&url, slow, Duration::from_millis(50)).await.err().unwrap_or_default();
        assert!(e.contains("statement timeout"), "{e}");
        let missing = format!("sqlite:{}", dir.path().join("nope.db").display());
        let e = run(&missing, "SELECT 1", Duration::from_secs(1)).await.err().unwrap_or_default();
        assert!(e.starts_with("database unreachable"), "{e}");
        // Fifty rows at most.
        let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80) SELECT i FROM n";
        assert_eq!(run(&url, many, Duration::from_secs(1)).await.map(|r| r.rows.len()).ok(), Some(MAX_ROWS));
    }
}
