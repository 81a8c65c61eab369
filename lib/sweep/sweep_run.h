/* sweep_run: an optimizer run directory runs/<run>/ as formats.md describes it:
 * trials.jsonl (one record per finished trial, appended with fsync, a torn last line
 * from a kill dropped and truncated away), summary.csv (the same records, flat,
 * rewritten atomically), best.json and best_profile.json (the best setting so far,
 * rewritten atomically when it changes), run_meta.json; and folding records that were
 * measured elsewhere into it (dedupe by slug; an ok record replaces a failed one).
 * Not for: measuring or choosing trials.
 * Ownership: a sw_rundir owns its trials array; records handed to it are taken. */
#ifndef XL_SWEEP_RUN_H
#define XL_SWEEP_RUN_H
#include "sweep/sweep_space.h"
#include <cJSON.h>
#include <stddef.h>

typedef struct {
  char *dir;
  cJSON *trials;      /* array of the records in trials.jsonl, file order */
  int fd;             /* trials.jsonl opened for appending */
  size_t torn_bytes;  /* bytes of a torn last line dropped when opening */
  size_t duplicates;  /* records dropped when opening: a trial (slug) recorded again */
  int objective;      /* SW_OBJ_*: what "best" means */
  char *last_best;    /* the best.json text last written, to rewrite only on change */
  sw_setting defaults;   /* the tools' default setting, for "simplest" (sw_setting_defaults) */
} sw_rundir;

/* Creates dir if needed and loads trials.jsonl, repairing a torn tail and dropping every
 * record of a trial (slug) but its first complete one (with a slug and a status), the file
 * rewritten (temp + rename) when it held any. 0 ok, -1 with a message. */
int sw_run_open(sw_rundir *r, const char *dir, int objective, char *err, size_t errlen);
void sw_run_close(sw_rundir *r);

/* Reads an NDJSON trials file into an array, dropping an unterminated or unparsable
 * last line; *torn gets its byte count (the valid part ends at size - *torn).
 * A missing file gives an empty array. NULL with a message on other errors. */
cJSON *sw_read_trials(const char *path, size_t *torn, char *err, size_t errlen);

/* The record with that settings key, or NULL. */
const cJSON *sw_run_find_key(const sw_rundir *r, const char *key);

/* Appends a finished record to trials.jsonl (one write, then fsync) and to r->trials
 * (which takes rec), then rewrites summary.csv and best files. 0 ok, -1 errno. */
int sw_run_add(sw_rundir *r, cJSON *rec, const char *profile_out);

/* Folds records (an array; its items are copied) into the run: a slug already there is
 * skipped unless the old record failed and the new one is ok (then replaced). A record
 * that shares a measurement (decode_from, prefill_from) gets it copied once its source is
 * in the run (sw_record_take). Then rewrites summary.csv and the best files. 0 ok, -1
 * with a message. */
int sw_run_collect(sw_rundir *r, const cJSON *records, const char *profile_out, size_t *added,
                   size_t *replaced, size_t *skipped, char *err, size_t errlen);

/* Rewrites summary.csv (records sorted by trial number). 0 ok, -1 errno. */
int sw_run_write_summary(sw_rundir *r);
/* Recomputes the best setting; when it changed, rewrites best.json, best_profile.json
 * and profile_out (if not NULL). *changed (if given) says whether it did. 0 ok, -1 errno. */
int sw_run_write_best(sw_rundir *r, const char *profile_out, int *changed);

/* The best setting over the ok records of trials for the objective, as
 * {"params":{every run setting the records name},"metrics":{...},"objective":..,
 *  "slugs":[...]} (+ "front" for pareto), or NULL when nothing qualifies.
 * A setting qualifies when none of its records failed and it was measured at as many
 * context lengths as any setting; its speed is the mean over those, with an interval from
 * the trials' intervals. Noise-aware (choose.h): decode/prefill: the fastest, unless a
 * simpler setting ties with it (within the noise, or differing only in knobs that cannot
 * change that speed), then the simplest such; "significant" says whether it beats every
 * other setting beyond the noise and "ties" lists the settings it ties with. Pareto: of
 * the front (no setting significantly better on one speed and not worse on the other;
 * ties collapsed to the simplest), the one with the largest product of the two speeds,
 * each divided by its best value. defaults: the default setting (NULL: the table's). */
cJSON *sw_best(const cJSON *trials, int objective);
cJSON *sw_best_ex(const cJSON *trials, int objective, const sw_setting *defaults);


#endif
