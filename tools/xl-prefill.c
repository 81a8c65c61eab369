/* xl-prefill: runs a model over a prompt (chunkwise-parallel by default) and writes the
 * recurrent state, optionally the logits of every position, and one NDJSON record.
 * parse -> open -> run -> report. */
#include "cli/version.h"
#include "cli/flags.h"
#include "cli/runargs.h"
#include "io/safetensors.h"
#include "engine/state.h"
#include "engine/blasenv.h"
#include "base/filekind.h"
#include "base/util.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
  printf("Usage: xl-prefill [-m DIR] [PROMPT | --prompt-file F | --ids 5,7,9 | --ids-file F] [options]\n"
         "Runs the model over the prompt and writes its recurrent state.\n\n"
         "Outputs:\n"
         "  -o, --output STATE      write the final state (safetensors, xl-state-1) for xl-decode --state\n"
         "      --state-out STATE   the same (the name xl-decode uses for its final state)\n"
         "      --logits FILE       write the logits of every position (safetensors, F32 'logits' [L, V])\n"
         "      --tokenize          only print {\"ids\":[...]} for the prompt text and exit\n"
         "stdout: one NDJSON record {tool, tokens, seconds, tok_s, device, backend, chunk_size,\n"
         "heads_per_band, workers, matmul, blas_core, peak_rss_mb, state, logits, stop}.\n\n%s\n%s\n"
         "Exit status: 0 ok, 1 error, 2 usage, 3 memory watchdog stop (outputs removed),\n"
         "130/143 interrupted (the state of the tokens consumed so far is written).\n",
         xl_runargs_help(), tm_options_help());
}

typedef struct {
  xl_runargs run;
  const char *state_out, *logits_out;
  int tokenize, help;
} prefill_args;

static const xl_flag prefill_flags[] = {
    {"--output", "-o", XF_STR, offsetof(prefill_args, state_out), 0, 0, NULL},
    {"--state-out", NULL, XF_STR, offsetof(prefill_args, state_out), 0, 0, NULL},   /* as in xl-decode */
    {"--logits", NULL, XF_STR, offsetof(prefill_args, logits_out), 0, 0, NULL},
    {"--tokenize", NULL, XF_SET, offsetof(prefill_args, tokenize), 0, 0, NULL},
    {"--help", "-h", XF_SET, offsetof(prefill_args, help), 0, 0, NULL},
};

static xl_prefill_watch watch = {.profile = 1};   /* per-segment rows, profile steps, progress */

static void parse(prefill_args *p, int argc, char **argv) {
  memset(p, 0, sizeof *p);
  xl_runargs_init(&p->run);
  for (int i = 1; i < argc; i++) {
    if (xl_flags_parse(prefill_flags, sizeof prefill_flags / sizeof *prefill_flags, p, NULL, argc, argv, &i)) {
      if (p->help) { usage(); exit(0); }
    } else if (!xl_runargs_parse(&p->run, argc, argv, &i)) {
      xl_usage_error("unknown option '%s'", argv[i]);
    }
  }
  p->run.progress = xl_run_prefill_hook;
  p->run.progress_ctx = &watch;
}

/* --tokenize: the prompt's ids, without loading the model. */
static int tokenize_only(prefill_args *p) {
  if (p->run.ids_arg || p->run.ids_file) xl_usage_error("--tokenize takes text, not --ids");
  xl_run r;
  xl_run_open_tokenizer(&r, &p->run);
  int32_t *ids;
  long n = xl_run_prompt_ids(&r, &p->run, 1, &ids);
  cJSON *rec = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(rec, "ids");
  for (long k = 0; k < n; k++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[k]));
  xl_print_record(rec);
  cJSON_Delete(rec);
  free(ids);
  xl_run_close(&r);
  xl_finish_stdout();
  return 0;
}

/* The state and logits files of the tokens consumed (none after a memory stop). */
static void write_outputs(const prefill_args *p, xl_run *r, const float *logits) {
  char err[1024];
  if (p->state_out && xl_state_save(r->sess, p->state_out, err, sizeof err)) xl_die("%s", err);
  if (!p->logits_out) return;
  st_writer w;
  st_writer_init(&w);
  int64_t shape[2] = {r->sess->tokens, r->model->cfg.vocab};
  st_writer_add(&w, "logits", ST_F32, 2, shape, logits);
  st_writer_meta(&w, "format", "xl-logits-1");
  st_writer_meta(&w, "model", r->model->fingerprint_hex);
  if (st_writer_write(&w, p->logits_out, err, sizeof err)) xl_die("%s", err);
  st_writer_free(&w);
}

static void report(const prefill_args *p, xl_run *r, double secs, const char *stop_name) {
  long done = r->sess->tokens;
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "tool", "xl-prefill");
  cJSON_AddNumberToObject(rec, "tokens", (double)done);
  cJSON_AddNumberToObject(rec, "seconds", secs);
  cJSON_AddNumberToObject(rec, "tok_s", secs > 0 ? done / secs : 0);
  xl_run_record_fields(r, rec);
  if (p->state_out) cJSON_AddStringToObject(rec, "state", p->state_out); else cJSON_AddNullToObject(rec, "state");
  if (p->logits_out) cJSON_AddStringToObject(rec, "logits", p->logits_out); else cJSON_AddNullToObject(rec, "logits");
  cJSON_AddStringToObject(rec, "stop", stop_name);
  xl_print_record(rec);
  cJSON_Delete(rec);
}

int main(int argc, char **argv) {
  xl_blas_setup(argc, argv);   /* before anything else: may re-exec with a better OpenBLAS core */
  xl_version_if_asked(argc, argv, "xl-prefill");
  xl_set_progname(argv[0]);
  prefill_args p;
  parse(&p, argc, argv);
  if (p.tokenize) return tokenize_only(&p);
  /* refused before any work: an output never replaces a file of another kind */
  if ((p.state_out && xl_kind_check(p.state_out, XK_SAFETENSORS, "xl-state-1")) ||
      (p.logits_out && xl_kind_check(p.logits_out, XK_SAFETENSORS, "xl-logits-1")))
    return XL_EXIT_USAGE;
  xl_run r;
  xl_run_open(&r, &p.run, 0);
  int32_t *ids;
  long n = xl_run_prompt_ids(&r, &p.run, 1, &ids);
  if (n <= 0) xl_die("empty prompt: nothing to prefill");
  if (p.logits_out) tm_expect_bytes((size_t)n * r.model->cfg.vocab * sizeof(float));   /* checked before the run */
  if (tm_start(&p.run.tm, "xl-prefill")) {   /* a log it cannot open (or will not replace) */
    free(ids);
    xl_run_close(&r);
    return XL_EXIT_ERROR;
  }
  float *logits = NULL;
  if (p.logits_out) {
    size_t bytes = (size_t)n * r.model->cfg.vocab * sizeof(float);
    logits = malloc(bytes);
    if (!logits) xl_die("cannot allocate %zu MB for --logits of %ld positions", bytes >> 20, n);
  }
  tm_set_phase("prefill");
  xl_run_watch_begin(&watch, &r, &p.run, n);   /* progress: a terminal after a second, or --progress */
  double t0 = xl_now();
  if (!tm_should_stop() && xl_prefill(r.sess, ids, n, logits))   /* the watchdog may refuse it before it starts */
    xl_die("prefill failed on the device (see the message above)");
  double secs = xl_now() - t0;
  if (!xl_run_logits_finite(&r))
    xl_die("%s: the logits after the prompt are not finite (NaN or Inf): the checkpoint's weights are "
           "broken; no output written", r.model_dir);
  tm_set_phase("done");
  int stop = tm_should_stop();
  if (stop == XL_EXIT_MEMORY) {   /* the hard limit: leave nothing behind rather than add to the pressure */
    xl_warn("stopped: %s; no output written", tm_stop_reason());
    p.state_out = p.logits_out = NULL;
  }
  write_outputs(&p, &r, logits);
  report(&p, &r, secs, stop == 0 ? "done" : stop == XL_EXIT_MEMORY ? "memory" : "signal");
  tm_stop();
  if (stop && stop != XL_EXIT_MEMORY) xl_warn("interrupted after %ld of %ld tokens: %s", r.sess->tokens, n, tm_stop_reason());
  if (tm_logs_failed() && !stop) stop = XL_EXIT_ERROR;   /* a log the disk could not take (removed, named above) */
  free(logits);
  free(ids);
  xl_run_close(&r);
  xl_finish_stdout();
  return stop;
}
