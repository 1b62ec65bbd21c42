#!/usr/bin/env bash
# ferretdb-postgres.sh CMD...: runs CMD with every embedded FerretDB (workbench/embedmongo, the
# tests' and the benchmarks' mongoproc children) on FerretDB's PostgreSQL backend instead of SQLite
# (issue 18). It starts Debian's PostgreSQL as a non-root cluster in a temporary directory on a
# Unix socket only (no TCP port is taken), exports OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL for CMD,
# and removes the cluster when CMD ends. Installs the postgresql package when it is missing.
#
#   scripts/ferretdb-postgres.sh go test -count=1 ./services/mapper/internal/syncusers/
#   BENCH_FERRETDB=postgresql make bench
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 CMD..." >&2
  exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then
  apt-get install -y -q postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
user=${FERRETDB_PG_USER:-postgres} # initdb refuses root
dir=$(mktemp -d /tmp/ferretdb-pg.XXXXXX)
chown "$user" "$dir"
as() { if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
cleanup() {
  as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
as "$bin/initdb" -D "$dir/data" -U ferretdb --auth=trust >/dev/null
as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-c listen_addresses='' -k $dir -c max_connections=500 -c fsync=off" start >/dev/null
export OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL="postgres://ferretdb@/postgres?host=$dir"
echo "ferretdb-postgres: FerretDB's PostgreSQL backend at $OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL" >&2
"$@"
