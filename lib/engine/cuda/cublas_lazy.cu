/* cublas_lazy: forwarding definitions of the cuBLAS entry points the device uses. See
 * cublas_lazy.h. Each resolves its target once; a missing library or symbol makes the call
 * return an error status (and xl_cublas_load says why), never abort. */
#include "engine/cuda/cublas_lazy.h"
#include <cublas_v2.h>
#include <dlfcn.h>
#include <mutex>
#include <stdio.h>

#define XL_STR2(x) #x
#define XL_STR(x) XL_STR2(x)

static void *cublas_handle;
static char load_error[512];

static void *library(void) {
  static std::once_flag once;
  std::call_once(once, [] {
    /* the toolkit's soname first (the version this was built with), then any */
    const char *names[] = {"libcublas.so." XL_STR(CUBLAS_VER_MAJOR), "libcublas.so"};
    for (const char *n : names)
      if ((cublas_handle = dlopen(n, RTLD_NOW | RTLD_LOCAL))) return;
    const char *e = dlerror();
    snprintf(load_error, sizeof load_error, "cannot load cuBLAS (%s); install the CUDA toolkit's libcublas or add its "
             "folder to LD_LIBRARY_PATH", e ? e : "not found");
  });
  return cublas_handle;
}

extern "C" int xl_cublas_load(char *why, size_t whylen) {
  if (library()) return 0;
  snprintf(why, whylen, "%s", load_error);
  return -1;
}

/* Defines NAME(PARAMS) forwarding ARGS to the loaded library's NAME. */
#define FORWARD(name, params, args)                                          \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                       \
    typedef cublasStatus_t(CUBLASWINAPI * fn_t) params;                      \
    static fn_t fn;                                                          \
    if (!fn) {                                                               \
      void *h = library();                                                   \
      if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;                          \
      fn = (fn_t)dlsym(h, #name);                                            \
      if (!fn) return CUBLAS_STATUS_NOT_SUPPORTED;                           \
    }                                                                        \
    return fn args;                                                          \
  }

FORWARD(cublasCreate_v2, (cublasHandle_t * handle), (handle))
FORWARD(cublasDestroy_v2, (cublasHandle_t handle), (handle))
FORWARD(cublasSetStream_v2, (cublasHandle_t handle, cudaStream_t stream), (handle, stream))
FORWARD(cublasSetMathMode, (cublasHandle_t handle, cublasMath_t mode), (handle, mode))
FORWARD(cublasSetWorkspace_v2, (cublasHandle_t handle, void *workspace, size_t bytes), (handle, workspace, bytes))
FORWARD(cublasGemmEx,
        (cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A,
         cudaDataType At, int lda, const void *B, cudaDataType Bt, int ldb, const void *beta, void *C, cudaDataType Ct, int ldc,
         cublasComputeType_t ct, cublasGemmAlgo_t algo),
        (h, ta, tb, m, n, k, alpha, A, At, lda, B, Bt, ldb, beta, C, Ct, ldc, ct, algo))
FORWARD(cublasGemmBatchedEx,
        (cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
         const void *const A[], cudaDataType At, int lda, const void *const B[], cudaDataType Bt, int ldb, const void *beta,
         void *const C[], cudaDataType Ct, int ldc, int batch, cublasComputeType_t ct, cublasGemmAlgo_t algo),
        (h, ta, tb, m, n, k, alpha, A, At, lda, B, Bt, ldb, beta, C, Ct, ldc, batch, ct, algo))
