//! Serving the agent's routes to whoever can reach the listener, browsers of every user among
//! them: HTTP/1.1 connections (hyper) with
//! - a header read timeout, which also closes a keep-alive connection idle that long (hyper's
//!   one timer for both: a slowloris client and a forgotten socket cost the same);
//! - a cap on open connections: beyond it a new connection is closed at once, with a log line
//!   at most every 10 s and `thorbis_http_connections_refused_total`;
//! - the `Host` header checked against the names the agent is reached by (loopback names by
//!   default), so a web page cannot reach the dashboards through DNS rebinding;
//! - the soft limit of open files raised to the hard one at start.
//!
//! Bodies are read by the handlers after their credentials are checked, each with its own size
//! limit and [`crate::api::BODY_TIMEOUT`] (see [`crate::api::read_body`]).
//!
//! Written on hyper directly because `axum::serve` takes no timer, so hyper's header timeout
//! never applies under it, and has no connection cap.

use crate::api;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How the listener treats connections.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// A request's headers must arrive within this, and an idle keep-alive connection closes
    /// after it. Default 10 s.
    pub header_read_timeout: Duration,
    /// Connections open at once, at most. Default 1,024.
    pub max_connections: usize,
    /// `Host` names (without port) requests may carry; `*` allows any. Default: `localhost`,
    /// `127.0.0.1`, `::1`.
    pub hosts: Vec<String>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            hosts: api::LOOPBACK_HOSTS.map(String::from).to_vec(),
        }
    }
}

/// Connections refused because the cap was reached, since start.
pub(crate) static REFUSED_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Raises the soft limit of open files to the hard one, so the connection cap, not the OS,
/// is what refuses a flood. Logs what it got.
pub(super) fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(open_files = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
}

/// `Host` without its port, lower case: `[::1]:9464` is `::1`.
fn host_name(host: &str) -> String {
    let h = host.trim();
    let name = match h.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => h.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(h, |(n, _)| n),
    };
    name.to_ascii_lowercase()
}

/// The answer for a request whose `Host` is not one of `hosts` (None: serve it).
fn refuse_host(hosts: &[String], headers: &axum::http::HeaderMap) -> Option<Response> {
    if hosts.iter().any(|h| h == "*") {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(host_name);
    match host {
        Some(h) if hosts.iter().any(|a| a.eq_ignore_ascii_case(&h)) => None,
        Some(h) => Some(api::error(
            StatusCode::MISDIRECTED_REQUEST,
            format!("host {h:?} is not one this agent answers to (http.hosts)"),
        )),
        None => Some(api::error(StatusCode::BAD_REQUEST, "a Host header is required")),
    }
}

/// True when a request announces a body (a length above 0, or chunks).
fn has_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// Serves `router` on `listener` until `stop` flips, then lets open requests finish within
/// `drain`.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let hosts: Arc<[String]> = limits.hosts.clone().into();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut last_warning: Option<tokio::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            REFUSED_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            let now = tokio::time::Instant::now();
            if last_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                last_warning = Some(now);
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused = REFUSED_CONNECTIONS.load(Ordering::Relaxed),
                    "connection cap reached (http.max_connections): closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, hosts) = (router.clone(), hosts.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let refused = refuse_host(&hosts, req.headers());
            let has_body = has_body(req.headers());
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let mut resp = match refused {
                    Some(r) => r,
                    None => router.oneshot(req.map(axum::body::Body::new)).await?,
                };
                // A refusal may come before the body was read (credentials, size): the
                // connection then cannot carry another request, and saying so keeps a client
                // from reusing it while its body is still on the way.
                if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
                    resp.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::debug!("open connections did not finish within the shutdown timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:9464"), "127.0.0.1");
        assert_eq!(host_name("[::1]:9464"), "::1");
        assert_eq!(host_name("LocalHost"), "localhost");
        assert_eq!(host_name("evil.example:80"), "evil.example");
    }
}
