/* test_choose: the noise-aware choice of lib/sweep (stats.c, choose.c) and its use by
 * best.json (sw_best): Student's t and intervals; two settings whose timings differ by
 * less than the noise tie (and the simpler wins); a knob that cannot affect a measurement
 * is never chosen by it; a synthetic sweep with a known front yields that front, from noisy
 * repeated measurements; the paired test of quality. */
#include "sweep/choose.h"
#include "sweep/stats.h"
#include "sweep/sweep_run.h"
#include "sweep/sweep_search.h"
#include "testlib.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static sw_setting S(const char *b, int ck, int h, int w, const char *mm) {
  sw_setting s;
  memset(&s, 0, sizeof s);
  snprintf(s.v[XS_BACKEND], SW_VAL_MAX, "%s", b);
  snprintf(s.v[XS_CHUNK_SIZE], SW_VAL_MAX, "%d", ck);
  snprintf(s.v[XS_HEADS_PER_BAND], SW_VAL_MAX, "%d", h);
  snprintf(s.v[XS_WORKERS], SW_VAL_MAX, "%d", w);
  if (mm) snprintf(s.v[XS_MATMUL], SW_VAL_MAX, "%s", mm);
  sw_setting_normalize(&s);
  return s;
}

static void test_stats(void) {
  CHECK(fabs(st_t95(1) - 12.7062) < 1e-4 && fabs(st_t95(4) - 2.7764) < 1e-4 && fabs(st_t95(30) - 2.0423) < 1e-4,
        "t95: the table (df 1, 4, 30)");
  CHECK(fabs(st_t95(60) - 2.0003) < 2e-3 && fabs(st_t95(1000) - 1.9623) < 1e-3 && isnan(st_t95(0)),
        "t95: the expansion beyond 30 (%.4f, %.4f), none for df 0", st_t95(60), st_t95(1000));
  double v[] = {10, 12, 11, 9, 13};
  st_summary s = st_summarize(v, 5);
  CHECK(s.n == 5 && fabs(s.mean - 11) < 1e-12 && fabs(s.sd - sqrt(2.5)) < 1e-12 &&
            fabs(s.ci95 - 2.7764 * sqrt(2.5) / sqrt(5)) < 1e-4,
        "summary: mean, sample sd, t interval (%g %g %g)", s.mean, s.sd, s.ci95);
  double one[] = {5, NAN};
  s = st_summarize(one, 2);
  CHECK(s.n == 1 && s.mean == 5 && isnan(s.sd) && isnan(s.ci95), "summary: one value has no spread; NaN skipped");
  st_interval a = st_interval_of(100, 5), b = st_interval_of(108, 2), c = st_interval_of(104, 2), u = st_interval_of(200, NAN);
  CHECK(st_cmp_intervals(b, a) == 1 && st_cmp_intervals(a, b) == -1, "intervals that separate: a real difference");
  CHECK(st_cmp_intervals(c, a) == 0 && st_cmp_intervals(a, c) == 0, "overlapping intervals: a tie");
  CHECK(st_cmp_intervals(u, a) == 0, "an unknown spread: a tie, however far apart the means");
  double q1[] = {-2.0, -2.1, -1.9, -2.2}, q2[] = {-2.2, -2.3, -2.1, -2.4}, q3[] = {-1.8, -2.4, -1.7, -2.3};
  int verdict;
  st_summary d = st_paired(q1, q2, 4, &verdict);
  CHECK(verdict == 1 && fabs(d.mean - 0.2) < 1e-12 && d.sd < 1e-12, "paired: the same +0.2 every time is real");
  st_paired(q1, q3, 4, &verdict);
  CHECK(verdict == 0, "paired: differences of both signs are noise");
  st_paired(q1, q1, 4, &verdict);
  CHECK(verdict == 0, "paired: identical scores tie");
}

/* Runs interleaved in one batch pair up round by round: drift that widens both intervals
 * cancels in the differences. */
static void test_rounds(void) {
  /* the machine slows down halfway through; B is 10% faster in every round */
  double a[8] = {1000, 1010, 990, 1005, 500, 510, 495, 505}, b[8];
  for (int k = 0; k < 8; k++) b[k] = a[k] * 1.1;
  st_summary sa = st_summarize(a, 8), sb = st_summarize(b, 8);
  CHECK(st_cmp_intervals(st_interval_of(sb.mean, sb.ci95), st_interval_of(sa.mean, sa.ci95)) == 0,
        "drift: unpaired, the intervals overlap (a tie)");
  CHECK(st_cmp_rounds(b, 8, 7, a, 8, 7) == 1 && st_cmp_rounds(a, 8, 7, b, 8, 7) == -1,
        "drift: round by round in one batch, B is faster beyond the noise");
  CHECK(st_cmp_rounds(b, 8, 7, a, 8, 9) == 2 && st_cmp_rounds(b, 8, 0, a, 8, 0) == 2 && st_cmp_rounds(b, 7, 7, a, 8, 7) == 2,
        "runs of different batches, or none, or of different counts: not paired");
  CHECK(st_cmp_rounds(a, 8, 7, a, 8, 7) == 0, "a measurement shared by two trials: a tie");
}

/* Two settings, two objectives (prefill, decode), intervals given directly. */
static void test_ties_and_knobs(void) {
  static const int max2[2] = {1, 1};
  static const unsigned aff[2] = {XS_AFFECTS_PREFILL, XS_AFFECTS_DECODE};
  /* A: workers 1 (default), B: workers 2; B's prefill and decode means are higher, but by
   * less than the noise */
  sw_setting set[2] = {S("chunkwise", 64, 1, 1, NULL), S("chunkwise", 64, 1, 2, NULL)};
  st_interval v[4] = {st_interval_of(1000, 40), st_interval_of(300, 20), st_interval_of(1030, 40), st_interval_of(310, 20)};
  ch_table t = {.n = 2, .nobj = 2, .set = set, .v = v, .maximize = max2, .affects = aff};
  unsigned char front[2], cand[2] = {1, 1};
  long dom[2], tied[2];
  CHECK(ch_cmp(&t, 1, 0, 0) == 0 && ch_cmp(&t, 1, 0, 1) == 0 && ch_ties(&t, 0, 1),
        "timings that differ by less than the noise tie on both speeds");
  CHECK(ch_front(&t, front, dom, tied) == 1 && front[0] && !front[1] && tied[1] == 0,
        "the front keeps the simpler (1 worker) and marks the other tied with it");
  ch_pick_info pi;
  CHECK(ch_pick(&t, cand, 0, 1, -1, &pi) == 0 && pi.fastest == 1 && !pi.significant && pi.nties == 2,
        "the pick: the simpler setting, not the faster mean; not significant; two tie");
  /* the same gap with tight intervals is real */
  v[0] = st_interval_of(1000, 4), v[2] = st_interval_of(1030, 4), v[1] = st_interval_of(300, 2), v[3] = st_interval_of(310, 2);
  CHECK(ch_pick(&t, cand, 0, 1, -1, &pi) == 1 && pi.significant && ch_front(&t, front, dom, tied) == 1 && front[1] &&
            dom[0] == 1,
        "beyond the noise: the faster setting, significantly, and it dominates the other");

  /* A knob that cannot affect a measurement is never chosen by it: C and D differ only in
   * chunk size (prefill only); D's decode reads far higher, its prefill the same within noise */
  sw_setting cd[2] = {S("chunkwise", 64, 1, 1, NULL), S("chunkwise", 16, 1, 1, NULL)};
  st_interval w[4] = {st_interval_of(1000, 30), st_interval_of(300, 1), st_interval_of(1010, 30), st_interval_of(600, 1)};
  ch_table u = {.n = 2, .nobj = 2, .set = cd, .v = w, .maximize = max2, .affects = aff};
  CHECK(ch_cmp(&u, 1, 0, 1) == 0, "chunk size cannot change decode: the decode gap is not a difference");
  CHECK(ch_pick(&u, cand, 0, 1, -1, &pi) == 0 && !pi.significant,
        "picking by decode never chooses the chunk size: the default (64) stands");
  CHECK(ch_front(&u, front, dom, tied) == 1 && front[0] && tied[1] == 0, "... and the front holds only it");
  /* with matmul differing too, the decode gap counts again (matmul can change decode) */
  snprintf(cd[1].v[XS_MATMUL], SW_VAL_MAX, "bf16");
  snprintf(cd[0].v[XS_MATMUL], SW_VAL_MAX, "fp32");
  CHECK(ch_cmp(&u, 1, 0, 1) == 1 && ch_pick(&u, cand, 0, 1, -1, &pi) == 1, "a knob that can change decode: ranked by it");
}

/* sw_best on records: the same rules in best.json. */
static cJSON *rec(const char *slug, int ck, int w, double pre, double pci, double dec, double dci) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "slug", slug);
  cJSON_AddStringToObject(o, "status", "ok");
  cJSON_AddStringToObject(o, "backend", "chunkwise");
  cJSON_AddNumberToObject(o, "chunk_size", ck);
  cJSON_AddNumberToObject(o, "heads_per_band", 1);
  cJSON_AddNumberToObject(o, "workers", w);
  cJSON_AddNumberToObject(o, "prompt_tokens", 64);
  cJSON_AddNumberToObject(o, "prefill_tok_s", pre);
  cJSON_AddNumberToObject(o, "prefill_tok_s_ci95", pci);
  cJSON_AddNumberToObject(o, "decode_tok_s", dec);
  cJSON_AddNumberToObject(o, "decode_tok_s_ci95", dci);
  return o;
}

static double param(const cJSON *b, const char *k) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(b, "params"), k)->valuedouble;
}

static void test_best(void) {
  /* decode: ck16 reads 60 vs ck64's 30, but chunk size cannot change decode -> the default */
  cJSON *t = cJSON_CreateArray();
  cJSON_AddItemToArray(t, rec("a", 64, 1, 1000, 10, 30, 1));
  cJSON_AddItemToArray(t, rec("b", 16, 1, 1005, 10, 60, 1));
  cJSON *b = sw_best(t, SW_OBJ_DECODE);
  CHECK(b && param(b, "chunk_size") == 64 && cJSON_IsFalse(cJSON_GetObjectItem(b, "significant")) &&
            cJSON_GetArraySize(cJSON_GetObjectItem(b, "ties")) == 1,
        "best decode: never ranked by the chunk size; a tie, reported");
  cJSON_Delete(b);
  /* prefill: the same pair; ck16 faster beyond the noise -> ck16, significantly */
  cJSON_Delete(t);
  t = cJSON_CreateArray();
  cJSON_AddItemToArray(t, rec("a", 64, 1, 1000, 10, 30, 1));
  cJSON_AddItemToArray(t, rec("b", 16, 1, 1100, 10, 30, 1));
  b = sw_best(t, SW_OBJ_PREFILL);
  CHECK(b && param(b, "chunk_size") == 16 && cJSON_IsTrue(cJSON_GetObjectItem(b, "significant")),
        "best prefill: a chunk size faster beyond the noise wins, significantly");
  cJSON_Delete(b);
  /* decode within the noise between 1 and 2 workers: the simpler, 1 */
  cJSON_Delete(t);
  t = cJSON_CreateArray();
  cJSON_AddItemToArray(t, rec("a", 64, 2, 1000, 10, 33, 5));
  cJSON_AddItemToArray(t, rec("b", 64, 1, 1000, 10, 30, 5));
  b = sw_best(t, SW_OBJ_DECODE);
  CHECK(b && param(b, "workers") == 1 && cJSON_IsFalse(cJSON_GetObjectItem(b, "significant")),
        "best decode: 2 workers not faster beyond the noise -> 1 worker");
  cJSON_Delete(b);
  cJSON_Delete(t);
}

/* A synthetic sweep with a known front: 4 x 4 settings (chunk size x workers) x 2 matmul
 * with made-up true speeds and quality; each measured with 5 noisy repeats (noise well
 * below the true gaps). The noise-aware front equals the true front of the true values. */
static double gauss(sw_rng *r) {
  double u1 = sw_rng_unit(r) + 1e-12, u2 = sw_rng_unit(r);
  return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static void test_synthetic_front(void) {
  enum { N = 32, R = 5, K = 3 };
  static const int ck[4] = {16, 32, 64, 128}, w[4] = {1, 2, 3, 4};
  sw_setting set[N];
  double truth[N * K];
  st_interval iv[N * K];
  sw_rng rng;
  sw_rng_seed(&rng, 7);
  size_t n = 0;
  for (int m = 0; m < 2; m++)
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 4; b++, n++) {
        set[n] = S("chunkwise", ck[a], 1, w[b], m ? "bf16" : "fp32");
        /* prefill peaks at chunk 32 and grows with workers; decode grows with workers; bf16
         * is faster on both and worse in quality */
        double pre = 1000 + 400 * w[b] - 150 * fabs(log2(ck[a] / 32.0)) + (m ? 600 : 0);
        double dec = 200 + 60 * w[b] + (m ? 80 : 0);
        double q = m ? -2.4 : -2.0;
        truth[n * K] = pre, truth[n * K + 1] = dec, truth[n * K + 2] = q;
        double noise[K] = {8, 3, 0};
        for (int j = 0; j < K; j++) {
          double x[R];
          for (int r = 0; r < R; r++) x[r] = truth[n * K + j] + noise[j] * gauss(&rng);
          st_summary s = st_summarize(x, R);
          iv[n * K + j] = noise[j] ? st_interval_of(s.mean, s.ci95) : st_interval_of(s.mean, 0);
        }
      }
  static const int max3[K] = {1, 1, 1};
  static const unsigned aff[K] = {XS_AFFECTS_PREFILL, XS_AFFECTS_DECODE, XS_AFFECTS_OUTPUT};
  ch_table t = {.n = N, .nobj = K, .set = set, .v = iv, .maximize = max3, .affects = aff};
  unsigned char front[N];
  long dom[N], tied[N];
  size_t nf = ch_front(&t, front, dom, tied);
  /* the true front: not dominated on the true values (chunk 32 with 4 workers, in fp32 for
   * quality and in bf16 for speed) */
  int want[N], nwant = 0, same = 1;
  for (size_t i = 0; i < N; i++) {
    want[i] = 1;
    for (size_t o = 0; o < N && want[i]; o++) {
      int ge = 1, gt = 0;
      for (int j = 0; j < K; j++) {
        ge &= truth[o * K + j] >= truth[i * K + j];
        gt |= truth[o * K + j] > truth[i * K + j];
      }
      if (o != i && ge && gt) want[i] = 0;
    }
    nwant += want[i];
    same &= want[i] == front[i];
  }
  CHECK(nwant == 2 && nf == 2 && same, "synthetic sweep: the noisy front is the true front (%zu rows, want %d)", nf, nwant);
  int right = 1;
  for (size_t i = 0; i < N; i++)
    if (front[i]) right &= !strcmp(set[i].v[XS_CHUNK_SIZE], "32") && !strcmp(set[i].v[XS_WORKERS], "4");
  CHECK(right, "... chunk 32, 4 workers, once in fp32 and once in bf16");
  /* with noise far above every speed gap, the settings of one output tie and the simplest
   * (chunk 64 = the default, 1 worker) stands for them: no pick of noise; and bf16, no
   * faster beyond the noise but worse in quality, drops off */
  for (size_t i = 0; i < N; i++)
    for (int j = 0; j < 2; j++) iv[i * K + j] = st_interval_of(iv[i * K + j].mean, 5000);
  nf = ch_front(&t, front, dom, tied);
  int simplest = 1;
  for (size_t i = 0; i < N; i++)
    if (front[i])
      simplest &= !strcmp(set[i].v[XS_CHUNK_SIZE], "64") && !strcmp(set[i].v[XS_WORKERS], "1") && !strcmp(set[i].v[XS_MATMUL], "fp32");
  CHECK(nf == 1 && simplest, "huge noise: every speed ties; the simplest fp32 setting stands alone (%zu)", nf);
}

/* The paired quality test through the table's cmp hook (as xl-merge uses it). */
typedef struct { const double *q; size_t K; } qctx;
static int qcmp(void *ctx, size_t a, size_t b, size_t j) {
  qctx *c = ctx;
  if (j != 1) return 2;
  int v;
  st_paired(c->q + a * c->K, c->q + b * c->K, c->K, &v);
  return v;
}

static void test_paired_quality(void) {
  static const int max2[2] = {1, 1};
  static const unsigned aff[2] = {XS_AFFECTS_DECODE, XS_AFFECTS_OUTPUT};
  sw_setting set[2] = {S("chunkwise", 64, 1, 1, "fp32"), S("chunkwise", 64, 1, 1, "bf16")};
  /* the samples' scores vary a lot between prompts, but bf16 is 0.1 lower on every one:
   * unpaired intervals overlap, the paired test sees it */
  double q[8] = {-1.0, -2.0, -3.0, -1.5, -1.1, -2.1, -3.1, -1.6};
  qctx c = {q, 4};
  st_interval v[4] = {st_interval_of(300, 1), st_interval_of(-1.875, 1.4), st_interval_of(300.5, 1), st_interval_of(-1.975, 1.4)};
  ch_table t = {.n = 2, .nobj = 2, .set = set, .v = v, .maximize = max2, .affects = aff};
  CHECK(ch_cmp(&t, 0, 1, 1) == 0, "unpaired, the quality gap is within the noise");
  t.cmp = qcmp, t.ctx = &c;
  CHECK(ch_cmp(&t, 0, 1, 1) == 1 && ch_dominates(&t, 0, 1), "paired, fp32 is better beyond the noise and dominates");
}

int main(void) {
  test_stats();
  test_rounds();
  test_ties_and_knobs();
  test_best();
  test_synthetic_front();
  test_paired_quality();
  return tl_done();
}
