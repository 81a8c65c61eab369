# `make test-cuda`: the GPU tests on a machine with an NVIDIA GPU: the suite's GPU parts
# (test_cuda: every golden fixture through --device cuda with --matmul fp32, both backends,
# several chunk sizes; t_device.sh: state files across devices), then test_cuda again under
# compute-sanitizer memcheck. Without a GPU they are skipped and counted, as in `make test`.
COMPUTE_SANITIZER ?= $(firstword $(wildcard $(CUDA_HOME)/bin/compute-sanitizer) $(shell command -v compute-sanitizer 2>/dev/null))

.PHONY: test-cuda
test-cuda: all
	@BIN=$(abspath $(BIN)) TESTBIN=$(abspath $(BUILD)/tests) TESTS=cuda tests/run.sh
	@BIN=$(abspath $(BIN)) TESTBIN=$(abspath $(BUILD)/tests) TESTS=t_device tests/run.sh
	@if [ -z "$(COMPUTE_SANITIZER)" ]; then echo "test-cuda: compute-sanitizer not found; memcheck not run" >&2; exit 1; fi
	@XL_TESTDATA=$(abspath tests/golden) XL_ROOT=$(CURDIR) $(COMPUTE_SANITIZER) --tool memcheck --leak-check full \
	  --error-exitcode 86 $(BUILD)/tests/test_cuda > $(BUILD)/test_cuda.memcheck.log 2>&1; rc=$$?; \
	  tail -5 $(BUILD)/test_cuda.memcheck.log; \
	  if [ $$rc = 77 ]; then echo "test-cuda: no GPU here: memcheck skipped"; elif [ $$rc != 0 ]; then \
	    echo "test-cuda: compute-sanitizer memcheck failed (exit $$rc), see $(BUILD)/test_cuda.memcheck.log"; exit 1; \
	  else echo "test-cuda: compute-sanitizer memcheck clean"; fi
