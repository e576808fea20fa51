//! TLS to PostgreSQL with libpq's `sslmode` settings, against a cluster of its own started by
//! the test from the throwaway cluster's binaries: TLS only (`hostssl` lines, no `host` line), a
//! CA and a server certificate for `localhost` made here, and a client-certificate user. Each
//! mode does what libpq's does, refusals name the host and what failed, and the store, the
//! probe and the agent binary say why a plain connection is refused.
#![cfg(feature = "postgres")]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by scripts/test.sh"))
}

fn sh(cmd: &str) {
    let ok = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("sh runs").success();
    assert!(ok, "failed: {cmd}");
}

/// A CA: its PEM and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("ca");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `names` (and common name `cn`) signed by `issuer`: (cert PEM, key PEM).
fn leaf(names: &[&str], cn: &str, issuer: &Issuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// The TLS-only cluster; stopped and removed when dropped.
struct TlsCluster {
    dir: String,
    port: u16,
    ctl: String,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} -D {} -m immediate -w stop >/dev/null 2>&1; rm -rf {}", self.ctl, self.dir, self.dir))
            .status();
    }
}

fn start_cluster(work: &Path, ca_pem: &str, server: &(String, String)) -> TlsCluster {
    let (bindir, tmp, as_pg) = (
        env("THORBIS_TEST_PG_BINDIR"),
        env("THORBIS_TEST_PG_TMP"),
        std::env::var("THORBIS_TEST_PG_AS").unwrap_or_default(),
    );
    let dir = format!("{tmp}/tls-{}", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    sh(&format!("{as_pg} {bindir}/initdb -D {dir} -U postgres -A trust --no-sync >/dev/null"));
    // The files go into the data directory, owned by the server's user, the key private.
    let staged = work.join("staged");
    std::fs::create_dir_all(&staged).expect("staged");
    std::fs::write(staged.join("server.crt"), &server.0).expect("crt");
    std::fs::write(staged.join("server.key"), &server.1).expect("key");
    std::fs::write(staged.join("ca.pem"), ca_pem).expect("ca");
    std::fs::write(
        staged.join("pg_hba.conf"),
        "local all all trust\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .expect("hba");
    let owner = if as_pg.is_empty() {
        String::new()
    } else {
        format!("chown postgres {dir}/server.* {dir}/ca.pem {dir}/pg_hba.conf; ")
    };
    sh(&format!("cp {}/* {dir}/ && {owner}chmod 600 {dir}/server.key", staged.display()));
    let ctl = format!("{as_pg} {bindir}/pg_ctl");
    sh(&format!(
        "{ctl} -D {dir} -l {dir}.log -w -o '-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c ssl=on \
         -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=ca.pem' start >/dev/null"
    ));
    TlsCluster { dir, port, ctl }
}

async fn connects(url: &str) -> Result<bool, String> {
    let client = thorbis_obs_server::pg::connect(url, "test").await.map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn every_sslmode_does_what_libpq_s_does() {
    let work = tempfile::tempdir().expect("tmp");
    let (ca_pem, issuer) = ca("thorbis test CA");
    let (other_pem, _) = ca("someone else's CA");
    let server = leaf(&["localhost"], "localhost", &issuer);
    let client_cert = leaf(&[], "certuser", &issuer);
    let cluster = start_cluster(work.path(), &ca_pem, &server);
    let p = cluster.port;
    let file = |name: &str, text: &str| {
        let path = work.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let (root, other) = (file("root.pem", &ca_pem), file("other.pem", &other_pem));
    let (cert, key) = (file("client.crt", &client_cert.0), file("client.key", &client_cert.1));
    let at = |host: &str, query: &str| format!("postgres://postgres@{host}:{p}/postgres?{query}");

    // require: encrypted, the certificate not checked.
    assert_eq!(connects(&at("127.0.0.1", "sslmode=require")).await, Ok(true));
    // prefer (the default, as libpq's): TLS when the server offers it.
    assert_eq!(connects(&format!("postgres://postgres@127.0.0.1:{p}/postgres")).await, Ok(true));
    // verify-full with the right root and the certificate's name.
    assert_eq!(connects(&at("localhost", &format!("sslmode=verify-full&sslrootcert={root}"))).await, Ok(true));
    // ... with another root: refused, saying so.
    let e = connects(&at("localhost", &format!("sslmode=verify-full&sslrootcert={other}"))).await.expect_err("refused");
    assert!(e.contains(&format!("localhost:{p}")) && e.contains("not signed by a trusted root"), "{e}");
    assert!(e.contains(&other), "names the root file: {e}");
    // ... with a host name the certificate does not name: refused; verify-ca does not check it.
    let e = connects(&at("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={root}"))).await.expect_err("refused");
    assert!(e.contains("not for the host name \"127.0.0.1\""), "{e}");
    assert_eq!(connects(&at("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={root}"))).await, Ok(true));
    // require with a root file checks the chain, as libpq does.
    let e = connects(&at("127.0.0.1", &format!("sslmode=require&sslrootcert={other}"))).await.expect_err("refused");
    assert!(e.contains("not signed by a trusted root"), "{e}");
    // A client certificate for the user the server authenticates by certificate.
    let certuser = format!("postgres://certuser@127.0.0.1:{p}/postgres?sslmode=require&sslcert={cert}&sslkey={key}");
    let created = thorbis_obs_server::pg::connect(&at("127.0.0.1", "sslmode=require"), "test").await.expect("admin");
    created
        .batch_execute("DO $$ BEGIN CREATE ROLE certuser LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        .await
        .expect("role");
    assert_eq!(connects(&certuser).await, Ok(true));
    let e =
        connects(&format!("postgres://certuser@127.0.0.1:{p}/postgres?sslmode=require")).await.expect_err("refused");
    assert!(e.contains("requires a valid client certificate (set sslcert and sslkey in the URL)"), "{e}");

    // A TLS-only server refuses plain connections, and every part says why.
    let plain = at("127.0.0.1", "sslmode=disable");
    let e = connects(&plain).await.expect_err("refused");
    assert!(e.contains("accepts only TLS connections: set sslmode=require"), "{e}");
    let store =
        thorbis_obs_server::store::postgres::PostgresStore::connect(&plain).await.map(|_| ()).expect_err("store");
    assert!(store.to_string().contains("accepts only TLS connections"), "{store}");
    let probe = thorbis_obs_server::sources::postgres::PostgresProbe::new(
        "db",
        &plain,
        Duration::from_secs(1),
        thorbis_obs_server::sources::postgres::ProbeSettings::default(),
    );
    let e = probe.collect_report(thorbis_obs_core::time::Timestamp(0)).await.map(|_| ()).expect_err("probe");
    assert!(e.to_string().contains("accepts only TLS connections"), "{e}");
    let config = work.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("[agent]\ndata_dir = \"{}\"\n[store]\nurl = \"{plain}\"\n", work.path().join("data").display()),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the agent does not start on a store it cannot reach");
    assert!(said.contains("accepts only TLS connections"), "{said}");
    // A server without TLS: prefer falls back to plain, require refuses and says why.
    let plain_server = env("THORBIS_TEST_PG_URL");
    assert_eq!(connects(&plain_server).await, Ok(false));
    let e = connects(&format!("{plain_server}?sslmode=require")).await.expect_err("refused");
    assert!(e.contains("does not offer TLS"), "{e}");
    // The URL may hold a password: never in what is said.
    let secret = format!("postgres://postgres:hunter2@127.0.0.1:{p}/postgres?sslmode=disable");
    let e = connects(&secret).await.expect_err("refused");
    assert!(!e.contains("hunter2"), "{e}");
    drop(cluster);
}
