#!/usr/bin/env bash
# Our PostgreSQL probe against prometheus-postgres-exporter (Debian package, 0.11) on the same
# throwaway database: wall time, client CPU and queries per collection.
#   bash scripts/bench-pg-probe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus-postgres-exporter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-postgres-exporter >/dev/null
  (systemctl stop prometheus-postgres-exporter || pkill -f prometheus-postgres-exporter || true) >/dev/null 2>&1
fi
# shellcheck source=scripts/pg-cluster.sh
source scripts/pg-cluster.sh
trap stop_postgres EXIT
start_postgres
cargo bench -q -p thorbis-obs-server --bench pg_probe --features postgres 2>/dev/null
