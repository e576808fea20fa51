//! Uptime checks against real local servers: every fault gets the right verdict and failing
//! rule; thresholds, maintenance windows and location quorums behave as configured inside a
//! running agent; reports and the CLI read the stored results.
#![cfg(feature = "http")]

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::monitors::{start, wait_for, wait_stored};
use support::tls::certificate;
use support::web::{Reply, WebServer};
use thorbis_obs_server::store::Store;
use thorbis_obs_server::store::sqlite::SqliteStore;
use thorbis_obs_server::uptime::CheckKind;
use thorbis_obs_server::uptime::config::{HttpCheckConfig, LocationConfig};
use thorbis_obs_server::uptime::http_check::{CheckOutcome, HttpChecker};

fn check(toml_text: &str) -> HttpCheckConfig {
    toml::from_str(toml_text).expect("check config")
}

async fn run(toml_text: &str) -> CheckOutcome {
    let c = check(toml_text);
    HttpChecker::new(&c, &LocationConfig::default()).expect("checker").run().await
}

fn rule(o: &CheckOutcome) -> &str {
    o.failure.as_ref().map(|f| f.rule).unwrap_or("")
}

#[tokio::test]
async fn each_fault_gets_its_verdict_and_failing_rule() {
    let web = WebServer::start(|r| match r.path.as_str() {
        "/ok" => Reply::json(200, r#"{"status":"ok","db":{"replicas":[{"lag":0}]}}"#),
        "/slow" => Reply::new(200, "ok").after(Duration::from_millis(800)),
        "/slower" => Reply::new(200, "ok").after(Duration::from_secs(5)),
        "/error" => Reply::new(500, "internal error"),
        "/wrong-body" => Reply::new(200, "maintenance page"),
        "/wrong-json" => Reply::json(200, r#"{"status":"degraded","db":{"replicas":[{"lag":12}]}}"#),
        "/not-json" => Reply::new(200, "<html>"),
        "/redirect" => Reply { headers: vec![("Location".into(), "/ok".into())], ..Reply::new(302, "") },
        _ => Reply::new(404, "no"),
    })
    .await;
    let u = |p: &str| web.url(p);

    let ok = run(&format!(
        r#"id = "ok"
url = "{}"
expect = {{ status = ["2xx"], body_contains = "ok", body_regex = "\"status\":\\s*\"ok\"", json = {{ "status" = "ok", "db.replicas[0].lag" = 0 }}, headers = {{ "content-type" = "json" }}, max_response_time = "2s" }}"#,
        u("/ok")
    ))
    .await;
    assert!(ok.success, "{ok:?}");
    assert_eq!(ok.status, Some(200));
    assert_eq!(ok.cert_expires_at, None);

    let redirected = run(&format!("id = \"r\"\nurl = \"{}\"\nexpect = {{ status = [200] }}", u("/redirect"))).await;
    assert!(redirected.success, "redirects are followed: {redirected:?}");
    let not_followed = run(&format!(
        "id = \"r\"\nurl = \"{}\"\nfollow_redirects = false\nexpect = {{ status = [200] }}",
        u("/redirect")
    ))
    .await;
    assert_eq!((rule(&not_followed), not_followed.status), ("status", Some(302)));

    let cases = [
        ("/error", "", "status", "got 500, want 200-399"),
        ("/slow", r#"max_response_time = "200ms""#, "response_time", "want < 200 ms"),
        ("/wrong-body", r#"body_contains = "ok""#, "body_contains", "does not contain \"ok\""),
        ("/wrong-body", r#"body_regex = "^ok$""#, "body_regex", "does not match"),
        ("/ok", r#"body_not_contains = "replicas""#, "body_not_contains", "contains \"replicas\""),
        ("/wrong-json", r#"json = { "status" = "ok" }"#, "json", r#"status is "degraded", want "ok""#),
        ("/wrong-json", r#"json = { "db.replicas[0].lag" = 0 }"#, "json", "db.replicas[0].lag is 12, want 0"),
        ("/not-json", r#"json = { "status" = "ok" }"#, "json", "not JSON"),
        ("/ok", r#"headers = { "x-served-by" = "." }"#, "header", "x-served-by is missing"),
        ("/ok", r#"headers = { "content-type" = "^text/" }"#, "header", "does not match"),
        ("/ok", r#"cert_expires_in_more_than = "7d""#, "certificate", "no TLS certificate"),
    ];
    for (path, expect, want_rule, want_detail) in cases {
        let o = run(&format!("id = \"c\"\nurl = \"{}\"\nexpect = {{ {expect} }}", u(path))).await;
        assert!(!o.success, "{path} {expect}: {o:?}");
        assert_eq!(rule(&o), want_rule, "{path} {expect}: {o:?}");
        let detail = &o.failure.as_ref().expect("failure").detail;
        assert!(detail.contains(want_detail), "{path} {expect}: {detail}");
    }

    // The whole check is bounded by its timeout, headers and body included: it gives up at
    // 300 ms, long before the answer at 5 s (the bound leaves a busy machine time to schedule
    // the timer, and still fails a check that waits for the answer).
    let timed_out = run(&format!("id = \"t\"\nurl = \"{}\"\ntimeout = \"300ms\"", u("/slower"))).await;
    assert_eq!(rule(&timed_out), "timeout", "{timed_out:?}");
    assert!(timed_out.elapsed < Duration::from_secs(2), "{:?}", timed_out.elapsed);

    // Nothing listens: connection refused.
    let port = support::agent::free_port();
    let refused = run(&format!("id = \"x\"\nurl = \"http://127.0.0.1:{port}/\"")).await;
    assert_eq!((rule(&refused), refused.status), ("connect", None), "{refused:?}");
    assert!(!refused.failure.as_ref().expect("failure").detail.contains(&port.to_string()), "no URL in errors");
}

#[tokio::test]
async fn certificates_self_signed_trusted_and_expiring() {
    // The certificate's date is read from the clock inside `certificate`: the readings before
    // and after bound it, so the check below holds even if midnight UTC falls in between.
    let before = thorbis_obs_server::agent::system_now();
    let (acceptor, pem) = certificate(Some(3));
    let web = WebServer::start_tls(acceptor, |_| Reply::new(200, "ok")).await;
    let dir = tempfile::tempdir().expect("tmp");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).expect("write");
    let url = web.url("/");

    // Self-signed and not trusted: a TLS failure, no status.
    let untrusted = run(&format!("id = \"s\"\nurl = \"{url}\"")).await;
    assert_eq!((rule(&untrusted), untrusted.status), ("tls", None), "{untrusted:?}");

    // Trusted through ca_file: up, and the expiry is read (midnight UTC in 3 days: 2-3 days).
    let trusted = run(&format!("id = \"s\"\nurl = \"{url}\"\nca_file = \"{}\"", ca.display())).await;
    assert!(trusted.success, "{trusted:?}");
    let now = thorbis_obs_server::agent::system_now();
    let expires = trusted.cert_expires_at.expect("expiry").as_millis();
    let days_from = |t: i64| (expires - t) as f64 / 86_400_000.0;
    let (from_before, from_now) = (days_from(before.as_millis()), days_from(now.as_millis()));
    assert!(
        from_before >= 2.0 && from_now <= 3.0,
        "{from_before} days after the first reading, {from_now} after the last"
    );

    // Expiring within the bound: the certificate rule fails, with the days left.
    let expiring = run(&format!(
        "id = \"s\"\nurl = \"{url}\"\nca_file = \"{}\"\nexpect = {{ cert_expires_in_more_than = \"7d\" }}",
        ca.display()
    ))
    .await;
    assert_eq!(rule(&expiring), "certificate", "{expiring:?}");
    assert!(expiring.failure.as_ref().expect("f").detail.contains("want more than 7.0"), "{expiring:?}");

    // insecure_skip_verify accepts it but still reads the expiry and applies the rule.
    let insecure = run(&format!(
        "id = \"s\"\nurl = \"{url}\"\ninsecure_skip_verify = true\nexpect = {{ cert_expires_in_more_than = \"1d\" }}"
    ))
    .await;
    assert!(insecure.success && insecure.cert_expires_at.is_some(), "{insecure:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_pages_nobody_an_outage_pages_once_and_resolves() {
    // Requests 1-2 ok, 3-4 fail (a blip under the threshold of 3), 5 ok, 6-9 fail (down at
    // the 8th), 10 and later ok (up again at the 11th, the second success).
    let web = WebServer::start(|r| {
        if (3..=4).contains(&r.n) || (6..=9).contains(&r.n) { Reply::new(503, "down") } else { Reply::new(200, "ok") }
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).expect("store"));
    // Each request's verdict is the server's (by its number): a generous timeout, so that a slow
    // answer on a busy machine is not taken for a failure out of turn.
    let config = format!(
        "[uptime]\nfailure_threshold = 3\nsuccess_threshold = 2\n[[uptime.checks]]\nid = \"api\"\nurl = \"{}\"\ninterval = \"150ms\"\ntimeout = \"10s\"\n",
        web.url("/health")
    );
    let agent = start(&config, store.clone(), None);
    let pager = agent.pager.clone();
    wait_for("16 checks", Duration::from_secs(20), || web.hits() >= 16).await;
    wait_for("the resolve", Duration::from_secs(5), || pager.sent().len() >= 2).await;
    agent.stop().await; // the recorder writes what it holds on the way out

    let sent = pager.sent();
    let kinds: Vec<String> = sent.iter().map(|n| format!("{}:{:?}", n.rule_id, n.kind)).collect();
    assert_eq!(kinds, ["endpoint-down:Firing", "endpoint-down:Resolved"], "one page, one resolve");
    assert_eq!(sent[0].labels.get("endpoint"), Some("api"));

    let now = thorbis_obs_server::agent::system_now();
    let recs = store
        .check_results(CheckKind::Http, Some("api"), now.minus(Duration::from_secs(600)), now)
        .await
        .expect("read");
    assert!(recs.len() >= 14, "{}", recs.len());
    let flags: Vec<(bool, bool)> = recs.iter().take(12).map(|r| (r.success, r.down)).collect();
    let want = [
        (true, false),
        (true, false),
        (false, false),
        (false, false),
        (true, false),
        (false, false),
        (false, false),
        (false, true), // the third failure in a row
        (false, true),
        (true, true), // one success is not enough
        (true, false),
        (true, false),
    ];
    assert_eq!(flags, want);
    assert_eq!(recs[2].failed_rule.as_deref(), Some("status"));
    assert_eq!(recs[2].status_code, Some(503));

    // The report over the stored results: two downtime events (the blip counts in the raw
    // uptime), the outage of four failed checks closed by request 10.
    let s = thorbis_obs_server::checks::report::summarize(
        &recs,
        "1h",
        now.minus(Duration::from_secs(3600)),
        now,
        &[],
        |_| (1, 99.9),
        99.9,
    );
    let api = &s.endpoints["api"].report;
    assert_eq!(api.downtime_events.len(), 2, "{api:?}");
    assert_eq!(api.downtime_events[1].failed_checks, 4);
    assert_eq!(api.successful_checks, api.checks - 6);
    assert!(api.mttr_ms.is_some() && api.mtbf_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_inside_a_maintenance_window_page_nobody() {
    let web = WebServer::start(|_| Reply::new(500, "down for maintenance")).await;
    let dir = tempfile::tempdir().expect("tmp");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).expect("store"));
    let (opens, closes) =
        (chrono::Utc::now() - chrono::Duration::hours(1), chrono::Utc::now() + chrono::Duration::hours(1));
    let config = format!(
        "[[uptime.checks]]\nid = \"api\"\nurl = \"{}\"\ninterval = \"100ms\"\nfailure_threshold = 2\nmaintenance = [{{ name = \"deploy\", once = {{ start = \"{}\", end = \"{}\" }} }}]\n\
         [[uptime.checks]]\nid = \"other\"\nurl = \"{}\"\ninterval = \"100ms\"\nfailure_threshold = 2\n",
        web.url("/a"),
        opens.to_rfc3339(),
        closes.to_rfc3339(),
        web.url("/b"),
    );
    let agent = start(&config, store, None);
    let (pager, handle) = (agent.pager.clone(), agent.handle.clone());
    // Both fire in the same evaluations, so by the time both are firing the muted one would
    // have been committed to the outbox (and delivered before the stop returns) if it were not.
    let firing = || -> Vec<String> {
        handle
            .alerts()
            .iter()
            .filter(|a| a.rule_id == "endpoint-down")
            .filter_map(|a| a.labels.get("endpoint").map(str::to_string))
            .collect()
    };
    let both = |f: &[String]| f.contains(&"api".to_string()) && f.contains(&"other".to_string());
    wait_for("both alerts firing", Duration::from_secs(10), || both(&firing())).await;
    wait_for("the other endpoint's page", Duration::from_secs(10), || !pager.sent().is_empty()).await;
    agent.stop().await;
    let endpoints: Vec<String> =
        pager.sent().iter().filter_map(|n| n.labels.get("endpoint").map(str::to_string)).collect();
    assert!(endpoints.iter().all(|e| e == "other"), "only the endpoint outside maintenance pages: {endpoints:?}");
    // Both are down; the one in maintenance is muted, not forgotten.
    let firing = firing();
    assert!(both(&firing), "{firing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_of_locations_decides() {
    // The second vantage point connects from 127.0.0.2 and always gets errors.
    let web = WebServer::start(|r| {
        if r.peer.ip() == std::net::IpAddr::from([127, 0, 0, 2]) {
            Reply::new(502, "bad gateway")
        } else {
            Reply::new(200, "ok")
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).expect("store"));
    let config = format!(
        "[uptime]\nlocation = \"eu\"\nfailure_threshold = 1\n[uptime.locations.us]\nlocal_address = \"127.0.0.2\"\n\
         [[uptime.checks]]\nid = \"quorum2\"\nurl = \"{u}\"\ninterval = \"100ms\"\nquorum = 2\n\
         [[uptime.checks]]\nid = \"quorum1\"\nurl = \"{u}\"\ninterval = \"100ms\"\nquorum = 1\n",
        u = web.url("/")
    );
    let agent = start(&config, store.clone(), None);
    let pager = agent.pager.clone();
    wait_for("a page", Duration::from_secs(10), || !pager.sent().is_empty()).await;
    // With a failure threshold of 1, ten failures stored at "us" give quorum 2 ten chances to
    // page by mistake.
    wait_stored(&*store, "quorum2", &["eu", "us"], 10).await;
    agent.stop().await;
    let endpoints: Vec<String> =
        pager.sent().iter().filter_map(|n| n.labels.get("endpoint").map(str::to_string)).collect();
    assert_eq!(endpoints, ["quorum1"], "one location of two says down: only quorum 1 pages");

    let now = thorbis_obs_server::agent::system_now();
    let recs =
        store.check_results(CheckKind::Http, None, now.minus(Duration::from_secs(600)), now).await.expect("read");
    let us_failed =
        recs.iter().filter(|r| r.location == "us").all(|r| !r.success && r.failed_rule.as_deref() == Some("status"));
    let eu_ok = recs.iter().filter(|r| r.location == "eu").all(|r| r.success);
    assert!(us_failed && eu_ok, "{recs:?}");
    let s = thorbis_obs_server::checks::report::summarize(
        &recs,
        "1h",
        now.minus(Duration::from_secs(3600)),
        now,
        &[],
        |t| (if t == "quorum2" { 2 } else { 1 }, 99.9),
        99.9,
    );
    assert_eq!(s.endpoints["quorum2"].report.uptime_percent, Some(100.0));
    assert_eq!(s.endpoints["quorum2"].locations["us"].uptime_percent, Some(0.0));
    assert_eq!(s.endpoints["quorum2"].locations["eu"].uptime_percent, Some(100.0));
    assert!(s.endpoints["quorum1"].report.uptime_percent.is_some_and(|u| u < 60.0));
}

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs")).args(args).output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_http_prints_the_verdict_and_exits_with_it() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let web = rt.block_on(WebServer::start(|r| match r.path.as_str() {
        "/health" => Reply::json(200, r#"{"status":"ok","version":3}"#),
        _ => Reply::new(500, "boom"),
    }));
    let (code, out, _) = cli(&[
        "probe",
        "http",
        &web.url("/health"),
        "--expect-status",
        "200",
        "--max-response-time",
        "2s",
        "--body-contains",
        "ok",
        "--json-path",
        "status=ok",
        "--json-path",
        "version=3",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("UP: status 200"), "{out}");
    let (code, out, _) = cli(&["probe", "http", &web.url("/health"), "--json-path", "version=4"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("DOWN") && out.contains("json: version is 3, want 4"), "{out}");
    let (code, out, _) = cli(&["probe", "http", &web.url("/other"), "--json"]);
    assert_eq!(code, Some(1));
    let rec: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!((rec["status_code"].as_u64(), rec["failed_rule"].as_str()), (Some(500), Some("status")));
    let (code, _, err) = cli(&["probe", "http", &web.url("/"), "--expect-status", "6xx"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--expect-status"), "{err}");
    let (code, _, err) = cli(&["probe", "http", &web.url("/"), "--header", "Authorization Bearer s3cret"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--header") && !err.contains("s3cret"), "secrets stay out of errors: {err}");
}

#[test]
fn uptime_report_reads_the_configured_store() {
    use thorbis_obs_core::time::Timestamp;
    use thorbis_obs_server::uptime::CheckRecord;
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("thorbis.db");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let now = thorbis_obs_server::agent::system_now();
    let recs: Vec<CheckRecord> = (0..60)
        .map(|i| CheckRecord {
            kind: CheckKind::Http,
            target: "api".into(),
            location: "local".into(),
            at: Timestamp::from_millis(now.as_millis() - (60 - i) * 60_000 + 30_000),
            success: !(20..23).contains(&i),
            duration_ms: 40.0 + i as f64,
            status_code: Some(if (20..23).contains(&i) { 503 } else { 200 }),
            failed_rule: None,
            error: None,
            cert_expires_at: None,
            down: false,
            detail: None,
        })
        .collect();
    rt.block_on(async {
        let store = SqliteStore::open(&db).expect("store");
        store.record_checks(&recs).await.expect("write");
    });
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite:{}\"\n[uptime]\nsla_target = 99.0\n[[uptime.checks]]\nid = \"api\"\nurl = \"http://127.0.0.1:1/\"\n[[uptime.checks]]\nid = \"idle\"\nurl = \"http://127.0.0.1:1/\"\n",
            db.display()
        ),
    )
    .expect("config");
    let c = config.to_string_lossy().to_string();
    let (code, out, err) = cli(&["uptime", "report", "--config", &c, "--range", "1h", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let api = &v["endpoints"]["api"];
    assert_eq!((api["checks"].as_u64(), api["successful_checks"].as_u64()), (Some(60), Some(57)));
    assert_eq!(api["uptime_percent"].as_f64(), Some(95.0));
    assert_eq!(api["sla_status"], "breached");
    assert_eq!(api["downtime_events"].as_array().map(Vec::len), Some(1));
    assert_eq!(api["downtime_events"][0]["duration_ms"].as_i64(), Some(3 * 60_000));
    assert_eq!(api["mttr_ms"].as_f64(), Some(180_000.0));
    assert_eq!(v["endpoints"]["idle"]["sla_status"], "no_data");
    let (code, table, _) = cli(&["uptime", "report", "--config", &c, "--range", "1h"]);
    assert_eq!(code, Some(0));
    assert!(table.contains("api") && table.contains("95.000") && table.contains("BREACHED"), "{table}");
    assert!(table.contains("api down from"), "{table}");
}

/// Two agents in different locations share one PostgreSQL store: each sees the other's
/// results, and the endpoint is down only when both locations say so (quorum 2).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sharing_a_postgres_store_form_the_quorum_together() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use thorbis_obs_server::store::postgres::PostgresStore;
    let url = support::pg::fresh_database("uptime_quorum").await;
    let eu_broken = Arc::new(AtomicBool::new(false));
    let flag = eu_broken.clone();
    let web = WebServer::start(move |r| match r.header("x-probe") {
        Some("us") => Reply::new(500, "us path broken"),
        Some("eu") if flag.load(Ordering::SeqCst) => Reply::new(500, "eu path broken"),
        _ => Reply::new(200, "ok"),
    })
    .await;
    let config = |loc: &str| {
        format!(
            "[uptime]\nlocation = \"{loc}\"\nquorum = 2\nfailure_threshold = 1\nsuccess_threshold = 1\n\
             [[uptime.checks]]\nid = \"shared\"\nurl = \"{}\"\ninterval = \"200ms\"\nheaders = {{ X-Probe = \"{loc}\" }}\n",
            web.url("/")
        )
    };
    let store = PostgresStore::connect(&url).await.expect("store");
    let mut agents = Vec::new();
    for loc in ["eu", "us"] {
        let own: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.expect("store"));
        agents.push(start(&config(loc), own, None));
    }
    use thorbis_obs_core::testing::InMemoryChannel;
    let pagers: Vec<Arc<InMemoryChannel>> = agents.iter().map(|a| a.pager.clone()).collect();
    let pages = |p: &[Arc<InMemoryChannel>]| p.iter().map(|c| c.sent().len()).sum::<usize>();
    // One location failing: no page, though the results of both locations are stored (ten
    // each: several of the leader's one-second reads of the other location have happened).
    wait_stored(&store, "shared", &["eu", "us"], 10).await;
    assert_eq!(pages(&pagers), 0, "one location of two is not a quorum");
    eu_broken.store(true, Ordering::SeqCst);
    wait_for("the page once both locations fail", Duration::from_secs(15), || pages(&pagers) >= 1).await;
    // Ten more results each: time for a second page, from either agent, if there were one.
    let eu = support::monitors::stored(&store, "shared", "eu").await;
    let us = support::monitors::stored(&store, "shared", "us").await;
    wait_stored(&store, "shared", &["eu"], eu + 10).await;
    wait_stored(&store, "shared", &["us"], us + 10).await;
    for a in agents {
        a.stop().await;
    }
    let all: Vec<_> = pagers.iter().flat_map(|p| p.sent()).collect();
    assert_eq!(all.len(), 1, "one page from the leader: {all:?}");
    assert_eq!(all[0].rule_id, "endpoint-down");
    let now = thorbis_obs_server::agent::system_now();
    let recs = store
        .check_results(CheckKind::Http, Some("shared"), now.minus(Duration::from_secs(600)), now)
        .await
        .expect("read");
    let locations: std::collections::BTreeSet<&str> = recs.iter().map(|r| r.location.as_str()).collect();
    assert_eq!(locations.into_iter().collect::<Vec<_>>(), ["eu", "us"]);
}
