/* bench_model: prefill and decode speed of one checkpoint through the library (lib/), with the
 * roofline of each measurement and the peak RSS against weights + state.
 *   prefill: one prompt of max(marks) random tokens from the empty state; the progress hook
 *            records when each mark (e.g. 512, 2048, 8192 tokens) is passed, so one run
 *            gives tok/s at every mark (work from the empty state to N tokens, identical to
 *            a separate N-token run). Roofline: SGEMM rate / FLOPs per token, where FLOPs =
 *            2 x the block matrices' weights + the chunkwise cell's GEMM work.
 *   decode:  K greedy steps after the prompt (context max(marks)) and K steps in a second
 *            session after a --short-ctx prompt, in 4 alternating rounds so both see the
 *            same machine load. Peak RSS is taken before the second session. Roofline: read
 *            bandwidth / bytes per token (every block matrix and the LM head in their stored
 *            dtype, one embedding row, the state C/n/m read and written).
 * One NDJSON record per measurement on stdout; bench.sh adds provenance.
 * Usage: bench_model DIR --label L [--marks 512,2048,8192] [--short-ctx 128] [--steps K]
 *                    [--workers W] [--bw GB/s] [--gflops G] [--budget SECONDS] [--prefill-only]
 *                    [--profile-log FILE]
 * The run settings come from the XL_* variables (XL_MATMUL=bf16, XL_KERNELS=avx2, ...), then
 * --workers; the records say which matmul and kernels ran. --profile-log FILE: per-phase and
 * per-block times (obs/telemetry), one line per prefill segment and one after the decode.
 * --budget stops the long prefill after that long (at a segment boundary): the marks not
 * reached get no record, a prefill_budget_stop record says where it stopped, and the long
 * decode runs at the context reached.
 * Not for: correctness (test_engine.c). */
#include "engine/libgemm.h"
#include "engine/blasenv.h"
#include "cli/settings.h"
#include "obs/telemetry.h"
#include "engine/engine.h"
#include "engine/state.h"
#include "obs/procmem.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static long g_marks[16];
static double g_mark_s[16];
static int g_nmarks;

static double g_budget;   /* seconds after which the long prefill stops (0: none) */
static long g_last_done;
static double g_last_s;

static int on_progress(void *ctx, long done, long total, double seconds) {
  (void)ctx;
  for (int i = 0; i < g_nmarks; i++)
    if (done == g_marks[i] && g_mark_s[i] == 0) g_mark_s[i] = seconds;
  g_last_done = done;
  g_last_s = seconds;
  if (tm_profiling()) tm_prof_step_end(done);
  return g_budget > 0 && seconds > g_budget && done < total;
}

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
  return b;
}

static int finite_all(const float *x, int n) {
  for (int i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
  return 1;
}


/* Decode timing accumulated over several rounds (so that the long- and short-context
 * sessions can take turns and see the same machine load). */
typedef struct { double sum, sq, wall, cpu; long n; int finite; } dec_acc;

static void decode_chunk(xl_session *s, int K, dec_acc *acc) {
  int V = s->m->cfg.vocab, tok = argmax(s->logits, V);
  double t0 = xl_now(), c0 = cpu_now();
  for (int i = 0; i < K; i++) {
    double a = xl_now();
    xl_step(s, tok);
    double d = (xl_now() - a) * 1e3;
    acc->sum += d; acc->sq += d * d; acc->n++;
    tok = argmax(s->logits, V);
    if (!finite_all(s->logits, V)) acc->finite = 0;
  }
  acc->wall += xl_now() - t0;
  acc->cpu += cpu_now() - c0;
}

static double acc_tok_s(const dec_acc *a) { return a->n / a->wall; }
static double acc_mean(const dec_acc *a) { return a->sum / a->n; }
static double acc_sd(const dec_acc *a) { return a->n > 1 ? sqrt(fmax(0, (a->sq - a->sum * a->sum / a->n) / (a->n - 1))) : 0; }

typedef struct { double floats; } state_acc;
static void count_state(void *ctx, const char *name, float *data, int ndim, const int64_t *shape) {
  (void)data;
  if (!strcmp(name, "logits")) return;
  double n = 1;
  for (int i = 0; i < ndim; i++) n *= (double)shape[i];
  ((state_acc *)ctx)->floats += n;
}

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);
  xl_set_progname("bench_model");
  const char *dir = NULL, *label = "model";
  long short_ctx = 128, steps = 32, workers = 2;
  int prefill_only = 0;
  tm_options tmo;   /* telemetry only for --profile-log: no watchdog, status file or sampler otherwise */
  tm_options_init(&tmo);
  tmo.status_file = 0;
  tmo.watchdog = 0;
  double bw = 0, gflops = 0;
  g_nmarks = 3; g_marks[0] = 512; g_marks[1] = 2048; g_marks[2] = 8192;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--label") && i + 1 < argc) label = argv[++i];
    else if (!strcmp(a, "--marks") && i + 1 < argc) {
      g_nmarks = 0;
      for (char *s = strtok(argv[++i], ","); s && g_nmarks < 16; s = strtok(NULL, ","))
        g_marks[g_nmarks++] = xl_flag_long("--marks", s, 1, 1L << 24);
    } else if (!strcmp(a, "--short-ctx") && i + 1 < argc) short_ctx = xl_flag_long(a, argv[++i], 1, 1L << 24);
    else if (!strcmp(a, "--steps") && i + 1 < argc) steps = xl_flag_long(a, argv[++i], 1, 1L << 20);
    else if (!strcmp(a, "--workers") && i + 1 < argc) workers = xl_flag_long(a, argv[++i], 1, 256);
    else if (!strcmp(a, "--bw") && i + 1 < argc) bw = xl_flag_double(a, argv[++i], 0, 1e6);
    else if (!strcmp(a, "--gflops") && i + 1 < argc) gflops = xl_flag_double(a, argv[++i], 0, 1e9);
    else if (!strcmp(a, "--budget") && i + 1 < argc) g_budget = xl_flag_double(a, argv[++i], 0, 1e9);
    else if (!strcmp(a, "--prefill-only")) prefill_only = 1;
    else if (!strcmp(a, "--profile-log") && i + 1 < argc) tmo.profile_log = argv[++i];
    else if (a[0] != '-' && !dir) dir = a;
    else xl_usage_error("unknown argument '%s'", a);
  }
  if (!dir) xl_usage_error("a model directory is required");
  if (tmo.profile_log && tm_start(&tmo, "bench_model")) return 1;
  char err[1024];
  xl_model *m = xl_model_load(dir, err, sizeof err);
  if (!m) xl_die("%s", err);
  const xl_config *c = &m->cfg;
  xl_runopts o;   /* the XL_* settings of the environment, then --workers */
  if (xl_settings_resolve(&o, m, NULL, err, sizeof err)) xl_usage_error("%s", err);
  o.workers = (int)workers;
  o.progress = on_progress;
  xl_session *s = xl_session_new(m, &o, err, sizeof err);
  if (!s) xl_die("%s", err);

  /* the model's costs per token: the weights read per decoded token (every matrix once, one
   * embedding row; the LM head is the embedding when tied), the parameters behind the
   * prefill FLOPs, and the recurrent state read and written (every state tensor but the
   * logits, as xl_state_visit lists them; this covers v1 models too) */
  double wbytes = 0, mparams = 0;
  const void *emb = m->embed.data;
  int tied = m->lm_head.data == emb;
  for (int i = 0; i < m->st.ntensors; i++) {
    const st_tensor *t = &m->st.tensors[i];
    if (t->data == emb && !tied) { wbytes += (double)c->D * st_dtype_size(t->dtype); continue; }
    wbytes += (double)t->nbytes;
    if (t->ndim >= 2) mparams += (double)t->numel;
  }
  state_acc sa = {0};
  xl_state_visit(s, count_state, &sa);
  double state_bytes = 4 * sa.floats, dec_bytes = wbytes + 2 * state_bytes;
  /* the chunkwise cell per token (7B family; v1 cells are small next to their projections) */
  double L = o.chunk_size, cell_flops = (double)c->n_blocks * c->n_heads * (2 * L * (c->dk + c->dv) + 4.0 * c->dk * c->dv);
  double pf_flops = 2 * mparams + cell_flops;

  long maxmark = 0;
  for (int i = 0; i < g_nmarks; i++) if (g_marks[i] > maxmark) maxmark = g_marks[i];
  int32_t *ids = xl_malloc(sizeof(int32_t) * (size_t)(maxmark > short_ctx ? maxmark : short_ctx));
  uint64_t r = 88172645463325252ULL;
  int span = c->vocab > 4096 ? 4096 : c->vocab;
  for (long i = 0; i < (maxmark > short_ctx ? maxmark : short_ctx); i++) {
    r ^= r << 13; r ^= r >> 7; r ^= r << 17;
    ids[i] = (int32_t)(2 + r % (uint64_t)(span > 2 ? span - 2 : 1));
  }
  const char *fmt_pf = "{\"bench\":\"prefill\",\"model\":\"%s\",\"dir\":\"%s\",\"tokens\":%ld,\"tok_s\":%.3f,\"seconds\":%.3f,"
                       "\"workers\":%d,\"chunk_size\":%d,\"flops_per_token\":%.4g,\"roofline_tok_s\":%.3f,\"efficiency\":%.4f,"
                       "\"finite\":%s,\"blas_core\":\"%s\",\"cpu_s\":%.3f,\"matmul\":\"%s\",\"kernels\":\"%s\",\"bf16_gemm\":\"%s\",\"gemm\":\"%s\"}\n";
  const char *mm = o.matmul_bf16 ? "bf16" : "fp32", *kn = xl_kernels_name(xl_kernels_active());
  const char *bg = o.matmul_bf16 && xl_kernels_active() == XL_KERNELS_AVX512BF16 ? xl_bf16gemm_impl() : "none";
  double t0 = xl_now(), c0 = cpu_now();
  xl_prefill(s, ids, maxmark, NULL);
  /* which library ran the fp32 products (known after the first) */
  const char *gm = o.gemm == XL_GEMM_ONEDNN && strcmp(xl_onednn_sgemm_impl(), "none") ? xl_onednn_sgemm_impl() : "openblas";
  double tpf = xl_now() - t0, cpf = cpu_now() - c0;
  int fin = finite_all(s->logits, c->vocab);
  double roof_pf = gflops > 0 ? gflops * 1e9 / pf_flops : 0;
  long reached = s->tokens;
  for (int i = 0; i < g_nmarks; i++) {
    double sec = g_marks[i] == maxmark && reached == maxmark ? tpf : g_mark_s[i];
    if (sec <= 0) continue;   /* not a segment boundary, or not reached within the budget */
    double ts = g_marks[i] / sec;
    printf(fmt_pf, label, dir, g_marks[i], ts, sec, o.workers, o.chunk_size, pf_flops, roof_pf, roof_pf > 0 ? ts / roof_pf : 0,
           fin ? "true" : "false", xl_blas_core(), g_marks[i] == maxmark ? cpf : -1.0, mm, kn, bg, gm);
    fflush(stdout);
  }
  if (reached < maxmark) {
    printf("{\"bench\":\"prefill_budget_stop\",\"model\":\"%s\",\"budget_s\":%.0f,\"tokens\":%ld,\"tok_s\":%.3f,"
           "\"wanted\":%ld}\n", label, g_budget, reached, reached / g_last_s, maxmark);
    fflush(stdout);
  }
  if (prefill_only) {
    tm_stop();
    free(ids);
    xl_session_free(s);
    xl_model_free(m);
    xl_finish_stdout();
    return 0;
  }
  const char *fmt_dc = "{\"bench\":\"decode\",\"model\":\"%s\",\"dir\":\"%s\",\"context\":%ld,\"steps\":%ld,\"tok_s\":%.3f,"
                       "\"ms_mean\":%.3f,\"ms_sd\":%.3f,\"workers\":%d,\"bytes_per_token\":%.0f,\"roofline_tok_s\":%.3f,"
                       "\"efficiency\":%.4f,\"finite\":%s,\"blas_core\":\"%s\",\"cpu_s\":%.3f}\n";
  double roof_dc = bw > 0 ? bw * 1e9 / dec_bytes : 0;
  s->opt.progress = NULL;
  /* peak memory of one session (prefill included), before the second session exists */
  double rss = tm_peak_rss_mb() * 1048576, wall = (double)m->weight_bytes;
  size_t scratch = s->scratch_bytes;
  /* the short-context session; the two decode in alternating rounds */
  xl_session *s2 = xl_session_new(m, &o, err, sizeof err);
  if (!s2) xl_die("%s", err);
  xl_prefill(s2, ids, short_ctx, NULL);
  dec_acc al = {.finite = 1}, as = {.finite = 1}, warm = {.finite = 1};
  decode_chunk(s, 1, &warm);
  decode_chunk(s2, 1, &warm);
  int rounds = steps >= 4 ? 4 : 1, per = (int)(steps / rounds);
  for (int r = 0; r < rounds; r++) {   /* alternate which goes first, so neither always follows the other */
    xl_session *first = r % 2 ? s2 : s, *second = r % 2 ? s : s2;
    decode_chunk(first, per, r % 2 ? &as : &al);
    decode_chunk(second, per, r % 2 ? &al : &as);
  }
  if (tm_profiling()) tm_prof_step_end(al.n + as.n);
  printf(fmt_dc, label, dir, reached, al.n, acc_tok_s(&al), acc_mean(&al), acc_sd(&al), o.workers, dec_bytes, roof_dc,
         roof_dc > 0 ? acc_tok_s(&al) / roof_dc : 0, al.finite ? "true" : "false", xl_blas_core(), al.cpu);
  printf(fmt_dc, label, dir, short_ctx, as.n, acc_tok_s(&as), acc_mean(&as), acc_sd(&as), o.workers, dec_bytes, roof_dc,
         roof_dc > 0 ? acc_tok_s(&as) / roof_dc : 0, as.finite ? "true" : "false", xl_blas_core(), as.cpu);
  printf("{\"bench\":\"decode_ctx_ratio\",\"model\":\"%s\",\"long_context\":%ld,\"short_context\":%ld,\"rounds\":%d,"
         "\"ratio\":%.4f}\n", label, reached, short_ctx, rounds, acc_tok_s(&al) / acc_tok_s(&as));
  printf("{\"bench\":\"memory\",\"model\":\"%s\",\"peak_rss_mb\":%.1f,\"weights_mb\":%.1f,\"state_mb\":%.2f,\"scratch_mb\":%.1f,"
         "\"rss_over_weights_state\":%.4f}\n",
         label, rss / 1048576, wall / 1048576, state_bytes / 1048576, scratch / 1048576.0, rss / (wall + state_bytes));
  tm_stop();
  xl_session_free(s2);
  free(ids);
  xl_session_free(s);
  xl_model_free(m);
  xl_finish_stdout();
  return 0;
}
