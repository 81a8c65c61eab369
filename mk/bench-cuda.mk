# make bench-cuda: the GPU measurements (tests/bench_cuda.sh): the GPU's ceilings
# (build/tests/gpu_limits: bf16 GEMM through cuBLAS, copy and read bandwidth), the 7B
# checkpoint on the CUDA device (build/tests/bench_cuda) against them, and Hugging Face
# transformers on the same checkpoint when python3 has torch and transformers; NDJSON on
# stdout and in BENCH_OUT (default runs/bench-cuda-<time>.ndjson). See the script's header.
#
# tests/gpu_limits.cu -> $(BUILD)/tests/gpu_limits, with nvcc: CUDA_HOME/bin/nvcc (default
# /usr/local/cuda), else nvcc on PATH; nothing when CUDA=0 or no nvcc is found. cudart is
# linked statically, cuBLAS from the toolkit (the GPU machine's own at run time); rpath
# $ORIGIN/../lib so the copy in the bundle (libexec/) finds the bundle's libstdc++.
# The detection repeats mk/cuda.mk's (the same ?= defaults; this file is included first).
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA ?= $(if $(NVCC),1,0)

.PHONY: bench-cuda gpu-limits

ifeq ($(CUDA),1)
GPU_LIMITS := $(BUILD)/tests/gpu_limits
GPU_LIMITS_LIBDIR := $(or $(wildcard $(CUDA_HOME)/lib64),$(abspath $(dir $(NVCC))/../lib64))
GPU_LIMITS_ARCH ?= -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90

$(GPU_LIMITS): tests/gpu_limits.cu
	@mkdir -p $(@D)
	$(NVCC) -O3 -std=c++17 $(GPU_LIMITS_ARCH) -cudart static $< -o $@ -L$(GPU_LIMITS_LIBDIR) -lcublas \
	  -Xlinker -rpath -Xlinker '$$ORIGIN/../lib' -Xlinker --disable-new-dtags

gpu-limits: $(GPU_LIMITS)
all: $(GPU_LIMITS)
else
GPU_LIMITS :=
gpu-limits:
	@echo "gpu-limits: no nvcc (CUDA=0): nothing to build" >&2
endif

# The run tools, the CUDA benchmark and the ceilings; the script skips what it cannot run.
bench-cuda: $(TOOLS) $(BENCH_BINS) $(GPU_LIMITS)
	@XL_BIN=$(abspath $(BIN)) XL_HELPERS=$(abspath $(BUILD)/tests) tests/bench_cuda.sh
