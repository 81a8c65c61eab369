/* tok_tables: the tokenizer's shared tables (character classes, the GPT-2 byte <-> char
 * mapping), the UTF-8 checks and the string -> id map. See tok_internal.h. */
#include "text/tok_internal.h"
#include <pthread.h>
#include <stdlib.h>

/* ---------- UTF-8 ---------- */

int tk_utf8_next(const uint8_t *s, size_t n, int *cut) {
  *cut = 0;
  uint8_t b = s[0];
  if (b < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) need = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;        /* overlong */
    else if (b == 0xED) hi = 0x9F;   /* surrogates */
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;        /* overlong */
    else if (b == 0xF4) hi = 0x8F;   /* > U+10FFFF */
  } else return -1;                  /* 80..C1, F5..FF */
  for (int k = 1; k < need; k++) {
    if ((size_t)k >= n) { *cut = 1; return -k; }
    uint8_t c = s[k];
    if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return -k;
  }
  return need;
}

size_t tk_utf8_check(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) { i++; continue; }
    int cut, r = tk_utf8_next(s + i, n - i, &cut);
    if (r < 0) return i;
    i += (size_t)r;
  }
  return SIZE_MAX;
}

size_t tk_utf8_enc(uint32_t c, char *o) {
  if (c < 0x80) { o[0] = (char)c; return 1; }
  if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

/* ---------- tables ---------- */

uint8_t tk_ascii_cls[128];
uint32_t tk_byte_to_cp[256];
int16_t tk_cp_to_byte[324];

static void init_ascii_cls(void) {
  for (int c = 0; c < 128; c++) {
    if (is_ws((uint32_t)c)) tk_ascii_cls[c] = C_WS;
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) tk_ascii_cls[c] = C_L;
    else if (c >= '0' && c <= '9') tk_ascii_cls[c] = C_N;
    else tk_ascii_cls[c] = C_O;
  }
}

static void init_bytes(void) {
  int extra = 0;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    tk_byte_to_cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
  }
  for (int c = 0; c < 324; c++) tk_cp_to_byte[c] = -1;
  for (int b = 0; b < 256; b++) tk_cp_to_byte[tk_byte_to_cp[b]] = (int16_t)b;
}

static void init_tables_once(void) {
  init_ascii_cls();
  init_bytes();
}

void tk_init_tables(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_tables_once);
}

/* ---------- string -> id map ---------- */

long tk_strmap_find(const strmap *m, const char *k, size_t len, uint64_t h) {
  if (!m->nslots) return -1;
  size_t mask = m->nslots - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t e = m->slots[i];
    if (!e) return -1;
    e--;
    if (m->hash[e] == h && m->len[e] == len && memcmp(m->arena + m->off[e], k, len) == 0)
      return (long)e;
  }
}

static void strmap_rehash(strmap *m, size_t nslots) {
  free(m->slots);
  m->slots = xl_calloc(nslots, sizeof *m->slots);
  m->nslots = nslots;
  for (size_t e = 0; e < m->n; e++) {
    size_t i = m->hash[e] & (nslots - 1);
    while (m->slots[i]) i = (i + 1) & (nslots - 1);
    m->slots[i] = (uint32_t)e + 1;
  }
}

/* Inserts or overwrites; returns the entry index. */
size_t tk_strmap_put(strmap *m, const char *k, size_t len, int32_t val) {
  uint64_t h = hash_bytes(k, len);
  long e = tk_strmap_find(m, k, len, h);
  if (e >= 0) { m->val[e] = val; return (size_t)e; }
  if ((m->n + 1) * 2 > m->nslots) strmap_rehash(m, m->nslots ? m->nslots * 2 : 1024);
  size_t cap = m->cap;
  grow((void **)&m->off, &cap, m->n + 1, sizeof *m->off);
  cap = m->cap;
  grow((void **)&m->len, &cap, m->n + 1, sizeof *m->len);
  cap = m->cap;
  grow((void **)&m->val, &cap, m->n + 1, sizeof *m->val);
  grow((void **)&m->hash, &m->cap, m->n + 1, sizeof *m->hash);
  grow((void **)&m->arena, &m->acap, m->alen + len + 1, 1);
  memcpy(m->arena + m->alen, k, len);
  m->arena[m->alen + len] = 0;
  size_t n = m->n++;
  m->off[n] = (uint32_t)m->alen;
  m->len[n] = (uint32_t)len;
  m->val[n] = val;
  m->hash[n] = h;
  m->alen += len + 1;
  size_t mask = m->nslots - 1, i = h & mask;
  while (m->slots[i]) i = (i + 1) & mask;
  m->slots[i] = (uint32_t)n + 1;
  return n;
}

int32_t tk_strmap_get(const strmap *m, const char *k, size_t len) {
  long e = tk_strmap_find(m, k, len, hash_bytes(k, len));
  return e < 0 ? -1 : m->val[e];
}

void tk_strmap_free(strmap *m) {
  free(m->arena); free(m->off); free(m->len); free(m->val); free(m->hash); free(m->slots);
}
