/* settings: every run setting of the engine, defined once. Each has a name (the key in
 * settings profiles and sweep parameters), a flag, an XL_* environment variable, bounds or
 * choices, and help text; the tools parse, resolve, print and write settings through this
 * table only. Resolution order: flag > settings profile (--profile FILE) > environment >
 * the model's default.
 * Not for: what the engine does with them (engine.h, xl_runopts). */
#ifndef XL_SETTINGS_H
#define XL_SETTINGS_H
#include "engine/engine.h"
#include <cJSON.h>
#include <stddef.h>

typedef enum {
  XS_DEVICE, XS_BACKEND, XS_CHUNK_SIZE, XS_HEADS_PER_BAND, XS_WORKERS, XS_MATMUL, XS_KERNELS, XS_GEMM, XS_COUNT
} xl_setting_id;

/* What a setting can change: a sweep re-measures only these, and a recommendation never
 * ranks a setting by a measurement it cannot affect. */
enum { XS_AFFECTS_PREFILL = 1, XS_AFFECTS_DECODE = 2, XS_AFFECTS_OUTPUT = 4 };

typedef struct {
  const char *key;       /* profile / sweep parameter name: "chunk_size" */
  const char *flag;      /* "--chunk-size" */
  const char *env;       /* "XL_CHUNK_SIZE" */
  const char *metavar;   /* "N" */
  long lo, hi;           /* integer settings: bounds; both 0 for named values */
  const char *choices;   /* named values, for messages: "chunkwise|recurrent" */
  const char *help;      /* one or more lines, without the flag column */
  unsigned affects;      /* XS_AFFECTS_* */
  const char *abbrev;    /* its part of a sweep trial's slug: "ck" in "ck=64" */
} xl_setting;

extern const xl_setting xl_settings[XS_COUNT];

/* The sampling of xl-decode as one setting for sweeps ("sampling": "greedy", "t0.8",
 * "t0.8k40", "t1p0.9", "t0.7k40p0.95"): not an engine setting (xl_runopts has no field for
 * it; xl-decode takes --temperature/--top-k/--top-p/--seed), but described like one so a
 * sweep can search it. It changes decode speed (the sampler's work) and the output. */
extern const xl_setting xl_sampling_setting;
/* "greedy" or t<T>[k<K>][p<P>] (T > 0, K >= 0, 0 < P <= 1) into *out (seed untouched).
 * 0 ok; -1 with err. */
int xl_sampling_parse(const char *spec, xl_sampling *out, char *err, size_t errlen);
/* The canonical spec text of a sampling ("greedy", "t0.8k40"). */
const char *xl_sampling_format(const xl_sampling *s, char *buf, size_t n);

/* o's value of a setting as canonical text ("64", "chunkwise", "cuda:0", "bf16"). */
const char *xl_setting_text(xl_setting_id id, const xl_runopts *o, char *buf, size_t n);
/* text (as a flag would take it) as canonical text ("cuda" -> "cuda:0"). 0 ok; -1 with err. */
int xl_setting_canon(xl_setting_id id, const char *text, char *buf, size_t n, char *err, size_t errlen);

/* The setting with this key (profile name) or flag; NULL if none. */
const xl_setting *xl_setting_by_key(const char *key);

/* Sets o's field from text (a flag value, an environment value, a profile value as text).
 * where names the source for messages ("--chunk-size", "XL_CHUNK_SIZE", "p.json: params.workers").
 * 0 ok; -1 with err "WHERE: 'TEXT' is not ...". */
int xl_setting_parse(xl_setting_id id, const char *text, xl_runopts *o, const char *where, char *err, size_t errlen);
/* The same from a JSON value (numbers for integer settings, strings otherwise). */
int xl_setting_parse_json(xl_setting_id id, const cJSON *v, xl_runopts *o, const char *where, char *err, size_t errlen);
/* o's value as JSON (a number or a string), for records and profiles. */
cJSON *xl_setting_json(xl_setting_id id, const xl_runopts *o);

/* What a tool was given: flag values (NULL = not given) and a settings profile. */
typedef struct {
  const char *flag[XS_COUNT];
  const char *profile;          /* --profile FILE, or NULL */
} xl_settings_given;

/* Consumes argv[*i] (and its value) when it is a setting's flag; 1 then, else 0. A bad value
 * is a usage error (exit 2). */
int xl_settings_parse_flag(xl_settings_given *g, int argc, char **argv, int *i);
/* o = the model's defaults, then XL_* variables, then the profile's params, then the flags.
 * m may be NULL (no model defaults). 0 ok; -1 with err naming the variable, file or flag
 * (the tools treat it as a usage error). */
int xl_settings_resolve(xl_runopts *o, const xl_model *m, const xl_settings_given *g, char *err, size_t errlen);

/* Whether path holds a settings profile: a JSON object with "params", or settings at top
 * level. */
int xl_settings_is_profile(const char *path);
/* Applies a profile's params over o. 0 ok; -1 with err naming the file and key. */
int xl_settings_apply_profile(const char *path, xl_runopts *o, char *err, size_t errlen);
/* Checks a params object (keys known, values in bounds) and returns a normalised copy
 * holding only the settings it names; NULL with err otherwise. */
cJSON *xl_settings_params_check(const cJSON *params, const char *where, char *err, size_t errlen);
/* Writes a profile {"params": params, ...extra's members} atomically. 0 ok; -1 with err. */
int xl_settings_write_profile(const char *path, const cJSON *params, const cJSON *extra, char *err, size_t errlen);

/* The --help lines of every setting, with its variable: "      --chunk-size N  ...  [XL_CHUNK_SIZE]". */
const char *xl_settings_help(void);

#endif
