//! A small SMTP sink written against RFC 5321 for the email tests: it speaks EHLO, MAIL, RCPT,
//! DATA (with dot-unstuffing), RSET, NOOP and QUIT, and keeps what it received.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// True when it arrived over TLS.
    pub secure: bool,
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub mails: Arc<Mutex<Vec<Mail>>>,
    pub port: u16,
}

/// How the sink secures connections.
#[derive(Clone)]
pub enum SinkTls {
    /// Plain SMTP.
    Plain,
    /// Plain, upgraded by STARTTLS.
    Starttls(tokio_rustls::TlsAcceptor),
    /// TLS from the first byte.
    Implicit(tokio_rustls::TlsAcceptor),
}

/// A self-signed certificate for 127.0.0.1 and localhost: (acceptor, certificate PEM).
pub fn self_signed() -> (tokio_rustls::TlsAcceptor, String) {
    super::tls::certificate(None)
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_with(SinkTls::Plain).await
    }

    pub async fn start_with(tls: SinkTls) -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let m = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let m = m.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        SinkTls::Plain => {
                            session(sock, m, false, false).await;
                        }
                        SinkTls::Starttls(acc) => {
                            if let Some(raw) = session(sock, m.clone(), true, false).await {
                                if let Ok(s) = acc.accept(raw).await {
                                    session(s, m, false, true).await;
                                }
                            }
                        }
                        SinkTls::Implicit(acc) => {
                            if let Ok(s) = acc.accept(sock).await {
                                session(s, m, false, true).await;
                            }
                        }
                    }
                });
            }
        });
        SmtpSink { mails, port }
    }
}

/// One SMTP session; `offer_tls` offers STARTTLS (the stream is handed back for the upgrade),
/// `secure` marks a TLS stream.
async fn session<S>(stream: S, m: Arc<Mutex<Vec<Mail>>>, offer_tls: bool, secure: bool) -> Option<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut io = BufReader::new(stream);
    let _ = io.get_mut().write_all(b"220 sink.test ESMTP ready\r\n").await;
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        match io.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = line.to_ascii_uppercase();
        let reply: Vec<u8> = if upper.starts_with("EHLO") {
            let tls_line = if offer_tls { "250-STARTTLS\r\n" } else { "" };
            format!("250-sink.test\r\n{tls_line}250-8BITMIME\r\n250 SIZE 10485760\r\n").into_bytes()
        } else if upper == "STARTTLS" {
            if !offer_tls {
                let _ = io.get_mut().write_all(b"502 no TLS here\r\n").await;
                continue;
            }
            let _ = io.get_mut().write_all(b"220 Ready to start TLS\r\n").await;
            return Some(io.into_inner());
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") || upper.starts_with("RSET") {
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail { from: line[10..].trim().to_string(), secure, ..Mail::default() };
            b"250 OK\r\n".to_vec()
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(line[8..].trim().to_string());
            b"250 OK\r\n".to_vec()
        } else if upper == "DATA" {
            let _ = io.get_mut().write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match io.read_line(&mut l).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                let l = l.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(l));
                data.push('\n');
            }
            mail.data = data;
            m.lock().expect("lock").push(std::mem::take(&mut mail));
            b"250 OK: queued as 42\r\n".to_vec()
        } else if upper == "QUIT" {
            let _ = io.get_mut().write_all(b"221 Bye\r\n").await;
            return None;
        } else {
            b"502 Command not implemented\r\n".to_vec()
        };
        if io.get_mut().write_all(&reply).await.is_err() {
            return None;
        }
    }
}
