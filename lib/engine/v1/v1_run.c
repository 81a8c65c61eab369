/* v1_run: the xlstm_v1 forward pass on the CPU (docs/xlstm-v1-math.md), behind
 * xl_v1_cpu_ops: the per-session state (mLSTM C/n/m, sLSTM y/c/n/m, conv windows), scratch
 * sized once, one token through the recurrent form (decode), and prompt segments where
 * every projection is one GEMM over the segment, the mLSTM cell runs chunkwise-parallel
 * per head and only the sLSTM recurrence steps token by token.
 * Threading as in engine/xlstm: pool tasks over matvec row bands, head bands and token
 * bands (norms, gating), the projection GEMMs through engine/pgemm.h; OpenBLAS is held to
 * one thread while pool tasks call it.
 * Not for: loading (v1_model.c) or the 7B family (engine/xlstm). */
#include "engine/v1/v1_internal.h"
#include "base/util.h"
#include "engine/libgemm.h"
#include "engine/cell.h"
#include "engine/pgemm.h"
#include "engine/pool.h"
#include <cblas.h>
#undef I   /* <complex.h> (pulled in by cblas.h) defines I; here it is the mLSTM inner dim */
#include <math.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int);

/* Per-layer state, pointers into one buffer. */
typedef struct {
  float *C, *n, *m;          /* mLSTM: [NH,DH,DH], [NH,DH], [NH] */
  float *y, *c, *sn, *sm;    /* sLSTM: [H] each */
  float *conv;               /* [K-1, C] (oldest row first) */
} v1_lstate;

typedef struct {
  xl_pool *pool;
  xl_cell cell;              /* the mLSTM cell: key scaled, eps 1e-6 */
  v1_lstate *ls;             /* [n_blocks] */
  float *state; size_t state_floats;
  int S;                     /* tokens per prefill segment */
  float *X, *U;              /* [S, D] residual stream, normed input / block output */
  float *XZ;                 /* [S, 2I] proj_up output: xm | z */
  float *XC;                 /* [S, max(I, D)] conv output */
  float *QKV;                /* [S, 3I] */
  float *IG, *FG;            /* [S, NH] */
  float *Hh;                 /* [S, max(I, D)] cell outputs */
  float *WX;                 /* [S, 4D] sLSTM input projections */
  float *G;                  /* [S, 2F] FFN */
  xl_pgemm pg;               /* the projection GEMMs of prefill */
  float *wscr; size_t wscr_floats;   /* per worker */
  int mNH, mDH, sNH, sDH, I;
} v1_sess;

static inline v1_sess *v1s(const xl_session *s) { return s->impl; }

/* ---- small helpers ---- */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float logsigmoidf(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }
static inline float siluf(float x) { return x * sigmoidf(x); }
static inline float geluf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

/* LayerNorm without bias, weight applied as (1 + w) (w NULL: 1). Biased variance. */
static void layernorm(const float *x, float *y, const float *w, int n) {
  float mu, r;
  xl_mean_rstd(x, n, XL_V1_LN_EPS, &mu, &r);
  for (int i = 0; i < n; i++) y[i] = (x[i] - mu) * r * (w ? 1.0f + w[i] : 1.0f);
}

static inline void round_bf16(float *x, size_t n) { xl_round_bf16(x, n); }

static int max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* ---- projections: parallel matvec for one token, GEMM for a segment ---- */

typedef struct { const xl_mat *w; const float *x; float *y; int ntasks; } mv_ctx;

static void mv_task(void *vctx, int t, int worker) {
  const mv_ctx *c = vctx;
  int R = c->w->rows, r0 = (int)((long)R * t / c->ntasks), r1 = (int)((long)R * (t + 1) / c->ntasks);
  xl_matvec_rows(c->w, c->x, c->y, r0, r1);
}

static void matvec(xl_session *s, const xl_mat *w, const float *x, float *y) {
  int nw = xl_pool_size(v1s(s)->pool), bands = w->rows / 64;
  mv_ctx c = {w, x, y, nw > 1 && bands > 1 ? (bands < nw ? bands : nw) : 1};
  if (c.ntasks == 1) xl_matvec_rows(w, x, y, 0, w->rows);
  else xl_pool_run(v1s(s)->pool, c.ntasks, mv_task, &c);
}

/* Y [T, rows] (ld ldy) = X [T, cols] (ld ldx) W^T. round: the opt-in bf16 activations. */
static void proj(xl_session *s, const xl_mat *w, float *X, int T, int ldx, float *Y, int ldy, int round) {
  v1_sess *v = s->impl;
  if (round && s->opt.matmul_bf16)
    for (int t = 0; t < T; t++) round_bf16(X + (size_t)t * ldx, (size_t)w->cols);
  if (T == 1) matvec(s, w, X, Y);
  else {
    xl_pgemm_forget(&v->pg);   /* X was rewritten since any earlier product */
    xl_pgemm_run(&v->pg, w, X, T, ldx, Y, ldy);
  }
}

/* The hot loops, vectorised for each kernel variant (engine/kernels.h): the same C compiled
 * for AVX-512, AVX2 and the baseline, picked by the session's kernels setting. */
#define V1_VARIANTS(name, params, ...)                                                                          \
  __attribute__((optimize("tree-vectorize"), target("avx512f"))) static void name##_avx512 params __VA_ARGS__     \
  __attribute__((optimize("tree-vectorize"), target("avx2"))) static void name##_avx2 params __VA_ARGS__          \
  __attribute__((optimize("tree-vectorize"))) static void name##_base params __VA_ARGS__

/* 4x4 blocks (the mLSTM's default qkv_proj_blocksize): one row, unrolled. */
V1_VARIANTS(headwise4_k, (const float *restrict x, const float *restrict W, int P, float *restrict y), {
  for (int p = 0; p < P; p++) {
    const float *xp = x + 4 * (size_t)p, *Wp = W + 16 * (size_t)p;
    float *yp = y + 4 * (size_t)p;
    for (int o = 0; o < 4; o++) yp[o] = Wp[4 * o] * xp[0] + Wp[4 * o + 1] * xp[1] + Wp[4 * o + 2] * xp[2] + Wp[4 * o + 3] * xp[3];
  }
})

static void headwise4(const float *restrict x, const float *restrict W, int P, float *restrict y) {
  xl_kernels k = xl_kernels_active();
  if (k == XL_KERNELS_AVX512 || k == XL_KERNELS_AVX512BF16) headwise4_k_avx512(x, W, P, y);
  else if (k == XL_KERNELS_AVX2) headwise4_k_avx2(x, W, P, y);
  else headwise4_k_base(x, W, P, y);
}

/* Block-diagonal projection: W [P, O, Q]; y[p*O+o] = sum_d x[p*Q+d] W[p,o,d], T rows. */
static void headwise(const float *X, int T, int ldx, const float *W, int P, int O, int Q, float *Y, int ldy) {
  if (T == 1 && O * Q >= 256) {   /* big blocks: BLAS per block */
    for (int p = 0; p < P; p++)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, O, Q, 1.0f, W + (size_t)p * O * Q, Q, X + (size_t)p * Q, 1, 0.0f, Y + (size_t)p * O, 1);
    return;
  }
  if (O * Q >= 256) {
    for (int p = 0; p < P; p++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, O, Q, 1.0f, X + (size_t)p * Q, ldx, W + (size_t)p * O * Q, Q, 0.0f,
                  Y + (size_t)p * O, ldy);
    return;
  }
  for (int t = 0; t < T; t++) {
    const float *x = X + (size_t)t * ldx;
    float *y = Y + (size_t)t * ldy;
    if (O == 4 && Q == 4) { headwise4(x, W, P, y); continue; }
    for (int p = 0; p < P; p++) {
      const float *xp = x + (size_t)p * Q, *Wp = W + (size_t)p * O * Q;
      for (int o = 0; o < O; o++) {
        const float *w = Wp + (size_t)o * Q;
        float acc = 0;
        for (int d = 0; d < Q; d++) acc += w[d] * xp[d];
        y[(size_t)p * O + o] = acc;
      }
    }
  }
}

/* Causal depthwise conv over T rows of X (ld ldx) into Y [T, C], continuing from the window
 * st [K-1, C]; then silu, and the window moves on to the last K-1 inputs. */
V1_VARIANTS(conv_taps_k, (float *restrict y, const float *restrict w, const float *restrict x, int C), {
  for (int c = 0; c < C; c++) y[c] += w[c] * x[c];
})

static void conv_taps(float *restrict y, const float *restrict w, const float *restrict x, int C) {
  xl_kernels k = xl_kernels_active();
  if (k == XL_KERNELS_AVX512 || k == XL_KERNELS_AVX512BF16) conv_taps_k_avx512(y, w, x, C);
  else if (k == XL_KERNELS_AVX2) conv_taps_k_avx2(y, w, x, C);
  else conv_taps_k_base(y, w, x, C);
}

static void conv_silu(const xl_v1_block *B, float *st, const float *X, int T, int ldx, float *Y) {
  int K = B->K, C = B->C, keep = K - 1;
  for (int t = 0; t < T; t++) {
    float *y = Y + (size_t)t * C;
    memcpy(y, B->conv_b, sizeof(float) * C);
    for (int j = 0; j < K; j++) {
      int tt = t - keep + j;
      const float *src = tt >= 0 ? X + (size_t)tt * ldx : st + (size_t)(keep + tt) * C;
      conv_taps(y, B->conv_wT + (size_t)j * C, src, C);
    }
    for (int c = 0; c < C; c++) y[c] = siluf(y[c]);
  }
  if (keep <= 0) return;
  if (T >= keep) {
    for (int r = 0; r < keep; r++) memcpy(st + (size_t)r * C, X + (size_t)(T - keep + r) * ldx, sizeof(float) * C);
  } else {
    memmove(st, st + (size_t)T * C, sizeof(float) * (size_t)(keep - T) * C);
    for (int r = 0; r < T; r++) memcpy(st + (size_t)(keep - T + r) * C, X + (size_t)r * ldx, sizeof(float) * C);
  }
}

/* ---- per-head tasks ---- */

typedef struct { xl_session *s; const xl_v1_block *B; v1_lstate *st; int T, chunk, hpb, NH; int first; int t; } head_ctx;

static void mlstm_heads_task(void *vctx, int task, int worker) {
  const head_ctx *hc = vctx;
  v1_sess *v = hc->s->impl;
  int DH = v->mDH, I = v->I, NH = v->mNH, ck = hc->s->opt.chunk_size;
  float *scr = v->wscr + v->wscr_floats * (size_t)worker;
  for (int h = task * hc->hpb; h < (task + 1) * hc->hpb && h < NH; h++) {
    float *C = hc->st->C + (size_t)h * DH * DH, *n = hc->st->n + (size_t)h * DH, *m = hc->st->m + h;
    const float *q = v->QKV + (size_t)h * DH, *k = q + I, *vv = q + 2 * I;
    float *out = v->Hh + (size_t)h * DH;
    if (!hc->chunk) {
      for (int t = 0; t < hc->T; t++)
        xl_cell_step(&v->cell, q + (size_t)t * 3 * I, k + (size_t)t * 3 * I, vv + (size_t)t * 3 * I, v->IG[(size_t)t * NH + h],
                     v->FG[(size_t)t * NH + h], C, n, m, out + (size_t)t * I);
    } else {
      for (int t0 = 0; t0 < hc->T; t0 += ck) {
        int L = hc->T - t0 < ck ? hc->T - t0 : ck;
        size_t r = (size_t)t0 * 3 * I;
        xl_cell_chunk(&v->cell, q + r, k + r, vv + r, 3 * I, 3 * I, I, v->IG + (size_t)t0 * NH + h, v->FG + (size_t)t0 * NH + h, NH,
                      L, C, n, m, out + (size_t)t0 * I, scr);
      }
    }
    for (int t = 0; t < hc->T; t++) {
      float *o = out + (size_t)t * I;
      layernorm(o, o, hc->B->outnorm_w + (size_t)h * DH, DH);
    }
  }
}

/* sLSTM: one token t, the heads of a band. */
static void slstm_heads_task(void *vctx, int task, int worker) {
  const head_ctx *hc = vctx;
  v1_sess *v = hc->s->impl;
  const xl_v1_block *B = hc->B;
  v1_lstate *st = hc->st;
  int DH = v->sDH, NH = v->sNH, H = NH * DH;
  float *ry = v->wscr + v->wscr_floats * (size_t)worker;
  const float *wx = v->WX + (size_t)hc->t * 4 * H;
  float *out = v->Hh + (size_t)hc->t * H;
  for (int h = task * hc->hpb; h < (task + 1) * hc->hpb && h < NH; h++) {
    size_t o0 = (size_t)h * DH;
    /* ry[g*DH + o] = R[h, g*DH+o, :] . y_prev[h] */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * DH, DH, 1.0f, B->R + (size_t)h * 4 * DH * DH, DH, st->y + o0, 1, 0.0f, ry, 1);
    for (int o = 0; o < DH; o++) {
      size_t j = o0 + o;
      float ir = wx[j] + ry[o], fr = wx[H + j] + ry[DH + o], zr = wx[2 * H + j] + ry[2 * DH + o],
            orr = wx[3 * H + j] + ry[3 * DH + o];
      float lfm = st->sm[j] + logsigmoidf(fr);
      float mnew = hc->first ? ir : fmaxf(ir, lfm);
      float ig = fminf(expf(ir - mnew), 1.0f), fg = fminf(expf(lfm - mnew), 1.0f);
      float c = fg * st->c[j] + ig * tanhf(zr), n = fg * st->sn[j] + ig;
      st->c[j] = c;
      st->sn[j] = n;
      st->sm[j] = mnew;
      st->y[j] = sigmoidf(orr) * c / n;
    }
    memcpy(out + o0, st->y + o0, sizeof(float) * DH);
    layernorm(out + o0, out + o0, B->gn_w ? B->gn_w + o0 : NULL, DH);
  }
}

/* Runs a head-task set, in the pool when it has workers (OpenBLAS single-threaded meanwhile). */
static void run_heads(xl_session *s, int NH, xl_task_fn fn, head_ctx *hc, int parallel) {
  int ntasks = (NH + hc->hpb - 1) / hc->hpb;
  if (!parallel || ntasks == 1 || s->opt.workers == 1) {
    for (int t = 0; t < ntasks; t++) fn(hc, t, 0);
    return;
  }
  xl_pool_run(v1s(s)->pool, ntasks, fn, hc);
}

/* ---- token-parallel loops (xl_par_rows): each row gets the operations it got on one
 * thread, so the bits do not depend on the workers ---- */

typedef struct { xl_session *s; const xl_v1_block *B; const float *w; float *dst; const float *src; int n; } rows_ctx;

static void rows_layernorm(void *vc, int a, int b) {   /* dst rows = layernorm(src rows, w), width n */
  const rows_ctx *c = vc;
  for (int t = a; t < b; t++) layernorm(c->src + (size_t)t * c->n, c->dst + (size_t)t * c->n, c->w, c->n);
}
static void rows_add(void *vc, int a, int b) {   /* dst rows += src rows, width n */
  const rows_ctx *c = vc;
  for (size_t i = (size_t)a * c->n; i < (size_t)b * c->n; i++) c->dst[i] += c->src[i];
}
static void rows_mlstm_out(void *vc, int a, int b) {   /* h = (h + skip * conv) * silu(z) */
  const rows_ctx *c = vc;
  v1_sess *v = c->s->impl;
  int I = v->I;
  for (int t = a; t < b; t++) {
    float *h = v->Hh + (size_t)t * I;
    const float *xc = v->XC + (size_t)t * I, *z = v->XZ + (size_t)t * 2 * I + I;
    for (int i = 0; i < I; i++) h[i] = (h[i] + c->B->skip[i] * xc[i]) * siluf(z[i]);
  }
}
static void rows_geglu(void *vc, int a, int b) {   /* g = gelu(g) * up, rows of 2F */
  const rows_ctx *c = vc;
  v1_sess *v = c->s->impl;
  int F = c->n;
  for (int t = a; t < b; t++) {
    float *g = v->G + (size_t)t * 2 * F;
    for (int i = 0; i < F; i++) g[i] = geluf(g[i]) * g[F + i];
  }
}
static void par_layernorm(xl_session *s, const float *src, float *dst, const float *w, int T, int n) {
  rows_ctx c = {s, NULL, w, dst, src, n};
  xl_par_rows(v1s(s)->pool, T, 2L * n, rows_layernorm, &c);
}
static void par_add(xl_session *s, float *dst, const float *src, int T, int n) {
  rows_ctx c = {s, NULL, NULL, dst, src, n};
  xl_par_rows(v1s(s)->pool, T, n, rows_add, &c);
}

/* ---- layers over T tokens: input v->U (normed), output added to v->X ---- */

static void mlstm_layer(xl_session *s, const xl_v1_block *B, v1_lstate *st, int T, int chunk) {
  v1_sess *v = s->impl;
  const xl_config *c = &s->m->cfg;
  const xl_v1_config *vc = c->arch_cfg;
  int D = c->D, I = v->I, NH = v->mNH, bs = vc->qkv_bs, P = I / bs;
  proj(s, &B->up, v->U, T, D, v->XZ, 2 * I, 1);
  conv_silu(B, st->conv, v->XZ, T, 2 * I, v->XC);
  headwise(v->XC, T, I, B->wq, P, bs, bs, v->QKV, 3 * I);
  headwise(v->XC, T, I, B->wk, P, bs, bs, v->QKV + I, 3 * I);
  headwise(v->XZ, T, 2 * I, B->wv, P, bs, bs, v->QKV + 2 * I, 3 * I);
  if (T == 1) {   /* NH rows: not worth a dispatch */
    xl_matvec_rows(&B->igw, v->QKV, v->IG, 0, NH);
    xl_matvec_rows(&B->fgw, v->QKV, v->FG, 0, NH);
  } else {
    xl_pgemm_forget(&v->pg);
    xl_pgemm_run(&v->pg, &B->igw, v->QKV, T, 3 * I, v->IG, NH);
    xl_pgemm_run(&v->pg, &B->fgw, v->QKV, T, 3 * I, v->FG, NH);
  }
  for (int t = 0; t < T; t++)
    for (int h = 0; h < NH; h++) { v->IG[(size_t)t * NH + h] += B->ig_b[h]; v->FG[(size_t)t * NH + h] += B->fg_b[h]; }
  head_ctx hc = {s, B, st, T, chunk, s->opt.heads_per_band, NH, 0, 0};
  int par = s->opt.workers > 1 && NH > 1;
  if (par && chunk) openblas_set_num_threads(1);
  run_heads(s, NH, mlstm_heads_task, &hc, par);
  if (par && chunk) openblas_set_num_threads(s->opt.workers);
  rows_ctx oc = {s, B, NULL, NULL, NULL, I};
  xl_par_rows(v->pool, T, 8L * I, rows_mlstm_out, &oc);
  proj(s, &B->down, v->Hh, T, I, v->U, D, 1);
  par_add(s, v->X, v->U, T, D);
}

static void slstm_layer(xl_session *s, const xl_v1_block *B, v1_lstate *st, int T) {
  v1_sess *v = s->impl;
  int D = s->m->cfg.D, NH = v->sNH, DH = v->sDH, H = D;
  const float *xc = v->U;
  if (B->K > 0) { conv_silu(B, st->conv, v->U, T, D, v->XC); xc = v->XC; }
  headwise(xc, T, D, B->gw[0], NH, DH, DH, v->WX, 4 * H);
  headwise(xc, T, D, B->gw[1], NH, DH, DH, v->WX + H, 4 * H);
  headwise(v->U, T, D, B->gw[2], NH, DH, DH, v->WX + 2 * H, 4 * H);
  headwise(v->U, T, D, B->gw[3], NH, DH, DH, v->WX + 3 * H, 4 * H);
  for (int t = 0; t < T; t++) {
    float *w = v->WX + (size_t)t * 4 * H;
    for (int i = 0; i < 4 * H; i++) w[i] += B->sbias[i];
  }
  head_ctx hc = {s, B, st, T, 0, s->opt.heads_per_band, NH, 0, 0};
  /* a pool dispatch per token pays off only for big heads */
  int par = s->opt.workers > 1 && NH > 1 && (size_t)4 * DH * DH * hc.hpb >= 32768;
  if (par) openblas_set_num_threads(1);
  for (int t = 0; t < T; t++) {
    int first = 1;   /* the first-step rule: n is zero everywhere */
    for (int j = 0; j < H && first; j++) first = st->sn[j] == 0.0f;
    hc.first = first;
    hc.t = t;
    run_heads(s, NH, slstm_heads_task, &hc, par);
  }
  if (par) openblas_set_num_threads(s->opt.workers);
  par_add(s, v->X, v->Hh, T, D);
}

static void ffn(xl_session *s, const xl_v1_block *B, int T) {
  v1_sess *v = s->impl;
  int D = s->m->cfg.D, F = B->F;
  par_layernorm(s, v->X, v->U, B->ffn_norm_w, T, D);
  proj(s, &B->ffn_up, v->U, T, D, v->G, 2 * F, 1);
  rows_ctx gc = {s, B, NULL, NULL, NULL, F};
  xl_par_rows(v->pool, T, 16L * F, rows_geglu, &gc);
  proj(s, &B->ffn_down, v->G, T, 2 * F, v->U, D, 1);
  par_add(s, v->X, v->U, T, D);
}

/* T tokens through the model (chunk: mLSTM chunkwise, else recurrent steps), then logits:
 * rows into logits_rows [T, V] when given, and the last row into s->logits. */
static int run_tokens(xl_session *s, const int32_t *ids, int T, int chunk, float *logits_rows) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  const xl_v1_model *M = m->weights;
  v1_sess *v = s->impl;
  int D = c->D, V = c->vocab;
  for (int t = 0; t < T; t++) xl_mat_row(&m->embed, ids[t], v->X + (size_t)t * D);
  for (int b = 0; b < c->n_blocks; b++) {
    if (chunk && s->opt.interrupted && s->opt.interrupted(s->opt.progress_ctx)) return 1;
    const xl_v1_block *B = &M->blocks[b];
    par_layernorm(s, v->X, v->U, B->norm_w, T, D);
    if (B->slstm) slstm_layer(s, B, &v->ls[b], T);
    else mlstm_layer(s, B, &v->ls[b], T, chunk);
    if (B->F) ffn(s, B, T);
  }
  int first = logits_rows && T > 1 ? 0 : T - 1;   /* rows that need logits */
  for (int t = first; t < T; t++) {
    float *x = v->X + (size_t)t * D, *u = v->U + (size_t)t * D;
    if (M->post_norm_w) layernorm(x, u, M->post_norm_w, D);
    else memcpy(u, x, sizeof(float) * D);
  }
  if (logits_rows && T > 1) {
    proj(s, &m->lm_head, v->U, T, D, logits_rows, V, 1);
    memcpy(s->logits, logits_rows + (size_t)(T - 1) * V, sizeof(float) * V);
  } else {
    proj(s, &m->lm_head, v->U + (size_t)(T - 1) * D, 1, D, s->logits, V, 1);
    if (logits_rows) memcpy(logits_rows, s->logits, sizeof(float) * V);
  }
  return 0;
}

/* ---- hooks ---- */

static float *scratch(xl_session *s, size_t n) {
  s->scratch_bytes += n * sizeof(float);
  return xl_calloc(n ? n : 1, sizeof(float));
}

static size_t tile_need(const xl_mat *w, size_t cur) {
  size_t t = w->data ? xl_gemm_tile_floats(w) : 0;
  return t > cur ? t : cur;
}

static int init(xl_session *s, char *err, size_t errlen) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  const xl_v1_config *vc = c->arch_cfg;
  const xl_v1_model *M = m->weights;
  if (!vc || !M) { snprintf(err, errlen, "xlstm_v1 model not bound"); return -1; }
  v1_sess *v = xl_calloc(1, sizeof *v);
  s->impl = v;
  v->pool = xl_pool_create(s->opt.workers);
  openblas_set_num_threads(s->opt.workers);
  int D = c->D, I = vc->I, nb = c->n_blocks, maxF = 0;
  v->I = I;
  v->mNH = vc->m_heads; v->mDH = I && vc->m_heads ? I / vc->m_heads : 0;
  v->sNH = vc->s_heads; v->sDH = vc->s_heads ? D / vc->s_heads : 0;
  /* state layout */
  size_t off = 0;
  size_t *offs = xl_malloc(sizeof(size_t) * (size_t)nb);
  for (int b = 0; b < nb; b++) {
    const xl_v1_block *B = &M->blocks[b];
    offs[b] = off;
    if (B->slstm) off += (size_t)4 * D;
    else off += (size_t)v->mNH * v->mDH * v->mDH + (size_t)v->mNH * v->mDH + (size_t)v->mNH;
    if (B->K > 1) off += (size_t)(B->K - 1) * B->C;
    if (B->F > maxF) maxF = B->F;
  }
  v->state_floats = off;
  v->state = scratch(s, off);
  v->ls = xl_calloc((size_t)nb, sizeof *v->ls);
  for (int b = 0; b < nb; b++) {
    const xl_v1_block *B = &M->blocks[b];
    v1_lstate *L = &v->ls[b];
    float *p = v->state + offs[b];
    if (B->slstm) {
      L->y = p; L->c = p + D; L->sn = p + 2 * D; L->sm = p + 3 * D;
      p += 4 * D;
    } else {
      L->C = p; p += (size_t)v->mNH * v->mDH * v->mDH;
      L->n = p; p += (size_t)v->mNH * v->mDH;
      L->m = p; p += v->mNH;
    }
    if (B->K > 1) L->conv = p;
  }
  free(offs);
  /* segment scratch: a whole number of chunks, about opt.segment (1024) tokens */
  int ck = s->opt.chunk_size, target = s->opt.segment > 0 ? s->opt.segment : 1024;
  size_t S = (size_t)(s->segment = v->S = ck >= target ? ck : ck * ((target + ck - 1) / ck));
  int wide = max3(I, D, 1);
  v->X = scratch(s, S * D);
  v->U = scratch(s, S * D);
  v->XZ = scratch(s, S * 2 * I);
  v->XC = scratch(s, S * wide);
  v->QKV = scratch(s, S * 3 * I);
  v->IG = scratch(s, S * v->mNH);
  v->FG = scratch(s, S * v->mNH);
  v->Hh = scratch(s, S * wide);
  v->WX = scratch(s, vc->s_heads ? S * 4 * D : 0);
  v->G = scratch(s, S * 2 * maxF);
  size_t tile = tile_need(&m->lm_head, 0);
  for (int b = 0; b < nb; b++) {
    const xl_v1_block *B = &M->blocks[b];
    const xl_mat *all[] = {&B->up, &B->down, &B->igw, &B->fgw, &B->ffn_up, &B->ffn_down};
    for (size_t j = 0; j < sizeof all / sizeof *all; j++) tile = tile_need(all[j], tile);
  }
  int bf16 = s->opt.matmul_bf16 && xl_kernels_active() == XL_KERNELS_AVX512BF16 && m->lm_head.dtype == ST_BF16 &&
             xl_bf16gemm_available(NULL, 0);
  xl_pgemm_init(&v->pg, v->pool, s->opt.workers, tile, bf16, S * (size_t)max3(3 * I, D, maxF > 0 ? maxF : 1), s->opt.gemm);
  s->scratch_bytes += v->pg.bytes;
  s->logits = scratch(s, (size_t)c->vocab);
  v->cell = (xl_cell){v->mDH, v->mDH, XL_V1_CELL_EPS, 1};
  size_t w1 = v->mDH ? xl_cell_chunk_floats(&(xl_cell){v->mDH, v->mDH, XL_V1_CELL_EPS, 1}, s->opt.chunk_size) : 0, w2 = (size_t)4 * v->sDH;
  v->wscr_floats = w1 > w2 ? w1 : w2;
  v->wscr = scratch(s, v->wscr_floats * (size_t)s->opt.workers);
  return 0;
}

static void release(xl_session *s) {
  v1_sess *v = s->impl;
  if (!v) return;
  xl_pool_free(v->pool);
  float *bufs[] = {s->logits, v->state, v->X, v->U, v->XZ, v->XC, v->QKV, v->IG, v->FG, v->Hh, v->WX, v->G, v->wscr};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
  free(v->ls);
  xl_pgemm_free(&v->pg);
  free(v);
  s->impl = NULL;
  s->logits = NULL;
}

static void reset(xl_session *s) {
  v1_sess *v = s->impl;
  memset(v->state, 0, sizeof(float) * v->state_floats);   /* C = n = m = 0, y = c = n = m = 0, empty conv windows */
}

static int step(xl_session *s, int token) {
  int32_t id = token;
  run_tokens(s, &id, 1, 0, NULL);
  return 0;
}

static int prefill(xl_session *s, const int32_t *ids, int T, float *all_logits) {
  return run_tokens(s, ids, T, 1, all_logits);
}

static int state_visit(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading) {
  const xl_config *c = &s->m->cfg;
  const xl_v1_model *M = s->m->weights;
  v1_sess *v = s->impl;
  int D = c->D;
  for (int b = 0; b < c->n_blocks; b++) {
    const xl_v1_block *B = &M->blocks[b];
    v1_lstate *L = &v->ls[b];
    char nm[64];
#define VISIT(suffix, ptr, nd, ...) do { int64_t sh[] = {__VA_ARGS__}; snprintf(nm, sizeof nm, "layer%d.%s", b, suffix); fn(ctx, nm, ptr, nd, sh); } while (0)
    if (B->slstm) {
      VISIT("y", L->y, 1, D);
      VISIT("c", L->c, 1, D);
      VISIT("n", L->sn, 1, D);
      VISIT("m", L->sm, 1, D);
    } else {
      VISIT("C", L->C, 3, v->mNH, v->mDH, v->mDH);
      VISIT("n", L->n, 2, v->mNH, v->mDH);
      VISIT("m", L->m, 1, v->mNH);
    }
    if (B->K > 1) VISIT("conv", L->conv, 2, B->K - 1, B->C);
#undef VISIT
  }
  (void)loading;
  return 0;
}

const xl_session_ops xl_v1_cpu_ops = {
    .device = "cpu", .init = init, .free = release, .reset = reset, .step = step, .prefill = prefill,
    .state_visit = state_visit,
};
