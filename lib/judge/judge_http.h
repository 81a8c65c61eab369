/* judge_http: the client side of an external LLM judge reached over HTTP (libcurl):
 * an Ollama server (POST /api/generate with a JSON-schema "format") or any
 * OpenAI-compatible server (POST /v1/chat/completions with a json_schema
 * response_format). It builds the judging prompt and request body, sends it with
 * connect/total timeouts and retries with exponential backoff on transient failures,
 * and turns the answer into four 1-10 scores and a rationale, or a parse error that
 * keeps the raw text. It also asks the server for the judge model's digest and the
 * server version, for provenance.
 * Not for: which outputs to judge, resuming or writing rating files (xl-judge does it).
 *
 * Threads: call jh_global_init once before starting threads and jh_global_cleanup
 * once after they have all ended; give each thread its own jh_client. */
#ifndef XL_JUDGE_HTTP_H
#define XL_JUDGE_HTTP_H
#include <stddef.h>
#include <cJSON.h>

typedef struct {
  const char *api;          /* server root, e.g. "http://127.0.0.1:11434" (no trailing /) */
  const char *model;        /* judge model name, e.g. "llama3.1:8b" */
  int openai;               /* 1: OpenAI-compatible /v1/chat/completions; 0: Ollama */
  double timeout_s;         /* total time limit of one attempt (connect + answer) */
  double connect_timeout_s; /* time limit to establish the connection */
  int retries;              /* extra attempts after a transient failure */
  double backoff_s;         /* wait before the first retry; doubles each time */
  double backoff_max_s;     /* cap of one wait */
  long seed;                /* sampling seed sent to the server */
  long num_ctx;             /* Ollama context window (options.num_ctx); 0 = not sent */
  const char *api_key;      /* sent as "Authorization: Bearer KEY" (NULL: none) */
  /* Set (by a signal handler) to end the run: the request in flight is aborted within about
   * a second, no retry or backoff wait starts. NULL: never. */
  const volatile int *stop;
} jh_config;

/* Secrets never appear in what this client returns or prints: the userinfo of the API URL
 * ("user:password@"), its password, and the API key are replaced by "***" in every error,
 * raw answer and message. jh_redact does the same for a caller's text (malloc'd). The URL
 * as it may be shown: jh_api_shown (userinfo replaced, malloc'd). */
char *jh_redact(const jh_config *c, const char *text);
char *jh_api_shown(const char *api);

/* The score fields, in this order everywhere (schema, rows, columns). */
enum { JH_NSCORES = 4 };
extern const char *const jh_score_names[JH_NSCORES]; /* coherence relevance fluency overall */

typedef enum {
  JH_OK = 0,          /* scores and rationale valid */
  JH_PARSE_ERROR,     /* the server answered, but not with valid scores; raw kept */
  JH_ERROR,           /* no usable answer after the retries (network, timeout, HTTP error) */
  JH_MODEL_MISSING,   /* HTTP 404: the server does not have the model; fatal for a run */
} jh_status;

typedef struct {
  jh_status status;
  int scores[JH_NSCORES];   /* valid when JH_OK */
  char *rationale;          /* owned; JH_OK only */
  char *raw;                /* owned; the judge's answer text (or whole body) when one came back */
  char *error;              /* owned; message when status != JH_OK */
  int attempts;             /* HTTP attempts made */
  int interrupted;          /* the request was aborted by *stop: not a result, do not record */
  long http_status;         /* last HTTP status, 0 if none */
} jh_result;

/* libcurl's process-wide setup/teardown: pair them, outside any thread. 0 ok. */
int jh_global_init(void);
void jh_global_cleanup(void);

typedef struct jh_client jh_client;
/* One connection handle (keeps the connection alive between requests). The config
 * is copied by pointer: it must outlive the client. */
jh_client *jh_client_new(const jh_config *c);
void jh_client_free(jh_client *cl);

/* s cut to at most max_chars characters (UTF-8 code points): when longer, the first
 * half and the last half are kept with a marker line between. max_chars 0 = no limit.
 * Returns a malloc'd string. (Public for tests/fuzz/fuzz_judge.c.) */
char *jh_excerpt(const char *s, size_t max_chars);

/* Parses the judge's answer text (the JSON object with the scores) into r: JH_OK, or
 * JH_PARSE_ERROR with r->error saying what is wrong; r->raw gets a copy of text. */
jh_status jh_parse_answer(const char *text, jh_result *r);

/* The judging prompt: instructions, then the prompt excerpt and the continuation,
 * each cut to max_chars characters (the first and last halves kept, with a marker saying
 * how much was left out between; 0 = no limit). Returns a malloc'd string. */
char *jh_build_prompt(const char *prompt, const char *continuation, size_t max_chars);

/* Sends one judging request (with retries) and fills r (zeroed first). */
void jh_judge(jh_client *cl, const char *judge_prompt, jh_result *r);

void jh_result_free(jh_result *r);

/* Provenance: *digest = the model's digest and *version = the server version, each
 * malloc'd or NULL when the server does not say (Ollama: GET /api/tags and
 * /api/version; OpenAI mode: GET /v1/models, digest only if the entry carries one).
 * A model listed without a tag matches "<model>:latest".
 * Returns 0, or -1 with a message in err when the server could not be reached at all
 * (connection refused or timed out after the retries). */
int jh_server_info(jh_client *cl, char **digest, char **version, char *err, size_t errlen);

#endif
