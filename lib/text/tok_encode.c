/* tok_encode: text -> ids exactly as the Rust `tokenizers` library encodes: added
 * tokens cut out of the raw text first (leftmost-longest, lstrip/rstrip/single_word), the
 * rest normalized (utf8proc), split by the GPT-2 regex, and each piece merged by BPE rank
 * over its bytes, through a bounded word cache. See tokenizer.h and tok_internal.h. */
#include "text/tokenizer.h"
#include "text/tok_internal.h"
#include <stdlib.h>

typedef struct {
  int32_t **ids;
  size_t *n, *cap;
} out_ids;

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

/* Start of the character that ends at s[n-1] (valid UTF-8, n >= 1). */
static size_t utf8_prev(const uint8_t *s, size_t n) {
  size_t i = n - 1;
  while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
  return i;
}

/* Rust's char::is_alphanumeric || '_' (used by single_word); approximated by the
 * L and N general categories. */
static int is_word_char(uint32_t c) {
  if (c == '_') return 1;
  int k = cp_class(c);
  return k == C_L || k == C_N;
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
const char *tk_normalize(tok_tokenizer *t, const char *s, size_t n, size_t *on) {
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
    for (size_t i = 0; i < m; i++) gl += tk_utf8_enc(tk_byte_to_cp[w[i]], t->gbuf + gl);
    int32_t id = tk_strmap_get(&t->tokens, t->gbuf, gl);
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
  const char *ns = tk_normalize(t, s, n, &nn);
  encode_normalized_piece(t, o, ns, nn);
}

int tok_encode(tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               size_t *cap, char *err, size_t errlen) {
  size_t bad = tk_utf8_check((const uint8_t *)text, len);
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
