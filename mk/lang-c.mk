# C guests: Debian's clang + lld + wasi-libc, with the observer C SDK
# (sdk-guest/c). See sdk-guest/c/README.md for the flags and why.
#
# Every examples/plugins/c/NAME/ holding .c files becomes
# $(BIN)/examples/c/NAME.wasm, built freestanding with the SDK (no libc, no
# WASI imports). examples/plugins/extism-style/ (a plugin written the way an
# Extism C PDK plugin is, with wasi-libc) becomes $(BIN)/examples/c/extism-style.wasm.

.DEFAULT_GOAL := all

C_CC       ?= clang
C_SDK      := sdk-guest/c
# The Debian packages: compiler, linker (wasm-ld), libc and the compiler-rt
# builtins for wasm32 (the unversioned name follows Debian's default clang).
C_APT      := clang lld wasi-libc libclang-rt-dev-wasm32
C_LIBC     := /usr/lib/wasm32-wasi/libc.a
C_TARGET   := --target=wasm32-wasi
C_WARN     := -Wall -Wextra -Werror
# Freestanding SDK builds: -Os is the best size/speed trade here (see the
# SDK README for the figures); --stack-first puts the stack below the data
# so that an overflow traps instead of overwriting globals.
C_FLAGS    := $(C_TARGET) -Os $(C_WARN) -ffreestanding -nostdlib -I$(C_SDK) \
              -Wl,--no-entry -Wl,--strip-all -Wl,--stack-first
# libc builds (a WASI reactor: wasi-libc's _initialize runs constructors).
C_FLAGS_LIBC := $(C_TARGET) -Os $(C_WARN) -mexec-model=reactor -Wl,--strip-all -Wl,--stack-first

# All present: the compiler, wasm-ld, wasi-libc and the wasm32 builtins.
C_HAVE = ( command -v $(C_CC) >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1 && \
         [ -f $(C_LIBC) ] && [ -f "$$($(C_CC) $(C_TARGET) -print-libgcc-file-name 2>/dev/null)" ] )

EXAMPLES_C := $(patsubst examples/plugins/c/%/,%,$(sort $(dir $(wildcard examples/plugins/c/*/*.c))))
EXAMPLES_C_WASM := $(EXAMPLES_C:%=$(BIN)/examples/c/%.wasm) $(BIN)/examples/c/extism-style.wasm

.PHONY: toolchain-c examples-c examples-c-build

# Installs the toolchain with apt when something is missing (as root: the
# machines this runs on are Debian 12). Quick when all is present.
toolchain-c:
	@if $(C_HAVE); then exit 0; fi; \
	echo "toolchain-c: installing $(C_APT)"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(C_APT)) || \
	    { echo "toolchain-c: apt-get install $(C_APT) failed"; exit 1; }; \
	fi; \
	if ! $(C_HAVE); then \
	  if [ -n "$$CI" ]; then echo "toolchain-c: clang, wasm-ld, wasi-libc or the wasm32 builtins are missing (CI is set: failing). apt-get install $(C_APT)"; exit 1; fi; \
	  echo "toolchain-c: WARNING: clang, wasm-ld, wasi-libc or the wasm32 builtins are still missing (installing needs root and apt): apt-get install $(C_APT)"; \
	fi

# Builds every C example; without the toolchain it fails under CI and is
# skipped loudly otherwise. The build runs in a sub-make so that the
# builtins path is looked up after toolchain-c has installed it.
examples-c: toolchain-c
	@if $(C_HAVE); then $(MAKE) --no-print-directory examples-c-build; \
	elif [ -n "$$CI" ]; then echo "examples-c: the C toolchain is missing (CI is set: failing)"; exit 1; \
	else echo "examples-c: WARNING: skipped, the C toolchain is missing (make toolchain-c as root)"; fi

examples-c-build: $(EXAMPLES_C_WASM)
	@for w in $^; do printf '  %-40s %7d bytes\n' $$w $$(wc -c < $$w); done

C_BUILTINS = $(shell $(C_CC) $(C_TARGET) -print-libgcc-file-name 2>/dev/null)

# One rule per example: its own .c (and .h) files, then the SDK.
define C_EXAMPLE_RULE
$(BIN)/examples/c/$(1).wasm: $(wildcard examples/plugins/c/$(1)/*.c examples/plugins/c/$(1)/*.h) $(C_SDK)/observer.c $(C_SDK)/observer.h
	@mkdir -p $$(@D)
	@echo "example c/$(1)"
	$$(C_CC) $$(C_FLAGS) -o $$@ $$(filter %.c,$$^) $$(C_BUILTINS)
endef
$(foreach e,$(EXAMPLES_C),$(eval $(call C_EXAMPLE_RULE,$(e))))

$(BIN)/examples/c/extism-style.wasm: examples/plugins/extism-style/extism-style.c
	@mkdir -p $(@D)
	@echo "example c/extism-style (wasi-libc)"
	$(C_CC) $(C_FLAGS_LIBC) -o $@ $<
