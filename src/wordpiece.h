/* wordpiece.h - the BERT tokenizer: Hugging Face transformers 4.31's slow BertTokenizer
 * (BasicTokenizer + WordpieceTokenizer), loaded from a model directory.
 *
 * Files read from dir:
 *   vocab.txt                one token per line, id = line number (lines end at \n, \r\n
 *                            or \r, as Python's universal newlines; a later duplicate
 *                            line wins the token -> id lookup)
 *   tokenizer_config.json    optional: do_lower_case (true), do_basic_tokenize (true),
 *                            tokenize_chinese_chars (true), strip_accents (null: follow
 *                            do_lower_case), never_split, model_max_length,
 *                            clean_up_tokenization_spaces (true), special tokens
 *   special_tokens_map.json  optional: overrides the special tokens (unk/sep/pad/cls/mask
 *                            and bos/eos/additional_special_tokens if given)
 *
 * What tokenize(text) does (in this order, as transformers does):
 *   1. with do_lower_case, every character outside a literal special token is lower-cased
 *      one at a time (Python str.lower: U+0130 -> "i\u0307");
 *   2. the text is split at literal special tokens ("[CLS]", "[SEP]", ... case-sensitive),
 *      which stay whole;
 *   3. BasicTokenizer on each remaining piece: drop NUL, U+FFFD and every C* (control,
 *      format, unassigned, private use) character except \t \n \r; whitespace -> space;
 *      spaces around CJK ideographs; NFC; split on whitespace; per word (unless in
 *      never_split): lower-case, NFD + drop Mn (when lower-casing and strip_accents is not
 *      false, or strip_accents is true), split off every punctuation character (ASCII
 *      33-47, 58-64, 91-96, 123-126 and Unicode P*);
 *   4. WordPiece per word: greedy longest match first with "##" continuations; a word of
 *      more than 100 code points, or one with any unmatchable remainder, becomes a single
 *      unk token.
 * Special tokens missing from vocab.txt get ids vocab_lines, vocab_lines + 1, ... in the
 * order bos, eos, unk, sep, pad, cls, mask, additional (transformers adds them the same
 * way); the unk token itself must be in the vocabulary.
 *
 * Text must be valid UTF-8 (else an error). Errors follow util.h: NULL / -1 and
 * il_errmsg() naming the file and field. A loaded tokenizer is immutable and may be shared
 * by several threads. */
#ifndef ILORA_WORDPIECE_H
#define ILORA_WORDPIECE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sentencepiece.h" /* il_tokens */

typedef struct il_wordpiece il_wordpiece;

il_wordpiece *il_wordpiece_load(const char *dir);
void il_wordpiece_free(il_wordpiece *t); /* NULL is fine */

/* tokenizer.tokenize(text): the tokens and their ids (no [CLS]/[SEP]). Free with
 * il_tokens_free. */
int il_wordpiece_tokenize(const il_wordpiece *t, const char *text, size_t len, il_tokens *out);

/* The words WordPiece would receive: steps 1-3 above (special tokens kept whole). ids[i] is
 * the word's vocabulary id, or -1 when the word is not a vocabulary entry. */
int il_wordpiece_basic_tokenize(const il_wordpiece *t, const char *text, size_t len,
                                il_tokens *out);

/* tokenizer(text).input_ids: [CLS] tokens [SEP]. max_length > 0 truncates the tokens so
 * that the result has at most max_length ids, keeping the final [SEP]
 * (truncation=True, max_length=...); max_length must then be >= 2. 0 = no truncation.
 * *ids is malloc'd. */
int il_wordpiece_encode(const il_wordpiece *t, const char *text, size_t len, int max_length,
                        int32_t **ids, int *n);

/* tokenizer(a, b): [CLS] a [SEP] b [SEP] with token_type_ids 0 for "[CLS] a [SEP]" and 1 for
 * "b [SEP]" (no truncation). *ids and *types are malloc'd. */
int il_wordpiece_encode_pair(const il_wordpiece *t, const char *a, size_t alen, const char *b,
                             size_t blen, int32_t **ids, int32_t **types, int *n);

/* tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces): tokens joined
 * by spaces, " ##" removed, stripped, then (cleanup) transformers' clean-up replacements
 * (" ." -> ".", " ?", " !", " ,", " ' " -> "'", " n't", " 'm", " 's", " 've", " 're").
 * Ids with no token decode as the unk token; negative ids are an error. malloc'd. */
char *il_wordpiece_decode(const il_wordpiece *t, const int32_t *ids, int n, bool skip_special,
                          bool cleanup);
/* The tokenizer's clean_up_tokenization_spaces (default true). */
bool il_wordpiece_cleanup_default(const il_wordpiece *t);

/* Sizes and ids. vocab_size = len(tokenizer): the vocab.txt lines plus any special token
 * that had to be appended. */
int il_wordpiece_vocab_size(const il_wordpiece *t);
int il_wordpiece_cls_id(const il_wordpiece *t);
int il_wordpiece_sep_id(const il_wordpiece *t);
int il_wordpiece_pad_id(const il_wordpiece *t);
int il_wordpiece_unk_id(const il_wordpiece *t);
bool il_wordpiece_is_special(const il_wordpiece *t, int32_t id);
/* model_max_length from tokenizer_config.json (INT32_MAX when absent, as transformers'
 * "very large integer"). */
int il_wordpiece_model_max_length(const il_wordpiece *t);
/* Token string of an id (NULL when out of range) and id of a token string (-1 if none). */
const char *il_wordpiece_id_to_token(const il_wordpiece *t, int32_t id);
int32_t il_wordpiece_token_to_id(const il_wordpiece *t, const char *token);

/* Python's str.lower() of a whole UTF-8 string (full mappings, so U+0130 -> "i\u0307",
 * and the final-sigma rule), as sentence-transformers applies with do_lower_case. The text
 * must be valid UTF-8. Returns a malloc'd NUL-terminated string, *out_len its length. */
char *il_py_lower(const char *text, size_t len, size_t *out_len);

#endif
