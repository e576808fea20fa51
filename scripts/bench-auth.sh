#!/usr/bin/env bash
# The cost of read authentication on a dashboard request and of a sign-in (see
# thorbis-obs-server/examples/auth_bench.rs): two agents in one process, open and gated.
#   bash scripts/bench-auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p thorbis-obs-server --example auth_bench
