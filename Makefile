# dobrobot — make help lists the targets.
GO        ?= go
BIN       ?= bin/dobrobot
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.Version=$(VERSION)
FUZZTIME  ?= 30s
# FUZZ narrows `make fuzz` to the fuzzers whose names match it (grep -E).
FUZZ      ?= .
# SOAKTIME is how long `make soak` runs the bot (hours when asked: SOAKTIME=4h).
SOAKTIME  ?= 5m

.PHONY: help build run test race bench bench-postgres fuzz soak lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

build: ## build bin/dobrobot (static)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dobrobot

run: build ## the bot in this terminal on the built-in demo (./dobrobot-demo.db)
	./$(BIN) --log-format console console

test: ## every test, with the race detector
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@! grep -rnE '"(sh|bash|/bin/sh|/bin/bash)",[[:space:]]*"-c"' --include='*.go' --exclude='*_test.go' . || { echo "a shell is invoked from non-test code"; exit 1; }
	$(GO) test -race -count=1 -timeout 8m ./...

bench: ## one table of figures against the machine's limits, then the PostgreSQL store next to bbolt (docs/performance.md); BENCHFLAGS=-cache DIR keeps the 1M-entry database
	$(GO) run ./cmd/dobrobench $(BENCHFLAGS)
	@echo "The audit codec against encoding/json and go-json-experiment/json (docs/performance.md):"
	$(GO) test -run '^$$' -bench '^BenchmarkAuditCodec$$' -benchtime 5x ./storage
	@echo "The scheduler's due times: one change, and NextDue, with 100 to 100,000 pending (issue 16, docs/reminders.md):"
	$(GO) test -run '^$$' -bench '^BenchmarkDue$$' ./storage
	@echo "The idle scheduler's CPU with 0 and 10,000 pending due times (issue 16):"
	$(GO) test -run '^$$' -bench '^BenchmarkScheduleIdle$$' -benchtime 1x ./commands
	@echo "report last 90d over the 1M-entry history (docs/reports.md; DOBROBENCH_CACHE=DIR reuses dobrobench -cache DIR's database):"
	$(GO) test -run '^$$' -bench '^BenchmarkReport$$' -benchtime 5x ./cmd/dobrobench
	@echo "The CI intake: 200 signed /builds deliveries/s for a minute on bbolt, next to the raw bbolt commit (issue 15, docs/ci.md):"
	$(GO) test -run '^$$' -bench '^BenchmarkIntake$$' -benchtime 1x ./cmd/dobrobench
	@$(MAKE) --no-print-directory bench-postgres

# The PostgreSQL figures: a command's transaction (p50/p99) on PostgreSQL next
# to bbolt, the failover time after a kill, a freeze and a freeze with a full
# pool of queued writes, and the messages posted twice per fault when a new
# leader is killed or frozen during its catch-up (three real instances). It
# uses DOBROBOT_PG_DSN, or a throwaway server started by .ci/postgres.
PGBENCH = $(GO) test -run '^$$' -bench '^BenchmarkTransition$$' -benchtime 2000x ./storage/postgres && \
	$(GO) test -run '^$$' -bench '^BenchmarkFailover$$' -benchtime 5x -timeout 20m ./storage/postgres && \
	echo "Posted twice per fault during a catch-up (TestFailoverDuringCatchUp, issue 19 item 2):" && \
	$(GO) test -count=1 -run '^TestFailoverDuringCatchUp$$' -v ./cmd/dobrobot | grep -o 'duplicates for the .*'
bench-postgres: ## only the PostgreSQL figures (DOBROBOT_PG_DSN, or a throwaway server from .ci/postgres)
	@echo "PostgreSQL next to bbolt (storage/postgres benchmarks):"
	@if [ -n "$$DOBROBOT_PG_DSN" ]; then \
		$(PGBENCH); \
	elif pg_env=$$(bash .ci/postgres start); then \
		eval "$$pg_env"; export DOBROBOT_PG_DSN; trap 'bash .ci/postgres stop "$$DOBROBOT_PG_DIR"' EXIT; \
		$(PGBENCH); \
	else \
		echo "PostgreSQL figures skipped: no DOBROBOT_PG_DSN, and .ci/postgres could not start a server (see above)"; \
	fi

fuzz: ## run every fuzzer for FUZZTIME (default 30s; FUZZ=regexp picks some), with the inputs each tried
	@for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file | grep -E '$(FUZZ)'); do \
			out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$file) 2>&1) || { echo "$$out"; exit 1; }; \
			echo "$$out" | awk -v n=$$name -v p=$$(dirname $$file) '/execs:/ {l=$$0} END {sub(/.*execs: /, "", l); sub(/ .*/, "", l); printf "%-24s %-14s %10s inputs in $(FUZZTIME), 0 failures\n", n, p, l}'; \
		done; \
	done

soak: ## soak the real bot for SOAKTIME (default 5m), then 20000 model sequences and the concurrency tests -race -count=20
	DOBROBOT_SOAK=$(SOAKTIME) $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/dobrobot
	DOBROBOT_MODEL_SEQUENCES=20000 $(GO) test -count=1 -timeout 0 -run '^TestModelBasedSequences$$' -v ./commands
	$(GO) test -race -count=20 -timeout 0 -run 'Concurrent|Authorisation|Duplicate|Fifty|TwentyStarts' ./commands ./bot

lint: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## remove build output and the demo database
	rm -rf bin dobrobot-demo.db
