/* sample: the next token from the session's logits, on the GPU; only the token id comes back.
 * Greedy: argmax, the first index on ties (as the CPU's xl_argmax). Sampling: p_i =
 * exp((l_i - max) / T); with neither top-k nor top-p the candidates are all ids in index
 * order (as the CPU); otherwise a stable descending radix sort (CUB) orders them, top-k keeps
 * the first k, top-p the shortest prefix whose mass reaches top_p of theirs; the host's
 * uniform number u picks the first candidate whose running sum exceeds u * total. */
#include "engine/cuda/internal.cuh"
#include <cub/device/device_radix_sort.cuh>

#define SB 1024   /* threads of the one-block kernels */

/* argmax (first index on ties) over one block; *best_i, *best_v. */
__device__ void block_argmax(const float *x, int n, int *best_i, float *best_v) {
  __shared__ float sv[SB];
  __shared__ int si[SB];
  float bv = -INFINITY;
  int bi = n;   /* none yet: an empty range loses every comparison */
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    if (bi == n || x[i] > bv) { bv = x[i]; bi = i; }
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int o = blockDim.x / 2; o; o >>= 1) {
    if (threadIdx.x < o) {
      float v2 = sv[threadIdx.x + o];
      int i2 = si[threadIdx.x + o];
      if (v2 > sv[threadIdx.x] || (v2 == sv[threadIdx.x] && i2 < si[threadIdx.x])) { sv[threadIdx.x] = v2; si[threadIdx.x] = i2; }
    }
    __syncthreads();
  }
  *best_i = si[0] < n ? si[0] : 0;
  *best_v = sv[0];
}

__global__ void __launch_bounds__(SB) k_argmax(const float *x, int n, int *out) {
  int bi;
  float bv;
  block_argmax(x, n, &bi, &bv);
  if (threadIdx.x == 0) *out = bi;
}

/* prob_i = exp((l_i - max) / T), idx_i = i */
__global__ void __launch_bounds__(SB) k_probs(const float *x, int n, float inv_t, float *prob, int *idx) {
  int bi;
  float mx;
  block_argmax(x, n, &bi, &mx);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    prob[i] = expf((x[i] - mx) * inv_t);
    idx[i] = i;
  }
}

/* Picks from candidates p[0..n) (ids idx[]): first i whose running sum exceeds u * total.
 * top_p < 1 first shrinks n to the shortest prefix whose sum reaches top_p * total. */
__global__ void __launch_bounds__(SB) k_pick(const float *p, const int *idx, int n, float top_p, double u, int *out) {
  __shared__ double part[SB + 1];
  __shared__ int found;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0 && top_p >= 1.0f) continue;
    int per = (n + SB - 1) / SB, lo = min(n, (int)threadIdx.x * per), hi = min(n, lo + per);
    double s = 0;
    for (int i = lo; i < hi; i++) s += p[i];
    part[threadIdx.x] = s;
    if (threadIdx.x == 0) found = n;
    __syncthreads();
    if (threadIdx.x == 0) {   /* exclusive sums in a fixed order */
      double acc = 0;
      for (int i = 0; i < SB; i++) { double v = part[i]; part[i] = acc; acc += v; }
      part[SB] = acc;
    }
    __syncthreads();
    double tot = part[SB], acc = part[threadIdx.x];
    /* pass 0: the first i with sum(0..i) >= top_p * tot; pass 1: the first with sum > u * tot */
    double goal = pass == 0 ? (double)top_p * tot : u * tot;
    for (int i = lo; i < hi; i++) {
      acc += p[i];
      if (pass == 0 ? acc >= goal : acc > goal) { atomicMin(&found, i); break; }
    }
    __syncthreads();
    if (pass == 0) n = found < n ? found + 1 : n;
    else if (threadIdx.x == 0) *out = idx[found < n ? found : n - 1];
    __syncthreads();
  }
}

int xlc_sample_prepare(xl_cuda_session *s) {
  size_t bytes = 0;
  CU(cub::DeviceRadixSort::SortPairsDescending(NULL, bytes, s->sprob, s->sprob2, s->sidx, s->sidx2, s->cm->V, 0, 32, s->st));
  s->sort_tmp_bytes = bytes;
  TRY(xlc_malloc(&s->sort_tmp, bytes));
  s->bytes += bytes;
  return 0;
}

extern "C" int xl_cuda_sample(xl_cuda_session *s, int greedy, float temperature, int top_k, float top_p, double u01, int *token) {
  int V = s->cm->V;
  CU(cudaSetDevice(s->cm->device));
  if (greedy || temperature <= 0) {
    k_argmax<<<1, SB, 0, s->st>>>(s->logits, V, s->d_out);
    KCHECK();
  } else {
    k_probs<<<1, SB, 0, s->st>>>(s->logits, V, 1.0f / temperature, s->sprob, s->sidx);
    KCHECK();
    int k = top_k > 0 && top_k < V ? top_k : V;
    if (k == V && top_p >= 1.0f) {
      k_pick<<<1, SB, 0, s->st>>>(s->sprob, s->sidx, V, 1.0f, u01, s->d_out);
    } else {
      size_t bytes = s->sort_tmp_bytes;
      CU(cub::DeviceRadixSort::SortPairsDescending(s->sort_tmp, bytes, s->sprob, s->sprob2, s->sidx, s->sidx2, V, 0, 32, s->st));
      k_pick<<<1, SB, 0, s->st>>>(s->sprob2, s->sidx2, k, top_p, u01, s->d_out);
    }
    KCHECK();
  }
  CU(cudaMemcpyAsync(s->h_out, s->d_out, 4, cudaMemcpyDeviceToHost, s->st));
  CU(cudaStreamSynchronize(s->st));
  *token = *s->h_out;
  return 0;
}
