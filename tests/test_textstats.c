/* test_textstats: distinct-n and word splitting on crafted texts whose n-gram counts
 * are known by hand, including Unicode white space, invalid UTF-8 and the no-n-gram case. */
#include "testlib.h"
#include "text/textstats.h"
#include "base/util.h"
#include <math.h>

static void counts(const char *name, const char *text, int n, size_t want_u, size_t want_t) {
  size_t u = 99, t = 99;
  int rc = ts_ngram_counts(text, n, &u, &t);
  CHECK(rc == 0 && u == want_u && t == want_t, "%s: n=%d unique %zu/%zu total %zu/%zu",
        name, n, u, want_u, t, want_t);
  double d = ts_distinct_n(text, n);
  if (want_t == 0) CHECK(isnan(d), "%s: n=%d distinct is NaN with no n-grams", name, n);
  else CHECK(d == (double)want_u / (double)want_t, "%s: n=%d distinct %.17g == %zu/%zu",
             name, n, d, want_u, want_t);
}

int main(void) {
  /* a b a b a: bigrams ab ba ab ba; trigrams aba bab aba */
  counts("alternating", "a b a b a", 2, 2, 4);
  counts("alternating", "a b a b a", 3, 2, 3);
  counts("alternating", "a b a b a", 1, 2, 5);

  /* mixed ASCII white space, runs of it, leading and trailing */
  const char *cat = "  the cat\n\tthe cat\r\nthe   cat \f";
  CHECK(ts_count_words(cat) == 6, "ASCII white space splits into 6 words (%zu)", ts_count_words(cat));
  counts("cat", cat, 2, 2, 5);
  counts("cat", cat, 3, 2, 4);

  /* Unicode white space: NBSP, ideographic space, em space, line separator, NEL */
  const char *uni = "x\xC2\xA0y\xE3\x80\x80x\xE2\x80\x83y\xE2\x80\xA8x\xC2\x85y";
  CHECK(ts_count_words(uni) == 6, "Unicode white space splits into 6 words (%zu)", ts_count_words(uni));
  counts("unicode", uni, 2, 2, 5);
  counts("unicode", uni, 3, 2, 4);
  /* non-space non-ASCII letters stay inside words; zero-width space is not White_Space */
  counts("letters", "\xC3\xA9t\xC3\xA9 \xC3\xA9t\xC3\xA9 caf\xE2\x80\x8B" "e", 1, 2, 3);

  /* word boundaries matter: (ab,c) (c,a) (a,bc) are three different bigrams */
  counts("boundaries", "ab c a bc", 2, 3, 3);
  /* case is significant */
  counts("case", "The the THE the", 1, 3, 4);

  /* too few words: no n-grams, NaN */
  counts("empty", "", 2, 0, 0);
  counts("spaces only", " \t\n ", 2, 0, 0);
  counts("one word", "hello", 2, 0, 0);
  counts("two words", "hello world", 2, 1, 1);
  counts("two words", "hello world", 3, 0, 0);

  /* invalid UTF-8 bytes are word characters */
  counts("invalid utf8", "\xff\xfe \xff\xfe \x80", 1, 2, 3);

  /* n < 1 is rejected */
  size_t u = 7, t = 7;
  CHECK(ts_ngram_counts("a b", 0, &u, &t) == -1 && u == 0 && t == 0, "n=0 rejected");
  CHECK(isnan(ts_distinct_n("a b", 0)), "n=0 distinct is NaN");

  /* a long periodic text: 7 distinct words repeated; exactly 7 distinct bigrams and
   * trigrams among 9999 / 9998 (exercises the hash set well past its first size) */
  char *big = xl_malloc(10000 * 4 + 1);
  size_t k = 0;
  for (int i = 0; i < 10000; i++) {
    big[k++] = 'a' + i % 7;
    big[k++] = (char)('0' + i % 7);
    big[k++] = (i % 3) ? ' ' : '\n';
  }
  big[k] = 0;
  counts("periodic", big, 2, 7, 9999);
  counts("periodic", big, 3, 7, 9998);
  /* all different words: distinct-2 is exactly 1 */
  k = 0;
  for (int i = 0; i < 2000; i++) k += (size_t)sprintf(big + k, "w%d ", i);
  counts("all distinct", big, 2, 1999, 1999);
  free(big);
  return tl_done();
}
