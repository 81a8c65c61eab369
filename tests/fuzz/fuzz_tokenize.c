/* fuzz_tokenize: the default model's tokenizer (models/xlstm-tiny-pydocs/tokenizer.json,
 * loaded once) on arbitrary text: tok_encode accepts exactly the valid UTF-8 inputs, emits
 * ids inside the vocabulary, and the ids decode (tok_decode) to the same bytes as the
 * streaming decoder (tok_stream_push/finish) gives. Encoding is deterministic: the same
 * text encoded twice (the second time through the word cache) gives the same ids. */
#include "fuzz_common.h"
#include "base/util.h"
#include "text/tokenizer.h"

static tok_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  char *dir = xl_find_resource("models/xlstm-tiny-pydocs", "tokenizer.json"), err[1024];
  tok = tok_load(dir, err, sizeof err);
  if (!tok) {
    fprintf(stderr, "fuzz_tokenize: %s\n", err);
    exit(1);
  }
  free(dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int32_t *ids = NULL, *ids2 = NULL;
  size_t n = 0, cap = 0, n2 = 0, cap2 = 0;
  char err[256];
  int V = tok_vocab_size(tok);
  if (tok_encode(tok, (const char *)data, size, &ids, &n, &cap, err, sizeof err)) {
    FZ_CHECK(n == 0 && err[0], "failed encode left ids or no message");
    free(ids);
    return 0;
  }
  FZ_CHECK(size == 0 || n > 0, "%zu bytes of text encoded to no ids", size);
  for (size_t i = 0; i < n; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < V, "id %d outside [0, %d)", ids[i], V);
  FZ_CHECK(tok_encode(tok, (const char *)data, size, &ids2, &n2, &cap2, err, sizeof err) == 0 && n2 == n && (!n ||
               !memcmp(ids, ids2, n * sizeof *ids)),
           "encoding the same text twice differs");
  size_t dl;
  char *dec = tok_decode(tok, ids, n, &dl);
  tok_stream *st = tok_stream_new(tok);
  char *cat = malloc(dl + 1);
  size_t cl = 0, pl;
  int fits = 1;
  for (size_t i = 0; i <= n && fits; i++) {
    const char *p = i < n ? tok_stream_push(st, ids[i], &pl) : tok_stream_finish(st, &pl);
    if (cl + pl > dl) fits = 0;
    else if (pl) memcpy(cat + cl, p, pl);
    cl += pl;
  }
  FZ_CHECK(fits && cl == dl && !memcmp(cat, dec, dl), "streamed decode differs from tok_decode");
  free(cat);
  tok_stream_free(st);
  free(dec);
  free(ids);
  free(ids2);
  return 0;
}
