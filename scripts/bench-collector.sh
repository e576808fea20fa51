#!/usr/bin/env bash
# RUM collector ingest benchmark (see scripts/collector_bench.py): oha (installed from crates.io
# when missing) posts the same 50-event batch on loopback to the agent's POST /v1/rum and, side by
# side in one run, to a bare axum handler that only parses the JSON
# (thorbis-obs-server/examples/bare_ingest.rs). Prints events/s at saturation, p99 latency at a
# fixed 10,000 events/s, and the CPU cost ratio per batch.
#   bash scripts/bench-collector.sh        SECONDS_EACH=10 CONNECTIONS=32 RATE_EVENTS=10000 ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v oha >/dev/null; then
  echo "== installing oha (cargo install oha --locked)"
  cargo install -q oha --version 1.16.0 --locked
fi
cargo build -q --release -p thorbis-obs-server --bin thorbis-obs --example bare_ingest
target="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
python3 scripts/collector_bench.py "$target/thorbis-obs" "$target/examples/bare_ingest"
