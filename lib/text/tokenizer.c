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
 * not allocate (except growing the caller's id array).
 *
 * Files: this one loads tokenizer.json (+ tokenizer_config.json): the vocabulary, the merges,
 * the normalizer, pre-tokenizer, decoder and post-processor settings, the added tokens,
 * and the tables built from them; tok_encode.c encodes, tok_decode.c decodes,
 * tok_tables.c holds the shared tables and the string map (tok_internal.h). */
#include "text/tokenizer.h"
#include "text/tok_internal.h"

#include <cJSON.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------- the merge map (filled here, read by the encoder) ---------- */

/* Room for n pairs at most half full, so probes stay short. */
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

/* ---------- loading ---------- */

void tok_free(tok_tokenizer *t) {
  if (!t) return;
  tk_strmap_free(&t->tokens);
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
    if (tk_utf8_check((const uint8_t *)c->valuestring, strlen(c->valuestring)) != SIZE_MAX)
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
    const char *ns = a->normalized ? tk_normalize(t, a->content, strlen(a->content), &nl) : a->content;
    if (!a->normalized) nl = strlen(a->content);
    a->match = xl_malloc(nl + 1);
    memcpy(a->match, ns, nl);
    a->match[nl] = 0;
    a->mlen = nl;
    t->nadded = ++i;
  }
  return 0;
}

/* The merges ("a b" strings or ["a", "b"] pairs), ranked in file order; every token
 * they name must be in the vocabulary. */
static int parse_merges(tok_tokenizer *t, const cJSON *mg, const char *f, char *err, size_t errlen) {
  const cJSON *e;
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
    int32_t ia = tk_strmap_get(&t->tokens, a, al), ib = tk_strmap_get(&t->tokens, b, bl);
    grow((void **)&cat, &catcap, al + bl + 1, 1);
    memcpy(cat, a, al);
    memcpy(cat + al, b, bl);
    int32_t im = tk_strmap_get(&t->tokens, cat, al + bl);
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
    tk_strmap_put(&t->tokens, e->string, strlen(e->string), id);
    if (id > *maxid) *maxid = id;
  }

  if (parse_merges(t, mg, f, err, errlen)) return -1;

  for (int b = 0; b < 256; b++) {
    char buf[8];
    size_t l = tk_utf8_enc(tk_byte_to_cp[b], buf);
    t->byte_id[b] = tk_strmap_get(&t->tokens, buf, l);
    l = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
    t->byte_fb_id[b] = tk_strmap_get(&t->tokens, buf, l);
  }
  t->unk_id = -1;
  const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_token");
  if (cJSON_IsString(unk)) {
    t->unk_id = tk_strmap_get(&t->tokens, unk->valuestring, strlen(unk->valuestring));
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
    long e = tk_strmap_find(&t->tokens, a->content, strlen(a->content),
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
      if (c >= 324 || tk_cp_to_byte[c] < 0) { mapped = 0; break; }
      t->pieces[o++] = (char)tk_cp_to_byte[c];
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
  tk_init_tables();
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
    tk_strmap_put(&t->tokens, t->added[i].content, strlen(t->added[i].content), t->added[i].id);
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

