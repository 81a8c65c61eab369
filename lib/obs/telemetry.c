/* telemetry: lifecycle, hot-loop counters, the stats log, signals and the background
 * sampler (memory log, watchdog, metrics file, status file). The file formats and the
 * threading rules are described in telemetry.h.
 * Not for: the flags and variables (tmoptions.c), /proc parsing (procmem.c), model
 * regions (memwatch.c), per-phase profiling (tmprofile.c). */
#define _GNU_SOURCE
#include "obs/telemetry.h"
#include "obs/tm_internal.h"
#include "obs/procmem.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MB (1024.0 * 1024.0)

/* ------------------------------------------------------------------ state */

/* Why the run stops; the first source wins (compare-and-swap from 0). */
enum { STOP_NONE, STOP_MEMORY, STOP_SIGINT, STOP_SIGTERM, STOP_REQUEST };
static atomic_int stop_src;
static int req_status;
static char mem_reason[160], req_reason[160];

static volatile sig_atomic_t usr1_pending, sigint_count, sigterm_count;

/* Counters written by the tool's loop thread, read by the sampler. */
static _Atomic long a_dec_tokens, a_pre_tokens;
static _Atomic double a_dec_sec, a_pre_sec;
static _Atomic(const char *) a_phase = "init";
static _Atomic size_t a_scratch;

static struct {
  int started;
  tm_options opt;
  char tool[64];
  double start_wall;
  /* stats log (loop thread only) */
  FILE *stats;
  long dec_steps, row_step;
  double dec_cum, row_cum, flush_mark;
  long pre_tokens;
  double pre_cum;
  /* outputs of the sampler */
  FILE *memlog;
  char *stats_abs, *mem_abs, *metrics_abs, *status_path;
  /* thread */
  pthread_t thr;
  int have_thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int quit;
  /* watchdog */
  size_t soft_bytes, hard_bytes, mem_total;
  int soft_armed;
  /* sampler's latest figures, and the recent rates for the status file */
  size_t rss, avail, peak_rss;
  int metrics_warned;
  size_t prev_rss;   /* the watchdog's previous sample, and the growth since (bytes/s) */
  double prev_t, rate;
  int stats_err, mem_err;   /* errno of a log's first failed write */
  double rate_dec, rate_pre;
  long snap_dec_tok, snap_pre_tok;
  double snap_dec_sec, snap_pre_sec;
  struct sigaction old_int, old_term, old_usr1;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* ------------------------------------------------------------------ stop */

static int status_of(int src) {
  switch (src) {
  case STOP_MEMORY: return XL_EXIT_MEMORY;
  case STOP_SIGINT: return XL_EXIT_SIGINT;
  case STOP_SIGTERM: return XL_EXIT_SIGTERM;
  case STOP_REQUEST: return req_status;
  default: return 0;
  }
}

int tm_should_stop(void) {
  return status_of(atomic_load_explicit(&stop_src, memory_order_acquire));
}

const char *tm_stop_reason(void) {
  switch (atomic_load_explicit(&stop_src, memory_order_acquire)) {
  case STOP_MEMORY: return mem_reason;
  case STOP_SIGINT: return "interrupted (SIGINT)";
  case STOP_SIGTERM: return "terminated (SIGTERM)";
  case STOP_REQUEST: return req_reason;
  default: return "";
  }
}

static int claim_stop(int src) {
  int expect = STOP_NONE;
  return atomic_compare_exchange_strong(&stop_src, &expect, src);
}

void tm_request_stop(int status, const char *reason) {
  /* The reason is written before the claim publishes it; a losing caller's text is unused. */
  if (atomic_load(&stop_src) != STOP_NONE) return;
  req_status = status;
  snprintf(req_reason, sizeof req_reason, "%s", reason ? reason : "stop requested");
  claim_stop(STOP_REQUEST);
}

static void on_signal(int sig) {
  if (sig == SIGUSR1) { usr1_pending = 1; return; }
  if (sig == SIGINT) {
    if (++sigint_count >= 2) {
      static const char msg[] = "second SIGINT: exiting now\n";
      ssize_t w = write(2, msg, sizeof msg - 1);
      (void)w;
      _exit(XL_EXIT_SIGINT);
    }
    claim_stop(STOP_SIGINT);
  } else if (sig == SIGTERM) {
    if (++sigterm_count >= 2) {   /* the loop did not stop on the first: end it now */
      static const char msg[] = "second SIGTERM: exiting now\n";
      ssize_t w = write(2, msg, sizeof msg - 1);
      (void)w;
      _exit(XL_EXIT_SIGTERM);
    }
    claim_stop(STOP_SIGTERM);
  }
}

/* ------------------------------------------------------------------ hot loop */

void tm_set_phase(const char *phase) {
  atomic_store_explicit(&a_phase, phase ? phase : "", memory_order_release);
  if (S.stats && fflush(S.stats) && !S.stats_err) S.stats_err = errno;
}

void tm_set_scratch_bytes(size_t n) { atomic_store_explicit(&a_scratch, n, memory_order_relaxed); }
static size_t expect_bytes;
void tm_expect_bytes(size_t n) { expect_bytes = n; }

long tm_decode_tokens(void) { return atomic_load_explicit(&a_dec_tokens, memory_order_relaxed); }
long tm_prefill_tokens(void) { return atomic_load_explicit(&a_pre_tokens, memory_order_relaxed); }

/* v with exactly 6 decimals, like "%.6f" but several times cheaper than printf (this runs
 * once per token with --stats-every 1). Returns the length written at p. */
static int fixed6(char *p, double v) {
  if (!(v > -9e12 && v < 9e12)) return sprintf(p, "%.6f", v);   /* huge or NaN: rare path */
  int n = 0;
  if (v < 0) { p[n++] = '-'; v = -v; }
  unsigned long long x = (unsigned long long)(v * 1e6 + 0.5);
  unsigned long long ip = x / 1000000, fp = x % 1000000;
  char tmp[24];
  int k = 0;
  do { tmp[k++] = (char)('0' + ip % 10); ip /= 10; } while (ip);
  while (k) p[n++] = tmp[--k];
  p[n++] = '.';
  for (int d = 5; d >= 0; d--) { p[n + d] = (char)('0' + fp % 10); fp /= 10; }
  return n + 6;
}

/* One stats-log row: step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase. */
static void stats_row(long step, double dt, double cum, double inst, double avg, const char *phase) {
  char line[192];
  int n = 0, k = 0;
  char tmp[24];
  long s = step;
  do { tmp[k++] = (char)('0' + s % 10); s /= 10; } while (s > 0);
  while (k) line[n++] = tmp[--k];
  line[n++] = ',';
  n += fixed6(line + n, dt);
  line[n++] = ',';
  n += fixed6(line + n, cum);
  line[n++] = ',';
  n += fixed6(line + n, inst);
  line[n++] = ',';
  n += fixed6(line + n, avg);
  line[n++] = ',';
  size_t pl = strlen(phase);
  memcpy(line + n, phase, pl);
  n += (int)pl;
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, S.stats);
}

void tm_prefill_chunk(long tokens, double seconds) {
  if (tokens <= 0) return;
  if (seconds < 0) seconds = 0;
  S.pre_tokens += tokens;
  S.pre_cum += seconds;
  atomic_store_explicit(&a_pre_tokens, S.pre_tokens, memory_order_relaxed);
  atomic_store_explicit(&a_pre_sec, S.pre_cum, memory_order_relaxed);
  if (S.stats) {
    double dt = seconds * 1e3, cum = S.pre_cum * 1e3;
    stats_row(S.pre_tokens, dt, cum, dt > 0 ? tokens * 1e3 / dt : 0.0,
              cum > 0 ? S.pre_tokens * 1e3 / cum : 0.0, "prefill");
    if (fflush(S.stats) && !S.stats_err) S.stats_err = errno;
  }
}

void tm_decode_step(double seconds) {
  if (seconds < 0) seconds = 0;
  long step = ++S.dec_steps;
  S.dec_cum += seconds;
  atomic_store_explicit(&a_dec_tokens, step, memory_order_relaxed);
  atomic_store_explicit(&a_dec_sec, S.dec_cum, memory_order_relaxed);
  if (!S.stats || step - S.row_step < S.opt.stats_every) return;
  double dt = (S.dec_cum - S.row_cum) * 1e3, cum = S.dec_cum * 1e3;
  stats_row(step, dt, cum, dt > 0 ? (step - S.row_step) * 1e3 / dt : 0.0,
            cum > 0 ? step * 1e3 / cum : 0.0, "decode");
  S.row_step = step;
  S.row_cum = S.dec_cum;
  if (S.dec_cum - S.flush_mark >= 0.25) {   /* buffered; flushed every ~250 ms of decode */
    if (fflush(S.stats) && !S.stats_err) S.stats_err = errno;
    S.flush_mark = S.dec_cum;
  }
}

/* ------------------------------------------------------------------ status-file text */

size_t tm_json_str(char *buf, size_t len, size_t cap, const char *s) {
#define PUT(c) do { if (len + 1 < cap) buf[len++] = (c); } while (0)
  if (!s) {
    for (const char *p = "null"; *p; p++) PUT(*p);
  } else {
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
      if (*p == '"' || *p == '\\') { PUT('\\'); PUT(*p); }
      else if (*p < 0x20) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", *p);
        for (char *e = esc; *e; e++) PUT(*e);
      } else PUT(*p);
    }
    PUT('"');
  }
  if (cap) buf[len < cap ? len : cap - 1] = 0;
  return len;
#undef PUT
}

/* An absolute form of a path given on the command line (for the status file). */
static char *abs_path(const char *p) {
  if (!p) return NULL;
  if (p[0] == '/') return xl_strdup(p);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return xl_strdup(p);
  return xl_path_join(cwd, p);
}

/* ------------------------------------------------------------------ sampler outputs */

static void log_failed(const char *path, const char *what, int e);

/* The metrics file; final: the rewrite at tm_stop, whose failure fails the run. */
static void write_metrics(int final) {
  if (!S.opt.metrics_file) return;
  long dt = tm_decode_tokens(), pt = tm_prefill_tokens();
  double ds = atomic_load(&a_dec_sec), ps = atomic_load(&a_pre_sec);
  char lab[128], buf[4096];
  snprintf(lab, sizeof lab, "{tool=\"%s\",pid=\"%ld\"}", S.tool, (long)getpid());
  size_t n = 0;
#define METRIC(name, type, help, fmt, val) \
  n += snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, \
                "# HELP " name " " help "\n# TYPE " name " " type "\n" name "%s " fmt "\n", lab, val)
  METRIC("xlstm_tok_s_prefill", "gauge", "Prefill speed in tokens per second (phase average).",
         "%.3f", ps > 0 ? pt / ps : 0.0);
  METRIC("xlstm_tok_s_decode", "gauge", "Decode speed in tokens per second (phase average).",
         "%.3f", ds > 0 ? dt / ds : 0.0);
  METRIC("xlstm_rss_bytes", "gauge", "Resident set size of the process in bytes.", "%zu", S.rss);
  METRIC("xlstm_mem_available_bytes", "gauge", "MemAvailable of the system in bytes.", "%zu",
         S.avail);
  METRIC("xlstm_model_resident_bytes", "gauge",
         "Resident bytes of the memory-mapped model regions.", "%zu", tm_regions_resident());
  METRIC("xlstm_scratch_bytes", "gauge", "Scratch buffer bytes allocated by the tool.", "%zu",
         (size_t)atomic_load(&a_scratch));
  METRIC("xlstm_start_time_seconds", "gauge", "Start time of the process, Unix seconds.",
         "%.3f", S.start_wall);
  METRIC("xlstm_prefill_tokens_total", "counter", "Prompt tokens prefilled.", "%ld", pt);
  METRIC("xlstm_decode_tokens_total", "counter", "Tokens decoded.", "%ld", dt);
  METRIC("xlstm_prefill_seconds_total", "counter", "Seconds spent in prefill.", "%.6f", ps);
  METRIC("xlstm_decode_seconds_total", "counter", "Seconds spent decoding.", "%.6f", ds);
#undef METRIC
  if (n >= sizeof buf) n = sizeof buf - 1;
  if (xl_write_file_atomic_flags(S.opt.metrics_file, buf, n, XL_ATOMIC_NO_FSYNC)) {
    if (final) log_failed(S.opt.metrics_file, "metrics file", errno);   /* no stale figures left */
    else if (!S.metrics_warned++) xl_warn("cannot write metrics file %s: %s", S.opt.metrics_file, strerror(errno));
  }
}

/* The recent rate of a phase: tokens over measured seconds since the last snapshot. */
static void update_rates(void) {
  long dt = tm_decode_tokens(), pt = tm_prefill_tokens();
  double ds = atomic_load(&a_dec_sec), ps = atomic_load(&a_pre_sec);
  if (ds - S.snap_dec_sec > 0 && dt > S.snap_dec_tok) {
    S.rate_dec = (dt - S.snap_dec_tok) / (ds - S.snap_dec_sec);
    S.snap_dec_tok = dt;
    S.snap_dec_sec = ds;
  }
  if (ps - S.snap_pre_sec > 0 && pt > S.snap_pre_tok) {
    S.rate_pre = (pt - S.snap_pre_tok) / (ps - S.snap_pre_sec);
    S.snap_pre_tok = pt;
    S.snap_pre_sec = ps;
  }
}

static void write_status(void) {
  if (!S.status_path) return;
  long dt = tm_decode_tokens(), pt = tm_prefill_tokens();
  double ds = atomic_load(&a_dec_sec), ps = atomic_load(&a_pre_sec);
  char buf[8192];
  size_t n = 0;
#define ADD(...) n += snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__)
#define ADDSTR(s) do { if (n < sizeof buf) n = tm_json_str(buf, n, sizeof buf, (s)); } while (0)
  ADD("{\"pid\":%ld,\"tool\":", (long)getpid());
  ADDSTR(S.tool);
  ADD(",\"phase\":");
  ADDSTR(atomic_load(&a_phase));
  ADD(",\"tokens_prefill\":%ld,\"tokens_decode\":%ld", pt, dt);
  ADD(",\"tok_s_prefill\":%.3f,\"tok_s_decode\":%.3f", S.rate_pre, S.rate_dec);
  ADD(",\"avg_tok_s_prefill\":%.3f,\"avg_tok_s_decode\":%.3f", ps > 0 ? pt / ps : 0.0,
      ds > 0 ? dt / ds : 0.0);
  ADD(",\"rss_bytes\":%zu,\"peak_rss_bytes\":%zu,\"stats_log\":", S.rss, S.peak_rss);
  ADDSTR(S.stats_abs);
  ADD(",\"mem_log\":");
  ADDSTR(S.mem_abs);
  ADD(",\"metrics_file\":");
  ADDSTR(S.metrics_abs);
  ADD(",\"start_time\":%.3f,\"updated\":%.3f,\"stop_reason\":", S.start_wall, xl_wall());
  ADDSTR(tm_should_stop() ? tm_stop_reason() : NULL);
  ADD("}\n");
#undef ADD
#undef ADDSTR
  if (n >= sizeof buf) n = sizeof buf - 1;
  /* best effort: only xl-top reads it */
  xl_write_file_atomic_flags(S.status_path, buf, n, XL_ATOMIC_NO_FSYNC);
}

/* The status file reports bytes; VmHWM is whole kB, so the MB figure converts back exactly. */
static size_t peak_rss_bytes(void) { return (size_t)(tm_peak_rss_mb() * MB); }

/* The watchdog samples every WATCH_IV seconds, and sooner while RSS grows toward the hard
 * limit: half the time the growth needs to reach it, down to NEAR_IV. */
#define WATCH_IV 0.05
#define NEAR_IV 0.005

/* Reads memory figures and applies the watchdog. Called from the sampler thread. */
static void sample_memory(int log_row) {
  S.rss = tm_rss_bytes();
  size_t total;
  tm_mem_info(&total, &S.avail);
  size_t peak = peak_rss_bytes();
  S.peak_rss = peak > S.rss ? peak : S.rss;
  double now = xl_now();

  /* The growth since the last sample; within 10% of the hard limit and growing so that the
   * limit would be passed before the sample after next, stop now: the limit then holds
   * rather than being found passed. */
  double gap = now - S.prev_t, horizon = gap > 2 * NEAR_IV ? gap : 2 * NEAR_IV;   /* a late sampler looks further */
  S.rate = S.prev_t > 0 && gap > 0 && S.rss > S.prev_rss ? (double)(S.rss - S.prev_rss) / gap : 0;
  if (S.opt.watchdog && S.hard_bytes && S.rss <= S.hard_bytes && S.rss > S.hard_bytes * 0.9 &&
      S.rss + S.rate * horizon > S.hard_bytes && !tm_should_stop()) {
    snprintf(mem_reason, sizeof mem_reason, "memory hard limit: RSS %.1f MB, growing %.0f MB/s, would pass "
             "%.0f MB before the next check", S.rss / MB, S.rate / MB, S.hard_bytes / MB);
    claim_stop(STOP_MEMORY);
  }
  S.prev_rss = S.rss;
  S.prev_t = now;

  if (S.opt.watchdog && S.rss) {
    if (S.hard_bytes && S.rss > S.hard_bytes && !tm_should_stop()) {
      size_t before = S.rss;
      if (S.opt.action == TM_ACTION_RELEASE) {
        tm_regions_release();
        S.rss = tm_rss_bytes();
      }
      if (S.rss > S.hard_bytes) {
        snprintf(mem_reason, sizeof mem_reason, "memory hard limit: RSS %.0f MB > %.0f MB",
                 S.rss / MB, S.hard_bytes / MB);
        claim_stop(STOP_MEMORY);
      } else {
        xl_warn("memory hard limit: RSS %.0f MB > %.0f MB; released model pages, RSS now "
                "%.0f MB", before / MB, S.hard_bytes / MB, S.rss / MB);
      }
    }
    if (S.soft_bytes && S.rss > S.soft_bytes && S.soft_armed && !tm_should_stop()) {
      S.soft_armed = 0;
      if (S.opt.action == TM_ACTION_RELEASE) {
        size_t before = S.rss;
        int nr = tm_regions_release();
        S.rss = tm_rss_bytes();
        xl_warn("memory soft limit: RSS %.0f MB > %.0f MB; released %d model region%s, RSS now "
                "%.0f MB", before / MB, S.soft_bytes / MB, nr, nr == 1 ? "" : "s", S.rss / MB);
      } else {
        xl_warn("memory soft limit: RSS %.0f MB > %.0f MB", S.rss / MB, S.soft_bytes / MB);
      }
    } else if (S.soft_bytes && S.rss < S.soft_bytes * 0.9) {
      S.soft_armed = 1;
    }
  }

  if (log_row && S.memlog) {
    fprintf(S.memlog, "%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n", xl_wall(), S.rss / MB,
            S.avail / MB, total / MB, tm_regions_mapped() / MB, tm_regions_resident() / MB,
            atomic_load(&a_scratch) / MB, atomic_load(&a_phase));
    if (fflush(S.memlog) && !S.mem_err) S.mem_err = errno;
  }
}

static void print_usr1_status(void) {
  long dt = tm_decode_tokens(), pt = tm_prefill_tokens();
  double ds = atomic_load(&a_dec_sec), ps = atomic_load(&a_pre_sec);
  xl_warn("status: phase %s, prefill %ld tok (%.1f tok/s), decode %ld tok (%.1f tok/s), "
          "RSS %.1f MB", atomic_load(&a_phase), pt, ps > 0 ? pt / ps : 0.0, dt,
          ds > 0 ? dt / ds : 0.0, tm_rss_bytes() / MB);
}

static void *sampler(void *arg) {
  (void)arg;
  double mem_iv = S.opt.mem_every_ms / 1e3;
  double sample_iv = S.memlog ? mem_iv : 0.2;
  if (S.opt.watchdog && S.hard_bytes && sample_iv > WATCH_IV) sample_iv = WATCH_IV;
  else if (S.opt.watchdog && sample_iv > 0.2) sample_iv = 0.2;
  int sampling = S.memlog || S.opt.watchdog || S.opt.metrics_file || S.status_path;
  double now = xl_now();
  double next_sample = now, next_log = now, next_status = now, next_metrics = now + 1.0,
         next_rate = now;
  pthread_mutex_lock(&S.mu);
  while (!S.quit) {
    pthread_mutex_unlock(&S.mu);
    now = xl_now();
    if (sampling && now >= next_sample) {
      int row = S.memlog && now >= next_log;
      sample_memory(row);
      if (row) next_log = now + mem_iv;
      /* growing toward the hard limit: look again before it can be reached */
      double iv = sample_iv;
      if (S.opt.watchdog && S.hard_bytes && S.rss < S.hard_bytes && S.rate > 0) {
        double half = (S.hard_bytes - S.rss) / S.rate / 2;
        if (half < iv) iv = half > NEAR_IV ? half : NEAR_IV;
      }
      next_sample = now + iv;
    }
    if (now >= next_rate) {   /* recent rates over ~0.5 s windows */
      update_rates();
      next_rate = now + 0.5;
    }
    if (S.status_path && now >= next_status) {
      write_status();
      next_status = now + 0.5;
    }
    if (S.opt.metrics_file && now >= next_metrics) {
      write_metrics(0);
      next_metrics = now + 1.0;
    }
    if (usr1_pending) {
      usr1_pending = 0;
      print_usr1_status();
    }
    /* Sleep until the next job, at most 100 ms (for SIGUSR1); tm_stop wakes us. */
    double wake = next_status;
    if (sampling && next_sample < wake) wake = next_sample;
    if (S.opt.metrics_file && next_metrics < wake) wake = next_metrics;
    double sleep = wake - xl_now();
    if (sleep > 0.1) sleep = 0.1;
    if (sleep < 0.001) sleep = 0.001;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(sleep * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&S.mu);
    if (!S.quit) pthread_cond_timedwait(&S.cv, &S.mu, &ts);
  }
  pthread_mutex_unlock(&S.mu);
  return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

char *tm_status_dir(void) {
  const char *d = getenv("XL_STATUS_DIR");
  if (d && *d) return xl_strdup(d);
  const char *base = getenv("XDG_RUNTIME_DIR");
  if (!base || !*base) base = "/tmp";
  char name[64];
  snprintf(name, sizeof name, "xltools-%ld", (long)getuid());
  return xl_path_join(base, name);
}

int tm_status_dir_ok(const char *dir_arg, int make, char *why, size_t n) {
  char dir[PATH_MAX];   /* without trailing slashes: "link/" would resolve the link */
  snprintf(dir, sizeof dir, "%s", dir_arg);
  for (size_t k = strlen(dir); k > 1 && dir[k - 1] == '/'; k--) dir[k - 1] = 0;
  if (make) {
    char *parent = xl_strdup(dir), *slash = strrchr(parent, '/');
    if (slash && slash != parent) {   /* the parents as the user named them; the dir itself 0700 */
      *slash = 0;
      if (xl_mkdirs(parent)) { int e = errno; free(parent); return xl_errf(why, n, "cannot create %s: %s", dir, strerror(e)); }
    }
    free(parent);
    if (mkdir(dir, 0700) && errno != EEXIST) return xl_errf(why, n, "cannot create %s: %s", dir, strerror(errno));
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    struct stat ls;
    if (errno == ELOOP || (lstat(dir, &ls) == 0 && S_ISLNK(ls.st_mode)))
      return xl_errf(why, n, "%s is a symbolic link (not followed: status files go only into a real directory)", dir);
    return xl_errf(why, n, "%s: %s", dir, errno == ENOTDIR ? "not a directory" : strerror(errno));
  }
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st)) rc = xl_errf(why, n, "%s: %s", dir, strerror(errno));
  else if (st.st_uid != geteuid())
    rc = xl_errf(why, n, "%s belongs to uid %ld, not to this user (%ld)", dir, (long)st.st_uid, (long)geteuid());
  else if (make && (st.st_mode & 077) && fchmod(fd, 0700))
    rc = xl_errf(why, n, "%s: cannot make it private: %s", dir, strerror(errno));
  close(fd);
  return rc;
}

/* A log that could not be written whole (a full disk) is removed rather than left empty or
 * cut short, and the run reports it: a message naming the file, tm_logs_failed() for the
 * exit status. Only a regular file is removed: a device or a FIFO stays. */
static int logs_failed;
int tm_logs_failed(void) { return logs_failed; }

static void log_failed(const char *path, const char *what, int e) {
  struct stat st;
  int removed = stat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0;
  logs_failed = 1;
  xl_warn("%s: cannot write the %s: %s%s", path, what, strerror(e ? e : EIO), removed ? "; removed" : "");
}

/* Closes a log; 0, or the errno of the failed write (first: the one seen when it failed). */
static int close_log(FILE *f, int first) {
  int e = ferror(f) ? (first ? first : EIO) : 0;
  if (fflush(f) && !e) e = errno ? errno : EIO;   /* the buffered rest: the usual place a full disk shows */
  if (fclose(f) && !e) e = errno ? errno : EIO;
  return e;
}

static void close_outputs(void) {
  int e;
  if (S.stats && (e = close_log(S.stats, S.stats_err))) log_failed(S.opt.stats_log, "stats log", e);
  S.stats = NULL;
  if (S.memlog && (e = close_log(S.memlog, S.mem_err))) log_failed(S.opt.mem_log, "memory log", e);
  S.memlog = NULL;
  errno = 0;
  if (tm_prof_close()) log_failed(S.opt.profile_log, "profile log", errno);
  free(S.stats_abs); free(S.mem_abs); free(S.metrics_abs); free(S.status_path);
  S.stats_abs = S.mem_abs = S.metrics_abs = S.status_path = NULL;
}

/* Opens the logs named in o and picks the status file's path. 0, or -1 after a warning
 * (the caller closes whatever did open). */
static int open_outputs(const tm_options *o) {
  /* a log never replaces a file of another kind (a mistyped name, a run's JSON files) */
  if ((o->stats_log && xl_kind_check(o->stats_log, XK_CSV, "step")) ||
      (o->mem_log && xl_kind_check(o->mem_log, XK_CSV, "ts")) ||
      (o->profile_log && xl_kind_check(o->profile_log, XK_NDJSON, "step")) ||
      (o->metrics_file && xl_kind_check(o->metrics_file, XK_DATA, NULL)))
    return -1;
  if (o->stats_log) {
    if (!(S.stats = xl_fopen_write(o->stats_log))) {
      xl_warn("cannot open stats log %s: %s", o->stats_log, strerror(errno));
      return -1;
    }
    setvbuf(S.stats, NULL, _IOFBF, 1 << 16);
    fputs("step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase\n", S.stats);
    if (fflush(S.stats)) { S.stats_err = errno; return -1; }   /* a full disk already: refused before any work */
    S.stats_abs = abs_path(o->stats_log);
  }
  if (o->mem_log) {
    if (!(S.memlog = xl_fopen_write(o->mem_log))) {
      xl_warn("cannot open memory log %s: %s", o->mem_log, strerror(errno));
      return -1;
    }
    fputs("ts,rss_mb,avail_mb,total_mb,model_mapped_mb,model_resident_mb,scratch_mb,phase\n",
          S.memlog);
    if (fflush(S.memlog)) { S.mem_err = errno; return -1; }
    S.mem_abs = abs_path(o->mem_log);
  }
  if (o->profile_log && tm_prof_open(o->profile_log)) {
    xl_warn("cannot open profile log %s: %s", o->profile_log, strerror(errno));
    return -1;
  }
  if (o->metrics_file) S.metrics_abs = abs_path(o->metrics_file);
  if (o->status_file) {
    char *dir = tm_status_dir(), why[512];
    if (tm_status_dir_ok(dir, 1, why, sizeof why) == 0) {
      char name[32];
      snprintf(name, sizeof name, "%ld.json", (long)getpid());
      S.status_path = xl_path_join(dir, name);
    } else {   /* xl-top still finds us through /proc: not an error, but say why */
      xl_warn("no status file for xl-top: %s", why);
    }
    free(dir);
  }
  return 0;
}

/* Installs the signal handlers and starts the sampler thread. 0, or -1 after a warning
 * (the handlers are restored). */
static int start_sampler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &S.old_int);
  sigaction(SIGTERM, &sa, &S.old_term);
  sigaction(SIGUSR1, &sa, &S.old_usr1);

  /* The sampler never takes these signals: the loop thread's syscalls get them instead. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  S.quit = 0;
  int e = pthread_create(&S.thr, NULL, sampler, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) {
    xl_warn("cannot start the telemetry thread: %s", strerror(e));
    sigaction(SIGINT, &S.old_int, NULL);
    sigaction(SIGTERM, &S.old_term, NULL);
    sigaction(SIGUSR1, &S.old_usr1, NULL);
    return -1;
  }
  S.have_thread = 1;
  return 0;
}

/* Ends the sampler thread, if one runs, and waits for it. */
static void stop_sampler(void) {
  if (!S.have_thread) return;
  pthread_mutex_lock(&S.mu);
  S.quit = 1;
  pthread_cond_signal(&S.cv);
  pthread_mutex_unlock(&S.mu);
  pthread_join(S.thr, NULL);
  S.have_thread = 0;
}

/* A tool that exits without tm_stop (xl_die after tm_start) still removes its status file:
 * the sampler is stopped first so it cannot write the file again. */
static void status_at_exit(void) {
  if (!S.started || !S.status_path) return;
  if (!pthread_equal(pthread_self(), S.thr)) stop_sampler();
  unlink(S.status_path);
}

/* Before any work: every token reads every weight, so the registered model mappings will
 * all be resident. When RSS now plus the part of them not yet resident is past the hard
 * limit, the run is stopped before it starts (the tools check tm_should_stop before the
 * prefill) instead of being found past the limit a sample later. (An untied embedding is
 * read only row by row: the estimate may be high by its size.) */
static void check_weights_fit(void) {
  if (!S.opt.watchdog || !S.hard_bytes || !S.rss) return;
  size_t mapped = tm_regions_mapped(), in_rss = mapped ? tm_regions_rss() : 0;
  size_t will = S.rss + (mapped > in_rss ? mapped - in_rss : 0) + expect_bytes;
  if (S.rss > S.hard_bytes)
    snprintf(mem_reason, sizeof mem_reason, "memory hard limit: RSS %.0f MB > %.0f MB", S.rss / MB, S.hard_bytes / MB);
  else if (will > S.hard_bytes)
    snprintf(mem_reason, sizeof mem_reason, "memory hard limit: RSS %.1f MB, and the model's weights%s will bring it "
             "to %.1f MB > %.0f MB (stopped before the run)", S.rss / MB, expect_bytes ? " and the run's buffers" : "",
             will / MB, S.hard_bytes / MB);
  else
    return;
  claim_stop(STOP_MEMORY);
}

int tm_start(const tm_options *o, const char *tool) {
  if (S.started) return 0;
  static int at_exit_set;
  if (!at_exit_set) at_exit_set = !atexit(status_at_exit);
  S.opt = *o;
  if (S.opt.stats_every < 1) S.opt.stats_every = 1;
  if (S.opt.mem_every_ms < 10) S.opt.mem_every_ms = 10;
  snprintf(S.tool, sizeof S.tool, "%s", tool ? tool : xl_progname());
  S.start_wall = xl_wall();
  S.dec_steps = S.row_step = S.pre_tokens = 0;
  S.dec_cum = S.row_cum = S.flush_mark = S.pre_cum = 0;
  S.rate_dec = S.rate_pre = 0;
  S.snap_dec_tok = S.snap_pre_tok = 0;
  S.snap_dec_sec = S.snap_pre_sec = 0;
  S.metrics_warned = S.stats_err = S.mem_err = 0;
  logs_failed = 0;
  atomic_store(&a_dec_tokens, 0);
  atomic_store(&a_pre_tokens, 0);
  atomic_store(&a_dec_sec, 0.0);
  atomic_store(&a_pre_sec, 0.0);
  atomic_store(&stop_src, STOP_NONE);
  sigint_count = sigterm_count = 0;
  usr1_pending = 0;
  size_t avail;
  tm_mem_info(&S.mem_total, &avail);
  S.soft_bytes = o->soft_mb > 0 ? (size_t)(o->soft_mb * MB)
               : o->soft_pct > 0 ? (size_t)(S.mem_total * (o->soft_pct / 100.0)) : 0;
  S.hard_bytes = o->hard_mb > 0 ? (size_t)(o->hard_mb * MB)
               : o->hard_pct > 0 ? (size_t)(S.mem_total * (o->hard_pct / 100.0)) : 0;
  if (o->watchdog && S.soft_bytes && S.hard_bytes && S.soft_bytes > S.hard_bytes) {
    /* the warning could never come first: refused when the user set the soft limit;
     * a default soft limit above a hard one the user set gives way to it */
    if (!o->soft_set) S.soft_bytes = 0;
    else xl_usage_error("the soft memory limit (%s, %.0f MB) is above the hard limit (%s, %.0f MB)",
                   o->soft_mb > 0 ? "--mem-soft-mb" : "--mem-soft-pct", S.soft_bytes / MB,
                   o->hard_mb > 0 ? "--mem-hard-mb" : "--mem-hard-pct", S.hard_bytes / MB);
  }
  if (open_outputs(o)) goto fail;
  S.soft_armed = 1;
  S.rss = tm_rss_bytes();
  S.peak_rss = peak_rss_bytes();
  S.prev_rss = 0, S.prev_t = S.rate = 0;
  check_weights_fit();
  if (start_sampler()) goto fail;
  S.started = 1;
  return 0;
fail:
  close_outputs();
  return -1;
}

void tm_stop(void) {
  if (!S.started) return;
  S.started = 0;
  stop_sampler();
  /* Final figures for the metrics file. */
  S.rss = tm_rss_bytes();
  size_t total;
  tm_mem_info(&total, &S.avail);
  write_metrics(1);
  if (S.status_path) unlink(S.status_path);
  sigaction(SIGINT, &S.old_int, NULL);
  sigaction(SIGTERM, &S.old_term, NULL);
  sigaction(SIGUSR1, &S.old_usr1, NULL);
  close_outputs();
  tm_regions_free_cache();
}
