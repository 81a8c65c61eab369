/* xlstm_run: the xLSTM-7B family's forward pass on the CPU (docs/xlstm-math.md), recurrent
 * (decode) and chunkwise-parallel (prefill), behind xl_xlstm_cpu_ops. See xlstm.h.
 * Threading: the pool runs matvec row bands and the cell (per head, or per head and column
 * band with more workers than head tasks) in decode; in prefill the norms and activations
 * (token bands), the weight-tile conversion (row bands) and the cell (per head, or chains
 * and per-chunk outputs with more workers than head tasks); the projection GEMMs run on the
 * calling thread with OpenBLAS (or oneDNN, --matmul bf16) using `workers` threads
 * (engine/pgemm.h), and OpenBLAS is held to one thread while pool tasks call it, so the
 * process never runs more than `workers` busy threads. */
#include "engine/xlstm/xlstm.h"
#include "base/util.h"
#include "engine/libgemm.h"
#include "engine/cell.h"
#include "engine/pgemm.h"
#include "engine/pool.h"
#include "obs/telemetry.h"
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int);

/* The session's own part: the recurrent state and every scratch buffer, sized once. */
typedef struct {
  xl_pool *pool;
  xl_cell cell;
  /* recurrent state, contiguous per kind */
  float *C;          /* [n_blocks, NH, DK, DV] */
  float *n;          /* [n_blocks, NH, DK] */
  float *mst;        /* [n_blocks, NH] */
  xl_cell_gates *gates;   /* [NH]: decode's cell split over columns */
  /* single-token scratch */
  float *x, *u, *q, *k, *v, *o, *ig, *fg, *h, *g, *up;
  /* prefill scratch for a segment of `seg` tokens */
  int seg;
  float *X, *U, *Q, *K, *V, *O, *IG, *FG, *H, *G, *UP;
  xl_pgemm pg;       /* the projection GEMMs of prefill */
  float *wscr;       /* per-worker chunk scratch */
  size_t wscr_floats;
  /* the cell split over chunks (more workers than head tasks): the state entering every
   * chunk of the segment, per head: C [nck, NH, DK, DV], n [nck, NH, DK], m [nck, NH]; and
   * per worker a copy of one chunk's entering state (C, n, m) */
  int split;
  float *chC, *chn, *chm;
  atomic_int *progress;   /* [NH]: chunks whose entering state is saved */
} xlstm_cpu;

/* Per-phase profiling (--profile-log): adds the time since *t to a phase and restarts *t.
 * Costs one branch when profiling is off. */
static inline void prof_mark(int on, int block, enum tm_phase ph, double *t) {
  if (!on) return;
  double now = xl_now();
  tm_prof_add(block, ph, now - *t);
  *t = now;
}

/* ---- small vector helpers ---- */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float logsigmoidf(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }
static inline float soft_cap(float x, float c) { return c > 0 ? c * tanhf(x / c) : x; }

static void rmsnorm(const float *x, float *y, const float *w, const float *b, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  float r = 1.0f / sqrtf((float)(ss / n) + eps);
  for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i] + (b ? b[i] : 0.0f);
}

/* LayerNorm over one head's DV channels (biased variance), then the per-channel weight. */
static void headnorm(float *h, const float *w, const float *b, int n, float eps) {
  float mu, r;
  xl_mean_rstd(h, n, eps, &mu, &r);
  for (int i = 0; i < n; i++) h[i] = (h[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
}

static void add_bias(float *y, const float *b, int n) {
  if (b) for (int i = 0; i < n; i++) y[i] += b[i];
}

static inline void round_bf16(float *x, size_t n) { xl_round_bf16(x, n); }

/* ---- parallel matvec over several matrices sharing one input ---- */

typedef struct { const xl_mat *w; float *y; } mv_job;
typedef struct { const mv_job *jobs; int njobs; const float *x; int total, ntasks; } mv_ctx;

static void mv_task(void *vctx, int t, int worker) {
  const mv_ctx *c = vctx;
  /* task bounds in multiples of 4 rows: the kernels take rows four at a time */
  int r0 = (int)((long)c->total * t / c->ntasks) & ~3, r1 = t + 1 == c->ntasks ? c->total : (int)((long)c->total * (t + 1) / c->ntasks) & ~3;
  int base = 0;
  for (int j = 0; j < c->njobs; j++) {
    int rows = c->jobs[j].w->rows, a = r0 > base ? r0 : base, b = r1 < base + rows ? r1 : base + rows;
    if (a < b) xl_matvec_rows(c->jobs[j].w, c->x, c->jobs[j].y, a - base, b - base);
    base += rows;
  }
}

static void matvecs(xl_session *s, const float *x, const mv_job *jobs, int njobs) {
  xlstm_cpu *xc = s->impl;
  mv_ctx c = {jobs, njobs, x, 0, 0};
  for (int j = 0; j < njobs; j++) c.total += jobs[j].w->rows;
  int nw = xl_pool_size(xc->pool);
  /* Several bands per worker, so a thread that loses its core for a moment does not hold up
   * the step; but bands of at least 64 rows, below which dispatch costs more than it saves. */
  int want = nw > 1 ? 4 * nw : 1, most = c.total / 64 > 0 ? c.total / 64 : 1;
  c.ntasks = want < most ? want : most;
  xl_pool_run(xc->pool, c.ntasks, mv_task, &c);
}

/* ---- session ---- */

static float *scratch(xl_session *s, size_t n) {
  s->scratch_bytes += n * sizeof(float);
  return xl_calloc(n ? n : 1, sizeof(float));
}

static int init(xl_session *s, char *err, size_t errlen) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  const xl_runopts *opt = &s->opt;
  const xl_xlstm_weights *W = xl_xlstm_of(m);
  xlstm_cpu *xc = xl_calloc(1, sizeof *xc);
  s->impl = xc;
  xc->pool = xl_pool_create(opt->workers);
  openblas_set_num_threads(opt->workers);
  int L = c->n_blocks, NH = c->n_heads, DK = c->dk, DV = c->dv, D = c->D, F = c->ffn;
  xc->cell = (xl_cell){DK, DV, (float)c->eps, 0};
  xc->C = scratch(s, (size_t)L * NH * DK * DV);
  xc->n = scratch(s, (size_t)L * NH * DK);
  xc->mst = scratch(s, (size_t)L * NH);
  s->logits = scratch(s, (size_t)c->vocab);
  xc->x = scratch(s, D); xc->u = scratch(s, D);
  xc->q = scratch(s, c->qk_dim); xc->k = scratch(s, c->qk_dim);
  xc->v = scratch(s, c->v_dim); xc->o = scratch(s, c->v_dim); xc->h = scratch(s, c->v_dim);
  xc->ig = scratch(s, NH); xc->fg = scratch(s, NH);
  xc->gates = xl_calloc((size_t)NH, sizeof *xc->gates);
  xc->g = scratch(s, F); xc->up = scratch(s, F);
  /* A prefill segment: a whole number of chunks, about 1024 tokens. Long segments make the
   * projection GEMMs efficient and amortise the conversion of BF16/F16 weight tiles, which
   * happens once per segment. */
  int ck = opt->chunk_size, target = opt->segment > 0 ? opt->segment : 1024;
  s->segment = xc->seg = ck >= target ? ck : ck * ((target + ck - 1) / ck);
  size_t S = (size_t)xc->seg;
  xc->X = scratch(s, S * D); xc->U = scratch(s, S * (D > c->v_dim ? D : c->v_dim));
  xc->Q = scratch(s, S * c->qk_dim); xc->K = scratch(s, S * c->qk_dim);
  xc->V = scratch(s, S * c->v_dim); xc->O = scratch(s, S * c->v_dim); xc->H = scratch(s, S * c->v_dim);
  xc->IG = scratch(s, S * NH); xc->FG = scratch(s, S * NH);
  xc->G = scratch(s, S * F); xc->UP = scratch(s, S * F);
  size_t tile = xl_gemm_tile_floats(&m->lm_head);
  for (int i = 0; i < L; i++) {
    const xl_block *B = &W->blocks[i];
    const xl_mat *all[] = {&B->q, &B->k, &B->v, &B->o, &B->ig, &B->fg, &B->out, &B->up_gate, &B->up, &B->down};
    for (size_t j = 0; j < sizeof all / sizeof *all; j++)
      if (xl_gemm_tile_floats(all[j]) > tile) tile = xl_gemm_tile_floats(all[j]);
  }
  /* --matmul bf16 over BF16 weights on a CPU with BF16 units: products there */
  int bf16 = opt->matmul_bf16 && xl_kernels_active() == XL_KERNELS_AVX512BF16 && L > 0 && W->blocks[0].up.dtype == ST_BF16 &&
             xl_bf16gemm_available(NULL, 0);
  size_t wide = (size_t)(D > c->v_dim ? D : c->v_dim);
  if ((size_t)F > wide) wide = (size_t)F;
  xl_pgemm_init(&xc->pg, xc->pool, opt->workers, tile, bf16, S * wide, opt->gemm);
  s->scratch_bytes += xc->pg.bytes;
  xc->wscr_floats = xl_cell_chunk_floats(&xc->cell, ck);
  xc->wscr = scratch(s, xc->wscr_floats * (size_t)opt->workers);
  int hpb = opt->heads_per_band, head_tasks = (NH + hpb - 1) / hpb;
  xc->split = opt->workers > head_tasks && xc->seg > ck;
  if (xc->split) {
    size_t nck = (size_t)(xc->seg / ck);
    xc->chC = scratch(s, nck * NH * DK * DV);
    xc->chn = scratch(s, nck * NH * DK);
    xc->chm = scratch(s, nck * NH);

    xc->progress = xl_calloc((size_t)NH, sizeof *xc->progress);
  }
  (void)err; (void)errlen;
  return 0;
}

static void release(xl_session *s) {
  xlstm_cpu *xc = s->impl;
  if (!xc) return;
  xl_pool_free(xc->pool);
  float *bufs[] = {xc->C, xc->n, xc->mst, s->logits, xc->x, xc->u, xc->q, xc->k, xc->v, xc->o, xc->h, xc->ig, xc->fg, xc->g, xc->up,
                   xc->X, xc->U, xc->Q, xc->K, xc->V, xc->O, xc->H, xc->IG, xc->FG, xc->G, xc->UP, xc->wscr,
                   xc->chC, xc->chn, xc->chm};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
  free(xc->progress);
  free(xc->gates);
  xl_pgemm_free(&xc->pg);
  free(xc);
  s->impl = NULL;
  s->logits = NULL;
}

static void reset(xl_session *s) {
  const xl_config *c = &s->m->cfg;
  xlstm_cpu *xc = s->impl;
  memset(xc->C, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads * c->dk * c->dv);
  memset(xc->n, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads * c->dk);
  memset(xc->mst, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads);   /* m starts at 0, not -inf */
}

/* ---- decode: one token ---- */

typedef struct { xl_session *s; int layer; } head_ctx;

static void step_heads_task(void *vctx, int t, int worker) {
  head_ctx *hc = vctx;
  xl_session *s = hc->s;
  const xl_config *c = &s->m->cfg;
  xlstm_cpu *xc = s->impl;
  int NH = c->n_heads, DK = c->dk, DV = c->dv, hpb = s->opt.heads_per_band;
  for (int h = t * hpb; h < (t + 1) * hpb && h < NH; h++) {
    size_t sh = (size_t)hc->layer * NH + h;
    xl_cell_step(&xc->cell, xc->q + (size_t)h * DK, xc->k + (size_t)h * DK, xc->v + (size_t)h * DV, xc->ig[h], xc->fg[h],
                 xc->C + sh * DK * DV, xc->n + sh * DK, xc->mst + sh, xc->h + (size_t)h * DV);
  }
}

/* With more workers than head tasks, decode's cell runs as the gates of every head (on the
 * caller: DK work each) and then NH x bands tasks over column bands of C (DK x DV work):
 * xl_cell_step in its two parts, so the same bits. */
typedef struct { xl_session *s; int layer, bands; } cols_ctx;

static void step_cols_task(void *vctx, int t, int worker) {
  const cols_ctx *cc = vctx;
  xl_session *s = cc->s;
  const xl_config *c = &s->m->cfg;
  xlstm_cpu *xc = s->impl;
  int NH = c->n_heads, DK = c->dk, DV = c->dv, h = t / cc->bands, b = t % cc->bands;
  int d0 = (int)((long)DV * b / cc->bands) & ~15, d1 = b + 1 == cc->bands ? DV : (int)((long)DV * (b + 1) / cc->bands) & ~15;
  size_t sh = (size_t)cc->layer * NH + h;
  xl_cell_step_cols(&xc->cell, &xc->gates[h], xc->q + (size_t)h * DK, xc->k + (size_t)h * DK, xc->v + (size_t)h * DV,
                    xc->C + sh * DK * DV, xc->h + (size_t)h * DV, d0, d1);
}

static void step_cell(xl_session *s, int l) {
  const xl_config *c = &s->m->cfg;
  xlstm_cpu *xc = s->impl;
  int NH = c->n_heads, DK = c->dk, DV = c->dv, hpb = s->opt.heads_per_band, htasks = (NH + hpb - 1) / hpb;
  int nw = xl_pool_size(xc->pool), bands = (2 * nw + NH - 1) / NH;
  if (bands > DV / 32) bands = DV / 32;
  if (nw <= htasks || bands < 2) {
    head_ctx hc = {s, l};
    xl_pool_run(xc->pool, htasks, step_heads_task, &hc);
    return;
  }
  for (int h = 0; h < NH; h++) {
    size_t sh = (size_t)l * NH + h;
    xl_cell_step_gates(&xc->cell, xc->q + (size_t)h * DK, xc->k + (size_t)h * DK, xc->ig[h], xc->fg[h], xc->n + sh * DK, xc->mst + sh,
                       &xc->gates[h]);
  }
  cols_ctx cc = {s, l, bands};
  xl_pool_run(xc->pool, NH * bands, step_cols_task, &cc);
}

/* decode's element loops over a vector, in bands on the pool when they pay for it */
typedef struct { float *y; const float *u; float cap; } vec_ctx;
static void vec_cap(void *vc, int a, int b) {
  const vec_ctx *c = vc;
  for (int i = a; i < b; i++) c->y[i] = soft_cap(c->y[i], c->cap);
}
static void vec_swiglu(void *vc, int a, int b) {
  const vec_ctx *c = vc;
  for (int i = a; i < b; i++) { float z = c->y[i]; c->y[i] = z * sigmoidf(z) * c->u[i]; }
}

static void final_logits_one(xl_session *s, const float *x) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  xlstm_cpu *xc = s->impl;
  const xl_xlstm_weights *W = xl_xlstm_of(m);
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  if (c->add_out_norm) rmsnorm(x, xc->u, W->out_norm_w, W->out_norm_b, c->D, (float)c->norm_eps);
  else memcpy(xc->u, x, sizeof(float) * c->D);
  if (s->opt.matmul_bf16) round_bf16(xc->u, c->D);
  prof_mark(prof, -1, TM_NORM, &pt);
  mv_job j = {&m->lm_head, s->logits};
  matvecs(s, xc->u, &j, 1);
  float cap = (float)c->logit_soft_cap;
  vec_ctx vc = {s->logits, NULL, cap};
  if (cap > 0) xl_par_rows(xc->pool, c->vocab, 8, vec_cap, &vc);   /* tanhf over the vocabulary */
  prof_mark(prof, -1, TM_LMHEAD, &pt);
}

static int step(xl_session *s, int token) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  xlstm_cpu *xc = s->impl;
  const xl_xlstm_weights *W = xl_xlstm_of(m);
  int D = c->D, NH = c->n_heads, F = c->ffn, DV = c->dv;
  float eps = (float)c->norm_eps, gcap = (float)c->gate_soft_cap;
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  xl_mat_row(&m->embed, token, xc->x);
  prof_mark(prof, -1, TM_EMBED, &pt);
  for (int l = 0; l < c->n_blocks; l++) {
    const xl_block *B = &W->blocks[l];
    rmsnorm(xc->x, xc->u, B->norm_mlstm_w, B->norm_mlstm_b, D, eps);
    if (s->opt.matmul_bf16) round_bf16(xc->u, D);
    prof_mark(prof, l, TM_NORM, &pt);
    mv_job jobs[] = {{&B->q, xc->q}, {&B->k, xc->k}, {&B->v, xc->v}, {&B->o, xc->o}, {&B->ig, xc->ig}, {&B->fg, xc->fg}};
    matvecs(s, xc->u, jobs, 6);
    add_bias(xc->q, B->q_b, c->qk_dim); add_bias(xc->k, B->k_b, c->qk_dim);
    add_bias(xc->v, B->v_b, c->v_dim); add_bias(xc->o, B->o_b, c->v_dim);
    for (int h = 0; h < NH; h++) {
      xc->ig[h] = soft_cap(xc->ig[h] + B->ig_b[h], gcap);
      xc->fg[h] = soft_cap(xc->fg[h] + B->fg_b[h], gcap);
    }
    prof_mark(prof, l, TM_PROJ, &pt);
    step_cell(s, l);
    prof_mark(prof, l, TM_CELL, &pt);
    for (int h = 0; h < NH; h++)
      headnorm(xc->h + (size_t)h * DV, B->mh_w + (size_t)h * DV, B->mh_b ? B->mh_b + (size_t)h * DV : NULL, DV, eps);
    for (int i = 0; i < c->v_dim; i++) xc->h[i] *= sigmoidf(xc->o[i]);   /* output gate after the head norm */
    if (s->opt.matmul_bf16) round_bf16(xc->h, c->v_dim);
    prof_mark(prof, l, TM_HEADNORM, &pt);
    mv_job jo = {&B->out, xc->u};
    matvecs(s, xc->h, &jo, 1);
    for (int i = 0; i < D; i++) xc->x[i] += xc->u[i] + (B->out_b ? B->out_b[i] : 0.0f);
    prof_mark(prof, l, TM_OUTPROJ, &pt);
    rmsnorm(xc->x, xc->u, B->norm_ffn_w, B->norm_ffn_b, D, eps);
    if (s->opt.matmul_bf16) round_bf16(xc->u, D);
    mv_job jf[] = {{&B->up_gate, xc->g}, {&B->up, xc->up}};
    matvecs(s, xc->u, jf, 2);
    add_bias(xc->g, B->up_gate_b, F); add_bias(xc->up, B->up_b, F);
    vec_ctx vc = {xc->g, xc->up, 0};
    xl_par_rows(xc->pool, F, 8, vec_swiglu, &vc);
    if (s->opt.matmul_bf16) round_bf16(xc->g, F);
    mv_job jd = {&B->down, xc->u};
    matvecs(s, xc->g, &jd, 1);
    for (int i = 0; i < D; i++) xc->x[i] += xc->u[i] + (B->down_b ? B->down_b[i] : 0.0f);
    prof_mark(prof, l, TM_FFN, &pt);
  }
  final_logits_one(s, xc->x);
  return 0;
}

/* ---- prefill ---- */

typedef struct { xl_session *s; int layer, T; } chunk_ctx;

static void chunk_heads_task(void *vctx, int t, int worker) {
  chunk_ctx *cc = vctx;
  xl_session *s = cc->s;
  const xl_config *c = &s->m->cfg;
  const xl_block *B = &xl_xlstm_of(s->m)->blocks[cc->layer];
  xlstm_cpu *xc = s->impl;
  int NH = c->n_heads, DK = c->dk, DV = c->dv, QK = c->qk_dim, VD = c->v_dim, hpb = s->opt.heads_per_band;
  int ck = s->opt.chunk_size;
  float *scr = xc->wscr + xc->wscr_floats * (size_t)worker;
  for (int h = t * hpb; h < (t + 1) * hpb && h < NH; h++) {
    size_t sh = (size_t)cc->layer * NH + h;
    for (int t0 = 0; t0 < cc->T; t0 += ck) {
      int L = cc->T - t0 < ck ? cc->T - t0 : ck;
      xl_cell_chunk(&xc->cell, xc->Q + (size_t)t0 * QK + (size_t)h * DK, xc->K + (size_t)t0 * QK + (size_t)h * DK,
                    xc->V + (size_t)t0 * VD + (size_t)h * DV, QK, VD, VD, xc->IG + (size_t)t0 * NH + h, xc->FG + (size_t)t0 * NH + h,
                    NH, L, xc->C + sh * DK * DV, xc->n + sh * DK, xc->mst + sh, xc->H + (size_t)t0 * VD + (size_t)h * DV, scr);
    }
    for (int t2 = 0; t2 < cc->T; t2++)
      headnorm(xc->H + (size_t)t2 * VD + (size_t)h * DV, B->mh_w + (size_t)h * DV, B->mh_b ? B->mh_b + (size_t)h * DV : NULL, DV,
               (float)c->norm_eps);
  }
}

/* ---- the cell split over chunks ----
 * With more workers than head tasks (a 4-head model on 16 cores), the cell runs as one
 * pool step of NH + NH x (chunks in the segment) tasks: the first NH carry each head's state
 * across the chunks one after another (xl_cell_chunk_state), saving the state entering each
 * chunk and publishing how far they got; the others compute one chunk's outputs of one head
 * (xl_cell_chunk_out) from the saved state as soon as its chain has reached that chunk
 * (chunk-major order, so they rarely wait). Tasks are claimed in index order, so every chain
 * is running before any output task waits on it. The two halves are xl_cell_chunk's own
 * operations, so the logits and state are the same bits as with fewer workers. */

typedef struct { xl_session *s; int layer, T, nck; atomic_int *progress; } split_ctx;

static void split_task(void *vctx, int task, int worker) {
  const split_ctx *sc = vctx;
  xl_session *s = sc->s;
  const xl_config *c = &s->m->cfg;
  xlstm_cpu *xc = s->impl;
  int NH = c->n_heads, DK = c->dk, DV = c->dv, QK = c->qk_dim, VD = c->v_dim, ck = s->opt.chunk_size;
  float *scr = xc->wscr + xc->wscr_floats * (size_t)worker;
  if (task < NH) {   /* the chain of head h */
    int h = task;
    size_t sh = (size_t)sc->layer * NH + h;
    float *C = xc->C + sh * DK * DV, *n = xc->n + sh * DK, *m = xc->mst + sh;
    for (int k = 0; k < sc->nck; k++) {
      int t0 = k * ck, L = sc->T - t0 < ck ? sc->T - t0 : ck;
      size_t kh = (size_t)k * NH + h;
      memcpy(xc->chC + kh * DK * DV, C, sizeof(float) * DK * DV);
      memcpy(xc->chn + kh * DK, n, sizeof(float) * DK);
      xc->chm[kh] = *m;
      atomic_store_explicit(&sc->progress[h], k + 1, memory_order_release);
      xl_cell_chunk_state(&xc->cell, xc->K + (size_t)t0 * QK + (size_t)h * DK, xc->V + (size_t)t0 * VD + (size_t)h * DV, QK, VD,
                          xc->IG + (size_t)t0 * NH + h, xc->FG + (size_t)t0 * NH + h, NH, L, C, n, m, scr);
    }
    return;
  }
  int k = (task - NH) / NH, h = (task - NH) % NH, t0 = k * ck, L = sc->T - t0 < ck ? sc->T - t0 : ck;
  size_t kh = (size_t)k * NH + h;
  while (atomic_load_explicit(&sc->progress[h], memory_order_acquire) <= k) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  xl_cell_chunk_out(&xc->cell, xc->Q + (size_t)t0 * QK + (size_t)h * DK, xc->K + (size_t)t0 * QK + (size_t)h * DK,
                    xc->V + (size_t)t0 * VD + (size_t)h * DV, QK, VD, VD, xc->IG + (size_t)t0 * NH + h, xc->FG + (size_t)t0 * NH + h, NH,
                    L, xc->chC + kh * DK * DV, xc->chn + kh * DK, xc->chm[kh], xc->H + (size_t)t0 * VD + (size_t)h * DV, scr);
  const xl_block *B = &xl_xlstm_of(s->m)->blocks[sc->layer];
  for (int t2 = t0; t2 < t0 + L; t2++)
    headnorm(xc->H + (size_t)t2 * VD + (size_t)h * DV, B->mh_w + (size_t)h * DV, B->mh_b ? B->mh_b + (size_t)h * DV : NULL, DV,
             (float)c->norm_eps);
}

typedef struct { const xl_mat *w; const float *X; float *Y; int T, ldx, ldy, ntasks; } small_gemm_ctx;

static void small_gemm_task(void *vctx, int t, int worker) {
  const small_gemm_ctx *c = vctx;
  int rows = c->w->rows, r0 = (int)((long)rows * t / c->ntasks) & ~3;
  int r1 = t + 1 == c->ntasks ? rows : (int)((long)rows * (t + 1) / c->ntasks) & ~3;
  xl_gemm_rows(c->w, c->X, c->T, c->ldx, c->Y, c->ldy, r0, r1, NULL);
}

/* ---- token-parallel loops of prefill ----
 * The norms, gates, activations and residual adds between the GEMMs work on each token
 * (row) alone, so they run in bands of tokens on the pool; each element gets exactly the
 * operations it got on one thread, so the results are the same bits. */

typedef struct seg_ctx seg_ctx;
typedef void (*rows_fn)(const seg_ctx *c, int t0, int t1);
static void ew_bias(const seg_ctx *c, int t0, int t1);
static const rows_fn ew_bias_fn = ew_bias;
struct seg_ctx {
  xl_session *s;
  const xl_block *B;
  int T;
  float *rows;          /* logits rows (EW_LOGITS) */
  const xl_mat *w;      /* conversion: the matrix, its first row, rows per task */
  int r0, rows_per;
  const float *bias; float *Y; int ldy, nb;   /* bias adds */
  rows_fn fn;
  int ntasks;
};

static void rows_task(void *vctx, int t, int worker) {
  const seg_ctx *c = vctx;
  int t0 = (int)((long)c->T * t / c->ntasks), t1 = (int)((long)c->T * (t + 1) / c->ntasks);
  if (t0 < t1) c->fn(c, t0, t1);
}

/* fn over tokens [0, T), in bands on the pool when it has workers and the work pays for a
 * dispatch (cost: elements per token, roughly) */
static void par_rows(seg_ctx *c, rows_fn fn, long cost) {
  xlstm_cpu *xc = c->s->impl;
  int nw = xl_pool_size(xc->pool);
  c->fn = fn;
  long total = cost * c->T;
  c->ntasks = nw > 1 && total >= 16384 ? (c->T < 4 * nw ? c->T : 4 * nw) : 1;
  if (c->ntasks <= 1) fn(c, 0, c->T);
  else xl_pool_run(xc->pool, c->ntasks, rows_task, c);
  if (fn != ew_bias_fn) xl_pgemm_forget(&xc->pg);   /* the loops rewrite the GEMM inputs */
}

static void ew_norm_mlstm(const seg_ctx *c, int t0, int t1) {
  const xl_config *cf = &c->s->m->cfg;
  xlstm_cpu *xc = c->s->impl;
  int D = cf->D;
  for (int t = t0; t < t1; t++) {
    rmsnorm(xc->X + (size_t)t * D, xc->U + (size_t)t * D, c->B->norm_mlstm_w, c->B->norm_mlstm_b, D, (float)cf->norm_eps);
    if (c->s->opt.matmul_bf16) round_bf16(xc->U + (size_t)t * D, D);
  }
}
static void ew_norm_ffn(const seg_ctx *c, int t0, int t1) {
  const xl_config *cf = &c->s->m->cfg;
  xlstm_cpu *xc = c->s->impl;
  int D = cf->D;
  for (int t = t0; t < t1; t++) {
    rmsnorm(xc->X + (size_t)t * D, xc->U + (size_t)t * D, c->B->norm_ffn_w, c->B->norm_ffn_b, D, (float)cf->norm_eps);
    if (c->s->opt.matmul_bf16) round_bf16(xc->U + (size_t)t * D, D);
  }
}
static void ew_gates(const seg_ctx *c, int t0, int t1) {
  xlstm_cpu *xc = c->s->impl;
  int NH = c->s->m->cfg.n_heads;
  float gcap = (float)c->s->m->cfg.gate_soft_cap;
  for (size_t i = (size_t)t0 * NH; i < (size_t)t1 * NH; i++) { xc->IG[i] = soft_cap(xc->IG[i], gcap); xc->FG[i] = soft_cap(xc->FG[i], gcap); }
}
static void ew_outgate(const seg_ctx *c, int t0, int t1) {
  xlstm_cpu *xc = c->s->impl;
  size_t VD = (size_t)c->s->m->cfg.v_dim;
  for (size_t i = t0 * VD; i < t1 * VD; i++) xc->H[i] *= sigmoidf(xc->O[i]);
  if (c->s->opt.matmul_bf16) round_bf16(xc->H + t0 * VD, (size_t)(t1 - t0) * VD);
}
static void ew_residual(const seg_ctx *c, int t0, int t1) {
  xlstm_cpu *xc = c->s->impl;
  size_t D = (size_t)c->s->m->cfg.D;
  for (size_t i = t0 * D; i < t1 * D; i++) xc->X[i] += xc->U[i];
}
static void ew_swiglu(const seg_ctx *c, int t0, int t1) {
  xlstm_cpu *xc = c->s->impl;
  size_t F = (size_t)c->s->m->cfg.ffn;
  for (size_t i = t0 * F; i < t1 * F; i++) { float z = xc->G[i]; xc->G[i] = z * sigmoidf(z) * xc->UP[i]; }
  if (c->s->opt.matmul_bf16) round_bf16(xc->G + t0 * F, (size_t)(t1 - t0) * F);
}
static void ew_out_norm(const seg_ctx *c, int t0, int t1) {
  const xl_config *cf = &c->s->m->cfg;
  const xl_xlstm_weights *W = xl_xlstm_of(c->s->m);
  xlstm_cpu *xc = c->s->impl;
  int D = cf->D;
  for (int t = t0; t < t1; t++) {
    float *xt = xc->X + (size_t)t * D, *ut = xc->U + (size_t)t * D;
    if (cf->add_out_norm) rmsnorm(xt, ut, W->out_norm_w, W->out_norm_b, D, (float)cf->norm_eps);
    else memcpy(ut, xt, sizeof(float) * D);
    if (c->s->opt.matmul_bf16) round_bf16(ut, D);
  }
}
static void ew_logit_cap(const seg_ctx *c, int t0, int t1) {
  size_t V = (size_t)c->s->m->cfg.vocab;
  float cap = (float)c->s->m->cfg.logit_soft_cap;
  for (size_t i = t0 * V; i < t1 * V; i++) c->rows[i] = soft_cap(c->rows[i], cap);
}
static void ew_bias(const seg_ctx *c, int t0, int t1) {
  for (int t = t0; t < t1; t++) add_bias(c->Y + (size_t)t * c->ldy, c->bias, c->nb);
}
static void ew_embed(const seg_ctx *c, int t0, int t1) {
  xlstm_cpu *xc = c->s->impl;
  int D = c->s->m->cfg.D;
  const int32_t *ids = (const int32_t *)c->rows;
  for (int t = t0; t < t1; t++) xl_mat_row(&c->s->m->embed, ids[t], xc->X + (size_t)t * D);
}

static void gemm(xl_session *s, const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy, const float *bias) {
  xlstm_cpu *xc = s->impl;
  int nw = xl_pool_size(xc->pool);
  if (w->dtype != ST_F32 && T <= XL_SMALL_T && nw > 1 && w->rows >= 64 * nw) {
    /* a short prompt over stored-dtype weights: matvec row bands on our workers (see kernels.h) */
    small_gemm_ctx c = {w, X, Y, T, ldx, ldy, 4 * nw};
    xl_pool_run(xc->pool, c.ntasks, small_gemm_task, &c);
    if (Y == xc->pg.xb_src) xl_pgemm_forget(&xc->pg);
  } else {
    xl_pgemm_run(&xc->pg, w, X, T, ldx, Y, ldy);
  }
  if (bias) {
    seg_ctx c = {.s = s, .T = T, .bias = bias, .Y = Y, .ldy = ldy, .nb = w->rows};
    par_rows(&c, ew_bias, w->rows);
  }
}

/* One segment of T <= seg tokens through every block, chunkwise. 1 when interrupted. */
static int prefill_segment(xl_session *s, const int32_t *ids, int T, float *logits_rows) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  xlstm_cpu *xc = s->impl;
  const xl_xlstm_weights *W = xl_xlstm_of(m);
  int D = c->D, NH = c->n_heads, QK = c->qk_dim, VD = c->v_dim, F = c->ffn;
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  seg_ctx sc = {.s = s, .T = T, .rows = (float *)ids};
  par_rows(&sc, ew_embed, D);
  prof_mark(prof, -1, TM_EMBED, &pt);
  for (int l = 0; l < c->n_blocks; l++) {
    if (s->opt.interrupted && s->opt.interrupted(s->opt.progress_ctx)) return 1;
    const xl_block *B = &W->blocks[l];
    sc.B = B;
    par_rows(&sc, ew_norm_mlstm, 2 * D);
    prof_mark(prof, l, TM_NORM, &pt);
    gemm(s, &B->q, xc->U, T, D, xc->Q, QK, B->q_b);
    gemm(s, &B->k, xc->U, T, D, xc->K, QK, B->k_b);
    gemm(s, &B->v, xc->U, T, D, xc->V, VD, B->v_b);
    gemm(s, &B->o, xc->U, T, D, xc->O, VD, B->o_b);
    gemm(s, &B->ig, xc->U, T, D, xc->IG, NH, B->ig_b);
    gemm(s, &B->fg, xc->U, T, D, xc->FG, NH, B->fg_b);
    par_rows(&sc, ew_gates, 64 * NH);
    prof_mark(prof, l, TM_PROJ, &pt);
    chunk_ctx cc = {s, l, T};
    int hpb = s->opt.heads_per_band, ntasks = (NH + hpb - 1) / hpb;
    int nck = (T + s->opt.chunk_size - 1) / s->opt.chunk_size;
    if (xc->split && nck > 1) {
      split_ctx sp = {s, l, T, nck, xc->progress};
      for (int h = 0; h < NH; h++) atomic_store(&xc->progress[h], 0);
      openblas_set_num_threads(1);
      xl_pool_run(xc->pool, NH + nck * NH, split_task, &sp);
      openblas_set_num_threads(s->opt.workers);
    } else {
      if (ntasks > 1 && s->opt.workers > 1) openblas_set_num_threads(1);
      xl_pool_run(xc->pool, ntasks, chunk_heads_task, &cc);
      if (ntasks > 1 && s->opt.workers > 1) openblas_set_num_threads(s->opt.workers);
    }
    prof_mark(prof, l, TM_CELL, &pt);   /* includes the head norm, done inside the head tasks */
    par_rows(&sc, ew_outgate, 8 * VD);
    gemm(s, &B->out, xc->H, T, VD, xc->U, D, B->out_b);
    par_rows(&sc, ew_residual, D);
    prof_mark(prof, l, TM_OUTPROJ, &pt);
    par_rows(&sc, ew_norm_ffn, 2 * D);
    gemm(s, &B->up_gate, xc->U, T, D, xc->G, F, B->up_gate_b);
    gemm(s, &B->up, xc->U, T, D, xc->UP, F, B->up_b);
    par_rows(&sc, ew_swiglu, 8 * F);
    gemm(s, &B->down, xc->G, T, F, xc->U, D, B->down_b);
    par_rows(&sc, ew_residual, D);
    prof_mark(prof, l, TM_FFN, &pt);
  }
  if (logits_rows) {
    par_rows(&sc, ew_out_norm, 2 * D);
    gemm(s, &m->lm_head, xc->U, T, D, logits_rows, c->vocab, NULL);
    sc.rows = logits_rows;
    par_rows(&sc, ew_logit_cap, 8 * c->vocab);
    memcpy(s->logits, logits_rows + (size_t)(T - 1) * c->vocab, sizeof(float) * c->vocab);
    prof_mark(prof, -1, TM_LMHEAD, &pt);
  } else {
    final_logits_one(s, xc->X + (size_t)(T - 1) * D);
  }
  return 0;
}

static int prefill(xl_session *s, const int32_t *ids, int T, float *all_logits) {
  return prefill_segment(s, ids, T, all_logits);
}

/* ---- state ---- */

static int state_visit(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading) {
  xlstm_cpu *xc = s->impl;
  xl_xlstm_visit_state(&s->m->cfg, xc->C, xc->n, xc->mst, fn, ctx);
  (void)loading;
  return 0;
}

void xl_xlstm_visit_state(const xl_config *c, float *C, float *n, float *m, xl_state_visit_fn fn, void *ctx) {
  int NH = c->n_heads, DK = c->dk, DV = c->dv;
  for (int l = 0; l < c->n_blocks; l++) {
    char name[64];
    int64_t shC[3] = {NH, DK, DV}, shn[2] = {NH, DK}, shm[1] = {NH};
    snprintf(name, sizeof name, "layer%d.C", l);
    fn(ctx, name, C + (size_t)l * NH * DK * DV, 3, shC);
    snprintf(name, sizeof name, "layer%d.n", l);
    fn(ctx, name, n + (size_t)l * NH * DK, 2, shn);
    snprintf(name, sizeof name, "layer%d.m", l);
    fn(ctx, name, m + (size_t)l * NH, 1, shm);
  }
}

const xl_session_ops xl_xlstm_cpu_ops = {
    .device = "cpu", .init = init, .free = release, .reset = reset, .step = step, .prefill = prefill,
    .state_visit = state_visit,
};

