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

type Running = tokio::task::JoinHandle<Result<(), thorbis_obs_server::agent::AgentError>>;

/// The agent of the config file `file`, running until `stop` is sent, once it answers on `port`.
async fn start(
    file: &std::path::Path,
    port: u16,
) -> (thorbis_obs_server::agent::AgentHandle, tokio::sync::oneshot::Sender<()>, Running) {
    let cfg = LoadedConfig::from_file(file).expect("config");
    let agent = agent_from_config(&cfg).await.expect("agent");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the agent did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (handle, stop, task)
}

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
             CREATE TABLE customers (id int, state text, total_revenue numeric);
             INSERT INTO customers VALUES (1, 'TX', 900), (2, 'TX', 400), (3, 'CA', 700), (4, 'NY', 100), (5, 'TX', 50), (6, 'CA', 10);
             GRANT SELECT ON invoices, work_orders, customers TO dash_reader;",
        )
        .await
        .expect("seed");
    // The widgets read as a role with a password, which must never show.
    let url = base.replacen("postgres@", "dash_reader:s3cret-pw@", 1);
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let config = format!(
        r##"[agent]
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
id = "monthly-revenue"
title = "Monthly revenue"
kind = "metric"
unit = "$"
compare = "previous_period"
source = {{ type = "sql", url = "{url}", query = "SELECT date_trunc('month', created_at) AS month, SUM(total_amount) AS revenue FROM invoices WHERE status = 'paid' GROUP BY 1 ORDER BY 1 DESC" }}
[[dashboards.widgets]]
id = "active-customers"
title = "Active customers"
kind = "metric"
target = 1000
source = {{ type = "sql", url = "{url}", query = "SELECT COUNT(DISTINCT id) * 100 AS customers FROM invoices" }}
[[dashboards.widgets]]
id = "completion-bands"
title = "Completion rate, three bands"
kind = "gauge"
unit = "%"
thresholds = [70, 85, 95]
lower_is_worse = true
source = {{ type = "sql", url = "{url}", query = "SELECT COUNT(*) FILTER (WHERE status = 'completed')::float / COUNT(*) * 100 AS rate FROM work_orders" }}
[[dashboards.widgets]]
id = "performance-overview"
title = "Application performance overview"
kind = "chart"
unit = "ms"
range = "24h"
series = [
  {{ column = "avg_response_time", name = "Avg Response Time", axis = "left", color = "#1f77b4" }},
  {{ column = "max_response_time", name = "Max Response Time", axis = "left", color = "#ff7f0e" }},
  {{ column = "error_rate", name = "Error Rate", axis = "right", color = "#d62728", unit = "%" }},
]
source = {{ type = "sql", url = "{url}", query = "SELECT date_trunc('hour', now()) - g * interval '1 hour' AS hour, 100 + g AS avg_response_time, 900 + g AS max_response_time, g * 0.5 AS error_rate FROM generate_series(1, 5) g ORDER BY 1" }}
[[dashboards.widgets]]
id = "customer-geography"
title = "Customer geographic distribution"
kind = "map"
source = {{ type = "sql", url = "{url}", query = "SELECT state, COUNT(*) AS customer_count, SUM(total_revenue) AS total_revenue FROM customers GROUP BY state" }}
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
"##,
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

    let (_, stop, task) = start(&file, port).await;
    let (c, web) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
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
    // The spec's executive widgets: a comparison with the previous month and its trend, a
    // target, a gauge with three bands.
    let monthly = get("monthly-revenue").await;
    assert_eq!((monthly["value"].as_f64(), monthly["previous"].as_f64()), (Some(300.0), Some(1200.5)), "{monthly}");
    assert!(monthly["change"].as_f64().is_some_and(|c| (c - (300.0 - 1200.5) / 1200.5).abs() < 1e-9), "{monthly}");
    let customers = get("active-customers").await;
    assert_eq!((customers["of_target"].as_f64(), customers["target"].as_f64()), (Some(0.4), Some(1000.0)));
    let bands = get("completion-bands").await;
    assert_eq!((bands["value"].as_f64(), bands["status"].as_str()), (Some(90.0), Some("ok")), "{bands}");
    let html = |id: &str| {
        let (c, web, id) = (c.clone(), web.clone(), id.to_string());
        async move {
            c.get(format!("{web}/api/v1/widgets/{id}/html")).send().await.expect("get").text().await.expect("text")
        }
    };
    let m = html("monthly-revenue").await;
    assert!(m.contains("trend down") && m.contains("75.01% vs previous period ($1,200.5)"), "{m}");
    let t = html("active-customers").await;
    assert!(t.contains("<meter min=\"0\" max=\"1\" value=\"0.400\">") && t.contains("40% of target 1,000"), "{t}");
    let g = html("completion-bands").await;
    for band in ["band critical", "band warning", "band ok", "band best"] {
        assert!(g.contains(band), "{band} missing: {g}");
    }
    // Two y axes with named, coloured series: the error rate on its own scale on the right.
    let p = html("performance-overview").await;
    for part in [
        "stroke=\"#1f77b4\"",
        "stroke=\"#d62728\"",
        "Avg Response Time (left axis)",
        "Max Response Time (left axis)",
        "Error Rate (right axis) <strong>0.5%</strong>",
    ] {
        assert!(p.contains(part), "{part} missing: {p}");
    }
    // The geography: a region per row, most customers first, bars scaled to the largest.
    let geo = html("customer-geography").await;
    let (tx, ca, ny) = (geo.find("<td>TX</td>"), geo.find("<td>CA</td>"), geo.find("<td>NY</td>"));
    assert!(tx.is_some() && tx < ca && ca < ny, "{geo}");
    assert!(geo.contains("width:100.0%") && geo.contains("width:66.7%") && geo.contains("width:33.3%"), "{geo}");
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

/// The built-in boards on the example database (examples/postgres/schema.sql and seed.sql), as
/// a config with a PostgreSQL source and no `[[dashboards]]` gets them: the spec's executive
/// widgets read the seeded business tables as the probe's least-privilege role, the operations
/// board charts the probe's metrics, and Chromium renders the executive board (screenshot kept
/// under the cargo target's tmp directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_executive_board_reads_the_example_database_in_chromium() {
    use thorbis_obs_core::metrics::{Labels, Sample};
    use thorbis_obs_server::agent::system_now;
    let admin_url = support::pg::fresh_database("exec_board").await;
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/postgres");
    for f in ["schema.sql", "seed.sql"] {
        admin.batch_execute(&std::fs::read_to_string(examples.join(f)).expect("example sql")).await.expect(f);
    }
    let url = admin_url.replacen("postgres@", "thorbis_probe@", 1);
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let config = format!(
        r#"[agent]
data_dir = "{data}"
evaluation_interval = "1s"
[http]
listen = "127.0.0.1:{port}"
[[sources]]
type = "postgres"
url = "{url}"
interval = "1s"
only = ["connections", "health"]
"#,
        data = dir.path().display()
    );
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, &config).expect("write");
    let (handle, stop, task) = start(&file, port).await;
    let (c, web) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
    // Request metrics of two services over the last half hour (the OTLP intake's names; one
    // window's samples share its time, as the intake's do).
    let now = system_now();
    for (service, slow) in [("api", 1.0), ("billing", 2.0)] {
        for (ago_min, avg, max, errors) in
            [(30, 120.0, 900.0, 0.01), (20, 150.0, 1400.0, 0.02), (10, 180.0, 2100.0, 0.04)]
        {
            let at = now.minus(Duration::from_secs(ago_min * 60));
            let labels = Labels::from_pairs([("service", service), ("env", "prod")]);
            for (name, v) in [
                ("http_service_request_duration", avg * slow),
                ("http_service_request_duration_max", max * slow),
                ("http_service_request_error_rate", errors * slow),
            ] {
                handle.push(&Sample::new(name, labels.clone(), v, at)).expect("sample");
            }
        }
    }
    let get = |id: &str| {
        let (c, web, id) = (c.clone(), web.clone(), id.to_string());
        async move {
            let text =
                c.get(format!("{web}/api/v1/widgets/{id}")).send().await.expect("get").text().await.expect("text");
            serde_json::from_str::<serde_json::Value>(&text).expect("json")
        }
    };
    // By hand from seed.sql (its header says the same).
    let revenue = get("monthly-revenue").await;
    assert_eq!((revenue["value"].as_f64(), revenue["previous"].as_f64()), (Some(1250.5), Some(800.0)), "{revenue}");
    let customers = get("active-customers").await;
    assert_eq!(
        (customers["value"].as_f64(), customers["previous"].as_f64(), customers["of_target"].as_f64()),
        (Some(4.0), Some(1.0), Some(0.004)),
        "{customers}"
    );
    let completion = get("completion-rate").await;
    assert_eq!((completion["value"].as_f64(), completion["status"].as_str()), (Some(37.5), Some("critical")));
    let geo = get("customer-geography").await;
    let rows: Vec<(String, String)> = geo["rows"]
        .as_array()
        .map(|r| r.iter().map(|r| (r[0].as_str().unwrap_or("").into(), r[1].as_str().unwrap_or("").into())).collect())
        .unwrap_or_default();
    assert_eq!(rows, [("TX".into(), "4".into()), ("CA".into(), "3".into()), ("NY".into(), "2".into())], "{geo}");
    // The performance overview: one line per metric, the slowest service's, the error rate in %.
    let perf = get("performance-overview").await;
    let line = |name: &str| {
        perf["lines"].as_array().and_then(|l| l.iter().find(|l| l["label"] == name)).cloned().unwrap_or_default()
    };
    let last = |l: &serde_json::Value| l["points"].as_array().and_then(|p| p.last()).and_then(|p| p[1].as_f64());
    assert_eq!(line("http_service_request_duration")["points"].as_array().map(Vec::len), Some(3), "{perf}");
    assert_eq!(last(&line("http_service_request_duration")), Some(360.0), "{perf}");
    assert_eq!(last(&line("http_service_request_duration_max")), Some(4200.0), "{perf}");
    assert!(last(&line("http_service_request_error_rate")).is_some_and(|v| (v - 8.0).abs() < 1e-9), "{perf}");
    // The operations board charts the probe's metrics once it has collected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let db = get("database-performance").await;
        let labels: Vec<&str> =
            db["lines"].as_array().map(|l| l.iter().filter_map(|l| l["label"].as_str()).collect()).unwrap_or_default();
        if labels == ["pg_connections_total", "pg_blocked_queries", "pg_longest_query_seconds"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no database chart: {db}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The executive board in Chromium.
    let (dom, log) = support::chrome::chromium(&format!("{web}/dashboards/executive"), &["--dump-dom"]).await;
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages on the board: {console:#?}");
    let section = support::chrome::section;
    let m = section(&dom, "monthly-revenue");
    assert!(m.contains("$1,250.5") && m.contains("trend up") && m.contains("vs previous period ($800)"), "{m}");
    assert!(
        section(&dom, "active-customers").contains("0.4% of target 1,000"),
        "{}",
        section(&dom, "active-customers")
    );
    assert!(section(&dom, "completion-rate").contains("37.5%"), "{}", section(&dom, "completion-rate"));
    let p = section(&dom, "performance-overview");
    assert!(
        p.contains("Avg Response Time (left axis)") && p.contains("Error Rate (right axis) <strong>8%</strong>"),
        "{p}"
    );
    let g = section(&dom, "customer-geography");
    assert!(g.find("<td>TX</td>") < g.find("<td>CA</td>") && g.contains("width:100.0%"), "{g}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-executive-sql.png");
    let _ = std::fs::remove_file(&shot);
    support::chrome::chromium(&format!("{web}/dashboards/executive"), &[&format!("--screenshot={}", shot.display())])
        .await;
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} looks empty", shot.display());
    eprintln!("screenshot: {}", shot.display());
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
