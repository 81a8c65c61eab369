/* fuzz_judge: the judge's answer parser (judge/judge_http.h: jh_parse_answer, which turns
 * the model's reply text into four 1-10 scores and a rationale) and the text helpers that
 * build the judging prompt from stored records (jh_excerpt, jh_build_prompt) on arbitrary
 * text. A reply is either JH_OK with scores in 1..10 and a rationale, or JH_PARSE_ERROR
 * with a message; the raw text is always kept. An excerpt never grows a text by more than
 * its marker line, and without a limit it is the text itself. The HTTP envelope around
 * the reply is fuzzed by fuzz_judge_http. */
#include "fuzz_common.h"
#include "judge/judge_http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fz_cstr(data, size);
  jh_result r;
  memset(&r, 0, sizeof r);
  jh_status st = jh_parse_answer(text, &r);
  FZ_CHECK(st == r.status && r.raw && !strcmp(r.raw, text), "status or raw text");
  if (st == JH_OK) {
    for (int i = 0; i < JH_NSCORES; i++) FZ_CHECK(r.scores[i] >= 1 && r.scores[i] <= 10, "score %d = %d", i, r.scores[i]);
    FZ_CHECK(r.rationale != NULL, "no rationale");
  } else {
    FZ_CHECK(st == JH_PARSE_ERROR && r.error && r.error[0], "a refused answer has no message");
  }
  jh_result_free(&r);

  static const size_t maxes[] = {0, 1, 2, 3, 10, 200};
  size_t n = strlen(text);
  for (size_t k = 0; k < sizeof maxes / sizeof *maxes; k++) {
    char *e = jh_excerpt(text, maxes[k]);
    FZ_CHECK(e && strlen(e) <= n + 64, "excerpt of %zu bytes is %zu bytes", n, strlen(e));
    if (maxes[k] == 0) FZ_CHECK(!strcmp(e, text), "excerpt without a limit changed the text");
    free(e);
  }
  char *p = jh_build_prompt(text, text + n / 2, 40);
  FZ_CHECK(p && strstr(p, "CONTINUATION:"), "prompt");
  free(p);
  free(text);
  return 0;
}
