//! # thorbis-obs-server
//!
//! The tokio side of thorbis-obs: the agent runtime ([`agent`]) with its durable store
//! ([`store`]), channels ([`channels`]), sources ([`sources`]), uptime checks ([`uptime`]),
//! synthetic workflows ([`synthetic`]), the RUM collector ([`collector`]) and dashboards
//! ([`dashboards`]); rule files with located errors ([`rules_file`]); the promtool-compatible
//! rule test runner ([`promtest`]); and the `thorbis-obs` command line ([`cli`]).
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
//!
//! ## Layers
//!
//! Every import points down this list; `scripts/layers.py` checks it in CI.
//!
//! 1. Leaves: [`secret`] (secrets, env expansion, URL redaction), [`clock`] (now, schedules),
//!    [`telemetry`] (logs), `pg` (connecting to PostgreSQL with libpq's TLS settings),
//!    [`sql`] (configured SQL, one read-only statement), [`api`] (HTTP
//!    helpers), [`rules_file`], [`promtest`].
//! 2. [`store`]: the outbox, the alert state, check results and RUM windows.
//! 3. [`hub`]: what components receive (engine, store, clock) and the [`hub::Component`] trait;
//!    then [`checks`], the check pipeline uptime checks and workflows share.
//! 4. Components, each a folder that owns its config type (always compiled), its checks
//!    (`problems()`), its implementation (behind its feature) and its routes: [`channels`],
//!    [`sources`], [`uptime`], [`synthetic`], [`collector`], [`dashboards`], [`otlp`], [`traces`]. A component never
//!    imports another component, the config or the agent. `host` (feature `host`), the layer a
//!    Rust host app adds to its router, sits at this level and imports none of them.
//! 5. [`config`]: aggregates the sections and checks what crosses them.
//! 6. [`agent`]: the composition root that builds components from config, merges their
//!    routes and runs the loops.
//! 7. [`cli`] (and `main.rs`).

pub mod api;
pub mod clock;
#[cfg(any(feature = "webhook", feature = "slack", feature = "sms", feature = "pagerduty", feature = "otlp"))]
pub mod http_client;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod promtest;
pub mod rules_file;
pub mod secret;
pub mod sql;
pub mod telemetry;

pub mod store;

pub mod checks;
pub mod hub;

pub mod channels;
pub mod collector;
pub mod dashboards;
#[cfg(feature = "host")]
pub mod host;
pub mod otlp;
pub mod sourcemaps;
pub mod sources;
pub mod synthetic;
pub mod traces;
pub mod uptime;

pub mod config;

pub mod agent;

pub mod cli;
