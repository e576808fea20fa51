//! The peer the OTLP intake's cost is measured against (`scripts/bench-otlp.sh`): a bare axum
//! handler that only decodes the protobuf body into opentelemetry-proto's
//! `ExportTraceServiceRequest` with prost and answers 200. No token, limits, span checks or
//! metrics.
//!
//! `cargo run --release -p thorbis-obs-server --example bare_otlp -- 127.0.0.1:4319`
//! `cargo run --release -p thorbis-obs-server --example bare_otlp -- --write-body FILE SPANS`
//! writes the benchmark's request: SPANS spans (the SDKs' batch is 512) of a Next.js-like
//! service, ending now: SERVER spans on 500 routes, database and external CLIENT spans.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

async fn ingest(body: Bytes) -> StatusCode {
    match ExportTraceServiceRequest::decode(body) {
        Ok(r) if !r.resource_spans.is_empty() => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// `n` spans ending about now: 3 in 5 SERVER spans over 500 routes (1 in 50 answering 500),
/// 1 in 5 database queries, 1 in 5 external calls.
fn request(n: usize) -> ExportTraceServiceRequest {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let spans = (0..n)
        .map(|i| {
            let (kind, name, attributes) = match i % 5 {
                0..=2 => {
                    let route = format!("/api/r{}/[id]", i % 500);
                    let code = if i % 50 == 0 { 500 } else { 200 };
                    (
                        2,
                        format!("GET {route}"),
                        vec![
                            kv("http.route", s(&route)),
                            kv("http.request.method", s("GET")),
                            kv("http.response.status_code", Value::IntValue(code)),
                            kv("url.path", s(&format!("/api/r{}/{}", i % 500, 1000 + i))),
                            kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")),
                        ],
                    )
                }
                3 => (
                    3,
                    "SELECT invoices".into(),
                    vec![
                        kv("db.system.name", s("postgresql")),
                        kv("db.operation.name", s("SELECT")),
                        kv("db.collection.name", s("invoices")),
                        kv("db.query.text", s("SELECT * FROM invoices WHERE account_id = $1 ORDER BY created_at DESC")),
                    ],
                ),
                _ => (
                    3,
                    "POST".into(),
                    vec![
                        kv("server.address", s("api.stripe.com")),
                        kv("http.request.method", s("POST")),
                        kv("http.response.status_code", Value::IntValue(200)),
                    ],
                ),
            };
            let start = now - 50_000_000 - (i as u64 % 97) * 1_000_000;
            Span {
                trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if i % 5 >= 3 { (i as u64).to_be_bytes().to_vec() } else { Vec::new() },
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000 + (i as u64 % 400) * 1_000_000,
                attributes,
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("thorbis-web")),
                    kv("deployment.environment.name", s("bench")),
                    kv("telemetry.sdk.language", s("nodejs")),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write-body") {
        let path = args.get(1).cloned().unwrap_or_else(|| "otlp-body.bin".into());
        let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(512);
        std::fs::write(&path, request(n).encode_to_vec())?;
        return Ok(());
    }
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:4319".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare_otlp listening on {addr}");
    axum::serve(listener, Router::new().route("/v1/traces", post(ingest))).await
}
