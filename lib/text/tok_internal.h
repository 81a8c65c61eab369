/* tok_internal: what the tokenizer's files share (tokenizer.c loads, tok_encode.c
 * encodes, tok_decode.c decodes, tok_tables.c holds the tables and the string map): the
 * tokenizer's data structures and the small helpers of the encoding hot path, kept
 * `static inline` here so splitting the files costs the encoder no calls.
 * Not part of the API: only lib/text/tok*.c include it (tokenizer.h is the API). */
#ifndef XL_TOK_INTERNAL_H
#define XL_TOK_INTERNAL_H
#include "base/util.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

typedef struct tok_tokenizer tok_tokenizer;   /* as in tokenizer.h */

/* ---------- small helpers ---------- */

/* Grows *p (elements of size elem) to hold at least need elements. */
static inline void grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  *p = xl_realloc(*p, c * elem);
  *cap = c;
}

/* Hash of a byte string (the string map, the word cache), 8 bytes at a time. */
static inline uint64_t hash_bytes(const void *p, size_t n) {
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

/* Mixes a 64-bit key (the merge map's id pairs) so nearby pairs spread over the slots. */
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* ---------- UTF-8 (tok_tables.c; the decoder is inline) ---------- */

/* Looks at the sequence starting at s (n >= 1 bytes). Returns its length if it is one
 * valid character; otherwise -k, k >= 1 the length of its maximal invalid subpart (the
 * Unicode "substitution of maximal subparts" rule that Rust's from_utf8_lossy
 * follows). *cut is set when the invalid subpart is a valid prefix that the end of the
 * data cut short. */
int tk_utf8_next(const uint8_t *s, size_t n, int *cut);
/* Offset of the first invalid byte, or SIZE_MAX if s is valid UTF-8. */
size_t tk_utf8_check(const uint8_t *s, size_t n);
/* Encodes code point c at o; returns its length (1-4). */
size_t tk_utf8_enc(uint32_t c, char *o);

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

/* ---------- character classes of the GPT-2 split regex ---------- */

enum { C_WS, C_L, C_N, C_O };

/* Unicode White_Space (what \s means in the reference regex engine and Rust's
 * char::is_whitespace). */
static inline int is_ws(uint32_t c) {
  if (c < 0x80) return (c >= 9 && c <= 13) || c == ' ';
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

extern uint8_t tk_ascii_cls[128];   /* class of each ASCII character */

/* The regex class of a code point: \s, \p{L}, \p{N} or anything else. */
static inline int cp_class(uint32_t c) {
  if (c < 128) return tk_ascii_cls[c];
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
  if (s[0] < 0x80) { *len = 1; return tk_ascii_cls[s[0]]; }
  return cp_class(utf8_dec(s, len));
}

/* ---------- GPT-2 byte <-> char mapping ---------- */

extern uint32_t tk_byte_to_cp[256];
extern int16_t tk_cp_to_byte[324];   /* every mapped char is below U+0144; -1 unmapped */
/* Fills the class and byte tables once per process (thread-safe). */
void tk_init_tables(void);

/* ---------- string -> id map (tok_tables.c) ---------- */

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

/* The entry of key k (len bytes, hash h), or -1. */
long tk_strmap_find(const strmap *m, const char *k, size_t len, uint64_t h);
/* Inserts or overwrites; returns the entry index. */
size_t tk_strmap_put(strmap *m, const char *k, size_t len, int32_t val);
/* The id of key k, or -1. */
int32_t tk_strmap_get(const strmap *m, const char *k, size_t len);
void tk_strmap_free(strmap *m);

/* ---------- (id, id) -> (rank, merged id) map (filled in tokenizer.c) ---------- */

typedef struct {
  uint64_t *keys;     /* UINT64_MAX = empty */
  uint32_t *rank;
  int32_t *merged;
  size_t mask;
} pairmap;

static inline uint64_t pair_key(int32_t a, int32_t b) {
  return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
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

/* Applies the tokenizer's normalizers (tok_encode.c); returns s itself or t->nbuf. */
const char *tk_normalize(tok_tokenizer *t, const char *s, size_t n, size_t *on);

#endif
