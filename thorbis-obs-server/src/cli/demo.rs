//! `thorbis-obs demo`: the agent on its embedded default config plus simulated traffic, so a
//! newcomer sees every board fill and one alert go through its whole life on the console.
//!
//! The traffic goes through the agent's real intakes over loopback, as an app's would: browser
//! batches to `/v1/rum` (web vitals, page loads, resources, API requests, business events,
//! journeys, conversions, now and then an error) and OTLP/HTTP protobuf spans to `/v1/traces`
//! (a `demo-shop` service with a checkout and a work-order route). The agent's own uptime check
//! of its health endpoint (in the default config) fills the uptime board, and the `host` source
//! the host's figures.
//!
//! The incident, in units of `--pace` (10 s by default): from 3 to 9 the checkout route slows
//! from about 120 ms to about 1,500 ms. The demo rule `Demo Checkout Slow` (average over one
//! unit above 800 ms) fires as a warning soon after 3, escalates to error 3 units later, and
//! resolves soon after 9: about 35 s, 65 s and 100 s in. The console channel prints each.

use crate::config::{DEFAULT_CONFIG, LoadedConfig, LogFormat};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `thorbis-obs demo`
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the agent listens.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// The incident's time unit in seconds: slow from 3 to 9 units, the rule's window one unit,
    /// its escalation after three.
    #[arg(long, default_value_t = 10.0)]
    pace: f64,
    /// Stop after this long (e.g. `3m`); without it the demo runs until Ctrl-C.
    #[arg(long = "for")]
    run_for: Option<thorbis_obs_core::time::HumanDuration>,
}

/// The client token the demo's pages use.
const DEMO_TOKEN: &str = "demo-client-token";

/// The demo's business database in its state directory: the spec's tables in SQLite, seeded
/// relative to now, for the executive board's SQL widgets.
const BUSINESS_DB: &str = "business.db";

/// Creates (or refreshes) the demo's business database in `dir`.
pub(super) fn business_database(dir: &std::path::Path) -> Result<(), String> {
    let conn = rusqlite::Connection::open(dir.join(BUSINESS_DB)).map_err(|e| e.to_string())?;
    conn.execute_batch(include_str!("demo_business.sql")).map_err(|e| format!("the business seed: {e}"))
}

/// The embedded default config with the demo's changes: state in `dir`, listening on `listen`,
/// short windows and evaluations for `pace`, a client token for the pages, the demo rule.
/// Fails naming a line of the default config that is no longer there.
pub(super) fn demo_config(dir: &std::path::Path, listen: SocketAddr, pace: Duration) -> Result<String, String> {
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    let window = ms(pace.mul_f64(2.0).max(Duration::from_secs(1)));
    let mut text = DEFAULT_CONFIG.to_string();
    for (from, to) in [
        (
            "data_dir = \"./thorbis-data\"",
            format!(
                "data_dir = {:?}\nbusiness_database = {:?}",
                dir.display().to_string(),
                format!("sqlite:{}", dir.join(BUSINESS_DB).display())
            ),
        ),
        ("evaluation_interval = \"15s\"", format!("evaluation_interval = \"{}\"", ms(pace / 5))),
        ("listen = \"127.0.0.1:9464\"", format!("listen = \"{listen}\"")),
        (
            "url = \"http://127.0.0.1:9464/healthz\"\ninterval = \"30s\"",
            format!("url = \"http://{listen}/healthz\"\ninterval = \"{}\"", ms(pace.max(Duration::from_secs(1)))),
        ),
        (
            "[collector]\nwindow = \"60s\"",
            format!(
                "[collector]\nwindow = \"{window}\"\nclient_tokens = [\"{DEMO_TOKEN}\"]\nsession_idle = \"{window}\""
            ),
        ),
    ] {
        if !text.contains(from) {
            return Err(format!("the default config no longer has `{from}`"));
        }
        text = text.replacen(from, &to, 1);
    }
    let unit = pace.as_secs_f64();
    text.push_str(&format!(
        r#"
[otlp]
window = "{window}"

[[rules.inline]]
id = "demo-checkout-slow"
name = "Demo Checkout Slow"
description = "The demo's checkout route averages over 800 ms"
metric = "http_request_duration"
matchers = {{ service = "demo-shop", route = "/api/checkout" }}
severity = "warning"
channels = ["slack"]
escalation = [{{ after = "{escalate}", severity = "error", channels = ["slack", "pagerduty"] }}]
condition = {{ operator = "greater_than", threshold = 800, duration = "{rule_window}", aggregation = "avg" }}
annotations = {{ summary = "{{{{ $labels.route }}}} of {{{{ $labels.service }}}} averages {{{{ $value | humanizeMillis }}}} (over 800ms)" }}
"#,
        escalate = ms(Duration::from_secs_f64(unit * 3.0)),
        rule_window = window,
    ));
    Ok(text)
}

/// Runs the demo.
pub(super) fn demo(args: DemoArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    if !(args.pace.is_finite() && (0.2..=600.0).contains(&args.pace)) {
        let _ = writeln!(err, "--pace must be between 0.2 and 600 seconds");
        return ExitCode::FAILURE;
    }
    let pace = Duration::from_secs_f64(args.pace);
    let dir = std::env::temp_dir().join(format!("thorbis-obs-demo-{}", std::process::id()));
    let file = dir.join("demo.toml");
    let written = demo_config(&dir, args.listen, pace)
        .and_then(|text| {
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, text)).map_err(|e| e.to_string())
        })
        .and_then(|()| business_database(&dir));
    if let Err(e) = written {
        let _ = writeln!(err, "cannot write the demo's config: {e}");
        return ExitCode::FAILURE;
    }
    let loaded = match LoadedConfig::from_file(&file) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(err, "the demo's config is invalid:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::init(LogFormat::Text);
    let base = format!("http://{}", args.listen);
    let unit = args.pace;
    let _ = writeln!(
        out,
        "thorbis-obs demo: the agent on its default config with simulated traffic (state in {})\n\
         boards:   {base}/dashboards/operations and {base}/dashboards/executive\n\
         alerts:   the operations board's active alerts, {base}/api/v1/alerts and the console below\n\
         errors:   the operations board's error table (each group links its page), traces: {base}/traces\n\
         incident: the checkout route slows from {:.0} s to {:.0} s; `Demo Checkout Slow` fires, escalates after {:.0} s and resolves",
        dir.display(),
        3.0 * unit,
        9.0 * unit,
        3.0 * unit,
    );
    let _ = out.flush();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_for = args.run_for.map(|d| d.get());
    let result = runtime.block_on(async move {
        let traffic = tokio::spawn(traffic(base, pace));
        let stop = async move {
            match run_for {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = super::shutdown_signal() => {}
                    }
                }
                None => super::shutdown_signal().await,
            }
        };
        let r = crate::agent::run_reloadable(loaded, stop).await;
        traffic.abort();
        r
    });
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "thorbis-obs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A small deterministic generator: the demo needs variety, not randomness.
struct Noise(u64);

impl Noise {
    /// A value in `[0, 1)`.
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `around` give or take `spread` (a share of it).
    fn around(&mut self, around: f64, spread: f64) -> f64 {
        around * (1.0 + spread * (2.0 * self.next() - 1.0))
    }
}

/// Sends a browser batch and a batch of spans every fifth of `pace` until aborted.
async fn traffic(base: String, pace: Duration) {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(5)).build() else { return };
    let started = Instant::now();
    let tick = (pace / 5).max(Duration::from_millis(50));
    let mut noise = Noise(42);
    let mut interval = tokio::time::interval(tick);
    // The agent needs a moment to bind its listener: failed sends are just tried next tick.
    for n in 0u64.. {
        interval.tick().await;
        let units = started.elapsed().as_secs_f64() / pace.as_secs_f64();
        let slow = (3.0..9.0).contains(&units);
        let rum = browser_batch(n, &mut noise);
        let _ = client
            .post(format!("{base}/v1/rum?token={DEMO_TOKEN}"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 thorbis-obs-demo")
            .body(rum)
            .send()
            .await;
        let spans = spans(n, slow, &mut noise).encode_to_vec();
        let _ = client
            .post(format!("{base}/v1/traces"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(spans)
            .send()
            .await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One page view's batch: its vitals and load, a script and an API request, a business event,
/// a journey step, sometimes a conversion or an error.
fn browser_batch(n: u64, noise: &mut Noise) -> String {
    let at = now_ms();
    let route = ["/hs/work-orders/1042", "/hs/dispatch", "/hs/invoices/77"][(n % 3) as usize];
    let session = format!("demo-session-{}", n % 7);
    let lcp = noise.around(1900.0, 0.35);
    let inp = noise.around(140.0, 0.5);
    let cls = noise.around(0.06, 0.8);
    let load = noise.around(1600.0, 0.3);
    let api_ms = noise.around(180.0, 0.5);
    let status = if n % 25 == 0 { 502 } else { 200 };
    let mut events = vec![
        format!(r#"{{"type":"vital","at":{at},"name":"LCP","value":{lcp:.1},"rating":"good","id":"l{n}"}}"#),
        format!(r#"{{"type":"vital","at":{at},"name":"INP","value":{inp:.1},"rating":"good","id":"i{n}"}}"#),
        format!(r#"{{"type":"vital","at":{at},"name":"CLS","value":{cls:.4},"rating":"good","id":"c{n}"}}"#),
        format!(r#"{{"type":"timing","at":{at},"name":"page_load_complete","durationMs":{load:.1}}}"#),
        format!(
            r#"{{"type":"resource","at":{at},"url":"https://shop.demo/_next/static/chunks/main.js","kind":"script","transferBytes":{},"durationMs":40}}"#,
            120_000 + (n % 5) * 9_000
        ),
        format!(
            r#"{{"type":"resource","at":{at},"url":"https://shop.demo/api/work-orders/{}","kind":"other","transferBytes":900,"durationMs":{api_ms:.1},"status":{status}}}"#,
            1000 + n % 50
        ),
        format!(
            r#"{{"type":"business","at":{at},"name":"work_order_created","props":{{"industry":"home-services","estimatedValue":{}}}}}"#,
            200 + (n % 9) * 50
        ),
        format!(
            r#"{{"type":"journey","at":{at},"journeyType":"work-order","step":"{}"}}"#,
            ["opened", "details-entered", "scheduled"][(n % 3) as usize]
        ),
    ];
    if n % 3 == 0 {
        let amount = 300 + (n % 7) * 40;
        events.push(format!(
            r#"{{"type":"business","at":{at},"name":"invoice_generated","props":{{"amount":{amount}}}}}"#
        ));
    }
    if n % 4 == 0 {
        events.push(format!(
            r#"{{"type":"business","at":{at},"name":"payment_processed","props":{{"amount":450,"method":"card","status":"succeeded"}}}}"#
        ));
        events.push(format!(r#"{{"type":"conversion","at":{at},"conversionType":"invoice-paid","value":450}}"#));
    }
    if n % 30 == 7 {
        events.push(format!(
            r#"{{"type":"error","at":{at},"kind":"error","message":"TypeError: Cannot read properties of undefined (reading 'total')","stack":"TypeError: Cannot read properties of undefined (reading 'total')\n    at InvoiceTotals (https://shop.demo/_next/static/chunks/invoice.js:1:2042)","count":1}}"#
        ));
    }
    format!(
        r#"{{"v":1,"service":"demo-shop","env":"demo","version":"1.0.0","session":{{"id":"{session}","sampled":true,"startedAt":{at},"sampleRate":100}},"view":{{"id":"view-{n}","url":"https://shop.demo{route}","route":"{route}"}},"sentAt":{at},"events":[{}]}}"#,
        events.join(",")
    )
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn text(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// Two checkouts (slow during the incident) and a work-order read, as SERVER spans ending now.
fn spans(n: u64, slow: bool, noise: &mut Noise) -> ExportTraceServiceRequest {
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let checkout = if slow { 1500.0 } else { 120.0 };
    let mut list = Vec::new();
    for (i, (method, route, ms)) in [
        ("POST", "/api/checkout", checkout),
        ("POST", "/api/checkout", checkout),
        ("GET", "/api/work-orders/{id}", 90.0),
    ]
    .into_iter()
    .enumerate()
    {
        let ms = noise.around(ms, 0.2);
        let code = if (n + i as u64) % 97 == 0 { 500 } else { 200 };
        let id = u128::from(n) << 8 | i as u128 | 1 << 100;
        list.push(Span {
            trace_id: id.to_be_bytes().to_vec(),
            span_id: ((n << 4) | i as u64 | 1 << 60).to_be_bytes().to_vec(),
            name: format!("{method} {route}"),
            kind: 2,
            start_time_unix_nano: end - (ms * 1e6) as u64,
            end_time_unix_nano: end,
            attributes: vec![
                kv("http.route", text(route)),
                kv("http.request.method", text(method)),
                kv("http.response.status_code", Value::IntValue(code)),
            ],
            ..Span::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("demo-shop")),
                    kv("deployment.environment.name", text("demo")),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans: list, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid_and_every_batch_passes_the_wire_checks() {
        let dir = std::env::temp_dir().join("thorbis-demo-config-test");
        let text =
            demo_config(&dir, "127.0.0.1:19464".parse().expect("addr"), Duration::from_secs(10)).expect("config");
        let file = dir.join("demo.toml");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(&file, &text).expect("write");
        let loaded = LoadedConfig::from_file(&file).expect("the demo's config loads");
        assert!(loaded.rules.iter().any(|r| r.id == "demo-checkout-slow"));
        let business = loaded.config.agent.business_database.as_ref().map(|s| s.expose().to_string());
        assert_eq!(business, Some(format!("sqlite:{}", dir.join(BUSINESS_DB).display())));
        // Seeding twice gives the same rows (a restarted demo in the same directory).
        business_database(&dir).expect("seed");
        business_database(&dir).expect("seed again");
        let conn = rusqlite::Connection::open(dir.join(BUSINESS_DB)).expect("open");
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM invoices", [], |r| r.get(0)).expect("count");
        assert_eq!(n, 6);
        let _ = std::fs::remove_dir_all(&dir);
        let mut noise = Noise(1);
        for n in 0..60 {
            let b: thorbis_obs_core::wire::Batch = serde_json::from_str(&browser_batch(n, &mut noise)).expect("json");
            b.validate().unwrap_or_else(|e| panic!("batch {n}: {} at {}", e.message(), e.path()));
        }
        let s = spans(3, true, &mut noise);
        assert_eq!(s.resource_spans[0].scope_spans[0].spans.len(), 3);
    }
}
