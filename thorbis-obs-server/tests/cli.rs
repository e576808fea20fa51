//! The `thorbis-obs` binary, run as a user would: exit codes and located error messages.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const GOOD: &str = "rules:
  - id: slow
    name: Slow Requests
    metric: http_request_duration
    condition: { operator: greater_than, threshold: 2000, duration: 5m }
    severity: warning
    channels: [slack]
";

#[test]
fn check_accepts_valid_files_and_the_built_in_packs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.yaml", GOOD);
    let o = bin().args(["rules", "check"]).arg(&good).output().expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("SUCCESS: 1 rules found"));

    // `rules pack` prints YAML that `rules check` accepts with the spec's channels.
    let pack = bin().args(["rules", "pack", "all"]).output().expect("runs");
    assert!(pack.status.success());
    let f = write(dir.path(), "pack.yaml", &String::from_utf8_lossy(&pack.stdout));
    let o = bin().args(["rules", "check", "--channels", "slack,email,sms,pagerduty"]).arg(&f).output().expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("SUCCESS: 31 rules found"));
}

#[test]
fn check_locates_problems_in_yaml_toml_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "unknown_operator.yaml",
            GOOD.replace("greater_than", "bigger_than"),
            &[":5:", "rules[0].condition.operator", "unknown variant `bigger_than`"],
        ),
        ("bad_duration.yaml", GOOD.replace("duration: 5m", "duration: 5 minutes"), &[":5:", "rules[0].condition.duration", "5 minutes"]),
        ("negative.yaml", GOOD.replace("duration: 5m", "duration: -1m"), &["rules[0].condition.duration", "negative"]),
        ("empty_metric.yaml", GOOD.replace("http_request_duration", "\"\""), &[":4:", "rules[0].metric: must not be empty"]),
        ("typo.yaml", GOOD.replace("severity:", "severty:"), &["unknown field `severty`"]),
        ("syntax.yaml", GOOD.replace("channels: [slack]", "channels: [slack"), &["good"]),
        (
            "ladder.yaml",
            format!(
                "{GOOD}    escalation:\n      - {{ after: 10m, severity: error, channels: [slack] }}\n      - {{ after: 5m, severity: critical, channels: [slack] }}\n"
            ),
            &[":10:", "rules[0].escalation[1].after", "increase in time"],
        ),
        ("unknown_channel.yaml", GOOD.replace("[slack]", "[slack, teams]"), &[":7:", "rules[0].channels[1]", "unknown channel \"teams\""]),
        (
            "bad.toml",
            "[[rules]]\nid = \"x\"\nname = \"X\"\nmetric = \"m\"\nseverity = \"urgent\"\n[rules.condition]\noperator = \"greater_than\"\nthreshold = 1\nduration = \"1m\"\n".into(),
            &["bad.toml:5:", "rules[0].severity", "unknown variant `urgent`"],
        ),
        (
            "bad.json",
            "{\"rules\": [{\"id\": \"x\", \"name\": \"X\", \"metric\": \"m\", \"severity\": \"info\",\n \"condition\": {\"operator\": \">\", \"threshold\": \"high\", \"duration\": \"1m\"}}]}".into(),
            &["bad.json:2:", "rules[0].condition.threshold"],
        ),
    ];
    for (name, text, wants) in cases {
        let f = write(dir.path(), name, &text);
        let o = bin().args(["rules", "check", "--channels", "slack,email"]).arg(&f).output().expect("runs");
        assert!(!o.status.success(), "{name} should fail");
        let err = stderr(&o);
        let wants: Vec<&str> = if name == "syntax.yaml" { vec!["syntax.yaml:"] } else { wants.to_vec() };
        for w in wants {
            assert!(err.contains(w), "{name}: expected {w:?} in:\n{err}");
        }
    }
}

#[test]
fn missing_file_and_unknown_format_are_clear() {
    let o = bin().args(["rules", "check", "/nonexistent/rules.yaml"]).output().expect("runs");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/rules.yaml: cannot read"));
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "rules.ini", GOOD);
    let o = bin().args(["rules", "check"]).arg(&f).output().expect("runs");
    assert!(stderr(&o).contains("unknown rule file format"));
}

#[test]
fn rules_test_exit_codes_follow_the_verdicts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/promtool");
    let o = bin().args(["rules", "test"]).arg(root.join("scenarios.test.yaml")).output().expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = bin()
        .args(["rules", "test"])
        .arg(root.join("should_fail/wrong_expectations.test.yaml"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAILED") && out.contains("exp:[") && out.contains("got:[]"), "{out}");
}

#[test]
fn coverage_names_what_feeds_each_rule_and_warns_for_blind_ones() {
    // The embedded config: no PostgreSQL source, so the database rules are blind; the OTLP
    // intake feeds the API rules and the payment and login conventions.
    let o = bin().args(["rules", "check", "--coverage"]).output().expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |rule: &str| text.lines().find(|l| l.trim_start().starts_with(rule)).unwrap_or("").to_string();
    assert!(line("high-response-time").contains("<- otlp intake (spans"), "{text}");
    assert!(line("suspicious-login-activity").contains("otlp intake (payment and login"), "{text}");
    assert!(line("payment-processing-failure").contains("collector (browser SDK"), "{text}");
    assert!(line("database-connections-high").ends_with("<- NOTHING"), "{text}");
    assert!(
        text.contains("WARNING: rule \"database-connections-high\" reads \"database_active_connections\""),
        "{text}"
    );

    // A config with a PostgreSQL source (business query `open_invoices`) and no intake, and a
    // rule file of its own.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "agent.toml",
        "[otlp]\nenabled = false\n[[sources]]\ntype = \"postgres\"\nname = \"main\"\nurl = \"postgres://probe@db/app\"\n\
         [[sources.business]]\nname = \"open_invoices\"\nsql = \"SELECT count(*) AS total FROM invoices\"\n",
    );
    let rules = write(
        dir.path(),
        "rules.yaml",
        &format!(
            "{GOOD}  - id: invoices\n    name: Invoices\n    metric: business_open_invoices_total\n    \
             condition: {{ operator: greater_than, threshold: 100, duration: 5m }}\n    severity: info\n"
        ),
    );
    let o = bin().args(["rules", "check", "--coverage", "--config"]).arg(&config).arg(&rules).output().expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("1 of 2 rules fed"), "{text}");
    let invoices = text.lines().find(|l| l.trim_start().starts_with("invoices")).unwrap_or("");
    assert!(invoices.ends_with("<- source main (postgres)"), "{text}");
    assert!(text.contains("WARNING: rule \"slow\" reads \"http_request_duration\""), "{text}");
}

/// `thorbis-obs demo` at a tenth of its pace: the boards' widgets get numbers, the summary the
/// page loads, API requests and bundle bytes, and the console prints the demo alert's firing,
/// escalation and resolution, once each and in that order; then SIGTERM stops it cleanly.
#[cfg(all(feature = "collector", feature = "otlp", feature = "client"))]
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_fills_the_boards_and_one_alert_fires_escalates_and_resolves() {
    use std::time::Duration;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["demo", "--listen", &addr, "--pace", "1", "--for", "120s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    // The console, line by line as the demo prints it.
    let console: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().expect("stdout")));
    let printed = console.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            printed.lock().expect("lock").push(line);
        }
    });
    let base = format!("http://{addr}");
    let c = reqwest::Client::new();
    let get = |path: &str| {
        let req = c.get(format!("{base}{path}"));
        async move {
            match req.send().await {
                Ok(r) => r.json::<serde_json::Value>().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            }
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let numbers = [
        "lcp-p75",
        "inp-p75",
        "cls-p75",
        "browser-error-rate",
        "work-orders-created",
        "invoices-generated",
        "payments-value",
        // The executive board's SQL widgets, on the demo's SQLite business database.
        "monthly-revenue",
        "active-customers",
        "completion-rate",
    ];
    loop {
        let mut missing = Vec::new();
        for id in numbers {
            if !get(&format!("/api/v1/widgets/{id}")).await["value"].is_number() {
                missing.push(id.to_string());
            }
        }
        for id in ["lcp-p75-chart", "page-views-chart", "conversion-value-chart", "performance-overview"] {
            if get(&format!("/api/v1/widgets/{id}")).await["lines"].as_array().is_none_or(Vec::is_empty) {
                missing.push(id.to_string());
            }
        }
        // The system-health table: the agent's own check, up, with its uptime % over the range.
        let health = get("/api/v1/widgets/uptime-status").await;
        if health["columns"][4] != "uptime" || health["rows"][0][1] != "up" || health["rows"][0][4] != "100%" {
            missing.push(format!("uptime-status {health}"));
        }
        if missing.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "widgets without data: {missing:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The SQLite seed's numbers, as the PostgreSQL example gives them (tests/dashboards_sql.rs).
    let revenue = get("/api/v1/widgets/monthly-revenue").await;
    assert_eq!((revenue["value"].as_f64(), revenue["previous"].as_f64()), (Some(1250.5), Some(800.0)), "{revenue}");
    assert_eq!(get("/api/v1/widgets/completion-rate").await["value"].as_f64(), Some(37.5));
    let geo = get("/api/v1/widgets/customer-geography").await;
    assert_eq!(geo["rows"][0], serde_json::json!(["TX", "4", "1600.25"]), "{geo}");
    // No PostgreSQL source in the demo: no database chart.
    assert!(get("/api/v1/widgets/database-performance").await["id"].is_null(), "a database chart without a database");
    let s = get("/api/v1/summary?range=1h").await;
    let perf = &s["performance"];
    assert!(perf["timings"]["page_load_complete"]["p75_ms"].as_f64().is_some_and(|v| v > 1000.0), "{perf}");
    assert!(perf["api"]["requests"].as_f64().is_some_and(|v| v > 0.0), "{perf}");
    assert!(perf["transfer"]["script"]["bytes"].as_f64().is_some_and(|v| v >= 120_000.0), "{perf}");
    assert!(s["business_impact"]["events"]["work_order_created"]["count"].as_f64().is_some_and(|v| v > 0.0), "{s}");
    // The agent's check of its own /healthz: the rollup's uptime %.
    let uptime = &s["reliability"]["uptime"];
    assert!(uptime["checks"].as_u64().is_some_and(|n| n > 0), "{s}");
    assert_eq!(uptime["uptime_percent"].as_f64(), Some(100.0), "{uptime}");
    // The incident ends about 10 s in (unit 3 to 9 and one unit of average).
    support::eventually("the demo alert's resolution on the console", Duration::from_secs(60), async || {
        console.lock().expect("lock").iter().any(|l| l.contains("Demo Checkout Slow resolved:"))
    })
    .await;
    let pid = child.id().expect("running").to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops").expect("wait");
    assert!(status.success(), "a clean stop on SIGTERM: {status:?}");
    reader.await.expect("reader");
    let stdout = console.lock().expect("lock").join("\n");
    let kinds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("Demo Checkout Slow"))
        .filter_map(|l| ["firing", "escalated", "resolved"].into_iter().find(|k| l.contains(&format!("Slow {k}:"))))
        .collect();
    assert_eq!(kinds, ["firing", "escalated", "resolved"], "{stdout}");
}
