/* xl-save: saves, for every successful trial of an optimizer run, the continuation its
 * settings produce (greedy, or the trial's sampling with its recorded seed), so a judge can
 * rate quality per setting. Each generation is a real run of bin/xl-decode (beside this
 * executable) with that trial's run settings (every one the trial names: device, backend,
 * chunk_size, heads_per_band, workers, matmul), so every setting runs exactly as
 * configured; with --share, trials whose settings differ only in knobs that cannot change
 * the output (the settings table's "affects") share one generation. With --samples K each
 * trial gets K continuations of K prompt windows of its context length, so a judge's
 * scores can be compared pair by pair between settings.
 * Writes RUN_DIR/outputs/<slug>.txt (the continuation only) and RUN_DIR/outputs.jsonl (one
 * line per slug), both atomically; finished outputs are kept across runs.
 * Not for: timing (xl-sweep) or rating (xl-judge). Trials are read by lib/sweep/trials.c. */
#define _GNU_SOURCE
#include "engine/blasenv.h"
#include "cli/version.h"
#include "io/records.h"
#include "sweep/sweep_trial.h"
#include "sweep/trials.h"
#include "base/fanout.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* SIGINT/SIGTERM: the signal received (0: none). The generations running are stopped (the
 * signal is passed on to their xl-decode), no new one starts, every finished line stays in
 * outputs.jsonl, and xl-save exits 130/143; a second signal ends it at once. */
static volatile sig_atomic_t stop_sig = 0;
static void on_signal(int sig) {
  if (stop_sig) _exit(sig == SIGTERM ? XL_EXIT_SIGTERM : XL_EXIT_SIGINT);   /* children: PR_SET_PDEATHSIG */
  stop_sig = sig;
}
static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;   /* no SA_RESTART: a blocked poll returns at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

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
        "  --samples K         K continuations per trial (default 1): sample k continues a window\n"
        "                      of the trial's context length (in tokens, about) cut from the prompt\n"
        "                      at k/K of its length, written to RUN_DIR/windows/ctx<N>_s<k>.txt;\n"
        "                      the same windows for every trial, so their scores pair up. Sample 0\n"
        "                      has the trial's slug, sample k the slug + \"__s=k\". With K = 1 the\n"
        "                      prompt file is used as is (see Context below)\n"
        "  --share             one generation per output-relevant setting: trials that differ only\n"
        "                      in knobs that cannot change the output (backend, chunk size, heads\n"
        "                      per band, workers) share the continuation of the first of them\n"
        "                      (shared_from names it); device, matmul and sampling still differ\n"
        "  --force             generate again even where an output exists\n"
        "  -o, --output FILE.jsonl  the outputs file (default RUN_DIR/outputs.jsonl; a name\n"
        "                      without '/' is inside RUN_DIR); the .txt files stay in RUN_DIR/outputs\n"
        "  -h, --help          this help\n\n"
        "Outputs (atomic; a kill never leaves a torn or duplicated line):\n"
        "  RUN_DIR/outputs/<slug>.txt   the continuation only (no prompt)\n"
        "  RUN_DIR/outputs.jsonl (-o)   one line per slug: slug, trial, prompt_file, new_tokens,\n"
        "                               token_ids, text, backend, chunk_size, heads_per_band,\n"
        "                               workers, context, prompt_tokens, requested_new_tokens,\n"
        "                               stop, model, fingerprint, decode_tok_s, saved_at, and\n"
        "                               device, matmul, sampling, sampling_seed (as run),\n"
        "                               trial_slug, sample, samples, shared_from\n"
        "  It is rewritten after every finished trial; lines of slugs not being saved are kept.\n"
        "  A trial whose .txt file and outputs.jsonl line both exist, made with the same -n,\n"
        "  prompt file name and settings, is skipped unless --force.\n"
        "Trials with a status other than \"ok\" are skipped.\n"
        "Context: with --samples 1 the prompt file is used as is. A trial's context (or\n"
        "  prompt_tokens) is copied into its line as a label; the prompt is not cut or padded to\n"
        "  that length, so trials that differ only in context produce the same greedy text\n"
        "  (prompt_tokens tells the length actually used). With --samples K > 1 the windows\n"
        "  have the trial's context length.\n"
        "A file of another kind at outputs.jsonl or an outputs/<slug>.txt is never replaced.\n"
        "stdout: one NDJSON summary line. Progress and errors go to stderr.\n"
        "Environment: XL_DECODE overrides the xl-decode executable.\n"
        "Signals: SIGINT/SIGTERM stop the generations running (xl-decode gets the signal; a\n"
        "  generation cut short is not saved), keep every finished line in outputs.jsonl and\n"
        "  exit 130/143; a rerun skips the finished ones. Children also stop when xl-save is\n"
        "  killed outright (kill -9). A full disk leaves no empty outputs.jsonl behind.\n"
        "Exit status: 0 ok, 1 some trial failed to generate (the others are saved) or bad input,\n"
        "2 usage error, 130/143 interrupted.\n",
        stdout);
}

typedef struct {
  const char *run_dir, *trials_path, *prompt_file, *model_dir, *output;
  long new_tokens, jobs, samples;
  int force, share;
} save_opts;

static void parse_args(int argc, char **argv, save_opts *o) {
  memset(o, 0, sizeof *o);
  o->new_tokens = 64;
  o->jobs = 1;
  o->samples = 1;
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
    else if (!strcmp(a, "--share")) o->share = 1;
    else if (!strcmp(a, "--samples")) o->samples = xl_flag_long(a, VALUE(), 1, 1000);
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->output = VALUE();
    else if (!strncmp(a, "--output=", 9)) o->output = a + 9;
    else if (a[0] == '-' && a[1]) xl_usage_error("unknown option '%s'", a);
    else if (!o->run_dir) o->run_dir = a;
    else xl_usage_error("unexpected argument '%s'", a);
#undef VALUE
  }
  if (!o->run_dir) xl_usage_error("missing RUN_DIR");
  if (o->output && !*o->output) xl_usage_error("-o, --output: an empty file name");
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
  struct stat st;
  if (stat(path, &st) || !S_ISREG(st.st_mode)) return rows;   /* a device or FIFO (-o) holds no lines to keep */
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
 * prompt name, sample and every setting the trial names. */
static int row_matches(const cJSON *row, const tr_trial *t, long new_tokens, const char *prompt_name, long sample) {
  double d;
  if (rec_num(row, "requested_new_tokens", &d) || (long)d != new_tokens) return 0;
  const char *p = rec_str(row, "prompt_file");
  if (!p || !prompt_name || strcmp(p, prompt_name)) return 0;
  if (!rec_num(row, "sample", &d) ? (long)d != sample : sample != 0) return 0;
  sw_setting rs;
  if (sw_setting_from_record(row, &rs)) return 0;
  for (int k = 0; k < SW_NKNOBS; k++)
    if (t->s.v[k][0] && strcmp(t->s.v[k], rs.v[k])) return 0;
  return 1;
}

/* ------------------------------------------------------------------ one generation */

typedef struct {
  const tr_trial *t;
  long sample;           /* 0 .. samples-1 */
  char *slug;            /* the trial's slug, + "__s=<k>" for sample k > 0 (owned) */
  char *prompt_name;     /* as recorded (owned) */
  char *prompt_path;     /* as opened (owned) */
  char *txt_path;        /* RUN_DIR/outputs/<slug>.txt (owned) */
  char *out_key;         /* what the output can depend on (--share groups by it; owned) */
  long source;           /* --share: the job whose output this one copies, -1: its own run */
  cJSON *row;            /* outputs.jsonl line: kept from before or made here (owned) */
  int todo, failed;
  int done;              /* its xl-decode finished and its line is made (this run) */
  int interrupted;       /* stopped by SIGINT/SIGTERM: not saved, not an error */
} job;

/* The child's side: SIGTERM when xl-save dies, even by kill -9 (PR_SET_PDEATHSIG; the
 * getppid check closes the race with a parent that died first), default signals, stdout
 * and stderr into the pipes, then exec; an exec failure goes back through px as its errno.
 * Only async-signal-safe calls: xl-save has threads. */
static _Noreturn void child(char *const *argv, int out, int errfd, int px, pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != parent) _exit(127);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &sa, NULL);   /* xl-save ignores it; the child must not inherit that */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(out, 1) < 0 || dup2(errfd, 2) < 0) _exit(127);
  execve(argv[0], argv, environ);
  int e = errno;
  ssize_t w = write(px, &e, sizeof e);
  (void)w;
  _exit(127);
}

/* Runs argv with stdout and stderr captured (both read concurrently, so a chatty child
 * never blocks on a full pipe). On SIGINT/SIGTERM (stop_sig) the child gets that signal
 * once, and SIGKILL if it has not ended 10 s later (*signalled, if given, says so). Returns
 * the wait status, or -1 with errno if it could not start. */
static int run_capture(char *const *argv, char **out, char **errs, int *signalled) {
  int po[2], pe[2], px[2];
  *out = *errs = NULL;
  if (pipe2(po, O_CLOEXEC)) return -1;
  if (pipe2(pe, O_CLOEXEC)) { close(po[0]); close(po[1]); return -1; }
  if (pipe2(px, O_CLOEXEC)) { close(po[0]); close(po[1]); close(pe[0]); close(pe[1]); return -1; }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) child(argv, po[1], pe[1], px[1], parent);
  int fork_errno = errno;
  close(po[1]);
  close(pe[1]);
  close(px[1]);
  int e = 0;
  if (pid > 0 && read(px[0], &e, sizeof e) != (ssize_t)sizeof e) e = 0;   /* EOF: exec worked */
  close(px[0]);
  if (pid < 0 || e) {
    close(po[0]); close(pe[0]);
    if (pid > 0) while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    errno = pid < 0 ? fork_errno : e;
    return -1;
  }
  char *buf[2] = {NULL, NULL};
  size_t len[2] = {0, 0}, cap[2] = {0, 0};
  struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_ = 2, told = 0;
  double told_at = 0;
  while (open_) {
    if (stop_sig && !told) { kill(pid, stop_sig); told = 1; told_at = xl_now(); }
    if (told == 1 && xl_now() - told_at > 10) { kill(pid, SIGKILL); told = 2; }
    int r = poll(pf, 2, 200);   /* a signal may land on another thread: look again soon */
    if (r < 0) { if (errno == EINTR) continue; break; }
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
  if (signalled) *signalled = told;
  return st;
}

/* The last non-empty line of s (modified in place), or "". */
static char *last_line(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
  char *nl = strrchr(s, '\n');
  return nl ? nl + 1 : s;
}

/* Builds the argument vector of xl-decode for a job: every run setting the trial names,
 * and its sampling (a sampled trial's seed + the sample number). Strings live in store. */
static void build_argv(const save_opts *o, const char *decode, const job *jb, char *argv[48], char store[8][32]) {
  int n = 0;
  argv[n++] = (char *)decode;
  argv[n++] = "-q";
  argv[n++] = "--format";
  argv[n++] = "ndjson";
  const tr_trial *t = jb->t;
  xl_sampling smp = {0};
  char e[256];
  if (!t->s.v[SW_K_SAMPLING][0] || xl_sampling_parse(t->s.v[SW_K_SAMPLING], &smp, e, sizeof e) || smp.greedy) {
    argv[n++] = "--greedy";
  } else {
    long seed = 0;
    if (t->sampling_seed) xl_parse_long(t->sampling_seed, 0, LONG_MAX / 2, &seed);
    snprintf(store[4], 32, "%.6g", smp.temperature);
    snprintf(store[5], 32, "%d", smp.top_k);
    snprintf(store[6], 32, "%.6g", smp.top_p);
    snprintf(store[7], 32, "%ld", seed + jb->sample);
    argv[n++] = "--temperature", argv[n++] = store[4];
    argv[n++] = "--top-k", argv[n++] = store[5];
    argv[n++] = "--top-p", argv[n++] = store[6];
    argv[n++] = "--seed", argv[n++] = store[7];
  }
  argv[n++] = "-n";
  snprintf(store[0], 32, "%ld", o->new_tokens);
  argv[n++] = store[0];
  argv[n++] = "--prompt-file";
  argv[n++] = jb->prompt_path;
  if (o->model_dir) { argv[n++] = "-m"; argv[n++] = (char *)o->model_dir; }
  for (int k = 0; k < XS_COUNT; k++)
    if (t->s.v[k][0]) argv[n++] = (char *)xl_settings[k].flag, argv[n++] = (char *)t->s.v[k];
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
  cJSON_AddStringToObject(row, "slug", jb->slug);
  if (t->trial >= 0) cJSON_AddNumberToObject(row, "trial", (double)t->trial);
  else cJSON_AddNullToObject(row, "trial");
  cJSON_AddStringToObject(row, "prompt_file", jb->prompt_name);
  cJSON_AddNumberToObject(row, "new_tokens", cJSON_GetArraySize(ids));
  cJSON_AddItemToObject(row, "token_ids", cJSON_Duplicate(ids, 1));
  cJSON_AddStringToObject(row, "text", text);
  tr_add_params(t, row);
  tr_add_knobs(t, row);
  /* what actually ran: the record's settings fill any the trial left out */
  for (int k = 0; k < XS_COUNT; k++) {
    const char *key = xl_settings[k].key;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key), *mine = cJSON_GetObjectItemCaseSensitive(row, key);
    if (!v) continue;
    if (!mine) cJSON_AddItemToObject(row, key, cJSON_Duplicate(v, 1));
    else if (cJSON_IsNull(mine)) cJSON_ReplaceItemInObjectCaseSensitive(row, key, cJSON_Duplicate(v, 1));
  }
  const cJSON *smp = cJSON_GetObjectItemCaseSensitive(rec, "sampling");   /* xl-decode's own account */
  if (!cJSON_HasObjectItem(row, "sampling")) cJSON_AddStringToObject(row, "sampling", "greedy");
  const cJSON *seed = cJSON_GetObjectItemCaseSensitive(smp, "seed");
  if (cJSON_IsString(seed)) {
    if (cJSON_HasObjectItem(row, "sampling_seed"))
      cJSON_ReplaceItemInObjectCaseSensitive(row, "sampling_seed", cJSON_CreateString(seed->valuestring));
    else cJSON_AddStringToObject(row, "sampling_seed", seed->valuestring);
  }
  cJSON_AddStringToObject(row, "trial_slug", t->slug);
  cJSON_AddNumberToObject(row, "sample", (double)jb->sample);
  cJSON_AddNumberToObject(row, "samples", (double)o->samples);
  cJSON_AddNullToObject(row, "shared_from");
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
  char *argv[48], store[8][32], err[512];
  build_argv(x->o, x->decode, jb, argv, store);
  char *out, *errs;
  double t0 = xl_now();
  int told = 0;
  int st = run_capture(argv, &out, &errs, &told);
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
  /* A generation cut short by a signal is no output: a stop record ("stop":"signal"), an
   * exit 130/143 or a death by the signal is left for a rerun. One that finished before the
   * signal reached it is a finished output like any other, and is kept. */
  const char *stop = row ? rec_str(row, "stop") : NULL;
  int cut = (stop && !strcmp(stop, "signal")) ||
            (st >= 0 && ((WIFEXITED(st) && (WEXITSTATUS(st) == XL_EXIT_SIGINT || WEXITSTATUS(st) == XL_EXIT_SIGTERM)) ||
                         (WIFSIGNALED(st) && (told || WTERMSIG(st) == SIGINT || WTERMSIG(st) == SIGTERM))));
  free(out);
  free(errs);

  pthread_mutex_lock(&x->mu);
  x->ndone++;
  if (cut) {
    cJSON_Delete(row);
    jb->interrupted = 1;
    xl_warn("[%zu/%zu] %s: interrupted (not saved; a rerun generates it)", x->ndone, x->ntodo, jb->slug);
    pthread_mutex_unlock(&x->mu);
    return;
  }
  if (row) {
    const char *text = rec_str(row, "text");
    /* the .txt first, then the line that vouches for it: a kill in between only costs a redo */
    if (xl_kind_check(jb->txt_path, XK_TEXT, NULL) || xl_write_file_atomic(jb->txt_path, text, strlen(text))) {
      snprintf(err, sizeof err, "cannot write %s: %s", jb->txt_path, strerror(errno));
      cJSON_Delete(row);
      row = NULL;
    } else {
      cJSON_Delete(jb->row);
      jb->row = row;
      jb->done = 1;
      if (write_jsonl(x)) { xl_warn("cannot write %s: %s", x->jsonl, strerror(errno)); x->write_failed = 1; }
      double n;
      rec_num(row, "new_tokens", &n);
      fprintf(stderr, "%s: [%zu/%zu] %s: %.0f tokens in %.2f s\n", xl_progname(), x->ndone, x->ntodo, jb->slug, n, secs);
    }
  }
  if (!row) {
    jb->failed = 1;
    xl_warn("[%zu/%zu] %s: %s", x->ndone, x->ntodo, jb->slug, err);
  }
  pthread_mutex_unlock(&x->mu);
}

/* One fan-out job: the k-th trial to generate. */
static int save_job(void *ctx, size_t k, size_t worker) {
  save_ctx *x = ctx;
  (void)worker;
  if (stop_sig) return 1;   /* stopping: start no generation */
  run_job(x, &x->jobs[x->todo[k]]);
  return stop_sig ? 1 : 0;
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

/* ------------------------------------------------------------------ prompt windows */

/* The token count of a prompt file, by `xl-prefill --tokenize` beside this executable
 * (XL_PREFILL overrides it). -1 on failure. */
static long prompt_tokens(const save_opts *o, const char *path) {
  const char *env = getenv("XL_PREFILL");
  char *exe;
  if (env && *env) exe = xl_strdup(env);
  else {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    exe = xl_path_join(self, "xl-prefill");
  }
  char *argv[] = {exe, "--tokenize", "--prompt-file", (char *)path, o->model_dir ? "-m" : NULL, (char *)o->model_dir, NULL};
  char *out, *errs;
  int st = run_capture(argv, &out, &errs, NULL);
  long n = -1;
  if (st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st)) {
    cJSON *j = cJSON_Parse(last_line(out));
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
    if (cJSON_IsArray(ids)) n = cJSON_GetArraySize(ids);
    cJSON_Delete(j);
  } else {
    xl_warn("%s --tokenize %s: %s", exe, path, last_line(errs));
  }
  free(out);
  free(errs);
  free(exe);
  return n;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Window k of K of text, about want bytes long: from k/K of the text, moved on to the start
 * of a word, going round to the start when the text ends (the way the sweep repeats a
 * short prompt), and cut back to the end of a word. malloc'd. */
static char *window_text(const char *text, size_t len, long k, long K, size_t want) {
  size_t start = (size_t)((double)len * (double)k / (double)K);
  while (start < len && !is_space(text[start]) && start > 0 && !is_space(text[start - 1])) start++;
  while (start < len && is_space(text[start])) start++;
  if (start >= len) start = 0;
  char *w = xl_malloc(want + 2);
  size_t n = 0, at = start;
  while (n < want) {
    if (at >= len) {   /* round to the start, a space between the copies */
      at = 0;
      if (n && !is_space(w[n - 1])) w[n++] = ' ';
      continue;
    }
    w[n++] = text[at++];
  }
  while (n > 1 && !is_space(w[n - 1]) && at < len && !is_space(text[at])) n--, at--;   /* whole words only */
  while (n > 1 && is_space(w[n - 1])) n--;
  w[n] = 0;
  return w;
}

/* The window files of one context length: RUN_DIR/windows/ctx<N>_s<k>.txt, written when
 * missing or different. Returns the path of window k (malloc'd), NULL after a warning. */
static char *window_file(const save_opts *o, const char *prompt_path, long ctx, long k, long *ntok_cache) {
  size_t len;
  char *text = xl_read_file(prompt_path, &len);
  if (!text) { xl_warn("%s: %s", prompt_path, strerror(errno)); return NULL; }
  if (*ntok_cache <= 0) *ntok_cache = prompt_tokens(o, prompt_path);
  if (*ntok_cache <= 0) { free(text); return NULL; }
  size_t want = ctx > 0 ? (size_t)((double)ctx * (double)len / (double)*ntok_cache + 0.5) : len;
  if (want < 1) want = 1;
  char *w = window_text(text, len, k, o->samples, want);
  free(text);
  char *dir = xl_path_join(o->run_dir, "windows"), name[96];
  snprintf(name, sizeof name, "ctx%ld_s%ld.txt", ctx > 0 ? ctx : 0, k);
  char *path = xl_path_join(dir, name);
  size_t have_len;
  char *have = xl_read_file(path, &have_len);
  int same = have && have_len == strlen(w) && !memcmp(have, w, have_len);
  free(have);
  if (!same && (xl_mkdirs(dir) || xl_kind_check(path, XK_TEXT, NULL) || xl_write_file_atomic(path, w, strlen(w)))) {
    xl_warn("%s: cannot write: %s", path, strerror(errno));
    free(path);
    path = NULL;
  }
  free(w);
  free(dir);
  if (!path) return NULL;
  char abs[PATH_MAX];
  if (realpath(path, abs)) { free(path); path = xl_strdup(abs); }
  return path;
}

/* ------------------------------------------------------------------ the plan */

/* What the trials ask for: a job per (successful trial, sample), kept when an earlier line
 * made the same way is there, else to do (with its prompt found), else an input error. */
typedef struct {
  job *jobs;
  size_t njobs;
  size_t *todo, ntodo;     /* jobs that run xl-decode */
  size_t nfailed_trials, nkept, nshared;
  int bad_input;
} plan;

/* The key of what a job's output can depend on: the settings that can change the output,
 * the sampling seed, the prompt and the sample. malloc'd. */
static char *output_key(const job *jb, long ctx) {
  char k[SW_KEY_MAX];
  sw_measure_key(&jb->t->s, ctx, XS_AFFECTS_OUTPUT, k, sizeof k);
  size_t n = strlen(k) + strlen(jb->prompt_name ? jb->prompt_name : "") + 96;
  char *out = xl_malloc(n);
  snprintf(out, n, "%s__seed=%s__s=%ld__p=%s", k, jb->t->sampling_seed ? jb->t->sampling_seed : "", jb->sample,
           jb->prompt_name ? jb->prompt_name : "");
  return out;
}

static void plan_jobs(const save_opts *o, const tr_list *tl, cJSON *old, const char *outdir, plan *pl) {
  char *meta_prompt = meta_prompt_file(o->run_dir);
  memset(pl, 0, sizeof *pl);
  size_t cap = tl->n * (size_t)o->samples + 1;
  pl->jobs = xl_calloc(cap, sizeof *pl->jobs);
  pl->todo = xl_calloc(cap, sizeof *pl->todo);
  long ntok = 0;
  for (size_t i = 0; i < tl->n; i++) {
    const tr_trial *t = &tl->v[i];
    if (!t->ok) { pl->nfailed_trials++; continue; }
    const char *pname = o->prompt_file ? o->prompt_file : t->prompt_file ? t->prompt_file : meta_prompt;
    char *ppath = pname ? tr_run_file(o->run_dir, pname) : NULL;
    for (long k = 0; k < o->samples; k++) {
      job *jb = &pl->jobs[pl->njobs++];
      jb->t = t;
      jb->sample = k;
      jb->source = -1;
      size_t sl = strlen(t->slug) + 32;
      jb->slug = xl_malloc(sl);
      if (k) snprintf(jb->slug, sl, "%s__s=%ld", t->slug, k);
      else snprintf(jb->slug, sl, "%s", t->slug);
      char *name = xl_malloc(strlen(jb->slug) + 8);
      sprintf(name, "%s.txt", jb->slug);
      jb->txt_path = xl_path_join(outdir, name);
      free(name);
      jb->row = take_row(old, jb->slug);
      if (!pname) {
        xl_warn("%s: no prompt file (the trial and run_meta.json name none); pass --prompt-file", t->slug);
        pl->bad_input = 1;
        break;
      }
      if (!ppath) {
        xl_warn("%s: prompt file '%s' not found (as given, nor inside %s); pass --prompt-file", t->slug, pname, o->run_dir);
        pl->bad_input = 1;
        break;
      }
      if (o->samples > 1) {   /* a window of the trial's context length */
        char *w = window_file(o, ppath, t->context, k, &ntok);
        if (!w) { pl->bad_input = 1; break; }
        jb->prompt_name = xl_strdup(w);
        jb->prompt_path = w;
      } else {
        jb->prompt_name = xl_strdup(pname);
        jb->prompt_path = xl_strdup(ppath);
      }
      jb->out_key = output_key(jb, o->samples > 1 ? t->context : 0);
      if (jb->row && !o->force && xl_exists(jb->txt_path) && row_matches(jb->row, t, o->new_tokens, jb->prompt_name, k)) {
        pl->nkept++;
        continue;
      }
      jb->todo = 1;
    }
    free(ppath);
  }
  /* who runs xl-decode: every job to do, or (--share) per output key one job: a finished
   * line to copy from when there is one, else the job of the lowest trial number (not the
   * first in the file, whose order is the order trials finished: the same trial generates
   * in every run) */
  for (size_t i = 0; o->share && i < pl->njobs; i++) {
    job *jb = &pl->jobs[i];
    if (!jb->todo) continue;
    long gen = -1;
    for (size_t j = 0; j < pl->njobs; j++) {
      job *other = &pl->jobs[j];
      if (!other->out_key || strcmp(other->out_key, jb->out_key)) continue;
      if (!other->todo && other->row) { gen = (long)j; break; }
      if (other->todo && (gen < 0 || other->t->trial < pl->jobs[gen].t->trial)) gen = (long)j;
    }
    if (gen >= 0 && gen != (long)i) jb->source = gen;
  }
  for (size_t i = 0; i < pl->njobs; i++) {
    job *jb = &pl->jobs[i];
    if (!jb->todo) continue;
    if (jb->source >= 0) pl->nshared++;
    else pl->todo[pl->ntodo++] = i;
  }
  free(meta_prompt);
}

/* --share: a job's line from its source's: the same continuation, under its own slug and
 * trial settings. */
static cJSON *shared_row(const save_opts *o, const job *jb, const job *src) {
  cJSON *row = cJSON_Duplicate(src->row, 1);
  static const char *const own[] = {"slug", "trial", "trial_slug", "shared_from", "context"};
  for (size_t k = 0; k < sizeof own / sizeof *own; k++) cJSON_DeleteItemFromObjectCaseSensitive(row, own[k]);
  for (int k = 0; k < 5; k++) cJSON_DeleteItemFromObjectCaseSensitive(row, tr_param_names[k]);
  cJSON *fresh = cJSON_CreateObject();
  cJSON_AddStringToObject(fresh, "slug", jb->slug);
  if (jb->t->trial >= 0) cJSON_AddNumberToObject(fresh, "trial", (double)jb->t->trial);
  else cJSON_AddNullToObject(fresh, "trial");
  tr_add_params(jb->t, fresh);
  cJSON_AddStringToObject(fresh, "trial_slug", jb->t->slug);
  const char *from = rec_str(src->row, "shared_from");
  cJSON_AddStringToObject(fresh, "shared_from", from ? from : src->slug);
  cJSON *it;
  while ((it = row->child)) {   /* then everything else of the source's line */
    cJSON_DetachItemViaPointer(row, it);
    if (cJSON_HasObjectItem(fresh, it->string)) cJSON_Delete(it);
    else cJSON_AddItemToObject(fresh, it->string, it);
  }
  cJSON_Delete(row);
  (void)o;
  return fresh;
}

static void free_plan(plan *pl) {
  for (size_t i = 0; i < pl->njobs; i++) {
    free(pl->jobs[i].slug);
    free(pl->jobs[i].prompt_name);
    free(pl->jobs[i].prompt_path);
    free(pl->jobs[i].txt_path);
    free(pl->jobs[i].out_key);
    cJSON_Delete(pl->jobs[i].row);
  }
  free(pl->jobs);
  free(pl->todo);
}

/* The NDJSON summary line; returns the count of failed generations. */
static size_t print_summary(const plan *pl, const char *jsonl, size_t ntrials) {
  size_t ngen = 0, nerr = 0, nstop = 0;
  for (size_t i = 0; i < pl->njobs; i++) {
    if (pl->jobs[i].todo && pl->jobs[i].source < 0 && pl->jobs[i].done) ngen++;
    if (pl->jobs[i].failed) nerr++;
    if (pl->jobs[i].todo && !pl->jobs[i].done && !pl->jobs[i].failed) nstop++;   /* a signal stopped it or came first */
  }
  cJSON *sum = cJSON_CreateObject();
  cJSON_AddStringToObject(sum, "tool", "xl-save");
  cJSON_AddStringToObject(sum, "outputs", jsonl);
  cJSON_AddNumberToObject(sum, "trials", (double)ntrials);
  cJSON_AddNumberToObject(sum, "generated", (double)ngen);
  cJSON_AddNumberToObject(sum, "shared", (double)pl->nshared);
  cJSON_AddNumberToObject(sum, "kept", (double)pl->nkept);
  cJSON_AddNumberToObject(sum, "skipped_failed_trials", (double)pl->nfailed_trials);
  cJSON_AddNumberToObject(sum, "errors", (double)(nerr + (size_t)pl->bad_input));
  cJSON_AddNumberToObject(sum, "interrupted", (double)nstop);
  char *s = cJSON_PrintUnformatted(sum);
  puts(s);
  free(s);
  cJSON_Delete(sum);
  return nerr;
}

int main(int argc, char **argv) {
  xl_blas_setup_unused(argc, argv);   /* no BLAS here: under ulimit -v, no OpenBLAS threads either */
  xl_version_if_asked(argc, argv, "xl-save");
  xl_set_progname(argv[0]);
  save_opts o;
  parse_args(argc, argv, &o);
  install_signals();
  char err[1024];
  char *tpath = trials_path(&o);
  tr_list tl;
  if (tr_read(&tl, tpath, err, sizeof err)) xl_die("%s", err);
  char *outdir = xl_path_join(o.run_dir, "outputs");
  if (xl_mkdirs(outdir)) xl_die("%s: cannot create: %s", outdir, strerror(errno));
  /* -o FILE: a name without '/' lies in RUN_DIR (as xl-judge's -o) */
  char *jsonl = !o.output ? xl_path_join(o.run_dir, "outputs.jsonl")
              : strchr(o.output, '/') ? xl_strdup(o.output) : xl_path_join(o.run_dir, o.output);
  if (xl_kind_check(jsonl, XK_NDJSON, "slug")) xl_die("%s: not an outputs file of xl-save: left alone", jsonl);
  cJSON *old = read_old_outputs(jsonl);
  plan pl;
  plan_jobs(&o, &tl, old, outdir, &pl);
  if (pl.nfailed_trials) fprintf(stderr, "%s: skipping %zu failed trial(s)\n", xl_progname(), pl.nfailed_trials);
  int early = stop_sig != 0;   /* stopped while planning (tokenizing a prompt): nothing to write */

  save_ctx x = {.o = &o, .jobs = pl.jobs, .njobs = pl.njobs, .todo = pl.todo, .ntodo = pl.ntodo, .extra = old,
                .jsonl = jsonl};
  pthread_mutex_init(&x.mu, NULL);
  if (pl.ntodo && !early) {
    x.decode = decode_path();
    /* a write to a closed stdout must become an error (xl_finish_stdout), not a kill */
    signal(SIGPIPE, SIG_IGN);
    xl_fanout(pl.ntodo, (size_t)o.jobs, save_job, &x);
  }
  /* --share: the other jobs take their source's continuation */
  for (size_t i = 0; !early && i < pl.njobs; i++) {
    job *jb = &pl.jobs[i], *src = jb->source >= 0 ? &pl.jobs[jb->source] : NULL;
    if (!jb->todo || !src) continue;
    if (src->todo && !src->done) {   /* its source failed, or was stopped or never started by a signal */
      if (!src->interrupted && !stop_sig) jb->failed = 1;
      continue;
    }
    if (!src->row) { jb->failed = 1; continue; }
    cJSON *row = shared_row(&o, jb, src);
    const char *text = rec_str(row, "text");
    if (xl_kind_check(jb->txt_path, XK_TEXT, NULL) || xl_write_file_atomic(jb->txt_path, text ? text : "", text ? strlen(text) : 0)) {
      xl_warn("cannot write %s: %s", jb->txt_path, strerror(errno));
      cJSON_Delete(row);
      jb->failed = 1;
      continue;
    }
    cJSON_Delete(jb->row);
    jb->row = row;
    jb->done = 1;
  }
  /* always rewritten, also when nothing was generated: the file is then deduplicated and
   * newer than the trials it was made from (make relies on that). Only a file with no line
   * at all is not made when the save went wrong (a full disk, bad input, a stop): an empty
   * outputs.jsonl would pass for a finished save. */
  size_t nrows = (size_t)cJSON_GetArraySize(old);
  for (size_t i = 0; i < pl.njobs; i++) nrows += pl.jobs[i].row != NULL;
  size_t nfailed = 0;
  for (size_t i = 0; i < pl.njobs; i++) nfailed += (size_t)pl.jobs[i].failed;
  int troubled = nfailed || pl.bad_input || x.write_failed || stop_sig;
  if (!early && (nrows || !troubled || xl_exists(jsonl)) && write_jsonl(&x))
    xl_die("cannot write %s: %s", jsonl, strerror(errno));
  size_t nerr = print_summary(&pl, jsonl, tl.n);
  int status = (nerr || pl.bad_input || x.write_failed) ? XL_EXIT_ERROR : 0;
  if (nerr) xl_warn("%zu trial(s) failed to generate; run again to retry them", nerr);
  if (stop_sig) {
    xl_warn("interrupted: the finished outputs are in %s; run again to generate the rest", jsonl);
    status = stop_sig == SIGTERM ? XL_EXIT_SIGTERM : XL_EXIT_SIGINT;
  }

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
