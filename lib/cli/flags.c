/* flags: the table-driven command-line parser of the tools. See flags.h. */
#include "cli/flags.h"
#include "base/util.h"
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* The value of flag `f` at argv[*i]: "--f=v" or "--f v". NULL when argv[*i] is not f. */
static const char *match(const xl_flag *f, int argc, char **argv, int *i, int *matched) {
  const char *a = argv[*i];
  const char *names[2] = {f->name, f->alias};
  for (int k = 0; k < 2; k++) {
    if (!names[k]) continue;
    size_t n = strlen(names[k]);
    if (strncmp(a, names[k], n) || (a[n] && a[n] != '=')) continue;
    *matched = 1;
    if (f->kind == XF_SET) {
      if (a[n] == '=') xl_usage_error("%s takes no value", names[k]);
      return "";
    }
    if (a[n] == '=') return a + n + 1;
    if (*i + 1 >= argc) xl_usage_error("%s needs a value", names[k]);
    return argv[++*i];
  }
  return NULL;
}

void xl_deprecated(const char *old_spelling, const char *new_spelling) {
  static const char *warned[16];
  for (int i = 0; i < 16 && warned[i]; i++)
    if (!strcmp(warned[i], old_spelling)) return;
  for (int i = 0; i < 16; i++)
    if (!warned[i]) { warned[i] = old_spelling; break; }
  xl_warn("warning: %s is deprecated and will be removed in the next release; use %s", old_spelling, new_spelling);
}

static int choice_index(const char *choices, const char *v) {
  int idx = 0;
  size_t vl = strlen(v);
  for (const char *p = choices; *p; idx++) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == vl && !strncmp(p, v, len)) return idx;
    p += len + (bar ? 1 : 0);
  }
  return -1;
}

const char *xl_choices_text(const char *choices, char *buf, size_t n) {
  size_t off = 0;
  buf[0] = 0;
  for (const char *p = choices; *p && off < n;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    const char *sep = p == choices ? "" : (bar ? ", " : " or ");
    off += (size_t)snprintf(buf + off, n - off, "%s%.*s", sep, (int)len, p);
    p += len + (bar ? 1 : 0);
  }
  return buf;
}

int xl_flags_parse(const xl_flag *tab, size_t n, void *opts, uint64_t *given, int argc, char **argv, int *i) {
  for (size_t k = 0; k < n; k++) {
    const xl_flag *f = &tab[k];
    int matched = 0;
    const char *v = match(f, argc, argv, i, &matched);
    if (!matched) continue;
    char *field = (char *)opts + f->off;
    switch (f->kind) {
    case XF_SET: *(int *)field = 1; break;
    case XF_STR: *(const char **)field = v; break;
    case XF_INT: *(int *)field = (int)xl_flag_long(f->name, v, (long)f->lo, (long)f->hi); break;
    case XF_LONG: *(long *)field = xl_flag_long(f->name, v, (long)f->lo, f->hi >= (double)LONG_MAX ? LONG_MAX : (long)f->hi); break;
    case XF_FLOAT: *(float *)field = (float)xl_flag_double(f->name, v, f->lo, f->hi); break;
    case XF_CHOICE: {
      int c = choice_index(f->choices, v);
      char list[256];
      if (c < 0) xl_usage_error("%s: '%s' is not %s", f->name, v, xl_choices_text(f->choices, list, sizeof list));
      *(int *)field = c;
      break;
    }
    }
    if (given && k < 64) *given |= (uint64_t)1 << k;
    return 1;
  }
  return 0;
}
