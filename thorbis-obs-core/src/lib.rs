//! # thorbis-obs-core
//!
//! The pure core of thorbis-obs: no IO, no tokio, builds for `wasm32-unknown-unknown`.
//! It holds the data model, windowed aggregation with a mergeable quantile sketch, the alert
//! rule engine (pending, firing, resolved, escalation, suppression), the seams other crates plug
//! into ([`MetricSource`], [`AlertChannel`]), the delivery policy, built-in rule packs, the
//! browser wire schema and the domain math the SDK, the agent and the probes share.
//!
//! ```
//! # #[cfg(feature = "engine")] {
//! use thorbis_obs_core::{engine::RuleEngine, metrics::{Labels, Sample}, rules::packs, time::Timestamp};
//!
//! let mut engine = RuleEngine::new(packs::spec_rules()).unwrap();
//! let t0 = Timestamp::from_secs(1_700_000_000);
//! // Payment failures above 10% for a minute page straight away (critical, no `for`).
//! for i in 0..6 {
//!     let at = Timestamp::from_secs(1_700_000_000 + i * 10);
//!     engine.ingest(&Sample::new("payment_failure_rate", Labels::new(), 0.25, at)).unwrap();
//! }
//! let notes = engine.evaluate(t0.plus(std::time::Duration::from_secs(50)));
//! assert_eq!(notes.len(), 1);
//! assert_eq!(notes[0].rule_id, "payment-processing-failure");
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod domain;
pub mod metrics;
pub mod replay;
pub mod time;
pub mod wire;

#[cfg(feature = "engine")]
pub mod channel;
#[cfg(feature = "engine")]
pub mod delivery;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod rules;
#[cfg(feature = "engine")]
pub mod rum;
#[cfg(feature = "engine")]
pub mod series;
#[cfg(feature = "engine")]
pub mod sketch;
#[cfg(feature = "engine")]
pub mod source;
#[cfg(feature = "engine")]
pub mod spans;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "engine")]
pub mod traces;
#[cfg(feature = "engine")]
pub mod window;

#[cfg(feature = "engine")]
pub use channel::{AlertChannel, DeliveryError};
pub use chrono;
pub use metrics::{Labels, Sample};
#[cfg(feature = "engine")]
pub use source::{CollectError, MetricSource};
pub use time::{HumanDuration, Timestamp};
