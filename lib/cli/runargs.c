/* runargs: the shared command line and set-up of xl-prefill / xl-decode. See runargs.h. */
#include "cli/runargs.h"
#include "cli/flags.h"
#include "engine/blasenv.h"
#include "engine/checkpoint.h"
#include "io/records.h"
#include "obs/procmem.h"
#include "base/filekind.h"
#include "base/util.h"
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void xl_runargs_init(xl_runargs *a) {
  memset(a, 0, sizeof *a);
  a->bos = -1;
  tm_options_init(&a->tm);
}

const char *xl_runargs_help(void) {
  static char buf[8192];
  if (!buf[0])
    snprintf(buf, sizeof buf, "%s%s%s",
             "Model and prompt:\n"
             "  -m, --model DIR         Hugging Face xLSTM checkpoint directory (default: $XL_MODEL,\n"
             "                          else the embedded models/xlstm-tiny-pydocs)\n"
             "  PROMPT                  prompt text (or --prompt-file F, --ids 5,7,9, --ids-file F;\n"
             "                          with none of these the text is read from stdin)\n"
             "      --bos yes|no        prepend the BOS id to a text prompt (default: when the model's\n"
             "                          force_bos_token_insert or the tokenizer asks for it)\n"
             "Run settings (flags > --profile > XL_* environment > the model's defaults):\n",
             xl_settings_help(),
             "      --profile FILE      apply a JSON settings profile ({\"params\":{...}}, as xl-sweep and\n"
             "                          xl-merge write); a missing file or any other file is refused\n"
             "                          (exit 2, the file untouched). Latency logs: --profile-log FILE\n"
             "      --progress          the prefill's progress on stderr, a line a second (default: on a\n"
             "                          terminal, refreshed in place, once the prefill takes a second)\n");
  return buf;
}

/* The run tools' own flags (the settings and telemetry have their tables). */
static const xl_flag run_flags[] = {
    {"--model", "-m", XF_STR, offsetof(xl_runargs, model_dir), 0, 0, NULL},
    {"--prompt-file", NULL, XF_STR, offsetof(xl_runargs, prompt_file), 0, 0, NULL},
    {"--ids", NULL, XF_STR, offsetof(xl_runargs, ids_arg), 0, 0, NULL},
    {"--ids-file", NULL, XF_STR, offsetof(xl_runargs, ids_file), 0, 0, NULL},
    {"--bos", NULL, XF_CHOICE, offsetof(xl_runargs, bos), 0, 0, "no|yes"},
    {"--profile", NULL, XF_STR, offsetof(xl_runargs, profile_arg), 0, 0, NULL},
    {"--progress", NULL, XF_SET, offsetof(xl_runargs, show_progress), 0, 0, NULL},
};

int xl_runargs_parse(xl_runargs *a, int argc, char **argv, int *i) {
  const char *arg = argv[*i];
  if (tm_options_parse(&a->tm, argc, argv, i)) return 1;
  if (xl_settings_parse_flag(&a->settings, argc, argv, i)) return 1;
  if (xl_flags_parse(run_flags, sizeof run_flags / sizeof *run_flags, a, NULL, argc, argv, i)) {
    if (a->profile_arg) {   /* --profile FILE: a settings profile to apply, nothing else */
      const char *f = a->profile_arg;
      char what[320];
      if (!xl_exists(f))
        xl_usage_error("--profile %s: no such file (--profile applies a settings profile; per-phase "
                       "latency lines go to --profile-log FILE)", f);
      if (!xl_settings_is_profile(f))
        xl_usage_error("--profile %s: not a settings profile ({\"params\":{...}} as xl-sweep and xl-merge "
                       "write): it is %s; left untouched (per-phase latency lines go to --profile-log FILE)",
                       f, xk_describe(f, what, sizeof what));
      a->settings.profile = f;
      a->profile_arg = NULL;
    }
    return 1;
  }
  if (arg[0] != '-' || !strcmp(arg, "-")) {
    if (a->prompt) xl_usage_error("more than one prompt argument ('%s'); quote the prompt", arg);
    a->prompt = arg;
    return 1;
  }
  return 0;
}

static void open_tok(xl_run *r) {
  char *tp = xl_path_join(r->model_dir, "tokenizer.json");
  if (xl_exists(tp)) {
    char err[512];
    r->tok = tok_load(r->model_dir, err, sizeof err);
    if (!r->tok) xl_die("%s", err);
  }
  free(tp);
}

void xl_run_open_tokenizer(xl_run *r, xl_runargs *a) {
  memset(r, 0, sizeof *r);
  r->model_dir = a->model_dir ? xl_strdup(a->model_dir) : xl_default_model_dir();
  open_tok(r);
  if (!r->tok) xl_die("%s: no tokenizer.json in the model directory", r->model_dir);
}

/* The progress line: tokens done (within a segment estimated from the layers or tokens it
 * has gone through), rate, time left. A terminal gets one line refreshed in place. */
static void show_progress(xl_prefill_watch *w, long done, int final) {
  double now = xl_now(), secs = now - w->t0;
  if (!final && (secs < 1.0 || now - w->last_print < (w->tty ? 0.25 : 1.0))) return;   /* a prefill of a second shows none */
  if (final && !w->printed && w->show != 2) return;
  w->last_print = now;
  w->printed = 1;
  double rate = secs > 0 ? done / secs : 0, eta = rate > 0 ? (w->total - done) / rate : 0;
  fprintf(stderr, "%s%s: prefill %ld/%ld tokens (%.0f%%), %.1f tok/s, %s %.0f s%s", w->tty ? "\r" : "", xl_progname(),
          done, w->total, w->total ? 100.0 * done / w->total : 100.0, rate, final ? "took" : "ETA",
          final ? secs : eta, w->tty && !final ? "   " : "\n");
  fflush(stderr);
}

void xl_run_watch_begin(xl_prefill_watch *w, const xl_run *r, const xl_runargs *a, long total) {
  w->tty = isatty(2);
  w->show = a->show_progress ? 2 : w->tty ? 1 : 0;
  w->total = total;
  w->layers = r->model->cfg.n_blocks > 0 ? r->model->cfg.n_blocks : 1;
  w->segment = r->sess->segment > 0 ? r->sess->segment : 1;
  w->per_token = r->opt.backend == XL_BACKEND_RECURRENT;
  w->calls = w->printed = 0;
  w->last_done = 0, w->last_s = 0;
  w->t0 = xl_now(), w->last_print = 0;
}

/* A stop request (signal, memory watchdog) ends a prefill within one layer. The engine asks
 * between the layers of a segment (between tokens on the recurrent backend): a tick of the
 * progress estimate too. */
static int run_interrupted(void *ctx) {
  xl_prefill_watch *w = ctx;
  if (w && w->show && w->total > 0) {
    long seg = w->total - w->last_done < w->segment ? w->total - w->last_done : w->segment;
    double part = w->per_token ? (double)w->calls / seg : (double)w->calls / w->layers;
    w->calls++;
    show_progress(w, w->last_done + (long)(seg * (part < 1 ? part : 1)), 0);
  }
  return tm_should_stop() != 0;
}

void xl_run_open(xl_run *r, xl_runargs *a, int need_tokenizer) {
  memset(r, 0, sizeof *r);
  r->model_dir = a->model_dir ? xl_strdup(a->model_dir) : xl_default_model_dir();
  char err[1024];
  tm_set_phase("load");
  r->model = xl_model_load(r->model_dir, err, sizeof err);
  if (!r->model) xl_die("%s", err);
  open_tok(r);
  if (need_tokenizer && !r->tok) xl_die("%s: no tokenizer.json in the model directory (give --ids instead)", r->model_dir);
  if (xl_settings_resolve(&r->opt, r->model, &a->settings, err, sizeof err)) xl_usage_error("%s", err);
  if (xl_device_check(r->model, &r->opt, err, sizeof err)) xl_usage_error("%s", err);
  r->opt.progress = a->progress;
  r->opt.progress_ctx = a->progress_ctx;
  r->opt.interrupted = run_interrupted;
  r->sess = xl_session_new(r->model, &r->opt, err, sizeof err);
  if (!r->sess) xl_die("%s", err);
  for (int i = 0; i < r->model->st.nfiles; i++)
    tm_register_region(r->model->st.files[i].path, r->model->st.files[i].map, r->model->st.files[i].size);
  tm_set_scratch_bytes(r->sess->scratch_bytes);
}

int xl_run_prefill_hook(void *ctx, long done, long total, double seconds) {
  xl_prefill_watch *w = ctx;
  if (done < w->last_done) w->last_done = 0, w->last_s = 0;   /* a new prefill */
  tm_prefill_chunk(done - w->last_done, seconds - w->last_s);
  if (w->profile && tm_profiling()) tm_prof_step_end(done);
  w->last_done = done;
  w->last_s = seconds;
  w->calls = 0;   /* the next segment's layers */
  if (w->show && w->total > 0) show_progress(w, done, done >= w->total);
  return tm_should_stop() != 0;
}

int xl_run_logits_finite(xl_run *r) {
  const float *l = xl_session_logits(r->sess);
  if (!l) return 1;   /* a device failure: reported by the caller's own check */
  for (int i = 0; i < r->model->cfg.vocab; i++)
    if (!isfinite(l[i])) return 0;
  return 1;
}

void xl_run_close(xl_run *r) {
  xl_session_free(r->sess);
  if (r->model)
    for (int i = 0; i < r->model->st.nfiles; i++) tm_unregister_region(r->model->st.files[i].map);
  xl_model_free(r->model);
  tok_free(r->tok);
  free(r->model_dir);
  memset(r, 0, sizeof *r);
}

/* A bad id: in --ids a usage error (exit 2, the command line), in a file a data error
 * (exit 1). The ids so far and the parsed JSON are freed first (no leak at exit). */
static _Noreturn __attribute__((format(printf, 4, 5))) void ids_fail(const char *src, int32_t *ids, cJSON *j, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  free(ids);
  cJSON_Delete(j);
  if (strcmp(src, "--ids")) xl_die("%s", msg);
  xl_usage_error("%s", msg);
}

/* Parses ids separated by commas/whitespace, or JSON {"ids":[...]} / [...]. */
static long parse_ids(const char *text, const char *src, int vocab, int32_t **out) {
  size_t cap = 64, n = 0;
  int32_t *ids = xl_malloc(cap * sizeof *ids);
  const char *p = text;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p == '{' || *p == '[') {
    cJSON *j = cJSON_Parse(p);
    cJSON *arr = cJSON_IsArray(j) ? j : cJSON_GetObjectItem(j, "ids");
    if (!cJSON_IsArray(arr)) ids_fail(src, ids, j, "%s: expected {\"ids\":[...]} or a list of integers", src);
    cJSON *x;
    int k = 0;
    cJSON_ArrayForEach(x, arr) {
      if (!cJSON_IsNumber(x) || x->valuedouble != (double)(long)x->valuedouble || x->valuedouble < 0 || (vocab > 0 && x->valuedouble >= vocab))
        ids_fail(src, ids, j, "%s: ids[%d] is not a token id in [0, %d)", src, k, vocab);
      if (n == cap) ids = xl_realloc(ids, (cap *= 2) * sizeof *ids);
      ids[n++] = (int32_t)x->valuedouble;
      k++;
    }
    cJSON_Delete(j);
  } else {
    while (*p) {
      while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
      if (!*p) break;
      char *end;
      errno = 0;
      long v = strtol(p, &end, 10);
      if (end == p || errno || v < 0 || (vocab > 0 && v >= vocab))
        ids_fail(src, ids, NULL, "%s: token %zu ('%.20s') is not an id in [0, %d)", src, n + 1, p, vocab);
      if (n == cap) ids = xl_realloc(ids, (cap *= 2) * sizeof *ids);
      ids[n++] = (int32_t)v;
      p = end;
      if (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        ids_fail(src, ids, NULL, "%s: unexpected character '%c' after token %zu", src, *p, n);
    }
  }
  *out = ids;
  return (long)n;
}

long xl_run_encode(xl_run *r, xl_runargs *a, const char *text, size_t len, const char *src, int32_t **ids) {
  if (!r->tok) xl_die("%s: no tokenizer.json in the model directory; give the prompt as --ids", r->model_dir);
  size_t n = 0, cap = 0;
  *ids = NULL;
  int bos = a->bos;
  if (bos < 0) bos = (r->model && r->model->cfg.force_bos) || tok_adds_bos(r->tok);
  if (bos) {
    int id = r->model && r->model->cfg.bos_id >= 0 ? r->model->cfg.bos_id : tok_bos_id(r->tok);
    if (id < 0) xl_die("--bos yes: the model has no bos_token_id and the tokenizer no BOS token");
    cap = 16;
    *ids = xl_malloc(cap * sizeof **ids);
    (*ids)[n++] = id;
  }
  char err[512];
  if (tok_encode(r->tok, text, len, ids, &n, &cap, err, sizeof err)) xl_die("%s: %s", src, err);
  /* A tokenizer.json (or BOS id) that does not belong to the model may give ids past its
   * embedding: refuse them rather than read out of bounds. */
  for (size_t i = 0; r->model && i < n; i++)
    if ((*ids)[i] >= r->model->cfg.vocab)
      xl_die("%s: token id %d%s is outside the model's vocabulary (vocab_size %d): tokenizer.json does not match config.json",
             src, (int)(*ids)[i], bos && i == 0 ? " (BOS)" : "", r->model->cfg.vocab);
  return (long)n;
}

long xl_run_prompt_ids(xl_run *r, xl_runargs *a, int allow_stdin, int32_t **ids) {
  int given = !!a->prompt + !!a->prompt_file + !!a->ids_arg + !!a->ids_file;
  if (given > 1) xl_usage_error("give only one of PROMPT, --prompt-file, --ids, --ids-file");
  int vocab = r->model ? r->model->cfg.vocab : (r->tok ? tok_vocab_size(r->tok) : 0);
  *ids = NULL;
  if (a->ids_arg) return parse_ids(a->ids_arg, "--ids", vocab, ids);
  if (a->ids_file) {
    char *text = xl_read_file(a->ids_file, NULL);
    if (!text) xl_die("%s: cannot read: %s", a->ids_file, strerror(errno));
    long n = parse_ids(text, a->ids_file, vocab, ids);
    free(text);
    return n;
  }
  if (a->prompt) return xl_run_encode(r, a, a->prompt, strlen(a->prompt), "prompt", ids);
  size_t len = 0;
  char *text = NULL;
  const char *src = a->prompt_file;
  if (a->prompt_file) {
    text = xl_read_file(a->prompt_file, &len);
    if (!text) xl_die("%s: cannot read: %s", a->prompt_file, strerror(errno));
  } else if (allow_stdin) {
    if (isatty(0)) xl_warn("reading the prompt from standard input (end with Ctrl-D)");
    text = xl_read_stream(stdin, &len);
    if (!text) xl_die("standard input: read error");
    src = "standard input";
  } else {
    return 0;
  }
  long n = xl_run_encode(r, a, text, len, src, ids);
  free(text);
  return n;
}


void xl_run_record_fields(const xl_run *r, cJSON *rec) {
  cJSON_AddStringToObject(rec, "model", r->model_dir);
  if (r->model) cJSON_AddStringToObject(rec, "fingerprint", r->model->fingerprint_hex);
  for (int id = 0; id < XS_COUNT; id++) cJSON_AddItemToObject(rec, xl_settings[id].key, xl_setting_json(id, &r->opt));
  if (r->sess) cJSON_AddNumberToObject(rec, "prefill_segment", r->sess->segment);
  cJSON_AddStringToObject(rec, "blas_core", xl_blas_core());
  cJSON_AddNumberToObject(rec, "peak_rss_mb", tm_peak_rss_mb());
}

void xl_print_record(cJSON *rec) {
  /* through the record writer: a path (model, state) with bytes that are not UTF-8 gets
   * U+FFFD, so JSON readers accept the line */
  if (rec_ndjson_write(stdout, rec)) xl_die("cannot write the record: out of memory");
  fflush(stdout);
}
