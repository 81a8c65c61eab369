/* settings: the table of run settings and everything that reads or writes them.
 * See settings.h. To add a setting: a field in xl_runopts (engine/session.h), an id and a
 * row below, and its case in parse_named/format_named when it has named values.
 * "affects": backend, chunk size, heads per band and workers are exact by design (the same
 * tokens; logits within float rounding), so they never change the output; the device and
 * the matmul precision do. The prefill backend and chunk size do not touch decode.
 * Caveat (measured on the default model): with --matmul bf16 the prefill's rounding to bf16
 * depends on its form, so the backend and chunk size can flip a near-tie greedy token (1 of
 * 4 prompt windows at 256 tokens); under fp32 they never did. The table keeps "prefill only":
 * xl-save --share then takes every bf16 trial's output from one trial (the lowest number). */
#include "cli/settings.h"
#include "base/util.h"
#include "cli/flags.h"
#include "engine/cuda/cuda.h"   /* XL_CUDA_DEFAULT_CHUNK */
#include "io/records.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const xl_setting xl_settings[XS_COUNT] = {
    [XS_DEVICE] = {"device", "--device", "XL_DEVICE", "D", 0, 0, "cpu|cuda|cuda:N",
                   "where the model runs: cpu (default) or cuda[:N], an NVIDIA GPU (the 7B\n"
                   "family; the weights are uploaded once in their stored dtype)",
        XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE | XS_AFFECTS_OUTPUT, "dev"},
    [XS_BACKEND] = {"backend", "--backend", "XL_BACKEND", "B", 0, 0, "chunkwise|recurrent",
                    "prefill backend: chunkwise (GEMMs, default) or recurrent (token\n"
                    "steps, the reference path); decode always steps",
        XS_AFFECTS_PREFILL, "b"},
    [XS_CHUNK_SIZE] = {"chunk_size", "--chunk-size", "XL_CHUNK_SIZE", "N", 1, XL_CHUNK_MAX, NULL,
                       "tokens per chunk of the chunkwise prefill (default: the model's\n"
                       "chunk_size; 256 on --device cuda, the GPU's fastest)",
        XS_AFFECTS_PREFILL, "ck"},
    [XS_HEADS_PER_BAND] = {"heads_per_band", "--heads-per-band", "XL_HEADS_PER_BAND", "H", 1, 1 << 16, NULL,
                           "heads per parallel task in the CPU cell (default 1)",
        XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE, "h"},
    [XS_WORKERS] = {"workers", "--workers", "XL_WORKERS", "N", 1, 1024, NULL,
                    "CPU threads: N runs our head bands and matvec row bands, and OpenBLAS\n"
                    "gets the same N for the projection GEMMs but one thread inside head\n"
                    "tasks, so no more than N threads are ever busy; use at most the\n"
                    "number of cores (default 1)",
        XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE, "w"},
    [XS_MATMUL] = {"matmul", "--matmul", "XL_MATMUL", "fp32|bf16", 0, 0, "fp32|bf16",
                   "fp32 (default; exact) or bf16: activations rounded to bf16 before\n"
                   "each matrix product (a speed/quality trade; tensor cores on a GPU)",
        XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE | XS_AFFECTS_OUTPUT, "mm"},
    [XS_KERNELS] = {"kernels", "--kernels", "XL_KERNELS", "K", 0, 0, "auto|avx512bf16|avx512|avx2|scalar",
                    "CPU kernels: auto (default: the best this CPU has), or force\n"
                    "avx512bf16 (AVX-512, and --matmul bf16 GEMMs on the BF16 units via\n"
                    "oneDNN), avx512, avx2 (AVX2+FMA) or scalar (plain C), e.g. to test\n"
                    "them; one this CPU lacks is an error",
        XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE, "kn"},
    [XS_GEMM] = {"gemm", "--gemm", "XL_GEMM", "L", 0, 0, "openblas|onednn",
                 "the CPU prefill's fp32 matrix products: openblas (default; the same\n"
                 "bits at every worker count) or onednn (oneDNN's fp32 matmul, loaded\n"
                 "on first use; logits within float rounding of openblas's)",
        XS_AFFECTS_PREFILL, "gm"},
};

const xl_setting xl_sampling_setting = {
    "sampling", "--sampling", NULL, "S", 0, 0, "greedy|t<T>[k<K>][p<P>]",
    "xl-decode's token choice as one sweep setting: greedy (default) or temperature T\n"
    "with optional top-k K and top-p P, e.g. t0.8k40p0.95 (--temperature 0.8\n"
    "--top-k 40 --top-p 0.95); sampled runs get a recorded --seed",
    XS_AFFECTS_DECODE | XS_AFFECTS_OUTPUT, "smp"};

/* A number at *p (no sign), advancing *p; 0 ok. */
static int take_number(const char **p, double *out) {
  char *end;
  if (!(**p >= '0' && **p <= '9') && **p != '.') return -1;
  *out = strtod(*p, &end);
  if (end == *p) return -1;
  *p = end;
  return 0;
}

int xl_sampling_parse(const char *spec, xl_sampling *out, char *err, size_t errlen) {
  xl_sampling s = {.greedy = 1, .temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = out->seed};
  if (!spec || !strcmp(spec, "greedy")) { *out = s; return 0; }
  const char *p = spec;
  double t, k = 0, pp = 1;
  if (*p++ != 't' || take_number(&p, &t) || !(t > 0 && t <= 1e6)) goto bad;
  if (*p == 'k' && (p++, take_number(&p, &k) || k != (double)(int)k || k < 0 || k > 1 << 30)) goto bad;
  if (*p == 'p' && (p++, take_number(&p, &pp) || !(pp > 0 && pp <= 1))) goto bad;
  if (*p) goto bad;
  s.greedy = 0, s.temperature = (float)t, s.top_k = (int)k, s.top_p = (float)pp;
  *out = s;
  return 0;
bad:
  return xl_errf(err, errlen, "'%s' is not a sampling: greedy, or t<T>[k<K>][p<P>] (T > 0, K >= 0, 0 < P <= 1), "
                 "e.g. t0.8k40p0.95", spec ? spec : "");
}

const char *xl_sampling_format(const xl_sampling *s, char *buf, size_t n) {
  if (s->greedy) { snprintf(buf, n, "greedy"); return buf; }
  int k = snprintf(buf, n, "t%.6g", s->temperature);
  if (s->top_k > 0 && k >= 0 && (size_t)k < n) k += snprintf(buf + k, n - k, "k%d", s->top_k);
  if (s->top_p < 1.0f && k >= 0 && (size_t)k < n) snprintf(buf + k, n - k, "p%.6g", s->top_p);
  return buf;
}

const xl_setting *xl_setting_by_key(const char *key) {
  for (int i = 0; i < XS_COUNT; i++)
    if (!strcmp(xl_settings[i].key, key)) return &xl_settings[i];
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
  case XS_GEMM:
    if (!strcmp(s, "openblas")) o->gemm = XL_GEMM_OPENBLAS;
    else if (!strcmp(s, "onednn")) o->gemm = XL_GEMM_ONEDNN;
    else return -1;
    return 0;
  default: return -1;
  }
}

static const char *format_named(xl_setting_id id, const xl_runopts *o, char *buf, size_t n) {
  switch (id) {
  case XS_DEVICE: return xl_device_label(o->device, o->device_index, buf, n);
  case XS_BACKEND: snprintf(buf, n, "%s", xl_backend_name(o->backend)); return buf;
  case XS_MATMUL: snprintf(buf, n, "%s", o->matmul_bf16 ? "bf16" : "fp32"); return buf;
  case XS_KERNELS: snprintf(buf, n, "%s", xl_kernels_name(o->kernels)); return buf;
  case XS_GEMM: snprintf(buf, n, "%s", o->gemm == XL_GEMM_ONEDNN ? "onednn" : "openblas"); return buf;
  default: snprintf(buf, n, "?"); return buf;
  }
}

int xl_setting_parse(xl_setting_id id, const char *text, xl_runopts *o, const char *where, char *err, size_t errlen) {
  const xl_setting *s = &xl_settings[id];
  if (is_int(id)) {
    long v;
    if (!xl_plain_number(text) || xl_parse_long(text, s->lo, s->hi, &v))
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

const char *xl_setting_text(xl_setting_id id, const xl_runopts *o, char *buf, size_t n) {
  if (is_int(id)) snprintf(buf, n, "%d", *int_field(id, (xl_runopts *)o));
  else format_named(id, o, buf, n);
  return buf;
}

int xl_setting_canon(xl_setting_id id, const char *text, char *buf, size_t n, char *err, size_t errlen) {
  xl_runopts o;
  xl_runopts_default(&o, NULL);
  if (xl_setting_parse(id, text, &o, xl_settings[id].flag, err, errlen)) return -1;
  xl_setting_text(id, &o, buf, n);
  return 0;
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
  /* the chunk size's default depends on the device: 0 until a source names one */
  int model_chunk = o->chunk_size;
  o->chunk_size = 0;
  for (int id = 0; id < XS_COUNT; id++) {
    const char *e = getenv(xl_settings[id].env);
    if (e && *e && xl_setting_parse(id, e, o, xl_settings[id].env, err, errlen)) return -1;
  }
  if (g && g->profile && xl_settings_apply_profile(g->profile, o, err, errlen)) return -1;
  for (int id = 0; g && id < XS_COUNT; id++)
    if (g->flag[id] && xl_setting_parse(id, g->flag[id], o, xl_settings[id].flag, err, errlen)) return -1;
  if (!o->chunk_size) o->chunk_size = o->device == XL_DEVICE_CUDA ? XL_CUDA_DEFAULT_CHUNK : model_chunk;
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
  int rc = rec_json_save(path, prof);
  cJSON_Delete(prof);
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
