//! Probes: metric sources that look at other systems. Each sits behind its own feature.

pub mod postgres;
