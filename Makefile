GO ?= go
BIN := bin/portcullis
DATA ?= .data

.PHONY: build run test test-short bench perf generate lint deps fmt

build:
	$(GO) build -o $(BIN) ./cmd/portcullis

# Starts a single-node appliance in dev mode with embedded defaults.
run: build
	./.ci/deps --runtime
	./$(BIN) server --dev --data-dir $(DATA) --gateway-addr 127.0.0.1:8443 --admin-addr 127.0.0.1:9443

deps:
	./.ci/deps

# The whole suite: unit, fuzz seeds, integration and qa end-to-end tests.
test: deps
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -race -count=1 -timeout 40m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The qa performance suite at full length; figures go to qa/out/perf.txt.
perf:
	$(GO) test -count=1 -v -run TestGatewayOverhead ./qa/perf/ -args -perf

generate:
	$(GO) generate ./...

lint:
	$(GO) vet ./...
	gofmt -l .

fmt:
	gofmt -w $$(git ls-files '*.go')
