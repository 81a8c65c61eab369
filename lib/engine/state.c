/* state: save/load of the recurrent state as safetensors. See state.h. */
#include "engine/state.h"
#include "io/safetensors.h"
#include "base/util.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FORMAT "xl-state-1"

void xl_state_visit(xl_session *s, xl_state_visit_fn fn, void *ctx) {
  xl_session_visit_state(s, fn, ctx, 0);
  int64_t shv[1] = {s->m->cfg.vocab};
  fn(ctx, "logits", (float *)xl_session_logits(s), 1, shv);
}

static void add_to_writer(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  st_writer_add(ctx, name, ST_F32, ndim, shape, data);
}

int xl_state_save(xl_session *s, const char *path, char *err, size_t errlen) {
  st_writer w;
  st_writer_init(&w);
  if (xl_session_visit_state(s, add_to_writer, &w, 0) || !xl_session_logits(s)) {
    st_writer_free(&w);
    return xl_errf(err, errlen, "%s: cannot read the session's state from its device", path);
  }
  int64_t shv[1] = {s->m->cfg.vocab};
  add_to_writer(&w, "logits", s->logits, 1, shv);
  char num[32];
  st_writer_meta(&w, "format", STATE_FORMAT);
  st_writer_meta(&w, "model", s->m->fingerprint_hex);
  snprintf(num, sizeof num, "%ld", s->tokens);
  st_writer_meta(&w, "tokens", num);
  snprintf(num, sizeof num, "%d", s->last_token);
  st_writer_meta(&w, "last_token", num);
  int rc = st_writer_write(&w, path, err, errlen);
  st_writer_free(&w);
  return rc;
}

typedef struct { const st_set *st; const char *path; char *err; size_t errlen; int rc; } load_ctx;

static void load_one(void *vctx, const char *name, float *data, int ndim, const int64_t *shape) {
  load_ctx *lc = vctx;
  if (lc->rc) return;
  const st_tensor *t = st_find(lc->st, name);
  if (!t) { lc->rc = xl_errf(lc->err, lc->errlen, "%s: state tensor '%s' is missing", lc->path, name); return; }
  int ok = t->dtype == ST_F32 && t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (!ok) { lc->rc = xl_errf(lc->err, lc->errlen, "%s: state tensor '%s' has the wrong dtype or shape for this model", lc->path, name); return; }
  memcpy(data, t->data, t->nbytes);
}

int xl_state_load(xl_session *s, const char *path, char *err, size_t errlen) {
  st_set st;
  if (st_open_file(&st, path, err, errlen)) return -1;
  int rc = 0;
  const char *fmt = st_meta(&st, "format"), *model = st_meta(&st, "model"), *tok = st_meta(&st, "tokens"),
             *last = st_meta(&st, "last_token");
  long ntok = 0, lt = -1;
  if (!fmt || strcmp(fmt, STATE_FORMAT))
    rc = xl_errf(err, errlen, "%s: not an xltools state file (metadata format is %s%s%s, expected \"%s\")", path, fmt ? "\"" : "",
             fmt ? fmt : "absent", fmt ? "\"" : "", STATE_FORMAT);
  else if (!model || strcmp(model, s->m->fingerprint_hex))
    rc = xl_errf(err, errlen, "%s: state belongs to another model (fingerprint %s, this model is %s)", path, model ? model : "absent",
             s->m->fingerprint_hex);
  else if (!tok || xl_parse_long(tok, 0, 1L << 62, &ntok) || !last || xl_parse_long(last, -1, 1L << 30, &lt))
    rc = xl_errf(err, errlen, "%s: metadata 'tokens'/'last_token' missing or not integers", path);
  if (!rc) {
    load_ctx lc = {&st, path, err, errlen, 0};
    int64_t shv[1] = {s->m->cfg.vocab};
    if (xl_session_visit_state(s, load_one, &lc, 1) && !lc.rc) lc.rc = xl_errf(err, errlen, "%s: cannot write the state to the session's device", path);
    if (!lc.rc) load_one(&lc, "logits", s->logits, 1, shv);
    if (!lc.rc && s->ops->store_logits && s->ops->store_logits(s)) lc.rc = xl_errf(err, errlen, "%s: cannot write the logits to the device", path);
    s->logits_stale = 0;
    rc = lc.rc;
  }
  if (!rc) {
    s->tokens = ntok;
    s->last_token = (int)lt;
  }
  st_close(&st);
  return rc;
}
