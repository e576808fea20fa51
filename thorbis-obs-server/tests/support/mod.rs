//! Loopback receivers shared by the notifier tests.
#![allow(dead_code, unreachable_pub, missing_docs, reason = "test support: each test binary uses part of it")]

pub mod agent;
pub mod chrome;
pub mod monitors;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod receiver;
#[cfg(feature = "collector")]
pub mod rum;
pub mod sdk;
pub mod smtp;
pub mod tls;
pub mod web;
