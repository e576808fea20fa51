//! HTTP checks (feature `http`): reqwest with rustls, one fresh connection per check (like
//! blackbox_exporter, so a refused or slow connect is seen every time), the leaf certificate's
//! expiry read from the TLS session, the body read up to a cap, the expectations applied.
//! Errors never carry the URL: it is a secret (query strings hold tokens).

use super::config::{HttpCheckConfig, LocationConfig};
use super::expect::{Answer, CompiledExpect, Failure};
use crate::checks::{Observation, Producer, ProducerContext};
use crate::store::{CheckKind, CheckRecord};
use reqwest::{Client, Method};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thorbis_obs_core::time::Timestamp;

/// What one check saw.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// Every rule passed.
    pub success: bool,
    /// Time from sending the request to the end of the (capped) body, or to the failure.
    pub elapsed: Duration,
    /// HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The failing rule.
    pub failure: Option<Failure>,
    /// When the leaf certificate expires (HTTPS).
    pub cert_expires_at: Option<Timestamp>,
}

/// One check, ready to run from one location.
pub struct HttpChecker {
    id: String,
    client: Client,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    timeout: Duration,
    expect: CompiledExpect,
}

impl std::fmt::Debug for HttpChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChecker").field("id", &self.id).field("method", &self.method).finish_non_exhaustive()
    }
}

/// The words of an error chain, without the URL.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn classify(e: reqwest::Error) -> Failure {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let text = chain(&e.without_url());
    let lower = text.to_ascii_lowercase();
    let rule = if timeout {
        "timeout"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        "tls"
    } else if connect {
        "connect"
    } else {
        "request"
    };
    Failure { rule, detail: text }
}

fn cert_expiry(resp: &reqwest::Response) -> Option<Timestamp> {
    let der = resp.extensions().get::<reqwest::tls::TlsInfo>()?.peer_certificate()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Timestamp::from_secs(cert.validity().not_after.timestamp()))
}

/// HTTP clients shared between checks with the same settings.
#[derive(Default)]
pub struct ClientPool {
    clients: std::collections::HashMap<PoolKey, Client>,
}

type PoolKey = (bool, Option<std::path::PathBuf>, bool, Option<std::net::IpAddr>, Option<String>);

impl std::fmt::Debug for ClientPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool").field("clients", &self.clients.len()).finish()
    }
}

/// A client with one check's TLS, redirect and location settings; no idle connections are
/// kept, so every check opens its own.
fn build_client(cfg: &HttpCheckConfig, location: &LocationConfig) -> Result<Client, String> {
    let mut b = Client::builder()
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .danger_accept_invalid_certs(cfg.insecure_skip_verify)
        .redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .user_agent(concat!("thorbis-obs/", env!("CARGO_PKG_VERSION"), " (uptime check)"));
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file: cannot read {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file: {} is not PEM certificates: {e}", path.display()))?;
        b = b.tls_certs_merge(certs);
    }
    if let Some(addr) = location.local_address {
        b = b.local_address(addr);
    }
    match &location.proxy {
        Some(p) => {
            b = b.proxy(reqwest::Proxy::all(p.expose()).map_err(|_| "proxy: not a proxy URL".to_string())?);
        }
        None => b = b.no_proxy(),
    }
    b.build().map_err(|e| format!("cannot build the HTTP client: {}", chain(&e.without_url())))
}

impl HttpChecker {
    /// Builds the check for one location; the error names the field.
    pub fn new(cfg: &HttpCheckConfig, location: &LocationConfig) -> Result<Self, String> {
        Self::with_pool(cfg, location, &mut ClientPool::default())
    }

    /// Builds the check, sharing an HTTP client (and its TLS roots) with the checks of the
    /// pool that have the same TLS, redirect and location settings.
    pub fn with_pool(cfg: &HttpCheckConfig, location: &LocationConfig, pool: &mut ClientPool) -> Result<Self, String> {
        let method = Method::from_bytes(cfg.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("method: {:?} is not an HTTP method", cfg.method))?;
        let url = cfg.url.expose().to_string();
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("url: not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("url: must be http:// or https://".into());
        }
        let expect = CompiledExpect::new(&cfg.expect)?;
        let key = (
            cfg.insecure_skip_verify,
            cfg.ca_file.clone(),
            cfg.follow_redirects,
            location.local_address,
            location.proxy.as_ref().map(|p| p.expose().to_string()),
        );
        let client = match pool.clients.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = build_client(cfg, location)?;
                pool.clients.insert(key, c.clone());
                c
            }
        };
        let headers = cfg.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
        Ok(HttpChecker {
            id: cfg.id.clone(),
            client,
            method,
            url,
            headers,
            body: cfg.body.as_ref().map(|b| b.expose().to_string()),
            timeout: cfg.timeout.get(),
            expect,
        })
    }

    /// The check's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs the check once.
    pub async fn run(&self) -> CheckOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut req = self.client.request(self.method.clone(), &self.url).timeout(self.timeout);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        let failed = |failure: Failure, status, cert| CheckOutcome {
            success: false,
            elapsed: started.elapsed(),
            status,
            failure: Some(failure),
            cert_expires_at: cert,
        };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return failed(classify(e), None, None),
        };
        let status = resp.status().as_u16();
        let cert = cert_expiry(&resp);
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Err(_) => {
                    let f = Failure { rule: "timeout", detail: format!("no whole answer within {:?}", self.timeout) };
                    return failed(f, Some(status), cert);
                }
                Ok(Err(e)) => return failed(classify(e), Some(status), cert),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    let room = self.expect.max_body_bytes.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= self.expect.max_body_bytes {
                        break;
                    }
                }
            }
        }
        let elapsed = started.elapsed();
        let now = crate::clock::system_now();
        let answer = Answer {
            status,
            elapsed,
            headers,
            body: &body,
            cert_expires_in: cert.map(|c| (c.as_millis() - now.as_millis()) as f64 / 1000.0),
        };
        let mut failure = self.expect.check(&answer).err();
        if failure.is_none() && self.expect.wants_certificate() && cert.is_none() {
            failure = Some(Failure { rule: "certificate", detail: "no TLS certificate (not HTTPS?)".into() });
        }
        CheckOutcome { success: failure.is_none(), elapsed, status: Some(status), failure, cert_expires_at: cert }
    }

    /// A stored record of an outcome (its `down` is set by the recorder).
    pub fn record(&self, location: &str, at: Timestamp, o: &CheckOutcome) -> CheckRecord {
        CheckRecord {
            kind: CheckKind::Http,
            target: self.id.clone(),
            location: location.to_string(),
            at,
            success: o.success,
            duration_ms: o.elapsed.as_secs_f64() * 1000.0,
            status_code: o.status,
            failed_rule: o.failure.as_ref().map(|f| f.rule.to_string()),
            error: o.failure.as_ref().map(|f| f.detail.clone()),
            cert_expires_at: o.cert_expires_at,
            down: false,
            detail: None,
        }
    }
}

/// An HTTP check at one location, as a [`Producer`].
#[derive(Debug)]
pub struct HttpProducer {
    /// The check.
    pub checker: Arc<HttpChecker>,
    /// The location label.
    pub location: String,
    /// How often.
    pub interval: Duration,
}

impl Producer for HttpProducer {
    fn start(self: Box<Self>, ctx: ProducerContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(run_check(self.checker, self.location, self.interval, ctx))
    }
}

/// Runs `checker` every `interval` from `location` until `stop` flips: a random first phase
/// within the interval (at most 10 s) spreads the checks; a check that overruns delays the
/// next one rather than overlapping it; at most `limit` checks run at once agent-wide.
async fn run_check(checker: Arc<HttpChecker>, location: String, interval: Duration, ctx: ProducerContext) {
    let ProducerContext { tx, mut stop, clock, limit } = ctx;
    let interval = interval.max(Duration::from_millis(100));
    let key = [checker.id(), location.as_str()].join("@");
    let mut ticker = crate::clock::ticker(&key, interval, Duration::from_secs(10));
    loop {
        let scheduled = tokio::select! {
            t = ticker.tick() => t,
            _ = stop.changed() => return,
        };
        let Ok(_permit) = limit.acquire().await else { return };
        let lag = tokio::time::Instant::now().saturating_duration_since(scheduled);
        let outcome = tokio::select! {
            o = checker.run() => o,
            _ = stop.changed() => return,
        };
        let record = checker.record(&location, clock.now(), &outcome);
        if tx.send(Observation { record, lag, steps: Vec::new() }).await.is_err() {
            return;
        }
    }
}
