//! A small SMTP sink written against RFC 5321 for the email tests: it speaks EHLO, MAIL, RCPT,
//! DATA (with dot-unstuffing), RSET, NOOP and QUIT, and keeps what it received.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Debug, Default)]
pub struct Mail {
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub mails: Arc<Mutex<Vec<Mail>>>,
    pub port: u16,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let m = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let m = m.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    let _ = wr.write_all(b"220 sink.test ESMTP ready\r\n").await;
                    let mut mail = Mail::default();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
                        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") || upper.starts_with("RSET") {
                            b"250 OK\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            mail = Mail { from: line[10..].trim().to_string(), ..Mail::default() };
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            mail.rcpt.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        } else if upper == "DATA" {
                            let _ = wr.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                data.push('\n');
                            }
                            mail.data = data;
                            m.lock().expect("lock").push(std::mem::take(&mut mail));
                            b"250 OK: queued as 42\r\n"
                        } else if upper == "QUIT" {
                            let _ = wr.write_all(b"221 Bye\r\n").await;
                            return;
                        } else {
                            b"502 Command not implemented\r\n"
                        };
                        if wr.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { mails, port }
    }
}
