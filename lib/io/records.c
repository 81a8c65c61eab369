/* records: NDJSON reading/writing and CSV writing over cJSON objects. See records.h. */
#include "io/records.h"
#include "base/filekind.h"
#include "base/util.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

cJSON *rec_ndjson_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen) {
  cJSON *arr = cJSON_CreateArray();
  if (!arr) { snprintf(err, errlen, "%s: out of memory", name); return NULL; }
  size_t pos = 0;
  long lineno = 0;
  while (pos < len) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - line) : len - pos;
    pos += n + (nl ? 1 : 0);
    lineno++;
    if (blank(line, n)) continue;
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(line, n, &end, 0);
    if (!obj) {
      long col = end ? (long)(end - line) + 1 : 0;
      snprintf(err, errlen, "%s:%ld: not valid JSON (near column %ld)", name, lineno, col);
      cJSON_Delete(arr);
      return NULL;
    }
    /* Anything after the object on the same line other than whitespace is an error:
     * two objects on one line would otherwise silently lose the second. */
    size_t used = (size_t)(end - line);
    if (!blank(line + used, n - used)) {
      snprintf(err, errlen, "%s:%ld: trailing characters after the JSON value (column %ld)",
               name, lineno, (long)used + 1);
      cJSON_Delete(obj);
      cJSON_Delete(arr);
      return NULL;
    }
    if (!cJSON_IsObject(obj)) {
      snprintf(err, errlen, "%s:%ld: not a JSON object", name, lineno);
      cJSON_Delete(obj);
      cJSON_Delete(arr);
      return NULL;
    }
    cJSON_AddItemToArray(arr, obj);
  }
  return arr;
}

cJSON *rec_ndjson_read(const char *path, char *err, size_t errlen) {
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
  cJSON *arr = rec_ndjson_parse(buf, len, path, err, errlen);
  free(buf);
  return arr;
}

cJSON *rec_json_read(const char *path, char *err, size_t errlen) {
  size_t len;
  char *buf = xl_read_file(path, &len);
  if (!buf) { xl_errf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
  cJSON *j = cJSON_ParseWithLength(buf, len);
  free(buf);
  if (!j) xl_errf(err, errlen, "%s: not valid JSON", path);
  return j;
}

/* Whether some string (or key) in j is ill-formed UTF-8. */
static int bad_utf8(const cJSON *j) {
  for (; j; j = j->next) {
    if (j->string && !xl_utf8_valid(j->string, strlen(j->string))) return 1;
    if (cJSON_IsString(j) && j->valuestring && !xl_utf8_valid(j->valuestring, strlen(j->valuestring))) return 1;
    if (j->child && bad_utf8(j->child)) return 1;
  }
  return 0;
}
/* Replaces ill-formed UTF-8 in every string and key of the list at j with U+FFFD. */
static void fix_utf8(cJSON *j) {
  for (; j; j = j->next) {
    if (j->string && !xl_utf8_valid(j->string, strlen(j->string)) && !(j->type & cJSON_StringIsConst)) {
      char *t = xl_utf8_lossy(j->string);
      cJSON_free(j->string);
      j->string = cJSON_malloc(strlen(t) + 1);
      if (j->string) strcpy(j->string, t);
      free(t);
    }
    if (cJSON_IsString(j) && j->valuestring && !xl_utf8_valid(j->valuestring, strlen(j->valuestring))) {
      char *t = xl_utf8_lossy(j->valuestring);
      cJSON_SetValuestring(j, t);
      free(t);
    }
    if (j->child) fix_utf8(j->child);
  }
}

/* j printed as JSON text, ill-formed UTF-8 replaced (readers such as Python's json refuse it). */
static char *print_clean(const cJSON *j, int formatted) {
  cJSON *copy = NULL;
  if (bad_utf8(j->child) || (cJSON_IsString(j) && j->valuestring && !xl_utf8_valid(j->valuestring, strlen(j->valuestring)))) {
    copy = cJSON_Duplicate(j, 1);
    if (!copy) return NULL;
    cJSON *next = copy->next;
    copy->next = NULL;
    fix_utf8(copy);
    copy->next = next;
    j = copy;
  }
  char *s = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
  cJSON_Delete(copy);
  return s;
}

int rec_ndjson_write(FILE *f, const cJSON *obj) {
  char *s = print_clean(obj, 0);
  if (!s) return -1;
  int rc = (fputs(s, f) < 0 || fputc('\n', f) == EOF) ? -1 : 0;
  cJSON_free(s);
  return rc;
}

/* The first key of an object: the signature of the kind of file it is written to. */
static const char *first_key(const cJSON *o) {
  return cJSON_IsObject(o) && o->child ? o->child->string : NULL;
}

int rec_ndjson_save(const char *path, const cJSON *rows) {
  return rec_ndjson_save_kind(path, rows, first_key(cJSON_GetArrayItem(rows, 0)));
}

int rec_ndjson_save_kind(const char *path, const cJSON *rows, const char *key) {
  xl_atomic a;
  if (xl_kind_check(path, XK_NDJSON, key) || xl_atomic_open(&a, path)) return -1;
  const cJSON *r;
  cJSON_ArrayForEach(r, rows)
    if (rec_ndjson_write(a.f, r)) {
      if (!errno) errno = EIO;
      xl_atomic_abort(&a);
      return -1;
    }
  return xl_atomic_commit(&a);
}

int rec_csv_field(FILE *f, const char *s) {
  if (!s || !*s) return 0;
  if (!xl_utf8_valid(s, strlen(s))) {
    char *t = xl_utf8_lossy(s);
    int rc = rec_csv_field(f, t);
    free(t);
    return rc;
  }
  size_t n = strlen(s);
  /* a field starting with U+FEFF is quoted: first in a file it would be read as a byte order mark */
  int quote = strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || s[0] == '\t' ||
              s[n - 1] == ' ' || s[n - 1] == '\t' || !strncmp(s, "\xEF\xBB\xBF", 3);
  if (!quote) return fputs(s, f) < 0 ? -1 : 0;
  if (fputc('"', f) == EOF) return -1;
  for (const char *p = s; *p; p++) {
    if (*p == '"' && fputc('"', f) == EOF) return -1;
    if (fputc(*p, f) == EOF) return -1;
  }
  return fputc('"', f) == EOF ? -1 : 0;
}

int rec_csv_header(FILE *f, const char *const *cols, size_t ncols) {
  for (size_t i = 0; i < ncols; i++) {
    if (i && fputc(',', f) == EOF) return -1;
    if (rec_csv_field(f, cols[i])) return -1;
  }
  return fputc('\n', f) == EOF ? -1 : 0;
}

void rec_format_number(char *buf, size_t n, double v) {
  if (!isfinite(v)) { snprintf(buf, n, "%s", ""); return; }  /* formats.md: no NaN */
  if (v == floor(v) && fabs(v) < 9007199254740992.0) { snprintf(buf, n, "%.0f", v); return; }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}

/* Whether rec_csv_row writes v as an empty field. */
static int empty_field(const cJSON *v) {
  return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && !*v->valuestring) || (cJSON_IsNumber(v) && !isfinite(v->valuedouble));
}

int rec_csv_row(FILE *f, const cJSON *obj, const char *const *cols, size_t ncols) {
  char num[64];
  /* a row of one empty field is written "": an empty line is read back as no row */
  if (ncols == 1 && empty_field(cJSON_GetObjectItemCaseSensitive(obj, cols[0]))) return fputs("\"\"\n", f) < 0 ? -1 : 0;
  for (size_t i = 0; i < ncols; i++) {
    if (i && fputc(',', f) == EOF) return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, cols[i]);
    int rc = 0;
    if (!v || cJSON_IsNull(v)) continue;
    if (cJSON_IsString(v)) rc = rec_csv_field(f, v->valuestring);
    else if (cJSON_IsBool(v)) rc = rec_csv_field(f, cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) { rec_format_number(num, sizeof num, v->valuedouble); rc = rec_csv_field(f, num); }
    else {
      char *s = cJSON_PrintUnformatted(v);
      if (!s) return -1;
      rc = rec_csv_field(f, s);
      cJSON_free(s);
    }
    if (rc) return -1;
  }
  return fputc('\n', f) == EOF ? -1 : 0;
}

int rec_csv_write_all(FILE *f, const cJSON *rows, const char *const *cols, size_t ncols) {
  if (rec_csv_header(f, cols, ncols)) return -1;
  const cJSON *r;
  cJSON_ArrayForEach(r, rows)
    if (rec_csv_row(f, r, cols, ncols)) return -1;
  return ferror(f) ? -1 : 0;
}

int rec_csv_save(const char *path, const cJSON *rows, const char *const *cols, size_t ncols) {
  xl_atomic a;
  if (xl_kind_check(path, XK_CSV, ncols ? cols[0] : NULL) || xl_atomic_open(&a, path)) return -1;
  if (rec_csv_write_all(a.f, rows, cols, ncols)) {
    if (!errno) errno = EIO;
    xl_atomic_abort(&a);
    return -1;
  }
  return xl_atomic_commit(&a);
}

int rec_save_pair(const char *jsonl, const char *csv, const cJSON *rows, const char *const *cols, size_t ncols,
                  const char **bad) {
  xl_atomic a, b;
  *bad = jsonl;
  if (xl_kind_check(jsonl, XK_NDJSON, first_key(cJSON_GetArrayItem(rows, 0))) || xl_atomic_open(&a, jsonl)) return -1;
  const cJSON *r;
  int rc = 0;
  cJSON_ArrayForEach(r, rows)
    if (!rc && rec_ndjson_write(a.f, r)) rc = -1;
  if (rc || xl_atomic_ready(&a)) goto fail_a;
  *bad = csv;
  if (xl_kind_check(csv, XK_CSV, ncols ? cols[0] : NULL) || xl_atomic_open(&b, csv)) goto fail_a;
  if (rec_csv_write_all(b.f, rows, cols, ncols) || xl_atomic_ready(&b)) {
    if (!errno) errno = EIO;
    xl_atomic_abort(&b);
    goto fail_a;
  }
  if (xl_atomic_commit(&a)) { *bad = jsonl; xl_atomic_abort(&b); return -1; }
  return xl_atomic_commit(&b);
fail_a:
  if (!errno) errno = EIO;
  xl_atomic_abort(&a);
  return -1;
}

const char *rec_str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int rec_num(const cJSON *obj, const char *key, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v)) return -1;
  *out = v->valuedouble;
  return 0;
}

int rec_json_save(const char *path, const cJSON *j) {
  if (xl_kind_check(path, XK_JSON, first_key(j))) return -1;
  char *s = print_clean(j, 1);
  if (!s) return errno = ENOMEM, -1;
  size_t n = strlen(s);
  s = xl_realloc(s, n + 2);
  s[n++] = '\n';
  int rc = xl_write_file_atomic(path, s, n);
  free(s);
  return rc;
}
