# xltools build.  `make deps` installs the Debian packages, `make` builds bin/xl-*,
# `make test` runs the suite, `make check` the same under ASan+UBSan,
# `make valgrind` the same under valgrind, `make bench` the speed measurements.
#
# The library is grouped by concern, one static library per folder, linked in the order
# of LAYERS (each folder may include only from folders before it; tests/t_layers.sh
# checks that rule on every `make test`). Sources are discovered, so adding a file needs
# no edit here:
#   lib/LAYER/*.c, lib/LAYER/*/*.c -> build/lib/libxl-LAYER.a (file names unique per layer:
#                         an archive keeps one member per name)
#   tools/xl-NAME.c    -> bin/xl-NAME
#   tests/test_NAME.c  -> build/tests/test_NAME (run by tests/run.sh)
#   tests/bench_NAME.c -> build/tests/bench_NAME (run by tests/bench.sh, `make bench`)
#   tests/t_NAME.sh    -> shell tests (run by tests/run.sh)
#   mk/*.mk            -> optional parts (the CUDA device, the bundle), included below

CC      ?= cc
PKGS    := openblas libcjson libcurl libutf8proc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
# What --version prints (lib/cli/version.c): the commit of this checkout and the flags.
XL_COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
XL_BUILD_FLAGS := $(subst ',,$(subst ",,$(CFLAGS)))
XCFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration -pthread -Ilib \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -D_FILE_OFFSET_BITS=64 \
           -DXL_SOURCE_ROOT='"$(CURDIR)"' \
           -DXL_COMMIT='"$(XL_COMMIT)"' -DXL_BUILD_FLAGS='"$(XL_BUILD_FLAGS)"'
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lncursesw -lm -lpthread

# Build flavours: plain (build/, bin/), sanitizers (build-asan/).
BUILD   ?= build
BIN     ?= bin

reverse = $(if $(1),$(call reverse,$(wordlist 2,$(words $(1)),$(1))) $(firstword $(1)))

# Lowest first. Linking lists them highest first, so a library may use only those below.
LAYERS    := base io text obs engine cli sweep judge
LIB_SRC   := $(foreach l,$(LAYERS),$(wildcard lib/$(l)/*.c lib/$(l)/*/*.c))
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIBS      := $(foreach l,$(call reverse,$(LAYERS)),$(BUILD)/lib/libxl-$(l).a)
TOOL_SRC  := $(wildcard tools/xl-*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench_*.c)
BENCH_BINS := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS      := $(wildcard lib/*/*.h lib/*/*/*.h) $(wildcard tests/*.h)

DEB_PKGS := build-essential pkg-config libopenblas-dev libcjson-dev libcsv-dev libdnnl-dev \
            libcurl4-openssl-dev libutf8proc-dev libncurses-dev gnuplot-nox jq \
            parallel tmux valgrind python3 curl help2man man-db slurm-wlm munge

.PHONY: all deps test check valgrind bench clean tests-bin demo
all: $(TOOLS) $(TEST_BINS) $(BENCH_BINS)

tests-bin: $(TEST_BINS)

$(BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) $(CUDA_CFLAGS) -c $< -o $@

# One archive per layer; the engine's also holds the CUDA device's objects when built.
$(foreach l,$(LAYERS),$(eval $(BUILD)/lib/libxl-$(l).a: $(filter $(BUILD)/lib/$(l)/%,$(LIB_OBJ)) $(if $(filter engine,$(l)),$$(CUDA_OBJ))))
$(BUILD)/lib/libxl-%.a:
	@rm -f $@
	ar rcs $@ $^

# version.o is rebuilt when the commit or the flags it reports change (a stamp holds them).
VERSION_STAMP := $(BUILD)/.version
ifneq ($(file <$(VERSION_STAMP)),$(XL_COMMIT) $(XL_BUILD_FLAGS))
$(shell mkdir -p $(BUILD))
$(file >$(VERSION_STAMP),$(XL_COMMIT) $(XL_BUILD_FLAGS))
endif
$(BUILD)/lib/cli/version.o: $(VERSION_STAMP)
$(VERSION_STAMP): ;

$(BIN)/%: tools/%.c $(LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) $(CUDA_CFLAGS) $< $(LIBS) $(LDFLAGS) $(LDLIBS) $(CUDA_LIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) $(CUDA_CFLAGS) -Itests $< $(LIBS) $(LDFLAGS) $(LDLIBS) $(CUDA_LIBS) -o $@

deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(DEB_PKGS)

test: all
	@BIN=$(abspath $(BIN)) TESTBIN=$(abspath $(BUILD)/tests) tests/run.sh

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
check:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1 \
	 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	 XL_SANITIZED=1 BIN=$(abspath build-asan/bin) TESTBIN=$(abspath build-asan/tests) tests/run.sh

# The same suite with every tool and test binary run under valgrind memcheck.
valgrind: all
	@XL_VALGRIND=1 BIN=$(abspath $(BIN)) TESTBIN=$(abspath $(BUILD)/tests) tests/run.sh

bench: all
	@tests/bench.sh

# The whole optimize -> save -> judge -> merge -> plot workflow on the default model.
demo: all
	$(MAKE) -f pipelines/workflow.mk demo

clean:
	rm -rf build build-asan bin

-include $(sort $(wildcard mk/*.mk))
