//! The probe: one connection, one READ ONLY transaction per collection.

use super::{BusinessQuery, LockWait, ProbeReport, ProbeSettings, Section, StatementStats, queries};
use async_trait::async_trait;
use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::rules::packs;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::{CollectError, MetricSource};
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// The PostgreSQL probe.
pub struct PostgresProbe {
    name: String,
    url: String,
    interval: Duration,
    settings: ProbeSettings,
    client: Mutex<Option<Client>>,
    next_connect: Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProbe")
            .field("name", &self.name)
            .field("db", &crate::secret::redact_url(&self.url))
            .finish()
    }
}

fn err(e: impl std::fmt::Display) -> CollectError {
    CollectError::Failed(e.to_string())
}

impl PostgresProbe {
    /// A probe of the database at `url`, collecting every `interval`.
    pub fn new(name: &str, url: &str, interval: Duration, settings: ProbeSettings) -> Self {
        PostgresProbe {
            name: name.into(),
            url: url.into(),
            interval,
            settings,
            client: Mutex::new(None),
            next_connect: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Client, CollectError> {
        let mut next = self.next_connect.lock().await;
        if next.is_some_and(|t| tokio::time::Instant::now() < t) {
            return Err(CollectError::Failed("database unreachable (waiting before reconnecting)".into()));
        }
        match crate::pg::connect(&self.url, "probe").await {
            Ok(client) => {
                *next = None;
                Ok(client)
            }
            Err(e) => {
                // Back off for a few seconds (at most one interval) before the next attempt.
                *next = Some(tokio::time::Instant::now() + self.interval.min(Duration::from_secs(5)));
                Err(CollectError::Failed(format!(
                    "database unreachable: {}",
                    e.to_string().replace(&self.url, "<url>")
                )))
            }
        }
    }

    /// Runs one collection of the configured sections.
    pub async fn collect_report(&self, now: Timestamp) -> Result<ProbeReport, CollectError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        let Some(client) = guard.as_mut() else { return Err(err("no connection")) };
        match self.run(client, now).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if client.is_closed() {
                    *guard = None;
                }
                Err(e)
            }
        }
    }

    async fn run(&self, client: &mut Client, now: Timestamp) -> Result<ProbeReport, CollectError> {
        let tx = client.build_transaction().read_only(true).start().await.map_err(err)?;
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
            self.settings.statement_timeout.as_millis(),
            self.settings.lock_timeout.as_millis()
        ))
        .await
        .map_err(err)?;
        let mut report = ProbeReport::default();
        let s = |name: &str, labels: Labels, v: f64| Sample::new(name, labels, v, now);
        let sections = &self.settings.sections;
        if sections.contains(&Section::Connections) {
            let r =
                tx.query_one(queries::CONNECTIONS, &[&self.settings.long_running.as_secs_f64()]).await.map_err(err)?;
            let g = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
            for (state, i) in [("active", 0), ("idle", 1), ("idle_in_transaction", 2)] {
                report.samples.push(s("pg_connections", Labels::new().with("state", state), g(i)));
            }
            let (total, max) = (g(3), g(4));
            report.samples.push(s("pg_connections_total", Labels::new(), total));
            report.samples.push(s("pg_max_connections", Labels::new(), max));
            if max > 0.0 {
                report.samples.push(s(packs::DATABASE_ACTIVE_CONNECTIONS, Labels::new(), total / max * 100.0));
            }
            report.samples.push(s("pg_long_running_queries", Labels::new(), g(5)));
            report.samples.push(s("pg_longest_query_seconds", Labels::new(), g(6)));
            report.samples.push(s("pg_blocked_queries", Labels::new(), g(7)));
        }
        if sections.contains(&Section::Performance) {
            tx.batch_execute("SAVEPOINT thorbis_perf").await.map_err(err)?;
            match statements(&tx).await {
                Ok(Some((slowest, frequent))) => {
                    for (list, metric) in [(&slowest, "pg_statement_mean_seconds"), (&frequent, "pg_statement_calls")] {
                        for st in list {
                            let l = Labels::new().with("queryid", st.queryid.clone()).with("query", st.query.clone());
                            let v = if metric == "pg_statement_calls" { st.calls } else { st.mean_ms / 1000.0 };
                            report.samples.push(s(metric, l, v));
                        }
                    }
                    report.samples.push(s(
                        "pg_slow_statements",
                        Labels::new(),
                        slowest.iter().filter(|st| st.mean_ms > 1000.0).count() as f64,
                    ));
                    report.slowest = slowest;
                    report.most_frequent = frequent;
                }
                Ok(None) => {
                    report.unavailable.insert(
                        "performance".into(),
                        "pg_stat_statements is not installed in this database (shared_preload_libraries = 'pg_stat_statements', then CREATE EXTENSION pg_stat_statements)".into(),
                    );
                }
                Err(e) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT thorbis_perf").await.map_err(err)?;
                    report.unavailable.insert("performance".into(), e);
                }
            }
        }
        if sections.contains(&Section::Cache) {
            let r = tx.query_one(queries::CACHE_OVERALL, &[]).await.map_err(err)?;
            if let Some(v) = r.get::<_, Option<f64>>(0) {
                report.samples.push(s("pg_cache_hit_ratio", Labels::new(), v));
            }
            for r in tx.query(queries::CACHE_TABLES, &[]).await.map_err(err)? {
                if let Some(v) = r.get::<_, Option<f64>>(2) {
                    let l = Labels::new().with("schema", r.get::<_, String>(0)).with("table", r.get::<_, String>(1));
                    report.samples.push(s("pg_table_cache_hit_ratio", l, v));
                }
            }
        }
        if sections.contains(&Section::Health) {
            let r = tx.query_one(queries::HEALTH, &[]).await.map_err(err)?;
            let g = |i: usize| r.get::<_, Option<f64>>(i).unwrap_or(0.0);
            report.samples.push(s(packs::PG_DATABASE_SIZE_BYTES, Labels::new(), g(0)));
            report.samples.push(s(packs::PG_REPLICATION_LAG_SECONDS, Labels::new(), g(1)));
            report.samples.push(s("pg_deadlocks_total", Labels::new(), g(2)));
            for r in tx.query(queries::LOCK_WAITS, &[]).await.map_err(err)? {
                report.lock_waits.push(LockWait {
                    blocked_pid: r.get(0),
                    blocked_user: r.get(1),
                    blocked_statement: r.get(2),
                    blocking_pid: r.get(3),
                    blocking_user: r.get(4),
                    blocking_statement: r.get(5),
                });
            }
            report.samples.push(s(packs::PG_LOCK_WAITS, Labels::new(), report.lock_waits.len() as f64));
        }
        if sections.contains(&Section::Business) {
            for q in &self.settings.business {
                // Each query in its own savepoint: one broken query does not hide the others.
                let sp = format!("thorbis_{}", report.samples.len());
                tx.batch_execute(&format!("SAVEPOINT {sp}")).await.map_err(err)?;
                // The same path as the dashboards' SQL: one statement, extended protocol.
                match crate::sql::query_json(&tx, &q.sql, MAX_BUSINESS_ROWS).await {
                    Ok(rows) => business_samples(q, &rows, now, &mut report),
                    Err(reason) => {
                        tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {sp}")).await.map_err(err)?;
                        report.unavailable.insert(format!("business.{}", q.name), reason);
                    }
                }
            }
        }
        tx.rollback().await.map_err(err)?;
        Ok(report)
    }
}

/// Rows a business query may return (each numeric column of each row is a sample).
const MAX_BUSINESS_ROWS: usize = 1_000;

/// Turns a business query's rows into samples: numeric columns are metrics, `label_columns`
/// label them; a value that is not a number is reported, not guessed.
fn business_samples(q: &BusinessQuery, rows: &crate::sql::JsonRows, now: Timestamp, report: &mut ProbeReport) {
    use serde_json::Value;
    for row in &rows.rows {
        let mut labels = Labels::new();
        for lc in &q.label_columns {
            match row.get(lc.as_str()) {
                Some(Value::String(v)) => labels.insert(lc.clone(), v.clone()),
                Some(Value::Null) | None => {}
                Some(other) => labels.insert(lc.clone(), other.to_string()),
            }
        }
        for col in &rows.columns {
            if q.label_columns.iter().any(|c| c == col) {
                continue;
            }
            let metric = q.metrics.get(col).cloned().unwrap_or_else(|| format!("business_{}_{}", q.name, col));
            let number = match row.get(col) {
                None | Some(Value::Null) => continue,
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.parse::<f64>().ok(),
                Some(_) => None,
            };
            match number {
                Some(v) if v.is_finite() => report.samples.push(Sample::new(metric, labels.clone(), v, now)),
                _ => {
                    let text = row.get(col).map(Value::to_string).unwrap_or_default();
                    report.unavailable.insert(format!("business.{}.{}", q.name, col), format!("not a number: {text}"));
                }
            }
        }
    }
}

#[async_trait]
impl MetricSource for PostgresProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let report = self.collect_report(now).await?;
        for (section, reason) in &report.unavailable {
            tracing::warn!(source = %self.name, section, reason, "probe section unavailable");
        }
        Ok(report.samples)
    }
}

/// Slowest and most frequent statements; None without the extension; Err(reason) when the
/// role may not read it.
async fn statements(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Option<(Vec<StatementStats>, Vec<StatementStats>)>, String> {
    let reason =
        |e: tokio_postgres::Error| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    let r = tx.query_one(queries::STATEMENTS_AVAILABLE, &[]).await.map_err(reason)?;
    let (version, installed): (i32, bool) = (r.get(0), r.get(1));
    if !installed {
        return Ok(None);
    }
    let mut out = Vec::new();
    for order in ["mean", "calls"] {
        let rows = tx.query(&queries::statements_sql(version, order), &[]).await.map_err(reason)?;
        let list: Vec<StatementStats> = rows
            .iter()
            .map(|r| StatementStats {
                queryid: r.get::<_, Option<String>>(0).unwrap_or_default(),
                query: r.get::<_, Option<String>>(1).unwrap_or_default(),
                calls: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
                total_ms: r.get::<_, Option<f64>>(3).unwrap_or(0.0),
                mean_ms: r.get::<_, Option<f64>>(4).unwrap_or(0.0),
                min_ms: r.get::<_, Option<f64>>(5).unwrap_or(0.0),
                max_ms: r.get::<_, Option<f64>>(6).unwrap_or(0.0),
                stddev_ms: r.get::<_, Option<f64>>(7).unwrap_or(0.0),
            })
            .collect();
        if list.iter().any(|st| st.query.contains("insufficient privilege")) {
            return Err(
                "pg_stat_statements texts are hidden from this role: grant pg_read_all_stats (or pg_monitor)".into()
            );
        }
        out.push(list);
    }
    let frequent = out.pop().unwrap_or_default();
    let slowest = out.pop().unwrap_or_default();
    Ok(Some((slowest, frequent)))
}
