# AssemblyScript guests: the assemblyscript npm compiler (asc), pinned in
# sdk-guest/assemblyscript/package-lock.json and installed there with npm ci,
# with the observer AssemblyScript SDK. See sdk-guest/assemblyscript/README.md.
#
# Every examples/plugins/assemblyscript/NAME/index.ts becomes
# $(BIN)/examples/assemblyscript/NAME.wasm.

.DEFAULT_GOAL := all

AS_SDK   := sdk-guest/assemblyscript
ASC      := $(AS_SDK)/node_modules/.bin/asc
# npm ci writes this file last; it is newer than the lockfile when the
# pinned packages are installed.
AS_STAMP := $(AS_SDK)/node_modules/.package-lock.json
AS_APT   := nodejs npm
# -O3z: speed passes with size shrinking (20 KB against 29 KB for -O3).
# --runtime minimal: the SDK frees each call's garbage with __collect();
# the stub runtime never frees, and a pooled instance would grow to the
# memory cap (sdk-guest/assemblyscript/tests shows it). --use abort= keeps
# env.abort, which the host does not provide, out of the imports.
ASCFLAGS := -O3z --runtime minimal --noAssert --use abort=

AS_HAVE = command -v node >/dev/null 2>&1 && [ -x $(ASC) ] && [ $(AS_STAMP) -nt $(AS_SDK)/package-lock.json ]

EXAMPLES_AS := $(patsubst examples/plugins/assemblyscript/%/index.ts,%,$(wildcard examples/plugins/assemblyscript/*/index.ts))
AS_SDK_SRC  := $(wildcard $(AS_SDK)/assembly/*.ts)

.PHONY: toolchain-assemblyscript examples-assemblyscript examples-assemblyscript-build test-sdk-assemblyscript

# Installs node and npm with apt when missing (as root), then the pinned
# compiler with npm ci (one package and its two dependencies, about 2 s).
# Quick when all is present.
toolchain-assemblyscript:
	@if $(AS_HAVE); then exit 0; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "toolchain-assemblyscript: installing $(AS_APT)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(AS_APT)) || \
	      { echo "toolchain-assemblyscript: apt-get install $(AS_APT) failed"; exit 1; }; \
	  fi; \
	fi; \
	if command -v npm >/dev/null 2>&1; then \
	  echo "toolchain-assemblyscript: npm ci in $(AS_SDK)"; \
	  (cd $(AS_SDK) && npm ci --no-audit --no-fund --loglevel=error) || { echo "toolchain-assemblyscript: npm ci failed"; exit 1; }; \
	fi; \
	if ! { $(AS_HAVE); }; then \
	  if [ -n "$$CI" ]; then echo "toolchain-assemblyscript: node, npm or asc is missing (CI is set: failing). apt-get install $(AS_APT); cd $(AS_SDK) && npm ci"; exit 1; fi; \
	  echo "toolchain-assemblyscript: WARNING: node, npm or asc is missing and could not be installed (not root?): apt-get install $(AS_APT); cd $(AS_SDK) && npm ci"; \
	fi

# Builds every AssemblyScript example; without the toolchain it fails under
# CI and is skipped loudly otherwise.
examples-assemblyscript: toolchain-assemblyscript
	@if $(AS_HAVE); then $(MAKE) --no-print-directory examples-assemblyscript-build; \
	elif [ -n "$$CI" ]; then echo "examples-assemblyscript: the AssemblyScript toolchain is missing (CI is set: failing)"; exit 1; \
	else echo "examples-assemblyscript: WARNING: skipped, the AssemblyScript toolchain is missing (make toolchain-assemblyscript as root)"; fi

examples-assemblyscript-build: $(EXAMPLES_AS:%=$(BIN)/examples/assemblyscript/%.wasm)
	@for w in $^; do printf '  %-40s %7d bytes\n' $$w $$(wc -c < $$w); done

# The SDK's own tests (node --test): JSON, numbers, escaping, input
# errors, and memory over thousands of calls, against a mock kernel.
test-sdk-assemblyscript: toolchain-assemblyscript
	cd $(AS_SDK) && node --test tests/

define AS_EXAMPLE_RULE
$(BIN)/examples/assemblyscript/$(1).wasm: $(wildcard examples/plugins/assemblyscript/$(1)/*.ts) $(AS_SDK_SRC)
	@mkdir -p $$(@D)
	@echo "example assemblyscript/$(1)"
	$$(ASC) examples/plugins/assemblyscript/$(1)/index.ts $$(ASCFLAGS) -o $$@
endef
$(foreach e,$(EXAMPLES_AS),$(eval $(call AS_EXAMPLE_RULE,$(e))))
