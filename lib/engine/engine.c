/* engine: the dispatcher. The tables below name every architecture and the device
 * implementations of each; nothing else in the engine asks which one it runs. See engine.h. */
#include "engine/engine.h"
#include "engine/blasenv.h"
#include "base/util.h"
#include "engine/checkpoint.h"
#include "engine/v1/v1.h"
#include "engine/xlstm/xlstm.h"
#ifdef XL_HAVE_CUDA
#include "engine/cuda/cuda_ops.h"
#define XLSTM_CUDA_OPS (&xl_cuda_xlstm_ops)
#else
#define XLSTM_CUDA_OPS NULL
#endif
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const xl_arch_ops architectures[] = {
    {"xlstm", XL_ARCH_LARGE, xl_xlstm_parse_config, xl_xlstm_bind, xl_xlstm_unbind, &xl_xlstm_cpu_ops, XLSTM_CUDA_OPS},
    {"xlstm_v1", XL_ARCH_V1, xl_v1_config_parse, xl_v1_bind, xl_v1_unbind, &xl_v1_cpu_ops, NULL},
};
enum { N_ARCH = sizeof architectures / sizeof *architectures };

static const xl_arch_ops *arch_of(xl_arch id) {
  for (int i = 0; i < N_ARCH; i++)
    if (architectures[i].id == id) return &architectures[i];
  return NULL;
}

const char *xl_backend_name(xl_backend b) { return b == XL_BACKEND_RECURRENT ? "recurrent" : "chunkwise"; }
int xl_backend_parse(const char *s, xl_backend *out) {
  if (!strcmp(s, "chunkwise")) *out = XL_BACKEND_CHUNKWISE;
  else if (!strcmp(s, "recurrent")) *out = XL_BACKEND_RECURRENT;
  else return -1;
  return 0;
}

int xl_device_parse(const char *s, xl_device *dev, int *index) {
  long i = 0;
  if (!strcmp(s, "cpu")) { *dev = XL_DEVICE_CPU; *index = 0; return 0; }
  if (strncmp(s, "cuda", 4)) return -1;
  if (s[4] == ':' && xl_parse_long(s + 5, 0, 255, &i)) return -1;
  if (s[4] && s[4] != ':') return -1;
  *dev = XL_DEVICE_CUDA;
  *index = (int)i;
  return 0;
}

const char *xl_device_label(xl_device dev, int index, char *buf, size_t n) {
  if (dev == XL_DEVICE_CPU) snprintf(buf, n, "cpu");
  else snprintf(buf, n, "cuda:%d", index);
  return buf;
}

int xl_built_with_cuda(void) {
#ifdef XL_HAVE_CUDA
  return 1;
#else
  return 0;
#endif
}

void xl_runopts_default(xl_runopts *o, const xl_model *m) {
  memset(o, 0, sizeof *o);
  o->backend = XL_BACKEND_CHUNKWISE;
  o->chunk_size = m && m->cfg.chunk_size > 0 ? m->cfg.chunk_size : 64;
  o->workers = 1;
  o->heads_per_band = 1;
  o->device = XL_DEVICE_CPU;
}

/* ---- config and model ---- */

int xl_config_parse(xl_config *c, const char *text, const char *path, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  cJSON *root = cJSON_Parse(text);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return xl_errf(err, errlen, "%s: not a JSON object", path);
  }
  int rc = -1;
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
  const char *type = "xlstm";   /* the 7B family's checkpoints may omit it */
  if (mt && !cJSON_IsString(mt)) xl_errf(err, errlen, "%s: field \"model_type\" must be a string", path);
  else {
    if (mt) type = mt->valuestring;
    const xl_arch_ops *a = NULL;
    for (int i = 0; i < N_ARCH && !a; i++)
      if (!strcmp(type, architectures[i].model_type)) a = &architectures[i];
    if (a) {
      rc = a->parse_config(c, root, path, err, errlen);
      if (!rc && c->bos_id >= c->vocab)   /* the BOS id is fed to the model: it needs an embedding row */
        rc = xl_errf(err, errlen, "%s: field \"bos_token_id\" (%d) must be below vocab_size (%d)", path, c->bos_id, c->vocab);
    } else {
      char names[128] = "";
      for (int i = 0; i < N_ARCH; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"", i ? ", " : "", architectures[i].model_type);
      xl_errf(err, errlen, "%s: field \"model_type\" is \"%s\"; supported: %s", path, type, names);
    }
  }
  cJSON_Delete(root);
  if (rc) xl_config_free(c);
  return rc;
}

int xl_config_load(xl_config *c, const char *dir, char *err, size_t errlen) {
  char *p = xl_path_join(dir, "config.json");
  char *text = xl_read_file(p, NULL);
  int rc;
  if (!text) rc = xl_errf(err, errlen, "%s: cannot read: %s", p, strerror(errno));
  else rc = xl_config_parse(c, text, p, err, errlen);
  free(text);
  free(p);
  return rc;
}

xl_model *xl_model_load(const char *dir, char *err, size_t errlen) {
  xl_model *m = xl_calloc(1, sizeof *m);
  m->dir = xl_strdup(dir);
  char *cpath = xl_path_join(dir, "config.json");
  char *ctext = xl_read_file(cpath, NULL);
  if (!ctext) {
    xl_errf(err, errlen, "%s: cannot read: %s", cpath, strerror(errno));
    free(cpath);
    xl_model_free(m);
    return NULL;
  }
  int rc = xl_config_parse(&m->cfg, ctext, cpath, err, errlen);
  free(cpath);
  if (!rc) rc = st_open_dir(&m->st, dir, err, errlen);
  if (!rc) xl_model_fingerprint(m, ctext);
  free(ctext);
  if (!rc) {
    m->arch = arch_of(m->cfg.arch);
    rc = m->arch->bind(m, err, errlen);
  }
  if (rc) { xl_model_free(m); return NULL; }
  return m;
}

void xl_model_free(xl_model *m) {
  if (!m) return;
  if (m->device_weights && m->device_weights_free) m->device_weights_free(m->device_weights);
  if (m->arch) m->arch->unbind(m);
  for (int i = 0; i < m->nowned; i++) free(m->owned[i]);
  free(m->owned);
  st_close(&m->st);
  xl_config_free(&m->cfg);
  free(m->dir);
  free(m);
}

/* ---- sessions ---- */

static const xl_session_ops *ops_for(const xl_model *m, const xl_runopts *o, char *err, size_t errlen) {
  if (o->device == XL_DEVICE_CPU) return m->arch->cpu;
  if (!xl_built_with_cuda()) {
    xl_errf(err, errlen, "--device cuda: this build has no CUDA device (nvcc was not found when it was built; "
                         "rebuild where nvcc is on PATH or under /usr/local/cuda)");
    return NULL;
  }
  if (!m->arch->cuda) {
    xl_errf(err, errlen, "--device cuda: %s models do not run on the GPU yet; use --device cpu", m->arch->model_type);
    return NULL;
  }
  return m->arch->cuda;
}

int xl_device_check(const xl_model *m, const xl_runopts *o, char *err, size_t errlen) {
  const xl_session_ops *ops = ops_for(m, o, err, errlen);
  if (!ops) return -1;
  if (!xl_kernels_supported(o->kernels)) return xl_kernels_select(o->kernels, err, errlen);   /* says what is missing */
#ifdef XL_HAVE_CUDA
  if (o->device == XL_DEVICE_CUDA) return xl_cuda_check(o->device_index, err, errlen);
#endif
  return 0;
}

xl_session *xl_session_new(const xl_model *m, const xl_runopts *opt, char *err, size_t errlen) {
  if (opt->chunk_size < 0 || opt->workers < 1 || opt->heads_per_band < 1) {
    snprintf(err, errlen, "chunk size, workers and heads per band must be >= 1");
    return NULL;
  }
  const xl_session_ops *ops = ops_for(m, opt, err, errlen);
  if (!ops) return NULL;
  if (xl_kernels_select(opt->kernels, err, errlen)) return NULL;
  /* under ulimit -v: OpenBLAS's buffers and threads for these workers now, or a clear error */
  if (opt->device == XL_DEVICE_CPU && xl_blas_reserve(opt->workers, err, errlen)) return NULL;
  xl_session *s = xl_calloc(1, sizeof *s);
  s->m = m;
  s->opt = *opt;
  if (s->opt.chunk_size == 0) s->opt.chunk_size = m->cfg.chunk_size > 0 ? m->cfg.chunk_size : 64;
  s->ops = ops;
  s->last_token = -1;
  if (ops->init(s, err, errlen)) { xl_session_free(s); return NULL; }
  /* again: the set-up may have stopped OpenBLAS's threads (pgemm's once-per-process restart);
   * they start now, where a failure is caught, not in the first GEMM */
  if (opt->device == XL_DEVICE_CPU && xl_blas_reserve(s->opt.workers, err, errlen)) { xl_session_free(s); return NULL; }
  return s;
}

void xl_session_free(xl_session *s) {
  if (!s) return;
  if (s->ops) s->ops->free(s);
  free(s->snapshot);
  free(s);
}

/* The state's copy before a segment, so an interrupted segment leaves no trace. */
typedef struct { float *buf; size_t off; int restore; } snap_ctx;
static void snap_tensor(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  snap_ctx *c = ctx;
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  if (c->buf) {
    if (c->restore) memcpy(data, c->buf + c->off, n * sizeof(float));
    else memcpy(c->buf + c->off, data, n * sizeof(float));
  }
  c->off += n;
  (void)name;
}
static int snapshot(xl_session *s, int restore) {
  if (!s->snapshot) {   /* sized once, on the first interruptible segment */
    snap_ctx count = {NULL, 0, 0};
    if (s->ops->state_visit(s, snap_tensor, &count, 0)) return -1;
    s->snapshot_floats = count.off;
    s->snapshot = xl_malloc((count.off ? count.off : 1) * sizeof(float));
  }
  snap_ctx c = {s->snapshot, 0, restore};
  return s->ops->state_visit(s, snap_tensor, &c, restore);
}

void xl_session_reset(xl_session *s) {
  s->ops->reset(s);
  memset(s->logits, 0, sizeof(float) * (size_t)s->m->cfg.vocab);
  s->logits_stale = 0;
  s->tokens = 0;
  s->last_token = -1;
}

int xl_step(xl_session *s, int token) {
  if (s->ops->step(s, token)) return -1;
  s->tokens++;
  s->last_token = token;
  s->logits_stale = s->ops->fetch_logits != NULL;
  return 0;
}

/* The recurrent backend: token steps, the reference path on every device. */
static int prefill_steps(xl_session *s, const int32_t *ids, int T, float *all_logits) {
  int V = s->m->cfg.vocab;
  for (int t = 0; t < T; t++) {
    if (s->opt.interrupted && s->opt.interrupted(s->opt.progress_ctx)) return 1;
    if (xl_step(s, ids[t])) return -1;
    if (all_logits) {
      const float *l = xl_session_logits(s);
      if (!l) return -1;
      memcpy(all_logits + (size_t)t * V, l, sizeof(float) * V);
    }
  }
  return 0;
}

int xl_prefill(xl_session *s, const int32_t *ids, long n, float *all_logits) {
  int V = s->m->cfg.vocab, chunkwise = s->opt.backend == XL_BACKEND_CHUNKWISE;
  double t0 = xl_now();
  for (long t = 0; t < n; t += s->segment) {
    int T = n - t < s->segment ? (int)(n - t) : s->segment;
    float *rows = all_logits ? all_logits + (size_t)t * V : NULL;
    if (chunkwise) {
      if (s->opt.interrupted && snapshot(s, 0)) return -1;
      int rc = s->ops->prefill(s, ids + t, T, rows);
      if (rc == 1) return snapshot(s, 1) ? -1 : 0;   /* stopped inside the segment: as if never begun */
      if (rc) return -1;
      s->tokens += T;
      s->last_token = ids[t + T - 1];
      s->logits_stale = s->ops->fetch_logits != NULL;
    } else {
      int rc = prefill_steps(s, ids + t, T, rows);
      if (rc == 1) return 0;   /* stopped between two tokens: the state covers those consumed */
      if (rc) return -1;
    }
    if (s->opt.progress && s->opt.progress(s->opt.progress_ctx, t + T, n, xl_now() - t0)) break;
  }
  return 0;
}

const float *xl_session_logits(xl_session *s) {
  if (s->logits_stale) {
    if (s->ops->fetch_logits(s)) return NULL;
    s->logits_stale = 0;
  }
  return s->logits;
}

int xl_session_sample(xl_session *s, xl_sampler *smp, int *token) {
  const xl_sampling *c = &smp->cfg;
  int greedy = c->greedy || c->temperature <= 0;
  if (s->ops->sample && s->logits_stale)
    return s->ops->sample(s, greedy, c->temperature, c->top_k, c->top_p, greedy ? 0.0 : xl_sampler_uniform(smp), token);
  const float *l = xl_session_logits(s);
  if (!l) return -1;
  *token = xl_sample(smp, l);
  return 0;
}

int xl_session_visit_state(xl_session *s, xl_state_visit_fn fn, void *ctx, int loading) {
  return s->ops->state_visit(s, fn, ctx, loading);
}
