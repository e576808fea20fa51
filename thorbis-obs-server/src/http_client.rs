//! What the HTTP channels and the OTLP relay share: a client with a timeout, and one
//! classification of answers. A leaf: it imports nothing of this crate.

use std::time::Duration;
use thorbis_obs_core::channel::{Delivered, DeliveryError};

/// A client with a per-request timeout.
pub fn client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| DeliveryError::permanent(format!("cannot build the HTTP client: {e}")))
}

/// Reads Retry-After as seconds (the HTTP-date form is treated as absent).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Classifies a transport error without echoing the URL (it may hold a token).
pub fn transport_error(e: &reqwest::Error) -> DeliveryError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    DeliveryError::retryable(kind.to_string())
}

/// The most of an answer's body read (the rest is not read): enough for any error message.
const MAX_ANSWER: usize = 64 << 10;

/// Up to `max` bytes of the body, as text (invalid UTF-8 replaced).
async fn bounded_text(mut resp: reqwest::Response, max: usize) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = max - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= max {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Sends a request and classifies the answer: 2xx accepted (with the body as the answer),
/// 408/429/5xx retryable (Retry-After honoured), other statuses permanent with the body.
pub async fn send(req: reqwest::RequestBuilder) -> Result<(u16, String), DeliveryError> {
    let resp = req.send().await.map_err(|e| transport_error(&e))?;
    let status = resp.status().as_u16();
    let ra = retry_after(resp.headers());
    let body = bounded_text(resp, MAX_ANSWER).await;
    match DeliveryError::from_http_status(status, &body, ra) {
        Some(e) => Err(e),
        None => Ok((status, body)),
    }
}

/// The answer to report for an accepted request, kept short.
pub fn answer(status: u16, body: &str) -> Delivered {
    let short: String = body.chars().take(200).collect();
    Delivered {
        answer: Some(if short.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {short}") }),
    }
}
