/* tmoptions: the telemetry flags and XL_* variables of every run tool, in one table
 * (flag, variable, kind, field, bounds) that both the parser and the environment reader
 * walk, and their --help text. See telemetry.h (tm_options).
 * Not for: acting on the options (telemetry.c). */
#include "obs/telemetry.h"
#include "base/util.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
  "Observability:\n"
  "  --stats-log FILE      per-token CSV: step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase;\n"
  "                        the prefill in rows of its own (phase=prefill), one per prefill\n"
  "                        segment (~1024 tokens; fewer on large models, see docs/cli.md);\n"
  "                        step counts the tokens of the row's phase\n"
  "  --stats-every N       one decode row every N tokens (default 1); dt_ms and\n"
  "                        inst_tok_s then cover those N tokens\n"
  "  --mem-log FILE        memory CSV: ts,rss_mb,avail_mb,total_mb,model_mapped_mb,\n"
  "                        model_resident_mb,scratch_mb,phase\n"
  "  --mem-every MS        memory sample interval in ms (default 200)\n"
  "  --mem-soft-pct P      warn when RSS exceeds P% of MemTotal (default 85; 0 = off)\n"
  "  --mem-hard-pct P      stop with exit 3 before RSS exceeds P% of MemTotal (default 95;\n"
  "                        a run whose weights cannot fit stops before it starts)\n"
  "  --mem-soft-mb MB      soft limit as absolute RSS in MB (overrides --mem-soft-pct)\n"
  "  --mem-hard-mb MB      hard limit as absolute RSS in MB (overrides --mem-hard-pct)\n"
  "  --mem-action A        at the soft limit: warn (default) or release (drop the\n"
  "                        mmapped model pages and trim the heap)\n"
  "  --no-mem-watchdog     no memory limits at all\n"
  "  --profile-log FILE    per-step JSON lines of time per phase and block\n"
  "  --metrics-file FILE   Prometheus text-format metrics, rewritten every second\n"
  "  --no-status-file      do not publish a status file for xl-top\n"
  "  A log that cannot be written whole (a full disk) is removed, and the tool exits 1.\n"
  "  Environment: XL_STATS_LOG, XL_STATS_EVERY, XL_MEM_LOG, XL_MEM_EVERY,\n"
  "  XL_MEM_WATCHDOG=0, XL_MEM_SOFT_PCT, XL_MEM_HARD_PCT, XL_MEM_SOFT_MB, XL_MEM_HARD_MB,\n"
  "  XL_MEM_ACTION, XL_PROFILE_LOG, XL_METRICS_FILE, XL_STATUS=0, XL_STATUS_DIR.\n"
  "  Signals: SIGINT/SIGTERM finish the current token (or prefill segment) and exit\n"
  "  130/143 (a second one exits at once); SIGUSR1 prints a status line on stderr.\n";

const char *tm_options_help(void) { return help_text; }

enum opt_kind { K_FILE, K_LONG, K_PCT, K_MB, K_ACTION, K_OFF };
static const struct optdef {
  const char *flag, *env;
  enum opt_kind kind;
  size_t off;
  long lo, hi;
} optdefs[] = {
  {"--stats-log", "XL_STATS_LOG", K_FILE, offsetof(tm_options, stats_log), 0, 0},
  {"--stats-every", "XL_STATS_EVERY", K_LONG, offsetof(tm_options, stats_every), 1, 1000000000},
  {"--mem-log", "XL_MEM_LOG", K_FILE, offsetof(tm_options, mem_log), 0, 0},
  {"--mem-every", "XL_MEM_EVERY", K_LONG, offsetof(tm_options, mem_every_ms), 10, 3600000},
  {"--mem-soft-pct", "XL_MEM_SOFT_PCT", K_PCT, offsetof(tm_options, soft_pct), 0, 100},
  {"--mem-hard-pct", "XL_MEM_HARD_PCT", K_PCT, offsetof(tm_options, hard_pct), 0, 100},
  {"--mem-soft-mb", "XL_MEM_SOFT_MB", K_MB, offsetof(tm_options, soft_mb), 0, 0},
  {"--mem-hard-mb", "XL_MEM_HARD_MB", K_MB, offsetof(tm_options, hard_mb), 0, 0},
  {"--mem-action", "XL_MEM_ACTION", K_ACTION, offsetof(tm_options, action), 0, 0},
  {"--no-mem-watchdog", NULL, K_OFF, offsetof(tm_options, watchdog), 0, 0},
  {"--profile-log", "XL_PROFILE_LOG", K_FILE, offsetof(tm_options, profile_log), 0, 0},
  {"--metrics-file", "XL_METRICS_FILE", K_FILE, offsetof(tm_options, metrics_file), 0, 0},
  {"--no-status-file", NULL, K_OFF, offsetof(tm_options, status_file), 0, 0},
};
#define NOPTS (sizeof optdefs / sizeof optdefs[0])

/* Stores value v for option d; name is the flag or variable for the error message. */
static void set_opt(tm_options *o, const struct optdef *d, const char *name, const char *v) {
  char *p = (char *)o + d->off;
  if (d->off == offsetof(tm_options, soft_pct) || d->off == offsetof(tm_options, soft_mb)) o->soft_set = 1;
  if (d->off == offsetof(tm_options, hard_pct) || d->off == offsetof(tm_options, hard_mb)) o->hard_set = 1;
  switch (d->kind) {
  case K_FILE:
    if (!v || !*v) xl_usage_error("%s: needs a file name", name);
    *(const char **)p = v;
    break;
  case K_LONG:
    *(long *)p = xl_flag_long(name, v, d->lo, d->hi);
    break;
  case K_PCT:
    *(double *)p = xl_flag_double(name, v, (double)d->lo, (double)d->hi);
    break;
  case K_MB:
    *(double *)p = xl_flag_double(name, v, 0, 1e9);
    break;
  case K_ACTION:
    if (v && !strcmp(v, "warn")) *(int *)p = TM_ACTION_WARN;
    else if (v && !strcmp(v, "release")) *(int *)p = TM_ACTION_RELEASE;
    else xl_usage_error("%s: '%s' is not one of warn, release", name, v ? v : "");
    break;
  case K_OFF:
    *(int *)p = 0;
    break;
  }
}

static void env_bool(const char *name, int *dst) {
  const char *v = getenv(name);
  if (!v) return;
  if (!strcmp(v, "0")) *dst = 0;
  else if (!strcmp(v, "1")) *dst = 1;
  else xl_usage_error("%s: '%s' is not 0 or 1", name, v);
}

void tm_options_init(tm_options *o) {
  memset(o, 0, sizeof *o);
  o->stats_every = 1;
  o->mem_every_ms = 200;
  o->watchdog = 1;
  o->soft_pct = 85;
  o->hard_pct = 95;
  o->action = TM_ACTION_WARN;
  o->status_file = 1;
  for (size_t k = 0; k < NOPTS; k++) {
    const char *v = optdefs[k].env ? getenv(optdefs[k].env) : NULL;
    if (v) set_opt(o, &optdefs[k], optdefs[k].env, v);
  }
  env_bool("XL_MEM_WATCHDOG", &o->watchdog);
  env_bool("XL_STATUS", &o->status_file);
}

int tm_options_parse(tm_options *o, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  if (strncmp(a, "--", 2)) return 0;
  for (size_t k = 0; k < NOPTS; k++) {
    const struct optdef *d = &optdefs[k];
    size_t n = strlen(d->flag);
    if (strncmp(a, d->flag, n) || (a[n] != 0 && a[n] != '=')) continue;
    if (d->kind == K_OFF) {
      if (a[n] == '=') xl_usage_error("%s takes no value", d->flag);
      set_opt(o, d, d->flag, NULL);
      return 1;
    }
    const char *v;
    if (a[n] == '=') v = a + n + 1;
    else {
      if (*i + 1 >= argc) xl_usage_error("%s needs a value", d->flag);
      v = argv[++*i];
    }
    set_opt(o, d, d->flag, v);
    return 1;
  }
  return 0;
}
