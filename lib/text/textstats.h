/* textstats: surface statistics of generated text that need no model, used by the
 * judges: word splitting on Unicode white space and distinct-n (the share of unique
 * word n-grams among all word n-grams, a repetition measure: 1 = no n-gram repeats).
 * Not for: tokenization in the model's sense (see tokenizer), or any scoring that
 * needs log-probabilities.
 *
 * Words are maximal runs of characters that are not Unicode White_Space (ASCII
 * space, \t \n \v \f \r, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). Words compare byte for byte (no case folding). Bytes
 * that are not valid UTF-8 count as word characters. */
#ifndef XL_TEXTSTATS_H
#define XL_TEXTSTATS_H
#include <stddef.h>
#include <stdint.h>

/* Number of words in text (NUL-terminated UTF-8). */
size_t ts_count_words(const char *text);

/* Counts the word n-grams of text (n >= 1): *total = all n-grams (words - n + 1, or
 * 0 when there are fewer than n words), *unique = distinct ones.
 * Returns 0, or -1 for n < 1 (counts set to 0). */
int ts_ngram_counts(const char *text, int n, size_t *unique, size_t *total);

/* distinct-n = unique / total word n-grams. A text with no n-gram (fewer than n
 * words) has no defined value: returns NaN, which writers must turn into JSON null. */
double ts_distinct_n(const char *text, int n);

#endif
