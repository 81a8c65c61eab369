/* fuzz_judge_http: the judge client's handling of whole server replies (judge/judge_http.h:
 * jh_judge and jh_server_info), whose envelope parsers (the Ollama "response" / OpenAI
 * choices[0].message.content text, {"error": ...} bodies, model lists) are static: this is
 * the nearest public way in. A server thread on 127.0.0.1 (an ephemeral port, no other
 * network) answers every request with the input. The first input byte picks the mode:
 * bit 0 OpenAI (1) or Ollama (0), bits 1-2 the HTTP status (200, 200, 404, 500), bit 3
 * provenance (jh_server_info) instead of a judging request; the rest is the body.
 * No retries, so each input costs one or two local requests. */
#include "fuzz_common.h"
#include "judge/judge_http.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *reply;           /* a copy of the current input's body, and the status to send */
static size_t reply_len;
static int reply_status;
static int listen_fd;
static char api[64];
static jh_config cfg[2];
static jh_client *client[2];

static int send_all(int fd, const void *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p = (const char *)p + w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one request (headers, then Content-Length bytes of body); 0 ok, -1 closed. */
static int read_request(int fd) {
  static __thread char buf[1 << 16];
  size_t n = 0;
  char *end = NULL;
  while (!end) {
    if (n == sizeof buf - 1) return -1;
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    if (r <= 0) return -1;
    n += (size_t)r;
    buf[n] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  size_t body = 0;
  for (char *h = buf; h && h < end; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL)
    if (!strncasecmp(h, "Content-Length:", 15)) body = strtoul(h + 15, NULL, 10);
  size_t have = n - (size_t)(end + 4 - buf);
  while (have < body) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  return 0;
}

/* One connection (curl keeps one alive per client): answers its requests until it closes. */
static void *connection(void *arg) {
  int fd = (int)(intptr_t)arg, one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* no delayed-ACK stalls */
  while (read_request(fd) == 0) {
    pthread_mutex_lock(&lock);
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 %d Fuzz\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      reply_status, reply_len);
    int bad = send_all(fd, head, (size_t)hl) || send_all(fd, reply, reply_len);
    pthread_mutex_unlock(&lock);
    if (bad) break;
  }
  close(fd);
  return NULL;
}

static void *server(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) continue;
    pthread_t th;
    if (pthread_create(&th, NULL, connection, (void *)(intptr_t)fd)) close(fd);
    else pthread_detach(th);
  }
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  if (jh_global_init()) { fprintf(stderr, "fuzz_judge_http: curl init failed\n"); exit(1); }
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) || listen(listen_fd, 8) ||
      getsockname(listen_fd, (struct sockaddr *)&a, &al)) {
    perror("fuzz_judge_http: listen on 127.0.0.1");
    exit(1);
  }
  snprintf(api, sizeof api, "http://127.0.0.1:%d", ntohs(a.sin_port));
  pthread_t th;
  pthread_create(&th, NULL, server, NULL);
  pthread_detach(th);
  for (int i = 0; i < 2; i++) {
    cfg[i] = (jh_config){.api = api, .model = "judge:8b", .openai = i, .timeout_s = 10, .connect_timeout_s = 5,
                         .retries = 0, .backoff_s = 0, .backoff_max_s = 0, .seed = 1, .num_ctx = 0};
    client[i] = jh_client_new(&cfg[i]);
    if (!client[i]) { fprintf(stderr, "fuzz_judge_http: no client\n"); exit(1); }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const int status[4] = {200, 200, 404, 500};
  int openai = data[0] & 1, info = (data[0] >> 3) & 1;
  pthread_mutex_lock(&lock);
  free(reply);
  reply = malloc(size);
  memcpy(reply, data + 1, size - 1);
  reply_len = size - 1;
  reply_status = status[(data[0] >> 1) & 3];
  pthread_mutex_unlock(&lock);
  if (info) {
    char *digest = NULL, *version = NULL, err[512] = "";
    int rc = jh_server_info(client[openai], &digest, &version, err, sizeof err);
    FZ_CHECK(rc == 0, "the server was reachable but: %s", err);
    free(digest);
    free(version);
    return 0;
  }
  jh_result r;
  jh_judge(client[openai], "Rate this.", &r);
  FZ_CHECK(r.attempts == 1, "%d attempts", r.attempts);
  if (r.status == JH_OK) {
    for (int i = 0; i < JH_NSCORES; i++) FZ_CHECK(r.scores[i] >= 1 && r.scores[i] <= 10, "score");
    FZ_CHECK(r.rationale && r.http_status == 200, "ok without a rationale or with HTTP %ld", r.http_status);
  } else {
    FZ_CHECK(r.error && r.error[0], "status %d without a message", (int)r.status);
    FZ_CHECK(r.status != JH_MODEL_MISSING || r.http_status == 404, "model missing on HTTP %ld", r.http_status);
  }
  jh_result_free(&r);
  return 0;
}
