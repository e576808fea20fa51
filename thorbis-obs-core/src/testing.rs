//! Test doubles for host apps' own tests (feature `testing`), in the spirit of sentry's
//! `TestTransport` and metrics' `DebuggingRecorder`. The project's integration tests use real
//! receivers; these are for code that embeds thorbis-obs.

use crate::channel::{AlertChannel, Delivered, DeliveryError};
use crate::engine::Notification;
use crate::metrics::Sample;
use crate::source::{CollectError, MetricSource};
use crate::time::Timestamp;
use async_trait::async_trait;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// An [`AlertChannel`] that records what it is sent, and can be told to fail.
#[derive(Clone, Debug, Default)]
pub struct InMemoryChannel {
    name: String,
    sent: Arc<Mutex<Vec<Notification>>>,
    failures: Arc<Mutex<VecDeque<DeliveryError>>>,
}

impl InMemoryChannel {
    /// A channel called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryChannel { name: name.into(), ..Default::default() }
    }

    /// Makes the next sends fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = DeliveryError>) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).extend(errors);
    }

    /// Everything accepted so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets what was sent.
    pub fn clear(&self) {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[async_trait]
impl AlertChannel for InMemoryChannel {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, n: &Notification) -> Result<Delivered, DeliveryError> {
        if let Some(e) = self.failures.lock().unwrap_or_else(PoisonError::into_inner).pop_front() {
            return Err(e);
        }
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).push(n.clone());
        Ok(Delivered { answer: Some("recorded".into()) })
    }
}

type Script = Box<dyn Fn(Timestamp) -> Result<Vec<Sample>, CollectError> + Send + Sync>;

/// A [`MetricSource`] driven by a closure of the collection time.
pub struct ScriptedSource {
    name: String,
    interval: Duration,
    script: Script,
}

impl core::fmt::Debug for ScriptedSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScriptedSource").field("name", &self.name).field("interval", &self.interval).finish()
    }
}

impl ScriptedSource {
    /// A source called `name` collecting every `interval` by calling `script(now)`.
    pub fn new(
        name: impl Into<String>,
        interval: Duration,
        script: impl Fn(Timestamp) -> Result<Vec<Sample>, CollectError> + Send + Sync + 'static,
    ) -> Self {
        ScriptedSource { name: name.into(), interval, script: Box::new(script) }
    }
}

#[async_trait]
impl MetricSource for ScriptedSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        (self.script)(now)
    }
}
