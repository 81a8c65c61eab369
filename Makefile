# xltools build.  `make deps` installs the Debian packages, `make` builds bin/xl-*,
# `make test` runs the suite, `make check` the same under ASan+UBSan,
# `make valgrind` the same under valgrind, `make bench` the speed measurements.
#
# Sources are discovered, so adding a file needs no edit here:
#   libcommon/*.c      -> build/libcommon.a (the shared library of the tools)
#   tools/xl-NAME.c    -> bin/xl-NAME
#   tests/test_NAME.c  -> build/tests/test_NAME (run by tests/run.sh)
#   tests/bench_NAME.c -> build/tests/bench_NAME (run by tests/bench.sh, `make bench`)
#   tests/t_NAME.sh    -> shell tests (run by tests/run.sh)

CC      ?= cc
PKGS    := openblas libcjson libcurl libutf8proc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
XCFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -pthread -Ilibcommon \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -D_FILE_OFFSET_BITS=64 \
           -DXL_SOURCE_ROOT='"$(CURDIR)"'
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lncursesw -lm -lpthread

# Build flavours: plain (build/, bin/), sanitizers (build-asan/).
BUILD   ?= build
BIN     ?= bin

LIB_SRC   := $(wildcard libcommon/*.c)
LIB_OBJ   := $(LIB_SRC:libcommon/%.c=$(BUILD)/libcommon/%.o)
TOOL_SRC  := $(wildcard tools/xl-*.c)
TOOLS     := $(TOOL_SRC:tools/%.c=$(BIN)/%)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench_*.c)
BENCH_BINS := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS      := $(wildcard libcommon/*.h) $(wildcard tests/*.h)

DEB_PKGS := build-essential pkg-config libopenblas-dev libcjson-dev libcsv-dev \
            libcurl4-openssl-dev libutf8proc-dev libncurses-dev gnuplot-nox jq \
            parallel tmux valgrind python3 curl

.PHONY: all deps test check valgrind bench clean tests-bin demo
all: $(TOOLS) $(TEST_BINS) $(BENCH_BINS)

tests-bin: $(TEST_BINS)

$(BUILD)/libcommon/%.o: libcommon/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) -c $< -o $@

$(BUILD)/libcommon.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/%: tools/%.c $(BUILD)/libcommon.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) $< $(BUILD)/libcommon.a $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libcommon.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(XCFLAGS) -Itests $< $(BUILD)/libcommon.a $(LDFLAGS) $(LDLIBS) -o $@

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
