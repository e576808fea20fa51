//! The cost of read authentication on the admin side: the same requests to two agents in this
//! process, one with reads open (loopback, no `http.auth`) and one behind `http.auth`, asked in
//! turn over kept-alive connections: the default board (`GET /`, rendered) and a small API
//! (`GET /api/v1/rules`), with no credentials (open agent), a viewer bearer token, a sign-in
//! session cookie and a trusted proxy's user header; medians and the ratio to the open agent.
//! Then the price of a sign-in (`POST /login`: one argon2id check at the crate's default cost).
//!
//! `cargo run --release -p thorbis-obs-server --example auth_bench` (or `bash scripts/bench-auth.sh`).

use std::time::Instant;

const VIEWER: &str = "viewer-token-for-the-benchmark";
const PASSWORD: &str = "a password for the benchmark";

/// A variant: its name, the agent asked, and the credential header it sends.
type Variant<'a> = (&'a str, &'a str, Option<(&'a str, String)>);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start(dir: &std::path::Path, name: &str, http_extra: &str) -> Result<String, Box<dyn std::error::Error>> {
    let port = free_port()?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[agent]\ndata_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n{http_extra}",
            dir.join(name).display()
        ),
    )?;
    let loaded = thorbis_obs_server::config::LoadedConfig::from_file(&path)?;
    let agent = thorbis_obs_server::agent::agent_from_config(&loaded).await?;
    tokio::spawn(agent.run(std::future::pending()));
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return Ok(base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("{name} did not start").into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let hash = thorbis_obs_server::api::auth::hash_password(PASSWORD)?;
    let open = start(dir.path(), "open", "").await?;
    let gated = start(
        dir.path(),
        "gated",
        &format!(
            "[http.auth]\nviewer_tokens = [\"{VIEWER}\"]\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [[http.auth.users]]\nname = \"ana\"\npassword_hash = \"{hash}\"\n"
        ),
    )
    .await?;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let login = client.post(format!("{gated}/login")).form(&[("user", "ana"), ("password", PASSWORD)]).send().await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_string();
    let variants: [Variant<'_>; 4] = [
        ("open (no http.auth)", &open, None),
        ("viewer token", &gated, Some(("authorization", format!("Bearer {VIEWER}")))),
        ("session cookie", &gated, Some(("cookie", cookie.clone()))),
        ("proxy user header", &gated, Some(("x-forwarded-user", "ana".to_string()))),
    ];
    for (path, n) in [("/", 100), ("/api/v1/rules", 400)] {
        let mut times = vec![Vec::with_capacity(n); variants.len()];
        for round in 0..n + 10 {
            for (i, (_, base, header)) in variants.iter().enumerate() {
                let mut req = client.get(format!("{base}{path}"));
                if let Some((k, v)) = header {
                    req = req.header(*k, v);
                }
                let t = Instant::now();
                let r = req.send().await?;
                let status = r.status();
                let _ = r.bytes().await?;
                let us = t.elapsed().as_secs_f64() * 1e6;
                if status != 200 {
                    return Err(format!("{path} with {}: {status}", variants[i].0).into());
                }
                if round >= 10 {
                    times[i].push(us); // the first ten rounds warm up
                }
            }
        }
        let base = median(times[0].clone());
        println!("GET {path}: {n} rounds, the four in turn each round");
        for (i, (name, _, _)) in variants.iter().enumerate() {
            let m = median(times[i].clone());
            println!("  {name:<20} median {m:>8.1} us  ratio {:.3}  (+{:.1} us)", m / base, m - base);
        }
    }
    let mut sign_in = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = client.post(format!("{gated}/login")).form(&[("user", "ana"), ("password", PASSWORD)]).send().await?;
        if r.status() != 303 {
            return Err(format!("sign-in: {}", r.status()).into());
        }
        sign_in.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("POST /login (argon2id, m=19 MiB, t=2): 20 sign-ins, median {:.1} ms", median(sign_in));
    Ok(())
}
