#!/usr/bin/env bash
# Dependency rules of the floor plan (issue 12): what the binaries link and what the modules require.
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
[ "$fail" = 0 ] && echo "check-deps: dependency rules hold"
exit "$fail"
