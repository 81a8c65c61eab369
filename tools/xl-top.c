/* xl-top: a terminal monitor of running xltools processes (found through their status
 * files, /proc and their stats logs; see lib/obs/tmproc.h): pid, tool, phase, tok/s with
 * a sparkline, RSS, tokens. An interactive curses view, or machine modes (--once table,
 * --json document, --json-stream NDJSON, --no-curses refreshed table).
 * Not for: recording history to disk (the tools' own --stats-log / --mem-log do that). */
#define _GNU_SOURCE
#include "cli/version.h"
#include "engine/blasenv.h"
#include "io/records.h"
#include "obs/telemetry.h"
#include "obs/tmproc.h"
#include "base/util.h"
#include <cJSON.h>
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
  "Usage: xl-top [options]\n"
  "Monitors running xltools processes (xl-*): pid, tool, phase, tok/s with a history\n"
  "sparkline, RSS and tokens. Without options: an interactive view on a terminal (a\n"
  "single table when stdout is not a terminal).\n"
  "\n"
  "Options:\n"
  "  --once           print one table and exit\n"
  "  --json           print one JSON document {\"time\":..,\"processes\":[...]} and exit\n"
  "  --json-stream    print one JSON line per poll (NDJSON)\n"
  "  --no-curses      a plain table redrawn in place every poll\n"
  "  --poll S         seconds between refreshes (default 1; 0.1 .. 3600)\n"
  "  --count N        stop after N refreshes (default 0 = run until stopped)\n"
  "  --ascii          ASCII sparklines instead of Unicode blocks\n"
  "  --status-dir DIR where the tools' status files are (default $XL_STATUS_DIR, else\n"
  "                   ${XDG_RUNTIME_DIR:-/tmp}/xltools-UID); files of processes that are\n"
  "                   gone are removed\n"
  "  --stdin-commands read control lines on stdin (for scripts and agents; implies\n"
  "                   --json-stream unless --no-curses is given), each answered with one\n"
  "                   JSON line {\"command\":..,\"ok\":true|false,...} on stdout:\n"
  "                     kill PID       SIGTERM to a watched xltools process: it finishes\n"
  "                                    its token, writes its outputs and exits 143\n"
  "                     interval SEC   seconds between refreshes (0.1 .. 3600)\n"
  "                     quit           exit (so does the end of stdin)\n"
  "  -h, --help       this text\n"
  "\n"
  "Keys in the interactive view: q quit, p pause, s change interval (0.5/1/2/5 s),\n"
  "K send SIGTERM to a pid (asks for the pid, then y/n), h help.\n"
  "JSON: tok_s and the other rates are null while unknown (no tokens yet in that phase,\n"
  "or a process seen only in /proc without a stats log); history holds up to 30 points.\n"
  "A closed pipe (xl-top | head) ends xl-top quietly with status 0.\n"
  "Exit status: 0 ok, 1 error, 2 usage error.\n";

/* ---- tok/s history kept across refreshes (per pid) ---- */
#define MAXTRACK 256
static struct track { long pid; double v[TM_HIST]; int n; } tracks[MAXTRACK];

static struct track *track_of(long pid) {
  int free_slot = -1;
  for (int k = 0; k < MAXTRACK; k++) {
    if (tracks[k].pid == pid) return &tracks[k];
    if (!tracks[k].pid && free_slot < 0) free_slot = k;
  }
  if (free_slot < 0) free_slot = (int)(pid % MAXTRACK);
  memset(&tracks[free_slot], 0, sizeof tracks[free_slot]);
  tracks[free_slot].pid = pid;
  return &tracks[free_slot];
}

/* Adds this refresh's rate to each process's history; forgets processes that are gone;
 * then uses our own history for the sparkline once it has 2+ points (the stats-log tail
 * otherwise). */
static void track_update(tm_proc *v, int n) {
  for (int k = 0; k < MAXTRACK; k++) {
    int live = 0;
    for (int i = 0; i < n && !live; i++) live = v[i].pid == tracks[k].pid;
    if (!live) tracks[k].pid = 0;
  }
  for (int i = 0; i < n; i++) {
    double rate = tm_proc_tok_s(&v[i]);
    if (!v[i].from_status || isnan(rate)) continue;   /* no live rate to sample */
    struct track *t = track_of(v[i].pid);
    if (t->n == 0 && v[i].nhist > 0) {   /* start from the stats log's points: never fewer */
      memcpy(t->v, v[i].hist, (size_t)v[i].nhist * sizeof t->v[0]);
      t->n = v[i].nhist;
    }
    if (t->n == TM_HIST) memmove(t->v, t->v + 1, (TM_HIST - 1) * sizeof t->v[0]);
    else t->n++;
    t->v[t->n - 1] = rate;
    if (t->n >= 2) {
      memcpy(v[i].hist, t->v, (size_t)t->n * sizeof t->v[0]);
      v[i].nhist = t->n;
      v[i].hist_from_log = 0;
    }
  }
}

/* ---- output formats ---- */

static void fmt_tokens(const tm_proc *p, char *buf, size_t cap) {
  if (p->tokens_prefill < 0 && p->tokens_decode < 0) snprintf(buf, cap, "-");
  else snprintf(buf, cap, "%ld+%ld", p->tokens_prefill < 0 ? 0 : p->tokens_prefill,
                p->tokens_decode < 0 ? 0 : p->tokens_decode);
}

/* One table row (or the header when p is NULL), without newline. */
static void table_row(const tm_proc *p, int ascii, char *out, size_t cap) {
  if (!p) {
    snprintf(out, cap, "%7s  %-12s %-8s %9s  %-*s %9s  %s", "PID", "TOOL", "PHASE", "TOK/S", TM_HIST,
             "TOK/S HISTORY", "RSS_MB", "TOKENS(P+D)");
    return;
  }
  char spark[TM_HIST * 4 + 1], tok[64];
  tm_sparkline(p->hist, p->nhist, ascii, spark, sizeof spark);
  fmt_tokens(p, tok, sizeof tok);
  int pad = TM_HIST - p->nhist;   /* the sparkline's display width is nhist cells */
  char rate[32];
  if (isnan(tm_proc_tok_s(p))) snprintf(rate, sizeof rate, "-");
  else snprintf(rate, sizeof rate, "%.1f", tm_proc_tok_s(p));
  snprintf(out, cap, "%7ld  %-12.12s %-8.8s %9s  %s%*s %9.1f  %s", p->pid, p->tool, p->phase,
           rate, spark, pad, "", p->rss_bytes / 1048576.0, tok);
}

static void print_table(FILE *f, tm_proc *v, int n, int ascii) {
  char line[512];
  table_row(NULL, ascii, line, sizeof line);
  fprintf(f, "%s\n", line);
  for (int i = 0; i < n; i++) {
    table_row(&v[i], ascii, line, sizeof line);
    fprintf(f, "%s\n", line);
  }
  if (!n) fprintf(f, "(no xltools processes running)\n");
}

/* A rate, or null while it is unknown (NAN). */
static void add_rate(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static cJSON *proc_json(const tm_proc *p, int ascii) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "pid", (double)p->pid);
  cJSON_AddStringToObject(o, "tool", p->tool);
  cJSON_AddStringToObject(o, "phase", p->phase);
  add_rate(o, "tok_s", tm_proc_tok_s(p));
  add_rate(o, "tok_s_prefill", p->tok_s_prefill);
  add_rate(o, "tok_s_decode", p->tok_s_decode);
  add_rate(o, "avg_tok_s_prefill", p->avg_tok_s_prefill);
  add_rate(o, "avg_tok_s_decode", p->avg_tok_s_decode);
  if (p->tokens_prefill >= 0) cJSON_AddNumberToObject(o, "tokens_prefill", (double)p->tokens_prefill);
  else cJSON_AddNullToObject(o, "tokens_prefill");
  if (p->tokens_decode >= 0) cJSON_AddNumberToObject(o, "tokens_decode", (double)p->tokens_decode);
  else cJSON_AddNullToObject(o, "tokens_decode");
  cJSON_AddNumberToObject(o, "rss_bytes", (double)p->rss_bytes);
  cJSON_AddNumberToObject(o, "rss_mb", round(p->rss_bytes / 1048576.0 * 10) / 10);
  if (p->start_time > 0) cJSON_AddNumberToObject(o, "start_time", p->start_time);
  else cJSON_AddNullToObject(o, "start_time");
  if (p->stats_log[0]) cJSON_AddStringToObject(o, "stats_log", p->stats_log);
  else cJSON_AddNullToObject(o, "stats_log");
  if (p->mem_log[0]) cJSON_AddStringToObject(o, "mem_log", p->mem_log);
  else cJSON_AddNullToObject(o, "mem_log");
  cJSON_AddStringToObject(o, "source", p->from_status ? "status" : "proc");
  cJSON *h = cJSON_AddArrayToObject(o, "history");
  for (int k = 0; k < p->nhist; k++) cJSON_AddItemToArray(h, cJSON_CreateNumber(p->hist[k]));
  cJSON_AddStringToObject(o, "history_source", p->nhist ? (p->hist_from_log ? "stats_log" : "samples") : "none");
  char spark[TM_HIST * 4 + 1];
  tm_sparkline(p->hist, p->nhist, ascii, spark, sizeof spark);
  cJSON_AddStringToObject(o, "spark", spark);
  return o;
}

/* Flushes stdout; a reader that went away (EPIPE: xl-top | head) ends xl-top quietly. */
static void flush_out(void) {
  errno = 0;
  if (fflush(stdout) == 0 && !ferror(stdout)) return;
  if (errno == EPIPE) _exit(0);   /* _exit: exit() would flush, and fail, again */
  xl_die("write error on standard output: %s", strerror(errno));
}

/* One answer of --stdin-commands. */
static void reply(const char *cmd, int ok, const char *key, double num, const char *error) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "command", cmd);
  cJSON_AddBoolToObject(r, "ok", ok);
  if (key) cJSON_AddNumberToObject(r, key, num);
  if (ok && !strcmp(cmd, "kill")) cJSON_AddStringToObject(r, "signal", "SIGTERM");
  if (error) cJSON_AddStringToObject(r, "error", error);
  rec_ndjson_write(stdout, r);   /* the record writer: UTF-8 clean */
  cJSON_Delete(r);
  flush_out();
}

static void print_json(FILE *f, tm_proc *v, int n, int ascii) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "time", round(xl_wall() * 1000) / 1000);
  cJSON *arr = cJSON_AddArrayToObject(doc, "processes");
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, proc_json(&v[i], ascii));
  rec_ndjson_write(f, doc);   /* a tool name or log path that is not UTF-8 gets U+FFFD */
  cJSON_Delete(doc);
  flush_out();
}

/* ---- interactive view ---- */

static const double intervals[] = {0.5, 1, 2, 5};
static volatile sig_atomic_t got_stop;
static void on_stop(int sig) { (void)sig; got_stop = 1; }

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR && !got_stop) {}
}

/* ---- --stdin-commands ---- */

static char cmd_buf[4096];
static size_t cmd_len;
static int cmd_eof;

/* Acts on one control line; returns 1 for quit. watched: the processes of the last scan. */
static int run_command(char *line, const tm_proc *watched, int nwatched, double *interval) {
  char *save = NULL, *word = strtok_r(line, " \t\r", &save), *arg = word ? strtok_r(NULL, " \t\r", &save) : NULL;
  char *extra = arg ? strtok_r(NULL, " \t\r", &save) : NULL;
  char err[160];
  if (!word) return 0;
  if (!strcmp(word, "quit") && !arg) { reply("quit", 1, NULL, 0, NULL); return 1; }
  if (!strcmp(word, "kill") && arg && !extra) {
    long pid;
    if (xl_parse_long(arg, 1, 0x7fffffffL, &pid)) { reply("kill", 0, NULL, 0, "kill needs a pid"); return 0; }
    int found = 0;
    for (int i = 0; i < nwatched; i++) found |= watched[i].pid == pid;
    if (!found) {
      snprintf(err, sizeof err, "pid %ld is not a watched xltools process", pid);
      reply("kill", 0, "pid", (double)pid, err);
    } else if (kill((pid_t)pid, SIGTERM)) {
      snprintf(err, sizeof err, "kill %ld: %s", pid, strerror(errno));
      reply("kill", 0, "pid", (double)pid, err);
    } else {
      reply("kill", 1, "pid", (double)pid, NULL);
    }
    return 0;
  }
  if (!strcmp(word, "interval") && arg && !extra) {
    double sec;
    if (xl_parse_double(arg, 0.1, 3600, &sec)) { reply("interval", 0, NULL, 0, "interval needs seconds in [0.1, 3600]"); return 0; }
    *interval = sec;
    reply("interval", 1, "interval", sec, NULL);
    return 0;
  }
  snprintf(err, sizeof err, "unknown command '%.60s' (kill PID, interval SEC, quit)", word);
  reply(word, 0, NULL, 0, err);
  return 0;
}

/* Waits one interval from `start` (monotonic seconds; an `interval` command re-times it)
 * for control lines on stdin, acting on each; returns 1 when a line (or the end of stdin)
 * asks to quit. */
static int wait_commands(double start, const tm_proc *watched, int nwatched, double *interval) {
  for (;;) {
    char *nl;
    while ((nl = memchr(cmd_buf, '\n', cmd_len))) {   /* the lines already read */
      *nl = 0;
      int q = run_command(cmd_buf, watched, nwatched, interval);
      size_t used = (size_t)(nl - cmd_buf) + 1;
      memmove(cmd_buf, cmd_buf + used, cmd_len - used);
      cmd_len -= used;
      if (q) return 1;
    }
    if (cmd_len == sizeof cmd_buf) cmd_len = 0;   /* a line too long to be a command */
    if (cmd_eof) {
      if (cmd_len) { cmd_buf[cmd_len] = 0; cmd_len = 0; if (run_command(cmd_buf, watched, nwatched, interval)) return 1; }
      return 1;   /* the controller went away */
    }
    double left = start + *interval - xl_now();
    if (left <= 0 || got_stop) return got_stop;
    struct pollfd pfd = {0, POLLIN, 0};
    int r = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno != EINTR) return 1;
    if (r > 0) {
      ssize_t k = read(0, cmd_buf + cmd_len, sizeof cmd_buf - 1 - cmd_len);
      if (k > 0) cmd_len += (size_t)k;
      else if (k == 0 || (errno != EINTR && errno != EAGAIN)) cmd_eof = 1;
    }
  }
}

static void draw(tm_proc *v, int n, double interval, int paused, int ascii, const char *msg,
                 int show_help) {
  erase();
  int rows = LINES, cols = COLS;
  char line[512];
  attron(A_BOLD);
  snprintf(line, sizeof line, "xl-top - %d process%s - every %.1f s%s   (h help, q quit)", n,
           n == 1 ? "" : "es", interval, paused ? " - PAUSED" : "");
  mvaddnstr(0, 0, line, cols);
  attroff(A_BOLD);
  table_row(NULL, ascii, line, sizeof line);
  attron(A_REVERSE);
  mvaddnstr(2, 0, line, cols);
  attroff(A_REVERSE);
  for (int i = 0; i < n && 3 + i < rows - 1; i++) {
    table_row(&v[i], ascii, line, sizeof line);
    mvaddstr(3 + i, 0, line);   /* multibyte: let curses clip at the edge */
  }
  if (!n) mvaddnstr(3, 0, "(no xltools processes running)", cols);
  if (msg && *msg) mvaddnstr(rows - 1, 0, msg, cols);
  if (show_help) {
    static const char *const help[] = {
      "xl-top keys",
      "",
      "  q   quit",
      "  p   pause / resume refreshing",
      "  s   change interval: 0.5, 1, 2, 5 s",
      "  K   send SIGTERM to a pid (asks pid, then y/n)",
      "  h   this help (any key closes it)",
    };
    int hn = (int)(sizeof help / sizeof help[0]), hw = 52;
    int y0 = rows / 2 - hn / 2 - 1, x0 = cols / 2 - hw / 2;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    WINDOW *w = newwin(hn + 2, hw, y0, x0);
    if (w) {
      werase(w);
      box(w, 0, 0);
      for (int k = 0; k < hn; k++) mvwaddnstr(w, 1 + k, 2, help[k], hw - 4);
      wnoutrefresh(stdscr);
      wnoutrefresh(w);
      doupdate();
      delwin(w);
      return;
    }
  }
  refresh();
}

/* Reads a line at the bottom of the screen (digits only); returns its length, -1 if Esc. */
static int prompt_digits(const char *q, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = 0;
  timeout(-1);
  for (;;) {
    move(LINES - 1, 0);
    clrtoeol();
    mvprintw(LINES - 1, 0, "%s%s", q, buf);
    refresh();
    int ch = getch();
    if (ch == 27) { len = 0; buf[0] = 0; return -1; }
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) break;
    if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && len) buf[--len] = 0;
    else if (ch >= '0' && ch <= '9' && len + 1 < cap) { buf[len++] = (char)ch; buf[len] = 0; }
  }
  return (int)len;
}

static void kill_dialog(tm_proc *v, int n, char *msg, size_t msg_cap) {
  char buf[16];
  if (prompt_digits("Send SIGTERM to pid (Enter to confirm, Esc to cancel): ", buf, sizeof buf) <= 0) {
    snprintf(msg, msg_cap, "kill cancelled");
    return;
  }
  long pid = strtol(buf, NULL, 10);
  const tm_proc *p = NULL;
  for (int i = 0; i < n; i++)
    if (v[i].pid == pid) p = &v[i];
  if (!p) {
    snprintf(msg, msg_cap, "pid %ld is not a listed xltools process", pid);
    return;
  }
  move(LINES - 1, 0);
  clrtoeol();
  mvprintw(LINES - 1, 0, "Send SIGTERM to %ld (%s)? [y/n] ", pid, p->tool);
  refresh();
  int ch;
  do ch = getch(); while (ch != 'y' && ch != 'Y' && ch != 'n' && ch != 'N' && ch != 27 && ch != 'q');
  if (ch == 'y' || ch == 'Y') {
    if (kill((pid_t)pid, SIGTERM) == 0) snprintf(msg, msg_cap, "sent SIGTERM to %ld", pid);
    else snprintf(msg, msg_cap, "kill %ld: %s", pid, strerror(errno));
  } else {
    snprintf(msg, msg_cap, "kill cancelled");
  }
}

static int run_curses(double interval, int ascii) {
  if (!ascii) {
    const char *cs = nl_langinfo(CODESET);
    ascii = !(cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8")));
  }
  if (!initscr()) xl_die("cannot initialise the terminal");
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  int iv = 1;
  for (int k = 0; k < 4; k++)
    if (fabs(intervals[k] - interval) < 1e-9) iv = k;
  if (fabs(intervals[iv] - interval) > 1e-9) iv = -1;   /* a custom --poll until 's' */
  int paused = 0, show_help = 0, n = 0;
  tm_proc *v = NULL;
  char msg[160] = "";
  double next = 0;
  while (!got_stop) {
    double now = xl_now();
    if (!paused && now >= next) {
      free(v);
      v = tm_proc_scan((long)getpid(), &n);
      track_update(v, n);
      next = now + interval;
    }
    draw(v, n, interval, paused, ascii, msg, show_help);
    timeout(100);
    int ch = getch();
    if (ch == ERR) continue;
    if (show_help) { show_help = 0; continue; }   /* any key closes the overlay */
    msg[0] = 0;
    if (ch == 'q' || ch == 'Q') break;
    else if (ch == 'p' || ch == 'P') paused = !paused;
    else if (ch == 's' || ch == 'S') {
      iv = (iv + 1) % 4;
      interval = intervals[iv];
      next = xl_now() + interval;
      snprintf(msg, sizeof msg, "interval %.1f s", interval);
    } else if (ch == 'h' || ch == 'H' || ch == '?') show_help = 1;
    else if (ch == 'K') kill_dialog(v, n, msg, sizeof msg);
  }
  endwin();
  free(v);
  return 0;
}

int main(int argc, char **argv) {
  /* first: OpenBLAS is linked into every tool, and xl-top needs none of its threads (under
   * ulimit -v they could spin on a buffer they cannot map) */
  xl_blas_setup_unused(argc, argv);
  xl_version_if_asked(argc, argv, "xl-top");
  xl_set_progname(argv[0]);
  enum { M_AUTO, M_ONCE, M_JSON, M_STREAM, M_PLAIN } mode = M_AUTO;
  double poll = 1;
  long count = 0;
  int ascii = 0, commands = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      xl_finish_stdout();
      return 0;
    } else if (!strcmp(a, "--once")) mode = M_ONCE;
    else if (!strcmp(a, "--json")) mode = M_JSON;
    else if (!strcmp(a, "--json-stream")) mode = M_STREAM;
    else if (!strcmp(a, "--no-curses")) mode = M_PLAIN;
    else if (!strcmp(a, "--ascii")) ascii = 1;
    else if (!strcmp(a, "--stdin-commands")) commands = 1;
    else if (!strcmp(a, "--poll")) {
      if (i + 1 >= argc) xl_usage_error("--poll needs a value");
      poll = xl_flag_double("--poll", argv[++i], 0.1, 3600);
    } else if (!strcmp(a, "--count")) {
      if (i + 1 >= argc) xl_usage_error("--count needs a value");
      count = xl_flag_long("--count", argv[++i], 0, 100000000);
    } else if (!strcmp(a, "--status-dir")) {
      if (i + 1 >= argc || !*argv[i + 1]) xl_usage_error("--status-dir needs a directory");
      setenv("XL_STATUS_DIR", argv[++i], 1);
    } else xl_usage_error("unknown argument '%s'", a);
  }
  {   /* a status directory that is a link or another user's is not read: say so once */
    char *dir = tm_status_dir(), why[512];
    struct stat ls;
    if (lstat(dir, &ls) == 0 && tm_status_dir_ok(dir, 0, why, sizeof why)) xl_warn("status files not read: %s", why);
    free(dir);
  }
  setlocale(LC_ALL, "");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (commands) {
    if (mode == M_ONCE || mode == M_JSON) xl_usage_error("--stdin-commands needs a refreshing mode (--json-stream or --no-curses)");
    if (mode == M_AUTO) mode = M_STREAM;
  }
  if (mode == M_AUTO) mode = isatty(1) && isatty(0) ? M_AUTO : M_ONCE;
  if (mode == M_AUTO) return run_curses(poll, ascii);

  int n = 0;
  tm_proc *v = NULL;
  if (mode == M_ONCE || mode == M_JSON) {
    v = tm_proc_scan((long)getpid(), &n);
    if (mode == M_ONCE) print_table(stdout, v, n, ascii);
    else print_json(stdout, v, n, ascii);
    free(v);
    flush_out();
    return 0;
  }
  int tty = isatty(1);
  for (long k = 0; (!count || k < count) && !got_stop; k++) {
    if (k) {
      if (!commands) sleep_s(poll);
      else if (wait_commands(xl_now(), v, n, &poll)) break;
    }
    if (got_stop) break;
    free(v);
    v = tm_proc_scan((long)getpid(), &n);   /* kept until the next scan: the watched set */
    track_update(v, n);
    if (mode == M_STREAM) print_json(stdout, v, n, ascii);
    else {
      if (tty) fputs("\033[H\033[2J", stdout);
      else if (k) fputc('\n', stdout);
      print_table(stdout, v, n, ascii);
      flush_out();
    }
  }
  free(v);
  flush_out();
  return 0;
}
