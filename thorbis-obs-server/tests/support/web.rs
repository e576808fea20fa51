//! A scripted HTTP/1.1 server on loopback, plain or TLS: the handler sees each request (with
//! its 1-based number and the peer address) and says how to answer, including how long to
//! wait first or what to wait for. Every answer closes the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Clone, Debug)]
pub struct Req {
    pub n: u64,
    pub method: String,
    pub path: String,
    pub peer: SocketAddr,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Held until this is set (30 s at most).
    pub until: Option<Arc<AtomicBool>>,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.into(),
            delay: Duration::ZERO,
            until: None,
        }
    }
    pub fn json(status: u16, body: &str) -> Reply {
        Reply { headers: vec![("Content-Type".into(), "application/json".into())], ..Reply::new(status, body) }
    }
    pub fn html(body: &str) -> Reply {
        Reply { headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())], ..Reply::new(200, body) }
    }
    pub fn bytes(content_type: &str, body: Vec<u8>) -> Reply {
        Reply { headers: vec![("Content-Type".into(), content_type.into())], body, ..Reply::new(200, "") }
    }
    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
    /// The answer is held until `flag` is set.
    pub fn until(mut self, flag: Arc<AtomicBool>) -> Reply {
        self.until = Some(flag);
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

pub struct WebServer {
    pub port: u16,
    pub hits: Arc<AtomicU64>,
    tls: bool,
}

impl WebServer {
    pub async fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> WebServer {
        Self::start_inner(None, Arc::new(handler)).await
    }

    pub async fn start_tls(
        acceptor: tokio_rustls::TlsAcceptor,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> WebServer {
        Self::start_inner(Some(acceptor), Arc::new(handler)).await
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> WebServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let is_tls = tls.is_some();
        tokio::spawn(async move {
            loop {
                let Ok((sock, peer)) = listener.accept().await else { return };
                let (handler, hits, tls) = (handler.clone(), h.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acc) => {
                            if let Ok(s) = acc.accept(sock).await {
                                serve(s, peer, handler, hits).await;
                            }
                        }
                        None => serve(sock, peer, handler, hits).await,
                    }
                });
            }
        });
        WebServer { port, hits, tls: is_tls }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", if self.tls { "https" } else { "http" }, self.port)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, peer: SocketAddr, handler: Handler, hits: Arc<AtomicU64>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
    let reply = handler(&Req { n, method, path, peer, headers, body });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(flag) = &reply.until {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !flag.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut out =
        format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", reply.status, reply.body.len());
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&reply.body);
    let _ = s.write_all(&bytes).await;
    let _ = s.shutdown().await;
}

/// A webhook receiver on loopback that keeps every JSON body it is sent (answering 200 `{}`).
pub async fn json_sink() -> (WebServer, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let got = bodies.clone();
    let server = WebServer::start(move |r| {
        if let Ok(v) = serde_json::from_slice(&r.body) {
            got.lock().expect("lock").push(v);
        }
        Reply::json(200, "{}")
    })
    .await;
    (server, bodies)
}
