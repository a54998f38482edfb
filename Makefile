# Conveniences; ./scripts/test is what CI runs.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build test vet fmt
build:
	go build -ldflags "$(LDFLAGS)" -o sluice ./cmd/sluice

test:
	./scripts/test

vet:
	go vet ./...

fmt:
	gofmt -l -w cmd internal
