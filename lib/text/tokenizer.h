/* tokenizer: a Hugging Face `tokenizer.json` loader with an encoder and decoder that
 * reproduce the Rust `tokenizers` library byte for byte for byte-level BPE models
 * (GPT-2 / GPT-NeoX style): added/special tokens, NFC (NFD/NFKC/NFKD, Sequence)
 * normalizers, the ByteLevel pre-tokenizer with the GPT-2 split regex, BPE merges by
 * rank, and the ByteLevel decoder.
 * Not for: WordPiece/Unigram models, Metaspace or Split pre-tokenizers, other
 * normalizers or decoders (a file that needs one is refused at load time with its
 * name), truncation and padding (ignored), or inserting BOS/EOS (left to the caller,
 * see tok_adds_bos).
 *
 * Ownership: a tok_tokenizer is created by tok_load and owned by the caller, who frees
 * it with tok_free. Pointers it returns (tok_piece, tok_token_content) stay valid until
 * tok_free. tok_encode writes into a growable array the caller owns (free() it).
 * tok_decode returns a malloc'd string the caller frees. A tok_tokenizer keeps scratch
 * buffers for encoding, so tok_encode must not be called on the same tokenizer from two
 * threads at once; every other function is read-only and thread-safe. */
#ifndef XL_TOKENIZER_H
#define XL_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;

/* Loads DIR/tokenizer.json (+ DIR/tokenizer_config.json if present) when path is a
 * directory, or path itself as a tokenizer.json (+ tokenizer_config.json beside it if
 * present). NULL on error with a message in err naming the file and what is wrong,
 * e.g. "tokenizer.json: normalizer type \"Lowercase\" is not supported". */
tok_tokenizer *tok_load(const char *path, char *err, size_t errlen);
void tok_free(tok_tokenizer *t);

/* One past the largest id in the vocabulary or the added tokens (the size an
 * embedding table must have to cover every id this tokenizer can emit). */
int tok_vocab_size(const tok_tokenizer *t);

/* Encodes len bytes of UTF-8 text (NULs allowed) and appends the ids to *ids, a
 * growable array of capacity *cap and *n used entries that is realloc'd as needed
 * (start with *ids = NULL, *n = *cap = 0; the caller frees *ids). Never adds BOS/EOS.
 * Returns 0 on success; -1 with a message in err ("invalid UTF-8 at byte 17") on
 * invalid input, in which case *n is left as it was. */
int tok_encode(tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
               size_t *cap, char *err, size_t errlen);

/* The bytes one token decodes to (what the ByteLevel decoder makes of it; special
 * tokens give their content). Not NUL-terminated, may be a partial UTF-8 character.
 * No allocation; valid while t lives. NULL (and *len = 0) for an unknown id. */
const char *tok_piece(const tok_tokenizer *t, int32_t id, size_t *len);

/* Decodes ids into a malloc'd NUL-terminated string (caller frees); *len (if given)
 * gets its length. Like the Rust library: unknown ids are skipped, the pieces are
 * concatenated and invalid UTF-8 in the result is replaced by U+FFFD (one per maximal
 * invalid subsequence). Special tokens are kept (filter with tok_is_special). */
char *tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, size_t *len);

/* Streaming decode for a generator that prints tokens as they come: the concatenation
 * of everything tok_stream_push and tok_stream_finish return equals tok_decode of the
 * same ids. A UTF-8 character split across tokens is held back until it is complete.
 * The stream owns its buffer; a returned pointer is valid until the next call on the
 * stream. The tokenizer must outlive the stream. */
typedef struct tok_stream tok_stream;
tok_stream *tok_stream_new(const tok_tokenizer *t);
const char *tok_stream_push(tok_stream *s, int32_t id, size_t *len);
const char *tok_stream_finish(tok_stream *s, size_t *len); /* flushes; stream reusable */
void tok_stream_free(tok_stream *s);

/* BOS as the tokenizer files ask for it: tok_bos_id is the id of tokenizer_config.json
 * `bos_token` (looked up in the added tokens, then the vocabulary), else the first
 * special token of a TemplateProcessing post-processor, else -1. tok_adds_bos is 1 when
 * the tokenizer itself would add BOS: tokenizer_config.json `add_bos_token` when set,
 * otherwise whether the post-processor template (TemplateProcessing, Roberta, Bert)
 * begins with a special token. tok_encode never inserts it: the caller does. */
int tok_bos_id(const tok_tokenizer *t);
int tok_adds_bos(const tok_tokenizer *t);
/* eos_token from tokenizer_config.json, -1 if none. */
int tok_eos_id(const tok_tokenizer *t);

/* Id of a token given by its string as written in tokenizer.json (added token content
 * or vocabulary key, e.g. "Ġthe" or "<|endoftext|>"); -1 if absent. */
int32_t tok_token_id(const tok_tokenizer *t, const char *token);
/* The token string of an id as written in tokenizer.json (NUL-terminated, valid while
 * t lives); NULL for an unknown id. */
const char *tok_token_content(const tok_tokenizer *t, int32_t id);
/* 1 if id is an added token marked "special" (e.g. <|endoftext|>). */
int tok_is_special(const tok_tokenizer *t, int32_t id);

#endif
