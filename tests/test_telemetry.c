/* test_telemetry: drives the telemetry API in-process and parses what it writes: the stats
 * log CSV (running sums and rates), the Prometheus metrics file, the profile JSON lines,
 * the status file, the memory log; the watchdog (hard limit stops, release drops a mapped
 * file's pages); signals; option parsing (junk is a usage error, exit 2); the /proc
 * memory readers (procmem.h) against getrusage.
 * Run with "--fake-tool SECONDS [telemetry flags]" it is instead a stand-in tool that
 * "decodes" a token per millisecond until stopped (used by the shell tests of xl-top). */
#include "obs/telemetry.h"
#include "obs/tm_internal.h"
#include "obs/procmem.h"
#include "testlib.h"
#include "base/util.h"
#include <cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

/* A path in the temp dir; the strings live until exit (a handful per run). */
static char *paths[64];
static int npaths;
static const char *tpath(const char *name) {
  char *p = xl_path_join(tmpdir, name);
  if (npaths < 64) paths[npaths++] = p;
  return p;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Runs fn in a child; returns its exit status (or 128+signal). */
static int in_child(void (*fn)(void *), void *arg) {
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    fn(arg);
    _exit(0);
  }
  int st;
  waitpid(p, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void parse_args(void *arg) {
  char **argv = arg;
  int argc = 0;
  while (argv[argc]) argc++;
  tm_options o;
  tm_options_init(&o);
  for (int i = 0; i < argc; i++) tm_options_parse(&o, argc, argv, &i);
}

static void test_options(void) {
  tm_options o;
  tm_options_init(&o);
  CHECK(o.stats_every == 1 && o.mem_every_ms == 200 && o.watchdog == 1 && o.soft_pct == 85 &&
        o.hard_pct == 95 && o.action == TM_ACTION_WARN && o.status_file == 1 && !o.stats_log,
        "defaults");
  char *argv[] = {"prog", "--stats-log", "s.csv", "--stats-every=8", "--mem-hard-mb", "512",
                  "--mem-action", "release", "--no-mem-watchdog", "-n", "--metrics-file=m.prom",
                  "--profile-log", "p.jsonl", "--mem-every", "50", "--mem-soft-pct", "70",
                  "--no-status-file", NULL};
  int argc = 18, consumed = 0, others = 0;
  for (int i = 1; i < argc; i++) {
    if (tm_options_parse(&o, argc, argv, &i)) consumed++;
    else others++;
  }
  CHECK(consumed == 10 && others == 1, "flags consumed (%d) and others left (%d)", consumed, others);
  CHECK(o.stats_log && !strcmp(o.stats_log, "s.csv") && o.stats_every == 8 && o.hard_mb == 512 &&
        o.action == TM_ACTION_RELEASE && !o.watchdog && !strcmp(o.metrics_file, "m.prom") &&
        !strcmp(o.profile_log, "p.jsonl") && o.mem_every_ms == 50 && o.soft_pct == 70 &&
        !o.status_file, "parsed values");

  setenv("XL_MEM_HARD_PCT", "90", 1);
  setenv("XL_MEM_ACTION", "release", 1);
  setenv("XL_STATS_EVERY", "16", 1);
  tm_options_init(&o);
  CHECK(o.hard_pct == 90 && o.action == TM_ACTION_RELEASE && o.stats_every == 16, "environment");
  unsetenv("XL_MEM_HARD_PCT");
  unsetenv("XL_MEM_ACTION");
  unsetenv("XL_STATS_EVERY");

  static char *bad[][4] = {
    {"--stats-every", "0", NULL}, {"--stats-every", "12x", NULL}, {"--mem-hard-pct", "101", NULL},
    {"--mem-action", "panic", NULL}, {"--mem-soft-mb", "-5", NULL}, {"--stats-log", NULL},
    {"--mem-every=", NULL}, {"--no-mem-watchdog=1", NULL}, {"--stats-log", "", NULL},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    CHECK(in_child(parse_args, bad[k]) == 2, "usage error for %s %s", bad[k][0],
          bad[k][1] ? bad[k][1] : "(missing)");
  setenv("XL_MEM_SOFT_PCT", "lots", 1);
  static char *none[] = {NULL};
  CHECK(in_child(parse_args, none) == 2, "usage error for XL_MEM_SOFT_PCT=lots");
  unsetenv("XL_MEM_SOFT_PCT");
  CHECK(strstr(tm_options_help(), "--mem-hard-mb") && strstr(tm_options_help(), "--stats-log"),
        "help text lists the flags");
}

/* Splits a CSV line in place into at most n fields; returns the count. */
static int split(char *line, char **f, int n) {
  int k = 0;
  char *s = line;
  while (k < n) {
    f[k++] = s;
    char *c = strchr(s, ',');
    if (!c) break;
    *c = 0;
    s = c + 1;
  }
  char *nl = strchr(f[k - 1], '\n');
  if (nl) *nl = 0;
  return k;
}

static int close_rel(double a, double b, double rel) {
  return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-9;
}

/* Checks a stats log: returns the number of decode rows; dts[] = the expected dt per token. */
static void check_stats(const char *path, const double *dts, int ndec, int every, long pre_tok,
                        int pre_chunks) {
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "stats log exists (every=%d)", every);
  if (!f) return;
  char line[512];
  char *fl[8];
  CHECK(fgets(line, sizeof line, f) && !strcmp(line, "step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase\n"),
        "stats header");
  int rows_pre = 0, rows_dec = 0, bad_cols = 0, bad_sum = 0, bad_avg = 0, bad_inst = 0, bad_dt = 0;
  double sum_pre = 0, sum_dec = 0;
  long prev_step = 0, last_pre_step = 0;
  while (fgets(line, sizeof line, f)) {
    if (split(line, fl, 8) != 6) { bad_cols++; continue; }
    long step = atol(fl[0]);
    double dt = atof(fl[1]), cum = atof(fl[2]), inst = atof(fl[3]), avg = atof(fl[4]);
    int dec = !strcmp(fl[5], "decode");
    if (!dec && strcmp(fl[5], "prefill")) { bad_cols++; continue; }
    double *sum = dec ? &sum_dec : &sum_pre;
    *sum += dt;
    if (!close_rel(*sum, cum, 1e-6)) bad_sum++;
    if (!close_rel(avg, step * 1000.0 / cum, 1e-6)) bad_avg++;
    if (dec) {
      rows_dec++;
      long ntok = step - prev_step;
      double want = 0;
      for (long s = prev_step; s < step; s++) want += dts[s] * 1e3;
      if (!close_rel(dt, want, 1e-6)) bad_dt++;
      if (!close_rel(inst, ntok * 1000.0 / dt, 1e-6)) bad_inst++;
      if (ntok != every) bad_cols++;
      prev_step = step;
    } else {
      rows_pre++;
      last_pre_step = step;
    }
  }
  fclose(f);
  CHECK(bad_cols == 0, "every row has 6 columns, a known phase, %d tokens (bad %d)", every, bad_cols);
  CHECK(rows_pre == pre_chunks && last_pre_step == pre_tok, "prefill rows %d (want %d), last step %ld",
        rows_pre, pre_chunks, last_pre_step);
  CHECK(rows_dec == ndec / every, "decode rows %d (want %d)", rows_dec, ndec / every);
  CHECK(bad_sum == 0, "cum_ms is the running sum of dt_ms (bad %d)", bad_sum);
  CHECK(bad_avg == 0, "avg_tok_s = step*1000/cum_ms (bad %d)", bad_avg);
  CHECK(bad_dt == 0 && bad_inst == 0, "dt_ms matches the steps and inst_tok_s = n*1000/dt_ms (bad %d/%d)",
        bad_dt, bad_inst);
}

/* Prometheus text: every sample line is `name{labels} value`, each name has HELP and TYPE. */
static void check_metrics(const char *path, long dec_tokens, long pre_tokens) {
  char *txt = xl_read_file(path, NULL);
  CHECK(txt != NULL, "metrics file exists");
  if (!txt) return;
  int samples = 0, bad = 0, found_dec = 0, found_pre = 0;
  char *save, *line;
  for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') {
      char kind[8], name[128];
      if (sscanf(line, "# %7s %127s", kind, name) != 2 || (strcmp(kind, "HELP") && strcmp(kind, "TYPE")))
        bad++;
      continue;
    }
    char name[128], labels[256];
    double v;
    char *end;
    if (sscanf(line, "%127[a-zA-Z0-9_:]{%255[^}]}", name, labels) != 2) { bad++; continue; }
    char *sp = strchr(line, '}');
    if (!sp || sp[1] != ' ') { bad++; continue; }
    v = strtod(sp + 2, &end);
    if (*end || end == sp + 2) { bad++; continue; }
    char want[300];
    snprintf(want, sizeof want, "tool=\"test-tool\",pid=\"%ld\"", (long)getpid());
    if (strcmp(labels, want)) bad++;
    /* HELP and TYPE for this name must be in the file */
    char h[160], t[160];
    snprintf(h, sizeof h, "# HELP %s ", name);
    snprintf(t, sizeof t, "# TYPE %s ", name);
    char *all = xl_read_file(path, NULL);
    if (!strstr(all, h) || !strstr(all, t)) bad++;
    free(all);
    if (!strcmp(name, "xlstm_decode_tokens_total")) found_dec = v == dec_tokens;
    if (!strcmp(name, "xlstm_prefill_tokens_total")) found_pre = v == pre_tokens;
    if (!strcmp(name, "xlstm_rss_bytes") && v <= 0) bad++;
    samples++;
  }
  free(txt);
  CHECK(samples >= 5 && bad == 0, "metrics parse: %d samples, %d bad lines", samples, bad);
  CHECK(found_dec && found_pre, "token counters equal the calls (decode %ld, prefill %ld)", dec_tokens,
        pre_tokens);
}

static void check_profile(const char *path, int nsteps) {
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "profile log exists");
  if (!f) return;
  char line[16384];
  int n = 0, bad = 0;
  double last_total = 0, embed_mean = 0, cell1_last = 0;
  int nblocks = 0;
  while (fgets(line, sizeof line, f)) {
    cJSON *j = cJSON_Parse(line);
    if (!j) { bad++; continue; }
    n++;
    cJSON *st = cJSON_GetObjectItem(j, "step"), *ph = cJSON_GetObjectItem(j, "phases"),
          *bl = cJSON_GetObjectItem(j, "blocks"), *tot = cJSON_GetObjectItem(j, "total_ms");
    if (!cJSON_IsNumber(st) || st->valueint != n || !cJSON_IsObject(ph) || !cJSON_IsArray(bl) ||
        !cJSON_IsNumber(tot)) bad++;
    else {
      last_total = tot->valuedouble;
      cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(ph, "embed"), "mean_ms");
      embed_mean = cJSON_IsNumber(e) ? e->valuedouble : -1;
      nblocks = cJSON_GetArraySize(bl);
      cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(bl, 1), "cell"), "last_ms");
      cell1_last = cJSON_IsNumber(c) ? c->valuedouble : -1;
    }
    cJSON_Delete(j);
  }
  fclose(f);
  CHECK(n == nsteps && bad == 0, "profile: %d JSON lines (want %d), %d bad", n, nsteps, bad);
  /* step s adds embed = s ms, so the mean over 1..n is (n+1)/2 ms */
  CHECK(close_rel(embed_mean, (nsteps + 1) / 2.0, 1e-9), "embed mean_ms %.6f (want %.6f)", embed_mean,
        (nsteps + 1) / 2.0);
  CHECK(nblocks == 2 && close_rel(cell1_last, 0.75, 1e-9), "%d blocks, block 1 cell last_ms %.6f (want 2 and 0.75 = 0.5+0.25)",
        nblocks, cell1_last);
  CHECK(close_rel(last_total, nsteps + 0.75 + 0.75 + 0.1, 1e-9), "total_ms of the last step %.6f", last_total);
}

static cJSON *read_json(const char *path) {
  char *t = xl_read_file(path, NULL);
  if (!t) return NULL;
  cJSON *j = cJSON_Parse(t);
  free(t);
  return j;
}

static double num(cJSON *j, const char *k) {
  cJSON *v = cJSON_GetObjectItem(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void test_run(int every) {
  tm_options o;
  tm_options_init(&o);
  o.stats_log = tpath(every == 1 ? "stats1.csv" : "statsN.csv");
  o.stats_every = every;
  o.metrics_file = tpath("metrics.prom");
  o.profile_log = tpath("profile.jsonl");
  o.mem_log = tpath("mem.csv");
  o.mem_every_ms = 50;
  o.hard_pct = 0;   /* no surprises from the watchdog on a busy machine */
  o.soft_pct = 0;
  CHECK(tm_start(&o, "test-tool") == 0, "tm_start (every=%d)", every);
  tm_set_scratch_bytes(3 << 20);
  tm_set_phase("prefill");
  tm_prefill_chunk(64, 0.016);
  tm_prefill_chunk(36, 0.010);
  tm_set_phase("decode");
  enum { N = 240 };
  double dts[N];
  for (int s = 0; s < N; s++) dts[s] = 1e-4 * (1 + (s * 7) % 13) + 1e-7 * s;
  CHECK(tm_profiling() == 1, "profiling enabled");
  for (int s = 0; s < N; s++) {
    tm_decode_step(dts[s]);
    if (every == 1 && s < 10) {
      tm_prof_add(-1, TM_EMBED, (s + 1) * 1e-3);
      tm_prof_add(0, TM_CELL, 0.75e-3);
      tm_prof_add(1, TM_CELL, 0.5e-3);
      tm_prof_add(1, TM_CELL, 0.25e-3);
      tm_prof_add(-1, TM_SAMPLE, 0.1e-3);
      tm_prof_step_end(s + 1);
    }
  }
  CHECK(tm_decode_tokens() == N && tm_prefill_tokens() == 100, "counters");
  const char *status_path = tpath("status");
  char sp[600];
  snprintf(sp, sizeof sp, "%s/%ld.json", status_path, (long)getpid());
  sleep_s(1.2);   /* sampler: status (0.5 s), metrics (1 s), memory rows (50 ms) */
  cJSON *st = read_json(sp);
  CHECK(st != NULL, "status file %s parses", sp);
  if (st) {
    cJSON *tool = cJSON_GetObjectItem(st, "tool"), *ph = cJSON_GetObjectItem(st, "phase"),
          *sl = cJSON_GetObjectItem(st, "stats_log");
    CHECK(num(st, "pid") == getpid() && cJSON_IsString(tool) && !strcmp(tool->valuestring, "test-tool") &&
          cJSON_IsString(ph) && !strcmp(ph->valuestring, "decode"), "status: pid, tool, phase");
    CHECK(num(st, "tokens_decode") == N && num(st, "tokens_prefill") == 100 && num(st, "tok_s_decode") > 0 &&
          num(st, "rss_bytes") > 0, "status: tokens %g/%g, tok_s_decode %g", num(st, "tokens_prefill"),
          num(st, "tokens_decode"), num(st, "tok_s_decode"));
    double cum = 0;
    for (int s = 0; s < N; s++) cum += dts[s];
    CHECK(close_rel(num(st, "avg_tok_s_decode"), N / cum, 1e-3), "status: avg_tok_s_decode %g (want %g)",
          num(st, "avg_tok_s_decode"), N / cum);
    CHECK(cJSON_IsString(sl) && sl->valuestring[0] == '/' && strstr(sl->valuestring, "stats"),
          "status: stats_log is an absolute path");
    cJSON_Delete(st);
  }
  tm_set_phase("done");
  tm_stop();
  tm_stop();   /* idempotent */
  CHECK(!xl_exists(sp), "status file removed at tm_stop");
  CHECK(tm_should_stop() == 0 && !strcmp(tm_stop_reason(), ""), "no stop requested");
  check_stats(o.stats_log, dts, N, every, 100, 2);
  check_metrics(o.metrics_file, N, 100);
  if (every == 1) check_profile(o.profile_log, 10);

  FILE *f = fopen(o.mem_log, "r");
  char line[512];
  char *fl[10];
  int rows = 0, bad = 0;
  double last_scratch = -1;
  CHECK(f && fgets(line, sizeof line, f) &&
        !strcmp(line, "ts,rss_mb,avail_mb,total_mb,model_mapped_mb,model_resident_mb,scratch_mb,phase\n"),
        "memory log header");
  while (f && fgets(line, sizeof line, f)) {
    rows++;
    if (split(line, fl, 10) != 8 || atof(fl[0]) < 1e9 || atof(fl[1]) <= 0 || atof(fl[3]) <= 0 ||
        atof(fl[2]) > atof(fl[3]) || (atof(fl[6]) != 0 && fabs(atof(fl[6]) - 3.0) > 1e-3)) bad++;
    else last_scratch = atof(fl[6]);
  }
  if (f) fclose(f);
  CHECK(rows >= 10 && bad == 0, "memory log: %d rows at 50 ms over ~1.2 s, %d bad", rows, bad);
  CHECK(fabs(last_scratch - 3.0) < 1e-3, "memory log: scratch_mb %.3f (want 3)", last_scratch);
}

static void test_hard_limit(void) {
  tm_options o;
  tm_options_init(&o);
  o.hard_mb = 1;
  o.status_file = 0;
  CHECK(tm_start(&o, "test-tool") == 0, "tm_start with --mem-hard-mb 1");
  double t0 = xl_now();
  while (!tm_should_stop() && xl_now() - t0 < 2) sleep_s(0.01);
  double took = xl_now() - t0;
  CHECK(tm_should_stop() == 3 && took < 1.0, "hard limit stops with 3 (after %.3f s)", took);
  CHECK(strstr(tm_stop_reason(), "memory hard limit: RSS") && strstr(tm_stop_reason(), "> 1 MB"),
        "reason: %s", tm_stop_reason());
  tm_request_stop(9, "later");   /* the first reason wins */
  CHECK(tm_should_stop() == 3, "first stop reason wins");
  tm_stop();
}

/* RSS growing steadily (1 MB touched every 2 ms, some 400 MB/s: a prefill filling a logits
 * buffer) toward a hard limit 120 MB above where it starts: the watchdog samples often near
 * the limit and stops the growth before RSS passes it, not a 200 ms sample later. */
static void test_growth_stop(void) {
  const size_t mb = 1 << 20, cap = (size_t)400 << 20;
  char *buf = malloc(cap);   /* untouched pages: RSS grows only as they are written */
  if (!buf) { printf("ok - growth stop # SKIP no 400 MB of address space\n"); return; }
  tm_options o;
  tm_options_init(&o);
  o.hard_mb = (double)(tm_rss_bytes() / mb + 120);
  o.soft_pct = 0;
  o.status_file = 0;
  CHECK(tm_start(&o, "test-tool") == 0, "tm_start with a hard limit of %.0f MB", o.hard_mb);
  size_t touched = 0, peak = 0;
  while (!tm_should_stop() && touched < cap) {
    memset(buf + touched, 1, mb);
    touched += mb;
    size_t r = tm_rss_bytes();
    if (r > peak) peak = r;
    sleep_s(0.002);
  }
  CHECK(tm_should_stop() == 3, "growth toward the limit stopped (%zu MB touched): %s", touched / mb, tm_stop_reason());
  CHECK(peak <= (size_t)(o.hard_mb * mb), "RSS peaked at %.1f MB, not past the %.0f MB limit", (double)peak / mb, o.hard_mb);
  tm_stop();
  free(buf);
}

static void test_release(void) {
  /* An 8 MB file, mapped read-only and read through so it is resident. */
  const char *path = tpath("region.bin");
  size_t len = 8 << 20;
  unsigned char *data = xl_malloc(len);
  for (size_t k = 0; k < len; k++) data[k] = (unsigned char)(k * 2654435761u >> 13);
  CHECK(xl_write_file_atomic(path, data, len) == 0, "region file written");
  int fd = open(path, O_RDONLY);
  unsigned char *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  CHECK(map != MAP_FAILED, "region mapped");
  if (map == MAP_FAILED) { free(data); return; }
  unsigned long acc = 0;
  for (size_t k = 0; k < len; k += 4096) acc += map[k];
  tm_register_region("weights", map, len);
  size_t res0 = tm_regions_resident();
  CHECK(tm_regions_mapped() == len && res0 == len, "resident after reading: %zu of %zu (acc %lu)", res0,
        len, acc & 1);

  /* Soft limit far below our RSS, action release: the pages go, once; no stop. */
  int errfd = open(tpath("release.err"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int saved = dup(2);
  fflush(stderr);
  dup2(errfd, 2);
  tm_options o;
  tm_options_init(&o);
  o.soft_mb = 1;
  o.hard_pct = 0;
  o.action = TM_ACTION_RELEASE;
  o.mem_every_ms = 50;
  o.status_file = 0;
  /* mincore reports page-cache residency, which MADV_DONTNEED leaves alone; what the
   * release lowers is our RSS (the mapped pages leave the page tables). */
  size_t rss0 = tm_rss_bytes(), rss = rss0;
  tm_start(&o, "test-tool");
  double t0 = xl_now();
  while (xl_now() - t0 < 2 && (rss = tm_rss_bytes()) + len * 3 / 4 > rss0) sleep_s(0.02);
  sleep_s(0.3);   /* more samples above the soft limit: still only one warning */
  tm_stop();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(errfd);
  CHECK(rss + len * 3 / 4 <= rss0, "release dropped the mapped pages: RSS %zu -> %zu (region %zu)", rss0,
        rss, len);
  CHECK(tm_should_stop() == 0, "soft limit does not stop");
  CHECK(memcmp(map, data, len) == 0, "the region reads back intact after release (re-faulted)");
  char *err = xl_read_file(tpath("release.err"), NULL);
  int nwarn = 0;
  for (char *p = err; p && (p = strstr(p, "memory soft limit")); p++) nwarn++;
  CHECK(nwarn == 1, "one soft-limit warning, not one per sample (got %d): %s", nwarn, err ? err : "");
  free(err);
  tm_unregister_region(map);
  CHECK(tm_regions_mapped() == 0, "unregistered");
  munmap(map, len);
  free(data);
}

static void child_signals(void *arg) {
  (void)arg;
  tm_options o;
  tm_options_init(&o);
  o.status_file = 0;
  o.watchdog = 0;
  if (tm_start(&o, "test-tool")) _exit(10);
  tm_decode_step(0.001);
  raise(SIGTERM);
  if (tm_should_stop() != 143 || !strstr(tm_stop_reason(), "SIGTERM")) _exit(11);
  raise(SIGINT);   /* first SIGINT: the stop reason stays SIGTERM */
  if (tm_should_stop() != 143) _exit(12);
  raise(SIGINT);   /* second SIGINT: immediate exit 130 */
  _exit(13);
}

static void child_sigint(void *arg) {
  (void)arg;
  tm_options o;
  tm_options_init(&o);
  o.status_file = 0;
  if (tm_start(&o, "test-tool")) _exit(10);
  raise(SIGINT);
  int st = tm_should_stop();
  tm_stop();
  _exit(st == 130 && !strcmp(tm_stop_reason(), "interrupted (SIGINT)") ? 0 : 20);
}

static void child_usr1(void *arg) {
  (void)arg;
  int fd = open(tpath("usr1.err"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(fd, 2);
  tm_options o;
  tm_options_init(&o);
  o.status_file = 0;
  if (tm_start(&o, "test-tool")) _exit(10);
  tm_set_phase("decode");
  for (int k = 0; k < 7; k++) tm_decode_step(0.002);
  raise(SIGUSR1);
  sleep_s(0.3);
  tm_stop();
  _exit(0);
}

static void test_signals(void) {
  CHECK(in_child(child_sigint, NULL) == 0, "SIGINT -> tm_should_stop() 130");
  CHECK(in_child(child_signals, NULL) == 130, "SIGTERM -> 143, second SIGINT exits 130 at once");
  CHECK(in_child(child_usr1, NULL) == 0, "SIGUSR1 child ran");
  char *t = xl_read_file(tpath("usr1.err"), NULL);
  CHECK(t && strstr(t, "status: phase decode") && strstr(t, "decode 7 tok (500.0 tok/s)") &&
        strstr(t, "RSS"), "SIGUSR1 prints a status line: %s", t ? t : "(none)");
  free(t);
}

/* Stand-in tool for the shell tests: a token per ~1 ms until stopped or out of time. */
static int fake_tool(int argc, char **argv) {
  xl_set_progname("xl-fake");
  tm_options o;
  tm_options_init(&o);
  double secs = xl_flag_double("--fake-tool", argc > 2 ? argv[2] : NULL, 0, 3600);
  for (int i = 3; i < argc; i++)
    if (!tm_options_parse(&o, argc, argv, &i)) xl_usage_error("unknown argument %s", argv[i]);
  if (tm_start(&o, "xl-fake")) return 1;
  tm_set_phase("prefill");
  tm_prefill_chunk(32, 0.004);
  tm_set_phase("decode");
  double t0 = xl_now();
  while (xl_now() - t0 < secs && !tm_should_stop()) {
    double a = xl_now();
    sleep_s(0.001);
    tm_decode_step(xl_now() - a);
  }
  tm_set_phase("done");
  tm_stop();
  if (tm_should_stop()) xl_warn("%s", tm_stop_reason());
  return tm_should_stop();
}

/* The memory readers: the peak is the kernel's high-water mark, the same one getrusage
 * reports, and it covers what was touched. */
static void test_procmem(void) {
  size_t len = 16 << 20;
  char *p = xl_malloc(len);
  memset(p, 1, len);
  size_t rss = tm_rss_bytes();
  double peak = tm_peak_rss_mb();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  CHECK(rss >= len && peak * 1048576 >= (double)rss, "RSS %zu covers the 16 MB touched, peak %.1f MB covers RSS", rss,
        peak);
  /* (the kernel folds the current RSS into the two figures at slightly different times) */
  double ru_mb = ru.ru_maxrss / 1024.0;
  CHECK(fabs(peak - ru_mb) <= 1 + 0.05 * ru_mb, "peak %.3f MB is getrusage's %.3f MB", peak, ru_mb);
  CHECK(peak * 1024 == floor(peak * 1024), "peak is whole kB (%.6f MB)", peak);
  size_t total, avail;
  CHECK(tm_mem_info(&total, &avail) == 0 && total > 0 && avail > 0 && avail <= total, "MemTotal %zu, MemAvailable %zu",
        total, avail);
  free(p);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--fake-tool")) return fake_tool(argc, argv);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_telemetry.XXXXXX");
  if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
  setenv("XL_STATUS_DIR", tpath("status"), 1);
  test_options();
  test_procmem();
  test_run(1);
  test_run(4);
  test_hard_limit();
  test_growth_stop();
  test_release();
  test_signals();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  for (int k = 0; k < npaths; k++) free(paths[k]);
  return tl_done();
}
