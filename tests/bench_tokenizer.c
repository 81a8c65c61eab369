/* bench_tokenizer: single-threaded encode speed of the BPE tokenizer. Reads text files
 * (default: the *.md files in $XL_DOCS, else in the project's docs/ found beside the binary
 * or in the checkout it was built from, else the tokenizer golden file),
 * repeats them to --mb megabytes, encodes once to warm up, then --reps times, and prints
 * one NDJSON line:
 *   {"bench":"tokenizer_encode","mb_s":..,"mb_s_sd":..,"tokens_s":..,"bytes":..,
 *    "tokens":..,"reps":..,"threads":1,"cpu":"..","commit":"..","time":"..","source":".."}
 * (source: the file or directory the text came from).
 * Usage: bench_tokenizer [--model DIR] [--mb N] [--reps N] [FILE...]
 * Not a test: it asserts nothing beyond the encode succeeding. */
#include "text/tokenizer.h"
#include "base/util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void cpu_name(char *buf, size_t n) {
  snprintf(buf, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char *c = strchr(line, ':');
    if (!c) break;
    c++;
    while (*c == ' ') c++;
    c[strcspn(c, "\n")] = 0;
    snprintf(buf, n, "%s", c);
    break;
  }
  fclose(f);
}

static void git_commit(char *buf, size_t n) {
  snprintf(buf, n, "unknown");
  FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
  if (!p) return;
  if (fgets(buf, (int)n, p)) buf[strcspn(buf, "\n")] = 0;
  else snprintf(buf, n, "unknown");
  pclose(p);
}

/* Appends a file's bytes to *text. */
static void add_file(char **text, size_t *len, const char *path) {
  size_t l;
  char *s = xl_read_file(path, &l);
  if (!s) xl_die("%s: cannot read", path);
  *text = xl_realloc(*text, *len + l + 1);
  memcpy(*text + *len, s, l);
  *len += l;
  free(s);
}

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  xl_set_progname("bench_tokenizer");
  char *def_model = xl_find_resource("models/xlstm-tiny-pydocs", "tokenizer.json");
  const char *model = def_model;
  long mb = 4, reps = 5;
  int i = 1;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--help")) {
      printf("usage: bench_tokenizer [--model DIR] [--mb N] [--reps N] [FILE...]\n");
      return 0;
    } else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!strcmp(argv[i], "--mb") && i + 1 < argc) mb = xl_flag_long("--mb", argv[++i], 1, 1024);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = xl_flag_long("--reps", argv[++i], 1, 1000);
    else if (argv[i][0] == '-') xl_usage_error("unknown flag %s", argv[i]);
    else break;
  }
  char *src = NULL;
  size_t srclen = 0;
  char *source = xl_strdup(i < argc ? argv[i] : "");
  for (; i < argc; i++) add_file(&src, &srclen, argv[i]);
  if (!srclen) {
    /* never a path of one machine: $XL_DOCS, else this project's own docs */
    char *def_docs = xl_find_resource("docs", "formats.md");
    const char *dir = getenv("XL_DOCS") ? getenv("XL_DOCS") : def_docs;
    free(source);
    source = xl_strdup(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      size_t l = strlen(e->d_name);
      if (l < 4 || strcmp(e->d_name + l - 3, ".md")) continue;
      char *p = xl_path_join(dir, e->d_name);
      add_file(&src, &srclen, p);
      free(p);
    }
    if (d) closedir(d);
    free(def_docs);
  }
  if (!srclen) {
    char *gdir = xl_find_resource("tests/golden/tokenizer", "tokenizer_golden.json");
    char *g = xl_path_join(gdir, "tokenizer_golden.json");
    add_file(&src, &srclen, g);
    free(source);
    source = g;
    free(gdir);
  }

  size_t want = (size_t)mb << 20, len = 0;
  char *text = xl_malloc(want + srclen);
  while (len < want) { memcpy(text + len, src, srclen); len += srclen; }
  free(src);

  char err[512];
  tok_tokenizer *t = tok_load(model, err, sizeof err);
  if (!t) xl_die("%s", err);
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  if (tok_encode(t, text, len, &ids, &n, &cap, err, sizeof err)) xl_die("%s", err);  /* warm-up */
  double sum = 0, sum2 = 0;
  for (long r = 0; r < reps; r++) {
    n = 0;
    double t0 = xl_now();
    if (tok_encode(t, text, len, &ids, &n, &cap, err, sizeof err)) xl_die("%s", err);
    double mbs = (double)len / (xl_now() - t0) / 1e6;
    sum += mbs;
    sum2 += mbs * mbs;
  }
  double mean = sum / (double)reps;
  double sd = reps > 1 ? sqrt(fmax(0, (sum2 - sum * sum / (double)reps) / (double)(reps - 1))) : 0;
  char cpu[256], commit[64], when[40];
  cpu_name(cpu, sizeof cpu);
  git_commit(commit, sizeof commit);
  xl_rfc3339(when, sizeof when, xl_wall());
  printf("{\"bench\":\"tokenizer_encode\",\"mb_s\":%.2f,\"mb_s_sd\":%.2f,\"tokens_s\":%.0f,"
         "\"bytes\":%zu,\"tokens\":%zu,\"reps\":%ld,\"threads\":1,\"cpu\":",
         mean, sd, mean * 1e6 * (double)n / (double)len, len, n, reps);
  json_str(cpu);
  printf(",\"commit\":");
  json_str(commit);
  printf(",\"time\":\"%s\",\"source\":", when);
  json_str(source);
  printf("}\n");
  free(source);
  free(def_model);
  free(ids);
  free(text);
  tok_free(t);
  xl_finish_stdout();
  return 0;
}
