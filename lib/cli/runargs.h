/* runargs: what xl-prefill and xl-decode share: their common flags (model, prompt sources,
 * --bos, --profile, the run settings of settings.h, observability), opening the
 * model/tokenizer/session with the settings resolved (flags > --profile settings > XL_*
 * environment > the model's defaults), turning the prompt into ids, and the common fields
 * of their NDJSON records.
 * Not for: anything tool-specific (generation, output files). */
#ifndef XL_RUNARGS_H
#define XL_RUNARGS_H
#include "cli/settings.h"
#include "engine/engine.h"
#include "obs/telemetry.h"
#include "text/tokenizer.h"
#include <cJSON.h>
#include <stdint.h>

typedef struct {
  const char *model_dir;        /* -m; NULL = the default model */
  const char *prompt;           /* positional text */
  const char *prompt_file;      /* --prompt-file */
  const char *ids_arg;          /* --ids 5,7,9 */
  const char *ids_file;         /* --ids-file */
  const char *profile_arg;      /* --profile FILE: a settings profile (refused otherwise) */
  int bos;                      /* --bos: -1 auto, 0 no, 1 yes */
  xl_settings_given settings;   /* --device, --backend, --chunk-size, ... and the profile */
  xl_progress_fn progress;      /* the tool's prefill progress hook (NULL: none) */
  void *progress_ctx;
  int show_progress;            /* --progress: prefill progress on stderr even when it is no terminal */
  tm_options tm;
} xl_runargs;

typedef struct {
  char *model_dir;              /* resolved */
  xl_model *model;
  tok_tokenizer *tok;           /* NULL if the model dir has no tokenizer.json */
  xl_session *sess;
  xl_runopts opt;               /* what the session runs with */
} xl_run;

void xl_runargs_init(xl_runargs *a);
/* Consumes argv[*i] (and its value) if it is a common flag; returns 1 then, else 0.
 * A non-flag argument is taken as the prompt (once). Usage errors exit 2. */
int xl_runargs_parse(xl_runargs *a, int argc, char **argv, int *i);
/* The --help text of the common flags. */
const char *xl_runargs_help(void);

/* Loads the model (and its tokenizer if present) and creates the session with the resolved
 * settings. Exits 1 with a message on failure, 2 on a bad setting or a device this build or
 * machine lacks. need_tokenizer: fail if there is no tokenizer.json. */
void xl_run_open(xl_run *r, xl_runargs *a, int need_tokenizer);
/* Only the tokenizer (for --tokenize / --detokenize). */
void xl_run_open_tokenizer(xl_run *r, xl_runargs *a);
void xl_run_close(xl_run *r);

/* The prompt as ids, from --ids, --ids-file, the prompt text, --prompt-file, or stdin when
 * allow_stdin and nothing else was given (stdin is then read as text). BOS is prepended to
 * text prompts per --bos / the model / the tokenizer. Returns the count (0: no prompt).
 * *ids is malloc'd (caller frees). Exits 1 on a bad file / invalid UTF-8 / out-of-range id. */
long xl_run_prompt_ids(xl_run *r, xl_runargs *a, int allow_stdin, int32_t **ids);
/* Encodes text with BOS per the rules above. Exits 1 on invalid input (naming src). */
long xl_run_encode(xl_run *r, xl_runargs *a, const char *text, size_t len, const char *src, int32_t **ids);


/* The prefill hook of the run tools (set a->progress = xl_run_prefill_hook, a->progress_ctx
 * to an xl_prefill_watch): one stats-log row per segment (phase prefill), a profile step per
 * segment (when profile), the stop check, and the progress on stderr: a line refreshed in
 * place on a terminal once the prefill has taken a second, or (--progress) a line every
 * second wherever stderr goes. Between segments the engine's stop check, called between the
 * layers of a segment (between tokens on the recurrent backend), advances the estimate, so
 * a long prefill of one segment shows progress too. xl_run_watch_begin before each prefill. */
typedef struct {
  int show, profile;            /* show: 0 never, 1 on a terminal after a second, 2 always (--progress) */
  long last_done; double last_s;
  /* the progress estimate (xl_run_watch_begin) */
  long total;
  int layers, segment, per_token, calls, printed, tty;
  double t0, last_print;
} xl_prefill_watch;
int xl_run_prefill_hook(void *ctx, long done, long total, double seconds);
void xl_run_watch_begin(xl_prefill_watch *w, const xl_run *r, const xl_runargs *a, long total);

/* Whether the logits after the last consumed token are all finite (NaN or Inf weights give
 * NaN logits, and the sampler would pick id 0 from them as if the model had chosen it). */
int xl_run_logits_finite(xl_run *r);

/* Adds the fields every record of the run tools carries: model, fingerprint, every run
 * setting (device, backend, chunk_size, heads_per_band, workers, matmul), blas_core,
 * peak_rss_mb. */
void xl_run_record_fields(const xl_run *r, cJSON *rec);
/* Prints a record as one line on stdout. */
void xl_print_record(cJSON *rec);

#endif
