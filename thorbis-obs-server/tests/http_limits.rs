//! The listener as a hostile client meets it: slow and idle connections closed by the header
//! timeout, the connection cap, the `Host` check, credentials checked before a body is read,
//! body limits, and samples from the future refused. An in-process agent on loopback.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thorbis_obs_server::agent::HttpLimits;
use thorbis_obs_server::config::Secret;
use thorbis_obs_server::store::sqlite::SqliteStore;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), thorbis_obs_server::agent::AgentError>>,
    _dir: tempfile::TempDir,
}

async fn start(limits: HttpLimits) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let agent = support::quiet_agent(Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("opens")))
        .http(addr, Some(Secret::new("s3cret")))
        .http_limits(limits)
        .max_sample_skew(Duration::from_secs(60))
        .build()
        .expect("valid");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = rx.await;
    }));
    // No pooled connection left behind to hold one of the listener's slots.
    let c = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    support::eventually("the server to come up", Duration::from_secs(30), async || {
        c.get(format!("http://{addr}/healthz")).send().await.is_ok()
    })
    .await;
    Running { addr, stop, task, _dir: dir }
}

/// Reads until the server closes the connection (Ok) or `limit` passes (Err), on a blocking
/// socket in a blocking thread.
async fn closed_within(mut s: TcpStream, limit: Duration) -> Result<Duration, String> {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(started.elapsed()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => return Ok(started.elapsed()),
                Err(e) => return Err(format!("still open after {limit:?}: {e}")),
            }
        }
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_by_the_header_timeout() {
    let timeout = Duration::from_millis(800);
    let a = start(HttpLimits { header_read_timeout: timeout, ..HttpLimits::default() }).await;
    // Slowloris: a request line and one header, then nothing.
    let mut slow = TcpStream::connect(a.addr).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("write");
    // Idle: a whole request on a keep-alive connection, then silence.
    let mut idle = TcpStream::connect(a.addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).expect("answered");
    assert_eq!(&first, b"HTTP/1.1 200");
    // Silent: connects and never writes.
    let silent = TcpStream::connect(a.addr).expect("connect");
    for (what, s) in [("slowloris", slow), ("idle keep-alive", idle), ("silent", silent)] {
        let took = closed_within(s, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(took < Duration::from_secs(20), "{what}");
    }
    let _ = a.stop.send(());
    a.task.await.expect("join").expect("agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_closes_new_connections_and_counts_them() {
    let a =
        start(HttpLimits { header_read_timeout: Duration::from_secs(2), max_connections: 3, ..HttpLimits::default() })
            .await;
    // Open keep-alive connections, each answered once and then held, until one is closed
    // without an answer: the cap (the start-up probe's closing connection may still count).
    let addr = a.addr;
    let held = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        loop {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            let mut head = [0u8; 12];
            match s.read_exact(&mut head) {
                Ok(()) if &head == b"HTTP/1.1 200" => held.push(s),
                _ => break held,
            }
            assert!(held.len() <= 3, "more than max_connections were served at once");
        }
    })
    .await
    .expect("join");
    assert!(held.len() >= 2, "{} held", held.len());
    drop(held);
    // Once the held ones time out the agent answers again, and counted what it refused.
    let c = reqwest::Client::new();
    let url = format!("http://{}/metrics", a.addr);
    let mut text = String::new();
    support::eventually("the agent to answer again", Duration::from_secs(30), async || {
        match c.get(&url).send().await {
            Ok(r) => {
                text = r.text().await.unwrap_or_default();
                true
            }
            Err(_) => false,
        }
    })
    .await;
    let refused = text
        .lines()
        .find_map(|l| l.strip_prefix("thorbis_http_connections_refused_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("the counter is exposed");
    assert!(refused >= 1.0, "{text}");
    let _ = a.stop.send(());
    a.task.await.expect("join").expect("agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_host_are_refused() {
    let a = start(HttpLimits::default()).await;
    let c = reqwest::Client::new();
    let ok = c.get(format!("http://{}/api/v1/alerts", a.addr)).send().await.expect("get");
    assert_eq!(ok.status(), 200);
    // What a page on evil.example reaches after rebinding its name to 127.0.0.1.
    let rebound = c
        .get(format!("http://{}/api/v1/alerts", a.addr))
        .header("host", "evil.example:9464")
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status(), 421);
    assert!(rebound.text().await.expect("text").contains("evil.example"));
    let local = c.get(format!("http://{}/healthz", a.addr)).header("host", "localhost:1").send().await.expect("get");
    assert_eq!(local.status(), 200);
    let _ = a.stop.send(());
    a.task.await.expect("join").expect("agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_before_the_body_and_bodies_are_bounded() {
    let a = start(HttpLimits::default()).await;
    // A body announced at 100 MB that never comes: without a token the answer is 401 at once,
    // not after the body (nothing of it is read).
    let mut s = TcpStream::connect(a.addr).expect("connect");
    s.write_all(
        b"POST /api/v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n[",
    )
    .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("answered without the body");
    assert_eq!(&head, b"HTTP/1.1 401");
    let c = reqwest::Client::new();
    let url = format!("http://{}/api/v1/samples", a.addr);
    // With the token, a body over the endpoint's limit is 413 before it is read.
    let big = format!("[{}]", vec![r#"{"name":"m","value":1}"#; 20_000].join(","));
    let r = c.post(&url).bearer_auth("s3cret").body(big).send().await.expect("post");
    assert_eq!(r.status(), 413);
    // The body was not read, so the connection is not reused: the answer says so.
    assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
    // A sample from the future would poison its series: refused, naming the field.
    let future = thorbis_obs_server::agent::system_now().0 + 3_600_000;
    let body = serde_json::json!([
        { "name": "payment_failure_rate", "value": 0.1 },
        { "name": "payment_failure_rate", "value": 0.1, "timestamp": future },
    ]);
    let r = c.post(&url).bearer_auth("s3cret").json(&body).send().await.expect("post");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("[1].timestamp"));
    // And nothing of that batch was stored: a sample now still goes in.
    let r = c
        .post(&url)
        .bearer_auth("s3cret")
        .json(&serde_json::json!([{ "name": "payment_failure_rate", "value": 0.2 }]))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["accepted"], 1);
    let _ = a.stop.send(());
    a.task.await.expect("join").expect("agent");
}
