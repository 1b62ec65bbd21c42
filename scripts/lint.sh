#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(git ls-files '*.go' | grep -v '/gen/' | xargs gofmt -l)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
go vet work
go run "honnef.co/go/tools/cmd/staticcheck@${1:-v0.8.2}" work
