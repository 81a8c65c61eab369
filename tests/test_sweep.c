/* test_sweep: unit tests of xl-sweep's library parts: the list/range parser, keys and
 * slugs, the PRNG and grid/random plans, GA and NSGA-II determinism on a made-up
 * fitness, non-dominated sorting and crowding distance on crafted points, the torn-line
 * repair of trials.jsonl, the best-setting choice, and settings layering. */
#include "sweep/sweep_config.h"
#include "sweep/sweep_run.h"
#include "sweep/sweep_search.h"
#include "sweep/sweep_space.h"
#include "sweep/sweep_trial.h"
#include "testlib.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A setting of the four classic knobs (and nothing else searched). */
static sw_setting S(const char *b, int ck, int h, int w) {
  sw_setting s;
  memset(&s, 0, sizeof s);
  snprintf(s.v[XS_BACKEND], SW_VAL_MAX, "%s", b);
  snprintf(s.v[XS_CHUNK_SIZE], SW_VAL_MAX, "%d", ck);
  snprintf(s.v[XS_HEADS_PER_BAND], SW_VAL_MAX, "%d", h);
  snprintf(s.v[XS_WORKERS], SW_VAL_MAX, "%d", w);
  sw_setting_normalize(&s);
  return s;
}
static int K(const sw_setting *s, int k) { return atoi(s->v[k]); }
static int is_rec(const sw_setting *s) { return !strcmp(s->v[XS_BACKEND], "recurrent"); }

static int list_is(const sw_list *l, const long *want, size_t n) {
  if (l->n != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (l->v[i] != want[i]) return 0;
  return 1;
}

static void test_lists(void) {
  char err[256];
  sw_list l;
  CHECK(sw_list_parse("16,32,64", 1, 1000, &l, err, sizeof err) == 0 && list_is(&l, (long[]){16, 32, 64}, 3),
        "list: comma list");
  sw_list_free(&l);
  CHECK(sw_list_parse("1-4", 1, 1000, &l, err, sizeof err) == 0 && list_is(&l, (long[]){1, 2, 3, 4}, 4),
        "list: range a-b");
  sw_list_free(&l);
  CHECK(sw_list_parse("16-256*2", 1, 1000, &l, err, sizeof err) == 0 &&
            list_is(&l, (long[]){16, 32, 64, 128, 256}, 5),
        "list: multiplicative range");
  sw_list_free(&l);
  CHECK(sw_list_parse("8-30+8", 1, 1000, &l, err, sizeof err) == 0 && list_is(&l, (long[]){8, 16, 24}, 3),
        "list: additive range stops at the end");
  sw_list_free(&l);
  CHECK(sw_list_parse(" 64 , 16,16-32*2 ,5", 1, 1000, &l, err, sizeof err) == 0 &&
            list_is(&l, (long[]){5, 16, 32, 64}, 4),
        "list: spaces, mixed items, sorted and deduplicated");
  sw_list_free(&l);
  CHECK(sw_list_parse("7", 1, 1000, &l, err, sizeof err) == 0 && list_is(&l, (long[]){7}, 1), "list: one value");
  sw_list_free(&l);
  static const char *bad[] = {"", "1,,2", "x", "4-1", "1-", "-", "1-8*1", "0-8*2", "1-8+0", "16,2000", "1.5", "3x",
                              "1-9+", "0"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    int rc = sw_list_parse(bad[i], 1, 1000, &l, err, sizeof err);
    CHECK(rc == -1 && err[0], "list: '%s' rejected (%s)", bad[i], err);
  }
  CHECK(sw_list_parse("1-100000", 1, 1000000, &l, err, sizeof err) == -1 && strstr(err, "more than"),
        "list: too many values rejected");
  sw_vals v;
  CHECK(sw_vals_parse(XS_BACKEND, "recurrent,chunkwise,recurrent", &v, err, sizeof err) == 0 && v.n == 2 &&
            !strcmp(v.v[0], "chunkwise") && !strcmp(v.v[1], "recurrent"),
        "backends: both, in a fixed order");
  sw_vals_free(&v);
  CHECK(sw_vals_parse(XS_BACKEND, "chunkwise,gpu", &v, err, sizeof err) == -1 && strstr(err, "gpu"), "backends: unknown rejected");
  CHECK(sw_vals_parse(XS_MATMUL, "bf16, fp32", &v, err, sizeof err) == 0 && v.n == 2 && !strcmp(v.v[0], "fp32") &&
            !strcmp(v.v[1], "bf16"),
        "matmul: a named knob from the settings table, the default first");
  sw_vals_free(&v);
  CHECK(sw_vals_parse(XS_DEVICE, "cuda:1,cpu,cuda", &v, err, sizeof err) == 0 && v.n == 3 && !strcmp(v.v[0], "cpu") &&
            !strcmp(v.v[1], "cuda:0") && !strcmp(v.v[2], "cuda:1"),
        "device: canonical names (cuda -> cuda:0), cpu first");
  sw_vals_free(&v);
  CHECK(sw_vals_parse(XS_MATMUL, "fp16", &v, err, sizeof err) == -1 && strstr(err, "fp16"), "matmul: unknown value rejected (%s)", err);
  CHECK(sw_vals_parse(SW_K_SAMPLING, "t0.80k40,greedy,t1p0.9", &v, err, sizeof err) == 0 && v.n == 3 &&
            !strcmp(v.v[0], "greedy") && !strcmp(v.v[1], "t0.8k40") && !strcmp(v.v[2], "t1p0.9"),
        "sampling: specs made canonical, greedy first");
  sw_vals_free(&v);
  CHECK(sw_vals_parse(SW_K_SAMPLING, "t0", &v, err, sizeof err) == -1 && sw_vals_parse(SW_K_SAMPLING, "t1p2", &v, err, sizeof err) == -1,
        "sampling: temperature 0 and top-p 2 rejected");
  CHECK(sw_vals_parse(XS_CHUNK_SIZE, "16-64*2", &v, err, sizeof err) == 0 && v.n == 3 && !strcmp(v.v[2], "64"),
        "integer knob lists as before");
  sw_vals_free(&v);
}

static void test_keys(void) {
  sw_setting s = S("chunkwise", 64, 2, 2);
  char key[SW_KEY_MAX], slug[SW_KEY_MAX + 32];
  sw_key(&s, 512, key, sizeof key);
  sw_slug(key, 7, slug, sizeof slug);
  CHECK(!strcmp(slug, "b=chunkwise__ck=64__h=2__w=2__ctx=512__i=7"), "slug: documented form (%s)", slug);
  sw_setting r = S("recurrent", 64, 1, 2);
  sw_key(&r, 32, key, sizeof key);
  CHECK(!strcmp(key, "b=recurrent__ck=1__h=1__w=2__ctx=32"), "key: recurrent has chunk size 1 (%s)", key);
  /* Stable: computed twice, from a spec round trip, the same text. */
  sw_spec sp = {.trial = 7, .s = s, .context = 512, .new_tokens = 8, .repeats = 2, .prompt_file = xl_strdup("p.txt"),
                .bin = xl_strdup("/x/bin")};
  sw_key(&sp.s, sp.context, sp.key, sizeof sp.key);
  sw_slug(sp.key, sp.trial, sp.slug, sizeof sp.slug);
  cJSON *j = sw_spec_to_json(&sp);
  sw_spec back;
  char err[256];
  CHECK(sw_spec_from_json(j, &back, err, sizeof err) == 0 && !strcmp(back.slug, slug) && back.repeats == 2 &&
            K(&back.s, XS_WORKERS) == 2 && !strcmp(back.prompt_file, "p.txt") && back.ids_file == NULL,
        "spec: JSON round trip keeps slug and settings");
  sw_spec_free(&back);
  cJSON_ReplaceItemInObject(j, "slug", cJSON_CreateString("b=chunkwise__ck=16__h=2__w=2__ctx=512__i=7"));
  CHECK(sw_spec_from_json(j, &back, err, sizeof err) == -1 && strstr(err, "does not match"),
        "spec: a slug that disagrees with the settings is refused");
  cJSON_ReplaceItemInObject(j, "workers", cJSON_CreateNumber(0));
  CHECK(sw_spec_from_json(j, &back, err, sizeof err) == -1 && strstr(err, "workers"), "spec: workers 0 refused");
  cJSON_Delete(j);
  sw_spec_free(&sp);
}

/* Keys of the knobs beyond the classic four, and of what a measurement depends on. */
static void test_knob_keys(void) {
  char err[256], key[SW_KEY_MAX];
  sw_setting s = S("chunkwise", 64, 2, 2);
  CHECK(sw_setting_set(&s, XS_MATMUL, "bf16", err, sizeof err) == 0 && sw_setting_set(&s, SW_K_SAMPLING, "t0.80k40", err, sizeof err) == 0,
        "matmul and sampling set from text");
  sw_key(&s, 64, key, sizeof key);
  CHECK(!strcmp(key, "b=chunkwise__ck=64__h=2__w=2__mm=bf16__smp=t0.8k40__ctx=64"), "key: searched knobs in table order (%s)", key);
  sw_measure_key(&s, 64, XS_AFFECTS_DECODE, key, sizeof key);
  CHECK(!strcmp(key, "h=2__w=2__mm=bf16__smp=t0.8k40__ctx=64"), "decode key: only knobs that can change decode (%s)", key);
  sw_measure_key(&s, 64, XS_AFFECTS_PREFILL, key, sizeof key);
  CHECK(!strcmp(key, "b=chunkwise__ck=64__h=2__w=2__mm=bf16__ctx=64"), "prefill key: sampling cannot change it (%s)", key);
  sw_measure_key(&s, 64, XS_AFFECTS_OUTPUT, key, sizeof key);
  CHECK(!strcmp(key, "mm=bf16__smp=t0.8k40__ctx=64"), "output key: matmul and sampling (%s)", key);
  sw_setting t = s;
  snprintf(t.v[XS_CHUNK_SIZE], SW_VAL_MAX, "16");
  snprintf(t.v[XS_BACKEND], SW_VAL_MAX, "recurrent");
  CHECK(!sw_can_differ(&s, &t, XS_AFFECTS_DECODE) && !sw_can_differ(&s, &t, XS_AFFECTS_OUTPUT) &&
            sw_can_differ(&s, &t, XS_AFFECTS_PREFILL),
        "backend and chunk size can change prefill only");
  snprintf(t.v[XS_MATMUL], SW_VAL_MAX, "fp32");
  CHECK(sw_can_differ(&s, &t, XS_AFFECTS_DECODE) && sw_can_differ(&s, &t, XS_AFFECTS_OUTPUT), "matmul can change decode and output");
  /* a spec with the new knobs and what it measures survives a round trip */
  sw_spec sp = {.trial = 3, .s = s, .context = 64, .new_tokens = 8, .repeats = 2, .prompt_file = xl_strdup("p.txt"),
                .bin = xl_strdup("/x/bin"), .sampling_seed = 11, .measure = XS_AFFECTS_PREFILL,
                .decode_from = xl_strdup("other")};
  sw_key(&sp.s, sp.context, sp.key, sizeof sp.key);
  sw_slug(sp.key, sp.trial, sp.slug, sizeof sp.slug);
  cJSON *j = sw_spec_to_json(&sp);
  sw_spec back;
  CHECK(sw_spec_from_json(j, &back, err, sizeof err) == 0 && sw_setting_eq(&back.s, &s) && back.sampling_seed == 11 &&
            back.measure == XS_AFFECTS_PREFILL && back.decode_from && !strcmp(back.decode_from, "other") &&
            !strcmp(back.slug, sp.slug),
        "spec round trip: matmul, sampling and its seed, what it measures, where decode comes from (%s)", err);
  sw_spec_free(&back);
  cJSON_DeleteItemFromObject(j, "measure");
  CHECK(sw_spec_from_json(j, &back, err, sizeof err) == 0 && back.measure == (XS_AFFECTS_PREFILL | XS_AFFECTS_DECODE),
        "an older spec without 'measure' measures both");
  sw_spec_free(&back);
  cJSON_Delete(j);
  sw_spec_free(&sp);
}

static void make_space(sw_space *sp, const char *b, const char *ck, const char *h, const char *w) {
  char err[256];
  memset(sp, 0, sizeof *sp);
  int rc = sw_vals_parse(XS_BACKEND, b, &sp->knob[XS_BACKEND], err, sizeof err) |
           sw_vals_parse(XS_CHUNK_SIZE, ck, &sp->knob[XS_CHUNK_SIZE], err, sizeof err) |
           sw_vals_parse(XS_HEADS_PER_BAND, h, &sp->knob[XS_HEADS_PER_BAND], err, sizeof err) |
           sw_vals_parse(XS_WORKERS, w, &sp->knob[XS_WORKERS], err, sizeof err);
  if (rc) {
    printf("not ok - space: %s\n", err);
    exit(1);
  }
}

static void test_plans(void) {
  sw_rng a, b;
  sw_rng_seed(&a, 1);
  sw_rng_seed(&b, 1);
  int same = 1, inrange = 1;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = sw_rng_next(&a), y = sw_rng_next(&b);
    same &= x == y;
    size_t k = sw_rng_below(&a, 7);
    sw_rng_below(&b, 7);
    double u = sw_rng_unit(&a);
    sw_rng_unit(&b);
    inrange &= k < 7 && u >= 0 && u < 1;
  }
  CHECK(same && inrange, "rng: same seed, same stream; values in range");
  sw_rng_seed(&a, 0);
  CHECK(sw_rng_next(&a) == 0xe220a8397b1dcdafULL, "rng: splitmix64 reference value for seed 0");

  sw_space sp;
  make_space(&sp, "chunkwise,recurrent", "16,32,64", "1,2", "1-2");
  sw_setting *v;
  size_t n = sw_plan_grid(&sp, &v);
  /* chunkwise: 3*2*2 = 12; recurrent: chunk sizes collapse, 2*2 = 4 */
  CHECK(n == 16, "grid: 12 chunkwise + 4 recurrent settings (%zu)", n);
  CHECK(K(&v[0], XS_CHUNK_SIZE) == 16 && K(&v[0], XS_HEADS_PER_BAND) == 1 && K(&v[0], XS_WORKERS) == 1 &&
            K(&v[1], XS_WORKERS) == 2 && K(&v[2], XS_HEADS_PER_BAND) == 2 && K(&v[4], XS_CHUNK_SIZE) == 32 &&
            is_rec(&v[12]) && K(&v[12], XS_CHUNK_SIZE) == 1 && K(&v[15], XS_WORKERS) == 2 &&
            K(&v[15], XS_HEADS_PER_BAND) == 2,
        "grid: odometer order, workers fastest");
  free(v);
  CHECK(sw_space_size(&sp) == 16, "space size counts distinct settings");
  sw_setting *r1, *r2, *r3;
  size_t n1 = sw_plan_random(&sp, 9, 6, &r1), n2 = sw_plan_random(&sp, 9, 6, &r2), n3 = sw_plan_random(&sp, 10, 6, &r3);
  int eq12 = n1 == n2, eq13 = n1 == n3, distinct = 1;
  for (size_t i = 0; i < n1; i++) {
    eq12 &= sw_setting_eq(&r1[i], &r2[i]);
    eq13 &= sw_setting_eq(&r1[i], &r3[i]);
    for (size_t j = 0; j < i; j++) distinct &= !sw_setting_eq(&r1[i], &r1[j]);
  }
  CHECK(n1 == 6 && eq12 && distinct, "random: 6 distinct settings, the same for the same seed");
  CHECK(!eq13, "random: another seed, another draw");
  free(r1), free(r2), free(r3);
  n = sw_plan_random(&sp, 3, 100, &r1);
  CHECK(n == 16, "random: asking for more than the space gives the whole space (%zu)", n);
  free(r1);
  sw_space_free(&sp);
}

/* A made-up landscape: prefill likes chunk 64 and more workers; decode likes workers
 * and the recurrent backend. Records every setting asked for. */
typedef struct {
  sw_setting seen[512];
  int n;
  int calls;
  int stop_after;
} fake;

static void fake_speed(const sw_setting *s, double *pre, double *dec) {
  double ck = K(s, XS_CHUNK_SIZE);
  *pre = 3000 - (ck - 64) * (ck - 64) / 4 + 400 * K(s, XS_WORKERS) - 50 * K(s, XS_HEADS_PER_BAND);
  *dec = 200 + 30 * K(s, XS_WORKERS) + 5 * K(s, XS_HEADS_PER_BAND) + (is_rec(s) ? 40 : 0);
  if (is_rec(s)) *pre /= 6;
}

static int fake_eval(void *ctx, const sw_setting *s, size_t n, sw_fit *f) {
  fake *k = ctx;
  for (size_t i = 0; i < n; i++) {
    k->calls++;
    if (k->stop_after && k->calls > k->stop_after) return 1;
    int known = 0;
    for (int j = 0; j < k->n; j++) known |= sw_setting_eq(&k->seen[j], &s[i]);
    if (!known && k->n < 512) k->seen[k->n++] = s[i];
    fake_speed(&s[i], &f[i].prefill, &f[i].decode);
    f[i].ok = 1;
  }
  return 0;
}

static int same_seq(const fake *a, const fake *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++)
    if (!sw_setting_eq(&a->seen[i], &b->seen[i])) return 0;
  return 1;
}

static void test_searches(void) {
  sw_space sp;
  make_space(&sp, "chunkwise,recurrent", "8-512*2", "1-4", "1-8");
  sw_search_opts o = {.population = 6, .elites = 2, .generations = 6, .mutation = 0.3, .seed = 17,
                      .objective = SW_OBJ_PREFILL};
  fake a = {0}, b = {0}, c = {0};
  CHECK(sw_search_ga(&sp, &o, fake_eval, &a) == 0, "ga: runs");
  sw_search_ga(&sp, &o, fake_eval, &b);
  o.seed = 18;
  sw_search_ga(&sp, &o, fake_eval, &c);
  CHECK(same_seq(&a, &b), "ga: same seed, same sequence of settings (%d)", a.n);
  CHECK(!same_seq(&a, &c), "ga: another seed, another sequence");
  CHECK(a.calls == 36, "ga: population x generations evaluations asked for (%d)", a.calls);
  /* Mutation and crossover stay inside the lists. */
  int inside = 1;
  for (int i = 0; i < a.n; i++) {
    const sw_setting *s = &a.seen[i];
    int ck = K(s, XS_CHUNK_SIZE);
    inside &= K(s, XS_WORKERS) >= 1 && K(s, XS_WORKERS) <= 8 && K(s, XS_HEADS_PER_BAND) >= 1 &&
              K(s, XS_HEADS_PER_BAND) <= 4 && (is_rec(s) ? ck == 1 : (ck >= 8 && ck <= 512 && (ck & (ck - 1)) == 0));
  }
  CHECK(inside, "ga: every setting inside the bounds and on the lists");
  /* Elitism: the best found is at least the best of the random first generation, and
   * with this smooth landscape it gets close to the optimum (chunk 64, 8 workers, h 1). */
  double best0 = -1, best = -1, d;
  for (int i = 0; i < a.n; i++) {
    double p;
    fake_speed(&a.seen[i], &p, &d);
    if (i < 6 && p > best0) best0 = p;
    if (p > best) best = p;
  }
  double opt;
  sw_setting top = S("chunkwise", 64, 1, 8);
  fake_speed(&top, &opt, &d);
  CHECK(best >= best0 && best >= 0.8 * opt, "ga: improves on generation 0 (%.0f -> %.0f, optimum %.0f)", best0, best, opt);
  fake st = {.stop_after = 4};
  CHECK(sw_search_ga(&sp, &o, fake_eval, &st) == 1 && st.n == 4, "ga: a stop from the callback ends the search");

  sw_search_opts q = {.population = 6, .generations = 5, .mutation = 0.3, .seed = 4, .objective = SW_OBJ_PARETO};
  fake p1 = {0}, p2 = {0}, p3 = {0};
  CHECK(sw_search_nsga2(&sp, &q, fake_eval, &p1) == 0, "nsga2: runs");
  sw_search_nsga2(&sp, &q, fake_eval, &p2);
  q.seed = 5;
  sw_search_nsga2(&sp, &q, fake_eval, &p3);
  CHECK(same_seq(&p1, &p2) && p1.n >= 6, "nsga2: same seed, same sequence (%d settings)", p1.n);
  CHECK(!same_seq(&p1, &p3), "nsga2: another seed, another sequence");
  /* A space smaller than the population is still covered without hanging. */
  sw_space tiny;
  make_space(&tiny, "chunkwise", "16", "1", "1,2");
  fake t = {0};
  sw_search_opts to = {.population = 6, .elites = 1, .generations = 3, .mutation = 0.5, .seed = 1};
  CHECK(sw_search_ga(&tiny, &to, fake_eval, &t) == 0 && t.n == 2, "ga: a 2-setting space: both measured");
  fake t2 = {0};
  to.objective = SW_OBJ_PARETO;
  CHECK(sw_search_nsga2(&tiny, &to, fake_eval, &t2) == 0 && t2.n == 2, "nsga2: a 2-setting space: both measured");
  sw_space_free(&tiny);
  sw_space_free(&sp);
}

static void test_nsga_ranking(void) {
  /* Points (prefill, decode), both maximized:
   * 0 (10,1) 1 (1,10) 2 (5,5)      -> front 0 (none dominates another)
   * 3 (4,4) dominated by 2         -> front 1, with 4 (9,0.5) dominated by 0, 5 (0.5,9) by 1
   * 6 (3,3) dominated by 3         -> front 2
   * 7 (5,5) equal to 2             -> front 0 too (equal points do not dominate) */
  double obj[] = {10, 1, 1, 10, 5, 5, 4, 4, 9, 0.5, 0.5, 9, 3, 3, 5, 5};
  int rank[8];
  sw_nd_sort(obj, 8, rank);
  int want[8] = {0, 0, 0, 1, 1, 1, 2, 0};
  int ok = 1;
  for (int i = 0; i < 8; i++) ok &= rank[i] == want[i];
  CHECK(ok, "nd-sort: fronts 0,0,0,1,1,1,2,0 (got %d,%d,%d,%d,%d,%d,%d,%d)", rank[0], rank[1], rank[2], rank[3],
        rank[4], rank[5], rank[6], rank[7]);
  /* Crowding of front 1 = {3,4,5}: 4 and 5 are the extremes (infinite); 3 sits between
   * them: prefill gap (9-0.5)/(9-0.5) = 1, decode gap (9-0.5)/(9-0.5) = 1 -> 2. */
  size_t mem[3] = {3, 4, 5};
  double dist[3];
  sw_crowding(obj, mem, 3, dist);
  CHECK(isinf(dist[1]) && isinf(dist[2]) && fabs(dist[0] - 2.0) < 1e-12, "crowding: extremes infinite, middle 2 (%g)",
        dist[0]);
  /* Four points on a line: inner ones get the normalized neighbour gaps. */
  double line[] = {0, 6, 1, 5, 3, 3, 6, 0};
  size_t all[4] = {0, 1, 2, 3};
  double d4[4];
  sw_crowding(line, all, 4, d4);
  CHECK(isinf(d4[0]) && isinf(d4[3]) && fabs(d4[1] - 1.0) < 1e-12 && fabs(d4[2] - 10.0 / 6) < 1e-12,
        "crowding: (3-0)/6 + (6-3)/6 = 1 and (6-1)/6 * 2 = 5/3 (%g, %g)", d4[1], d4[2]);
  size_t two[2] = {0, 1};
  double d2[2];
  sw_crowding(obj, two, 2, d2);
  CHECK(isinf(d2[0]) && isinf(d2[1]), "crowding: a front of two is all boundary");
}

static cJSON *rec(long trial, const char *b, int ck, int w, long ctx, const char *status, double pre, double dec) {
  cJSON *o = cJSON_CreateObject();
  sw_setting s = S(b, ck, 1, w);
  char key[SW_KEY_MAX], slug[SW_KEY_MAX + 32];
  sw_key(&s, ctx, key, sizeof key);
  sw_slug(key, trial, slug, sizeof slug);
  cJSON_AddNumberToObject(o, "trial", (double)trial);
  cJSON_AddStringToObject(o, "slug", slug);
  cJSON_AddStringToObject(o, "status", status);
  cJSON_AddStringToObject(o, "backend", b);
  cJSON_AddNumberToObject(o, "chunk_size", ck);
  cJSON_AddNumberToObject(o, "heads_per_band", 1);
  cJSON_AddNumberToObject(o, "workers", w);
  cJSON_AddNumberToObject(o, "prompt_tokens", (double)ctx);
  if (!strcmp(status, "ok")) {   /* measured with a 1% interval: the differences below are real */
    cJSON_AddNumberToObject(o, "prefill_tok_s", pre);
    cJSON_AddNumberToObject(o, "decode_tok_s", dec);
    cJSON_AddNumberToObject(o, "prefill_tok_s_ci95", pre / 100);
    cJSON_AddNumberToObject(o, "decode_tok_s_ci95", dec / 100);
  }
  cJSON_AddStringToObject(o, "key", key);
  return o;
}

static void test_best_and_files(void) {
  cJSON *t = cJSON_CreateArray();
  cJSON_AddItemToArray(t, rec(1, "chunkwise", 16, 1, 32, "ok", 1000, 50));
  cJSON_AddItemToArray(t, rec(2, "chunkwise", 16, 1, 64, "ok", 1200, 48));
  cJSON_AddItemToArray(t, rec(3, "chunkwise", 64, 2, 32, "ok", 3000, 40));
  cJSON_AddItemToArray(t, rec(4, "chunkwise", 64, 2, 64, "ok", 3400, 38));
  cJSON_AddItemToArray(t, rec(5, "recurrent", 1, 2, 32, "ok", 300, 90));
  cJSON_AddItemToArray(t, rec(6, "recurrent", 1, 2, 64, "failed", 0, 0));   /* disqualifies it */
  cJSON_AddItemToArray(t, rec(7, "chunkwise", 32, 1, 32, "ok", 900, 60));   /* only one context */
  cJSON *b = sw_best(t, SW_OBJ_DECODE);
  const cJSON *p = cJSON_GetObjectItem(b, "params"), *m = cJSON_GetObjectItem(b, "metrics");
  CHECK(b && cJSON_GetObjectItem(p, "chunk_size")->valuedouble == 16 &&
            fabs(cJSON_GetObjectItem(m, "decode_tok_s")->valuedouble - 49) < 1e-9,
        "best decode: complete settings only, mean over contexts (ck 16: 49)");
  cJSON_Delete(b);
  b = sw_best(t, SW_OBJ_PREFILL);
  CHECK(b && cJSON_GetObjectItem(cJSON_GetObjectItem(b, "params"), "chunk_size")->valuedouble == 64,
        "best prefill: ck 64");
  cJSON_Delete(b);
  b = sw_best(t, SW_OBJ_PARETO);
  /* Complete settings: ck16 (1100, 49), ck64 (3200, 39): neither dominates -> front of 2;
   * products: 1100/3200*1 = .34, 1*39/49 = .80 -> ck 64. */
  CHECK(b && cJSON_GetArraySize(cJSON_GetObjectItem(b, "front")) == 2 &&
            cJSON_GetObjectItem(cJSON_GetObjectItem(b, "params"), "chunk_size")->valuedouble == 64,
        "best pareto: a front of two, the balanced pick");
  cJSON_Delete(b);

  /* trials.jsonl with a torn tail, then a run directory over it. */
  char dir[] = "/tmp/test_sweep.XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    return;
  }
  char *path = xl_path_join(dir, "trials.jsonl");
  const char *text = "{\"trial\":1,\"slug\":\"a\",\"status\":\"ok\"}\n{\"trial\":2,\"slug\":\"b\",\"status\":\"ok\"}\n{\"trial\":3,\"sl";
  xl_write_file_atomic(path, text, strlen(text));
  size_t torn;
  char err[256];
  cJSON *arr = sw_read_trials(path, &torn, err, sizeof err);
  size_t tail = strlen("{\"trial\":3,\"sl");
  CHECK(arr && cJSON_GetArraySize(arr) == 2 && torn == tail, "torn tail: 2 records kept, %zu bytes dropped (%zu)", tail, torn);
  cJSON_Delete(arr);
  const char *text2 = "{\"trial\":1,\"slug\":\"a\",\"status\":\"ok\"}\n{\"trial\":2,\"slug\":\"b\",\"status\":\"o\n";
  xl_write_file_atomic(path, text2, strlen(text2));
  arr = sw_read_trials(path, &torn, err, sizeof err);
  CHECK(arr && cJSON_GetArraySize(arr) == 1 && torn == strlen(strchr(text2, '\n') + 1),
        "torn tail: an unparsable last line is dropped too (%zu)", torn);
  cJSON_Delete(arr);
  const char *text3 = "{\"trial\":1}\nnot json\n{\"trial\":3}\n";
  xl_write_file_atomic(path, text3, strlen(text3));
  arr = sw_read_trials(path, &torn, err, sizeof err);
  CHECK(!arr && strstr(err, ":2:"), "a bad line in the middle is an error, not guessed away (%s)", err);
  xl_write_file_atomic(path, text, strlen(text));
  sw_rundir r;
  CHECK(sw_run_open(&r, dir, SW_OBJ_DECODE, err, sizeof err) == 0 && r.torn_bytes == tail, "run dir opens, torn tail seen");
  sw_run_add(&r, rec(3, "chunkwise", 16, 1, 32, "ok", 10, 5), NULL);
  sw_run_close(&r);
  arr = sw_read_trials(path, &torn, err, sizeof err);
  CHECK(arr && cJSON_GetArraySize(arr) == 3 && torn == 0, "after the truncation, an append makes a clean file");
  cJSON_Delete(arr);
  char *best = xl_path_join(dir, "best.json"), *sum = xl_path_join(dir, "summary.csv"),
       *prof = xl_path_join(dir, "best_profile.json");
  CHECK(xl_exists(best) && xl_exists(sum) && xl_exists(prof), "summary.csv, best.json, best_profile.json written");
  unlink(best), unlink(sum), unlink(prof), unlink(path), rmdir(dir);
  free(best), free(sum), free(prof), free(path);
  cJSON_Delete(t);
}

static void test_layers(void) {
  sw_layers l = {0};
  char err[256];
  sw_layers_set(&l, SW_O_REPEATS, "2", SW_SRC_CLI);
  cJSON *cfg = cJSON_Parse("{\"repeats\": 5, \"chunk-size\": [8, 16], \"search\": \"ga\", \"_note\": 1}");
  CHECK(sw_layers_merge_json(&l, cfg, SW_SRC_CONFIG, err, sizeof err) == 0, "layers: config merges");
  cJSON_Delete(cfg);
  sw_layers_defaults(&l, "/root");
  CHECK(!strcmp(l.val[SW_O_REPEATS], "2") && l.src[SW_O_REPEATS] == SW_SRC_CLI, "layers: command line beats config");
  CHECK(!strcmp(l.val[SW_O_CHUNK], "8,16") && l.src[SW_O_CHUNK] == SW_SRC_CONFIG, "layers: config list as a comma list");
  CHECK(!strcmp(l.val[SW_O_NEW], "32") && !strcmp(l.val[SW_O_PROMPT_FILE], "/root/prompts/pydocs.txt"),
        "layers: defaults fill the rest");
  sw_conf c;
  CHECK(sw_conf_build(&l, &c, err, sizeof err) == 0 && c.search == SW_SEARCH_GA && c.repeats == 2 &&
            c.space.knob[XS_CHUNK_SIZE].n == 2 && c.objective == SW_OBJ_DECODE && c.space.knob[XS_MATMUL].n == 0,
        "conf: typed");
  sw_conf_free(&c);
  sw_layers_set(&l, SW_O_ELITES, "8", SW_SRC_CLI);
  CHECK(sw_conf_build(&l, &c, err, sizeof err) == -1 && strstr(err, "elites"), "conf: elites >= population refused");
  sw_layers_set(&l, SW_O_ELITES, "1", SW_SRC_CLI);
  sw_layers_set(&l, SW_O_MUTATION, "1.5", SW_SRC_CLI);
  CHECK(sw_conf_build(&l, &c, err, sizeof err) == -1 && strstr(err, "mutation"), "conf: mutation > 1 refused");
  cfg = cJSON_Parse("{\"workerz\": 2}");
  CHECK(sw_layers_merge_json(&l, cfg, SW_SRC_CONFIG, err, sizeof err) == -1 && strstr(err, "workerz"),
        "layers: unknown key refused");
  cJSON_Delete(cfg);
  CHECK(sw_opt_find("heads_per_band") == SW_O_HEADS && sw_opt_find("heads-per-band") == SW_O_HEADS &&
            sw_opt_find("heads") == -1,
        "options found by dash or underscore name, exactly");
  sw_layers_free(&l);
}

int main(void) {
  test_knob_keys();
  test_lists();
  test_keys();
  test_plans();
  test_searches();
  test_nsga_ranking();
  test_best_and_files();
  test_layers();
  return tl_done();
}
