/* Hostile safetensors files: thousands of deterministic random mutations of a small real
 * checkpoint's bytes (header and data), each of which must either open cleanly with every
 * tensor inside the file or be refused with a message: never a crash or an out-of-bounds
 * read (run under ASan by make check, which turns any such read into a failure).
 * The long version is `XL_FUZZ_ITERS=200000 build/tests/test_st_fuzz`. */
#include "engine/engine.h"
#include "io/safetensors.h"
#include "testlib.h"
#include "base/util.h"
#include <stdint.h>
#include <unistd.h>

static uint64_t rng = 0x1234abcdULL;
static uint64_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng;
}

int main(void) {
  char path[4096], tmp[4096], err[512];
  snprintf(path, sizeof path, "%s/fixtures-v1/v1-m-only/model.safetensors", tl_golden_dir());
  size_t len;
  unsigned char *orig = (unsigned char *)xl_read_file(path, &len);
  CHECK(orig && len > 1000, "fixture read (%zu bytes)", len);
  if (!orig) return tl_done();
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | orig[i];
  const char *it = getenv("XL_FUZZ_ITERS");
  long iters = it ? atol(it) : 1500;
  snprintf(tmp, sizeof tmp, "/tmp/xl_st_fuzz_%d.safetensors", (int)getpid());
  unsigned char *buf = xl_malloc(len + 64);
  long opened = 0, refused = 0, bad = 0;
  static const char *tokens[] = {"\"F32\"", "\"BF16\"", "\"I64\"", "99999999999", "-1", "1e30", "[]", "{}", "null", "\"\"", "1.5", "0"};
  for (long k = 0; k < iters; k++) {
    size_t n = len;
    memcpy(buf, orig, len);
    int kind = (int)(next() % 6);
    if (kind == 0) {            /* flip bytes inside the header */
      for (int j = 0, m = 1 + (int)(next() % 8); j < m; j++) buf[8 + next() % hlen] ^= (unsigned char)(1u << (next() % 8));
    } else if (kind == 1) {     /* truncate anywhere */
      n = (size_t)(next() % len);
    } else if (kind == 2) {     /* change the header length */
      uint64_t h = next() % 4 == 0 ? next() : hlen + (next() % 64) - 32;
      for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(h >> (8 * i));
    } else if (kind == 3) {     /* splice a JSON token over a digit run or quote in the header */
      size_t at = 8 + next() % hlen;
      const char *t = tokens[next() % (sizeof tokens / sizeof *tokens)];
      size_t tl = strlen(t);
      if (at + tl < 8 + hlen) memcpy(buf + at, t, tl);
    } else if (kind == 4) {     /* replace header bytes with printable junk */
      size_t at = 8 + next() % hlen;
      for (int j = 0; j < 6 && at + j < 8 + hlen; j++) buf[at + j] = (unsigned char)(32 + next() % 95);
    } else {                    /* garbage data area: must still open (values are not validated) */
      for (size_t j = 8 + hlen; j < len; j += 1 + next() % 997) buf[j] = (unsigned char)next();
    }
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f)) { bad++; break; }
    st_set s;
    if (st_open_file(&s, tmp, err, sizeof err) == 0) {
      opened++;
      /* every tensor must lie inside the mapping: touch its first and last byte */
      volatile unsigned char sink = 0;
      for (int i = 0; i < s.ntensors; i++) {
        const st_tensor *t = &s.tensors[i];
        const unsigned char *p = t->data, *base = s.files[t->file].map;
        if (t->nbytes) {
          if (p < base || p + t->nbytes > base + s.files[t->file].size) bad++;
          sink ^= p[0] ^ p[t->nbytes - 1];
        }
      }
      (void)sink;
      st_close(&s);
    } else {
      refused++;
      if (!strstr(err, tmp)) bad++;   /* the message names the file */
    }
  }
  unlink(tmp);
  CHECK(bad == 0, "%ld mutations: %ld opened, %ld refused with a message naming the file, %ld bad", iters, opened, refused, bad);
  CHECK(refused > iters / 4, "most header mutations are caught (%ld refused)", refused);
  free(buf);
  free(orig);
  return tl_done();
}
