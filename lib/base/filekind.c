/* filekind: sniffing what a file holds before a tool replaces it. See filekind.h. */
#include "base/filekind.h"
#include "base/util.h"
#include <cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SNIFF_MAX (1u << 20)

enum { C_ABSENT = -1, C_EMPTY = -2, C_BINARY = -3, C_JSON_OTHER = -4, C_SPECIAL = -5 };

typedef struct {
  int cls;                /* XK_* or C_* */
  char *buf;              /* the first bytes (NUL-terminated), owned */
  size_t n;               /* bytes in buf */
  long long size;         /* file size */
  cJSON *obj;             /* JSON: the object; NDJSON: the first line's object */
  char st_format[64];     /* safetensors __metadata__.format ("" when none) */
} sniff;

const char *xk_name(xk_format f) {
  switch (f) {
  case XK_TEXT: return "a text file";
  case XK_JSON: return "a JSON file";
  case XK_NDJSON: return "an NDJSON file";
  case XK_CSV: return "a CSV table";
  case XK_SAFETENSORS: return "a safetensors file";
  case XK_PNG: return "a PNG image";
  case XK_SVG: return "an SVG image";
  case XK_DATA: return "a data file";
  }
  return "a file";
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The safetensors header's __metadata__.format, when the header fits in what was read. */
static void st_format(sniff *s, uint64_t hlen) {
  if (8 + hlen > s->n) { snprintf(s->st_format, sizeof s->st_format, "?"); return; }   /* too big to read: any */
  cJSON *h = cJSON_ParseWithLength(s->buf + 8, (size_t)hlen);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "format");
  if (cJSON_IsString(f)) snprintf(s->st_format, sizeof s->st_format, "%s", f->valuestring);
  cJSON_Delete(h);
}

/* The first non-blank line of text as a JSON object, or NULL. */
static cJSON *first_line_object(const char *p, const char *end) {
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    size_t blank = 0;
    while (p + blank < e && (p[blank] == ' ' || p[blank] == '\t' || p[blank] == '\r')) blank++;
    if (p + blank < e) {
      cJSON *j = cJSON_ParseWithLength(p, (size_t)(e - p));
      if (cJSON_IsObject(j)) return j;
      cJSON_Delete(j);
      return NULL;
    }
    p = nl ? nl + 1 : end;
  }
  return NULL;
}

static void do_sniff(const char *path, sniff *s) {
  memset(s, 0, sizeof *s);
  struct stat st;
  if (stat(path, &st)) { s->cls = C_ABSENT; return; }
  if (!S_ISREG(st.st_mode)) { s->cls = C_SPECIAL; return; }
  s->size = (long long)st.st_size;
  if (st.st_size == 0) { s->cls = C_EMPTY; return; }
  FILE *f = fopen(path, "rb");
  if (!f) { s->cls = C_BINARY; return; }   /* unreadable: never replace it blindly */
  s->buf = xl_malloc(SNIFF_MAX + 1);
  s->n = fread(s->buf, 1, SNIFF_MAX, f);
  fclose(f);
  s->buf[s->n] = 0;
  const unsigned char *u = (const unsigned char *)s->buf;
  if (s->n >= 8 && !memcmp(u, "\x89PNG\r\n\x1a\n", 8)) { s->cls = XK_PNG; return; }
  if (s->n >= 10) {
    uint64_t hlen = le64(u);
    if (hlen >= 2 && hlen < (1ull << 40) && 8 + hlen <= (uint64_t)s->size && u[8] == '{') {
      s->cls = XK_SAFETENSORS;
      st_format(s, hlen);
      return;
    }
  }
  if (memchr(s->buf, 0, s->n)) { s->cls = C_BINARY; return; }
  const char *p = s->buf, *end = s->buf + s->n;
  if (s->n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) p += 3;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (!strncmp(p, "<?xml", 5) || !strncmp(p, "<svg", 4)) { s->cls = XK_SVG; return; }
  if (*p == '{' || *p == '[') {
    cJSON *whole = NULL;
    if ((long long)s->n == s->size) {   /* one value and nothing after it (cJSON stops at its end) */
      const char *after = NULL;
      whole = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &after, 0);
      while (whole && after && after < end && (*after == ' ' || *after == '\t' || *after == '\r' || *after == '\n')) after++;
      if (whole && after != end) { cJSON_Delete(whole); whole = NULL; }
    }
    if (cJSON_IsObject(whole)) {
      /* one object on one line is both a JSON file and a one-line NDJSON file */
      s->obj = whole;
      s->cls = XK_JSON;
      return;
    }
    if (whole) { cJSON_Delete(whole); s->cls = C_JSON_OTHER; return; }
    if ((s->obj = first_line_object(p, end))) { s->cls = XK_NDJSON; return; }
    s->cls = *p == '{' && (long long)s->n < s->size ? XK_JSON : XK_TEXT;   /* too big to parse: trust the brace */
    return;
  }
  s->cls = *p == '#' ? XK_DATA : XK_TEXT;
}

static void sniff_free(sniff *s) {
  free(s->buf);
  cJSON_Delete(s->obj);
}

/* Whether the object s->obj was on one line (a JSON file that is also NDJSON). */
static int one_line(const sniff *s) {
  const char *nl = memchr(s->buf, '\n', s->n);
  return !nl || nl[1 + strspn(nl + 1, " \t\r\n")] == 0;
}

/* The first CSV field of the first line, unquoted, into buf. */
static void csv_first(const sniff *s, char *buf, size_t n) {
  const char *p = s->buf;
  if (s->n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) p += 3;
  size_t k = 0;
  if (*p == '"') {
    for (p++; *p && k + 1 < n; p++) {
      if (*p == '"' && p[1] == '"') { buf[k++] = '"'; p++; }
      else if (*p == '"') break;
      else buf[k++] = *p;
    }
  } else {
    while (*p && *p != ',' && *p != '\n' && *p != '\r' && k + 1 < n) buf[k++] = *p++;
  }
  buf[k] = 0;
}

static const char *describe(const sniff *s, char *buf, size_t n) {
  switch (s->cls) {
  case C_ABSENT: snprintf(buf, n, "nothing"); return buf;
  case C_EMPTY: snprintf(buf, n, "an empty file"); return buf;
  case C_BINARY: snprintf(buf, n, "binary data (or unreadable)"); return buf;
  case C_JSON_OTHER: snprintf(buf, n, "a JSON value that is not an object"); return buf;
  case C_SPECIAL: snprintf(buf, n, "not a regular file"); return buf;
  case XK_JSON: case XK_NDJSON: {
    size_t k = (size_t)snprintf(buf, n, "%s with keys ", s->cls == XK_JSON ? "a JSON file" : "an NDJSON file");
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, s->obj) {
      if (k >= n) break;
      if (i == 4) { k += (size_t)snprintf(buf + k, n - k, ", ..."); break; }
      k += (size_t)snprintf(buf + k, n - k, "%s%.40s", i ? ", " : "", e->string);
      i++;
    }
    if (!i && k < n) snprintf(buf + k, n - k, "(none)");
    return buf;
  }
  case XK_SAFETENSORS:
    if (s->st_format[0]) snprintf(buf, n, "a safetensors file of format '%s'", s->st_format);
    else snprintf(buf, n, "a safetensors file");
    return buf;
  case XK_TEXT: {
    char first[64];
    csv_first(s, first, sizeof first);
    const char *nl = strchr(s->buf, '\n');
    int len = nl ? (int)(nl - s->buf) : (int)strlen(s->buf);
    snprintf(buf, n, "a text file starting '%.*s%s'", len > 40 ? 40 : len, s->buf, len > 40 ? "..." : "");
    return buf;
  }
  default: snprintf(buf, n, "%s", xk_name((xk_format)s->cls)); return buf;
  }
}

const char *xk_describe(const char *path, char *buf, size_t n) {
  sniff s;
  do_sniff(path, &s);
  describe(&s, buf, n);
  sniff_free(&s);
  return buf;
}

static int same_kind(const sniff *s, xk_format fmt, const char *sig) {
  if (s->cls == C_ABSENT || s->cls == C_EMPTY || s->cls == C_SPECIAL) return 1;
  switch (fmt) {
  case XK_JSON:
    return s->cls == XK_JSON && (!sig || !s->obj || cJSON_HasObjectItem(s->obj, sig));
  case XK_NDJSON:
    if (s->cls == XK_JSON && !one_line(s)) return 0;
    return (s->cls == XK_NDJSON || s->cls == XK_JSON) && (!sig || cJSON_HasObjectItem(s->obj, sig));
  case XK_CSV: {
    if (s->cls != XK_TEXT) return 0;
    if (!sig) return 1;
    char first[256];
    csv_first(s, first, sizeof first);
    return !strcmp(first, sig);
  }
  case XK_TEXT: return s->cls == XK_TEXT || s->cls == XK_DATA;
  case XK_SAFETENSORS:
    return s->cls == XK_SAFETENSORS && (!sig || !strcmp(s->st_format, sig) || !strcmp(s->st_format, "?"));
  case XK_PNG: case XK_SVG: case XK_DATA: return s->cls == (int)fmt;
  }
  return 0;
}

static void wanted(xk_format fmt, const char *sig, char *buf, size_t n) {
  if (!sig) { snprintf(buf, n, "%s", xk_name(fmt)); return; }
  switch (fmt) {
  case XK_JSON: snprintf(buf, n, "a JSON file with key '%s'", sig); break;
  case XK_NDJSON: snprintf(buf, n, "an NDJSON file of records with '%s'", sig); break;
  case XK_CSV: snprintf(buf, n, "a CSV table starting with column '%s'", sig); break;
  case XK_SAFETENSORS: snprintf(buf, n, "a safetensors file of format '%s'", sig); break;
  default: snprintf(buf, n, "%s", xk_name(fmt)); break;
  }
}

int xl_kind_check_msg(const char *path, xk_format fmt, const char *sig, char *err, size_t errlen) {
  sniff s;
  do_sniff(path, &s);
  int ok = same_kind(&s, fmt, sig);
  if (!ok) {
    char is[256], want[160];
    describe(&s, is, sizeof is);
    wanted(fmt, sig, want, sizeof want);
    xl_errf(err, errlen, "%s: refusing to overwrite it: it is %s, not %s", path, is, want);
  }
  sniff_free(&s);
  if (!ok) errno = EEXIST;
  return ok ? 0 : -1;
}

int xl_kind_check(const char *path, xk_format fmt, const char *sig) {
  char err[768];
  if (!xl_kind_check_msg(path, fmt, sig, err, sizeof err)) return 0;
  xl_warn("%s", err);
  errno = EEXIST;
  return -1;
}
