/* goldenlib: what the golden tests share: the cases of a golden.json (their ids), F32
 * tensors of a golden.safetensors by name and size, and max/mean absolute differences. */
#ifndef XL_GOLDENLIB_H
#define XL_GOLDENLIB_H
#include "io/safetensors.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int n; int32_t *ids; } gcase;   /* ids owned: free(ids) */

/* Reads up to max cases' ids from a golden.json; returns how many. */
static inline int load_cases(const char *json_path, gcase *cases, int max) {
  char *text = xl_read_file(json_path, NULL);
  if (!text) return 0;
  cJSON *j = cJSON_Parse(text);
  free(text);
  int nc = 0;
  cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
    if (nc == max) break;
    cJSON *ids = cJSON_GetObjectItem(c, "ids"), *x;
    cases[nc].n = cJSON_GetArraySize(ids);
    cases[nc].ids = xl_malloc(sizeof(int32_t) * (size_t)(cases[nc].n + 1));
    int i = 0;
    cJSON_ArrayForEach(x, ids) cases[nc].ids[i++] = (int32_t)x->valueint;
    nc++;
  }
  cJSON_Delete(j);
  return nc;
}

/* An F32 tensor of exactly numel elements, or NULL. */
static inline const float *golden(const st_set *g, const char *name, int64_t numel) {
  const st_tensor *t = st_find(g, name);
  if (!t || t->dtype != ST_F32 || t->numel != numel) return NULL;
  return t->data;
}

/* max and mean |a-b|; a NaN makes max NaN, which fails every <= check. */
static inline void diff(const float *a, const float *b, size_t n, double *mx, double *mean) {
  double m = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (!(d <= m)) m = d;
    s += d;
  }
  *mx = m;
  *mean = n ? s / n : 0;
}
#ifdef XL_ENGINE_H
/* A copy of the session's state tensor `name` ("layer0.C", ...) read through the engine
 * interface (any architecture, any device); malloc'd, NULL when the session has none. */
typedef struct { const char *name; float *copy; } gl_state_find;
static void gl_state_visit(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  gl_state_find *f = ctx;
  if (f->copy || strcmp(name, f->name)) return;
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  f->copy = xl_malloc(n * sizeof(float));
  memcpy(f->copy, data, n * sizeof(float));
}
static inline float *session_state(xl_session *s, const char *name) {
  gl_state_find f = {name, NULL};
  xl_session_visit_state(s, gl_state_visit, &f, 0);
  return f.copy;
}
#endif

#endif
