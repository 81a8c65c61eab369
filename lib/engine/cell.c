/* cell: the mLSTM cell's recurrent and chunkwise forms. See cell.h.
 * The scale factors are applied as multiplications by exactly 1.0f on the side that does
 * not carry 1/sqrt(DK), so each family gets the same bits as a cell written for it alone. */
#include "engine/cell.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

static inline float logsigmoidf(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }

void xl_cell_step(const xl_cell *cs, const float *q, const float *k, const float *v, float ig, float fg, float *C, float *n,
                  float *m, float *h) {
  int DK = cs->DK, DV = cs->DV;
  float scale = 1.0f / sqrtf((float)DK);
  float qscale = cs->key_scaled ? 1.0f : scale, kdiv = cs->key_scaled ? sqrtf((float)DK) : 1.0f;
  float a = logsigmoidf(fg), mnew = fmaxf(a + *m, ig);
  float fa = expf(a + *m - mnew), ia = expf(ig - mnew) / kdiv, qn = 0;
  for (int j = 0; j < DK; j++) {
    n[j] = fa * n[j] + ia * k[j];
    qn += q[j] * qscale * n[j];
  }
  memset(h, 0, sizeof(float) * DV);
  for (int j = 0; j < DK; j++) {
    float kj = ia * k[j], qj = q[j] * qscale, *Cj = C + (size_t)j * DV;
    for (int d = 0; d < DV; d++) {
      Cj[d] = fa * Cj[d] + kj * v[d];
      h[d] += qj * Cj[d];
    }
  }
  float den = fmaxf(fabsf(qn), expf(-mnew)) + cs->eps;
  for (int d = 0; d < DV; d++) h[d] /= den;
  *m = mnew;
}

size_t xl_cell_chunk_floats(const xl_cell *cs, int L) { return (size_t)2 * L + (size_t)L * L + (size_t)2 * L * cs->DK; }

void xl_cell_chunk(const xl_cell *cs, const float *q, const float *k, const float *v, int ldq, int ldv, int ldh,
                   const float *ig, const float *fg, int gstride, int L, float *C, float *n, float *m, float *h, float *scr) {
  int DK = cs->DK, DV = cs->DV;
  float *b = scr, *mt = b + L, *S = mt + L, *Qb = S + (size_t)L * L, *Kw = Qb + (size_t)L * DK;
  float scale = 1.0f / sqrtf((float)DK), m0 = *m;
  float qscale = cs->key_scaled ? 1.0f : scale, kscale = cs->key_scaled ? scale : 1.0f;
  float acc = 0;
  for (int t = 0; t < L; t++) { acc += logsigmoidf(fg[(size_t)t * gstride]); b[t] = acc; }
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
  /* the state leaving the chunk */
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
