/* checkpoint: the parts of opening a checkpoint that every architecture shares: tensor
 * lookup with shape and dtype checks, binding matrices in their stored dtype and small
 * vectors as fp32 copies, the fingerprint, the default model's place. See checkpoint.h. */
#include "engine/checkpoint.h"
#include "base/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const st_tensor *xl_find_tensor(const xl_model *m, const char *name) { return st_find(&m->st, name); }

void *xl_model_own(xl_model *m, void *p) {
  m->owned = xl_realloc(m->owned, sizeof(void *) * (m->nowned + 1));
  m->owned[m->nowned++] = p;
  return p;
}

static int is_float(st_dtype t) { return t == ST_F32 || t == ST_BF16 || t == ST_F16; }

static int check_shape(const st_tensor *t, int ndim, const int64_t *dims, char *err, size_t errlen) {
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || t->shape[i] == dims[i];
  if (ok) return 0;
  char want[128] = "", got[128] = "";
  for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)dims[i]);
  for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  return xl_errf(err, errlen, "tensor '%s' has shape [%s], expected [%s]", t->name, got, want);
}

/* A matrix view of rows [r0, r0+rows) of a 2-D tensor [total_rows, cols]. */
int xl_bind_rows(xl_model *m, const st_tensor *t, int total_rows, int r0, int rows, int cols, xl_mat *out, char *err,
                     size_t errlen) {
  int64_t dims[2] = {total_rows, cols};
  if (check_shape(t, 2, dims, err, errlen)) return -1;
  if (!is_float(t->dtype)) return xl_errf(err, errlen, "tensor '%s' has dtype %s; weights must be F32, BF16 or F16", t->name, st_dtype_name(t->dtype));
  size_t es = st_dtype_size(t->dtype);
  const char *p = (const char *)t->data + (size_t)r0 * cols * es;
  if (((uintptr_t)p) % es) {   /* misaligned in the file: keep an aligned copy */
    void *c = xl_model_own(m, xl_malloc((size_t)rows * cols * es));
    memcpy(c, p, (size_t)rows * cols * es);
    p = c;
  }
  *out = (xl_mat){t->dtype, rows, cols, p};
  return 0;
}

int xl_bind_mat(xl_model *m, const char *name, int rows, int cols, xl_mat *out, char *err, size_t errlen) {
  const st_tensor *t = st_find(&m->st, name);
  if (!t) return xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, name);
  return xl_bind_rows(m, t, rows, 0, rows, cols, out, err, errlen);
}

/* fp32 copy of a 1-D tensor [total] from offset off, n long. */
int xl_bind_vec_part(xl_model *m, const st_tensor *t, int total, int off, int n, float **out, char *err, size_t errlen) {
  int64_t dims[1] = {total};
  if (check_shape(t, 1, dims, err, errlen)) return -1;
  if (!is_float(t->dtype)) return xl_errf(err, errlen, "tensor '%s' has dtype %s; expected F32, BF16 or F16", t->name, st_dtype_name(t->dtype));
  float *v = xl_model_own(m, xl_malloc(sizeof(float) * (size_t)n));
  size_t es = st_dtype_size(t->dtype);
  /* memcpy first: the source may be unaligned */
  void *tmp = xl_malloc((size_t)n * es);
  memcpy(tmp, (const char *)t->data + (size_t)off * es, (size_t)n * es);
  xl_to_f32(t->dtype, tmp, v, (size_t)n);
  free(tmp);
  *out = v;
  return 0;
}

int xl_bind_vec(xl_model *m, const char *name, int n, float **out, int required, char *err, size_t errlen) {
  const st_tensor *t = st_find(&m->st, name);
  *out = NULL;
  if (!t) return required ? xl_errf(err, errlen, "%s: missing tensor '%s'", m->dir, name) : 0;
  return xl_bind_vec_part(m, t, n, 0, n, out, err, errlen);
}

/* The first present name among alternatives (for q/query etc). */
const char *xl_pick_name(const xl_model *m, char *buf, size_t n, const char *prefix, const char *a, const char *b) {
  snprintf(buf, n, "%s%s", prefix, a);
  if (st_find(&m->st, buf) || !b) return buf;
  char alt[512];
  snprintf(alt, sizeof alt, "%s%s", prefix, b);
  if (st_find(&m->st, alt)) snprintf(buf, n, "%s", alt);
  return buf;
}

void xl_model_fingerprint(xl_model *m, const char *config_text) {
  uint64_t h = xl_fnv1a(XL_FNV_INIT, config_text, strlen(config_text));
  for (int i = 0; i < m->st.ntensors; i++) {
    const st_tensor *t = &m->st.tensors[i];
    h = xl_fnv1a(h, t->name, strlen(t->name) + 1);
    h = xl_fnv1a(h, &t->dtype, sizeof t->dtype);
    h = xl_fnv1a(h, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
    /* a sample of the values: distinguishes checkpoints of the same shape without reading 14 GB */
    size_t n = t->nbytes < 64 ? t->nbytes : 64;
    h = xl_fnv1a(h, t->data, n);
    h = xl_fnv1a(h, (const char *)t->data + (t->nbytes - n) / 2, n);
    h = xl_fnv1a(h, (const char *)t->data + t->nbytes - n, n);
    m->weight_bytes += t->nbytes;
  }
  m->fingerprint = h;
  snprintf(m->fingerprint_hex, sizeof m->fingerprint_hex, "%016llx", (unsigned long long)h);
}

char *xl_default_model_dir(void) {
  const char *env = getenv("XL_MODEL");
  if (env && *env) return xl_strdup(env);
  return xl_find_resource("models/xlstm-tiny-pydocs", "config.json");
}
