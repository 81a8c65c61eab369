/* sweep_space: what xl-sweep searches over. Its knobs are the run settings of
 * cli/settings.c (every row of xl_settings, in the table's order: device, backend, chunk
 * size, heads per band, workers, matmul) and xl-decode's sampling (xl_sampling_setting);
 * the table says for each what it can change (XS_AFFECTS_*), and the sweep and the
 * choice of a setting follow that. A setting holds each knob's value as canonical text;
 * an empty value means the sweep does not search that knob (the tool's default runs).
 * The space holds, per knob, the values a sweep may try: integer knobs from
 * llama-bench style lists ("16,32,64", "1-4", "16-256*2", "8-64+8"), named knobs from
 * comma lists ("fp32,bf16"). Also: the keys and slugs that name a trial and what it
 * measures, a small seeded PRNG, and the non-adaptive plans (grid, random).
 * Not for: running anything (sweep_trial.h) or the adaptive searches (sweep_search.h).
 * Ownership: lists own their values (sw_list_free, sw_vals_free); plans are malloc'd
 * arrays the caller frees. */
#ifndef XL_SWEEP_SPACE_H
#define XL_SWEEP_SPACE_H
#include "cli/settings.h"
#include <stddef.h>
#include <stdint.h>

/* The prefill backends, as the engine names them (engine.h: xl_backend_name/_parse). */
enum { SW_CHUNKWISE = XL_BACKEND_CHUNKWISE, SW_RECURRENT = XL_BACKEND_RECURRENT };

/* Knobs: the settings table's rows by their xl_setting_id, then the sampling. */
enum { SW_K_SAMPLING = XS_COUNT, SW_NKNOBS };
/* The four knobs every sweep searches and every trial record names (the others only
 * when a sweep is given values for them). */
#define SW_CLASSIC(k) ((k) == XS_BACKEND || (k) == XS_CHUNK_SIZE || (k) == XS_HEADS_PER_BAND || (k) == XS_WORKERS)
#define SW_VAL_MAX 32

/* A knob's row of the settings table (xl_settings[k], or xl_sampling_setting). */
const xl_setting *sw_knob(int k);
/* The knob with this key ("chunk_size", "sampling"), or -1. */
int sw_knob_find(const char *key);
/* Whether knob k takes integers (else named values). */
int sw_knob_is_int(int k);

typedef struct {
  char v[SW_NKNOBS][SW_VAL_MAX];   /* canonical value text; "" = not searched */
} sw_setting;

typedef struct {
  long *v;             /* [n] sorted, unique */
  size_t n;
} sw_list;

typedef struct {
  char **v;            /* [n] canonical values, in the order a search moves through them */
  size_t n;
} sw_vals;

typedef struct {
  sw_vals knob[SW_NKNOBS];   /* n == 0: the knob is not searched */
} sw_space;

/* Parses a value list: comma-separated items, each a number, a range "a-b" (step 1),
 * "a-b+s" (additive step) or "a-b*m" (multiplicative, m >= 2). Every value must lie in
 * [lo, hi]; at most 4096 values. Result sorted and deduplicated.
 * 0 ok, -1 with a message in err. */
int sw_list_parse(const char *spec, long lo, long hi, sw_list *out, char *err, size_t errlen);
void sw_list_free(sw_list *l);

/* A knob's values from its list: integers as sw_list_parse takes them (in the table's
 * bounds), named values comma-separated (each checked and made canonical: "cuda" ->
 * "cuda:0"). Sorted: integers ascending; named values with the default first, then in
 * the table's order (device: cpu, cuda:0, cuda:1...; sampling: greedy, then as given).
 * Duplicates dropped. 0 ok, -1 with a message in err. */
int sw_vals_parse(int k, const char *spec, sw_vals *out, char *err, size_t errlen);
void sw_vals_free(sw_vals *v);
void sw_space_free(sw_space *s);
/* Drops value i of knob k from the space (an unavailable device). */
void sw_vals_remove(sw_vals *v, size_t i);

/* The setting a vector of value indices picks (knobs the space does not search stay "");
 * normalized (see sw_setting_normalize). */
sw_setting sw_space_pick(const sw_space *sp, const int idx[SW_NKNOBS]);
/* The recurrent backend ignores the chunk size: it is set to 1, so settings that differ
 * only there are one setting. */
void sw_setting_normalize(sw_setting *s);
int sw_setting_eq(const sw_setting *a, const sw_setting *b);
/* Sets knob k of s from text (made canonical); 0 ok, -1 with err. */
int sw_setting_set(sw_setting *s, int k, const char *text, char *err, size_t errlen);

/* What a knob value means for the engine's defaults: the default setting (every knob at
 * the tools' default: xl_runopts_default with the model's chunk size, greedy sampling). */
void sw_setting_defaults(sw_setting *s, int chunk_size);

/* The settings key, e.g. "b=chunkwise__ck=64__h=2__w=2__ctx=512" (knobs in table order,
 * each that the setting searches, by its abbreviation): what a trial measures, independent
 * of when. The slug adds the trial number: key + "__i=7". */
void sw_key(const sw_setting *s, long context, char *buf, size_t n);
void sw_slug(const char *key, long trial, char *buf, size_t n);
#define SW_KEY_MAX 256
/* The key of what a measurement can depend on: only the knobs whose table row says they
 * affect `what` (XS_AFFECTS_PREFILL, _DECODE or _OUTPUT), and the context. Two trials
 * with one measurement key have the same expected measurement. */
void sw_measure_key(const sw_setting *s, long context, unsigned what, char *buf, size_t n);
/* Whether some knob that differs between a and b can affect `what` (XS_AFFECTS_*). */
int sw_can_differ(const sw_setting *a, const sw_setting *b, unsigned what);

/* ---- seeded PRNG (splitmix64): the same seed gives the same sequence everywhere ---- */
typedef struct { uint64_t s; } sw_rng;
void sw_rng_seed(sw_rng *r, uint64_t seed);
uint64_t sw_rng_next(sw_rng *r);
/* Uniform in [0, n) (n >= 1), without modulo bias. */
size_t sw_rng_below(sw_rng *r, size_t n);
/* Uniform in [0, 1). */
double sw_rng_unit(sw_rng *r);
/* Shuffles v[0..n) (Fisher-Yates). */
void sw_rng_shuffle(sw_rng *r, size_t *v, size_t n);

/* ---- non-adaptive plans ---- */
/* Every setting of the space in grid order (the last knob varies fastest), duplicates
 * (after normalization) dropped. Returns the count; *out is malloc'd. */
size_t sw_plan_grid(const sw_space *sp, sw_setting **out);
/* Up to `trials` distinct settings drawn uniformly (each knob independently) with the
 * seed; fewer when the space is smaller. */
size_t sw_plan_random(const sw_space *sp, uint64_t seed, size_t trials, sw_setting **out);
/* The number of distinct settings in the space (after normalization). */
size_t sw_space_size(const sw_space *sp);

#endif
