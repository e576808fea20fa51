#!/usr/bin/env bash
# The `prometheus` source against Prometheus' own scrape of node_exporter, and the `host`
# source's cost per collection (see scripts/scrape_bench.py). Debian's prometheus and
# prometheus-node-exporter are installed when missing.
#   bash scripts/bench-scrape.sh [--seconds 30] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus >/dev/null || [ ! -x /usr/bin/prometheus-node-exporter ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-node-exporter >/dev/null
  (pkill -x prometheus; pkill -f /usr/bin/prometheus-node-exporter) >/dev/null 2>&1 || true
fi
cargo build -q --release -p thorbis-obs-server
target="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
prometheus --version 2>&1 | head -1
python3 scripts/scrape_bench.py --agent "$target/thorbis-obs" "$@"
