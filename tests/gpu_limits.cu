/* gpu_limits: the GPU's ceilings, measured in one run, as one NDJSON line on stdout:
 *   bf16 GEMM through cuBLAS (cublasGemmEx, N x N x N, bf16 inputs and output, fp32
 *     accumulation, random non-zero data; NN and TN layouts, the better one is the ceiling)
 *     in TFLOP/s;
 *   device-to-device copy (cudaMemcpyAsync of one large buffer) in GB/s, counting the bytes
 *     read and the bytes written;
 *   read-only bandwidth: a sum reduction over a few GB of floats (16-byte loads, grid-stride),
 *     in GB/s of bytes read.
 * Each is warmed up, then timed --reps times with CUDA events; the median is the result
 * (best and worst beside it). Provenance: GPU name, compute capability, SMs, memory, driver
 * (version string from /proc/driver/nvidia/version or nvidia-smi), CUDA driver API and
 * runtime versions, cuBLAS version, peak SM and memory clocks (cudaDeviceGetAttribute), the
 * bus width and the memory bandwidth they imply, and the SM/memory clocks nvidia-smi reads
 * right after the GEMMs when it is there.
 * Keys for scripts: tflops (the bf16 GEMM ceiling), copy_gb_s, read_gb_s, bw_gb_s (the larger
 * of copy and read: the bandwidth ceiling the decode roofline uses).
 * Usage: gpu_limits [--device N] [--gemm N] [--reps R] [--warmup W] [--copy-mb MB] [--read-mb MB]
 * Defaults: 8192, 20, 3, 2048 (one 2 GiB buffer copied), 4096. Exit 77 when no GPU is usable
 * (the test suite's "skipped"), 1 on a CUDA/cuBLAS error.
 * Built by mk/bench-cuda.mk; run by tests/bench_cuda.sh (make bench-cuda). */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "gpu_limits: %s: %s (%s:%d)\n", #x, cudaGetErrorString(e_), __FILE__, __LINE__); \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)
#define CB(x)                                                                                   \
  do {                                                                                          \
    cublasStatus_t s_ = (x);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                          \
      fprintf(stderr, "gpu_limits: %s: cuBLAS status %d (%s:%d)\n", #x, (int)s_, __FILE__, __LINE__); \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)

static __device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}
/* uniform in [-1, 1), never exactly zero */
static __device__ __forceinline__ float unif(uint64_t seed, uint64_t i) {
  float u = (hash32(seed * 0x9e3779b97f4a7c15ULL + i) >> 8) * (1.0f / 16777216.0f);
  float v = 2.0f * u - 1.0f;
  return v == 0.0f ? 0.5f : v;
}
__global__ void fill_bf16(__nv_bfloat16 *p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2bfloat16(unif(seed, i));
}
__global__ void fill_f32(float *p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = unif(seed, i);
}

/* Sum of n float4: four independent 16-byte loads in flight per thread per iteration, a warp
 * shuffle and shared-memory reduction per block, one atomicAdd per block. */
__global__ void read_sum(const float4 *__restrict__ p, size_t n, float *out) {
  size_t stride = (size_t)gridDim.x * blockDim.x, i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  float acc = 0.0f;
  for (; i + 3 * stride < n; i += 4 * stride) {
    float4 a = __ldg(p + i), b = __ldg(p + i + stride), c = __ldg(p + i + 2 * stride), d = __ldg(p + i + 3 * stride);
    acc += (a.x + a.y + a.z + a.w) + (b.x + b.y + b.z + b.w) + (c.x + c.y + c.z + c.w) + (d.x + d.y + d.z + d.w);
  }
  for (; i < n; i += stride) {
    float4 a = __ldg(p + i);
    acc += a.x + a.y + a.z + a.w;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  __shared__ float warp_sums[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) atomicAdd(out, acc);
  }
}

typedef struct {
  double median, best, worst;
} stats;

static stats summarize(std::vector<float> ms) {
  std::sort(ms.begin(), ms.end());
  size_t n = ms.size();
  stats s;
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  s.best = ms[0];
  s.worst = ms[n - 1];
  return s;
}

/* a JSON string literal of s (quotes, backslashes and control characters escaped) */
static void json_str(char *out, size_t cap, const char *s) {
  size_t o = 0;
  if (cap < 3) return;
  out[o++] = '"';
  for (; *s && o + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') out[o++] = '\\', out[o++] = (char)c;
    else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    else out[o++] = (char)c;
  }
  out[o++] = '"';
  out[o] = 0;
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = 0;
}

/* "580.159.04" from /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX ... Kernel Module  580.159.04  ...", or
 * "... Open Kernel Module for x86_64  580.159.04 ..."): the first token after "Kernel Module" that starts with a digit */
static void driver_from_proc(char *out, size_t cap) {
  out[0] = 0;
  FILE *f = fopen("/proc/driver/nvidia/version", "r");
  if (!f) return;
  char line[512];
  if (fgets(line, sizeof line, f)) {
    const char *k = strstr(line, "Kernel Module");
    if (k) {
      k += strlen("Kernel Module");
      while (*k && !(*k >= '0' && *k <= '9' && (k[-1] == ' ' || k[-1] == '\t'))) k++;
      size_t i = 0;
      while (k[i] && k[i] != ' ' && k[i] != '\t' && k[i] != '\n' && i + 1 < cap) out[i] = k[i], i++;
      out[i] = 0;
    }
  }
  fclose(f);
}

/* one line of nvidia-smi --query-gpu for this GPU (by PCI bus id); "" when nvidia-smi is absent or fails */
static void smi_query(const char *pci, const char *fields, char *out, size_t cap) {
  out[0] = 0;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "nvidia-smi --query-gpu=%s --format=csv,noheader,nounits -i %s 2>/dev/null", fields, pci);
  FILE *p = popen(cmd, "r");
  if (!p) return;
  if (!fgets(out, (int)cap, p)) out[0] = 0;
  if (pclose(p) != 0) out[0] = 0;
  trim(out);
}

/* the n-th comma-separated field of s as a number, or -1 ("[N/A]" and the like) */
static double csv_num(const char *s, int n) {
  for (int i = 0; i < n && s; i++) {
    s = strchr(s, ',');
    if (s) s++;
  }
  if (!s || !*s) return -1;
  char *e;
  double v = strtod(s, &e);
  return e == s ? -1 : v;
}

static void usage(void) {
  fprintf(stderr, "usage: gpu_limits [--device N] [--gemm N] [--reps R] [--warmup W] [--copy-mb MB] [--read-mb MB]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int dev = 0, n = 8192, reps = 20, warmup = 3;
  long copy_mb = 2048, read_mb = 4096;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage();
    if (!v) usage();
    if (!strcmp(a, "--device")) dev = atoi(v);
    else if (!strcmp(a, "--gemm")) n = atoi(v);
    else if (!strcmp(a, "--reps")) reps = atoi(v);
    else if (!strcmp(a, "--warmup")) warmup = atoi(v);
    else if (!strcmp(a, "--copy-mb")) copy_mb = atol(v);
    else if (!strcmp(a, "--read-mb")) read_mb = atol(v);
    else usage();
    i++;
  }
  if (n < 64 || n % 64 || reps < 1 || warmup < 0 || copy_mb < 1 || read_mb < 1) usage();

  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    printf("skipped: no usable GPU (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "no device");
    return 77;
  }
  if (dev < 0 || dev >= count) {
    fprintf(stderr, "gpu_limits: --device %d: this machine has %d GPU(s)\n", dev, count);
    return 2;
  }
  CK(cudaSetDevice(dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  int sm_khz = 0, mem_khz = 0, bus_bits = 0, drv = 0, rt = 0;
  CK(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, dev));
  CK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev));
  CK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
  CK(cudaDriverGetVersion(&drv));
  CK(cudaRuntimeGetVersion(&rt));
  char pci[64];
  CK(cudaDeviceGetPCIBusId(pci, sizeof pci, dev));
  char driver[128];
  driver_from_proc(driver, sizeof driver);
  if (!driver[0]) smi_query(pci, "driver_version", driver, sizeof driver);

  cublasHandle_t h;
  CB(cublasCreate(&h));
  int cublas_ver = 0;
  CB(cublasGetVersion(h, &cublas_ver));
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  CB(cublasSetStream(h, st));
  size_t ws_bytes = 64u << 20;   /* a generous workspace, as frameworks give cuBLAS on Hopper */
  void *ws;
  CK(cudaMalloc(&ws, ws_bytes));
  CB(cublasSetWorkspace(h, ws, ws_bytes));
  cudaEvent_t t0, t1;
  CK(cudaEventCreate(&t0));
  CK(cudaEventCreate(&t1));
  int fill_blocks = prop.multiProcessorCount * 8;

  /* ---- bf16 GEMM ---- */
  size_t nn = (size_t)n * n;
  __nv_bfloat16 *A, *B, *C;
  CK(cudaMalloc(&A, nn * sizeof *A));
  CK(cudaMalloc(&B, nn * sizeof *B));
  CK(cudaMalloc(&C, nn * sizeof *C));
  fill_bf16<<<fill_blocks, 256, 0, st>>>(A, nn, 1);
  fill_bf16<<<fill_blocks, 256, 0, st>>>(B, nn, 2);
  CK(cudaGetLastError());
  const float alpha = 1.0f, beta = 0.0f;
  double flop = 2.0 * n * (double)n * n;
  const char *layout_name[2] = {"nn", "tn"};
  stats gemm[2];
  for (int L = 0; L < 2; L++) {
    cublasOperation_t opa = L ? CUBLAS_OP_T : CUBLAS_OP_N;
    std::vector<float> ms;
    for (int r = 0; r < warmup + reps; r++) {
      CK(cudaEventRecord(t0, st));
      CB(cublasGemmEx(h, opa, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16BF, n, B, CUDA_R_16BF, n, &beta, C, CUDA_R_16BF, n,
                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      CK(cudaEventRecord(t1, st));
      CK(cudaEventSynchronize(t1));
      float t;
      CK(cudaEventElapsedTime(&t, t0, t1));
      if (r >= warmup) ms.push_back(t);
    }
    gemm[L] = summarize(ms);
  }
  /* the clocks while the GPU is still busy from the products (nvidia-smi, when present) */
  char smi_load[256];
  smi_query(pci, "clocks.sm,clocks.mem,power.draw,temperature.gpu", smi_load, sizeof smi_load);
  /* a checksum of C, so the products cannot be skipped and the data is seen to be non-zero */
  __nv_bfloat16 c_sample[4];
  CK(cudaMemcpy(c_sample, C + nn / 2, sizeof c_sample, cudaMemcpyDeviceToHost));
  double c_abs = 0;
  for (int i = 0; i < 4; i++) c_abs += fabs((double)__bfloat162float(c_sample[i]));
  CK(cudaFree(A));
  CK(cudaFree(B));
  CK(cudaFree(C));
  int best_layout = gemm[1].median < gemm[0].median ? 1 : 0;
  double tflops = flop / (gemm[best_layout].median * 1e-3) / 1e12;

  /* ---- device-to-device copy ---- */
  size_t cbytes = (size_t)copy_mb << 20;
  float *src, *dst;
  CK(cudaMalloc(&src, cbytes));
  CK(cudaMalloc(&dst, cbytes));
  fill_f32<<<fill_blocks, 256, 0, st>>>(src, cbytes / sizeof(float), 3);
  CK(cudaGetLastError());
  std::vector<float> cms;
  for (int r = 0; r < warmup + reps; r++) {
    CK(cudaEventRecord(t0, st));
    CK(cudaMemcpyAsync(dst, src, cbytes, cudaMemcpyDeviceToDevice, st));
    CK(cudaEventRecord(t1, st));
    CK(cudaEventSynchronize(t1));
    float t;
    CK(cudaEventElapsedTime(&t, t0, t1));
    if (r >= warmup) cms.push_back(t);
  }
  stats copy = summarize(cms);
  double copy_gb_s = 2.0 * cbytes / (copy.median * 1e-3) / 1e9;
  CK(cudaFree(src));
  CK(cudaFree(dst));

  /* ---- read-only: a reduction ---- */
  size_t rbytes = ((size_t)read_mb << 20) & ~(size_t)15;
  size_t n4 = rbytes / sizeof(float4);
  float4 *rp;
  float *sum;
  CK(cudaMalloc(&rp, rbytes));
  CK(cudaMalloc(&sum, sizeof(float)));
  fill_f32<<<fill_blocks, 256, 0, st>>>((float *)rp, n4 * 4, 4);
  CK(cudaGetLastError());
  int rthreads = 512, rblocks = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&rblocks, read_sum, rthreads, 0));
  rblocks = (rblocks > 0 ? rblocks : 1) * prop.multiProcessorCount;
  std::vector<float> rms;
  float checksum = 0;
  for (int r = 0; r < warmup + reps; r++) {
    CK(cudaMemsetAsync(sum, 0, sizeof(float), st));
    CK(cudaEventRecord(t0, st));
    read_sum<<<rblocks, rthreads, 0, st>>>(rp, n4, sum);
    CK(cudaEventRecord(t1, st));
    CK(cudaEventSynchronize(t1));
    CK(cudaGetLastError());
    float t;
    CK(cudaEventElapsedTime(&t, t0, t1));
    if (r >= warmup) rms.push_back(t);
  }
  CK(cudaMemcpy(&checksum, sum, sizeof checksum, cudaMemcpyDeviceToHost));
  stats rd = summarize(rms);
  double read_gb_s = (double)rbytes / (rd.median * 1e-3) / 1e9;
  CK(cudaFree(rp));
  CK(cudaFree(sum));
  CK(cudaFree(ws));
  CB(cublasDestroy(h));
  CK(cudaStreamDestroy(st));

  char smi_max[256];
  smi_query(pci, "clocks.max.sm,clocks.max.mem,power.limit", smi_max, sizeof smi_max);

  char name_js[512], driver_js[256], pci_js[128];
  json_str(name_js, sizeof name_js, prop.name);
  json_str(driver_js, sizeof driver_js, driver[0] ? driver : "unknown");
  json_str(pci_js, sizeof pci_js, pci);
  double spec_bw = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) / 1e9;   /* double data rate */
  printf("{\"bench\":\"gpu_limits\",\"gpu\":%s,\"device\":%d,\"pci\":%s,\"cc\":\"%d.%d\",\"sms\":%d,\"mem_gb\":%.2f,"
         "\"l2_mb\":%.1f,\"driver\":%s,\"driver_cuda\":%d,\"runtime_cuda\":%d,\"cublas\":%d,"
         "\"sm_clock_peak_mhz\":%d,\"mem_clock_peak_mhz\":%d,\"bus_bits\":%d,\"mem_bw_spec_gb_s\":%.1f,",
         name_js, dev, pci_js, prop.major, prop.minor, prop.multiProcessorCount, prop.totalGlobalMem / 1e9,
         prop.l2CacheSize / 1048576.0, driver_js, drv, rt, cublas_ver, sm_khz / 1000, mem_khz / 1000, bus_bits, spec_bw);
  if (smi_load[0])
    printf("\"smi_sm_clock_mhz\":%.0f,\"smi_mem_clock_mhz\":%.0f,\"smi_power_w\":%.1f,\"smi_temp_c\":%.0f,",
           csv_num(smi_load, 0), csv_num(smi_load, 1), csv_num(smi_load, 2), csv_num(smi_load, 3));
  if (smi_max[0])
    printf("\"smi_sm_clock_max_mhz\":%.0f,\"smi_mem_clock_max_mhz\":%.0f,\"smi_power_limit_w\":%.1f,", csv_num(smi_max, 0),
           csv_num(smi_max, 1), csv_num(smi_max, 2));
  printf("\"gemm_n\":%d,\"gemm_dtype\":\"bf16\",\"gemm_accum\":\"fp32\",\"gemm_layout\":\"%s\",\"reps\":%d,\"warmup\":%d,"
         "\"gemm_ms\":%.4f,\"gemm_ms_best\":%.4f,\"gemm_ms_worst\":%.4f,\"tflops_nn\":%.1f,\"tflops_tn\":%.1f,"
         "\"tflops\":%.1f,\"tflops_best\":%.1f,\"gemm_sample_abs\":%.4g,",
         n, layout_name[best_layout], reps, warmup, gemm[best_layout].median, gemm[best_layout].best, gemm[best_layout].worst,
         flop / (gemm[0].median * 1e-3) / 1e12, flop / (gemm[1].median * 1e-3) / 1e12, tflops,
         flop / (gemm[best_layout].best * 1e-3) / 1e12, c_abs);
  printf("\"copy_bytes\":%zu,\"copy_ms\":%.4f,\"copy_gb_s\":%.1f,\"copy_gb_s_best\":%.1f,"
         "\"read_bytes\":%zu,\"read_ms\":%.4f,\"read_gb_s\":%.1f,\"read_gb_s_best\":%.1f,\"read_blocks\":%d,\"read_checksum\":%.6g,"
         "\"bw_gb_s\":%.1f}\n",
         cbytes, copy.median, copy_gb_s, 2.0 * cbytes / (copy.best * 1e-3) / 1e9, rbytes, rd.median, read_gb_s,
         (double)rbytes / (rd.best * 1e-3) / 1e9, rblocks, checksum, copy_gb_s > read_gb_s ? copy_gb_s : read_gb_s);
  return 0;
}
