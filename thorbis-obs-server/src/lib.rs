//! # thorbis-obs-server
//!
//! The tokio side of thorbis-obs. For now: rule files (YAML, TOML, JSON) with located errors,
//! and the promtool-compatible rule test runner behind `thorbis-obs rules test`. The agent
//! runtime, probes, uptime checks and notifiers arrive with their own features.
//!
//! ```
//! use std::path::Path;
//! use thorbis_obs_core::rules::ValidateOptions;
//! use thorbis_obs_server::rules_file::parse_rule_text;
//!
//! let yaml = "rules:\n  - id: slow\n    name: Slow\n    metric: http_request_duration\n    condition: { operator: greater_than, threshold: 2000, duration: 5m }\n    severity: warning\n";
//! let rules = parse_rule_text(yaml, Path::new("rules.yaml"), &ValidateOptions::default()).unwrap();
//! assert_eq!(rules[0].alertname(), "Slow");
//! ```

pub mod cli;
pub mod promtest;
pub mod rules_file;
