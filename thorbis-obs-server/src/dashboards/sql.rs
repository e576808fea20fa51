//! SQL widgets: one statement, read only, with a statement timeout, at most 50 rows, run the
//! way all configured SQL is ([`crate::sql::query_json`], the PostgreSQL probe's business
//! queries too). Connections are kept per URL and reopened when closed.

use super::{Line, WidgetConfig, WidgetData, WidgetKind};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::Client;

/// Rows a widget shows at most.
const MAX_ROWS: usize = 50;

static CLIENTS: OnceLock<tokio::sync::Mutex<HashMap<String, Client>>> = OnceLock::new();

/// A query's columns and rows, values as text (`None` for NULL).
pub(crate) struct SqlResult {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    /// Numbers of each row by column, where the value is one.
    numbers: Vec<Vec<Option<f64>>>,
}

/// Runs `query` on `url`; errors never carry the URL.
pub(crate) async fn run(url: &str, query: &str, timeout: Duration) -> Result<SqlResult, String> {
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
