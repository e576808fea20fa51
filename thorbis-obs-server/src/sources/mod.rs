//! Metric sources built into the agent. Probes arrive with their own features.

pub mod selfcheck;
