#!/usr/bin/env bash
# What host::RequestMetrics adds to a request over loopback, against axum-prometheus (see
# scripts/host_bench.py), then the `metrics` recorder's throughput against
# metrics-exporter-prometheus's (thorbis-obs-server/examples/host_recorder_bench.rs).
#   bash scripts/bench-host.sh        SECONDS_EACH=5 ROUNDS=5 RATE=5000
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v oha >/dev/null; then
  echo "== installing oha (cargo install oha --locked)"
  cargo install -q oha --version 1.16.0 --locked
fi
cargo build -q --release -p thorbis-obs-server --example host_http_server --example host_recorder_bench
target="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
echo "== the request layer over loopback"
python3 scripts/host_bench.py "$target/examples/host_http_server"
echo "== the metrics recorder"
"$target/examples/host_recorder_bench"
