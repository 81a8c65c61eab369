# make bundle: a relocatable tarball, $(DIST)/xltools-<version>-linux-<arch>.tar.gz, and the
# same tree unpacked in $(DIST)/xltools/, for a Linux x86-64 machine that has none of the
# Debian packages (a cluster node, a GPU box without root). Layout (docs/cuda.md, "The bundle"):
#   bin/       every bin/xl-* tool
#   libexec/   the programs the GPU run and the golden tests need, where built: test_cuda,
#              bench_cuda, bench_model, bench_limits, test_engine, gpu_limits; and jq (for
#              tests/bench_cuda.sh; it runs with LD_LIBRARY_PATH=lib, having no rpath)
#   lib/       every shared library those load (ldd, the whole chain: OpenBLAS, gfortran,
#              quadmath, cJSON, libcsv, libcurl and its TLS/HTTP/Kerberos/LDAP chain,
#              utf8proc, ncurses, libstdc++, libgcc_s, jq's), except glibc's own libraries
#              and what a GPU machine provides: the driver's libcuda and libnvidia-*, and the
#              CUDA toolkit's cuBLAS, which the tools dlopen on their first GPU session
#              (oneDNN, also dlopen'd, is copied with its chain: BUNDLE_DLOPEN)
#              (searching lib/ first, then LD_LIBRARY_PATH and the system's paths);
#              BUNDLE_CUBLAS=1 copies libcublas and libcublasLt into lib/ too (about 600 MB)
#   models/ plots/ prompts/ docs/ tests/golden/   the default model, gnuplot scripts, prompts,
#              docs, the golden files (XL_TESTDATA=tests/golden XL_ROOT=. libexec/test_cuda)
#   tests/bench_cuda.sh tests/hf_bench.py   make bench-cuda without make: tests/bench_cuda.sh
#   README.md BUILD-INFO.json   the project's README; version, commit, build machine's glibc,
#              the newest glibc symbol version the bundle needs, CUDA or not
# The tools find their libraries through DT_RPATH $ORIGIN/../lib (not RUNPATH: an RPATH of
# the executable is searched for the libraries' own dependencies too, e.g. libcurl's), and
# the default model through <exe>/../models. tests/t_bundle.sh checks all of it.
# Variables: DIST (default dist), BUNDLE_VERSION (default git describe), BUNDLE_CUBLAS=1.

DIST ?= dist
BUNDLE_NAME ?= xltools
BUNDLE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
BUNDLE_PLATFORM ?= linux-$(shell uname -m)
BUNDLE_DIR = $(DIST)/$(BUNDLE_NAME)
BUNDLE_TGZ = $(DIST)/$(BUNDLE_NAME)-$(BUNDLE_VERSION)-$(BUNDLE_PLATFORM).tar.gz
BUNDLE_CUBLAS ?= 0
BUNDLE_CUDA_LIBDIR ?= $(or $(wildcard $(CUDA_HOME)/lib64),$(abspath $(dir $(NVCC))/../lib64))
BUNDLE_HELPERS := test_cuda bench_cuda bench_model bench_limits test_engine
BUNDLE_DATA := models plots prompts docs
BUNDLE_SCRIPTS := tests/bench_cuda.sh tests/hf_bench.py
# Loaded with dlopen, so ldd of the programs does not list them: oneDNN (--matmul bf16 on a
# CPU's BF16 units, engine/libgemm.c), copied with its own chain when this machine has it.
BUNDLE_DLOPEN := libdnnl.so.2

# Every tool and test program looks for its libraries in <exe>/../lib first.
LDFLAGS += -Wl,-rpath,'$$ORIGIN/../lib' -Wl,--disable-new-dtags

# Relink when the link flags change (the first time this file is there, or LDFLAGS="..."):
# the programs depend on a stamp that holds the flags of their last link.
BUNDLE_LINK_STAMP := $(BUILD)/.link-flags
ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(file <$(BUNDLE_LINK_STAMP)),$(LDFLAGS))
$(shell mkdir -p $(BUILD))
$(file >$(BUNDLE_LINK_STAMP),$(LDFLAGS))
endif
endif
$(TOOLS) $(TEST_BINS) $(BENCH_BINS): $(BUNDLE_LINK_STAMP)
$(BUNDLE_LINK_STAMP): ;

# BUILD-INFO.json (one line here: make keeps a backslash-newline inside the shell's quotes)
BUNDLE_INFO_JQ := {name: $$name, version: $$version, platform: $$platform, commit: $$commit, built: $$built, \
  build_glibc: $$build_glibc, glibc_needed: ($$glibc_min | sub("GLIBC_"; "")), cuda: ($$cuda == "1"), nvcc: $$nvcc, \
  cublas_bundled: ($$cublas_bundled == "1"), programs: ($$bins | split(" ") | map(select(. != ""))), \
  libs: ($$libs | split(" ") | map(select(. != "")))}

.PHONY: bundle
# $(GPU_LIMITS) comes from mk/bench-cuda.mk (included before this file; empty without nvcc).
bundle: $(TOOLS) $(TEST_BINS) $(BENCH_BINS) $(GPU_LIMITS)
	@set -eu; \
	stage=$(BUNDLE_DIR).tmp; rm -rf "$$stage"; mkdir -p "$$stage/bin" "$$stage/libexec" "$$stage/lib" "$$stage/tests"; \
	cp -p $(TOOLS) "$$stage/bin/"; \
	for h in $(addprefix $(BUILD)/tests/,$(BUNDLE_HELPERS)) $(GPU_LIMITS); do \
	  if [ -x "$$h" ]; then cp -p "$$h" "$$stage/libexec/"; fi; \
	done; \
	jq=$$(command -v jq || true); if [ -n "$$jq" ]; then cp -pL "$$jq" "$$stage/libexec/jq"; fi; \
	for f in "$$stage"/bin/* "$$stage"/libexec/*; do \
	  [ "$$(basename "$$f")" = jq ] && continue; \
	  readelf -d "$$f" | grep -q 'RPATH.*\[\$$ORIGIN/\.\./lib\]' || { \
	    echo "bundle: $$f has no RPATH \$$ORIGIN/../lib (rm it and make again)" >&2; exit 1; }; \
	done; \
	for so in $(BUNDLE_DLOPEN); do \
	  p=$$(ldconfig -p | awk -v s="$$so" '$$1 == s { print $$NF; exit }'); \
	  if [ -n "$$p" ]; then cp -L "$$p" "$$stage/lib/$$so"; else echo "bundle: $$so not on this machine (left out)" >&2; fi; \
	done; \
	for f in "$$stage"/bin/* "$$stage"/libexec/* "$$stage"/lib/*; do ldd "$$f"; done | awk '$$2 == "=>" { print $$1, $$3 }' | sort -u | \
	while read -r so path; do \
	  case "$$so" in \
	    ld-linux*|libc.so.*|libm.so.*|libmvec.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libanl.so.*|libnsl.so.*|libBrokenLocale.so.*|libnss_*|libthread_db.so.*) continue ;; \
	    libcuda.so.*|libnvidia-*) continue ;; \
	    libcublas.so.*|libcublasLt.so.*) [ "$(BUNDLE_CUBLAS)" = 1 ] || continue ;; \
	  esac; \
	  if [ "$$path" = "not" ]; then echo "bundle: $$so is not found on this machine" >&2; exit 1; fi; \
	  cp -L "$$path" "$$stage/lib/$$so"; \
	done; \
	if [ "$(BUNDLE_CUBLAS)" = 1 ]; then \
	  for f in $(BUNDLE_CUDA_LIBDIR)/libcublas.so.* $(BUNDLE_CUDA_LIBDIR)/libcublasLt.so.*; do \
	    so=$$(readelf -d "$$f" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'); \
	    if [ -n "$$so" ] && [ ! -e "$$stage/lib/$$so" ]; then cp -L "$$f" "$$stage/lib/$$so"; fi; \
	  done; \
	  ls "$$stage"/lib/libcublas.so.* > /dev/null 2>&1 || { echo "bundle: BUNDLE_CUBLAS=1 but no libcublas in $(BUNDLE_CUDA_LIBDIR)" >&2; exit 1; }; \
	fi; \
	chmod 644 "$$stage"/lib/* 2>/dev/null || true; \
	for d in $(BUNDLE_DATA); do if [ -d "$$d" ]; then cp -RL "$$d" "$$stage/"; fi; done; \
	mkdir -p "$$stage/tests"; cp -RL tests/golden "$$stage/tests/"; \
	for s in $(BUNDLE_SCRIPTS); do if [ -f "$$s" ]; then cp -p "$$s" "$$stage/tests/"; fi; done; \
	cp -p README.md "$$stage/"; \
	glibc_min=$$(objdump -T "$$stage"/bin/* "$$stage"/libexec/* "$$stage"/lib/* 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -1); \
	nvcc_ver=$$( [ -n "$(NVCC)" ] && $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' || true); \
	jq -n --arg name "$(BUNDLE_NAME)" --arg version "$(BUNDLE_VERSION)" --arg platform "$(BUNDLE_PLATFORM)" \
	  --arg commit "$$(git rev-parse HEAD 2>/dev/null || echo unknown)" --arg built "$$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	  --arg build_glibc "$$(ldd --version | head -1 | sed 's/.* //')" --arg glibc_min "$$glibc_min" \
	  --arg cuda "$(CUDA)" --arg nvcc "$$nvcc_ver" --arg cublas_bundled "$(BUNDLE_CUBLAS)" \
	  --arg libs "$$(ls "$$stage/lib" | tr '\n' ' ')" --arg bins "$$(cd "$$stage" && ls -d bin/* libexec/* | tr '\n' ' ')" \
	  '$(BUNDLE_INFO_JQ)' > "$$stage/BUILD-INFO.json"; \
	rm -rf $(BUNDLE_DIR); mv "$$stage" $(BUNDLE_DIR); \
	rm -f $(DIST)/$(BUNDLE_NAME)-*-$(BUNDLE_PLATFORM).tar.gz; \
	tar -C $(DIST) --sort=name --owner=0 --group=0 --numeric-owner -czf $(BUNDLE_TGZ).tmp $(BUNDLE_NAME); \
	mv $(BUNDLE_TGZ).tmp $(BUNDLE_TGZ); \
	echo "bundle: $(BUNDLE_TGZ) ($$(du -h $(BUNDLE_TGZ) | cut -f1); unpacked in $(BUNDLE_DIR), $$(du -sh $(BUNDLE_DIR) | cut -f1); $$(ls $(BUNDLE_DIR)/lib | wc -l) libraries; glibc >= $${glibc_min#GLIBC_})"
