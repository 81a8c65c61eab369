/* tok_decode: ids -> text (the ByteLevel decoder's bytes of each token, invalid UTF-8
 * replaced as Rust's from_utf8_lossy does), whole or streamed, and the per-id lookups.
 * See tokenizer.h. */
#include "text/tokenizer.h"
#include "text/tok_internal.h"
#include <stdlib.h>

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
  return tk_strmap_get(&t->tokens, token, strlen(token));
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
    int cut, r = tk_utf8_next(src + i, n - i, &cut);
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
  if (tk_utf8_check((const uint8_t *)raw, r) == SIZE_MAX) {
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
