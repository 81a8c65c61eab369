/* safetensors: validated mmap reader and atomic writer. See safetensors.h.
 * Layout: u64 little-endian header length N, N bytes of JSON header, then the data area;
 * each tensor's data_offsets [a, b) are relative to the data area. */
#include "io/safetensors.h"
#include "base/filekind.h"
#include "base/util.h"
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (256u << 20)   /* refuse absurd header lengths before allocating */

static const struct { const char *name; size_t size; } dtypes[ST_NDTYPE] = {
  [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
  [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
  [ST_U8] = {"U8", 1}, [ST_BOOL] = {"BOOL", 1},
};
const char *st_dtype_name(st_dtype t) { return t < ST_NDTYPE ? dtypes[t].name : "?"; }
size_t st_dtype_size(st_dtype t) { return t < ST_NDTYPE ? dtypes[t].size : 0; }

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return -1;
  double d = j->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
  *out = (uint64_t)d;
  return 0;
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}
static int cmp_size_pair(const void *a, const void *b) {
  const size_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* The __metadata__ object of the first file: string keys and values, copied. */
static int take_metadata(st_set *s, const cJSON *e, const char *path, char *err, size_t errlen) {
  for (cJSON *m = e->child; m; m = m->next) {
    if (!cJSON_IsString(m)) return xl_errf(err, errlen, "%s: __metadata__.%s is not a string", path, m->string);
    s->meta_keys = xl_realloc(s->meta_keys, sizeof(char *) * (s->nmeta + 1));
    s->meta_vals = xl_realloc(s->meta_vals, sizeof(char *) * (s->nmeta + 1));
    s->meta_keys[s->nmeta] = xl_strdup(m->string);
    s->meta_vals[s->nmeta++] = xl_strdup(m->valuestring);
  }
  return 0;
}

/* One header entry as a tensor whose bytes lie at data + data_offsets, inside the
 * data_size bytes of the data area; *range gets its [begin, end). 0, or -1 with the
 * reason in err. */
static int parse_tensor(const cJSON *e, const char *path, const char *data, size_t data_size, st_tensor *t,
                        uint64_t range[2], char *err, size_t errlen) {
  const char *name = e->string;
  cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
  cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
      cJSON_GetArraySize(off) != 2)
    return xl_errf(err, errlen, "%s: tensor '%s': entry needs dtype, shape and data_offsets [begin, end]", path, name);
  memset(t, 0, sizeof *t);
  t->dtype = ST_NDTYPE;
  for (int d = 0; d < ST_NDTYPE; d++)
    if (!strcmp(dt->valuestring, dtypes[d].name)) t->dtype = (st_dtype)d;
  if (t->dtype == ST_NDTYPE) return xl_errf(err, errlen, "%s: tensor '%s': unknown dtype '%s'", path, name, dt->valuestring);
  t->ndim = cJSON_GetArraySize(sh);
  if (t->ndim > ST_MAX_DIMS)
    return xl_errf(err, errlen, "%s: tensor '%s': %d dimensions (at most %d)", path, name, t->ndim, ST_MAX_DIMS);
  uint64_t numel = 1;
  int d = 0;
  for (cJSON *x = sh->child; x; x = x->next, d++) {
    uint64_t v;
    if (json_uint(x, &v)) return xl_errf(err, errlen, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
    t->shape[d] = (int64_t)v;
    if (v && numel > UINT64_MAX / 2 / v) return xl_errf(err, errlen, "%s: tensor '%s': shape overflows", path, name);
    numel *= v;
  }
  uint64_t a, b;
  if (json_uint(off->child, &a) || json_uint(off->child->next, &b) || a > b)
    return xl_errf(err, errlen, "%s: tensor '%s': data_offsets must be integers with begin <= end", path, name);
  if (b > data_size)
    return xl_errf(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu) run past the data area (%zu bytes; file truncated?)",
                   path, name, (unsigned long long)a, (unsigned long long)b, data_size);
  if (numel > (UINT64_MAX / 8) || b - a != numel * dtypes[t->dtype].size)
    return xl_errf(err, errlen, "%s: tensor '%s': %llu bytes in data_offsets, but shape and dtype %s need %llu", path, name,
                   (unsigned long long)(b - a), dtypes[t->dtype].name, (unsigned long long)(numel * dtypes[t->dtype].size));
  t->numel = (int64_t)numel;
  t->nbytes = (size_t)(b - a);
  t->data = data + a;
  range[0] = a;
  range[1] = b;
  return 0;
}

/* Maps one file and appends its tensors to the set. */
static int add_file(st_set *s, const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return xl_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st)) { close(fd); return xl_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno)); }
  size_t size = (size_t)st.st_size;
  if (size < 8) { close(fd); return xl_errf(err, errlen, "%s: truncated: %zu bytes, not even a header length", path, size); }
  void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return xl_errf(err, errlen, "%s: cannot mmap: %s", path, strerror(errno));

  uint64_t hlen = 0;
  const unsigned char *p = map;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
  if (hlen > ST_MAX_HEADER || hlen > size - 8) {
    munmap(map, size);
    return xl_errf(err, errlen, "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                (unsigned long long)hlen, size);
  }
  size_t data_start = 8 + (size_t)hlen, data_size = size - data_start;
  cJSON *h = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
  if (!h || !cJSON_IsObject(h)) {
    cJSON_Delete(h);
    munmap(map, size);
    return xl_errf(err, errlen, "%s: header is not a JSON object", path);
  }
  int fi = s->nfiles;
  s->files = xl_realloc(s->files, sizeof *s->files * (fi + 1));
  s->files[fi] = (st_file){xl_strdup(path), map, size, data_start};
  s->nfiles++;

  int count = 0;
  for (cJSON *e = h->child; e; e = e->next) count++;
  size_t (*ranges)[2] = xl_calloc(count ? count : 1, sizeof *ranges);
  int nr = 0, rc = 0;
  s->tensors = xl_realloc(s->tensors, sizeof *s->tensors * (s->ntensors + count));
  s->names = xl_realloc(s->names, sizeof *s->names * (s->ntensors + count));

  for (cJSON *e = h->child; e && !rc; e = e->next) {
    if (!strcmp(e->string, "__metadata__")) {
      if (!cJSON_IsObject(e)) rc = xl_errf(err, errlen, "%s: __metadata__ is not an object", path);
      else if (fi == 0) rc = take_metadata(s, e, path, err, errlen);
      continue;
    }
    st_tensor t;
    uint64_t r[2] = {0, 0};
    if ((rc = parse_tensor(e, path, (const char *)map + data_start, data_size, &t, r, err, errlen))) break;
    t.file = fi;
    s->names[s->ntensors] = xl_strdup(e->string);
    t.name = s->names[s->ntensors];
    s->tensors[s->ntensors++] = t;
    if (r[1] > r[0]) { ranges[nr][0] = (size_t)r[0]; ranges[nr][1] = (size_t)r[1]; nr++; }
  }
  if (!rc) {
    qsort(ranges, nr, sizeof *ranges, cmp_size_pair);
    for (int i = 1; i < nr && !rc; i++)
      if (ranges[i][0] < ranges[i - 1][1])
        rc = xl_errf(err, errlen, "%s: tensors overlap: data range [%zu, %zu) and [%zu, %zu)", path, ranges[i - 1][0],
                  ranges[i - 1][1], ranges[i][0], ranges[i][1]);
  }
  free(ranges);
  cJSON_Delete(h);
  /* Keep the tensor table sorted for st_find's binary search. */
  qsort(s->tensors, s->ntensors, sizeof *s->tensors, cmp_tensor_name);
  for (int i = 1; i < s->ntensors && !rc; i++)
    if (!strcmp(s->tensors[i].name, s->tensors[i - 1].name))
      rc = xl_errf(err, errlen, "%s: tensor '%s' appears twice", path, s->tensors[i].name);
  return rc;
}

const st_tensor *st_find(const st_set *s, const char *name) {
  size_t lo = 0, hi = (size_t)s->ntensors;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(s->tensors[mid].name, name);
    if (!c) return &s->tensors[mid];
    if (c < 0) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

const char *st_meta(const st_set *s, const char *key) {
  for (int i = 0; i < s->nmeta; i++)
    if (!strcmp(s->meta_keys[i], key)) return s->meta_vals[i];
  return NULL;
}

int st_open_file(st_set *s, const char *path, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  if (add_file(s, path, err, errlen)) { st_close(s); return -1; }
  return 0;
}

int st_open_dir(st_set *s, const char *dir, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  char *idx = xl_path_join(dir, "model.safetensors.index.json");
  if (!xl_exists(idx)) {
    free(idx);
    char *one = xl_path_join(dir, "model.safetensors");
    int rc = st_open_file(s, one, err, errlen);
    free(one);
    return rc;
  }
  size_t len;
  char *text = xl_read_file(idx, &len);
  if (!text) { xl_errf(err, errlen, "%s: cannot read: %s", idx, strerror(errno)); free(idx); return -1; }
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
  int rc = 0;
  if (!cJSON_IsObject(wm)) rc = xl_errf(err, errlen, "%s: not JSON with a \"weight_map\" object", idx);
  /* Open each distinct shard once, in order of first mention. */
  for (cJSON *e = wm ? wm->child : NULL; e && !rc; e = e->next) {
    if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !*e->valuestring) {
      rc = xl_errf(err, errlen, "%s: weight_map[\"%s\"] must be a shard file name in the same directory", idx, e->string);
      break;
    }
    int seen = 0;
    for (cJSON *f = wm->child; f != e; f = f->next)
      if (!strcmp(f->valuestring, e->valuestring)) { seen = 1; break; }
    if (seen) continue;
    char *shard = xl_path_join(dir, e->valuestring);
    if (!xl_exists(shard)) rc = xl_errf(err, errlen, "%s: shard '%s' listed in the index is missing", idx, e->valuestring);
    else rc = add_file(s, shard, err, errlen);
    free(shard);
  }
  /* Every mapped tensor must be in the shard the index names. */
  for (cJSON *e = wm ? wm->child : NULL; e && !rc; e = e->next) {
    const st_tensor *t = st_find(s, e->string);
    if (!t) { rc = xl_errf(err, errlen, "%s: tensor '%s' is listed for shard '%s' but absent from it", idx, e->string, e->valuestring); break; }
    const char *base = strrchr(s->files[t->file].path, '/');
    base = base ? base + 1 : s->files[t->file].path;
    if (strcmp(base, e->valuestring))
      rc = xl_errf(err, errlen, "%s: tensor '%s' is listed for shard '%s' but found in '%s'", idx, e->string, e->valuestring, base);
  }
  cJSON_Delete(j);
  free(idx);
  if (rc) st_close(s);
  return rc;
}

void st_close(st_set *s) {
  for (int i = 0; i < s->nfiles; i++) {
    munmap(s->files[i].map, s->files[i].size);
    free(s->files[i].path);
  }
  for (int i = 0; i < s->ntensors; i++) free(s->names[i]);
  for (int i = 0; i < s->nmeta; i++) { free(s->meta_keys[i]); free(s->meta_vals[i]); }
  free(s->files); free(s->tensors); free(s->names); free(s->meta_keys); free(s->meta_vals);
  memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

void st_writer_init(st_writer *w) { memset(w, 0, sizeof *w); }

static struct st_wtensor *writer_push(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape) {
  if (w->n == w->cap) { w->cap = w->cap ? w->cap * 2 : 16; w->t = xl_realloc(w->t, sizeof *w->t * w->cap); }
  struct st_wtensor *t = &w->t[w->n++];
  memset(t, 0, sizeof *t);
  t->name = xl_strdup(name);
  t->dtype = dtype;
  t->ndim = ndim;
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; numel *= (size_t)shape[i]; }
  t->nbytes = numel * st_dtype_size(dtype);
  return t;
}
void st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data) {
  writer_push(w, name, dtype, ndim, shape)->data = data;
}
void st_writer_add_gen(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                       void (*gen)(void *, void *, size_t, size_t), void *ctx) {
  struct st_wtensor *t = writer_push(w, name, dtype, ndim, shape);
  t->gen = gen;
  t->ctx = ctx;
}
void st_writer_meta(st_writer *w, const char *key, const char *value) {
  w->mk = xl_realloc(w->mk, sizeof(char *) * (w->nm + 1));
  w->mv = xl_realloc(w->mv, sizeof(char *) * (w->nm + 1));
  w->mk[w->nm] = xl_strdup(key);
  w->mv[w->nm++] = xl_strdup(value);
}

int st_writer_write(st_writer *w, const char *path, char *err, size_t errlen) {
  cJSON *h = cJSON_CreateObject();
  if (w->nm) {
    cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
    for (int i = 0; i < w->nm; i++) cJSON_AddStringToObject(m, w->mk[i], w->mv[i]);
  }
  size_t off = 0;
  for (int i = 0; i < w->n; i++) {
    struct st_wtensor *t = &w->t[i];
    cJSON *e = cJSON_AddObjectToObject(h, t->name);
    cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dtype));
    cJSON *sh = cJSON_AddArrayToObject(e, "shape");
    for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
    cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t->nbytes)));
    off += t->nbytes;
  }
  char *js = cJSON_PrintUnformatted(h);
  cJSON_Delete(h);
  size_t jl = strlen(js), padded = (jl + 7) & ~(size_t)7;   /* keep the data area 8-aligned */
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  const char *fmt = NULL;   /* what the file says it is: replaces only a file of its format */
  for (int i = 0; i < w->nm; i++)
    if (!strcmp(w->mk[i], "format")) fmt = w->mv[i];
  xl_atomic a;
  if (xl_kind_check_msg(path, XK_SAFETENSORS, fmt, err, errlen)) { free(js); return -1; }
  if (xl_atomic_open(&a, path)) { free(js); return xl_errf(err, errlen, "%s: cannot create: %s", path, strerror(errno)); }
  int bad = fwrite(len8, 1, 8, a.f) != 8 || fwrite(js, 1, jl, a.f) != jl;
  for (size_t i = jl; i < padded && !bad; i++) bad = fputc(' ', a.f) == EOF;
  free(js);
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = NULL;
  for (int i = 0; i < w->n && !bad; i++) {
    struct st_wtensor *t = &w->t[i];
    if (t->data) { bad = t->nbytes && fwrite(t->data, 1, t->nbytes, a.f) != t->nbytes; continue; }
    if (!buf) buf = xl_malloc(CHUNK);
    for (size_t o = 0; o < t->nbytes && !bad; o += CHUNK) {
      size_t n = t->nbytes - o < CHUNK ? t->nbytes - o : CHUNK;
      t->gen(t->ctx, buf, o, n);
      bad = fwrite(buf, 1, n, a.f) != n;
    }
  }
  free(buf);
  if (bad) { int e = errno; xl_atomic_abort(&a); return xl_errf(err, errlen, "%s: write failed: %s", path, strerror(e)); }
  if (xl_atomic_commit(&a)) return xl_errf(err, errlen, "%s: write failed: %s", path, strerror(errno));
  return 0;
}

void st_writer_free(st_writer *w) {
  for (int i = 0; i < w->n; i++) free(w->t[i].name);
  for (int i = 0; i < w->nm; i++) { free(w->mk[i]); free(w->mv[i]); }
  free(w->t); free(w->mk); free(w->mv);
  memset(w, 0, sizeof *w);
}
