/* test_tokenizer: the byte-level BPE tokenizer against the reference library's golden
 * ids (tests/golden/tokenizer, the model's golden generations), and against
 * hand-derived invariants where no reference output exists: the GPT-2 split regex
 * (checked as "encode(text) == encode of each expected piece, concatenated"), BPE
 * merging (against a naive quadratic BPE written here), added-token flags, invalid
 * UTF-8, lossy and streaming decode, unsupported files, both merges forms, and a 1 MB
 * round trip decode(encode(x)) == NFC(x). */
#include "testlib.h"
#include "text/tokenizer.h"
#include "base/util.h"

#include <cJSON.h>
#include <utf8proc.h>

#include <stdint.h>
#include <unistd.h>

static char tmpdir[256];

typedef struct {
  int32_t *v;
  size_t n, cap;
} ids_t;

static int enc(tok_tokenizer *t, const char *s, size_t len, ids_t *o) {
  char err[256];
  o->n = 0;
  return tok_encode(t, s, len, &o->v, &o->n, &o->cap, err, sizeof err);
}

static int ids_eq(const ids_t *a, const int32_t *b, size_t nb) {
  return a->n == nb && (nb == 0 || memcmp(a->v, b, nb * sizeof *b) == 0);
}

static void print_ids(const char *what, const int32_t *v, size_t n) {
  printf("# %s:", what);
  for (size_t i = 0; i < n && i < 40; i++) printf(" %d", v[i]);
  printf("%s\n", n > 40 ? " ..." : "");
}

static size_t json_ids(const cJSON *a, int32_t **out) {
  size_t n = (size_t)cJSON_GetArraySize(a), i = 0;
  *out = xl_malloc((n ? n : 1) * sizeof **out);
  const cJSON *e;
  cJSON_ArrayForEach(e, a) (*out)[i++] = (int32_t)e->valuedouble;
  return n;
}

static cJSON *load_json(const char *path) {
  char *s = xl_read_file(path, NULL);
  if (!s) { printf("# cannot read %s\n", path); return NULL; }
  cJSON *j = cJSON_Parse(s);
  free(s);
  return j;
}

static char *write_json(const char *name, const cJSON *j) {
  char *path = xl_path_join(tmpdir, name);
  char *s = cJSON_PrintUnformatted(j);
  if (xl_write_file_atomic(path, s, strlen(s)) != 0) printf("# cannot write %s\n", path);
  free(s);
  return path;
}

/* ---- golden ---- */

static void test_golden(tok_tokenizer *t) {
  cJSON *g = load_json(tl_golden("tokenizer/tokenizer_golden.json"));
  CHECK(cJSON_IsArray(g) && cJSON_GetArraySize(g) >= 20, "golden tokenizer cases loaded");
  ids_t o = {0};
  const cJSON *c;
  int k = 0;
  cJSON_ArrayForEach(c, g) {
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    const char *dec = cJSON_GetObjectItem(c, "decoded")->valuestring;
    int32_t *want;
    size_t nw = json_ids(cJSON_GetObjectItem(c, "ids"), &want);
    int rc = enc(t, text, strlen(text), &o);
    int ok = rc == 0 && ids_eq(&o, want, nw);
    CHECK(ok, "golden case %d encodes to the reference ids (%zu ids)", k, nw);
    if (!ok) { print_ids("want", want, nw); print_ids("got ", o.v, o.n); }
    size_t dl;
    char *d = tok_decode(t, want, nw, &dl);
    CHECK(dl == strlen(dec) && memcmp(d, dec, dl) == 0, "golden case %d decodes to the reference text", k);
    free(d);
    free(want);
    k++;
  }
  free(o.v);
  cJSON_Delete(g);
}

static void test_model_golden(tok_tokenizer *t) {
  cJSON *g = load_json(tl_golden("xlstm-tiny-pydocs/golden.json"));
  const cJSON *gens = cJSON_GetObjectItem(g, "generations"), *c;
  CHECK(cJSON_GetArraySize(gens) == 5, "model golden has 5 generations");
  ids_t o = {0};
  int k = 0;
  cJSON_ArrayForEach(c, gens) {
    const char *prompt = cJSON_GetObjectItem(c, "prompt")->valuestring;
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    int32_t *pids, *nids;
    size_t np = json_ids(cJSON_GetObjectItem(c, "prompt_ids"), &pids);
    size_t nn = json_ids(cJSON_GetObjectItem(c, "new_ids"), &nids);
    CHECK(enc(t, prompt, strlen(prompt), &o) == 0 && ids_eq(&o, pids, np),
          "generation %d: encode(prompt) == prompt_ids", k);
    size_t dl;
    char *d = tok_decode(t, nids, nn, &dl);
    CHECK(dl == strlen(text) && memcmp(d, text, dl) == 0, "generation %d: decode(new_ids) == text", k);
    /* the same through the streaming decoder */
    tok_stream *s = tok_stream_new(t);
    char *acc = xl_malloc(dl * 3 + 64);
    size_t al = 0, l;
    for (size_t i = 0; i < nn; i++) {
      const char *p = tok_stream_push(s, nids[i], &l);
      memcpy(acc + al, p, l);
      al += l;
    }
    const char *p = tok_stream_finish(s, &l);
    memcpy(acc + al, p, l);
    al += l;
    CHECK(al == dl && memcmp(acc, d, dl) == 0, "generation %d: streamed decode == decode", k);
    tok_stream_free(s);
    free(acc);
    free(d);
    free(pids);
    free(nids);
    k++;
  }
  free(o.v);
  cJSON_Delete(g);
}

/* ---- split regex, checked piecewise ---- */

typedef struct {
  const char *text;
  const char *pieces[20];   /* NULL-terminated expected pre-tokens */
} split_case;

static const split_case splits[] = {
  {"it's", {"it", "'s", NULL}},
  {"don't", {"don", "'t", NULL}},
  {"they're we've I'm you'll he'd", {"they", "'re", " we", "'ve", " I", "'m", " you", "'ll", " he", "'d", NULL}},
  {"IT'S THEY'RE", {"IT", "'", "S", " THEY", "'", "RE", NULL}},
  {"I'LL WE'VE", {"I", "'", "LL", " WE", "'", "VE", NULL}},
  {"'sa", {"'s", "a", NULL}},
  {"''s", {"''", "s", NULL}},
  {"x 's", {"x", " '", "s", NULL}},
  {"a  b", {"a", " ", " b", NULL}},
  {"a    b", {"a", "   ", " b", NULL}},
  {"a \n\nb", {"a", " \n", "\n", "b", NULL}},
  {"a\t\tb", {"a", "\t", "\t", "b", NULL}},
  {"x   ", {"x", "   ", NULL}},
  {"x\n", {"x", "\n", NULL}},
  {"   ", {"   ", NULL}},
  {"\xC2\xA0\xC2\xA0word", {"\xC2\xA0", "\xC2\xA0", "word", NULL}},        /* NBSP is \s, not ' ' */
  {"  \xE3\x80\x80x", {"  ", "\xE3\x80\x80", "x", NULL}},                  /* U+3000 */
  {"a\xE2\x80\xA8" "b", {"a", "\xE2\x80\xA8", "b", NULL}},                /* U+2028 */
  {"abc123 456", {"abc", "123", " 456", NULL}},
  {"x\xD9\xA1\xD9\xA2\xD9\xA3", {"x", "\xD9\xA1\xD9\xA2\xD9\xA3", NULL}},  /* Arabic-Indic digits (Nd) */
  {"a\xC2\xBD" "b", {"a", "\xC2\xBD", "b", NULL}},                         /* 1/2 is No */
  {"x\xE2\x85\xAB", {"x", "\xE2\x85\xAB", NULL}},                          /* Roman XII is Nl */
  {"x\xE2\x83\x9D", {"x", "\xE2\x83\x9D", NULL}},                          /* enclosing mark Me */
  /* Devanagari: vowel signs (Mc) and virama (Mn) are not letters */
  {"\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D\xE0\xA4\xA6\xE0\xA5\x80",
   {"\xE0\xA4\xB9", "\xE0\xA4\xBF", "\xE0\xA4\xA8", "\xE0\xA5\x8D", "\xE0\xA4\xA6", "\xE0\xA5\x80", NULL}},
  {"a\xF0\x9F\x98\x80" "b \xF0\x9F\x9A\x80!", {"a", "\xF0\x9F\x98\x80", "b", " \xF0\x9F\x9A\x80!", NULL}},
  {"$100 +=", {"$", "100", " +=", NULL}},
  {"a\x01" "b\x1f" "c", {"a", "\x01", "b", "\x1f", "c", NULL}},          /* controls are not \s */
  {"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",
   {"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", " \xD0\xBC\xD0\xB8\xD1\x80", NULL}},
  {"\xCE\xB1\xCE\xB2\xCE\xB3 \xC7\x85x\xCA\xB0", {"\xCE\xB1\xCE\xB2\xCE\xB3", " \xC7\x85x\xCA\xB0", NULL}}, /* Lt, Lm */
  {"x.'s", {"x", ".'", "s", NULL}},
  /* Pc, Sk, Zp, Cf (zero-width space is not \s), Co, Cn: all "other" but Zp */
  {"a_b^c\xE2\x80\xA9" "d\xE2\x80\x8B" "e\xEE\x80\x80" "f\xCD\xB8" "g-(h)",
   {"a", "_", "b", "^", "c", "\xE2\x80\xA9", "d", "\xE2\x80\x8B", "e", "\xEE\x80\x80", "f", "\xCD\xB8", "g", "-(", "h", ")"}},
  {"\xE2\x80\x9Cq\xE2\x80\x9D \xE2\x82\xAC" "5", {"\xE2\x80\x9C", "q", "\xE2\x80\x9D", " \xE2\x82\xAC", "5", NULL}},  /* Pi, Pf, Sc */
  {"Hello there       dear", {"Hello", " there", "      ", " dear", NULL}},
  {"Hello there\nHello", {"Hello", " there", "\n", "Hello", NULL}},
  {"f(x):\n    return", {"f", "(", "x", "):", "\n   ", " return", NULL}},
  {NULL, {NULL}},
};

static void test_splits(tok_tokenizer *t) {
  ids_t whole = {0}, part = {0};
  int32_t *cat = NULL;
  size_t ncat, capcat = 0;
  for (const split_case *c = splits; c->text; c++) {
    int ok = enc(t, c->text, strlen(c->text), &whole) == 0;
    ncat = 0;
    for (int i = 0; c->pieces[i]; i++) {
      ok &= enc(t, c->pieces[i], strlen(c->pieces[i]), &part) == 0;
      if (ncat + part.n > capcat) { capcat = (ncat + part.n) * 2; cat = xl_realloc(cat, capcat * sizeof *cat); }
      memcpy(cat + ncat, part.v, part.n * sizeof *cat);
      ncat += part.n;
    }
    ok = ok && ids_eq(&whole, cat, ncat);
    CHECK(ok, "split regex: case %d (%zu ids) matches its expected pieces", (int)(c - splits), ncat);
    if (!ok) { print_ids("whole ", whole.v, whole.n); print_ids("pieces", cat, ncat); }
  }
  free(cat);
  free(whole.v);
  free(part.v);

  /* the cases above hold a character of every general category (surrogates
   * cannot be encoded in UTF-8: they are an invalid-input case below) */
  int seen[30] = {0}, missing = 0;
  for (const split_case *c = splits; c->text; c++) {
    const uint8_t *p = (const uint8_t *)c->text;
    utf8proc_ssize_t len = (utf8proc_ssize_t)strlen(c->text);
    while (len > 0) {
      utf8proc_int32_t cp;
      utf8proc_ssize_t k = utf8proc_iterate(p, len, &cp);
      if (k <= 0) break;
      seen[utf8proc_category(cp)] = 1;
      p += k;
      len -= k;
    }
  }
  for (int k = 0; k < 30; k++)
    if (!seen[k] && k != UTF8PROC_CATEGORY_CS) { missing++; printf("# category %d not covered\n", k); }
  CHECK(missing == 0, "split cases cover every Unicode general category but Cs (%d missing)", missing);
}

/* ---- naive BPE reference for merging ---- */

typedef struct { int32_t a, b, m; uint32_t rank; } mrule;
static mrule *rules;
static size_t nrules;

static int rule_cmp(const void *x, const void *y) {
  const mrule *p = x, *q = y;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  if (p->b != q->b) return p->b < q->b ? -1 : 1;
  return 0;
}

static const mrule *rule_find(int32_t a, int32_t b) {
  mrule k = {a, b, 0, 0};
  return bsearch(&k, rules, nrules, sizeof k, rule_cmp);
}

static int32_t byte_ids[256];   /* the one-byte token of every byte, found via tok_piece */

static void load_rules(tok_tokenizer *t, const cJSON *tokjson) {
  for (int b = 0; b < 256; b++) byte_ids[b] = -1;
  for (int32_t id = 0; id < tok_vocab_size(t); id++) {
    size_t l;
    const char *p = tok_piece(t, id, &l);
    if (p && l == 1 && !tok_is_special(t, id)) byte_ids[(uint8_t)p[0]] = id;
  }
  const cJSON *mg = cJSON_GetObjectItem(cJSON_GetObjectItem(tokjson, "model"), "merges"), *e;
  nrules = (size_t)cJSON_GetArraySize(mg);
  rules = xl_malloc(nrules * sizeof *rules);
  uint32_t r = 0;
  cJSON_ArrayForEach(e, mg) {
    const char *a = cJSON_GetArrayItem(e, 0)->valuestring, *b = cJSON_GetArrayItem(e, 1)->valuestring;
    char cat[512];
    snprintf(cat, sizeof cat, "%s%s", a, b);
    rules[r] = (mrule){tok_token_id(t, a), tok_token_id(t, b), tok_token_id(t, cat), r};
    r++;
  }
  qsort(rules, nrules, sizeof *rules, rule_cmp);
}

/* Quadratic textbook BPE of one word: merge the lowest-ranked adjacent pair (leftmost
 * on ties) until none is left. */
static size_t naive_bpe(tok_tokenizer *t, const char *w, size_t m, int32_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < m; i++) out[n++] = byte_ids[(uint8_t)w[i]];
  for (;;) {
    const mrule *best = NULL;
    size_t at = 0;
    for (size_t i = 0; i + 1 < n; i++) {
      const mrule *r = rule_find(out[i], out[i + 1]);
      if (r && (!best || r->rank < best->rank)) { best = r; at = i; }
    }
    if (!best) break;
    out[at] = best->m;
    memmove(out + at + 1, out + at + 2, (n - at - 2) * sizeof *out);
    n--;
  }
  return n;
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng >> 33);
}

static void test_bpe_vs_naive(tok_tokenizer *t) {
  static const char *alpha[] = {"ethsaoinrl", "xq", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "Py"};
  ids_t o = {0};
  int bad = 0, words = 0;
  size_t maxlen = 6000;
  char *w = xl_malloc(maxlen + 1);
  int32_t *ref = xl_malloc(maxlen * sizeof *ref);
  for (int k = 0; k < 400; k++) {
    const char *al = alpha[k % 4];
    size_t na = strlen(al);
    size_t m = k < 390 ? 1 + rnd() % 40 : 500 + rnd() % 2500;
    for (size_t i = 0; i < m; i++) w[i] = al[rnd() % na];
    size_t nr = naive_bpe(t, w, m, ref);
    if (enc(t, w, m, &o) != 0 || !ids_eq(&o, ref, nr)) {
      if (!bad) { w[m < 60 ? m : 60] = 0; printf("# first mismatch on %s\n", w); print_ids("want", ref, nr); print_ids("got ", o.v, o.n); }
      bad++;
    }
    words++;
  }
  CHECK(bad == 0, "heap BPE equals naive BPE on %d random words (up to 3000 bytes): %d differ", words, bad);
  /* the same word twice goes through the word cache the second time */
  const char *again = "ethosathenian";
  ids_t o2 = {0};
  enc(t, again, strlen(again), &o);
  enc(t, again, strlen(again), &o2);
  CHECK(o.n > 0 && ids_eq(&o2, o.v, o.n), "cached word encodes the same as the first time");
  free(o2.v);
  free(w);
  free(ref);
  free(o.v);
}

/* ---- special tokens ---- */

static void expect_concat(tok_tokenizer *t, const char *what, const char *text,
                          const char *left, int32_t mid, const char *right) {
  ids_t o = {0}, l = {0}, r = {0};
  enc(t, left, strlen(left), &l);
  enc(t, right, strlen(right), &r);
  int rc = enc(t, text, strlen(text), &o);
  size_t n = l.n + 1 + r.n;
  int32_t *want = xl_malloc(n * sizeof *want);
  memcpy(want, l.v, l.n * sizeof *want);
  want[l.n] = mid;
  memcpy(want + l.n + 1, r.v, r.n * sizeof *want);
  CHECK(rc == 0 && ids_eq(&o, want, n), "%s", what);
  if (!(rc == 0 && ids_eq(&o, want, n))) { print_ids("want", want, n); print_ids("got ", o.v, o.n); }
  free(want);
  free(o.v); free(l.v); free(r.v);
}

static int contains_id(const ids_t *o, int32_t id) {
  for (size_t i = 0; i < o->n; i++)
    if (o->v[i] == id) return 1;
  return 0;
}

static void test_special(tok_tokenizer *t) {
  ids_t o = {0};
  CHECK(tok_token_id(t, "<|endoftext|>") == 0 && tok_token_id(t, "<|padding|>") == 1,
        "special tokens have ids 0 and 1");
  CHECK(tok_is_special(t, 0) && tok_is_special(t, 1) && !tok_is_special(t, 2), "special flags");
  expect_concat(t, "ab<|endoftext|>cd keeps the special token whole", "ab<|endoftext|>cd", "ab", 0, "cd");
  expect_concat(t, "spaces around a special token stay in the text", " x <|padding|> y", " x ", 1, " y");
  enc(t, "<|endoftext|><|padding|><|endoftext|>", 37, &o);
  CHECK(o.n == 3 && o.v[0] == 0 && o.v[1] == 1 && o.v[2] == 0, "adjacent special tokens");
  enc(t, "<|endoftext|", 12, &o);
  CHECK(!contains_id(&o, 0), "an incomplete special token is ordinary text");
  enc(t, "<|endo<|endoftext|>", 19, &o);
  CHECK(o.n >= 2 && o.v[o.n - 1] == 0 && !contains_id(&(ids_t){o.v, o.n - 1, 0}, 0),
        "a special token after a false start is found");
  size_t l;
  const char *p = tok_piece(t, 0, &l);
  CHECK(p && l == 13 && memcmp(p, "<|endoftext|>", 13) == 0, "special token piece is its content");
  free(o.v);
}

/* A copy of the golden tokenizer with extra added tokens exercising the flags. */
static void test_added_flags(const cJSON *base) {
  cJSON *j = cJSON_Duplicate(base, 1);
  cJSON *added = cJSON_GetObjectItem(j, "added_tokens");
  const char *extra =
      "[{\"id\":4096,\"content\":\"<|end\",\"special\":true,\"normalized\":false},"
      "{\"id\":4097,\"content\":\"[LS]\",\"special\":true,\"lstrip\":true,\"rstrip\":true,\"normalized\":false},"
      "{\"id\":4098,\"content\":\"word\",\"special\":false,\"single_word\":true,\"normalized\":false},"
      "{\"id\":4099,\"content\":\"caf\\u00e9\",\"special\":false,\"normalized\":true}]";
  cJSON *ex = cJSON_Parse(extra), *e;
  while ((e = cJSON_DetachItemFromArray(ex, 0))) cJSON_AddItemToArray(added, e);
  cJSON_Delete(ex);
  char *path = write_json("added.json", j);
  char err[512];
  tok_tokenizer *t = tok_load(path, err, sizeof err);
  CHECK(t != NULL, "tokenizer with extra added tokens loads (%s)", t ? "ok" : err);
  if (!t) { free(path); cJSON_Delete(j); return; }
  CHECK(tok_vocab_size(t) == 4100, "vocab size counts added ids (%d)", tok_vocab_size(t));
  ids_t o = {0};
  enc(t, "x<|endoftext|>", 14, &o);
  CHECK(o.n >= 2 && o.v[o.n - 1] == 0 && !contains_id(&o, 4096), "longest added token wins at a position");
  enc(t, "x<|end", 6, &o);
  CHECK(o.n >= 2 && o.v[o.n - 1] == 4096, "the shorter added token matches alone");
  expect_concat(t, "lstrip/rstrip swallow the whitespace around [LS]", "a  [LS] \n b", "a", 4097, "b");
  expect_concat(t, "single_word token matches between spaces", "a word b", "a ", 4098, " b");
  enc(t, "swordfish words", 15, &o);
  CHECK(!contains_id(&o, 4098), "single_word token inside longer words is not matched");
  expect_concat(t, "normalized token matches after NFC (decomposed input)", "le cafe\xCC\x81!", "le ", 4099, "!");
  size_t dl;
  int32_t ids[] = {4097, 4099};
  char *d = tok_decode(t, ids, 2, &dl);
  /* The ByteLevel decoder maps every character of a token through the GPT-2 table,
   * added tokens included: U+00E9 stands for byte 0xE9, which alone is invalid
   * UTF-8, so the reference prints U+FFFD for it. */
  CHECK(dl == strlen("[LS]caf\xEF\xBF\xBD") && memcmp(d, "[LS]caf\xEF\xBF\xBD", dl) == 0,
        "added tokens decode through the ByteLevel table like the reference");
  free(d);
  free(o.v);
  tok_free(t);
  free(path);
  cJSON_Delete(j);
}

/* ---- invalid UTF-8 ---- */

static void test_invalid_utf8(tok_tokenizer *t) {
  static const struct { const char *s; size_t len, at; const char *what; } bad[] = {
    {"ab\xC0\x80", 4, 2, "overlong 2-byte NUL"},
    {"\xE0\x80\x80", 3, 0, "overlong 3-byte"},
    {"xyz\xF0\x80\x80\x80", 7, 3, "overlong 4-byte"},
    {"abc\xE2\x82", 5, 3, "truncated at the end"},
    {"a\xE2\x82" "a", 4, 1, "truncated in the middle"},
    {"ok \xED\xA0\x80", 6, 3, "UTF-16 surrogate"},
    {"\xF4\x90\x80\x80", 4, 0, "above U+10FFFF"},
    {"x\xFE", 2, 1, "byte 0xFE"},
    {"xy\xFF", 3, 2, "byte 0xFF"},
    {"\x80", 1, 0, "lone continuation byte"},
    {"<|endoftext|>\xC3", 14, 13, "after a special token"},
  };
  int32_t *v = NULL;
  size_t n = 5, cap = 0;
  v = xl_malloc(8 * sizeof *v);
  cap = 8;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[128] = "", want[64];
    int rc = tok_encode(t, bad[i].s, bad[i].len, &v, &n, &cap, err, sizeof err);
    snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", bad[i].at);
    CHECK(rc == -1 && strstr(err, want) && n == 5, "invalid UTF-8 (%s) -> \"%s\" (got \"%s\")", bad[i].what, want, err);
  }
  free(v);
}

/* ---- decoding ---- */

static int32_t byte_token(tok_tokenizer *t, int b) {
  for (int32_t id = 0; id < tok_vocab_size(t); id++) {
    size_t l;
    const char *p = tok_piece(t, id, &l);
    if (p && l == 1 && (uint8_t)p[0] == b) return id;
  }
  return -1;
}

static void test_decode(tok_tokenizer *t) {
  int32_t e2 = byte_token(t, 0xE2), x82 = byte_token(t, 0x82), xac = byte_token(t, 0xAC),
          ff = byte_token(t, 0xFF), a = byte_token(t, 'a');
  CHECK(e2 >= 0 && x82 >= 0 && xac >= 0 && ff >= 0 && a >= 0, "every byte has a one-byte token");
  size_t l;
  char *d;
  d = tok_decode(t, (int32_t[]){e2, x82, xac}, 3, &l);
  CHECK(l == 3 && !memcmp(d, "\xE2\x82\xAC", 3), "three byte tokens decode to the euro sign");
  free(d);
  d = tok_decode(t, (int32_t[]){e2, x82, a}, 3, &l);
  CHECK(l == 4 && !memcmp(d, "\xEF\xBF\xBD" "a", 4), "cut sequence -> one U+FFFD (maximal subpart)");
  free(d);
  d = tok_decode(t, (int32_t[]){ff, x82, a}, 3, &l);
  CHECK(l == 7 && !memcmp(d, "\xEF\xBF\xBD\xEF\xBF\xBD" "a", 7), "0xFF and a stray continuation -> two U+FFFD");
  free(d);
  d = tok_decode(t, (int32_t[]){a, -1, 99999, a}, 4, &l);
  CHECK(l == 2 && !strcmp(d, "aa"), "unknown ids are skipped");
  free(d);
  d = tok_decode(t, NULL, 0, &l);
  CHECK(l == 0 && d && d[0] == 0, "empty decode");
  free(d);
  CHECK(tok_piece(t, -1, &l) == NULL && tok_piece(t, 4096, &l) == NULL && l == 0, "tok_piece of unknown id is NULL");
  size_t pl;
  const char *p = tok_piece(t, tok_token_id(t, "\xC4\xA0the"), &pl);   /* "Ġthe" */
  CHECK(p && pl == 4 && !memcmp(p, " the", 4), "piece of \"\\u0120the\" is \" the\"");
  CHECK(tok_token_content(t, 0) && !strcmp(tok_token_content(t, 0), "<|endoftext|>"), "token content of id 0");

  /* streaming equals whole decoding on random id sequences (many partial characters) */
  int bad = 0;
  tok_stream *s = tok_stream_new(t);
  for (int k = 0; k < 300; k++) {
    int32_t ids[64];
    int n = 1 + (int)(rnd() % 64);
    for (int i = 0; i < n; i++) ids[i] = (rnd() % 3) ? (int32_t)(rnd() % 260) : (int32_t)(rnd() % 4096);
    size_t dl;
    char *whole = tok_decode(t, ids, (size_t)n, &dl);
    char acc[64 * 64 * 3 + 16];
    size_t al = 0, ll;
    for (int i = 0; i < n; i++) { const char *q = tok_stream_push(s, ids[i], &ll); memcpy(acc + al, q, ll); al += ll; }
    const char *q = tok_stream_finish(s, &ll);
    memcpy(acc + al, q, ll);
    al += ll;
    if (al != dl || memcmp(acc, whole, dl)) bad++;
    free(whole);
  }
  tok_stream_free(s);
  CHECK(bad == 0, "streamed decode equals tok_decode on 300 random id sequences (%d differ)", bad);
}

/* The encoder skips NFC for text whose characters are all below U+0300. That holds
 * when every such character and every pair of them is NFC-stable (composition is
 * pairwise): check it against the utf8proc data we run with. */
static void test_nfc_fast_path(void) {
  int bad = 0;
  utf8proc_int32_t buf[16];
  const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  for (int a = 1; a < 0x300; a++) {
    for (int b = 0; b < 0x300; b++) {
      uint8_t in[8];
      utf8proc_ssize_t l = utf8proc_encode_char(a, in);
      if (b) l += utf8proc_encode_char(b, in + l);
      utf8proc_ssize_t r = utf8proc_decompose(in, l, buf, 16, opt);
      if (r < 0 || r > 16) { bad++; continue; }
      r = utf8proc_reencode(buf, r, opt);
      if (r != l || memcmp(buf, in, (size_t)l)) bad++;
    }
  }
  CHECK(bad == 0, "NFC leaves every character and pair below U+0300 unchanged (%d change)", bad);
}

/* ---- long mixed input ---- */

static void test_long(tok_tokenizer *t) {
  static const char *frag[] = {
    "The ", "quick ", "brown ", "fox", " jumps", "  over", "\n", "\n\n", "\t", "    ", "the lazy dog. ",
    "def f(x):\n    return x ** 2\n", "it's ", "THEY'RE ", "na\xC3\xAFve ", "nai\xCC\x88ve ",  /* composed and decomposed */
    "caf\x65\xCC\x81 ", "\xE2\x80\x94", "\xE2\x80\x9Cquote\xE2\x80\x9D", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    "\xF0\x9F\x98\x80", "\xF0\x9F\x9A\x80 ", "\xD9\xA1\xD9\xA2 ", "\xC2\xBD", "\xC2\xA0", "\xE2\x80\xA8",
    "\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\xA8\xE0\xA5\x8D", "\x01", "\x7f", "<|endoftext|>", "1234567890",
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 ", "\xEA\xB0\x80", "\xE1\x84\x80\xE1\x85\xA1",  /* Hangul, and as jamo */
    "\xE2\x84\xAB", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "'s'S'll ", "\xCC\x81\xCC\x81 ",
  };
  size_t nf = sizeof frag / sizeof *frag, cap = (1 << 20) + 256, n = 0;
  char *text = xl_malloc(cap);
  while (n < (1 << 20)) {
    const char *f = frag[rnd() % nf];
    size_t l = strlen(f);
    memcpy(text + n, f, l);
    n += l;
  }
  text[n] = 0;
  ids_t o = {0};
  double t0 = xl_now();
  int rc = enc(t, text, n, &o);
  double dt = xl_now() - t0;
  CHECK(rc == 0 && o.n > n / 16, "1 MB of mixed text encodes (%zu ids, %.1f MB/s)", o.n, n / dt / 1e6);
  int inrange = 1;
  for (size_t i = 0; i < o.n; i++)
    if (o.v[i] < 0 || o.v[i] >= tok_vocab_size(t)) inrange = 0;
  CHECK(inrange, "every id is in [0, vocab_size)");
  size_t dl;
  char *d = tok_decode(t, o.v, o.n, &dl);
  uint8_t *nfc = utf8proc_NFC((const uint8_t *)text);
  size_t nl = strlen((const char *)nfc);
  CHECK(nl != n, "the long text has decomposed characters (NFC changes its length)");
  CHECK(dl == nl && memcmp(d, nfc, nl) == 0, "decode(encode(x)) == NFC(x) for 1 MB of mixed text");
  /* and encoding in two halves at a special token boundary gives the same ids */
  free(d);
  free(nfc);
  free(text);
  free(o.v);
}

/* ---- loading ---- */

static void expect_refused(const cJSON *base, const char *field, const char *json, const char *name) {
  cJSON *j = cJSON_Duplicate(base, 1);
  if (!strcmp(field, "model.type"))
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "type", cJSON_CreateString(json));
  else
    cJSON_ReplaceItemInObject(j, field, cJSON_Parse(json));
  char *path = write_json("refused.json", j);
  char err[512] = "";
  tok_tokenizer *t = tok_load(path, err, sizeof err);
  CHECK(t == NULL && strstr(err, name) && strstr(err, "refused.json"),
        "%s %s is refused with its name (\"%s\")", field, name, err);
  tok_free(t);
  free(path);
  cJSON_Delete(j);
}

static void test_loading(const cJSON *base, tok_tokenizer *ref) {
  char err[512];
  tok_tokenizer *t = tok_load(tl_golden("tokenizer/tokenizer.json"), err, sizeof err);
  CHECK(t && tok_bos_id(t) == 0 && tok_eos_id(t) == 0 && tok_adds_bos(t) == 0,
        "loading the file itself finds tokenizer_config.json beside it (bos 0, not added)");
  tok_free(t);
  CHECK(tok_load("/nonexistent/dir", err, sizeof err) == NULL && strstr(err, "/nonexistent/dir"),
        "missing path is an error naming it");

  expect_refused(base, "model.type", "WordPiece", "WordPiece");
  expect_refused(base, "normalizer", "{\"type\":\"Lowercase\"}", "Lowercase");
  expect_refused(base, "normalizer", "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Strip\"}]}", "Strip");
  expect_refused(base, "pre_tokenizer", "{\"type\":\"Metaspace\"}", "Metaspace");
  expect_refused(base, "decoder", "{\"type\":\"WordPiece\"}", "WordPiece");
  expect_refused(base, "post_processor", "{\"type\":\"Mystery\"}", "Mystery");

  /* merges as "a b" strings load the same as ["a","b"] pairs */
  cJSON *j = cJSON_Duplicate(base, 1);
  cJSON *model = cJSON_GetObjectItem(j, "model"), *mg = cJSON_CreateArray(), *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(model, "merges")) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s %s", cJSON_GetArrayItem(e, 0)->valuestring, cJSON_GetArrayItem(e, 1)->valuestring);
    cJSON_AddItemToArray(mg, cJSON_CreateString(buf));
  }
  cJSON_ReplaceItemInObject(model, "merges", mg);
  char *path = write_json("strmerges.json", j);
  t = tok_load(path, err, sizeof err);
  CHECK(t != NULL, "string-form merges load");
  if (t) {
    const char *txt = "The :func:`os.path.join` function joins paths.  it's \xE6\x97\xA5\xE6\x9C\xAC <|endoftext|>x";
    ids_t a = {0}, b = {0};
    enc(t, txt, strlen(txt), &a);
    enc(ref, txt, strlen(txt), &b);
    CHECK(a.n > 0 && ids_eq(&a, b.v, b.n) && tok_vocab_size(t) == tok_vocab_size(ref),
          "string-form and pair-form merges encode identically");
    free(a.v); free(b.v);
    tok_free(t);
  }
  free(path);
  /* a merge naming an unknown token is refused */
  cJSON_ReplaceItemInArray(mg, 5, cJSON_CreateString("\xC4\xA0 nosuchtoken"));
  path = write_json("badmerge.json", j);
  t = tok_load(path, err, sizeof err);
  CHECK(t == NULL && strstr(err, "merges[5]") && strstr(err, "nosuchtoken"), "bad merge refused (\"%s\")", err);
  free(path);
  cJSON_Delete(j);

  /* a TemplateProcessing post-processor that inserts BOS, and add_bos_token */
  j = cJSON_Duplicate(base, 1);
  cJSON_ReplaceItemInObject(j, "post_processor", cJSON_Parse(
      "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|padding|>\",\"type_id\":0}},"
      "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<|padding|>\":"
      "{\"id\":\"<|padding|>\",\"ids\":[1],\"tokens\":[\"<|padding|>\"]}}}"));
  cJSON_ReplaceItemInObject(j, "normalizer", cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"}]}"));
  char *dir = xl_path_join(tmpdir, "tpl");
  xl_mkdirs(dir);
  char *p2 = xl_path_join(dir, "tokenizer.json");
  char *s = cJSON_PrintUnformatted(j);
  xl_write_file_atomic(p2, s, strlen(s));
  free(s);
  t = tok_load(dir, err, sizeof err);
  CHECK(t && tok_bos_id(t) == 1 && tok_adds_bos(t) == 1 && tok_eos_id(t) == -1,
        "TemplateProcessing BOS is reported (no config: bos from template)");
  if (t) {
    ids_t a = {0}, b = {0};
    enc(t, "\xEF\xAC\x81" "x\xC2\xB2", 6, &a);   /* NFKC: U+FB01 -> "fi", superscript 2 -> "2" */
    enc(ref, "fix2", 4, &b);
    CHECK(a.n && ids_eq(&a, b.v, b.n), "NFKC normalizer in a Sequence applies");
    free(a.v); free(b.v);
  }
  tok_free(t);
  char *cfgp = xl_path_join(dir, "tokenizer_config.json");
  const char *cfg = "{\"add_bos_token\": false, \"bos_token\": {\"content\": \"<|endoftext|>\"}, \"eos_token\": \"<|padding|>\"}";
  xl_write_file_atomic(cfgp, cfg, strlen(cfg));
  t = tok_load(dir, err, sizeof err);
  CHECK(t && tok_bos_id(t) == 0 && tok_adds_bos(t) == 0 && tok_eos_id(t) == 1,
        "tokenizer_config.json bos_token (object form) and add_bos_token override the template");
  tok_free(t);
  unlink(cfgp);
  unlink(p2);
  rmdir(dir);
  free(cfgp); free(p2); free(dir);
  cJSON_Delete(j);
}

/* add_prefix_space and use_regex of the ByteLevel pre-tokenizer */
static void test_pretok_options(const cJSON *base, tok_tokenizer *ref) {
  cJSON *j = cJSON_Duplicate(base, 1);
  cJSON *pt = cJSON_GetObjectItem(j, "pre_tokenizer");
  cJSON_ReplaceItemInObject(pt, "add_prefix_space", cJSON_CreateTrue());
  char *path = write_json("aps.json", j);
  char err[512];
  tok_tokenizer *t = tok_load(path, err, sizeof err);
  CHECK(t != NULL, "add_prefix_space tokenizer loads");
  if (t) {
    static const struct { const char *in, *as; } c[] = {
      {"Hello world", " Hello world"}, {" x", " x"}, {"\ny", " \ny"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
      ids_t a = {0}, b = {0};
      enc(t, c[i].in, strlen(c[i].in), &a);
      enc(ref, c[i].as, strlen(c[i].as), &b);
      CHECK(ids_eq(&a, b.v, b.n), "add_prefix_space: case %zu encodes like the text with one leading space", i);
      free(a.v); free(b.v);
    }
    /* every piece between added tokens gets its own prefix space */
    ids_t a = {0}, l = {0}, r = {0};
    enc(t, "a<|endoftext|>b", 15, &a);
    enc(ref, " a", 2, &l);
    enc(ref, " b", 2, &r);
    CHECK(a.n == l.n + 1 + r.n && !memcmp(a.v, l.v, l.n * 4) && a.v[l.n] == 0 && !memcmp(a.v + l.n + 1, r.v, r.n * 4),
          "add_prefix_space applies to each piece between added tokens");
    free(a.v); free(l.v); free(r.v);
    tok_free(t);
  }
  free(path);
  cJSON_ReplaceItemInObject(pt, "add_prefix_space", cJSON_CreateFalse());
  cJSON_ReplaceItemInObject(pt, "use_regex", cJSON_CreateFalse());
  path = write_json("noregex.json", j);
  t = tok_load(path, err, sizeof err);
  CHECK(t != NULL, "use_regex=false tokenizer loads");
  if (t) {
    const char *txt = "Hello my friend, how is your day going?\n  def x(): pass";
    ids_t a = {0};
    int32_t want[256];
    size_t nw = naive_bpe(t, txt, strlen(txt), want);
    enc(t, txt, strlen(txt), &a);
    CHECK(ids_eq(&a, want, nw), "use_regex=false runs BPE over the whole text as one word (%zu ids)", nw);
    free(a.v);
    tok_free(t);
  }
  free(path);
  cJSON_Delete(j);
}

/* A byte with no token: dropped, or unk (fused or not), or a <0xXX> byte-fallback
 * token. Byte 0x01 is "\u0101" in the GPT-2 table; no merge uses it here. */
static tok_tokenizer *variant(const cJSON *base, const char *name, const char *unk, int fuse, int fallback) {
  cJSON *j = cJSON_Duplicate(base, 1);
  cJSON *model = cJSON_GetObjectItem(j, "model"), *vocab = cJSON_GetObjectItem(model, "vocab");
  cJSON_DeleteItemFromObject(vocab, "\xC4\x81");
  if (fallback) cJSON_AddNumberToObject(vocab, "<0x01>", 4096);
  if (unk) cJSON_ReplaceItemInObject(model, "unk_token", cJSON_CreateString(unk));
  cJSON_ReplaceItemInObject(model, "fuse_unk", cJSON_CreateBool(fuse));
  cJSON_ReplaceItemInObject(model, "byte_fallback", cJSON_CreateBool(fallback));
  char *path = write_json(name, j), err[512];
  tok_tokenizer *t = tok_load(path, err, sizeof err);
  if (!t) printf("# %s: %s\n", name, err);
  free(path);
  cJSON_Delete(j);
  return t;
}

static void test_unknown_bytes(const cJSON *base, tok_tokenizer *ref) {
  ids_t a = {0}, l = {0}, r = {0};
  enc(ref, "a", 1, &l);
  enc(ref, "b", 1, &r);
  tok_tokenizer *t = variant(base, "drop.json", NULL, 0, 0);
  enc(t, "a\x01\x01" "b", 4, &a);
  CHECK(t && a.n == 2 && a.v[0] == l.v[0] && a.v[1] == r.v[0], "a byte without a token and no unk is dropped");
  tok_free(t);
  t = variant(base, "unk.json", "<|padding|>", 0, 0);
  enc(t, "a\x01\x01" "b", 4, &a);
  CHECK(t && a.n == 4 && a.v[1] == 1 && a.v[2] == 1, "unmapped bytes become unk each");
  tok_free(t);
  t = variant(base, "fuse.json", "<|padding|>", 1, 0);
  enc(t, "a\x01\x01" "b", 4, &a);
  CHECK(t && a.n == 3 && a.v[1] == 1, "fuse_unk fuses a run of unknown bytes");
  tok_free(t);
  t = variant(base, "fb.json", "<|padding|>", 0, 1);
  enc(t, "a\x01" "b", 3, &a);
  CHECK(t && a.n == 3 && a.v[1] == 4096, "byte_fallback uses the <0x01> token");
  tok_free(t);
  free(a.v); free(l.v); free(r.v);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tokenizer.XXXXXX");
  if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
  char err[512];
  tok_tokenizer *t = tok_load(tl_golden("tokenizer"), err, sizeof err);
  CHECK(t != NULL, "golden tokenizer directory loads%s%s", t ? "" : ": ", t ? "" : err);
  if (!t) return tl_done();
  CHECK(tok_vocab_size(t) == 4096, "vocab size 4096 (%d)", tok_vocab_size(t));
  CHECK(tok_bos_id(t) == 0 && tok_adds_bos(t) == 0, "bos is <|endoftext|> (0) and not added by the tokenizer");

  ids_t o = {0};
  CHECK(enc(t, "", 0, &o) == 0 && o.n == 0, "empty input gives no ids");
  free(o.v);

  test_golden(t);
  test_model_golden(t);
  test_splits(t);
  cJSON *base = load_json(tl_golden("tokenizer/tokenizer.json"));
  load_rules(t, base);
  test_bpe_vs_naive(t);
  test_special(t);
  test_added_flags(base);
  test_invalid_utf8(t);
  test_decode(t);
  test_nfc_fast_path();
  test_long(t);
  test_loading(base, t);
  test_pretok_options(base, t);
  test_unknown_bytes(base, t);

  free(rules);
  cJSON_Delete(base);
  tok_free(t);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmpdir);
  return tl_done();
}
