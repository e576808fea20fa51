#!/usr/bin/env bash
# Uptime benchmarks (see scripts/uptime_bench.py): 1,000 endpoints at a 10 s interval on a
# local server (scheduling lag, agent CPU), then side by side with Debian's
# prometheus-blackbox-exporter (same verdicts on fault cases, CPU and wall per probe).
#   bash scripts/bench-uptime.sh            ENDPOINTS=1000 WINDOW=60 PROBES=300 by default
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus-blackbox-exporter >/dev/null; then
  echo "== installing prometheus-blackbox-exporter (Debian package)"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter >/dev/null
fi
cargo build -q --release -p thorbis-obs-server --bin thorbis-obs
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/thorbis-obs"
python3 scripts/uptime_bench.py "$bin"
