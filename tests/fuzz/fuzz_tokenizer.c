/* fuzz_tokenizer: loading tokenizer.json (text/tokenizer.h: tok_load on a directory) and
 * then using what was loaded. The input is tokenizer.json, optionally followed by the
 * line "#tokenizer_config.json" and that file's text; both are written to a directory in
 * the harness's temporary directory. A tokenizer that loads must encode a fixed set of
 * strings (ASCII, code, Unicode needing normalization, invalid UTF-8, NULs, the text of
 * its own tokens) into ids below tok_vocab_size, decode them, and stream-decode them to
 * exactly what tok_decode gives (the documented contract of tok_stream). */
#include "fuzz_common.h"
#include "text/tokenizer.h"

static const char SEP[] = "\n#tokenizer_config.json\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  mkdir(fz_path("tok"), 0700);
  return 0;
}

static void use_ids(const tok_tokenizer *t, const int32_t *ids, size_t n) {
  size_t dl = 0;
  char *dec = tok_decode(t, ids, n, &dl);
  FZ_CHECK(dec && strlen(dec) <= dl, "tok_decode");
  tok_stream *st = tok_stream_new(t);
  char *cat = malloc(dl + 1);
  size_t cl = 0, pl;
  int same = 1;
  for (size_t i = 0; i <= n; i++) {
    const char *p = i < n ? tok_stream_push(st, ids[i], &pl) : tok_stream_finish(st, &pl);
    if (pl && (!p || cl + pl > dl)) { same = 0; break; }
    if (pl) memcpy(cat + cl, p, pl);
    cl += pl;
  }
  FZ_CHECK(same && cl == dl && !memcmp(cat, dec, dl), "streamed decode differs from tok_decode (%zu vs %zu bytes)", cl, dl);
  free(cat);
  tok_stream_free(st);
  free(dec);
}

static void encode(tok_tokenizer *t, const char *s, size_t len) {
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  char err[256];
  int V = tok_vocab_size(t);
  if (tok_encode(t, s, len, &ids, &n, &cap, err, sizeof err) == 0) {
    for (size_t i = 0; i < n; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < V, "id %d outside [0, %d)", ids[i], V);
    use_ids(t, ids, n);
  } else {
    FZ_CHECK(n == 0 && err[0], "failed encode left %zu ids or no message", n);
  }
  free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *cfg = memmem(data, size, SEP, sizeof SEP - 1);
  size_t jl = cfg ? (size_t)(cfg - data) : size;
  fz_write("tok/tokenizer.json", data, jl);
  if (cfg) {
    cfg += sizeof SEP - 1;
    fz_write("tok/tokenizer_config.json", cfg, size - (size_t)(cfg - data));
  } else {
    unlink(fz_path("tok/tokenizer_config.json"));
  }
  char err[1024];
  tok_tokenizer *t = tok_load(fz_path("tok"), err, sizeof err);
  if (!t) {
    FZ_CHECK(err[0], "refused without a message");
    return 0;
  }
  int V = tok_vocab_size(t);
  FZ_CHECK(V >= 1, "vocab size %d", V);
  FZ_CHECK(tok_bos_id(t) >= -1 && tok_bos_id(t) < V && tok_eos_id(t) >= -1 && tok_eos_id(t) < V, "bos %d eos %d of %d",
           tok_bos_id(t), tok_eos_id(t), V);
  static const char *const texts[] = {
      "Hello, world! The Python interpreter's 3 modes.",
      "  def main():\n\treturn x[1:2] + 42  \r\n\n",
      "<|endoftext|>x<|padding|> <|endoftext|>",
      "e\xcc\x81 \xc3\xa9 \xef\xac\x81 \xe2\x84\xab \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xf0\x9f\x99\x82",
      "\xff\xfe abc",
      "abc \xc3",
      "",
      " ",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) encode(t, texts[i], strlen(texts[i]));
  encode(t, "a\0b \0", 5);
  /* the text of the first tokens, and of the last ones (where added tokens usually are) */
  for (int id = 0; id < V && id < 48; id++) {
    const char *c = tok_token_content(t, id);
    if (c) encode(t, c, strlen(c));
  }
  for (int id = V - 1; id >= 0 && id >= V - 16; id--) {
    const char *c = tok_token_content(t, id);
    if (c) {
      FZ_CHECK(tok_token_id(t, c) >= 0, "token %d's content has no id", id);
      encode(t, c, strlen(c));
    }
    size_t pl;
    const char *p = tok_piece(t, id, &pl);
    FZ_CHECK(p || pl == 0, "piece");
    fz_sink += (unsigned)tok_is_special(t, id);
  }
  /* ids that are not in the vocabulary are skipped, never read */
  static const int32_t odd[] = {-1, -2147483647 - 1, 2147483647, 0, 1, 2};
  int32_t ids[8];
  memcpy(ids, odd, sizeof odd);
  ids[6] = V;
  ids[7] = V - 1;
  use_ids(t, ids, 8);
  size_t pl;
  FZ_CHECK(tok_piece(t, V, &pl) == NULL && pl == 0, "piece of id V");
  FZ_CHECK(tok_token_content(t, -1) == NULL, "content of -1");
  tok_free(t);
  return 0;
}
