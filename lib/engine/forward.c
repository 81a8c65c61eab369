/* forward: the xLSTM-7B-family forward pass of docs/xlstm-math.md, recurrent (decode) and
 * chunkwise-parallel (prefill). See forward.h.
 * Threading: the pool runs matvec row bands (decode) and head bands (the cell); the
 * projection GEMMs of prefill run on the calling thread with OpenBLAS using `workers`
 * threads, and OpenBLAS is held to one thread while head tasks call it, so the process
 * never runs more than `workers` busy threads. */
#include "engine/forward.h"
#include "base/util.h"
#include "engine/model_v1.h"
#include "obs/telemetry.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int (*xl_prefill_progress)(long done, long total, double seconds) = NULL;

extern void openblas_set_num_threads(int);

const char *xl_backend_name(xl_backend b) { return b == XL_BACKEND_RECURRENT ? "recurrent" : "chunkwise"; }
int xl_backend_parse(const char *s, xl_backend *out) {
  if (!strcmp(s, "chunkwise")) *out = XL_BACKEND_CHUNKWISE;
  else if (!strcmp(s, "recurrent")) *out = XL_BACKEND_RECURRENT;
  else return -1;
  return 0;
}

void xl_runopts_default(xl_runopts *o, const xl_model *m) {
  o->backend = XL_BACKEND_CHUNKWISE;
  o->chunk_size = m && m->cfg.chunk_size > 0 ? m->cfg.chunk_size : 64;
  o->workers = 1;
  o->heads_per_band = 1;
  const char *e;
  if ((e = getenv("XL_BACKEND")) && *e && xl_backend_parse(e, &o->backend))
    xl_usage_error("XL_BACKEND: '%s' is not chunkwise or recurrent", e);
  if ((e = getenv("XL_CHUNK_SIZE")) && *e) o->chunk_size = (int)xl_flag_long("XL_CHUNK_SIZE", e, 1, 1 << 16);
  if ((e = getenv("XL_WORKERS")) && *e) o->workers = (int)xl_flag_long("XL_WORKERS", e, 1, 1024);
  if ((e = getenv("XL_HEADS_PER_BAND")) && *e) o->heads_per_band = (int)xl_flag_long("XL_HEADS_PER_BAND", e, 1, 1 << 16);
}

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
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) mean += h[i];
  mean /= n;
  for (int i = 0; i < n; i++) { double d = h[i] - mean; var += d * d; }
  var /= n;
  float r = 1.0f / sqrtf((float)var + eps), mu = (float)mean;
  for (int i = 0; i < n; i++) h[i] = (h[i] - mu) * r * w[i] + (b ? b[i] : 0.0f);
}

static void add_bias(float *y, const float *b, int n) {
  if (b) for (int i = 0; i < n; i++) y[i] += b[i];
}

static void round_bf16(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = xl_bf16_to_f32(xl_f32_to_bf16(x[i]));
}

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
  mv_ctx c = {jobs, njobs, x, 0, 0};
  for (int j = 0; j < njobs; j++) c.total += jobs[j].w->rows;
  int nw = xl_pool_size(s->pool);
  /* Several bands per worker, so a thread that loses its core for a moment does not hold up
   * the step; but bands of at least 64 rows, below which dispatch costs more than it saves. */
  int want = nw > 1 ? 4 * nw : 1, most = c.total / 64 > 0 ? c.total / 64 : 1;
  c.ntasks = want < most ? want : most;
  xl_pool_run(s->pool, c.ntasks, mv_task, &c);
}

/* ---- the mLSTM cell, recurrent step (one head) ---- */

static void cell_step(const float *q, const float *k, const float *v, float ig, float fg, float *C, float *n, float *m,
                      float *h, int DK, int DV, float eps) {
  float a = logsigmoidf(fg), mnew = fmaxf(a + *m, ig);
  float fa = expf(a + *m - mnew), ia = expf(ig - mnew), scale = 1.0f / sqrtf((float)DK), qn = 0;
  for (int j = 0; j < DK; j++) {
    n[j] = fa * n[j] + ia * k[j];
    qn += q[j] * scale * n[j];
  }
  memset(h, 0, sizeof(float) * DV);
  for (int j = 0; j < DK; j++) {
    float kj = ia * k[j], qj = q[j] * scale, *Cj = C + (size_t)j * DV;
    for (int d = 0; d < DV; d++) {
      Cj[d] = fa * Cj[d] + kj * v[d];
      h[d] += qj * Cj[d];
    }
  }
  float den = fmaxf(fabsf(qn), expf(-mnew)) + eps;
  for (int d = 0; d < DV; d++) h[d] /= den;
  *m = mnew;
}

/* ---- the mLSTM cell, chunkwise (one head, one chunk of L tokens) ----
 * q, k rows have stride ldq; v and the output h rows stride ldv; gates stride NH. */
static void cell_chunk(const float *q, const float *k, const float *v, int ldq, int ldv, const float *ig, const float *fg,
                       int gstride, int L, float *C, float *n, float *m, float *h, int DK, int DV, float eps, float *scr) {
  float *b = scr, *mt = b + L, *S = mt + L, *Qb = S + (size_t)L * L, *Kw = Qb + (size_t)L * DK;
  float scale = 1.0f / sqrtf((float)DK), m0 = *m;
  float acc = 0;
  for (int t = 0; t < L; t++) { acc += logsigmoidf(fg[t * gstride]); b[t] = acc; }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, DK, scale, q, ldq, k, ldq, 0.0f, S, L);
  for (int t = 0; t < L; t++) {
    float mx = b[t] + m0;
    for (int s2 = 0; s2 <= t; s2++) mx = fmaxf(mx, b[t] - b[s2] + ig[s2 * gstride]);
    mt[t] = mx;
    float *St = S + (size_t)t * L;
    for (int s2 = 0; s2 <= t; s2++) St[s2] *= expf(b[t] - b[s2] + ig[s2 * gstride] - mx);
    for (int s2 = t + 1; s2 < L; s2++) St[s2] = 0.0f;
    float qs = expf(b[t] + m0 - mx) * scale;
    for (int j = 0; j < DK; j++) Qb[(size_t)t * DK + j] = q[(size_t)t * ldq + j] * qs;
  }
  /* numerator: Qbar C + M V */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, DV, DK, 1.0f, Qb, DK, C, DV, 0.0f, h, ldv);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, DV, L, 1.0f, S, L, v, ldv, 1.0f, h, ldv);
  for (int t = 0; t < L; t++) {
    float den = 0;
    for (int j = 0; j < DK; j++) den += Qb[(size_t)t * DK + j] * n[j];
    for (int s2 = 0; s2 <= t; s2++) den += S[(size_t)t * L + s2];
    float inv = 1.0f / (fmaxf(fabsf(den), expf(-mt[t])) + eps);
    float *ht = h + (size_t)t * ldv;
    for (int d = 0; d < DV; d++) ht[d] *= inv;
  }
  /* state leaving the chunk */
  float g = b[L - 1], mnew = g + m0;
  for (int t = 0; t < L; t++) mnew = fmaxf(mnew, g - b[t] + ig[t * gstride]);
  float decay = expf(g + m0 - mnew);
  for (int j = 0; j < DK; j++) n[j] *= decay;
  for (int t = 0; t < L; t++) {
    float w = expf(g - b[t] + ig[t * gstride] - mnew);
    for (int j = 0; j < DK; j++) {
      Kw[(size_t)t * DK + j] = k[(size_t)t * ldq + j] * w;
      n[j] += Kw[(size_t)t * DK + j];
    }
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, DK, DV, L, 1.0f, Kw, DK, v, ldv, decay, C, DV);
  *m = mnew;
}

static size_t chunk_scratch_floats(int L, int DK) { return (size_t)2 * L + (size_t)L * L + (size_t)2 * L * DK; }

/* ---- session ---- */

static float *scratch(xl_session *s, size_t n) {
  s->scratch_bytes += n * sizeof(float);
  return xl_calloc(n ? n : 1, sizeof(float));
}

xl_session *xl_session_new(const xl_model *m, const xl_runopts *opt, char *err, size_t errlen) {
  const xl_config *c = &m->cfg;
  if (opt->chunk_size < 1 || opt->workers < 1 || opt->heads_per_band < 1) {
    snprintf(err, errlen, "chunk size, workers and heads per band must be >= 1");
    return NULL;
  }
  xl_session *s = xl_calloc(1, sizeof *s);
  s->m = m;
  s->opt = *opt;
  s->pool = xl_pool_create(opt->workers);
  openblas_set_num_threads(opt->workers);
  int L = c->n_blocks, NH = c->n_heads, DK = c->dk, DV = c->dv, D = c->D, F = c->ffn;
  s->C = scratch(s, (size_t)L * NH * DK * DV);
  s->n = scratch(s, (size_t)L * NH * DK);
  s->mst = scratch(s, (size_t)L * NH);
  s->logits = scratch(s, (size_t)c->vocab);
  s->x = scratch(s, D); s->u = scratch(s, D);
  s->q = scratch(s, c->qk_dim); s->k = scratch(s, c->qk_dim);
  s->v = scratch(s, c->v_dim); s->o = scratch(s, c->v_dim); s->h = scratch(s, c->v_dim);
  s->ig = scratch(s, NH); s->fg = scratch(s, NH);
  s->g = scratch(s, F); s->up = scratch(s, F);
  /* A prefill segment: a whole number of chunks, about 1024 tokens. Long segments make the
   * projection GEMMs efficient and amortise the conversion of BF16/F16 weight tiles, which
   * happens once per segment; XL_PREFILL_SEGMENT overrides the target for experiments. */
  int ck = opt->chunk_size, target = 1024;
  const char *segenv = getenv("XL_PREFILL_SEGMENT");
  if (segenv && *segenv) target = (int)xl_flag_long("XL_PREFILL_SEGMENT", segenv, 1, 1 << 20);
  s->seg = ck >= target ? ck : ck * ((target + ck - 1) / ck);
  size_t S = (size_t)s->seg;
  s->X = scratch(s, S * D); s->U = scratch(s, S * (D > c->v_dim ? D : c->v_dim));
  s->Q = scratch(s, S * c->qk_dim); s->K = scratch(s, S * c->qk_dim);
  s->V = scratch(s, S * c->v_dim); s->O = scratch(s, S * c->v_dim); s->H = scratch(s, S * c->v_dim);
  s->IG = scratch(s, S * NH); s->FG = scratch(s, S * NH);
  s->G = scratch(s, S * F); s->UP = scratch(s, S * F);
  size_t tile = 0;
  const xl_mat *mats[] = {&m->lm_head};
  tile = xl_gemm_tile_floats(mats[0]);
  for (int i = 0; c->arch == XL_ARCH_LARGE && i < L; i++) {
    const xl_block *B = &m->blocks[i];
    const xl_mat *all[] = {&B->q, &B->k, &B->v, &B->o, &B->ig, &B->fg, &B->out, &B->up_gate, &B->up, &B->down};
    for (size_t j = 0; j < sizeof all / sizeof *all; j++)
      if (xl_gemm_tile_floats(all[j]) > tile) tile = xl_gemm_tile_floats(all[j]);
  }
  s->tile = scratch(s, tile);
  s->wscr_floats = chunk_scratch_floats(ck, DK);
  s->wscr = scratch(s, s->wscr_floats * (size_t)opt->workers);
  s->last_token = -1;
  if (c->arch == XL_ARCH_V1 && xl_v1_session_init(s, err, errlen)) { xl_session_free(s); return NULL; }
  return s;
}

void xl_session_free(xl_session *s) {
  if (!s) return;
  if (s->m->cfg.arch == XL_ARCH_V1) xl_v1_session_free(s);
  xl_pool_free(s->pool);
  float *bufs[] = {s->C, s->n, s->mst, s->logits, s->x, s->u, s->q, s->k, s->v, s->o, s->h, s->ig, s->fg, s->g, s->up,
                   s->X, s->U, s->Q, s->K, s->V, s->O, s->H, s->IG, s->FG, s->G, s->UP, s->tile, s->wscr};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
  free(s);
}

void xl_session_reset(xl_session *s) {
  const xl_config *c = &s->m->cfg;
  memset(s->C, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads * c->dk * c->dv);
  memset(s->n, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads * c->dk);
  memset(s->mst, 0, sizeof(float) * (size_t)c->n_blocks * c->n_heads);   /* m starts at 0, not -inf */
  memset(s->logits, 0, sizeof(float) * (size_t)c->vocab);
  s->tokens = 0;
  s->last_token = -1;
  if (c->arch == XL_ARCH_V1) xl_v1_session_reset(s);
}

/* ---- decode: one token ---- */

typedef struct { xl_session *s; int layer; } head_ctx;

static void step_heads_task(void *vctx, int t, int worker) {
  head_ctx *hc = vctx;
  xl_session *s = hc->s;
  const xl_config *c = &s->m->cfg;
  const xl_block *B = &s->m->blocks[hc->layer];
  int NH = c->n_heads, DK = c->dk, DV = c->dv, hpb = s->opt.heads_per_band;
  for (int h = t * hpb; h < (t + 1) * hpb && h < NH; h++) {
    size_t sh = (size_t)hc->layer * NH + h;
    float *hv = s->h + (size_t)h * DV;
    cell_step(s->q + (size_t)h * DK, s->k + (size_t)h * DK, s->v + (size_t)h * DV, s->ig[h], s->fg[h], s->C + sh * DK * DV,
              s->n + sh * DK, s->mst + sh, hv, DK, DV, (float)c->eps);
  }
  (void)B;
}

static void final_logits_one(xl_session *s, const float *x) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  if (c->add_out_norm) rmsnorm(x, s->u, m->out_norm_w, m->out_norm_b, c->D, (float)c->norm_eps);
  else memcpy(s->u, x, sizeof(float) * c->D);
  if (xl_matmul_bf16) round_bf16(s->u, c->D);
  prof_mark(prof, -1, TM_NORM, &pt);
  mv_job j = {&m->lm_head, s->logits};
  matvecs(s, s->u, &j, 1);
  float cap = (float)c->logit_soft_cap;
  for (int i = 0; i < c->vocab; i++) s->logits[i] = soft_cap(s->logits[i], cap);
  prof_mark(prof, -1, TM_LMHEAD, &pt);
}

void xl_step(xl_session *s, int token) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  if (c->arch == XL_ARCH_V1) {   /* the v1 hook updates logits; the counters are kept here */
    xl_v1_step(s, token);
    s->tokens++;
    s->last_token = token;
    return;
  }
  int D = c->D, NH = c->n_heads, F = c->ffn, DV = c->dv;
  float eps = (float)c->norm_eps, gcap = (float)c->gate_soft_cap;
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  xl_mat_row(&m->embed, token, s->x);
  prof_mark(prof, -1, TM_EMBED, &pt);
  for (int l = 0; l < c->n_blocks; l++) {
    const xl_block *B = &m->blocks[l];
    rmsnorm(s->x, s->u, B->norm_mlstm_w, B->norm_mlstm_b, D, eps);
    if (xl_matmul_bf16) round_bf16(s->u, D);
    prof_mark(prof, l, TM_NORM, &pt);
    mv_job jobs[] = {{&B->q, s->q}, {&B->k, s->k}, {&B->v, s->v}, {&B->o, s->o}, {&B->ig, s->ig}, {&B->fg, s->fg}};
    matvecs(s, s->u, jobs, 6);
    add_bias(s->q, B->q_b, c->qk_dim); add_bias(s->k, B->k_b, c->qk_dim);
    add_bias(s->v, B->v_b, c->v_dim); add_bias(s->o, B->o_b, c->v_dim);
    for (int h = 0; h < NH; h++) {
      s->ig[h] = soft_cap(s->ig[h] + B->ig_b[h], gcap);
      s->fg[h] = soft_cap(s->fg[h] + B->fg_b[h], gcap);
    }
    prof_mark(prof, l, TM_PROJ, &pt);
    head_ctx hc = {s, l};
    int hpb = s->opt.heads_per_band;
    xl_pool_run(s->pool, (NH + hpb - 1) / hpb, step_heads_task, &hc);
    prof_mark(prof, l, TM_CELL, &pt);
    for (int h = 0; h < NH; h++)
      headnorm(s->h + (size_t)h * DV, B->mh_w + (size_t)h * DV, B->mh_b ? B->mh_b + (size_t)h * DV : NULL, DV, eps);
    for (int i = 0; i < c->v_dim; i++) s->h[i] *= sigmoidf(s->o[i]);   /* output gate after the head norm */
    if (xl_matmul_bf16) round_bf16(s->h, c->v_dim);
    prof_mark(prof, l, TM_HEADNORM, &pt);
    mv_job jo = {&B->out, s->u};
    matvecs(s, s->h, &jo, 1);
    for (int i = 0; i < D; i++) s->x[i] += s->u[i] + (B->out_b ? B->out_b[i] : 0.0f);
    prof_mark(prof, l, TM_OUTPROJ, &pt);
    rmsnorm(s->x, s->u, B->norm_ffn_w, B->norm_ffn_b, D, eps);
    if (xl_matmul_bf16) round_bf16(s->u, D);
    mv_job jf[] = {{&B->up_gate, s->g}, {&B->up, s->up}};
    matvecs(s, s->u, jf, 2);
    add_bias(s->g, B->up_gate_b, F); add_bias(s->up, B->up_b, F);
    for (int i = 0; i < F; i++) { float z = s->g[i]; s->g[i] = z * sigmoidf(z) * s->up[i]; }
    if (xl_matmul_bf16) round_bf16(s->g, F);
    mv_job jd = {&B->down, s->u};
    matvecs(s, s->g, &jd, 1);
    for (int i = 0; i < D; i++) s->x[i] += s->u[i] + (B->down_b ? B->down_b[i] : 0.0f);
    prof_mark(prof, l, TM_FFN, &pt);
  }
  final_logits_one(s, s->x);
  s->tokens++;
  s->last_token = token;
}

/* ---- prefill ---- */

typedef struct { xl_session *s; int layer, T; } chunk_ctx;

static void chunk_heads_task(void *vctx, int t, int worker) {
  chunk_ctx *cc = vctx;
  xl_session *s = cc->s;
  const xl_config *c = &s->m->cfg;
  const xl_block *B = &s->m->blocks[cc->layer];
  int NH = c->n_heads, DK = c->dk, DV = c->dv, QK = c->qk_dim, VD = c->v_dim, hpb = s->opt.heads_per_band;
  int ck = s->opt.chunk_size;
  float *scr = s->wscr + s->wscr_floats * (size_t)worker;
  for (int h = t * hpb; h < (t + 1) * hpb && h < NH; h++) {
    size_t sh = (size_t)cc->layer * NH + h;
    for (int t0 = 0; t0 < cc->T; t0 += ck) {
      int L = cc->T - t0 < ck ? cc->T - t0 : ck;
      cell_chunk(s->Q + (size_t)t0 * QK + (size_t)h * DK, s->K + (size_t)t0 * QK + (size_t)h * DK,
                 s->V + (size_t)t0 * VD + (size_t)h * DV, QK, VD, s->IG + (size_t)t0 * NH + h, s->FG + (size_t)t0 * NH + h, NH,
                 L, s->C + sh * DK * DV, s->n + sh * DK, s->mst + sh, s->H + (size_t)t0 * VD + (size_t)h * DV, DK, DV,
                 (float)c->eps, scr);
    }
    for (int t2 = 0; t2 < cc->T; t2++)
      headnorm(s->H + (size_t)t2 * VD + (size_t)h * DV, B->mh_w + (size_t)h * DV, B->mh_b ? B->mh_b + (size_t)h * DV : NULL, DV,
               (float)c->norm_eps);
  }
}

typedef struct { const xl_mat *w; const float *X; float *Y; int T, ldx, ldy, ntasks; } small_gemm_ctx;

static void small_gemm_task(void *vctx, int t, int worker) {
  const small_gemm_ctx *c = vctx;
  int rows = c->w->rows, r0 = (int)((long)rows * t / c->ntasks) & ~3;
  int r1 = t + 1 == c->ntasks ? rows : (int)((long)rows * (t + 1) / c->ntasks) & ~3;
  xl_gemm_rows(c->w, c->X, c->T, c->ldx, c->Y, c->ldy, r0, r1, NULL);
}

static void gemm(xl_session *s, const xl_mat *w, const float *X, int T, int ldx, float *Y, int ldy, const float *bias) {
  int nw = xl_pool_size(s->pool);
  if (w->dtype != ST_F32 && T <= XL_SMALL_T && nw > 1 && w->rows >= 64 * nw) {
    /* a short prompt over stored-dtype weights: matvec row bands on our workers (see kernels.h) */
    small_gemm_ctx c = {w, X, Y, T, ldx, ldy, 4 * nw};
    xl_pool_run(s->pool, c.ntasks, small_gemm_task, &c);
  } else {
    xl_gemm_rows(w, X, T, ldx, Y, ldy, 0, w->rows, s->tile);
  }
  if (bias)
    for (int t = 0; t < T; t++) add_bias(Y + (size_t)t * ldy, bias, w->rows);
}

/* One segment of T <= seg tokens through every block, chunkwise. */
static void prefill_segment(xl_session *s, const int32_t *ids, int T, float *logits_rows) {
  const xl_model *m = s->m;
  const xl_config *c = &m->cfg;
  int D = c->D, NH = c->n_heads, QK = c->qk_dim, VD = c->v_dim, F = c->ffn;
  float eps = (float)c->norm_eps, gcap = (float)c->gate_soft_cap;
  int prof = tm_profiling();
  double pt = prof ? xl_now() : 0;
  for (int t = 0; t < T; t++) xl_mat_row(&m->embed, ids[t], s->X + (size_t)t * D);
  prof_mark(prof, -1, TM_EMBED, &pt);
  for (int l = 0; l < c->n_blocks; l++) {
    const xl_block *B = &m->blocks[l];
    for (int t = 0; t < T; t++) rmsnorm(s->X + (size_t)t * D, s->U + (size_t)t * D, B->norm_mlstm_w, B->norm_mlstm_b, D, eps);
    if (xl_matmul_bf16) round_bf16(s->U, (size_t)T * D);
    prof_mark(prof, l, TM_NORM, &pt);
    gemm(s, &B->q, s->U, T, D, s->Q, QK, B->q_b);
    gemm(s, &B->k, s->U, T, D, s->K, QK, B->k_b);
    gemm(s, &B->v, s->U, T, D, s->V, VD, B->v_b);
    gemm(s, &B->o, s->U, T, D, s->O, VD, B->o_b);
    gemm(s, &B->ig, s->U, T, D, s->IG, NH, B->ig_b);
    gemm(s, &B->fg, s->U, T, D, s->FG, NH, B->fg_b);
    for (size_t i = 0; i < (size_t)T * NH; i++) { s->IG[i] = soft_cap(s->IG[i], gcap); s->FG[i] = soft_cap(s->FG[i], gcap); }
    prof_mark(prof, l, TM_PROJ, &pt);
    chunk_ctx cc = {s, l, T};
    int hpb = s->opt.heads_per_band, ntasks = (NH + hpb - 1) / hpb;
    if (ntasks > 1 && s->opt.workers > 1) openblas_set_num_threads(1);
    xl_pool_run(s->pool, ntasks, chunk_heads_task, &cc);
    if (ntasks > 1 && s->opt.workers > 1) openblas_set_num_threads(s->opt.workers);
    prof_mark(prof, l, TM_CELL, &pt);   /* includes the head norm, done inside the head tasks */
    for (size_t i = 0; i < (size_t)T * VD; i++) s->H[i] *= sigmoidf(s->O[i]);
    if (xl_matmul_bf16) round_bf16(s->H, (size_t)T * VD);
    gemm(s, &B->out, s->H, T, VD, s->U, D, B->out_b);
    for (size_t i = 0; i < (size_t)T * D; i++) s->X[i] += s->U[i];
    prof_mark(prof, l, TM_OUTPROJ, &pt);
    for (int t = 0; t < T; t++) rmsnorm(s->X + (size_t)t * D, s->U + (size_t)t * D, B->norm_ffn_w, B->norm_ffn_b, D, eps);
    if (xl_matmul_bf16) round_bf16(s->U, (size_t)T * D);
    gemm(s, &B->up_gate, s->U, T, D, s->G, F, B->up_gate_b);
    gemm(s, &B->up, s->U, T, D, s->UP, F, B->up_b);
    for (size_t i = 0; i < (size_t)T * F; i++) { float z = s->G[i]; s->G[i] = z * sigmoidf(z) * s->UP[i]; }
    if (xl_matmul_bf16) round_bf16(s->G, (size_t)T * F);
    gemm(s, &B->down, s->G, T, F, s->U, D, B->down_b);
    for (size_t i = 0; i < (size_t)T * D; i++) s->X[i] += s->U[i];
    prof_mark(prof, l, TM_FFN, &pt);
  }
  if (logits_rows) {
    for (int t = 0; t < T; t++) {
      float *xt = s->X + (size_t)t * D;
      if (c->add_out_norm) rmsnorm(xt, s->U + (size_t)t * D, m->out_norm_w, m->out_norm_b, D, eps);
      else memcpy(s->U + (size_t)t * D, xt, sizeof(float) * D);
    }
    if (xl_matmul_bf16) round_bf16(s->U, (size_t)T * D);
    gemm(s, &m->lm_head, s->U, T, D, logits_rows, c->vocab, NULL);
    float cap = (float)c->logit_soft_cap;
    for (size_t i = 0; i < (size_t)T * c->vocab; i++) logits_rows[i] = soft_cap(logits_rows[i], cap);
    memcpy(s->logits, logits_rows + (size_t)(T - 1) * c->vocab, sizeof(float) * c->vocab);
    prof_mark(prof, -1, TM_LMHEAD, &pt);
  } else {
    final_logits_one(s, s->X + (size_t)(T - 1) * D);
  }
}

void xl_prefill(xl_session *s, const int32_t *ids, long n, float *all_logits) {
  const xl_config *c = &s->m->cfg;
  double t0 = xl_now();
  if (c->arch == XL_ARCH_V1 && s->opt.backend == XL_BACKEND_CHUNKWISE) {   /* sets tokens/last_token/logits itself */
    xl_v1_prefill(s, ids, n, all_logits);
    return;
  }
  if (s->opt.backend == XL_BACKEND_RECURRENT) {
    for (long t = 0; t < n; t++) {
      xl_step(s, ids[t]);
      if (all_logits) memcpy(all_logits + (size_t)t * c->vocab, s->logits, sizeof(float) * c->vocab);
      if (xl_prefill_progress && ((t + 1) % s->seg == 0 || t + 1 == n) && xl_prefill_progress(t + 1, n, xl_now() - t0)) return;
    }
    return;
  }
  for (long t = 0; t < n; t += s->seg) {
    int T = n - t < s->seg ? (int)(n - t) : s->seg;
    prefill_segment(s, ids + t, T, all_logits ? all_logits + (size_t)t * c->vocab : NULL);
    s->tokens += T;
    s->last_token = ids[t + T - 1];
    if (xl_prefill_progress && xl_prefill_progress(t + T, n, xl_now() - t0)) return;
  }
}
