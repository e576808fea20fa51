#!/usr/bin/env bash
# Outbox throughput on SQLite and on a throwaway PostgreSQL cluster.
#   bash scripts/bench-outbox.sh        (OUTBOX_N=2000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-cluster.sh
source scripts/pg-cluster.sh
trap stop_postgres EXIT
start_postgres
cargo bench -q -p thorbis-obs-server --bench outbox --features postgres 2>/dev/null | grep '^outbox'
