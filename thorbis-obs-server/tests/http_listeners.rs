//! Two listeners and read authentication, through an agent built from a config file: the
//! public listener serves ingest and `/healthz` only (the business numbers are 404 there); the
//! admin listener serves everything, its pages and APIs behind `http.auth` (viewer tokens read
//! but do not write, the API token does both, a trusted proxy's user reads), ingest and the
//! health probes without credentials; an admin listener off loopback without `http.auth` is
//! refused with a message that says what to do.
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
