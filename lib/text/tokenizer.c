/* tokenizer: Hugging Face tokenizer.json for byte-level BPE (GPT-2 / GPT-NeoX), encoding
 * and decoding exactly as the Rust `tokenizers` library does: added tokens are cut out
 * of the raw text first (leftmost-longest, lstrip/rstrip/single_word), the rest is
 * normalized (utf8proc), split by a hand-written equivalent of the GPT-2 regex
 * `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
 * (\s = Unicode White_Space, \p{L}/\p{N} = general categories), and each piece is
 * merged by BPE rank over its bytes (every byte stands for one GPT-2 "byte char").
 * Not for: other model families (refused at load), BOS/EOS insertion (caller's job).
 *
 * Data structures: token strings live in one arena indexed by an open-addressing hash
 * map; merges are a hash map keyed by the id pair; BPE runs on a doubly linked list
 * of symbols with a binary heap of (rank, position) so a 1 MB word stays O(n log n);
 * a bounded word cache with preallocated arenas makes repeated words cheap. All
 * scratch space lives in the tokenizer and only grows, so steady-state encoding does
 * not allocate (except growing the caller's id array). */
#include "text/tokenizer.h"
#include "base/util.h"

#include <cJSON.h>
#include <utf8proc.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------- small helpers ---------- */

/* Grows *p (elements of size elem) to hold at least need elements. */
static void grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  *p = xl_realloc(*p, c * elem);
  *cap = c;
}

static uint64_t hash_bytes(const void *p, size_t n) {
  const uint8_t *s = p;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 32;
  return h;
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* ---------- UTF-8 ---------- */

/* Looks at the sequence starting at s (n >= 1 bytes). Returns its length if it is one
 * valid character; otherwise -k, k >= 1 the length of its maximal invalid subpart (the
 * Unicode "substitution of maximal subparts" rule that Rust's from_utf8_lossy
 * follows). *cut is set when the invalid subpart is a valid prefix that the end of the
 * data cut short. */
static int utf8_next(const uint8_t *s, size_t n, int *cut) {
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

/* Offset of the first invalid byte, or SIZE_MAX if s is valid UTF-8. */
static size_t utf8_check(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) { i++; continue; }
    int cut, r = utf8_next(s + i, n - i, &cut);
    if (r < 0) return i;
    i += (size_t)r;
  }
  return SIZE_MAX;
}

/* Decodes one character of known-valid UTF-8. */
static inline uint32_t utf8_dec(const uint8_t *s, size_t *len) {
  uint8_t b = s[0];
  if (b < 0x80) { *len = 1; return b; }
  if (b < 0xE0) { *len = 2; return ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F); }
  if (b < 0xF0) {
    *len = 3;
    return ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *len = 4;
  return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
         ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* Start of the character that ends at s[n-1] (valid UTF-8, n >= 1). */
static size_t utf8_prev(const uint8_t *s, size_t n) {
  size_t i = n - 1;
  while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
  return i;
}

static size_t utf8_enc(uint32_t c, char *o) {
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

/* ---------- character classes of the GPT-2 split regex ---------- */

enum { C_WS, C_L, C_N, C_O };

/* Unicode White_Space (what \s means in the reference regex engine and Rust's
 * char::is_whitespace). */
static inline int is_ws(uint32_t c) {
  if (c < 0x80) return (c >= 9 && c <= 13) || c == ' ';
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static uint8_t ascii_cls[128];

static void init_ascii_cls(void) {
  for (int c = 0; c < 128; c++) {
    if (is_ws((uint32_t)c)) ascii_cls[c] = C_WS;
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) ascii_cls[c] = C_L;
    else if (c >= '0' && c <= '9') ascii_cls[c] = C_N;
    else ascii_cls[c] = C_O;
  }
}

static inline int cp_class(uint32_t c) {
  if (c < 128) return ascii_cls[c];
  if (is_ws(c)) return C_WS;
  switch (utf8proc_category((utf8proc_int32_t)c)) {
  case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    return C_L;
  case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
    return C_N;
  default:
    return C_O;
  }
}

/* Class of the character at s (valid UTF-8); *len gets its length. */
static inline int class_at(const uint8_t *s, size_t *len) {
  if (s[0] < 0x80) { *len = 1; return ascii_cls[s[0]]; }
  return cp_class(utf8_dec(s, len));
}

/* Rust's char::is_alphanumeric || '_' (used by single_word); approximated by the
 * L and N general categories. */
static int is_word_char(uint32_t c) {
  if (c == '_') return 1;
  int k = cp_class(c);
  return k == C_L || k == C_N;
}

/* ---------- GPT-2 byte <-> char mapping ---------- */

static uint32_t byte_to_cp[256];
static int16_t cp_to_byte[324];   /* every mapped char is below U+0144 */

static void init_bytes(void) {
  int extra = 0;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    byte_to_cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + extra++);
  }
  for (int c = 0; c < 324; c++) cp_to_byte[c] = -1;
  for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = (int16_t)b;
}

static void init_tables_once(void) {
  init_ascii_cls();
  init_bytes();
}

static void init_tables(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_tables_once);
}

/* ---------- string -> id map ---------- */

typedef struct {
  char *arena;          /* NUL-terminated keys back to back */
  size_t alen, acap;
  uint32_t *off, *len;  /* [n] key offset/length in arena */
  int32_t *val;         /* [n] */
  uint64_t *hash;       /* [n] */
  size_t n, cap;
  uint32_t *slots;      /* entry index + 1, 0 = empty */
  size_t nslots;        /* power of two */
} strmap;

static long strmap_find(const strmap *m, const char *k, size_t len, uint64_t h) {
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
static size_t strmap_put(strmap *m, const char *k, size_t len, int32_t val) {
  uint64_t h = hash_bytes(k, len);
  long e = strmap_find(m, k, len, h);
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

static int32_t strmap_get(const strmap *m, const char *k, size_t len) {
  long e = strmap_find(m, k, len, hash_bytes(k, len));
  return e < 0 ? -1 : m->val[e];
}

static void strmap_free(strmap *m) {
  free(m->arena); free(m->off); free(m->len); free(m->val); free(m->hash); free(m->slots);
}

/* ---------- (id, id) -> (rank, merged id) map ---------- */

typedef struct {
  uint64_t *keys;     /* UINT64_MAX = empty */
  uint32_t *rank;
  int32_t *merged;
  size_t mask;
} pairmap;

static inline uint64_t pair_key(int32_t a, int32_t b) {
  return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static void pairmap_init(pairmap *p, size_t n) {
  size_t s = 16;
  while (s < 2 * n) s *= 2;
  p->keys = xl_malloc(s * sizeof *p->keys);
  memset(p->keys, 0xFF, s * sizeof *p->keys);
  p->rank = xl_malloc(s * sizeof *p->rank);
  p->merged = xl_malloc(s * sizeof *p->merged);
  p->mask = s - 1;
}

/* A later duplicate overwrites, as the reference's HashMap collect does. */
static void pairmap_put(pairmap *p, uint64_t k, uint32_t rank, int32_t merged) {
  size_t i = mix64(k) & p->mask;
  while (p->keys[i] != UINT64_MAX && p->keys[i] != k) i = (i + 1) & p->mask;
  p->keys[i] = k;
  p->rank[i] = rank;
  p->merged[i] = merged;
}

static inline long pairmap_find(const pairmap *p, uint64_t k) {
  size_t i = mix64(k) & p->mask;
  for (;;) {
    uint64_t v = p->keys[i];
    if (v == k) return (long)i;
    if (v == UINT64_MAX) return -1;
    i = (i + 1) & p->mask;
  }
}

/* ---------- the tokenizer ---------- */

typedef struct {
  char *content;        /* as in tokenizer.json (owned) */
  char *match;          /* what is searched for: content, normalized if "normalized" (owned) */
  size_t mlen;
  int32_t id;
  uint8_t special, lstrip, rstrip, single_word, normalized;
} added_tok;

/* Added tokens searched in one kind of text (raw or normalized), indexed by first byte
 * and sorted longest first so the first hit at a position is the longest. */
typedef struct {
  int *idx;             /* indices into added[] */
  uint32_t start[257];  /* idx[start[b] .. start[b+1]) begin with byte b */
  uint8_t has[256];
  int n;
} matcher;

enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD };
#define MAX_NORM 8

/* Word cache: fixed arenas allocated at load; cleared when full. */
#define CACHE_SLOTS (1u << 15)
#define CACHE_MAX_ENTRIES (CACHE_SLOTS / 2)
#define CACHE_MAX_WORD 128
#define CACHE_KEY_BYTES (CACHE_MAX_ENTRIES * 16u)
#define CACHE_IDS (CACHE_MAX_ENTRIES * 6u)

typedef struct {
  uint64_t hash;
  uint32_t koff, ioff;
  uint16_t klen, nids;
} cache_entry;

typedef struct {
  uint32_t *slots;          /* [CACHE_SLOTS] entry + 1 */
  cache_entry *e;           /* [CACHE_MAX_ENTRIES] */
  uint8_t *keys;            /* [CACHE_KEY_BYTES] */
  int32_t *ids;             /* [CACHE_IDS] */
  uint32_t n, klen, nids;
} word_cache;

typedef struct {
  int32_t **ids;
  size_t *n, *cap;
} out_ids;

struct tok_tokenizer {
  int ntok;                 /* one past the largest id */
  strmap tokens;            /* token string -> id (added tokens override the vocab) */
  uint32_t *content_off;    /* [ntok] offset of the id's string in tokens.arena; UINT32_MAX none */
  char *pieces;             /* decoded bytes of all ids back to back */
  uint32_t *piece_off, *piece_len;  /* [ntok] */
  uint8_t *special;         /* [ntok] */
  uint8_t *known;           /* [ntok] id has a token string */

  pairmap merges;
  int32_t byte_id[256];     /* id of the one-byte token of each byte, -1 if absent */
  int32_t byte_fb_id[256];  /* <0xXX> byte-fallback token of each byte, -1 if absent */
  int32_t unk_id;
  int fuse_unk, byte_fallback, ignore_merges;

  added_tok *added;
  int nadded;
  matcher raw_m, norm_m;

  int norm[MAX_NORM], nnorm;
  int add_prefix_space, use_regex;
  int bytelevel_decoder;    /* 0: no decoder, tokens are joined with spaces */

  int bos_id, eos_id, adds_bos;

  /* scratch, grown as needed and reused */
  int32_t *ubuf; size_t ucap;          /* utf8proc code points */
  char *nbuf; size_t ncap;             /* normalized text */
  char *pbuf; size_t pcap;             /* text with the prefix space */
  char *gbuf; size_t gcap;             /* GPT-2 chars of a word (ignore_merges) */
  int32_t *sym; int32_t *prev, *next;  /* BPE symbols of the current word */
  size_t symcap;
  uint64_t *heap; size_t heapcap;      /* (rank << 32 | position) min-heap */
  word_cache cache;
};

static void out_reserve(out_ids *o, size_t more) {
  if (*o->n + more <= *o->cap) return;
  size_t c = *o->cap ? *o->cap * 2 : 256;
  while (c < *o->n + more) c *= 2;
  *o->ids = xl_realloc(*o->ids, c * sizeof **o->ids);
  *o->cap = c;
}

static inline void out_push(out_ids *o, int32_t id) {
  if (*o->n == *o->cap) out_reserve(o, 1);
  (*o->ids)[(*o->n)++] = id;
}

/* ---------- normalization ---------- */

static int norm_options(int form) {
  switch (form) {
  case NORM_NFC: return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  case NORM_NFD: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
  case NORM_NFKC: return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  default: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  }
}

/* Whether a form can change s: ASCII never changes; under NFC neither does text whose
 * characters are all below U+0300 (no combining marks, no composition exclusions,
 * and precomposed Latin letters recompose to themselves). U+0300 starts with 0xCC. */
static int may_change(int form, const uint8_t *s, size_t n) {
  uint8_t lim = form == NORM_NFC ? 0xCC : 0x80;
  for (size_t i = 0; i < n; i++)
    if (s[i] >= lim) return 1;
  return 0;
}

/* Applies the normalizer; returns s itself or t->nbuf. */
static const char *normalize(tok_tokenizer *t, const char *s, size_t n, size_t *on) {
  for (int k = 0; k < t->nnorm; k++) {
    if (!may_change(t->norm[k], (const uint8_t *)s, n)) continue;
    utf8proc_option_t opt = (utf8proc_option_t)norm_options(t->norm[k]);
    utf8proc_ssize_t r;
    for (;;) {
      r = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, t->ubuf,
                             (utf8proc_ssize_t)t->ucap, opt);
      if (r < 0) xl_die("tokenizer: utf8proc: %s", utf8proc_errmsg(r)); /* input was validated */
      if ((size_t)r <= t->ucap) break;
      grow((void **)&t->ubuf, &t->ucap, (size_t)r, sizeof *t->ubuf);
    }
    if (!t->ubuf) continue;   /* empty input */
    utf8proc_ssize_t b = utf8proc_reencode(t->ubuf, r, opt);
    if (b < 0) xl_die("tokenizer: utf8proc: %s", utf8proc_errmsg(b));
    grow((void **)&t->nbuf, &t->ncap, (size_t)b + 1, 1);
    memcpy(t->nbuf, t->ubuf, (size_t)b);
    s = t->nbuf;
    n = (size_t)b;
  }
  *on = n;
  return s;
}

/* ---------- BPE ---------- */

static inline void heap_push(tok_tokenizer *t, size_t *hn, uint64_t v) {
  grow((void **)&t->heap, &t->heapcap, *hn + 1, sizeof *t->heap);
  uint64_t *h = t->heap;
  size_t i = (*hn)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p] <= v) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = v;
}

static inline uint64_t heap_pop(tok_tokenizer *t, size_t *hn) {
  uint64_t *h = t->heap;
  uint64_t top = h[0], v = h[--(*hn)];
  size_t n = *hn, i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && h[c + 1] < h[c]) c++;
    if (h[c] >= v) break;
    h[i] = h[c];
    i = c;
  }
  if (n) h[i] = v;
  return top;
}

/* Pushes the pair starting at symbol pos if it has a merge. */
static inline void push_pair(tok_tokenizer *t, size_t *hn, int32_t pos) {
  int32_t nx = t->next[pos];
  if (nx < 0) return;
  long e = pairmap_find(&t->merges, pair_key(t->sym[pos], t->sym[nx]));
  if (e >= 0) heap_push(t, hn, ((uint64_t)t->merges.rank[e] << 32) | (uint32_t)pos);
}

/* BPE of one pre-tokenized word (its raw bytes); appends the ids. */
static void bpe_word(tok_tokenizer *t, out_ids *o, const uint8_t *w, size_t m) {
  if (m == 1 && t->byte_id[w[0]] >= 0) { out_push(o, t->byte_id[w[0]]); return; }

  word_cache *c = &t->cache;
  uint64_t h = 0;
  if (m <= CACHE_MAX_WORD) {
    h = hash_bytes(w, m);
    for (size_t i = h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
      uint32_t e = c->slots[i];
      if (!e) break;
      cache_entry *ce = &c->e[e - 1];
      if (ce->hash == h && ce->klen == m && memcmp(c->keys + ce->koff, w, m) == 0) {
        out_reserve(o, ce->nids);
        if (ce->nids) memcpy(*o->ids + *o->n, c->ids + ce->ioff, ce->nids * sizeof(int32_t));
        *o->n += ce->nids;
        return;
      }
    }
  }

  size_t first_out = *o->n;
  if (t->ignore_merges) {   /* a word that is a whole token skips the merges */
    grow((void **)&t->gbuf, &t->gcap, 2 * m, 1);
    size_t gl = 0;
    for (size_t i = 0; i < m; i++) gl += utf8_enc(byte_to_cp[w[i]], t->gbuf + gl);
    int32_t id = strmap_get(&t->tokens, t->gbuf, gl);
    if (id >= 0) { out_push(o, id); goto cache_it; }
  }

  if (m > t->symcap) {   /* sym, prev and next share one capacity */
    size_t c2 = t->symcap ? t->symcap : 64;
    while (c2 < m) c2 *= 2;
    t->sym = xl_realloc(t->sym, c2 * sizeof *t->sym);
    t->prev = xl_realloc(t->prev, c2 * sizeof *t->prev);
    t->next = xl_realloc(t->next, c2 * sizeof *t->next);
    t->symcap = c2;
  }
  int32_t ns = 0;
  int prev_unk = 0;
  for (size_t i = 0; i < m; i++) {
    int32_t id = t->byte_id[w[i]];
    int unk = 0;
    if (id < 0) {
      if (t->byte_fallback && t->byte_fb_id[w[i]] >= 0) id = t->byte_fb_id[w[i]];
      else if (t->unk_id >= 0) {
        if (t->fuse_unk && prev_unk) continue;
        id = t->unk_id;
        unk = 1;
      } else continue;   /* the reference drops a character it cannot map */
    }
    prev_unk = unk;
    t->sym[ns] = id;
    t->prev[ns] = ns - 1;
    t->next[ns] = ns + 1;
    ns++;
  }
  if (ns == 0) goto cache_it;
  t->next[ns - 1] = -1;

  size_t hn = 0;
  for (int32_t i = 0; i + 1 < ns; i++) push_pair(t, &hn, i);
  while (hn) {
    uint64_t top = heap_pop(t, &hn);
    int32_t pos = (int32_t)(uint32_t)top;
    uint32_t rank = (uint32_t)(top >> 32);
    if (t->sym[pos] < 0) continue;          /* merged into its left neighbour */
    int32_t nx = t->next[pos];
    if (nx < 0) continue;
    long e = pairmap_find(&t->merges, pair_key(t->sym[pos], t->sym[nx]));
    if (e < 0 || t->merges.rank[e] != rank) continue;   /* stale entry */
    t->sym[pos] = t->merges.merged[e];
    t->sym[nx] = -1;
    t->next[pos] = t->next[nx];
    if (t->next[pos] >= 0) t->prev[t->next[pos]] = pos;
    if (t->prev[pos] >= 0) push_pair(t, &hn, t->prev[pos]);
    push_pair(t, &hn, pos);
  }
  for (int32_t i = 0; i >= 0; i = t->next[i]) out_push(o, t->sym[i]);

cache_it:
  if (m <= CACHE_MAX_WORD) {
    size_t nids = *o->n - first_out;
    if (nids > 0xFFFF) return;
    if (c->n >= CACHE_MAX_ENTRIES || c->klen + m > CACHE_KEY_BYTES || c->nids + nids > CACHE_IDS) {
      memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
      c->n = c->klen = c->nids = 0;
    }
    cache_entry *ce = &c->e[c->n];
    ce->hash = h;
    ce->koff = c->klen;
    ce->ioff = c->nids;
    ce->klen = (uint16_t)m;
    ce->nids = (uint16_t)nids;
    memcpy(c->keys + c->klen, w, m);
    if (nids) memcpy(c->ids + c->nids, *o->ids + first_out, nids * sizeof(int32_t));
    c->klen += (uint32_t)m;
    c->nids += (uint32_t)nids;
    size_t i = h & (CACHE_SLOTS - 1);
    while (c->slots[i]) i = (i + 1) & (CACHE_SLOTS - 1);
    c->slots[i] = ++c->n;
  }
}

/* ---------- pre-tokenization (ByteLevel) ---------- */

/* Splits s by the GPT-2 regex and runs BPE on every piece. */
static void split_words(tok_tokenizer *t, out_ids *o, const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j, cl;
    uint8_t c0 = s[i];
    if (c0 == '\'' && i + 1 < n) {   /* 's 't 're 've 'm 'll 'd, case-sensitive */
      uint8_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') { j = i + 2; goto emit; }
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        j = i + 3;
        goto emit;
      }
    }
    int k = class_at(s + i, &cl);
    size_t r = i;
    if (c0 == ' ' && i + 1 < n) {    /* " ?X+": a space joins a following non-space run */
      size_t cl2;
      int k2 = class_at(s + i + 1, &cl2);
      if (k2 != C_WS) { k = k2; r = i + 1; }
    }
    if (k != C_WS) {
      j = r;
      while (j < n && class_at(s + j, &cl) == k) j += cl;
    } else {
      /* \s+(?!\S) takes the run but its last character when a non-space follows;
       * a lone whitespace character before a non-space is matched by \s+ */
      size_t last = i, nch = 0;
      j = i;
      while (j < n && class_at(s + j, &cl) == C_WS) { last = j; j += cl; nch++; }
      if (j < n && nch >= 2) j = last;
    }
  emit:
    bpe_word(t, o, s + i, j - i);
    i = j;
  }
}

static void pretokenize(tok_tokenizer *t, out_ids *o, const char *s, size_t n) {
  if (n == 0) return;
  if (t->add_prefix_space && s[0] != ' ') {
    grow((void **)&t->pbuf, &t->pcap, n + 1, 1);
    t->pbuf[0] = ' ';
    memcpy(t->pbuf + 1, s, n);
    s = t->pbuf;
    n++;
  }
  if (t->use_regex) split_words(t, o, (const uint8_t *)s, n);
  else bpe_word(t, o, (const uint8_t *)s, n);
}

/* ---------- added tokens ---------- */

/* Finds the next added token at or after *pos (leftmost, longest at that position),
 * applying single_word / lstrip / rstrip like the reference. last_end is where the
 * previous match ended (lstrip never reaches before it). Returns 1 with the span to
 * cut out in [*ms, *me) and its id; *pos moves past the raw match. */
static int next_added(const tok_tokenizer *t, const matcher *m, const uint8_t *s, size_t n,
                      size_t *pos, size_t last_end, size_t *ms, size_t *me, int32_t *id) {
  size_t p = *pos;
  while (p < n) {
    if (!m->has[s[p]]) { p++; continue; }
    const added_tok *a = NULL;
    for (uint32_t k = m->start[s[p]]; k < m->start[s[p] + 1]; k++) {
      const added_tok *c = &t->added[m->idx[k]];
      if (c->mlen <= n - p && memcmp(s + p, c->match, c->mlen) == 0) { a = c; break; }
    }
    if (!a) { p++; continue; }
    size_t start = p, stop = p + a->mlen;
    p = stop;
    if (a->single_word) {
      size_t l;
      int before = start > 0 && is_word_char(utf8_dec(s + utf8_prev(s, start), &l));
      int after = stop < n && is_word_char(utf8_dec(s + stop, &l));
      if (before || after) continue;   /* part of a longer word: not this token */
    }
    if (a->lstrip) {
      size_t ns = start;
      while (ns > 0) {
        size_t q = utf8_prev(s, ns), l;
        if (!is_ws(utf8_dec(s + q, &l))) break;
        ns = q;
      }
      start = ns;
    }
    if (start < last_end) start = last_end;
    if (a->rstrip) {
      size_t l;
      while (stop < n && is_ws(utf8_dec(s + stop, &l))) stop += l;
    }
    *pos = p;
    *ms = start;
    *me = stop;
    *id = a->id;
    return 1;
  }
  *pos = n;
  return 0;
}

static void encode_normalized_piece(tok_tokenizer *t, out_ids *o, const char *s, size_t n) {
  if (t->norm_m.n == 0) { pretokenize(t, o, s, n); return; }
  size_t pos = 0, seg = 0, ms, me;
  int32_t id;
  while (next_added(t, &t->norm_m, (const uint8_t *)s, n, &pos, seg, &ms, &me, &id)) {
    if (ms > seg) pretokenize(t, o, s + seg, ms - seg);
    out_push(o, id);
    seg = me;
  }
  if (seg < n) pretokenize(t, o, s + seg, n - seg);
}

static void encode_raw_piece(tok_tokenizer *t, out_ids *o, const char *s, size_t n) {
  size_t nn;
  const char *ns = normalize(t, s, n, &nn);
  encode_normalized_piece(t, o, ns, nn);
}

int tok_encode(tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               size_t *cap, char *err, size_t errlen) {
  size_t bad = utf8_check((const uint8_t *)text, len);
  if (bad != SIZE_MAX) return xl_errf(err, errlen, "invalid UTF-8 at byte %zu", bad);
  out_ids o = {ids, n, cap};
  size_t pos = 0, seg = 0, ms, me;
  int32_t id;
  while (next_added(t, &t->raw_m, (const uint8_t *)text, len, &pos, seg, &ms, &me, &id)) {
    if (ms > seg) encode_raw_piece(t, &o, text + seg, ms - seg);
    out_push(&o, id);
    seg = me;
  }
  if (seg < len) encode_raw_piece(t, &o, text + seg, len - seg);
  return 0;
}

/* ---------- decoding ---------- */

int tok_vocab_size(const tok_tokenizer *t) { return t->ntok; }

const char *tok_piece(const tok_tokenizer *t, int32_t id, size_t *len) {
  if (id < 0 || id >= t->ntok || !t->known[id]) { if (len) *len = 0; return NULL; }
  if (len) *len = t->piece_len[id];
  return t->pieces + t->piece_off[id];
}

const char *tok_token_content(const tok_tokenizer *t, int32_t id) {
  if (id < 0 || id >= t->ntok || !t->known[id]) return NULL;
  return t->tokens.arena + t->content_off[id];
}

int tok_is_special(const tok_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->ntok && t->special[id];
}

int32_t tok_token_id(const tok_tokenizer *t, const char *token) {
  return strmap_get(&t->tokens, token, strlen(token));
}

int tok_bos_id(const tok_tokenizer *t) { return t->bos_id; }
int tok_eos_id(const tok_tokenizer *t) { return t->eos_id; }
int tok_adds_bos(const tok_tokenizer *t) { return t->adds_bos; }

/* Appends src to *dst with every maximal invalid UTF-8 subpart replaced by U+FFFD.
 * With keep_cut, a valid prefix cut short by the end of src is not written; its
 * length is returned so the caller can hold it back. */
static size_t lossy_append(char **dst, size_t *dlen, size_t *dcap, const uint8_t *src,
                           size_t n, int keep_cut) {
  grow((void **)dst, dcap, *dlen + 3 * n + 1, 1);
  char *d = *dst;
  size_t o = *dlen, i = 0;
  while (i < n) {
    if (src[i] < 0x80) { d[o++] = (char)src[i++]; continue; }
    int cut, r = utf8_next(src + i, n - i, &cut);
    if (r > 0) {
      memcpy(d + o, src + i, (size_t)r);
      o += (size_t)r;
      i += (size_t)r;
    } else if (cut && keep_cut) {
      *dlen = o;
      return n - i;
    } else {
      memcpy(d + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i += (size_t)-r;
    }
  }
  *dlen = o;
  return 0;
}

char *tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
  size_t total = 0, count = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l;
    if (tok_piece(t, ids[i], &l)) { total += l; count++; }
  }
  if (!t->bytelevel_decoder && count) total += count - 1;
  char *raw = xl_malloc(total + 1);
  size_t r = 0;
  int first = 1;
  for (size_t i = 0; i < n; i++) {
    size_t l;
    const char *p = tok_piece(t, ids[i], &l);
    if (!p) continue;
    if (!t->bytelevel_decoder && !first) raw[r++] = ' ';
    memcpy(raw + r, p, l);
    r += l;
    first = 0;
  }
  raw[r] = 0;
  if (utf8_check((const uint8_t *)raw, r) == SIZE_MAX) {
    if (len) *len = r;
    return raw;
  }
  char *out = NULL;
  size_t olen = 0, ocap = 0;
  lossy_append(&out, &olen, &ocap, (const uint8_t *)raw, r, 0);
  out[olen] = 0;
  free(raw);
  if (len) *len = olen;
  return out;
}

struct tok_stream {
  const tok_tokenizer *t;
  uint8_t pend[8];       /* a UTF-8 prefix waiting for its continuation */
  size_t npend;
  int started;
  char *buf;
  size_t cap;
  uint8_t *tmp;
  size_t tmpcap;
};

tok_stream *tok_stream_new(const tok_tokenizer *t) {
  tok_stream *s = xl_calloc(1, sizeof *s);
  s->t = t;
  return s;
}

const char *tok_stream_push(tok_stream *s, int32_t id, size_t *len) {
  size_t l, olen = 0;
  const char *p = tok_piece(s->t, id, &l);
  if (!p) { *len = 0; grow((void **)&s->buf, &s->cap, 1, 1); s->buf[0] = 0; return s->buf; }
  size_t sp = (!s->t->bytelevel_decoder && s->started) ? 1 : 0;
  s->started = 1;
  grow((void **)&s->tmp, &s->tmpcap, s->npend + sp + l + 1, 1);   /* + 1: allocated even for an empty piece */
  memcpy(s->tmp, s->pend, s->npend);
  if (sp) s->tmp[s->npend] = ' ';
  memcpy(s->tmp + s->npend + sp, p, l);
  size_t n = s->npend + sp + l;
  size_t keep = lossy_append(&s->buf, &olen, &s->cap, s->tmp, n, 1);
  memcpy(s->pend, s->tmp + n - keep, keep);
  s->npend = keep;
  s->buf[olen] = 0;
  *len = olen;
  return s->buf;
}

const char *tok_stream_finish(tok_stream *s, size_t *len) {
  size_t olen = 0;
  lossy_append(&s->buf, &olen, &s->cap, s->pend, s->npend, 0);
  s->buf[olen] = 0;
  s->npend = 0;
  s->started = 0;
  *len = olen;
  return s->buf;
}

void tok_stream_free(tok_stream *s) {
  if (!s) return;
  free(s->buf);
  free(s->tmp);
  free(s);
}

/* ---------- loading ---------- */

void tok_free(tok_tokenizer *t) {
  if (!t) return;
  strmap_free(&t->tokens);
  free(t->content_off); free(t->pieces); free(t->piece_off); free(t->piece_len);
  free(t->special); free(t->known);
  free(t->merges.keys); free(t->merges.rank); free(t->merges.merged);
  for (int i = 0; i < t->nadded; i++) { free(t->added[i].content); free(t->added[i].match); }
  free(t->added);
  free(t->raw_m.idx); free(t->norm_m.idx);
  free(t->ubuf); free(t->nbuf); free(t->pbuf); free(t->gbuf);
  free(t->sym); free(t->prev); free(t->next); free(t->heap);
  free(t->cache.slots); free(t->cache.e); free(t->cache.keys); free(t->cache.ids);
  free(t);
}

static const char *jtype(const cJSON *o) {
  const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
  return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

/* A boolean field: absent or null gives def; anything else but a boolean is an error. */
static int jbool(const cJSON *o, const char *k, int def, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
  if (!cJSON_IsBool(v)) return -1;
  *out = cJSON_IsTrue(v);
  return 0;
}

/* Token ids are below 2^24 (the largest vocab_size a config.json may give): the id ->
 * token tables are sized by the largest id, so one huge id must not allocate gigabytes. */
#define TOK_MAX_ID (1 << 24)

static int jid(const cJSON *v, int32_t *out) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= 0 && d < TOK_MAX_ID) || d != (double)(int64_t)d) return -1;
  *out = (int32_t)d;
  return 0;
}

static int parse_normalizer(tok_tokenizer *t, const cJSON *n, const char *f, char *err,
                            size_t errlen) {
  if (!n || cJSON_IsNull(n)) return 0;
  const char *ty = jtype(n);
  if (!ty) return xl_errf(err, errlen, "%s: normalizer has no type", f);
  if (!strcmp(ty, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *e;
    if (!cJSON_IsArray(list)) return xl_errf(err, errlen, "%s: Sequence normalizer without a normalizers list", f);
    cJSON_ArrayForEach(e, list)
      if (parse_normalizer(t, e, f, err, errlen)) return -1;
    return 0;
  }
  int form;
  if (!strcmp(ty, "NFC")) form = NORM_NFC;
  else if (!strcmp(ty, "NFD")) form = NORM_NFD;
  else if (!strcmp(ty, "NFKC")) form = NORM_NFKC;
  else if (!strcmp(ty, "NFKD")) form = NORM_NFKD;
  else return xl_errf(err, errlen, "%s: normalizer type \"%s\" is not supported (NFC, NFD, NFKC, NFKD, Sequence)", f, ty);
  if (t->nnorm == MAX_NORM) return xl_errf(err, errlen, "%s: too many normalizers", f);
  t->norm[t->nnorm++] = form;
  return 0;
}

static int parse_pretokenizer(tok_tokenizer *t, const cJSON *p, const char *f, char *err,
                              size_t errlen) {
  if (!p || cJSON_IsNull(p))
    return xl_errf(err, errlen, "%s: pre_tokenizer null is not supported (only ByteLevel)", f);
  const char *ty = jtype(p);
  if (!ty || strcmp(ty, "ByteLevel"))
    return xl_errf(err, errlen, "%s: pre_tokenizer type \"%s\" is not supported (only ByteLevel)", f,
                ty ? ty : "(none)");
  if (jbool(p, "add_prefix_space", 1, &t->add_prefix_space) || jbool(p, "use_regex", 1, &t->use_regex))
    return xl_errf(err, errlen, "%s: ByteLevel pre_tokenizer: add_prefix_space/use_regex must be booleans", f);
  return 0;
}

static int parse_decoder(tok_tokenizer *t, const cJSON *d, const char *f, char *err, size_t errlen) {
  if (!d || cJSON_IsNull(d)) { t->bytelevel_decoder = 0; return 0; }
  const char *ty = jtype(d);
  if (!ty || strcmp(ty, "ByteLevel"))
    return xl_errf(err, errlen, "%s: decoder type \"%s\" is not supported (only ByteLevel)", f,
                ty ? ty : "(none)");
  t->bytelevel_decoder = 1;
  return 0;
}

/* Finds the id of the special token the post-processor puts first, if any. */
static int parse_postprocessor(const cJSON *p, const char *f, int32_t *first_special,
                               char *err, size_t errlen) {
  if (!p || cJSON_IsNull(p)) return 0;
  const char *ty = jtype(p);
  if (!ty) return xl_errf(err, errlen, "%s: post_processor has no type", f);
  if (!strcmp(ty, "ByteLevel")) return 0;
  if (!strcmp(ty, "Sequence")) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *e;
    if (!cJSON_IsArray(list)) return xl_errf(err, errlen, "%s: Sequence post_processor without processors", f);
    cJSON_ArrayForEach(e, list)
      if (parse_postprocessor(e, f, first_special, err, errlen)) return -1;
    return 0;
  }
  if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(p, "cls");
    int32_t id;
    if (!cJSON_IsArray(cls) || jid(cJSON_GetArrayItem(cls, 1), &id))
      return xl_errf(err, errlen, "%s: %s post_processor: bad \"cls\"", f, ty);
    *first_special = id;
    return 0;
  }
  if (!strcmp(ty, "TemplateProcessing")) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *first = cJSON_IsArray(single) ? cJSON_GetArrayItem(single, 0) : NULL;
    const cJSON *sp = first ? cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") : NULL;
    if (!sp) return 0;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
    const cJSON *tab = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    const cJSON *ent = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(tab, name->valuestring) : NULL;
    const cJSON *ids = ent ? cJSON_GetObjectItemCaseSensitive(ent, "ids") : NULL;
    int32_t id;
    if (!cJSON_IsArray(ids) || jid(cJSON_GetArrayItem(ids, 0), &id))
      return xl_errf(err, errlen, "%s: TemplateProcessing: special token of \"single\" has no id", f);
    *first_special = id;
    return 0;
  }
  return xl_errf(err, errlen, "%s: post_processor type \"%s\" is not supported", f, ty);
}

/* Order of a matcher's index: by first byte, then longest first, then file order. */
static int match_before(const added_tok *ad, int i, int j) {
  const added_tok *x = &ad[i], *y = &ad[j];
  uint8_t bx = (uint8_t)x->match[0], by = (uint8_t)y->match[0];
  if (bx != by) return bx < by;
  if (x->mlen != y->mlen) return x->mlen > y->mlen;
  return i < j;
}

static void build_matcher(tok_tokenizer *t, matcher *m, int normalized) {
  m->idx = xl_malloc((size_t)(t->nadded ? t->nadded : 1) * sizeof *m->idx);
  m->n = 0;
  for (int i = 0; i < t->nadded; i++)
    if (t->added[i].normalized == normalized && t->added[i].mlen > 0) m->idx[m->n++] = i;
  for (int k = 1; k < m->n; k++) {   /* insertion sort: added tokens are few */
    int v = m->idx[k], q = k;
    while (q > 0 && match_before(t->added, v, m->idx[q - 1])) { m->idx[q] = m->idx[q - 1]; q--; }
    m->idx[q] = v;
  }
  memset(m->start, 0, sizeof m->start);
  memset(m->has, 0, sizeof m->has);
  for (int k = 0; k < m->n; k++) {
    uint8_t b = (uint8_t)t->added[m->idx[k]].match[0];
    m->start[b + 1]++;
    m->has[b] = 1;
  }
  for (int b = 0; b < 256; b++) m->start[b + 1] += m->start[b];
}

static int parse_added(tok_tokenizer *t, const cJSON *list, const char *f, char *err, size_t errlen) {
  if (!list || cJSON_IsNull(list)) return 0;
  if (!cJSON_IsArray(list)) return xl_errf(err, errlen, "%s: added_tokens is not a list", f);
  int n = cJSON_GetArraySize(list);
  t->added = xl_calloc((size_t)(n ? n : 1), sizeof *t->added);
  const cJSON *e;
  int i = 0;
  cJSON_ArrayForEach(e, list) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
    added_tok *a = &t->added[i];
    int special, lstrip, rstrip, sw, normalized;
    if (!cJSON_IsString(c) || jid(cJSON_GetObjectItemCaseSensitive(e, "id"), &a->id))
      return xl_errf(err, errlen, "%s: added_tokens[%d]: needs a string content and an id", f, i);
    if (utf8_check((const uint8_t *)c->valuestring, strlen(c->valuestring)) != SIZE_MAX)
      return xl_errf(err, errlen, "%s: added_tokens[%d]: content is not valid UTF-8", f, i);
    if (jbool(e, "special", 0, &special) || jbool(e, "lstrip", 0, &lstrip) ||
        jbool(e, "rstrip", 0, &rstrip) || jbool(e, "single_word", 0, &sw) ||
        jbool(e, "normalized", !special, &normalized))
      return xl_errf(err, errlen, "%s: added_tokens[%d]: flags must be booleans", f, i);
    a->special = (uint8_t)special; a->lstrip = (uint8_t)lstrip; a->rstrip = (uint8_t)rstrip;
    a->single_word = (uint8_t)sw; a->normalized = (uint8_t)normalized;
    a->content = xl_strdup(c->valuestring);
    /* a normalized token is searched for in normalized text, so normalize it too */
    size_t nl;
    const char *ns = a->normalized ? normalize(t, a->content, strlen(a->content), &nl) : a->content;
    if (!a->normalized) nl = strlen(a->content);
    a->match = xl_malloc(nl + 1);
    memcpy(a->match, ns, nl);
    a->match[nl] = 0;
    a->mlen = nl;
    t->nadded = ++i;
  }
  return 0;
}

static int parse_model(tok_tokenizer *t, const cJSON *m, const char *f, int32_t *maxid,
                       char *err, size_t errlen) {
  if (!cJSON_IsObject(m)) return xl_errf(err, errlen, "%s: no \"model\" object", f);
  const char *ty = jtype(m);
  if (ty && strcmp(ty, "BPE"))
    return xl_errf(err, errlen, "%s: model type \"%s\" is not supported (only BPE)", f, ty);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "vocab");
  const cJSON *mg = cJSON_GetObjectItemCaseSensitive(m, "merges");
  if (!cJSON_IsObject(v)) return xl_errf(err, errlen, "%s: model has no \"vocab\" object", f);
  if (!cJSON_IsArray(mg)) return xl_errf(err, errlen, "%s: model has no \"merges\" list", f);
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dropout");
  if (d && !cJSON_IsNull(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0))
    return xl_errf(err, errlen, "%s: BPE dropout is not supported (encoding must be deterministic)", f);
  static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int k = 0; k < 2; k++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, affixes[k]);
    if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && !a->valuestring[0]))
      return xl_errf(err, errlen, "%s: BPE %s is not supported", f, affixes[k]);
  }
  if (jbool(m, "fuse_unk", 0, &t->fuse_unk) || jbool(m, "byte_fallback", 0, &t->byte_fallback) ||
      jbool(m, "ignore_merges", 0, &t->ignore_merges))
    return xl_errf(err, errlen, "%s: BPE flags must be booleans", f);

  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    int32_t id;
    if (jid(e, &id)) return xl_errf(err, errlen, "%s: vocab[\"%s\"]: id is not an integer in [0, %d)", f, e->string, TOK_MAX_ID);
    strmap_put(&t->tokens, e->string, strlen(e->string), id);
    if (id > *maxid) *maxid = id;
  }

  pairmap_init(&t->merges, (size_t)cJSON_GetArraySize(mg));
  char *cat = NULL;
  size_t catcap = 0;
  uint32_t rank = 0;
  cJSON_ArrayForEach(e, mg) {
    const char *a, *b;
    size_t al, bl;
    if (cJSON_IsString(e)) {   /* "a b" */
      a = e->valuestring;
      const char *sp = strchr(a, ' ');
      if (!sp || strchr(sp + 1, ' ')) { free(cat); return xl_errf(err, errlen, "%s: merges[%u]: \"%s\" is not two tokens separated by one space", f, rank, a); }
      al = (size_t)(sp - a);
      b = sp + 1;
      bl = strlen(b);
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(e, 0)) && cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
      a = cJSON_GetArrayItem(e, 0)->valuestring;
      b = cJSON_GetArrayItem(e, 1)->valuestring;
      al = strlen(a);
      bl = strlen(b);
    } else {
      free(cat);
      return xl_errf(err, errlen, "%s: merges[%u]: expected \"a b\" or [\"a\", \"b\"]", f, rank);
    }
    int32_t ia = strmap_get(&t->tokens, a, al), ib = strmap_get(&t->tokens, b, bl);
    grow((void **)&cat, &catcap, al + bl + 1, 1);
    memcpy(cat, a, al);
    memcpy(cat + al, b, bl);
    int32_t im = strmap_get(&t->tokens, cat, al + bl);
    if (ia < 0 || ib < 0 || im < 0) {
      cat[al + bl] = 0;
      int w = ia < 0 ? 0 : ib < 0 ? 1 : 2;
      int wl = (int)(w == 0 ? al : w == 1 ? bl : al + bl);
      const char *ws = w == 0 ? a : w == 1 ? b : cat;
      int r = xl_errf(err, errlen, "%s: merges[%u]: token \"%.*s\" is not in the vocab", f, rank, wl, ws);
      free(cat);
      return r;
    }
    pairmap_put(&t->merges, pair_key(ia, ib), rank, im);
    rank++;
  }
  free(cat);

  for (int b = 0; b < 256; b++) {
    char buf[8];
    size_t l = utf8_enc(byte_to_cp[b], buf);
    t->byte_id[b] = strmap_get(&t->tokens, buf, l);
    l = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
    t->byte_fb_id[b] = strmap_get(&t->tokens, buf, l);
  }
  t->unk_id = -1;
  const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
  if (cJSON_IsString(unk)) {
    t->unk_id = strmap_get(&t->tokens, unk->valuestring, strlen(unk->valuestring));
    if (t->unk_id < 0) return xl_errf(err, errlen, "%s: unk_token \"%s\" is not in the vocab", f, unk->valuestring);
  }
  return 0;
}

/* The decoded bytes of every id, and the id -> string table. */
static void build_pieces(tok_tokenizer *t) {
  int n = t->ntok;
  t->content_off = xl_malloc((size_t)n * sizeof *t->content_off);
  t->known = xl_calloc((size_t)n, 1);
  t->special = xl_calloc((size_t)n, 1);
  t->piece_off = xl_calloc((size_t)n, sizeof *t->piece_off);
  t->piece_len = xl_calloc((size_t)n, sizeof *t->piece_len);
  /* vocab entries first, then added tokens override (their content wins for the id) */
  for (size_t e = 0; e < t->tokens.n; e++) {
    int32_t id = t->tokens.val[e];
    if (id < n && !t->known[id]) { t->content_off[id] = t->tokens.off[e]; t->known[id] = 1; }
  }
  for (int i = 0; i < t->nadded; i++) {
    added_tok *a = &t->added[i];
    long e = strmap_find(&t->tokens, a->content, strlen(a->content),
                         hash_bytes(a->content, strlen(a->content)));
    t->content_off[a->id] = t->tokens.off[e];
    t->known[a->id] = 1;
    t->special[a->id] = a->special;
  }
  size_t total = 0;
  for (int id = 0; id < n; id++)
    if (t->known[id]) total += strlen(t->tokens.arena + t->content_off[id]);
  t->pieces = xl_malloc(total + 1);
  size_t o = 0;
  for (int id = 0; id < n; id++) {
    if (!t->known[id]) continue;
    const uint8_t *s = (const uint8_t *)t->tokens.arena + t->content_off[id];
    size_t l = strlen((const char *)s), start = o;
    t->piece_off[id] = (uint32_t)o;
    int mapped = t->bytelevel_decoder;
    /* the ByteLevel decoder maps a token char by char; a token with a char outside
     * the GPT-2 table is emitted as its raw UTF-8 */
    for (size_t i = 0; mapped && i < l;) {
      size_t cl;
      uint32_t c = utf8_dec(s + i, &cl);
      if (c >= 324 || cp_to_byte[c] < 0) { mapped = 0; break; }
      t->pieces[o++] = (char)cp_to_byte[c];
      i += cl;
    }
    if (!mapped) {
      o = start;
      memcpy(t->pieces + o, s, l);
      o += l;
    }
    t->piece_len[id] = (uint32_t)(o - start);
  }
}

/* bos_token / eos_token of tokenizer_config.json: a string or {"content": ...}. */
static int config_token(const tok_tokenizer *t, const cJSON *cfg, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
  if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
  if (!cJSON_IsString(v)) return -1;
  return tok_token_id(t, v->valuestring);
}

static cJSON *read_json(const char *path, char *err, size_t errlen) {
  size_t len;
  char *text = xl_read_file(path, &len);
  if (!text) { xl_errf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
  cJSON *j = cJSON_ParseWithLength(text, len);
  if (!j) {
    const char *ep = cJSON_GetErrorPtr();
    long off = (ep && ep >= text && ep <= text + len) ? (long)(ep - text) : -1;
    xl_errf(err, errlen, "%s: invalid JSON near byte %ld", path, off);
  }
  free(text);
  return j;
}

tok_tokenizer *tok_load(const char *path, char *err, size_t errlen) {
  init_tables();
  struct stat st;
  if (stat(path, &st) != 0) { xl_errf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
  char *json_path, *cfg_path;
  if (S_ISDIR(st.st_mode)) {
    json_path = xl_path_join(path, "tokenizer.json");
    cfg_path = xl_path_join(path, "tokenizer_config.json");
  } else {
    json_path = xl_strdup(path);
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : xl_strdup(".");
    cfg_path = xl_path_join(dir, "tokenizer_config.json");
    free(dir);
  }
  tok_tokenizer *t = xl_calloc(1, sizeof *t);
  t->bos_id = t->eos_id = -1;
  cJSON *j = read_json(json_path, err, errlen), *cfg = NULL;
  const char *f = json_path;
  int32_t maxid = -1, first_special = -1;
  if (!j) goto bad;
  if (!cJSON_IsObject(j)) { xl_errf(err, errlen, "%s: not a JSON object", f); goto bad; }
  if (parse_model(t, cJSON_GetObjectItemCaseSensitive(j, "model"), f, &maxid, err, errlen) ||
      parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(j, "normalizer"), f, err, errlen) ||
      parse_pretokenizer(t, cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer"), f, err, errlen) ||
      parse_decoder(t, cJSON_GetObjectItemCaseSensitive(j, "decoder"), f, err, errlen) ||
      parse_postprocessor(cJSON_GetObjectItemCaseSensitive(j, "post_processor"), f, &first_special, err, errlen) ||
      parse_added(t, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), f, err, errlen))
    goto bad;
  for (int i = 0; i < t->nadded; i++) {
    strmap_put(&t->tokens, t->added[i].content, strlen(t->added[i].content), t->added[i].id);
    if (t->added[i].id > maxid) maxid = t->added[i].id;
  }
  if (maxid < 0) { xl_errf(err, errlen, "%s: empty vocabulary", f); goto bad; }
  t->ntok = maxid + 1;
  build_pieces(t);
  build_matcher(t, &t->raw_m, 0);
  build_matcher(t, &t->norm_m, 1);

  if (first_special >= t->ntok) {   /* a BOS id the model would be fed: it must be a token */
    xl_errf(err, errlen, "%s: post_processor: special token id %d is not in the vocabulary (ids < %d)", f, first_special, t->ntok);
    goto bad;
  }
  t->bos_id = first_special;
  t->adds_bos = first_special >= 0;
  if (xl_exists(cfg_path)) {
    cfg = read_json(cfg_path, err, errlen);
    if (!cfg) goto bad;
    int id = config_token(t, cfg, "bos_token");
    if (id >= 0) t->bos_id = id;
    t->eos_id = config_token(t, cfg, "eos_token");
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    if (cJSON_IsBool(ab)) t->adds_bos = cJSON_IsTrue(ab);
  }

  word_cache *c = &t->cache;
  c->slots = xl_calloc(CACHE_SLOTS, sizeof *c->slots);
  c->e = xl_malloc(CACHE_MAX_ENTRIES * sizeof *c->e);
  c->keys = xl_malloc(CACHE_KEY_BYTES);
  c->ids = xl_malloc(CACHE_IDS * sizeof *c->ids);

  cJSON_Delete(j);
  cJSON_Delete(cfg);
  free(json_path);
  free(cfg_path);
  return t;
bad:
  cJSON_Delete(j);
  cJSON_Delete(cfg);
  free(json_path);
  free(cfg_path);
  tok_free(t);
  return NULL;
}
