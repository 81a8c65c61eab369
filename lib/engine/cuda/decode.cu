/* decode: one token through the recurrent form (docs/xlstm-math.md), as five kernels per
 * block, the whole step captured once per session in a CUDA graph and replayed.
 *   1. RMSNorm + the six input projections (one matrix [q;k;v;o;ig;fg]) + biases
 *   2. the mLSTM cell step per head (gates, m, n, C, h / denominator)
 *   3. per-head LayerNorm * sigmoid(o) + out-projection + residual
 *   4. RMSNorm + up_gate/up (interleaved rows) + silu(gate) * up
 *   5. down-projection + residual
 * then RMSNorm + LM head + logit soft cap. Decode reads every weight once per token, so the
 * matrix-vector kernel is what counts: 16-byte weight loads, two rows per warp with four loads
 * each in flight, fp32 accumulation, the input vector in shared memory. Each block recomputes
 * its small prologue (a norm over D) instead of a separate launch: a few KB from L2 against
 * tens of KB of weights per block. */
#include "engine/cuda/internal.cuh"

enum { PRO_PLAIN, PRO_RMS, PRO_HEAD };
enum { EPI_STORE, EPI_RESID, EPI_SILU, EPI_CAP };
#define MV_WARPS 8
#define MV_ROWS 2   /* rows per warp */
#define MV_UNROLL 4 /* 16-byte loads per row in flight */

typedef struct {
  const void *W;
  int rows, cols;
  /* prologue input: PLAIN/RMS read src[cols]; HEAD reads h = src, o = src2 */
  const float *src, *src2;
  const float *nw, *nb;     /* norm weight/bias */
  int nh, dv, nparts;       /* HEAD: heads, channels per head, partial numerators in src */
  const float *den;         /* HEAD: [nh] denominators */
  float eps;
  int round;                /* round the input vector to bf16 (--matmul bf16) */
  /* epilogue */
  float *y;
  const float *bias;
  float cap;
  int *flip;                /* EPI_CAP: parity to flip at the end of a step, or NULL */
} mv_args;

__device__ __forceinline__ float bf16r(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + __expf(-x)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* Sum over the block; red holds 32 floats; every thread gets the result. */
__device__ float block_sum(float v, float *red) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  float t = lane < nw ? red[lane] : 0.0f;
  return warp_sum(t);
}

/* ---- weight loads: 16 bytes -> 8 (bf16, f16) or 4 (f32) floats ---- */
template <int DT> struct wv;
template <> struct wv<ST_BF16> {
  enum { N = 8 };
  static __device__ __forceinline__ void cvt(uint4 u, float *f) {
    unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) { f[2 * i] = __uint_as_float(w[i] << 16); f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u); }
  }
  static __device__ __forceinline__ float one(const void *W, size_t i) {
    return __uint_as_float((unsigned)((const unsigned short *)W)[i] << 16);
  }
};
template <> struct wv<ST_F16> {
  enum { N = 8 };
  static __device__ __forceinline__ void cvt(uint4 u, float *f) {
    const __half2 *h = (const __half2 *)&u;
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 t = __half22float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
  }
  static __device__ __forceinline__ float one(const void *W, size_t i) { return __half2float(((const __half *)W)[i]); }
};
template <> struct wv<ST_F32> {
  enum { N = 4 };
  static __device__ __forceinline__ void cvt(uint4 u, float *f) {
    f[0] = __uint_as_float(u.x); f[1] = __uint_as_float(u.y); f[2] = __uint_as_float(u.z); f[3] = __uint_as_float(u.w);
  }
  static __device__ __forceinline__ float one(const void *W, size_t i) { return ((const float *)W)[i]; }
};

/* ---- prologues: the input vector into shared memory ---- */

__device__ void pro_rms(const mv_args &a, float *xs, float *red) {
  float ss = 0;
  for (int i = threadIdx.x; i < a.cols; i += blockDim.x) { float v = a.src[i]; ss += v * v; }
  float r = rsqrtf(block_sum(ss, red) / a.cols + a.eps);
  for (int i = threadIdx.x; i < a.cols; i += blockDim.x) {
    float v = a.src[i] * r * a.nw[i] + (a.nb ? a.nb[i] : 0.0f);
    xs[i] = a.round ? bf16r(v) : v;
  }
}

/* The cell's output h~ = (sum of the row tiles' partial numerators) / denominator, then
 * per-head LayerNorm (two passes, biased variance), the channel weight, and the output gate
 * sigmoid(o); one warp per head at a time, h~ staged in xs. */
__device__ void pro_head(const mv_args &a, float *xs) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5, VD = a.nh * a.dv;
  for (int hd = w; hd < a.nh; hd += nw) {
    float *h = xs + (size_t)hd * a.dv, inv = 1.0f / a.den[hd], s = 0;
    for (int i = lane; i < a.dv; i += 32) {
      float t = 0;
      for (int r = 0; r < a.nparts; r++) t += a.src[(size_t)r * VD + hd * a.dv + i];
      h[i] = t * inv;
      s += h[i];
    }
    float mu = warp_sum(s) / a.dv, v = 0;
    for (int i = lane; i < a.dv; i += 32) { float d = h[i] - mu; v += d * d; }
    float r = rsqrtf(warp_sum(v) / a.dv + a.eps);
    for (int i = lane; i < a.dv; i += 32) {
      int c = hd * a.dv + i;
      float y = ((h[i] - mu) * r * a.nw[c] + (a.nb ? a.nb[c] : 0.0f)) * sigm(a.src2[c]);
      xs[c] = a.round ? bf16r(y) : y;
    }
  }
}

/* ---- epilogue: row r's dot product is in acc (lane 0 of the warp) ---- */
template <int EPI>
__device__ __forceinline__ void epi(const mv_args &a, int r, float acc, float acc2) {
  if (EPI == EPI_STORE) a.y[r] = acc + (a.bias ? a.bias[r] : 0.0f);
  else if (EPI == EPI_RESID) a.y[r] += acc + (a.bias ? a.bias[r] : 0.0f);
  else if (EPI == EPI_CAP) a.y[r] = a.cap > 0 ? a.cap * tanhf(acc / a.cap) : acc;
  else {   /* EPI_SILU: rows r (gate) and r+1 (up) give act[r/2] */
    float g = acc + (a.bias ? a.bias[r] : 0.0f), u = acc2 + (a.bias ? a.bias[r + 1] : 0.0f);
    float v = g * sigm(g) * u;
    a.y[r >> 1] = a.round ? bf16r(v) : v;
  }
}

/* y = epilogue(W · prologue(src)); MV_ROWS rows per warp. VEC: 16-byte loads (cols * esize a
 * multiple of 16), else one element per lane per step. */
template <int DT, int PRO, int EPI, bool VEC>
__global__ void __launch_bounds__(MV_WARPS * 32) k_matvec(mv_args a) {
  extern __shared__ float xs[];
  __shared__ float red[32];
  if (PRO == PRO_RMS) pro_rms(a, xs, red);
  else if (PRO == PRO_HEAD) pro_head(a, xs);
  else for (int i = threadIdx.x; i < a.cols; i += blockDim.x) xs[i] = a.round ? bf16r(a.src[i]) : a.src[i];
  __syncthreads();
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int r0 = (blockIdx.x * MV_WARPS + warp) * MV_ROWS;
  if (r0 >= a.rows) return;
  const int N = wv<DT>::N;
  float acc[MV_ROWS] = {};
  const char *base = (const char *)a.W;
  size_t rb = (size_t)a.cols * xlc_esize(DT);
  if (VEC) {
    int nv = a.cols / N;   /* vectors per row */
    const uint4 *wr[MV_ROWS];
#pragma unroll
    for (int k = 0; k < MV_ROWS; k++) wr[k] = (const uint4 *)(base + (size_t)(r0 + k < a.rows ? r0 + k : r0) * rb);
    int j = lane;
    for (; j + 32 * (MV_UNROLL - 1) < nv; j += 32 * MV_UNROLL) {
      uint4 u[MV_ROWS][MV_UNROLL];
#pragma unroll
      for (int k = 0; k < MV_ROWS; k++)
#pragma unroll
        for (int q = 0; q < MV_UNROLL; q++) u[k][q] = __ldg(wr[k] + j + 32 * q);
#pragma unroll
      for (int q = 0; q < MV_UNROLL; q++) {
        const float *x = xs + (size_t)(j + 32 * q) * N;
#pragma unroll
        for (int k = 0; k < MV_ROWS; k++) {
          float f[N];
          wv<DT>::cvt(u[k][q], f);
#pragma unroll
          for (int e = 0; e < N; e++) acc[k] = fmaf(f[e], x[e], acc[k]);
        }
      }
    }
    for (; j < nv; j += 32) {
      const float *x = xs + (size_t)j * N;
#pragma unroll
      for (int k = 0; k < MV_ROWS; k++) {
        float f[N];
        wv<DT>::cvt(__ldg(wr[k] + j), f);
#pragma unroll
        for (int e = 0; e < N; e++) acc[k] = fmaf(f[e], x[e], acc[k]);
      }
    }
  } else {
#pragma unroll
    for (int k = 0; k < MV_ROWS; k++) {
      int r = r0 + k < a.rows ? r0 + k : r0;
      for (int j = lane; j < a.cols; j += 32) acc[k] = fmaf(wv<DT>::one(a.W, (size_t)r * a.cols + j), xs[j], acc[k]);
    }
  }
#pragma unroll
  for (int k = 0; k < MV_ROWS; k++) acc[k] = warp_sum(acc[k]);
  if (lane == 0) {
    if (EPI == EPI_SILU) epi<EPI>(a, r0, acc[0], acc[1]);   /* rows come in (gate, up) pairs */
    else
#pragma unroll
      for (int k = 0; k < MV_ROWS; k++)
        if (r0 + k < a.rows) epi<EPI>(a, r0 + k, acc[k], 0.0f);
  }
  if (EPI == EPI_CAP && a.flip && blockIdx.x == 0 && threadIdx.x == 0) *a.flip ^= 1;
}

template <int DT, int PRO, int EPI>
static int mv_launch_dt(const mv_args &a, cudaStream_t st, int setup) {
  size_t smem = (size_t)a.cols * 4;
  bool vec = (a.cols * xlc_esize(DT)) % 16 == 0 && ((uintptr_t)a.W & 15) == 0;
  int grid = (a.rows + MV_WARPS * MV_ROWS - 1) / (MV_WARPS * MV_ROWS);
  if (vec) {
    if (setup) { CU(cudaFuncSetAttribute(k_matvec<DT, PRO, EPI, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)); return 0; }
    k_matvec<DT, PRO, EPI, true><<<grid, MV_WARPS * 32, smem, st>>>(a);
  } else {
    if (setup) { CU(cudaFuncSetAttribute(k_matvec<DT, PRO, EPI, false>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)); return 0; }
    k_matvec<DT, PRO, EPI, false><<<grid, MV_WARPS * 32, smem, st>>>(a);
  }
  KCHECK();
  return 0;
}

/* setup = 1 raises the kernel's shared-memory limit instead of launching (before capture). */
template <int PRO, int EPI>
static int mv_launch(const xlc_mat *w, mv_args a, cudaStream_t st, int setup) {
  a.W = w->data;
  a.rows = w->rows;
  a.cols = w->cols;
  if (w->dtype == ST_BF16) return mv_launch_dt<ST_BF16, PRO, EPI>(a, st, setup);
  if (w->dtype == ST_F16) return mv_launch_dt<ST_F16, PRO, EPI>(a, st, setup);
  return mv_launch_dt<ST_F32, PRO, EPI>(a, st, setup);
}

/* ---- the cell step: one block per (head, 128 value channels, DK/CS_RT key rows) ----
 * C is 512 KB per head: the update is a stream over it, so blocks take float4 columns and
 * several rows each to keep enough bytes in flight. Every block recomputes the head's gates,
 * m and n (a few hundred floats) rather than wait for another; it reads n and m from copy
 * `par`, and block (h, 0, 0) writes the new ones into the other copy and the denominator,
 * so no block reads what another writes. Each row tile leaves a partial h (qs . C' over its
 * rows) in hpart[tile]; the out-projection's prologue adds the tiles and divides. */
#define CS_COLS 128   /* value channels per block: 32 lanes x float4 */
#define CS_GROUPS 8   /* warps, each a set of rows */
#define CS_RT 4       /* row tiles over DK */

typedef struct {
  const float *p;            /* [NIN] projections (biases added) */
  float *C;                  /* this layer's [NH, DK, DV] */
  float *n0, *n1, *m0, *m1;  /* this layer's n [NH, DK] and m [NH], both copies */
  const int *par;
  float *hpart;              /* [CS_RT, VD] partial numerators */
  float *den;                /* [NH] */
  int NH, DK, DV, QK, VD, off_ig, off_fg;
  float gcap, eps;
} cs_args;

__device__ __forceinline__ float softcap(float x, float c) { return c > 0 ? c * tanhf(x / c) : x; }
__device__ __forceinline__ float logsig(float x) { return x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x)); }

__global__ void __launch_bounds__(32 * CS_GROUPS) k_cell_step(cs_args a) {
  extern __shared__ float sm[];   /* qs [DK], ks [DK] */
  __shared__ float red[32], sc[3];
  __shared__ float4 part[CS_GROUPS][32];
  int hd = blockIdx.x, tid = threadIdx.x, DK = a.DK, DV = a.DV;
  bool lead = blockIdx.y == 0 && blockIdx.z == 0;
  int par = *a.par;
  const float *nold = (par ? a.n1 : a.n0) + (size_t)hd * DK, *mold = par ? a.m1 : a.m0;
  float *nnew = (par ? a.n0 : a.n1) + (size_t)hd * DK, *mnew = par ? a.m0 : a.m1;
  if (tid == 0) {
    float ig = softcap(a.p[a.off_ig + hd], a.gcap), fg = softcap(a.p[a.off_fg + hd], a.gcap);
    float lf = logsig(fg), m = mold[hd], mn = fmaxf(lf + m, ig);
    sc[0] = expf(lf + m - mn);   /* decay of the old state */
    sc[1] = expf(ig - mn);       /* weight of the new key/value */
    sc[2] = mn;
    if (lead) mnew[hd] = mn;
  }
  __syncthreads();
  float fa = sc[0], ia = sc[1], mn = sc[2], scale = rsqrtf((float)DK), qn = 0;
  float *qs = sm, *ks = sm + DK;
  const float *q = a.p + (size_t)hd * DK, *k = a.p + a.QK + (size_t)hd * DK, *v = a.p + 2 * a.QK + (size_t)hd * DV;
  for (int j = tid; j < DK; j += blockDim.x) {
    float kj = k[j], qj = q[j] * scale, nj = fa * nold[j] + ia * kj;
    qs[j] = qj;
    ks[j] = ia * kj;
    qn += qj * nj;
    if (lead) nnew[j] = nj;
  }
  float qnt = block_sum(qn, red);   /* also a barrier: qs/ks are ready */
  if (lead && tid == 0) a.den[hd] = fmaxf(fabsf(qnt), expf(-mn)) + a.eps;
  int lane = tid & 31, grp = tid >> 5, d = blockIdx.y * CS_COLS + lane * 4;
  int rows = (DK + CS_RT - 1) / CS_RT, j0 = blockIdx.z * rows, j1 = min(DK, j0 + rows);
  float4 acc = make_float4(0, 0, 0, 0);
  if (d < DV) {
    float4 vd = *(const float4 *)(v + d);
    float *Cp = a.C + (size_t)hd * DK * DV + d;
#pragma unroll 8
    for (int j = j0 + grp; j < j1; j += CS_GROUPS) {
      float4 c = *(float4 *)(Cp + (size_t)j * DV);
      float kj = ks[j], qj = qs[j];
      c.x = fa * c.x + kj * vd.x; c.y = fa * c.y + kj * vd.y; c.z = fa * c.z + kj * vd.z; c.w = fa * c.w + kj * vd.w;
      *(float4 *)(Cp + (size_t)j * DV) = c;
      acc.x += qj * c.x; acc.y += qj * c.y; acc.z += qj * c.z; acc.w += qj * c.w;
    }
  }
  part[grp][lane] = acc;
  __syncthreads();
  if (grp == 0 && d < DV) {
    float4 t = make_float4(0, 0, 0, 0);
#pragma unroll
    for (int g = 0; g < CS_GROUPS; g++) { float4 u = part[g][lane]; t.x += u.x; t.y += u.y; t.z += u.z; t.w += u.w; }
    *(float4 *)(a.hpart + (size_t)blockIdx.z * a.VD + (size_t)hd * DV + d) = t;
  }
}

/* ---- embedding row ---- */

__global__ void k_embed_one(const void *E, int dt, int D, int V, const int *tok, float *x) {
  int t = *tok;
  if (t < 0 || t >= V) t = 0;   /* the host checks ids; never read outside the table */
  size_t o = (size_t)t * D;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < D; i += gridDim.x * blockDim.x)
    x[i] = dt == ST_F32 ? ((const float *)E)[o + i]
         : dt == ST_BF16 ? __uint_as_float((unsigned)((const unsigned short *)E)[o + i] << 16)
                         : __half2float(((const __half *)E)[o + i]);
}

/* ---- the step ---- */

static mv_args rms_args(const float *x, const float *w, const float *b, float eps, int round) {
  mv_args a = {};
  a.src = x; a.nw = w; a.nb = b; a.eps = eps; a.round = round;
  return a;
}

/* The final norm + LM head + soft cap from residual row x into s->logits. */
static int final_logits(xl_cuda_session *s, const float *x, int flip, int setup) {
  const xl_cuda_model *m = s->cm;
  mv_args a = rms_args(x, m->out_norm_w, m->out_norm_b, m->norm_eps, s->bf16);
  a.y = s->logits;
  a.cap = m->lcap;
  a.flip = flip ? s->d_par : NULL;
  if (m->add_out_norm) return mv_launch<PRO_RMS, EPI_CAP>(&m->lmhead, a, s->st, setup);
  return mv_launch<PRO_PLAIN, EPI_CAP>(&m->lmhead, a, s->st, setup);
}

int xlc_final_logits(xl_cuda_session *s, const float *x) { return final_logits(s, x, 0, 0); }

static int block_step(xl_cuda_session *s, int l, int setup) {
  const xl_cuda_model *m = s->cm;
  const xlc_block *B = &m->blocks[l];
  cudaStream_t st = s->st;
  mv_args a = rms_args(s->x, B->norm1_w, B->norm1_b, m->norm_eps, s->bf16);
  a.y = s->p;
  a.bias = B->b_in;
  TRY(mv_launch<PRO_RMS, EPI_STORE>(&B->win, a, st, setup));
  if (!setup) {
    size_t NH = m->NH;
    cs_args c = {s->p, s->C + (size_t)l * NH * m->DK * m->DV, s->nbuf[0] + (size_t)l * NH * m->DK, s->nbuf[1] + (size_t)l * NH * m->DK,
                 s->mbuf[0] + (size_t)l * NH, s->mbuf[1] + (size_t)l * NH, s->d_par, s->h, s->den, m->NH, m->DK, m->DV, m->QK,
                 m->VD, xlc_off_ig(m), xlc_off_fg(m), m->gcap, m->eps};
    dim3 grid(m->NH, (m->DV + CS_COLS - 1) / CS_COLS, CS_RT);
    k_cell_step<<<grid, 32 * CS_GROUPS, (size_t)2 * m->DK * 4, st>>>(c);
    KCHECK();
  }
  mv_args o = {};
  o.src = s->h; o.src2 = s->p + xlc_off_o(m); o.nw = B->mh_w; o.nb = B->mh_b; o.nh = m->NH; o.dv = m->DV;
  o.nparts = CS_RT; o.den = s->den;
  o.eps = m->norm_eps; o.round = s->bf16; o.y = s->x; o.bias = B->out_b;
  TRY(mv_launch<PRO_HEAD, EPI_RESID>(&B->wout, o, st, setup));
  mv_args u = rms_args(s->x, B->norm2_w, B->norm2_b, m->norm_eps, s->bf16);
  u.y = s->act;
  u.bias = B->b_up;
  TRY(mv_launch<PRO_RMS, EPI_SILU>(&B->wup, u, st, setup));
  mv_args dn = {};
  dn.src = s->act; dn.y = s->x; dn.bias = B->down_b;
  TRY(mv_launch<PRO_PLAIN, EPI_RESID>(&B->wdown, dn, st, setup));
  return 0;
}

/* The whole step on s->st (captured into the graph): embedding row of *d_token, blocks, logits. */
static int step_kernels(xl_cuda_session *s, int setup) {
  const xl_cuda_model *m = s->cm;
  if (!setup) {
    k_embed_one<<<(m->D + 255) / 256, 256, 0, s->st>>>(m->embed.data, m->embed.dtype, m->D, m->V, s->d_token, s->x);
    KCHECK();
  }
  for (int l = 0; l < m->L; l++) TRY(block_step(s, l, setup));
  return final_logits(s, s->x, 1, setup);
}

int xlc_decode_rt(void) { return CS_RT; }

int xlc_decode_prepare(xl_cuda_session *s) {
  if (s->cm->DK * 8 > 48 * 1024) return xlc_fail("head dimension %d too large for the step kernel", s->cm->DK);
  if (s->cm->DV % 4) return xlc_fail("the step kernel needs a head value dimension divisible by 4 (it is %d)", s->cm->DV);
  return step_kernels(s, 1);
}

void xlc_graph_free(xl_cuda_session *s) {
  if (s->gexec) cudaGraphExecDestroy(s->gexec);
  if (s->graph) cudaGraphDestroy(s->graph);
  s->gexec = NULL;
  s->graph = NULL;
}

static int capture(xl_cuda_session *s) {
  CU(cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal));
  int rc = step_kernels(s, 0);
  cudaGraph_t g = NULL;
  cudaError_t e = cudaStreamEndCapture(s->st, &g);
  if (rc) { if (g) cudaGraphDestroy(g); return -1; }
  if (e != cudaSuccess) return xlc_fail("graph capture: %s", cudaGetErrorString(e));
  s->graph = g;
  CU(cudaGraphInstantiate(&s->gexec, g, 0));
  return 0;
}

int xlc_step_launch(xl_cuda_session *s) {
  if (!s->gexec) TRY(capture(s));
  CU(cudaGraphLaunch(s->gexec, s->st));
  return 0;
}

extern "C" int xl_cuda_step(xl_cuda_session *s, int token, float *logits) {
  const xl_cuda_model *m = s->cm;
  if (token < 0 || token >= m->V) return xlc_fail("token id %d outside the vocabulary (%d)", token, m->V);
  CU(cudaSetDevice(m->device));
  /* the id travels from one of two pinned words; before rewriting one, wait until the copy
   * that last read it has run (two steps back: in practice never a wait) */
  int k = (int)(s->tokens & 1);
  CU(cudaEventSynchronize(s->tokev[k]));
  s->h_token[k] = token;
  CU(cudaMemcpyAsync(s->d_token, &s->h_token[k], 4, cudaMemcpyHostToDevice, s->st));
  CU(cudaEventRecord(s->tokev[k], s->st));
  TRY(xlc_step_launch(s));
  s->par ^= 1;   /* the graph's last kernel flipped the device copy */
  s->tokens++;
  if (logits) {
    CU(cudaMemcpyAsync(logits, s->logits, (size_t)m->V * 4, cudaMemcpyDeviceToHost, s->st));
    CU(cudaStreamSynchronize(s->st));
  }
  return 0;
}
