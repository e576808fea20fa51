#!/usr/bin/env bash
# Idle agent on the embedded default config: resident memory and CPU over a window.
#   bash scripts/bench-agent-idle.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cargo build -q --release -p thorbis-obs-server --bin thorbis-obs
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/thorbis-obs"
work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && exec "$bin" run >/dev/null 2>"$work/agent.log") &
pid=$!
sleep 3
tick=$(getconf CLK_TCK)
cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$secs"
cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$cpu0" "$cpu1" "$tick" "$secs" "$rss_kb" "$hwm_kb" <<'PY'
import sys
c0, c1, tick, secs, rss, hwm = map(float, sys.argv[1:])
cpu = (c1 - c0) / tick / secs * 100
print(f"idle agent, default config, {secs:.0f} s: RSS {rss/1024:.1f} MiB (peak {hwm/1024:.1f} MiB; target <= 20 MB), "
      f"CPU {cpu:.2f}% of one core (target < 1%)")
PY
