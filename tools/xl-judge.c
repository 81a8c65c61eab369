/* xl-judge: rates the continuations an optimizer run saved (runs/<run>/outputs.jsonl)
 * so quality can be weighed against speed. Two judges, as subcommands:
 *   ollama    an external LLM judge over HTTP (Ollama or OpenAI-compatible server):
 *             1-10 scores for coherence, relevance, fluency, overall + a rationale,
 *             written to ratings_ollama.jsonl / .csv (resumable);
 *   internal  model-based log-prob scoring with the run's own model (ratings.jsonl / .csv).
 * Not for: generating the outputs (xl-save) or joining them with speed (xl-merge).
 * The HTTP client is lib/judge/judge_http.c and the log-prob scorer
 * lib/judge/judge_internal.c; this file picks the outputs to judge, runs the ollama
 * requests over -j workers, and writes the rows. */
#define _GNU_SOURCE  /* asprintf */
#include "cli/version.h"
#include "judge/judge_http.h"
#include "judge/judge_internal.h"
#include "io/records.h"
#include "engine/blasenv.h"
#include "cli/flags.h"
#include "cli/runargs.h"
#include "cli/settings.h"
#include "sweep/trials.h"
#include "base/fanout.h"
#include "base/util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

typedef struct {
  const char *run_dir, *prompt_file, *out_base;
  jh_config jc;
  long jobs, max_chars;
  double save_every;   /* seconds between checkpoint rewrites of the output files */
  int force;
} judge_opts;

static void usage_top(FILE *f) {
  fputs("Usage: xl-judge COMMAND RUN_DIR [OPTIONS]\n"
        "Rates the continuations saved in RUN_DIR/outputs.jsonl (written by xl-save).\n\n"
        "Commands:\n"
        "  ollama     external LLM judge over HTTP (Ollama, or OpenAI-compatible with --openai);\n"
        "             writes RUN_DIR/ratings_ollama.jsonl and .csv\n"
        "  internal   log-prob scoring with the run's own model; writes RUN_DIR/ratings.jsonl and .csv\n\n"
        "'xl-judge COMMAND --help' describes a command's options.\n"
        "Exit status: 0 ok, 1 runtime or data error, 2 usage error.\n", f);
}

static void usage_ollama(FILE *f) {
  fputs(
      "Usage: xl-judge ollama RUN_DIR [OPTIONS]\n"
      "Asks an LLM judge to rate every continuation in RUN_DIR/outputs.jsonl with whole numbers\n"
      "1-10 for coherence, relevance, fluency and overall, plus a one-sentence rationale.\n"
      "The judge sees an excerpt of the prompt (from the row's prompt_file, or --prompt-file) and\n"
      "the continuation (the row's text, or RUN_DIR/outputs/<slug>.txt). It is asked for JSON\n"
      "constrained by a JSON schema, at temperature 0 with a fixed seed.\n\n"
      "Server:\n"
      "  --api URL             server root (default http://127.0.0.1:11434); a user:password@\n"
      "                        in it is sent as HTTP basic auth and never written anywhere\n"
      "  --api-key KEY         sent as 'Authorization: Bearer KEY' (OpenAI-compatible servers;\n"
      "                        default $XL_JUDGE_API_KEY; the variable keeps it out of `ps`);\n"
      "                        redacted (***) in every row, message and log\n"
      "  --judge-model NAME    judge model (default llama3.1:8b; --model NAME is its old\n"
      "                        spelling, kept for one release with a warning)\n"
      "  --openai              OpenAI-compatible API: POST URL/v1/chat/completions with\n"
      "                        response_format json_schema (strict); default is Ollama's\n"
      "                        POST URL/api/generate with stream:false and a format schema\n"
      "  --seed S              sampling seed sent with every request (default 42)\n"
      "  --num-ctx N           Ollama context window, options.num_ctx (default 8192; 0 = server default)\n"
      "Robustness:\n"
      "  --workers N           concurrent requests, one thread each (default 1, max 64;\n"
      "                        -j/--jobs N is its old spelling, kept for one release)\n"
      "  --timeout S           total time limit of one attempt in seconds (default 300)\n"
      "  --connect-timeout S   time limit to connect (default 10)\n"
      "  --retries N           extra attempts after connection refused/reset/cut, HTTP 429 or\n"
      "                        5xx (default 3). A read timeout is not retried.\n"
      "  --backoff S           wait before the first retry, doubled each time (default 0.2);\n"
      "                        a server's Retry-After is honoured, all waits capped by\n"
      "  --backoff-max S       (default 5)\n"
      "Input and output:\n"
      "  --prompt-file F       the prompt for every row (default: each row's prompt_file, looked\n"
      "                        up as given, then relative to RUN_DIR; it must lie inside RUN_DIR\n"
      "                        or xltools' own prompts/, symlinks resolved: a record cannot send\n"
      "                        other files to the server)\n"
      "  --max-chars N         longer prompts and continuations keep their first and last N/2\n"
      "                        characters with an omission marker between (default 4000; 0 = all)\n"
      "  -o, --output FILE.jsonl  the ratings (default ratings_ollama.jsonl), and FILE.csv beside\n"
      "                        it; a name without '/' is inside RUN_DIR. (-o BASE without .jsonl,\n"
      "                        the old spelling, still means BASE.jsonl + BASE.csv, with a warning)\n"
      "  --force               judge every row again, even those already rated\n"
      "  --save-every S        while judging, rewrite the output files with the rows finished\n"
      "                        so far at most every S seconds (default 2; 0 = after each row)\n"
      "  -h, --help            this help\n\n"
      "Output rows (one per output, in outputs.jsonl order; CSV columns in this order):\n"
      "  slug, trial, coherence, relevance, fluency, overall (1-10 or null), rationale,\n"
      "  judge_model, status, error, judge_digest, judge_version, and the trial parameters\n"
      "  backend, chunk_size, heads_per_band, workers when outputs.jsonl has them.\n"
      "  The JSONL rows also carry judge_api, attempts, judged_at and, for parse errors, raw.\n"
      "status: ok; parse_error (the judge answered, but not valid JSON with every field in\n"
      "  range: error says what, raw keeps the answer); error (no answer after the retries:\n"
      "  error has the message). judge_digest/judge_version come from GET /api/tags and\n"
      "  /api/version (Ollama) or /v1/models (OpenAI mode, digest only if listed), else null.\n"
      "Resuming: rows already in BASE.jsonl with status ok from the same judge model are kept\n"
      "  and not asked again; the files are rewritten atomically (--save-every) while judging,\n"
      "  so an interrupted run loses only the rows finished since the last save.\n"
      "Progress goes to stderr when it is a terminal. SIGINT/SIGTERM abort the requests in\n"
      "  flight (within about a second), write the rows finished so far, and exit 130/143.\n\n"
      "Exit status: 0 every row ok or parse_error, at least one ok; 1 some row has status error\n"
      "  (the files are still written; run again to retry those rows), every row is a\n"
      "  parse_error (written too), the judge model is missing (HTTP 404; nothing written), the\n"
      "  server cannot be reached, or the input is bad; 2 usage error; 130/143 interrupted.\n",
      f);
}

static const char default_base[] = "ratings_ollama";

static void parse_ollama_args(int argc, char **argv, judge_opts *o) {
  memset(o, 0, sizeof *o);
  o->jc = (jh_config){.api = "http://127.0.0.1:11434", .model = "llama3.1:8b", .timeout_s = 300,
                      .connect_timeout_s = 10, .retries = 3, .backoff_s = 0.2, .backoff_max_s = 5,
                      .seed = 42, .num_ctx = 8192};
  o->jobs = 1;
  o->max_chars = 4000;
  o->save_every = 2;
  o->out_base = default_base;
  for (int i = 1; i < argc; i++) {
    const char *v, *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage_ollama(stdout); xl_finish_stdout(); exit(0); }
    else if ((v = xl_flag_value(argc, argv, &i, "--api"))) o->jc.api = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--api-key"))) o->jc.api_key = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--judge-model"))) o->jc.model = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--model"))) {
      xl_deprecated("--model NAME", "--judge-model NAME");
      o->jc.model = v;
    }
    else if ((v = xl_flag_value(argc, argv, &i, "--workers"))) o->jobs = xl_flag_long("--workers", v, 1, 64);
    else if (!strcmp(a, "--openai")) o->jc.openai = 1;
    else if (!strcmp(a, "--force")) o->force = 1;
    else if ((v = xl_flag_value(argc, argv, &i, "--save-every"))) o->save_every = xl_flag_double("--save-every", v, 0, 86400);
    else if ((v = xl_flag_value(argc, argv, &i, "-j")) || (v = xl_flag_value(argc, argv, &i, "--jobs"))) {
      xl_deprecated("-j/--jobs N (concurrent requests are threads)", "--workers N");
      o->jobs = xl_flag_long("-j", v, 1, 64);
    } else if (!strncmp(a, "-j", 2) && a[2] && a[2] != '=') {
      xl_deprecated("-j/--jobs N (concurrent requests are threads)", "--workers N");
      o->jobs = xl_flag_long("-j", a + 2, 1, 64);
    }
    else if ((v = xl_flag_value(argc, argv, &i, "--timeout"))) o->jc.timeout_s = xl_flag_double("--timeout", v, 0.001, 86400);
    else if ((v = xl_flag_value(argc, argv, &i, "--connect-timeout")))
      o->jc.connect_timeout_s = xl_flag_double("--connect-timeout", v, 0.001, 3600);
    else if ((v = xl_flag_value(argc, argv, &i, "--retries"))) o->jc.retries = (int)xl_flag_long("--retries", v, 0, 100);
    else if ((v = xl_flag_value(argc, argv, &i, "--backoff-max"))) o->jc.backoff_max_s = xl_flag_double("--backoff-max", v, 0, 3600);
    else if ((v = xl_flag_value(argc, argv, &i, "--backoff"))) o->jc.backoff_s = xl_flag_double("--backoff", v, 0, 3600);
    else if ((v = xl_flag_value(argc, argv, &i, "--seed"))) o->jc.seed = xl_flag_long("--seed", v, 0, 4294967295L);
    else if ((v = xl_flag_value(argc, argv, &i, "--num-ctx"))) o->jc.num_ctx = xl_flag_long("--num-ctx", v, 0, 1L << 24);
    else if ((v = xl_flag_value(argc, argv, &i, "--prompt-file"))) o->prompt_file = v;
    else if ((v = xl_flag_value(argc, argv, &i, "--max-chars"))) o->max_chars = xl_flag_long("--max-chars", v, 0, 1L << 30);
    else if ((v = xl_flag_value(argc, argv, &i, "-o")) || (v = xl_flag_value(argc, argv, &i, "--output"))) o->out_base = v;
    else if (a[0] == '-' && a[1]) xl_usage_error("unknown option '%s'", a);
    else if (!o->run_dir) o->run_dir = a;
    else xl_usage_error("unexpected argument '%s'", a);
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
  if (!*o->out_base) xl_usage_error("-o needs a non-empty name");
  size_t ol = strlen(o->out_base);
  if (ol > 6 && !strcmp(o->out_base + ol - 6, ".jsonl")) {   /* -o FILE.jsonl: the base is FILE */
    static char base[4096];
    snprintf(base, sizeof base, "%.*s", (int)(ol - 6), o->out_base);
    o->out_base = base;
  } else if (o->out_base != default_base) {
    xl_deprecated("-o BASE (a base name)", "-o BASE.jsonl (the ratings file; the CSV goes beside it)");
  }
  if (!o->jc.api_key) {
    const char *k = getenv("XL_JUDGE_API_KEY");
    if (k && *k) o->jc.api_key = k;
  }
  if (strncmp(o->jc.api, "http://", 7) && strncmp(o->jc.api, "https://", 8)) {
    char *shown = jh_api_shown(o->jc.api);
    xl_usage_error("--api must start with http:// or https://, not '%s'", shown);
  }
  if (!*o->jc.model) xl_usage_error("--judge-model needs a name");
}

/* ------------------------------------------------------------------ inputs */

/* One output to judge (borrowed pointers into the outputs.jsonl objects). */
typedef struct {
  const cJSON *out;     /* its outputs.jsonl object */
  const char *slug;
  cJSON *kept;          /* a finished row from an earlier run (owned by the rows array), or NULL */
  char *prompt;         /* judging prompt (owned), NULL when kept */
} task;

/* A prompt file an output names: as given, else inside the run directory (both judges
 * look prompts up this way). Exits 1 when neither can be read. */
static char *read_prompt(const char *run_dir, const char *name, const char *slug, size_t *len) {
  char *path = tr_run_file(run_dir, name);
  char *text = path ? xl_read_file(path, len) : NULL;
  if (!text) xl_die("prompt file '%s' (of output '%s'): %s; pass --prompt-file", name, slug, strerror(errno));
  free(path);
  return text;
}

/* RUN_DIR/outputs/<slug>.txt, where xl-save keeps each continuation; NULL (errno set)
 * when it cannot be read. *path (if given) gets the malloc'd path tried. */
static char *read_output_txt(const char *run_dir, const char *slug, char **path) {
  char *name = NULL;
  if (asprintf(&name, "outputs/%s.txt", slug) < 0) xl_die("out of memory");
  char *p = xl_path_join(run_dir, name);
  char *text = xl_read_file(p, NULL);
  int e = errno;
  free(name);
  if (path) *path = p;
  else free(p);
  errno = e;
  return text;
}

/* The prompts shipped with xltools (prompts/ of the checkout or of an installed share/),
 * or NULL: public text, which a record may name (the workflow's default prompt is there). */
static char *shipped_prompts(void) {
  char *d = xl_find_resource("prompts", "pydocs.txt"), *probe = xl_path_join(d, "pydocs.txt");
  int found = xl_exists(probe);
  free(probe);
  if (!found) { free(d); d = NULL; }
  return d;
}

/* The prompt file a row names, for the ollama judge: only inside RUN_DIR or the shipped
 * prompts/ (looked up as given, then relative to RUN_DIR; symlinks resolved), else refused:
 * a record must not choose what is sent to the server (docs/security.md). Exits 1. */
static char *read_prompt_confined(const char *run_dir, const char *name, const char *slug) {
  char *cands[2] = {xl_strdup(name), name[0] != '/' ? xl_path_join(run_dir, name) : NULL};
  char *text = NULL, *shipped = shipped_prompts();
  int outside = 0;
  for (int k = 0; k < 2 && !text; k++) {
    if (!cands[k] || !xl_exists(cands[k])) continue;
    char *real = xl_path_inside(run_dir, cands[k]);
    if (!real && shipped) real = xl_path_inside(shipped, cands[k]);
    if (!real) { outside = 1; continue; }
    text = xl_read_file(real, NULL);
    if (!text) xl_die("prompt file '%s' (of output '%s'): %s", name, slug, strerror(errno));
    free(real);
  }
  free(cands[0]);
  free(cands[1]);
  free(shipped);
  if (!text && outside)
    xl_die("output '%s': its prompt_file '%s' lies outside the run directory %s; a record may only "
           "name files inside it (pass the prompt with --prompt-file FILE to use it)", slug, name, run_dir);
  if (!text) xl_die("prompt file '%s' (of output '%s'): %s; pass --prompt-file", name, slug, strerror(ENOENT));
  return text;
}

/* Prompt texts, read once per distinct file. */
typedef struct { char *name; char *text; } prompt_cache;

static const char *prompt_text(const judge_opts *o, const char *name, const char *slug,
                               prompt_cache **cache, size_t *ncache) {
  for (size_t i = 0; i < *ncache; i++)
    if (!strcmp((*cache)[i].name, name)) return (*cache)[i].text;
  /* the user's --prompt-file is read as named; a row's own only from inside the run directory */
  char *text = o->prompt_file ? read_prompt(o->run_dir, name, slug, NULL) : read_prompt_confined(o->run_dir, name, slug);
  *cache = xl_realloc(*cache, (*ncache + 1) * sizeof **cache);
  (*cache)[*ncache] = (prompt_cache){xl_strdup(name), text};
  return (*cache)[(*ncache)++].text;
}

/* The continuation: the row's text, else outputs/<slug>.txt. Returns malloc'd. */
static char *continuation(const judge_opts *o, const cJSON *out, const char *slug) {
  const char *t = rec_str(out, "text");
  if (t) return xl_strdup(t);
  if (strchr(slug, '/') || !strcmp(slug, ".") || !strcmp(slug, ".."))
    xl_die("output '%s' has no text and its slug is not a file name", slug);
  char *p;
  char *text = read_output_txt(o->run_dir, slug, &p);
  if (!text) xl_die("output '%s' has no text in outputs.jsonl and %s: %s", slug, p, strerror(errno));
  char *real = xl_path_inside(o->run_dir, p);   /* outputs/<slug>.txt must not link out of the run */
  if (!real) {
    free(text);   /* read, never used: it goes nowhere */
    xl_die("output '%s': %s lies outside the run directory (a symbolic link?); refused", slug, p);
  }
  free(real);
  free(p);
  return text;
}

/* Writes a judge's rows as JSONL and CSV: both files replaced, or (a full disk) neither and
 * the temporary files removed. 0 ok, -1 (message naming the file in err). */
static int save_rows(const char *jsonl, const char *csv, const cJSON *rows, const char *const *cols, size_t ncols,
                     char *err, size_t errlen) {
  const char *bad;
  if (!rec_save_pair(jsonl, csv, rows, cols, ncols, &bad)) return 0;
  snprintf(err, errlen, "cannot write %s: %s", bad, strerror(errno));
  return -1;
}

/* ------------------------------------------------------------------ rows */

static const char *const param_keys[] = {"backend", "chunk_size", "heads_per_band", "workers"};
#define NPARAMS (sizeof param_keys / sizeof *param_keys)
static const char *const base_cols[] = {"slug", "trial", "coherence", "relevance", "fluency", "overall",
                                        "rationale", "judge_model", "status", "error",
                                        "judge_digest", "judge_version"};
#define NBASE (sizeof base_cols / sizeof *base_cols)

static void add_str_or_null(cJSON *o, const char *k, const char *v) {
  if (v) cJSON_AddStringToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static cJSON *make_row(const judge_opts *o, const cJSON *out, const char *slug, const jh_result *r,
                       const char *digest, const char *version) {
  static const char *const status_names[] = {"ok", "parse_error", "error", "error"};
  cJSON *row = cJSON_CreateObject();
  cJSON_AddStringToObject(row, "slug", slug);
  const cJSON *trial = cJSON_GetObjectItemCaseSensitive(out, "trial");
  cJSON_AddItemToObject(row, "trial", trial ? cJSON_Duplicate(trial, 1) : cJSON_CreateNull());
  for (int i = 0; i < JH_NSCORES; i++) {
    if (r->status == JH_OK) cJSON_AddNumberToObject(row, jh_score_names[i], r->scores[i]);
    else cJSON_AddNullToObject(row, jh_score_names[i]);
  }
  add_str_or_null(row, "rationale", r->status == JH_OK ? r->rationale : NULL);
  cJSON_AddStringToObject(row, "judge_model", o->jc.model);
  cJSON_AddStringToObject(row, "status", status_names[r->status]);
  add_str_or_null(row, "error", r->status == JH_OK ? NULL : r->error);
  add_str_or_null(row, "judge_digest", digest);
  add_str_or_null(row, "judge_version", version);
  for (size_t k = 0; k < NPARAMS; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(out, param_keys[k]);
    if (v) cJSON_AddItemToObject(row, param_keys[k], cJSON_Duplicate(v, 1));
  }
  cJSON_AddStringToObject(row, "judge_api", o->jc.openai ? "openai" : "ollama");
  cJSON_AddNumberToObject(row, "attempts", r->attempts);
  char when[40];
  xl_rfc3339(when, sizeof when, xl_wall());
  cJSON_AddStringToObject(row, "judged_at", when);
  if (r->status == JH_PARSE_ERROR) add_str_or_null(row, "raw", r->raw);
  return row;
}

/* Writes BASE.jsonl then BASE.csv: the base columns, then the trial parameters that
 * some row has. 0 ok, -1 (message in err). */
static int write_rows(const char *jsonl, const char *csv, const cJSON *rows, char *err, size_t errlen) {
  const char *cols[NBASE + NPARAMS];
  size_t ncols = 0;
  for (size_t i = 0; i < NBASE; i++) cols[ncols++] = base_cols[i];
  for (size_t k = 0; k < NPARAMS; k++) {
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
      if (cJSON_GetObjectItemCaseSensitive(r, param_keys[k])) { cols[ncols++] = param_keys[k]; break; }
  }
  return save_rows(jsonl, csv, rows, cols, ncols, err, errlen);
}

/* ------------------------------------------------------------------ the run */

/* SIGINT / SIGTERM: the signal number; the HTTP client aborts its request in flight and
 * starts no other (jh_config.stop), the rows finished are written, exit 130 / 143. A second
 * signal kills at once (SA_RESETHAND). */
static volatile int stop_sig;
static void on_stop_signal(int sig) { stop_sig = sig; }
static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}
static int stop_status(void) { return stop_sig == SIGINT ? XL_EXIT_SIGINT : stop_sig ? XL_EXIT_SIGTERM : 0; }

typedef struct {
  const judge_opts *o;
  task *tasks;
  size_t ntasks;
  size_t *todo;           /* indices of tasks to request */
  size_t ntodo, ndone;
  jh_client **clients;    /* one per fan-out worker */
  jh_result *res;         /* [ntasks] */
  unsigned char *done;    /* [ntasks] */
  const cJSON *extra;     /* earlier rows whose slug is not in outputs.jsonl (kept at the end) */
  char *digest, *version;
  const char *jsonl, *csv;
  int stop;               /* a fatal answer (model missing) ends the run */
  size_t fatal;
  int counts[3];          /* ok, parse_error, error among new results */
  int progress;
  double last_save;
  int save_warned;
  pthread_mutex_t mu;
} run_ctx;

/* All rows finished so far, in outputs.jsonl order, then the extra ones. */
static cJSON *collect_rows(run_ctx *x) {
  cJSON *rows = cJSON_CreateArray();
  for (size_t i = 0; i < x->ntasks; i++) {
    task *t = &x->tasks[i];
    if (t->kept) cJSON_AddItemToArray(rows, cJSON_Duplicate(t->kept, 1));
    else if (x->done[i])
      cJSON_AddItemToArray(rows, make_row(x->o, t->out, t->slug, &x->res[i], x->digest, x->version));
  }
  const cJSON *r;
  cJSON_ArrayForEach(r, x->extra) cJSON_AddItemToArray(rows, cJSON_Duplicate(r, 1));
  return rows;
}

static void show_progress(run_ctx *x, int final) {
  if (!x->progress) return;
  fprintf(stderr, "\r%s: %zu/%zu judged (ok %d, parse_error %d, error %d)%s", xl_progname(), x->ndone,
          x->ntodo, x->counts[0], x->counts[1], x->counts[2], final ? "\n" : "");
  fflush(stderr);
}

/* Called with x->mu held: saves what is finished, at most every --save-every seconds. */
static void checkpoint(run_ctx *x) {
  double now = xl_now();
  if (x->stop || now - x->last_save < x->o->save_every) return;
  x->last_save = now;
  cJSON *rows = collect_rows(x);
  char err[512];
  if (write_rows(x->jsonl, x->csv, rows, err, sizeof err) && !x->save_warned) {
    x->save_warned = 1;
    xl_warn("checkpoint: %s", err);
  }
  cJSON_Delete(rows);
}

/* One fan-out job: the k-th request, on the worker's own HTTP handle. Stops the run when
 * the judge model is missing (no later request can succeed). */
static int judge_job(void *ctx, size_t k, size_t worker) {
  run_ctx *x = ctx;
  size_t i = x->todo[k];
  pthread_mutex_lock(&x->mu);
  int stopped = x->stop || stop_sig;   /* a job handed out just before another one stopped the run */
  pthread_mutex_unlock(&x->mu);
  if (stopped) return 1;
  jh_result r;
  jh_judge(x->clients[worker], x->tasks[i].prompt, &r);
  if (r.interrupted) {   /* no result: the row stays unjudged (a later run asks again) */
    jh_result_free(&r);
    return 1;
  }

  pthread_mutex_lock(&x->mu);
  x->res[i] = r;
  x->done[i] = 1;
  x->ndone++;
  if (r.status == JH_MODEL_MISSING) {
    if (!x->stop) x->fatal = i;
    x->stop = 1;
  } else {
    x->counts[r.status == JH_OK ? 0 : r.status == JH_PARSE_ERROR ? 1 : 2]++;
  }
  show_progress(x, 0);
  checkpoint(x);
  int stop = x->stop;
  pthread_mutex_unlock(&x->mu);
  return stop;
}

static char *out_path(const judge_opts *o, const char *ext) {
  char *base = strchr(o->out_base, '/') ? xl_strdup(o->out_base) : xl_path_join(o->run_dir, o->out_base);
  char *p = NULL;
  if (asprintf(&p, "%s%s", base, ext) < 0) xl_die("out of memory");
  free(base);
  return p;
}

/* What an ollama run works on: the outputs, the earlier rows, and one task per output. */
typedef struct {
  char *outputs_path;
  cJSON *outputs;
  cJSON *old;             /* earlier rows of BASE.jsonl (NULL with --force or none) */
  cJSON *extra;           /* those whose slug is not in outputs.jsonl: kept at the end */
  task *tasks;            /* [ntasks], in outputs.jsonl order */
  size_t ntasks;
  size_t *todo, ntodo;    /* tasks to request */
} ollama_input;

/* Reads outputs.jsonl and the earlier rows of jsonl; ok rows from the same judge model are
 * kept, every other output gets its judging prompt and a place in todo. */
static void load_tasks(const judge_opts *o, const char *jsonl, ollama_input *in) {
  char err[1024];
  in->outputs_path = xl_path_join(o->run_dir, "outputs.jsonl");
  in->outputs = rec_ndjson_read(in->outputs_path, err, sizeof err);
  if (!in->outputs) xl_die("%s", err);
  in->old = NULL;
  struct stat st;   /* earlier rows only from a regular file (a FIFO would block the read) */
  if (!o->force && stat(jsonl, &st) == 0 && S_ISREG(st.st_mode)) {
    in->old = rec_ndjson_read(jsonl, err, sizeof err);
    if (!in->old) xl_die("%s (remove it or use --force)", err);
  }
  in->ntasks = (size_t)cJSON_GetArraySize(in->outputs);
  in->tasks = xl_calloc(in->ntasks, sizeof *in->tasks);
  in->todo = xl_calloc(in->ntasks, sizeof *in->todo);
  in->ntodo = 0;
  prompt_cache *cache = NULL;
  size_t ncache = 0, i = 0;
  const cJSON *out;
  cJSON_ArrayForEach(out, in->outputs) {
    task *t = &in->tasks[i];
    t->out = out;
    t->slug = rec_str(out, "slug");
    if (!t->slug || !*t->slug) xl_die("%s: entry %zu has no 'slug' string", in->outputs_path, i + 1);
    for (size_t k = 0; k < i; k++)
      if (!strcmp(in->tasks[k].slug, t->slug)) xl_die("%s: slug '%s' appears twice", in->outputs_path, t->slug);
    cJSON *r;
    cJSON_ArrayForEach(r, in->old) {
      const char *s = rec_str(r, "slug"), *st = rec_str(r, "status"), *m = rec_str(r, "judge_model");
      if (s && !strcmp(s, t->slug) && st && !strcmp(st, "ok") && m && !strcmp(m, o->jc.model)) { t->kept = r; break; }
    }
    if (!t->kept) {
      const char *pf = o->prompt_file ? o->prompt_file : rec_str(out, "prompt_file");
      if (!pf) xl_die("output '%s' names no prompt_file; pass --prompt-file", t->slug);
      const char *ptext = prompt_text(o, pf, t->slug, &cache, &ncache);
      char *cont = continuation(o, out, t->slug);
      t->prompt = jh_build_prompt(ptext, cont, (size_t)o->max_chars);
      free(cont);
      in->todo[in->ntodo++] = i;
    }
    i++;
  }
  for (size_t k = 0; k < ncache; k++) { free(cache[k].name); free(cache[k].text); }
  free(cache);
  in->extra = cJSON_CreateArray();
  cJSON *r;
  cJSON_ArrayForEach(r, in->old) {
    const char *s = rec_str(r, "slug");
    int found = 0;
    for (size_t k = 0; k < in->ntasks && s && !found; k++) found = !strcmp(in->tasks[k].slug, s);
    if (!found) cJSON_AddItemToArray(in->extra, cJSON_Duplicate(r, 1));
  }
}

static void free_input(ollama_input *in) {
  for (size_t k = 0; k < in->ntasks; k++) free(in->tasks[k].prompt);
  free(in->tasks);
  free(in->todo);
  cJSON_Delete(in->extra);
  cJSON_Delete(in->old);
  cJSON_Delete(in->outputs);
  free(in->outputs_path);
}

/* Asks the server who it is, then sends every request over -j workers, each with an HTTP
 * handle of its own. */
static void run_requests(const judge_opts *o, run_ctx *x) {
  char err[1024];
  if (jh_global_init()) xl_die("cannot initialise libcurl");
  jh_client *cl = jh_client_new(&o->jc);
  if (!cl) xl_die("cannot create an HTTP handle");
  int rc = jh_server_info(cl, &x->digest, &x->version, err, sizeof err);
  jh_client_free(cl);
  if (stop_sig) { jh_global_cleanup(); return; }   /* nothing judged yet: the caller exits */
  if (rc) { jh_global_cleanup(); xl_die("cannot reach the judge server: %s", err); }
  /* (OpenAI-compatible servers rarely list digests: no warning there) */
  if (!x->digest && !o->jc.openai) xl_warn("the server does not list a digest for model '%s'", o->jc.model);
  size_t nw = xl_fanout_workers(x->ntodo, (size_t)o->jobs);
  x->clients = xl_calloc(nw, sizeof *x->clients);
  for (size_t k = 0; k < nw; k++)
    if (!(x->clients[k] = jh_client_new(&o->jc))) xl_die("cannot create an HTTP handle");
  xl_fanout(x->ntodo, (size_t)o->jobs, judge_job, x);
  for (size_t k = 0; k < nw; k++) jh_client_free(x->clients[k]);
  free(x->clients);
  show_progress(x, 1);
  jh_global_cleanup();
}

static int cmd_ollama(int argc, char **argv) {
  judge_opts o;
  parse_ollama_args(argc, argv, &o);
  /* strip a trailing '/' from the API root so paths join cleanly */
  char *api = xl_strdup(o.jc.api);
  for (size_t n = strlen(api); n > 8 && api[n - 1] == '/'; n--) api[n - 1] = 0;
  o.jc.api = api;
  char *jsonl = out_path(&o, ".jsonl"), *csv = out_path(&o, ".csv");
  ollama_input in;
  load_tasks(&o, jsonl, &in);

  run_ctx x = {.o = &o, .tasks = in.tasks, .ntasks = in.ntasks, .todo = in.todo, .ntodo = in.ntodo,
               .res = xl_calloc(in.ntasks, sizeof(jh_result)), .done = xl_calloc(in.ntasks, 1),
               .extra = in.extra, .jsonl = jsonl, .csv = csv, .progress = isatty(2), .last_save = xl_now()};
  pthread_mutex_init(&x.mu, NULL);
  o.jc.stop = &stop_sig;
  catch_stop_signals();
  if (in.ntodo) run_requests(&o, &x);

  int status = 0;
  if (stop_sig && !x.stop) {   /* interrupted: keep what is finished */
    char err[1024];
    cJSON *rows = collect_rows(&x);
    if (write_rows(jsonl, csv, rows, err, sizeof err)) xl_die("%s", err);
    xl_warn("interrupted (%s): %zu of %zu rows judged, written to %s; run again to judge the rest",
            stop_sig == SIGINT ? "SIGINT" : "SIGTERM", x.ndone, in.ntodo, jsonl);
    cJSON_Delete(rows);
    status = stop_status();
  } else if (x.stop) {
    xl_warn("%s", x.res[x.fatal].error);
    status = XL_EXIT_ERROR;
  } else {
    char err[1024];
    cJSON *rows = collect_rows(&x);
    if (write_rows(jsonl, csv, rows, err, sizeof err)) xl_die("%s", err);
    cJSON_Delete(rows);
    fprintf(stderr, "%s: %zu rows in %s: %zu kept, %d ok, %d parse_error, %d error\n", xl_progname(),
            in.ntasks, jsonl, in.ntasks - in.ntodo, x.counts[0], x.counts[1], x.counts[2]);
    if (x.counts[2]) {
      xl_warn("%d request(s) failed; run again to retry them", x.counts[2]);
      status = XL_EXIT_ERROR;
    } else if (x.counts[1] && (size_t)x.counts[1] == in.ntasks) {
      /* not one rating: the judge model does not answer in the format (the raw column shows how) */
      xl_warn("every row is a parse_error: model '%s' did not answer with the rating JSON (see the "
              "rows' raw and error fields)", o.jc.model);
      status = XL_EXIT_ERROR;
    }
  }

  pthread_mutex_destroy(&x.mu);
  for (size_t k = 0; k < in.ntasks; k++) jh_result_free(&x.res[k]);
  free(x.res);
  free(x.done);
  free(x.digest);
  free(x.version);
  free_input(&in);
  free(jsonl);
  free(csv);
  free(api);
  return status;
}

/* ------------------------------------------------------------------ internal */

static void usage_internal(void) {
  fputs("Usage: xl-judge internal RUN_DIR [OPTIONS]\n"
        "Rates every continuation in RUN_DIR/outputs.jsonl (written by xl-save) by how likely a\n"
        "critic model finds it after its prompt, and by how much it repeats itself.\n\n"
        "  -m, --model DIR     critic model (default: $XL_MODEL, else models/xlstm-tiny-pydocs)\n"
        "  --prompt-file F     the prompt of every output (default: each output's prompt_file,\n"
        "                      looked up as given, then inside RUN_DIR)\n"
        "  --workers N, --device D, --matmul P, ...\n"
        "                      the critic's run settings, as for xl-prefill (default: XL_* variables,\n"
        "                      else 1 worker on the CPU, fp32)\n"
        "  -h, --help          this help\n\n"
        "Scores, per output:\n"
        "  avg_logprob  mean log-probability (natural log) of the continuation's tokens, teacher-\n"
        "               forced: token t is scored with the log-softmax of the logits computed from\n"
        "               the prompt and the continuation tokens before t; the first token with the\n"
        "               logits after the last prompt token. The prompt is tokenized as xl-decode\n"
        "               does (same BOS rule); the continuation is the output's token_ids.\n"
        "  ppl          exp(-avg_logprob)\n"
        "  len_tokens   continuation tokens\n"
        "  distinct2/3  unique / all word bigrams / trigrams of the text (null under n words)\n"
        "Writes RUN_DIR/ratings.jsonl and RUN_DIR/ratings.csv atomically (CSV columns: slug,\n"
        "trial, avg_logprob, ppl, len_tokens, distinct2, distinct3, backend, chunk_size,\n"
        "heads_per_band, workers, context; the JSONL rows add scored_tokens, prompt_tokens,\n"
        "prompt_file, judge_model, judge_fingerprint, judged_at).\n"
        "SIGINT/SIGTERM (and the memory watchdog, XL_MEM_* as for the run tools) stop the run between\n"
        "outputs, or within a layer of one (that output is dropped); the outputs rated so far are\n"
        "written, exit 130/143 (3).\n"
        "Exit status: 0 ok, 1 runtime or data error (nothing written), 2 usage error, 3/130/143 stopped.\n",
        stdout);
}

typedef struct {
  const char *run_dir, *prompt_file, *model_dir;
  xl_settings_given settings;   /* the critic's run settings: --device, --workers, --matmul, ... */
} internal_opts;

static void parse_internal_args(int argc, char **argv, internal_opts *o) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (xl_usage_error("%s needs a value", a), ""))
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage_internal(); xl_finish_stdout(); exit(0); }
    else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_dir = VALUE();
    else if (!strcmp(a, "--prompt-file")) o->prompt_file = VALUE();
    else if (xl_settings_parse_flag(&o->settings, argc, argv, &i)) continue;
    else if (a[0] == '-' && a[1]) xl_usage_error("unknown option '%s'", a);
    else if (!o->run_dir) o->run_dir = a;
    else xl_usage_error("unexpected argument '%s'", a);
#undef VALUE
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
}

typedef struct { char *name; int32_t *ids; long n; } prompt_ids;

/* The critic's session and what the outputs share. */
typedef struct {
  const internal_opts *o;
  xl_runargs ra;
  xl_run run;
  ji_scorer sc;
  prompt_ids *cache;      /* prompt ids, tokenized once per prompt file name */
  size_t ncache;
  long total_tokens;
} critic;

static const prompt_ids *get_prompt(critic *c, const char *name, const char *slug) {
  for (size_t i = 0; i < c->ncache; i++)
    if (!strcmp(c->cache[i].name, name)) return &c->cache[i];
  size_t len;
  char *text = read_prompt(c->o->run_dir, name, slug, &len);
  prompt_ids p = {xl_strdup(name), NULL, 0};
  p.n = xl_run_encode(&c->run, &c->ra, text, len, name, &p.ids);
  free(text);
  c->cache = xl_realloc(c->cache, (c->ncache + 1) * sizeof *c->cache);
  c->cache[c->ncache] = p;
  return &c->cache[c->ncache++];
}

/* The ratings row of one output. */
static cJSON *rate_output(critic *c, const cJSON *out, const char *outputs_path) {
  const char *slug = rec_str(out, "slug");
  if (!tr_slug_ok(slug)) xl_die("%s: an output has no usable slug", outputs_path);
  const char *pname = c->o->prompt_file ? c->o->prompt_file : rec_str(out, "prompt_file");
  if (!pname) xl_die("output '%s' names no prompt_file; pass --prompt-file", slug);
  const prompt_ids *p = get_prompt(c, pname, slug);
  double saved_np;
  if (!c->o->prompt_file && !rec_num(out, "prompt_tokens", &saved_np) && (long)saved_np != p->n)
    xl_warn("output '%s': the prompt is %ld tokens for the critic but was %.0f when generated "
            "(another tokenizer or BOS rule?)", slug, p->n, saved_np);
  long nc;
  char err[256];
  int32_t *ids = ji_output_ids(out, c->sc.vocab, &nc, err, sizeof err);
  if (!ids) xl_die("outputs.jsonl: output '%s': %s", slug, err);
  double sum;
  long nscored = ji_score(&c->sc, p->ids, p->n, ids, nc, &sum, NULL);
  c->total_tokens += p->n + nc;
  /* the text for distinct-n: the output's, else its .txt file, else the ids decoded */
  const char *text = rec_str(out, "text");
  char *owned = text ? NULL : read_output_txt(c->o->run_dir, slug, NULL);
  if (!text && !owned) owned = tok_decode(c->run.tok, ids, (size_t)nc, NULL);
  cJSON *row = ji_rating_row(out, text ? text : owned, nc, sum, nscored, p->n);
  cJSON_AddStringToObject(row, "judge_model", c->run.model_dir);
  cJSON_AddStringToObject(row, "judge_fingerprint", c->run.model->fingerprint_hex);
  char when[40];
  xl_rfc3339(when, sizeof when, xl_wall());
  cJSON_AddStringToObject(row, "judged_at", when);
  free(owned);
  free(ids);
  return row;
}

static int cmd_internal(int argc, char **argv) {
  internal_opts o;
  parse_internal_args(argc, argv, &o);
  char err[1024];
  char *outputs_path = xl_path_join(o.run_dir, "outputs.jsonl");
  cJSON *outputs = rec_ndjson_read(outputs_path, err, sizeof err);
  if (!outputs) xl_die("%s (run xl-save first)", err);

  critic c = {.o = &o};
  xl_runargs_init(&c.ra);
  c.ra.model_dir = o.model_dir;
  c.ra.settings = o.settings;
  xl_run_open(&c.run, &c.ra, 1);
  ji_scorer_init(&c.sc, c.run.sess, 0);
  /* the run tools' telemetry for its stops: SIGINT/SIGTERM (and the memory watchdog) end the
   * run between rows, or within a layer of a row's prefill (that row is dropped), the rows
   * finished are written, exit 130/143/3; a status file shows the run in xl-top. The
   * variables of the run tools' logs are theirs, not the judge's. */
  c.ra.tm.stats_log = c.ra.tm.mem_log = c.ra.tm.profile_log = c.ra.tm.metrics_file = NULL;
  if (tm_start(&c.ra.tm, "xl-judge")) xl_die("cannot start the run's signal handling and memory watchdog");
  tm_set_phase("prefill");

  cJSON *rows = cJSON_CreateArray();
  const cJSON *out;
  double t0 = xl_now();
  int total = cJSON_GetArraySize(outputs), done = 0;
  cJSON_ArrayForEach(out, outputs) {
    if (tm_should_stop()) break;
    cJSON *row = rate_output(&c, out, outputs_path);
    if (tm_should_stop()) {   /* stopped inside this row's prefill: its score is not whole */
      cJSON_Delete(row);
      break;
    }
    done++;
    /* one row per slug: a repeated slug replaces the earlier row */
    int k = 0, at = -1;
    const cJSON *q;
    cJSON_ArrayForEach(q, rows) {
      if (!strcmp(rec_str(q, "slug"), rec_str(row, "slug"))) at = k;
      k++;
    }
    if (at >= 0) cJSON_ReplaceItemInArray(rows, at, row);
    else cJSON_AddItemToArray(rows, row);
  }
  tm_set_phase("done");
  tm_stop();
  int status = tm_should_stop();
  char *jsonl = xl_path_join(o.run_dir, "ratings.jsonl"), *csv = xl_path_join(o.run_dir, "ratings.csv");
  if (save_rows(jsonl, csv, rows, ji_csv_cols, ji_ncsv_cols, err, sizeof err)) xl_die("%s", err);
  if (status)
    xl_warn("stopped (%s): %d of %d output(s) rated, written to %s/ratings.jsonl and ratings.csv; run again to rate "
            "them all", tm_stop_reason(), done, total, o.run_dir);
  else
    fprintf(stderr, "%s internal: %d output(s) rated in %.2f s (%ld tokens through %s); wrote %s/ratings.jsonl and ratings.csv\n",
            xl_progname(), cJSON_GetArraySize(rows), xl_now() - t0, c.total_tokens, c.run.model_dir, o.run_dir);

  for (size_t i = 0; i < c.ncache; i++) { free(c.cache[i].name); free(c.cache[i].ids); }
  free(c.cache);
  free(jsonl);
  free(csv);
  cJSON_Delete(rows);
  ji_scorer_free(&c.sc);
  xl_run_close(&c.run);
  cJSON_Delete(outputs);
  free(outputs_path);
  return status;
}

/* ------------------------------------------------------------------ dispatch */

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);  /* argv[0] is the command name */
} commands[] = {
    {"ollama", cmd_ollama},
    {"internal", cmd_internal},
};

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);   /* before anything else: may re-exec with a better OpenBLAS core */
  xl_version_if_asked(argc, argv, "xl-judge");
  xl_set_progname(argv[0]);
  if (argc < 2) xl_usage_error("missing COMMAND (ollama or internal)");
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage_top(stdout);
    xl_finish_stdout();
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) {
      int rc = commands[i].run(argc - 1, argv + 1);
      xl_finish_stdout();
      return rc;
    }
  xl_usage_error("unknown command '%s' (ollama or internal)", argv[1]);
}
