/* judge_internal: teacher-forced log-prob scoring of saved continuations and the
 * `xl-judge internal` command. See judge_internal.h. */
#include "judge/judge_internal.h"
#include "io/records.h"
#include "cli/runargs.h"
#include "engine/state.h"
#include "text/textstats.h"
#include "sweep/trials.h"
#include "base/util.h"
#include <errno.h>
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

/* ------------------------------------------------------------------ rows */

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

/* ------------------------------------------------------------------ the command */

static void usage(void) {
  fputs("Usage: xl-judge internal RUN_DIR [OPTIONS]\n"
        "Rates every continuation in RUN_DIR/outputs.jsonl (written by xl-save) by how likely a\n"
        "critic model finds it after its prompt, and by how much it repeats itself.\n\n"
        "  -m, --model DIR     critic model (default: $XL_MODEL, else models/xlstm-tiny-pydocs)\n"
        "  --prompt-file F     the prompt of every output (default: each output's prompt_file,\n"
        "                      looked up as given, then inside RUN_DIR)\n"
        "  --workers N         threads for the critic's forward pass (default 1)\n"
        "  -h, --help          this help\n\n"
        "Scores, per output:\n"
        "  avg_logprob  mean log-probability (natural log) of the continuation's tokens, teacher-\n"
        "               forced: token t is scored with the log-softmax of the logits computed from\n"
        "               the prompt and the continuation tokens before t; the first token with the\n"
        "               logits after the last prompt token. The prompt is tokenized as xl-decode\n"
        "               does (same BOS rule); the continuation is the output's token_ids.\n"
        "  ppl          exp(-avg_logprob)\n"
        "  len_tokens   continuation tokens\n"
        "  distinct2/3  unique / all word bigrams / trigrams of the text (null under n words)\n"
        "Writes RUN_DIR/ratings.jsonl and RUN_DIR/ratings.csv atomically (CSV columns: slug,\n"
        "trial, avg_logprob, ppl, len_tokens, distinct2, distinct3, backend, chunk_size,\n"
        "heads_per_band, workers, context; the JSONL rows add scored_tokens, prompt_tokens,\n"
        "prompt_file, judge_model, judge_fingerprint, judged_at).\n"
        "Exit status: 0 ok, 1 runtime or data error (nothing written), 2 usage error.\n",
        stdout);
}

typedef struct { char *name; int32_t *ids; long n; } prompt_ids;

/* The prompt ids of a prompt file name, tokenized once per name. */
static const prompt_ids *get_prompt(xl_run *r, xl_runargs *a, const char *run_dir, const char *name, const char *slug,
                                    prompt_ids **cache, size_t *ncache) {
  for (size_t i = 0; i < *ncache; i++)
    if (!strcmp((*cache)[i].name, name)) return &(*cache)[i];
  size_t len;
  char *text = xl_read_file(name, &len);
  int e = errno;
  if (!text && name[0] != '/') {
    char *p = xl_path_join(run_dir, name);
    text = xl_read_file(p, &len);
    free(p);
  }
  if (!text) xl_die("prompt file '%s' (of output '%s'): %s; pass --prompt-file", name, slug, strerror(e));
  prompt_ids p = {xl_strdup(name), NULL, 0};
  p.n = xl_run_encode(r, a, text, len, name, &p.ids);
  free(text);
  *cache = xl_realloc(*cache, (*ncache + 1) * sizeof **cache);
  (*cache)[*ncache] = p;
  return &(*cache)[(*ncache)++];
}

/* The output's token_ids as int32 (malloc'd); exits 1 on a bad id. */
static int32_t *cont_ids(const cJSON *out, const char *slug, int V, long *n) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(out, "token_ids");
  if (!cJSON_IsArray(arr)) xl_die("outputs.jsonl: output '%s' has no token_ids (save it again with xl-save)", slug);
  *n = cJSON_GetArraySize(arr);
  int32_t *ids = xl_malloc(sizeof *ids * (size_t)(*n + 1));
  long k = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, arr) {
    double v = x->valuedouble;
    if (!cJSON_IsNumber(x) || v < 0 || v >= V || v != (double)(int32_t)v)
      xl_die("outputs.jsonl: output '%s': token_ids[%ld] is not an id of the critic's vocabulary [0, %d)", slug, k, V);
    ids[k++] = (int32_t)v;
  }
  return ids;
}

static char *txt_fallback(const char *run_dir, const char *slug) {
  char *name = xl_malloc(strlen(slug) + 16);
  sprintf(name, "outputs/%s.txt", slug);
  char *p = xl_path_join(run_dir, name);
  char *text = xl_read_file(p, NULL);
  free(p);
  free(name);
  return text;
}

static int write_ratings(const char *run_dir, const cJSON *rows, char *err, size_t errlen) {
  char *jsonl = xl_path_join(run_dir, "ratings.jsonl"), *csv = xl_path_join(run_dir, "ratings.csv");
  const char *bad = jsonl;
  xl_atomic a;
  int rc = -1;
  if (xl_atomic_open(&a, jsonl)) goto out;
  const cJSON *r;
  cJSON_ArrayForEach(r, rows)
    if (rec_ndjson_write(a.f, r)) { xl_atomic_abort(&a); goto out; }
  if (xl_atomic_commit(&a)) goto out;
  bad = csv;
  if (xl_atomic_open(&a, csv)) goto out;
  if (rec_csv_write_all(a.f, rows, ji_csv_cols, ji_ncsv_cols)) { xl_atomic_abort(&a); goto out; }
  if (xl_atomic_commit(&a)) goto out;
  rc = 0;
out:
  if (rc) snprintf(err, errlen, "cannot write %s: %s", bad, strerror(errno));
  free(jsonl);
  free(csv);
  return rc;
}

int judge_internal_main(int argc, char **argv) {
  const char *run_dir = NULL, *prompt_file = NULL, *model_dir = NULL;
  long workers = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (xl_usage_error("%s needs a value", a), ""))
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); xl_finish_stdout(); return 0; }
    else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_dir = VALUE();
    else if (!strcmp(a, "--prompt-file")) prompt_file = VALUE();
    else if (!strcmp(a, "--workers")) workers = xl_flag_long(a, VALUE(), 1, 1024);
    else if (a[0] == '-' && a[1]) xl_usage_error("unknown option '%s'", a);
    else if (!run_dir) run_dir = a;
    else xl_usage_error("unexpected argument '%s'", a);
#undef VALUE
  }
  if (!run_dir) xl_usage_error("missing RUN_DIR");

  char err[1024];
  char *outputs_path = xl_path_join(run_dir, "outputs.jsonl");
  cJSON *outputs = rec_ndjson_read(outputs_path, err, sizeof err);
  if (!outputs) xl_die("%s (run xl-save first)", err);

  xl_runargs ra;
  xl_runargs_init(&ra);
  ra.model_dir = model_dir;
  char workers_text[24];
  snprintf(workers_text, sizeof workers_text, "%ld", workers);
  ra.settings.flag[XS_WORKERS] = workers_text;
  xl_run r;
  xl_run_open(&r, &ra, 1);
  ji_scorer sc;
  ji_scorer_init(&sc, r.sess, 0);

  prompt_ids *cache = NULL;
  size_t ncache = 0;
  cJSON *rows = cJSON_CreateArray();
  const cJSON *out;
  double t0 = xl_now();
  long total_tokens = 0;
  cJSON_ArrayForEach(out, outputs) {
    const char *slug = rec_str(out, "slug");
    if (!tr_slug_ok(slug)) xl_die("%s: an output has no usable slug", outputs_path);
    const char *pname = prompt_file ? prompt_file : rec_str(out, "prompt_file");
    if (!pname) xl_die("output '%s' names no prompt_file; pass --prompt-file", slug);
    const prompt_ids *p = get_prompt(&r, &ra, run_dir, pname, slug, &cache, &ncache);
    double saved_np;
    if (!prompt_file && !rec_num(out, "prompt_tokens", &saved_np) && (long)saved_np != p->n)
      xl_warn("output '%s': the prompt is %ld tokens for the critic but was %.0f when generated "
              "(another tokenizer or BOS rule?)", slug, p->n, saved_np);
    long nc;
    int32_t *ids = cont_ids(out, slug, sc.vocab, &nc);
    double sum;
    long nscored = ji_score(&sc, p->ids, p->n, ids, nc, &sum, NULL);
    total_tokens += p->n + nc;
    const char *text = rec_str(out, "text");
    char *owned = text ? NULL : txt_fallback(run_dir, slug);
    if (!text && !owned) {   /* no text anywhere: decode the ids */
      owned = tok_decode(r.tok, ids, (size_t)nc, NULL);
    }
    cJSON *row = ji_rating_row(out, text ? text : owned, nc, sum, nscored, p->n);
    cJSON_AddStringToObject(row, "judge_model", r.model_dir);
    cJSON_AddStringToObject(row, "judge_fingerprint", r.model->fingerprint_hex);
    char when[40];
    xl_rfc3339(when, sizeof when, xl_wall());
    cJSON_AddStringToObject(row, "judged_at", when);
    /* one row per slug: a repeated slug replaces the earlier row */
    int k = 0, at = -1;
    const cJSON *q;
    cJSON_ArrayForEach(q, rows) {
      if (!strcmp(rec_str(q, "slug"), slug)) at = k;
      k++;
    }
    if (at >= 0) cJSON_ReplaceItemInArray(rows, at, row);
    else cJSON_AddItemToArray(rows, row);
    free(owned);
    free(ids);
  }
  if (write_ratings(run_dir, rows, err, sizeof err)) xl_die("%s", err);
  fprintf(stderr, "%s internal: %d output(s) rated in %.2f s (%ld tokens through %s); wrote %s/ratings.jsonl and ratings.csv\n",
          xl_progname(), cJSON_GetArraySize(rows), xl_now() - t0, total_tokens, r.model_dir, run_dir);

  for (size_t i = 0; i < ncache; i++) { free(cache[i].name); free(cache[i].ids); }
  free(cache);
  cJSON_Delete(rows);
  ji_scorer_free(&sc);
  xl_run_close(&r);
  cJSON_Delete(outputs);
  free(outputs_path);
  return 0;
}
