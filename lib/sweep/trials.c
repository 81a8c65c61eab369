/* trials: reading an optimizer run's trials into their settings. See trials.h. */
#include "sweep/trials.h"
#include "io/csvtable.h"
#include "engine/engine.h"
#include "io/records.h"
#include "base/util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const tr_param_names[5] = {"backend", "chunk_size", "heads_per_band", "workers", "context"};

int tr_slug_ok(const char *s) {
  if (!s || !*s || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p == '/' || *p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

char *tr_run_file(const char *run_dir, const char *name) {
  if (!access(name, R_OK)) return xl_strdup(name);
  int e = errno;
  if (name[0] != '/') {
    char *p = xl_path_join(run_dir, name);
    if (!access(p, R_OK)) return p;
    free(p);
  }
  errno = e;
  return NULL;
}

/* obj[key] as an integer in [lo, hi]: 0 ok, 1 missing (absent, null or ""), -1 invalid.
 * Accepts JSON numbers and numeric strings (CSV cells). */
static int get_long(const cJSON *obj, const char *key, long lo, long hi, long *out) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!x || cJSON_IsNull(x)) return 1;
  if (cJSON_IsString(x)) {
    if (!*x->valuestring) return 1;
    return xl_parse_long(x->valuestring, lo, hi, out) ? -1 : 0;
  }
  if (!cJSON_IsNumber(x)) return -1;
  double v = x->valuedouble;
  if (v != (double)(long)v || v < lo || v > hi) return -1;
  *out = (long)v;
  return 0;
}

static const char *get_str(const cJSON *obj, const char *key) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(x) && *x->valuestring ? x->valuestring : NULL;
}

/* Fills t from obj; 0 ok, -1 with err ("where: ..."). */
static int trial_from_obj(tr_trial *t, cJSON *obj, const char *where, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  t->obj = obj;
  const cJSON *sx = cJSON_GetObjectItemCaseSensitive(obj, "slug");
  if (cJSON_IsNumber(sx)) {   /* a CSV cell or a careless writer: keep the text form */
    char buf[64];
    rec_format_number(buf, sizeof buf, sx->valuedouble);
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "slug", cJSON_CreateString(buf));
  }
  t->slug = get_str(obj, "slug");
  if (!t->slug) { snprintf(err, errlen, "%s: no slug", where); return -1; }
  if (!tr_slug_ok(t->slug)) {
    snprintf(err, errlen, "%s: slug '%.80s' cannot name a file (it has '/' or control characters)", where, t->slug);
    return -1;
  }
  const char *status = get_str(obj, "status");
  t->ok = !status || !strcmp(status, "ok");
  struct { const char *key; long lo, hi; long *dst; } ints[] = {
    {"trial", 0, 1L << 40, &t->trial},
  };
  long v;
  t->trial = -1;
  for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
    int rc = get_long(obj, ints[k].key, ints[k].lo, ints[k].hi, &v);
    if (rc < 0) { snprintf(err, errlen, "%s: %s is not an integer >= 0", where, ints[k].key); return -1; }
    if (rc == 0) *ints[k].dst = v;
  }
  struct { const char *key; int *dst; long hi; } knobs[] = {
    {"chunk_size", &t->chunk_size, XL_CHUNK_MAX}, {"heads_per_band", &t->heads_per_band, 1 << 16}, {"workers", &t->workers, 1024}};
  for (size_t k = 0; k < sizeof knobs / sizeof *knobs; k++) {
    *knobs[k].dst = -1;
    int rc = get_long(obj, knobs[k].key, 1, knobs[k].hi, &v);
    /* a failed trial may carry junk settings; it is never run, so only ok trials are strict */
    if (rc < 0 && t->ok) {
      snprintf(err, errlen, "%s: %s is not an integer in [1, %ld]", where, knobs[k].key, knobs[k].hi);
      return -1;
    }
    if (rc == 0) *knobs[k].dst = (int)v;
  }
  t->backend = -1;
  const cJSON *bx = cJSON_GetObjectItemCaseSensitive(obj, "backend");
  if (bx && !cJSON_IsNull(bx) && !(cJSON_IsString(bx) && !*bx->valuestring)) {
    xl_backend b;
    if (cJSON_IsString(bx) && !xl_backend_parse(bx->valuestring, &b)) t->backend = (int)b;
    else if (t->ok) { snprintf(err, errlen, "%s: backend is not \"chunkwise\" or \"recurrent\"", where); return -1; }
  }
  /* every knob (the settings table's and the sampling), checked and made canonical */
  for (int k = 0; k < SW_NKNOBS; k++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, sw_knob(k)->key);
    char text[64], e[256];
    if (cJSON_IsNumber(x)) snprintf(text, sizeof text, "%.17g", x->valuedouble);
    else if (cJSON_IsString(x) && *x->valuestring) snprintf(text, sizeof text, "%s", x->valuestring);
    else continue;
    if (sw_setting_set(&t->s, k, text, e, sizeof e) && t->ok) {
      snprintf(err, errlen, "%s: %s: %s", where, sw_knob(k)->key, e);
      return -1;
    }
  }
  t->sampling_seed = get_str(obj, "sampling_seed");
  t->context = -1;
  int rc = get_long(obj, "context", 0, 1L << 40, &v);
  if (rc == 1) rc = get_long(obj, "prompt_tokens", 0, 1L << 40, &v);
  if (rc == 0) t->context = v;
  t->prompt_file = get_str(obj, "prompt_file");
  return 0;
}

static void list_init(tr_list *l) {
  memset(l, 0, sizeof *l);
  l->root = cJSON_CreateArray();
}

void tr_free(tr_list *l) {
  cJSON_Delete(l->root);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Index of the trial with this slug, or -1. */
static long tr_find(const tr_list *l, const char *slug) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->v[i].slug, slug)) return (long)i;
  return -1;
}

/* Adds obj (taking ownership); a repeated slug replaces the earlier trial in place. */
static int list_add(tr_list *l, cJSON *obj, const char *where, char *err, size_t errlen) {
  cJSON_AddItemToArray(l->root, obj);
  tr_trial t;
  if (trial_from_obj(&t, obj, where, err, errlen)) return -1;
  long at = tr_find(l, t.slug);
  if (at >= 0) { l->v[at] = t; return 0; }
  l->v = xl_realloc(l->v, (l->n + 1) * sizeof *l->v);
  l->v[l->n++] = t;
  return 0;
}

/* tr_read over NDJSON text / CSV text in memory; name is used in messages. */
static int tr_parse_ndjson(tr_list *l, const char *buf, size_t len, const char *name, char *err, size_t errlen) {
  list_init(l);
  cJSON *arr = rec_ndjson_parse(buf, len, name, err, errlen);
  if (!arr && len && buf[len - 1] != '\n') {
    /* a writer killed mid-line leaves a torn last line: drop it if that alone is bad */
    size_t cut = len;
    while (cut > 0 && buf[cut - 1] != '\n') cut--;
    char err2[64];
    arr = rec_ndjson_parse(buf, cut, name, err2, sizeof err2);
    if (arr) xl_warn("%s: ignoring an incomplete last line", name);
  }
  if (!arr) { tr_free(l); return -1; }
  long lineno = 0;
  while (cJSON_GetArraySize(arr) > 0) {
    cJSON *obj = cJSON_DetachItemFromArray(arr, 0);
    char where[512];
    snprintf(where, sizeof where, "%s: record %ld", name, ++lineno);
    if (list_add(l, obj, where, err, errlen)) { cJSON_Delete(arr); tr_free(l); return -1; }
  }
  cJSON_Delete(arr);
  return 0;
}

/* Columns whose cells stay text even when they look like numbers. */
static int text_column(const char *name) {
  static const char *const names[] = {"slug", "status", "error", "backend", "prompt_file", "time", "host", "build",
                                      "model", "device", "matmul", "sampling", "sampling_seed", "prefill_from",
                                      "decode_from", "fingerprint", "key", "blas_core"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(name, names[i])) return 1;
  return 0;
}

static int tr_parse_csv(tr_list *l, const char *buf, size_t len, const char *name, char *err, size_t errlen) {
  csvt t;
  if (csvt_parse(&t, name, buf, len, err, errlen)) { list_init(l); tr_free(l); return -1; }
  list_init(l);
  if (csvt_col(&t, "slug") < 0) {
    snprintf(err, errlen, "%s: no 'slug' column", name);
    csvt_free(&t);
    tr_free(l);
    return -1;
  }
  for (size_t r = 0; r < t.nrows; r++) {
    cJSON *obj = cJSON_CreateObject();
    for (size_t c = 0; c < t.ncols; c++) {
      const char *cell = csvt_get(&t, r, (int)c);
      double d;
      if (!*cell) cJSON_AddNullToObject(obj, t.header[c]);
      else if (!text_column(t.header[c]) && !xl_parse_double(cell, -1e300, 1e300, &d)) cJSON_AddNumberToObject(obj, t.header[c], d);
      else cJSON_AddStringToObject(obj, t.header[c], cell);
    }
    char where[512];
    snprintf(where, sizeof where, "%s: row %zu", name, r + 2);   /* file line, header is 1 */
    if (list_add(l, obj, where, err, errlen)) { csvt_free(&t); tr_free(l); return -1; }
  }
  csvt_free(&t);
  return 0;
}

int tr_read(tr_list *l, const char *path, char *err, size_t errlen) {
  size_t len;
  int stdin_ = !strcmp(path, "-");
  char *buf = stdin_ ? xl_read_stream(stdin, &len) : xl_read_file(path, &len);
  if (!buf) {
    snprintf(err, errlen, "%s: %s", stdin_ ? "standard input" : path, strerror(errno));
    list_init(l);
    tr_free(l);
    return -1;
  }
  size_t pl = strlen(path);
  int rc = !stdin_ && pl >= 4 && !strcmp(path + pl - 4, ".csv")
               ? tr_parse_csv(l, buf, len, path, err, errlen)
               : tr_parse_ndjson(l, buf, len, stdin_ ? "standard input" : path, err, errlen);
  free(buf);
  return rc;
}

void tr_add_params(const tr_trial *t, cJSON *obj) {
  if (t->backend >= 0) cJSON_AddStringToObject(obj, "backend", xl_backend_name((xl_backend)t->backend));
  else cJSON_AddNullToObject(obj, "backend");
  const int knobs[3] = {t->chunk_size, t->heads_per_band, t->workers};
  for (int k = 0; k < 3; k++)
    if (knobs[k] > 0) cJSON_AddNumberToObject(obj, tr_param_names[k + 1], knobs[k]);
    else cJSON_AddNullToObject(obj, tr_param_names[k + 1]);
  if (t->context >= 0) cJSON_AddNumberToObject(obj, "context", (double)t->context);
  else cJSON_AddNullToObject(obj, "context");
}

void tr_add_knobs(const tr_trial *t, cJSON *obj) {
  for (int k = 0; k < SW_NKNOBS; k++) {
    if (SW_CLASSIC(k) || !t->s.v[k][0]) continue;
    cJSON_AddStringToObject(obj, sw_knob(k)->key, t->s.v[k]);
  }
  if (t->sampling_seed) cJSON_AddStringToObject(obj, "sampling_seed", t->sampling_seed);
}
