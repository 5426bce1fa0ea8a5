/* retrieval.h - choosing adapters for a query: similarity scores (cosine, L2 distance,
 * BM25 over the adapters' training texts) and the top-N by descending similarity.
 *
 * Every score is "higher = more similar": cosine similarity, the negated Euclidean
 * distance, or the BM25 score. Ties keep the lower index first, so results do not
 * depend on sort stability. (The published reference code sorted ascending and so picked
 * the least similar modules; here the order is descending by construction.) */
#ifndef ILORA_RETRIEVAL_H
#define ILORA_RETRIEVAL_H

#include "util.h"

typedef enum { IL_SIM_COSINE, IL_SIM_L2, IL_SIM_BM25 } il_similarity;

/* "cosine" | "l2" | "bm25" -> value; -1 with an error listing the names otherwise. */
int il_similarity_parse(const char *name, il_similarity *out);
const char *il_similarity_name(il_similarity s);

/* Cosine similarity (double accumulation; norms clamped at 1e-12, so 0 for a zero vector). */
float il_cosine(const float *a, const float *b, int dim);
float il_vec_l2(const float *a, const float *b, int dim);

/* scores[i] = similarity of query to each of m vectors (rows of vecs [m, dim]). */
void il_vector_scores(il_similarity s, const float *query, const float *vecs, int m, int dim,
                      float *scores);

/* The n indices of the highest scores, best first; ties -> lower index first. NaN
 * scores rank last. n must be in [1, m] (else -1 with an error). */
int il_top_n(const float *scores, int m, int n, int *out);

/* Okapi BM25 over m documents (k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5)/(df + 0.5))).
 * Terms: maximal runs of letters and digits, lower-cased (Unicode-aware). */
typedef struct il_bm25 il_bm25;
il_bm25 *il_bm25_build(int m, const char *const *docs);
int il_bm25_scores(const il_bm25 *b, const char *query, float *scores /* [m] */);
void il_bm25_free(il_bm25 *b);

#endif
