//! Email over SMTP with lettre (async, tokio, rustls): STARTTLS, implicit TLS, or plain (plain
//! only to a loopback host unless `allow_insecure` says otherwise). Each notification is one
//! multipart message (text and HTML) to every recipient.

pub use super::config::EmailTls;

use super::config::EmailConfig;
use crate::secret::Secret;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use thorbis_obs_core::engine::{Notification, format_value};
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// SMTP settings.
#[derive(Clone, Debug)]
pub struct EmailSettings {
    /// Server host.
    pub host: String,
    /// Server port (default by TLS mode: 587, 465, 25).
    pub port: Option<u16>,
    /// TLS mode.
    pub tls: EmailTls,
    /// Login.
    pub username: Option<Secret>,
    /// Password.
    pub password: Option<Secret>,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Allow plain SMTP to a host that is not loopback.
    pub allow_insecure: bool,
    /// Per-message timeout.
    pub timeout: Duration,
    /// An extra trusted root certificate (PEM), for servers with a private CA.
    pub root_certificate_pem: Option<Vec<u8>>,
}

impl EmailSettings {
    /// The settings of an `email` channel config.
    pub fn from_config(c: &EmailConfig) -> Self {
        EmailSettings {
            host: c.host.0.clone(),
            port: c.port,
            tls: c.tls,
            username: c.username.clone(),
            password: c.password.clone(),
            from: c.from.clone(),
            to: c.to.clone(),
            allow_insecure: c.allow_insecure,
            timeout: c.timeout.get(),
            root_certificate_pem: c.root_certificate.as_ref().and_then(|p| std::fs::read(&p.0).ok()),
        }
    }
}

/// Sends notifications by email.
pub struct EmailChannel {
    name: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel").field("name", &self.name).field("recipients", &self.to.len()).finish()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why email settings were refused.
pub fn check(s: &EmailSettings) -> Result<(), String> {
    if s.to.is_empty() {
        return Err("to: at least one recipient".into());
    }
    s.from.parse::<Mailbox>().map_err(|e| format!("from: {e}"))?;
    for (i, t) in s.to.iter().enumerate() {
        t.parse::<Mailbox>().map_err(|e| format!("to[{i}]: {e}"))?;
    }
    if s.tls == EmailTls::None && !s.allow_insecure && !is_loopback(&s.host) {
        return Err(format!(
            "tls = \"none\" sends passwords in clear text: only allowed to a loopback host, not {:?} (set allow_insecure = true to override)",
            s.host
        ));
    }
    if s.username.is_some() != s.password.is_some() {
        return Err("username and password go together".into());
    }
    Ok(())
}

/// The text and HTML parts for `n`.
pub fn render(n: &Notification) -> (String, String, String) {
    let subject = n.headline();
    let value = n.value.map(format_value).unwrap_or_else(|| "no data".into());
    let mut text = format!(
        "{}\n\n{}\n\nSeverity: {}\nValue: {value}\nTime: {}\nAlert ID: {}\nLabels: {}\n",
        n.rule_name,
        n.description,
        n.severity.as_str().to_uppercase(),
        n.created_at.to_rfc3339(),
        n.id,
        n.labels
    );
    for (k, v) in &n.annotations {
        text.push_str(&format!("{k}: {v}\n"));
    }
    text.push_str("\n-- Thorbis Monitoring\n");
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<h2>{}</h2><p>{}</p><table><tr><th>Severity</th><td>{}</td></tr><tr><th>Value</th><td>{}</td></tr>\
         <tr><th>Time</th><td>{}</td></tr><tr><th>Alert ID</th><td>{}</td></tr></table><p>Thorbis Monitoring</p>",
        esc(&subject),
        esc(&n.description),
        n.severity.as_str().to_uppercase(),
        esc(&value),
        n.created_at.to_rfc3339(),
        esc(&n.id)
    );
    (subject, text, html)
}

impl EmailChannel {
    /// Checks the settings and builds the transport (no connection is made yet).
    pub fn new(name: &str, s: &EmailSettings) -> Result<Self, String> {
        check(s)?;
        let port = s.port.unwrap_or(match s.tls {
            EmailTls::Starttls => 587,
            EmailTls::Implicit => 465,
            EmailTls::None => 25,
        });
        let mut b =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).port(port).timeout(Some(s.timeout));
        if s.tls != EmailTls::None {
            let mut tb = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.root_certificate_pem {
                tb = tb.add_root_certificate(Certificate::from_pem(pem).map_err(|e| format!("root_certificate: {e}"))?);
            }
            let params = tb.build_rustls().map_err(|e| format!("TLS: {e}"))?;
            b = b.tls(if s.tls == EmailTls::Starttls { Tls::Required(params) } else { Tls::Wrapper(params) });
        }
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(u.expose().to_string(), p.expose().to_string()));
        }
        let from = s.from.parse().map_err(|e| format!("from: {e}"))?;
        let to = s.to.iter().map(|t| t.parse()).collect::<Result<Vec<Mailbox>, _>>().map_err(|e| format!("to: {e}"))?;
        Ok(EmailChannel { name: name.into(), from, to, transport: b.build() })
    }
}

#[async_trait]
impl AlertChannel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let (subject, text, html) = render(n);
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@thorbis-obs>", n.id)));
        for t in &self.to {
            m = m.to(t.clone());
        }
        let msg = m
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| DeliveryError::permanent(format!("cannot build the message: {e}")))?;
        match self.transport.send(msg).await {
            Ok(resp) => Ok(Delivered {
                answer: Some(format!("{} {}", resp.code(), resp.message().collect::<Vec<_>>().join(" "))),
            }),
            Err(e) if e.is_permanent() => Err(DeliveryError::permanent(format!("SMTP: {e}"))),
            Err(e) => Err(DeliveryError::retryable(format!("SMTP: {e}"))),
        }
    }
}
