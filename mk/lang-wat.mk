# WAT guests: hand-written WebAssembly text, assembled by wabt's wat2wasm
# (Debian package wabt). See sdk-guest/wat/README.md.
#
# Every examples/plugins/wat/NAME/NAME.wat becomes $(BIN)/examples/wat/NAME.wasm.

.DEFAULT_GOAL := all

WAT2WASM ?= wat2wasm
WAT_APT  := wabt

EXAMPLES_WAT := $(patsubst examples/plugins/wat/%/,%,$(sort $(dir $(wildcard examples/plugins/wat/*/*.wat))))

.PHONY: toolchain-wat examples-wat examples-wat-build

# Installs wabt with apt when wat2wasm is missing (as root). Quick when present.
toolchain-wat:
	@if command -v $(WAT2WASM) >/dev/null 2>&1; then exit 0; fi; \
	echo "toolchain-wat: installing $(WAT_APT)"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(WAT_APT)) || \
	    { echo "toolchain-wat: apt-get install $(WAT_APT) failed"; exit 1; }; \
	fi; \
	if ! command -v $(WAT2WASM) >/dev/null 2>&1; then \
	  if [ -n "$$CI" ]; then echo "toolchain-wat: $(WAT2WASM) is missing (CI is set: failing). apt-get install $(WAT_APT)"; exit 1; fi; \
	  echo "toolchain-wat: WARNING: $(WAT2WASM) is still missing (installing needs root and apt): apt-get install $(WAT_APT)"; \
	fi

# Builds every WAT example; without wat2wasm it fails under CI and is
# skipped loudly otherwise.
examples-wat: toolchain-wat
	@if command -v $(WAT2WASM) >/dev/null 2>&1; then $(MAKE) --no-print-directory examples-wat-build; \
	elif [ -n "$$CI" ]; then echo "examples-wat: $(WAT2WASM) is missing (CI is set: failing)"; exit 1; \
	else echo "examples-wat: WARNING: skipped, $(WAT2WASM) is missing (make toolchain-wat as root)"; fi

examples-wat-build: $(EXAMPLES_WAT:%=$(BIN)/examples/wat/%.wasm)
	@for w in $^; do printf '  %-40s %7d bytes\n' $$w $$(wc -c < $$w); done

define WAT_EXAMPLE_RULE
$(BIN)/examples/wat/$(1).wasm: examples/plugins/wat/$(1)/$(1).wat
	@mkdir -p $$(@D)
	@echo "example wat/$(1)"
	$$(WAT2WASM) $$< -o $$@
endef
$(foreach e,$(EXAMPLES_WAT),$(eval $(call WAT_EXAMPLE_RULE,$(e))))
