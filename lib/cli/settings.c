/* settings: the table of run settings and everything that reads or writes them.
 * See settings.h. To add a setting: a field in xl_runopts (engine/session.h), an id and a
 * row below, and its case in parse_named/format_named when it has named values. */
#include "cli/settings.h"
#include "base/util.h"
#include "cli/flags.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const xl_setting xl_settings[XS_COUNT] = {
    [XS_DEVICE] = {"device", "--device", "XL_DEVICE", "D", 0, 0, "cpu|cuda|cuda:N",
                   "where the model runs: cpu (default) or cuda[:N], an NVIDIA GPU (the 7B\n"
                   "family; the weights are uploaded once in their stored dtype)"},
    [XS_BACKEND] = {"backend", "--backend", "XL_BACKEND", "B", 0, 0, "chunkwise|recurrent",
                    "prefill backend: chunkwise (GEMMs, default) or recurrent (token\n"
                    "steps, the reference path); decode always steps"},
    [XS_CHUNK_SIZE] = {"chunk_size", "--chunk-size", "XL_CHUNK_SIZE", "N", 1, XL_CHUNK_MAX, NULL,
                       "tokens per chunk of the chunkwise prefill (default: the model's\n"
                       "chunk_size)"},
    [XS_HEADS_PER_BAND] = {"heads_per_band", "--heads-per-band", "XL_HEADS_PER_BAND", "H", 1, 1 << 16, NULL,
                           "heads per parallel task in the CPU cell (default 1)"},
    [XS_WORKERS] = {"workers", "--workers", "XL_WORKERS", "N", 1, 1024, NULL,
                    "CPU threads: N runs our head bands and matvec row bands, and OpenBLAS\n"
                    "gets the same N for the projection GEMMs but one thread inside head\n"
                    "tasks, so no more than N threads are ever busy; use at most the\n"
                    "number of cores (default 1)"},
    [XS_MATMUL] = {"matmul", "--matmul", "XL_MATMUL", "fp32|bf16", 0, 0, "fp32|bf16",
                   "fp32 (default; exact) or bf16: activations rounded to bf16 before\n"
                   "each matrix product (a speed/quality trade; tensor cores on a GPU)"},
    [XS_KERNELS] = {"kernels", "--kernels", "XL_KERNELS", "K", 0, 0, "auto|avx512bf16|avx512|avx2|scalar",
                    "CPU kernels: auto (default: the best this CPU has), or force\n"
                    "avx512bf16 (AVX-512, and --matmul bf16 GEMMs on the BF16 units via\n"
                    "oneDNN), avx512, avx2 (AVX2+FMA) or scalar (plain C), e.g. to test\n"
                    "them; one this CPU lacks is an error"},
};

const xl_setting *xl_setting_by_key(const char *key) {
  for (int i = 0; i < XS_COUNT; i++)
    if (!strcmp(xl_settings[i].key, key)) return &xl_settings[i];
  return NULL;
}

const xl_setting *xl_setting_by_flag(const char *flag) {
  for (int i = 0; i < XS_COUNT; i++)
    if (!strcmp(xl_settings[i].flag, flag)) return &xl_settings[i];
  return NULL;
}

static int is_int(xl_setting_id id) { return xl_settings[id].hi > 0; }

static int *int_field(xl_setting_id id, xl_runopts *o) {
  switch (id) {
  case XS_CHUNK_SIZE: return &o->chunk_size;
  case XS_HEADS_PER_BAND: return &o->heads_per_band;
  case XS_WORKERS: return &o->workers;
  default: return NULL;
  }
}

/* Settings with named values. 0 ok. */
static int parse_named(xl_setting_id id, const char *s, xl_runopts *o) {
  switch (id) {
  case XS_DEVICE: return xl_device_parse(s, &o->device, &o->device_index);
  case XS_BACKEND: return xl_backend_parse(s, &o->backend);
  case XS_MATMUL:
    if (!strcmp(s, "fp32")) o->matmul_bf16 = 0;
    else if (!strcmp(s, "bf16")) o->matmul_bf16 = 1;
    else return -1;
    return 0;
  case XS_KERNELS: return xl_kernels_parse(s, &o->kernels);
  default: return -1;
  }
}

static const char *format_named(xl_setting_id id, const xl_runopts *o, char *buf, size_t n) {
  switch (id) {
  case XS_DEVICE: return xl_device_label(o->device, o->device_index, buf, n);
  case XS_BACKEND: snprintf(buf, n, "%s", xl_backend_name(o->backend)); return buf;
  case XS_MATMUL: snprintf(buf, n, "%s", o->matmul_bf16 ? "bf16" : "fp32"); return buf;
  case XS_KERNELS: snprintf(buf, n, "%s", xl_kernels_name(o->kernels)); return buf;
  default: snprintf(buf, n, "?"); return buf;
  }
}

int xl_setting_parse(xl_setting_id id, const char *text, xl_runopts *o, const char *where, char *err, size_t errlen) {
  const xl_setting *s = &xl_settings[id];
  if (is_int(id)) {
    long v;
    if (xl_parse_long(text, s->lo, s->hi, &v))
      return xl_errf(err, errlen, "%s: '%s' is not an integer in [%ld, %ld]", where, text, s->lo, s->hi);
    *int_field(id, o) = (int)v;
    return 0;
  }
  char list[128];
  if (parse_named(id, text, o)) return xl_errf(err, errlen, "%s: '%s' is not %s", where, text, xl_choices_text(s->choices, list, sizeof list));
  return 0;
}

int xl_setting_parse_json(xl_setting_id id, const cJSON *v, xl_runopts *o, const char *where, char *err, size_t errlen) {
  const xl_setting *s = &xl_settings[id];
  if (is_int(id)) {
    if (!cJSON_IsNumber(v) || v->valuedouble < s->lo || v->valuedouble > s->hi || v->valuedouble != (double)(long)v->valuedouble)
      return xl_errf(err, errlen, "%s must be an integer in [%ld, %ld]", where, s->lo, s->hi);
    *int_field(id, o) = (int)v->valuedouble;
    return 0;
  }
  if (!cJSON_IsString(v) || parse_named(id, v->valuestring, o))
    return xl_errf(err, errlen, "%s must be one of \"%s\" (as a string)", where, s->choices);
  return 0;
}

const char *xl_setting_format(xl_setting_id id, const xl_runopts *o, char *buf, size_t n) {
  if (is_int(id)) {
    snprintf(buf, n, "%d", *int_field(id, (xl_runopts *)o));
    return buf;
  }
  return format_named(id, o, buf, n);
}

cJSON *xl_setting_json(xl_setting_id id, const xl_runopts *o) {
  char buf[64];
  if (is_int(id)) return cJSON_CreateNumber(*int_field(id, (xl_runopts *)o));
  return cJSON_CreateString(format_named(id, o, buf, sizeof buf));
}

int xl_settings_parse_flag(xl_settings_given *g, int argc, char **argv, int *i) {
  for (int id = 0; id < XS_COUNT; id++) {
    const char *v = xl_flag_value(argc, argv, i, xl_settings[id].flag);
    if (!v) continue;
    xl_runopts probe;
    char err[256];
    xl_runopts_default(&probe, NULL);
    if (xl_setting_parse(id, v, &probe, xl_settings[id].flag, err, sizeof err)) xl_usage_error("%s", err);
    g->flag[id] = v;
    return 1;
  }
  return 0;
}

int xl_settings_resolve(xl_runopts *o, const xl_model *m, const xl_settings_given *g, char *err, size_t errlen) {
  xl_runopts_default(o, m);
  for (int id = 0; id < XS_COUNT; id++) {
    const char *e = getenv(xl_settings[id].env);
    if (e && *e && xl_setting_parse(id, e, o, xl_settings[id].env, err, errlen)) return -1;
  }
  if (g && g->profile && xl_settings_apply_profile(g->profile, o, err, errlen)) return -1;
  for (int id = 0; g && id < XS_COUNT; id++)
    if (g->flag[id] && xl_setting_parse(id, g->flag[id], o, xl_settings[id].flag, err, errlen)) return -1;
  return 0;
}

/* The object holding a profile's settings: "params", or the top level. */
static const cJSON *params_object(const cJSON *j) {
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "params");
  return cJSON_IsObject(p) ? p : j;
}

int xl_settings_is_profile(const char *path) {
  size_t len;
  char *text = xl_read_file(path, &len);
  if (!text) return 0;
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  int yes = 0;
  if (cJSON_IsObject(j)) {
    yes = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "params"));
    for (int id = 0; !yes && id < XS_COUNT; id++) yes = cJSON_GetObjectItemCaseSensitive(j, xl_settings[id].key) != NULL;
  }
  cJSON_Delete(j);
  return yes;
}

int xl_settings_apply_profile(const char *path, xl_runopts *o, char *err, size_t errlen) {
  size_t len;
  char *text = xl_read_file(path, &len);
  if (!text) return xl_errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return xl_errf(err, errlen, "%s: not a JSON settings profile", path);
  }
  const cJSON *p = params_object(j);
  int rc = 0;
  for (int id = 0; !rc && id < XS_COUNT; id++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, xl_settings[id].key);
    if (!x || cJSON_IsNull(x)) continue;
    char where[512];
    snprintf(where, sizeof where, "%s: params.%s", path, xl_settings[id].key);
    rc = xl_setting_parse_json(id, x, o, where, err, errlen);
  }
  cJSON_Delete(j);
  return rc;
}

cJSON *xl_settings_params(const xl_runopts *o) {
  cJSON *p = cJSON_CreateObject();
  for (int id = 0; id < XS_COUNT; id++) cJSON_AddItemToObject(p, xl_settings[id].key, xl_setting_json(id, o));
  return p;
}

cJSON *xl_settings_params_check(const cJSON *params, const char *where, char *err, size_t errlen) {
  if (!cJSON_IsObject(params)) {
    xl_errf(err, errlen, "%s: params must be an object", where);
    return NULL;
  }
  xl_runopts o;
  xl_runopts_default(&o, NULL);
  cJSON *out = cJSON_CreateObject();
  for (int id = 0; id < XS_COUNT; id++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(params, xl_settings[id].key);
    if (!x || cJSON_IsNull(x)) continue;
    char w[512];
    snprintf(w, sizeof w, "%s: params.%s", where, xl_settings[id].key);
    if (xl_setting_parse_json(id, x, &o, w, err, errlen)) {
      cJSON_Delete(out);
      return NULL;
    }
    cJSON_AddItemToObject(out, xl_settings[id].key, xl_setting_json(id, &o));
  }
  return out;
}

int xl_settings_write_profile(const char *path, const cJSON *params, const cJSON *extra, char *err, size_t errlen) {
  char *where = xl_strdup(path);
  cJSON *checked = xl_settings_params_check(params, where, err, errlen);
  free(where);
  if (!checked) return -1;
  cJSON *prof = cJSON_CreateObject();
  cJSON_AddItemToObject(prof, "params", checked);
  const cJSON *x;
  cJSON_ArrayForEach(x, extra) if (x->string && strcmp(x->string, "params"))
    cJSON_AddItemToObject(prof, x->string, cJSON_Duplicate(x, 1));
  char *text = cJSON_Print(prof);
  cJSON_Delete(prof);
  size_t n = strlen(text);
  text = xl_realloc(text, n + 2);
  text[n] = '\n';
  text[n + 1] = 0;
  int rc = xl_write_file_atomic(path, text, n + 1);
  free(text);
  if (rc) return xl_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
  return 0;
}

const char *xl_settings_help(void) {
  static char buf[4096];
  if (buf[0]) return buf;
  size_t off = 0;
  for (int id = 0; id < XS_COUNT; id++) {
    const xl_setting *s = &xl_settings[id];
    char head[64];
    snprintf(head, sizeof head, "      %s %s", s->flag, s->metavar);
    for (const char *h = s->help; *h;) {
      const char *nl = strchr(h, '\n');
      int len = nl ? (int)(nl - h) : (int)strlen(h);
      /* the flag on the first line, the variable at the end of the last */
      off += (size_t)snprintf(buf + off, sizeof buf - off, "%-26s%.*s%s%s%s\n", h == s->help ? head : "", len, h,
                              nl ? "" : "  [", nl ? "" : s->env, nl ? "" : "]");
      h = nl ? nl + 1 : h + len;
    }
  }
  return buf;
}
