//! Small helpers every component's HTTP routes share: JSON error bodies, the bearer-token
//! check of the write endpoints, read authentication of the admin side ([`auth`]), HTML answers.
//! A leaf: it imports only [`crate::secret`].

pub mod auth;

use crate::secret::Secret;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;

/// The `Host` names a loopback listener answers to by default.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a request body may take to arrive, unless an endpoint says otherwise.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a body was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// 413 (too large), 408 (too slow) or 400 (broken off).
    pub status: StatusCode,
    /// What happened, for the answer.
    pub message: String,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// Reads a request body of at most `limit` bytes within `timeout`. Call it after the request's
/// credentials are checked: nothing of an unauthorised body is read. A declared
/// `Content-Length` over the limit is refused before any byte.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let too_large = || BodyError { status: StatusCode::PAYLOAD_TOO_LARGE, message: format!("body over {limit} bytes") };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError {
                status: StatusCode::BAD_REQUEST,
                message: format!("the body broke off: {e}"),
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| {
        Err(BodyError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!("the body did not arrive within {}s", timeout.as_secs_f64()),
        })
    })
}

/// Inflates a gzip body up to `max` bytes (`what` names the limit in the answer); a body that
/// inflates beyond is refused (413) once the cap is passed, without inflating the rest, and a
/// corrupt one is 400.
#[cfg(any(feature = "otlp", feature = "collector"))]
pub fn inflate_gzip(raw: &[u8], max: usize, what: &str) -> Result<Vec<u8>, BodyError> {
    use std::io::Read;
    // gzip's trailer says how long the (last member's) data is: a hint, within the cap, that
    // spares the buffer its doublings (a 10 MB body would otherwise pass through 8 and 16 MB
    // buffers at once).
    let hint = raw.len().checked_sub(4).and_then(|i| raw.get(i..)).and_then(|t| <[u8; 4]>::try_from(t).ok());
    let hint = hint.map_or(0, |t| u32::from_le_bytes(t) as usize);
    let mut out = Vec::with_capacity(hint.max(raw.len()).min(max).saturating_add(1));
    let read = flate2::read::MultiGzDecoder::new(raw).take(max as u64 + 1).read_to_end(&mut out);
    match read {
        Err(e) => Err(BodyError { status: StatusCode::BAD_REQUEST, message: format!("the gzip body is corrupt: {e}") }),
        Ok(_) if out.len() > max => Err(BodyError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the body inflates beyond {max} bytes ({what})"),
        }),
        Ok(_) => Ok(out),
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Who sent a request, as far as the handler can tell: whoever passed the read gate (a
/// [`auth::Principal`] in the request's extensions) and the peer's address. Never fails.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// Set when the admin side's gate let the request through.
    pub principal: Option<auth::Principal>,
    /// The connection's peer.
    pub peer: Option<std::net::IpAddr>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller {
            principal: parts.extensions.get::<auth::Principal>().cloned(),
            peer: parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        })
    }
}

impl Caller {
    /// Who may write: an admin the gate let through (a signed-in admin user, a proxy admin, the
    /// API token), else the bearer API token checked here (as [`authorize_bearer`]).
    pub fn authorize_write(
        &self,
        token: Option<&Secret>,
        headers: &HeaderMap,
    ) -> Result<auth::Principal, Box<Response>> {
        if let Some(p) = self.principal.as_ref().filter(|p| p.role == auth::Role::Admin) {
            return Ok(p.clone());
        }
        authorize_bearer(token, headers).map(|()| auth::Principal { name: "api_token".into(), role: auth::Role::Admin })
    }

    /// [`Caller::authorize_write`], then the body (at most `limit` bytes, [`BODY_TIMEOUT`]):
    /// nothing of an unauthorised body is read.
    pub async fn authorized_body(
        &self,
        token: Option<&Secret>,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<(auth::Principal, Bytes), Response> {
        let who = self.authorize_write(token, headers).map_err(|r| *r)?;
        let bytes = read_body(headers, body, limit, BODY_TIMEOUT).await.map_err(IntoResponse::into_response)?;
        Ok((who, bytes))
    }
}

/// Checks `Authorization: Bearer <token>` against `token` in constant time (the token's prefix
/// does not leak through timing). Without a configured token the endpoint refuses with 403.
pub fn authorize_bearer(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = token else {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "write endpoints are disabled: set http.api_token")));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| token.matches(g));
    if ok { Ok(()) } else { Err(Box::new(error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))) }
}

/// At most a few expensive requests (merging an hour of windows, rendering a board) run at
/// once; the others are told to come back: 503 with `Retry-After`, instead of a queue that
/// holds their memory.
#[derive(Clone, Debug)]
pub struct Gate(std::sync::Arc<tokio::sync::Semaphore>);

/// Expensive requests of one kind at once, by default.
pub const GATE_WIDTH: usize = 4;

impl Gate {
    /// A gate for `width` requests at once.
    pub fn new(width: usize) -> Self {
        Gate(std::sync::Arc::new(tokio::sync::Semaphore::new(width.max(1))))
    }

    /// A pass while there is room, else the 503 to answer.
    pub fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "busy: too many of these requests at once; retry");
            r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            Box::new(r)
        })
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(GATE_WIDTH)
    }
}

/// Runs CPU work off the runtime's threads, so one slow read does not hold up `/healthz` or
/// the intake.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("the computation failed: {e}")))
}

/// An HTML page or fragment that must not be cached (it shows live figures).
pub fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// The plain pages' style (the trace and session pages): system fonts, tables, errors in red.
const PAGE_STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}\
a{color:#0b57d0}table{border-collapse:collapse}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}\
.err{color:#b3261e;font-weight:600}form{margin:1rem 0}label{margin-right:1rem}details{margin:.2rem 0}\
summary{cursor:pointer}code{font-size:12px}";

/// A whole plain page (no script) around `body`, which the caller has escaped; `title` is
/// escaped here.
pub fn plain_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} - thorbis-obs</title>\
         <style>{PAGE_STYLE}</style></head><body>{body}</body></html>",
        escape_html(title)
    )
}

/// HTML-escapes text (for element content and double-quoted attributes): every page's outside
/// text goes through it.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `10.0.0.0/8`, or one address (`127.0.0.1`, `::1`) as a network of one.
pub fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a CIDR such as 10.0.0.0/8"))
}
