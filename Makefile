# Handoff: build and test. `make test` is what CI runs (.ci/run).

GO           ?= go
TEST_TIMEOUT ?= 20m
PKGS         ?= ./...

.PHONY: all test vet build run check-config fmt tidy lint clean fuzz

all: test

## test: go vet, then every test with the race detector (CI's command)
test: vet
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## vet: static checks
vet:
	$(GO) vet $(PKGS)

## fuzz: every fuzz target for FUZZTIME seconds each (CI: 5); seeds also run in make test
FUZZTIME ?= 5
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

## build: the binary in bin/handoff
build:
	$(GO) build -o bin/handoff ./cmd/handoff

## run: the service on its built-in defaults (loopback, store under ./data)
run:
	$(GO) run ./cmd/handoff

## check-config: validate configs/handoff.yaml
check-config:
	$(GO) run ./cmd/handoff -config configs/handoff.yaml -check

## lint: gofmt, go.mod tidy and staticcheck (pinned; fetched through the module proxy)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint: fmt tidy
	$(GO) run $(STATICCHECK) ./...

## tidy: fails, printing the diff, when go.mod or go.sum is not what go mod tidy writes
tidy:
	$(GO) mod tidy -diff

## fmt: gofmt every file (fails listing files that need it)
fmt:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
