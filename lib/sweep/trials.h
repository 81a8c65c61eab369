/* trials: reads the trials an optimizer run finished (docs/formats.md: runs/<run>/trials.jsonl,
 * its flat twin summary.csv, or the same NDJSON on a pipe) into the settings each trial ran
 * with: slug, trial number, status, every run setting it names (backend, chunk_size,
 * heads_per_band, workers, and device, matmul, sampling when it names them), context
 * length and prompt file. Used by xl-save (to re-run each setting) and the judges (to copy
 * a trial's parameters next to its scores).
 * Not for: speed numbers or any other trial metric (the reader keeps the whole record in
 * `obj` for whoever wants more), or writing trials (xl-sweep).
 *
 * Ownership: a tr_list owns its records; the string pointers of a tr_trial point into
 * its `obj` and live until tr_free. */
#ifndef XL_TRIALS_H
#define XL_TRIALS_H
#include "sweep/sweep_space.h"
#include <cJSON.h>
#include <stddef.h>

typedef struct {
  cJSON *obj;               /* the record as read (CSV rows become objects) */
  const char *slug;         /* never NULL: a record without a slug is an error */
  long trial;               /* trial number, -1 when missing */
  int ok;                   /* status is "ok" (or there is no status field) */
  int backend;              /* xl_backend value, -1 when missing */
  int chunk_size;           /* -1 when missing */
  int heads_per_band;       /* -1 when missing */
  int workers;              /* -1 when missing */
  long context;             /* `context`, else `prompt_tokens`; -1 when missing */
  const char *prompt_file;  /* NULL when missing */
  sw_setting s;             /* every run setting the record names (and its sampling), "" when not */
  const char *sampling_seed;   /* the seed of a sampled trial, NULL when none */
} tr_trial;

typedef struct {
  tr_trial *v;              /* [n], in file order (see tr_read on repeated slugs) */
  size_t n;
  cJSON *root;              /* array holding every obj */
} tr_list;

/* Reads trials from path: "-" is NDJSON on stdin, a name ending in ".csv" is a CSV table
 * (summary.csv), anything else NDJSON (trials.jsonl). An incomplete last NDJSON line (no
 * newline and not valid JSON: a writer killed mid-line) is ignored with a warning.
 * A slug seen again replaces the earlier record in place (the later run of a setting
 * wins). Slugs must be usable as file names (no '/', not "." or ".."). Fields may be
 * numbers or numeric strings. Returns 0, or -1 with a message naming the file and line
 * in err. */
int tr_read(tr_list *l, const char *path, char *err, size_t errlen);
void tr_free(tr_list *l);

/* Adds a trial's parameters to obj: backend, chunk_size, heads_per_band, workers, context
 * (null for a missing one). */
void tr_add_params(const tr_trial *t, cJSON *obj);

/* The parameter names tr_add_params writes, in that order (for CSV headers). */
extern const char *const tr_param_names[5];

/* Adds every other setting the trial names (device, matmul, sampling, sampling_seed). */
void tr_add_knobs(const tr_trial *t, cJSON *obj);

/* A file a run names relative to itself (a prompt_file, say): name as given when it is
 * readable, else RUN_DIR/name for a relative name. A malloc'd path, or NULL (errno from
 * the first attempt) when neither can be read. */
char *tr_run_file(const char *run_dir, const char *name);

/* 1 if s is a usable slug (non-empty, no '/', no control characters, not "." or ".."). */
int tr_slug_ok(const char *s);

#endif
