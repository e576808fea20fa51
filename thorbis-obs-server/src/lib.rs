//! # thorbis-obs-server
//!
//! The tokio side of thorbis-obs: the agent runtime ([`agent`]) with its durable store
//! ([`store`]), channels ([`channels`]), sources ([`sources`]) and HTTP endpoints ([`http`]);
//! rule files with located errors ([`rules_file`]); the promtool-compatible rule test runner
//! ([`promtest`]); and the `thorbis-obs` command line ([`cli`]).
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

pub mod agent;
pub mod channels;
pub mod cli;
pub mod collector;
pub mod config;
pub mod dashboards;
pub mod http;
pub mod probes;
pub mod promtest;
pub mod rules_file;
pub mod sources;
pub mod store;
pub mod synthetic;
pub mod telemetry;
pub mod uptime;
