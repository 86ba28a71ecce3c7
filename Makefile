# dobrobot — make help lists the targets.
GO        ?= go
BIN       ?= bin/dobrobot
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.Version=$(VERSION)
FUZZTIME  ?= 30s
# Packages whose fuzzers `make fuzz` runs, as package:Fuzzer pairs.
FUZZERS   := ./commands:FuzzParse ./commands:FuzzTransitions

.PHONY: help build run test race bench fuzz lint clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/dobrobot (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dobrobot

run: build ## the bot in this terminal on the built-in demo (./dobrobot-demo.db)
	./$(BIN) --log-format console console

test: ## every test, with the race detector
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@! grep -rnE '"(sh|bash|/bin/sh|/bin/bash)",[[:space:]]*"-c"' --include='*.go' --exclude='*_test.go' . || { echo "a shell is invoked from non-test code"; exit 1; }
	$(GO) test -race -count=1 -timeout 8m ./...

bench: ## benchmarks with figures
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run each fuzzer for FUZZTIME (default 30s)
	@for f in $(FUZZERS); do pkg=$${f%%:*}; name=$${f##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## remove build output and the demo database
	rm -rf bin dobrobot-demo.db
