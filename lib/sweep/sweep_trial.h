/* sweep_trial: one trial of xl-sweep, i.e. one setting at one context length. A trial
 * spec (a JSON object, one NDJSON line in a plan file) says everything needed to run it
 * anywhere: the settings, slug and trial number, the context and new-token counts,
 * repeats, the model, prompt and ids files, where the tools are and a time limit. Running
 * it means a warm-up and then `repeats` timed runs of bin/xl-decode (or bin/xl-prefill
 * when no tokens are generated, or when decode speed is shared from another trial), each
 * its own process with the knobs as flags; the result is one trial record (the fields of
 * formats.md "Optimizer run directory") with the mean, standard deviation and 95%
 * interval of the speeds and the machine's load, or status "failed" and the error.
 * Also: the prompt ids at a context length, and where/what this machine is.
 * Not for: choosing trials (sweep_space.h, sweep_search.h) or run directories
 * (sweep_run.h). */
#ifndef XL_SWEEP_TRIAL_H
#define XL_SWEEP_TRIAL_H
#include "sweep/sweep_space.h"
#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  long trial;                  /* trial number, from 1 */
  char key[SW_KEY_MAX];        /* settings key (sw_key) */
  char slug[SW_KEY_MAX + 32];  /* key + "__i=<trial>" */
  sw_setting s;
  long context;                /* prompt tokens */
  long new_tokens;             /* 0: prefill only (xl-prefill) */
  int repeats;                 /* timed runs */
  int warmup;                  /* untimed runs before them */
  double timeout_s;            /* per tool run; <= 0 none */
  unsigned long long sampling_seed;   /* --seed of a sampled setting */
  unsigned measure;            /* XS_AFFECTS_PREFILL | _DECODE: what this trial measures itself */
  long batch_id;               /* the interleaved batch it runs in (runs of one batch pair up by
                                * round); 0: none (run on its own) */
  char *prefill_from;          /* the trial whose prefill measurement this one shares, or NULL */
  char *decode_from;           /* the same for decode */
  char *model;                 /* NULL: the tools' default model */
  char *prompt_file;           /* the text the ids come from */
  char *ids_file;              /* the prompt ids at `context`; NULL or missing: made from prompt_file */
  char *bin;                   /* directory holding xl-prefill and xl-decode */
  char *tool_prefix;           /* words put before every tool run ("taskset -c 0"), NULL none */
} sw_spec;

/* Strings in a spec are owned by it (sw_spec_free). */
void sw_spec_free(sw_spec *sp);
cJSON *sw_spec_to_json(const sw_spec *sp);
/* Reads a spec; 0 ok, -1 with a message (missing or bad field). */
int sw_spec_from_json(const cJSON *j, sw_spec *sp, char *err, size_t errlen);

/* What goes into every record made on this machine. */
typedef struct {
  char host[256];
  char cpu[256];      /* "model name" of /proc/cpuinfo */
  int threads;        /* online CPUs */
  char commit[64];    /* git describe of the source tree, or "unknown" */
  char build[128];    /* commit + compiler + optimization */
  char version[16];
} sw_hostinfo;
/* bin_dir: the directory of the running tool (the source tree is its parent). */
void sw_hostinfo_get(sw_hostinfo *h, const char *bin_dir);

/* The directory of the running executable (malloc'd), from /proc/self/exe. */
char *sw_self_dir(void);

/* Tokenizes prompt_file with `xl-prefill --tokenize` (run as the spec's tools are) and
 * returns the ids repeated / cut to exactly `context` (malloc'd, caller frees).
 * NULL with a message on failure. */
int32_t *sw_prompt_ids(const char *bin, const char *tool_prefix, const char *model,
                       const char *prompt_file, long context, char *err, size_t errlen);
/* Runs `xl-prefill --ids 1 FLAGS... [-m model]` as the trials' tools run (a machine check:
 * what the defaults are, whether a device exists). 0 with *rec its record (caller frees),
 * or -1 with err saying why (the tool's own message). */
int sw_probe(const char *bin, const char *tool_prefix, const char *model, char *const *flags, cJSON **rec,
             char *err, size_t errlen);

/* Writes ids as a comma-separated line, atomically. 0 ok, -1 errno. */
int sw_write_ids(const char *path, const int32_t *ids, long n);

/* Runs the trial and returns its record (caller frees), or NULL when it was
 * interrupted (sw_proc_stop) so that nothing unfinished is recorded.
 * A trial that could not be measured gives status "failed" with the error. What it does
 * not measure itself (spec.measure) is left null with <what>_from naming the trial to
 * take it from (sw_record_take). */
cJSON *sw_trial_run(const sw_spec *sp, const sw_hostinfo *h);

/* Called as each trial of a batch finishes, with its record (the callee takes it). */
typedef void (*sw_done_fn)(void *ctx, size_t i, cJSON *rec);
/* Runs n trials interleaved: round r runs the next process (a warm-up, then the timed runs)
 * of every trial that has one left, in an order shuffled per round from seed, so slow
 * drift of the machine spreads over every setting alike. done() gets each record as its
 * trial finishes. Returns 0, or 1 when interrupted (unfinished trials give no record). */
int sw_trials_run(const sw_spec *specs, size_t n, const sw_hostinfo *h, uint64_t seed, sw_done_fn done, void *ctx);

/* Copies into rec the measurement `what` (XS_AFFECTS_PREFILL or _DECODE) of src: the
 * mean, spread, interval, count and runs, and "<what>_from" = the trial that measured it
 * (src, or the trial src took it from). Run settings rec does not name are taken too. */
void sw_record_take(cJSON *rec, const cJSON *src, unsigned what);

/* The knobs a record (or a CSV row as an object) names, numbers or strings, into *s (knobs
 * it does not name stay ""). 0 ok; -1 when one is not a valid value. */
int sw_setting_from_record(const cJSON *rec, sw_setting *s);

/* The 1-minute load average of the machine (/proc/loadavg), NaN when unknown. */
double sw_loadavg(void);

/* The record's field names in order: the columns of summary.csv. */
extern const char *const sw_record_cols[];
extern const size_t sw_record_ncols;

#endif
