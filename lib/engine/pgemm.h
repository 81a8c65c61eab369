/* pgemm: the projection GEMMs of a CPU prefill, and the row-parallel loops around them,
 * shared by the architectures (engine/xlstm, engine/v1):
 *   - F32 weights: one SGEMM on the session's OpenBLAS threads (or oneDNN's, --gemm onednn);
 *   - BF16/F16 weights: fp32 tiles converted by all the pool's workers (row bands), one
 *     SGEMM per tile; past 3 workers the tiles grow to workers/2 x the kernels' 4 MB so each
 *     SGEMM has rows for every thread (1-3 workers: the kernels' tiles, xl_gemm_rows's path);
 *   - --matmul bf16 over BF16 weights with the avx512bf16 kernels: bf16 x bf16 -> fp32 on the
 *     CPU's BF16 units (engine/libgemm.h), on a bf16 copy of the input converted once per
 *     input buffer (xl_pgemm_forget says when the caller rewrote one).
 * The fp32 paths give the same bits whatever the worker count: SGEMM splits rows and tokens
 * over its threads, never the sums, and conversion is exact.
 * Short prompts (T <= XL_SMALL_T) over BF16/F16 weights run as matvecs on the caller's
 * thread (xl_gemm_rows); a caller with workers may split those rows itself.
 * Not for: decode matvecs (kernels.h). */
#ifndef XL_PGEMM_H
#define XL_PGEMM_H
#include "engine/kernels.h"
#include "engine/pool.h"
#include "engine/session.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
  xl_pool *pool;
  int workers;
  float *tile;           /* fp32 tiles for BF16/F16 weights */
  int tile_scale;
  int bf16;              /* products on the BF16 units */
  int onednn;            /* fp32 products through oneDNN (--gemm onednn, and it loaded) */
  uint16_t *Xb;          /* the bf16 copy of the input */
  const float *xb_src;   /* which input Xb holds (NULL: none) */
  int xb_T, xb_cols, xb_ld;
  size_t bytes;          /* what init allocated */
} xl_pgemm;

/* tile_floats: the largest xl_gemm_tile_floats of the matrices it will see; bf16: use the
 * BF16 units (the caller checked --matmul bf16, the kernels and xl_bf16gemm_available);
 * xb_elems: then the largest T x cols of an input; lib: the fp32 GEMM library (--gemm; oneDNN
 * when it cannot load: OpenBLAS). */
void xl_pgemm_init(xl_pgemm *g, xl_pool *pool, int workers, size_t tile_floats, int bf16, size_t xb_elems, xl_gemm lib);
void xl_pgemm_free(xl_pgemm *g);
/* Y [T, rows] (ldy) = X [T, cols] (ldx) W^T; T >= 1. */
void xl_pgemm_run(xl_pgemm *g, const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy);
/* The caller rewrote an input buffer: the next product converts its input again. */
static inline void xl_pgemm_forget(xl_pgemm *g) { g->xb_src = NULL; }

/* fn(ctx, a, b) over [a, b) bands of [0, n), on the pool when it has workers and the work
 * (cost: about the elements per row) pays for a dispatch; else on the caller, in one go. */
typedef void (*xl_rows_fn)(void *ctx, int a, int b);
void xl_par_rows(xl_pool *pool, int n, long cost, xl_rows_fn fn, void *ctx);

#endif
