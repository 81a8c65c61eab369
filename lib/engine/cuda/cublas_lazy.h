/* cublas_lazy: cuBLAS is loaded when the first GPU session needs it, not when a tool starts:
 * linked directly, libcublas/libcublasLt (~0.7 GB of code) made every tool start ten times
 * slower and map 200 MB, on machines with no GPU too. The few cuBLAS entry points the CUDA
 * device calls are defined in cublas_lazy.cu and forward to the library found by dlopen.
 * Not for: other CUDA libraries (cudart is linked statically). */
#ifndef XL_CUBLAS_LAZY_H
#define XL_CUBLAS_LAZY_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* 0 when libcublas can be loaded; else -1 and why (the loader's message). */
int xl_cublas_load(char *why, size_t whylen);
#ifdef __cplusplus
}
#endif
#endif
