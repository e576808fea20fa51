//! The `console` channel: notifications on stdout, as readable lines or JSON lines.

use async_trait::async_trait;
use std::io::Write;
use thorbis_obs_core::engine::Notification;
use thorbis_obs_core::{AlertChannel, channel::Delivered, channel::DeliveryError};

/// Prints each notification to stdout.
#[derive(Debug)]
pub struct ConsoleChannel {
    name: String,
    json: bool,
}

impl ConsoleChannel {
    /// A console channel called `name`; `json` prints one JSON object per line.
    pub fn new(name: &str, json: bool) -> Self {
        ConsoleChannel { name: name.to_string(), json }
    }

    /// The line printed for `n`.
    pub fn render(&self, n: &Notification) -> Result<String, DeliveryError> {
        if self.json {
            serde_json::to_string(n).map_err(|e| DeliveryError::permanent(format!("cannot encode notification: {e}")))
        } else {
            Ok(format!("{} ALERT {} {} id={}", n.created_at.to_rfc3339(), n.headline(), n.labels, n.id))
        }
    }
}

#[async_trait]
impl AlertChannel for ConsoleChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let line = self.render(n)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| DeliveryError::retryable(format!("stdout: {e}")))?;
        Ok(Delivered { answer: None })
    }
}
