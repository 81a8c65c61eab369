/* xl-sweep: finds the fastest runtime settings of xl-prefill/xl-decode (every run setting
 * of cli/settings.c is a knob: device, backend, chunk size, heads per band, workers,
 * matmul; and xl-decode's sampling) by measuring them, one process per run, with repeats,
 * intervals and interleaving against noise, into a resumable run directory (formats.md
 * "Optimizer run directory"). Subcommands:
 *   xl-sweep [run] ...          measure locally (grid, random, ga, pareto)
 *   xl-sweep plan ...           print the trial specs (NDJSON) for running elsewhere
 *   xl-sweep trial [SPEC|-]     run one spec, print its record
 *   xl-sweep collect RUN [F..]  fold records into a run directory
 * The logic lives in lib/sweep/; this file parses flags and wires them up.
 * Not for: judging output quality (xl-judge) or joining speed with quality (xl-merge). */
#include "engine/blasenv.h"
#include "cli/version.h"
#include "io/records.h"
#include "sweep/sweep_config.h"
#include "sweep/sweep_driver.h"
#include "sweep/sweep_proc.h"
#include "sweep/sweep_run.h"
#include "sweep/sweep_search.h"
#include "sweep/sweep_trial.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f,
          "Usage: xl-sweep [run] [options]          measure settings into a run directory\n"
          "       xl-sweep plan [options]           print trial specs (NDJSON) for grid/random; with\n"
          "                                         -o DIR or --run NAME also DIR/plan.jsonl\n"
          "       xl-sweep trial [SPEC_JSON | -]    run one spec (stdin when -), print its record\n"
          "       xl-sweep collect RUN_DIR [FILE...]  fold records (files or stdin) into RUN_DIR\n"
          "Finds the fastest settings of xl-prefill/xl-decode by measurement. Each trial is one\n"
          "setting at one context length: a warm-up, then --repeats timed runs of the tools (each\n"
          "its own process, killed after --trial-timeout); a crash, a non-zero exit or a memory\n"
          "watchdog stop is a failed trial, recorded with its error.\n"
          "\n"
          "%s"
          "Config and resuming:\n"
          "      --config FILE       JSON object of settings (keys as the flags, - or _); the\n"
          "                          command line wins over it, it wins over the defaults\n"
          "      --print-config      print the effective settings as JSON (with \"_sources\") and exit\n"
          "      --resume DIR        continue a killed run: same plan (from DIR/run_meta.json), every\n"
          "                          finished trial kept and skipped (a trial recorded twice keeps\n"
          "                          its first complete record); only non-plan settings\n"
          "                          (--trial-timeout, --tool-prefix, --bin, --progress,\n"
          "                          --profile-out) may change. What runs is never the run\n"
          "                          directory's choice: its bin, tool_prefix and profile_out are\n"
          "                          ignored (with a warning); give them again to use them\n"
          "trial: the tools beside xl-sweep run (--bin DIR for others), with --tool-prefix's\n"
          "       words only: a spec's bin and tool_prefix are ignored (with a warning), as a\n"
          "       run directory never chooses what runs; --trial-timeout overrides the spec's.\n"
          "       Exit 1 when the trial failed (its record is still printed).\n"
          "collect: --objective O picks what best.json means (default: the run's), --profile-out F.\n"
          "\n"
          "Trials are named by slugs like b=chunkwise__ck=64__h=2__w=2__ctx=512__i=7 (settings,\n"
          "context, trial number; knobs beyond the four appear when searched: dev=, mm=, smp=);\n"
          "a setting is measured once per run (a GA re-uses results). best.json is noise-aware:\n"
          "the fastest setting, unless a simpler one ties with it within the noise (it says\n"
          "\"significant\" and lists the \"ties\").\n"
          "Run directory: run_meta.json, trials.jsonl (appended + fsync'd per trial), summary.csv,\n"
          "best.json, best_profile.json (for xl-prefill/xl-decode --profile), ids/ctx<N>.ids.\n"
          "stdout: one NDJSON line with the outcome (run, plan: the specs; trial: the record).\n"
          "Exit 0 ok, 1 error (or every trial failed), 2 usage, 130/143 interrupted (finished\n"
          "trials are kept; --resume continues). A tool run never outlives xl-sweep: it gets\n"
          "SIGTERM when xl-sweep dies, even by kill -9.\n",
          sw_conf_help());
}

/* -h or --help, wherever it stands: the usage on stdout, exit 0. */
static void help_if_asked(const char *a) {
  if (strcmp(a, "-h") && strcmp(a, "--help")) return;
  usage(stdout);
  xl_finish_stdout();
  exit(0);
}

static volatile sig_atomic_t got_signal = 0;
static void on_signal(int sig) {
  got_signal = sig;
  sw_proc_stop = 1;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static char *absolute(const char *p) {
  if (!p) return NULL;
  char buf[PATH_MAX];
  if (realpath(p, buf)) return xl_strdup(buf);
  if (p[0] == '/') return xl_strdup(p);
  if (!getcwd(buf, sizeof buf)) return xl_strdup(p);
  return xl_path_join(buf, p);
}

static cJSON *read_json_file(const char *path) {
  char err[1024];
  cJSON *j = rec_json_read(path, err, sizeof err);
  if (!j) xl_die("%s", err);
  return j;
}

/* ---- flags shared by run and plan ---- */
typedef struct {
  sw_layers L;
  const char *config_file, *resume;
  int print_config;
  int argc;
  char **argv;
} cli;

static void parse_cli(cli *c, int argc, char **argv, int first) {
  memset(c, 0, sizeof *c);
  c->argc = argc, c->argv = argv;
  for (int i = first; i < argc; i++) {
    char *a = argv[i];
    help_if_asked(a);
    if (!strcmp(a, "--print-config")) {
      c->print_config = 1;
      continue;
    }
    const char *name = NULL, *val = NULL;
    char nbuf[64];
    if (!strcmp(a, "-m")) name = "model";
    else if (!strcmp(a, "-o")) name = "output";
    else if (!strcmp(a, "-n")) name = "new";
    else if (!strncmp(a, "--", 2)) {
      const char *eq = strchr(a, '=');
      size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      if (n >= sizeof nbuf) xl_usage_error("unknown option '%s'", a);
      memcpy(nbuf, a + 2, n);
      nbuf[n] = 0;
      name = nbuf;
      if (eq) val = eq + 1;
    } else
      xl_usage_error("unexpected argument '%s'", a);
    int o = sw_opt_find(name);
    int is_config = !strcmp(name, "config"), is_resume = !strcmp(name, "resume");
    if (o < 0 && !is_config && !is_resume) xl_usage_error("unknown option '%s'", a);
    if (o >= 0 && sw_opt_is_switch(o) && !val) val = "yes";   /* --skip-unavailable */
    if (!val) {
      if (i + 1 >= argc) xl_usage_error("%s needs a value", a);
      val = argv[++i];
    }
    if (is_config) c->config_file = val;
    else if (is_resume) c->resume = val;
    else sw_layers_set(&c->L, o, val, SW_SRC_CLI);
  }
}

/* Layers the sources and types them; loads the resumed run's meta into *meta. */
static void settle(cli *c, sw_conf *conf, cJSON **meta) {
  char err[512];
  *meta = NULL;
  if (c->resume) {
    char *mp = xl_path_join(c->resume, "run_meta.json");
    if (!xl_exists(mp)) xl_die("%s: no run_meta.json: not a run directory", c->resume);
    *meta = read_json_file(mp);
    free(mp);
    const cJSON *cfg = cJSON_GetObjectItem(*meta, "config");
    if (!cJSON_IsObject(cfg)) xl_die("%s/run_meta.json: no \"config\" object to resume from", c->resume);
    sw_layers old = {0};
    if (sw_layers_merge_json(&old, cfg, SW_SRC_RESUME, err, sizeof err))
      xl_die("%s/run_meta.json: config: %s", c->resume, err);
    /* A run directory describes a run; it never chooses what executes (or where files go
     * outside it): the programs come from beside this xl-sweep or from this command line. */
    static const int chooser[] = {SW_O_BIN, SW_O_TOOL_PREFIX, SW_O_PROFILE_OUT};
    for (size_t k = 0; k < sizeof chooser / sizeof *chooser; k++) {
      int o = chooser[k];
      if (old.val[o] && *old.val[o] && !c->L.val[o])
        xl_warn("--resume: ignoring %s '%s' of %s/run_meta.json (a run directory does not choose what runs "
                "or where files go); give --%s again to use it", sw_opt_name(o), old.val[o], c->resume, sw_opt_name(o));
      sw_layers_set(&old, o, NULL, SW_SRC_RESUME);
    }
    /* The plan must be the one the run was made with, or the trials would not match. */
    for (int o = 0; o < SW_NOPTS; o++) {
      if (!sw_opt_is_plan(o) || !c->L.val[o]) continue;
      if (!old.val[o] || strcmp(old.val[o], c->L.val[o]))
        xl_usage_error("--resume: --%s %s differs from the run's (%s); only non-plan settings may change",
                       sw_opt_name(o), c->L.val[o], old.val[o] ? old.val[o] : "unset");
    }
    for (int o = 0; o < SW_NOPTS; o++)
      if (old.val[o]) sw_layers_set(&c->L, o, old.val[o], SW_SRC_RESUME);
    sw_layers_free(&old);
    sw_layers_set(&c->L, SW_O_OUTPUT, c->resume, SW_SRC_CLI);
  }
  if (c->config_file) {
    cJSON *j = read_json_file(c->config_file);
    if (sw_layers_merge_json(&c->L, j, SW_SRC_CONFIG, err, sizeof err)) {
      cJSON_Delete(j);
      xl_usage_error("%s: %s", c->config_file, err);
    }
    cJSON_Delete(j);
  }
  sw_layers_defaults(&c->L, NULL);
  if (sw_conf_build(&c->L, conf, err, sizeof err)) xl_usage_error("%s", err);
}

static char *run_dir_of(const sw_conf *conf) {
  if (conf->run_dir) return xl_strdup(conf->run_dir);
  char buf[PATH_MAX];
  if (conf->run_name) {   /* a plain name (sw_conf_build checked it): never a path out of runs/ */
    snprintf(buf, sizeof buf, "runs/%s", conf->run_name);
  } else {
    char t[40];
    xl_rfc3339(t, sizeof t, xl_wall());   /* 2026-11-21T23:38:06Z -> 20261121-233806 */
    snprintf(buf, sizeof buf, "runs/sweep-%.4s%.2s%.2s-%.2s%.2s%.2s", t, t + 5, t + 8, t + 11, t + 14, t + 17);
  }
  return xl_strdup(buf);
}

static cJSON *meta_json(const cli *c, const sw_conf *conf, const sw_hostinfo *h, const char *model,
                        const char *prompt, int distributed) {
  cJSON *m = cJSON_CreateObject();
  char t[40];
  xl_rfc3339(t, sizeof t, xl_wall());
  cJSON_AddStringToObject(m, "tool", "xl-sweep");
  cJSON_AddStringToObject(m, "version", h->version);
  cJSON_AddStringToObject(m, "commit", h->commit);
  cJSON_AddStringToObject(m, "build", h->build);
  cJSON_AddStringToObject(m, "host", h->host);
  cJSON_AddStringToObject(m, "cpu", h->cpu);
  cJSON_AddNumberToObject(m, "threads", h->threads);
  cJSON_AddStringToObject(m, "time", t);
  cJSON *mo = cJSON_AddObjectToObject(m, "model");
  if (model) cJSON_AddStringToObject(mo, "path", model);
  else cJSON_AddNullToObject(mo, "path");
  cJSON_AddNullToObject(mo, "fingerprint");   /* filled in from the first trial's record */
  cJSON_AddStringToObject(m, "prompt_file", prompt);
  cJSON_AddStringToObject(m, "search", sw_search_name(conf->search));
  cJSON_AddStringToObject(m, "objective", sw_objective_name(conf->objective));
  cJSON *b = cJSON_AddObjectToObject(m, "bounds");
  cJSON *vals = cJSON_CreateObject();
  cJSON *knobs = cJSON_CreateArray();
  for (int k = 0; k < SW_NKNOBS; k++) {
    const sw_vals *l = &conf->space.knob[k];
    if (!l->n) continue;
    const char *key = sw_knob(k)->key;
    cJSON_AddItemToArray(knobs, cJSON_CreateString(key));
    cJSON *all = cJSON_AddArrayToObject(vals, key);
    if (sw_knob_is_int(k)) {
      cJSON *mm = cJSON_AddArrayToObject(b, key);
      cJSON_AddItemToArray(mm, cJSON_CreateNumber(atof(l->v[0])));
      cJSON_AddItemToArray(mm, cJSON_CreateNumber(atof(l->v[l->n - 1])));
      for (size_t i = 0; i < l->n; i++) cJSON_AddItemToArray(all, cJSON_CreateNumber(atof(l->v[i])));
    } else {
      cJSON *bk = cJSON_AddArrayToObject(b, key);
      for (size_t i = 0; i < l->n; i++) {
        cJSON_AddItemToArray(bk, cJSON_CreateString(l->v[i]));
        cJSON_AddItemToArray(all, cJSON_CreateString(l->v[i]));
      }
    }
  }
  cJSON_AddItemToObject(m, "values", vals);
  cJSON_AddItemToObject(m, "knobs", knobs);
  cJSON *cx = cJSON_AddArrayToObject(m, "contexts");
  for (size_t i = 0; i < conf->contexts.n; i++) cJSON_AddItemToArray(cx, cJSON_CreateNumber((double)conf->contexts.v[i]));
  cJSON_AddNumberToObject(m, "new_tokens", (double)conf->new_tokens);
  cJSON_AddNumberToObject(m, "repeats", conf->repeats);
  cJSON_AddNumberToObject(m, "warmup", conf->warmup);
  cJSON_AddNumberToObject(m, "seed", (double)conf->seed);
  cJSON *nz = cJSON_AddObjectToObject(m, "noise");   /* how the measurements fight noise */
  cJSON_AddNumberToObject(nz, "repeats", conf->repeats);
  cJSON_AddNumberToObject(nz, "warmup", conf->warmup);
  cJSON_AddNumberToObject(nz, "interleave", conf->interleave);
  cJSON_AddBoolToObject(nz, "reuse", conf->reuse);
  cJSON_AddStringToObject(nz, "interval", "95% Student t of the mean of the timed runs");
  cJSON_AddBoolToObject(m, "distributed", distributed);
  cJSON *cmd = cJSON_AddArrayToObject(m, "command");
  for (int i = 0; i < c->argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(c->argv[i]));
  cJSON *cfg = sw_layers_json(&c->L, 0);
  cJSON_DeleteItemFromObject(cfg, "output");   /* where the run lives is not its config */
  cJSON_DeleteItemFromObject(cfg, "run");
  cJSON_AddItemToObject(m, "config", cfg);
  return m;
}

/* Puts the first recorded fingerprint (and, for the default model, the path the tools
 * resolved) into run_meta.json once they are known. */
static void meta_fingerprint(const char *dir, const sw_rundir *run) {
  char *mp = xl_path_join(dir, "run_meta.json");
  cJSON *m = xl_exists(mp) ? read_json_file(mp) : NULL;
  cJSON *mo = m ? cJSON_GetObjectItem(m, "model") : NULL;
  if (mo && cJSON_IsNull(cJSON_GetObjectItem(mo, "fingerprint"))) {
    const cJSON *it;
    cJSON_ArrayForEach(it, run->trials) {
      const char *fp = rec_str(it, "fingerprint");
      if (!fp) continue;
      cJSON_ReplaceItemInObject(mo, "fingerprint", cJSON_CreateString(fp));
      const char *path = rec_str(it, "model");
      if (path && cJSON_IsNull(cJSON_GetObjectItem(mo, "path"))) cJSON_ReplaceItemInObject(mo, "path", cJSON_CreateString(path));
      if (rec_json_save(mp, m)) xl_warn("%s: %s", mp, strerror(errno));
      break;
    }
  }
  cJSON_Delete(m);
  free(mp);
}

/* Records the tools' defaults (what "simplest" means) in run_meta.json. */
static void meta_defaults(const char *dir, const cJSON *defaults) {
  if (!defaults) return;
  char *mp = xl_path_join(dir, "run_meta.json");
  cJSON *m = xl_exists(mp) ? read_json_file(mp) : NULL;
  if (m) {
    cJSON_DeleteItemFromObject(m, "defaults");
    cJSON_AddItemToObject(m, "defaults", cJSON_Duplicate(defaults, 1));
    if (rec_json_save(mp, m)) xl_warn("%s: %s", mp, strerror(errno));
  }
  cJSON_Delete(m);
  free(mp);
}

/* Writes RUN/ids/ctx<N>.ids for each context (kept when already there: a resumed run
 * must measure the same prompt). Returns the absolute paths. */
static char **make_ids_files(const char *dir, const sw_conf *conf, const char *bin, const char *model,
                             const char *prompt) {
  char *idsdir = xl_path_join(dir, "ids");
  if (xl_mkdirs(idsdir)) xl_die("%s: %s", idsdir, strerror(errno));
  char **paths = xl_calloc(conf->contexts.n, sizeof *paths);
  for (size_t i = 0; i < conf->contexts.n; i++) {
    char name[64];
    snprintf(name, sizeof name, "ctx%ld.ids", conf->contexts.v[i]);
    char *p = xl_path_join(idsdir, name);
    if (!xl_exists(p)) {
      char err[1500];
      int32_t *ids = sw_prompt_ids(bin, conf->tool_prefix, model, prompt, conf->contexts.v[i], err, sizeof err);
      if (!ids) xl_die("%s", err);
      if (sw_write_ids(p, ids, conf->contexts.v[i])) xl_die("%s: %s", p, strerror(errno));
      free(ids);
    }
    paths[i] = absolute(p);
    free(p);
  }
  free(idsdir);
  return paths;
}

typedef struct {
  char *self, *bin, *dir, *model, *prompt;
  char **ids;
  size_t nids;
  sw_hostinfo host;
} setup;

/* The paths a run or plan works with (no file written). */
static void setup_paths(setup *s, const sw_conf *conf) {
  s->bin = conf->bin ? absolute(conf->bin) : xl_strdup(s->self);
  s->model = absolute(conf->model);
  if (!conf->prompt_file || !xl_exists(conf->prompt_file))
    xl_die("%s: no such prompt file (--prompt-file)", conf->prompt_file ? conf->prompt_file : "(none)");
  s->prompt = absolute(conf->prompt_file);
}

static void setup_run(setup *s, const cli *c, const sw_conf *conf, int fresh, int distributed) {
  setup_paths(s, conf);
  s->dir = run_dir_of(conf);
  sw_hostinfo_get(&s->host, s->bin);
  if (xl_mkdirs(s->dir)) xl_die("%s: %s", s->dir, strerror(errno));
  char *mp = xl_path_join(s->dir, "run_meta.json");
  if (fresh) {
    cJSON *m = meta_json(c, conf, &s->host, s->model, s->prompt, distributed);
    if (rec_json_save(mp, m)) xl_die("%s: %s", mp, strerror(errno));
    cJSON_Delete(m);
  }
  free(mp);
  s->ids = make_ids_files(s->dir, conf, s->bin, s->model, s->prompt);
  s->nids = conf->contexts.n;
}

static void setup_free(setup *s) {
  free(s->self), free(s->bin), free(s->dir), free(s->model), free(s->prompt);
  for (size_t i = 0; i < s->nids; i++) free(s->ids[i]);
  free(s->ids);
}

static void print_config(cli *c, const sw_conf *conf) {
  cJSON *j = sw_layers_json(&c->L, 1);
  char *s = cJSON_Print(j);
  puts(s);
  free(s);
  cJSON_Delete(j);
  (void)conf;
}

static int exit_for_signal(void) { return got_signal == SIGTERM ? XL_EXIT_SIGTERM : XL_EXIT_SIGINT; }

/* What run and plan work from: the settings, layered and typed, the resumed run's meta,
 * and the setup (paths, host) made from them. */
typedef struct {
  cli c;
  sw_conf conf;
  cJSON *meta;
  setup s;
} sweep_cmd;

/* Parses the flags and settles them (the defaults' shipped files, e.g. the prompt, are
 * found as xltools' resources). no_resume: the usage error for --resume, when the command
 * does not take it. */
static void open_cmd(sweep_cmd *x, int argc, char **argv, int first, const char *no_resume) {
  parse_cli(&x->c, argc, argv, first);
  if (no_resume && x->c.resume) xl_usage_error("%s", no_resume);
  memset(&x->s, 0, sizeof x->s);
  x->s.self = sw_self_dir();
  settle(&x->c, &x->conf, &x->meta);
}

static int close_cmd(sweep_cmd *x, int status) {
  cJSON_Delete(x->meta);
  sw_conf_free(&x->conf);
  sw_layers_free(&x->c.L);
  setup_free(&x->s);
  xl_finish_stdout();
  return status;
}

/* A fresh run must not land on top of another one's trials. */
static void refuse_foreign_trials(const cli *c, const sw_conf *conf) {
  if (c->resume) return;
  char err[1024];
  char *dir = run_dir_of(conf);
  char *tp = xl_path_join(dir, "trials.jsonl");
  size_t torn;
  cJSON *old = xl_exists(tp) ? sw_read_trials(tp, &torn, err, sizeof err) : NULL;
  if (old && cJSON_GetArraySize(old) > 0)
    xl_die("%s already holds %d trials: continue it with --resume %s, or choose another --run/-o",
           dir, cJSON_GetArraySize(old), dir);
  cJSON_Delete(old);
  free(tp);
  free(dir);
}

/* The outcome line of a finished run on stdout; the exit status. */
static int report_run(const sw_driver *d, const sw_rundir *run, const sw_conf *conf, const char *dir) {
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "run", dir);
  cJSON_AddNumberToObject(out, "trials", (double)d->asked);
  cJSON_AddNumberToObject(out, "measured", (double)d->measured);
  cJSON_AddNumberToObject(out, "resumed", (double)d->reused);
  cJSON_AddNumberToObject(out, "failed", (double)d->failed);
  cJSON *b = sw_best_ex(run->trials, conf->objective, &run->defaults);
  if (b) cJSON_AddItemToObject(out, "best", cJSON_Duplicate(cJSON_GetObjectItem(b, "params"), 1));
  else cJSON_AddNullToObject(out, "best");
  cJSON_Delete(b);
  rec_ndjson_write(stdout, out);
  cJSON_Delete(out);
  if (d->asked > 0 && d->failed == d->asked) {
    xl_warn("every trial failed (see the error field in %s/trials.jsonl)", dir);
    return XL_EXIT_ERROR;
  }
  return XL_EXIT_OK;
}

/* ---- run ---- */
/* What this machine runs: the tools' defaults (the model's chunk size among them: the
 * "simplest" setting of the choice), and every --device value checked to exist here; an
 * unavailable one refuses the sweep (exit 2), or is dropped with --skip-unavailable. */
static void probe_machine(sweep_cmd *x, sw_setting *defaults, cJSON **defaults_json) {
  char *bin = x->conf.bin ? absolute(x->conf.bin) : xl_strdup(x->s.self), *model = absolute(x->conf.model);
  char err[2048];
  cJSON *rec = NULL;
  sw_setting_defaults(defaults, 0);
  *defaults_json = NULL;
  if (sw_probe(bin, x->conf.tool_prefix, model, NULL, &rec, err, sizeof err) == 0 && rec) {
    *defaults_json = cJSON_CreateObject();
    for (int k = 0; k < XS_COUNT; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, xl_settings[k].key);
      char text[64], e[256];
      if (cJSON_IsNumber(v)) snprintf(text, sizeof text, "%.0f", v->valuedouble);
      else if (cJSON_IsString(v)) snprintf(text, sizeof text, "%s", v->valuestring);
      else continue;
      if (sw_setting_set(defaults, k, text, e, sizeof e)) continue;
      cJSON_AddItemToObject(*defaults_json, xl_settings[k].key, cJSON_Duplicate(v, 1));
    }
    cJSON_AddStringToObject(*defaults_json, "sampling", "greedy");
  }
  cJSON_Delete(rec);
  sw_vals *dv = &x->conf.space.knob[XS_DEVICE];
  for (size_t i = 0; i < dv->n;) {
    if (!strcmp(dv->v[i], "cpu")) { i++; continue; }
    char *flags[] = {"--device", dv->v[i], NULL};
    if (sw_probe(bin, x->conf.tool_prefix, model, flags, &rec, err, sizeof err) == 0) {
      cJSON_Delete(rec);
      i++;
      continue;
    }
    if (!x->conf.skip_unavailable)
      xl_usage_error("--device %s is not available here (%s); leave it out of --device, or pass "
                     "--skip-unavailable to sweep the rest", dv->v[i], err);
    xl_warn("--device %s is not available here (%s): skipped", dv->v[i], err);
    sw_vals_remove(dv, i);
  }
  if (x->c.L.val[SW_O_KNOB(XS_DEVICE)] && !dv->n) xl_usage_error("--device: no device of the list is available here");
  free(bin);
  free(model);
}

static int cmd_run(int argc, char **argv, int first) {
  sweep_cmd x;
  open_cmd(&x, argc, argv, first, NULL);
  if (x.c.print_config) {
    print_config(&x.c, &x.conf);
    return close_cmd(&x, 0);
  }
  refuse_foreign_trials(&x.c, &x.conf);
  sw_setting defaults;
  cJSON *defaults_json;
  probe_machine(&x, &defaults, &defaults_json);
  setup_run(&x.s, &x.c, &x.conf, !x.c.resume, 0);
  meta_defaults(x.s.dir, defaults_json);
  cJSON_Delete(defaults_json);
  char err[1024];
  sw_rundir run;
  if (sw_run_open(&run, x.s.dir, x.conf.objective, err, sizeof err)) xl_die("%s", err);
  run.defaults = defaults;
  if (run.torn_bytes) xl_warn("%s/trials.jsonl: dropped a torn last line (%zu bytes) left by a kill", x.s.dir, run.torn_bytes);
  if (run.duplicates)
    xl_warn("%s/trials.jsonl: dropped %zu duplicate record(s): a trial recorded again keeps its first complete record",
            x.s.dir, run.duplicates);
  install_signals();
  sw_driver d = {.conf = &x.conf, .run = &run, .host = &x.s.host, .bin = x.s.bin, .ids_files = x.s.ids,
                 .prompt_file = x.s.prompt, .model = x.s.model};
  d.progress = x.conf.progress == 1 || (x.conf.progress == -1 && isatty(2));
  if (x.c.resume && cJSON_GetArraySize(run.trials) > 0 && d.progress)
    fprintf(stderr, "%s: resuming %s: %d trials already recorded\n", xl_progname(), x.s.dir, cJSON_GetArraySize(run.trials));
  /* Rewrite summary/best now: a resume repairs files a kill may have left behind. */
  if (sw_run_write_summary(&run) || sw_run_write_best(&run, x.conf.profile_out, NULL))
    xl_die("%s: %s", x.s.dir, strerror(errno));
  int rc = sw_drive(&d);
  if (rc < 0) xl_die("%s: cannot record a trial: %s", x.s.dir, strerror(errno));
  meta_fingerprint(x.s.dir, &run);
  int status;
  if (rc > 0) {
    xl_warn("interrupted after %ld finished trials; continue with: xl-sweep --resume %s", d.measured + d.reused, x.s.dir);
    status = exit_for_signal();
  } else {
    status = report_run(&d, &run, &x.conf, x.s.dir);
  }
  sw_driver_free(&d);
  sw_run_close(&run);
  return close_cmd(&x, status);
}

/* ---- plan ---- */
static int cmd_plan(int argc, char **argv) {
  sweep_cmd x;
  open_cmd(&x, argc, argv, 2, "plan: --resume is for local runs (collect skips slugs it has)");
  if (x.c.print_config) {
    print_config(&x.c, &x.conf);
  } else {
    if (x.conf.search != SW_SEARCH_GRID && x.conf.search != SW_SEARCH_RANDOM)
      xl_usage_error("plan: --search %s adapts to measured results; plan grid or random (or run it locally)",
                     sw_search_name(x.conf.search));
    /* Only a plan with a place (-o DIR, --run NAME) writes one: run_meta.json, the prompt
     * ids and plan.jsonl. Without, it prints the specs and writes nothing (each trial then
     * tokenizes the prompt itself). */
    int keep = x.conf.run_dir || x.conf.run_name;
    if (keep) setup_run(&x.s, &x.c, &x.conf, 1, 1);
    else setup_paths(&x.s, &x.conf);
    sw_driver d = {.conf = &x.conf, .bin = x.s.bin, .ids_files = x.s.ids, .prompt_file = x.s.prompt, .model = x.s.model};
    sw_setting *v;
    size_t n = sw_driver_plan(&x.conf, &v);
    char *absdir = keep ? absolute(x.s.dir) : NULL;
    char *pp = keep ? xl_path_join(x.s.dir, "plan.jsonl") : NULL;
    xl_atomic a = {0};
    if (pp && (xl_kind_check(pp, XK_NDJSON, "trial") || xl_atomic_open(&a, pp))) xl_die("%s: %s", pp, strerror(errno));
    size_t ns = n * x.conf.contexts.n, q = 0;
    sw_spec *specs = xl_calloc(ns ? ns : 1, sizeof *specs);
    for (size_t i = 0; i < n; i++)
      for (size_t ci = 0; ci < x.conf.contexts.n; ci++, q++) sw_driver_spec(&d, &v[i], ci, (long)q + 1, &specs[q]);
    /* a measurement a trial's knobs cannot change comes from the first trial that makes it */
    sw_rundir none = {0};
    none.trials = cJSON_CreateArray();
    d.run = &none;
    sw_driver_roles(&d, specs, ns);
    cJSON_Delete(none.trials);
    for (q = 0; q < ns; q++) {
      cJSON *j = sw_spec_to_json(&specs[q]);
      if (absdir) cJSON_AddStringToObject(j, "run_dir", absdir);
      else cJSON_AddNullToObject(j, "run_dir");
      rec_ndjson_write(stdout, j);
      if (pp) rec_ndjson_write(a.f, j);
      cJSON_Delete(j);
      sw_spec_free(&specs[q]);
    }
    free(specs);
    if (pp && (ferror(a.f) || xl_atomic_commit(&a))) xl_die("%s: %s", pp, strerror(errno));
    free(pp);
    free(absdir);
    free(v);
  }
  return close_cmd(&x, 0);
}

/* ---- trial ---- */
static int cmd_trial(int argc, char **argv) {
  const char *spec = NULL, *bin = NULL, *prefix = NULL, *timeout = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    help_if_asked(a);
    const char **dst = !strcmp(a, "--bin") ? &bin : !strcmp(a, "--tool-prefix") ? &prefix
                     : !strcmp(a, "--trial-timeout") ? &timeout : NULL;
    if (dst) {
      if (i + 1 >= argc) xl_usage_error("%s needs a value", a);
      *dst = argv[++i];
    } else if (!spec && (a[0] == '{' || !strcmp(a, "-"))) spec = a;
    else xl_usage_error("trial: unexpected argument '%s' (a spec is a JSON object, or - for stdin)", a);
  }
  char *text = NULL;
  if (!spec || !strcmp(spec, "-")) {
    text = xl_read_stream(stdin, NULL);
    if (!text) xl_die("stdin: %s", strerror(errno));
  } else text = xl_strdup(spec);
  /* One spec: the first non-blank line. */
  char *line = text;
  while (*line == '\n' || *line == '\r' || *line == ' ') line++;
  line[strcspn(line, "\n")] = 0;
  cJSON *j = cJSON_Parse(line);
  if (!j) xl_die("trial: the spec is not valid JSON");
  sw_spec sp;
  char err[256];
  if (sw_spec_from_json(j, &sp, err, sizeof err)) xl_die("%s", err);
  cJSON_Delete(j);
  free(text);
  /* A spec (a line of a run directory's plan.jsonl) names the run, never what executes: the
   * tools are the ones beside this xl-sweep or --bin's, the prefix only --tool-prefix's. */
  char *own = bin ? absolute(bin) : sw_self_dir();
  if (sp.bin && strcmp(sp.bin, own))
    xl_warn("trial: running the tools in %s, not the spec's bin %s (a spec does not choose what runs; "
            "--bin DIR to choose)", own, sp.bin);
  free(sp.bin);
  sp.bin = own;
  if (!prefix && sp.tool_prefix)
    xl_warn("trial: ignoring the spec's tool_prefix '%s' (a spec does not choose what runs); give "
            "--tool-prefix to use it", sp.tool_prefix);
  free(sp.tool_prefix);
  sp.tool_prefix = prefix && *prefix ? xl_strdup(prefix) : NULL;
  if (timeout) sp.timeout_s = xl_flag_double("--trial-timeout", timeout, 0, 1e7);
  sw_hostinfo h;
  sw_hostinfo_get(&h, sp.bin);
  install_signals();
  cJSON *rec = sw_trial_run(&sp, &h);
  sw_spec_free(&sp);
  if (!rec) return exit_for_signal();
  rec_ndjson_write(stdout, rec);
  const char *st = rec_str(rec, "status");
  int failed = !st || strcmp(st, "ok");
  if (failed) xl_warn("trial %s failed: %s", rec_str(rec, "slug"), rec_str(rec, "error") ? rec_str(rec, "error") : "?");
  cJSON_Delete(rec);
  xl_finish_stdout();
  return failed ? XL_EXIT_ERROR : XL_EXIT_OK;
}

/* ---- collect ---- */
static void append_all(cJSON *dst, cJSON *src) {
  while (cJSON_GetArraySize(src) > 0) cJSON_AddItemToArray(dst, cJSON_DetachItemFromArray(src, 0));
  cJSON_Delete(src);
}

static int cmd_collect(int argc, char **argv) {
  const char *dir = NULL, *objective = NULL, *profile_out = NULL;
  const char **files = xl_calloc((size_t)argc, sizeof *files);
  size_t nf = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    help_if_asked(a);
    if (!strcmp(a, "--objective") || !strcmp(a, "--profile-out")) {
      if (i + 1 >= argc) xl_usage_error("%s needs a value", a);
      *(!strcmp(a, "--objective") ? &objective : &profile_out) = argv[++i];
    } else if (a[0] == '-' && a[1]) xl_usage_error("collect: unknown option '%s'", a);
    else if (!dir) dir = a;
    else files[nf++] = a;
  }
  if (!dir) xl_usage_error("collect: which run directory?");
  int obj = SW_OBJ_DECODE;
  char *mp = xl_path_join(dir, "run_meta.json");
  if (!objective && xl_exists(mp)) {
    cJSON *m = read_json_file(mp);
    const char *o = rec_str(m, "objective");
    if (o && sw_objective_parse(o) >= 0) obj = sw_objective_parse(o);
    cJSON_Delete(m);
  }
  free(mp);
  if (objective && (obj = sw_objective_parse(objective)) < 0)
    xl_usage_error("--objective: '%s' is not decode, prefill or pareto", objective);
  char err[1024];
  cJSON *all = cJSON_CreateArray();
  if (!nf) files[nf++] = "-";
  for (size_t i = 0; i < nf; i++) {
    cJSON *recs;
    if (!strcmp(files[i], "-")) {
      size_t len;
      char *buf = xl_read_stream(stdin, &len);
      if (!buf) xl_die("stdin: %s", strerror(errno));
      recs = rec_ndjson_parse(buf, len, "stdin", err, sizeof err);
      free(buf);
    } else
      recs = rec_ndjson_read(files[i], err, sizeof err);
    if (!recs) xl_die("%s", err);
    append_all(all, recs);
  }
  sw_rundir run;
  if (sw_run_open(&run, dir, obj, err, sizeof err)) xl_die("%s", err);
  if (run.torn_bytes) xl_warn("%s/trials.jsonl: dropped a torn last line (%zu bytes)", dir, run.torn_bytes);
  if (run.duplicates)
    xl_warn("%s/trials.jsonl: dropped %zu duplicate record(s): a trial recorded again keeps its first complete record",
            dir, run.duplicates);
  size_t added, replaced, skipped;
  if (sw_run_collect(&run, all, profile_out, &added, &replaced, &skipped, err, sizeof err)) xl_die("%s", err);
  meta_fingerprint(dir, &run);
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "run", dir);
  cJSON_AddNumberToObject(out, "added", (double)added);
  cJSON_AddNumberToObject(out, "replaced", (double)replaced);
  cJSON_AddNumberToObject(out, "skipped", (double)skipped);
  cJSON_AddNumberToObject(out, "trials", cJSON_GetArraySize(run.trials));
  rec_ndjson_write(stdout, out);
  cJSON_Delete(out);
  cJSON_Delete(all);
  sw_run_close(&run);
  free(files);
  xl_finish_stdout();
  return 0;
}

int main(int argc, char **argv) {
  xl_blas_setup_unused(argc, argv);   /* no BLAS here: under ulimit -v, no OpenBLAS threads either */
  xl_version_if_asked(argc, argv, "xl-sweep");
  xl_set_progname(argv[0]);
  const char *sub = argc > 1 ? argv[1] : "";
  if (!strcmp(sub, "plan")) return cmd_plan(argc, argv);
  if (!strcmp(sub, "trial")) return cmd_trial(argc, argv);
  if (!strcmp(sub, "collect")) return cmd_collect(argc, argv);
  return cmd_run(argc, argv, !strcmp(sub, "run") ? 2 : 1);
}
