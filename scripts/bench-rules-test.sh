#!/usr/bin/env bash
# `thorbis-obs rules test` against `promtool test rules` (Debian package prometheus) on the same
# generated scenario (100 rules, 10,000 samples): prints both medians, the ratio and whether
# the verdicts agree.   bash scripts/bench-rules-test.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a Prometheus server we do not need.
  (systemctl stop prometheus 2>/dev/null || service prometheus stop 2>/dev/null || pkill -x prometheus || true) >/dev/null 2>&1
fi
cargo build -q --release -p thorbis-obs-server
target="${CARGO_TARGET_DIR:-target}"
promtool --version 2>&1 | head -1
python3 scripts/promtool_compare.py --ours "$target/release/thorbis-obs" "$@"
