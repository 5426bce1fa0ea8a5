/* t5_train_kernels.h - the layers of T5 as forward / backward pairs for training
 * (t5_train.c chains them). Not public.
 *
 * Conventions (llm.c's): outputs first, then inputs, then weights, then dimensions.
 * Shapes are row-major; N rows of C features; weights keep Hugging Face's [out, in] layout
 * (y = x W^T). Every matrix product is one cblas_sgemm.
 * Backward functions ACCUMULATE (+=) into parameter gradients and into the gradient of
 * their input (dinp), so that branches and layers sum up; the caller zeroes them first
 * (il_t5_train_zero_grad, or a memset of an activation gradient). Outputs that are pure
 * intermediates of one layer (attention dq/dk/dv, the activation's da/db) are written, not
 * accumulated, and say so. A NULL gradient pointer skips that gradient (frozen weight).
 * Results do not depend on the number of threads except through OpenBLAS.
 */
#ifndef ILORA_T5_TRAIN_KERNELS_H
#define ILORA_T5_TRAIN_KERNELS_H

#include "t5_internal.h"

/* ===== embedding ===== */

/* out [N, C] = table [V, C] rows ids [N] (T5 does not scale embeddings). */
void tk_embed_forward(float *out, const int32_t *ids, const float *table, int N, int C);
/* dtable [V, C] += dout [N, C] scattered to rows ids [N] (in row order: deterministic). */
void tk_embed_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C);

/* ===== RMS norm (T5LayerNorm) ===== */

/* out [N, C] = w [C] * inp * rinv, rinv [N] = 1 / sqrt(mean(inp^2) + eps) (kept for backward). */
void tk_rmsnorm_forward(float *out, float *rinv, const float *inp, const float *w, int N, int C,
                        float eps);
/* dinp [N, C] += r (w dout) - r^3 / C * inp * sum(w dout inp);  dw [C] += sum_rows dout inp r. */
void tk_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rinv, int N, int C);

/* ===== linear layers ===== */

/* out [N, OC] = beta * out + inp [N, C] W^T, W [OC, C]; beta 0 or 1 (residual add). */
void tk_matmul_forward(float *out, const float *inp, const float *W, int N, int C, int OC,
                       float beta);
/* dinp [N, C] += dout [N, OC] W;  dW [OC, C] += dout^T inp. */
void tk_matmul_backward(float *dinp, float *dW, const float *dout, const float *inp,
                        const float *W, int N, int C, int OC);

/* LoRA term of an adapted linear (PEFT): u [N, r] = inp A^T, out [N, OC] += s * u B^T;
 * A [r, C], B [OC, r]. u is kept for backward. */
void tk_lora_forward(float *out, float *u, const float *inp, const float *A, const float *B,
                     float s, int N, int C, int OC, int r);
/* With G = dout [N, OC] and gb [N, r] = G B (scratch, written):
 * dB [OC, r] += s G^T u;  dA [r, C] += s gb^T inp;  dinp [N, C] += s gb A. */
void tk_lora_backward(float *dinp, float *dA, float *dB, float *gb, const float *dout,
                      const float *inp, const float *u, const float *A, const float *B, float s,
                      int N, int C, int OC, int r);

/* ===== feed-forward activation ===== */

/* out [n] = act(a) * b (gated) or act(a) (b NULL). */
void tk_act_forward(float *out, const float *a, const float *b, size_t n, il_act act);
/* da [n] = dout * b * act'(a), db [n] = dout * act(a) (gated; db and b NULL otherwise).
 * Written, not accumulated. gelu_new' = 0.5(1+t) + 0.5 x (1-t^2) c (1 + 3*0.044715 x^2). */
void tk_act_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                     size_t n, il_act act);

/* ===== attention =====
 * Per sequence i and head h: S = Q K^T (+ bias), P = softmax(S) (causal: query r sees keys
 * 0..r, the rest get probability exactly 0), ctx = P V. T5 has no 1/sqrt(d_kv) scaling.
 * q, ctx [Tq, H*dkv] rows of qs; k, v [Tk, H*dkv] rows of ks (sequence i attends to
 * sequence i). p: the probabilities, sequence i's block [H, len_q, len_k] at p_off[i].
 * Relative position bias: rel_bias [n_buckets, H] (layer 0's table), bucket[rel + maxlen - 1]
 * the bucket of rel = key - query, |rel| < maxlen; rel_bias NULL for cross-attention. */
void tk_attention_forward(float *ctx, float *p, const float *q, const float *k, const float *v,
                          const t5_seqs *qs, const t5_seqs *ks, const size_t *p_off,
                          const float *rel_bias, const int *bucket, int maxlen, bool causal,
                          int H, int dkv);
/* dq [Tq, H*dkv], dk, dv [Tk, H*dkv] written (not accumulated); drel [n_buckets, H] +=
 * the bias gradient (may be NULL); dp: scratch of p's size. dS = P (dP - rowsum(dP P)). */
void tk_attention_backward(float *dq, float *dk, float *dv, float *drel, float *dp,
                           const float *dctx, const float *p, const float *q, const float *k,
                           const float *v, const t5_seqs *qs, const t5_seqs *ks,
                           const size_t *p_off, const int *bucket, int maxlen, int H, int dkv);

/* ===== loss ===== */

/* losses [N] = logsumexp(logits row) - logit[target] in double (0 where target < 0). */
void tk_crossentropy_forward(double *losses, const float *logits, const int32_t *targets, int N,
                             int V);
/* dlogits [N, V] = dloss * (softmax(logits) - onehot(target)) for rows with target >= 0,
 * 0 for the others. Written (may alias logits: the row is read before it is written). */
void tk_crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets,
                              float dloss, int N, int V);

#endif
