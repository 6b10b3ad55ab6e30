# Rust guests: Debian's rustc with its wasm32 standard library (packages
# rustc, libstd-rust-dev-wasm32), no cargo and no crates registry, with the
# observer Rust SDK (sdk-guest/rust, one file, no dependencies). See
# sdk-guest/rust/README.md.
#
# Every examples/plugins/rust/NAME/lib.rs becomes
# $(BIN)/examples/rust/NAME.wasm (wasm32-unknown-unknown: no WASI imports).

.DEFAULT_GOAL := all

# Debian's rustc by full path: a rustup rustc earlier on PATH may have no
# wasm32 standard library.
RUSTC       ?= /usr/bin/rustc
RUST_APT    := rustc libstd-rust-dev-wasm32
RUST_TARGET := wasm32-unknown-unknown
RUST_SDK    := sdk-guest/rust/observer.rs
RUST_CACHE  := .cache/rust
# -C lto=fat across the SDK rlib and the plugin: 63 KB instead of 76 KB.
RUST_FLAGS  := --edition 2021 -C opt-level=s -C codegen-units=1
RUST_RLIB   := $(RUST_CACHE)/$(RUST_TARGET)/libobserver.rlib

RUST_HAVE = [ -x $(RUSTC) ] && [ -d "$$($(RUSTC) --print sysroot 2>/dev/null)/lib/rustlib/$(RUST_TARGET)/lib" ]

EXAMPLES_RUST := $(patsubst examples/plugins/rust/%/lib.rs,%,$(wildcard examples/plugins/rust/*/lib.rs))

.PHONY: toolchain-rust examples-rust examples-rust-build test-sdk-rust

# Installs rustc and the wasm32 standard library with apt when missing (as
# root). Quick when present.
toolchain-rust:
	@if $(RUST_HAVE); then exit 0; fi; \
	echo "toolchain-rust: installing $(RUST_APT)"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(RUST_APT)) || \
	    { echo "toolchain-rust: apt-get install $(RUST_APT) failed"; exit 1; }; \
	fi; \
	if ! { $(RUST_HAVE); }; then \
	  if [ -n "$$CI" ]; then echo "toolchain-rust: $(RUSTC) or its $(RUST_TARGET) standard library is missing (CI is set: failing). apt-get install $(RUST_APT)"; exit 1; fi; \
	  echo "toolchain-rust: WARNING: $(RUSTC) or its $(RUST_TARGET) standard library is missing and could not be installed (not root?): apt-get install $(RUST_APT)"; \
	fi

# Builds every Rust example; without the toolchain it fails under CI and is
# skipped loudly otherwise.
examples-rust: toolchain-rust
	@if $(RUST_HAVE); then $(MAKE) --no-print-directory examples-rust-build; \
	elif [ -n "$$CI" ]; then echo "examples-rust: the Rust toolchain is missing (CI is set: failing)"; exit 1; \
	else echo "examples-rust: WARNING: skipped, the Rust toolchain is missing (make toolchain-rust as root)"; fi

examples-rust-build: $(EXAMPLES_RUST:%=$(BIN)/examples/rust/%.wasm)
	@for w in $^; do printf '  %-40s %7d bytes\n' $$w $$(wc -c < $$w); done

$(RUST_RLIB): $(RUST_SDK)
	@mkdir -p $(@D)
	$(RUSTC) $(RUST_FLAGS) --target $(RUST_TARGET) --crate-type rlib --crate-name observer -o $@ $<

define RUST_EXAMPLE_RULE
$(BIN)/examples/rust/$(1).wasm: $(wildcard examples/plugins/rust/$(1)/*.rs) $(RUST_RLIB)
	@mkdir -p $$(@D)
	@echo "example rust/$(1)"
	$$(RUSTC) $$(RUST_FLAGS) --target $$(RUST_TARGET) --crate-type cdylib -C lto=fat -C strip=symbols \
	  --extern observer=$$(RUST_RLIB) -o $$@ examples/plugins/rust/$(1)/lib.rs
endef
$(foreach e,$(EXAMPLES_RUST),$(eval $(call RUST_EXAMPLE_RULE,$(e))))

# Native unit tests: the SDK's own (JSON, exact numbers, escaping, input
# errors, a mutation fuzz) and each example's, against the SDK built for
# the host (Debian's rustc ships its native standard library too).
test-sdk-rust: toolchain-rust
	@mkdir -p $(RUST_CACHE)/native
	$(RUSTC) --edition 2021 --test -o $(RUST_CACHE)/native/observer-test $(RUST_SDK)
	$(RUST_CACHE)/native/observer-test
	$(RUSTC) --edition 2021 --crate-type rlib --crate-name observer -o $(RUST_CACHE)/native/libobserver.rlib $(RUST_SDK)
	@for e in $(EXAMPLES_RUST); do \
	  echo "test rust/$$e"; \
	  $(RUSTC) --edition 2021 --test --extern observer=$(RUST_CACHE)/native/libobserver.rlib \
	    -o $(RUST_CACHE)/native/$$e-test examples/plugins/rust/$$e/lib.rs && $(RUST_CACHE)/native/$$e-test || exit 1; \
	done
