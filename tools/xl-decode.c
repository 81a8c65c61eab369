/* xl-decode: continues from a state file or a prompt and generates tokens one at a time
 * through the recurrent state; streams the text (or prints one NDJSON record per run). */
#include "cli/runargs.h"
#include "engine/sampler.h"
#include "engine/state.h"
#include "engine/blasenv.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

static void usage(void) {
  printf("Usage: xl-decode [-m DIR] (--state STATE | PROMPT | --prompt-file F | --ids ...) -n N [options]\n"
         "Generates N tokens after a prompt or a saved state (stops early at the end-of-sequence id).\n\n"
         "Generation:\n"
         "  -n, --new N             tokens to generate (default 64)\n"
         "      --state STATE       continue from a state file written by xl-prefill -o (a prompt given\n"
         "                          as well is fed after the state)\n"
         "      --greedy            argmax decoding (the default)\n"
         "      --temperature T     sample with temperature T (> 0); with --top-k K, --top-p P, --seed S\n"
         "      --ignore-eos        do not stop at the model's eos_token_id\n"
         "Output:\n"
         "      --format text       stream the generated text to stdout (default); a summary on stderr\n"
         "      --format ndjson     one record per run on stdout at the end: {tool, prompt_tokens,\n"
         "                          new_tokens, ids, text, prefill_s, prefill_tok_s, decode_s,\n"
         "                          decode_tok_s, stop, backend, chunk_size, workers, ...}\n"
         "  -o, --out FILE          also write the generated text to FILE (atomically)\n"
         "      --state-out FILE    write the state after the last generated token\n"
         "  -q, --quiet             no summary line on stderr\n"
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

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);   /* before anything else: may re-exec with a better OpenBLAS core */
  xl_set_progname(argv[0]);
  xl_runargs a;
  xl_runargs_init(&a);
  long n_new = 64;
  const char *state_in = NULL, *state_out = NULL, *out_file = NULL;
  int ndjson = 0, ignore_eos = 0, quiet = 0, detok = 0, sampled = 0;
  xl_sampling sc = {1, 1.0f, 0, 1.0f, 0};
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (xl_usage_error("%s needs a value", s), ""))
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(); return 0; }
    else if (!strcmp(s, "-n") || !strcmp(s, "--new")) n_new = xl_flag_long(s, VALUE(), 0, 1L << 40);
    else if (!strcmp(s, "--state")) state_in = VALUE();
    else if (!strcmp(s, "--state-out")) state_out = VALUE();
    else if (!strcmp(s, "-o") || !strcmp(s, "--out")) out_file = VALUE();
    else if (!strcmp(s, "--greedy")) sc.greedy = 1;
    else if (!strcmp(s, "--temperature")) { sc.temperature = (float)xl_flag_double(s, VALUE(), 1e-6, 1e6); sampled = 1; }
    else if (!strcmp(s, "--top-k")) { sc.top_k = (int)xl_flag_long(s, VALUE(), 0, 1 << 30); sampled = 1; }
    else if (!strcmp(s, "--top-p")) { sc.top_p = (float)xl_flag_double(s, VALUE(), 1e-6, 1.0); sampled = 1; }
    else if (!strcmp(s, "--seed")) sc.seed = (uint64_t)xl_flag_long(s, VALUE(), 0, 0x7fffffffffffffffL);
    else if (!strcmp(s, "--format")) {
      const char *v = VALUE();
      if (!strcmp(v, "ndjson")) ndjson = 1;
      else if (!strcmp(v, "text")) ndjson = 0;
      else xl_usage_error("--format: '%s' is not text or ndjson", v);
    } else if (!strcmp(s, "--ignore-eos")) ignore_eos = 1;
    else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) quiet = 1;
    else if (!strcmp(s, "--detokenize")) detok = 1;
    else if (!xl_runargs_parse(&a, argc, argv, &i)) xl_usage_error("unknown option '%s'", s);
#undef VALUE
  }
  if (detok) return detokenize(&a);
  int greedy_flag = 0;
  for (int i = 1; i < argc; i++) greedy_flag |= !strcmp(argv[i], "--greedy");
  if (sampled && greedy_flag) xl_usage_error("--greedy and --temperature/--top-k/--top-p exclude each other");
  sc.greedy = !sampled;

  xl_run r;
  xl_run_open(&r, &a, 0);
  xl_session *s = r.sess;
  const xl_config *c = &r.model->cfg;
  char err[1024];
  if (state_in && xl_state_load(s, state_in, err, sizeof err)) xl_die("%s", err);
  int32_t *ids;
  long np = xl_run_prompt_ids(&r, &a, !state_in, &ids);
  if (np == 0 && !state_in) xl_die("empty prompt: give a prompt, --ids or --state");
  if (tm_start(&a.tm, "xl-decode")) return 1;

  /* prefill the prompt (after the state, if any) */
  double prefill_s = 0;
  if (np > 0) {
    tm_set_phase("prefill");
    double t0 = xl_now();
    xl_prefill(s, ids, np, NULL);
    prefill_s = xl_now() - t0;
    tm_prefill_chunk(np, prefill_s);
  }
  xl_sampler smp;
  xl_sampler_init(&smp, &sc, c->vocab);
  int32_t *gen = xl_malloc(sizeof(int32_t) * (size_t)(n_new + 1));
  tok_stream *ts = r.tok ? tok_stream_new(r.tok) : NULL;
  int tty = isatty(1), stream_text = !ndjson && ts;
  const char *stop = "length";
  long ng = 0, context_tokens = s->tokens;   /* state + prompt before generation */
  tm_set_phase("decode");
  int prof = tm_profiling();
  double t0 = xl_now();
  /* the per-token loop: no allocation, no JSON; text is written to the buffered stdout */
  for (long k = 0; k < n_new; k++) {
    double ts0 = xl_now();
    int next = xl_sample(&smp, s->logits);
    if (prof) tm_prof_add(-1, TM_SAMPLE, xl_now() - ts0);
    if (!ignore_eos && next == c->eos_id) { stop = "eos"; break; }
    gen[ng++] = next;
    if (stream_text) {
      size_t pl;
      const char *piece = tok_stream_push(ts, next, &pl);
      if (pl) fwrite(piece, 1, pl, stdout);
      if (tty) fflush(stdout);
    } else if (!ndjson && !ts) {
      printf("%d\n", next);
    }
    xl_step(s, next);   /* also after the last token: the state then covers every token, and each
                           token costs the same, so tok/s is not flattered by a skipped step */
    tm_decode_step(xl_now() - ts0);
    if (prof) tm_prof_step_end(k + 1);
    int st = tm_should_stop();
    if (st) { stop = st == XL_EXIT_MEMORY ? "memory" : "signal"; break; }
  }
  double decode_s = xl_now() - t0;
  if (stream_text) {
    size_t pl;
    const char *piece = tok_stream_finish(ts, &pl);
    if (pl) fwrite(piece, 1, pl, stdout);
    if (!tty || ng) fputc('\n', stdout);
  }
  tm_set_phase("done");
  int status = tm_should_stop();
  char *text = r.tok ? tok_decode(r.tok, gen, (size_t)ng, NULL) : NULL;
  if (status == XL_EXIT_MEMORY) {
    xl_warn("stopped: %s; output files not written", tm_stop_reason());
  } else {
    if (out_file && xl_write_file_atomic(out_file, text ? text : "", text ? strlen(text) : 0))
      xl_die("%s: cannot write: %s", out_file, strerror(errno));
    if (state_out && xl_state_save(s, state_out, err, sizeof err)) xl_die("%s", err);
  }
  double dtoks = decode_s > 0 ? ng / decode_s : 0;
  if (ndjson) {
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "tool", "xl-decode");
    cJSON_AddNumberToObject(rec, "prompt_tokens", (double)np);
    cJSON_AddNumberToObject(rec, "context_tokens", (double)context_tokens);
    cJSON_AddNumberToObject(rec, "new_tokens", (double)ng);
    cJSON *arr = cJSON_AddArrayToObject(rec, "ids");
    for (long k = 0; k < ng; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(gen[k]));
    if (text) cJSON_AddStringToObject(rec, "text", text); else cJSON_AddNullToObject(rec, "text");
    cJSON_AddNumberToObject(rec, "prefill_s", prefill_s);
    cJSON_AddNumberToObject(rec, "prefill_tok_s", prefill_s > 0 ? np / prefill_s : 0);
    cJSON_AddNumberToObject(rec, "decode_s", decode_s);
    cJSON_AddNumberToObject(rec, "decode_tok_s", dtoks);
    cJSON_AddStringToObject(rec, "stop", stop);
    xl_run_record_fields(&r, rec);
    xl_print_record(rec);
    cJSON_Delete(rec);
  } else if (!quiet) {
    fflush(stdout);
    fprintf(stderr, "%s: %ld prompt tokens in %.3f s (%.1f tok/s), %ld new tokens in %.3f s (%.1f tok/s), stop: %s\n",
            xl_progname(), np, prefill_s, prefill_s > 0 ? np / prefill_s : 0, ng, decode_s, dtoks, stop);
  }
  tm_stop();
  if (status && status != XL_EXIT_MEMORY) xl_warn("interrupted: %s", tm_stop_reason());
  free(text);
  tok_stream_free(ts);
  xl_sampler_free(&smp);
  free(gen);
  free(ids);
  xl_run_close(&r);
  xl_finish_stdout();
  return status;
}
