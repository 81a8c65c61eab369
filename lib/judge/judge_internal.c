/* judge_internal: teacher-forced log-prob scoring of saved continuations and their
 * ratings rows. See judge_internal.h. */
#include "judge/judge_internal.h"
#include "engine/state.h"
#include "text/textstats.h"
#include "sweep/trials.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ scoring */

void ji_scorer_init(ji_scorer *sc, xl_session *s, long block) {
  sc->s = s;
  sc->vocab = s->m->cfg.vocab;
  sc->block = block > 0 ? block : 256;
  sc->logits = xl_malloc(sizeof(float) * (size_t)sc->block * (size_t)sc->vocab);
  sc->prompt = NULL;
  sc->nprompt = 0;
  sc->snap = NULL;
  sc->nsnap = 0;
}

void ji_scorer_free(ji_scorer *sc) {
  free(sc->logits);
  free(sc->prompt);
  free(sc->snap);
  memset(sc, 0, sizeof *sc);
}

/* Copies every state tensor (and the logits) to or from sc->snap. */
typedef struct { ji_scorer *sc; size_t at; int restore; } snap_ctx;

static void snap_tensor(void *vctx, const char *name, float *data, int ndim, const int64_t *shape) {
  snap_ctx *x = vctx;
  size_t n = 1;
  for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
  if (x->restore) {
    memcpy(data, x->sc->snap + x->at, n * sizeof(float));
  } else {
    if (x->at + n > x->sc->nsnap) x->sc->snap = xl_realloc(x->sc->snap, (x->sc->nsnap = x->at + n) * sizeof(float));
    memcpy(x->sc->snap + x->at, data, n * sizeof(float));
  }
  x->at += n;
}

/* Puts the session in the state after prompt[0..np): from the snapshot when it holds
 * this prompt, else by a reset and a prefill (then snapshotted). */
static void enter_prompt(ji_scorer *sc, const int32_t *prompt, long np) {
  xl_session *s = sc->s;
  snap_ctx x = {sc, 0, 0};
  if (sc->prompt && sc->nprompt == np && !memcmp(sc->prompt, prompt, (size_t)np * sizeof *prompt)) {
    x.restore = 1;
    xl_state_visit(s, snap_tensor, &x);
    s->tokens = sc->snap_tokens;
    s->last_token = sc->snap_last;
    return;
  }
  xl_session_reset(s);
  xl_prefill(s, prompt, np, NULL);
  xl_state_visit(s, snap_tensor, &x);
  sc->snap_tokens = s->tokens;
  sc->snap_last = s->last_token;
  free(sc->prompt);
  sc->prompt = xl_malloc((size_t)np * sizeof *prompt);
  memcpy(sc->prompt, prompt, (size_t)np * sizeof *prompt);
  sc->nprompt = np;
}

double ji_log_softmax(const float *logits, int V, int32_t id) {
  double mx = -INFINITY;
  for (int i = 0; i < V; i++)
    if (logits[i] > mx) mx = logits[i];
  double sum = 0;
  for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
  return ((double)logits[id] - mx) - log(sum);
}

long ji_score(ji_scorer *sc, const int32_t *prompt, long np, const int32_t *cont, long nc, double *sum, double *lp) {
  xl_session *s = sc->s;
  int V = sc->vocab;
  long nscored = 0;
  double total = 0;
  *sum = 0;
  if (nc <= 0) return 0;
  if (np > 0) {
    enter_prompt(sc, prompt, np);
    /* s->logits: after the last prompt token, which predicts cont[0] */
    double l = ji_log_softmax(xl_session_logits(s), V, cont[0]);
    total += l;
    nscored++;
    if (lp) lp[0] = l;
  } else {
    xl_session_reset(s);
    if (lp) lp[0] = NAN;   /* nothing precedes the first token */
  }
  /* Feed cont[0..nc-2]; the logits row after input cont[j] scores cont[j+1]. Blocks bound
   * the buffer; the state carries over between prefill calls. */
  for (long b = 0; b < nc - 1; b += sc->block) {
    long L = nc - 1 - b < sc->block ? nc - 1 - b : sc->block;
    xl_prefill(s, cont + b, L, sc->logits);
    for (long r = 0; r < L; r++) {
      double l = ji_log_softmax(sc->logits + (size_t)r * V, V, cont[b + r + 1]);
      total += l;
      nscored++;
      if (lp) lp[b + r + 1] = l;
    }
  }
  *sum = total;
  return nscored;
}

/* ------------------------------------------------------------------ outputs and rows */

int32_t *ji_output_ids(const cJSON *output, int vocab, long *n, char *err, size_t errlen) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(output, "token_ids");
  if (!cJSON_IsArray(arr)) {
    xl_errf(err, errlen, "no token_ids (save it again with xl-save)");
    return NULL;
  }
  *n = cJSON_GetArraySize(arr);
  int32_t *ids = xl_malloc(sizeof *ids * (size_t)(*n + 1));
  long k = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, arr) {
    double v = x->valuedouble;
    if (!cJSON_IsNumber(x) || v < 0 || v >= vocab || v != (double)(int32_t)v) {
      xl_errf(err, errlen, "token_ids[%ld] is not an id of the critic's vocabulary [0, %d)", k, vocab);
      free(ids);
      return NULL;
    }
    ids[k++] = (int32_t)v;
  }
  return ids;
}

const char *const ji_csv_cols[] = {"slug", "trial", "avg_logprob", "ppl", "len_tokens", "distinct2", "distinct3",
                                   "backend", "chunk_size", "heads_per_band", "workers", "context"};
const size_t ji_ncsv_cols = sizeof ji_csv_cols / sizeof *ji_csv_cols;

static void add_num_or_null(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static void copy_or_null(cJSON *row, const cJSON *from, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, k);
  cJSON_AddItemToObject(row, k, v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
}

cJSON *ji_rating_row(const cJSON *output, const char *text, long ncont, double sum, long nscored, long nprompt) {
  cJSON *row = cJSON_CreateObject();
  copy_or_null(row, output, "slug");
  copy_or_null(row, output, "trial");
  double avg = nscored > 0 ? sum / (double)nscored : NAN;
  add_num_or_null(row, "avg_logprob", avg);
  add_num_or_null(row, "ppl", exp(-avg));
  cJSON_AddNumberToObject(row, "len_tokens", (double)ncont);
  add_num_or_null(row, "distinct2", ts_distinct_n(text ? text : "", 2));
  add_num_or_null(row, "distinct3", ts_distinct_n(text ? text : "", 3));
  for (int k = 0; k < 5; k++) copy_or_null(row, output, tr_param_names[k]);
  cJSON_AddNumberToObject(row, "scored_tokens", (double)nscored);
  cJSON_AddNumberToObject(row, "prompt_tokens", (double)nprompt);
  copy_or_null(row, output, "prompt_file");
  return row;
}
