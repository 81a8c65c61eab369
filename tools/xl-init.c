/* xl-init: writes a random-weight xLSTM checkpoint in the Hugging Face layout (config.json,
 * model.safetensors or shards + index, generation_config.json, and the default model's
 * tokenizer when the vocabulary fits), for benchmarks and tests of shapes we have no
 * trained weights for (the 7B, 1.3B and 350M presets).
 * Weights are drawn from a counter-based generator: element j of a tensor is a pure
 * function of (seed, tensor name, j), so any byte range is produced independently and
 * the tensors stream to disk without the model ever being held in memory.
 * The draws exercise every part of the cell: projections ~ N(0, 1/fan_in), norm weights
 * near 1, input-gate biases in [-2, 0], forget-gate biases in [3, 6] (mostly open).
 * Not for: trained weights or conversion (the files are the same format either way). */
#include "cli/version.h"
#include "engine/blasenv.h"
#include "engine/config.h"
#include "engine/kernels.h"
#include "engine/engine.h"
#include "engine/v1/v1.h"
#include "engine/checkpoint.h"
#include "engine/pool.h"
#include "io/records.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"
#include "base/filekind.h"
#include "base/util.h"
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void usage(FILE *f) {
  fputs(
      "Usage: xl-init -o DIR [--preset tiny|350m|1.3b|7b | --config FILE] [options]\n"
      "Write a random-weight xLSTM checkpoint (7B-family layout) to DIR.\n"
      "\n"
      "  -o, --output DIR       the checkpoint directory to write (created if needed)\n"
      "  --preset NAME          tiny (D 256, 6 blocks, 4 heads, vocab 4096; default),\n"
      "                         350m (D 1024, 24 blocks, 4 heads), 1.3b (D 2048, 24 blocks,\n"
      "                         4 heads), 7b (D 4096, 32 blocks, 8 heads); vocab 50304 but tiny\n"
      "  --config FILE          start from this config.json instead of a preset\n"
      "  -D, --hidden-size N    model width      --blocks N     number of blocks\n"
      "  --heads N              heads            --vocab N      vocabulary size\n"
      "  --qk-factor X  --v-factor X  --ffn-factor X    projection factors\n"
      "  --bias yes|no          biases everywhere (use_bias)\n"
      "  --weight-mode single|fused   separate or fused projection tensors\n"
      "  --tie yes|no           tie the LM head to the embedding\n"
      "  --chunk-size N         the checkpoint's default prefill chunk\n"
      "  --dtype bf16|f32|f16   stored weight dtype (default bf16)\n"
      "  --seed N               random seed (default 0); same seed, same bytes\n"
      "  --shard-mb N           split into shards of at most N MB + model.safetensors.index.json\n"
      "  --tokenizer FILE|none  tokenizer.json to copy (default: the default model's, when\n"
      "                         its vocabulary fits in --vocab)\n"
      "  --arch large|v1        7B-family layout (default) or the original xLSTM (mLSTM v1 and\n"
      "                         sLSTM blocks) with the preset's D, blocks, heads and vocab\n"
      "  --slstm-at LIST        v1: comma list of sLSTM block indices (default none)\n"
      "  --slstm-heads N        v1: sLSTM heads (default --heads)\n"
      "  --ffn yes|no           v1: gated FFN after the sLSTM blocks (default yes)\n"
      "  -q, --quiet            no progress on stderr\n"
      "  -h, --help             this help\n"
      "\n"
      "stdout: one NDJSON line {\"tool\":\"xl-init\",\"dir\":..,\"params\":..,\"bytes\":..,\"seconds\":..}.\n"
      "Exit 0 ok, 1 error, 2 usage error.\n",
      f);
}

/* ---- the generator ---- */

static inline uint64_t mix64(uint64_t z) {   /* splitmix64 finaliser */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

typedef enum { G_NORMAL, G_UNIFORM } gen_kind;

/* One tensor's recipe: value = mean + std * z (G_NORMAL) or uniform in [a, b]. */
typedef struct {
  char name[160];
  int64_t shape[ST_MAX_DIMS];
  int ndim;
  gen_kind kind;
  double a, b;          /* NORMAL: mean, std; UNIFORM: lo, hi */
  uint64_t key;
  st_dtype dtype;
  size_t nbytes;
} tspec;

/* Approximately normal: the sum of four 16-bit uniforms, rescaled to unit variance
 * (an Irwin-Hall draw: cheap, bounded at 3.46 sigma, plenty for random weights). */
static inline float draw(const tspec *t, uint64_t j) {
  uint64_t h = mix64(t->key + (j + 1) * 0x9e3779b97f4a7c15ULL);
  if (t->kind == G_UNIFORM) return (float)(t->a + (t->b - t->a) * ((double)(h >> 11) * 0x1.0p-53));
  double s = (double)(h & 0xffff) + (double)((h >> 16) & 0xffff) + (double)((h >> 32) & 0xffff) + (double)(h >> 48);
  double z = (s + 2.0) / 65536.0 - 2.0;   /* each uniform (u + 0.5) / 65536 */
  return (float)(t->a + t->b * z * 1.7320508075688772);
}

static void put(const tspec *t, uint64_t j, unsigned char *dst) {
  float v = draw(t, j);
  if (t->dtype == ST_F32) memcpy(dst, &v, 4);
  else {
    uint16_t h = t->dtype == ST_BF16 ? xl_f32_to_bf16(v) : xl_f32_to_f16(v);
    memcpy(dst, &h, 2);
  }
}

static xl_pool *g_pool;
static size_t g_done, g_total;
static double g_t0, g_last;
static int g_quiet;

typedef struct { const tspec *t; unsigned char *buf; size_t off, n; int ntasks; } fill_ctx;

/* Fills bytes [off, off + n) of the tensor; element-aligned in the middle, partial at the edges. */
static void fill_task(void *vctx, int task, int worker) {
  const fill_ctx *c = vctx;
  size_t es = st_dtype_size(c->t->dtype);
  size_t e0 = c->off / es, e1 = (c->off + c->n + es - 1) / es, ne = e1 - e0;
  size_t a = e0 + ne * (size_t)task / (size_t)c->ntasks, b = e0 + ne * (size_t)(task + 1) / (size_t)c->ntasks;
  for (size_t e = a; e < b; e++) {
    size_t lo = e * es, hi = lo + es;
    if (lo >= c->off && hi <= c->off + c->n) { put(c->t, e, c->buf + (lo - c->off)); continue; }
    unsigned char tmp[4];
    put(c->t, e, tmp);
    for (size_t k = lo; k < hi; k++)
      if (k >= c->off && k < c->off + c->n) c->buf[k - c->off] = tmp[k - lo];
  }
}

static void gen_bytes(void *ctx, void *buf, size_t off, size_t n) {
  fill_ctx c = {ctx, buf, off, n, 1};
  if (n >= 65536) c.ntasks = xl_pool_size(g_pool) * 4;
  xl_pool_run(g_pool, c.ntasks, fill_task, &c);
  g_done += n;
  double now = xl_now();
  if (!g_quiet && g_total > (256u << 20) && (now - g_last > 2.0 || g_done == g_total)) {
    g_last = now;
    fprintf(stderr, "xl-init: %.2f / %.2f GB written (%.0f s)\n", g_done / 1e9, g_total / 1e9, now - g_t0);
  }
}

/* ---- the tensor list of a 7B-family checkpoint ---- */

typedef struct { tspec *t; int n, cap; uint64_t seed; st_dtype dtype; } tlist;

static void add_nd(tlist *L, const char *name, int ndim, const int64_t *shape, gen_kind kind, double a, double b) {
  if (L->n == L->cap) { L->cap = L->cap ? 2 * L->cap : 64; L->t = xl_realloc(L->t, sizeof *L->t * (size_t)L->cap); }
  tspec *t = &L->t[L->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) { t->shape[d] = shape[d]; numel *= (size_t)shape[d]; }
  t->kind = kind;
  t->a = a;
  t->b = b;
  t->dtype = L->dtype;
  t->key = mix64(L->seed ^ xl_fnv1a(XL_FNV_INIT, name, strlen(name)));
  t->nbytes = numel * st_dtype_size(L->dtype);
}
static void add(tlist *L, const char *name, int ndim, int64_t r, int64_t c, gen_kind kind, double a, double b) {
  int64_t shape[2] = {r, c};
  add_nd(L, name, ndim, shape, kind, a, b);
}

/* xlstm_v1: the tensor list and the init recipe come from model_v1.c, so the file always
 * matches what the loader binds. */
typedef struct { tlist *L; int D; } v1_ctx;
static void v1_tensor(void *vctx, const char *name, int ndim, const int64_t *shape) {
  v1_ctx *c = vctx;
  float mean, sd;
  xl_v1_tensor_init(name, c->D, &mean, &sd);
  add_nd(c->L, name, ndim, shape, G_NORMAL, mean, sd);
}

/* A projection [rows, cols] ~ N(0, 1/cols), and its bias when the model has biases. */
static void proj(tlist *L, const char *p, const char *nm, int rows, int cols, int bias) {
  char n[200];
  snprintf(n, sizeof n, "%s%s.weight", p, nm);
  add(L, n, 2, rows, cols, G_NORMAL, 0.0, 1.0 / sqrt((double)cols));
  if (bias) { snprintf(n, sizeof n, "%s%s.bias", p, nm); add(L, n, 1, rows, 0, G_NORMAL, 0.0, 0.02); }
}
static void normw(tlist *L, const char *p, const char *nm, int n_, int bias) {
  char n[200];
  snprintf(n, sizeof n, "%s%s.weight", p, nm);
  add(L, n, 1, n_, 0, G_NORMAL, 1.0, 0.1);
  if (bias) { snprintf(n, sizeof n, "%s%s.bias", p, nm); add(L, n, 1, n_, 0, G_NORMAL, 0.0, 0.02); }
}

static void build_tensors(tlist *L, const xl_config *c) {
  int D = c->D, QK = c->qk_dim, VD = c->v_dim, NH = c->n_heads, F = c->ffn, bias = c->use_bias;
  char p[96], n[200];
  add(L, "backbone.embeddings.weight", 2, c->vocab, D, G_NORMAL, 0.0, 0.02);
  for (int i = 0; i < c->n_blocks; i++) {
    snprintf(p, sizeof p, "backbone.blocks.%d.", i);
    normw(L, p, "norm_mlstm", D, bias);
    if (c->fused) {
      proj(L, p, "mlstm_layer.qkv_opreact", 2 * QK + 2 * VD, D, bias);
      snprintf(n, sizeof n, "%smlstm_layer.ifgate_preact.weight", p);
      add(L, n, 2, 2 * NH, D, G_NORMAL, 0.0, 1.0 / sqrt((double)D));
      /* one bias vector for both gates: the first half input gates, the second forget gates.
       * A single uniform range cannot express both, so draw it as [-2, 6] and accept it. */
      snprintf(n, sizeof n, "%smlstm_layer.ifgate_preact.bias", p);
      add(L, n, 1, 2 * NH, 0, G_UNIFORM, -2.0, 6.0);
    } else {
      proj(L, p, "mlstm_layer.q", QK, D, bias);
      proj(L, p, "mlstm_layer.k", QK, D, bias);
      proj(L, p, "mlstm_layer.v", VD, D, bias);
      proj(L, p, "mlstm_layer.ogate_preact", VD, D, bias);
      snprintf(n, sizeof n, "%smlstm_layer.igate_preact.weight", p);
      add(L, n, 2, NH, D, G_NORMAL, 0.0, 1.0 / sqrt((double)D));
      snprintf(n, sizeof n, "%smlstm_layer.igate_preact.bias", p);
      add(L, n, 1, NH, 0, G_UNIFORM, -2.0, 0.0);
      snprintf(n, sizeof n, "%smlstm_layer.fgate_preact.weight", p);
      add(L, n, 2, NH, D, G_NORMAL, 0.0, 1.0 / sqrt((double)D));
      snprintf(n, sizeof n, "%smlstm_layer.fgate_preact.bias", p);
      add(L, n, 1, NH, 0, G_UNIFORM, 3.0, 6.0);
    }
    normw(L, p, "mlstm_layer.multihead_norm", VD, bias);
    proj(L, p, "mlstm_layer.out_proj", D, VD, bias);
    normw(L, p, "norm_ffn", D, bias);
    if (c->fused) proj(L, p, "ffn.proj_up_gate_z", 2 * F, D, bias);
    else {
      proj(L, p, "ffn.proj_up_gate", F, D, bias);
      proj(L, p, "ffn.proj_up", F, D, bias);
    }
    proj(L, p, "ffn.proj_down", D, F, bias);
  }
  if (c->add_out_norm) normw(L, "backbone.", "out_norm", D, 0);
  if (!c->tie_embeddings) add(L, "lm_head.weight", 2, c->vocab, D, G_NORMAL, 0.0, 1.0 / sqrt((double)D));
}

/* ---- config ---- */

static cJSON *preset_config(const char *name) {
  int D, B, H, V = 50304;
  if (!strcmp(name, "tiny")) D = 256, B = 6, H = 4, V = 4096;
  else if (!strcmp(name, "350m")) D = 1024, B = 24, H = 4;
  else if (!strcmp(name, "1.3b")) D = 2048, B = 24, H = 4;
  else if (!strcmp(name, "7b")) D = 4096, B = 32, H = 8;
  else xl_usage_error("--preset: '%s' is not tiny, 350m, 1.3b or 7b", name);
  cJSON *j = cJSON_CreateObject();
  cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
  cJSON_AddItemToArray(arch, cJSON_CreateString("xLSTMForCausalLM"));
  cJSON_AddStringToObject(j, "model_type", "xlstm");
  cJSON_AddNumberToObject(j, "hidden_size", D);
  cJSON_AddNumberToObject(j, "embedding_dim", D);
  cJSON_AddNumberToObject(j, "num_hidden_layers", B);
  cJSON_AddNumberToObject(j, "num_blocks", B);
  cJSON_AddNumberToObject(j, "num_heads", H);
  cJSON_AddNumberToObject(j, "vocab_size", V);
  cJSON_AddNumberToObject(j, "qk_dim_factor", 0.5);
  cJSON_AddNumberToObject(j, "v_dim_factor", 1.0);
  cJSON_AddNumberToObject(j, "ffn_proj_factor", 2.667);
  cJSON_AddNumberToObject(j, "ffn_round_up_to_multiple_of", 64);
  cJSON_AddNumberToObject(j, "chunk_size", 64);
  cJSON_AddNumberToObject(j, "gate_soft_cap", 15.0);
  cJSON_AddNumberToObject(j, "output_logit_soft_cap", 30.0);
  cJSON_AddNumberToObject(j, "norm_eps", 1e-6);
  cJSON_AddNumberToObject(j, "eps", 1e-6);
  cJSON_AddBoolToObject(j, "use_bias", 0);
  cJSON_AddBoolToObject(j, "add_out_norm", 1);
  cJSON_AddBoolToObject(j, "tie_word_embeddings", 0);
  cJSON_AddStringToObject(j, "weight_mode", "single");
  cJSON_AddNumberToObject(j, "bos_token_id", 0);
  cJSON_AddNumberToObject(j, "eos_token_id", 0);
  cJSON_AddNumberToObject(j, "pad_token_id", 1);
  cJSON_AddStringToObject(j, "mode", "inference");
  cJSON_AddStringToObject(j, "inference_state_dtype", "float32");
  cJSON_AddStringToObject(j, "chunkwise_kernel", "chunkwise--native_autograd");
  cJSON_AddStringToObject(j, "sequence_kernel", "native_sequence__native");
  cJSON_AddStringToObject(j, "step_kernel", "native");
  cJSON_AddBoolToObject(j, "return_last_states", 1);
  cJSON_AddBoolToObject(j, "use_cache", 1);
  return j;
}

static void set_num(cJSON *j, const char *key, double v) {
  cJSON_DeleteItemFromObjectCaseSensitive(j, key);
  cJSON_AddNumberToObject(j, key, v);
}
static void set_item(cJSON *j, const char *key, cJSON *v) {
  cJSON_DeleteItemFromObjectCaseSensitive(j, key);
  cJSON_AddItemToObject(j, key, v);
}
/* Hugging Face's xLSTMConfig is a strict dataclass: transformers 5.x refuses a float field
 * that holds a JSON integer ("v_dim_factor": 1), and cJSON prints 1.0 as 1. These keys are
 * written with a decimal point or an exponent whatever their value. */
static void floats_keep_point(cJSON *j) {
  static const char *keys[] = {"qk_dim_factor", "v_dim_factor", "ffn_proj_factor", "gate_soft_cap",
                               "output_logit_soft_cap", "norm_eps", "eps"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) continue;
    char buf[64];
    for (int p = 15; p <= 17; p++) {   /* the shortest form that reads back the same */
      snprintf(buf, sizeof buf, "%.*g", p, e->valuedouble);
      if (strtod(buf, NULL) == e->valuedouble) break;
    }
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
    cJSON_ReplaceItemInObjectCaseSensitive(j, keys[i], cJSON_CreateRaw(buf));
  }
}
static int yesno(const char *flag, const char *v) {
  if (!strcmp(v, "yes") || !strcmp(v, "true")) return 1;
  if (!strcmp(v, "no") || !strcmp(v, "false")) return 0;
  xl_usage_error("%s: '%s' is not yes or no", flag, v);
}

/* ---- output ---- */

/* Removes checkpoint files a previous run may have left that the new layout would not
 * overwrite (a stale index next to a new single file would win when loading). */
static void remove_stale(const char *dir, int sharded) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *n = e->d_name;
    int shard = !strncmp(n, "model-", 6) && strstr(n, "-of-") && strstr(n, ".safetensors");
    int stale = sharded ? !strcmp(n, "model.safetensors") || shard
                        : !strcmp(n, "model.safetensors.index.json") || shard;
    if (stale) {
      char *p = xl_path_join(dir, n);
      unlink(p);
      free(p);
    }
  }
  closedir(d);
}

static int write_shard(const tlist *L, int a, int b, const char *path, int64_t params, char *err, size_t errlen) {
  st_writer w;
  st_writer_init(&w);
  char buf[64];
  st_writer_meta(&w, "format", "pt");
  st_writer_meta(&w, "generator", "xl-init");
  snprintf(buf, sizeof buf, "%lld", (long long)params);
  st_writer_meta(&w, "total_parameters", buf);
  for (int i = a; i < b; i++)
    st_writer_add_gen(&w, L->t[i].name, L->t[i].dtype, L->t[i].ndim, L->t[i].shape, gen_bytes, &L->t[i]);
  int rc = st_writer_write(&w, path, err, errlen);
  st_writer_free(&w);
  return rc;
}

static int copy_file(const char *src, const char *dst) {
  size_t n;
  char *data = xl_read_file(src, &n);
  if (!data) return -1;
  int rc = xl_write_file_atomic(dst, data, n);
  free(data);
  return rc;
}

typedef struct {
  const char *out, *preset, *config, *dtype_s, *tok_path;
  long seed, shard_mb;
  int slstm_at[4096], n_slstm, arch_v1, s_heads, v1_ffn;
  cJSON *over;   /* flag overrides of config.json keys, applied last */
} init_args;

static void parse_slstm_at(init_args *g, const char *flag, const char *v) {
  g->n_slstm = 0;
  if (!strcmp(v, "none")) return;
  char *dup = xl_strdup(v), *save = NULL;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (g->n_slstm == 4096) xl_usage_error("--slstm-at: too many blocks");
    g->slstm_at[g->n_slstm++] = (int)xl_flag_long(flag, t, 0, 4095);
  }
  free(dup);
}

/* The flags that set config.json keys; 1 when argv[*i] was one. */
static int parse_config_flag(init_args *g, int argc, char **argv, int *i) {
  const char *a = argv[*i];
#define NEED() (*i + 1 < argc ? argv[++*i] : (xl_usage_error("%s needs a value", a), (char *)NULL))
  cJSON *o = g->over;
  if (!strcmp(a, "-D") || !strcmp(a, "--hidden-size")) {
    long v = xl_flag_long(a, NEED(), 1, 1 << 20);
    set_num(o, "hidden_size", (double)v);
    set_num(o, "embedding_dim", (double)v);
  } else if (!strcmp(a, "--blocks")) {
    long v = xl_flag_long(a, NEED(), 1, 4096);
    set_num(o, "num_hidden_layers", (double)v);
    set_num(o, "num_blocks", (double)v);
  } else if (!strcmp(a, "--heads")) set_num(o, "num_heads", (double)xl_flag_long(a, NEED(), 1, 4096));
  else if (!strcmp(a, "--vocab")) set_num(o, "vocab_size", (double)xl_flag_long(a, NEED(), 1, 1 << 24));
  else if (!strcmp(a, "--chunk-size")) set_num(o, "chunk_size", (double)xl_flag_long(a, NEED(), 1, XL_CHUNK_MAX));
  else if (!strcmp(a, "--qk-factor")) set_num(o, "qk_dim_factor", xl_flag_double(a, NEED(), 1e-6, 64));
  else if (!strcmp(a, "--v-factor")) set_num(o, "v_dim_factor", xl_flag_double(a, NEED(), 1e-6, 64));
  else if (!strcmp(a, "--ffn-factor")) set_num(o, "ffn_proj_factor", xl_flag_double(a, NEED(), 1e-6, 64));
  else if (!strcmp(a, "--bias")) set_item(o, "use_bias", cJSON_CreateBool(yesno(a, NEED())));
  else if (!strcmp(a, "--tie")) set_item(o, "tie_word_embeddings", cJSON_CreateBool(yesno(a, NEED())));
  else if (!strcmp(a, "--weight-mode")) {
    const char *v = NEED();
    if (strcmp(v, "single") && strcmp(v, "fused")) xl_usage_error("--weight-mode: '%s' is not single or fused", v);
    set_item(o, "weight_mode", cJSON_CreateString(v));
  } else return 0;
  return 1;
#undef NEED
}

static void parse_args(init_args *g, int argc, char **argv) {
  memset(g, 0, sizeof *g);
  g->dtype_s = "bf16", g->v1_ffn = 1;
  g->over = cJSON_CreateObject();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define NEED() (i + 1 < argc ? argv[++i] : (xl_usage_error("%s needs a value", a), (char *)NULL))
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); xl_finish_stdout(); exit(0); }
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) g->out = NEED();
    else if (!strcmp(a, "--preset")) g->preset = NEED();
    else if (!strcmp(a, "--config")) g->config = NEED();
    else if (!strcmp(a, "--dtype")) g->dtype_s = NEED();
    else if (!strcmp(a, "--seed")) g->seed = xl_flag_long(a, NEED(), 0, 1L << 62);
    else if (!strcmp(a, "--shard-mb")) g->shard_mb = xl_flag_long(a, NEED(), 1, 1L << 30);
    else if (!strcmp(a, "--tokenizer")) g->tok_path = NEED();
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) g_quiet = 1;
    else if (parse_config_flag(g, argc, argv, &i)) continue;
    else if (!strcmp(a, "--arch")) {
      const char *v = NEED();
      if (!strcmp(v, "v1") || !strcmp(v, "xlstm_v1")) g->arch_v1 = 1;
      else if (!strcmp(v, "large") || !strcmp(v, "xlstm")) g->arch_v1 = 0;
      else xl_usage_error("--arch: '%s' is not large or v1", v);
    } else if (!strcmp(a, "--slstm-at")) parse_slstm_at(g, a, NEED());
    else if (!strcmp(a, "--slstm-heads")) g->s_heads = (int)xl_flag_long(a, NEED(), 1, 4096);
    else if (!strcmp(a, "--ffn")) g->v1_ffn = yesno(a, NEED());
    else xl_usage_error("unknown argument '%s'", a);
#undef NEED
  }
  if (!g->out) xl_usage_error("-o DIR is required");
  if (g->preset && g->config) xl_usage_error("--preset and --config exclude each other");
}

/* config.json's text (the preset or --config, then the flags; for --arch v1 the original
 * xLSTM's structure from the same main numbers), parsed back into c. */
static char *make_config(init_args *g, const char *dtype_json, xl_config *c) {
  cJSON *cj;
  if (g->config) {
    char *text = xl_read_file(g->config, NULL);
    if (!text) xl_die("%s: cannot read: %s", g->config, strerror(errno));
    cj = cJSON_Parse(text);
    free(text);
    if (!cj || !cJSON_IsObject(cj)) xl_die("%s: not a JSON object", g->config);
  } else cj = preset_config(g->preset ? g->preset : "tiny");
  for (cJSON *e = g->over->child; e; e = e->next) set_item(cj, e->string, cJSON_Duplicate(e, 1));
  cJSON_Delete(g->over);
  g->over = NULL;
  set_item(cj, "dtype", cJSON_CreateString(dtype_json));
  floats_keep_point(cj);
  char *cfg_text = cJSON_Print(cj);
  cJSON_Delete(cj);
  char err[1024];
  if (xl_config_parse(c, cfg_text, "config.json", err, sizeof err)) xl_die("%s", err);
  if (!g->arch_v1 || c->arch != XL_ARCH_LARGE) {
    if (g->n_slstm || g->s_heads) xl_usage_error("--slstm-at and --slstm-heads need --arch v1");
    return cfg_text;
  }
  xl_config c1;
  for (int i = 0; i < g->n_slstm; i++)
    if (g->slstm_at[i] >= c->n_blocks)
      xl_usage_error("--slstm-at: block %d is past the last block (%d)", g->slstm_at[i], c->n_blocks - 1);
  if (xl_v1_config_make(&c1, c->D, c->n_blocks, c->vocab, g->slstm_at, g->n_slstm, c->n_heads, g->s_heads ? g->s_heads : c->n_heads,
                        g->v1_ffn, c->tie_embeddings, err, sizeof err))
    xl_die("%s", err);
  xl_config_free(c);
  free(cfg_text);
  cfg_text = xl_v1_config_json(&c1);
  xl_config_free(&c1);
  if (xl_config_parse(c, cfg_text, "config.json", err, sizeof err)) xl_die("%s", err);
  return cfg_text;
}

/* What this run wrote, removed again when it fails (a full disk, a bad tokenizer): a
 * checkpoint is whole or absent. config.json is written last, so a directory left
 * half-written by a crash is still no checkpoint. */
static const char *g_out;
static int g_made_dir, g_finished;   /* -o DIR did not exist; the run finished */
static char **g_wrote;
static int g_nwrote;
static void wrote(char *path) {   /* takes the malloc'd path */
  g_wrote = xl_realloc(g_wrote, sizeof *g_wrote * (size_t)(g_nwrote + 1));
  g_wrote[g_nwrote++] = path;
}
static void cleanup_at_exit(void) {
  for (int i = 0; i < g_nwrote; i++) {
    if (!g_finished) unlink(g_wrote[i]);
    free(g_wrote[i]);
  }
  free(g_wrote);
  if (!g_finished && g_made_dir && g_out && rmdir(g_out) == 0) xl_warn("nothing of the checkpoint left in %s", g_out);
}

static void write_text(const char *dir, const char *name, const char *text) {
  char *p = xl_path_join(dir, name);
  if (xl_write_file_atomic(p, text, strlen(text))) xl_die("%s: cannot write: %s", p, strerror(errno));
  wrote(p);
}

/* Before anything is written: no file of the checkpoint replaces a file of another kind. */
static void check_outputs(const char *out) {
  static const struct { const char *name; xk_format fmt; } files[] = {
      {"config.json", XK_JSON}, {"generation_config.json", XK_JSON}, {"model.safetensors.index.json", XK_JSON},
      {"tokenizer.json", XK_JSON}, {"tokenizer_config.json", XK_JSON}, {"model.safetensors", XK_SAFETENSORS}};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char *p = xl_path_join(out, files[i].name);
    if (xl_kind_check(p, files[i].fmt, NULL)) exit(XL_EXIT_ERROR);
    free(p);
  }
}

/* Room for the weights before any is written: a checkpoint the filesystem cannot hold (a
 * typo in -D, a full disk) is refused at once instead of failing after minutes of writing.
 * Each file goes to a temporary name first, so the whole size must be free. */
static void check_space(const char *out, size_t bytes) {
  struct statvfs fs;
  if (statvfs(out, &fs)) return;   /* unknown: the writes will tell */
  double avail = (double)fs.f_bavail * (double)fs.f_frsize, need = (double)bytes;
  if (need > avail)
    xl_die("%s: the weights need %.3g MB and the filesystem has %.3g MB free; nothing written", out,
           need / 1e6, avail / 1e6);
}

static void write_configs(const char *out, const char *cfg_text, const xl_config *c) {
  size_t cl = strlen(cfg_text);
  char *t = xl_malloc(cl + 2);
  memcpy(t, cfg_text, cl);
  strcpy(t + cl, "\n");
  write_text(out, "config.json", t);
  free(t);
  char gen[256];
  snprintf(gen, sizeof gen, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"pad_token_id\": %d\n}\n", c->bos_id, c->eos_id,
           c->pad_id);
  write_text(out, "generation_config.json", gen);
}

/* The tensors in one file, or in shards of about shard_mb MB with an index: consecutive
 * tensors up to the limit, a bigger tensor in a shard of its own. */
static void write_weights(const char *out, const tlist *L, int64_t params, long shard_mb) {
  char err[1024];
  size_t limit = (size_t)shard_mb << 20;
  remove_stale(out, limit && g_total > limit);
  if (!limit || g_total <= limit) {
    char *p = xl_path_join(out, "model.safetensors");
    if (write_shard(L, 0, L->n, p, params, err, sizeof err)) xl_die("%s", err);
    wrote(p);
    return;
  }
  int *start = xl_malloc(sizeof(int) * (size_t)(L->n + 1)), ns = 0;
  size_t acc = 0;
  for (int i = 0; i < L->n; i++) {
    if (i == 0 || acc + L->t[i].nbytes > limit) { start[ns++] = i; acc = 0; }
    acc += L->t[i].nbytes;
  }
  start[ns] = L->n;
  cJSON *idx = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(idx, "metadata");
  cJSON_AddNumberToObject(meta, "total_parameters", (double)params);
  cJSON_AddNumberToObject(meta, "total_size", (double)g_total);
  cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
  for (int s = 0; s < ns; s++) {
    char fname[64];
    snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, ns);
    for (int i = start[s]; i < start[s + 1]; i++) cJSON_AddStringToObject(wm, L->t[i].name, fname);
    char *p = xl_path_join(out, fname);
    if (write_shard(L, start[s], start[s + 1], p, params, err, sizeof err)) xl_die("%s", err);
    wrote(p);
  }
  char *js = cJSON_Print(idx);
  cJSON_Delete(idx);
  char *ip = xl_path_join(out, "model.safetensors.index.json");
  if (xl_write_file_atomic(ip, js, strlen(js))) xl_die("%s: cannot write: %s", ip, strerror(errno));
  wrote(ip);
  free(js);
  free(start);
}

/* Copies the tokenizer (and its tokenizer_config.json) when every id it can produce is inside
 * the model's vocabulary. Returns the path copied (malloc'd) or NULL. */
static char *copy_tokenizer(const char *out, const char *tok_path, const xl_config *c) {
  char err[1024], *def_dir = NULL, *def_tok = NULL, *copied = NULL;
  if (!tok_path) {
    def_dir = xl_default_model_dir();
    tok_path = def_tok = xl_path_join(def_dir, "tokenizer.json");
  }
  tok_tokenizer *tk = strcmp(tok_path, "none") ? tok_load(tok_path, err, sizeof err) : NULL;
  if (!tk && strcmp(tok_path, "none")) {
    if (def_tok) xl_warn("no tokenizer copied: %s", err);
    else xl_die("%s", err);
  } else if (tk) {
    int tv = tok_vocab_size(tk);
    tok_free(tk);
    if (tv > c->vocab) {
      xl_warn("no tokenizer copied: %s has %d ids, more than the vocabulary %d", tok_path, tv, c->vocab);
    } else {
      if (tv < c->vocab)   /* random weights pick any id: most then have no text */
        xl_warn("the tokenizer copied knows %d of the %d ids: ids %d and up decode to no text "
                "(give --vocab %d, or --tokenizer with a larger one)", tv, c->vocab, tv, tv);
      char *p = xl_path_join(out, "tokenizer.json");
      if (copy_file(tok_path, p)) xl_die("%s: cannot copy to %s: %s", tok_path, p, strerror(errno));
      wrote(p);
      copied = xl_strdup(tok_path);
      char *slash = strrchr(tok_path, '/'), *tdir = slash ? xl_strdup(tok_path) : xl_strdup(".");
      if (slash) tdir[slash - tok_path] = 0;
      char *tc = xl_path_join(tdir, "tokenizer_config.json"), *dc = xl_path_join(out, "tokenizer_config.json");
      if (xl_exists(tc) && copy_file(tc, dc)) xl_die("%s: cannot copy: %s", tc, strerror(errno));
      if (xl_exists(tc)) wrote(dc); else free(dc);
      free(tc), free(tdir);
    }
  }
  free(def_tok);
  free(def_dir);
  return copied;
}

static void report(const init_args *g, const tlist *L, int64_t params, const xl_config *c, const char *tok_copied) {
  cJSON *rec = cJSON_CreateObject();
  cJSON_AddStringToObject(rec, "tool", "xl-init");
  cJSON_AddStringToObject(rec, "dir", g->out);
  cJSON_AddNumberToObject(rec, "params", (double)params);
  cJSON_AddNumberToObject(rec, "tensors", L->n);
  cJSON_AddNumberToObject(rec, "bytes", (double)g_total);
  cJSON_AddStringToObject(rec, "dtype", g->dtype_s);
  cJSON_AddNumberToObject(rec, "seed", (double)g->seed);
  cJSON_AddNumberToObject(rec, "D", c->D);
  cJSON_AddNumberToObject(rec, "blocks", c->n_blocks);
  cJSON_AddNumberToObject(rec, "heads", c->n_heads);
  cJSON_AddNumberToObject(rec, "vocab", c->vocab);
  if (tok_copied) cJSON_AddStringToObject(rec, "tokenizer", tok_copied);
  else cJSON_AddNullToObject(rec, "tokenizer");
  cJSON_AddNumberToObject(rec, "seconds", xl_now() - g_t0);
  rec_ndjson_write(stdout, rec);   /* a -o path that is not UTF-8 gets U+FFFD: the line stays JSON */
  cJSON_Delete(rec);
}

int main(int argc, char **argv) {
  xl_blas_setup_unused(argc, argv);   /* no BLAS here: under ulimit -v, no OpenBLAS threads either */
  xl_version_if_asked(argc, argv, "xl-init");
  xl_set_progname("xl-init");
  static init_args g;   /* static: the sLSTM block list is 16 KB */
  parse_args(&g, argc, argv);
  st_dtype dtype;
  const char *dtype_json;
  if (!strcmp(g.dtype_s, "bf16")) dtype = ST_BF16, dtype_json = "bfloat16";
  else if (!strcmp(g.dtype_s, "f32")) dtype = ST_F32, dtype_json = "float32";
  else if (!strcmp(g.dtype_s, "f16")) dtype = ST_F16, dtype_json = "float16";
  else xl_usage_error("--dtype: '%s' is not bf16, f32 or f16", g.dtype_s);
  xl_config c;
  char *cfg_text = make_config(&g, dtype_json, &c);
  tlist L = {.seed = mix64((uint64_t)g.seed + 0x5851f42d4c957f2dULL), .dtype = dtype};
  if (c.arch == XL_ARCH_V1) {
    v1_ctx vc = {&L, c.D};
    xl_v1_tensor_specs(&c, v1_tensor, &vc);
  } else build_tensors(&L, &c);
  int64_t params = 0;
  for (int i = 0; i < L.n; i++) {
    g_total += L.t[i].nbytes;
    params += (int64_t)(L.t[i].nbytes / st_dtype_size(dtype));
  }
  g_out = g.out;
  g_made_dir = !xl_exists(g.out);
  atexit(cleanup_at_exit);
  if (xl_mkdirs(g.out)) xl_die("%s: cannot create: %s", g.out, strerror(errno));
  check_outputs(g.out);
  check_space(g.out, g_total);
  g_pool = xl_pool_create((int)sysconf(_SC_NPROCESSORS_ONLN) > 0 ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 1);
  g_t0 = g_last = xl_now();
  write_weights(g.out, &L, params, g.shard_mb);
  xl_pool_free(g_pool);
  write_configs(g.out, cfg_text, &c);   /* last: a directory without config.json is no checkpoint */
  free(cfg_text);
  char *tok_copied = copy_tokenizer(g.out, g.tok_path, &c);
  g_finished = 1;
  report(&g, &L, params, &c, tok_copied);
  free(tok_copied);
  free(L.t);
  xl_config_free(&c);
  xl_finish_stdout();
  return 0;
}
