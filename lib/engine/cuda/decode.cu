/* decode: one token through the recurrent form (docs/xlstm-math.md), six kernels per block,
 * the whole step captured once per session in a CUDA graph and replayed.
 *   1. RMSNorm + the six input projections (one matrix [q;k;v;o;ig;fg]) + biases
 *   2. the mLSTM cell step (gates, m, n, C update, partial numerators per row tile)
 *   3. numerator / denominator, per-head LayerNorm, sigmoid(o) gate (one block per head)
 *   4. out-projection + residual
 *   5. RMSNorm + up_gate/up (interleaved rows) + silu(gate) * up
 *   6. down-projection + residual
 * then RMSNorm + LM head + logit soft cap. Decode reads every weight once per token, so the
 * matrix-vector kernel is what counts: 16-byte weight loads, two rows per warp with four loads
 * each in flight, fp32 accumulation, the input vector in shared memory, a grid of a few
 * blocks per multiprocessor looping over row groups so that each block's prologue (a norm
 * over D, loaded with all its loads in flight at once) is paid a few times, not per 16 rows. */
#include "engine/cuda/internal.cuh"
#include <utility>

enum { PRO_PLAIN, PRO_RMS };
enum { EPI_STORE, EPI_RESID, EPI_SILU, EPI_CAP };
#define MV_WARPS 8
#define MV_ROWS 2       /* rows per warp */
#define PRO_REG 4       /* float4 per thread kept in registers by the prologue (D <= 4096) */

typedef struct {
  const void *W;
  int rows, cols;
  const float *src;         /* prologue input [cols] */
  const float *nw, *nb;     /* RMS: norm weight/bias */
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

/* Programmatic dependent launch (sm_90): a kernel lets the next one start early
 * (launch_dependents) and waits for the previous one's results only where it reads them
 * (wait). The next kernel's blocks fetch their first weights while this one drains. Without
 * the launch attribute both instructions do nothing. */
__device__ __forceinline__ void griddep_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void griddep_launch() { asm volatile("griddepcontrol.launch_dependents;"); }

/* Asks L2 for the 128-byte line holding p; no data dependence, so it may run before griddep_wait
 * (L2 is where the GPU's global memory is coherent: a line fetched early is never stale). */
__device__ __forceinline__ void prefetch_l2(const void *p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

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

/* ---- prologues: the input vector into shared memory ----
 * Loads are issued together (float4, unrolled into registers): one memory latency per block
 * instead of one per loop trip. cols % 4 == 0 takes that path; other widths go scalar. */

__device__ __forceinline__ float4 f4(const float *p, int i) { return reinterpret_cast<const float4 *>(p)[i]; }

__device__ void pro_rms(const mv_args &a, float *xs, float *red) {
  int n4 = a.cols >> 2, nt = blockDim.x;
  float ss = 0;
  if ((a.cols & 3) == 0 && n4 <= PRO_REG * nt) {
    float4 v[PRO_REG];
#pragma unroll
    for (int k = 0; k < PRO_REG; k++) {
      int i = threadIdx.x + k * nt;
      v[k] = i < n4 ? f4(a.src, i) : make_float4(0, 0, 0, 0);
      ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
    float r = rsqrtf(block_sum(ss, red) / a.cols + a.eps);
#pragma unroll
    for (int k = 0; k < PRO_REG; k++) {
      int i = threadIdx.x + k * nt;
      if (i >= n4) break;
      float4 w = f4(a.nw, i), b = a.nb ? f4(a.nb, i) : make_float4(0, 0, 0, 0);
      float y[4] = {v[k].x * r * w.x + b.x, v[k].y * r * w.y + b.y, v[k].z * r * w.z + b.z, v[k].w * r * w.w + b.w};
#pragma unroll
      for (int e = 0; e < 4; e++) xs[4 * i + e] = a.round ? bf16r(y[e]) : y[e];
    }
    return;
  }
  for (int i = threadIdx.x; i < a.cols; i += nt) { float v = a.src[i]; ss += v * v; }
  float r = rsqrtf(block_sum(ss, red) / a.cols + a.eps);
  for (int i = threadIdx.x; i < a.cols; i += nt) {
    float v = a.src[i] * r * a.nw[i] + (a.nb ? a.nb[i] : 0.0f);
    xs[i] = a.round ? bf16r(v) : v;
  }
}

__device__ void pro_plain(const mv_args &a, float *xs) {
  int n4 = a.cols >> 2, nt = blockDim.x;
  if ((a.cols & 3) == 0) {
    for (int base = 0; base < n4; base += 4 * nt) {
      float4 v[4];
#pragma unroll
      for (int k = 0; k < 4; k++) { int i = base + threadIdx.x + k * nt; v[k] = i < n4 ? f4(a.src, i) : make_float4(0, 0, 0, 0); }
#pragma unroll
      for (int k = 0; k < 4; k++) {
        int i = base + threadIdx.x + k * nt;
        if (i < n4) { xs[4 * i] = v[k].x; xs[4 * i + 1] = v[k].y; xs[4 * i + 2] = v[k].z; xs[4 * i + 3] = v[k].w; }
      }
    }
  } else {
    for (int i = threadIdx.x; i < a.cols; i += nt) xs[i] = a.src[i];
  }
  if (a.round) {
    __syncthreads();
    for (int i = threadIdx.x; i < a.cols; i += nt) xs[i] = bf16r(xs[i]);
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

template <int DT>
__device__ __forceinline__ void mv_fma(const uint4 &u, const float *x, float &acc) {
  float f[wv<DT>::N];
  wv<DT>::cvt(u, f);
#pragma unroll
  for (int e = 0; e < wv<DT>::N; e++) acc = fmaf(f[e], x[e], acc);
}

/* One warp's MV_ROWS rows from r0: dot products into acc. VEC: U 16-byte loads per row are
 * issued together each trip, the last trip's predicated (a row's length need not be a
 * multiple of 32 U vectors: no trailing loop that waits on one load at a time). pre: u
 * already holds the first trip's vectors. */
template <int DT, bool VEC, int U>
__device__ __forceinline__ void mv_rows(const mv_args &a, const float *xs, int r0, int lane, uint4 (&u)[MV_ROWS][U],
                                        bool pre, float (&acc)[MV_ROWS]) {
  const int N = wv<DT>::N;
  size_t rb = (size_t)a.cols * xlc_esize(DT);
#pragma unroll
  for (int k = 0; k < MV_ROWS; k++) acc[k] = 0;
  if (VEC) {
    int nv = a.cols / N;
    const uint4 *wr[MV_ROWS];
#pragma unroll
    for (int k = 0; k < MV_ROWS; k++) wr[k] = (const uint4 *)((const char *)a.W + (size_t)min(r0 + k, a.rows - 1) * rb);
    for (int j = lane; j < nv; j += 32 * U) {
      if (!pre)
#pragma unroll
        for (int k = 0; k < MV_ROWS; k++)
#pragma unroll
          for (int q = 0; q < U; q++) u[k][q] = j + 32 * q < nv ? __ldg(wr[k] + j + 32 * q) : make_uint4(0, 0, 0, 0);
      pre = false;
#pragma unroll
      for (int q = 0; q < U; q++)
        if (j + 32 * q < nv)
#pragma unroll
          for (int k = 0; k < MV_ROWS; k++) mv_fma<DT>(u[k][q], xs + (size_t)(j + 32 * q) * N, acc[k]);
    }
  } else {
#pragma unroll
    for (int k = 0; k < MV_ROWS; k++) {
      int r = min(r0 + k, a.rows - 1);
      for (int j = lane; j < a.cols; j += 32) acc[k] = fmaf(wv<DT>::one(a.W, (size_t)r * a.cols + j), xs[j], acc[k]);
    }
  }
#pragma unroll
  for (int k = 0; k < MV_ROWS; k++) acc[k] = warp_sum(acc[k]);
}

/* y = epilogue(W . prologue(src)). Warps take groups of MV_ROWS rows in turn over the whole
 * grid. VEC: 16-byte loads (cols * esize a multiple of 16), else one element per lane per
 * step. A warp's first weights are loaded before waiting for the previous kernel: weights
 * never depend on it. U (loads per row per trip) and MINB (blocks per multiprocessor the
 * registers must allow) set how many bytes are in flight: the variants below. */
template <int DT, int PRO, int EPI, bool VEC, int U, int MINB>
__global__ void __launch_bounds__(MV_WARPS * 32, MINB) k_matvec(mv_args a) {
  extern __shared__ float xs[];
  __shared__ float red[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int groups = (a.rows + MV_ROWS - 1) / MV_ROWS, g = blockIdx.x * MV_WARPS + warp, stride = gridDim.x * MV_WARPS;
  uint4 u[MV_ROWS][U];
  bool pre = VEC && g < groups;
  if (pre) {
    size_t rb = (size_t)a.cols * xlc_esize(DT);
    int nv = a.cols / wv<DT>::N;
#pragma unroll
    for (int k = 0; k < MV_ROWS; k++) {
      const uint4 *w = (const uint4 *)((const char *)a.W + (size_t)min(g * MV_ROWS + k, a.rows - 1) * rb);
#pragma unroll
      for (int q = 0; q < U; q++) u[k][q] = lane + 32 * q < nv ? __ldg(w + lane + 32 * q) : make_uint4(0, 0, 0, 0);
    }
  }
  griddep_launch();
  griddep_wait();
  if (PRO == PRO_RMS) pro_rms(a, xs, red);
  else pro_plain(a, xs);
  __syncthreads();
  for (; g < groups; g += stride) {
    int r0 = g * MV_ROWS;
    float acc[MV_ROWS];
    mv_rows<DT, VEC, U>(a, xs, r0, lane, u, pre, acc);
    pre = false;
    if (lane == 0) {
      if (EPI == EPI_SILU) epi<EPI>(a, r0, acc[0], acc[1]);   /* rows come in (gate, up) pairs */
      else
#pragma unroll
        for (int k = 0; k < MV_ROWS; k++)
          if (r0 + k < a.rows) epi<EPI>(a, r0 + k, acc[k], 0.0f);
    }
  }
  if (EPI == EPI_CAP && a.flip && blockIdx.x == 0 && threadIdx.x == 0) *a.flip ^= 1;
}

/* A launch with the programmatic-dependency attribute when pdl is set. */
template <typename... P, typename... A>
static cudaError_t launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t st, int pdl, A &&...args) {
  cudaLaunchConfig_t cfg = {};
  cudaLaunchAttribute at[1];
  at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = st;
  cfg.attrs = at;
  cfg.numAttrs = pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, k, std::forward<A>(args)...);
}

static int g_sms = 0;   /* multiprocessors of the device (read at prepare; one device kind per process) */

/* The matrix-vector variants, numbered from 1 (U loads per row per trip, blocks per SM the
 * registers must allow): 1 (4, 1): the first version, 80 registers, 3 blocks; 2 (4, 4): 64
 * registers, 4 blocks; 3 (8, 2): twice the loads per trip, ~104 registers, 2 blocks; 4 (2, 5):
 * more warps, fewer loads each; 5 (16, 1): a 4096-wide row pair in one trip, 1 block; 6 (12, 2).
 * Bytes in flight per SM are about blocks x 8 warps x 2 rows x U x 512 (32 lanes x 16 bytes).
 * Measured on the 7B preset, one H200, decode after 128 tokens (bench_cuda --mv-tune):
 * 1: 231.9 tok/s, 2: 211.0, 3: 256.5, 4: 202.5. Fewer blocks than fit and L2 prefetches before
 * the dependency wait were slower still (189-219). Every variant gives the same bits: each
 * lane adds its columns in the same order. */
#define MV_NVAR 7   /* ids 1..6 */
template <int DT, int PRO, int EPI, bool VEC>
static void (*mv_kernel(int var))(mv_args) {
  switch (var) {
  case 2: return k_matvec<DT, PRO, EPI, VEC, 4, 4>;
  case 3: return k_matvec<DT, PRO, EPI, VEC, 8, 2>;
  case 4: return k_matvec<DT, PRO, EPI, VEC, 2, 5>;
  case 5: return k_matvec<DT, PRO, EPI, VEC, 16, 1>;
  case 6: return k_matvec<DT, PRO, EPI, VEC, 12, 2>;
  default: return k_matvec<DT, PRO, EPI, VEC, 4, 1>;
  }
}

template <int DT, int PRO, int EPI>
static int mv_launch_dt(const mv_args &a, cudaStream_t st, int setup, int pdl, int var) {
  /* resident blocks per multiprocessor of each variant: read at setup, before any capture */
  static int per_sm[MV_NVAR][2];
  size_t smem = (size_t)a.cols * 4;
  bool vec = (a.cols * xlc_esize(DT)) % 16 == 0 && ((uintptr_t)a.W & 15) == 0;
  int groups = (a.rows + MV_ROWS - 1) / MV_ROWS, grid = (groups + MV_WARPS - 1) / MV_WARPS;
  if (!vec) var = 1;   /* the element-wise path has nothing in flight to tune */
  void (*k)(mv_args) = vec ? mv_kernel<DT, PRO, EPI, true>(var) : mv_kernel<DT, PRO, EPI, false>(var);
  if (setup) {
    CU(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CU(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm[var][vec], k, MV_WARPS * 32, smem));
    return 0;
  }
  int fit = per_sm[var][vec] > 0 ? per_sm[var][vec] : 1;
  if (grid > g_sms * fit) {
    /* as many blocks as fit, each looping over row groups; then the fewest blocks that take
     * the same number of rounds, so that every warp does as many groups (no thin last round) */
    int rounds = (groups + g_sms * fit * MV_WARPS - 1) / (g_sms * fit * MV_WARPS);
    grid = (groups + rounds * MV_WARPS - 1) / (rounds * MV_WARPS);
  }
  CU(launch(k, dim3(grid), dim3(MV_WARPS * 32), smem, st, pdl, a));
  return 0;
}

/* setup = 1 raises the kernel's shared-memory limit instead of launching (before capture). */
template <int PRO, int EPI>
static int mv_launch(const xl_cuda_session *s, const xlc_mat *w, mv_args a, int setup) {
  a.W = w->data;
  a.rows = w->rows;
  a.cols = w->cols;
  int var = s->mv_variant >= 1 && s->mv_variant < MV_NVAR ? s->mv_variant : 1;
  if (w->dtype == ST_BF16) return mv_launch_dt<ST_BF16, PRO, EPI>(a, s->st, setup, s->pdl, var);
  if (w->dtype == ST_F16) return mv_launch_dt<ST_F16, PRO, EPI>(a, s->st, setup, s->pdl, var);
  return mv_launch_dt<ST_F32, PRO, EPI>(a, s->st, setup, s->pdl, var);
}

/* ---- the cell step: one block per (head, 128 value channels, DK/CS_RT key rows) ----
 * C is 512 KB per head: the update is a stream over it, so a thread takes a float4 of
 * channels on CS_RPT rows, all loaded before any is written back (so the loads are in flight
 * together). Every block recomputes the head's gates, m and n (a few hundred floats) rather
 * than wait for another; it reads n and m from copy `par`, and block (h, 0, 0) writes the new
 * ones into the other copy and the denominator, so no block reads what another writes. Each
 * row tile leaves a partial numerator (qs . C' over its rows) in hpart[tile]. */
#define CS_COLS 128   /* value channels per block: 32 lanes x float4 */
#define CS_GROUPS 8   /* warps */
#define CS_RT 8       /* row tiles over DK */
#define CS_RPT 4      /* rows per thread (DK <= CS_RT * CS_GROUPS * CS_RPT = 256 in one pass) */

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
  extern __shared__ float sm[];   /* qs [DK], ks [DK], ns [DK] */
  __shared__ float red[32], sc[3];
  __shared__ float4 part[CS_GROUPS][32];
  int hd = blockIdx.x, tid = threadIdx.x, DK = a.DK, DV = a.DV;
  bool lead = blockIdx.y == 0 && blockIdx.z == 0;
  int lane = tid & 31, grp = tid >> 5, d = blockIdx.y * CS_COLS + lane * 4;
  int rows = (DK + CS_RT - 1) / CS_RT, j0 = blockIdx.z * rows, j1 = min(DK, j0 + rows);
  float *Cp = a.C + (size_t)hd * DK * DV + d;
  /* the block's tile of C into L2 while the input projection runs (a line per 8 lanes) */
  if (d < DV && (lane & 7) == 0)
    for (int j = j0 + grp; j < j1; j += CS_GROUPS) prefetch_l2(Cp + (size_t)j * DV);
  griddep_launch();
  griddep_wait();
  /* C rows first: their loads are in flight while the gates and n are worked out */
  float4 c[CS_RPT];
  bool one_pass = j0 + grp + CS_GROUPS * CS_RPT >= j1;   /* DK <= 256: every row of the tile in these registers */
  if (d < DV && one_pass)
#pragma unroll
    for (int r = 0; r < CS_RPT; r++) {
      int j = j0 + grp + r * CS_GROUPS;
      if (j < j1) c[r] = *(const float4 *)(Cp + (size_t)j * DV);
    }
  int par = *a.par;
  const float *nold = (par ? a.n1 : a.n0) + (size_t)hd * DK, *mold = par ? a.m1 : a.m0;
  float *nnew = (par ? a.n0 : a.n1) + (size_t)hd * DK, *mnew = par ? a.m0 : a.m1;
  float scale = rsqrtf((float)DK);
  float *qs = sm, *ks = sm + DK, *ns = sm + 2 * DK;
  const float *q = a.p + (size_t)hd * DK, *k = a.p + a.QK + (size_t)hd * DK, *v = a.p + 2 * a.QK + (size_t)hd * DV;
  for (int j = tid; j < DK; j += blockDim.x) { qs[j] = q[j] * scale; ks[j] = k[j]; ns[j] = nold[j]; }
  if (tid == blockDim.x - 1) {   /* the last thread: the first ones' loads above go out first */
    float ig = softcap(a.p[a.off_ig + hd], a.gcap), fg = softcap(a.p[a.off_fg + hd], a.gcap);
    float lf = logsig(fg), m = mold[hd], mn = fmaxf(lf + m, ig);
    sc[0] = expf(lf + m - mn);   /* decay of the old state */
    sc[1] = expf(ig - mn);       /* weight of the new key/value */
    sc[2] = mn;
    if (lead) mnew[hd] = mn;
  }
  __syncthreads();
  float fa = sc[0], ia = sc[1], mn = sc[2], qn = 0;
  for (int j = tid; j < DK; j += blockDim.x) {
    float kj = ks[j], qj = qs[j], nj = fa * ns[j] + ia * kj;
    ks[j] = ia * kj;
    qn += qj * nj;
    if (lead) nnew[j] = nj;
  }
  float qnt = block_sum(qn, red);   /* also a barrier: ks is scaled */
  if (lead && tid == 0) a.den[hd] = fmaxf(fabsf(qnt), expf(-mn)) + a.eps;
  float4 acc = make_float4(0, 0, 0, 0);
  if (d < DV) {
    float4 vd = *(const float4 *)(v + d);
    for (int jb = j0 + grp; jb < j1; jb += CS_GROUPS * CS_RPT) {
      if (!one_pass)
#pragma unroll
        for (int r = 0; r < CS_RPT; r++) {
          int j = jb + r * CS_GROUPS;
          if (j < j1) c[r] = *(const float4 *)(Cp + (size_t)j * DV);
        }
#pragma unroll
      for (int r = 0; r < CS_RPT; r++) {
        int j = jb + r * CS_GROUPS;
        if (j >= j1) break;
        float kj = ks[j], qj = qs[j];
        c[r].x = fa * c[r].x + kj * vd.x; c[r].y = fa * c[r].y + kj * vd.y;
        c[r].z = fa * c[r].z + kj * vd.z; c[r].w = fa * c[r].w + kj * vd.w;
        *(float4 *)(Cp + (size_t)j * DV) = c[r];
        acc.x += qj * c[r].x; acc.y += qj * c[r].y; acc.z += qj * c[r].z; acc.w += qj * c[r].w;
      }
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

/* ---- the cell's output, one block per head: h~ = (sum of the row tiles' partial
 * numerators) / denominator, LayerNorm over DV (two passes, biased variance), the channel
 * weight, sigmoid(o); the out-projection's input, rounded in bf16 mode. ---- */
__global__ void k_head_norm(const float *hpart, const float *den, const float *o, const float *w, const float *b, int DV, int VD,
                            float eps, int round, float *out) {
  extern __shared__ float hs[];   /* [DV] */
  __shared__ float red[32];
  int hd = blockIdx.x;
  griddep_launch();
  griddep_wait();
  float inv = 1.0f / den[hd], s = 0;
  for (int i = threadIdx.x; i < DV; i += blockDim.x) {
    float t = 0;
#pragma unroll
    for (int r = 0; r < CS_RT; r++) t += hpart[(size_t)r * VD + hd * DV + i];
    hs[i] = t * inv;
    s += hs[i];
  }
  float mu = block_sum(s, red) / DV, v = 0;
  for (int i = threadIdx.x; i < DV; i += blockDim.x) { float e = hs[i] - mu; v += e * e; }
  float r = rsqrtf(block_sum(v, red) / DV + eps);
  for (int i = threadIdx.x; i < DV; i += blockDim.x) {
    int c = hd * DV + i;
    float y = ((hs[i] - mu) * r * w[c] + (b ? b[c] : 0.0f)) * sigm(o[c]);
    out[c] = round ? bf16r(y) : y;
  }
}

/* ---- embedding row ---- */

__global__ void k_embed_one(const void *E, int dt, int D, int V, const int *tok, float *x) {
  griddep_launch();
  griddep_wait();
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
  if (m->add_out_norm) return mv_launch<PRO_RMS, EPI_CAP>(s, &m->lmhead, a, setup);
  return mv_launch<PRO_PLAIN, EPI_CAP>(s, &m->lmhead, a, setup);
}

int xlc_final_logits(xl_cuda_session *s, const float *x) { return final_logits(s, x, 0, 0); }

static int block_step(xl_cuda_session *s, int l, int setup) {
  const xl_cuda_model *m = s->cm;
  const xlc_block *B = &m->blocks[l];
  cudaStream_t st = s->st;
  int pdl = s->pdl;
  mv_args a = rms_args(s->x, B->norm1_w, B->norm1_b, m->norm_eps, s->bf16);
  a.y = s->p;
  a.bias = B->b_in;
  TRY(mv_launch<PRO_RMS, EPI_STORE>(s, &B->win, a, setup));
  if (!setup) {
    xlc_mark(s, XLC_PH_D_IN);
    size_t NH = m->NH;
    cs_args c = {s->p, s->C + (size_t)l * NH * m->DK * m->DV, s->nbuf[0] + (size_t)l * NH * m->DK, s->nbuf[1] + (size_t)l * NH * m->DK,
                 s->mbuf[0] + (size_t)l * NH, s->mbuf[1] + (size_t)l * NH, s->d_par, s->h, s->den, m->NH, m->DK, m->DV, m->QK,
                 m->VD, xlc_off_ig(m), xlc_off_fg(m), m->gcap, m->eps};
    dim3 grid(m->NH, (m->DV + CS_COLS - 1) / CS_COLS, CS_RT);
    CU(launch(k_cell_step, grid, dim3(32 * CS_GROUPS), (size_t)3 * m->DK * 4, st, pdl, c));
    /* a thread per channel (up to 1024): the partial numerators are read at once, not in turns */
    int hn_threads = m->DV < 1024 ? (m->DV + 31) / 32 * 32 : 1024;
    CU(launch(k_head_norm, dim3(m->NH), dim3(hn_threads), (size_t)m->DV * 4, st, pdl, (const float *)s->h, (const float *)s->den,
              (const float *)(s->p + xlc_off_o(m)), (const float *)B->mh_w, (const float *)B->mh_b, m->DV, m->VD, m->norm_eps,
              s->bf16, s->xh));
    xlc_mark(s, XLC_PH_D_CELL);
  }
  mv_args o = {};
  o.src = s->xh; o.y = s->x; o.bias = B->out_b;
  TRY(mv_launch<PRO_PLAIN, EPI_RESID>(s, &B->wout, o, setup));
  if (!setup) xlc_mark(s, XLC_PH_D_OUT);
  mv_args u = rms_args(s->x, B->norm2_w, B->norm2_b, m->norm_eps, s->bf16);
  u.y = s->act;
  u.bias = B->b_up;
  TRY(mv_launch<PRO_RMS, EPI_SILU>(s, &B->wup, u, setup));
  if (!setup) xlc_mark(s, XLC_PH_D_UP);
  mv_args dn = {};
  dn.src = s->act; dn.y = s->x; dn.bias = B->down_b;
  TRY(mv_launch<PRO_PLAIN, EPI_RESID>(s, &B->wdown, dn, setup));
  if (!setup) xlc_mark(s, XLC_PH_D_DOWN);
  return 0;
}

/* The whole step on s->st (captured into the graph): embedding row of *d_token, blocks, logits. */
static int step_kernels(xl_cuda_session *s, int setup) {
  const xl_cuda_model *m = s->cm;
  if (!setup) {
    xlc_mark(s, XLC_PH_START);
    CU(launch(k_embed_one, dim3((m->D + 255) / 256), dim3(256), 0, s->st, s->pdl, (const void *)m->embed.data, m->embed.dtype, m->D,
              m->V, (const int *)s->d_token, s->x));
    xlc_mark(s, XLC_PH_EMBED);
  }
  for (int l = 0; l < m->L; l++) TRY(block_step(s, l, setup));
  TRY(final_logits(s, s->x, 1, setup));
  if (!setup) xlc_mark(s, XLC_PH_D_LOGITS);
  return 0;
}

int xlc_decode_rt(void) { return CS_RT; }

int xlc_decode_prepare(xl_cuda_session *s) {
  const xl_cuda_model *m = s->cm;
  if (m->DK * 12 > 48 * 1024 || m->DV * 4 > 48 * 1024) return xlc_fail("head dimensions %d/%d too large for the step kernels", m->DK, m->DV);
  if (m->F % 2) return xlc_fail("the FFN kernels need an even FFN width (it is %d)", m->F);
  if (m->DV % 4 || m->DK % 4) return xlc_fail("the cell kernels need head dimensions divisible by 4 (DK %d, DV %d)", m->DK, m->DV);
  CU(cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, m->device));
  s->pdl = 1;
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
  if (s->prof_on) return step_kernels(s, 0);   /* eagerly, timed phase by phase */
  if (!s->gexec && capture(s)) {
    /* a driver that cannot capture programmatic launches: plain launches then */
    xlc_graph_free(s);
    cudaGetLastError();
    s->pdl = 0;
    TRY(capture(s));
  }
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
  TRY(xlc_prof_flush(s));
  if (logits) {
    CU(cudaMemcpyAsync(logits, s->logits, (size_t)m->V * 4, cudaMemcpyDeviceToHost, s->st));
    CU(cudaStreamSynchronize(s->st));
  }
  return 0;
}
