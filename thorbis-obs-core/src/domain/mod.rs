//! Domain math shared by the browser SDK, the agent and the probes.
//!
//! Everything here is pure and cheap, and none of it needs the `engine` feature, so the browser
//! SDK can use it without pulling the rule engine in.

pub mod availability;
pub mod budgets;
pub mod context;
pub mod errors;
pub mod hash;
pub mod otel;
pub mod outcomes;
pub mod privacy;
pub mod uptime;
pub mod vitals;
