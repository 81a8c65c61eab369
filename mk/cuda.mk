# The CUDA device (lib/engine/cuda/*.cu, see docs/cuda.md), built when nvcc is found:
# CUDA_HOME/bin/nvcc (default /usr/local/cuda), else nvcc on PATH; `make CUDA=0` skips it.
# Sets CUDA_OBJ (objects under $(BUILD)/cuda/, archived into the engine's library),
# CUDA_LIBS (cudart linked statically; cuBLAS/cuBLASLt shared, from the toolkit) and
# CUDA_CFLAGS (-DXL_HAVE_CUDA=1 for the C files that call lib/engine/cuda/cuda.h).
# Code: sm_90a (Hopper: H100, H200) plus compute_90 PTX that newer GPUs compile at load.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA ?= $(if $(NVCC),1,0)

ifeq ($(CUDA),1)
CUDA_LIBDIR := $(or $(wildcard $(CUDA_HOME)/lib64),$(abspath $(dir $(NVCC))/../lib64))
CUDA_ARCH ?= -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90
NVCCFLAGS ?= -O3 -std=c++17 -lineinfo
CUDA_SRC := $(wildcard lib/engine/cuda/*.cu)
CUDA_HDR := $(wildcard lib/engine/cuda/*.h lib/engine/cuda/*.cuh)
CUDA_OBJ := $(CUDA_SRC:lib/engine/cuda/%.cu=$(BUILD)/cuda/%.o)
CUDA_CFLAGS := -DXL_HAVE_CUDA=1
CUDA_LIBS := -L$(CUDA_LIBDIR) -lcudart_static -ldl -lrt -lpthread -lstdc++

# The engine's archive holds the objects. Stated here too: the Makefile reads its archive
# rules before including this file, when CUDA_OBJ is still empty.
$(BUILD)/lib/libxl-engine.a: $(CUDA_OBJ)

$(BUILD)/cuda/%.o: lib/engine/cuda/%.cu $(CUDA_HDR) $(HDRS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -Ilib -Xcompiler -Wall -c $< -o $@
else
CUDA_OBJ :=
CUDA_CFLAGS :=
CUDA_LIBS :=
endif
