# Bulwark build, test and benchmark entry points.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test deps lint unit fuzz bench clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/bulwark ./cmd/bulwark

## test: the whole suite, as CI runs it (installs and starts what it needs).
test: deps lint unit

deps:
	@scripts/test-deps.sh

lint:
	@out=$$(gofmt -l cmd internal); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...
	@# The 100,000-file backup/restore round trip at full size (under -race it uses 10,000).
	$(GO) test -count=1 -timeout 10m -run TestBackupRestoreEveryAttribute ./internal/repo/restorer
	@# Builds without cgo compress with klauspost/compress instead of libzstd (internal/repo/pack/compress.go).
	CGO_ENABLED=0 $(GO) test -count=1 ./internal/repo/pack
	@# Page-fault counts (the KDF's huge pages) mean nothing under the race detector's shadow memory.
	$(GO) test -count=1 -run TestPrimeHugePages ./internal/repo/crypto

## fuzz: a short coverage-guided run of every fuzz target (not part of test).
fuzz:
	@scripts/fuzz.sh $${FUZZTIME:-20s}

## bench: side-by-side benchmarks; writes docs/benchmarks.md.
bench: deps
	@# The peers measured side by side, from Debian (installed once, as root).
	@need=(); for p in restic:restic borg:borgbackup aide:aide nginx:nginx wrk:wrk hyperfine:hyperfine; do \
		command -v $${p%%:*} >/dev/null || need+=($${p#*:}); done; [[ -x /usr/bin/time ]] || need+=(time); \
		if (( $${#need[@]} )); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${need[@]}" >/dev/null; fi
	@scripts/bench.sh

clean:
	rm -rf bin
