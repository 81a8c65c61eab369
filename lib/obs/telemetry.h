/* telemetry: what a running tool tells the outside world about itself, and the guard that
 * stops it before it eats the machine. One background thread samples memory (RSS,
 * MemAvailable, resident bytes of the mmapped model), runs the memory watchdog, writes the
 * memory log, the Prometheus metrics file and the status file that xl-top reads. The hot
 * loop only stores counters (tm_decode_step, tm_prefill_chunk) and polls tm_should_stop().
 * Not for: timing benchmarks (bench/optimizer own those) or anything model-specific.
 *
 * Typical use in a tool:
 *   tm_options tmo; tm_options_init(&tmo);
 *   for (i = 1; i < argc; i++) { if (tm_options_parse(&tmo, argc, argv, &i)) continue; ... }
 *   ... load model; tm_register_region("weights", map, len);
 *   if (tm_start(&tmo, "xl-decode")) exit(1);
 *   tm_set_phase("decode");
 *   while (...) { t0 = xl_now(); step(); tm_decode_step(xl_now() - t0);
 *                 if (tm_should_stop()) break; }
 *   tm_stop(); status = tm_should_stop();  (0, 3, 130 or 143; print tm_stop_reason())
 *
 * File formats written here:
 *
 * --stats-log FILE: CSV with header `step,dt_ms,cum_ms,inst_tok_s,avg_tok_s,phase`.
 *   `phase` (prefill|decode) tells the rows apart: the prefill is reported in rows of its
 *   own, in the same file. `step` counts tokens within the row's phase (decode: from 1), so
 *   a step number can appear once per phase. One row per tm_prefill_chunk call: the run
 *   tools call it once per prefill segment (step = prefill tokens so far).
 *   Decode: one row every N steps (--stats-every N, default 1). dt_ms is the time since the
 *   previous row of the same phase, so cum_ms is always the running sum of dt_ms;
 *   inst_tok_s = (tokens covered by the row) * 1000 / dt_ms, i.e. the rate over the last
 *   token when N = 1, over the last N tokens otherwise; avg_tok_s = step * 1000 / cum_ms.
 *   Rows are buffered and flushed at least every ~250 ms of measured time, and at tm_stop.
 *
 * --mem-log FILE: CSV `ts,rss_mb,avail_mb,total_mb,model_mapped_mb,model_resident_mb,
 *   scratch_mb,phase`, one row per sample (--mem-every MS, default 200); ts = Unix seconds;
 *   MB = 2^20 bytes.
 *
 * Memory watchdog (on by default): before the run, RSS + the weights not yet resident +
 *   tm_expect_bytes is held against the hard limit (a run that cannot fit stops before it
 *   starts); then RSS is sampled every min(mem-every, 50) ms, and sooner while it grows
 *   toward the hard limit (half the time the growth needs to reach it, down to 5 ms); within
 *   10% of the limit a growth that would pass it before the next sample stops the run, so
 *   the limit holds unless memory jumps by more than a sample's growth at once.
 *   the measure is the process RSS (procmem.h: /proc/self/statm, which includes resident pages of the
 *   mmapped model). Limits: --mem-soft-mb / --mem-hard-mb (absolute, take precedence), else
 *   --mem-soft-pct / --mem-hard-pct percent of MemTotal (defaults 85 and 95; 0 = off).
 *   Soft crossing: one warning on stderr (re-armed once RSS falls below 90% of the soft
 *   limit); with --mem-action release, the registered model regions are dropped with
 *   madvise(MADV_DONTNEED) (read-only file mappings re-fault from the file) and
 *   malloc_trim(0) runs. Hard crossing: in release mode release first and re-measure;
 *   if still above, tm_should_stop() returns 3 and tm_stop_reason() explains.
 *
 * --profile-log FILE: JSON lines, one per tm_prof_step_end:
 *   {"step":N,"total_ms":T,"phases":{"embed":{"last_ms":a,"mean_ms":b},...},
 *    "blocks":[{"norm":{...},"proj":{...},...},...]}
 *   "phases" holds model-level phases (block -1), "blocks"[i] the phases of block i; only
 *   phases ever recorded appear. last_ms = time in the last step (sum of all adds in it),
 *   mean_ms = mean over the steps where that phase occurred.
 *
 * --metrics-file FILE: Prometheus text exposition (textfile-collector style), rewritten
 *   atomically every second and at tm_stop. Labels {tool="...",pid="..."}. Gauges
 *   xlstm_tok_s_prefill, xlstm_tok_s_decode (phase averages), xlstm_rss_bytes,
 *   xlstm_mem_available_bytes, xlstm_model_resident_bytes, xlstm_scratch_bytes,
 *   xlstm_start_time_seconds; counters xlstm_prefill_tokens_total,
 *   xlstm_decode_tokens_total, xlstm_prefill_seconds_total, xlstm_decode_seconds_total.
 *
 * Status file (for xl-top; on unless --no-status-file or XL_STATUS=0):
 *   $XL_STATUS_DIR/<pid>.json, default dir ${XDG_RUNTIME_DIR:-/tmp}/xltools-<uid> (0700;
 *   refused, with a warning, when it is a symbolic link or another user's: tm_status_dir_ok),
 *   rewritten atomically every 0.5 s, removed at tm_stop. Fields: pid, tool, phase,
 *   tokens_prefill, tokens_decode, tok_s_prefill, tok_s_decode (rate over the last ~0.5 s of
 *   that phase's measured time, else the phase average), avg_tok_s_prefill,
 *   avg_tok_s_decode, rss_bytes, peak_rss_bytes, stats_log, mem_log, metrics_file
 *   (absolute paths or null), start_time (Unix s), updated (Unix s), stop_reason (or null).
 *
 * Signals (installed by tm_start, restored by tm_stop): SIGINT / SIGTERM set the stop flag
 * (tm_should_stop() -> 130 / 143); a second SIGINT or SIGTERM exits at once (130 / 143). SIGUSR1 prints
 * a one-line status on stderr (from the background thread, not the handler).
 *
 * Threading: the tm_decode_step / tm_prefill_chunk / tm_prof_* / tm_set_* calls belong to
 * one thread (the tool's main loop); they take no locks, allocate nothing, and do I/O only
 * for the stats and profile log rows. tm_should_stop may be called from any thread. */
#ifndef XL_TELEMETRY_H
#define XL_TELEMETRY_H
#include <stddef.h>

typedef struct tm_options {
  const char *stats_log;    /* --stats-log FILE, NULL = off */
  long stats_every;         /* --stats-every N (>= 1; decode row every N tokens) */
  const char *mem_log;      /* --mem-log FILE, NULL = off */
  long mem_every_ms;        /* --mem-every MS (10 .. 3600000) */
  int watchdog;             /* 1 unless --no-mem-watchdog / XL_MEM_WATCHDOG=0 */
  double soft_pct, hard_pct;  /* % of MemTotal for RSS; 0 = off */
  double soft_mb, hard_mb;    /* absolute RSS limits in MB; 0 = unset; take precedence */
  int action;               /* TM_ACTION_WARN or TM_ACTION_RELEASE (soft limit) */
  const char *profile_log;  /* --profile-log FILE, NULL = off */
  const char *metrics_file; /* --metrics-file FILE, NULL = off */
  int status_file;          /* 1 unless --no-status-file / XL_STATUS=0 */
  int soft_set, hard_set;   /* a soft / hard limit came from a flag or variable (not a default) */
  /* Strings point into argv or the environment (not owned, never freed). */
} tm_options;

enum { TM_ACTION_WARN = 0, TM_ACTION_RELEASE = 1 };

/* Defaults, then the environment: XL_STATS_LOG, XL_STATS_EVERY, XL_MEM_LOG, XL_MEM_EVERY,
 * XL_MEM_WATCHDOG (0/1), XL_MEM_SOFT_PCT, XL_MEM_HARD_PCT, XL_MEM_SOFT_MB, XL_MEM_HARD_MB,
 * XL_MEM_ACTION, XL_PROFILE_LOG, XL_METRICS_FILE, XL_STATUS (0/1). A bad value in the
 * environment is a usage error (exit 2) naming the variable. */
void tm_options_init(tm_options *o);
/* If argv[*i] is one of the flags above (either "--flag VALUE" or "--flag=VALUE"), consume
 * it and its value (advancing *i) and return 1; else return 0 and leave *i alone.
 * A bad or missing value is a usage error (xl_usage_error, exit 2). */
int tm_options_parse(tm_options *o, int argc, char **argv, int *i);
/* The --help block for these flags (static text, ends with a newline). */
const char *tm_options_help(void);

/* Opens the logs, starts the background thread, installs signal handlers, writes the
 * first status file. tool names the program in the metrics and status file.
 * Returns 0, or -1 after printing the reason (a log could not be opened). A soft memory
 * limit above the hard one is a usage error (exit 2). */
int tm_start(const tm_options *o, const char *tool);
/* Final stats/metrics flush, joins the thread, closes the logs, removes the status file,
 * restores signal handlers. Idempotent; safe without tm_start. The stop status and reason
 * stay readable afterwards. */
void tm_stop(void);

/* After tm_stop: 1 when a log (--stats-log, --mem-log, --profile-log, --metrics-file)
 * could not be written whole, e.g. on a full disk. Such a log has been removed (a regular
 * file; never a device or FIFO) and a message naming it printed; the tool then exits 1
 * where it would have exited 0. */
int tm_logs_failed(void);

/* Model mappings, for the mapped/resident figures and for release. Register only
 * read-only (PROT_READ, file-backed) mappings: release drops their pages. Unregister (or
 * tm_stop) before munmap. Up to 64 regions; name is copied. */
void tm_register_region(const char *name, const void *ptr, size_t len);
void tm_unregister_region(const void *ptr);
void tm_set_scratch_bytes(size_t n);
/* Memory the run will fill besides the weights (e.g. xl-prefill's --logits buffer); call
 * before tm_start, whose watchdog check refuses a run that cannot fit under the hard limit
 * before it starts. */
void tm_expect_bytes(size_t n);
/* "load", "prefill", "decode", "done": a string that outlives the run (a literal). */
void tm_set_phase(const char *phase);

/* One prefill chunk of `tokens` tokens took `seconds`: a stats-log row and the counters. */
void tm_prefill_chunk(long tokens, double seconds);
/* One decoded token took `seconds`: counters; a stats-log row every --stats-every steps. */
void tm_decode_step(double seconds);

/* 0 = go on; else the exit status to use: 3 (memory hard limit), 130 (SIGINT),
 * 143 (SIGTERM). The first reason to stop wins. */
int tm_should_stop(void);
/* Why, e.g. "memory hard limit: RSS 812 MB > 800 MB"; "" when not stopping. */
const char *tm_stop_reason(void);
/* Asks the loop to stop with a status and reason of the caller's (e.g. tests, tools). */
void tm_request_stop(int status, const char *reason);

/* The directory of the status files: $XL_STATUS_DIR, else
 * ${XDG_RUNTIME_DIR:-/tmp}/xltools-<uid>. malloc'd; the caller frees. */
char *tm_status_dir(void);

/* Whether dir can hold status files safely: a real directory (not a symbolic link, which
 * another user could have planted in /tmp to point at anything) owned by this user. With
 * make, a missing dir is created (mode 0700) and an existing one of ours is made private
 * through a descriptor opened with O_NOFOLLOW, never through a path that may be a link.
 * 0 ok; -1 with the reason in why ("is a symbolic link", ...). */
int tm_status_dir_ok(const char *dir, int make, char *why, size_t n);

/* Counters so far. */
long tm_decode_tokens(void);
long tm_prefill_tokens(void);

/* Per-phase profiling (--profile-log FILE): cheap no-ops when disabled. */
enum tm_phase { TM_EMBED, TM_NORM, TM_PROJ, TM_CELL, TM_HEADNORM, TM_OUTPROJ, TM_FFN,
                TM_LMHEAD, TM_SAMPLE, TM_NPHASE };
#define TM_PROF_MAX_BLOCKS 256   /* blocks beyond this are folded into the model level */
int tm_profiling(void);          /* 1 if enabled (callers skip clock reads otherwise) */
/* Adds time to a phase in the current step; block = -1 for model-level phases. */
void tm_prof_add(int block, enum tm_phase ph, double seconds);
/* Ends the step: one JSON line with per-phase last and running mean in ms. */
void tm_prof_step_end(long step);

#endif
