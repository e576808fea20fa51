//! SMS through Twilio's Messages API: a form POST per recipient with HTTP basic auth, a short
//! text (severity, rule, value, time) cut to 1600 characters.
//!
//! Several recipients: the channel remembers which recipients already accepted a notification
//! id, so a retry after a partial failure texts only those still missing (within the process's
//! life; after a restart a retry may text a recipient twice).

use super::truncate;
use crate::http_client;
use crate::secret::Secret;
use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use thorbis_obs_core::engine::Notification;
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// Longest body Twilio accepts.
pub const MAX_BODY: usize = 1600;

/// Sends SMS through Twilio.
pub struct SmsChannel {
    name: String,
    account_sid: String,
    auth_token: Secret,
    from: String,
    to: Vec<String>,
    base_url: String,
    client: reqwest::Client,
    sent: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for SmsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsChannel").field("name", &self.name).field("recipients", &self.to.len()).finish()
    }
}

/// The message text for `n`.
pub fn body(n: &Notification) -> String {
    truncate(&format!("{} at {}", n.headline(), n.created_at.to_rfc3339()), MAX_BODY)
}

impl SmsChannel {
    /// A Twilio channel.
    pub fn new(
        name: &str,
        account_sid: &str,
        auth_token: Secret,
        from: &str,
        to: Vec<String>,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, DeliveryError> {
        Ok(SmsChannel {
            name: name.into(),
            account_sid: account_sid.into(),
            auth_token,
            from: from.into(),
            to,
            base_url: base_url.trim_end_matches('/').to_string(),
            client: http_client::client(timeout)?,
            sent: Mutex::new(HashSet::new()),
        })
    }
}

#[async_trait]
impl AlertChannel for SmsChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid);
        let text = body(n);
        let mut answers = Vec::new();
        for to in &self.to {
            let key = (n.id.clone(), to.clone());
            if self.sent.lock().map(|s| s.contains(&key)).unwrap_or(false) {
                continue;
            }
            let req = self.client.post(&url).basic_auth(&self.account_sid, Some(self.auth_token.expose())).form(&[
                ("To", to.as_str()),
                ("From", self.from.as_str()),
                ("Body", text.as_str()),
            ]);
            let (_, resp) = http_client::send(req).await?;
            let sid = serde_json::from_str::<serde_json::Value>(&resp)
                .ok()
                .and_then(|v| v["sid"].as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            answers.push(sid);
            if let Ok(mut s) = self.sent.lock() {
                if s.len() > 10_000 {
                    s.clear();
                }
                s.insert(key);
            }
        }
        Ok(Delivered { answer: Some(format!("messages {}", answers.join(", "))) })
    }
}
