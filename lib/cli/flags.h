/* flags: a tool's command line as a table. Each row names a flag (and a short alias), the
 * kind of its value, bounds, and where in the tool's options struct the value goes; one
 * parser reads every table, so every tool takes `--flag value` and `--flag=value` alike
 * and refuses a bad value with the same message and exit status (2).
 * Not for: the engine's run settings (settings.h has their table) or telemetry flags
 * (obs/telemetry.h). */
#ifndef XL_FLAGS_H
#define XL_FLAGS_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
  XF_SET,      /* no value: the int field becomes 1 */
  XF_STR,      /* const char * */
  XF_INT,      /* int, in [lo, hi] */
  XF_LONG,     /* long, in [lo, hi] */
  XF_FLOAT,    /* float, in [lo, hi] */
  XF_CHOICE,   /* int: the index of the value in choices ("text|ndjson") */
} xl_flag_kind;

typedef struct {
  const char *name;      /* "--new" */
  const char *alias;     /* "-n" or NULL */
  xl_flag_kind kind;
  size_t off;            /* offsetof(the tool's options, field) */
  double lo, hi;
  const char *choices;
} xl_flag;

/* When argv[*i] is a flag of the table, stores its value, sets bit k of *given (k: the
 * row) when given is not NULL, advances *i past a separate value, and returns 1; else 0.
 * A missing or bad value is a usage error (exit 2). */
int xl_flags_parse(const xl_flag *tab, size_t n, void *opts, uint64_t *given, int argc, char **argv, int *i);
/* An old spelling of a flag, kept for one release (docs/cli.md, "Flag vocabulary"): a warning
 * on stderr, once per spelling per run, naming the new one. The caller then does as asked. */
void xl_deprecated(const char *old_spelling, const char *new_spelling);

/* "a|b|c" as "a, b or c" (for messages). */
const char *xl_choices_text(const char *choices, char *buf, size_t n);
/* Whether row k of a table was given. */
static inline int xl_flag_given(uint64_t given, size_t k) { return (int)((given >> k) & 1u); }

#endif
