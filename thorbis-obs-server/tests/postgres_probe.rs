//! The PostgreSQL probe against the throwaway cluster: real lock waits, long-running queries,
//! business numbers computed by hand, read-only enforcement, an unreachable server.
#![cfg(feature = "postgres")]

mod support;

use std::time::Duration;
use support::pg::fresh_database;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::postgres::{BusinessQuery, PostgresProbe, ProbeSettings, Section};

async fn connect(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connects");
    tokio::spawn(conn);
    c
}

fn value(r: &thorbis_obs_server::sources::postgres::ProbeReport, name: &str) -> f64 {
    r.samples.iter().find(|s| s.name == name).map(|s| s.value).unwrap_or_else(|| panic!("no {name} in {:?}", r.samples))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_real_lock_waits_long_queries_and_business_numbers() {
    let url = fresh_database("thorbis_probe").await;
    let admin = connect(&url).await;
    admin
        .batch_execute(
            "CREATE SCHEMA business_hs;
             CREATE TABLE business_hs.work_orders (id serial PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL);
             INSERT INTO business_hs.work_orders (status, created_at) VALUES
               ('active', now() - interval '2 hours'), ('active', now() - interval '4 hours'),
               ('completed', now() - interval '1 hour'), ('active', now() - interval '6 hours');
             CREATE TABLE locked (id int);",
        )
        .await
        .expect("schema");
    // A holds an exclusive lock; B waits for it; C sleeps.
    let a = connect(&url).await;
    a.batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let a_pid: i32 = a.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    let b = connect(&url).await;
    let b_pid: i32 = b.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    let waiter = tokio::spawn(async move { b.query("SELECT * FROM locked", &[]).await.map(|r| r.len()) });
    let c = connect(&url).await;
    let sleeper = tokio::spawn(async move { c.query("SELECT pg_sleep(3)", &[]).await.map(|r| r.len()) });

    let settings = ProbeSettings {
        long_running: Duration::from_secs(1),
        business: vec![BusinessQuery {
            name: "work_orders".into(),
            sql: "SELECT count(*) FILTER (WHERE status = 'active') AS active,
                         round(avg(EXTRACT(EPOCH FROM now() - created_at) / 3600) FILTER (WHERE status = 'active')) AS avg_age_hours
                  FROM business_hs.work_orders"
                .into(),
            metrics: [("active".to_string(), "work_orders_active".to_string())].into_iter().collect(),
            label_columns: vec![],
        },
        BusinessQuery {
            name: "sneaky".into(),
            sql: "INSERT INTO business_hs.work_orders (status, created_at) VALUES ('active', now())".into(),
            metrics: Default::default(),
            label_columns: vec![],
        },
        BusinessQuery { name: "stuck".into(), sql: "SELECT count(*) AS n FROM locked".into(), metrics: Default::default(), label_columns: vec![] },
        // The escape the simple-query protocol allowed: a COMMIT ends the READ ONLY
        // transaction and the DELETE runs outside it. One statement only, prepared alone.
        BusinessQuery {
            name: "escape".into(),
            sql: "SELECT count(*) AS n FROM business_hs.work_orders; COMMIT; DELETE FROM business_hs.work_orders".into(),
            metrics: Default::default(),
            label_columns: vec![],
        }],
        ..ProbeSettings::default()
    };
    let probe = PostgresProbe::new("pg", &url, Duration::from_secs(10), settings);
    // Collect until B is seen waiting past the 1 s long-running threshold, instead of sleeping
    // a fixed time first: B waits on A's lock until the COMMIT below, so a slow machine only
    // takes longer to get there (30 s at most; then the assertions say what is missing).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = probe.collect_report(Timestamp::from_secs(1_795_000_000)).await.expect("collects");
        let at_least = |name: &str, min: f64| r.samples.iter().any(|s| s.name == name && s.value >= min);
        let ready = r.lock_waits.iter().any(|w| w.blocked_pid == b_pid)
            && at_least("pg_long_running_queries", 1.0)
            && at_least("pg_longest_query_seconds", 1.0);
        if ready || tokio::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pair = r.lock_waits.iter().find(|w| w.blocked_pid == b_pid).expect("the waiting session is reported");
    assert_eq!(pair.blocking_pid, a_pid);
    assert!(pair.blocked_statement.as_deref().is_some_and(|s| s.contains("SELECT * FROM locked")));
    assert!(value(&r, "pg_blocked_queries") >= 1.0);
    assert!(value(&r, "pg_lock_waits") >= 1.0);
    assert!(value(&r, "pg_long_running_queries") >= 1.0, "pg_sleep counts as long-running");
    assert!(value(&r, "pg_longest_query_seconds") >= 1.0);
    let pct = value(&r, "database_active_connections");
    assert!(pct > 0.0 && pct < 100.0, "{pct}");
    assert!(value(&r, "pg_database_size_bytes") > 1_000_000.0);
    // Hand-computed: 3 active work orders, 2 h, 4 h and 6 h old: 4 h on average.
    assert_eq!(value(&r, "work_orders_active"), 3.0);
    assert_eq!(value(&r, "business_work_orders_avg_age_hours"), 4.0);
    // Configured SQL cannot write: the statement fails read-only, nothing is stored.
    assert!(r.unavailable.get("business.sneaky").is_some_and(|e| e.contains("read-only")), "{:?}", r.unavailable);
    // A query that would wait on a lock gives up at the lock timeout instead of hanging.
    assert!(r.unavailable.get("business.stuck").is_some_and(|e| e.contains("lock timeout")), "{:?}", r.unavailable);
    assert!(
        r.unavailable.get("business.escape").is_some_and(|e| e.contains("more than one statement")),
        "{:?}",
        r.unavailable
    );
    a.batch_execute("COMMIT").await.expect("release");
    waiter.await.expect("join").expect("the waiter finishes");
    sleeper.await.expect("join").expect("the sleeper finishes");
    let n: i64 = admin.query_one("SELECT count(*) FROM business_hs.work_orders", &[]).await.expect("count").get(0);
    assert_eq!(n, 4, "nothing was written");

    // Only some sections.
    let only = PostgresProbe::new(
        "pg",
        &url,
        Duration::from_secs(10),
        ProbeSettings { sections: vec![Section::Cache], ..ProbeSettings::default() },
    );
    let r = only.collect_report(Timestamp::from_secs(1_795_000_000)).await.expect("collects");
    assert!(r.samples.iter().all(|s| s.name.contains("cache_hit_ratio")), "{:?}", r.samples);
}

#[tokio::test]
async fn an_unreachable_server_fails_clearly_and_hides_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let url = format!("postgres://monitor:hunter2@127.0.0.1:{port}/db");
    let probe = PostgresProbe::new("pg", &url, Duration::from_secs(1), ProbeSettings::default());
    let e = probe.collect_report(Timestamp(0)).await.expect_err("nothing listens");
    let text = e.to_string();
    assert!(text.contains("database unreachable"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{probe:?}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_one_collection() {
    let url = fresh_database("thorbis_probe_cli").await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
            .args(["probe", "postgres", "--url", &url, "--only", "connections,health"])
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.starts_with("pg_connections{state=\"active\"} ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("pg_database_size_bytes ")), "{text}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["probe", "postgres", "--url", "postgres://127.0.0.1:1/x", "--only", "wal"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown section \"wal\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_business_metrics_match_the_seed() {
    use thorbis_obs_server::config::{LoadedConfig, SourceConfig};
    let url = fresh_database("thorbis_business").await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/postgres");
    let admin = connect(&url).await;
    for f in ["schema.sql", "seed.sql"] {
        admin.batch_execute(&std::fs::read_to_string(root.join(f)).expect("example sql")).await.expect(f);
    }
    // The example config, pointed at this database, as the least-privilege probe role.
    let probe_url = url.replacen("postgres@", "thorbis_probe@", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("agent.toml");
    let text = std::fs::read_to_string(root.join("agent.toml"))
        .expect("example config")
        .replace("${THORBIS_PG_URL}", &probe_url);
    std::fs::write(&cfg_path, text).expect("write");
    let cfg = LoadedConfig::from_file(&cfg_path).expect("the example config is valid");
    let business = cfg
        .config
        .sources
        .iter()
        .find_map(|s| match s {
            SourceConfig::Postgres { name, business, .. } if name == "postgres-business" => Some(business.clone()),
            _ => None,
        })
        .expect("the business source");
    let settings = ProbeSettings {
        sections: vec![Section::Business, Section::Health, Section::Connections],
        business,
        ..ProbeSettings::default()
    };
    let probe = PostgresProbe::new("pg", &probe_url, Duration::from_secs(60), settings);
    let r = probe.collect_report(Timestamp::from_secs(1_795_000_000)).await.expect("collects as thorbis_probe");
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    // By hand from seed.sql: 4 active (2, 4, 6, 8 h old: 5 h on average), 2 overdue, 3 invoices
    // paid this month for 1250.50, 4 active customers.
    assert_eq!(value(&r, "work_orders_active"), 4.0);
    assert!((value(&r, "work_orders_active_avg_age_hours") - 5.0).abs() < 0.01);
    assert_eq!(value(&r, "work_orders_overdue"), 2.0);
    assert_eq!(value(&r, "invoices_paid_this_month"), 3.0);
    assert_eq!(value(&r, "revenue_this_month"), 1250.5);
    assert_eq!(value(&r, "customers_active"), 4.0);
    // Completed today: 1 h and 3 h (both today unless the test runs in the first hour of the day).
    let completed = value(&r, "work_orders_completed_today");
    let avg = value(&r, "work_orders_avg_completion_hours");
    assert!((completed, avg.round()) == (2.0, 2.0) || (completed, avg.round()) == (1.0, 3.0), "{completed} {avg}");
    // pg_monitor is enough for the catalog sections.
    assert!(value(&r, "pg_database_size_bytes") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_slowest_and_frequent_without_literals() {
    let url = fresh_database("thorbis_statements").await;
    let admin = connect(&url).await;
    let only_perf =
        || ProbeSettings { sections: vec![Section::Performance, Section::Health], ..ProbeSettings::default() };
    // Without the extension: the section says why, the others still report.
    let probe = PostgresProbe::new("pg", &url, Duration::from_secs(60), only_perf());
    let r = probe.collect_report(Timestamp(0)).await.expect("collects");
    assert!(r.unavailable.get("performance").is_some_and(|e| e.contains("not installed")), "{:?}", r.unavailable);
    assert!(value(&r, "pg_database_size_bytes") > 0.0);

    admin
        .batch_execute("CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();")
        .await
        .expect("extension");
    admin.batch_execute("CREATE TABLE t (id int, secret text)").await.expect("table");
    for i in 0..50 {
        admin.batch_execute(&format!("INSERT INTO t VALUES ({i}, 'secret-literal-{i}')")).await.expect("insert");
    }
    admin.batch_execute("SELECT pg_sleep(0.2)").await.expect("sleep");
    let r = probe.collect_report(Timestamp(0)).await.expect("collects");
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    assert!(r.slowest[0].query.contains("pg_sleep"), "{:?}", r.slowest);
    assert!(r.slowest[0].mean_ms >= 150.0);
    let insert = r.most_frequent.iter().find(|s| s.query.starts_with("INSERT INTO t")).expect("the repeated insert");
    assert_eq!(insert.calls, 50.0);
    assert!(insert.query.contains("$1") && insert.query.contains("$2"), "normalised: {}", insert.query);
    let json = serde_json::to_string(&r).expect("json");
    assert!(!json.contains("secret-literal"), "no literal leaks");
    assert!(r.samples.iter().any(|s| s.name == "pg_statement_calls" && s.value == 50.0));

    // A role without pg_read_all_stats sees hidden texts: the section says so.
    admin.batch_execute("CREATE ROLE plain_probe LOGIN").await.expect("role");
    let plain =
        PostgresProbe::new("pg", &url.replacen("postgres@", "plain_probe@", 1), Duration::from_secs(60), only_perf());
    let r = plain.collect_report(Timestamp(0)).await.expect("collects");
    assert!(r.unavailable.get("performance").is_some_and(|e| e.contains("pg_read_all_stats")), "{:?}", r.unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_lock_waits_rule_fires_from_probe_samples() {
    use thorbis_obs_core::engine::RuleEngine;
    use thorbis_obs_core::rules::packs;
    let url = fresh_database("thorbis_lockrule").await;
    let holder = connect(&url).await;
    holder.batch_execute("CREATE TABLE hot (id int)").await.expect("table");
    holder.batch_execute("BEGIN; LOCK TABLE hot IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let mut waiters = Vec::new();
    for _ in 0..6 {
        let c = connect(&url).await;
        waiters.push(tokio::spawn(async move { c.query("SELECT count(*) FROM hot", &[]).await.map(|r| r.len()) }));
    }
    let probe = PostgresProbe::new(
        "postgres",
        &url,
        Duration::from_secs(30),
        ProbeSettings { sections: vec![Section::Health], ..ProbeSettings::default() },
    );
    let now = Timestamp::from_secs(1_795_000_000);
    // The waiters queue up as their queries reach the server.
    let start = std::time::Instant::now();
    let r = loop {
        let r = probe.collect_report(now).await.expect("collects");
        if value(&r, "pg_lock_waits") >= 6.0 || start.elapsed() > Duration::from_secs(15) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(value(&r, "pg_lock_waits"), 6.0);
    let mut engine = RuleEngine::new(packs::database_health_rules()).expect("valid");
    for s in &r.samples {
        engine.ingest(s).expect("probe samples are valid");
    }
    let notes = engine.evaluate(now);
    let ids: Vec<&str> = notes.iter().map(|n| n.rule_id.as_str()).collect();
    assert_eq!(ids, ["lock-waits-high"], "more than 5 lock waits is the spec's warning; size and lag stay quiet");
    assert_eq!(notes[0].value, Some(6.0));
    holder.batch_execute("COMMIT").await.expect("release");
    for w in waiters {
        w.await.expect("join").expect("waiter finishes");
    }
}
