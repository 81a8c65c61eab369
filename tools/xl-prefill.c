/* xl-prefill: runs a model over a prompt (chunkwise-parallel by default) and writes the
 * recurrent state, optionally the logits of every position, and one NDJSON record. */
#include "cli/runargs.h"
#include "io/safetensors.h"
#include "engine/state.h"
#include "engine/blasenv.h"
#include "base/util.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
  printf("Usage: xl-prefill [-m DIR] [PROMPT | --prompt-file F | --ids 5,7,9 | --ids-file F] [options]\n"
         "Runs the model over the prompt and writes its recurrent state.\n\n"
         "Outputs:\n"
         "  -o, --state-out STATE   write the final state (safetensors, xl-state-1) for xl-decode --state\n"
         "      --logits FILE       write the logits of every position (safetensors, F32 'logits' [L, V])\n"
         "      --tokenize          only print {\"ids\":[...]} for the prompt text and exit\n"
         "stdout: one NDJSON record {tool, tokens, seconds, tok_s, backend, chunk_size, workers,\n"
         "heads_per_band, matmul, blas_core, peak_rss_mb, state, logits, stop}.\n\n%s\n%s\n"
         "Exit status: 0 ok, 1 error, 2 usage, 3 memory watchdog stop (outputs removed),\n"
         "130/143 interrupted (the state of the tokens consumed so far is written).\n",
         xl_runargs_help(), tm_options_help());
}

static int show_progress;   /* stderr is a terminal and the prompt spans several segments */

static int progress(long done, long total, double seconds) {
  static long last_done = 0;
  static double last_s = 0;
  if (done < last_done) last_done = 0, last_s = 0;
  tm_prefill_chunk(done - last_done, seconds - last_s);
  if (tm_profiling()) tm_prof_step_end(done);
  if (show_progress) {
    double rate = seconds > 0 ? done / seconds : 0, eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r%s: %ld/%ld tokens (%.0f%%), %.1f tok/s, ETA %.0f s   %s", xl_progname(), done, total,
            100.0 * done / total, rate, eta, done == total ? "\n" : "");
  }
  last_done = done;
  last_s = seconds;
  return tm_should_stop() != 0;
}

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);   /* before anything else: may re-exec with a better OpenBLAS core */
  xl_set_progname(argv[0]);
  xl_runargs a;
  xl_runargs_init(&a);
  const char *state_out = NULL, *logits_out = NULL;
  int tokenize = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(); return 0; }
    if (!strcmp(s, "-o") || !strcmp(s, "--state-out") || !strcmp(s, "--logits")) {
      if (i + 1 >= argc) xl_usage_error("%s needs a value", s);
      if (!strcmp(s, "--logits")) logits_out = argv[++i]; else state_out = argv[++i];
    } else if (!strcmp(s, "--tokenize")) {
      tokenize = 1;
    } else if (!xl_runargs_parse(&a, argc, argv, &i)) {
      xl_usage_error("unknown option '%s'", s);
    }
  }
  xl_run r;
  if (tokenize) {
    if (a.ids_arg || a.ids_file) xl_usage_error("--tokenize takes text, not --ids");
    xl_run_open_tokenizer(&r, &a);
    int32_t *ids;
    long n = xl_run_prompt_ids(&r, &a, 1, &ids);
    cJSON *rec = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(rec, "ids");
    for (long k = 0; k < n; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[k]));
    xl_print_record(rec);
    cJSON_Delete(rec);
    free(ids);
    xl_run_close(&r);
    xl_finish_stdout();
    return 0;
  }
  xl_run_open(&r, &a, 0);
  int32_t *ids;
  long n = xl_run_prompt_ids(&r, &a, 1, &ids);
  if (n <= 0) xl_die("empty prompt: nothing to prefill");
  if (tm_start(&a.tm, "xl-prefill")) return 1;
  const xl_config *c = &r.model->cfg;
  float *logits = NULL;
  if (logits_out) {
    size_t bytes = (size_t)n * c->vocab * sizeof(float);
    logits = malloc(bytes);
    if (!logits) xl_die("cannot allocate %zu MB for --logits of %ld positions", bytes >> 20, n);
  }
  tm_set_phase("prefill");
  show_progress = isatty(2) && n > r.sess->seg;
  xl_prefill_progress = progress;
  double t0 = xl_now();
  xl_prefill(r.sess, ids, n, logits);
  double secs = xl_now() - t0;
  tm_set_phase("done");
  int stop = tm_should_stop();
  long done = r.sess->tokens;
  char err[1024];
  const char *stop_name = stop == 0 ? "done" : stop == XL_EXIT_MEMORY ? "memory" : "signal";
  if (stop == XL_EXIT_MEMORY) {
    /* the hard limit: leave nothing behind rather than add to the pressure */
    xl_warn("stopped: %s; no output written", tm_stop_reason());
    state_out = logits_out = NULL;
  }
  if (state_out && xl_state_save(r.sess, state_out, err, sizeof err)) xl_die("%s", err);
  if (logits_out) {
    st_writer w;
    st_writer_init(&w);
    int64_t shape[2] = {done, c->vocab};
    st_writer_add(&w, "logits", ST_F32, 2, shape, logits);
    st_writer_meta(&w, "format", "xl-logits-1");
    st_writer_meta(&w, "model", r.model->fingerprint_hex);
    if (st_writer_write(&w, logits_out, err, sizeof err)) xl_die("%s", err);
    st_writer_free(&w);
  }
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "tool", "xl-prefill");
  cJSON_AddNumberToObject(rec, "tokens", (double)done);
  cJSON_AddNumberToObject(rec, "seconds", secs);
  cJSON_AddNumberToObject(rec, "tok_s", secs > 0 ? done / secs : 0);
  xl_run_record_fields(&r, rec);
  if (state_out) cJSON_AddStringToObject(rec, "state", state_out); else cJSON_AddNullToObject(rec, "state");
  if (logits_out) cJSON_AddStringToObject(rec, "logits", logits_out); else cJSON_AddNullToObject(rec, "logits");
  cJSON_AddStringToObject(rec, "stop", stop_name);
  xl_print_record(rec);
  cJSON_Delete(rec);
  tm_stop();
  if (stop && stop != XL_EXIT_MEMORY) xl_warn("interrupted after %ld of %ld tokens: %s", done, n, tm_stop_reason());
  free(logits);
  free(ids);
  xl_run_close(&r);
  xl_finish_stdout();
  return stop;
}
