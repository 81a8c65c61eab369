/* fuzz_sweep_config: xl-sweep's settings files (sweep/sweep_config.h): a --config JSON
 * object, and the same object as a resumed run's run_meta.json "config", layered over
 * the defaults and checked into typed settings (sw_layers_merge_json, sw_layers_defaults,
 * sw_conf_build), then printed as --print-config does (sw_layers_json). Accepted settings
 * must be in their documented ranges, with non-empty sorted value lists. */
#include "fuzz_common.h"
#include "sweep/sweep_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

static void check_list(const sw_list *l, const char *what) {
  FZ_CHECK(l->n >= 1, "%s: empty list", what);
  for (size_t i = 1; i < l->n; i++) FZ_CHECK(l->v[i - 1] < l->v[i], "%s: not sorted and unique", what);
}

/* A searched knob's values are unique canonical texts (an integer knob's in ascending order). */
static void check_vals(int k, const sw_vals *v) {
  for (size_t i = 0; i < v->n; i++) {
    FZ_CHECK(v->v[i] && v->v[i][0], "knob %d: empty value", k);
    for (size_t j = 0; j < i; j++) FZ_CHECK(strcmp(v->v[i], v->v[j]), "knob %d: value %s twice", k, v->v[i]);
    if (i && sw_knob_is_int(k)) FZ_CHECK(atol(v->v[i - 1]) < atol(v->v[i]), "knob %d: not ascending", k);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  if (!j) return 0;
  char err[1024];
  for (int src = SW_SRC_CONFIG; src <= SW_SRC_RESUME; src++) {
    sw_layers L;
    memset(&L, 0, sizeof L);
    if (src == SW_SRC_RESUME) sw_layers_set(&L, SW_O_SEARCH, "grid", SW_SRC_CLI);   /* a flag given on resume wins */
    if (sw_layers_merge_json(&L, j, src, err, sizeof err)) {
      FZ_CHECK(err[0], "refused without a message");
      sw_layers_free(&L);
      continue;
    }
    sw_layers_defaults(&L, "/nonexistent-root");
    sw_conf c;
    if (sw_conf_build(&L, &c, err, sizeof err) == 0) {
      for (int k = 0; k < SW_NKNOBS; k++) check_vals(k, &c.space.knob[k]);
      check_list(&c.contexts, "context");
      FZ_CHECK(c.search >= 0 && c.search <= 3 && c.repeats >= 1 && c.population >= 2 && c.elites < c.population &&
                   c.generations >= 1 && c.trials >= 1 && c.new_tokens >= 0 && c.mutation >= 0 && c.mutation <= 1 &&
                   c.timeout_s >= 0,
               "settings out of range");
      sw_conf_free(&c);
    } else {
      FZ_CHECK(err[0], "refused without a message");
    }
    cJSON *out = sw_layers_json(&L, 1);
    char *s = cJSON_PrintUnformatted(out);
    FZ_CHECK(s != NULL, "print");
    /* what --print-config prints is itself a config file that merges again */
    sw_layers L2;
    memset(&L2, 0, sizeof L2);
    FZ_CHECK(sw_layers_merge_json(&L2, out, SW_SRC_CONFIG, err, sizeof err) == 0, "printed config does not merge: %s\n%s",
             err, s);
    sw_layers_free(&L2);
    cJSON_free(s);
    cJSON_Delete(out);
    sw_layers_free(&L);
  }
  cJSON_Delete(j);
  return 0;
}
