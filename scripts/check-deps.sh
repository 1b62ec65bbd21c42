#!/usr/bin/env bash
# Dependency rules of the floor plan (issue 12): what the binaries link, and the pure domain and
# core packages.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
# The devstack binary is a developer tool, not a test: it must not link package testing.
for main in ./services/devstack ./services/ingress ./services/mapper ./services/writer ./services/notifier; do
  if go list -deps "$main" | grep -qx testing; then
    echo "check-deps: $main links package testing (a test helper reached production code)" >&2
    fail=1
  fi
done
# The domain and core packages are pure: `go list -deps` of each shows no Echo, MongoDB driver,
# nats.go or generated proto (the edges convert at their boundaries; the core works in domain
# types behind interfaces it declares).
forbidden='^(github\.com/labstack/echo|go\.mongodb\.org/mongo-driver|github\.com/nats-io/nats\.go|github\.com/ownersync/ownersync/proto/gen/|google\.golang\.org/protobuf)'
pure() {
  local dir=$1; shift
  for pkg in "$@"; do
    bad=$(cd "$dir" && go list -deps "$pkg" | grep -E "$forbidden" || true)
    if [[ -n "$bad" ]]; then
      echo "check-deps: $dir/$pkg must stay pure but depends on:" >&2
      echo "$bad" | sed 's/^/  /' >&2
      fail=1
    fi
  done
}
pure services/mapper \
  ./internal/domain ./internal/mapping ./internal/report \
  ./internal/app ./internal/changes ./internal/syncusers
pure services/writer ./internal/ownership ./internal/writeback
# The writer's engine names its edges only through the interfaces it declares: the record state
# store (recordstate, over KV), the CRM writes and lookups (crmwrite), history, the mapping view and
# the clients are wired in internal/app.
bad=$(cd services/writer && go list -deps ./internal/writeback | grep -E '/services/writer/internal/(crmwrite|recordstate|historystore|mappingview|crmclients|events|app)$' || true)
if [[ -n "$bad" ]]; then
  echo "check-deps: services/writer/internal/writeback must not depend on the writer's edges; it depends on:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  fail=1
fi
# In mapper and the writer the events edge is the one internal package that imports libs/natsbus:
# the cores return domain errors that the edge maps to ack, redelivery and dead letter, and the
# consumer contracts live in the edge (the services' Run functions wire them).
# (internal/syncbed, test support that wires Sync Users like the service, is exempt.)
for svc in services/mapper services/writer; do
  bad=$(cd "$svc" && go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./internal/... | grep 'ownersync/libs/natsbus' | cut -d: -f1 | grep -vE '/internal/(events|syncbed)$' || true)
  if [[ -n "$bad" ]]; then
    echo "check-deps: only $svc/internal/events may import libs/natsbus; so do:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    fail=1
  fi
done
# The console owns its HTML view shapes, converted from the core's domain types: it does not
# depend on the admin API (httpapi owns its JSON shapes), directly or through another package.
bad=$(cd services/mapper && go list -deps ./internal/console | grep -E '/services/mapper/internal/httpapi(/|$)' || true)
if [[ -n "$bad" ]]; then
  echo "check-deps: services/mapper/internal/console must not depend on the admin API; it depends on:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  fail=1
fi
# Test support in mapper: consoletest holds the one in-memory mapper core that the admin API's and
# the console's tests share; syncbed wires Sync Users on the sandboxes for the Sync Users tests and
# the benchmark (cmd/syncbench). No other package's production code imports them (test files may).
bad=$(cd services/mapper && go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... | grep -E ' github\.com/ownersync/ownersync/services/mapper/(consoletest|internal/syncbed)( |$)' | cut -d: -f1 | grep -vE '/(consoletest|internal/syncbed|cmd/syncbench)$' || true)
if [[ -n "$bad" ]]; then
  echo "check-deps: production code imports mapper's test support (consoletest, internal/syncbed):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  fail=1
fi
# FerretDB (and the Postgres/SQLite stack it brings) belongs to the workbench and the dev stack; the
# production modules' tests reach it in a child process (workbench/mongoproc), so their go.mod files
# never require it.
for mod in libs services/ingress services/mapper services/writer services/notifier; do
  if grep -qiE 'FerretDB|jackc/pgx|modernc.org/sqlite' "$mod/go.mod"; then
    echo "check-deps: $mod/go.mod requires FerretDB or its backends:" >&2
    grep -iE 'FerretDB|jackc/pgx|modernc.org/sqlite' "$mod/go.mod" >&2
    fail=1
  fi
done
[ "$fail" = 0 ] && echo "check-deps: dependency rules hold (binaries without testing; no FerretDB in production go.mod; mapper's domain and core and the writer's domain and engine pure; natsbus only in the events edges; the console apart from the admin API; mapper's test support only in tests)"
exit "$fail"
