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

/// Blocked/blocking pairs with users and the first 200 characters of each statement.
pub const LOCK_WAITS: &str = "
SELECT blocked.pid, blocked.usename::text, left(blocked.query, 200), blocking.pid, blocking.usename::text, left(blocking.query, 200)
FROM pg_stat_activity blocked
JOIN LATERAL unnest(pg_blocking_pids(blocked.pid)) AS b(pid) ON true
JOIN pg_stat_activity blocking ON blocking.pid = b.pid
ORDER BY blocked.pid, blocking.pid";
