# ownersync — thin targets; the scripts they call do the work.
BUF_VERSION         := v1.50.0
STATICCHECK_VERSION := v0.8.2
GO                  ?= go
FUZZTIME            ?= 30s

.PHONY: build run test test-go monitoring-check chromium proto proto-check gowork-off check-deps doc-links lint fuzz fuzz-ci bench soak up down

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/ownersync/ownersync/libs/servicekit.Version=$(VERSION) -X github.com/ownersync/ownersync/libs/servicekit.Commit=$(COMMIT)

## build: the four service binaries in bin/, with -version reporting VERSION and COMMIT
build:
	for s in ingress mapper writer notifier; do $(GO) build -ldflags "$(LDFLAGS)" -o bin/$$s ./services/$$s || exit 1; done

## run: the whole stack on embedded NATS + FerretDB with the CRM sandboxes and a demo tenant
run:
	$(GO) build -o bin/devstack ./services/devstack
	./bin/devstack $(ARGS)

## test: the full suite (proto freshness, GOWORK=off builds, dependency rules, doc links, vet, every module's tests, brief fuzzing)
test: proto-check gowork-off check-deps doc-links monitoring-check test-go fuzz-ci

test-go: chromium
	$(GO) vet work
	$(GO) test -count=1 -timeout 20m work

## proto: regenerate proto/gen/go with pinned buf and protoc-gen-go (run through go run)
proto:
	cd proto && $(GO) run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION) lint
	cd proto && $(GO) run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION) generate

chromium:
	scripts/ensure-chromium.sh

proto-check:
	BUF_VERSION=$(BUF_VERSION) scripts/check-proto.sh

gowork-off:
	scripts/gowork-off.sh

## check-deps: the devstack binary and the services do not link package testing; no production go.mod requires FerretDB; mapper's domain and core import no Echo, MongoDB driver, nats.go or proto
check-deps:
	scripts/check-deps.sh

## doc-links: code and docs cite docs/*.md anchors that exist, never design files outside the repository
doc-links:
	scripts/check-doc-links.sh

## monitoring-check: promtool check rules (installs Debian's prometheus package when missing)
monitoring-check:
	scripts/check-monitoring.sh


## lint: gofmt, go vet, staticcheck
lint:
	scripts/lint.sh $(STATICCHECK_VERSION)

## fuzz: run every Fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

fuzz-ci:
	FUZZTIME=3s scripts/fuzz.sh

## bench: benchmarks and load tools; writes docs/benchmarks.md and its charts (docs/benchmarks/*.svg).
## BENCH_FERRETDB=postgresql: on FerretDB's PostgreSQL backend; BENCH_MONGODB_URI=...: on that server
bench:
	scripts/bench.sh

## soak: long fault runs (not part of make test)
soak:
	$(GO) test -count=1 -timeout 60m -tags soak -run Soak ./services/devstack/...

## up/down: the containerised stack (needs a Docker engine)
up:
	docker compose up --build -d
down:
	docker compose down
