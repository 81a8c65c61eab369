# Fuzzing (docs/fuzzing.md): one libFuzzer harness per parser, tests/fuzz/fuzz_NAME.c, built
# with clang against the library compiled the same way into build-fuzz/ (never mixed with
# build/ or build-asan/), without the CUDA device.
#   make fuzz-build                       the harnesses: build-fuzz/fuzz_NAME
#   make fuzz [FUZZ_SECONDS=60]           each harness for FUZZ_SECONDS on a copy of its seed
#             [FUZZ_TARGETS="csvtable state"]   corpus tests/fuzz/corpus/NAME; new inputs go to
#                                         build-fuzz/corpus/NAME, crashes to build-fuzz/crashes/NAME
# tests/t_fuzz.sh (make test) builds them and runs each for a few seconds, plus every saved
# regression input in tests/fuzz/regress/NAME once.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  ?= -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJ := $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/lib/%.o)
FUZZ_LIBS    := $(foreach l,$(call reverse,$(LAYERS)),$(FUZZ_BUILD)/lib/libxl-$(l).a)

# clang and libFuzzer's runtime (Debian: clang, libclang-rt-dev).
DEB_PKGS += clang libclang-rt-dev

.PHONY: fuzz fuzz-build fuzz-clean
fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(XCFLAGS) -c $< -o $@

$(foreach l,$(LAYERS),$(eval $(FUZZ_BUILD)/lib/libxl-$(l).a: $(filter $(FUZZ_BUILD)/lib/$(l)/%,$(FUZZ_LIB_OBJ))))
$(FUZZ_BUILD)/lib/libxl-%.a:
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIBS) $(HDRS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(XCFLAGS) -Itests/fuzz $< $(FUZZ_LIBS) $(LDLIBS) -o $@

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

clean: fuzz-clean
