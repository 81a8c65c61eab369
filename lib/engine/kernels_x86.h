/* kernels_x86: the per-ISA kernel variants that kernels.c dispatches to (internal to the
 * engine's kernels; everything else calls the kernels.h entry points).
 * W is row-major [rows, n]; y[r] = W[r,:] . x for r in [r0, r1). */
#ifndef XL_KERNELS_X86_H
#define XL_KERNELS_X86_H
#include "io/safetensors.h"
#include <stddef.h>
#include <stdint.h>

/* kernels_avx2.c: AVX2 + FMA + F16C */
void xl_to_f32_avx2(st_dtype t, const uint16_t *s, float *dst, size_t n);
void xl_matvec_f32_avx2(const float *W, int n, const float *x, float *y, int r0, int r1);
void xl_matvec_bf16_avx2(const uint16_t *W, int n, const float *x, float *y, int r0, int r1);
void xl_round_bf16_avx2(float *x, size_t n);
void xl_cell_cols_avx2(int DK, int DV, float fa, float ia, float qscale, const float *q, const float *k, const float *v, float *C,
                       float *h, int d0, int d1);
void xl_matvec_f16_avx2(const uint16_t *W, int n, const float *x, float *y, int r0, int r1);

#endif
