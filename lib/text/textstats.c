/* textstats: word splitting and distinct-n. See textstats.h.
 * N-grams are counted exactly with an open-addressing hash set over word spans
 * (hash to find candidates, byte comparison to decide), so collisions never merge
 * two different n-grams. */
#include "text/textstats.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* 1 if the code point has the Unicode White_Space property. */
static int ts_is_space(int32_t cp) {
  if (cp >= 0x09 && cp <= 0x0D) return 1;
  switch (cp) {
  case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
  case 0x202F: case 0x205F: case 0x3000:
    return 1;
  }
  return cp >= 0x2000 && cp <= 0x200A;
}

typedef struct { const char *p; size_t n; } span;

/* Splits text into word spans (pointing into text). Returns the count; with out, *out
 * gets the spans, malloc'd (caller frees), NULL when there are no words. */
static size_t split_words(const char *text, span **out) {
  size_t cap = 0, nw = 0;
  span *w = NULL;
  const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text, *start = NULL;
  for (;;) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t k = 0;
    if (*s && (k = utf8proc_iterate(s, -1, &cp)) <= 0) { k = 1; cp = -1; }  /* invalid byte: a word character */
    int gap = !*s || ts_is_space(cp);   /* the end of the text ends a word too */
    if (gap && start) {
      if (out && nw == cap) { cap = cap ? 2 * cap : 64; w = xl_realloc(w, cap * sizeof *w); }
      if (out) w[nw] = (span){(const char *)start, (size_t)(s - start)};
      nw++;
      start = NULL;
    } else if (!gap && !start) {
      start = s;
    }
    if (!*s) break;
    s += k;
  }
  if (out) *out = w;
  return nw;
}

size_t ts_count_words(const char *text) { return split_words(text, NULL); }

static uint64_t gram_hash(const span *w, int n) {
  uint64_t h = XL_FNV_INIT;
  for (int i = 0; i < n; i++) {
    h = xl_fnv1a(h, w[i].p, w[i].n);
    h = xl_fnv1a(h, "\0", 1);  /* separator: "ab c" and "a bc" must differ */
  }
  return h;
}

static int gram_eq(const span *a, const span *b, int n) {
  for (int i = 0; i < n; i++)
    if (a[i].n != b[i].n || memcmp(a[i].p, b[i].p, a[i].n)) return 0;
  return 1;
}

int ts_ngram_counts(const char *text, int n, size_t *unique, size_t *total) {
  *unique = *total = 0;
  if (n < 1) return -1;
  span *w;
  size_t nw = split_words(text, &w);
  if (nw < (size_t)n) { free(w); return 0; }
  size_t ng = nw - (size_t)n + 1;
  size_t cap = 16;
  while (cap < 2 * ng) cap *= 2;
  size_t *slot = xl_calloc(cap, sizeof *slot);  /* 0 = empty, else start index + 1 */
  size_t uniq = 0;
  for (size_t i = 0; i < ng; i++) {
    size_t h = (size_t)gram_hash(w + i, n) & (cap - 1);
    for (;;) {
      if (!slot[h]) { slot[h] = i + 1; uniq++; break; }
      if (gram_eq(w + slot[h] - 1, w + i, n)) break;
      h = (h + 1) & (cap - 1);
    }
  }
  free(slot);
  free(w);
  *unique = uniq;
  *total = ng;
  return 0;
}

double ts_distinct_n(const char *text, int n) {
  size_t u, t;
  if (ts_ngram_counts(text, n, &u, &t) || t == 0) return NAN;
  return (double)u / (double)t;
}
