//! Connecting to PostgreSQL (feature `postgres`) the way libpq does, TLS included: the store,
//! the probe and the SQL widgets all connect through [`connect`].
//!
//! The URL (`postgres://user@host:5432/db?sslmode=verify-full&sslrootcert=/etc/ca.pem`, or the
//! `key=value` form) takes libpq's TLS settings with libpq's meaning:
//! - `sslmode`: `disable` (plain TCP), `allow` and `prefer` (TLS when the server offers it,
//!   else plain; the certificate is not checked: libpq's default is `prefer`, and so is ours),
//!   `require` (TLS or nothing; the certificate is not checked unless `sslrootcert` names a
//!   file, then as `verify-ca`, as libpq does), `verify-ca` (the certificate must chain to a
//!   trusted root), `verify-full` (and name the host connected to);
//! - `sslrootcert`: a PEM file of the roots to trust, or `system` for the system's roots (the
//!   default for `verify-ca` and `verify-full`, where libpq reads `~/.postgresql/root.crt`: we
//!   take the system's store, which is what managed services' certificates chain to);
//! - `sslcert` and `sslkey`: a client certificate and its key (PEM), for servers that ask.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and has no certificate checks
//! of its own, so those four settings are read here and taken out of the URL it sees; the
//! handshake is tokio-postgres-rustls's with a rustls config built from them (the verifier for
//! `verify-ca` is rustls's WebPKI one with the name check left out, the one for `require` checks
//! the handshake's signatures only). A failure says which host and what failed, never the URL
//! (it may hold a password).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::Client;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it (libpq tries plain first; we treat it as `prefer`).
    Allow,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or nothing; the certificate is checked only when `sslrootcert` names a file.
    Require,
    /// TLS with a certificate that chains to a trusted root.
    VerifyCa,
    /// TLS with a certificate that chains to a trusted root and names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, PgError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(PgError::Config(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Why a connection could not be made; never carries the URL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL or its TLS settings are wrong (a bad `sslmode`, an unreadable `sslrootcert`).
    #[error("{0}")]
    Config(String),
    /// The server could not be reached, refused the TLS settings, or refused the login.
    #[error("{0}")]
    Connect(String),
}

/// A URL split into what tokio-postgres reads and the TLS settings read here.
#[derive(Debug)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    mode: SslMode,
    root: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    host: String,
}

impl PgTarget {
    /// Reads `url` (see the module docs).
    pub fn parse(url: &str) -> Result<Self, PgError> {
        let (rest, tls) = split_tls_settings(url);
        let mut mode = SslMode::Prefer;
        let (mut root, mut cert, mut key) = (None, None, None);
        for (k, v) in tls {
            match k.as_str() {
                "sslmode" => mode = SslMode::parse(&v)?,
                "sslrootcert" => root = Some(v),
                "sslcert" => cert = Some(PathBuf::from(v)),
                _ => key = Some(PathBuf::from(v)),
            }
        }
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| PgError::Config(format!("the PostgreSQL URL does not parse: {e}")))?;
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(PgTarget { config, mode, root, cert, key, host: format!("{host}:{port}") })
    }

    /// The TLS mode in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The rustls config these settings ask for.
    fn tls_config(&self) -> Result<rustls::ClientConfig, PgError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // `require` with a root file checks like `verify-ca` (libpq).
        let root_file = self.root.as_deref().filter(|r| *r != "system");
        let (verify, check_name) = match self.mode {
            SslMode::VerifyFull => (true, true),
            SslMode::VerifyCa => (true, false),
            SslMode::Require => (root_file.is_some(), false),
            _ => (false, false),
        };
        let inner = if verify {
            let mut roots = RootCertStore::empty();
            match root_file {
                Some(path) => {
                    let certs: Vec<CertificateDer<'static>> =
                        CertificateDer::pem_file_iter(path).and_then(|it| it.collect::<Result<_, _>>()).map_err(
                            |e| PgError::Config(format!("sslrootcert {path}: cannot read its certificates: {e}")),
                        )?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(PgError::Config(format!("sslrootcert {path}: no certificate in it")));
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                    if roots.is_empty() {
                        return Err(PgError::Config(format!(
                            "sslmode={} needs trusted roots: the system has none; name a file with sslrootcert",
                            self.mode.as_str()
                        )));
                    }
                }
            }
            let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| PgError::Config(format!("cannot build the certificate verifier: {e}")))?;
            Some(v)
        } else {
            None
        };
        let verifier = Arc::new(Verifier { inner, check_name, provider: provider.clone() });
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Config(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| PgError::Config(format!("sslcert {}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| PgError::Config(format!("sslkey {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| PgError::Config(format!("sslcert and sslkey do not make a client certificate: {e}")))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err(PgError::Config("sslcert and sslkey go together".into())),
        }
    }

    /// Connects; the connection runs on its own task (`what` names it in the log when it
    /// closes with an error).
    pub async fn connect(&self, what: &'static str) -> Result<Client, PgError> {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
        let (client, conn) = self.config.connect(tls).await.map_err(|e| self.explain(&e))?;
        let host = self.host.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!(%host, error = %e, "{what}: PostgreSQL connection closed");
            }
        });
        Ok(client)
    }

    /// What went wrong, in words that point at the fix.
    fn explain(&self, e: &tokio_postgres::Error) -> PgError {
        let at = &self.host;
        let mode = self.mode.as_str();
        if let Some(t) = rustls_error(e) {
            let why = match t {
                rustls::Error::InvalidCertificate(c) => match c {
                    CertificateError::UnknownIssuer => format!(
                        "its certificate is not signed by a trusted root ({})",
                        self.root.as_deref().map_or("the system's roots".to_string(), |r| format!("sslrootcert {r}"))
                    ),
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                        format!("its certificate is not for the host name {:?} (sslmode=verify-full)", self.host_name())
                    }
                    CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                        "its certificate has expired".to_string()
                    }
                    other => format!("its certificate was refused: {other:?}"),
                },
                other => format!("the TLS handshake failed: {other}"),
            };
            return PgError::Connect(format!("PostgreSQL at {at} (sslmode={mode}): {why}"));
        }
        let text = match e.as_db_error() {
            Some(d) => d.message().to_string(),
            None => {
                // "error performing TLS handshake: server does not support TLS"
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    let more = c.to_string();
                    if !text.contains(&more) {
                        text = format!("{text}: {more}");
                    }
                    cause = c.source();
                }
                text
            }
        };
        let hint = if text.contains("no encryption") {
            " (the server accepts only TLS connections: set sslmode=require, or verify-full with sslrootcert)"
        } else if text.contains("requires a valid client certificate") {
            " (set sslcert and sslkey in the URL)"
        } else if text.contains("server does not support TLS") {
            " (the server does not offer TLS: turn ssl on there, or use sslmode=prefer)"
        } else {
            ""
        };
        PgError::Connect(format!("PostgreSQL at {at} (sslmode={mode}): {text}{hint}"))
    }

    fn host_name(&self) -> &str {
        self.host.rsplit_once(':').map_or(self.host.as_str(), |(h, _)| h)
    }
}

/// Connects to `url` (see the module docs); `what` names the connection in the log.
pub async fn connect(url: &str, what: &'static str) -> Result<Client, PgError> {
    PgTarget::parse(url)?.connect(what).await
}

/// The rustls error somewhere in `e`'s chain (tokio-rustls wraps it in an `io::Error`, whose
/// `source` skips it).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(t) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(t) = t.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

/// Takes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of a URL or `key=value` string:
/// what is left, and the settings (values percent-decoded in a URL, unquoted in the other form).
fn split_tls_settings(url: &str) -> (String, Vec<(String, String)>) {
    const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];
    let mut found = Vec::new();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else { return (url.to_string(), found) };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if KEYS.contains(&k) {
                found.push((k.to_string(), percent_decode(v)));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, found);
    }
    // key=value pairs separated by spaces; a value may be 'quoted' with \' and \\ escapes.
    let mut rest = String::new();
    let mut chars = url.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut raw = String::new();
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'\'') {
                raw.push('\'');
                chars.next();
                while let Some(c) = chars.next() {
                    raw.push(c);
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                raw.push(n);
                                value.push(n);
                            }
                        }
                        '\'' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    raw.push(c);
                    value.push(c);
                    chars.next();
                }
            }
        }
        if KEYS.contains(&key.as_str()) {
            found.push((key, value));
        } else {
            if !rest.is_empty() {
                rest.push(' ');
            }
            rest.push_str(&key);
            rest.push('=');
            rest.push_str(&raw);
        }
    }
    (rest, found)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The certificate check of a mode: none (the handshake's signatures only), the chain, or the
/// chain and the name.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else { return Ok(ServerCertVerified::assertion()) };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_of_both_forms() {
        let (rest, tls) = split_tls_settings(
            "postgres://u:p@db.example:6543/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20root.pem",
        );
        assert_eq!(rest, "postgres://u:p@db.example:6543/app?application_name=x");
        assert_eq!(
            tls,
            [("sslmode".to_string(), "verify-full".to_string()), ("sslrootcert".into(), "/etc/ca root.pem".into())]
        );
        let (rest, tls) =
            split_tls_settings("host=db.example  sslmode = require password='a \\' b' sslrootcert='/a b.pem' user=u");
        assert_eq!(rest, "host=db.example password='a \\' b' user=u");
        assert_eq!(tls, [("sslmode".to_string(), "require".to_string()), ("sslrootcert".into(), "/a b.pem".into())]);
        let t = PgTarget::parse("postgres://u@db.example:6543/app?sslmode=verify-ca").expect("parses");
        assert_eq!((t.ssl_mode(), t.host.as_str()), (SslMode::VerifyCa, "db.example:6543"));
        assert_eq!(PgTarget::parse("postgres://u@h/app").expect("parses").ssl_mode(), SslMode::Prefer);
        let bad = PgTarget::parse("postgres://u@h/app?sslmode=verify").expect_err("refused");
        assert!(bad.to_string().contains("\"verify\" is not one of"), "{bad}");
        let missing = PgTarget::parse("postgres://u@h/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .expect("parses")
            .tls_config()
            .expect_err("no file");
        assert!(missing.to_string().starts_with("sslrootcert /nonexistent/ca.pem: cannot read"), "{missing}");
    }
}
