/* runargs: the shared command line and set-up of xl-prefill / xl-decode. See runargs.h. */
#include "cli/runargs.h"
#include "engine/blasenv.h"
#include "base/util.h"
#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void xl_runargs_init(xl_runargs *a) {
  memset(a, 0, sizeof *a);
  a->bos = -1;
  a->backend = a->chunk_size = a->workers = a->heads_per_band = -1;
  tm_options_init(&a->tm);
}

const char *xl_runargs_help(void) {
  return
    "Model and prompt:\n"
    "  -m, --model DIR         Hugging Face xLSTM checkpoint directory (default: $XL_MODEL,\n"
    "                          else the embedded models/xlstm-tiny-pydocs)\n"
    "  PROMPT                  prompt text (or --prompt-file F, --ids 5,7,9, --ids-file F;\n"
    "                          with none of these the text is read from stdin)\n"
    "      --bos yes|no        prepend the BOS id to a text prompt (default: when the model's\n"
    "                          force_bos_token_insert or the tokenizer asks for it)\n"
    "Speed settings (flags > --profile > XL_* environment > the model's defaults):\n"
    "      --backend B         prefill backend: chunkwise (GEMMs, default) or recurrent (token\n"
    "                          steps, the reference path); decode always steps   [XL_BACKEND]\n"
    "      --chunk-size N      tokens per chunk of the chunkwise prefill (default: the model's\n"
    "                          chunk_size)                                        [XL_CHUNK_SIZE]\n"
    "      --workers N         threads: N runs our head bands and matvec row bands, and OpenBLAS\n"
    "                          gets the same N for the projection GEMMs but one thread inside\n"
    "                          head tasks, so no more than N threads are ever busy; use at\n"
    "                          most the number of cores (default 1)               [XL_WORKERS]\n"
    "      --heads-per-band H  heads per parallel task in the cell (default 1) [XL_HEADS_PER_BAND]\n"
    "      --matmul fp32|bf16  bf16 also rounds activations to bf16 before each matrix product\n"
    "                          (a speed/quality trade; default fp32, exact)\n"
    "      --profile FILE      if FILE holds a JSON settings profile ({\"params\":{...}}, as xl-sweep\n"
    "                          and xl-merge write), apply it; otherwise write per-phase latency\n"
    "                          JSON lines to FILE (same as --profile-log FILE)\n";
}

/* A settings profile is a JSON object with "params" (or the knobs at top level). */
static int is_settings_profile(const char *path) {
  size_t len;
  char *text = xl_read_file(path, &len);
  if (!text) return 0;
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  int yes = cJSON_IsObject(j) && (cJSON_IsObject(cJSON_GetObjectItem(j, "params")) || cJSON_GetObjectItem(j, "chunk_size") ||
                                  cJSON_GetObjectItem(j, "workers") || cJSON_GetObjectItem(j, "backend"));
  cJSON_Delete(j);
  return yes;
}

int xl_runargs_parse(xl_runargs *a, int argc, char **argv, int *i) {
  const char *arg = argv[*i], *v;
  if (tm_options_parse(&a->tm, argc, argv, i)) return 1;
  if ((v = xl_flag_value(argc, argv, i, "-m")) || (v = xl_flag_value(argc, argv, i, "--model"))) { a->model_dir = v; return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--prompt-file"))) { a->prompt_file = v; return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--ids"))) { a->ids_arg = v; return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--ids-file"))) { a->ids_file = v; return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--bos"))) {
    if (!strcmp(v, "yes")) a->bos = 1;
    else if (!strcmp(v, "no")) a->bos = 0;
    else xl_usage_error("--bos: '%s' is not yes or no", v);
    return 1;
  }
  if ((v = xl_flag_value(argc, argv, i, "--backend"))) {
    xl_backend b;
    if (xl_backend_parse(v, &b)) xl_usage_error("--backend: '%s' is not chunkwise or recurrent", v);
    a->backend = (int)b;
    return 1;
  }
  if ((v = xl_flag_value(argc, argv, i, "--chunk-size"))) { a->chunk_size = (int)xl_flag_long("--chunk-size", v, 1, 1 << 16); return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--workers"))) { a->workers = (int)xl_flag_long("--workers", v, 1, 1024); return 1; }
  if ((v = xl_flag_value(argc, argv, i, "--heads-per-band"))) {
    a->heads_per_band = (int)xl_flag_long("--heads-per-band", v, 1, 1 << 16);
    return 1;
  }
  if ((v = xl_flag_value(argc, argv, i, "--matmul"))) {
    if (!strcmp(v, "bf16")) a->matmul_bf16 = 1;
    else if (!strcmp(v, "fp32")) a->matmul_bf16 = 0;
    else xl_usage_error("--matmul: '%s' is not fp32 or bf16", v);
    return 1;
  }
  if ((v = xl_flag_value(argc, argv, i, "--profile"))) {
    if (is_settings_profile(v)) a->settings_file = v;
    else a->tm.profile_log = v;
    return 1;
  }
  if (arg[0] != '-' || !strcmp(arg, "-")) {
    if (a->prompt) xl_usage_error("more than one prompt argument ('%s'); quote the prompt", arg);
    a->prompt = arg;
    return 1;
  }
  return 0;
}

/* Applies a settings profile's params over o. Exits 1 on a malformed profile. */
static void apply_settings(const char *path, xl_runopts *o) {
  size_t len;
  char *text = xl_read_file(path, &len);
  if (!text) xl_die("%s: cannot read: %s", path, strerror(errno));
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  cJSON *p = cJSON_GetObjectItem(j, "params");
  if (!cJSON_IsObject(p)) p = j;
  cJSON *x;
  if ((x = cJSON_GetObjectItem(p, "backend")) && !cJSON_IsNull(x)) {
    xl_backend b;
    if (!cJSON_IsString(x) || xl_backend_parse(x->valuestring, &b)) xl_die("%s: params.backend must be \"chunkwise\" or \"recurrent\"", path);
    o->backend = b;
  }
  struct { const char *k; int *dst; int hi; } ints[] = {
    {"chunk_size", &o->chunk_size, 1 << 16}, {"workers", &o->workers, 1024}, {"heads_per_band", &o->heads_per_band, 1 << 16}};
  for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
    if (!(x = cJSON_GetObjectItem(p, ints[k].k)) || cJSON_IsNull(x)) continue;
    if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble > ints[k].hi || x->valuedouble != (int)x->valuedouble)
      xl_die("%s: params.%s must be an integer in [1, %d]", path, ints[k].k, ints[k].hi);
    *ints[k].dst = (int)x->valuedouble;
  }
  cJSON_Delete(j);
}

static void open_tok(xl_run *r) {
  char *tp = xl_path_join(r->model_dir, "tokenizer.json");
  if (xl_exists(tp)) {
    char err[512];
    r->tok = tok_load(r->model_dir, err, sizeof err);
    if (!r->tok) xl_die("%s", err);
  }
  free(tp);
}

void xl_run_open_tokenizer(xl_run *r, xl_runargs *a) {
  memset(r, 0, sizeof *r);
  r->model_dir = a->model_dir ? xl_strdup(a->model_dir) : xl_default_model_dir();
  open_tok(r);
  if (!r->tok) xl_die("%s: no tokenizer.json in the model directory", r->model_dir);
}

void xl_run_open(xl_run *r, xl_runargs *a, int need_tokenizer) {
  memset(r, 0, sizeof *r);
  r->model_dir = a->model_dir ? xl_strdup(a->model_dir) : xl_default_model_dir();
  char err[1024];
  tm_set_phase("load");
  r->model = xl_model_load(r->model_dir, err, sizeof err);
  if (!r->model) xl_die("%s", err);
  open_tok(r);
  if (need_tokenizer && !r->tok) xl_die("%s: no tokenizer.json in the model directory (give --ids instead)", r->model_dir);
  xl_runopts_default(&r->opt, r->model);   /* model defaults, then XL_* environment */
  if (a->settings_file) apply_settings(a->settings_file, &r->opt);
  if (a->backend >= 0) r->opt.backend = (xl_backend)a->backend;
  if (a->chunk_size > 0) r->opt.chunk_size = a->chunk_size;
  if (a->workers > 0) r->opt.workers = a->workers;
  if (a->heads_per_band > 0) r->opt.heads_per_band = a->heads_per_band;
  xl_matmul_bf16 = a->matmul_bf16;
  r->sess = xl_session_new(r->model, &r->opt, err, sizeof err);
  if (!r->sess) xl_die("%s", err);
  for (int i = 0; i < r->model->st.nfiles; i++)
    tm_register_region(r->model->st.files[i].path, r->model->st.files[i].map, r->model->st.files[i].size);
  tm_set_scratch_bytes(r->sess->scratch_bytes);
}

void xl_run_close(xl_run *r) {
  xl_session_free(r->sess);
  if (r->model)
    for (int i = 0; i < r->model->st.nfiles; i++) tm_unregister_region(r->model->st.files[i].map);
  xl_model_free(r->model);
  tok_free(r->tok);
  free(r->model_dir);
  memset(r, 0, sizeof *r);
}

/* Parses ids separated by commas/whitespace, or JSON {"ids":[...]} / [...]. */
static long parse_ids(const char *text, const char *src, int vocab, int32_t **out) {
  size_t cap = 64, n = 0;
  int32_t *ids = xl_malloc(cap * sizeof *ids);
  const char *p = text;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p == '{' || *p == '[') {
    cJSON *j = cJSON_Parse(p);
    cJSON *arr = cJSON_IsArray(j) ? j : cJSON_GetObjectItem(j, "ids");
    if (!cJSON_IsArray(arr)) xl_die("%s: expected {\"ids\":[...]} or a list of integers", src);
    cJSON *x;
    int k = 0;
    cJSON_ArrayForEach(x, arr) {
      if (!cJSON_IsNumber(x) || x->valuedouble != (double)(long)x->valuedouble || x->valuedouble < 0 || (vocab > 0 && x->valuedouble >= vocab))
        xl_die("%s: ids[%d] is not a token id in [0, %d)", src, k, vocab);
      if (n == cap) ids = xl_realloc(ids, (cap *= 2) * sizeof *ids);
      ids[n++] = (int32_t)x->valuedouble;
      k++;
    }
    cJSON_Delete(j);
  } else {
    while (*p) {
      while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
      if (!*p) break;
      char *end;
      errno = 0;
      long v = strtol(p, &end, 10);
      if (end == p || errno || v < 0 || (vocab > 0 && v >= vocab))
        xl_die("%s: token %zu ('%.20s') is not an id in [0, %d)", src, n + 1, p, vocab);
      if (n == cap) ids = xl_realloc(ids, (cap *= 2) * sizeof *ids);
      ids[n++] = (int32_t)v;
      p = end;
      if (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        xl_die("%s: unexpected character '%c' after token %zu", src, *p, n);
    }
  }
  *out = ids;
  return (long)n;
}

long xl_run_encode(xl_run *r, xl_runargs *a, const char *text, size_t len, const char *src, int32_t **ids) {
  if (!r->tok) xl_die("%s: no tokenizer.json in the model directory; give the prompt as --ids", r->model_dir);
  size_t n = 0, cap = 0;
  *ids = NULL;
  int bos = a->bos;
  if (bos < 0) bos = (r->model && r->model->cfg.force_bos) || tok_adds_bos(r->tok);
  if (bos) {
    int id = r->model && r->model->cfg.bos_id >= 0 ? r->model->cfg.bos_id : tok_bos_id(r->tok);
    if (id < 0) xl_die("--bos yes: the model has no bos_token_id and the tokenizer no BOS token");
    cap = 16;
    *ids = xl_malloc(cap * sizeof **ids);
    (*ids)[n++] = id;
  }
  char err[512];
  if (tok_encode(r->tok, text, len, ids, &n, &cap, err, sizeof err)) xl_die("%s: %s", src, err);
  return (long)n;
}

long xl_run_prompt_ids(xl_run *r, xl_runargs *a, int allow_stdin, int32_t **ids) {
  int given = !!a->prompt + !!a->prompt_file + !!a->ids_arg + !!a->ids_file;
  if (given > 1) xl_usage_error("give only one of PROMPT, --prompt-file, --ids, --ids-file");
  int vocab = r->model ? r->model->cfg.vocab : (r->tok ? tok_vocab_size(r->tok) : 0);
  *ids = NULL;
  if (a->ids_arg) return parse_ids(a->ids_arg, "--ids", vocab, ids);
  if (a->ids_file) {
    char *text = xl_read_file(a->ids_file, NULL);
    if (!text) xl_die("%s: cannot read: %s", a->ids_file, strerror(errno));
    long n = parse_ids(text, a->ids_file, vocab, ids);
    free(text);
    return n;
  }
  if (a->prompt) return xl_run_encode(r, a, a->prompt, strlen(a->prompt), "prompt", ids);
  size_t len = 0;
  char *text = NULL;
  const char *src = a->prompt_file;
  if (a->prompt_file) {
    text = xl_read_file(a->prompt_file, &len);
    if (!text) xl_die("%s: cannot read: %s", a->prompt_file, strerror(errno));
  } else if (allow_stdin) {
    if (isatty(0)) xl_warn("reading the prompt from standard input (end with Ctrl-D)");
    text = xl_read_stream(stdin, &len);
    if (!text) xl_die("standard input: read error");
    src = "standard input";
  } else {
    return 0;
  }
  long n = xl_run_encode(r, a, text, len, src, ids);
  free(text);
  return n;
}

double xl_peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

void xl_run_record_fields(const xl_run *r, cJSON *rec) {
  cJSON_AddStringToObject(rec, "model", r->model_dir);
  if (r->model) cJSON_AddStringToObject(rec, "fingerprint", r->model->fingerprint_hex);
  cJSON_AddStringToObject(rec, "backend", xl_backend_name(r->opt.backend));
  cJSON_AddNumberToObject(rec, "chunk_size", r->opt.chunk_size);
  cJSON_AddNumberToObject(rec, "workers", r->opt.workers);
  cJSON_AddNumberToObject(rec, "heads_per_band", r->opt.heads_per_band);
  cJSON_AddStringToObject(rec, "matmul", xl_matmul_bf16 ? "bf16" : "fp32");
  cJSON_AddStringToObject(rec, "blas_core", xl_blas_core());
  cJSON_AddNumberToObject(rec, "peak_rss_mb", xl_peak_rss_mb());
}

void xl_print_record(cJSON *rec) {
  char *s = cJSON_PrintUnformatted(rec);
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  free(s);
}
