/* cell: the mLSTM cell's recurrent and chunkwise forms. See cell.h.
 * The scale factors are applied as multiplications by exactly 1.0f on the side that does
 * not carry 1/sqrt(DK), so each family gets the same bits as a cell written for it alone. */
#include "engine/cell.h"
#include "engine/kernels.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

static inline float logsigmoidf(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }

void xl_cell_step_gates(const xl_cell *cs, const float *q, const float *k, float ig, float fg, float *n, float *m, xl_cell_gates *g) {
  int DK = cs->DK;
  float scale = 1.0f / sqrtf((float)DK);
  float qscale = cs->key_scaled ? 1.0f : scale, kdiv = cs->key_scaled ? sqrtf((float)DK) : 1.0f;
  float a = logsigmoidf(fg), mnew = fmaxf(a + *m, ig);
  float fa = expf(a + *m - mnew), ia = expf(ig - mnew) / kdiv, qn = 0;
  for (int j = 0; j < DK; j++) {
    n[j] = fa * n[j] + ia * k[j];
    qn += q[j] * qscale * n[j];
  }
  g->fa = fa, g->ia = ia, g->qscale = qscale;
  g->den = fmaxf(fabsf(qn), expf(-mnew)) + cs->eps;
  *m = mnew;
}

void xl_cell_step_cols(const xl_cell *cs, const xl_cell_gates *g, const float *q, const float *k, const float *v, float *C, float *h,
                       int d0, int d1) {
  xl_cell_state_cols(cs->DK, cs->DV, g->fa, g->ia, g->qscale, q, k, v, C, h, d0, d1);
  for (int d = d0; d < d1; d++) h[d] /= g->den;
}

void xl_cell_step(const xl_cell *cs, const float *q, const float *k, const float *v, float ig, float fg, float *C, float *n,
                  float *m, float *h) {
  xl_cell_gates g;
  xl_cell_step_gates(cs, q, k, ig, fg, n, m, &g);
  xl_cell_step_cols(cs, &g, q, k, v, C, h, 0, cs->DV);
}

size_t xl_cell_chunk_floats(const xl_cell *cs, int L) { return (size_t)2 * L + (size_t)L * L + (size_t)2 * L * cs->DK; }

/* b[t]: the cumulative log forget gate over the chunk */
static void chunk_logf(const float *fg, int gstride, int L, float *b) {
  float acc = 0;
  for (int t = 0; t < L; t++) { acc += logsigmoidf(fg[(size_t)t * gstride]); b[t] = acc; }
}

/* The chunk's outputs from the state entering it (C, n, m0); b given. scr: mt [L], S [L,L],
 * Qb [L,DK]. */
static void chunk_out(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh, const float *ig,
                      int gstride, int L, const float *b, const float *C, const float *n, float m0, float *h, float *scr) {
  int DK = cs->DK, DV = cs->DV;
  float *mt = scr, *S = mt + L, *Qb = S + (size_t)L * L;
  float scale = 1.0f / sqrtf((float)DK);
  float qscale = cs->key_scaled ? 1.0f : scale;
  /* S = decay-masked, stabilised q k^T / sqrt(DK); Qb = the queries that read the carried state */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, DK, scale, q, ldq, k, ldq, 0.0f, S, L);
  for (int t = 0; t < L; t++) {
    float mx = b[t] + m0;
    for (int s2 = 0; s2 <= t; s2++) mx = fmaxf(mx, b[t] - b[s2] + ig[(size_t)s2 * gstride]);
    mt[t] = mx;
    float *St = S + (size_t)t * L;
    for (int s2 = 0; s2 <= t; s2++) St[s2] *= expf(b[t] - b[s2] + ig[(size_t)s2 * gstride] - mx);
    for (int s2 = t + 1; s2 < L; s2++) St[s2] = 0.0f;
    float qs = expf(b[t] + m0 - mx) * qscale;
    for (int j = 0; j < DK; j++) Qb[(size_t)t * DK + j] = q[(size_t)t * ldq + j] * qs;
  }
  /* numerator: Qb C + S V */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, DV, DK, 1.0f, Qb, DK, C, DV, 0.0f, h, ldh);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, DV, L, 1.0f, S, L, v, ldv, 1.0f, h, ldh);
  for (int t = 0; t < L; t++) {
    float den = 0;
    for (int j = 0; j < DK; j++) den += Qb[(size_t)t * DK + j] * n[j];
    for (int s2 = 0; s2 <= t; s2++) den += S[(size_t)t * L + s2];
    float inv = 1.0f / (fmaxf(fabsf(den), expf(-mt[t])) + cs->eps);
    float *ht = h + (size_t)t * ldh;
    for (int d = 0; d < DV; d++) ht[d] *= inv;
  }
}

/* The state leaving the chunk; b given. Kw: [L, DK] scratch. */
static void chunk_state(const xl_cell *cs, const float *k, const float *v, int ldq, int ldv, const float *ig, int gstride, int L,
                        const float *b, float *C, float *n, float *m, float *Kw) {
  int DK = cs->DK, DV = cs->DV;
  float scale = 1.0f / sqrtf((float)DK), m0 = *m;
  float kscale = cs->key_scaled ? scale : 1.0f;
  float g = b[L - 1], mnew = g + m0;
  for (int t = 0; t < L; t++) mnew = fmaxf(mnew, g - b[t] + ig[(size_t)t * gstride]);
  float decay = expf(g + m0 - mnew);
  for (int j = 0; j < DK; j++) n[j] *= decay;
  for (int t = 0; t < L; t++) {
    float w = expf(g - b[t] + ig[(size_t)t * gstride] - mnew) * kscale;
    for (int j = 0; j < DK; j++) {
      Kw[(size_t)t * DK + j] = k[(size_t)t * ldq + j] * w;
      n[j] += Kw[(size_t)t * DK + j];
    }
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, DK, DV, L, 1.0f, Kw, DK, v, ldv, decay, C, DV);
  *m = mnew;
}

void xl_cell_chunk(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh,
                   const float *ig, const float *fg, int gstride, int L, float *C, float *n, float *m, float *h, float *scr) {
  float *b = scr, *rest = b + L, *Kw = rest + L + (size_t)L * L + (size_t)L * cs->DK;
  chunk_logf(fg, gstride, L, b);
  chunk_out(cs, q, k, v, ldq, ldv, ldh, ig, gstride, L, b, C, n, *m, h, rest);
  chunk_state(cs, k, v, ldq, ldv, ig, gstride, L, b, C, n, m, Kw);
}

void xl_cell_chunk_out(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh,
                       const float *ig, const float *fg, int gstride, int L, const float *C, const float *n, float m,
                       float *h, float *scr) {
  chunk_logf(fg, gstride, L, scr);
  chunk_out(cs, q, k, v, ldq, ldv, ldh, ig, gstride, L, scr, C, n, m, h, scr + L);
}

void xl_cell_chunk_state(const xl_cell *cs, const float *k, const float *v, int ldq, int ldv, const float *ig, const float *fg,
                         int gstride, int L, float *C, float *n, float *m, float *scr) {
  chunk_logf(fg, gstride, L, scr);
  chunk_state(cs, k, v, ldq, ldv, ig, gstride, L, scr, C, n, m, scr + L);
}
