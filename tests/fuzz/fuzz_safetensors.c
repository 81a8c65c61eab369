/* fuzz_safetensors: the safetensors reader (io/safetensors.h, st_open_file) on arbitrary
 * bytes. The input is written to a file in the harness's temporary directory and opened;
 * a file that opens must describe only tensors that lie inside the data area, with
 * nbytes = numel * dtype size, sorted and unique names (st_find finds each one), and
 * string metadata. Every byte of every tensor is read, so a bad offset shows up as a
 * crash rather than going unnoticed. */
#include "fuzz_common.h"
#include "io/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fz_tmpdir();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fz_write("in.safetensors", data, size);
  st_set s;
  char err[1024];
  if (st_open_file(&s, path, err, sizeof err)) {
    FZ_CHECK(err[0], "refused without a message");
    return 0;
  }
  FZ_CHECK(s.nfiles == 1, "%d files", s.nfiles);
  const st_file *f = &s.files[0];
  FZ_CHECK(f->size == size && f->data_start >= 8 && f->data_start <= f->size, "file %zu/%zu", f->data_start, f->size);
  const unsigned char *lo = (const unsigned char *)f->map + f->data_start, *hi = (const unsigned char *)f->map + f->size;
  unsigned sum = 0;
  for (int i = 0; i < s.ntensors; i++) {
    const st_tensor *t = &s.tensors[i];
    FZ_CHECK(t->dtype < ST_NDTYPE && t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "tensor %s", t->name);
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) { FZ_CHECK(t->shape[d] >= 0, "shape"); numel *= t->shape[d]; }
    FZ_CHECK(numel == t->numel && (size_t)numel * st_dtype_size(t->dtype) == t->nbytes, "size of %s", t->name);
    const unsigned char *b = t->data;
    FZ_CHECK(b >= lo && t->nbytes <= (size_t)(hi - b), "tensor %s outside the data area", t->name);
    for (size_t k = 0; k < t->nbytes; k++) sum += b[k];
    FZ_CHECK(st_find(&s, t->name) == t, "st_find(%s)", t->name);
    if (i) FZ_CHECK(strcmp(s.tensors[i - 1].name, t->name) < 0, "names not sorted and unique");
  }
  for (int i = 0; i < s.nmeta; i++) FZ_CHECK(st_meta(&s, s.meta_keys[i]) != NULL, "meta %s", s.meta_keys[i]);
  FZ_CHECK(st_find(&s, "\x01 no such tensor") == NULL, "found a tensor that is not there");
  st_close(&s);
  fz_sink += sum;
  return 0;
}
