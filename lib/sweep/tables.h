/* tables: the CSV tables the pipeline tools join and rank by (summary.csv, the ratings
 * files, merged.csv, pareto.csv), read strictly. csvt pads a short row with empty cells,
 * which for these tables would silently invent a row (a bogus context group, a changed
 * recommendation); here a row with fewer cells than the header is an error naming the
 * file, the line and both counts (a longer one already is).
 * Not for: logs whose rows may legitimately be short, or writing tables (io/csvtable.h). */
#ifndef XL_SWEEP_TABLES_H
#define XL_SWEEP_TABLES_H
#include "io/csvtable.h"
#include <stddef.h>

/* csvt_read, then every row must have exactly as many cells as the header.
 * 0 ok, -1 with a message ("FILE: line L has N cells, the header has H"), t left empty. */
int sw_table_read(csvt *t, const char *path, char *err, size_t errlen);
/* The same check on a CSV text in memory (name is used in messages). */
int sw_table_check(const char *name, const char *data, size_t len, char *err, size_t errlen);

#endif
