/* cuda_ops: the engine's CUDA device for the 7B family. See cuda_ops.h. */
#ifdef XL_HAVE_CUDA
#include "engine/cuda/cuda_ops.h"
#include "base/util.h"
#include "engine/cuda/cublas_lazy.h"
#include "engine/cuda/cuda.h"
#include "engine/xlstm/xlstm.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  xl_cuda_session *gpu;
  float *C, *n, *m;   /* host copies of the state, for state files and tests */
} cuda_sess;

/* Sessions may be created from several threads (the judge's fan-out): one upload. */
static pthread_mutex_t upload_lock = PTHREAD_MUTEX_INITIALIZER;

int xl_cuda_check(int device, char *err, size_t errlen) {
  char why[512];
  if (xl_cuda_probe(device, why, sizeof why)) return xl_errf(err, errlen, "--device cuda:%d: %s", device, why);
  if (xl_cublas_load(why, sizeof why)) return xl_errf(err, errlen, "--device cuda:%d: %s", device, why);
  return 0;
}

static void free_weights(void *w) { xl_cuda_model_free(w); }

static xl_cuda_model *weights_on(xl_model *m, int device, char *err, size_t errlen) {
  pthread_mutex_lock(&upload_lock);
  if (!m->device_weights) {
    m->device_weights = xl_cuda_model_upload(m, device, err, errlen);
    m->device_index = device;
    m->device_weights_free = free_weights;
  } else if (m->device_index != device) {
    xl_errf(err, errlen, "--device cuda:%d: this model's weights are already on cuda:%d", device, m->device_index);
    pthread_mutex_unlock(&upload_lock);
    return NULL;
  }
  pthread_mutex_unlock(&upload_lock);
  return m->device_weights;
}

static int fail(const char *what) {
  xl_warn("%s on the GPU: %s", what, xl_cuda_last_error());
  return -1;
}

static int init(xl_session *s, char *err, size_t errlen) {
  const xl_config *c = &s->m->cfg;
  cuda_sess *cs = xl_calloc(1, sizeof *cs);
  s->impl = cs;
  xl_cuda_model *cm = weights_on((xl_model *)s->m, s->opt.device_index, err, errlen);   /* the model's device cache */
  if (!cm) return -1;
  xl_cuda_opts o = {.chunk_size = s->opt.chunk_size, .matmul_bf16 = s->opt.matmul_bf16, .max_segment = s->opt.segment};
  cs->gpu = xl_cuda_session_new(cm, &o, err, errlen);
  if (!cs->gpu) return -1;
  size_t nC = (size_t)c->n_blocks * c->n_heads * c->dk * c->dv, nn = (size_t)c->n_blocks * c->n_heads * c->dk;
  size_t nm = (size_t)c->n_blocks * c->n_heads;
  cs->C = xl_calloc(nC, sizeof(float));
  cs->n = xl_calloc(nn, sizeof(float));
  cs->m = xl_calloc(nm, sizeof(float));
  s->logits = xl_calloc((size_t)c->vocab, sizeof(float));
  s->scratch_bytes = (nC + nn + nm + (size_t)c->vocab) * sizeof(float);
  s->segment = xl_cuda_session_segment(cs->gpu);
  return 0;
}

static void release(xl_session *s) {
  cuda_sess *cs = s->impl;
  if (!cs) return;
  xl_cuda_session_free(cs->gpu);
  free(cs->C), free(cs->n), free(cs->m);
  free(cs);
  free(s->logits);
  s->impl = NULL;
  s->logits = NULL;
}

static void reset(xl_session *s) {
  cuda_sess *cs = s->impl;
  xl_cuda_session_reset(cs->gpu);
}

static int step(xl_session *s, int token) {
  cuda_sess *cs = s->impl;
  return xl_cuda_step(cs->gpu, token, NULL) ? fail("decode step") : 0;
}

static int prefill(xl_session *s, const int32_t *ids, int T, float *all_logits) {
  cuda_sess *cs = s->impl;
  return xl_cuda_prefill(cs->gpu, ids, T, all_logits, NULL) ? fail("prefill") : 0;
}

static int fetch_logits(xl_session *s) {
  cuda_sess *cs = s->impl;
  return xl_cuda_logits_read(cs->gpu, s->logits) ? fail("reading the logits") : 0;
}

static int store_logits(xl_session *s) {
  cuda_sess *cs = s->impl;
  return xl_cuda_logits_write(cs->gpu, s->logits) ? fail("writing the logits") : 0;
}

static int state_visit(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading) {
  cuda_sess *cs = s->impl;
  if (!loading && xl_cuda_state_read(cs->gpu, cs->C, cs->n, cs->m)) return fail("reading the state");
  xl_xlstm_visit_state(&s->m->cfg, cs->C, cs->n, cs->m, fn, ctx);
  if (loading && xl_cuda_state_write(cs->gpu, cs->C, cs->n, cs->m)) return fail("writing the state");
  return 0;
}

static int sample(xl_session *s, int greedy, float temperature, int top_k, float top_p, double u01, int *token) {
  cuda_sess *cs = s->impl;
  return xl_cuda_sample(cs->gpu, greedy, temperature, top_k, top_p, u01, token) ? fail("sampling") : 0;
}

const xl_session_ops xl_cuda_xlstm_ops = {
    .device = "cuda", .init = init, .free = release, .reset = reset, .step = step, .prefill = prefill,
    .state_visit = state_visit, .fetch_logits = fetch_logits, .store_logits = store_logits, .sample = sample,
};
#else
/* Built without CUDA: the dispatcher refuses --device cuda with a message (engine.c). */
typedef int xl_cuda_ops_unused;
#endif
