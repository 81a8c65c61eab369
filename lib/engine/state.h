/* state: the recurrent state file (docs/formats.md): a safetensors file holding every
 * layer's state (7B family: layer{i}.C [NH,DK,DV], layer{i}.n [NH,DK], layer{i}.m [NH];
 * v1 models: their own tensors), the logits after the last token (`logits` [V]), and
 * __metadata__ format "xl-state-1", model fingerprint, tokens, last_token.
 * Not for: the forward pass (engine.h). */
#ifndef XL_STATE_H
#define XL_STATE_H
#include "engine/engine.h"
#include <stddef.h>

/* Writes the session's state atomically. 0 ok; -1 with err. */
int xl_state_save(xl_session *s, const char *path, char *err, size_t errlen);
/* Loads a state file into s, refusing a state from another model (fingerprint) or a
 * malformed file. 0 ok; -1 with err. */
int xl_state_load(xl_session *s, const char *path, char *err, size_t errlen);
/* Calls fn for every state tensor of the session and last its logits (used by tests and
 * the judge; reading only). */
void xl_state_visit(xl_session *s, xl_state_visit_fn fn, void *ctx);

#endif
