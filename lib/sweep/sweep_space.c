/* sweep_space: knobs and their value lists, settings keys and slugs, the PRNG and the
 * grid/random plans of xl-sweep (see sweep_space.h). */
#include "sweep/sweep_space.h"
#include "base/util.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SW_LIST_MAX 4096

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* Parses a whole integer token s[0..n) into *out. */
static int parse_num(const char *s, size_t n, long *out) {
  char buf[32];
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  return xl_parse_long(buf, LONG_MIN / 4, LONG_MAX / 4, out);
}

static int push(sw_list *l, size_t *cap, long v, long lo, long hi, char *err, size_t errlen) {
  if (v < lo || v > hi) {
    snprintf(err, errlen, "value %ld out of range [%ld, %ld]", v, lo, hi);
    return -1;
  }
  if (l->n >= SW_LIST_MAX) {
    snprintf(err, errlen, "more than %d values", SW_LIST_MAX);
    return -1;
  }
  if (l->n == *cap) {
    *cap = *cap ? *cap * 2 : 8;
    l->v = xl_realloc(l->v, *cap * sizeof *l->v);
  }
  l->v[l->n++] = v;
  return 0;
}

/* One item: "a", "a-b", "a-b+s", "a-b*m". */
static int parse_item(const char *it, size_t n, long lo, long hi, sw_list *l, size_t *cap,
                      char *err, size_t errlen) {
  /* The first character may be a sign, so look for '-' after it. */
  const char *dash = n > 1 ? memchr(it + 1, '-', n - 1) : NULL;
  long a, b, step = 1;
  int mult = 0;
  if (!dash) {
    if (parse_num(it, n, &a)) goto bad;
    return push(l, cap, a, lo, hi, err, errlen);
  }
  if (parse_num(it, (size_t)(dash - it), &a)) goto bad;
  const char *rest = dash + 1, *end = it + n;
  const char *op = NULL;
  for (const char *p = rest + 1; p < end; p++)
    if (*p == '+' || *p == '*') { op = p; break; }
  if (parse_num(rest, (size_t)((op ? op : end) - rest), &b)) goto bad;
  if (op) {
    if (parse_num(op + 1, (size_t)(end - op - 1), &step)) goto bad;
    mult = *op == '*';
    if ((mult && step < 2) || (!mult && step < 1)) {
      snprintf(err, errlen, "'%.*s': the step must be %s", (int)n, it, mult ? ">= 2" : ">= 1");
      return -1;
    }
  }
  if (b < a) {
    snprintf(err, errlen, "'%.*s': the range ends before it starts", (int)n, it);
    return -1;
  }
  if (mult && a <= 0) {
    snprintf(err, errlen, "'%.*s': a multiplicative range must start above 0", (int)n, it);
    return -1;
  }
  for (long v = a;; v = mult ? v * step : v + step) {
    if (push(l, cap, v, lo, hi, err, errlen)) return -1;
    if (mult ? v > b / step : v > b - step) break;   /* the next value passes b (and may not fit a long) */
  }
  return 0;
bad:
  snprintf(err, errlen, "'%.*s' is not a number or a range like 1-4, 16-256*2, 8-64+8", (int)n, it);
  return -1;
}

int sw_list_parse(const char *spec, long lo, long hi, sw_list *out, char *err, size_t errlen) {
  sw_list l = {0};
  size_t cap = 0;
  const char *p = spec ? spec : "";
  for (;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (!n) {
      snprintf(err, errlen, "'%s': empty item in the list", spec ? spec : "");
      free(l.v);
      return -1;
    }
    if (parse_item(p, n, lo, hi, &l, &cap, err, errlen)) {
      free(l.v);
      return -1;
    }
    if (!c) break;
    p = c + 1;
  }
  qsort(l.v, l.n, sizeof *l.v, cmp_long);
  size_t k = 0;
  for (size_t i = 0; i < l.n; i++)
    if (!k || l.v[k - 1] != l.v[i]) l.v[k++] = l.v[i];
  l.n = k;
  *out = l;
  return 0;
}

void sw_list_free(sw_list *l) {
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* ---- knobs ---- */
const xl_setting *sw_knob(int k) { return k == SW_K_SAMPLING ? &xl_sampling_setting : &xl_settings[k]; }

int sw_knob_find(const char *key) {
  for (int k = 0; k < SW_NKNOBS; k++)
    if (!strcmp(sw_knob(k)->key, key)) return k;
  return -1;
}

int sw_knob_is_int(int k) { return k < XS_COUNT && xl_settings[k].hi > 0; }

/* text as knob k's canonical value. */
static int canon(int k, const char *text, char *buf, size_t n, char *err, size_t errlen) {
  if (k == SW_K_SAMPLING) {
    xl_sampling smp = {0};
    if (xl_sampling_parse(text, &smp, err, errlen)) return -1;
    xl_sampling_format(&smp, buf, n);
    return 0;
  }
  return xl_setting_canon((xl_setting_id)k, text, buf, n, err, errlen);
}

/* Where a named value sorts: the default first, then the table's order. */
static long named_rank(int k, const char *v, long given) {
  if (k == XS_DEVICE) {
    xl_device d;
    int i = 0;
    xl_device_parse(v, &d, &i);
    return d == XL_DEVICE_CPU ? 0 : 1 + i;
  }
  if (k == XS_BACKEND) return !strcmp(v, "chunkwise") ? 0 : 1;
  if (k == XS_MATMUL) return !strcmp(v, "fp32") ? 0 : 1;
  if (k == XS_GEMM) return !strcmp(v, "openblas") ? 0 : 1;
  return !strcmp(v, "greedy") ? 0 : 1 + given;   /* sampling: greedy, then as given */
}

void sw_vals_free(sw_vals *v) {
  for (size_t i = 0; i < v->n; i++) free(v->v[i]);
  free(v->v);
  v->v = NULL;
  v->n = 0;
}

void sw_vals_remove(sw_vals *v, size_t i) {
  if (i >= v->n) return;
  free(v->v[i]);
  memmove(v->v + i, v->v + i + 1, (v->n - i - 1) * sizeof *v->v);
  v->n--;
}

int sw_vals_parse(int k, const char *spec, sw_vals *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  char buf[SW_VAL_MAX];
  if (sw_knob_is_int(k)) {
    sw_list l;
    if (sw_list_parse(spec, xl_settings[k].lo, xl_settings[k].hi, &l, err, errlen)) return -1;
    out->v = xl_malloc((l.n ? l.n : 1) * sizeof *out->v);
    for (size_t i = 0; i < l.n; i++) {
      snprintf(buf, sizeof buf, "%ld", l.v[i]);
      out->v[out->n++] = xl_strdup(buf);
    }
    sw_list_free(&l);
    return 0;
  }
  const char *p = spec ? spec : "";
  long *rank = NULL;
  size_t cap = 0;
  for (long given = 0;; given++) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    char item[64];
    if (!n || n >= sizeof item) {
      snprintf(err, errlen, "'%s': empty or overlong item in the list", spec ? spec : "");
      goto fail;
    }
    memcpy(item, p, n);
    item[n] = 0;
    char e2[256];
    if (canon(k, item, buf, sizeof buf, e2, sizeof e2)) {
      const char *colon = strstr(e2, ": ");
      snprintf(err, errlen, "%s", colon && k != SW_K_SAMPLING ? colon + 2 : e2);
      goto fail;
    }
    int dup = 0;
    for (size_t i = 0; i < out->n; i++) dup |= !strcmp(out->v[i], buf);
    if (!dup) {
      if (out->n == cap) {
        cap = cap ? 2 * cap : 4;
        out->v = xl_realloc(out->v, cap * sizeof *out->v);
        rank = xl_realloc(rank, cap * sizeof *rank);
      }
      rank[out->n] = named_rank(k, buf, given);
      out->v[out->n++] = xl_strdup(buf);
    }
    if (!c) break;
    p = c + 1;
  }
  for (size_t i = 1; i < out->n; i++)   /* insertion sort by rank: a handful of values */
    for (size_t j = i; j > 0 && rank[j] < rank[j - 1]; j--) {
      long r = rank[j]; rank[j] = rank[j - 1]; rank[j - 1] = r;
      char *t = out->v[j]; out->v[j] = out->v[j - 1]; out->v[j - 1] = t;
    }
  free(rank);
  return 0;
fail:
  free(rank);
  sw_vals_free(out);
  return -1;
}

void sw_space_free(sw_space *s) {
  for (int k = 0; k < SW_NKNOBS; k++) sw_vals_free(&s->knob[k]);
}

void sw_setting_normalize(sw_setting *s) {
  if (!strcmp(s->v[XS_BACKEND], "recurrent") && s->v[XS_CHUNK_SIZE][0]) snprintf(s->v[XS_CHUNK_SIZE], SW_VAL_MAX, "1");
}

int sw_setting_eq(const sw_setting *a, const sw_setting *b) {
  for (int k = 0; k < SW_NKNOBS; k++)
    if (strcmp(a->v[k], b->v[k])) return 0;
  return 1;
}

int sw_setting_set(sw_setting *s, int k, const char *text, char *err, size_t errlen) {
  char buf[SW_VAL_MAX];
  if (canon(k, text, buf, sizeof buf, err, errlen)) return -1;
  snprintf(s->v[k], SW_VAL_MAX, "%s", buf);
  return 0;
}

void sw_setting_defaults(sw_setting *s, int chunk_size) {
  xl_runopts o;
  xl_runopts_default(&o, NULL);
  if (chunk_size > 0) o.chunk_size = chunk_size;
  memset(s, 0, sizeof *s);
  for (int k = 0; k < XS_COUNT; k++) xl_setting_text((xl_setting_id)k, &o, s->v[k], SW_VAL_MAX);
  snprintf(s->v[SW_K_SAMPLING], SW_VAL_MAX, "greedy");
}

sw_setting sw_space_pick(const sw_space *sp, const int idx[SW_NKNOBS]) {
  sw_setting s;
  memset(&s, 0, sizeof s);
  for (int k = 0; k < SW_NKNOBS; k++)
    if (sp->knob[k].n) snprintf(s.v[k], SW_VAL_MAX, "%s", sp->knob[k].v[idx[k]]);
  sw_setting_normalize(&s);
  return s;
}

/* The key over the knobs in mask (XS_AFFECTS_*; 0: every knob). */
static void key_of(const sw_setting *s, long context, unsigned mask, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < SW_NKNOBS; i++) {
    if (!s->v[i][0] || (mask && !(sw_knob(i)->affects & mask))) continue;
    int w = snprintf(buf + k, k < n ? n - k : 0, "%s=%s__", sw_knob(i)->abbrev, s->v[i]);
    if (w > 0) k += (size_t)w;
  }
  if (k < n) snprintf(buf + k, n - k, "ctx=%ld", context);
}

void sw_key(const sw_setting *s, long context, char *buf, size_t n) { key_of(s, context, 0, buf, n); }

void sw_measure_key(const sw_setting *s, long context, unsigned what, char *buf, size_t n) {
  key_of(s, context, what, buf, n);
}

int sw_can_differ(const sw_setting *a, const sw_setting *b, unsigned what) {
  for (int k = 0; k < SW_NKNOBS; k++)
    if (strcmp(a->v[k], b->v[k]) && (sw_knob(k)->affects & what)) return 1;
  return 0;
}

void sw_slug(const char *key, long trial, char *buf, size_t n) {
  snprintf(buf, n, "%s__i=%ld", key, trial);
}

/* ---- PRNG: splitmix64 (Steele, Lea, Flood 2014), tiny and well mixed ---- */
void sw_rng_seed(sw_rng *r, uint64_t seed) { r->s = seed; }

uint64_t sw_rng_next(sw_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

size_t sw_rng_below(sw_rng *r, size_t n) {
  if (n <= 1) return 0;
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;   /* reject the biased tail */
  uint64_t x;
  do x = sw_rng_next(r);
  while (x >= lim);
  return (size_t)(x % n);
}

double sw_rng_unit(sw_rng *r) { return (double)(sw_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

void sw_rng_shuffle(sw_rng *r, size_t *v, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = sw_rng_below(r, i), t = v[i - 1];
    v[i - 1] = v[j];
    v[j] = t;
  }
}

/* ---- plans ---- */
static int seen(const sw_setting *v, size_t n, const sw_setting *s) {
  for (size_t i = 0; i < n; i++)
    if (sw_setting_eq(&v[i], s)) return 1;
  return 0;
}

size_t sw_plan_grid(const sw_space *sp, sw_setting **out) {
  size_t total = 1;
  for (int k = 0; k < SW_NKNOBS; k++) total *= sp->knob[k].n ? sp->knob[k].n : 1;
  sw_setting *v = xl_malloc((total ? total : 1) * sizeof *v);
  size_t n = 0;
  int idx[SW_NKNOBS] = {0};
  for (size_t t = 0; t < total; t++) {
    sw_setting s = sw_space_pick(sp, idx);
    /* Only recurrent settings can collide (their chunk sizes collapse). */
    if (strcmp(s.v[XS_BACKEND], "recurrent") || !seen(v, n, &s)) v[n++] = s;
    for (int k = SW_NKNOBS - 1; k >= 0; k--) {   /* odometer: the last knob fastest */
      if (!sp->knob[k].n) continue;
      if (++idx[k] < (int)sp->knob[k].n) break;
      idx[k] = 0;
    }
  }
  *out = v;
  return n;
}

size_t sw_space_size(const sw_space *sp) {
  sw_setting *v;
  size_t n = sw_plan_grid(sp, &v);
  free(v);
  return n;
}

size_t sw_plan_random(const sw_space *sp, uint64_t seed, size_t trials, sw_setting **out) {
  size_t avail = sw_space_size(sp);
  if (trials > avail) trials = avail;
  sw_setting *v = xl_malloc((trials ? trials : 1) * sizeof *v);
  sw_rng r;
  sw_rng_seed(&r, seed);
  size_t n = 0;
  while (n < trials) {
    int idx[SW_NKNOBS] = {0};
    for (int k = 0; k < SW_NKNOBS; k++)
      if (sp->knob[k].n) idx[k] = (int)sw_rng_below(&r, sp->knob[k].n);
    sw_setting s = sw_space_pick(sp, idx);
    /* Rejection keeps the draws distinct; the space holds at least `trials` settings. */
    if (!seen(v, n, &s)) v[n++] = s;
  }
  *out = v;
  return n;
}
