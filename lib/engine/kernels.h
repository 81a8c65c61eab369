/* kernels: the numeric building blocks of the forward pass: weight matrices kept in their
 * stored dtype (F32, BF16, F16) with matrix-vector (decode) and matrix-matrix (prefill,
 * OpenBLAS SGEMM over fp32 tiles converted on the fly) products; norms; activations.
 * The matvec and conversion kernels come in variants (AVX-512, AVX2+FMA, plain C) chosen
 * by cpuid, or forced by the `kernels` run setting (xl_kernels_select, process-wide).
 * Not for: model structure (model.c) or scheduling (pool.c). */
#ifndef XL_KERNELS_H
#define XL_KERNELS_H
#include "io/safetensors.h"
#include <stddef.h>
#include <stdint.h>

/* A weight matrix W [rows, cols], row-major, y = W x. data points into the mmapped file
 * (or into an aligned copy when the file's F32 data is misaligned). */
typedef struct {
  st_dtype dtype;    /* ST_F32, ST_BF16 or ST_F16 */
  int rows, cols;
  const void *data;
} xl_mat;

/* The kernel variants. AUTO: the best this CPU (and its OS) runs. AVX512BF16: the AVX-512
 * kernels, and --matmul bf16's GEMMs over BF16 weights on the CPU's BF16 units
 * (AVX512-BF16, AMX-BF16; engine/libgemm.h) instead of fp32 SGEMM on bf16 values. */
typedef enum { XL_KERNELS_AUTO = 0, XL_KERNELS_AVX512, XL_KERNELS_AVX2, XL_KERNELS_SCALAR, XL_KERNELS_AVX512BF16 } xl_kernels;
#define XL_KERNELS_COUNT 5
const char *xl_kernels_name(xl_kernels k);           /* "auto", "avx512", "avx2", "scalar", "avx512bf16" */
int xl_kernels_parse(const char *s, xl_kernels *k);  /* 0 ok */
int xl_kernels_supported(xl_kernels k);              /* this CPU runs it (AUTO, SCALAR: always) */
xl_kernels xl_kernels_best(void);                    /* what AUTO picks here */
/* Makes k the variant every later kernel call runs (process-wide; AUTO: the best). 0 ok;
 * -1 with a message when this CPU lacks the variant's instructions. */
int xl_kernels_select(xl_kernels k, char *err, size_t errlen);
xl_kernels xl_kernels_active(void);                  /* never AUTO */

static inline float xl_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } v = {(uint32_t)h << 16};
  return v.f;
}
/* Round-to-nearest-even fp32 -> bf16 / f16 (for writing checkpoints and --matmul bf16). */
/* IEEE half -> fp32 (every kernel variant converts the same way). */
float xl_f16_to_f32(uint16_t h);
uint16_t xl_f32_to_bf16(float f);
uint16_t xl_f32_to_f16(float f);

/* x[i] = the bf16 value nearest x[i] (ties to even), as fp32: the same bits as
 * xl_bf16_to_f32(xl_f32_to_bf16(x[i])) for every input (--matmul bf16's activations). */
void xl_round_bf16(float *x, size_t n);

/* The mLSTM cell step's state update over columns [d0, d1) of C [DK, DV] (engine/cell.c):
 * for j in order: C[j][d] = fa * C[j][d] + (ia * k[j]) * v[d]; h[d] = sum_j (q[j] * qscale) * C[j][d]
 * (h[d0..d1) overwritten). Multiplies and adds rounded apart (no FMA), so every variant gives
 * the plain C's bits. */
void xl_cell_state_cols(int DK, int DV, float fa, float ia, float qscale, const float *q, const float *k, const float *v, float *C,
                        float *h, int d0, int d1);

/* Mean and 1/sqrt(biased variance + eps) of x [n], accumulated in double (the LayerNorms
 * of both architectures). */
void xl_mean_rstd(const float *x, int n, float eps, float *mu, float *rstd);

/* Converts n elements of any float dtype to fp32. */
void xl_to_f32(st_dtype t, const void *src, float *dst, size_t n);

/* Row of a matrix (e.g. an embedding row) as fp32. */
void xl_mat_row(const xl_mat *w, int row, float *dst);

/* y[r] = W[r,:] . x for r in [r0, r1) (y indexed by r). No allocation. */
void xl_matvec_rows(const xl_mat *w, const float *x, float *y, int r0, int r1);

/* Y [T, rows] = X [T, cols] W^T, rows [r0, r1) only. Y has leading dimension ldy.
 * tile: fp32 scratch of at least xl_gemm_tile_floats(w) floats, used for BF16/F16.
 * With BF16/F16 weights and T <= XL_SMALL_T (a short prompt), the product runs as T
 * matvecs over small row blocks instead: the weights are read from memory once, and not
 * converted to fp32 tiles, whose cost only pays off over many tokens; tile is then unused,
 * so row bands may run in parallel. */
#define XL_SMALL_T 8
void xl_gemm_rows(const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy, int r0, int r1, float *tile);
size_t xl_gemm_tile_floats(const xl_mat *w);
/* Rows of W converted per tile: a tile holds this many rows (or fewer at the end). */
int xl_gemm_tile_rows(const xl_mat *w);

#endif
