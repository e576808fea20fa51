//! SQL widgets against the throwaway PostgreSQL cluster of scripts/test.sh: the spec's executive
//! numbers (revenue, completion rate, revenue by month) from a seeded business schema, through an
//! agent built from a config file; a write, a second statement and a slow query are refused
//! with the database's own reason, nothing is changed, and the URL's password never shows. The
//! same database feeds a business query, whose metrics the summary reports.
#![cfg(all(feature = "postgres", feature = "collector"))]

mod support;

use std::time::Duration;
use support::agent::free_port;
use thorbis_obs_server::agent::agent_from_config;
use thorbis_obs_server::config::LoadedConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_widgets_show_business_numbers_and_refuse_writes() {
    let base = support::pg::fresh_database("dash_sql").await;
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE ROLE dash_reader LOGIN PASSWORD 's3cret-pw';
             CREATE TABLE invoices (id int, status text, total_amount numeric, created_at timestamptz);
             INSERT INTO invoices VALUES (1, 'paid', 450, '2025-09-03T10:00:00Z'), (2, 'paid', 1200.5, '2025-10-11T10:00:00Z'),
                                         (3, 'open', 99, '2025-10-12T10:00:00Z'), (4, 'paid', 300, '2025-11-02T10:00:00Z');
             CREATE TABLE work_orders (id int, status text);
             INSERT INTO work_orders SELECT g, CASE WHEN g <= 9 THEN 'completed' ELSE 'open' END FROM generate_series(1, 10) g;
             GRANT SELECT ON invoices, work_orders TO dash_reader;",
        )
        .await
        .expect("seed");
    // The widgets read as a role with a password, which must never show.
    let url = base.replacen("postgres@", "dash_reader:s3cret-pw@", 1);
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let config = format!(
        r#"[agent]
data_dir = "{data}"
[http]
listen = "127.0.0.1:{port}"
[[sources]]
type = "postgres"
name = "business"
url = "{url}"
interval = "1s"
only = ["business"]
[[sources.business]]
name = "invoices"
sql = "SELECT SUM(total_amount) AS paid_total, COUNT(*) AS paid_count FROM invoices WHERE status = 'paid'"
metrics = {{ paid_total = "revenue_paid_total" }}
[[dashboards]]
id = "exec"
title = "Executive"
[[dashboards.widgets]]
id = "revenue"
title = "Revenue"
kind = "metric"
unit = "$"
source = {{ type = "sql", url = "{url}", query = "SELECT SUM(total_amount) AS revenue FROM invoices WHERE status = 'paid';" }}
[[dashboards.widgets]]
id = "completion"
title = "Work order completion rate"
kind = "gauge"
unit = "%"
thresholds = [85, 70]
lower_is_worse = true
source = {{ type = "sql", url = "{url}", query = "SELECT COUNT(*) FILTER (WHERE status = 'completed')::float / COUNT(*) * 100 AS rate FROM work_orders" }}
[[dashboards.widgets]]
id = "by-month"
title = "Revenue by month"
kind = "chart"
unit = "$"
source = {{ type = "sql", url = "{url}", query = "SELECT date_trunc('month', created_at) AS month, SUM(total_amount) AS revenue FROM invoices WHERE status = 'paid' GROUP BY 1 ORDER BY 1" }}
[[dashboards.widgets]]
id = "invoices"
title = "Invoices"
kind = "table"
source = {{ type = "sql", url = "{url}", query = "SELECT id, status, total_amount, created_at FROM invoices ORDER BY id" }}
[[dashboards.widgets]]
id = "sneaky-delete"
title = "Delete"
kind = "table"
source = {{ type = "sql", url = "{url}", query = "DELETE FROM invoices RETURNING id" }}
[[dashboards.widgets]]
id = "slow"
title = "Slow"
kind = "metric"
source = {{ type = "sql", url = "{url}", query = "SELECT pg_sleep(3)::text, 1 AS n", timeout = "300ms" }}
"#,
        data = dir.path().display()
    );
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, &config).expect("write");
    // A second statement is refused by the config check, before anything runs.
    let two = config.replace("ORDER BY id\" }", "ORDER BY id; DELETE FROM invoices\" }");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, two).expect("write");
    let e = LoadedConfig::from_file(&bad).expect_err("two statements").to_string();
    assert!(e.contains("dashboards[0].widgets[3].source.query: one statement only"), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");

    let cfg = LoadedConfig::from_file(&file).expect("config");
    let agent = agent_from_config(&cfg).await.expect("agent");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let web = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.get(format!("{web}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the agent did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let get = |id: &str| {
        let (c, web, id) = (c.clone(), web.clone(), id.to_string());
        async move {
            let text =
                c.get(format!("{web}/api/v1/widgets/{id}")).send().await.expect("get").text().await.expect("text");
            assert!(!text.contains("s3cret-pw"), "the password leaked: {text}");
            serde_json::from_str::<serde_json::Value>(&text).expect("json")
        }
    };
    assert_eq!(get("revenue").await["value"].as_f64(), Some(1950.5));
    let rate = get("completion").await;
    assert_eq!((rate["value"].as_f64(), rate["status"].as_str()), (Some(90.0), Some("ok")), "{rate}");
    let chart = get("by-month").await;
    let points = chart["lines"][0]["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 3, "{chart}");
    assert_eq!(points[1][1].as_f64(), Some(1200.5));
    let table = get("invoices").await;
    assert_eq!(table["columns"], serde_json::json!(["id", "status", "total_amount", "created_at"]));
    assert_eq!(table["rows"].as_array().map(Vec::len), Some(4));
    let delete = get("sneaky-delete").await;
    assert!(delete["error"].as_str().is_some_and(|e| e.contains("syntax error")), "{delete}");
    let slow = get("slow").await;
    assert!(slow["error"].as_str().is_some_and(|e| e.contains("statement timeout")), "{slow}");
    // The summary's business impact carries the business queries' metrics: the mapped name and
    // the default `business_<query>_<column>` one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let sql = loop {
        let s: serde_json::Value =
            c.get(format!("{web}/api/v1/summary")).send().await.expect("summary").json().await.expect("json");
        let sql = s["business_impact"]["sql"].clone();
        if sql.get("business_invoices_paid_count").is_some() && sql.get("revenue_paid_total").is_some() {
            break sql;
        }
        assert!(tokio::time::Instant::now() < deadline, "no business metrics in the summary: {s:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (sql["revenue_paid_total"].as_f64(), sql["business_invoices_paid_count"].as_f64()),
        (Some(1950.5), Some(3.0)),
        "{sql}"
    );
    // Nothing was deleted, and the page renders the errors as text.
    let n: i64 = client.query_one("SELECT COUNT(*) FROM invoices", &[]).await.expect("count").get(0);
    assert_eq!(n, 4);
    let page = c.get(format!("{web}/dashboards/exec")).send().await.expect("page").text().await.expect("text");
    assert!(page.contains("$1,950.5") && page.contains("role=\"alert\""), "{page}");
    assert!(!page.contains("s3cret-pw"));
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
