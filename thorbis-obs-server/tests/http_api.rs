//! The agent's HTTP endpoints, served on loopback by an in-process agent.

mod support;

use std::sync::Arc;
use std::time::Duration;
use thorbis_obs_core::rules::coverage::Producer;
use thorbis_obs_core::rules::packs;
use thorbis_obs_core::testing::InMemoryChannel;
use thorbis_obs_server::agent::Agent;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_and_guard_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let mut rules = packs::spec_rules();
    for r in &mut rules {
        r.channels = vec!["mem".into()];
        for s in &mut r.escalation {
            s.channels = vec!["mem".into()];
        }
    }
    let mem = InMemoryChannel::new("mem");
    let agent = Agent::builder()
        .rules(rules)
        .channel(Arc::new(mem.clone()))
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .evaluation_interval(Duration::from_millis(200))
        .http(addr, Some(Secret::new("s3cret")))
        .producers([Producer::new("payments service", ["payment_failure_rate"])])
        .build()
        .expect("valid");
    let handle = agent.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let base = format!("http://{addr}");
    let c = reqwest::Client::new();
    support::eventually("the server to come up", Duration::from_secs(30), async || {
        c.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let ready = c.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    // Each rule with what feeds it: the declared producer feeds the payment rule only.
    let listed: serde_json::Value =
        c.get(format!("{base}/api/v1/rules")).send().await.expect("get").json().await.expect("json");
    let rule = |id: &str| listed["rules"].as_array().and_then(|r| r.iter().find(|x| x["id"] == id)).cloned();
    let payment = rule("payment-processing-failure").expect("listed");
    assert_eq!(payment["producers"], serde_json::json!(["payments service"]));
    assert_eq!((payment["fed"].clone(), payment["metric"].clone()), (true.into(), "payment_failure_rate".into()));
    assert_eq!(rule("high-response-time").map(|r| r["fed"].clone()), Some(false.into()));
    assert_eq!(listed["rules"].as_array().map(Vec::len), Some(5));

    // Writes need the token.
    let body =
        serde_json::json!([{ "name": "payment_failure_rate", "labels": { "provider": "stripe" }, "value": 0.4 }]);
    let r = c.post(format!("{base}/api/v1/samples")).json(&body).send().await.expect("post");
    assert_eq!(r.status(), 401);
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("wrong").json(&body).send().await.expect("post");
    assert_eq!(r.status(), 401);
    // A bad batch stores nothing and names the bad sample.
    let bad = serde_json::json!([
        { "name": "payment_failure_rate", "value": 0.4 },
        { "name": "bad name", "value": 1.0 }
    ]);
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("s3cret").json(&bad).send().await.expect("post");
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.expect("json");
    assert!(err["error"].as_str().is_some_and(|e| e.starts_with("[1]: invalid metric name")), "{err}");
    let r = c.post(format!("{base}/api/v1/samples")).bearer_auth("s3cret").json(&body).send().await.expect("post");
    assert_eq!(r.status(), 200);

    // The alert fires and shows in the API and in /metrics.
    support::monitors::wait_for("a notification", Duration::from_secs(30), || !mem.sent().is_empty()).await;
    let alerts: serde_json::Value =
        c.get(format!("{base}/api/v1/alerts")).send().await.expect("get").json().await.expect("json");
    assert_eq!(alerts["alerts"][0]["rule_id"], "payment-processing-failure");
    assert_eq!(alerts["alerts"][0]["state"], "firing");
    // The channel holds the notification before the agent counts the delivery: read /metrics
    // until the count is in (10 s at most; the assertions below say what is missing).
    let sent = "thorbis_notifications_total{channel=\"mem\",outcome=\"sent\"} 1";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = c.get(format!("{base}/metrics")).send().await.expect("get").text().await.expect("text");
        if text.contains(sent) || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("payment_failure_rate{provider=\"stripe\"} 0.4"), "{text}");
    assert!(text.contains("ALERTS{alertname=\"PaymentProcessingFailures\",alertstate=\"firing\",provider=\"stripe\",severity=\"critical\"} 1"), "{text}");
    assert!(text.contains(sent), "{text}");

    // Suppressions: token, validation, effect.
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30m" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .bearer_auth("s3cret")
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30 minutes" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!("{base}/api/v1/suppressions"))
        .bearer_auth("s3cret")
        .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "30m" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(handle.alerts().iter().all(|a| a.rule_id != "high-response-time" || a.muted));

    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}

#[tokio::test]
async fn write_endpoints_are_off_without_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let agent = Agent::builder()
        .store(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .http(addr, None)
        .build()
        .expect("valid");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    support::eventually("the server to come up", Duration::from_secs(30), async || {
        c.get(format!("http://{addr}/healthz")).send().await.is_ok()
    })
    .await;
    let url = format!("http://{addr}/api/v1/suppressions");
    let r = c.post(&url).bearer_auth("anything").json(&serde_json::json!({ "condition": "x" })).send().await;
    let r = r.expect("server up");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("text").contains("set http.api_token"));
    let _ = stop.send(());
    task.await.expect("join").expect("runs");
}

/// A host app's own component: its route is served beside the agent's, it reads the hub, and
/// its background work starts with the agent and stops with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_component_serves_its_routes_and_runs_with_the_agent() {
    use axum::extract::State;
    use std::sync::atomic::{AtomicBool, Ordering};
    use thorbis_obs_server::hub::{Component, Hub};

    struct Hello {
        hub: Arc<Hub>,
        ran: AtomicBool,
        stopped: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Component for Hello {
        fn name(&self) -> &'static str {
            "hello"
        }

        fn routes(self: Arc<Self>) -> axum::Router {
            axum::Router::new()
                .route(
                    "/api/v1/hello",
                    axum::routing::get(|State(h): State<Arc<Hello>>| async move {
                        format!("{} rules", h.hub.engine().rules().count())
                    }),
                )
                .with_state(self)
        }

        async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
            self.ran.store(true, Ordering::SeqCst);
            let _ = stop.changed().await;
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let made: Arc<std::sync::Mutex<Option<Arc<Hello>>>> = Arc::default();
    let keep = made.clone();
    let agent = support::quiet_agent(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .http(addr, None)
        .component(move |hub| {
            let c = Arc::new(Hello { hub: hub.clone(), ran: AtomicBool::new(false), stopped: AtomicBool::new(false) });
            *keep.lock().expect("lock") = Some(c.clone());
            c
        })
        .build()
        .expect("valid");
    let hello = made.lock().expect("lock").clone().expect("made at build");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    let c = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/hello");
    support::eventually("the component's route", Duration::from_secs(30), async || {
        c.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let text = c.get(&url).send().await.expect("get").text().await.expect("text");
    assert_eq!(text, format!("{} rules", packs::database_health_rules().len()));
    assert!(hello.ran.load(Ordering::SeqCst), "run() started with the agent");
    assert!(!hello.stopped.load(Ordering::SeqCst));
    // The agent's own routes are still there beside it.
    assert_eq!(c.get(format!("http://{addr}/healthz")).send().await.expect("healthz").status(), 200);
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
    assert!(hello.stopped.load(Ordering::SeqCst), "run() saw the stop");
}

/// Source maps through the agent's API and the CLI: uploaded for a release, listed, used to
/// read a minified stack as written; bad maps, huge bodies, maps of other files, frames past a
/// map's end and a stack of 10,000 frames get clear answers and bounded work.
mod sourcemaps {
    use super::support;
    use std::io::{Read, Write};
    use std::time::Duration;

    const TOKEN: &str = "token-for-the-source-map-test";
    const BUNDLE: &str = "https://shop.example/_next/static/chunks/pay-4f1c.js";

    /// The map of a one-line bundle of `app/pay.js` (made with getsentry's builder, the crate
    /// the agent reads maps with).
    fn map_json() -> Vec<u8> {
        let mut b = sourcemap::SourceMapBuilder::new(Some("pay-4f1c.js"));
        let src = b.add_source("webpack://_N_E/./app/pay.js");
        b.set_source_contents(
            src,
            Some("// pay\nfunction checkout() {\n  charge();\n}\nfunction charge() {\n  throw new Error(\"declined\");\n}\ncheckout();\n"),
        );
        let (charge, checkout) = (b.add_name("charge"), b.add_name("checkout"));
        b.add_raw(0, 11, 2, 2, Some(src), Some(charge), false);
        b.add_raw(0, 28, 5, 2, Some(src), None, false);
        b.add_raw(0, 48, 7, 0, Some(src), Some(checkout), false);
        let mut out = Vec::new();
        b.into_sourcemap().to_writer(&mut out).expect("json");
        out
    }

    fn stack(file: &str) -> String {
        format!("Error: declined\n    at b ({file}:1:29)\n    at a ({file}:1:12)\n    at {file}:1:49")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_agent_reads_a_build_directory_it_is_pointed_at() {
        let dir = tempfile::tempdir().expect("tmp");
        let build = dir.path().join("static");
        std::fs::create_dir_all(build.join("chunks")).expect("dirs");
        std::fs::write(build.join("chunks/pay-4f1c.js.map"), map_json()).expect("map");
        std::fs::write(build.join("chunks/broken.js.map"), "{ not a map").expect("bad map");
        let port = support::agent::free_port();
        let config = support::agent::config_file(
            dir.path(),
            port,
            "",
            &format!("[[sourcemaps.directories]]\npath = \"{}\"\nrelease = \"2.0.0\"\n", build.display()),
        );
        let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("config");
        let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
        let base = format!("http://127.0.0.1:{port}");
        let (stop, task) = support::serve(agent, &base).await;
        let c = reqwest::Client::new();
        let mut listed = serde_json::Value::Null;
        support::eventually("the directory's map stored", Duration::from_secs(20), async || {
            let r = c.get(format!("{base}/api/v1/sourcemaps?release=2.0.0")).send().await.expect("list");
            listed = r.json().await.expect("json");
            listed["maps"].as_array().is_some_and(|m| !m.is_empty())
        })
        .await;
        let maps = listed["maps"].as_array().expect("maps");
        assert_eq!(maps.len(), 1, "the broken map is refused, the good one stored: {listed}");
        assert_eq!(maps[0]["url"], "~/_next/static/chunks/pay-4f1c.js");
        // A directory that is not there is a config problem, named.
        let bad = support::agent::config_file(
            dir.path(),
            port,
            "",
            "[[sourcemaps.directories]]\npath = \"/nonexistent/build\"\nrelease = \"2.0.0\"\nurl_prefix = \"_next\"\n",
        );
        let problems = match thorbis_obs_server::config::LoadedConfig::from_file(&bad) {
            Ok(_) => panic!("a missing directory passed"),
            Err(e) => e.to_string(),
        };
        assert!(problems.contains("sourcemaps.directories[0].path") && problems.contains("url_prefix"), "{problems}");
        let _ = stop.send(());
        task.await.expect("join").expect("agent");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upload_with_the_cli_then_symbolicate_and_refuse_bad_input() {
        let dir = tempfile::tempdir().expect("tmp");
        let port = support::agent::free_port();
        let config = support::agent::config_file(
            dir.path(),
            port,
            &format!("api_token = \"{TOKEN}\"\n"),
            "[collector]\nwindow = \"2s\"\n",
        );
        let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("config");
        let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
        let base = format!("http://127.0.0.1:{port}");
        let (stop, task) = support::serve(agent, &base).await;
        let c = reqwest::Client::new();

        // The CLI uploads what a build left: .next/static/chunks/pay-4f1c.js.map.
        let build = dir.path().join("static");
        std::fs::create_dir_all(build.join("chunks")).expect("dirs");
        std::fs::write(build.join("chunks/pay-4f1c.js.map"), map_json()).expect("map");
        std::fs::write(build.join("chunks/pay-4f1c.js"), "function a(){b()}").expect("bundle");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
            .args(["sourcemaps", "--url", &base, "--token", TOKEN, "upload", "--release", "1.4.0"])
            .args(["--url-prefix", "~/_next/static"])
            .arg(&build)
            .output()
            .expect("cli");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("uploaded 1 source maps"), "{said}");
        let listed: serde_json::Value = c
            .get(format!("{base}/api/v1/sourcemaps?release=1.4.0"))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        assert_eq!(listed["maps"][0]["url"], "~/_next/static/chunks/pay-4f1c.js", "{listed}");
        assert_eq!((listed["maps"][0]["sources"].as_u64(), listed["maps"][0]["tokens"].as_u64()), (Some(1), Some(3)));

        let read_stack = |body: serde_json::Value| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let r = c
                    .post(format!("{base}/api/v1/symbolicate"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .expect("symbolicate");
                assert_eq!(r.status(), 200);
                r.json::<serde_json::Value>().await.expect("json")["frames"].as_array().cloned().unwrap_or_default()
            }
        };
        let symbolicate = |release: &'static str, stack: String| {
            read_stack(serde_json::json!({ "release": release, "stack": stack }))
        };
        let frames = symbolicate("1.4.0", stack(BUNDLE)).await;
        let read: Vec<(String, String, u64)> = frames
            .iter()
            .map(|f| {
                let s = |k: &str| f["frame"][k].as_str().unwrap_or("").to_string();
                (s("function"), s("file"), f["frame"]["line"].as_u64().unwrap_or(0))
            })
            .collect();
        assert_eq!(
            read,
            [
                ("charge".to_string(), "app/pay.js".to_string(), 6),
                ("checkout".to_string(), "app/pay.js".to_string(), 3),
                (String::new(), "app/pay.js".to_string(), 8),
            ]
        );
        assert_eq!(frames[0]["context_line"], "  throw new Error(\"declined\");");
        assert_eq!(frames[0]["in_app"], true);
        // Another release has no maps: the frames stay minified.
        let other = symbolicate("1.3.0", stack(BUNDLE)).await;
        assert!(other.iter().all(|f| f["mapped"] == false), "{other:?}");

        // Bad input.
        let post_map = |query: &'static str, body: Vec<u8>| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let r = c
                    .post(format!("{base}/api/v1/sourcemaps?{query}"))
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            }
        };
        let (status, body) =
            post_map("release=1.4.0&url=~/_next/static/chunks/x.js", b"{\"version\":3,\"mappings\":".to_vec()).await;
        assert!(status == 400 && body.contains("not a source map"), "{status} {body}");
        let (status, body) = post_map("release=1.4.0&url=pay.js", map_json()).await;
        assert!(status == 400 && body.contains("url"), "{status} {body}");
        let (status, _) = post_map("release=1.4.0&url=~/x.js", map_json()).await;
        let unauthorised =
            c.post(format!("{base}/api/v1/sourcemaps?release=1&url=~/x.js")).body(map_json()).send().await;
        assert_eq!((status, unauthorised.expect("post").status().as_u16()), (200, 401));
        // 50 MB declared: refused before a byte of it is read.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(
            s,
            "POST /api/v1/sourcemaps?release=1.4.0&url=~/big.js HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 52428800\r\n\r\n"
        )
        .expect("write");
        let mut answer = [0u8; 512];
        let n = s.read(&mut answer).expect("read");
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // A map with a debug id is found by it, whatever release the error names.
        let id = "85314830-023f-4cf1-a267-535f4e37bb17";
        let mut with_id: serde_json::Value = serde_json::from_slice(&map_json()).expect("json");
        with_id["debugId"] = serde_json::json!(id);
        let body = serde_json::to_vec(&with_id).expect("json");
        let (status, _) = post_map("release=maps-only&url=~/_next/static/chunks/by-id.js", body).await;
        assert_eq!(status, 200);
        let renamed = "https://cdn.example/assets/by-id.js";
        let by_id = |ids: serde_json::Value| {
            read_stack(serde_json::json!({ "release": "9.9.9", "stack": stack(renamed), "debugIds": ids }))
        };
        let frames = by_id(serde_json::json!({ renamed: id })).await;
        assert_eq!(
            (frames[0]["mapped"].as_bool(), frames[0]["frame"]["file"].as_str()),
            (Some(true), Some("app/pay.js"))
        );
        let frames = by_id(serde_json::json!({ renamed: "85314830-0000-4cf1-a267-535f4e37bb17" })).await;
        assert_eq!(frames[0]["mapped"], false, "an unknown id finds nothing");
        // The map of pay.js uploaded as x.js: frames of x.js past its one line stay minified.
        let wrong = symbolicate("1.4.0", "Error: y\n    at f (https://shop.example/x.js:7:3)".into()).await;
        assert_eq!((wrong.len(), wrong[0]["mapped"].as_bool()), (1, Some(false)));
        // 10,000 frames: the first 50 are read.
        let deep: String = std::iter::once("RangeError: too much recursion".to_string())
            .chain((0..10_000).map(|i| format!("    at f{i} ({BUNDLE}:1:{})", 12 + i % 40)))
            .collect::<Vec<_>>()
            .join("\n");
        let frames = symbolicate("1.4.0", deep).await;
        assert_eq!(frames.len(), 50);
        assert!(frames.iter().all(|f| f["mapped"] == true));
        // A stack naming many scripts: only the first 8 scripts' maps are looked up.
        let many: String = std::iter::once("Error: x".to_string())
            .chain((0..8).map(|i| format!("    at f (https://shop.example/other{i}.js:1:5)")))
            .chain(std::iter::once(format!("    at b ({BUNDLE}:1:29)")))
            .collect::<Vec<_>>()
            .join("\n");
        let frames = symbolicate("1.4.0", many).await;
        assert_eq!(
            (frames.len(), frames[8]["mapped"].as_bool()),
            (9, Some(false)),
            "the ninth script is not looked up"
        );

        // Errors from the browser: grouped by their original frames where maps cover them.
        let beacon = |release: &str, bundle: &str| {
            let t = thorbis_obs_server::agent::system_now().0;
            let stack = stack(bundle).replace('\n', "\\n");
            format!(
                r#"{{"v":1,"service":"shop","env":"prod","version":"{release}","session":{{"id":"s-{}","sampled":true,"startedAt":{t},"sampleRate":100}},
"view":{{"id":"v-1","url":"https://shop.example/pay","route":"/pay"}},"sentAt":{t},
"events":[{{"type":"error","at":{t},"kind":"error","message":"Error: declined","stack":"{stack}","count":1}}]}}"#,
                release.replace('.', "-")
            )
        };
        let post = |body: String| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let r = c
                    .post(format!("{base}/v1/rum"))
                    .header("Content-Type", "text/plain;charset=UTF-8")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                let status = r.status().as_u16();
                if status != 202 {
                    eprintln!("refused: {}", r.text().await.unwrap_or_default());
                }
                status
            }
        };
        let groups = || {
            let c = c.clone();
            let base = base.clone();
            async move {
                let v: serde_json::Value = c
                    .get(format!("{base}/api/v1/rum/errors"))
                    .send()
                    .await
                    .expect("errors")
                    .json()
                    .await
                    .expect("json");
                v["errors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|g| (g["fingerprint"].as_str().unwrap_or("").to_string(), g["count"].as_u64().unwrap_or(0)))
                    .collect::<Vec<_>>()
            }
        };
        // Release 1.5.0's map is not there yet: its error groups by its minified frames.
        let new_bundle = "https://shop.example/_next/static/chunks/pay-9e9e.js";
        assert_eq!(post(beacon("1.5.0", new_bundle)).await, 202);
        support::eventually("the minified group", Duration::from_secs(20), async || groups().await.len() == 1).await;
        let minified = groups().await[0].0.clone();
        let page = c.get(format!("{base}/errors/{minified}")).send().await.expect("page").text().await.expect("text");
        assert!(page.contains("no source map of this release covers") && page.contains("pay-9e9e.js"), "{page}");
        // Its map arrives: the group's page reads the stack as written.
        let (status, _) = post_map("release=1.5.0&url=~/_next/static/chunks/pay-9e9e.js", map_json()).await;
        assert_eq!(status, 200);
        let page = c.get(format!("{base}/errors/{minified}")).send().await.expect("page").text().await.expect("text");
        assert!(page.contains("<code>charge</code> at <code>app/pay.js:6:3</code>"), "{page}");
        assert!(page.contains("<mark>    6    throw new Error(&quot;declined&quot;);</mark>"), "{page}");
        // The same bug in two builds (other chunk names): one group, by the original frames.
        assert_eq!(post(beacon("1.4.0", BUNDLE)).await, 202);
        assert_eq!(post(beacon("1.5.0", new_bundle)).await, 202);
        support::eventually("one group of two builds", Duration::from_secs(20), async || {
            groups().await.iter().any(|(fp, n)| fp != &minified && *n == 2)
        })
        .await;
        let detail: serde_json::Value = c
            .get(format!("{base}/api/v1/rum/errors/{minified}"))
            .send()
            .await
            .expect("detail")
            .json()
            .await
            .expect("json");
        assert_eq!(detail["group"]["tags"]["release"], "1.5.0");
        assert_eq!(detail["frames"][1]["frame"]["function"], "checkout");
        let missing = c.get(format!("{base}/errors/0123456789abcdef")).send().await.expect("page");
        assert_eq!(missing.status(), 404);
        let bad = c.get(format!("{base}/errors/%3Cscript%3E")).send().await.expect("page");
        assert_eq!(bad.status(), 400);

        let audit: serde_json::Value = c
            .get(format!("{base}/api/v1/audit?action=sourcemap"))
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let targets: Vec<&str> =
            audit["records"].as_array().expect("records").iter().filter_map(|r| r["target"].as_str()).collect();
        assert_eq!(
            targets,
            [
                "~/_next/static/chunks/pay-9e9e.js",
                "~/_next/static/chunks/by-id.js",
                "~/x.js",
                "~/_next/static/chunks/pay-4f1c.js"
            ]
        );
        let _ = stop.send(());
        task.await.expect("join").expect("agent");
    }
}

/// The error groups' workflow against a webhook: a new group pages once, a resolved group seen
/// in a newer release is one regression, an ignored group stays quiet until its N-th event.
mod error_workflow {
    use super::support;
    use std::time::Duration;

    const TOKEN: &str = "token-for-the-error-workflow";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_group_regression_and_ignore_until_n_reach_the_webhook_once_each() {
        let dir = tempfile::tempdir().expect("tmp");
        let (hook, got) = support::web::json_sink().await;
        let port = support::agent::free_port();
        let config = support::agent::config_file(
            dir.path(),
            port,
            &format!("api_token = \"{TOKEN}\"\n"),
            &format!(
                "[collector]\nwindow = \"1s\"\npublic_url = \"https://obs.example.com/\"\n\
                 [channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\
                 [channel_aliases]\nslack = \"hook\"\nemail = \"hook\"\n[rules]\npacks = [\"errors\"]\n",
                hook.url("/hook")
            ),
        );
        let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("config");
        let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
        let base = format!("http://127.0.0.1:{port}");
        let (stop, task) = support::serve(agent, &base).await;
        let c = reqwest::Client::new();

        let post = async |message: &str, release: &str, user: &str| {
            let t = thorbis_obs_server::agent::system_now().0;
            let body = format!(
                r#"{{"v":1,"service":"shop","env":"production","version":"{release}","session":{{"id":"s-{user}","sampled":true,"startedAt":{t},"sampleRate":100}},
"view":{{"id":"v-{user}","url":"https://shop.example/pay","route":"/pay"}},"sentAt":{t},
"events":[{{"type":"error","at":{t},"kind":"error","message":"{message}","stack":"{message}\n    at pay (https://shop.example/app.js:1:5)","count":1,"tags":{{"userId":"{user}","industry":"hs"}}}}]}}"#
            );
            let r = c
                .post(format!("{base}/v1/rum"))
                .header("Content-Type", "text/plain;charset=UTF-8")
                .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap_or_default());
        };
        let alerts = |name: &str| {
            got.lock()
                .expect("lock")
                .iter()
                .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
                .filter(|a| a["labels"]["alertname"] == name)
                .collect::<Vec<_>>()
        };
        let issue = async |fp: &str| -> serde_json::Value {
            let r = c.get(format!("{base}/api/v1/rum/errors/{fp}")).send().await.expect("get");
            if r.status().as_u16() == 404 {
                return serde_json::Value::Null;
            }
            r.json::<serde_json::Value>().await.expect("json")["issue"].clone()
        };
        let set = async |fp: &str, body: serde_json::Value, token: Option<&str>| {
            let mut r = c.post(format!("{base}/api/v1/rum/errors/{fp}/status")).json(&body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.expect("post");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        };

        // A new group in production: paged once, with its release, users and link.
        post("Error: card declined", "1.0.0", "u-1").await;
        post("Error: card declined", "1.0.0", "u-2").await;
        support::eventually("the new group's page", Duration::from_secs(30), async || {
            !alerts("Newerrorgroup").is_empty()
        })
        .await;
        let new = &alerts("Newerrorgroup")[0];
        let fp = new["labels"]["fingerprint"].as_str().expect("fingerprint").to_string();
        assert_eq!(new["labels"]["release"], "1.0.0");
        assert_eq!(new["annotations"]["summary"], "New error in shop 1.0.0: Error: card declined");
        let description = new["annotations"]["description"].as_str().unwrap_or("");
        assert!(
            description.ends_with(&format!("users affected: https://obs.example.com/errors/{fp}")),
            "{description}"
        );
        // The two errors may fall in two windows (1 s each): the page can come after the first.
        support::eventually("both errors in the book", Duration::from_secs(30), async || {
            issue(&fp).await["count"].as_u64() == Some(2)
        })
        .await;
        let life = issue(&fp).await;
        assert_eq!(
            (life["status"]["status"].as_str(), life["firstRelease"].as_str()),
            (Some("unresolved"), Some("1.0.0"))
        );
        assert_eq!((life["count"].as_u64(), life["users"].as_u64()), (Some(2), Some(2)), "{life}");
        assert_eq!(life["breakdown"]["browser"]["Firefox"], 2, "{life}");
        assert_eq!(life["breakdown"]["industry"]["hs"], 2, "{life}");
        let page = c.get(format!("{base}/errors/{fp}")).send().await.expect("page").text().await.expect("text");
        assert!(
            page.contains("Status: <strong>unresolved</strong>") && page.contains("Resolve in next release"),
            "{page}"
        );

        // Status changes need the token and a body that says what.
        assert_eq!(set(&fp, serde_json::json!({ "status": "resolved" }), None).await.0, 401);
        let (code, text) = set(&fp, serde_json::json!({ "status": "fixed" }), Some(TOKEN)).await;
        assert!(code == 400 && text.contains("resolvedInNextRelease"), "{code} {text}");
        let (code, text) = set("0123456789abcdef", serde_json::json!({ "status": "resolved" }), Some(TOKEN)).await;
        assert!(code == 404 && text.contains("no error group"), "{code} {text}");
        let (code, text) = set(&fp, serde_json::json!({ "status": "resolved" }), Some(TOKEN)).await;
        assert_eq!(code, 200, "{text}");
        assert_eq!(issue(&fp).await["status"]["status"], "resolved");

        // Seen again in a newer release: one regression, however many events follow.
        post("Error: card declined", "1.1.0", "u-3").await;
        support::eventually("the regression", Duration::from_secs(30), async || !alerts("Errorregression").is_empty())
            .await;
        post("Error: card declined", "1.1.0", "u-4").await;
        support::eventually("the next event counted", Duration::from_secs(30), async || {
            issue(&fp).await["count"].as_u64() == Some(4)
        })
        .await;
        let regressions = alerts("Errorregression");
        assert_eq!(regressions.len(), 1, "{regressions:?}");
        assert_eq!(regressions[0]["labels"]["release"], "1.1.0");
        let life = issue(&fp).await;
        assert_eq!(
            (life["lastRelease"].as_str(), life["status"]["status"].as_str()),
            (Some("1.1.0"), Some("unresolved"))
        );

        // Ignored until 3 more events: quiet through two, back at the third.
        let (code, text) = set(&fp, serde_json::json!({ "status": "ignored", "count": 3 }), Some(TOKEN)).await;
        assert_eq!(code, 200, "{text}");
        for (n, user) in [(5, "u-5"), (6, "u-6")] {
            post("Error: card declined", "1.1.0", user).await;
            support::eventually("the event counted", Duration::from_secs(30), async || {
                issue(&fp).await["count"].as_u64() == Some(n)
            })
            .await;
            assert_eq!(issue(&fp).await["status"]["status"], "ignored", "{n} events: still ignored");
        }
        post("Error: card declined", "1.1.0", "u-7").await;
        support::eventually("the ignore's end", Duration::from_secs(30), async || {
            !alerts("Ignorederrorgrouppasseditslimit").is_empty()
        })
        .await;
        assert_eq!(issue(&fp).await["status"]["status"], "unresolved");
        assert_eq!(alerts("Newerrorgroup").len(), 1, "the new group was paged once");
        assert!(got.lock().expect("lock").iter().all(|b| b["status"] == "firing"), "no resolved messages for events");

        // The audit trail has who did it.
        let audit: serde_json::Value = c
            .get(format!("{base}/api/v1/audit?action=error.status"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("json");
        let entries = audit["records"].as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len(), 2, "{audit}");
        assert!(entries.iter().all(|e| e["who"] == "api_token" && e["target"] == fp.as_str()), "{audit}");
        let (code, text) = set(&fp, serde_json::json!({ "status": "resolvedInNextRelease" }), Some(TOKEN)).await;
        assert_eq!(code, 200, "{text}");
        let _ = stop.send(());
        task.await.expect("join").expect("agent");

        // A restart keeps the book: figures, releases, status.
        let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
        let (stop, task) = support::serve(agent, &base).await;
        let life = issue(&fp).await;
        assert_eq!(life["status"]["inNextReleaseAfter"], "1.1.0", "{life}");
        assert_eq!((life["count"].as_u64(), life["users"].as_u64()), (Some(7), Some(7)), "{life}");
        assert_eq!(life["firstRelease"], "1.0.0");
        let page = c.get(format!("{base}/errors/{fp}")).send().await.expect("page").text().await.expect("text");
        assert!(page.contains("resolved in the release after 1.1.0"), "{page}");
        let _ = stop.send(());
        task.await.expect("join").expect("agent");
        drop(hook);
    }
}
