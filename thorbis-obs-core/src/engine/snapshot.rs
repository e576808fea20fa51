use super::instance::Instance;
use super::mute::ActiveCondition;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Version of the snapshot format.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Everything the engine needs to resume after a restart: alert instances (pending, firing,
/// resolved-but-unannounced, with their escalation clocks and what was announced) and active
/// suppression conditions. Samples are not included: sources re-collect them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// Format version.
    pub version: u32,
    /// When it was taken.
    pub taken_at: Timestamp,
    /// Alert instances.
    pub alerts: Vec<AlertSnapshot>,
    /// Active named suppression conditions.
    pub conditions: Vec<ActiveCondition>,
}

/// One alert instance in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSnapshot {
    /// The rule's id.
    pub rule_id: String,
    /// The instance.
    #[serde(flatten)]
    pub instance: Instance,
}

/// What [`super::RuleEngine::restore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Instances restored.
    pub restored: usize,
    /// Instances dropped because their rule no longer exists (by rule id).
    pub dropped: Vec<String>,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by a newer version.
    #[error("snapshot version {0} is newer than this engine understands ({SNAPSHOT_VERSION})")]
    Version(u32),
}
