#!/usr/bin/env bash
# Runs every Fuzz target in the workspace for FUZZTIME each (seed corpora always run in go test).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
count=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for fn in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "fuzz $dir $fn ($fuzztime)"
    # A crasher fails the run (go test writes it to testdata/fuzz and says so). A worker that merely
    # stalled on a busy machine ("fuzzing process hung") is retried once, then reported, not failed.
    for attempt in 1 2; do
      if out=$(go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" "./$dir" 2>&1); then
        break
      fi
      if grep -q "Failing input written to" <<<"$out"; then
        echo "$out" >&2
        exit 1
      fi
      if [ "$attempt" = 2 ]; then
        echo "warning: $fn did not finish cleanly twice without a failing input:" >&2
        tail -n 5 <<<"$out" >&2
      fi
    done
    count=$((count+1))
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
echo "fuzz: $count targets ran for $fuzztime each"
