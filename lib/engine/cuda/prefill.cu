/* prefill: a prompt through every block, segment by segment (docs/xlstm-math.md, the
 * chunkwise form). Per block: RMSNorm rows -> one GEMM for [q;k;v;o;ig;fg] -> the chunkwise
 * cell (cell.cu) -> out-projection GEMM accumulating into the residual (beta = 1) ->
 * RMSNorm rows -> one GEMM for the interleaved [up_gate;up] -> silu product -> down GEMM into
 * the residual. GEMM inputs are bf16 in bf16 mode (the rounding the CPU applies) on tensor
 * cores, fp32 in fp32 mode (CUBLAS_COMPUTE_32F_PEDANTIC: no TF32); outputs fp32. Weights of
 * another dtype than the GEMM's are converted in 64 MB slabs, never stored twice.
 * Only the last token's logits are computed, unless every position's are asked for. */
#include "engine/cuda/internal.cuh"

__device__ __forceinline__ void stv(float *p, float v) { *p = v; }
__device__ __forceinline__ void stv(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
/* two / four consecutive values in one store (p aligned to the pair / the four) */
__device__ __forceinline__ void stv2(float *p, float a, float b) { *(float2 *)p = make_float2(a, b); }
__device__ __forceinline__ void stv2(__nv_bfloat16 *p, float a, float b) { *(__nv_bfloat162 *)p = __floats2bfloat162_rn(a, b); }
__device__ __forceinline__ void stv4(float *p, float4 v) { *(float4 *)p = v; }
__device__ __forceinline__ void stv4(__nv_bfloat16 *p, float4 v) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 u;
  u.x = *(unsigned *)&lo;
  u.y = *(unsigned *)&hi;
  *(uint2 *)p = u;
}
__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + __expf(-x)); }

__device__ __forceinline__ float ldw(const void *W, int dt, size_t i) {
  return dt == ST_F32 ? ((const float *)W)[i]
       : dt == ST_BF16 ? __uint_as_float((unsigned)((const unsigned short *)W)[i] << 16)
                       : __half2float(((const __half *)W)[i]);
}

__device__ float blk_sum(float v, float *red) {
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : 0.0f;
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void k_embed_rows(const void *E, int dt, int D, int V, const int32_t *ids, float *X) {
  int t = blockIdx.x, id = ids[t];
  if (id < 0 || id >= V) id = 0;   /* checked on the host */
  for (int i = threadIdx.x; i < D; i += blockDim.x) X[(size_t)t * D + i] = ldw(E, dt, (size_t)id * D + i);
}

/* A[t] = RMSNorm(X[t]) * w + b (norm = 0: a plain copy), in the GEMM input type. With
 * D % 4 == 0 and D <= 16 * blockDim, the row stays in registers (float4): one read of X,
 * and w, b and A move four values per access. */
#define RN_REG 4
template <typename OutT>
__global__ void k_rmsnorm_rows(const float *X, int D, const float *w, const float *b, float eps, int norm, OutT *A) {
  __shared__ float red[32];
  const float *x = X + (size_t)blockIdx.x * D;
  OutT *a = A + (size_t)blockIdx.x * D;
  int n4 = D >> 2, nt = blockDim.x;
  float r = 1.0f, ss = 0;
  if ((D & 3) == 0 && n4 <= RN_REG * nt) {
    float4 v[RN_REG];
#pragma unroll
    for (int k = 0; k < RN_REG; k++) {
      int i = threadIdx.x + k * nt;
      v[k] = i < n4 ? ((const float4 *)x)[i] : make_float4(0, 0, 0, 0);
      ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
    if (norm) r = rsqrtf(blk_sum(ss, red) / D + eps);
#pragma unroll
    for (int k = 0; k < RN_REG; k++) {
      int i = threadIdx.x + k * nt;
      if (i >= n4) break;
      float4 y = v[k];
      if (norm) {
        float4 wv = ((const float4 *)w)[i], bv = b ? ((const float4 *)b)[i] : make_float4(0, 0, 0, 0);
        y = make_float4(y.x * r * wv.x + bv.x, y.y * r * wv.y + bv.y, y.z * r * wv.z + bv.z, y.w * r * wv.w + bv.w);
      }
      stv4(a + 4 * i, y);
    }
    return;
  }
  if (norm) {
    for (int i = threadIdx.x; i < D; i += nt) ss += x[i] * x[i];
    r = rsqrtf(blk_sum(ss, red) / D + eps);
  }
  for (int i = threadIdx.x; i < D; i += nt) stv(a + i, norm ? x[i] * r * w[i] + (b ? b[i] : 0.0f) : x[i]);
}

/* Four consecutive GEMM outputs (fp32, or bf16 in bf16 mode) as floats. */
__device__ __forceinline__ float4 ld4(const float *p) { return *(const float4 *)p; }
__device__ __forceinline__ float4 ld4(const __nv_bfloat16 *p) {
  uint2 u = *(const uint2 *)p;
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}

/* A[t, i] = silu(P[t, 2i] + b[2i]) * (P[t, 2i+1] + b[2i+1]): the FFN rows are interleaved.
 * blockIdx.y = t (a 2-D grid: no 64-bit division per element). */
template <typename InT, typename OutT>
__global__ void k_silu_rows(const InT *P, int F, const float *b, OutT *A) {
  size_t t = blockIdx.y;
  /* two (gate, up) pairs per four values (F is even: a multiple of 64) */
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; 2 * i < F; i += gridDim.x * blockDim.x) {
    float4 gu = ld4(P + t * 2 * F + 4 * i);
    if (b) { gu.x += b[4 * i]; gu.y += b[4 * i + 1]; gu.z += b[4 * i + 2]; gu.w += b[4 * i + 3]; }
    stv2(A + t * F + 2 * i, gu.x * sigm(gu.x) * gu.y, gu.z * sigm(gu.z) * gu.w);
  }
}

/* Y[t, j] += b[j] for j < n (row stride ld); blockIdx.y = t. */
__global__ void k_bias_rows(float *Y, int ld, int n, const float *b) {
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) Y[(size_t)blockIdx.y * ld + j] += b[j];
}

__global__ void k_softcap(float *Y, long n, float cap) {
  for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x)
    Y[e] = cap * tanhf(Y[e] / cap);
}

template <typename OutT>
__global__ void k_convert(const void *W, int dt, long n, OutT *dst) {
  for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) stv(dst + e, ldw(W, dt, e));
}

static int grid_for(long n) {
  long g = (n + 255) / 256;
  return (int)(g < 4096 ? (g > 0 ? g : 1) : 4096);
}

/* ---- GEMM against a weight matrix ----
 * Y[T, w.rows] (row stride ldy) = beta * Y + X[T, w.cols] (row stride ldx) . W^T, Y fp32 or
 * (y_bf16) bf16. Row-major Y^T in cuBLAS's column-major view: C (rows x T) = op(A)=W^T-view
 * (rows x cols) . X-view. */
static int gemm_wt(xl_cuda_session *s, const xlc_mat *w, const void *X, int ldx, void *Y, int y_bf16, int ldy, int T, float beta) {
  cudaDataType_t yt = y_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  size_t yes = y_bf16 ? 2 : 4;
  int bf = s->bf16, want = bf ? ST_BF16 : ST_F32;
  cudaDataType_t xt = bf ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t ct = bf ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
  float alpha = 1.0f;
  if (w->dtype == want) {
    CB(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, T, w->cols, &alpha, w->data, xt, w->cols, X, xt, ldx, &beta, Y,
                    yt, ldy, ct, CUBLAS_GEMM_DEFAULT));
    return 0;
  }
  size_t oes = bf ? 2 : 4;
  long slab = s->wslab ? (long)(s->wslab_bytes / ((size_t)w->cols * oes)) : 0;
  if (slab < 1) return xlc_fail("no conversion slab for a %s weight", w->dtype == ST_F32 ? "F32" : w->dtype == ST_F16 ? "F16" : "BF16");
  for (long r0 = 0; r0 < w->rows; r0 += slab) {
    int nr = (int)(w->rows - r0 < slab ? w->rows - r0 : slab);
    long n = (long)nr * w->cols;
    const void *src = (const char *)w->data + (size_t)r0 * w->cols * xlc_esize(w->dtype);
    if (bf) k_convert<<<grid_for(n), 256, 0, s->st>>>(src, w->dtype, n, (__nv_bfloat16 *)s->wslab);
    else k_convert<<<grid_for(n), 256, 0, s->st>>>(src, w->dtype, n, (float *)s->wslab);
    KCHECK();
    CB(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, nr, T, w->cols, &alpha, s->wslab, xt, w->cols, X, xt, ldx, &beta,
                    (char *)Y + (size_t)r0 * yes, yt, ldy, ct, CUBLAS_GEMM_DEFAULT));
  }
  return 0;
}

static int gemm_w(xl_cuda_session *s, const xlc_mat *w, const void *X, int ldx, float *Y, int ldy, int T, float beta) {
  return gemm_wt(s, w, X, ldx, Y, 0, ldy, T, beta);
}

static int rmsnorm_rows(xl_cuda_session *s, const float *X, int T, const float *w, const float *b, int norm) {
  const xl_cuda_model *m = s->cm;
  if (s->bf16) k_rmsnorm_rows<<<T, 256, 0, s->st>>>(X, m->D, w, b, m->norm_eps, norm, (__nv_bfloat16 *)s->A);
  else k_rmsnorm_rows<<<T, 256, 0, s->st>>>(X, m->D, w, b, m->norm_eps, norm, (float *)s->A);
  KCHECK();
  return 0;
}

static int bias_rows(xl_cuda_session *s, float *Y, int ld, int T, int n, const float *b) {
  if (!b) return 0;
  k_bias_rows<<<dim3((n + 255) / 256, T), 256, 0, s->st>>>(Y, ld, n, b);
  KCHECK();
  return 0;
}

static int block_prefill(xl_cuda_session *s, int l, int T) {
  const xl_cuda_model *m = s->cm;
  const xlc_block *B = &m->blocks[l];
  int D = m->D, NIN = m->NIN, F = m->F, Tp = (T + s->ck - 1) / s->ck * s->ck;
  TRY(rmsnorm_rows(s, s->X, T, B->norm1_w, B->norm1_b, 1));
  xlc_mark(s, XLC_PH_NORM);
  TRY(gemm_w(s, &B->win, s->A, D, s->P, NIN, T, 0.0f));
  if (m->use_bias) TRY(bias_rows(s, s->P, NIN, T, xlc_off_ig(m), B->b_in));   /* the gates' biases: in the cell */
  /* a partial last chunk: its missing rows are zeros (they then add nothing anywhere) */
  if (Tp > T) CU(cudaMemsetAsync(s->P + (size_t)T * NIN, 0, (size_t)(Tp - T) * NIN * 4, s->st));
  xlc_mark(s, XLC_PH_GEMM_IN);
  TRY(xlc_cell_segment(s, l, T, s->A));
  TRY(gemm_w(s, &B->wout, s->A, m->VD, s->X, D, T, 1.0f));
  TRY(bias_rows(s, s->X, D, T, D, B->out_b));
  xlc_mark(s, XLC_PH_GEMM_OUT);
  TRY(rmsnorm_rows(s, s->X, T, B->norm2_w, B->norm2_b, 1));
  xlc_mark(s, XLC_PH_NORM);
  /* bf16 mode: the up/gate GEMM writes bf16 (half the bytes for it to write and the SwiGLU
   * pass to read: ~10 ms of a 16k-token 7B prefill), rounding the pre-activations as the
   * activations around them are rounded already */
  TRY(gemm_wt(s, &B->wup, s->A, D, s->P, s->bf16, 2 * F, T, 0.0f));
  xlc_mark(s, XLC_PH_GEMM_UP);
  dim3 sg((F / 2 + 255) / 256, T);
  if (s->bf16) k_silu_rows<<<sg, 256, 0, s->st>>>((const __nv_bfloat16 *)s->P, F, B->b_up, (__nv_bfloat16 *)s->A);
  else k_silu_rows<<<sg, 256, 0, s->st>>>((const float *)s->P, F, B->b_up, (float *)s->A);
  KCHECK();
  xlc_mark(s, XLC_PH_SILU);
  TRY(gemm_w(s, &B->wdown, s->A, F, s->X, D, T, 1.0f));
  TRY(bias_rows(s, s->X, D, T, D, B->down_b));
  xlc_mark(s, XLC_PH_GEMM_DOWN);
  return 0;
}

/* Every row's logits, lrows_n rows at a time, to the host; the last row also into s->logits. */
static int all_rows_logits(xl_cuda_session *s, int T, float *host) {
  const xl_cuda_model *m = s->cm;
  size_t V = m->V;
  for (int r0 = 0; r0 < T; r0 += s->lrows_n) {
    int nr = T - r0 < s->lrows_n ? T - r0 : s->lrows_n;
    TRY(rmsnorm_rows(s, s->X + (size_t)r0 * m->D, nr, m->out_norm_w, m->out_norm_b, m->add_out_norm));
    TRY(gemm_w(s, &m->lmhead, s->A, m->D, s->lrows, (int)V, nr, 0.0f));
    if (m->lcap > 0) {
      k_softcap<<<grid_for((long)nr * V), 256, 0, s->st>>>(s->lrows, (long)nr * V, m->lcap);
      KCHECK();
    }
    CU(cudaMemcpyAsync(host + (size_t)r0 * V, s->lrows, (size_t)nr * V * 4, cudaMemcpyDeviceToHost, s->st));
    if (r0 + nr == T) CU(cudaMemcpyAsync(s->logits, s->lrows + (size_t)(nr - 1) * V, V * 4, cudaMemcpyDeviceToDevice, s->st));
    CU(cudaStreamSynchronize(s->st));   /* lrows is reused by the next rows */
  }
  return 0;
}

static int segment(xl_cuda_session *s, const int32_t *ids, int T, float *all_logits, int last) {
  const xl_cuda_model *m = s->cm;
  xlc_mark(s, XLC_PH_START);
  CU(cudaMemcpyAsync(s->d_ids, ids, (size_t)T * 4, cudaMemcpyHostToDevice, s->st));
  k_embed_rows<<<T, 256, 0, s->st>>>(m->embed.data, m->embed.dtype, m->D, m->V, s->d_ids, s->X);
  KCHECK();
  xlc_mark(s, XLC_PH_EMBED);
  for (int l = 0; l < m->L; l++) TRY(block_prefill(s, l, T));
  if (all_logits) TRY(all_rows_logits(s, T, all_logits));
  else if (last) TRY(xlc_final_logits(s, s->X + (size_t)(T - 1) * m->D));
  xlc_mark(s, XLC_PH_LOGITS);
  return 0;
}

int xlc_prefill_run(xl_cuda_session *s, const int32_t *ids, long n, float *all_logits) {
  for (long t = 0; t < n; t += s->seg) {
    int T = (int)(n - t < s->seg ? n - t : s->seg);
    TRY(segment(s, ids + t, T, all_logits ? all_logits + (size_t)t * s->cm->V : NULL, t + T == n));
    s->tokens += T;
  }
  return 0;
}

size_t xlc_prefill_bytes(const xl_cuda_model *m, int seg, int ck, int bf16) {
  size_t S = (size_t)(seg > ck ? seg / ck * ck : ck), nch = S / ck * m->NH;
  size_t wide = m->D > m->VD ? m->D : m->VD, outw = m->NIN > 2 * m->F ? m->NIN : 2 * m->F;
  if ((size_t)m->F > wide) wide = m->F;
  size_t b = S * 4 + S * m->D * 4 + S * wide * (bf16 ? 2 : 4) + S * outw * 4 + S * m->VD * 4 + 2 * S * m->QK * 4;
  b += nch * ck * ck * 4 + nch * m->DK * m->DV * 4 + nch * m->DK * 4 + 6 * m->NH * S * 4 + 5 * nch * 4 + 8 * nch * sizeof(void *);
  b += (S < 256 ? S : 256) * m->V * 4;
  return b;
}

extern "C" int xl_cuda_prefill(xl_cuda_session *s, const int32_t *ids, long n, float *all_logits, float *last_logits) {
  const xl_cuda_model *m = s->cm;
  for (long t = 0; t < n; t++)
    if (ids[t] < 0 || ids[t] >= m->V) return xlc_fail("token id %d at position %ld outside the vocabulary (%d)", ids[t], t, m->V);
  CU(cudaSetDevice(m->device));
  if (n > 0) TRY(xlc_prefill_run(s, ids, n, all_logits));
  if (last_logits) CU(cudaMemcpyAsync(last_logits, s->logits, (size_t)m->V * 4, cudaMemcpyDeviceToHost, s->st));
  CU(cudaStreamSynchronize(s->st));
  CU(cudaGetLastError());
  return xlc_prof_flush(s);
}
