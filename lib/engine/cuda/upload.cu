/* upload: the CUDA device's bookkeeping: probing the GPU, uploading a model's weights once
 * (in their stored dtype, regrouped so that matrices sharing an input form one matrix), the
 * session's buffers, reset, and the state/logits copies in the CPU session's layouts.
 * See cuda.h. */
#include "engine/cuda/internal.cuh"
#include <dlfcn.h>
#include <mutex>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unordered_map>
#include <vector>

/* ---- errors ---- */

static thread_local char g_err[768];

int xlc_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  return -1;
}

void xlc_copy_err(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "%s", g_err[0] ? g_err : "CUDA device: unknown error");
}

extern "C" const char *xl_cuda_last_error(void) { return g_err; }

/* ---- the allocation tally ---- */

static std::mutex g_mu;
static std::unordered_map<void *, size_t> g_sizes;
static size_t g_now, g_peak;

int xlc_malloc(void **p, size_t bytes) {
  *p = NULL;
  if (!bytes) return 0;
  cudaError_t e = cudaMalloc(p, bytes);
  if (e != cudaSuccess) {
    *p = NULL;
    cudaGetLastError();   /* an out-of-memory is not sticky: clear it */
    return xlc_fail("cudaMalloc of %.1f MB: %s", bytes / 1e6, cudaGetErrorString(e));
  }
  std::lock_guard<std::mutex> g(g_mu);
  g_sizes[*p] = bytes;
  g_now += bytes;
  if (g_now > g_peak) g_peak = g_now;
  return 0;
}

void xlc_free(void *p) {
  if (!p) return;
  cudaFree(p);
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_sizes.find(p);
  if (it != g_sizes.end()) { g_now -= it->second; g_sizes.erase(it); }
}

extern "C" size_t xl_cuda_peak_bytes(void) {
  std::lock_guard<std::mutex> g(g_mu);
  return g_peak;
}

extern "C" size_t xl_cuda_device_used_bytes(int device) {
  size_t fr = 0, tot = 0;
  if (cudaSetDevice(device) != cudaSuccess || cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return tot - fr;
}

/* ---- probing ---- */

extern "C" int xl_cuda_probe(int device, char *why, size_t whylen) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) snprintf(why, whylen, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    cudaGetLastError();
    return -1;
  }
  if (device < 0 || device >= n) {
    if (why) snprintf(why, whylen, "device %d not present (%d found)", device, n);
    return -1;
  }
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (major < 9) {   /* the build holds sm_90a code and compute_90 PTX */
    if (why) snprintf(why, whylen, "device %d is sm_%d%d; this build runs on sm_90 (Hopper) and newer", device, major, minor);
    return -1;
  }
  e = cudaSetDevice(device);
  if (e == cudaSuccess) e = cudaFree(0);   /* creates the context: fails early when the driver is unusable */
  if (e != cudaSuccess) {
    if (why) snprintf(why, whylen, "device %d unusable: %s", device, cudaGetErrorString(e));
    cudaGetLastError();
    return -1;
  }
  return 0;
}

/* The driver's own version ("580.95.05") through NVML, when the library is there. */
static void driver_version(char *buf, size_t n) {
  snprintf(buf, n, "?");
  void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  typedef int (*init_fn)(void);
  typedef int (*ver_fn)(char *, unsigned);
  init_fn init = (init_fn)dlsym(h, "nvmlInit_v2");
  ver_fn ver = (ver_fn)dlsym(h, "nvmlSystemGetDriverVersion");
  init_fn shut = (init_fn)dlsym(h, "nvmlShutdown");
  if (init && ver && init() == 0) {
    char v[96] = "";
    if (ver(v, sizeof v) == 0 && v[0]) snprintf(buf, n, "%s", v);
    if (shut) shut();
  }
  dlclose(h);
}

extern "C" const char *xl_cuda_device_name(int device, char *buf, size_t n) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
    cudaGetLastError();
    snprintf(buf, n, "device %d: not available", device);
    return buf;
  }
  int drv = 0, rt = 0, clk = 0, mclk = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, device);
  cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, device);
  char dv[96];
  driver_version(dv, sizeof dv);
  snprintf(buf, n, "%s, driver %s (CUDA %d.%d), runtime %d.%d, sm_%d%d, %d SMs, %.1f GB, %d MHz, memory %d MHz, L2 %d MB", p.name, dv,
           drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem / 1e9,
           clk / 1000, mclk / 1000, p.l2CacheSize >> 20);
  return buf;
}

/* ---- model upload ---- */

/* Host copy of rows [r0, r0+rows) of m as dtype `to` (only F32 targets need converting). */
static void host_rows(const xl_mat *m, int to, std::vector<unsigned char> &out) {
  size_t n = (size_t)m->rows * m->cols;
  if (m->dtype == to) {
    out.assign((const unsigned char *)m->data, (const unsigned char *)m->data + n * st_dtype_size(m->dtype));
    return;
  }
  out.resize(n * 4);   /* a mixed group is widened to F32 (exact) */
  xl_to_f32(m->dtype, m->data, (float *)out.data(), n);
}

/* Uploads matrices stacked by rows into one device matrix; dtype: their common dtype, F32
 * when they differ. interleave: two matrices of equal shape, row i of each at 2i and 2i+1. */
static int upload_group(xl_cuda_model *cm, const xl_mat *const *mats, int nm, int interleave, xlc_mat *out) {
  int dt = mats[0]->dtype, rows = 0, cols = mats[0]->cols;
  for (int i = 0; i < nm; i++) {
    if (mats[i]->dtype != dt) dt = ST_F32;
    if (mats[i]->cols != cols) return xlc_fail("upload: matrices of one group differ in columns");
    rows += mats[i]->rows;
  }
  size_t es = xlc_esize(dt), rb = (size_t)cols * es;
  out->dtype = dt;
  out->rows = rows;
  out->cols = cols;
  TRY(xlc_malloc(&out->data, (size_t)rows * rb));
  cm->bytes += (size_t)rows * rb;
  if (dt == ST_F32) cm->any_f32 = 1;
  else if (dt == ST_BF16) cm->any_bf16 = 1;
  else cm->any_f16 = 1;
  std::vector<unsigned char> tmp;
  size_t off = 0;
  for (int i = 0; i < nm; i++) {
    const void *src = mats[i]->data;
    if (mats[i]->dtype != dt) { host_rows(mats[i], dt, tmp); src = tmp.data(); }
    char *dst = (char *)out->data + (interleave ? i * rb : off);
    if (interleave) CU(cudaMemcpy2D(dst, 2 * rb, src, rb, rb, mats[i]->rows, cudaMemcpyHostToDevice));
    else CU(cudaMemcpy(dst, src, (size_t)mats[i]->rows * rb, cudaMemcpyHostToDevice));
    off += (size_t)mats[i]->rows * rb;
  }
  return 0;
}

/* A device fp32 copy of n floats (NULL stays NULL). */
static int upload_vec(xl_cuda_model *cm, const float *v, size_t n, float **out) {
  *out = NULL;
  if (!v) return 0;
  TRY(xlc_malloc((void **)out, n * 4));
  cm->bytes += n * 4;
  CU(cudaMemcpy(*out, v, n * 4, cudaMemcpyHostToDevice));
  return 0;
}

/* Concatenates optional host vectors (zeros for NULL) and uploads them. */
static int upload_cat(xl_cuda_model *cm, const float *const *v, const int *len, int nv, int interleave, float **out) {
  size_t n = 0;
  for (int i = 0; i < nv; i++) n += len[i];
  std::vector<float> h(n, 0.0f);
  size_t off = 0;
  for (int i = 0; i < nv; i++) {
    for (int j = 0; v[i] && j < len[i]; j++) {
      if (interleave) h[(size_t)2 * j + i] = v[i][j];
      else h[off + j] = v[i][j];
    }
    off += len[i];
  }
  return upload_vec(cm, h.data(), n, out);
}

static int upload_block(xl_cuda_model *cm, const xl_block *B, xlc_block *d) {
  const xl_mat *in[] = {&B->q, &B->k, &B->v, &B->o, &B->ig, &B->fg};
  TRY(upload_group(cm, in, 6, 0, &d->win));
  const xl_mat *o1[] = {&B->out}, *o2[] = {&B->up_gate, &B->up}, *o3[] = {&B->down};
  TRY(upload_group(cm, o1, 1, 0, &d->wout));
  TRY(upload_group(cm, o2, 2, 1, &d->wup));
  TRY(upload_group(cm, o3, 1, 0, &d->wdown));
  const float *bi[] = {B->q_b, B->k_b, B->v_b, B->o_b, B->ig_b, B->fg_b};
  int li[] = {cm->QK, cm->QK, cm->VD, cm->VD, cm->NH, cm->NH};
  TRY(upload_cat(cm, bi, li, 6, 0, &d->b_in));
  if (B->up_gate_b || B->up_b) {
    const float *bu[] = {B->up_gate_b, B->up_b};
    int lu[] = {cm->F, cm->F};
    TRY(upload_cat(cm, bu, lu, 2, 1, &d->b_up));
  }
  TRY(upload_vec(cm, B->norm_mlstm_w, cm->D, &d->norm1_w));
  TRY(upload_vec(cm, B->norm_mlstm_b, cm->D, &d->norm1_b));
  TRY(upload_vec(cm, B->norm_ffn_w, cm->D, &d->norm2_w));
  TRY(upload_vec(cm, B->norm_ffn_b, cm->D, &d->norm2_b));
  TRY(upload_vec(cm, B->mh_w, cm->VD, &d->mh_w));
  TRY(upload_vec(cm, B->mh_b, cm->VD, &d->mh_b));
  TRY(upload_vec(cm, B->out_b, cm->D, &d->out_b));
  TRY(upload_vec(cm, B->down_b, cm->D, &d->down_b));
  return 0;
}

static int model_fill(xl_cuda_model *cm, const xl_model *m) {
  const xl_config *c = &m->cfg;
  const xl_xlstm_weights *W = xl_xlstm_of(m);
  cm->D = c->D; cm->L = c->n_blocks; cm->NH = c->n_heads; cm->V = c->vocab;
  cm->QK = c->qk_dim; cm->VD = c->v_dim; cm->DK = c->dk; cm->DV = c->dv; cm->F = c->ffn;
  cm->NIN = 2 * c->qk_dim + 2 * c->v_dim + 2 * c->n_heads;
  cm->gcap = (float)c->gate_soft_cap; cm->lcap = (float)c->logit_soft_cap;
  cm->norm_eps = (float)c->norm_eps; cm->eps = (float)c->eps;
  cm->add_out_norm = c->add_out_norm; cm->use_bias = c->use_bias;
  const xl_mat *e[] = {&m->embed};
  TRY(upload_group(cm, e, 1, 0, &cm->embed));
  if (m->lm_head.data == m->embed.data) cm->lmhead = cm->embed;   /* tied: one copy */
  else {
    const xl_mat *h[] = {&m->lm_head};
    TRY(upload_group(cm, h, 1, 0, &cm->lmhead));
  }
  TRY(upload_vec(cm, W->out_norm_w, cm->D, &cm->out_norm_w));
  TRY(upload_vec(cm, W->out_norm_b, cm->D, &cm->out_norm_b));
  cm->blocks = (xlc_block *)calloc((size_t)cm->L, sizeof *cm->blocks);
  if (!cm->blocks) return xlc_fail("out of host memory");
  for (int i = 0; i < cm->L; i++) TRY(upload_block(cm, &W->blocks[i], &cm->blocks[i]));
  return 0;
}

extern "C" xl_cuda_model *xl_cuda_model_upload(const xl_model *m, int device, char *err, size_t errlen) {
  g_err[0] = 0;
  if (m->cfg.arch != XL_ARCH_LARGE) {
    snprintf(err, errlen, "the CUDA device runs model_type \"xlstm\" only (this checkpoint is xlstm_v1)");
    return NULL;
  }
  if (xl_cuda_probe(device, err, errlen)) return NULL;
  xl_cuda_model *cm = (xl_cuda_model *)calloc(1, sizeof *cm);
  if (!cm) { snprintf(err, errlen, "out of host memory"); return NULL; }
  cm->device = device;
  /* the copies ran on the legacy stream; sessions use their own streams */
  if (model_fill(cm, m) || (cudaDeviceSynchronize() != cudaSuccess && xlc_fail("upload: %s", cudaGetErrorString(cudaGetLastError())))) {
    xlc_copy_err(err, errlen);
    xl_cuda_model_free(cm);
    return NULL;
  }
  return cm;
}

extern "C" void xl_cuda_model_free(xl_cuda_model *cm) {
  if (!cm) return;
  cudaSetDevice(cm->device);
  if (cm->lmhead.data != cm->embed.data) xlc_free(cm->lmhead.data);
  xlc_free(cm->embed.data);
  xlc_free(cm->out_norm_w);
  xlc_free(cm->out_norm_b);
  for (int i = 0; cm->blocks && i < cm->L; i++) {
    xlc_block *b = &cm->blocks[i];
    void *ps[] = {b->win.data, b->wout.data, b->wup.data, b->wdown.data, b->b_in, b->b_up, b->norm1_w, b->norm1_b,
                  b->norm2_w, b->norm2_b, b->mh_w, b->mh_b, b->out_b, b->down_b};
    for (size_t j = 0; j < sizeof ps / sizeof *ps; j++) xlc_free(ps[j]);
  }
  free(cm->blocks);
  free(cm);
}

extern "C" size_t xl_cuda_model_bytes(const xl_cuda_model *cm) { return cm ? cm->bytes : 0; }

/* ---- sessions ---- */

static int salloc(xl_cuda_session *s, void **p, size_t bytes) {
  TRY(xlc_malloc(p, bytes));
  s->bytes += bytes;
  return 0;
}

/* Tokens per prefill segment: the request, else the largest power of two <= 16384 whose
 * scratch stays under 1.5 GB (so a 7B prompt of any length peaks under weights + 2 GB);
 * then a whole number of chunks, as the CPU does. */
static int pick_segment(const xl_cuda_model *m, int req, int ck, int bf16) {
  int seg = req;
  if (seg <= 0) {
    seg = 16384;
    while (seg > 64 && xlc_prefill_bytes(m, seg, ck, bf16) > (size_t)1536 << 20) seg /= 2;
  }
  if (seg <= ck) return ck;
  return seg / ck * ck;
}

static int session_alloc(xl_cuda_session *s) {
  const xl_cuda_model *m = s->cm;
  size_t L = m->L, NH = m->NH, DK = m->DK, DV = m->DV, seg = s->seg, nch = (size_t)s->ncmax * NH, V = m->V;
  size_t wide = m->D > m->VD ? m->D : m->VD, outw = m->NIN > 2 * m->F ? m->NIN : 2 * m->F;
  if ((size_t)m->F > wide) wide = m->F;
  size_t aes = s->bf16 ? 2 : 4;
  TRY(salloc(s, (void **)&s->C, L * NH * DK * DV * 4));
  for (int i = 0; i < 2; i++) {
    TRY(salloc(s, (void **)&s->nbuf[i], L * NH * DK * 4));
    TRY(salloc(s, (void **)&s->mbuf[i], L * NH * 4));
  }
  TRY(salloc(s, (void **)&s->d_par, 4));
  TRY(salloc(s, (void **)&s->logits, V * 4));
  TRY(salloc(s, (void **)&s->d_token, 4));
  TRY(salloc(s, (void **)&s->d_out, 4));
  CU(cudaMallocHost((void **)&s->h_token, 8));
  for (int i = 0; i < 2; i++) CU(cudaEventCreateWithFlags(&s->tokev[i], cudaEventDisableTiming));
  CU(cudaMallocHost((void **)&s->h_out, 4));
  TRY(salloc(s, (void **)&s->x, (size_t)m->D * 4));
  TRY(salloc(s, (void **)&s->p, (size_t)m->NIN * 4));
  TRY(salloc(s, (void **)&s->h, (size_t)xlc_decode_rt() * m->VD * 4));
  TRY(salloc(s, (void **)&s->den, (size_t)m->NH * 4));
  TRY(salloc(s, (void **)&s->act, (size_t)m->F * 4));
  TRY(salloc(s, (void **)&s->xh, (size_t)m->VD * 4));
  TRY(salloc(s, (void **)&s->d_ids, seg * 4));
  TRY(salloc(s, (void **)&s->X, seg * m->D * 4));
  TRY(salloc(s, &s->A, seg * wide * aes));
  TRY(salloc(s, (void **)&s->P, seg * outw * 4));
  TRY(salloc(s, (void **)&s->H, seg * m->VD * 4));
  TRY(salloc(s, (void **)&s->Qb, seg * m->QK * 4));
  TRY(salloc(s, (void **)&s->Kw, seg * m->QK * 4));
  TRY(salloc(s, (void **)&s->S, nch * s->ck * s->ck * 4));
  TRY(salloc(s, (void **)&s->Cst, nch * DK * DV * 4));
  TRY(salloc(s, (void **)&s->Nst, nch * DK * 4));
  TRY(salloc(s, (void **)&s->tok, 6 * NH * seg * 4));
  TRY(salloc(s, (void **)&s->chk, 5 * nch * 4));
  TRY(salloc(s, (void **)&s->ptrs, 8 * nch * sizeof(void *)));
  /* a stored dtype other than the GEMMs' operand type is converted slab by slab */
  if (s->bf16 ? m->any_f32 || m->any_f16 : m->any_bf16 || m->any_f16) {
    s->wslab_bytes = (size_t)64 << 20;
    TRY(salloc(s, &s->wslab, s->wslab_bytes));
  }
  s->lrows_n = (int)(seg < 256 ? seg : 256);
  TRY(salloc(s, (void **)&s->lrows, (size_t)s->lrows_n * V * 4));
  TRY(salloc(s, (void **)&s->sprob, V * 4));
  TRY(salloc(s, (void **)&s->sprob2, V * 4));
  TRY(salloc(s, (void **)&s->sidx, V * 4));
  TRY(salloc(s, (void **)&s->sidx2, V * 4));
  TRY(salloc(s, &s->blas_ws, (size_t)32 << 20));
  return 0;
}

static int session_init(xl_cuda_session *s, const xl_cuda_opts *o) {
  xl_cuda_model *m = s->cm;
  CU(cudaSetDevice(m->device));
  s->bf16 = o && o->matmul_bf16;
  s->ck = o && o->chunk_size > 0 ? o->chunk_size : XL_CUDA_DEFAULT_CHUNK;
  s->mv_variant = o && o->mv_variant > 0 ? o->mv_variant : XLC_MV_VARIANT;
  s->seg = pick_segment(m, o ? o->max_segment : 0, s->ck, s->bf16);
  s->ncmax = s->seg / s->ck;
  CU(cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking));
  CB(cublasCreate(&s->blas));
  TRY(session_alloc(s));
  CB(cublasSetStream(s->blas, s->st));
  CB(cublasSetWorkspace(s->blas, s->blas_ws, (size_t)32 << 20));
  /* fp32 mode must not use TF32 anywhere; the calls also name their compute type */
  CB(cublasSetMathMode(s->blas, s->bf16 ? CUBLAS_DEFAULT_MATH : CUBLAS_PEDANTIC_MATH));
  TRY(xlc_cell_ptrs(s));
  TRY(xlc_sample_prepare(s));
  TRY(xlc_decode_prepare(s));
  xl_cuda_session_reset(s);
  CU(cudaStreamSynchronize(s->st));
  return 0;
}

extern "C" xl_cuda_session *xl_cuda_session_new(xl_cuda_model *cm, const xl_cuda_opts *o, char *err, size_t errlen) {
  g_err[0] = 0;
  if (o && o->chunk_size < 0) {
    snprintf(err, errlen, "chunk size must be >= 1");
    return NULL;
  }
  xl_cuda_session *s = (xl_cuda_session *)calloc(1, sizeof *s);
  if (!s) { snprintf(err, errlen, "out of host memory"); return NULL; }
  s->cm = cm;
  if (session_init(s, o)) {
    xlc_copy_err(err, errlen);
    xl_cuda_session_free(s);
    return NULL;
  }
  return s;
}

extern "C" void xl_cuda_session_free(xl_cuda_session *s) {
  if (!s) return;
  cudaSetDevice(s->cm->device);
  if (s->st) cudaStreamSynchronize(s->st);
  xlc_graph_free(s);
  void *ps[] = {s->C, s->nbuf[0], s->nbuf[1], s->mbuf[0], s->mbuf[1], s->d_par, s->logits, s->d_token, s->d_out, s->x, s->p,
                s->h, s->den, s->act, s->xh, s->d_ids, s->X, s->A, s->P, s->H, s->Qb, s->Kw, s->S, s->Cst, s->Nst, s->tok, s->chk,
                (void *)s->ptrs, s->wslab, s->lrows, s->sprob, s->sprob2, s->sidx, s->sidx2, s->sort_tmp, s->blas_ws};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) xlc_free(ps[i]);
  if (s->prof_ev) {
    for (int i = 0; i < XLC_PROF_EVENTS; i++)
      if (s->prof_ev[i]) cudaEventDestroy(s->prof_ev[i]);
    free(s->prof_ev);
  }
  if (s->h_token) cudaFreeHost(s->h_token);
  for (int i = 0; i < 2; i++)
    if (s->tokev[i]) cudaEventDestroy(s->tokev[i]);
  if (s->h_out) cudaFreeHost(s->h_out);
  if (s->blas) cublasDestroy(s->blas);
  if (s->st) cudaStreamDestroy(s->st);
  cudaGetLastError();
  free(s);
}

extern "C" void xl_cuda_session_reset(xl_cuda_session *s) {
  const xl_cuda_model *m = s->cm;
  size_t L = m->L, NH = m->NH;
  cudaSetDevice(m->device);
  cudaMemsetAsync(s->C, 0, L * NH * m->DK * m->DV * 4, s->st);
  for (int i = 0; i < 2; i++) {
    cudaMemsetAsync(s->nbuf[i], 0, L * NH * m->DK * 4, s->st);
    cudaMemsetAsync(s->mbuf[i], 0, L * NH * 4, s->st);   /* m starts at 0, not -inf */
  }
  cudaMemsetAsync(s->d_par, 0, 4, s->st);
  cudaMemsetAsync(s->logits, 0, (size_t)m->V * 4, s->st);
  s->par = 0;
  s->tokens = 0;
}

extern "C" long xl_cuda_session_tokens(const xl_cuda_session *s) { return s->tokens; }
extern "C" size_t xl_cuda_session_bytes(const xl_cuda_session *s) { return s->bytes; }
extern "C" int xl_cuda_session_segment(const xl_cuda_session *s) { return s->seg; }

/* ---- profiling ---- */

static const char *const ph_names[XLC_NPH] = {
  "start", "embed", "norm", "gemm_in", "gates", "kweight", "cell_cloc", "cell_scan", "cell_s", "cell_mask", "cell_num", "headout",
  "gemm_out", "gemm_up", "silu", "gemm_down", "logits", "step_in", "step_cell", "step_out", "step_up", "step_down", "step_logits"};

void xlc_mark(xl_cuda_session *s, int phase) {
  if (!s->prof_on) return;
  if (s->prof_n == XLC_PROF_EVENTS && xlc_prof_flush(s)) return;
  if (s->prof_n == 0 && phase != XLC_PH_START) {   /* every run of marks starts with a reference event */
    cudaEventRecord(s->prof_ev[0], s->st);
    s->prof_ph[0] = XLC_PH_START;
    s->prof_n = 1;
  }
  cudaEventRecord(s->prof_ev[s->prof_n], s->st);
  s->prof_ph[s->prof_n++] = phase;
}

/* Waits for the marked work and adds each interval to the phase that ended it. */
int xlc_prof_flush(xl_cuda_session *s) {
  if (!s->prof_on || s->prof_n == 0) return 0;
  int n = s->prof_n;
  s->prof_n = 0;
  CU(cudaEventSynchronize(s->prof_ev[n - 1]));
  for (int i = 1; i < n; i++) {
    float ms = 0;
    CU(cudaEventElapsedTime(&ms, s->prof_ev[i - 1], s->prof_ev[i]));
    s->prof_ms[s->prof_ph[i]] += ms;
    s->prof_calls[s->prof_ph[i]]++;
  }
  return 0;
}

extern "C" int xl_cuda_profile(xl_cuda_session *s, int on) {
  CU(cudaSetDevice(s->cm->device));
  if (on && !s->prof_ev) {
    s->prof_ev = (cudaEvent_t *)calloc(XLC_PROF_EVENTS, sizeof(cudaEvent_t));
    if (!s->prof_ev) return xlc_fail("out of host memory");
    for (int i = 0; i < XLC_PROF_EVENTS; i++) CU(cudaEventCreate(&s->prof_ev[i]));
  }
  if (s->prof_on) TRY(xlc_prof_flush(s));
  memset(s->prof_ms, 0, sizeof s->prof_ms);
  memset(s->prof_calls, 0, sizeof s->prof_calls);
  s->prof_n = 0;
  s->prof_on = on;
  return 0;
}

extern "C" int xl_cuda_profile_json(xl_cuda_session *s, char *buf, size_t n) {
  TRY(xlc_prof_flush(s));
  size_t o = (size_t)snprintf(buf, n, "{");
  for (int i = 1; i < XLC_NPH && o < n; i++)
    if (s->prof_calls[i])
      o += (size_t)snprintf(buf + o, n - o, "%s\"%s\":%.3f", o > 1 ? "," : "", ph_names[i], s->prof_ms[i]);
  if (o < n) snprintf(buf + o, n - o, "}");
  return 0;
}

/* ---- state and logits in host layouts ---- */

/* Copies on the session's stream, then waits: the stream does not order itself against the
 * legacy default stream, so a plain cudaMemcpy could race the kernels. */
static int copy_sync(xl_cuda_session *s, void *dst, const void *src, size_t n, cudaMemcpyKind k) {
  CU(cudaMemcpyAsync(dst, src, n, k, s->st));
  CU(cudaStreamSynchronize(s->st));
  return 0;
}

static int state_copy(xl_cuda_session *s, float *C, float *n, float *m, const float *Ci, const float *ni, const float *mi) {
  const xl_cuda_model *cm = s->cm;
  size_t L = cm->L, NH = cm->NH, nC = L * NH * cm->DK * cm->DV * 4, nn = L * NH * cm->DK * 4, nm = L * NH * 4;
  const cudaMemcpyKind d2h = cudaMemcpyDeviceToHost, h2d = cudaMemcpyHostToDevice;
  CU(cudaSetDevice(cm->device));
  if (C) TRY(copy_sync(s, C, s->C, nC, d2h));
  if (n) TRY(copy_sync(s, n, s->nbuf[s->par], nn, d2h));
  if (m) TRY(copy_sync(s, m, s->mbuf[s->par], nm, d2h));
  if (Ci) TRY(copy_sync(s, s->C, Ci, nC, h2d));
  if (ni) TRY(copy_sync(s, s->nbuf[s->par], ni, nn, h2d));
  if (mi) TRY(copy_sync(s, s->mbuf[s->par], mi, nm, h2d));
  return 0;
}

extern "C" int xl_cuda_state_read(xl_cuda_session *s, float *C, float *n, float *m) {
  return state_copy(s, C, n, m, NULL, NULL, NULL);
}

extern "C" int xl_cuda_state_write(xl_cuda_session *s, const float *C, const float *n, const float *m) {
  return state_copy(s, NULL, NULL, NULL, C, n, m);
}

extern "C" int xl_cuda_logits_write(xl_cuda_session *s, const float *logits) {
  CU(cudaSetDevice(s->cm->device));
  return copy_sync(s, s->logits, logits, (size_t)s->cm->V * 4, cudaMemcpyHostToDevice);
}

extern "C" int xl_cuda_logits_read(xl_cuda_session *s, float *logits) {
  CU(cudaSetDevice(s->cm->device));
  return copy_sync(s, logits, s->logits, (size_t)s->cm->V * 4, cudaMemcpyDeviceToHost);
}
