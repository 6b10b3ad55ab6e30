# Go guests: Go's own GOOS=wasip1 target, nothing to install beyond Go.
#
# The examples are one module (examples/plugins/go/go.mod, with replace
# directives to abi/ and sdk-guest/go), kept out of the root module so that
# its `go vet ./...` and `go test ./...` never compile guest-only code.

EXAMPLES_GO := $(patsubst examples/plugins/go/%/,%,$(dir $(wildcard examples/plugins/go/*/main.go)))

# The Makefile includes the fragments before its first rule; keep `make`
# with no target meaning `make all`.
.DEFAULT_GOAL := all

.PHONY: toolchain-go examples-go vet-examples-go test-examples-go

toolchain-go:
	@$(GO) version >/dev/null || { echo "toolchain-go: go not found (install Go 1.24 or later)"; exit 1; }

# $(BIN)/examples/go/NAME.wasm for every examples/plugins/go/NAME, with the
# flags of `make plugins` (a WASI reactor).
examples-go: toolchain-go
	@mkdir -p $(BIN)/examples/go
	@for p in $(EXAMPLES_GO); do \
	  echo "example go/$$p"; \
	  (cd examples/plugins/go/$$p && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build $(GOFLAGS_WASM) -o ../../../../$(BIN)/examples/go/$$p.wasm .) || exit 1; \
	done

# Vet the examples as guests and natively, and run their native unit tests
# (observer.Invoke); hooked into `make vet` and `make test`.
vet-examples-go:
	cd examples/plugins/go && GOOS=wasip1 GOARCH=wasm $(GO) vet ./... && $(GO) vet ./...

test-examples-go:
	cd examples/plugins/go && $(GO) test -count=1 ./...

vet: vet-examples-go
test: test-examples-go
