/* sweep_driver: the local sweep loop (see sweep_driver.h). */
#include "sweep/sweep_driver.h"
#include "io/records.h"
#include "sweep/sweep_proc.h"
#include "sweep/sweep_search.h"
#include "base/util.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_driver_spec(const sw_driver *d, const sw_setting *s, size_t ci, long trial, sw_spec *sp) {
  const sw_conf *c = d->conf;
  memset(sp, 0, sizeof *sp);
  sp->trial = trial;
  sp->s = *s;
  sp->context = c->contexts.v[ci];
  sw_key(s, sp->context, sp->key, sizeof sp->key);
  sw_slug(sp->key, trial, sp->slug, sizeof sp->slug);
  sp->new_tokens = c->new_tokens;
  sp->repeats = c->repeats;
  sp->warmup = c->warmup;
  sp->timeout_s = c->timeout_s;
  sp->model = d->model ? xl_strdup(d->model) : NULL;
  sp->prompt_file = d->prompt_file ? xl_strdup(d->prompt_file) : NULL;
  sp->ids_file = d->ids_files ? xl_strdup(d->ids_files[ci]) : NULL;
  sp->bin = xl_strdup(d->bin);
  sp->tool_prefix = c->tool_prefix ? xl_strdup(c->tool_prefix) : NULL;
}

size_t sw_driver_plan(const sw_conf *c, sw_setting **out) {
  if (c->search == SW_SEARCH_RANDOM) return sw_plan_random(&c->space, c->seed, (size_t)c->trials, out);
  return sw_plan_grid(&c->space, out);
}

static void fmt_dur(char *buf, size_t n, double s) {
  if (!isfinite(s) || s < 0) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_line(sw_driver *d, const cJSON *rec, int reused) {
  if (!d->progress) return;
  const char *slug = rec_str(rec, "slug"), *status = rec_str(rec, "status");
  char what[256];
  if (status && !strcmp(status, "ok")) {
    double p = NAN, q = NAN;
    rec_num(rec, "prefill_tok_s", &p);
    rec_num(rec, "decode_tok_s", &q);
    if (isfinite(q)) snprintf(what, sizeof what, "prefill %.1f tok/s, decode %.2f tok/s", p, q);
    else snprintf(what, sizeof what, "prefill %.1f tok/s", p);
  } else {
    const char *e = rec_str(rec, "error");
    snprintf(what, sizeof what, "FAILED: %.200s", e ? e : "?");
  }
  char best[256] = "";
  cJSON *b = sw_best(d->run->trials, d->conf->objective);
  if (b) {
    const cJSON *m = cJSON_GetObjectItem(b, "metrics"), *sl = cJSON_GetObjectItem(b, "slugs");
    double v = NAN;
    const char *which = d->conf->objective == SW_OBJ_PREFILL ? "prefill_tok_s" : "decode_tok_s";
    rec_num(m, which, &v);
    const cJSON *s0 = cJSON_GetArrayItem(sl, 0);
    snprintf(best, sizeof best, " | best %s %.2f (%s)", d->conf->objective == SW_OBJ_PREFILL ? "prefill" : "decode",
             v, s0 && cJSON_IsString(s0) ? s0->valuestring : "?");
    cJSON_Delete(b);
  }
  char eta[32] = "?";
  if (d->measured > 0) {
    double left = d->total > d->asked ? (double)(d->total - d->asked) : 0;
    fmt_dur(eta, sizeof eta, left * d->seconds / (double)d->measured);
  }
  fprintf(stderr, "%s: [%ld/%ld] %s%s: %s%s | ETA %s%s\n", xl_progname(), d->asked, d->total,
          slug ? slug : "?", reused ? " (already done)" : "", what, best, eta,
          d->conf->search >= SW_SEARCH_GA ? " (at most)" : "");
}

static int seen_before(sw_driver *d, const char *key) {
  for (size_t i = 0; i < d->nseen; i++)
    if (!strcmp(d->seen[i], key)) return 1;
  if (d->nseen == d->capseen) {
    d->capseen = d->capseen ? 2 * d->capseen : 64;
    d->seen = xl_realloc(d->seen, d->capseen * sizeof *d->seen);
  }
  d->seen[d->nseen++] = xl_strdup(key);
  return 0;
}

/* The search callback: every context of the setting, measured once per run. */
static int eval_setting(void *ctx, const sw_setting *s, sw_fit *fit) {
  sw_driver *d = ctx;
  const sw_conf *c = d->conf;
  double pre = 0, dec = 0;
  int ok = 1;
  for (size_t ci = 0; ci < c->contexts.n; ci++) {
    char key[SW_KEY_MAX];
    sw_key(s, c->contexts.v[ci], key, sizeof key);
    int again = seen_before(d, key);
    if (!again) d->asked++;
    const cJSON *rec = sw_run_find_key(d->run, key);
    if (!rec) {
      /* New: the trial number is its place in the order trials are first asked for,
       * which the seed and the recorded results fix, so a resumed run agrees. */
      sw_spec sp;
      sw_driver_spec(d, s, ci, d->asked, &sp);
      double t0 = xl_now();
      cJSON *r = sw_trial_run(&sp, d->host);
      sw_spec_free(&sp);
      if (!r) return 1;   /* interrupted: record nothing */
      d->seconds += xl_now() - t0;
      d->measured++;
      if (sw_run_add(d->run, r, c->profile_out)) return -1;
      rec = r;
      progress_line(d, rec, 0);
    } else if (!again) {
      d->reused++;
      double t = 0;
      if (!rec_num(rec, "trial", &t) && (long)t != d->asked)
        xl_warn("%s: recorded as trial %ld, but this run numbers it %ld (was the run made with other settings?)",
                key, (long)t, d->asked);
      progress_line(d, rec, 1);
    }
    const char *st = rec_str(rec, "status");
    int rok = st && !strcmp(st, "ok");
    if (!rok && !again) d->failed++;
    double p = 0, q = 0;
    if (rok) {
      rec_num(rec, "prefill_tok_s", &p);
      if (rec_num(rec, "decode_tok_s", &q)) q = 0;
    }
    ok &= rok;
    pre += p, dec += q;
  }
  fit->ok = ok;
  fit->prefill = pre / (double)c->contexts.n;
  fit->decode = dec / (double)c->contexts.n;
  return sw_proc_stop ? 1 : 0;
}

int sw_drive(sw_driver *d) {
  const sw_conf *c = d->conf;
  size_t nctx = c->contexts.n;
  errno = 0;
  int rc = 0;
  if (c->search == SW_SEARCH_GRID || c->search == SW_SEARCH_RANDOM) {
    sw_setting *v;
    size_t n = sw_driver_plan(c, &v);
    d->total = (long)(n * nctx);
    for (size_t i = 0; i < n && !rc; i++) {
      sw_fit f;
      rc = eval_setting(d, &v[i], &f);
    }
    free(v);
  } else {
    size_t space = sw_space_size(&c->space);
    size_t most = (size_t)c->population * (size_t)c->generations;
    d->total = (long)((most < space ? most : space) * nctx);
    sw_search_opts o = {.population = c->population, .elites = c->elites, .generations = c->generations,
                        .mutation = c->mutation, .seed = c->seed, .objective = c->objective};
    rc = c->search == SW_SEARCH_GA ? sw_search_ga(&c->space, &o, eval_setting, d)
                                   : sw_search_nsga2(&c->space, &o, eval_setting, d);
  }
  return rc;
}

void sw_driver_free(sw_driver *d) {
  for (size_t i = 0; i < d->nseen; i++) free(d->seen[i]);
  free(d->seen);
  d->seen = NULL;
  d->nseen = d->capseen = 0;
}
