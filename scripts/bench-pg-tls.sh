#!/usr/bin/env bash
# TLS against plain TCP to one local PostgreSQL cluster (see
# thorbis-obs-server/examples/pg_tls_bench.rs): a throwaway cluster, a CA and a server
# certificate for localhost made with openssl, ssl switched on by a reload.
#   bash scripts/bench-pg-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-cluster.sh
source scripts/pg-cluster.sh
trap stop_postgres EXIT
start_postgres
certs=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > "$certs/ext"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" -CAcreateserial -days 2 \
  -extfile "$certs/ext" -out "$certs/server.crt" 2>/dev/null
cp "$certs/server.crt" "$certs/server.key" "$PG_TMP/data/"
if [ "$(id -u)" = 0 ]; then chown postgres "$PG_TMP/data/server.crt" "$PG_TMP/data/server.key"; fi
chmod 600 "$PG_TMP/data/server.key"
port=$(echo "$THORBIS_TEST_PG_URL" | sed 's|.*:\([0-9]*\)/.*|\1|')
psql_() { "$PG_BINDIR/psql" -qtA -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$1"; }
psql_ "ALTER SYSTEM SET ssl = on" >/dev/null
psql_ "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do [ "$(psql_ "SHOW ssl")" = on ] && break; sleep 0.1; done
export PG_TLS_ROOT="$certs/ca.pem"
cargo run -q --release -p thorbis-obs-server --example pg_tls_bench
rm -rf "$certs"
