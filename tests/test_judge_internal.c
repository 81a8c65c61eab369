/* Tests of the internal judge's scoring (lib/judge/judge_internal.c) on the default model:
 *  - golden cases: ids[:k] as prompt, ids[k:] as continuation; the mean log-prob must equal
 *    the one computed here from the reference's own logits (golden.safetensors caseN.logits,
 *    rows k-1..L-2), tolerance 1e-3, for several k, backends, chunk sizes and block sizes;
 *  - golden greedy generations (prompt_ids + new_ids): against a reference computed here
 *    token by token through the recurrent step path (a different code path from the
 *    chunkwise scoring), with a log-softmax of our own;
 *  - the off-by-one (scoring token t against the logits at position t instead of t-1) gives
 *    a clearly different number, and greedy tokens are the argmax of the rows we score them
 *    with;
 *  - rows: avg/ppl/len and distinct-2/3 as exact fractions, nulls where undefined. */
#include "judge/judge_internal.h"
#include "io/safetensors.h"
#include "testlib.h"
#include "base/util.h"
#include <cJSON.h>
#include <math.h>

/* Our own log-softmax: -log sum_i exp(x_i - x_id), shifted by the target's logit (the
 * logits are soft-capped to |x| <= 30, so no term can overflow), Kahan-summed. */
static double ref_lsm(const float *x, int V, int id) {
  double s = 0, comp = 0;
  for (int i = 0; i < V; i++) {
    double y = exp((double)x[i] - (double)x[id]) - comp, t = s + y;
    comp = (t - s) - y;
    s = t;
  }
  return -log(s);
}

static int32_t *ids_of(const cJSON *arr, int *n) {
  *n = cJSON_GetArraySize(arr);
  int32_t *v = xl_malloc(sizeof *v * (size_t)(*n + 1));
  int k = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, arr) v[k++] = (int32_t)x->valuedouble;
  return v;
}

static const float *golden_logits(const st_set *g, int ci, int T, int V) {
  char nm[64];
  snprintf(nm, sizeof nm, "case%d.logits", ci);
  const st_tensor *t = st_find(g, nm);
  return t && t->dtype == ST_F32 && t->numel == (int64_t)T * V ? t->data : NULL;
}

typedef struct { xl_backend b; int ck, w, hpb; long block; } variant;

static void golden_cases(const xl_model *m, const cJSON *cases, const st_set *g) {
  int V = m->cfg.vocab;
  const variant vars[] = {{XL_BACKEND_CHUNKWISE, 64, 1, 1, 0}, {XL_BACKEND_CHUNKWISE, 16, 2, 2, 5},
                          {XL_BACKEND_RECURRENT, 64, 1, 1, 0}};
  const cJSON *c;
  int ci = 0, tested = 0;
  cJSON_ArrayForEach(c, cases) {
    int L;
    int32_t *ids = ids_of(cJSON_GetObjectItem(c, "ids"), &L);
    const float *gl = golden_logits(g, ci, L, V);
    if (L < 9) { free(ids); ci++; continue; }   /* too short to split meaningfully */
    CHECK(gl != NULL, "case %d: golden logits [%d, %d] present", ci, L, V);
    if (!gl) { free(ids); ci++; continue; }
    /* per token, once: rlp[t] = token t scored with the golden row t-1 (the reference);
     * wlp[t] = token t scored with row t (the off-by-one) */
    double *rlp = xl_calloc((size_t)L, sizeof *rlp), *wlp = xl_calloc((size_t)L, sizeof *wlp);
    for (int t = 1; t < L; t++) rlp[t] = ref_lsm(gl + (size_t)(t - 1) * V, V, ids[t]);
    for (int t = 0; t < L - 1; t++) wlp[t] = ref_lsm(gl + (size_t)t * V, V, ids[t]);
    const int ks[] = {1, L / 2, L - 2};
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
      int k = ks[ki];
      double ref = 0, wrong = 0;
      for (int t = k; t < L; t++) ref += rlp[t];
      ref /= (L - k);
      for (int t = k; t < L - 1; t++) wrong += wlp[t];
      wrong /= (L - 1 - k);
      for (size_t vi = 0; vi < sizeof vars / sizeof *vars; vi++) {
        xl_runopts o = {.backend = vars[vi].b, .chunk_size = vars[vi].ck, .workers = vars[vi].w, .heads_per_band = vars[vi].hpb};
        char err[256];
        xl_session *s = xl_session_new(m, &o, err, sizeof err);
        ji_scorer sc;
        ji_scorer_init(&sc, s, vars[vi].block);
        double sum, *lp = xl_malloc(sizeof(double) * (size_t)(L - k));
        long ns = ji_score(&sc, ids, k, ids + k, L - k, &sum, lp);
        double mean = sum / (double)ns, worst = 0;
        for (int t = k; t < L; t++) worst = fmax(worst, fabs(lp[t - k] - rlp[t]));
        CHECK(ns == L - k && fabs(mean - ref) <= 1e-3,
              "case %d k=%d %s ck=%d w=%d block=%ld: mean log-prob %.6f vs golden %.6f (%ld tokens)", ci, k,
              xl_backend_name(o.backend), o.chunk_size, o.workers, sc.block, mean, ref, ns);
        CHECK(worst <= 2e-3, "case %d k=%d %s ck=%d: per-token log-probs within %.1e of golden", ci, k,
              xl_backend_name(o.backend), o.chunk_size, worst);
        if (vi == 0 && L - 1 - k >= 2)
          CHECK(fabs(wrong - mean) > 0.05, "case %d k=%d: scoring against position t instead of t-1 differs (%.4f vs %.4f)",
                ci, k, wrong, mean);
        free(lp);
        ji_scorer_free(&sc);
        xl_session_free(s);
      }
      tested++;
    }
    free(rlp);
    free(wlp);
    free(ids);
    ci++;
  }
  CHECK(tested >= 6, "%d golden case splits tested", tested);
}

static void generations(const xl_model *m, const cJSON *gens) {
  int V = m->cfg.vocab;
  char err[256];
  xl_runopts o;
  xl_runopts_default(&o, m);
  o.backend = XL_BACKEND_CHUNKWISE;
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  xl_runopts ro = o;
  ro.backend = XL_BACKEND_RECURRENT;
  xl_session *rs = xl_session_new(m, &ro, err, sizeof err);
  ji_scorer sc, small;
  ji_scorer_init(&sc, s, 0);
  const cJSON *gj;
  int gi = 0;
  cJSON_ArrayForEach(gj, gens) {
    int np, nc;
    int32_t *p = ids_of(cJSON_GetObjectItem(gj, "prompt_ids"), &np);
    int32_t *c = ids_of(cJSON_GetObjectItem(gj, "new_ids"), &nc);
    /* reference: step the prompt, then each continuation token, scoring before stepping */
    xl_session_reset(rs);
    for (int t = 0; t < np; t++) xl_step(rs, p[t]);
    double ref = 0, wrong = 0;
    int argmax_hits = 0;
    for (int t = 0; t < nc; t++) {
      ref += ref_lsm(rs->logits, V, c[t]);
      int best = 0;
      for (int i = 1; i < V; i++) if (rs->logits[i] > rs->logits[best]) best = i;
      argmax_hits += best == c[t];
      xl_step(rs, c[t]);
      if (t + 1 < nc) wrong += ref_lsm(rs->logits, V, c[t]);   /* token t against position t */
    }
    ref /= nc;
    wrong /= nc - 1;
    double sum;
    long ns = ji_score(&sc, p, np, c, nc, &sum, NULL);
    double mean = sum / (double)ns;
    CHECK(ns == nc && fabs(mean - ref) <= 1e-3, "generation %d (%d+%d tokens): mean log-prob %.6f vs step reference %.6f", gi,
          np, nc, mean, ref);
    CHECK(fabs(wrong - mean) > 0.05, "generation %d: the off-by-one scoring differs (%.4f vs %.4f)", gi, wrong, mean);
    /* greedy tokens are the argmax of the row that predicts them (allow one near-tie flip) */
    CHECK(argmax_hits >= nc - 1, "generation %d: %d/%d greedy tokens are the argmax of their scoring row", gi, argmax_hits, nc);
    /* blocks of 3 give the same sums as one block */
    ji_scorer_init(&small, s, 3);
    double sum3;
    long ns3 = ji_score(&small, p, np, c, nc, &sum3, NULL);
    CHECK(ns3 == ns && fabs(sum3 - sum) <= 1e-3, "generation %d: block 3 sum %.6f equals one block %.6f", gi, sum3, sum);
    /* the same prompt again comes from the kept state: bitwise the same as a fresh prefill
     * (small's last prompt is this one too, so compare against a brand-new scorer) */
    double again, other, fresh;
    ji_score(&sc, p, np, c, nc, &again, NULL);
    ji_score(&sc, p, np, c + 1, nc - 1, &other, NULL);
    ji_scorer fs;
    ji_scorer_init(&fs, rs, 0);   /* rs: recurrent prefill, a different way to the prompt state */
    ji_score(&fs, p, np, c + 1, nc - 1, &fresh, NULL);
    ji_scorer_free(&fs);
    CHECK(again == sum && fabs(other - fresh) <= 1e-3, "generation %d: kept prompt state: same sum again, another continuation "
          "%.6f as from scratch %.6f", gi, other, fresh);
    ji_scorer_free(&small);
    free(p);
    free(c);
    gi++;
  }
  CHECK(gi >= 3, "%d golden generations scored", gi);

  /* no prompt: the first token has nothing to be scored against */
  int32_t c3[3] = {312, 443, 279};
  double lp[3], sum;
  long ns = ji_score(&sc, NULL, 0, c3, 3, &sum, lp);
  CHECK(ns == 2 && isnan(lp[0]) && isfinite(lp[1]) && fabs(lp[1] + lp[2] - sum) < 1e-12, "empty prompt: %ld of 3 tokens scored", ns);
  ns = ji_score(&sc, c3, 1, c3, 0, &sum, NULL);
  CHECK(ns == 0 && sum == 0, "empty continuation: nothing scored");
  ji_scorer_free(&sc);
  xl_session_free(s);
  xl_session_free(rs);
}

static void log_softmax_cases(void) {
  float u[4] = {0, 0, 0, 0};
  CHECK(fabs(ji_log_softmax(u, 4, 2) + log(4.0)) < 1e-12, "uniform logits: log(1/4)");
  float big[2] = {1000, 0};
  double a = ji_log_softmax(big, 2, 0), b = ji_log_softmax(big, 2, 1);
  CHECK(isfinite(a) && fabs(a) < 1e-12 && fabs(b + 1000) < 1e-9, "large logits do not overflow (%.3g, %.6f)", a, b);
  float x[3] = {1.5f, -2.0f, 0.25f};
  double z = exp(1.5) + exp(-2.0) + exp(0.25);
  CHECK(fabs(ji_log_softmax(x, 3, 1) - (-2.0 - log(z))) < 1e-12, "log-softmax matches the formula");
}

static double num(const cJSON *row, const char *k) {
  const cJSON *x = cJSON_GetObjectItem(row, k);
  return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
static int is_null(const cJSON *row, const char *k) { return cJSON_IsNull(cJSON_GetObjectItem(row, k)); }

static void rows(void) {
  cJSON *out = cJSON_Parse("{\"slug\":\"s1\",\"trial\":7,\"backend\":\"chunkwise\",\"chunk_size\":16,"
                           "\"heads_per_band\":2,\"workers\":1,\"context\":64,\"prompt_file\":\"p.txt\"}");
  /* "a b a b a": bigrams ab ba ab ba -> 2/4; trigrams aba bab aba -> 2/3 */
  cJSON *r = ji_rating_row(out, "a b a b a", 5, -3.0, 4, 10);
  CHECK(num(r, "distinct2") == 0.5 && num(r, "distinct3") == 2.0 / 3.0, "distinct-2/3 of 'a b a b a' = 1/2, 2/3");
  CHECK(num(r, "avg_logprob") == -0.75 && num(r, "ppl") == exp(0.75) && num(r, "len_tokens") == 5 &&
            num(r, "scored_tokens") == 4 && num(r, "prompt_tokens") == 10,
        "avg = sum/scored, ppl = exp(-avg), len_tokens");
  CHECK(!strcmp(cJSON_GetObjectItem(r, "slug")->valuestring, "s1") && num(r, "trial") == 7 && num(r, "chunk_size") == 16 &&
            num(r, "heads_per_band") == 2 && num(r, "context") == 64 &&
            !strcmp(cJSON_GetObjectItem(r, "backend")->valuestring, "chunkwise"),
        "the trial's parameters are copied");
  cJSON_Delete(r);
  /* three words, tabs/newlines as separators, one repeated bigram pair */
  r = ji_rating_row(out, "x\ty\nx y", 2, -1.0, 1, 1);
  CHECK(num(r, "distinct2") == 2.0 / 3.0 && num(r, "distinct3") == 1.0, "distinct of 'x y x y' = 2/3, 2/2");
  cJSON_Delete(r);
  r = ji_rating_row(out, "one", 1, 0, 0, 0);
  CHECK(is_null(r, "distinct2") && is_null(r, "distinct3") && is_null(r, "avg_logprob") && is_null(r, "ppl"),
        "undefined values are null (one word, nothing scored)");
  cJSON_Delete(r);
  cJSON *bare = cJSON_Parse("{\"slug\":\"s2\"}");
  r = ji_rating_row(bare, "x y", 2, -2.0, 2, 3);
  CHECK(is_null(r, "backend") && is_null(r, "trial") && num(r, "distinct2") == 1.0 && is_null(r, "distinct3"),
        "missing parameters are null; 'x y' has distinct-2 1 and no trigram");
  cJSON_Delete(r);
  cJSON_Delete(bare);
  cJSON_Delete(out);
}

/* token_ids of an output as ids the critic can score, or a message naming the bad entry. */
static void output_ids(void) {
  char err[256];
  long n = -1;
  cJSON *out = cJSON_Parse("{\"token_ids\":[0,5,9]}");
  int32_t *ids = ji_output_ids(out, 10, &n, err, sizeof err);
  CHECK(ids && n == 3 && ids[0] == 0 && ids[1] == 5 && ids[2] == 9, "token_ids read as ids");
  free(ids);
  CHECK(!ji_output_ids(out, 9, &n, err, sizeof err) && strstr(err, "token_ids[2]") && strstr(err, "[0, 9)"),
        "an id past the vocabulary names its index (%s)", err);
  cJSON_Delete(out);
  static const char *bad[] = {"{\"token_ids\":[1,-1]}", "{\"token_ids\":[1.5]}", "{\"token_ids\":[\"3\"]}"};
  for (int k = 0; k < 3; k++) {
    out = cJSON_Parse(bad[k]);
    ids = ji_output_ids(out, 10, &n, err, sizeof err);
    CHECK(!ids && strstr(err, "is not an id"), "%s refused (%s)", bad[k], err);
    cJSON_Delete(out);
  }
  out = cJSON_Parse("{\"text\":\"x\"}");
  CHECK(!ji_output_ids(out, 10, &n, err, sizeof err) && strstr(err, "no token_ids"), "no token_ids (%s)", err);
  cJSON_Delete(out);
  out = cJSON_Parse("{\"token_ids\":[]}");
  ids = ji_output_ids(out, 10, &n, err, sizeof err);
  CHECK(ids && n == 0, "an empty continuation has no ids");
  free(ids);
  cJSON_Delete(out);
}

int main(void) {
  log_softmax_cases();
  rows();
  output_ids();
  const char *root = getenv("XL_ROOT");
  char md[4096], path[4096], err[512];
  snprintf(md, sizeof md, "%s/models/xlstm-tiny-pydocs", root ? root : ".");
  xl_model *m = xl_model_load(md, err, sizeof err);
  CHECK(m != NULL, "default model loads (%s)", m ? md : err);
  if (!m) return tl_done();
  snprintf(path, sizeof path, "%s/xlstm-tiny-pydocs/golden.json", tl_golden_dir());
  char *text = xl_read_file(path, NULL);
  cJSON *gj = text ? cJSON_Parse(text) : NULL;
  free(text);
  CHECK(gj != NULL, "golden.json parses");
  snprintf(path, sizeof path, "%s/xlstm-tiny-pydocs/golden.safetensors", tl_golden_dir());
  st_set g;
  int grc = st_open_file(&g, path, err, sizeof err);
  CHECK(grc == 0, "golden.safetensors opens");
  if (gj && !grc) {
    golden_cases(m, cJSON_GetObjectItem(gj, "cases"), &g);
    generations(m, cJSON_GetObjectItem(gj, "generations"));
    st_close(&g);
  }
  cJSON_Delete(gj);
  xl_model_free(m);
  return tl_done();
}
