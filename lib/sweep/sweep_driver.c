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
  sp->sampling_seed = c->sampling_seed;
  sp->measure = XS_AFFECTS_PREFILL | (c->new_tokens > 0 ? XS_AFFECTS_DECODE : 0);
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

/* How a progress line's trial came to be: measured now, found in the run directory, or
 * asked for again by the search (a GA keeps its elites) after this run measured it. */
enum { PROG_NEW, PROG_RECORDED, PROG_AGAIN };

/* The best setting so far as " | best decode X (WHAT)": a setting measured at one context
 * is its trial (X is that trial's mean); at several, X is the mean over them, so WHAT names
 * the setting (the slug without context and trial number) and says so. */
static void best_text(const sw_driver *d, char *buf, size_t n) {
  buf[0] = 0;
  cJSON *b = sw_best_ex(d->run->trials, d->conf->objective, &d->run->defaults);
  if (!b) return;
  const cJSON *m = cJSON_GetObjectItem(b, "metrics"), *sl = cJSON_GetObjectItem(b, "slugs");
  double v = NAN;
  int pre = d->conf->objective == SW_OBJ_PREFILL;
  rec_num(m, pre ? "prefill_tok_s" : "decode_tok_s", &v);
  const cJSON *s0 = cJSON_GetArrayItem(sl, 0);
  const char *slug = s0 && cJSON_IsString(s0) ? s0->valuestring : "?";
  int nctx = cJSON_GetArraySize(sl);
  if (nctx > 1) {
    const char *cut = strstr(slug, "__ctx=");
    int len = cut ? (int)(cut - slug) : (int)strlen(slug);
    snprintf(buf, n, " | best %s %.2f (%.*s, mean of %d contexts)", pre ? "prefill" : "decode", v, len, slug, nctx);
  } else {
    snprintf(buf, n, " | best %s %.2f (%s)", pre ? "prefill" : "decode", v, slug);
  }
  cJSON_Delete(b);
}

/* One line per trial the search asks for, counted [k/N] over every evaluation (trials
 * found recorded and trials asked for again included), so the count ends at N/N. */
static void progress_line(sw_driver *d, const cJSON *rec, int how) {
  d->evals++;
  if (d->evals > d->total) d->total = d->evals;   /* NSGA-II may refill a small population */
  if (!d->progress || !rec) return;
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
  char best[256];
  best_text(d, best, sizeof best);
  char eta[32] = "?";
  if (d->measured > 0) {
    double left = d->total > d->evals ? (double)(d->total - d->evals) : 0;
    fmt_dur(eta, sizeof eta, left * d->seconds / (double)d->measured);
  }
  fprintf(stderr, "%s: [%ld/%ld] %s%s: %s%s | ETA %s%s\n", xl_progname(), d->evals, d->total, slug ? slug : "?",
          how == PROG_RECORDED ? " (already done)" : how == PROG_AGAIN ? " (measured before in this run)" : "", what,
          best, eta, d->conf->search >= SW_SEARCH_GA ? " (at most)" : "");
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

static const char *from_key(unsigned w) { return w == XS_AFFECTS_PREFILL ? "prefill_from" : "decode_from"; }
static const char *speed_key(unsigned w) { return w == XS_AFFECTS_PREFILL ? "prefill_tok_s" : "decode_tok_s"; }

/* A recorded trial that measured `what` itself, with a setting that has the same
 * measurement key as s at this context; NULL if none. */
static const cJSON *measured_in_run(const sw_rundir *run, const sw_setting *s, long ctx, unsigned what) {
  char want[SW_KEY_MAX], got[SW_KEY_MAX];
  sw_measure_key(s, ctx, what, want, sizeof want);
  const cJSON *it;
  cJSON_ArrayForEach(it, run->trials) {
    const char *st = rec_str(it, "status");
    double c, v;
    sw_setting o;
    if (!st || strcmp(st, "ok") || rec_str(it, from_key(what)) || rec_num(it, speed_key(what), &v)) continue;
    if (rec_num(it, "prompt_tokens", &c) || (long)c != ctx || sw_setting_from_record(it, &o)) continue;
    /* the record names every knob; compare on the knobs this sweep searches */
    for (int k = 0; k < SW_NKNOBS; k++)
      if (!s->v[k][0]) o.v[k][0] = 0;
    sw_setting_normalize(&o);
    sw_measure_key(&o, ctx, what, got, sizeof got);
    if (!strcmp(want, got)) return it;
  }
  return NULL;
}

/* What each new trial of a chunk measures itself, and where the rest comes from: a trial
 * already recorded, or the first trial of the chunk with the same measurement key. */
static void assign_roles(const sw_driver *d, sw_spec *sp, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sp[i].measure = XS_AFFECTS_PREFILL | (d->conf->new_tokens > 0 ? XS_AFFECTS_DECODE : 0);
    if (!d->conf->reuse) continue;
    for (unsigned w = XS_AFFECTS_PREFILL; w <= XS_AFFECTS_DECODE; w <<= 1) {
      if (!(sp[i].measure & w)) continue;
      char **from = w == XS_AFFECTS_PREFILL ? &sp[i].prefill_from : &sp[i].decode_from;
      const cJSON *rec = measured_in_run(d->run, &sp[i].s, sp[i].context, w);
      if (rec) {
        *from = xl_strdup(rec_str(rec, "slug"));
        sp[i].measure &= ~w;
        continue;
      }
      char want[SW_KEY_MAX], got[SW_KEY_MAX];
      sw_measure_key(&sp[i].s, sp[i].context, w, want, sizeof want);
      for (size_t j = 0; j < i; j++) {
        sw_measure_key(&sp[j].s, sp[j].context, w, got, sizeof got);
        if ((sp[j].measure & w) && !strcmp(want, got)) {
          *from = xl_strdup(sp[j].slug);
          sp[i].measure &= ~w;
          break;
        }
      }
    }
  }
}

/* A chunk being run: its specs and the records that wait for a shared measurement. */
typedef struct {
  sw_driver *d;
  sw_spec *sp;
  size_t n;
  cJSON **held;         /* [n] finished, waiting for a source */
  unsigned char *fin;   /* [n] finished */
  int write_error;
} chunk;

static const cJSON *find_slug(const sw_rundir *run, const char *slug) {
  const cJSON *it;
  cJSON_ArrayForEach(it, run->trials) {
    const char *s = rec_str(it, "slug");
    if (s && !strcmp(s, slug)) return it;
  }
  return NULL;
}

/* 1 when rec can be written now: its sources are recorded (then their measurements are
 * copied in; a failed source fails it), 0 when one is still running. */
static int resolve(chunk *c, cJSON *rec, const sw_spec *sp) {
  for (unsigned w = XS_AFFECTS_PREFILL; w <= XS_AFFECTS_DECODE; w <<= 1) {
    const char *from = w == XS_AFFECTS_PREFILL ? sp->prefill_from : sp->decode_from;
    if ((sp->measure & w) || !from) continue;
    const cJSON *src = find_slug(c->d->run, from);
    if (!src) return 0;
    const char *st = rec_str(src, "status");
    const char *mine = rec_str(rec, "status");
    if (mine && strcmp(mine, "ok")) {   /* a failed trial keeps no speed, only where it was to come from */
      continue;
    } else if (st && !strcmp(st, "ok")) {
      sw_record_take(rec, src, w);
    } else {
      char e[512];
      snprintf(e, sizeof e, "its %s speed was to come from %s, which failed", w == XS_AFFECTS_PREFILL ? "prefill" : "decode", from);
      cJSON_ReplaceItemInObjectCaseSensitive(rec, "status", cJSON_CreateString("failed"));
      cJSON_ReplaceItemInObjectCaseSensitive(rec, "error", cJSON_CreateString(e));
    }
  }
  return 1;
}

static void flush_held(chunk *c) {
  for (int again = 1; again;) {
    again = 0;
    for (size_t i = 0; i < c->n; i++) {
      if (!c->held[i] || !resolve(c, c->held[i], &c->sp[i])) continue;
      cJSON *rec = c->held[i];
      c->held[i] = NULL;
      c->d->measured++;
      if (sw_run_add(c->d->run, rec, c->d->conf->profile_out)) c->write_error = 1;
      progress_line(c->d, rec, PROG_NEW);
      again = 1;
    }
  }
}

static void on_done(void *ctx, size_t i, cJSON *rec) {
  chunk *c = ctx;
  c->fin[i] = 1;
  c->held[i] = rec;
  flush_held(c);
}

/* Runs new trials: in chunks of --interleave, each chunk's runs interleaved. */
static int run_new(sw_driver *d, sw_spec *sp, size_t n) {
  const sw_conf *c = d->conf;
  size_t *order = xl_malloc((n ? n : 1) * sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  sw_rng rng;
  sw_rng_seed(&rng, c->seed ^ 0x5eedULL ^ (uint64_t)d->batches * 0x9e3779b97f4a7c15ULL);
  sw_rng_shuffle(&rng, order, n);   /* which trials share a chunk: at random */
  size_t per = c->interleave > 0 ? (size_t)c->interleave : n;
  int rc = 0;
  for (size_t at = 0; at < n && !rc; at += per) {
    size_t m = n - at < per ? n - at : per;
    /* the chunk's specs in trial order, so a measurement's source is the earliest trial */
    size_t *idx = xl_malloc(m * sizeof *idx);
    for (size_t q = 0; q < m; q++) idx[q] = order[at + q];
    for (size_t a = 1; a < m; a++)
      for (size_t b = a; b > 0 && idx[b] < idx[b - 1]; b--) { size_t t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t; }
    sw_spec *cs = xl_malloc(m * sizeof *cs);
    for (size_t q = 0; q < m; q++) cs[q] = sp[idx[q]];
    /* a batch id unique in the run, resumed ones included: when it started, in ms */
    long bid = (long)(xl_wall() * 1000) + (long)d->batches;
    for (size_t q = 0; q < m; q++) cs[q].batch_id = m > 1 ? bid : 0;
    assign_roles(d, cs, m);
    chunk ch = {.d = d, .sp = cs, .n = m, .held = xl_calloc(m, sizeof(cJSON *)), .fin = xl_calloc(m, 1)};
    double t0 = xl_now();
    int irc = sw_trials_run(cs, m, d->host, sw_rng_next(&rng), on_done, &ch);
    d->seconds += xl_now() - t0;
    d->batches++;
    flush_held(&ch);
    for (size_t q = 0; q < m; q++) {
      cJSON_Delete(ch.held[q]);   /* a source that never finished (interrupted): not recorded */
      sp[idx[q]].prefill_from = cs[q].prefill_from;   /* hand the strings back for freeing */
      sp[idx[q]].decode_from = cs[q].decode_from;
    }
    free(ch.held);
    free(ch.fin);
    free(cs);
    free(idx);
    if (ch.write_error) rc = -1;
    else if (irc || sw_proc_stop) rc = 1;
  }
  free(order);
  return rc;
}

/* The search callback: every context of each setting, measured once per run; the new
 * trials of the batch run interleaved. */
static int eval_batch(void *ctx, const sw_setting *s, size_t n, sw_fit *fit) {
  sw_driver *d = ctx;
  const sw_conf *c = d->conf;
  size_t nctx = c->contexts.n;
  sw_spec *todo = xl_calloc(n * nctx + 1, sizeof *todo);
  char (*again)[SW_KEY_MAX] = xl_malloc((n * nctx + 1) * sizeof *again);   /* asked for again */
  size_t ntodo = 0, nagain = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t ci = 0; ci < nctx; ci++) {
      char key[SW_KEY_MAX];
      sw_key(&s[i], c->contexts.v[ci], key, sizeof key);
      if (seen_before(d, key)) {   /* measured (or being measured) in this run: counted below */
        memcpy(again[nagain++], key, SW_KEY_MAX);
        continue;
      }
      d->asked++;
      const cJSON *rec = sw_run_find_key(d->run, key);
      if (!rec) {
        /* New: the trial number is its place in the order trials are first asked for,
         * which the seed and the recorded results fix, so a resumed run agrees. */
        sw_driver_spec(d, &s[i], ci, d->asked, &todo[ntodo++]);
        continue;
      }
      d->reused++;
      double t = 0;
      if (!rec_num(rec, "trial", &t) && (long)t != d->asked)
        xl_warn("%s: recorded as trial %ld, but this run numbers it %ld (was the run made with other settings?)",
                key, (long)t, d->asked);
      const char *st = rec_str(rec, "status");
      if (!st || strcmp(st, "ok")) d->failed++;
      progress_line(d, rec, PROG_RECORDED);
    }
  int rc = run_new(d, todo, ntodo);
  for (size_t k = 0; !rc && k < nagain; k++) progress_line(d, sw_run_find_key(d->run, again[k]), PROG_AGAIN);
  free(again);
  for (size_t i = 0; i < ntodo; i++) {
    const char *st;
    const cJSON *rec = sw_run_find_key(d->run, todo[i].key);
    if (rec && (!(st = rec_str(rec, "status")) || strcmp(st, "ok"))) d->failed++;
    sw_spec_free(&todo[i]);
  }
  free(todo);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    double pre = 0, dec = 0;
    int ok = 1;
    for (size_t ci = 0; ci < nctx; ci++) {
      char key[SW_KEY_MAX];
      sw_key(&s[i], c->contexts.v[ci], key, sizeof key);
      const cJSON *rec = sw_run_find_key(d->run, key);
      const char *st = rec ? rec_str(rec, "status") : NULL;
      int rok = st && !strcmp(st, "ok");
      double p = 0, q = 0;
      if (rok) {
        rec_num(rec, "prefill_tok_s", &p);
        if (rec_num(rec, "decode_tok_s", &q)) q = 0;
      }
      ok &= rok;
      pre += p, dec += q;
    }
    fit[i].ok = ok;
    fit[i].prefill = pre / (double)nctx;
    fit[i].decode = dec / (double)nctx;
  }
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
    sw_fit *f = xl_calloc(n ? n : 1, sizeof *f);
    rc = eval_batch(d, v, n, f);
    free(f);
    free(v);
  } else {
    /* every setting a generation asks for counts, also one measured before (the counter
     * reaches N/N); NSGA-II's refills of a small population raise it as they come */
    d->total = (long)((size_t)c->population * (size_t)c->generations * nctx);
    sw_search_opts o = {.population = c->population, .elites = c->elites, .generations = c->generations,
                        .mutation = c->mutation, .seed = c->seed, .objective = c->objective};
    rc = c->search == SW_SEARCH_GA ? sw_search_ga(&c->space, &o, eval_batch, d)
                                   : sw_search_nsga2(&c->space, &o, eval_batch, d);
  }
  return rc;
}

/* Plans made for running elsewhere share measurements the same way (sw_driver_plan_roles). */
void sw_driver_roles(const sw_driver *d, sw_spec *sp, size_t n) { assign_roles(d, sp, n); }

void sw_driver_free(sw_driver *d) {
  for (size_t i = 0; i < d->nseen; i++) free(d->seen[i]);
  free(d->seen);
  d->seen = NULL;
  d->nseen = d->capseen = 0;
}
