# Observer — make targets. `make run` and `make test` do all set-up on a
# fresh machine of this project's kind (Go and PostgreSQL are present).

GO       ?= go
BIN      := bin
PLUGINS  := webhook field-filter
GOFLAGS_WASM := -buildmode=c-shared -trimpath -ldflags='-s -w'
TEST_TIMEOUT ?= 12m
# Short fuzz run per target inside make test; `make fuzz FUZZTIME=5m` for longer.
FUZZTIME ?= 5s
# SIGKILLs of `observer run` in the crash test (make test and make crash-test).
CRASH_KILLS ?= 20

.PHONY: all build plugins examples toolchains run test crash-test vet fmt-check conformance fuzz bench clean

# Guest languages of the example plugins. Each has a fragment mk/lang-LANG.mk
# that defines toolchain-LANG (installs its compiler on a fresh machine,
# idempotent) and examples-LANG (builds examples/plugins/LANG/* from source to
# $(BIN)/examples/LANG/NAME.wasm).
LANGS := go c assemblyscript rust wat
-include $(wildcard mk/lang-*.mk)

all: build plugins

build:
	$(GO) build -o $(BIN)/observer ./host/cmd/observer

# Every first-party plugin, built from source to $(BIN)/plugins/NAME.wasm.
plugins:
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do \
	  echo "plugin $$p"; \
	  (cd plugins/$$p && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build $(GOFLAGS_WASM) -o ../../$(BIN)/plugins/$$p.wasm .) || exit 1; \
	done

# Every guest toolchain the examples need (apt and npm packages).
toolchains: $(addprefix toolchain-,$(LANGS))

# The example plugins in every language, built from source.
examples: toolchains $(addprefix examples-,$(LANGS))

# The main job on the embedded default (SQLite, no server): a demo database,
# the Pagila workload, events flowing through the WASM plugins to effects.
run: build plugins
	$(BIN)/observer demo --config observer.toml

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd abi && $(GO) vet ./...
	cd sdk-guest/go && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...
	cd plugins && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

# Every first-party plugin and every example plugin (all languages) against
# the conformance suite. An example's own vectors live in
# examples/plugins/LANG/NAME/testdata/vectors or, shared by all languages,
# examples/plugins/vectors/NAME.
conformance: build plugins examples
	@for p in $(PLUGINS); do \
	  vec=""; [ -d plugins/$$p/testdata/vectors ] && vec="--vectors plugins/$$p/testdata/vectors"; \
	  $(BIN)/observer plugin test $(BIN)/plugins/$$p.wasm $$vec || exit 1; \
	done
	@for w in $$(ls $(BIN)/examples/*/*.wasm 2>/dev/null); do \
	  lang=$$(basename $$(dirname $$w)); name=$$(basename $$w .wasm); vec=""; \
	  [ -d examples/plugins/$$lang/$$name/testdata/vectors ] && vec="$$vec --vectors examples/plugins/$$lang/$$name/testdata/vectors"; \
	  [ -d examples/plugins/vectors/$$name ] && vec="$$vec --vectors examples/plugins/vectors/$$name"; \
	  echo "conformance $$lang/$$name"; \
	  $(BIN)/observer plugin test $$w $$vec || exit 1; \
	done

test: fmt-check vet build plugins conformance
	cd abi && $(GO) test -count=1 ./...
	cd sdk-guest/go && $(GO) test -count=1 ./...
	cd plugins && $(GO) test -count=1 ./...
	OBSERVER_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

# The crash test alone: a Pagila replay into a private PostgreSQL server
# while `observer run` is killed with SIGKILL CRASH_KILLS times and the
# server is restarted once; prints the figures. See examples/pagila/README.md.
crash-test:
	OBSERVER_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -count=1 -run '^TestCrashHarness$$' -v -timeout $(TEST_TIMEOUT) ./examples/pagila/

# Each fuzz target for FUZZTIME (go test fuzzes one target per run), in
# whichever module (root, sdk-guest/go, plugins) holds it.
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' host conformance sdk-guest plugins 2>/dev/null | sort | while read f; do \
	  mod=$$(dirname $$f); while [ ! -f $$mod/go.mod ] && [ "$$mod" != "." ]; do mod=$$(dirname $$mod); done; \
	  pkg=./$$(realpath --relative-to=$$mod $$(dirname $$f)); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
	    echo "fuzz $$mod $$pkg $$t"; \
	    (cd $$mod && $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg) || exit 1; \
	  done; \
	done

# Benchmarks: plugin call overhead (WASM vs native Go vs Extism go-sdk), the
# same filter in every guest language (BenchmarkLanguages, on the examples
# built first), and the Pagila replay on PostgreSQL. Figures go to
# docs/benchmarks.md.
bench: build plugins examples
	@mkdir -p .cache
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./host/pluginhost ./host/condition ./host/engine | tee .cache/bench-unit.txt
	$(GO) test -run '^$$' -bench 'PagilaReplay' -benchtime 1x -count 1 -timeout 20m ./examples/pagila | tee .cache/bench-pagila.txt

clean:
	rm -rf $(BIN) .cache
