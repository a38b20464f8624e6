# holdfast — see README.md. `make run` and `make test` are the two commands.
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/holdfast/holdfast.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT ?= 12m
FUZZTIME ?= 20000x

.PHONY: all build run test test-short fuzz bench bench-cluster chaos chaos-failover proto lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/holdfast ./cmd/holdfast
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/holdctl ./cmd/holdctl

run: build
	./$(BIN)/holdfast serve --data-dir ./data

# -count=1: never a cached result (the e2e tests build the binaries in a
# subprocess, which the test cache cannot see).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) fuzz

# A short run of every fuzz target (a fixed number of inputs: a time bound
# can end a run mid-minimisation with a spurious "context deadline
# exceeded"); the seed corpora live in testdata/fuzz.
fuzz:
	@set -e; for spec in $$($(GO) run ./test/cmd/fuzzlist); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		echo "fuzz $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) run ./test/cmd/benchreport -out docs/BENCHMARKS.md

# The cluster figures (issue 4): an in-process cluster on loopback, ~3-4 min.
bench-cluster:
	$(GO) run ./test/cmd/clusterbench -out docs/BENCHMARKS-cluster.md

# The fault suite across real hosts (test/chaos): three containers built
# FROM scratch on a private Docker network; partitions, pauses, SIGKILL.
# Needs a Docker Engine; a few minutes; not part of `make test`.
chaos:
	$(GO) test -tags chaos -count=1 -timeout 20m -v ./test/chaos/

# Failover after 20 real SIGKILLs of a container (test/chaos), written to
# docs/BENCHMARKS-chaos.md; about 10 minutes.
chaos-failover:
	$(GO) test -tags chaos -count=1 -timeout 40m -v -run TestSIGKILLFailoverRuns ./test/chaos/ \
		-chaos.failover-runs 20 -chaos.report $(CURDIR)/docs/BENCHMARKS-chaos.md

proto:
	protoc -I proto -I proto/third_party --go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		proto/holdfast/v1/*.proto

# -tags chaos: the fault suite's files are linted too.
lint:
	$(GO) vet -tags chaos ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags chaos ./...

clean:
	rm -rf $(BIN)
