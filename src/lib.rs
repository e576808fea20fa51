//! # thorbis-obs
//!
//! The umbrella crate: re-exports [`thorbis_obs_core`] as [`core`] (and the tokio side,
//! [`thorbis_obs_server`], as [`server`] with the `server` feature).
//!
//! ```
//! use thorbis_obs::core::time::parse_duration;
//! assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
//! ```

pub use thorbis_obs_core as core;
#[cfg(feature = "server")]
pub use thorbis_obs_server as server;
/// Instrumentation for Rust host apps: `thorbis_obs::host::RequestMetrics` (feature `host`).
#[cfg(feature = "host")]
pub use thorbis_obs_server::host;
