#!/usr/bin/env bash
# Fails when proto/gen/go differs from what the pinned buf and protoc-gen-go generate.
set -euo pipefail
cd "$(dirname "$0")/../proto"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION:-v1.50.0}" lint
go run "github.com/bufbuild/buf/cmd/buf@${BUF_VERSION:-v1.50.0}" generate -o "$tmp"
if ! diff -ru gen/go "$tmp/gen/go"; then
  echo "proto/gen/go is stale: run 'make proto' and commit the result" >&2
  exit 1
fi
echo "proto: generated code is current"
