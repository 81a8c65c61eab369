/* sweep_config: the settings table of xl-sweep, layering and checking (see sweep_config.h). */
#include "sweep/sweep_config.h"
#include "sweep/sweep_search.h"
#include "base/util.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* kind: 's' string, 'l' value list, 'i' integer, 'd' number. */
typedef struct {
  const char *name;
  char kind;
  int plan;          /* shapes which trials run and what they measure */
  const char *def;   /* NULL: unset by default */
} optdef;

static const optdef opts[SW_NOPTS] = {
    [SW_O_MODEL] = {"model", 's', 1, NULL},
    [SW_O_PROMPT_FILE] = {"prompt-file", 's', 1, NULL},   /* default under the root */
    [SW_O_SEARCH] = {"search", 's', 1, "grid"},
    [SW_O_OBJECTIVE] = {"objective", 's', 1, NULL},       /* default follows search */
    /* the knobs: named by the settings table (knob_opt) */
    [SW_O_CONTEXT] = {"context", 'l', 1, "512"},
    [SW_O_NEW] = {"new", 'i', 1, "32"},
    [SW_O_REPEATS] = {"repeats", 'i', 1, "5"},
    [SW_O_WARMUP] = {"warmup", 'i', 1, "1"},
    [SW_O_SEED] = {"seed", 'i', 1, "42"},
    [SW_O_TRIALS] = {"trials", 'i', 1, "16"},
    [SW_O_POPULATION] = {"population", 'i', 1, "8"},
    [SW_O_ELITES] = {"elites", 'i', 1, "2"},
    [SW_O_GENERATIONS] = {"generations", 'i', 1, "4"},
    [SW_O_MUTATION] = {"mutation", 'd', 1, "0.25"},
    [SW_O_SAMPLING_SEED] = {"sampling-seed", 'i', 1, NULL},   /* default: --seed */
    [SW_O_REUSE] = {"reuse", 's', 1, "yes"},
    [SW_O_INTERLEAVE] = {"interleave", 'i', 0, "16"},
    [SW_O_SKIP_UNAVAILABLE] = {"skip-unavailable", 'b', 0, "no"},
    [SW_O_TIMEOUT] = {"trial-timeout", 'd', 0, "600"},
    [SW_O_TOOL_PREFIX] = {"tool-prefix", 's', 0, NULL},
    [SW_O_BIN] = {"bin", 's', 0, NULL},
    [SW_O_PROFILE_OUT] = {"profile-out", 's', 0, NULL},
    [SW_O_PROGRESS] = {"progress", 's', 0, "auto"},
    [SW_O_RUN] = {"run", 's', 0, NULL},
    [SW_O_OUTPUT] = {"output", 's', 0, NULL},
};

/* The default value list of each knob: the four classic ones are always searched; the
 * others only when given. */
static const char *const knob_default[SW_NKNOBS] = {
    [XS_BACKEND] = "chunkwise,recurrent", [XS_CHUNK_SIZE] = "16,32,64,128", [XS_HEADS_PER_BAND] = "1,2",
    /* workers: 1-<online CPUs> (sw_layers_defaults) */
};

/* Option i as a row of the table: the knobs' rows are made from the settings table. */
static optdef opt(int i) {
  if (i >= SW_O_KNOBS && i < SW_O_KNOBS + SW_NKNOBS) {
    int k = i - SW_O_KNOBS;
    return (optdef){sw_knob(k)->flag + 2, 'l', 1, knob_default[k]};
  }
  return opts[i];
}

const char *sw_opt_name(int i) { return opt(i).name; }
int sw_opt_is_plan(int i) { return opt(i).plan; }
int sw_opt_is_switch(int i) { return opt(i).kind == 'b'; }

int sw_opt_find(const char *name) {
  for (int i = 0; i < SW_NOPTS; i++) {
    const char *a = opt(i).name, *b = name;
    while (*a && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
    if (!*a && !*b) return i;
  }
  return -1;
}

void sw_layers_set(sw_layers *l, int opt, const char *val, int src) {
  if (l->val[opt] && l->src[opt] > src) return;
  free(l->val[opt]);
  l->val[opt] = val ? xl_strdup(val) : NULL;
  l->src[opt] = src;
}

void sw_layers_free(sw_layers *l) {
  for (int i = 0; i < SW_NOPTS; i++) free(l->val[i]);
  memset(l, 0, sizeof *l);
}

/* A JSON value as the text a flag would carry; arrays become comma lists. */
static int json_text(const cJSON *v, char *buf, size_t n) {
  if (cJSON_IsBool(v)) return snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "yes" : "no") >= (int)n ? -1 : 0;
  if (cJSON_IsString(v)) return snprintf(buf, n, "%s", v->valuestring) >= (int)n ? -1 : 0;
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d > -9e18 && d < 9e18 && d == (double)(long long)d) snprintf(buf, n, "%lld", (long long)d);   /* cast in range only */
    else snprintf(buf, n, "%.17g", d);
    return 0;
  }
  if (cJSON_IsArray(v)) {
    size_t k = 0;
    buf[0] = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
      char one[128];
      if (cJSON_IsArray(it) || json_text(it, one, sizeof one)) return -1;
      int w = snprintf(buf + k, n - k, "%s%s", k ? "," : "", one);
      if (w < 0 || (size_t)w >= n - k) return -1;
      k += (size_t)w;
    }
    return k ? 0 : -1;
  }
  return -1;
}

int sw_layers_merge_json(sw_layers *l, const cJSON *obj, int src, char *err, size_t errlen) {
  if (!cJSON_IsObject(obj)) return snprintf(err, errlen, "not a JSON object"), -1;
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    if (it->string[0] == '_') continue;
    int o = sw_opt_find(it->string);
    if (o < 0) return snprintf(err, errlen, "unknown setting '%s'", it->string), -1;
    if (cJSON_IsNull(it)) continue;
    char buf[4096];
    if (json_text(it, buf, sizeof buf))
      return snprintf(err, errlen, "'%s': expected a string, a number or a list", it->string), -1;
    sw_layers_set(l, o, buf, src);
  }
  return 0;
}

void sw_layers_defaults(sw_layers *l, const char *root) {
  for (int i = 0; i < SW_NOPTS; i++)
    if (!l->val[i] && opt(i).def) sw_layers_set(l, i, opt(i).def, SW_SRC_DEFAULT);
  if (!l->val[SW_O_PROMPT_FILE]) {
    /* the prompt shipped with xltools, found as every shipped resource is (an installed
     * xl-sweep finds PREFIX/share/xltools/prompts) */
    char *dir = root ? xl_path_join(root, "prompts") : xl_find_resource("prompts", "pydocs.txt");
    char *p = xl_path_join(dir, "pydocs.txt");
    sw_layers_set(l, SW_O_PROMPT_FILE, p, SW_SRC_DEFAULT);
    free(p);
    free(dir);
  }
  if (!l->val[SW_O_WORKERS]) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    char buf[32];
    snprintf(buf, sizeof buf, "1-%ld", nc > 0 ? nc : 1);
    sw_layers_set(l, SW_O_WORKERS, buf, SW_SRC_DEFAULT);
  }
  if (!l->val[SW_O_OBJECTIVE]) {
    /* pareto search: both speeds; no generated tokens: only prefill was measured. */
    const char *s = l->val[SW_O_SEARCH], *n = l->val[SW_O_NEW];
    const char *o = s && !strcmp(s, "pareto") ? "pareto" : n && !strcmp(n, "0") ? "prefill" : "decode";
    sw_layers_set(l, SW_O_OBJECTIVE, o, SW_SRC_DEFAULT);
  }
}

const char *sw_search_name(int s) {
  static const char *const n[] = {"grid", "random", "ga", "pareto"};
  return s >= 0 && s < 4 ? n[s] : "?";
}

static int get_long(const sw_layers *l, int o, long lo, long hi, long *out, char *err, size_t n) {
  if (xl_parse_long(l->val[o], lo, hi, out)) {
    snprintf(err, n, "--%s: '%s' is not an integer in [%ld, %ld]", opt(o).name, l->val[o], lo, hi);
    return -1;
  }
  return 0;
}

static const char *str_or_null(const sw_layers *l, int o) {
  return l->val[o] && *l->val[o] ? l->val[o] : NULL;
}

int sw_conf_build(const sw_layers *l, sw_conf *c, char *err, size_t n) {
  memset(c, 0, sizeof *c);
  char e[256];
  long v;
  c->model = str_or_null(l, SW_O_MODEL);
  c->prompt_file = str_or_null(l, SW_O_PROMPT_FILE);
  c->search = -1;
  for (int s = 0; s < 4; s++)
    if (!strcmp(l->val[SW_O_SEARCH], sw_search_name(s))) c->search = s;
  if (c->search < 0) return snprintf(err, n, "--search: '%s' is not grid, random, ga or pareto", l->val[SW_O_SEARCH]), -1;
  c->objective = sw_objective_parse(l->val[SW_O_OBJECTIVE]);
  if (c->objective < 0)
    return snprintf(err, n, "--objective: '%s' is not decode, prefill or pareto", l->val[SW_O_OBJECTIVE]), -1;
  if (c->search == SW_SEARCH_GA && c->objective == SW_OBJ_PARETO)
    return snprintf(err, n, "--search ga optimizes one objective; use --search pareto for both"), -1;
  if (c->search == SW_SEARCH_PARETO && c->objective != SW_OBJ_PARETO)
    return snprintf(err, n, "--search pareto needs --objective pareto"), -1;
  for (int k = 0; k < SW_NKNOBS; k++) {
    const char *v = l->val[SW_O_KNOB(k)];
    if (!v || !*v) continue;   /* not searched: the tools' default runs */
    if (sw_vals_parse(k, v, &c->space.knob[k], e, sizeof e)) {
      snprintf(err, n, "%s: %s", sw_knob(k)->flag, e);
      goto fail;
    }
  }
  for (int k = 0; k < SW_NKNOBS; k++)
    if (SW_CLASSIC(k) && !c->space.knob[k].n) {
      snprintf(err, n, "%s: an empty value list", sw_knob(k)->flag);
      goto fail;
    }
  /* Guard the grid against a list product no machine could sweep. */
  double prod = 1;
  for (int k = 0; k < SW_NKNOBS; k++) prod *= c->space.knob[k].n ? (double)c->space.knob[k].n : 1;
  if (prod > 1e6) {
    snprintf(err, n, "the search space holds %.0f settings (more than a million): shorten the lists", prod);
    goto fail;
  }
  if (sw_list_parse(l->val[SW_O_CONTEXT], 1, 1 << 24, &c->contexts, e, sizeof e)) {
    snprintf(err, n, "--context: %s", e);
    goto fail;
  }
  if (get_long(l, SW_O_NEW, 0, 1 << 24, &c->new_tokens, err, n)) goto fail;
  if (get_long(l, SW_O_REPEATS, 1, 10000, &v, err, n)) goto fail;
  c->repeats = (int)v;
  if (get_long(l, SW_O_WARMUP, 0, 1000, &v, err, n)) goto fail;
  c->warmup = (int)v;
  if (get_long(l, SW_O_SEED, 0, LONG_MAX, &v, err, n)) goto fail;
  c->seed = (unsigned long long)v;
  if (get_long(l, SW_O_TRIALS, 1, 1000000, &c->trials, err, n)) goto fail;
  if (get_long(l, SW_O_POPULATION, 2, 10000, &v, err, n)) goto fail;
  c->population = (int)v;
  if (get_long(l, SW_O_ELITES, 0, 10000, &v, err, n)) goto fail;
  c->elites = (int)v;
  if (c->elites >= c->population) {
    snprintf(err, n, "--elites (%d) must be below --population (%d)", c->elites, c->population);
    goto fail;
  }
  if (get_long(l, SW_O_GENERATIONS, 1, 100000, &v, err, n)) goto fail;
  c->generations = (int)v;
  if (xl_parse_double(l->val[SW_O_MUTATION], 0, 1, &c->mutation)) {
    snprintf(err, n, "--mutation: '%s' is not a probability in [0, 1]", l->val[SW_O_MUTATION]);
    goto fail;
  }
  if (l->val[SW_O_SAMPLING_SEED] && *l->val[SW_O_SAMPLING_SEED]) {
    if (get_long(l, SW_O_SAMPLING_SEED, 0, LONG_MAX, &v, err, n)) goto fail;
    c->sampling_seed = (unsigned long long)v;
  } else {
    c->sampling_seed = c->seed;
  }
  const char *ru = l->val[SW_O_REUSE];
  c->reuse = !strcmp(ru, "yes") ? 1 : !strcmp(ru, "no") ? 0 : -1;
  if (c->reuse < 0) {
    snprintf(err, n, "--reuse: '%s' is not yes or no", ru);
    goto fail;
  }
  if (get_long(l, SW_O_INTERLEAVE, 1, 100000, &v, err, n)) goto fail;
  c->interleave = (int)v;
  const char *su = l->val[SW_O_SKIP_UNAVAILABLE];
  c->skip_unavailable = !strcmp(su, "yes") ? 1 : !strcmp(su, "no") ? 0 : -1;
  if (c->skip_unavailable < 0) {
    snprintf(err, n, "--skip-unavailable: '%s' is not yes or no", su);
    goto fail;
  }
  if (xl_parse_double(l->val[SW_O_TIMEOUT], 0, 1e7, &c->timeout_s)) {
    snprintf(err, n, "--trial-timeout: '%s' is not a number of seconds (0 = none)", l->val[SW_O_TIMEOUT]);
    goto fail;
  }
  c->tool_prefix = str_or_null(l, SW_O_TOOL_PREFIX);
  c->bin = str_or_null(l, SW_O_BIN);
  c->profile_out = str_or_null(l, SW_O_PROFILE_OUT);
  const char *p = l->val[SW_O_PROGRESS];
  c->progress = !strcmp(p, "auto") ? -1 : !strcmp(p, "yes") ? 1 : !strcmp(p, "no") ? 0 : -2;
  if (c->progress == -2) {
    snprintf(err, n, "--progress: '%s' is not auto, yes or no", p);
    goto fail;
  }
  c->run_dir = str_or_null(l, SW_O_OUTPUT);
  c->run_name = l->val[SW_O_RUN];
  if (c->run_name && !sw_run_name_ok(c->run_name)) {
    snprintf(err, n, "--run '%s': a name of letters, digits, '.', '_' and '-', not starting with '.' "
             "(it names runs/NAME; -o DIR for a directory elsewhere)", c->run_name);
    goto fail;
  }
  return 0;
fail:
  sw_conf_free(c);
  return -1;
}

int sw_run_name_ok(const char *name) {
  if (!name[0] || name[0] == '.') return 0;   /* no ".", "..", hidden names */
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
          *p == '-'))
      return 0;
  return 1;
}

void sw_conf_free(sw_conf *c) {
  sw_space_free(&c->space);
  sw_list_free(&c->contexts);
}

cJSON *sw_layers_json(const sw_layers *l, int with_sources) {
  static const char *const src_name[] = {"default", "config", "resume", "command line"};
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; i < SW_NOPTS; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s", opt(i).name);
    for (char *k = key; *k; k++)
      if (*k == '-') *k = '_';
    const char *v = l->val[i];
    double d;
    if (!v) cJSON_AddNullToObject(o, key);
    else if ((opt(i).kind == 'i' || opt(i).kind == 'd') && !xl_parse_double(v, -1e300, 1e300, &d))
      cJSON_AddNumberToObject(o, key, d);
    else cJSON_AddStringToObject(o, key, v);
  }
  if (with_sources) {
    cJSON *s = cJSON_AddObjectToObject(o, "_sources");
    for (int i = 0; i < SW_NOPTS; i++) {
      if (!l->val[i]) continue;
      char key[64];
      snprintf(key, sizeof key, "%s", opt(i).name);
      for (char *k = key; *k; k++)
        if (*k == '-') *k = '_';
      cJSON_AddStringToObject(s, key, src_name[l->src[i]]);
    }
  }
  return o;
}

/* What a knob can change, for its help line. */
static const char *affects_text(unsigned a, char *buf, size_t n) {
  snprintf(buf, n, "%s%s%s%s%s", a & XS_AFFECTS_PREFILL ? "prefill speed" : "",
           (a & XS_AFFECTS_PREFILL) && (a & (XS_AFFECTS_DECODE | XS_AFFECTS_OUTPUT)) ? ", " : "",
           a & XS_AFFECTS_DECODE ? "decode speed" : "", (a & XS_AFFECTS_DECODE) && (a & XS_AFFECTS_OUTPUT) ? ", " : "",
           a & XS_AFFECTS_OUTPUT ? "the output" : "");
  return buf;
}

const char *sw_conf_help(void) {
  static char buf[8192];
  if (buf[0]) return buf;
  size_t k = 0;
#define ADD(...) (k += (size_t)snprintf(buf + k, k < sizeof buf ? sizeof buf - k : 0, __VA_ARGS__))
  ADD("Model and measurement:\n"
      "  -m, --model DIR         checkpoint directory (default: the tools' default model)\n"
      "      --prompt-file F     prompt text (default: xltools' prompts/pydocs.txt, beside bin/ or\n"
      "                          installed in PREFIX/share/xltools)\n"
      "      --context LIST      prompt lengths in tokens: the prompt's tokens repeated or cut\n"
      "                          to exactly each length; one trial per (setting, context)\n"
      "                          (default 512)\n"
      "  -n, --new N             tokens to generate per run (default 32; 0 = prefill only)\n"
      "      --repeats N         timed runs per trial (default 5): each trial records the mean,\n"
      "                          standard deviation and 95%% interval (Student's t) of its speeds\n"
      "      --warmup N          untimed runs before them (default 1)\n"
      "      --trial-timeout S   kill a tool run after S seconds; the trial fails (default 600,\n"
      "                          0 = none)\n"
      "      --interleave N      run the repeats of N trials at a time interleaved, in a shuffled\n"
      "                          order per round (grid/random: trials are assigned to batches at\n"
      "                          random; ga/pareto: one generation is one batch), so machine\n"
      "                          drift does not favour a setting (default 16); the machine's\n"
      "                          load (/proc/loadavg) is recorded with each trial\n"
      "      --reuse yes|no      a trial does not re-measure what its knobs cannot change: when\n"
      "                          another trial differs only in knobs that cannot affect decode\n"
      "                          speed (backend, chunk size), its decode measurement is taken\n"
      "                          (decode_from names it), and likewise for prefill (default yes)\n"
      "Search space (LIST: 16,32,64 or a range 1-4, 16-256*2, 8-64+8; names: a,b). The knobs\n"
      "are the run settings of xl-prefill/xl-decode (and xl-decode's sampling); each says what\n"
      "it can change, and nothing is ranked by a measurement its knobs cannot change:\n");
  for (int kb = 0; kb < SW_NKNOBS; kb++) {
    const xl_setting *x = sw_knob(kb);
    char head[64], aff[96];
    snprintf(head, sizeof head, "      %s LIST", x->flag);
    const char *def = kb == XS_WORKERS ? "1-<online CPUs>" : knob_default[kb];
    if (strlen(head) >= 26) ADD("%s\n%26s", head, "");
    else ADD("%-26s", head);
    if (x->choices) ADD("%s; ", x->choices);
    if (def) ADD("default %s\n", def);
    else ADD("not searched unless given\n");
    ADD("%26schanges %s%s\n", "", affects_text(x->affects, aff, sizeof aff),
        kb == XS_BACKEND ? " (recurrent ignores the chunk size: chunk_size 1)" : "");
  }
  ADD("      --sampling-seed N   the --seed of sampled runs (default: --seed)\n"
      "      --skip-unavailable  drop --device values this machine or build lacks, with a warning\n"
      "                          (default: refuse the sweep, naming what is missing)\n"
      "Search:\n"
      "      --search MODE       grid (every combination, default), random (--trials N distinct\n"
      "                          settings), ga (genetic), pareto (NSGA-II on prefill and decode)\n"
      "      --objective O       decode (default), prefill (default with --new 0), or pareto\n"
      "                          (default with --search pareto)\n"
      "      --seed N            random, ga and pareto are reproducible from it; it also shuffles\n"
      "                          the interleaved order (default 42)\n"
      "      --trials N          random: how many settings (default 16)\n"
      "      --population N      ga/pareto: individuals per generation (default 8)\n"
      "      --elites N          ga: best kept unchanged (default 2)\n"
      "      --generations N     ga/pareto: generations, the random first one included (default 4)\n"
      "      --mutation P        ga/pareto: per-gene mutation probability (default 0.25)\n"
      "Output:\n"
      "      --run NAME          run directory runs/NAME (a name: letters, digits, . _ -, not\n"
      "                          starting with '.'; default runs/sweep-<time>)\n"
      "  -o, --output DIR        run directory DIR (plan: also write the plan, ids and\n"
      "                          run_meta.json there; without -o or --run it prints only)\n"
      "      --profile-out F     also write the best settings as a --profile file to F\n"
      "      --progress auto|yes|no  progress lines on stderr (auto: when it is a terminal)\n"
      "Running the tools:\n"
      "      --bin DIR           where xl-prefill and xl-decode are (default: beside xl-sweep)\n"
      "      --tool-prefix CMD   words put before every tool run, e.g. 'taskset -c 0' or\n"
      "                          'numactl -N 0' (split on blanks, no quoting)\n");
#undef ADD
  return buf;
}
