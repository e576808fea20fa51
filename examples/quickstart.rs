//! Quickstart: the spec's rules on a simulated hour of API latency.
//!
//! Latency climbs above 2 s for 25 minutes: the high-response-time rule fires as a warning,
//! escalates to error after 10 minutes (adding SMS) and to critical after 20 (adding
//! PagerDuty), then resolves, and every channel that heard about it hears the resolve. A
//! deployment later mutes a second spike. Notifications go to in-memory channels (the
//! `testing` feature's test double); the agent delivers them to Slack, email, SMS and PagerDuty.
//!
//! Run: `cargo run --example quickstart`

use std::collections::BTreeMap;
use std::time::Duration;
use thorbis_obs::core::AlertChannel;
use thorbis_obs::core::engine::RuleEngine;
use thorbis_obs::core::metrics::{Labels, Sample};
use thorbis_obs::core::rules::packs;
use thorbis_obs::core::testing::InMemoryChannel;
use thorbis_obs::core::time::Timestamp;

fn main() {
    let mut engine = RuleEngine::new(packs::all()).expect("the built-in packs are valid");
    let channels: BTreeMap<&str, InMemoryChannel> =
        ["slack", "email", "sms", "pagerduty"].into_iter().map(|n| (n, InMemoryChannel::new(n))).collect();
    let start = Timestamp::from_secs(1_795_000_000);
    let labels = Labels::new().with("service", "api").with("route", "/work-orders");

    println!("minute  latency  notifications");
    for minute in 0..90u64 {
        let now = start.plus(Duration::from_secs(minute * 60));
        if minute == 50 {
            engine.activate_condition("deployment_in_progress", now, Some(Duration::from_secs(20 * 60)));
            println!("{minute:>6}  -------  deployment_in_progress switched on for 20m");
        }
        let spike = (10..35).contains(&minute) || (55..65).contains(&minute);
        let latency = if spike { 2600.0 } else { 350.0 };
        // Four requests a minute, 15 s apart.
        for k in 0..4 {
            let at = now.minus(Duration::from_secs(45 - k * 15));
            engine
                .ingest(&Sample::new(packs::HTTP_REQUEST_DURATION, labels.clone(), latency, at))
                .expect("valid sample");
        }
        for n in engine.evaluate(now) {
            println!("{minute:>6}  {latency:>7}  {} -> {}", n.headline(), n.channels.join(", "));
            for ch in &n.channels {
                if let Some(c) = channels.get(ch.as_str()) {
                    futures_executor::block_on(c.send(&n)).expect("in-memory channel accepts");
                }
            }
        }
    }
    println!();
    for (name, ch) in &channels {
        let kinds: Vec<&str> = ch.sent().iter().map(|n| n.kind.as_str()).collect();
        println!("{name:>9}: {} notifications {:?}", kinds.len(), kinds);
    }
}
