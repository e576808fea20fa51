//! The SQL the PostgreSQL probe runs. Every statement reads catalog views only; the probe runs
//! them in a READ ONLY transaction with a statement and lock timeout.

/// Connection states, totals against max_connections, long-running and blocked queries.
/// `$1` is the long-running threshold in seconds.
pub const CONNECTIONS: &str = "
SELECT
  count(*) FILTER (WHERE state = 'active')::float8,
  count(*) FILTER (WHERE state = 'idle')::float8,
  count(*) FILTER (WHERE state LIKE 'idle in transaction%')::float8,
  count(*)::float8,
  (SELECT setting::float8 FROM pg_settings WHERE name = 'max_connections'),
  count(*) FILTER (WHERE state NOT LIKE 'idle%' AND query_start < now() - make_interval(secs => $1))::float8,
  COALESCE(EXTRACT(EPOCH FROM max(now() - query_start) FILTER (WHERE state NOT LIKE 'idle%')), 0)::float8,
  count(*) FILTER (WHERE cardinality(pg_blocking_pids(pid)) > 0)::float8
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()";

/// Overall buffer cache hit ratio of every database.
pub const CACHE_OVERALL: &str =
    "SELECT (sum(blks_hit)::float8 / NULLIF(sum(blks_hit) + sum(blks_read), 0))::float8 FROM pg_stat_database";

/// The ten user tables with the lowest heap cache hit ratio.
pub const CACHE_TABLES: &str = "
SELECT schemaname::text, relname::text, (heap_blks_hit::float8 / NULLIF(heap_blks_hit + heap_blks_read, 0))::float8 AS ratio
FROM pg_statio_user_tables
WHERE heap_blks_hit + heap_blks_read > 0
ORDER BY ratio ASC, schemaname, relname
LIMIT 10";

/// Database size, replication lag (standby: since the last replayed transaction; primary: the
/// largest replay_lag of its replicas), deadlocks.
pub const HEALTH: &str = "
SELECT
  pg_database_size(current_database())::float8,
  (CASE WHEN pg_is_in_recovery()
        THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
        ELSE COALESCE((SELECT EXTRACT(EPOCH FROM max(replay_lag)) FROM pg_stat_replication), 0) END)::float8,
  (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database())::float8";

/// Blocked/blocking pairs in this database, with users and the first 200 characters of each
/// statement.
pub const LOCK_WAITS: &str = "
SELECT blocked.pid, blocked.usename::text, left(blocked.query, 200), blocking.pid, blocking.usename::text, left(blocking.query, 200)
FROM pg_stat_activity blocked
JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid) ON true
JOIN pg_stat_activity blocking ON blocking.pid = b.pid
WHERE blocked.datname = current_database()
ORDER BY blocked.pid, blocking.pid";

/// Server version and whether pg_stat_statements is installed in this database.
pub const STATEMENTS_AVAILABLE: &str = "SELECT current_setting('server_version_num')::int, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')";

/// The pg_stat_statements query for a server version (`server_version_num`), ordered by
/// `order` (`mean` or `calls`), top 10 of the current database. Timing columns are
/// `total_time`/`mean_time`/... before PostgreSQL 13 and `total_exec_time`/... from 13 (17
/// renamed only block-timing columns, which this does not read). Query texts are the
/// extension's normalised ones (constants replaced by `$n`), whitespace collapsed, cut to 200
/// characters.
pub fn statements_sql(server_version_num: i32, order: &str) -> String {
    let p = if server_version_num >= 130_000 { "_exec_time" } else { "_time" };
    let order_col = if order == "calls" { "calls".to_string() } else { format!("mean{p}") };
    format!(
        "SELECT queryid::text, left(regexp_replace(query, '\\s+', ' ', 'g'), 200), calls::float8, \
         total{p}::float8, mean{p}::float8, min{p}::float8, max{p}::float8, stddev{p}::float8 \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY {order_col} DESC LIMIT 10"
    )
}

#[cfg(test)]
mod tests {
    use super::statements_sql;

    #[test]
    fn version_aware_columns() {
        let pg12 = statements_sql(120_015, "mean");
        assert!(
            pg12.contains("mean_time::float8")
                && pg12.contains("ORDER BY mean_time DESC")
                && !pg12.contains("exec_time")
        );
        for v in [130_000, 150_018, 170_002] {
            let sql = statements_sql(v, "mean");
            assert!(
                sql.contains("total_exec_time::float8") && sql.contains("ORDER BY mean_exec_time DESC"),
                "{v}: {sql}"
            );
            assert!(!sql.contains("blk_read_time"), "PG 17 renamed block timings; we read none");
        }
        assert!(statements_sql(150_000, "calls").contains("ORDER BY calls DESC"));
    }
}
