/* judge_internal: the model-based judge of `xl-judge internal`. It rates each saved
 * continuation (outputs.jsonl, written by xl-save) by how likely a critic model finds it
 * after its prompt: the mean log-probability of the continuation's tokens, teacher-forced,
 * its perplexity, and the repetition measures distinct-2/3 (textstats.h).
 *
 * Position rule (the point of this file): continuation token t is scored with the
 * log-softmax of the logits computed from everything before it, prompt included; the
 * first continuation token is scored with the logits after the last prompt token.
 * Log-softmax is taken in double precision over the model's (already soft-capped) logits.
 * Not for: generating outputs (xl-save), the external LLM judge (xl-judge ollama), or the
 * command around the scorer (reading outputs.jsonl, options, writing the ratings: that is
 * `xl-judge internal`, in tools/xl-judge.c).
 *
 * Ownership: a ji_scorer borrows its session (the caller frees it) and owns its buffer;
 * rows returned by ji_rating_row belong to the caller (cJSON_Delete), ids returned by
 * ji_output_ids too (free). */
#ifndef XL_JUDGE_INTERNAL_H
#define XL_JUDGE_INTERNAL_H
#include "engine/engine.h"
#include <cJSON.h>
#include <stdint.h>

typedef struct {
  xl_session *s;     /* borrowed */
  int vocab;
  long block;        /* continuation tokens fed per prefill call (bounds the buffer) */
  float *logits;     /* [block, vocab] all-position logits of one block */
  /* the state after the last prompt, so outputs sharing a prompt prefill it once */
  int32_t *prompt;   /* [nprompt] ids of the cached prompt (NULL: nothing cached) */
  long nprompt;
  float *snap;       /* every state tensor and the logits, as xl_state_visit lists them */
  size_t nsnap;
  long snap_tokens;
  int snap_last;
} ji_scorer;

/* block <= 0 picks a default (256). */
void ji_scorer_init(ji_scorer *sc, xl_session *s, long block);
void ji_scorer_free(ji_scorer *sc);

/* log p(id) under softmax(logits[0..V)), in double precision. */
double ji_log_softmax(const float *logits, int V, int32_t id);

/* Scores cont[0..nc) after prompt[0..np) from an empty state. The state after the prompt
 * is kept: the next call with the same prompt ids restores it instead of prefilling again
 * (bitwise the same result).
 * *sum gets the sum of the log-probabilities; lp (if not NULL, nc entries) each token's
 * log-probability, NaN for a token that has no logits to be scored against (only the
 * first one, when np == 0). Returns the number of tokens scored. Ids must be < vocab. */
long ji_score(ji_scorer *sc, const int32_t *prompt, long np, const int32_t *cont, long nc, double *sum, double *lp);

/* An output's token_ids (an outputs.jsonl object) as ids of a critic with vocab entries:
 * a malloc'd array of *n ids (caller frees). NULL with a message in err when there is no
 * token_ids array or an entry is not an id below vocab (ji_score needs that). */
int32_t *ji_output_ids(const cJSON *output, int vocab, long *n, char *err, size_t errlen);

/* A ratings row for one output (an outputs.jsonl object): slug, trial, avg_logprob
 * (= sum / nscored), ppl (= exp(-avg_logprob)), len_tokens (= ncont), distinct2,
 * distinct3 (of text), then the output's backend, chunk_size, heads_per_band, workers,
 * context; then the JSONL-only extras scored_tokens, prompt_tokens, prompt_file.
 * Undefined values (no token scored, fewer than n words, overflow) are null. */
cJSON *ji_rating_row(const cJSON *output, const char *text, long ncont, double sum, long nscored, long nprompt);

/* The ratings.csv columns, in order. */
extern const char *const ji_csv_cols[];
extern const size_t ji_ncsv_cols;

#endif
