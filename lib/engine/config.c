/* config: the shared field readers of config.json parsers. See config.h. */
#include "engine/config.h"
#include "base/util.h"
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Looks up the first present key of a NULL-terminated list. */
static const cJSON *get_any(const cJSON *o, const char *const *keys, const char **found) {
  for (; *keys; keys++) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, *keys);
    if (j && !cJSON_IsNull(j)) { if (found) *found = *keys; return j; }
  }
  return NULL;
}

/* Integer field: required unless def is given (has_def). */
int xl_cfg_int(const cJSON *o, const char *const *keys, int has_def, long def, long lo, long hi, long *out,
                   const char *path, char *err, size_t errlen) {
  const char *k = keys[0];
  const cJSON *j = get_any(o, keys, &k);
  if (!j) {
    if (has_def) { *out = def; return 0; }
    return xl_errf(err, errlen, "%s: missing field \"%s\"", path, keys[0]);
  }
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || j->valuedouble < lo || j->valuedouble > hi)
    return xl_errf(err, errlen, "%s: field \"%s\" must be an integer in [%ld, %ld]", path, k, lo, hi);
  *out = (long)j->valuedouble;
  return 0;
}
int xl_cfg_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out, const char *path,
                   char *err, size_t errlen) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!j || cJSON_IsNull(j)) { *out = def; return 0; }
  if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
    return xl_errf(err, errlen, "%s: field \"%s\" must be a number in [%g, %g]", path, key, lo, hi);
  *out = j->valuedouble;
  return 0;
}
int xl_cfg_bool(const cJSON *o, const char *key, int def, int *out, const char *path, char *err, size_t errlen) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!j || cJSON_IsNull(j)) { *out = def; return 0; }
  if (!cJSON_IsBool(j)) return xl_errf(err, errlen, "%s: field \"%s\" must be true or false", path, key);
  *out = cJSON_IsTrue(j);
  return 0;
}
/* Optional token id: absent/null -> -1. */
int xl_cfg_token(const cJSON *o, const char *key, int *out, const char *path, char *err, size_t errlen) {
  long v;
  static const char *k1[2];
  k1[0] = key; k1[1] = NULL;
  if (xl_cfg_int(o, k1, 1, -1, -1, 1L << 30, &v, path, err, errlen)) return -1;
  *out = (int)v;
  return 0;
}

void xl_config_free(xl_config *c) {
  free(c->arch_cfg);
  c->arch_cfg = NULL;
}
