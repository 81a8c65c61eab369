/* fuzz_config: config.json parsing (engine/engine.h: xl_config_parse, which dispatches on
 * model_type to the 7B family's and the v1 models' readers). An accepted config must have
 * the sizes every later stage divides and allocates by: positive dimensions, heads that
 * divide them, token ids in range (a BOS id below vocab_size: it is fed to the model). A v1 config must also list tensors of positive shapes
 * (xl_v1_tensor_specs, what the loader checks a checkpoint against) and write back to
 * config.json text that parses to the same numbers (xl_v1_config_json). */
#include "fuzz_common.h"
#include "engine/engine.h"
#include "engine/v1/v1.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

static void spec_ok(void *ctx, const char *name, int ndim, const int64_t *shape) {
  long *n = ctx;
  FZ_CHECK(ndim >= 1 && ndim <= 3, "%s: ndim %d", name, ndim);
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    FZ_CHECK(shape[d] >= 1 && shape[d] <= (1LL << 40), "%s: shape[%d] = %lld", name, d, (long long)shape[d]);
    numel *= shape[d];
  }
  (void)numel;
  ++*n;
}

static void check_sizes(const xl_config *c) {
  FZ_CHECK(c->D >= 1 && c->n_blocks >= 1 && c->n_heads >= 1 && c->vocab >= 1, "D %d blocks %d heads %d vocab %d", c->D,
           c->n_blocks, c->n_heads, c->vocab);
  FZ_CHECK(c->chunk_size >= 1, "chunk_size %d", c->chunk_size);
  FZ_CHECK(c->bos_id >= -1 && c->eos_id >= -1 && c->pad_id >= -1, "token ids");
  FZ_CHECK(c->bos_id < c->vocab, "bos_token_id %d is fed to the model but not below vocab_size %d", c->bos_id, c->vocab);
  if (c->arch == XL_ARCH_LARGE) {
    FZ_CHECK(c->qk_dim >= c->n_heads && c->dk * c->n_heads == c->qk_dim, "qk_dim %d heads %d dk %d", c->qk_dim, c->n_heads, c->dk);
    FZ_CHECK(c->v_dim >= c->n_heads && c->dv * c->n_heads == c->v_dim, "v_dim %d heads %d dv %d", c->v_dim, c->n_heads, c->dv);
    FZ_CHECK(c->ffn >= 1, "ffn %d", c->ffn);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fz_cstr(data, size);
  xl_config c;
  char err[1024];
  if (xl_config_parse(&c, text, "config.json", err, sizeof err)) {
    FZ_CHECK(err[0], "refused without a message");
    FZ_CHECK(c.arch_cfg == NULL, "refused config keeps an allocation");
    free(text);
    return 0;
  }
  check_sizes(&c);
  if (c.arch == XL_ARCH_V1) {
    long n = 0;
    int count = xl_v1_tensor_specs(&c, spec_ok, &n);
    FZ_CHECK(count == n && count >= 2, "%d tensors", count);
    char *again = xl_v1_config_json(&c);
    xl_config c2;
    int rc = xl_config_parse(&c2, again, "config.json (written back)", err, sizeof err);
    FZ_CHECK(rc == 0, "the config written back does not parse: %s\n%s", err, again);
    const xl_v1_config *a = c.arch_cfg, *b = c2.arch_cfg;
    FZ_CHECK(c2.D == c.D && c2.n_blocks == c.n_blocks && c2.vocab == c.vocab && c2.n_heads == c.n_heads &&
                 c2.tie_embeddings == c.tie_embeddings && c2.add_out_norm == c.add_out_norm,
             "written back differently:\n%s", again);
    FZ_CHECK(a->I == b->I && a->m_heads == b->m_heads && a->m_conv == b->m_conv && a->qkv_bs == b->qkv_bs &&
                 a->s_heads == b->s_heads && a->s_conv == b->s_conv && a->s_ffn == b->s_ffn &&
                 a->group_norm_weight == b->group_norm_weight && !memcmp(a->is_slstm, b->is_slstm, (size_t)c.n_blocks),
             "v1 part written back differently:\n%s", again);
    xl_config_free(&c2);
    free(again);
  }
  xl_config_free(&c);
  free(text);
  return 0;
}
