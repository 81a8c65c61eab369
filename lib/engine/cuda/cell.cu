/* cell: the mLSTM cell of one layer over a prefill segment, chunkwise (docs/xlstm-math.md,
 * "Chunkwise-parallel prefill"), with the chunk states computed in parallel and then passed
 * along by a scan over chunks, in the manner of NX-AI's mlstm_kernels (own code):
 *   1. k_gates   per head: soft-capped gates, the within-chunk cumulative log forget gate b,
 *                each chunk's local stabiliser mloc, then the m chain over chunks (scalars)
 *   2. k_kweight Kw = k * exp(g - b_t + i_t - mloc): the keys as they enter a chunk's state
 *   3. GEMM      chunk-local states Cloc = Kw^T V, all (chunk, head) pairs in one batched call
 *   4. k_scan    C and n entering every chunk, in place over Cloc, and the layer's final state
 *   5. GEMM      S = Q K^T / sqrt(DK) per chunk
 *   6. k_mask    m_t, the decay mask M = S * exp(b_t - b_s + i_s - m_t), row sums, and the
 *                scaled queries Qb = q * exp(b_t + m - m_t) / sqrt(DK)
 *   7. GEMM      H = Qb C_enter + M V (two batched calls, the second accumulating)
 *   8. k_headout the denominator, per-head LayerNorm, sigmoid(o) gate -> next GEMM's input
 * Tensor layouts: Q, K, V, O, gates are columns of P [T, NIN]; chunk c of head h is batch
 * entry c*NH + h everywhere, so a segment's first NC*NH entries are exactly its chunks and
 * the pointer arrays never change. The GEMMs are fp32 data; their compute type is
 * CUBLAS_COMPUTE_32F_PEDANTIC in fp32 mode and TF32 tensor cores in bf16 mode. */
#include "engine/cuda/internal.cuh"

enum { T_B, T_I, T_M, T_KW, T_RS, T_NROWS };   /* rows of s->tok, each [NH, seg] */
enum { C_G, C_MLOC, C_MEN, C_DEC, C_LOCW };     /* rows of s->chk, each [ncmax*NH] */
enum { P_V, P_K, P_Q, P_KW, P_QB, P_C, P_S, P_H };   /* pointer arrays */

__device__ __forceinline__ float softcap(float x, float c) { return c > 0 ? c * tanhf(x / c) : x; }
__device__ __forceinline__ float logsig(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }
__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ void stv(float *p, float v) { *p = v; }
__device__ __forceinline__ void stv(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

typedef struct {
  const float *P;
  float *tok, *chk, *Kw, *Qb, *S, *Cst, *Nst, *H;
  float *C, *n, *m;          /* this layer's state: [NH, DK, DV], [NH, DK], [NH] */
  const float *bias;         /* b_in: the gates' biases at off_ig / off_fg */
  int T, ck, NC, NH, DK, DV, QK, VD, NIN, seg, off_ig, off_fg, off_v, off_o;
  float gcap, eps, norm_eps, scale;
} cell_args;

__device__ __forceinline__ float *trow(const cell_args &a, int r, int h) { return a.tok + ((size_t)r * a.NH + h) * a.seg; }
__device__ __forceinline__ float *crow(const cell_args &a, int r) { return a.chk + (size_t)r * a.NC * a.NH; }

/* 1. One block per head; a thread per chunk for the within-chunk sums, one thread for the
 * short chain over chunks. */
__global__ void k_gates(cell_args a) {
  int h = blockIdx.x;
  float *B = trow(a, T_B, h), *I = trow(a, T_I, h), *KW = trow(a, T_KW, h);
  float bi = a.bias[a.off_ig + h], bf = a.bias[a.off_fg + h];
  for (int c = threadIdx.x; c < a.NC; c += blockDim.x) {
    int t0 = c * a.ck, t1 = min(t0 + a.ck, a.T);
    float acc = 0;
    for (int t = t0; t < t1; t++) {
      const float *row = a.P + (size_t)t * a.NIN;
      float ig = softcap(row[a.off_ig + h] + bi, a.gcap), fg = softcap(row[a.off_fg + h] + bf, a.gcap);
      acc += logsig(fg);
      B[t] = acc;
      I[t] = ig;
    }
    float g = acc, mloc = -INFINITY;
    for (int t = t0; t < t1; t++) mloc = fmaxf(mloc, g - B[t] + I[t]);
    for (int t = t0; t < t1; t++) KW[t] = expf(g - B[t] + I[t] - mloc);
    for (int t = t1; t < t0 + a.ck; t++) { B[t] = 0; I[t] = 0; KW[t] = 0; }   /* padding: no weight */
    crow(a, C_G)[c * a.NH + h] = g;
    crow(a, C_MLOC)[c * a.NH + h] = mloc;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = a.m[h];
    for (int c = 0; c < a.NC; c++) {
      int e = c * a.NH + h;
      float g = crow(a, C_G)[e], ml = crow(a, C_MLOC)[e], mn = fmaxf(g + m, ml);
      crow(a, C_MEN)[e] = m;
      crow(a, C_DEC)[e] = expf(g + m - mn);
      crow(a, C_LOCW)[e] = expf(ml - mn);
      m = mn;
    }
    a.m[h] = m;
  }
}

/* 2. Kw[t, h*DK + j] = k[t, h*DK + j] * KW[h][t] (padding rows: 0). */
__global__ void k_kweight(cell_args a, long n) {
  for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
    long t = e / a.QK;
    int col = (int)(e - t * a.QK), h = col / a.DK;
    a.Kw[e] = a.P[(size_t)t * a.NIN + a.QK + col] * trow(a, T_KW, h)[t];
  }
}

/* 4. The scan over chunks, one thread per element of C (then of n): the running state s
 * enters chunk c, is stored there in place of the chunk's local state, and moves on:
 * s <- s * exp(g + m - m') + local * exp(mloc - m'). blockIdx.y = head. */
__global__ void k_scan(cell_args a, int cblocks) {
  int h = blockIdx.y, NH = a.NH;
  const float *dec = crow(a, C_DEC), *locw = crow(a, C_LOCW);
  if ((int)blockIdx.x < cblocks) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x, sz = (size_t)a.DK * a.DV;
    if (e >= sz) return;
    float *state = a.C + (size_t)h * sz + e, s = *state;
#pragma unroll 4
    for (int c = 0; c < a.NC; c++) {
      size_t i = ((size_t)c * NH + h) * sz + e;
      float loc = a.Cst[i];
      a.Cst[i] = s;
      s = s * dec[c * NH + h] + loc * locw[c * NH + h];
    }
    *state = s;
  } else {
    int j = (blockIdx.x - cblocks) * blockDim.x + threadIdx.x;
    if (j >= a.DK) return;
    float *state = a.n + (size_t)h * a.DK + j, s = *state;
    for (int c = 0; c < a.NC; c++) {
      float loc = 0;
      for (int t = c * a.ck; t < (c + 1) * a.ck; t++) loc += a.Kw[(size_t)t * a.QK + h * a.DK + j];
      a.Nst[((size_t)c * NH + h) * a.DK + j] = s;
      s = s * dec[c * NH + h] + loc * locw[c * NH + h];
    }
    *state = s;
  }
}

/* 6. One block per (chunk, head), a warp per row t: m_t exactly as the CPU forms it (the max
 * of b_t + m and the row's log decays), the masked decayed row of S and its sum, and the
 * scaled query row. */
__global__ void k_mask(cell_args a) {
  int b = blockIdx.x, c = b / a.NH, h = b % a.NH, lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  const float *B = trow(a, T_B, h), *I = trow(a, T_I, h);
  float *Mt = trow(a, T_M, h), *Rs = trow(a, T_RS, h);
  float m0 = crow(a, C_MEN)[b];
  float *S = a.S + (size_t)b * a.ck * a.ck;
  for (int t = w; t < a.ck; t += nw) {
    int ts = c * a.ck + t;
    float *St = S + (size_t)t * a.ck, *qb = a.Qb + (size_t)ts * a.QK + h * a.DK;
    if (ts >= a.T) {   /* padding row: nothing (its outputs are never read) */
      for (int s2 = lane; s2 < a.ck; s2 += 32) St[s2] = 0;
      for (int j = lane; j < a.DK; j += 32) qb[j] = 0;
      continue;
    }
    float bt = B[ts], mx = bt + m0;
    for (int s2 = lane; s2 <= t; s2 += 32) mx = fmaxf(mx, bt - B[c * a.ck + s2] + I[c * a.ck + s2]);
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0;
    for (int s2 = lane; s2 < a.ck; s2 += 32) {
      int ss = c * a.ck + s2;
      float v = s2 <= t && ss < a.T ? St[s2] * expf(bt - B[ss] + I[ss] - mx) : 0.0f;
      St[s2] = v;
      sum += v;
    }
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float qs = expf(bt + m0 - mx) * a.scale;
    const float *q = a.P + (size_t)ts * a.NIN + h * a.DK;
    for (int j = lane; j < a.DK; j += 32) qb[j] = q[j] * qs;
    if (lane == 0) { Mt[ts] = mx; Rs[ts] = sum; }
  }
}

__device__ float bsum(float v, float *red) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : 0.0f;
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* 8. One block per (token, head): h~ = num / (max(|Qb.n + rowsum|, exp(-m_t)) + eps), then
 * LayerNorm over DV (two passes), the channel weight, and sigmoid(o). */
template <typename OutT>
__global__ void k_headout(cell_args a, const float *mh_w, const float *mh_b, OutT *out) {
  __shared__ float red[32];
  int t = blockIdx.x, h = blockIdx.y, c = t / a.ck, DV = a.DV;
  const float *qb = a.Qb + (size_t)t * a.QK + h * a.DK, *nv = a.Nst + ((size_t)c * a.NH + h) * a.DK;
  float d = 0;
  for (int j = threadIdx.x; j < a.DK; j += blockDim.x) d += qb[j] * nv[j];
  float den = bsum(d, red) + trow(a, T_RS, h)[t];
  float inv = 1.0f / (fmaxf(fabsf(den), expf(-trow(a, T_M, h)[t])) + a.eps);
  const float *hv = a.H + (size_t)t * a.VD + h * DV;
  float s1 = 0;
  for (int i = threadIdx.x; i < DV; i += blockDim.x) s1 += hv[i] * inv;
  float mu = bsum(s1, red) / DV, s2 = 0;
  for (int i = threadIdx.x; i < DV; i += blockDim.x) { float e = hv[i] * inv - mu; s2 += e * e; }
  float r = rsqrtf(bsum(s2, red) / DV + a.norm_eps);
  const float *o = a.P + (size_t)t * a.NIN + a.off_o + h * DV;
  for (int i = threadIdx.x; i < DV; i += blockDim.x) {
    int ch = h * DV + i;
    float y = (hv[i] * inv - mu) * r * mh_w[ch] + (mh_b ? mh_b[ch] : 0.0f);
    stv(out + (size_t)t * a.VD + ch, y * sigm(o[i]));
  }
}

/* Pointer arrays for the batched GEMMs (entry c*NH + h), for the session's fixed buffers. */
__global__ void k_ptrs(const void **pp, int nch, const float *P, const float *Kw, const float *Qb, const float *Cst, const float *S,
                       const float *H, int NH, int ck, int NIN, int QK, int VD, int DK, int DV, int off_v) {
  int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= nch) return;
  size_t c = b / NH, h = b % NH, t0 = c * ck;
  pp[P_V * nch + b] = P + t0 * NIN + off_v + h * DV;
  pp[P_K * nch + b] = P + t0 * NIN + QK + h * DK;
  pp[P_Q * nch + b] = P + t0 * NIN + h * DK;
  pp[P_KW * nch + b] = Kw + t0 * QK + h * DK;
  pp[P_QB * nch + b] = Qb + t0 * QK + h * DK;
  pp[P_C * nch + b] = Cst + (size_t)b * DK * DV;
  pp[P_S * nch + b] = S + (size_t)b * ck * ck;
  pp[P_H * nch + b] = H + t0 * VD + h * DV;
}

int xlc_cell_ptrs(xl_cuda_session *s) {
  const xl_cuda_model *m = s->cm;
  int nch = s->ncmax * m->NH;
  k_ptrs<<<(nch + 127) / 128, 128, 0, s->st>>>(s->ptrs, nch, s->P, s->Kw, s->Qb, s->Cst, s->S, s->H, m->NH, s->ck, m->NIN, m->QK,
                                               m->VD, m->DK, m->DV, xlc_off_v(m));
  KCHECK();
  return 0;
}

/* One batched GEMM over the segment's nb (chunk, head) entries, fp32 data. */
static int bgemm(xl_cuda_session *s, cublasOperation_t ta, cublasOperation_t tb, int M, int N, int K, float alpha, int pa, int lda,
                 int pb, int ldb, float beta, int pc, int ldc, int nb) {
  int nch = s->ncmax * s->cm->NH;
  cublasComputeType_t ct = s->bf16 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC;
  CB(cublasGemmBatchedEx(s->blas, ta, tb, M, N, K, &alpha, s->ptrs + (size_t)pa * nch, CUDA_R_32F, lda,
                         s->ptrs + (size_t)pb * nch, CUDA_R_32F, ldb, &beta, (void *const *)(s->ptrs + (size_t)pc * nch),
                         CUDA_R_32F, ldc, nb, ct, CUBLAS_GEMM_DEFAULT));
  return 0;
}

static cell_args make_args(xl_cuda_session *s, int l, int T) {
  const xl_cuda_model *m = s->cm;
  size_t NH = m->NH;
  cell_args a;
  a.P = s->P; a.tok = s->tok; a.chk = s->chk; a.Kw = s->Kw; a.Qb = s->Qb; a.S = s->S; a.Cst = s->Cst; a.Nst = s->Nst; a.H = s->H;
  a.C = s->C + (size_t)l * NH * m->DK * m->DV;
  a.n = s->nbuf[s->par] + (size_t)l * NH * m->DK;
  a.m = s->mbuf[s->par] + (size_t)l * NH;
  a.bias = m->blocks[l].b_in;
  a.T = T; a.ck = s->ck; a.NC = (T + s->ck - 1) / s->ck; a.NH = m->NH; a.DK = m->DK; a.DV = m->DV; a.QK = m->QK; a.VD = m->VD;
  a.NIN = m->NIN; a.seg = s->seg; a.off_ig = xlc_off_ig(m); a.off_fg = xlc_off_fg(m); a.off_v = xlc_off_v(m); a.off_o = xlc_off_o(m);
  a.gcap = m->gcap; a.eps = m->eps; a.norm_eps = m->norm_eps; a.scale = 1.0f / sqrtf((float)m->DK);
  return a;
}

int xlc_cell_segment(xl_cuda_session *s, int l, int T, void *Aout) {
  const xl_cuda_model *m = s->cm;
  cell_args a = make_args(s, l, T);
  int nb = a.NC * a.NH, ck = a.ck, DK = a.DK, DV = a.DV, Tp = a.NC * ck;
  cudaStream_t st = s->st;
  k_gates<<<a.NH, 256, 0, st>>>(a);
  KCHECK();
  long nkw = (long)Tp * a.QK;
  k_kweight<<<(int)((nkw + 255) / 256 < 8192 ? (nkw + 255) / 256 : 8192), 256, 0, st>>>(a, nkw);
  KCHECK();
  /* Cloc [DK, DV] = Kw_c^T V_c */
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_T, DV, DK, ck, 1.0f, P_V, a.NIN, P_KW, a.QK, 0.0f, P_C, DV, nb));
  int cblocks = (int)(((size_t)DK * DV + 255) / 256);
  k_scan<<<dim3(cblocks + (DK + 255) / 256, a.NH), 256, 0, st>>>(a, cblocks);
  KCHECK();
  /* S [ck, ck] = Q_c K_c^T / sqrt(DK) (row t, column s) */
  TRY(bgemm(s, CUBLAS_OP_T, CUBLAS_OP_N, ck, ck, DK, a.scale, P_K, a.NIN, P_Q, a.NIN, 0.0f, P_S, ck, nb));
  k_mask<<<nb, 256, 0, st>>>(a);
  KCHECK();
  /* H_c [ck, DV] = Qb_c C_enter + M V_c */
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_N, DV, ck, DK, 1.0f, P_C, DV, P_QB, a.QK, 0.0f, P_H, a.VD, nb));
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_N, DV, ck, ck, 1.0f, P_V, a.NIN, P_S, ck, 1.0f, P_H, a.VD, nb));
  dim3 g(T, a.NH);
  if (s->bf16) k_headout<<<g, 128, 0, st>>>(a, m->blocks[l].mh_w, m->blocks[l].mh_b, (__nv_bfloat16 *)Aout);
  else k_headout<<<g, 128, 0, st>>>(a, m->blocks[l].mh_w, m->blocks[l].mh_b, (float *)Aout);
  KCHECK();
  return 0;
}
