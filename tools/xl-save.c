/* xl-save: saves, for every successful trial of an optimizer run, the greedy continuation
 * its settings produce, so a judge can rate quality per setting. Each trial's generation is
 * a real run of bin/xl-decode (beside this executable) with that trial's backend,
 * chunk_size, heads_per_band and workers, so every setting runs exactly as configured.
 * Writes RUN_DIR/outputs/<slug>.txt (the continuation only) and RUN_DIR/outputs.jsonl (one
 * line per slug), both atomically; finished outputs are kept across runs.
 * Not for: timing (xl-sweep) or rating (xl-judge). Trials are read by lib/sweep/trials.c. */
#define _GNU_SOURCE
#include "cli/version.h"
#include "io/records.h"
#include "sweep/trials.h"
#include "base/fanout.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void usage(void) {
  fputs("Usage: xl-save RUN_DIR [options]\n"
        "For every successful trial of an optimizer run, generate the greedy continuation of the\n"
        "prompt under THAT trial's settings (backend, chunk_size, heads_per_band, workers) by\n"
        "running xl-decode, and save it for the judges.\n\n"
        "  --trials FILE|-     trials to save: NDJSON (trials.jsonl) or CSV (a name ending in .csv,\n"
        "                      e.g. summary.csv); '-' reads NDJSON from stdin\n"
        "                      (default RUN_DIR/trials.jsonl, else RUN_DIR/summary.csv)\n"
        "  -n, --new N         tokens to generate per trial (default 64; generation stops early\n"
        "                      at the model's end-of-sequence id)\n"
        "  --prompt-file F     the prompt for every trial (default: the trial's prompt_file, else\n"
        "                      run_meta.json's prompt_file; a relative name is looked up as given,\n"
        "                      then inside RUN_DIR)\n"
        "  -m, --model DIR     model directory passed to xl-decode (default: xl-decode's default\n"
        "                      model, $XL_MODEL or models/xlstm-tiny-pydocs)\n"
        "  -j, --jobs N        generations run at once (default 1; each one uses its trial's\n"
        "                      own worker count, so keep N * workers within the cores)\n"
        "  --force             generate again even where an output exists\n"
        "  -h, --help          this help\n\n"
        "Outputs (atomic; a kill never leaves a torn or duplicated line):\n"
        "  RUN_DIR/outputs/<slug>.txt   the continuation only (no prompt)\n"
        "  RUN_DIR/outputs.jsonl        one line per slug: slug, trial, prompt_file, new_tokens,\n"
        "                               token_ids, text, backend, chunk_size, heads_per_band,\n"
        "                               workers, context, prompt_tokens, requested_new_tokens,\n"
        "                               stop, model, fingerprint, decode_tok_s, saved_at\n"
        "  It is rewritten after every finished trial; lines of slugs not being saved are kept.\n"
        "  A trial whose .txt file and outputs.jsonl line both exist, made with the same -n,\n"
        "  prompt file name and settings, is skipped unless --force.\n"
        "Trials with a status other than \"ok\" are skipped.\n"
        "Context: the prompt file is used as is. A trial's context (or prompt_tokens) is copied\n"
        "  into its line as a label; the prompt is not cut or padded to that length, so trials\n"
        "  that differ only in context produce the same greedy text (prompt_tokens tells the\n"
        "  length actually used).\n"
        "stdout: one NDJSON summary line. Progress and errors go to stderr.\n"
        "Environment: XL_DECODE overrides the xl-decode executable.\n"
        "Exit status: 0 ok, 1 some trial failed to generate (the others are saved) or bad input,\n"
        "2 usage error.\n",
        stdout);
}

typedef struct {
  const char *run_dir, *trials_path, *prompt_file, *model_dir;
  long new_tokens, jobs;
  int force;
} save_opts;

static void parse_args(int argc, char **argv, save_opts *o) {
  memset(o, 0, sizeof *o);
  o->new_tokens = 64;
  o->jobs = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (xl_usage_error("%s needs a value", a), ""))
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); xl_finish_stdout(); exit(0); }
    else if (!strcmp(a, "--trials")) o->trials_path = VALUE();
    else if (!strcmp(a, "-n") || !strcmp(a, "--new")) o->new_tokens = xl_flag_long(a, VALUE(), 0, 1L << 30);
    else if (!strcmp(a, "--prompt-file")) o->prompt_file = VALUE();
    else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_dir = VALUE();
    else if (!strcmp(a, "-j") || !strcmp(a, "--jobs")) o->jobs = xl_flag_long(a, VALUE(), 1, 256);
    else if (!strncmp(a, "-j", 2) && a[2]) o->jobs = xl_flag_long("-j", a + 2, 1, 256);
    else if (!strcmp(a, "--force")) o->force = 1;
    else if (a[0] == '-' && a[1]) xl_usage_error("unknown option '%s'", a);
    else if (!o->run_dir) o->run_dir = a;
    else xl_usage_error("unexpected argument '%s'", a);
#undef VALUE
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
}

/* ------------------------------------------------------------------ inputs */

/* The xl-decode to run: $XL_DECODE, else the one beside this executable. malloc'd. */
static char *decode_path(void) {
  const char *env = getenv("XL_DECODE");
  if (env && *env) return xl_strdup(env);
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) xl_die("cannot find my own executable (/proc/self/exe): %s", strerror(errno));
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash) *slash = 0;
  char *p = xl_path_join(self, "xl-decode");
  if (access(p, X_OK)) xl_die("%s: %s (build it, or set XL_DECODE)", p, strerror(errno));
  return p;
}

/* run_meta.json's prompt_file, or NULL. malloc'd. */
static char *meta_prompt_file(const char *run_dir) {
  char *p = xl_path_join(run_dir, "run_meta.json");
  char err[256];
  cJSON *j = rec_json_read(p, err, sizeof err);   /* none or unreadable: no default prompt */
  free(p);
  const char *s = rec_str(j, "prompt_file");
  char *r = s && *s ? xl_strdup(s) : NULL;
  cJSON_Delete(j);
  return r;
}

/* Reads outputs.jsonl leniently (a hand-edited or foreign file must not stop a save): bad
 * lines are dropped with a warning, a slug seen again replaces the earlier line. */
static cJSON *read_old_outputs(const char *path) {
  cJSON *rows = cJSON_CreateArray();
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) return rows;
  long lineno = 0, bad = 0;
  for (char *line = buf, *next; line < buf + len; line = next) {
    char *nl = memchr(line, '\n', (size_t)(buf + len - line));
    next = nl ? nl + 1 : buf + len;
    if (nl) *nl = 0;
    lineno++;
    cJSON *o = cJSON_Parse(line);
    const char *slug = rec_str(o, "slug");
    if (!cJSON_IsObject(o) || !tr_slug_ok(slug)) {
      if (line[strspn(line, " \t\r")]) bad++;
      cJSON_Delete(o);
      continue;
    }
    int k = 0, found = -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) {
      if (!strcmp(rec_str(r, "slug"), slug)) found = k;
      k++;
    }
    if (found >= 0) cJSON_ReplaceItemInArray(rows, found, o);
    else cJSON_AddItemToArray(rows, o);
  }
  if (bad) xl_warn("%s: ignored %ld unreadable line(s)", path, bad);
  free(buf);
  return rows;
}

static cJSON *take_row(cJSON *rows, const char *slug) {
  int k = 0;
  cJSON *r;
  cJSON_ArrayForEach(r, rows) {
    if (!strcmp(rec_str(r, "slug"), slug)) return cJSON_DetachItemFromArray(rows, k);
    k++;
  }
  return NULL;
}

/* 1 if an earlier line was made the way this run would make it: same token budget, same
 * prompt name and the trial's knobs (those it names). */
static int row_matches(const cJSON *row, const tr_trial *t, long new_tokens, const char *prompt_name) {
  double d;
  if (rec_num(row, "requested_new_tokens", &d) || (long)d != new_tokens) return 0;
  const char *p = rec_str(row, "prompt_file");
  if (!p || !prompt_name || strcmp(p, prompt_name)) return 0;
  const char *b = rec_str(row, "backend");
  if (t->backend >= 0 && (!b || strcmp(b, t->backend ? "recurrent" : "chunkwise"))) return 0;
  const int knobs[3] = {t->chunk_size, t->heads_per_band, t->workers};
  for (int k = 0; k < 3; k++)
    if (knobs[k] > 0 && (rec_num(row, tr_param_names[k + 1], &d) || (long)d != knobs[k])) return 0;
  return 1;
}

/* ------------------------------------------------------------------ one generation */

typedef struct {
  const tr_trial *t;
  char *prompt_name;     /* as recorded (owned) */
  char *prompt_path;     /* as opened (owned) */
  char *txt_path;        /* RUN_DIR/outputs/<slug>.txt (owned) */
  cJSON *row;            /* outputs.jsonl line: kept from before or made here (owned) */
  int todo, failed;
} job;

/* Runs argv with stdout and stderr captured (both read concurrently, so a chatty child
 * never blocks on a full pipe). Returns the wait status, or -1 if it could not start. */
static int run_capture(char *const *argv, char **out, char **errs) {
  int po[2], pe[2];
  *out = *errs = NULL;
  if (pipe2(po, O_CLOEXEC)) return -1;
  if (pipe2(pe, O_CLOEXEC)) { close(po[0]); close(po[1]); return -1; }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  if (rc) { close(po[0]); close(pe[0]); errno = rc; return -1; }
  char *buf[2] = {NULL, NULL};
  size_t len[2] = {0, 0}, cap[2] = {0, 0};
  struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_ = 2;
  while (open_) {
    if (poll(pf, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    for (int k = 0; k < 2; k++) {
      if (pf[k].fd < 0 || !pf[k].revents) continue;
      if (cap[k] - len[k] < 4096) buf[k] = xl_realloc(buf[k], cap[k] = cap[k] * 2 + 8192);
      ssize_t n = read(pf[k].fd, buf[k] + len[k], cap[k] - len[k] - 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { close(pf[k].fd); pf[k].fd = -1; open_--; continue; }
      len[k] += (size_t)n;
    }
  }
  for (int k = 0; k < 2; k++) {
    if (pf[k].fd >= 0) close(pf[k].fd);
    if (!buf[k]) buf[k] = xl_calloc(1, 1);
    buf[k][len[k]] = 0;
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) { st = -1; break; }
  *out = buf[0];
  *errs = buf[1];
  return st;
}

/* The last non-empty line of s (modified in place), or "". */
static char *last_line(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  char *nl = strrchr(s, '\n');
  return nl ? nl + 1 : s;
}

/* Builds the argument vector of xl-decode for a job. Strings live in store. */
static void build_argv(const save_opts *o, const char *decode, const job *jb, char *argv[32], char store[4][24]) {
  int n = 0;
  argv[n++] = (char *)decode;
  argv[n++] = "-q";
  argv[n++] = "--format";
  argv[n++] = "ndjson";
  argv[n++] = "--greedy";
  argv[n++] = "-n";
  snprintf(store[0], 24, "%ld", o->new_tokens);
  argv[n++] = store[0];
  argv[n++] = "--prompt-file";
  argv[n++] = jb->prompt_path;
  if (o->model_dir) { argv[n++] = "-m"; argv[n++] = (char *)o->model_dir; }
  const tr_trial *t = jb->t;
  if (t->backend >= 0) { argv[n++] = "--backend"; argv[n++] = t->backend ? "recurrent" : "chunkwise"; }
  if (t->chunk_size > 0) { snprintf(store[1], 24, "%d", t->chunk_size); argv[n++] = "--chunk-size"; argv[n++] = store[1]; }
  if (t->heads_per_band > 0) {
    snprintf(store[2], 24, "%d", t->heads_per_band);
    argv[n++] = "--heads-per-band";
    argv[n++] = store[2];
  }
  if (t->workers > 0) { snprintf(store[3], 24, "%d", t->workers); argv[n++] = "--workers"; argv[n++] = store[3]; }
  argv[n] = NULL;
}

/* The outputs.jsonl line of a finished generation, from xl-decode's record. NULL (and a
 * message in err) when the record is not what xl-decode documents. */
static cJSON *make_row(const save_opts *o, const job *jb, const cJSON *rec, char *err, size_t errlen) {
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "ids");
  const char *text = rec_str(rec, "text");
  if (!cJSON_IsArray(ids) || !text) {
    snprintf(err, errlen, "xl-decode's record has no ids/text (is the model without a tokenizer?)");
    return NULL;
  }
  const cJSON *x;
  cJSON_ArrayForEach(x, ids)
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != (double)(long)x->valuedouble) {
      snprintf(err, errlen, "xl-decode's record has a bad token id");
      return NULL;
    }
  const tr_trial *t = jb->t;
  cJSON *row = cJSON_CreateObject();
  cJSON_AddStringToObject(row, "slug", t->slug);
  if (t->trial >= 0) cJSON_AddNumberToObject(row, "trial", (double)t->trial);
  else cJSON_AddNullToObject(row, "trial");
  cJSON_AddStringToObject(row, "prompt_file", jb->prompt_name);
  cJSON_AddNumberToObject(row, "new_tokens", cJSON_GetArraySize(ids));
  cJSON_AddItemToObject(row, "token_ids", cJSON_Duplicate(ids, 1));
  cJSON_AddStringToObject(row, "text", text);
  tr_add_params(t, row);
  /* what actually ran: the record's settings fill any the trial left out */
  for (int k = 0; k < 4; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, tr_param_names[k]);
    if (v && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, tr_param_names[k])))
      cJSON_ReplaceItemInObjectCaseSensitive(row, tr_param_names[k], cJSON_Duplicate(v, 1));
  }
  static const char *const copy[] = {"prompt_tokens", "stop", "model", "fingerprint", "decode_tok_s"};
  /* the prompt is used as is (see --help): prompt_tokens records the length that ran,
   * which may differ from the trial's context label */
  cJSON_AddNumberToObject(row, "requested_new_tokens", (double)o->new_tokens);
  for (size_t k = 0; k < sizeof copy / sizeof *copy; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, copy[k]);
    cJSON_AddItemToObject(row, copy[k], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
  }
  char when[40];
  xl_rfc3339(when, sizeof when, xl_wall());
  cJSON_AddStringToObject(row, "saved_at", when);
  return row;
}

/* ------------------------------------------------------------------ the run */

typedef struct {
  const save_opts *o;
  const char *decode;
  job *jobs;
  size_t njobs;
  size_t *todo, ntodo, ndone;
  cJSON *extra;          /* old lines whose slug is not among the trials (kept at the end) */
  const char *jsonl;
  int write_failed;
  pthread_mutex_t mu;
} save_ctx;

/* Rewrites outputs.jsonl from every row known now: trial order, then the extra lines.
 * Called with the mutex held. */
static int write_jsonl(save_ctx *x) {
  xl_atomic a;
  if (xl_atomic_open(&a, x->jsonl)) return -1;
  for (size_t i = 0; i < x->njobs; i++)
    if (x->jobs[i].row && rec_ndjson_write(a.f, x->jobs[i].row)) { xl_atomic_abort(&a); return -1; }
  const cJSON *r;
  cJSON_ArrayForEach(r, x->extra)
    if (rec_ndjson_write(a.f, r)) { xl_atomic_abort(&a); return -1; }
  return xl_atomic_commit(&a);
}

static void run_job(save_ctx *x, job *jb) {
  char *argv[32], store[4][24], err[512];
  build_argv(x->o, x->decode, jb, argv, store);
  char *out, *errs;
  double t0 = xl_now();
  int st = run_capture(argv, &out, &errs);
  double secs = xl_now() - t0;
  cJSON *row = NULL;
  err[0] = 0;
  if (st < 0) snprintf(err, sizeof err, "cannot run %s: %s", x->decode, strerror(errno));
  else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
    const char *why = last_line(errs);
    if (WIFSIGNALED(st)) snprintf(err, sizeof err, "xl-decode killed by signal %d%s%s", WTERMSIG(st), *why ? ": " : "", why);
    else snprintf(err, sizeof err, "xl-decode exited with status %d%s%s", WEXITSTATUS(st), *why ? ": " : "", why);
  } else {
    cJSON *rec = cJSON_Parse(last_line(out));
    if (!cJSON_IsObject(rec)) snprintf(err, sizeof err, "xl-decode printed no NDJSON record");
    else row = make_row(x->o, jb, rec, err, sizeof err);
    cJSON_Delete(rec);
  }
  free(out);
  free(errs);

  pthread_mutex_lock(&x->mu);
  x->ndone++;
  if (row) {
    const char *text = rec_str(row, "text");
    /* the .txt first, then the line that vouches for it: a kill in between only costs a redo */
    if (xl_write_file_atomic(jb->txt_path, text, strlen(text))) {
      snprintf(err, sizeof err, "cannot write %s: %s", jb->txt_path, strerror(errno));
      cJSON_Delete(row);
      row = NULL;
    } else {
      cJSON_Delete(jb->row);
      jb->row = row;
      if (write_jsonl(x)) { xl_warn("cannot write %s: %s", x->jsonl, strerror(errno)); x->write_failed = 1; }
      double n;
      rec_num(row, "new_tokens", &n);
      fprintf(stderr, "%s: [%zu/%zu] %s: %.0f tokens in %.2f s\n", xl_progname(), x->ndone, x->ntodo, jb->t->slug, n, secs);
    }
  }
  if (!row) {
    jb->failed = 1;
    xl_warn("[%zu/%zu] %s: %s", x->ndone, x->ntodo, jb->t->slug, err);
  }
  pthread_mutex_unlock(&x->mu);
}

/* One fan-out job: the k-th trial to generate. */
static int save_job(void *ctx, size_t k, size_t worker) {
  save_ctx *x = ctx;
  (void)worker;
  run_job(x, &x->jobs[x->todo[k]]);
  return 0;
}

/* The trials to read: --trials, else RUN_DIR/trials.jsonl, else RUN_DIR/summary.csv when
 * only that one exists. malloc'd. */
static char *trials_path(const save_opts *o) {
  if (o->trials_path) return xl_strdup(o->trials_path);
  char *p = xl_path_join(o->run_dir, "trials.jsonl");
  if (xl_exists(p)) return p;
  char *csv = xl_path_join(o->run_dir, "summary.csv");
  if (xl_exists(csv)) { free(p); return csv; }
  free(csv);
  return p;
}

/* What the trials ask for: a job per successful trial, kept when an earlier line made
 * the same way is there, else to do (with its prompt found), else an input error. */
typedef struct {
  job *jobs;
  size_t njobs;
  size_t *todo, ntodo;
  size_t nfailed_trials, nkept;
  int bad_input;
} plan;

static void plan_jobs(const save_opts *o, const tr_list *tl, cJSON *old, const char *outdir, plan *pl) {
  char *meta_prompt = meta_prompt_file(o->run_dir);
  memset(pl, 0, sizeof *pl);
  pl->jobs = xl_calloc(tl->n ? tl->n : 1, sizeof *pl->jobs);
  pl->todo = xl_calloc(tl->n ? tl->n : 1, sizeof *pl->todo);
  for (size_t i = 0; i < tl->n; i++) {
    const tr_trial *t = &tl->v[i];
    if (!t->ok) { pl->nfailed_trials++; continue; }
    job *jb = &pl->jobs[pl->njobs++];
    jb->t = t;
    char *name = xl_malloc(strlen(t->slug) + 8);
    sprintf(name, "%s.txt", t->slug);
    jb->txt_path = xl_path_join(outdir, name);
    free(name);
    jb->row = take_row(old, t->slug);
    const char *pname = o->prompt_file ? o->prompt_file : t->prompt_file ? t->prompt_file : meta_prompt;
    if (jb->row && !o->force && xl_exists(jb->txt_path) && row_matches(jb->row, t, o->new_tokens, pname)) {
      pl->nkept++;
      continue;
    }
    if (!pname) {
      xl_warn("%s: no prompt file (the trial and run_meta.json name none); pass --prompt-file", t->slug);
      pl->bad_input = 1;
      continue;
    }
    jb->prompt_name = xl_strdup(pname);
    jb->prompt_path = tr_run_file(o->run_dir, pname);
    if (!jb->prompt_path) {
      xl_warn("%s: prompt file '%s' not found (as given, nor inside %s); pass --prompt-file", t->slug, pname, o->run_dir);
      pl->bad_input = 1;
      continue;
    }
    jb->todo = 1;
    pl->todo[pl->ntodo++] = pl->njobs - 1;
  }
  free(meta_prompt);
}

static void free_plan(plan *pl) {
  for (size_t i = 0; i < pl->njobs; i++) {
    free(pl->jobs[i].prompt_name);
    free(pl->jobs[i].prompt_path);
    free(pl->jobs[i].txt_path);
    cJSON_Delete(pl->jobs[i].row);
  }
  free(pl->jobs);
  free(pl->todo);
}

/* The NDJSON summary line; returns the count of failed generations. */
static size_t print_summary(const plan *pl, const char *jsonl, size_t ntrials) {
  size_t ngen = 0, nerr = 0;
  for (size_t i = 0; i < pl->njobs; i++) {
    if (pl->jobs[i].todo && !pl->jobs[i].failed) ngen++;
    if (pl->jobs[i].failed) nerr++;
  }
  cJSON *sum = cJSON_CreateObject();
  cJSON_AddStringToObject(sum, "tool", "xl-save");
  cJSON_AddStringToObject(sum, "outputs", jsonl);
  cJSON_AddNumberToObject(sum, "trials", (double)ntrials);
  cJSON_AddNumberToObject(sum, "generated", (double)ngen);
  cJSON_AddNumberToObject(sum, "kept", (double)pl->nkept);
  cJSON_AddNumberToObject(sum, "skipped_failed_trials", (double)pl->nfailed_trials);
  cJSON_AddNumberToObject(sum, "errors", (double)(nerr + (size_t)pl->bad_input));
  char *s = cJSON_PrintUnformatted(sum);
  puts(s);
  free(s);
  cJSON_Delete(sum);
  return nerr;
}

int main(int argc, char **argv) {
  xl_version_if_asked(argc, argv, "xl-save");
  xl_set_progname(argv[0]);
  save_opts o;
  parse_args(argc, argv, &o);
  char err[1024];
  char *tpath = trials_path(&o);
  tr_list tl;
  if (tr_read(&tl, tpath, err, sizeof err)) xl_die("%s", err);
  char *outdir = xl_path_join(o.run_dir, "outputs");
  if (xl_mkdirs(outdir)) xl_die("%s: cannot create: %s", outdir, strerror(errno));
  char *jsonl = xl_path_join(o.run_dir, "outputs.jsonl");
  cJSON *old = read_old_outputs(jsonl);
  plan pl;
  plan_jobs(&o, &tl, old, outdir, &pl);
  if (pl.nfailed_trials) fprintf(stderr, "%s: skipping %zu failed trial(s)\n", xl_progname(), pl.nfailed_trials);

  save_ctx x = {.o = &o, .jobs = pl.jobs, .njobs = pl.njobs, .todo = pl.todo, .ntodo = pl.ntodo, .extra = old,
                .jsonl = jsonl};
  pthread_mutex_init(&x.mu, NULL);
  if (pl.ntodo) {
    x.decode = decode_path();
    /* a write to a closed stdout must become an error (xl_finish_stdout), not a kill */
    signal(SIGPIPE, SIG_IGN);
    xl_fanout(pl.ntodo, (size_t)o.jobs, save_job, &x);
  }
  /* always rewritten, also when nothing was generated: the file is then deduplicated and
   * newer than the trials it was made from (make relies on that) */
  if (write_jsonl(&x)) xl_die("cannot write %s: %s", jsonl, strerror(errno));
  size_t nerr = print_summary(&pl, jsonl, tl.n);
  int status = (nerr || pl.bad_input || x.write_failed) ? XL_EXIT_ERROR : 0;
  if (nerr) xl_warn("%zu trial(s) failed to generate; run again to retry them", nerr);

  pthread_mutex_destroy(&x.mu);
  free_plan(&pl);
  free((char *)x.decode);
  cJSON_Delete(old);
  free(jsonl);
  free(outdir);
  free(tpath);
  tr_free(&tl);
  xl_finish_stdout();
  return status;
}
