/* sweep_trial: trial specs, the runs of one trial and its record (see sweep_trial.h). */
#include "sweep/sweep_trial.h"
#include "io/records.h"
#include "sweep/sweep_proc.h"
#include "sweep/stats.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const sw_record_cols[] = {
    "trial", "slug", "status", "error", "backend", "chunk_size", "heads_per_band", "workers",
    "prompt_tokens", "new_tokens", "repeats", "prefill_s", "decode_s", "prefill_tok_s",
    "decode_tok_s", "prefill_tok_s_sd", "decode_tok_s_sd", "peak_rss_mb", "time", "host", "build",
    "blas_core", "context", "prompt_file", "warmup", "model", "fingerprint", "key",
    "device", "matmul", "sampling", "sampling_seed", "prefill_tok_s_ci95", "decode_tok_s_ci95",
    "prefill_n", "decode_n", "prefill_from", "decode_from", "load_1m", "load_1m_max", "batch",
    "prefill_batch", "decode_batch", "prefill_tok_s_runs", "decode_tok_s_runs"};
const size_t sw_record_ncols = sizeof sw_record_cols / sizeof sw_record_cols[0];

/* ---- specs ---- */

/* The spec's optional strings, in the order a spec lists them: one list for writing,
 * reading and freeing them. */
static const struct { const char *name; size_t off; } spec_strs[] = {
    {"model", offsetof(sw_spec, model)}, {"prompt_file", offsetof(sw_spec, prompt_file)},
    {"ids_file", offsetof(sw_spec, ids_file)}, {"bin", offsetof(sw_spec, bin)},
    {"tool_prefix", offsetof(sw_spec, tool_prefix)}, {"prefill_from", offsetof(sw_spec, prefill_from)},
    {"decode_from", offsetof(sw_spec, decode_from)}};
#define NSPEC_STRS (sizeof spec_strs / sizeof *spec_strs)
#define SPEC_STR(sp, k) (*(char **)((char *)(sp) + spec_strs[k].off))

void sw_spec_free(sw_spec *sp) {
  for (size_t k = 0; k < NSPEC_STRS; k++) free(SPEC_STR(sp, k));
  memset(sp, 0, sizeof *sp);
}

static void add_str_or_null(cJSON *o, const char *k, const char *v) {
  if (v) cJSON_AddStringToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

/* A knob's value as JSON: integers as numbers, named values as strings. */
static cJSON *knob_json(int k, const char *v) {
  long x;
  if (sw_knob_is_int(k) && !xl_parse_long(v, LONG_MIN, LONG_MAX, &x)) return cJSON_CreateNumber((double)x);
  return cJSON_CreateString(v);
}

/* The setting's knobs, where specs and records both list them: the four classic ones
 * always, the others when the setting searches them. */
static void add_knobs(cJSON *o, const sw_setting *s, unsigned long long sampling_seed) {
  for (int k = 0; k < SW_NKNOBS; k++)
    if (s->v[k][0]) cJSON_AddItemToObject(o, sw_knob(k)->key, knob_json(k, s->v[k]));
  if (s->v[SW_K_SAMPLING][0] && strcmp(s->v[SW_K_SAMPLING], "greedy")) {
    char seed[32];   /* a string: seeds past 2^53 do not survive a JSON number */
    snprintf(seed, sizeof seed, "%llu", sampling_seed);
    cJSON_AddStringToObject(o, "sampling_seed", seed);
  }
}

static const char *measure_name(unsigned what) { return what == XS_AFFECTS_PREFILL ? "prefill" : "decode"; }

cJSON *sw_spec_to_json(const sw_spec *sp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "trial", (double)sp->trial);
  cJSON_AddStringToObject(o, "slug", sp->slug);
  cJSON_AddStringToObject(o, "key", sp->key);
  add_knobs(o, &sp->s, sp->sampling_seed);
  cJSON_AddNumberToObject(o, "context", (double)sp->context);
  cJSON_AddNumberToObject(o, "new_tokens", (double)sp->new_tokens);
  cJSON_AddNumberToObject(o, "repeats", sp->repeats);
  cJSON_AddNumberToObject(o, "warmup", sp->warmup);
  cJSON_AddNumberToObject(o, "timeout_s", sp->timeout_s);
  if (sp->batch_id > 0) cJSON_AddNumberToObject(o, "batch_id", (double)sp->batch_id);
  cJSON *m = cJSON_AddArrayToObject(o, "measure");
  for (unsigned w = XS_AFFECTS_PREFILL; w <= XS_AFFECTS_DECODE; w <<= 1)
    if (sp->measure & w) cJSON_AddItemToArray(m, cJSON_CreateString(measure_name(w)));
  for (size_t k = 0; k < NSPEC_STRS; k++) add_str_or_null(o, spec_strs[k].name, SPEC_STR(sp, k));
  return o;
}

static int get_long(const cJSON *j, const char *k, long lo, long hi, long *out, char *err, size_t n) {
  double v;
  if (rec_num(j, k, &v) || v != floor(v) || v < (double)lo || v > (double)hi) {
    snprintf(err, n, "spec: '%s' missing or not an integer in [%ld, %ld]", k, lo, hi);
    return -1;
  }
  *out = (long)v;
  return 0;
}

static char *opt_str(const cJSON *j, const char *k) {
  const char *s = rec_str(j, k);
  return s && *s ? xl_strdup(s) : NULL;
}

/* Knob k of a spec or record (a number or a string) into s; 1 when absent. */
static int knob_from(const cJSON *j, int k, sw_setting *s, char *err, size_t n) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, sw_knob(k)->key);
  if (!x || cJSON_IsNull(x)) return 1;
  char text[64], e[256];
  if (cJSON_IsNumber(x)) snprintf(text, sizeof text, "%.17g", x->valuedouble);
  else if (cJSON_IsString(x)) snprintf(text, sizeof text, "%s", x->valuestring);
  else return snprintf(err, n, "spec: '%s' is neither a number nor a string", sw_knob(k)->key), -1;
  if (sw_setting_set(s, k, text, e, sizeof e)) return snprintf(err, n, "spec: '%s': %s", sw_knob(k)->key, e), -1;
  return 0;
}

int sw_setting_from_record(const cJSON *rec, sw_setting *s) {
  char err[256];
  memset(s, 0, sizeof *s);
  for (int k = 0; k < SW_NKNOBS; k++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(rec, sw_knob(k)->key);
    if ((cJSON_IsString(x) && !*x->valuestring) || cJSON_IsObject(x)) continue;   /* an empty CSV cell; xl-decode's sampling object */
    if (knob_from(rec, k, s, err, sizeof err) < 0) return -1;
  }
  return 0;
}

int sw_spec_from_json(const cJSON *j, sw_spec *sp, char *err, size_t n) {
  memset(sp, 0, sizeof *sp);
  if (!cJSON_IsObject(j)) return snprintf(err, n, "spec: not a JSON object"), -1;
  long trial, ctx, nt, rep, wu = 0;
  for (int k = 0; k < SW_NKNOBS; k++) {
    int rc = knob_from(j, k, &sp->s, err, n);
    if (rc < 0) return -1;
    if (rc > 0 && SW_CLASSIC(k)) return snprintf(err, n, "spec: '%s' missing", sw_knob(k)->key), -1;
  }
  if (get_long(j, "trial", 1, LONG_MAX / 2, &trial, err, n) ||
      get_long(j, "context", 1, 1 << 24, &ctx, err, n) ||
      get_long(j, "new_tokens", 0, 1 << 24, &nt, err, n) ||
      get_long(j, "repeats", 1, 10000, &rep, err, n))
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(j, "warmup") && get_long(j, "warmup", 0, 1000, &wu, err, n))
    return -1;
  sp->trial = trial;
  sw_setting_normalize(&sp->s);
  sp->context = ctx;
  sp->new_tokens = nt;
  sp->repeats = (int)rep;
  sp->warmup = (int)wu;
  double t = 0;
  if (!rec_num(j, "timeout_s", &t) && t > 0) sp->timeout_s = t;
  if (!rec_num(j, "batch_id", &t) && t > 0) sp->batch_id = (long)t;
  const char *seed = rec_str(j, "sampling_seed");
  long sv;
  if (seed && xl_parse_long(seed, 0, LONG_MAX, &sv) == 0) sp->sampling_seed = (unsigned long long)sv;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "measure"), *it;
  if (!cJSON_IsArray(m)) sp->measure = XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE;   /* specs before sharing */
  cJSON_ArrayForEach(it, m) {
    if (cJSON_IsString(it) && !strcmp(it->valuestring, "prefill")) sp->measure |= XS_AFFECTS_PREFILL;
    else if (cJSON_IsString(it) && !strcmp(it->valuestring, "decode")) sp->measure |= XS_AFFECTS_DECODE;
    else return snprintf(err, n, "spec: 'measure' holds something other than \"prefill\" and \"decode\""), -1;
  }
  sw_key(&sp->s, ctx, sp->key, sizeof sp->key);
  const char *slug = rec_str(j, "slug");
  sw_slug(sp->key, sp->trial, sp->slug, sizeof sp->slug);
  /* The slug is the join key of every later file: it must say what was measured. */
  if (slug && strcmp(slug, sp->slug)) {
    snprintf(err, n, "spec: slug '%s' does not match its settings (%s)", slug, sp->slug);
    return -1;
  }
  for (size_t k = 0; k < NSPEC_STRS; k++) SPEC_STR(sp, k) = opt_str(j, spec_strs[k].name);
  if (!sp->ids_file && !sp->prompt_file) {
    sw_spec_free(sp);
    return snprintf(err, n, "spec: neither 'ids_file' nor 'prompt_file'"), -1;
  }
  if (!sp->bin) sp->bin = sw_self_dir();
  return 0;
}

/* ---- this machine ---- */
char *sw_self_dir(void) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return xl_strdup(".");
  buf[n] = 0;
  char *slash = strrchr(buf, '/');
  if (slash && slash != buf) *slash = 0;
  return xl_strdup(buf);
}

/* First line of a command's stdout into buf ("" on any failure). */
static void first_line_of(char *const *argv, char *buf, size_t n) {
  sw_proc p;
  buf[0] = 0;
  if (sw_proc_run(argv, 5, &p) == 0 && p.exit_code == 0) {
    size_t k = strcspn(p.out, "\r\n");
    snprintf(buf, n, "%.*s", (int)k, p.out);
  }
  sw_proc_free(&p);
}

void sw_hostinfo_get(sw_hostinfo *h, const char *bin_dir) {
  memset(h, 0, sizeof *h);
  snprintf(h->version, sizeof h->version, "0.1.0");
  if (gethostname(h->host, sizeof h->host - 1)) snprintf(h->host, sizeof h->host, "unknown");
  long nc = sysconf(_SC_NPROCESSORS_ONLN);
  h->threads = nc > 0 ? (int)nc : 1;
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char *c = strchr(line, ':');
    if (!c) continue;
    c++;
    while (*c == ' ' || *c == '\t') c++;
    c[strcspn(c, "\n")] = 0;
    snprintf(h->cpu, sizeof h->cpu, "%s", c);
    break;
  }
  if (f) fclose(f);
  if (!h->cpu[0]) snprintf(h->cpu, sizeof h->cpu, "unknown");
  /* The commit of the source tree the tools were built from: bin/ lives in it. */
  char *src = xl_path_join(bin_dir, "..");
  char *argv[] = {"git", "-C", src, "describe", "--always", "--dirty", NULL};
  first_line_of(argv, h->commit, sizeof h->commit);
  free(src);
  if (!h->commit[0]) snprintf(h->commit, sizeof h->commit, "unknown");
#ifdef __OPTIMIZE__
  const char *opt = "optimized";
#else
  const char *opt = "-O0";
#endif
#if defined(__SANITIZE_ADDRESS__)
  const char *san = " asan";
#else
  const char *san = "";
#endif
  snprintf(h->build, sizeof h->build, "%s gcc-%d.%d %s%s", h->commit, __GNUC__, __GNUC_MINOR__, opt, san);
}

/* ---- running the tools ---- */
/* A tool's command line: the prefix words, bin/tool, then the arguments. */
typedef struct {
  char **argv;   /* NULL-terminated; the args themselves are borrowed */
  char *words;   /* owned copy of the prefix, cut into words */
  char *path;    /* owned bin/tool */
} tool_cmd;

static void tool_cmd_init(tool_cmd *c, const char *bin, const char *prefix, const char *tool,
                          char **args) {
  size_t nargs = 0, nw = 0;
  while (args[nargs]) nargs++;
  c->argv = xl_malloc((nargs + 34) * sizeof *c->argv);
  c->words = prefix ? xl_strdup(prefix) : NULL;
  char *save = NULL;
  if (c->words)
    for (char *t = strtok_r(c->words, " \t", &save); t && nw < 32; t = strtok_r(NULL, " \t", &save))
      c->argv[nw++] = t;
  c->path = xl_path_join(bin, tool);
  c->argv[nw++] = c->path;
  for (size_t i = 0; i < nargs; i++) c->argv[nw + i] = args[i];
  c->argv[nw + nargs] = NULL;
}

static void tool_cmd_free(tool_cmd *c) {
  free(c->argv);
  free(c->words);
  free(c->path);
}

/* The last non-empty line of a tool's stdout as a JSON object, or NULL. */
static cJSON *last_json(const char *out) {
  const char *end = out + strlen(out);
  while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) end--;
  const char *start = end;
  while (start > out && start[-1] != '\n') start--;
  if (start == end) return NULL;
  cJSON *j = cJSON_ParseWithLength(start, (size_t)(end - start));
  if (j && !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    j = NULL;
  }
  return j;
}

int32_t *sw_prompt_ids(const char *bin, const char *prefix, const char *model,
                       const char *prompt_file, long context, char *err, size_t errlen) {
  char *args[8];
  int k = 0;
  args[k++] = "--tokenize";
  args[k++] = "--prompt-file";
  args[k++] = (char *)prompt_file;
  if (model) args[k++] = "-m", args[k++] = (char *)model;
  args[k] = NULL;
  tool_cmd cmd;
  tool_cmd_init(&cmd, bin, prefix, "xl-prefill", args);
  sw_proc p;
  int32_t *ids = NULL;
  char why[1200];
  if (sw_proc_run(cmd.argv, 120, &p) || p.exit_code != 0) {
    sw_proc_describe(&p, "xl-prefill --tokenize", why, sizeof why);
    snprintf(err, errlen, "%s", why);
    goto out;
  }
  cJSON *j = last_json(p.out);
  cJSON *arr = j ? cJSON_GetObjectItemCaseSensitive(j, "ids") : NULL;
  int n = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || n == 0) {
    snprintf(err, errlen, "%s: the prompt has no tokens (xl-prefill --tokenize gave no ids)", prompt_file);
    cJSON_Delete(j);
    goto out;
  }
  int32_t *tok = xl_malloc((size_t)n * sizeof *tok);
  int i = 0;
  cJSON *it;
  cJSON_ArrayForEach(it, arr) tok[i++] = (int32_t)it->valuedouble;
  cJSON_Delete(j);
  /* The prompt repeated (or cut) to exactly the context length. */
  ids = xl_malloc((size_t)context * sizeof *ids);
  for (long t = 0; t < context; t++) ids[t] = tok[t % n];
  free(tok);
out:
  sw_proc_free(&p);
  tool_cmd_free(&cmd);
  return ids;
}

int sw_probe(const char *bin, const char *prefix, const char *model, char *const *flags, cJSON **rec,
             char *err, size_t errlen) {
  char *args[32];
  int k = 0;
  args[k++] = "--ids", args[k++] = "1", args[k++] = "--no-status-file";
  for (int i = 0; flags && flags[i] && k < 28; i++) args[k++] = flags[i];
  if (model) args[k++] = "-m", args[k++] = (char *)model;
  args[k] = NULL;
  tool_cmd cmd;
  tool_cmd_init(&cmd, bin, prefix, "xl-prefill", args);
  sw_proc p;
  *rec = NULL;
  int rc = -1;
  if (sw_proc_run(cmd.argv, 120, &p) == 0 && p.exit_code == 0) {
    *rec = last_json(p.out);
    rc = 0;
  } else {
    /* the tool's own words: the last line of its stderr without the "Try --help" hint */
    char *e = p.err, *last = NULL;
    for (char *line = strtok(e, "\n"); line; line = strtok(NULL, "\n"))
      if (strncmp(line, "Try '", 5)) last = line;
    if (last && *last) snprintf(err, errlen, "%s", last);
    else sw_proc_describe(&p, "xl-prefill", err, errlen);
  }
  sw_proc_free(&p);
  tool_cmd_free(&cmd);
  return rc;
}

int sw_write_ids(const char *path, const int32_t *ids, long n) {
  xl_atomic a;
  if (xl_kind_check(path, XK_TEXT, NULL) || xl_atomic_open(&a, path)) return -1;
  for (long i = 0; i < n; i++) fprintf(a.f, i ? ",%d" : "%d", ids[i]);
  fputc('\n', a.f);
  if (ferror(a.f)) {
    xl_atomic_abort(&a);
    return -1;
  }
  return xl_atomic_commit(&a);
}

/* The values of one measured quantity, run by run. */
#define MAX_RUNS 10000
typedef struct { double *v; int n; } series;
static void series_add(series *a, double v) {
  if (!isfinite(v)) return;
  if (!a->v) a->v = xl_malloc(MAX_RUNS * sizeof *a->v);
  if (a->n < MAX_RUNS) a->v[a->n++] = v;
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static double field(const cJSON *j, const char *k) {
  double v;
  return rec_num(j, k, &v) ? NAN : v;
}

double sw_loadavg(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  double v = NAN;
  if (f) {
    if (fscanf(f, "%lf", &v) != 1) v = NAN;
    fclose(f);
  }
  return v;
}

/* What the timed runs of a trial measured, and what their records said about the run. */
typedef struct {
  series pre_s, pre_t, dec_s, dec_t;
  double peak;                  /* MB, NaN when no record gave one */
  char blas[64], fp[64];
  char mpath[4096];             /* the model dir the tool resolved */
  char knob[XS_COUNT][SW_VAL_MAX];   /* the settings the tool reported running with */
  double load_sum, load_max;    /* 1-minute load average before each timed run */
  int load_n;
} measured;

/* The spec's ids file, or (on another machine, where the plan's may not exist) a temp
 * one made from the prompt: *tmp then names it (the caller removes it). Sets err when
 * neither works. */
static const char *ids_file_of(const sw_spec *sp, char **tmp, char *err, size_t n) {
  *tmp = NULL;
  if (sp->ids_file && xl_exists(sp->ids_file)) return sp->ids_file;
  int32_t *ids = sp->prompt_file ? sw_prompt_ids(sp->bin, sp->tool_prefix, sp->model, sp->prompt_file,
                                                 sp->context, err, n)
                                 : NULL;
  if (!ids && !err[0]) snprintf(err, n, "%s: no such ids file", sp->ids_file);
  if (!ids) return sp->ids_file;
  const char *td = getenv("TMPDIR");
  char tmpl[PATH_MAX];
  snprintf(tmpl, sizeof tmpl, "%s/xl-sweep-ids.XXXXXX", td && *td ? td : "/tmp");
  int fd = mkstemp(tmpl);
  const char *path = sp->ids_file;
  if (fd < 0) snprintf(err, n, "cannot make a temp ids file: %s", strerror(errno));
  else {
    close(fd);
    path = *tmp = xl_strdup(tmpl);
    if (sw_write_ids(*tmp, ids, sp->context)) snprintf(err, n, "%s: %s", *tmp, strerror(errno));
  }
  free(ids);
  return path;
}

/* Takes what one run's record says; timed runs (after the warm-up) add their speeds. */
static void take_record(measured *m, const cJSON *rec, int decode, int timed, const char *what, char *err, size_t n) {
  const char *stop = rec_str(rec, "stop");
  if (stop && (!strcmp(stop, "memory") || !strcmp(stop, "signal")))
    snprintf(err, n, "%s: stopped early (stop=%s)", what, stop);
  const char *s;
  if ((s = rec_str(rec, "blas_core"))) snprintf(m->blas, sizeof m->blas, "%s", s);
  if ((s = rec_str(rec, "fingerprint"))) snprintf(m->fp, sizeof m->fp, "%s", s);
  if ((s = rec_str(rec, "model"))) snprintf(m->mpath, sizeof m->mpath, "%s", s);
  for (int k = 0; k < XS_COUNT; k++) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(rec, xl_settings[k].key);
    if (cJSON_IsString(x)) snprintf(m->knob[k], SW_VAL_MAX, "%s", x->valuestring);
    else if (cJSON_IsNumber(x)) snprintf(m->knob[k], SW_VAL_MAX, "%.0f", x->valuedouble);
  }
  if (err[0] || !timed) return;
  if (decode) {
    series_add(&m->pre_s, field(rec, "prefill_s"));
    series_add(&m->pre_t, field(rec, "prefill_tok_s"));
    series_add(&m->dec_s, field(rec, "decode_s"));
    series_add(&m->dec_t, field(rec, "decode_tok_s"));
  } else {
    series_add(&m->pre_s, field(rec, "seconds"));
    series_add(&m->pre_t, field(rec, "tok_s"));
  }
  double rss = field(rec, "peak_rss_mb");
  if (isfinite(rss) && (!isfinite(m->peak) || rss > m->peak)) m->peak = rss;
}

/* One measurement's fields: mean of seconds and tok/s, sd, 95% interval, count, runs. */
static void add_measure(cJSON *o, const char *what, const series *secs, const series *toks, int ok) {
  char k[64];
  st_summary ss = st_summarize(secs->v, (size_t)secs->n), ts = st_summarize(toks->v, (size_t)toks->n);
  if (!ok) ss.mean = ts.mean = ts.sd = ts.ci95 = NAN, ts.n = 0;
  snprintf(k, sizeof k, "%s_s", what), add_num(o, k, ss.mean);
  snprintf(k, sizeof k, "%s_tok_s", what), add_num(o, k, ts.mean);
  snprintf(k, sizeof k, "%s_tok_s_sd", what), add_num(o, k, ts.sd);
  snprintf(k, sizeof k, "%s_tok_s_ci95", what), add_num(o, k, ts.ci95);
  snprintf(k, sizeof k, "%s_n", what), cJSON_AddNumberToObject(o, k, ts.n);
  snprintf(k, sizeof k, "%s_tok_s_runs", what);
  cJSON *runs = cJSON_AddArrayToObject(o, k);
  for (int i = 0; ok && i < toks->n; i++) cJSON_AddItemToArray(runs, cJSON_CreateNumber(toks->v[i]));
}

/* The trial's record (formats.md "trials.jsonl"); err non-empty makes it a failure. */
static cJSON *make_record(const sw_spec *sp, const sw_hostinfo *h, const measured *m, const char *err, int batch) {
  int ok = !err[0];
  char now[40];
  xl_rfc3339(now, sizeof now, xl_wall());
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "trial", (double)sp->trial);
  cJSON_AddStringToObject(o, "slug", sp->slug);
  cJSON_AddStringToObject(o, "status", ok ? "ok" : "failed");
  add_str_or_null(o, "error", ok ? NULL : err);
  add_knobs(o, &sp->s, sp->sampling_seed);
  /* the run settings the sweep leaves to the tools: as the tools reported them */
  for (int k = 0; k < XS_COUNT; k++)
    if (!sp->s.v[k][0] && m->knob[k][0]) cJSON_AddItemToObject(o, xl_settings[k].key, knob_json(k, m->knob[k]));
  cJSON_AddNumberToObject(o, "prompt_tokens", (double)sp->context);
  cJSON_AddNumberToObject(o, "new_tokens", (double)sp->new_tokens);
  cJSON_AddNumberToObject(o, "repeats", sp->repeats);
  add_measure(o, "prefill", &m->pre_s, &m->pre_t, ok && (sp->measure & XS_AFFECTS_PREFILL));
  add_measure(o, "decode", &m->dec_s, &m->dec_t, ok && (sp->measure & XS_AFFECTS_DECODE) && sp->new_tokens > 0);
  add_str_or_null(o, "prefill_from", sp->measure & XS_AFFECTS_PREFILL ? NULL : sp->prefill_from);
  add_str_or_null(o, "decode_from", sp->measure & XS_AFFECTS_DECODE ? NULL : sp->decode_from);
  /* the batch a measurement was interleaved in: runs of one batch pair up round by round */
  add_num(o, "prefill_batch", ok && sp->batch_id > 0 && (sp->measure & XS_AFFECTS_PREFILL) ? (double)sp->batch_id : NAN);
  add_num(o, "decode_batch",
          ok && sp->batch_id > 0 && (sp->measure & XS_AFFECTS_DECODE) && sp->new_tokens > 0 ? (double)sp->batch_id : NAN);
  add_num(o, "peak_rss_mb", m->peak);
  add_num(o, "load_1m", m->load_n ? m->load_sum / m->load_n : NAN);
  add_num(o, "load_1m_max", m->load_n ? m->load_max : NAN);
  cJSON_AddNumberToObject(o, "batch", batch);
  cJSON_AddStringToObject(o, "time", now);
  cJSON_AddStringToObject(o, "host", h->host);
  cJSON_AddStringToObject(o, "build", h->build);
  add_str_or_null(o, "blas_core", m->blas[0] ? m->blas : NULL);
  cJSON_AddNumberToObject(o, "context", (double)sp->context);
  add_str_or_null(o, "prompt_file", sp->prompt_file);
  cJSON_AddNumberToObject(o, "warmup", sp->warmup);
  add_str_or_null(o, "model", sp->model ? sp->model : m->mpath[0] ? m->mpath : NULL);
  add_str_or_null(o, "fingerprint", m->fp[0] ? m->fp : NULL);
  cJSON_AddStringToObject(o, "key", sp->key);
  return o;
}

/* ---- one trial, run by run ---- */
typedef struct {
  const sw_spec *sp;
  tool_cmd cmd;
  const char *tool;
  int decode;              /* runs xl-decode (else xl-prefill) */
  int runs, done;          /* processes to run, run so far */
  char *tmp_ids;
  measured m;
  char err[1500];
  char store[8][32];
} runner;

static void runner_init(runner *r, const sw_spec *sp) {
  memset(r, 0, sizeof *r);
  r->sp = sp;
  r->m.peak = NAN;
  unsigned need = sp->measure;
  if (sp->new_tokens <= 0) need &= ~(unsigned)XS_AFFECTS_DECODE;
  r->decode = (need & XS_AFFECTS_DECODE) != 0;
  r->runs = need ? sp->warmup + sp->repeats : 0;
  r->tool = r->decode ? "xl-decode" : "xl-prefill";
  if (!r->runs) return;
  const char *ids_file = ids_file_of(sp, &r->tmp_ids, r->err, sizeof r->err);
  char *args[48];
  int k = 0;
  args[k++] = "--ids-file";
  args[k++] = (char *)ids_file;
  if (r->decode) {
    snprintf(r->store[0], sizeof r->store[0], "%ld", sp->new_tokens);
    args[k++] = "-n", args[k++] = r->store[0];
    args[k++] = "--format", args[k++] = "ndjson";
    args[k++] = "--ignore-eos";
    xl_sampling smp = {0};
    char e[256];
    const char *spec = sp->s.v[SW_K_SAMPLING];
    if (!spec[0] || xl_sampling_parse(spec, &smp, e, sizeof e) || smp.greedy) {
      args[k++] = "--greedy";
    } else {
      snprintf(r->store[1], sizeof r->store[1], "%.6g", smp.temperature);
      snprintf(r->store[2], sizeof r->store[2], "%d", smp.top_k);
      snprintf(r->store[3], sizeof r->store[3], "%.6g", smp.top_p);
      snprintf(r->store[4], sizeof r->store[4], "%llu", sp->sampling_seed);
      args[k++] = "--temperature", args[k++] = r->store[1];
      args[k++] = "--top-k", args[k++] = r->store[2];
      args[k++] = "--top-p", args[k++] = r->store[3];
      args[k++] = "--seed", args[k++] = r->store[4];
    }
  }
  for (int kb = 0; kb < XS_COUNT; kb++)
    if (sp->s.v[kb][0]) args[k++] = (char *)xl_settings[kb].flag, args[k++] = (char *)sp->s.v[kb];
  if (sp->model) args[k++] = "-m", args[k++] = sp->model;
  args[k] = NULL;
  tool_cmd_init(&r->cmd, sp->bin, sp->tool_prefix, r->tool, args);
}

static void runner_free(runner *r) {
  if (r->runs) tool_cmd_free(&r->cmd);
  if (r->tmp_ids) {
    unlink(r->tmp_ids);
    free(r->tmp_ids);
  }
  free(r->m.pre_s.v), free(r->m.pre_t.v), free(r->m.dec_s.v), free(r->m.dec_t.v);
}

static int runner_left(const runner *r) { return r->err[0] ? 0 : r->runs - r->done; }

/* Runs the next process of the trial. 1 when interrupted. */
static int runner_step(runner *r) {
  const sw_spec *sp = r->sp;
  int timed = r->done >= sp->warmup;
  if (timed) {
    double l = sw_loadavg();
    if (isfinite(l)) {
      r->m.load_sum += l, r->m.load_n++;
      if (r->m.load_n == 1 || l > r->m.load_max) r->m.load_max = l;
    }
  }
  sw_proc p;
  int rc = sw_proc_run(r->cmd.argv, sp->timeout_s, &p);
  if (p.interrupted || sw_proc_stop) {
    sw_proc_free(&p);
    return 1;
  }
  char what[64];
  snprintf(what, sizeof what, "%s (%s %d)", r->tool, timed ? "run" : "warm-up",
           timed ? r->done - sp->warmup + 1 : r->done + 1);
  cJSON *rec = NULL;
  if (rc || p.exit_code != 0) sw_proc_describe(&p, what, r->err, sizeof r->err);
  else if (!(rec = last_json(p.out)))
    snprintf(r->err, sizeof r->err, "%s: no JSON record on stdout", what);
  if (rec) take_record(&r->m, rec, r->decode, timed, what, r->err, sizeof r->err);
  cJSON_Delete(rec);
  sw_proc_free(&p);
  r->done++;
  return 0;
}

static cJSON *runner_record(runner *r, const sw_hostinfo *h, int batch) {
  if (!r->err[0] && r->runs && r->m.pre_t.n < r->sp->repeats)
    snprintf(r->err, sizeof r->err, "%s: the record has no %s", r->tool, r->decode ? "prefill_tok_s" : "tok_s");
  if (!r->err[0] && r->decode && r->m.dec_t.n < r->sp->repeats)
    snprintf(r->err, sizeof r->err, "%s: the record has no decode_tok_s", r->tool);
  return make_record(r->sp, h, &r->m, r->err, batch);
}

int sw_trials_run(const sw_spec *specs, size_t n, const sw_hostinfo *h, uint64_t seed, sw_done_fn done, void *ctx) {
  runner *rs = xl_calloc(n ? n : 1, sizeof *rs);
  unsigned char *fin = xl_calloc(n ? n : 1, 1);
  size_t *order = xl_malloc((n ? n : 1) * sizeof *order);
  sw_rng rng;
  sw_rng_seed(&rng, seed);
  int interrupted = 0;
  for (size_t i = 0; i < n; i++) runner_init(&rs[i], &specs[i]);
  for (;;) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      if (fin[i]) continue;
      if (runner_left(&rs[i])) { order[m++] = i; continue; }
      fin[i] = 1;   /* nothing left to run (or it failed): its record now */
      done(ctx, i, runner_record(&rs[i], h, (int)n));
    }
    if (!m) break;
    sw_rng_shuffle(&rng, order, m);
    for (size_t q = 0; q < m && !interrupted; q++) {
      size_t i = order[q];
      if (runner_step(&rs[i])) interrupted = 1;
      else if (!runner_left(&rs[i])) {
        fin[i] = 1;
        done(ctx, i, runner_record(&rs[i], h, (int)n));
      }
    }
    if (interrupted) break;
  }
  for (size_t i = 0; i < n; i++) runner_free(&rs[i]);
  free(rs);
  free(fin);
  free(order);
  return interrupted;
}

typedef struct { cJSON *rec; } one_ctx;
static void take_one(void *ctx, size_t i, cJSON *rec) {
  (void)i;
  ((one_ctx *)ctx)->rec = rec;
}

cJSON *sw_trial_run(const sw_spec *sp, const sw_hostinfo *h) {
  one_ctx c = {NULL};
  if (sw_trials_run(sp, 1, h, (uint64_t)sp->trial, take_one, &c)) {
    cJSON_Delete(c.rec);
    return NULL;
  }
  return c.rec;
}

void sw_record_take(cJSON *rec, const cJSON *src, unsigned what) {
  const char *w = measure_name(what);
  static const char *const sfx[] = {"_s", "_tok_s", "_tok_s_sd", "_tok_s_ci95", "_n", "_tok_s_runs", "_batch"};
  char k[64];
  for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
    snprintf(k, sizeof k, "%s%s", w, sfx[i]);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, k);
    cJSON *copy = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
    if (cJSON_HasObjectItem(rec, k)) cJSON_ReplaceItemInObjectCaseSensitive(rec, k, copy);
    else cJSON_AddItemToObject(rec, k, copy);
  }
  snprintf(k, sizeof k, "%s_from", w);
  const char *origin = rec_str(src, k);   /* src took it from another: name the one that measured it */
  if (!origin) origin = rec_str(src, "slug");
  cJSON *o = origin ? cJSON_CreateString(origin) : cJSON_CreateNull();
  if (cJSON_HasObjectItem(rec, k)) cJSON_ReplaceItemInObjectCaseSensitive(rec, k, o);
  else cJSON_AddItemToObject(rec, k, o);
  for (int kb = 0; kb < XS_COUNT; kb++) {   /* run settings only the source's tools reported */
    const cJSON *mine = cJSON_GetObjectItemCaseSensitive(rec, xl_settings[kb].key);
    const cJSON *theirs = cJSON_GetObjectItemCaseSensitive(src, xl_settings[kb].key);
    if ((!mine || cJSON_IsNull(mine)) && theirs && !cJSON_IsNull(theirs)) {
      if (mine) cJSON_ReplaceItemInObjectCaseSensitive(rec, xl_settings[kb].key, cJSON_Duplicate(theirs, 1));
      else cJSON_AddItemToObject(rec, xl_settings[kb].key, cJSON_Duplicate(theirs, 1));
    }
  }
}
