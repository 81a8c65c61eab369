/* fuzz_state: recurrent-state files (engine/state.h: xl_state_load) on arbitrary bytes,
 * into a session of the default model (models/xlstm-tiny-pydocs, loaded once). The input
 * is written to a file in the harness's temporary directory and loaded; a file that loads
 * is then used as xl-decode uses it: the next token is sampled from its logits (values
 * may be NaN or infinite: they are data) and one decode step runs from its state. */
#include "fuzz_common.h"
#include "base/util.h"
#include "engine/engine.h"
#include "engine/state.h"

static xl_model *model;
static xl_session *sess;
static xl_sampler smp;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fz_tmpdir();
  char *dir = xl_find_resource("models/xlstm-tiny-pydocs", "config.json"), err[1024];
  model = xl_model_load(dir, err, sizeof err);
  free(dir);
  if (!model) { fprintf(stderr, "fuzz_state: %s\n", err); exit(1); }
  xl_runopts o;
  xl_runopts_default(&o, model);
  o.workers = 1;
  sess = xl_session_new(model, &o, err, sizeof err);
  if (!sess) { fprintf(stderr, "fuzz_state: %s\n", err); exit(1); }
  xl_sampling sc = {.greedy = 0, .temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .seed = 7};
  xl_sampler_init(&smp, &sc, model->cfg.vocab);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_write("in.state", data, size);
  char err[1024];
  xl_session_reset(sess);
  if (xl_state_load(sess, path, err, sizeof err)) {
    FZ_CHECK(err[0], "refused without a message");
    return 0;
  }
  FZ_CHECK(sess->tokens >= 0 && sess->last_token >= -1, "tokens %ld last %d", sess->tokens, sess->last_token);
  smp.rng = smp.cfg.seed;
  int tok = -1;
  FZ_CHECK(xl_session_sample(sess, &smp, &tok) == 0, "sampling failed");
  FZ_CHECK(tok >= 0 && tok < model->cfg.vocab, "sampled token %d outside [0, %d)", tok, model->cfg.vocab);
  FZ_CHECK(xl_step(sess, tok) == 0, "step failed");
  const float *l = xl_session_logits(sess);
  FZ_CHECK(l != NULL, "no logits");
  fz_sink += (unsigned)xl_argmax(l, model->cfg.vocab);
  return 0;
}
