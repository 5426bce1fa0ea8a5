/* sentencepiece.h - the T5 tokenizer: a SentencePiece unigram model (spiece.model, or a
 * Hugging Face tokenizer.json with a Unigram model) wrapped in the rules of Hugging Face's
 * slow T5Tokenizer (transformers 4.31, legacy=true, loaded with from_pretrained).
 *
 * Two layers:
 *   - il_tokenizer_encode / _tokenize / _decode reproduce transformers:
 *     tokenizer(text).input_ids, tokenizer.tokenize(text) and tokenizer.decode(ids, ...).
 *     Special-token strings in the text ("</s>", "<pad>", "<unk>", "<extra_id_N>") become
 *     their ids, "</s>" is appended unless already last, and <extra_id_N> has id
 *     vocab_size - 1 - N (T5's layout: the extra ids follow the sentencepiece pieces).
 *   - il_tokenizer_spm_encode / _spm_decode are raw sentencepiece Encode / Decode
 *     (no special-token splitting, no </s>).
 *
 * Only the legacy T5Tokenizer behaviour exists (what Flan-T5 checkpoints get: their configs
 * have no "legacy" key); "legacy": false in tokenizer_config.json is ignored.
 *
 * Text must be valid UTF-8 (an error otherwise). Errors follow util.h: NULL / -1 and
 * il_errmsg() naming the file and field. A loaded tokenizer is immutable, so one may be
 * shared by several threads. */
#ifndef ILORA_SENTENCEPIECE_H
#define ILORA_SENTENCEPIECE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct il_tokenizer il_tokenizer;

/* A tokenization: n ids and the matching token strings, each NUL-terminated with its
 * length in lens[i] (a token may hold a NUL byte: an unknown "\0" in the text is kept
 * verbatim, as transformers does). Free with il_tokens_free. */
typedef struct {
    int32_t *ids;
    char **tokens;
    size_t *lens;
    int n;
    char *storage_; /* private: the bytes tokens[] point into */
} il_tokens;
void il_tokens_free(il_tokens *t);

/* Loads model_dir/spiece.model (preferred) or model_dir/tokenizer.json, plus, when present,
 * tokenizer_config.json (extra_ids, default 100; special tokens;
 * clean_up_tokenization_spaces) and special_tokens_map.json, which overrides it as in
 * transformers. */
il_tokenizer *il_tokenizer_load(const char *model_dir);
/* The same from the bytes of a spiece.model, with T5Tokenizer defaults and extra_ids extra
 * ids. name is used in error messages. */
il_tokenizer *il_tokenizer_from_spm(const void *data, size_t len, const char *name, int extra_ids);
void il_tokenizer_free(il_tokenizer *t);

/* tokenizer(text).input_ids: the ids including the trailing </s> (empty or whitespace-only
 * text gives just [eos]). *ids is malloc'd. */
int il_tokenizer_encode(const il_tokenizer *t, const char *text, size_t len, int32_t **ids,
                        int *n_ids);
/* tokenizer.tokenize(text) with the ids of the tokens (no </s> appended). */
int il_tokenizer_tokenize(const il_tokenizer *t, const char *text, size_t len, il_tokens *out);
/* tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces). Ids at or
 * beyond the tokenizer size (a model vocabulary padded to a multiple of 8) decode to the
 * literal text "<extra_id_-K>" as transformers does. Negative ids are an error.
 * Returns a malloc'd string. */
char *il_tokenizer_decode(const il_tokenizer *t, const int32_t *ids, int n, bool skip_special,
                          bool cleanup);
/* The tokenizer's clean_up_tokenization_spaces (transformers' default: true). */
bool il_tokenizer_cleanup_default(const il_tokenizer *t);

/* Raw sentencepiece: sp.encode(text) as ids and pieces (a run of unknown characters is one
 * <unk> whose piece string is the run), and sp.decode(ids) (ids must be pieces). */
int il_tokenizer_spm_encode(const il_tokenizer *t, const char *text, size_t len, il_tokens *out);
char *il_tokenizer_spm_decode(const il_tokenizer *t, const int32_t *ids, int n);

/* Sizes and ids. vocab_size = pieces + extra ids = len(tokenizer) (2100 for the t5-tiny
 * golden; the model's embedding may be larger, e.g. 2104 / 32128). */
int il_tokenizer_vocab_size(const il_tokenizer *t);
int il_tokenizer_piece_count(const il_tokenizer *t);
int il_tokenizer_extra_ids(const il_tokenizer *t);
int il_tokenizer_pad_id(const il_tokenizer *t);
int il_tokenizer_eos_id(const il_tokenizer *t);
int il_tokenizer_unk_id(const il_tokenizer *t);
/* True for the ids of special tokens (pad, eos, unk, additional ones such as the extra ids):
 * the ids skip_special drops. */
bool il_tokenizer_is_special(const il_tokenizer *t, int32_t id);

/* Piece string of a sentencepiece id (NULL if id is not in [0, piece_count)); its score and
 * type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) if non-NULL. */
const char *il_tokenizer_piece(const il_tokenizer *t, int32_t id, float *score, int *type);
/* The precompiled charsmap blob as stored in the model (NULL, 0 if there is none). */
const uint8_t *il_tokenizer_charsmap(const il_tokenizer *t, size_t *len);

#endif
