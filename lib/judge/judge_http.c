/* judge_http: Ollama / OpenAI-compatible judge client over libcurl. See judge_http.h.
 * One attempt = one HTTP exchange with a total time limit. Transient failures
 * (connection refused/reset/cut, nothing received, connect timeout, HTTP 429, 5xx)
 * are retried after backoff_s, 2*backoff_s, ... (capped; a Retry-After header from
 * the server is honoured up to the cap). A total (read) timeout is not retried: the
 * server took the request and a slow model would only be asked to be slow again. */
#define _GNU_SOURCE  /* asprintf, memmem */
#include "judge/judge_http.h"
#include "base/util.h"
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


const char *const jh_score_names[JH_NSCORES] = {"coherence", "relevance", "fluency", "overall"};

/* An answer larger than this is not a rating; stop reading rather than fill memory. */
#define JH_MAX_BODY (16u << 20)

/* cJSON's parser writes a process-global error slot: parse under one lock. */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;
static cJSON *parse_locked(const char *s) {
  pthread_mutex_lock(&parse_lock);
  cJSON *j = cJSON_Parse(s);
  pthread_mutex_unlock(&parse_lock);
  return j;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) xl_die("out of memory");
  va_end(ap);
  return s;
}

int jh_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }
void jh_global_cleanup(void) { curl_global_cleanup(); }

struct jh_client {
  const jh_config *c;
  CURL *h;
  struct curl_slist *hdr;
  char *buf;            /* response body, NUL-terminated; reused between requests */
  size_t len, cap;
  int overflow;
  char errbuf[CURL_ERROR_SIZE];
  char *api_shown;      /* c->api with its userinfo replaced */
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
  jh_client *cl = ud;
  size_t n = size * nmemb;
  if (cl->len + n + 1 > JH_MAX_BODY) { cl->overflow = 1; return 0; }
  if (cl->len + n + 1 > cl->cap) {
    while (cl->len + n + 1 > cl->cap) cl->cap = cl->cap ? 2 * cl->cap : 8192;
    cl->buf = xl_realloc(cl->buf, cl->cap);
  }
  memcpy(cl->buf + cl->len, p, n);
  cl->len += n;
  cl->buf[cl->len] = 0;
  return n;
}

/* ---- secrets ---- */

/* The userinfo of an http(s) URL: [*a, *b) is "user:pass" (before the '@' of the
 * authority); 0 when there is none. */
static int userinfo(const char *url, const char **a, const char **b) {
  const char *p = strstr(url, "://");
  if (!p) return 0;
  p += 3;
  const char *end = p + strcspn(p, "/?#"), *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  if (!at) return 0;
  *a = p;
  *b = at;
  return 1;
}

char *jh_api_shown(const char *api) {
  const char *a, *b;
  if (!api) return xl_strdup("");
  if (!userinfo(api, &a, &b)) return xl_strdup(api);
  return xasprintf("%.*s***%s", (int)(a - api), api, b);
}

/* Replaces every occurrence of secret (when long enough to be one) in *s by "***". */
static void redact_one(char **s, const char *secret, size_t len) {
  if (!*s || len < 4) return;
  for (char *hit; (hit = memmem(*s, strlen(*s), secret, len));) {
    char *t = xasprintf("%.*s***%s", (int)(hit - *s), *s, hit + len);
    free(*s);
    *s = t;
  }
}

char *jh_redact(const jh_config *c, const char *text) {
  char *s = xl_strdup(text ? text : "");
  const char *a, *b;
  if (c->api && userinfo(c->api, &a, &b)) {
    redact_one(&s, a, (size_t)(b - a));   /* user:password */
    const char *colon = memchr(a, ':', (size_t)(b - a));
    if (colon) redact_one(&s, colon + 1, (size_t)(b - colon - 1));   /* the password alone */
  }
  if (c->api_key) redact_one(&s, c->api_key, strlen(c->api_key));
  return s;
}

/* Redacts an owned string in place. */
static void redact_owned(const jh_config *c, char **s) {
  if (!*s) return;
  char *t = jh_redact(c, *s);
  free(*s);
  *s = t;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  const jh_client *cl = ud;
  return cl->c->stop && *cl->c->stop;   /* non-zero aborts the transfer */
}

static int stopping(const jh_config *c) { return c->stop && *c->stop; }

jh_client *jh_client_new(const jh_config *c) {
  jh_client *cl = xl_calloc(1, sizeof *cl);
  cl->c = c;
  cl->h = curl_easy_init();
  if (!cl->h) { free(cl); return NULL; }
  cl->hdr = curl_slist_append(NULL, "Content-Type: application/json");
  cl->hdr = curl_slist_append(cl->hdr, "Accept: application/json");
  cl->hdr = curl_slist_append(cl->hdr, "Expect:");  /* no 100-continue round trip */
  if (c->api_key && *c->api_key) {
    char *h = xasprintf("Authorization: Bearer %s", c->api_key);
    cl->hdr = curl_slist_append(cl->hdr, h);
    free(h);
  }
  cl->api_shown = jh_api_shown(c->api);
  CURL *h = cl->h;
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, cl->hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, cl);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cl->errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  /* threads: no SIGALRM-based timeouts */
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ceil(c->timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(c->connect_timeout_s * 1000));
  /* A local judge is never reached through a proxy set in the environment. */
  curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "xl-judge");
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);   /* the progress callback checks c->stop */
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, cl);
  return cl;
}

void jh_client_free(jh_client *cl) {
  if (!cl) return;
  curl_easy_cleanup(cl->h);
  curl_slist_free_all(cl->hdr);
  free(cl->api_shown);
  free(cl->buf);
  free(cl);
}

/* Sleeps s seconds in steps of at most 50 ms, returning early once c->stop is set. */
static void sleep_s(const jh_config *c, double s) {
  while (s > 0 && !stopping(c)) {
    double d = s < 0.05 ? s : 0.05;
    struct timespec ts = {(time_t)d, (long)((d - floor(d)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR && !stopping(c)) {}
    s -= d;
  }
}

/* The server's own error message from a JSON body ({"error":"..."} as Ollama sends,
 * or {"error":{"message":"..."}} as OpenAI does), else the start of the body. */
static char *server_message(const char *body) {
  if (!body || !*body) return xl_strdup("(empty body)");
  cJSON *j = parse_locked(body);
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  char *msg = NULL;
  if (cJSON_IsString(e)) msg = xl_strdup(e->valuestring);
  else if (cJSON_IsObject(e) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")))
    msg = xl_strdup(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring);
  cJSON_Delete(j);
  if (!msg) msg = jh_excerpt(body, 200);
  return msg;
}

typedef struct {
  long status;      /* last HTTP status, 0 if no response */
  int attempts;
  int transport;    /* 1: failed below HTTP (no response) */
  int interrupted;  /* aborted because c->stop was set */
  char *error;      /* owned, set on failure */
} http_outcome;

/* One request with retries; body NULL = GET. Returns 0 when a 2xx answer is in
 * cl->buf, -1 otherwise (o->error says why; a 4xx body is in cl->buf too). */
static int http_request(jh_client *cl, const char *path, const char *body, http_outcome *o) {
  const jh_config *c = cl->c;
  char *url = xasprintf("%s%s", c->api, path), *shown = xasprintf("%s%s", cl->api_shown, path);
  const char *method = body ? "POST" : "GET";
  memset(o, 0, sizeof *o);
  curl_easy_setopt(cl->h, CURLOPT_URL, url);
  if (body) {
    curl_easy_setopt(cl->h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cl->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  } else {
    curl_easy_setopt(cl->h, CURLOPT_HTTPGET, 1L);
  }
  double wait = c->backoff_s;
  int rc = -1;
  for (int attempt = 1;; attempt++) {
    cl->len = 0;
    cl->overflow = 0;
    if (cl->buf) cl->buf[0] = 0;
    cl->errbuf[0] = 0;
    o->attempts = attempt;
    free(o->error);
    o->error = NULL;
    CURLcode cc = curl_easy_perform(cl->h);
    int transient = 0;
    o->status = 0;
    o->transport = cc != CURLE_OK;
    if (cc == CURLE_OK) {
      curl_easy_getinfo(cl->h, CURLINFO_RESPONSE_CODE, &o->status);
      if (o->status >= 200 && o->status < 300) { rc = 0; break; }
      char *m = server_message(cl->buf);
      o->error = xasprintf("%s %s: HTTP %ld: %s", method, shown, o->status, m);
      free(m);
      transient = o->status == 429 || o->status >= 500;
    } else if (cc == CURLE_ABORTED_BY_CALLBACK && stopping(c)) {
      o->interrupted = 1;
      o->error = xasprintf("%s %s: interrupted", method, shown);
    } else {
      /* Whether the request went out: a reused connection has no connect time (0), so the
       * bytes of the request sent tell a read timeout from a connect timeout. */
      long sent = 0;
      curl_easy_getinfo(cl->h, CURLINFO_REQUEST_SIZE, &sent);
      switch (cc) {
      case CURLE_COULDNT_CONNECT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
      case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING: case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM: case CURLE_COULDNT_RESOLVE_HOST:
        transient = 1;
        break;
      case CURLE_OPERATION_TIMEDOUT:
        transient = sent == 0;  /* only a connect timeout; see the top of the file */
        break;
      default:
        break;
      }
      const char *why = cl->overflow ? "answer larger than 16 MiB" : cl->errbuf[0] ? cl->errbuf : curl_easy_strerror(cc);
      o->error = xasprintf("%s %s: %s", method, shown, why);
    }
    if (!transient || attempt > c->retries || stopping(c)) break;
    double w = wait;
    curl_off_t ra = -1;
    if (curl_easy_getinfo(cl->h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) w = (double)ra;
    if (w > c->backoff_max_s) w = c->backoff_max_s;
    sleep_s(c, w);
    wait = fmin(wait * 2, c->backoff_max_s);
  }
  if (rc && o->attempts > 1 && !o->interrupted) {
    char *e = xasprintf("%s (after %d attempts)", o->error, o->attempts);
    free(o->error);
    o->error = e;
  }
  redact_owned(c, &o->error);
  free(url);
  free(shown);
  return rc;
}

/* ---- prompt and body ---- */

/* s cut to at most max_chars characters (UTF-8 code points): when longer, the first
 * half and the last half are kept with "\n[... N characters omitted ...]\n" between.
 * max_chars 0 = no limit. Returns a malloc'd string. */
char *jh_excerpt(const char *s, size_t max_chars) {
  size_t nbytes = strlen(s), nchars = 0;
  for (size_t i = 0; i < nbytes; i++) nchars += ((unsigned char)s[i] & 0xC0) != 0x80;
  if (max_chars == 0 || nchars <= max_chars) return xl_strdup(s);
  size_t head = max_chars / 2, tail = max_chars - head;
  /* byte offsets of the code point that starts the omitted part and of the tail */
  size_t hb = nbytes, tb = nbytes, k = 0;
  for (size_t i = 0; i < nbytes; i++) {
    if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
    if (k == head) hb = i;
    if (k == nchars - tail) { tb = i; break; }
    k++;
  }
  return xasprintf("%.*s\n[... %zu characters omitted ...]\n%s", (int)hb, s, nchars - head - tail, s + tb);
}

char *jh_build_prompt(const char *prompt, const char *continuation, size_t max_chars) {
  char *p = jh_excerpt(prompt, max_chars), *c = jh_excerpt(continuation, max_chars);
  char *out = xasprintf(
      "You are a strict judge of text written by a small language model.\n"
      "The PROMPT below is the beginning of a document; the CONTINUATION is what the model "
      "wrote after it. Long texts are shown as head and tail with the middle omitted.\n"
      "Rate the CONTINUATION with whole numbers from 1 (worst) to 10 (best):\n"
      "- coherence: it holds together and does not contradict itself;\n"
      "- relevance: it follows on from the prompt's topic, content and style;\n"
      "- fluency: it is grammatical, natural text without loops, repetition or garbage;\n"
      "- overall: your overall judgement of it as a continuation of the prompt.\n"
      "Answer with a JSON object with the integer fields coherence, relevance, fluency, "
      "overall and a one-sentence string rationale, and nothing else.\n\n"
      "PROMPT:\n<<<\n%s\n>>>\n\nCONTINUATION:\n<<<\n%s\n>>>\n",
      p, c);
  free(p);
  free(c);
  return out;
}

/* The JSON schema of the answer (integers 1-10 for each score, a string rationale,
 * all required, nothing else). Caller frees. */
static cJSON *jh_answer_schema(void) {
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "type", "object");
  cJSON *props = cJSON_AddObjectToObject(s, "properties");
  cJSON *req = cJSON_AddArrayToObject(s, "required");
  for (int i = 0; i < JH_NSCORES; i++) {
    cJSON *p = cJSON_AddObjectToObject(props, jh_score_names[i]);
    cJSON_AddStringToObject(p, "type", "integer");
    cJSON_AddNumberToObject(p, "minimum", 1);
    cJSON_AddNumberToObject(p, "maximum", 10);
    cJSON_AddItemToArray(req, cJSON_CreateString(jh_score_names[i]));
  }
  cJSON *r = cJSON_AddObjectToObject(props, "rationale");
  cJSON_AddStringToObject(r, "type", "string");
  cJSON_AddStringToObject(r, "description", "one sentence explaining the scores");
  cJSON_AddItemToArray(req, cJSON_CreateString("rationale"));
  cJSON_AddBoolToObject(s, "additionalProperties", 0);
  return s;
}

/* The request body for c's API (Ollama or OpenAI) as JSON text. Caller frees. */
static char *jh_request_body(const jh_config *c, const char *judge_prompt) {
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "model", c->model);
  if (c->openai) {
    cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", judge_prompt);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddBoolToObject(b, "stream", 0);
    cJSON_AddNumberToObject(b, "temperature", 0);
    cJSON_AddNumberToObject(b, "seed", (double)c->seed);
    cJSON *rf = cJSON_AddObjectToObject(b, "response_format");
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", "xl_judge_rating");
    cJSON_AddItemToObject(js, "schema", jh_answer_schema());
    cJSON_AddBoolToObject(js, "strict", 1);
  } else {
    cJSON_AddStringToObject(b, "prompt", judge_prompt);
    cJSON_AddBoolToObject(b, "stream", 0);
    cJSON_AddItemToObject(b, "format", jh_answer_schema());
    cJSON *opt = cJSON_AddObjectToObject(b, "options");
    cJSON_AddNumberToObject(opt, "temperature", 0);
    cJSON_AddNumberToObject(opt, "seed", (double)c->seed);
    if (c->num_ctx > 0) cJSON_AddNumberToObject(opt, "num_ctx", (double)c->num_ctx);
  }
  char *s = cJSON_PrintUnformatted(b);
  cJSON_Delete(b);
  if (!s) xl_die("out of memory");
  return s;
}

/* ---- answers ---- */

/* Removes the JSON escape \u0000 from JSON text, in place: cJSON ends a string at the NUL it
 * decodes to, which cut an answer short ("not valid JSON") or a rationale. An escaped
 * backslash before "u0000" is left alone. */
static void strip_nul_escapes(char *s) {
  char *w = s;
  for (const char *r = s; *r;) {
    if (r[0] == '\\' && r[1] == 'u' && !strncmp(r + 2, "0000", 4)) { r += 6; continue; }
    if (r[0] == '\\' && r[1]) { *w++ = *r++; *w++ = *r++; continue; }
    *w++ = *r++;
  }
  *w = 0;
}

void jh_result_free(jh_result *r) {
  free(r->rationale);
  free(r->raw);
  free(r->error);
  memset(r, 0, sizeof *r);
}

static jh_status parse_fail(jh_result *r, char *msg) {
  char *ex = jh_excerpt(r->raw ? r->raw : "", 200);
  free(r->error);
  r->error = xasprintf("%s; raw answer: %s", msg, ex);
  free(ex);
  free(msg);
  r->status = JH_PARSE_ERROR;
  return r->status;
}

/* Parses the judge's answer text (the JSON object with the scores) into r:
 * JH_OK, or JH_PARSE_ERROR with r->error saying what is wrong. Sets r->raw to a copy
 * of text. Leading/trailing white space and a ``` code fence are tolerated. */
jh_status jh_parse_answer(const char *text, jh_result *r) {
  free(r->raw);
  r->raw = xl_strdup(text);
  /* Tolerate white space and a markdown fence around the object (some models add one
   * when a server ignores the schema); anything else must be the bare object. */
  const char *b = text;
  while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
  size_t n = strlen(b);
  while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\n' || b[n - 1] == '\r')) n--;
  if (n >= 6 && !strncmp(b, "```", 3) && !strncmp(b + n - 3, "```", 3)) {
    const char *nl = memchr(b, '\n', n);
    if (nl) { n -= (size_t)(nl + 1 - b) + 3; b = nl + 1; }
  }
  char *body = xl_malloc(n + 1);
  memcpy(body, b, n);
  body[n] = 0;
  strip_nul_escapes(body);
  cJSON *j = parse_locked(body);
  free(body);
  if (!j) return parse_fail(r, xl_strdup("answer is not valid JSON"));
  if (!cJSON_IsObject(j)) { cJSON_Delete(j); return parse_fail(r, xl_strdup("answer is not a JSON object")); }
  for (int i = 0; i < JH_NSCORES; i++) {
    const char *k = jh_score_names[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    char *msg = NULL;
    if (!v) msg = xasprintf("answer lacks '%s'", k);
    else if (!cJSON_IsNumber(v)) msg = xasprintf("'%s' is not a number", k);
    else if (v->valuedouble != floor(v->valuedouble)) msg = xasprintf("'%s' = %g is not a whole number", k, v->valuedouble);
    else if (v->valuedouble < 1 || v->valuedouble > 10) msg = xasprintf("'%s' = %g is outside 1-10", k, v->valuedouble);
    if (msg) { cJSON_Delete(j); return parse_fail(r, msg); }
    r->scores[i] = (int)v->valuedouble;
  }
  const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "rationale");
  if (!cJSON_IsString(ra)) { cJSON_Delete(j); return parse_fail(r, xl_strdup("answer lacks a string 'rationale'")); }
  free(r->rationale);
  r->rationale = xl_strdup(ra->valuestring);
  cJSON_Delete(j);
  r->status = JH_OK;
  return JH_OK;
}

/* The answer text inside the server's envelope, or NULL (with *why) when missing. */
static const char *answer_text(const jh_config *c, const cJSON *env, const char **why) {
  if (!c->openai) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(env, "response");
    if (cJSON_IsString(t)) return t->valuestring;
    *why = "server answer has no 'response' text";
    return NULL;
  }
  const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(env, "choices"), 0);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(ch, "message");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "content");
  if (cJSON_IsString(t)) return t->valuestring;
  *why = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "refusal")) ? "the model refused to answer"
                                                                        : "server answer has no choices[0].message.content";
  return NULL;
}

static void judge_inner(jh_client *cl, const char *judge_prompt, jh_result *r) {
  const jh_config *c = cl->c;
  memset(r, 0, sizeof *r);
  char *body = jh_request_body(c, judge_prompt);
  http_outcome o;
  int rc = http_request(cl, c->openai ? "/v1/chat/completions" : "/api/generate", body, &o);
  free(body);
  r->attempts = o.attempts;
  r->http_status = o.status;
  if (rc) {
    if (o.interrupted) {
      r->status = JH_ERROR;
      r->interrupted = 1;
      r->error = o.error;
    } else if (o.status == 404) {
      r->status = JH_MODEL_MISSING;
      r->error = xasprintf("model '%s' not found: %s", c->model, o.error);
      free(o.error);
    } else {
      r->status = JH_ERROR;
      r->error = o.error;
    }
    return;
  }
  free(o.error);
  if (cl->buf) strip_nul_escapes(cl->buf);
  cJSON *env = parse_locked(cl->buf ? cl->buf : "");
  if (!env) {
    r->raw = xl_strdup(cl->buf ? cl->buf : "");
    parse_fail(r, xl_strdup("server answer is not valid JSON"));
    return;
  }
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(env, "error");
  if (e && !cJSON_IsNull(e)) {
    char *m = server_message(cl->buf);
    r->status = JH_ERROR;
    r->error = xasprintf("server reported an error: %s", m);
    free(m);
    cJSON_Delete(env);
    return;
  }
  const char *why = NULL;
  const char *text = answer_text(c, env, &why);
  if (text) jh_parse_answer(text, r);
  else { r->raw = xl_strdup(cl->buf); parse_fail(r, xl_strdup(why)); }
  cJSON_Delete(env);
}

void jh_judge(jh_client *cl, const char *judge_prompt, jh_result *r) {
  judge_inner(cl, judge_prompt, r);
  redact_owned(cl->c, &r->raw);   /* a server may echo what it was sent */
  redact_owned(cl->c, &r->error);
  redact_owned(cl->c, &r->rationale);
}

/* ---- provenance ---- */

/* Does a listed model name match the requested one? "x" means "x:latest". */
static int same_model(const char *listed, const char *want) {
  if (!strcmp(listed, want)) return 1;
  size_t n = strlen(want);
  if (!strchr(want, ':') && !strncmp(listed, want, n) && !strcmp(listed + n, ":latest")) return 1;
  n = strlen(listed);
  return !strchr(listed, ':') && !strncmp(want, listed, n) && !strcmp(want + n, ":latest");
}

static const cJSON *find_model(const cJSON *list, const char *idkey, const char *want) {
  const cJSON *m;
  cJSON_ArrayForEach(m, list) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, idkey);
    if (cJSON_IsString(id) && same_model(id->valuestring, want)) return m;
    if (!strcmp(idkey, "name")) {  /* Ollama also lists "model" */
      id = cJSON_GetObjectItemCaseSensitive(m, "model");
      if (cJSON_IsString(id) && same_model(id->valuestring, want)) return m;
    }
  }
  return NULL;
}

static char *str_member(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? xl_strdup(v->valuestring) : NULL;
}

/* GET path; returns the parsed JSON body or NULL. *down = 1 when the server could
 * not be reached at all (no HTTP answer). */
static cJSON *get_json(jh_client *cl, const char *path, int *down, char *err, size_t errlen) {
  http_outcome o;
  int rc = http_request(cl, path, NULL, &o);
  cJSON *j = NULL;
  if (rc == 0) j = parse_locked(cl->buf ? cl->buf : "");
  else if (o.transport) { *down = 1; snprintf(err, errlen, "%s", o.error); }
  free(o.error);
  return j;
}

int jh_server_info(jh_client *cl, char **digest, char **version, char *err, size_t errlen) {
  const jh_config *c = cl->c;
  *digest = *version = NULL;
  int down = 0;
  if (c->openai) {
    cJSON *j = get_json(cl, "/v1/models", &down, err, errlen);
    if (down) return -1;
    *digest = str_member(find_model(cJSON_GetObjectItemCaseSensitive(j, "data"), "id", c->model), "digest");
    cJSON_Delete(j);
    return 0;
  }
  cJSON *j = get_json(cl, "/api/version", &down, err, errlen);
  if (down) return -1;
  *version = str_member(j, "version");
  cJSON_Delete(j);
  j = get_json(cl, "/api/tags", &down, err, errlen);
  if (down) { free(*version); *version = NULL; return -1; }
  *digest = str_member(find_model(cJSON_GetObjectItemCaseSensitive(j, "models"), "name", c->model), "digest");
  cJSON_Delete(j);
  return 0;
}
