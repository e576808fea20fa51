//! The RUM collector (feature `collector`): `POST /v1/rum` takes the browser SDK's batches,
//! checks them strictly, and counts them into one-minute windows (core's [`RumWindow`]); each
//! closed window becomes samples in the rule engine (and so in `/metrics`): web vitals p75 per
//! route and device, ratings, error rate, business events, conversions, journeys, budget
//! violations.
//!
//! What a request goes through, in order, each refusal a JSON `{"error", "field"}`:
//! 1. `Origin`: when `allowed_origins` is set, another origin gets 403;
//! 2. client token (`?token=` or `X-Thorbis-Token`): when `client_tokens` is set, a missing or
//!    unknown one gets 401;
//! 3. rate limits per client token and per IP: 429 with `Retry-After`;
//! 4. `Content-Type` `text/plain` (what `sendBeacon` sends, no CORS preflight) or
//!    `application/json`, else 415; a body over 64 KiB gets 413;
//! 5. JSON parsing and core's wire validation: 400 naming the field (`events[3].value`). A bad
//!    batch is refused whole: nothing of it is counted.
//!
//! `OPTIONS /v1/rum` answers CORS preflights for allowed origins (the SDK needs none: it sends
//! `text/plain`).
//!
//! `[collector]` is read whatever the features; without the `collector` feature the agent
//! serves no `/v1/rum`.
//!
//! Spans the SDK sends (traced `fetch`/`XMLHttpRequest` calls and `startSpan`) go to the
//! trace store through a [`SpanSink`] the agent hands down, with the trace ids browser errors
//! point at; each accepted batch also becomes rows of its session's timeline
//! (`GET /sessions/{id}`, `GET /api/v1/sessions/{id}`; see [`timeline`]).
//!
//! Files: `decode` (body to batch), `state` (windows, sessions, limits, the closing loop),
//! `routes` (HTTP), `summary` (the rollup), `limit` (GCRA), `otlp` (export), `timeline`
//! (session timelines), `replay` (session replay chunks, `POST /v1/replay`).

#[cfg(feature = "collector")]
mod decode;
#[cfg(feature = "collector")]
mod error_page;
/// The error groups' book: releases, regressions, statuses.
#[cfg(feature = "collector")]
pub mod issues;
#[cfg(feature = "collector")]
pub mod limit;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "collector")]
mod replay;
#[cfg(feature = "collector")]
mod routes;
#[cfg(feature = "collector")]
mod state;
#[cfg(feature = "collector")]
pub mod summary;
#[cfg(feature = "collector")]
pub mod timeline;

#[cfg(feature = "collector")]
pub use decode::{Rejection, decode};
#[cfg(feature = "collector")]
pub use routes::CollectorService;
#[cfg(feature = "collector")]
pub use state::{Collector, MERGED_CACHED, MERGED_FRESH_MS, OUTCOMES, REPLAY_OUTCOMES, SpanSink, Stats, run_windows};

use crate::secret::Secret;
use serde::Deserialize;
use thorbis_obs_core::time::HumanDuration;

/// `[collector]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// Serve `POST /v1/rum` on the agent's HTTP listener. Default true.
    pub enabled: bool,
    /// Client tokens the SDK may send (`clientToken`); empty: none needed. They are public (they
    /// ship in the page) and identify the app for rate limiting; they are not credentials.
    pub client_tokens: Vec<Secret>,
    /// Origins (`https://app.example.com`) allowed to send; empty: any.
    pub allowed_origins: Vec<String>,
    /// Aggregation window. Default 60 s, as the spec reports.
    pub window: HumanDuration,
    /// Batches a minute per IP (0: no limit). Default 600, bursts of a tenth.
    pub per_ip_per_minute: u32,
    /// Batches a minute per client token (0: no limit). Default 60,000.
    pub per_token_per_minute: u32,
    /// A session without a batch for this long has ended (its duration and bounce are then
    /// counted). Default 15 minutes, the SDK's.
    pub session_idle: HumanDuration,
    /// Push each closed window's figures (as OTLP gauges) and its browser errors (as OTLP logs)
    /// to an OpenTelemetry collector or a Datadog agent (feature `otlp`).
    pub otlp: Option<OtlpSection>,
    /// Proxies (CIDRs such as `127.0.0.1/32` or `10.0.0.0/8`) whose `X-Forwarded-For` is
    /// believed: when the peer is one of them, the client is the rightmost address of the
    /// header that is not (what the nearest untrusted hop said; anything left of it the client
    /// wrote itself). Default none: the peer address.
    pub trusted_proxies: Vec<String>,
    /// Replaced by `trusted_proxies`; refused with a hint when set.
    pub trust_forwarded_for: Option<bool>,
    /// How long session timelines (`/sessions/{id}`) are kept. Default 72 h, as traces.
    pub timeline_retention: HumanDuration,
    /// Timeline events kept in all, at most (the oldest go first); 0: no timelines. Default
    /// 1,000,000.
    pub timeline_max_events: u64,
    /// The address people open this agent's pages at (`https://obs.example.com`), for the
    /// links in notifications (`url` of the `errors` pack's alerts). Default none: the links
    /// are paths (`/errors/{group}`).
    pub public_url: Option<String>,
    /// How long an error group no one saw again is kept (its figures and status). Default 90 d.
    pub error_retention: HumanDuration,
    /// Session replay chunks (`POST /v1/replay`).
    pub replay: ReplaySection,
}

/// `[collector.replay]`: what `POST /v1/replay` takes and the store keeps. The endpoint has
/// `/v1/rum`'s origin allowlist, client tokens and rate limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySection {
    /// Serve `POST /v1/replay`. Default true.
    pub enabled: bool,
    /// A chunk as sent (gzip or plain JSON), at most; larger: 413. Default 256 KiB.
    pub max_chunk_bytes: usize,
    /// A chunk's events once inflated, at most; larger: 413. Default 4 MiB.
    pub max_inflated_bytes: usize,
    /// Chunk bodies being read at once, at most, in bytes (each counts its declared length);
    /// a chunk that finds no room gets 503 with `Retry-After`. Default 16 MiB.
    pub max_inflight_bytes: usize,
    /// Compressed bytes one session keeps, at most; its further chunks are refused (413).
    /// Default 8 MiB (a busy page's hour is about 2 MiB).
    pub max_session_bytes: u64,
    /// A session's replay is kept this long after its last chunk. Default 7 d.
    pub retention: HumanDuration,
    /// Compressed bytes kept in all, at most: whole sessions go, the earliest ended first.
    /// Default 1 GiB.
    pub max_total_bytes: u64,
    /// How often the retention and the total cap are enforced (the total may run over by what
    /// arrives in between). Default 30 s.
    pub prune_interval: HumanDuration,
}

impl Default for ReplaySection {
    fn default() -> Self {
        ReplaySection {
            enabled: true,
            max_chunk_bytes: 256 << 10,
            max_inflated_bytes: 4 << 20,
            max_inflight_bytes: 16 << 20,
            max_session_bytes: 8 << 20,
            retention: HumanDuration::from_secs(7 * 86400),
            max_total_bytes: 1 << 30,
            prune_interval: HumanDuration::from_secs(30),
        }
    }
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            enabled: true,
            client_tokens: Vec::new(),
            allowed_origins: Vec::new(),
            window: HumanDuration::from_secs(60),
            per_ip_per_minute: 600,
            per_token_per_minute: 60_000,
            session_idle: HumanDuration::from_secs(15 * 60),
            otlp: None,
            trusted_proxies: Vec::new(),
            trust_forwarded_for: None,
            timeline_retention: HumanDuration::from_secs(72 * 3600),
            timeline_max_events: 1_000_000,
            public_url: None,
            error_retention: HumanDuration::from_secs(90 * 86400),
            replay: ReplaySection::default(),
        }
    }
}

/// `[collector.otlp]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSection {
    /// The receiver's base URL (`/v1/metrics` and `/v1/logs` are added), e.g.
    /// `http://127.0.0.1:4318` for a collector or a Datadog agent with OTLP on.
    pub endpoint: String,
    /// `http/protobuf` (default) or `http/json`.
    #[serde(default = "default_otlp_protocol")]
    pub protocol: String,
    /// Extra headers (secrets: an API key, say).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
}

fn default_otlp_protocol() -> String {
    "http/protobuf".into()
}

/// What the collector writes into the engine (see [`thorbis_obs_core::rules::coverage`]).
pub fn producers(c: &CollectorSection) -> Vec<thorbis_obs_core::rules::coverage::Producer> {
    if !c.enabled || !cfg!(feature = "collector") {
        return Vec::new();
    }
    vec![thorbis_obs_core::rules::coverage::Producer::new(
        "collector (browser SDK, /v1/rum)",
        [
            "web_vitals_*",
            "rum_*",
            "business_events",
            "business_value",
            "conversions",
            "conversion_value",
            "journey_steps",
            "payments",
            "payment_failure_rate",
        ],
    )]
}

/// Problems in `[collector]`, as (path, message).
pub fn problems(c: &CollectorSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let w = c.window.get().as_secs_f64();
    if !(1.0..=3600.0).contains(&w) {
        out.push(("collector.window".into(), "between 1s and 1h".into()));
    }
    if c.timeline_retention.get() < std::time::Duration::from_secs(60) {
        out.push(("collector.timeline_retention".into(), "at least 1m".into()));
    }
    let r = &c.replay;
    if !(1024..=(16 << 20)).contains(&r.max_chunk_bytes) {
        out.push(("collector.replay.max_chunk_bytes".into(), "between 1 KiB and 16 MiB".into()));
    }
    if r.max_inflated_bytes < r.max_chunk_bytes || r.max_inflated_bytes > (64 << 20) {
        out.push(("collector.replay.max_inflated_bytes".into(), "between max_chunk_bytes and 64 MiB".into()));
    }
    if r.max_session_bytes < r.max_chunk_bytes as u64 || r.max_total_bytes < r.max_session_bytes {
        out.push((
            "collector.replay.max_session_bytes".into(),
            "at least max_chunk_bytes, at most max_total_bytes".into(),
        ));
    }
    if r.max_inflight_bytes < r.max_chunk_bytes {
        out.push(("collector.replay.max_inflight_bytes".into(), "at least max_chunk_bytes".into()));
    }
    if r.retention.get() < std::time::Duration::from_secs(60) {
        out.push(("collector.replay.retention".into(), "at least 1m".into()));
    }
    if r.prune_interval.get() < std::time::Duration::from_secs(1) {
        out.push(("collector.replay.prune_interval".into(), "at least 1s".into()));
    }
    if c.session_idle.get() < std::time::Duration::from_secs(1) {
        out.push(("collector.session_idle".into(), "at least 1s".into()));
    }
    for (i, o) in c.allowed_origins.iter().enumerate() {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && o.split_once("://").is_some_and(|(_, host)| !host.is_empty() && !host.contains('/'));
        if !ok {
            out.push((
                format!("collector.allowed_origins[{i}]"),
                format!("{o:?} is not an origin like https://app.example.com"),
            ));
        }
    }
    if let Some(o) = &c.otlp {
        if !crate::secret::is_http_url(&o.endpoint) {
            out.push(("collector.otlp.endpoint".into(), "an http:// or https:// URL".into()));
        }
        if o.protocol != "http/protobuf" && o.protocol != "http/json" {
            out.push(("collector.otlp.protocol".into(), format!("{:?}: http/protobuf or http/json", o.protocol)));
        }
    }
    if c.trust_forwarded_for.is_some() {
        out.push((
            "collector.trust_forwarded_for".into(),
            "replaced by trusted_proxies, the proxies whose X-Forwarded-For is believed, e.g. [\"127.0.0.1/32\"]"
                .into(),
        ));
    }
    for (i, p) in c.trusted_proxies.iter().enumerate() {
        if let Err(e) = parse_cidr(p) {
            out.push((format!("collector.trusted_proxies[{i}]"), e));
        }
    }
    if let Some(u) = &c.public_url {
        if !crate::secret::is_http_url(u) {
            out.push(("collector.public_url".into(), format!("{u:?} is not an http:// or https:// URL")));
        }
    }
    if c.error_retention.get() < std::time::Duration::from_secs(3600) {
        out.push(("collector.error_retention".into(), "at least 1h".into()));
    }
    for (i, t) in c.client_tokens.iter().enumerate() {
        if t.expose().trim().is_empty() {
            out.push((format!("collector.client_tokens[{i}]"), "must not be empty".into()));
        }
    }
    out
}

pub use crate::api::parse_cidr;

/// The client of a request from `peer`: when `peer` is a trusted proxy, the rightmost address
/// of `X-Forwarded-For` that is not one (the header's entries left of it are the client's own
/// words); else `peer`.
pub fn client_ip(peer: std::net::IpAddr, forwarded_for: Option<&str>, trusted: &[ipnet::IpNet]) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<std::net::IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage where an address should be: stop at the last address we could believe.
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_wrote() {
        let trusted = vec![parse_cidr("127.0.0.1").expect("addr"), parse_cidr("10.0.0.0/8").expect("cidr")];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let proxy = ip("127.0.0.1");
        // The client wrote "6.6.6.6" itself; the proxy appended the address it saw.
        assert_eq!(client_ip(proxy, Some("6.6.6.6, 203.0.113.7"), &trusted), ip("203.0.113.7"));
        // Through two trusted hops.
        assert_eq!(client_ip(proxy, Some("6.6.6.6, 203.0.113.7, 10.1.2.3"), &trusted), ip("203.0.113.7"));
        // An untrusted peer's header is not read at all.
        assert_eq!(client_ip(ip("198.51.100.1"), Some("1.2.3.4"), &trusted), ip("198.51.100.1"));
        // No header, or garbage: the nearest address we can believe.
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
        assert_eq!(client_ip(proxy, Some("nonsense"), &trusted), proxy);
        assert!(parse_cidr("10.0.0.0/33").is_err());
    }
}
