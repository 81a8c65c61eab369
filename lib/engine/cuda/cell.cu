/* cell: the mLSTM cell of one layer over a prefill segment, chunkwise (docs/xlstm-math.md,
 * "Chunkwise-parallel prefill"), with the chunk states computed in parallel and then passed
 * along by a scan over chunks, in the manner of NX-AI's mlstm_kernels (own code):
 *   1. k_gates   per head: soft-capped gates, the within-chunk cumulative log forget gate b,
 *                each chunk's local stabiliser mloc, then the m chain over chunks (scalars)
 *   2. k_kweight Kw = k * exp(g - b_t + i_t - mloc): the keys as they enter a chunk's state,
 *      and k_nloc, their sum over each chunk (the chunk's local n)
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

/* 1. One block per (chunk, head): soft-capped gates, then b = the inclusive cumulative sum
 * of log forget gates within the chunk (each thread a run of positions, then a block scan
 * of the runs' sums), the chunk's total g, its local stabiliser mloc = max_t (g - b_t + i_t)
 * and the key weights; chunk 0 also records the layer's incoming m, where the scan starts. */
__global__ void k_gates(cell_args a) {
  __shared__ float run[1024];
  __shared__ float red[32];
  int c = blockIdx.x, h = blockIdx.y, nt = blockDim.x, tid = threadIdx.x;
  float *B = trow(a, T_B, h), *I = trow(a, T_I, h), *KW = trow(a, T_KW, h);
  float bi = a.bias[a.off_ig + h], bf = a.bias[a.off_fg + h];
  int t0 = c * a.ck, t1 = min(t0 + a.ck, a.T), per = (a.ck + nt - 1) / nt;
  int p0 = t0 + tid * per, p1 = min(p0 + per, t1);
  float acc = 0;
  for (int t = p0; t < p1; t++) {
    const float *row = a.P + (size_t)t * a.NIN;
    float ig = softcap(row[a.off_ig + h] + bi, a.gcap), fg = softcap(row[a.off_fg + h] + bf, a.gcap);
    acc += logsig(fg);
    B[t] = acc;
    I[t] = ig;
  }
  run[tid] = acc;
  __syncthreads();
  for (int o = 1; o < nt; o <<= 1) {   /* Hillis-Steele inclusive scan of the runs */
    float v = tid >= o ? run[tid - o] : 0.0f;
    __syncthreads();
    run[tid] += v;
    __syncthreads();
  }
  float before = tid ? run[tid - 1] : 0.0f, g = run[nt - 1], ml = -INFINITY;
  for (int t = p0; t < p1; t++) {
    B[t] += before;
    ml = fmaxf(ml, g - B[t] + I[t]);
  }
  for (int o = 16; o; o >>= 1) ml = fmaxf(ml, __shfl_xor_sync(0xffffffffu, ml, o));
  if ((tid & 31) == 0) red[tid >> 5] = ml;
  __syncthreads();
  ml = -INFINITY;
  for (int w = 0; w < (nt + 31) / 32; w++) ml = fmaxf(ml, red[w]);
  for (int t = p0; t < p1; t++) KW[t] = expf(g - B[t] + I[t] - ml);
  for (int t = max(p0, t1); t < min(p0 + per, t0 + a.ck); t++) { B[t] = 0; I[t] = 0; KW[t] = 0; }   /* padding: no weight */
  if (tid == 0) {
    crow(a, C_G)[c * a.NH + h] = g;
    crow(a, C_MLOC)[c * a.NH + h] = ml;
    if (c == 0) crow(a, C_MEN)[h] = a.m[h];
  }
}

/* 2. Kw[t, h*DK + j] = k[t, h*DK + j] * KW[h][t] (padding rows: 0); blockIdx.y = t. */
__global__ void k_kweight(cell_args a) {
  size_t t = blockIdx.y;
  for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < a.QK; col += gridDim.x * blockDim.x)
    a.Kw[t * a.QK + col] = a.P[t * a.NIN + a.QK + col] * trow(a, T_KW, col / a.DK)[t];
}

/* 2b. nloc[c, h] = sum over the chunk's rows of Kw (the chunk's local n), into Nst: a block
 * per (chunk, head), 64 threads across float4 columns x 4 across rows. */
__global__ void k_nloc(cell_args a) {
  __shared__ float4 part[4][64];
  int b = blockIdx.x, c = b / a.NH, h = b % a.NH, jt = threadIdx.x & 63, tg = threadIdx.x >> 6, n4 = a.DK >> 2;
  for (int jb = 0; jb < n4; jb += 64) {
    int j4 = jb + jt;
    float4 s = make_float4(0, 0, 0, 0);
    if (j4 < n4)
      for (int t = tg; t < a.ck; t += 4) {
        float4 k = *(const float4 *)(a.Kw + ((size_t)c * a.ck + t) * a.QK + h * a.DK + 4 * j4);
        s.x += k.x; s.y += k.y; s.z += k.z; s.w += k.w;
      }
    part[tg][jt] = s;
    __syncthreads();
    if (tg == 0 && j4 < n4) {
      for (int g = 1; g < 4; g++) { float4 u = part[g][jt]; s.x += u.x; s.y += u.y; s.z += u.z; s.w += u.w; }
      *(float4 *)(a.Nst + (size_t)b * a.DK + 4 * j4) = s;
    }
    __syncthreads();
  }
}

/* 4. The scan over chunks, one thread per float4 of C (then per element of n): the running
 * state s enters chunk c, is stored there in place of the chunk's local state, and moves on:
 * s <- s * exp(g + m - m') + local * exp(mloc - m'), m' = max(g + m, mloc). Every thread
 * follows the (scalar) m chain itself; the first thread of head h records m entering each
 * chunk and the layer's final m. Loads come SCAN_B chunks at a time, all in flight before
 * the dependent updates. blockIdx.y = head. */
#define SCAN_B 8
__device__ __forceinline__ void chain(const cell_args &a, int c, int h, float &m, float &dec, float &lw) {
  float g = crow(a, C_G)[c * a.NH + h], ml = crow(a, C_MLOC)[c * a.NH + h], mn = fmaxf(g + m, ml);
  dec = expf(g + m - mn);
  lw = expf(ml - mn);
  m = mn;
}

__global__ void k_scan(cell_args a, int cblocks) {
  int h = blockIdx.y, NH = a.NH;
  float m = crow(a, C_MEN)[h], dec, lw;
  bool lead = blockIdx.x == 0 && threadIdx.x == 0;
  if ((int)blockIdx.x < cblocks) {
    size_t sz = (size_t)a.DK * a.DV, e = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    bool act = e < sz;
    float4 *state = (float4 *)(a.C + (size_t)h * sz + e);
    float4 s = act ? *state : make_float4(0, 0, 0, 0);
    for (int c0 = 0; c0 < a.NC; c0 += SCAN_B) {
      float4 loc[SCAN_B];
#pragma unroll
      for (int k = 0; k < SCAN_B; k++)
        if (act && c0 + k < a.NC) loc[k] = *(const float4 *)(a.Cst + ((size_t)(c0 + k) * NH + h) * sz + e);
#pragma unroll
      for (int k = 0; k < SCAN_B; k++) {
        int c = c0 + k;
        if (c >= a.NC) break;
        if (lead && c > 0) crow(a, C_MEN)[c * NH + h] = m;
        chain(a, c, h, m, dec, lw);
        if (act) {
          *(float4 *)(a.Cst + ((size_t)c * NH + h) * sz + e) = s;
          s.x = s.x * dec + loc[k].x * lw; s.y = s.y * dec + loc[k].y * lw;
          s.z = s.z * dec + loc[k].z * lw; s.w = s.w * dec + loc[k].w * lw;
        }
      }
    }
    if (act) *state = s;
    if (lead) a.m[h] = m;
  } else {
    int j = (blockIdx.x - cblocks) * blockDim.x + threadIdx.x;
    if (j >= a.DK) return;
    float *state = a.n + (size_t)h * a.DK + j, s = *state;
    for (int c = 0; c < a.NC; c++) {
      size_t i = ((size_t)c * NH + h) * a.DK + j;
      float loc = a.Nst[i];
      chain(a, c, h, m, dec, lw);
      a.Nst[i] = s;
      s = s * dec + loc * lw;
    }
    *state = s;
  }
}

/* 6. One block per (chunk, head), a warp per row t: m_t exactly as the CPU forms it (the max
 * of b_t + m and the row's log decays), the masked decayed row of S and its sum, and the
 * scaled query row. */
__global__ void k_mask(cell_args a) {
  int b = blockIdx.x, c = b / a.NH, h = b % a.NH, lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  int r0 = blockIdx.y * 32, r1 = min(a.ck, r0 + 32);   /* this block's rows */
  const float *B = trow(a, T_B, h), *I = trow(a, T_I, h);
  float *Mt = trow(a, T_M, h), *Rs = trow(a, T_RS, h);
  float m0 = crow(a, C_MEN)[b];
  float *S = a.S + (size_t)b * a.ck * a.ck;
  for (int t = r0 + w; t < r1; t += nw) {
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

__device__ __forceinline__ float warp_sum_c(float v) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}


/* 8. A warp per (token, head), HO_WARPS heads of one token per block: h~ = num /
 * (max(|Qb.n + rowsum|, exp(-m_t)) + eps), staged in shared memory, then LayerNorm over DV
 * (two passes), the channel weight, and sigmoid(o). No block barriers: warps work alone. */
#define HO_WARPS 8
template <typename OutT>
__global__ void k_headout(cell_args a, const float *mh_w, const float *mh_b, OutT *out) {
  extern __shared__ float hsm[];   /* [HO_WARPS, DV] */
  int t = blockIdx.x, lane = threadIdx.x & 31, w = threadIdx.x >> 5, h = blockIdx.y * HO_WARPS + w, c = t / a.ck, DV = a.DV;
  if (h >= a.NH) return;
  float *hs = hsm + (size_t)w * DV;
  const float *qb = a.Qb + (size_t)t * a.QK + h * a.DK, *nv = a.Nst + ((size_t)c * a.NH + h) * a.DK;
  float d = 0;
  for (int j = lane; j < a.DK; j += 32) d += qb[j] * nv[j];
  float den = warp_sum_c(d) + trow(a, T_RS, h)[t];
  float inv = 1.0f / (fmaxf(fabsf(den), expf(-trow(a, T_M, h)[t])) + a.eps);
  const float4 *hv = (const float4 *)(a.H + (size_t)t * a.VD + h * DV);
  float s1 = 0;
  for (int i = lane; i < DV / 4; i += 32) {
    float4 x = hv[i];
    x.x *= inv; x.y *= inv; x.z *= inv; x.w *= inv;
    hs[4 * i] = x.x; hs[4 * i + 1] = x.y; hs[4 * i + 2] = x.z; hs[4 * i + 3] = x.w;
    s1 += (x.x + x.y) + (x.z + x.w);
  }
  float mu = warp_sum_c(s1) / DV, s2 = 0;
  __syncwarp();
  for (int i = lane; i < DV; i += 32) { float e = hs[i] - mu; s2 += e * e; }
  float r = rsqrtf(warp_sum_c(s2) / DV + a.norm_eps);
  const float *o = a.P + (size_t)t * a.NIN + a.off_o + h * DV;
  for (int i = lane; i < DV; i += 32) {
    int ch = h * DV + i;
    float y = (hs[i] - mu) * r * mh_w[ch] + (mh_b ? mh_b[ch] : 0.0f);
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
  k_gates<<<dim3(a.NC, a.NH), ck < 256 ? 32 * ((ck + 31) / 32) : 256, 0, st>>>(a);
  KCHECK();
  xlc_mark(s, XLC_PH_GATES);
  k_kweight<<<dim3((a.QK + 255) / 256, Tp), 256, 0, st>>>(a);
  KCHECK();
  k_nloc<<<nb, 256, 0, st>>>(a);
  KCHECK();
  xlc_mark(s, XLC_PH_KWEIGHT);
  /* Cloc [DK, DV] = Kw_c^T V_c */
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_T, DV, DK, ck, 1.0f, P_V, a.NIN, P_KW, a.QK, 0.0f, P_C, DV, nb));
  xlc_mark(s, XLC_PH_CLOC);
  int cblocks = (int)(((size_t)DK * DV / 4 + 255) / 256);
  k_scan<<<dim3(cblocks + (DK + 255) / 256, a.NH), 256, 0, st>>>(a, cblocks);
  KCHECK();
  xlc_mark(s, XLC_PH_SCAN);
  /* S [ck, ck] = Q_c K_c^T / sqrt(DK) (row t, column s) */
  TRY(bgemm(s, CUBLAS_OP_T, CUBLAS_OP_N, ck, ck, DK, a.scale, P_K, a.NIN, P_Q, a.NIN, 0.0f, P_S, ck, nb));
  xlc_mark(s, XLC_PH_S);
  k_mask<<<dim3(nb, (ck + 31) / 32), 256, 0, st>>>(a);
  KCHECK();
  xlc_mark(s, XLC_PH_MASK);
  /* H_c [ck, DV] = Qb_c C_enter + M V_c */
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_N, DV, ck, DK, 1.0f, P_C, DV, P_QB, a.QK, 0.0f, P_H, a.VD, nb));
  TRY(bgemm(s, CUBLAS_OP_N, CUBLAS_OP_N, DV, ck, ck, 1.0f, P_V, a.NIN, P_S, ck, 1.0f, P_H, a.VD, nb));
  xlc_mark(s, XLC_PH_NUM);
  int hw = a.NH < HO_WARPS ? a.NH : HO_WARPS;
  dim3 g(T, (a.NH + HO_WARPS - 1) / HO_WARPS);
  size_t hsm = (size_t)HO_WARPS * DV * 4;
  if (s->bf16) k_headout<<<g, 32 * hw, hsm, st>>>(a, m->blocks[l].mh_w, m->blocks[l].mh_b, (__nv_bfloat16 *)Aout);
  else k_headout<<<g, 32 * hw, hsm, st>>>(a, m->blocks[l].mh_w, m->blocks[l].mh_b, (float *)Aout);
  KCHECK();
  xlc_mark(s, XLC_PH_HEADOUT);
  return 0;
}
