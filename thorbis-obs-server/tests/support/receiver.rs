//! A loopback HTTP receiver for the notifier tests: records every request and answers as the
//! test says (200 ok, 202, 400, 429 with Retry-After, 500, a hang, or garbage).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// 200 with `ok`.
    Ok,
    /// 201 with a Twilio-like JSON body.
    Created,
    /// 202 with PagerDuty's JSON body.
    Accepted,
    /// 400 with an error body.
    BadRequest,
    /// 429 with Retry-After: 7.
    RateLimited,
    /// 500.
    ServerError,
    /// Never answers (past any client timeout).
    Hang,
    /// 200 with an HTML page.
    Garbage,
    /// 201 for the first request recorded, 500 after it.
    CreatedOnceThenError,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url_decode_form(std::str::from_utf8(&self.body).expect("utf-8 form"))
    }
}

fn url_decode_form(s: &str) -> Vec<(String, String)> {
    let dec = |t: &str| {
        let t = t.replace('+', " ");
        let b = t.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&t[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8(out).expect("utf-8")
    };
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

#[derive(Clone)]
pub struct Receiver {
    pub requests: Arc<Mutex<Vec<Request>>>,
    pub mode: Arc<Mutex<Mode>>,
    pub addr: std::net::SocketAddr,
}

impl Receiver {
    pub async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let r = Receiver { requests: Arc::default(), mode: Arc::new(Mutex::new(mode)), addr };
        let app = Router::new().fallback(handle).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    pub fn taken(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().expect("lock"))
    }
}

async fn handle(State(r): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let seen = {
        let mut reqs = r.requests.lock().expect("lock");
        reqs.push(Request { path: uri.path().to_string(), headers, body });
        reqs.len()
    };
    let mut mode = *r.mode.lock().expect("lock");
    if mode == Mode::CreatedOnceThenError {
        mode = if seen == 1 { Mode::Created } else { Mode::ServerError };
    }
    match mode {
        Mode::Ok => (StatusCode::OK, "ok").into_response(),
        Mode::Created => {
            (StatusCode::CREATED, r#"{"sid":"SM0123456789abcdef","status":"queued","error_code":null}"#).into_response()
        }
        Mode::Accepted => (StatusCode::ACCEPTED, r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#)
            .into_response(),
        Mode::BadRequest => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
        Mode::RateLimited => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down").into_response(),
        Mode::ServerError | Mode::CreatedOnceThenError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, "ok").into_response()
        }
        Mode::Garbage => (StatusCode::OK, "<html><body>Service Unavailable</body></html>").into_response(),
    }
}
