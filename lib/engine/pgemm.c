/* pgemm: prefill GEMMs and row-parallel loops. See pgemm.h. */
#include "engine/pgemm.h"
#include "base/util.h"
#include "engine/libgemm.h"
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* OpenBLAS's idle threads yield-spin for 2^28 cycles (about 0.1 s) after each GEMM before
 * they sleep. Between the GEMMs of a prefill our pool runs the cell and the loops on the same
 * cores, and those threads take CPU from it in sched_yield calls (a third of the default
 * model's 2-worker prefill time went to sched_yield). OPENBLAS_THREAD_TIMEOUT=4 (2^4 cycles:
 * sleep at once; the next GEMM wakes them) is read when OpenBLAS starts its threads, so it is
 * set (unless the user set it) and the threads are restarted once per process. Weak symbols:
 * an OpenBLAS without them (another threading build) is left alone. */
extern void openblas_read_env(void) __attribute__((weak));
extern int blas_thread_shutdown_(void) __attribute__((weak));
static pthread_once_t blas_quiet_once = PTHREAD_ONCE_INIT;
static void blas_quiet(void) {
  if (!openblas_read_env || !blas_thread_shutdown_) return;
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);
  openblas_read_env();
  blas_thread_shutdown_();   /* the next GEMM starts them again, with the timeout */
}

void xl_pgemm_init(xl_pgemm *g, xl_pool *pool, int workers, size_t tile_floats, int bf16, size_t xb_elems, xl_gemm lib) {
  pthread_once(&blas_quiet_once, blas_quiet);
  *g = (xl_pgemm){.pool = pool, .workers = workers};
  if (lib == XL_GEMM_ONEDNN) {
    char why[256];
    g->onednn = xl_onednn_sgemm_available(why, sizeof why);
    if (!g->onednn) {   /* once per process: every session of a sweep would say it again */
      static atomic_int told;
      if (!atomic_exchange(&told, 1)) xl_warn("--gemm onednn: %s; the fp32 products run on OpenBLAS", why);
    }
  }
  /* Tiles of `workers` x 4 MB (at least 2): each SGEMM call packs the activations again, so
   * fewer, larger calls pay that less often, and 16 threads need more rows than one 4 MB tile
   * has to keep them busy. 1.3B BF16 prefill of 1024 tokens on a 16-core Xeon: 2 workers 82.9
   * tok/s with 4 MB tiles, 88.1 with 8 MB; 16 workers 325 with 32 MB, 348 with 64 MB. */
  g->tile_scale = workers > 2 ? workers : 2;
  size_t tf = tile_floats * (size_t)g->tile_scale;
  g->tile = xl_calloc(tf ? tf : 1, sizeof(float));
  g->bytes = tf * sizeof(float);
  if (bf16 && xb_elems) {
    g->bf16 = 1;
    g->Xb = xl_calloc(xb_elems, sizeof(uint16_t));
    g->bytes += xb_elems * sizeof(uint16_t);
  }
}

void xl_pgemm_free(xl_pgemm *g) {
  free(g->tile);
  free(g->Xb);
  *g = (xl_pgemm){0};
}

/* ---- row-parallel loops ---- */

typedef struct { xl_rows_fn fn; void *ctx; int n, ntasks; } rows_ctx;

static void rows_task(void *vctx, int t, int worker) {
  const rows_ctx *c = vctx;
  int a = (int)((long)c->n * t / c->ntasks), b = (int)((long)c->n * (t + 1) / c->ntasks);
  if (a < b) c->fn(c->ctx, a, b);
}

void xl_par_rows(xl_pool *pool, int n, long cost, xl_rows_fn fn, void *ctx) {
  int nw = xl_pool_size(pool);
  long total = cost * n;
  int ntasks = nw > 1 && total >= 16384 ? (n < 4 * nw ? n : 4 * nw) : 1;
  if (ntasks <= 1) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  rows_ctx c = {fn, ctx, n, ntasks};
  xl_pool_run(pool, ntasks, rows_task, &c);
}

/* ---- GEMMs ---- */

/* Y [T, rows] (ldy) = X W^T over fp32 weights W [rows, cols]: oneDNN when asked (and it
 * ran), else OpenBLAS, on `workers` threads either way. */
static void sgemm(xl_pgemm *g, const float *X, int T, int ldx, const float *W, int rows, int cols, float *Y, int ldy) {
  if (g->onednn && xl_onednn_sgemm(X, T, ldx, W, rows, cols, Y, ldy, g->workers) == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, cols, 1.0f, X, ldx, W, cols, 0.0f, Y, ldy);
}

typedef struct { xl_pgemm *g; const xl_mat *w; int r0, rows, rows_per; const float *X; int ldx; } conv_ctx;

/* rows [r0 + t*rows_per, ...) of the weights into the tile */
static void convert_task(void *vctx, int t, int worker) {
  const conv_ctx *c = vctx;
  int a = c->r0 + t * c->rows_per, b = a + c->rows_per, end = c->r0 + c->rows;
  if (b > end) b = end;
  if (a >= b) return;
  size_t cols = (size_t)c->w->cols, es = st_dtype_size(c->w->dtype);
  xl_to_f32(c->w->dtype, (const char *)c->w->data + (size_t)a * cols * es, c->g->tile + (size_t)(a - c->r0) * cols, (size_t)(b - a) * cols);
}

/* input rows [a, b) -> their bf16 encoding (they hold bf16 values already) */
static void to_bf16_rows(void *vctx, int a, int b) {
  const conv_ctx *c = vctx;
  for (int t = a; t < b; t++)
    xl_bf16_high_halves(c->X + (size_t)t * c->ldx, c->g->Xb + (size_t)t * c->w->cols, (size_t)c->w->cols);
}

void xl_pgemm_run(xl_pgemm *g, const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy) {
  int nw = xl_pool_size(g->pool);
  if (w->dtype != ST_F32 && T <= XL_SMALL_T) {   /* a short prompt: matvecs (kernels.h) */
    xl_gemm_rows(w, X, T, ldx, Y, ldy, 0, w->rows, NULL);
    goto done;
  }
  if (g->bf16 && w->dtype == ST_BF16) {
    if (g->xb_src != X || g->xb_T != T || g->xb_cols != w->cols || g->xb_ld != ldx) {
      conv_ctx c = {g, w, 0, 0, 0, X, ldx};
      xl_par_rows(g->pool, T, w->cols, to_bf16_rows, &c);
      g->xb_src = X, g->xb_T = T, g->xb_cols = w->cols, g->xb_ld = ldx;
    }
    if (xl_bf16gemm(w, g->Xb, T, w->cols, Y, ldy, g->workers) == 0) goto done;
  }
  if (w->dtype == ST_F32 && g->onednn) {
    sgemm(g, X, T, ldx, w->data, w->rows, w->cols, Y, ldy);
  } else if (w->dtype != ST_F32 && (nw > 1 || g->onednn)) {
    /* each fp32 tile converted by all workers, then one SGEMM on `workers` threads */
    int tr = xl_gemm_tile_rows(w) * g->tile_scale;
    if (tr > w->rows) tr = w->rows;
    for (int a = 0; a < w->rows; a += tr) {
      int b = a + tr < w->rows ? a + tr : w->rows;
      conv_ctx c = {g, w, a, b - a, (b - a + nw - 1) / nw, NULL, 0};
      xl_pool_run(g->pool, nw, convert_task, &c);
      sgemm(g, X, T, ldx, g->tile, b - a, w->cols, Y + a, ldy);
    }
  } else {
    xl_gemm_rows(w, X, T, ldx, Y, ldy, 0, w->rows, g->tile);
  }
done:
  if (Y == g->xb_src) g->xb_src = NULL;
}
