//! Two listeners and read authentication, through an agent built from a config file: the
//! public listener serves ingest and `/healthz` only (the business numbers are 404 there); the
//! admin listener serves everything, its pages and APIs behind `http.auth` (viewer tokens read
//! but do not write, the API token does both, a trusted proxy's user reads), ingest and the
//! health probes without credentials; an admin listener off loopback without `http.auth` is
//! refused with a message that says what to do. Module `sign_in`: the login form, the session
//! cookie, CSRF and signing proxies in headless Chromium.
#![cfg(feature = "collector")]

mod support;

use std::time::Duration;

const API_TOKEN: &str = "admin-token-for-the-listener-test";
const VIEWER: &str = "viewer-token-for-the-listener-test";

fn beacon() -> String {
    let t = thorbis_obs_server::agent::system_now().0;
    format!(
        r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-1","sampled":true,"startedAt":{t},"sampleRate":100}},
"view":{{"id":"v-1","url":"https://app.example/orders","route":"/orders"}},"sentAt":{t},
"events":[{{"type":"vital","at":{t},"name":"LCP","value":1200,"rating":"good","id":"m-1"}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_public_and_the_rest_needs_credentials() {
    let dir = tempfile::tempdir().expect("tmp");
    let (admin_port, public_port) = (support::agent::free_port(), support::agent::free_port());
    let config = support::agent::config_file(
        dir.path(),
        admin_port,
        &format!(
            "api_token = \"{API_TOKEN}\"\n[http.public]\nlisten = \"127.0.0.1:{public_port}\"\n\
             [http.auth]\nviewer_tokens = [\"{VIEWER}\"]\ntrusted_proxies = [\"127.0.0.1\"]\n"
        ),
        "[collector]\nwindow = \"2s\"\n",
    );
    let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("a valid config");
    let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
    let admin = format!("http://127.0.0.1:{admin_port}");
    let public = format!("http://127.0.0.1:{public_port}");
    let (stop, task) = support::serve(agent, &admin).await;
    let c = reqwest::Client::new();
    let get = |url: String, token: Option<&'static str>, user: Option<&'static str>| {
        let c = c.clone();
        async move {
            let mut r = c.get(url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(u) = user {
                r = r.header("X-Forwarded-User", u);
            }
            let r = r.send().await.expect("get");
            let auth = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_string());
            (r.status().as_u16(), auth, r.text().await.unwrap_or_default())
        }
    };
    let post_rum = |base: String| {
        let c = c.clone();
        async move {
            c.post(format!("{base}/v1/rum"))
                .header("Content-Type", "text/plain;charset=UTF-8")
                .body(beacon())
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    support::eventually("the public listener answers", Duration::from_secs(10), async || {
        c.get(format!("{public}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;

    // The public listener: ingest and health only.
    assert_eq!(post_rum(public.clone()).await, 202);
    for path in ["/api/v1/summary", "/metrics", "/api/v1/rum/errors", "/", "/api/v1/alerts", "/readyz"] {
        let (status, _, _) = get(format!("{public}{path}"), Some(API_TOKEN), None).await;
        assert_eq!(status, 404, "{path} is not on the public listener");
    }
    let (status, _, _) = get(format!("{public}/healthz"), None, None).await;
    assert_eq!(status, 200);

    // The admin listener: reads need credentials.
    for path in ["/api/v1/summary", "/metrics", "/api/v1/rum/errors", "/api/v1/alerts", "/"] {
        let (status, auth, body) = get(format!("{admin}{path}"), None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(auth.as_deref(), Some("Bearer realm=\"thorbis-obs\""));
        assert!(body.contains("needs credentials"), "{body}");
        assert_eq!(get(format!("{admin}{path}"), Some(VIEWER), None).await.0, 200, "{path} for a viewer");
        assert_eq!(get(format!("{admin}{path}"), Some(API_TOKEN), None).await.0, 200, "{path} for the admin");
        assert_eq!(get(format!("{admin}{path}"), None, Some("alice")).await.0, 200, "{path} for a proxy's user");
    }
    let (status, _, _) = get(format!("{admin}/api/v1/summary"), Some("not-a-token-we-know-of"), None).await;
    assert_eq!(status, 401);
    // Health probes and ingest carry no credentials on the admin listener either.
    assert_eq!(get(format!("{admin}/healthz"), None, None).await.0, 200);
    assert_ne!(get(format!("{admin}/readyz"), None, None).await.0, 401);
    assert_eq!(post_rum(admin.clone()).await, 202, "a beacon on the admin listener is taken");
    // Writes need the admin role.
    let suppress = |token: &'static str| {
        let c = c.clone();
        let admin = admin.clone();
        async move {
            let r = c
                .post(format!("{admin}/api/v1/suppressions"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "5m" }))
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (status, body) = suppress(VIEWER).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("viewer_tokens[0] may read but not write"), "{body}");
    let (status, body) = suppress(API_TOKEN).await;
    assert!((200..300).contains(&status), "the admin writes: {status} {body}");

    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}

#[test]
fn an_admin_listener_off_loopback_needs_read_authentication() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[http]\nlisten = \"0.0.0.0:9464\"\n").expect("write");
    let err = thorbis_obs_server::config::LoadedConfig::from_file(&path).map(|_| ()).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("http.listen"), "{text}");
    assert!(text.contains("0.0.0.0:9464 is not a loopback address"), "{text}");
    assert!(text.contains("set http.auth (viewer_tokens or trusted_proxies) first"), "{text}");
    // With read authentication it is accepted.
    std::fs::write(
        &path,
        "[http]\nlisten = \"0.0.0.0:9464\"\n[http.auth]\nviewer_tokens = [\"a-viewer-token-long-enough\"]\n",
    )
    .expect("write");
    thorbis_obs_server::config::LoadedConfig::from_file(&path).expect("accepted with http.auth");
    // The library's builder refuses it too.
    let b = thorbis_obs_server::agent::Agent::builder()
        .store(std::sync::Arc::new(
            thorbis_obs_server::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).expect("store"),
        ))
        .http("0.0.0.0:9464".parse().expect("addr"), None);
    let e = b.build().map(|_| ()).expect_err("refused");
    assert!(e.to_string().contains("not a loopback address"), "{e}");
}

#[cfg(all(feature = "synthetic", feature = "webhook"))]
mod sign_in {
    //! Signing in to the admin side in a real headless Chromium (chromedriver, WebDriver): a page
    //! asked for without credentials goes to the login form; a wrong password is refused; the right
    //! one sets an HttpOnly, SameSite=Strict session cookie and shows the board; a write from the
    //! page needs the session's CSRF token (without it 403, with it the silence is made and the
    //! audit trail names the user); a form on another port of the same host that posts to the
    //! agent (the browser sends the cookie: same site) is refused; signing out ends the session.
    //! The same browser then reaches the board through a reverse proxy that names its user (a
    //! viewer) and through one that adds a viewer token: the board and its widgets load, a write
    //! from the page is refused.
    //! Beside the browser: a viewer user may not write, a trusted proxy's admin may (and the board's
    //! alerts table names them), and the audit trail (API and page) lists who did what from where.

    use super::support;
    use fantoccini::{Client, ClientBuilder, Locator};
    use std::time::Duration;
    use support::web::{Reply, WebServer};

    const API_TOKEN: &str = "admin-token-for-the-sign-in-test";
    const VIEWER_TOKEN: &str = "viewer-token-for-the-sign-in-test";

    /// A reverse proxy on loopback in front of `upstream` that adds `header` to every request, as
    /// an SSO proxy (oauth2-proxy, a load balancer) does for the browser behind it.
    async fn signing_proxy(upstream: String, header: (&'static str, String)) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (client, upstream, header) = (client.clone(), upstream.clone(), header.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let mut out = client.request(parts.method.clone(), format!("{upstream}{path}")).body(body);
                for (k, v) in &parts.headers {
                    if k != "host" && k != "cookie" {
                        out = out.header(k, v);
                    }
                }
                let r = out.header(header.0, header.1).send().await.expect("upstream");
                let mut back = axum::http::Response::builder().status(r.status());
                for (k, v) in r.headers() {
                    back = back.header(k, v);
                }
                back.body(axum::body::Body::from(r.bytes().await.unwrap_or_default())).expect("response")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy") });
        format!("http://{addr}")
    }

    /// chromedriver on a free port, killed when dropped.
    struct Driver(std::process::Child, String);

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn browser() -> (Driver, Client) {
        let port = support::agent::free_port();
        let child = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test.sh installs Debian's chromium-driver)");
        let driver = Driver(child, format!("http://127.0.0.1:{port}"));
        support::eventually("chromedriver answers", Duration::from_secs(15), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        let profile = tempfile::tempdir().expect("profile").keep();
        let mut args: Vec<String> =
            thorbis_obs_server::synthetic::webdriver::CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.1)
            .await
            .expect("a WebDriver session");
        (driver, client)
    }

    async fn path_of(c: &Client) -> String {
        let u = c.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    async fn wait_path(c: &Client, want: &str) {
        support::eventually(&format!("the browser at {want}"), Duration::from_secs(20), async || {
            path_of(c).await.starts_with(want)
        })
        .await;
    }

    async fn sign_in(c: &Client, user: &str, password: &str) {
        c.find(Locator::Css("input[name=user]")).await.expect("user field").send_keys(user).await.expect("type");
        c.find(Locator::Css("input[name=password]"))
            .await
            .expect("password field")
            .send_keys(password)
            .await
            .expect("type");
        c.find(Locator::Css("button[type=submit]")).await.expect("button").click().await.expect("click");
    }

    /// `url`'s JSON, asked with the API token.
    async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
        c.get(url).bearer_auth(API_TOKEN).send().await.expect("get").json().await.expect("json")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sign_in_see_a_board_csrf_and_sign_out_in_chromium() {
        let ana = thorbis_obs_server::api::auth::hash_password("ana's long password").expect("hash");
        let bo = thorbis_obs_server::api::auth::hash_password("bo's long password").expect("hash");
        let dir = tempfile::tempdir().expect("tmp");
        let port = support::agent::free_port();
        let (_hook_server, hook_seen) = support::web::json_sink().await;
        let config = support::agent::config_file(
            dir.path(),
            port,
            &format!(
                "api_token = \"{API_TOKEN}\"\n[http.auth]\nviewer_tokens = [\"{VIEWER_TOKEN}\"]\ntrusted_proxies = [\"127.0.0.1\"]\nproxy_admins = [\"root\"]\n\
                 [[http.auth.users]]\nname = \"ana\"\npassword_hash = \"{ana}\"\nrole = \"admin\"\n\
                 [[http.auth.users]]\nname = \"bo\"\npassword_hash = \"{bo}\"\n"
            ),
            &format!(
                "[channels.hook]\ntype = \"webhook\"\nurl = \"{}\"\n{}",
                _hook_server.url("/hook"),
                support::agent::orders_failing_rule("1m")
            ),
        );
        let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&config).expect("a valid config");
        let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await.expect("agent");
        let base = format!("http://127.0.0.1:{port}");
        let (stop, task) = support::serve(agent, &base).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        // An alert to acknowledge.
        support::eventually("the alert fires", Duration::from_secs(20), async || {
            let _ = http
                .post(format!("{base}/api/v1/samples"))
                .bearer_auth(API_TOKEN)
                .json(&serde_json::json!([{ "name": "orders_failed", "value": 12.0 }]))
                .send()
                .await;
            !hook_seen.lock().expect("lock").is_empty()
        })
        .await;
        let alerts = get_json(&http, &format!("{base}/api/v1/alerts")).await;
        let fingerprint = alerts["alerts"][0]["fingerprint"].as_str().expect("a fingerprint").to_string();

        let (_driver, c) = browser().await;
        // Not signed in: the board sends the browser to the login form, and back after it.
        c.goto(&format!("{base}/")).await.expect("goto");
        wait_path(&c, "/login?next=/").await;
        sign_in(&c, "ana", "not her password").await;
        support::eventually("the refusal", Duration::from_secs(20), async || {
            c.source().await.is_ok_and(|s| s.contains("Wrong user name or password."))
        })
        .await;
        assert!(c.get_named_cookie("thorbis_session").await.is_err(), "no session after a wrong password");
        sign_in(&c, "ana", "ana's long password").await;
        support::eventually("the board", Duration::from_secs(20), async || {
            path_of(&c).await == "/" && c.source().await.is_ok_and(|s| s.contains("Operations"))
        })
        .await;
        let cookie = c.get_named_cookie("thorbis_session").await.expect("the session cookie");
        assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
        assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)", "{cookie:?}");
        assert_eq!(
            cookie.secure(),
            Some(false),
            "plain HTTP on loopback, no proxy saying https: not Secure: {cookie:?}"
        );
        let session_id = cookie.value().to_string();

        // A write from the page: refused without the CSRF token, made with it.
        let silence = r#"JSON.stringify({matchers: ['alertname=~"Orders.*"'], duration: '1h', comment: 'deploy'})"#;
        let without: serde_json::Value = c
            .execute(
                &format!(
                    "return fetch('/api/v1/silences', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: {silence}}})\
                     .then(async r => [r.status, await r.text()])"
                ),
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(without[0], 403, "{without}");
        assert!(without[1].as_str().unwrap_or("").contains("X-CSRF-Token"), "{without}");
        let with: serde_json::Value = c
            .execute(
                &format!(
                    "return fetch('/api/v1/session').then(r => r.json()).then(s => fetch('/api/v1/silences', {{method: 'POST', \
                     headers: {{'content-type': 'application/json', 'x-csrf-token': s.csrf}}, body: {silence}}}))\
                     .then(async r => [r.status, await r.json()])"
                ),
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(with[0], 200, "{with}");
        let silence_id = with[1]["id"].as_str().expect("an id").to_string();

        // Another origin on the same host (the cookie goes along: same site) posts a form to the
        // agent: refused, nothing acknowledged.
        let target = format!("{base}/api/v1/alerts/{fingerprint}/ack");
        let evil = WebServer::start(move |_| {
            Reply::html(&format!(
                "<form id=f method=post action=\"{target}\"><input name=by value=mallory></form>\
                 <script>document.getElementById('f').submit()</script>"
            ))
        })
        .await;
        c.goto(&evil.url("/")).await.expect("goto");
        support::eventually("the agent's refusal", Duration::from_secs(20), async || {
            c.source().await.is_ok_and(|s| s.contains("cross-site request refused"))
        })
        .await;
        let alerts = get_json(&http, &format!("{base}/api/v1/alerts")).await;
        assert!(alerts["alerts"][0]["acknowledged"].is_null(), "the forged form acknowledged nothing: {alerts}");

        // The audit page, signed in.
        c.goto(&format!("{base}/audit")).await.expect("goto");
        let page = c.source().await.expect("source");
        assert!(page.contains("silence.create") && page.contains(&silence_id) && page.contains(">ana<"), "{page}");

        // Sign out: the session ends; the board asks for the login again; the old cookie is nobody.
        c.goto(&format!("{base}/logout")).await.expect("goto");
        c.find(Locator::Css("button[type=submit]")).await.expect("sign-out button").click().await.expect("click");
        wait_path(&c, "/login").await;
        c.goto(&format!("{base}/")).await.expect("goto");
        wait_path(&c, "/login?next=/").await;
        let old = http
            .get(format!("{base}/api/v1/summary"))
            .header("cookie", format!("thorbis_session={session_id}"))
            .send()
            .await
            .expect("get");
        assert_eq!(old.status(), 401, "a signed-out session is nobody");

        // A viewer user signs in (no browser needed) and may read, not write.
        let login = http
            .post(format!("{base}/login"))
            .form(&[("user", "bo"), ("password", "bo's long password"), ("next", "/audit")])
            .send()
            .await
            .expect("login");
        assert_eq!((login.status().as_u16(), login.headers()["location"].to_str().expect("loc")), (303, "/audit"));
        let set = login.headers()["set-cookie"].to_str().expect("cookie").to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        let bo_cookie = set.split(';').next().expect("pair").to_string();
        let session: serde_json::Value = http
            .get(format!("{base}/api/v1/session"))
            .header("cookie", &bo_cookie)
            .send()
            .await
            .expect("s")
            .json()
            .await
            .expect("j");
        assert_eq!(session["role"], "viewer");
        let read = http.get(format!("{base}/api/v1/alerts")).header("cookie", &bo_cookie).send().await.expect("get");
        assert_eq!(read.status(), 200);
        let write = http
            .post(format!("{base}/api/v1/alerts/{fingerprint}/ack"))
            .header("cookie", &bo_cookie)
            .header("x-csrf-token", session["csrf"].as_str().expect("csrf"))
            .send()
            .await
            .expect("post");
        assert_eq!(write.status(), 403, "a viewer may not write");
        // Behind a proxy the cookie is Secure.
        let login = http
            .post(format!("{base}/login"))
            .header("x-forwarded-proto", "https")
            .form(&[("user", "bo"), ("password", "bo's long password")])
            .send()
            .await
            .expect("login");
        assert!(login.headers()["set-cookie"].to_str().expect("cookie").contains("; Secure"));

        // The proxy's admin acknowledges; the proxy's other users only read.
        let by_proxy = |user: &'static str| {
            http.post(format!("{base}/api/v1/alerts/{fingerprint}/ack")).header("x-forwarded-user", user).send()
        };
        assert_eq!(by_proxy("carol").await.expect("post").status(), 403);
        assert_eq!(by_proxy("root").await.expect("post").status(), 200);
        // The board's alerts table says who acknowledged (polled: CI once read it between the
        // silences' reload from the store and the next evaluation, without `muted`).
        support::eventually("the acknowledged, muted alert on the board", Duration::from_secs(10), async || {
            let widget = get_json(&http, &format!("{base}/api/v1/widgets/active-alerts")).await;
            widget.to_string().contains("firing (muted, acknowledged by root)")
        })
        .await;
        // The same browser behind a proxy that signs its user in (a viewer), and behind one that
        // adds a viewer token: the board, its widgets loaded; a write from the page refused.
        let as_carol = signing_proxy(base.clone(), ("x-forwarded-user", "carol".to_string())).await;
        let with_token = signing_proxy(base.clone(), ("authorization", format!("Bearer {VIEWER_TOKEN}"))).await;
        for front in [as_carol, with_token] {
            c.goto(&format!("{front}/")).await.expect("goto");
            support::eventually("the board through the proxy", Duration::from_secs(20), async || {
                c.source()
                    .await
                    .is_ok_and(|s| s.contains("Operations") && s.contains("firing (muted, acknowledged by root)"))
            })
            .await;
            assert_eq!(path_of(&c).await, "/", "no detour to the login form");
            let write: serde_json::Value = c
                .execute(
                    &format!("return fetch('/api/v1/alerts/{fingerprint}/ack', {{method: 'POST'}}).then(async r => [r.status, await r.text()])"),
                    vec![],
                )
                .await
                .expect("script");
            assert_eq!(write[0], 403, "{write}");
            assert!(write[1].as_str().unwrap_or("").contains("may read but not write"), "{write}");
        }
        c.close().await.expect("close");
        // A suppression switched on with the API token.
        let r = http
            .post(format!("{base}/api/v1/suppressions"))
            .bearer_auth(API_TOKEN)
            .json(&serde_json::json!({ "condition": "deployment_in_progress", "duration": "10m" }))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);

        // The audit trail: who did what to which target, from where.
        let records =
            get_json(&http, &format!("{base}/api/v1/audit")).await["records"].as_array().cloned().unwrap_or_default();
        let seen: Vec<(String, String, String, String)> = records
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                (s("who"), s("action"), s("target"), s("from"))
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "api_token".to_string(),
                    "suppression.activate".to_string(),
                    "deployment_in_progress".to_string(),
                    "127.0.0.1".to_string()
                ),
                ("root".to_string(), "alert.ack".to_string(), fingerprint.clone(), "127.0.0.1".to_string()),
                ("ana".to_string(), "silence.create".to_string(), silence_id.clone(), "127.0.0.1".to_string()),
            ],
            "newest first, and nothing from the refused writes"
        );
        assert_eq!(records[0]["detail"]["duration"], "10m");
        assert_eq!(records[2]["detail"]["comment"], "deploy");
        let _ = stop.send(());
        task.await.expect("join").expect("agent");
    }
}
