/* sweep_config: xl-sweep's settings and where each one comes from. Every setting has a
 * long flag (--chunk-size), the same name as a key of a --config JSON file (dashes or
 * underscores), and a default; the effective value is the command line's, else the
 * resumed run's (run_meta.json "config"), else the config file's, else the default.
 * Values are kept as text while layering, then checked and typed into sw_conf.
 * Not for: running anything. */
#ifndef XL_SWEEP_CONFIG_H
#define XL_SWEEP_CONFIG_H
#include "sweep/sweep_space.h"
#include <cJSON.h>

enum {
  SW_O_MODEL, SW_O_PROMPT_FILE, SW_O_SEARCH, SW_O_OBJECTIVE,
  SW_O_KNOBS,   /* one value list per knob of sweep_space.h, in its order (--device ... --sampling) */
  SW_O_CONTEXT = SW_O_KNOBS + SW_NKNOBS, SW_O_NEW, SW_O_REPEATS, SW_O_WARMUP, SW_O_SEED,
  SW_O_TRIALS, SW_O_POPULATION, SW_O_ELITES, SW_O_GENERATIONS, SW_O_MUTATION,
  SW_O_SAMPLING_SEED, SW_O_REUSE, SW_O_INTERLEAVE, SW_O_SKIP_UNAVAILABLE,
  SW_O_TIMEOUT, SW_O_TOOL_PREFIX, SW_O_BIN, SW_O_PROFILE_OUT, SW_O_PROGRESS, SW_O_RUN,
  SW_O_OUTPUT, SW_NOPTS
};
/* The option of knob k's value list (its flag is the settings table's). */
#define SW_O_KNOB(k) (SW_O_KNOBS + (k))
enum {
  SW_O_BACKEND = SW_O_KNOB(XS_BACKEND), SW_O_CHUNK = SW_O_KNOB(XS_CHUNK_SIZE),
  SW_O_HEADS = SW_O_KNOB(XS_HEADS_PER_BAND), SW_O_WORKERS = SW_O_KNOB(XS_WORKERS),
};

enum { SW_SRC_DEFAULT = 0, SW_SRC_CONFIG, SW_SRC_RESUME, SW_SRC_CLI };

typedef struct {
  char *val[SW_NOPTS];   /* owned; NULL = unset */
  int src[SW_NOPTS];
} sw_layers;

enum { SW_SEARCH_GRID, SW_SEARCH_RANDOM, SW_SEARCH_GA, SW_SEARCH_PARETO };

/* The checked, typed settings. Strings point into the sw_layers they came from. */
typedef struct {
  const char *model;        /* NULL: the tools' default */
  const char *prompt_file;
  int search;               /* SW_SEARCH_* */
  int objective;            /* SW_OBJ_* */
  sw_space space;           /* owned (sw_conf_free) */
  sw_list contexts;         /* owned */
  long new_tokens;
  int repeats, warmup;
  unsigned long long seed;
  unsigned long long sampling_seed;   /* --seed of sampled runs (default: --seed) */
  int reuse;                /* 1: a measurement a trial's knobs cannot change is taken from the trial that made it */
  int interleave;           /* trials whose runs are interleaved in one shuffled batch (grid/random) */
  int skip_unavailable;     /* 1: drop device values this machine lacks (else refuse the sweep) */
  long trials;
  int population, elites, generations;
  double mutation;
  double timeout_s;
  const char *tool_prefix;  /* NULL none */
  const char *bin;          /* NULL: beside xl-sweep */
  const char *profile_out;  /* NULL none */
  int progress;             /* -1 auto (stderr is a terminal), 0 no, 1 yes */
  const char *run_dir;      /* -o DIR; NULL: not given */
  const char *run_name;     /* --run NAME (runs/NAME, a plain name: sw_run_name_ok); NULL: not given */
} sw_conf;

/* Option name (flag without "--"), by index, and whether it shapes the plan (so a
 * resumed run must keep it). Whether it is a switch (no value on the command line). */
const char *sw_opt_name(int i);
int sw_opt_is_plan(int i);
int sw_opt_is_switch(int i);
/* The index of a flag or config key ("chunk-size", "chunk_size"), or -1. */
int sw_opt_find(const char *name);

/* Sets a value from a source; a higher source is never overwritten by a lower one. */
void sw_layers_set(sw_layers *l, int opt, const char *val, int src);
void sw_layers_free(sw_layers *l);
/* Merges a JSON object of settings (config file, or run_meta "config") at level src.
 * Keys starting with '_' are ignored; an unknown key or a bad value type is an error.
 * 0 ok, -1 with a message. */
int sw_layers_merge_json(sw_layers *l, const cJSON *obj, int src, char *err, size_t errlen);
/* Fills unset values with the defaults. The default prompt is root/prompts/pydocs.txt,
 * or with root NULL the one shipped with xltools (xl_find_resource: beside bin/, or
 * installed in PREFIX/share/xltools). */
void sw_layers_defaults(sw_layers *l, const char *root);

/* Whether a --run NAME is a plain name for runs/NAME: letters, digits, '.', '_', '-', not
 * starting with '.' (so never "..", a hidden name or a path). */
int sw_run_name_ok(const char *name);

/* Checks and types the merged values; 0 ok, -1 with a message naming the option. */
int sw_conf_build(const sw_layers *l, sw_conf *c, char *err, size_t errlen);
void sw_conf_free(sw_conf *c);

/* The effective settings as a JSON object (numbers as numbers), the same keys a
 * --config file takes; with_sources adds "_sources": {key: "default"|"config"|...}. */
cJSON *sw_layers_json(const sw_layers *l, int with_sources);

/* The --help lines of the settings. */
const char *sw_conf_help(void);
const char *sw_search_name(int s);

#endif
