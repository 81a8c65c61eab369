/* libgemm: prefill GEMMs through maintained libraries loaded on first use, where they beat
 * the default path (OpenBLAS's SGEMM over fp32 tiles, engine/pgemm.h):
 *   - BF16: `--matmul bf16` over BF16 weights on the CPU's own BF16 arithmetic (AVX512-BF16,
 *     AMX-BF16): Y = X W^T with X and W in bf16, Y in fp32 (products exact, sums in fp32).
 *     OpenBLAS's cblas_sbgemm when the loaded OpenBLAS exports it (Debian 12's 0.3.21 is
 *     built without BUILD_BFLOAT16: cblas.h declares it, the library lacks it), else oneDNN.
 *   - fp32: `--gemm onednn`, oneDNN's fp32 matmul instead of OpenBLAS's SGEMM (same
 *     operands; sums in another order, so logits within float rounding, not the same bits).
 * oneDNN is Debian's libdnnl2, loaded with dlopen, so the tools neither link nor load it
 * unless asked.
 * Not for: decode matvecs (kernels.h), the tiling and the threads around the products
 * (pgemm.h). */
#ifndef XL_LIBGEMM_H
#define XL_LIBGEMM_H
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

/* Whether oneDNN's fp32 matmul can run here (libdnnl.so.2 loads). 1 yes; 0 no, with the
 * reason in why (may be NULL). */
int xl_onednn_sgemm_available(char *why, size_t n);
/* What runs it: "onednn brg:avx512_core" and the like (after the first product), or "none". */
const char *xl_onednn_sgemm_impl(void);
/* Y [T, rows] (ldy) = X [T, cols] (ldx) W^T, all fp32, W row-major [rows, cols] (leading dim
 * cols); threads as above. 0 ok; -1 unavailable or failed (the caller uses OpenBLAS). */
int xl_onednn_sgemm(const float *X, int T, int ldx, const float *W, int rows, int cols, float *Y, int ldy, int threads);

/* fp32 values that are bf16 values (rounded to bf16 already) -> their bf16 encoding: the
 * high 16 bits, exactly (anything else is truncated). */
void xl_bf16_high_halves(const float *x, uint16_t *y, size_t n);

#endif
