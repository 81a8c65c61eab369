/* tmproc: discovery of running xltools processes for xl-top (see tmproc.h).
 * Every read may race with a process exiting: a failed read drops that process or field,
 * never the whole scan. */
#define _GNU_SOURCE
#include "obs/tmproc.h"
#include "obs/telemetry.h"
#include "base/util.h"
#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tm_stats_tail(const char *path, double *hist, long *last_step, double *last_avg, char *phase,
                         size_t phase_cap);

static int alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

static size_t proc_rss(long pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/statm", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  unsigned long size, res;
  int n = fscanf(f, "%lu %lu", &size, &res);
  fclose(f);
  long ps = sysconf(_SC_PAGESIZE);
  return n == 2 ? (size_t)res * (size_t)(ps > 0 ? ps : 4096) : 0;
}

/* Reads a small /proc file into buf; returns bytes read or -1. */
static long read_small(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = 0;
  return (long)n;
}

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

static const char *jstr(cJSON *j, const char *k) {
  cJSON *v = cJSON_GetObjectItem(j, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static double jnum(cJSON *j, const char *k, double dflt) {
  cJSON *v = cJSON_GetObjectItem(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void init_proc(tm_proc *p, long pid) {
  memset(p, 0, sizeof *p);
  p->pid = pid;
  copy(p->phase, sizeof p->phase, "-");
  p->tokens_prefill = p->tokens_decode = -1;
  p->tok_s_prefill = p->tok_s_decode = p->avg_tok_s_prefill = p->avg_tok_s_decode = NAN;
}

/* Fills p from a status file; 0 ok, -1 unreadable / not alive. The file of a process that
 * is gone is removed (*stale = 1): nothing else would, after a SIGKILL or a crash. */
static int from_status_file(const char *path, tm_proc *p, int *stale) {
  char *txt = xl_read_file(path, NULL);
  if (!txt) return -1;
  cJSON *j = cJSON_Parse(txt);
  free(txt);
  if (!j) return -1;
  long pid = (long)jnum(j, "pid", -1);
  if (!alive(pid)) { *stale = pid > 0; cJSON_Delete(j); return -1; }
  init_proc(p, pid);
  p->from_status = 1;
  copy(p->tool, sizeof p->tool, jstr(j, "tool"));
  copy(p->phase, sizeof p->phase, jstr(j, "phase") ? jstr(j, "phase") : "-");
  p->tokens_prefill = (long)jnum(j, "tokens_prefill", -1);
  p->tokens_decode = (long)jnum(j, "tokens_decode", -1);
  /* a phase's rate is known once it has tokens */
  if (p->tokens_prefill > 0) {
    p->tok_s_prefill = jnum(j, "tok_s_prefill", NAN);
    p->avg_tok_s_prefill = jnum(j, "avg_tok_s_prefill", NAN);
  }
  if (p->tokens_decode > 0) {
    p->tok_s_decode = jnum(j, "tok_s_decode", NAN);
    p->avg_tok_s_decode = jnum(j, "avg_tok_s_decode", NAN);
  }
  p->rss_bytes = (size_t)jnum(j, "rss_bytes", 0);
  p->start_time = jnum(j, "start_time", 0);
  copy(p->stats_log, sizeof p->stats_log, jstr(j, "stats_log"));
  copy(p->mem_log, sizeof p->mem_log, jstr(j, "mem_log"));
  cJSON_Delete(j);
  return 0;
}

/* A process found only through /proc: its name, and a --stats-log from its command line
 * (resolved against its working directory). 0 ok, -1 not an xltools process or gone. */
static int from_proc(long pid, tm_proc *p) {
  char path[64], comm[64], cmd[8192];
  snprintf(path, sizeof path, "/proc/%ld/comm", pid);
  if (read_small(path, comm, sizeof comm) <= 0) return -1;
  comm[strcspn(comm, "\n")] = 0;
  snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
  long n = read_small(path, cmd, sizeof cmd);
  /* The name: comm, else argv[0]'s basename (comm is cut at 15 bytes and can be renamed
   * by the process; argv[0] keeps what was run). */
  const char *name = comm;
  if (strncmp(comm, "xl-", 3)) {
    if (n <= 0) return -1;
    const char *b = strrchr(cmd, '/');
    name = b ? b + 1 : cmd;
    if (strncmp(name, "xl-", 3)) return -1;
  }
  init_proc(p, pid);
  snprintf(p->tool, sizeof p->tool, "%.*s", (int)sizeof p->tool - 1, name);
  const char *stats = NULL;
  for (long k = 0; k < n; k += (long)strlen(cmd + k) + 1) {
    const char *a = cmd + k;
    if (!strncmp(a, "--stats-log=", 12)) stats = a + 12;
    else if (!strcmp(a, "--stats-log") && k + (long)strlen(a) + 1 < n) stats = a + strlen(a) + 1;
  }
  if (stats && *stats) {
    if (stats[0] == '/') copy(p->stats_log, sizeof p->stats_log, stats);
    else snprintf(p->stats_log, sizeof p->stats_log, "/proc/%ld/cwd/%s", pid, stats);
  }
  return 0;
}

static int by_pid(const void *a, const void *b) {
  long x = ((const tm_proc *)a)->pid, y = ((const tm_proc *)b)->pid;
  return (x > y) - (x < y);
}

static int find(tm_proc *v, int n, long pid) {
  for (int k = 0; k < n; k++)
    if (v[k].pid == pid) return k;
  return -1;
}

static tm_proc *push(tm_proc **v, int *n, int *cap) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *v = xl_realloc(*v, (size_t)*cap * sizeof **v);
  }
  return &(*v)[(*n)++];
}

tm_proc *tm_proc_scan(long self_pid, int *n) {
  tm_proc *v = NULL;
  int cnt = 0, cap = 0;
  char *dir = tm_status_dir(), why[512];
  /* a status dir that is a link or someone else's is not read (nor are files removed in it) */
  DIR *d = tm_status_dir_ok(dir, 0, why, sizeof why) == 0 ? opendir(dir) : NULL;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".json") || !isdigit((unsigned char)e->d_name[0]))
      continue;
    char *path = xl_path_join(dir, e->d_name);
    tm_proc tmp;
    int stale = 0;
    if (from_status_file(path, &tmp, &stale) == 0 && tmp.pid != self_pid && find(v, cnt, tmp.pid) < 0)
      *push(&v, &cnt, &cap) = tmp;
    else if (stale && strtol(e->d_name, NULL, 10) > 0)   /* <pid>.json of a process that is gone */
      unlink(path);
    free(path);
  }
  if (d) closedir(d);
  free(dir);

  d = opendir("/proc");
  while (d && (e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    long pid = strtol(e->d_name, NULL, 10);
    if (pid == self_pid || find(v, cnt, pid) >= 0) continue;
    tm_proc tmp;
    if (from_proc(pid, &tmp) == 0) *push(&v, &cnt, &cap) = tmp;
  }
  if (d) closedir(d);

  /* Live RSS, and the stats-log history; drop what vanished meanwhile. */
  int out = 0;
  for (int k = 0; k < cnt; k++) {
    tm_proc *p = &v[k];
    size_t rss = proc_rss(p->pid);
    if (!rss && !alive(p->pid)) continue;
    if (rss) p->rss_bytes = rss;
    if (p->stats_log[0]) {
      long step = 0;
      double avg = 0;
      char phase[32] = "";
      p->nhist = tm_stats_tail(p->stats_log, p->hist, &step, &avg, phase, sizeof phase);
      p->hist_from_log = p->nhist > 0;
      if (!p->from_status && p->nhist > 0) {   /* all we know comes from the log */
        copy(p->phase, sizeof p->phase, phase);
        int dec = !strcmp(phase, "decode");
        if (dec) { p->tokens_decode = step; p->avg_tok_s_decode = avg; p->tok_s_decode = p->hist[p->nhist - 1]; }
        else { p->tokens_prefill = step; p->avg_tok_s_prefill = avg; p->tok_s_prefill = p->hist[p->nhist - 1]; }
      }
    }
    v[out++] = *p;
  }
  if (out > 1) qsort(v, (size_t)out, sizeof *v, by_pid);
  *n = out;
  if (!out) { free(v); v = NULL; }
  return v;
}

double tm_proc_tok_s(const tm_proc *p) {
  return !strcmp(p->phase, "prefill") ? p->tok_s_prefill : p->tok_s_decode;
}

/* Index of column name in a CSV header line, or -1. */
static int col_index(const char *header, const char *name) {
  int k = 0;
  size_t n = strlen(name);
  for (const char *s = header;; k++) {
    const char *c = s + strcspn(s, ",\r\n");
    if ((size_t)(c - s) == n && !strncmp(s, name, n)) return k;
    if (*c != ',') return -1;
    s = c + 1;
  }
}

/* Field k of a CSV line (no quoting in stats logs) copied into out. */
static int field(const char *line, int k, char *out, size_t cap) {
  const char *s = line;
  for (int i = 0; i < k; i++) {
    s = strchr(s, ',');
    if (!s) return -1;
    s++;
  }
  size_t len = strcspn(s, ",\r\n");
  if (len >= cap) len = cap - 1;
  memcpy(out, s, len);
  out[len] = 0;
  return 0;
}

/* Reads the last TM_HIST inst_tok_s values of the newest phase in a stats log (columns
 * found by name) into hist; also the last step and avg_tok_s of that phase.
 * Returns the count of values, 0 if unreadable. */
static int tm_stats_tail(const char *path, double *hist, long *last_step, double *last_avg, char *phase,
                         size_t phase_cap) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char header[256];
  if (!fgets(header, sizeof header, f)) { fclose(f); return 0; }
  int c_step = col_index(header, "step"), c_inst = col_index(header, "inst_tok_s"),
      c_avg = col_index(header, "avg_tok_s"), c_phase = col_index(header, "phase");
  if (c_step < 0 || c_inst < 0) { fclose(f); return 0; }
  /* Only the tail matters: 30 rows are well under 8 KB. */
  long hdr_end = ftell(f);
  if (fseek(f, 0, SEEK_END) == 0) {
    long size = ftell(f);
    long from = size - 8192 > hdr_end ? size - 8192 : hdr_end;
    fseek(f, from, SEEK_SET);
    if (from > hdr_end) {   /* skip the partial line */
      int ch;
      while ((ch = fgetc(f)) != EOF && ch != '\n') {}
    }
  }
  double ring[TM_HIST];
  int count = 0;
  char line[256], val[64], cur_phase[32] = "";
  while (fgets(line, sizeof line, f)) {
    if (!strchr(line, '\n')) break;   /* a row still being written */
    char ph[32] = "decode";
    if (c_phase >= 0 && field(line, c_phase, ph, sizeof ph)) continue;
    if (strcmp(ph, cur_phase)) {   /* a new phase starts a new history */
      copy(cur_phase, sizeof cur_phase, ph);
      count = 0;
    }
    char *end;
    if (field(line, c_inst, val, sizeof val)) continue;
    double inst = strtod(val, &end);
    if (end == val) continue;
    ring[count % TM_HIST] = inst;
    count++;
    if (!field(line, c_step, val, sizeof val)) *last_step = strtol(val, NULL, 10);
    if (c_avg >= 0 && !field(line, c_avg, val, sizeof val)) *last_avg = strtod(val, NULL);
  }
  fclose(f);
  int n = count < TM_HIST ? count : TM_HIST;
  for (int k = 0; k < n; k++) hist[k] = ring[(count - n + k) % TM_HIST];
  copy(phase, phase_cap, cur_phase);
  return n;
}

void tm_sparkline(const double *vals, int n, int ascii, char *out, size_t cap) {
  static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
  static const char ramp[] = "_.-:=+*#";
  double max = 0;
  for (int k = 0; k < n; k++)
    if (vals[k] > max) max = vals[k];
  size_t len = 0;
  if (cap) out[0] = 0;
  for (int k = 0; k < n; k++) {
    int lvl = max > 0 ? (int)(vals[k] / max * 7.999) : 0;
    if (lvl < 0) lvl = 0;
    if (lvl > 7) lvl = 7;
    const char *s = blocks[lvl];
    char a[2] = {ramp[lvl], 0};
    if (ascii) s = a;
    size_t sl = strlen(s);
    if (len + sl + 1 > cap) break;
    memcpy(out + len, s, sl);
    len += sl;
    out[len] = 0;
  }
}
