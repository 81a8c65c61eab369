/* model_v1: hooks for xlstm_v1 checkpoints (see model_v1.h). This build recognises the
 * model type and refuses it with a clear message; the mLSTM v1 / sLSTM forward pass is
 * issue #9's work and replaces these bodies. */
#include "model_v1.h"
#include "forward.h"
#include "model.h"
#include <stdio.h>

int xl_v1_config_parse(xl_config *c, const struct cJSON *root, const char *path, char *err, size_t errlen) {
  (void)c; (void)root;
  snprintf(err, errlen, "%s: field \"model_type\": \"xlstm_v1\" checkpoints are not supported by this build", path);
  return -1;
}
int xl_v1_model_bind(struct xl_model *m, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: xlstm_v1 checkpoints are not supported by this build", m->dir);
  return -1;
}
void xl_v1_model_free(struct xl_model *m) { (void)m; }
int xl_v1_session_init(struct xl_session *s, char *err, size_t errlen) { (void)s; snprintf(err, errlen, "xlstm_v1 unsupported"); return -1; }
void xl_v1_session_free(struct xl_session *s) { (void)s; }
void xl_v1_session_reset(struct xl_session *s) { (void)s; }
void xl_v1_step(struct xl_session *s, int token) { (void)s; (void)token; }
void xl_v1_prefill(struct xl_session *s, const int32_t *ids, long n, float *all_logits) { (void)s; (void)ids; (void)n; (void)all_logits; }
void xl_v1_state_visit(struct xl_session *s, xl_state_visit_fn fn, void *ctx) { (void)s; (void)fn; (void)ctx; }
