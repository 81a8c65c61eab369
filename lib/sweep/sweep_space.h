/* sweep_space: what xl-sweep searches over. A setting is the four runtime knobs of the
 * run tools (backend, chunk size, heads per band, workers); the space holds, per knob,
 * the sorted list of values a sweep may try, parsed from llama-bench style lists
 * ("16,32,64", "1-4", "16-256*2", "8-64+8"). Also: the settings key and slug that name a
 * trial, a small seeded PRNG, and the non-adaptive plans (grid, random).
 * Not for: running anything (sweep_trial.h) or the adaptive searches (sweep_search.h).
 * Ownership: a sw_list owns its values (sw_list_free); plans are malloc'd arrays the
 * caller frees. */
#ifndef XL_SWEEP_SPACE_H
#define XL_SWEEP_SPACE_H
#include "engine/engine.h"
#include <stddef.h>
#include <stdint.h>

/* The prefill backends, as the engine names them (engine.h: xl_backend_name/_parse). */
enum { SW_CHUNKWISE = XL_BACKEND_CHUNKWISE, SW_RECURRENT = XL_BACKEND_RECURRENT };

/* Genes, in the order of the grid's loops (the last varies fastest). */
enum { SW_G_BACKEND = 0, SW_G_CHUNK, SW_G_HEADS, SW_G_WORKERS, SW_NGENES };

typedef struct {
  int backend;         /* SW_CHUNKWISE or SW_RECURRENT */
  int chunk_size;      /* 1 for the recurrent backend (it steps token by token) */
  int heads_per_band;
  int workers;
} sw_setting;

typedef struct {
  long *v;             /* [n] sorted, unique */
  size_t n;
} sw_list;

typedef struct {
  sw_list gene[SW_NGENES];
} sw_space;

/* Parses a value list: comma-separated items, each a number, a range "a-b" (step 1),
 * "a-b+s" (additive step) or "a-b*m" (multiplicative, m >= 2). Every value must lie in
 * [lo, hi]; at most 4096 values. Result sorted and deduplicated.
 * 0 ok, -1 with a message in err. */
int sw_list_parse(const char *spec, long lo, long hi, sw_list *out, char *err, size_t errlen);
/* Backends: "chunkwise,recurrent" (either order, duplicates ignored). */
int sw_backends_parse(const char *spec, sw_list *out, char *err, size_t errlen);
void sw_list_free(sw_list *l);
void sw_space_free(sw_space *s);


/* The setting a gene index vector picks; normalized (see sw_setting_normalize). */
sw_setting sw_space_pick(const sw_space *sp, const int idx[SW_NGENES]);
/* The recurrent backend ignores the chunk size: it is set to 1, so settings that differ
 * only there are one setting. */
void sw_setting_normalize(sw_setting *s);
int sw_setting_eq(const sw_setting *a, const sw_setting *b);

/* The settings key, e.g. "b=chunkwise__ck=64__h=2__w=2__ctx=512": what a trial
 * measures, independent of when. The slug adds the trial number: key + "__i=7". */
void sw_key(const sw_setting *s, long context, char *buf, size_t n);
void sw_slug(const char *key, long trial, char *buf, size_t n);
#define SW_KEY_MAX 128

/* ---- seeded PRNG (splitmix64): the same seed gives the same sequence everywhere ---- */
typedef struct { uint64_t s; } sw_rng;
void sw_rng_seed(sw_rng *r, uint64_t seed);
uint64_t sw_rng_next(sw_rng *r);
/* Uniform in [0, n) (n >= 1), without modulo bias. */
size_t sw_rng_below(sw_rng *r, size_t n);
/* Uniform in [0, 1). */
double sw_rng_unit(sw_rng *r);

/* ---- non-adaptive plans ---- */
/* Every setting of the space in grid order, duplicates (after normalization) dropped.
 * Returns the count; *out is malloc'd. */
size_t sw_plan_grid(const sw_space *sp, sw_setting **out);
/* Up to `trials` distinct settings drawn uniformly (each gene independently) with the
 * seed; fewer when the space is smaller. */
size_t sw_plan_random(const sw_space *sp, uint64_t seed, size_t trials, sw_setting **out);
/* The number of distinct settings in the space (after normalization). */
size_t sw_space_size(const sw_space *sp);

#endif
