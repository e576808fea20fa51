# Sourced by scripts/test.sh: a throwaway PostgreSQL cluster from the machine's PostgreSQL
# binaries, on a free loopback port, in a temp dir; stopped and removed on exit.
# Exports THORBIS_TEST_PG_URL. initdb refuses root, so as root it runs as `postgres`.

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
  local bindir port as_pg=()
  bindir=$(pg_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "== installing PostgreSQL server binaries (Debian package postgresql)"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 || true
    fi
    bindir=$(pg_bindir)
  fi
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin." >&2
    echo "Install them (Debian: apt-get install postgresql) and run this script again." >&2
    return 1
  fi
  PG_TMP=$(mktemp -d /tmp/thorbis-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_TMP"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$bindir/initdb" -D "$PG_TMP/data" -U postgres -A trust --no-sync >"$PG_TMP/initdb.log" 2>&1 \
    || { cat "$PG_TMP/initdb.log" >&2; return 1; }
  PG_OPTS="-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 -c shared_preload_libraries=pg_stat_statements"
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -o "$PG_OPTS" start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; return 1; }
  PG_BINDIR=$bindir
  PG_AS=("${as_pg[@]}")
  export THORBIS_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  # For the tests that restart the server and start a streaming replica.
  export THORBIS_TEST_PG_BINDIR="$bindir" THORBIS_TEST_PG_TMP="$PG_TMP" THORBIS_TEST_PG_AS="${as_pg[*]}"
  export THORBIS_TEST_PG_CTL="${as_pg[*]} $bindir/pg_ctl -D $PG_TMP/data -l $PG_TMP/server.log -o '$PG_OPTS'"
  echo "== PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (throwaway, $PG_TMP)"
}

stop_postgres() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
    "${PG_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}
