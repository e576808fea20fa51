//! Signing in to the admin side in a real headless Chromium (chromedriver, WebDriver): a page
//! asked for without credentials goes to the login form; a wrong password is refused; the right
//! one sets an HttpOnly, SameSite=Strict session cookie and shows the board; a write from the
//! page needs the session's CSRF token (without it 403, with it the silence is made and the
//! audit trail names the user); a form on another port of the same host that posts to the
//! agent (the browser sends the cookie: same site) is refused; signing out ends the session.
//! Beside the browser: a viewer user may not write, a trusted proxy's admin may, and the audit
//! trail (API and page) lists who did what from where.
#![cfg(all(feature = "synthetic", feature = "webhook"))]

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use std::time::Duration;
use support::web::{Reply, WebServer};

const API_TOKEN: &str = "admin-token-for-the-sign-in-test";

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
            "api_token = \"{API_TOKEN}\"\n[http.auth]\ntrusted_proxies = [\"127.0.0.1\"]\nproxy_admins = [\"root\"]\n\
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
    assert_eq!(cookie.secure(), Some(false), "plain HTTP on loopback, no proxy saying https: not Secure: {cookie:?}");
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
    c.close().await.expect("close");

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
            ("root".to_string(), "alert.ack".to_string(), fingerprint.clone(), "127.0.0.1".to_string()),
            ("ana".to_string(), "silence.create".to_string(), silence_id.clone(), "127.0.0.1".to_string()),
        ],
        "newest first, and nothing from the refused writes"
    );
    assert_eq!(records[1]["detail"]["comment"], "deploy");
    let _ = stop.send(());
    task.await.expect("join").expect("agent");
}
