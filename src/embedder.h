/* embedder.h - sentence embeddings for retrieving and routing LoRA adapters by similarity.
 *
 * Two kinds of model give the same API:
 *
 *   - a sentence-transformers directory (modules.json), e.g. all_datasets_v4_MiniLM-L6 or
 *     all-MiniLM-L6-v2: a BERT "Transformer" module (path "" or a subdirectory holding
 *     config.json, the weights, vocab.txt, tokenizer configs and optionally
 *     sentence_bert_config.json), a "Pooling" module (its config.json: mean / CLS / max /
 *     mean-sqrt-len pooling; several modes concatenate in sentence-transformers' order CLS,
 *     max, mean, mean-sqrt-len) and optionally "Normalize" (L2, no directory needed).
 *     Texts are tokenized as [CLS] ... [SEP], truncated to max_seq_length
 *     (sentence_bert_config.json; absent -> min(max_position_embeddings,
 *     model_max_length); never above max_position_embeddings), lower-cased first when
 *     sentence_bert_config.json says do_lower_case. Mean pooling averages every real
 *     token, [CLS] and [SEP] included, never padding.
 *
 *   - a T5 model directory (config.json with model_type "t5" or a T5 architecture, the
 *     weights and the T5 tokenizer): Sentence-T5 style, the mean of the encoder's final
 *     states over all tokens (the appended </s> included), L2-normalised; texts are
 *     truncated to model_max_length (tokenizer_config.json, default 512) keeping </s>.
 *     il_embedder_from_t5() does the same with a model the caller has already loaded, so a
 *     LoRA library can be indexed with the base model alone.
 *
 * Batches are ragged (no padding), so a text's vector does not depend on the other texts
 * of the batch. il_embedder_embed() tokenizes, then runs the model over chunks of a few
 * thousand tokens (BLAS GEMMs over the packed tokens, OpenMP inside).
 *
 * Errors follow util.h: NULL / -1 with il_errmsg() naming the file and the field or tensor
 * (for a text: its index in the batch). Invalid UTF-8 text is an error.
 *
 * Threads: an embedder holds no per-call state, so several threads may call
 * il_embedder_embed / _tokenize on one embedder at once. il_embedder_set_normalize is not
 * safe against running calls. A borrowed T5 model is used as it is, including any linear
 * hook (LoRA) set on it: clear the hook to embed with the base weights. */
#ifndef ILORA_EMBEDDER_H
#define ILORA_EMBEDDER_H

#include <stdbool.h>
#include <stdint.h>

#include "sentencepiece.h"
#include "t5.h"

typedef struct il_embedder il_embedder;

/* A sentence-transformers directory (modules.json) -> BERT embedder; a T5 model directory
 * (config.json of a T5 model, no modules.json) -> T5-encoder mean pooling, normalised. */
il_embedder *il_embedder_load(const char *dir);
/* Sentence-T5 style embedder over a loaded T5 model and tokenizer, both borrowed (they must
 * outlive the embedder). max_length >= 2 (e.g. 512); normalize: L2-normalise vectors. */
il_embedder *il_embedder_from_t5(il_t5 *m, const il_tokenizer *tok, int max_length,
                                 bool normalize);
void il_embedder_free(il_embedder *e); /* NULL is fine */

int il_embedder_dim(const il_embedder *e);        /* floats per vector */
int il_embedder_max_length(const il_embedder *e); /* ids per text after truncation */
const char *il_embedder_kind(const il_embedder *e); /* "bert" or "t5" */
bool il_embedder_normalizes(const il_embedder *e);
/* Switch the final L2 normalisation on or off (e.g. to get the raw pooled vector). */
void il_embedder_set_normalize(il_embedder *e, bool on);

/* out [n, dim] row-major: the vectors of n NUL-terminated UTF-8 texts. */
int il_embedder_embed(il_embedder *e, int n, const char *const *texts, float *out);
/* The same from ids (as il_embedder_tokenize gives them); lens[i] >= 1. */
int il_embedder_embed_ids(il_embedder *e, int n, const int32_t *const *ids, const int *lens,
                          float *out);
/* The ids the model sees for a text: [CLS] ... [SEP] for BERT, ... </s> for T5, after
 * truncation. *ids is malloc'd. */
int il_embedder_tokenize(il_embedder *e, const char *text, int32_t **ids, int *n);


#endif
