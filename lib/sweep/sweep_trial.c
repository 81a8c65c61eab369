/* sweep_trial: trial specs, the runs of one trial and its record (see sweep_trial.h). */
#include "sweep/sweep_trial.h"
#include "io/records.h"
#include "sweep/sweep_proc.h"
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
    "blas_core", "context", "prompt_file", "warmup", "model", "fingerprint", "key"};
const size_t sw_record_ncols = sizeof sw_record_cols / sizeof sw_record_cols[0];

/* ---- specs ---- */

/* The spec's optional strings, in the order a spec lists them: one list for writing,
 * reading and freeing them. */
static const struct { const char *name; size_t off; } spec_strs[] = {
    {"model", offsetof(sw_spec, model)}, {"prompt_file", offsetof(sw_spec, prompt_file)},
    {"ids_file", offsetof(sw_spec, ids_file)}, {"bin", offsetof(sw_spec, bin)},
    {"tool_prefix", offsetof(sw_spec, tool_prefix)}};
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

/* The setting's four knobs, where specs and records both list them. */
static void add_knobs(cJSON *o, const sw_setting *s) {
  cJSON_AddStringToObject(o, "backend", xl_backend_name((xl_backend)s->backend));
  cJSON_AddNumberToObject(o, "chunk_size", s->chunk_size);
  cJSON_AddNumberToObject(o, "heads_per_band", s->heads_per_band);
  cJSON_AddNumberToObject(o, "workers", s->workers);
}

cJSON *sw_spec_to_json(const sw_spec *sp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "trial", (double)sp->trial);
  cJSON_AddStringToObject(o, "slug", sp->slug);
  cJSON_AddStringToObject(o, "key", sp->key);
  add_knobs(o, &sp->s);
  cJSON_AddNumberToObject(o, "context", (double)sp->context);
  cJSON_AddNumberToObject(o, "new_tokens", (double)sp->new_tokens);
  cJSON_AddNumberToObject(o, "repeats", sp->repeats);
  cJSON_AddNumberToObject(o, "warmup", sp->warmup);
  cJSON_AddNumberToObject(o, "timeout_s", sp->timeout_s);
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

int sw_spec_from_json(const cJSON *j, sw_spec *sp, char *err, size_t n) {
  memset(sp, 0, sizeof *sp);
  if (!cJSON_IsObject(j)) return snprintf(err, n, "spec: not a JSON object"), -1;
  long trial, ck, h, w, ctx, nt, rep, wu = 0;
  const char *b = rec_str(j, "backend");
  xl_backend eb;
  int backend = b && !xl_backend_parse(b, &eb) ? (int)eb : -1;
  if (backend < 0) return snprintf(err, n, "spec: 'backend' missing or not chunkwise/recurrent"), -1;
  if (get_long(j, "trial", 1, LONG_MAX / 2, &trial, err, n) ||
      get_long(j, "chunk_size", 1, XL_CHUNK_MAX, &ck, err, n) ||
      get_long(j, "heads_per_band", 1, 4096, &h, err, n) ||
      get_long(j, "workers", 1, 4096, &w, err, n) ||
      get_long(j, "context", 1, 1 << 24, &ctx, err, n) ||
      get_long(j, "new_tokens", 0, 1 << 24, &nt, err, n) ||
      get_long(j, "repeats", 1, 10000, &rep, err, n))
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(j, "warmup") && get_long(j, "warmup", 0, 1000, &wu, err, n))
    return -1;
  sp->trial = trial;
  sp->s = (sw_setting){backend, (int)ck, (int)h, (int)w};
  sw_setting_normalize(&sp->s);
  sp->context = ctx;
  sp->new_tokens = nt;
  sp->repeats = (int)rep;
  sp->warmup = (int)wu;
  double t = 0;
  if (!rec_num(j, "timeout_s", &t) && t > 0) sp->timeout_s = t;
  sw_key(&sp->s, ctx, sp->key, sizeof sp->key);
  const char *slug = rec_str(j, "slug");
  sw_slug(sp->key, trial, sp->slug, sizeof sp->slug);
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

int sw_write_ids(const char *path, const int32_t *ids, long n) {
  xl_atomic a;
  if (xl_atomic_open(&a, path)) return -1;
  for (long i = 0; i < n; i++) fprintf(a.f, i ? ",%d" : "%d", ids[i]);
  fputc('\n', a.f);
  if (ferror(a.f)) {
    xl_atomic_abort(&a);
    return -1;
  }
  return xl_atomic_commit(&a);
}

/* Running sums of one measured quantity. */
typedef struct { double sum, sumsq; int n; } acc;
static void acc_add(acc *a, double v) {
  if (!isfinite(v)) return;
  a->sum += v, a->sumsq += v * v, a->n++;
}
static double acc_mean(const acc *a) { return a->n ? a->sum / a->n : NAN; }
/* Sample standard deviation; NaN (written as null) with fewer than two values. */
static double acc_sd(const acc *a) {
  if (a->n < 2) return NAN;
  double m = a->sum / a->n, v = (a->sumsq - a->n * m * m) / (a->n - 1);
  return v > 0 ? sqrt(v) : 0;
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static double field(const cJSON *j, const char *k) {
  double v;
  return rec_num(j, k, &v) ? NAN : v;
}

/* What the timed runs of a trial measured, and what their records said about the run. */
typedef struct {
  acc pre_s, pre_t, dec_s, dec_t;
  double peak;                  /* MB, NaN when no record gave one */
  char blas[64], fp[64];
  char mpath[4096];             /* the model dir the tool resolved */
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
  if (err[0] || !timed) return;
  if (decode) {
    acc_add(&m->pre_s, field(rec, "prefill_s"));
    acc_add(&m->pre_t, field(rec, "prefill_tok_s"));
    acc_add(&m->dec_s, field(rec, "decode_s"));
    acc_add(&m->dec_t, field(rec, "decode_tok_s"));
  } else {
    acc_add(&m->pre_s, field(rec, "seconds"));
    acc_add(&m->pre_t, field(rec, "tok_s"));
  }
  double rss = field(rec, "peak_rss_mb");
  if (isfinite(rss) && (!isfinite(m->peak) || rss > m->peak)) m->peak = rss;
}

/* The trial's record (formats.md "trials.jsonl"); err non-empty makes it a failure. */
static cJSON *make_record(const sw_spec *sp, const sw_hostinfo *h, const measured *m, const char *err) {
  int ok = !err[0];
  char now[40];
  xl_rfc3339(now, sizeof now, xl_wall());
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "trial", (double)sp->trial);
  cJSON_AddStringToObject(o, "slug", sp->slug);
  cJSON_AddStringToObject(o, "status", ok ? "ok" : "failed");
  add_str_or_null(o, "error", ok ? NULL : err);
  add_knobs(o, &sp->s);
  cJSON_AddNumberToObject(o, "prompt_tokens", (double)sp->context);
  cJSON_AddNumberToObject(o, "new_tokens", (double)sp->new_tokens);
  cJSON_AddNumberToObject(o, "repeats", sp->repeats);
  add_num(o, "prefill_s", ok ? acc_mean(&m->pre_s) : NAN);
  add_num(o, "decode_s", ok ? acc_mean(&m->dec_s) : NAN);
  add_num(o, "prefill_tok_s", ok ? acc_mean(&m->pre_t) : NAN);
  add_num(o, "decode_tok_s", ok ? acc_mean(&m->dec_t) : NAN);
  add_num(o, "prefill_tok_s_sd", ok ? acc_sd(&m->pre_t) : NAN);
  add_num(o, "decode_tok_s_sd", ok ? acc_sd(&m->dec_t) : NAN);
  add_num(o, "peak_rss_mb", m->peak);
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

cJSON *sw_trial_run(const sw_spec *sp, const sw_hostinfo *h) {
  char err[1500] = "";
  measured m = {.peak = NAN};
  int interrupted = 0;
  char *tmp_ids;
  const char *ids_file = ids_file_of(sp, &tmp_ids, err, sizeof err);

  char ck[16], w[16], hb[16], nt[24];
  snprintf(ck, sizeof ck, "%d", sp->s.chunk_size);
  snprintf(w, sizeof w, "%d", sp->s.workers);
  snprintf(hb, sizeof hb, "%d", sp->s.heads_per_band);
  snprintf(nt, sizeof nt, "%ld", sp->new_tokens);
  int decode = sp->new_tokens > 0;
  char *args[32];
  int k = 0;
  args[k++] = "--ids-file";
  args[k++] = (char *)ids_file;
  if (decode) {
    args[k++] = "-n", args[k++] = nt;
    args[k++] = "--format", args[k++] = "ndjson";
    args[k++] = "--greedy";
    args[k++] = "--ignore-eos";
  }
  args[k++] = "--backend", args[k++] = (char *)xl_backend_name((xl_backend)sp->s.backend);
  args[k++] = "--chunk-size", args[k++] = ck;
  args[k++] = "--workers", args[k++] = w;
  args[k++] = "--heads-per-band", args[k++] = hb;
  if (sp->model) args[k++] = "-m", args[k++] = sp->model;
  args[k] = NULL;
  const char *tool = decode ? "xl-decode" : "xl-prefill";
  tool_cmd cmd;
  tool_cmd_init(&cmd, sp->bin, sp->tool_prefix, tool, args);

  for (int r = 0; !err[0] && r < sp->warmup + sp->repeats; r++) {
    sw_proc p;
    int rc = sw_proc_run(cmd.argv, sp->timeout_s, &p);
    if (p.interrupted || sw_proc_stop) {
      interrupted = 1;
      sw_proc_free(&p);
      break;
    }
    char what[64];
    snprintf(what, sizeof what, "%s (%s %d)", tool, r < sp->warmup ? "warm-up" : "run",
             r < sp->warmup ? r + 1 : r - sp->warmup + 1);
    cJSON *rec = NULL;
    if (rc || p.exit_code != 0) sw_proc_describe(&p, what, err, sizeof err);
    else if (!(rec = last_json(p.out)))
      snprintf(err, sizeof err, "%s: no JSON record on stdout", what);
    if (rec) take_record(&m, rec, decode, r >= sp->warmup, what, err, sizeof err);
    cJSON_Delete(rec);
    sw_proc_free(&p);
  }
  tool_cmd_free(&cmd);
  if (tmp_ids) {
    unlink(tmp_ids);
    free(tmp_ids);
  }
  if (interrupted) return NULL;
  if (!err[0] && m.pre_t.n < sp->repeats)
    snprintf(err, sizeof err, "%s: the record has no %s", tool, decode ? "prefill_tok_s" : "tok_s");
  return make_record(sp, h, &m, err);
}
