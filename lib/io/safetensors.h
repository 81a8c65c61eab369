/* safetensors: read (by mmap) and write the safetensors format, for model weights, golden
 * files, state files and logits. A set may span several shard files listed by a
 * model.safetensors.index.json. Every header is validated before use (JSON, dtypes, shapes,
 * offsets inside the file, no overlapping tensors) so that a truncated or hostile file is
 * reported, never read out of bounds.
 * Not for: interpreting tensors (see model.c) or converting dtypes (see kernels.h). */
#ifndef XL_SAFETENSORS_H
#define XL_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_NDTYPE } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
  const char *name;          /* points into the set's own storage */
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  int64_t numel;
  const void *data;          /* inside a read-only mapping; may be unaligned */
  size_t nbytes;
  int file;                  /* index into the set's files */
} st_tensor;

typedef struct {
  char *path;
  void *map;                 /* whole file, PROT_READ */
  size_t size;
  size_t data_start;         /* 8 + header length */
} st_file;

typedef struct {
  st_file *files;   int nfiles;
  st_tensor *tensors; int ntensors;   /* sorted by name */
  char **names;                       /* owned storage behind tensors[i].name */
  char **meta_keys, **meta_vals; int nmeta;   /* __metadata__ of the first file */
} st_set;

/* Opens a single .safetensors file. 0 ok; -1 with a message in err naming the file and problem. */
int st_open_file(st_set *s, const char *path, char *err, size_t errlen);
/* Opens a model directory: model.safetensors.index.json (shards) if present, else model.safetensors. */
int st_open_dir(st_set *s, const char *dir, char *err, size_t errlen);
void st_close(st_set *s);

const st_tensor *st_find(const st_set *s, const char *name);
const char *st_meta(const st_set *s, const char *key);   /* NULL if absent */
const char *st_dtype_name(st_dtype t);
size_t st_dtype_size(st_dtype t);

/* Writing: collect tensors (the data is not copied: it must live until st_writer_write),
 * then write the file atomically (temp + rename). */
typedef struct {
  struct st_wtensor {
    char *name; st_dtype dtype; int ndim; int64_t shape[ST_MAX_DIMS]; size_t nbytes;
    const void *data;                                              /* or, when NULL: */
    void (*gen)(void *ctx, void *buf, size_t byte_off, size_t nbytes); void *ctx;  /* streamed generator */
  } *t;
  int n, cap;
  char **mk, **mv; int nm;
} st_writer;
void st_writer_init(st_writer *w);
void st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* A tensor whose bytes are produced in pieces by gen(ctx, buf, byte_offset, nbytes) while
 * writing, so files larger than memory (a 7B checkpoint) can be written. */
void st_writer_add_gen(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                       void (*gen)(void *ctx, void *buf, size_t byte_off, size_t nbytes), void *ctx);
void st_writer_meta(st_writer *w, const char *key, const char *value);
int  st_writer_write(st_writer *w, const char *path, char *err, size_t errlen);
void st_writer_free(st_writer *w);

#endif
