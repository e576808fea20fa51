//! The peer the collector's cost is measured against (`scripts/bench-collector.sh`): a bare axum
//! handler that only parses the same JSON into core's wire `Batch` and answers 202. No
//! validation, limits, origin or token checks, and no aggregation.
//!
//! `cargo run --release -p thorbis-obs-server --example bare_ingest -- 127.0.0.1:9465`

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use thorbis_obs_core::wire::Batch;

async fn ingest(body: axum::body::Bytes) -> StatusCode {
    match serde_json::from_slice::<Batch>(&body) {
        Ok(b) if !b.events.is_empty() => StatusCode::ACCEPTED,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9465".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare_ingest listening on {addr}");
    axum::serve(listener, Router::new().route("/v1/rum", post(ingest))).await
}
