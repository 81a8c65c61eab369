/* bf16gemm: matrix products on the CPU's own BF16 arithmetic (AVX512-BF16, AMX-BF16)
 * through a maintained library, for `--matmul bf16` over BF16 weights: Y = X W^T with X and
 * W in bf16 and Y in fp32 (products exact, sums in fp32), instead of converting the weights
 * to fp32 tiles for SGEMM.
 * The library is oneDNN (Debian's libdnnl2), loaded on first use (dlopen), so the tools
 * neither link nor load it unless asked: OpenBLAS's cblas_sbgemm would be the natural
 * choice, but Debian 12's libopenblas 0.3.21 is built without BUILD_BFLOAT16 (cblas.h
 * declares cblas_sbgemm, the library has no such symbol); when the loaded OpenBLAS does
 * export it (a build with BFLOAT16), it is used instead of oneDNN.
 * Not for: the fp32 path (kernels.h), decode matvecs (kernels.h). */
#ifndef XL_BF16GEMM_H
#define XL_BF16GEMM_H
#include "engine/kernels.h"
#include <stddef.h>
#include <stdint.h>

/* Whether BF16 GEMMs can run here: the CPU has BF16 instructions and a library provides
 * them (loaded on the first call). 1 yes; 0 no, with the reason in why (may be NULL). */
int xl_bf16gemm_available(char *why, size_t n);
/* What runs them: "openblas sbgemm", "onednn brg:avx512_core_amx_bf16", or "none". */
const char *xl_bf16gemm_impl(void);

/* Y [T, rows of w] (leading dim ldy) = Xb [T, cols] (bf16, leading dim ldx) W^T, for BF16
 * weights w; threads: how many the library may use. 0 ok; -1 if unavailable or it failed
 * (the caller falls back to the fp32 path). */
int xl_bf16gemm(const xl_mat *w, const uint16_t *Xb, int T, int ldx, float *Y, int ldy, int threads);

/* fp32 values that are bf16 values (rounded to bf16 already) -> their bf16 encoding: the
 * high 16 bits, exactly (anything else is truncated). */
void xl_bf16_high_halves(const float *x, uint16_t *y, size_t n);

#endif
