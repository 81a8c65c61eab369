/* tmproc: finding running xltools processes and what they say about themselves, for xl-top.
 * Sources: the status files written by telemetry (tm_status_dir()), /proc (processes whose
 * comm starts with "xl-", their RSS, their --stats-log argument) and the tail of their
 * stats logs (for a tok/s history). Processes that vanish mid-read are simply left out.
 * Not for: drawing (tools/xl-top.c). */
#ifndef XL_TMPROC_H
#define XL_TMPROC_H
#include <stddef.h>

#define TM_HIST 30   /* tok/s samples kept per process (sparkline width) */

typedef struct tm_proc {
  long pid;
  char tool[64];
  char phase[32];            /* "-" when unknown */
  long tokens_prefill, tokens_decode;   /* -1 when unknown */
  double tok_s_prefill, tok_s_decode;   /* recent rates; NAN when unknown (no tokens yet, or
                                           a process seen only in /proc) */
  double avg_tok_s_prefill, avg_tok_s_decode;   /* NAN when unknown */
  size_t rss_bytes;          /* live from /proc */
  double start_time;         /* Unix seconds, 0 when unknown */
  char stats_log[1024], mem_log[1024];  /* "" when none */
  int from_status;           /* 1 = a status file was read */
  double hist[TM_HIST];      /* oldest first */
  int nhist;
  int hist_from_log;         /* 1 = hist came from the stats log tail */
} tm_proc;

/* Lists the running processes into a malloc'd array (caller frees), sorted by pid; *n gets
 * the count. self_pid is left out. Never fails: unreadable sources are skipped. Status
 * files of processes that are gone (killed with SIGKILL, crashed) are removed on the way. */
tm_proc *tm_proc_scan(long self_pid, int *n);
/* The rate to show: prefill's while prefilling, else decode's; NAN when unknown. */
double tm_proc_tok_s(const tm_proc *p);
/* A sparkline of vals (0..max scaled) in UTF-8 block characters, or ASCII if ascii is
 * set; out gets NUL-terminated text (cap >= 3*n+1). */
void tm_sparkline(const double *vals, int n, int ascii, char *out, size_t cap);
#endif
