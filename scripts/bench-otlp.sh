#!/usr/bin/env bash
# OTLP intake benchmark (see scripts/otlp_bench.py): oha (installed from crates.io when missing)
# posts the same protobuf request of 512 spans (the OpenTelemetry SDKs' batch) on loopback to the
# agent's POST /v1/traces and, side by side in one run, to a bare axum handler that only decodes
# it with prost (thorbis-obs-server/examples/bare_otlp.rs). Prints spans/s at saturation, p99
# latency at a fixed 20,000 spans/s, the CPU cost ratio per span, and the agent's RSS after a
# sustained run at that rate.
#   bash scripts/bench-otlp.sh        SECONDS_EACH=10 CONNECTIONS=16 RATE_SPANS=20000 ROUNDS=3 SUSTAIN=600
#                                     TRACES=false (the intake alone, without the trace store)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v oha >/dev/null; then
  echo "== installing oha (cargo install oha --locked)"
  cargo install -q oha --version 1.16.0 --locked
fi
cargo build -q --release -p thorbis-obs-server --bin thorbis-obs --example bare_otlp
target="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
python3 scripts/otlp_bench.py "$target/thorbis-obs" "$target/examples/bare_otlp"
