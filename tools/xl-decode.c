/* xl-decode: continues from a state file or a prompt and generates tokens one at a time
 * through the recurrent state; streams the text (or prints one NDJSON record per run). */
#include "cli/version.h"
#include "cli/flags.h"
#include "cli/runargs.h"
#include "engine/sampler.h"
#include "engine/state.h"
#include "engine/blasenv.h"
#include "base/filekind.h"
#include "base/util.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

static void usage(void) {
  printf("Usage: xl-decode [-m DIR] (--state STATE | PROMPT | --prompt-file F | --ids ...) -n N [options]\n"
         "Generates N tokens after a prompt or a saved state (stops early at the end-of-sequence id).\n\n"
         "Generation:\n"
         "  -n, --new N             tokens to generate (default 64; 0 .. 1073741824)\n"
         "      --state STATE       continue from a state file written by xl-prefill -o (a prompt given\n"
         "                          as well is fed after the state)\n"
         "      --greedy            argmax decoding (the default)\n"
         "      --temperature T     sample with temperature T (> 0); --top-k K and --top-p P narrow\n"
         "                          the candidates (they need --temperature); --seed S reproduces a\n"
         "                          run (default: a random seed, printed in the NDJSON record)\n"
         "      --ignore-eos        do not stop at the model's eos_token_id\n"
         "Output:\n"
         "      --format text       stream the generated text to stdout (default); a summary on stderr\n"
         "      --format ndjson     one record per run on stdout at the end: {tool, prompt_tokens,\n"
         "                          new_tokens, ids, text, prefill_s, prefill_tok_s, decode_s,\n"
         "                          decode_tok_s, stop, backend, chunk_size, workers, ...}\n"
         "  -o, --output FILE       also write the generated text to FILE (atomically; --out is\n"
         "                          the old spelling, kept for one release)\n"
         "      --state-out FILE    write the state after the last generated token\n"
         "  -q, --quiet             no summary line on stderr\n"
         "      --block-buffered    write the text in blocks (default: each token is flushed as it\n"
         "                          is generated, into a terminal, a pipe or a file alike)\n"
         "      --detokenize        print the text of {\"ids\":[...]} lines read on stdin, and exit\n\n%s\n%s\n"
         "Exit status: 0 ok, 1 error, 2 usage, 3 memory watchdog stop (output files removed),\n"
         "130 SIGINT / 143 SIGTERM (the current token is finished and the outputs are complete).\n",
         xl_runargs_help(), tm_options_help());
}

static int detokenize(xl_runargs *a) {
  xl_run r;
  xl_run_open_tokenizer(&r, a);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long lineno = 0;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    lineno++;
    if (len <= 1 && (line[0] == '\n')) continue;
    cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
    cJSON *arr = cJSON_GetObjectItem(j, "ids");
    if (!cJSON_IsArray(arr)) xl_die("standard input:%ld: expected {\"ids\":[...]}", lineno);
    int n = cJSON_GetArraySize(arr), k = 0;
    int32_t *ids = xl_malloc(sizeof(int32_t) * (n + 1));
    cJSON *x;
    cJSON_ArrayForEach(x, arr) {
      if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble >= tok_vocab_size(r.tok) || x->valuedouble != (int)x->valuedouble)
        xl_die("standard input:%ld: ids[%d] is not a token id", lineno, k);
      ids[k++] = (int32_t)x->valuedouble;
    }
    size_t tl;
    char *text = tok_decode(r.tok, ids, (size_t)n, &tl);
    fwrite(text, 1, tl, stdout);
    fputc('\n', stdout);
    free(text);
    free(ids);
    cJSON_Delete(j);
  }
  free(line);
  xl_run_close(&r);
  xl_finish_stdout();
  return 0;
}

typedef struct {
  xl_runargs run;
  long n_new;
  const char *state_in, *state_out, *out_file;
  int ndjson, ignore_eos, quiet, detok, greedy, help, block_buffered;
  float temperature, top_p;
  int top_k;
  long seed;
} decode_args;

/* The most tokens one run may be asked for: a range every machine can take (the ids are
 * kept as they come, 4 bytes each, so a long run stops on the memory watchdog, not here),
 * and a number past it is a usage error, not an allocation that fails. */
#define XL_DECODE_MAX_NEW (1L << 30)

/* Rows 4-7 are the sampling flags (checked against each other below). */
enum { F_GREEDY = 3, F_TEMPERATURE, F_TOP_K, F_TOP_P, F_SEED };
static const xl_flag decode_flags[] = {
    {"--new", "-n", XF_LONG, offsetof(decode_args, n_new), 0, XL_DECODE_MAX_NEW, NULL},
    {"--state", NULL, XF_STR, offsetof(decode_args, state_in), 0, 0, NULL},
    {"--state-out", NULL, XF_STR, offsetof(decode_args, state_out), 0, 0, NULL},
    {"--greedy", NULL, XF_SET, offsetof(decode_args, greedy), 0, 0, NULL},
    {"--temperature", NULL, XF_FLOAT, offsetof(decode_args, temperature), 1e-6, 1e6, NULL},
    {"--top-k", NULL, XF_INT, offsetof(decode_args, top_k), 0, 1 << 30, NULL},
    {"--top-p", NULL, XF_FLOAT, offsetof(decode_args, top_p), 1e-6, 1.0, NULL},
    {"--seed", NULL, XF_LONG, offsetof(decode_args, seed), 0, 0x7fffffffffffffffL, NULL},
    {"--output", "-o", XF_STR, offsetof(decode_args, out_file), 0, 0, NULL},
    {"--format", NULL, XF_CHOICE, offsetof(decode_args, ndjson), 0, 0, "text|ndjson"},
    {"--ignore-eos", NULL, XF_SET, offsetof(decode_args, ignore_eos), 0, 0, NULL},
    {"--quiet", "-q", XF_SET, offsetof(decode_args, quiet), 0, 0, NULL},
    {"--detokenize", NULL, XF_SET, offsetof(decode_args, detok), 0, 0, NULL},
    {"--block-buffered", NULL, XF_SET, offsetof(decode_args, block_buffered), 0, 0, NULL},
    {"--help", "-h", XF_SET, offsetof(decode_args, help), 0, 0, NULL},
    {"--out", NULL, XF_STR, offsetof(decode_args, out_file), 0, 0, NULL},   /* F_OLD_OUT: -o's old long name */
};
enum { F_OLD_OUT = sizeof decode_flags / sizeof *decode_flags - 1 };

/* A seed nobody chose: from the kernel's generator, else the clock and the pid. */
static long random_seed(void) {
  uint64_t x = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(&x, sizeof x, 1, f) != 1) x = (uint64_t)(xl_now() * 1e9) ^ ((uint64_t)getpid() << 32);
  if (f) fclose(f);
  return (long)(x & 0x7fffffffffffffffULL);
}

/* The sampling settings: greedy unless --temperature is given; --top-k/--top-p narrow a
 * temperature sampler and mean nothing without one. */
static xl_sampling parse(decode_args *d, int argc, char **argv) {
  memset(d, 0, sizeof *d);
  xl_runargs_init(&d->run);
  d->n_new = 64;
  d->temperature = 1.0f, d->top_p = 1.0f;
  uint64_t given = 0;
  for (int i = 1; i < argc; i++) {
    if (xl_flags_parse(decode_flags, sizeof decode_flags / sizeof *decode_flags, d, &given, argc, argv, &i)) {
      if (d->help) { usage(); exit(0); }
    } else if (!xl_runargs_parse(&d->run, argc, argv, &i)) {
      xl_usage_error("unknown option '%s'", argv[i]);
    }
  }
  if (xl_flag_given(given, F_OLD_OUT)) xl_deprecated("--out FILE", "-o/--output FILE");
  int sampled = xl_flag_given(given, F_TEMPERATURE);
  if (!sampled && (xl_flag_given(given, F_TOP_K) || xl_flag_given(given, F_TOP_P)))
    xl_usage_error("--top-k and --top-p narrow temperature sampling: give --temperature T too");
  if (sampled && d->greedy) xl_usage_error("--greedy and --temperature exclude each other");
  if (sampled && !xl_flag_given(given, F_SEED)) d->seed = random_seed();
  return (xl_sampling){!sampled, d->temperature, d->top_k, d->top_p, (uint64_t)d->seed};
}

/* What the generation produced. */
typedef struct {
  long np, context_tokens, ng, cap;
  int32_t *gen;             /* [cap], grown as tokens come */
  double prefill_s, decode_s;
  const char *stop;
} decode_result;

/* Streams a generated token: text through the incremental detokenizer, else its id. */
static void emit(const decode_args *d, tok_stream *ts, int token) {
  if (d->ndjson) return;
  if (ts) {
    size_t pl;
    const char *piece = tok_stream_push(ts, token, &pl);
    if (pl) fwrite(piece, 1, pl, stdout);
  } else {
    printf("%d\n", token);
  }
  if (!d->block_buffered) fflush(stdout);   /* a reader of the pipe sees each token as it comes */
}

/* NaN or Inf logits (broken weights) would be sampled as id 0, usually the eos id: an empty
 * "stop":"eos" record with exit 0. Refuse them instead. */
static void check_logits(xl_run *r, const char *when) {
  if (!xl_run_logits_finite(r))
    xl_die("%s: the logits %s are not finite (NaN or Inf): the checkpoint's weights are broken", r->model_dir, when);
}

/* The per-token loop: no allocation, no JSON; text goes to the buffered stdout. */
static void generate(const decode_args *d, xl_run *r, xl_sampler *smp, decode_result *res) {
  xl_session *s = r->sess;
  int eos = r->model->cfg.eos_id, prof = tm_profiling(), tty = isatty(1), cpu = r->opt.device == XL_DEVICE_CPU;
  tok_stream *ts = r->tok ? tok_stream_new(r->tok) : NULL;
  res->stop = "length";
  res->context_tokens = s->tokens;   /* state + prompt before generation */
  tm_set_phase("decode");
  double t0 = xl_now();
  for (long k = 0; k < d->n_new; k++) {
    double ts0 = xl_now();
    int next;
    if (xl_session_sample(s, smp, &next)) xl_die("sampling failed on the device");
    if (prof) tm_prof_add(-1, TM_SAMPLE, xl_now() - ts0);
    if (!d->ignore_eos && next == eos) { res->stop = "eos"; break; }
    if (res->ng == res->cap) res->gen = xl_realloc(res->gen, sizeof(int32_t) * (size_t)(res->cap *= 2));
    res->gen[res->ng++] = next;
    emit(d, ts, next);
    /* also after the last token: the state then covers every token, and each token costs
     * the same, so tok/s is not flattered by a skipped step */
    if (xl_step(s, next)) xl_die("decode step failed on the device");
    if (cpu) check_logits(r, "after a generated token");   /* the device's are checked at the end */
    tm_decode_step(xl_now() - ts0);
    if (prof) tm_prof_step_end(k + 1);
    int st = tm_should_stop();
    if (st) { res->stop = st == XL_EXIT_MEMORY ? "memory" : "signal"; break; }
  }
  res->decode_s = xl_now() - t0;
  if (!cpu && res->ng) check_logits(r, "after the last generated token");
  if (!d->ndjson && ts) {
    size_t pl;
    const char *piece = tok_stream_finish(ts, &pl);
    if (pl) fwrite(piece, 1, pl, stdout);
    if (!tty || res->ng) fputc('\n', stdout);
  }
  tok_stream_free(ts);
}

static const char *xl_fmt_g6(float x) {
  static char buf[32];
  snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

static void report(const decode_args *d, xl_run *r, const decode_result *res, const char *text, const xl_sampling *sc) {
  double dtoks = res->decode_s > 0 ? res->ng / res->decode_s : 0, ptoks = res->prefill_s > 0 ? res->np / res->prefill_s : 0;
  if (!d->ndjson) {
    if (d->quiet) return;
    fflush(stdout);
    fprintf(stderr, "%s: %ld prompt tokens in %.3f s (%.1f tok/s), %ld new tokens in %.3f s (%.1f tok/s), stop: %s\n",
            xl_progname(), res->np, res->prefill_s, ptoks, res->ng, res->decode_s, dtoks, res->stop);
    return;
  }
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "tool", "xl-decode");
  cJSON_AddNumberToObject(rec, "prompt_tokens", (double)res->np);
  cJSON_AddNumberToObject(rec, "context_tokens", (double)res->context_tokens);
  cJSON_AddNumberToObject(rec, "new_tokens", (double)res->ng);
  cJSON *arr = cJSON_AddArrayToObject(rec, "ids");
  for (long k = 0; k < res->ng; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(res->gen[k]));
  if (text) cJSON_AddStringToObject(rec, "text", text); else cJSON_AddNullToObject(rec, "text");
  cJSON_AddNumberToObject(rec, "prefill_s", res->prefill_s);
  cJSON_AddNumberToObject(rec, "prefill_tok_s", ptoks);
  cJSON_AddNumberToObject(rec, "decode_s", res->decode_s);
  cJSON_AddNumberToObject(rec, "decode_tok_s", dtoks);
  cJSON_AddStringToObject(rec, "stop", res->stop);
  cJSON *smp = cJSON_AddObjectToObject(rec, "sampling");   /* enough to reproduce the run */
  cJSON_AddBoolToObject(smp, "greedy", sc->greedy);
  if (!sc->greedy) {
    /* the flags' values as typed, not the float's binary expansion */
    cJSON_AddNumberToObject(smp, "temperature", strtod(xl_fmt_g6(sc->temperature), NULL));
    cJSON_AddNumberToObject(smp, "top_k", sc->top_k);
    cJSON_AddNumberToObject(smp, "top_p", strtod(xl_fmt_g6(sc->top_p), NULL));
    char seed[32];   /* a string: seeds past 2^53 do not survive a JSON number */
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sc->seed);
    cJSON_AddStringToObject(smp, "seed", seed);
  }
  xl_run_record_fields(r, rec);
  xl_print_record(rec);
  cJSON_Delete(rec);
}

/* Ids the tokenizer has no text for (a model whose vocabulary is larger than its tokenizer's,
 * e.g. xl-init --preset 350m with the default model's 4096-id tokenizer) decode to nothing:
 * say so rather than print "" as if the model had written nothing. */
static void warn_textless_ids(const xl_run *r, const decode_result *res) {
  if (!r->tok || !res->ng) return;
  long none = 0;
  for (long k = 0; k < res->ng; k++) {
    size_t pl;
    if (!tok_piece(r->tok, res->gen[k], &pl)) none++;
  }
  if (none)
    xl_warn("%ld of %ld generated ids have no text in the tokenizer (it knows ids 0-%d, the model's "
            "vocabulary has %d): the text leaves them out%s", none, res->ng, tok_vocab_size(r->tok) - 1,
            r->model->cfg.vocab, none == res->ng ? " and is empty" : "");
}

/* The state and prompt: the state file first, then the prompt (if any) prefilled after it. */
static int32_t *feed_prompt(const decode_args *d, xl_run *r, decode_result *res) {
  char err[1024];
  if (d->state_in && xl_state_load(r->sess, d->state_in, err, sizeof err)) xl_die("%s", err);
  int32_t *ids;
  res->np = xl_run_prompt_ids(r, (xl_runargs *)&d->run, !d->state_in, &ids);
  if (res->np == 0 && !d->state_in) xl_die("empty prompt: give a prompt, --ids or --state");
  return ids;
}

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);   /* before anything else: may re-exec with a better OpenBLAS core */
  xl_version_if_asked(argc, argv, "xl-decode");
  xl_set_progname(argv[0]);
  decode_args d;
  xl_sampling sc = parse(&d, argc, argv);
  xl_prefill_watch watch = {0};   /* a stats row per prefill segment, and the stop check */
  d.run.progress = xl_run_prefill_hook;
  d.run.progress_ctx = &watch;
  if (d.detok) return detokenize(&d.run);
  /* refused before any work: an output never replaces a file of another kind */
  if ((d.out_file && xl_kind_check(d.out_file, XK_TEXT, NULL)) ||
      (d.state_out && xl_kind_check(d.state_out, XK_SAFETENSORS, "xl-state-1")))
    return XL_EXIT_USAGE;
  xl_run r;
  xl_run_open(&r, &d.run, 0);
  decode_result res = {0};
  int32_t *ids = feed_prompt(&d, &r, &res);
  if (tm_start(&d.run.tm, "xl-decode")) {   /* a log it cannot open (or will not replace) */
    free(ids);
    xl_run_close(&r);
    return XL_EXIT_ERROR;
  }
  if (res.np > 0 && !tm_should_stop()) {   /* the watchdog may refuse the run before it starts */
    tm_set_phase("prefill");
    xl_run_watch_begin(&watch, &r, &d.run, res.np);
    double t0 = xl_now();
    if (xl_prefill(r.sess, ids, res.np, NULL)) xl_die("prefill failed on the device");
    res.prefill_s = xl_now() - t0;
  }
  check_logits(&r, "after the prompt");
  xl_sampler smp;
  xl_sampler_init(&smp, &sc, r.model->cfg.vocab);
  res.cap = d.n_new < 4096 ? d.n_new + 1 : 4096;   /* doubled as needed: -n is only an upper bound */
  res.gen = xl_malloc(sizeof(int32_t) * (size_t)res.cap);
  if (tm_should_stop()) {   /* stopped during the prefill: the state holds the tokens consumed */
    res.stop = tm_should_stop() == XL_EXIT_MEMORY ? "memory" : "signal";
    res.context_tokens = r.sess->tokens;
  } else {
    generate(&d, &r, &smp, &res);
  }
  tm_set_phase("done");
  int status = tm_should_stop();
  char *text = r.tok ? tok_decode(r.tok, res.gen, (size_t)res.ng, NULL) : NULL, err[1024];
  warn_textless_ids(&r, &res);
  if (status == XL_EXIT_MEMORY) {
    xl_warn("stopped: %s; output files not written", tm_stop_reason());
  } else {
    if (d.out_file && xl_write_file_atomic(d.out_file, text ? text : "", text ? strlen(text) : 0))
      xl_die("%s: cannot write: %s", d.out_file, strerror(errno));
    if (d.state_out && xl_state_save(r.sess, d.state_out, err, sizeof err)) xl_die("%s", err);
  }
  report(&d, &r, &res, text, &sc);
  tm_stop();
  if (status && status != XL_EXIT_MEMORY) xl_warn("interrupted: %s", tm_stop_reason());
  if (tm_logs_failed() && !status) status = XL_EXIT_ERROR;   /* a log the disk could not take (removed, named above) */
  free(text);
  xl_sampler_free(&smp);
  free(res.gen);
  free(ids);
  xl_run_close(&r);
  xl_finish_stdout();
  return status;
}
