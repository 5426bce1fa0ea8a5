/* t5_internal.h - the T5 model struct and the kernels shared by t5.c (load, teacher-forced
 * forward, loss) and t5_generate.c (greedy decoding with a KV cache). Not public. */
#ifndef ILORA_T5_INTERNAL_H
#define ILORA_T5_INTERNAL_H

#include "t5.h"
#include "tensors.h"

/* One block's weights, each labelled with its checkpoint key (l = layer, s = stack
 * "encoder"/"decoder"). inner = num_heads * d_kv. Pointers are float32 [out, in] and point
 * into the file mapping when the file holds aligned F32, else into converted copies. */
typedef struct {
    const float *q, *k, *v; /* [inner, d_model]  s.block.l.layer.0.SelfAttention.{q,k,v}.weight */
    const float *o;         /* [d_model, inner]  s.block.l.layer.0.SelfAttention.o.weight */
    const float *ln_self;   /* [d_model]         s.block.l.layer.0.layer_norm.weight */
    const float *cq, *ck, *cv; /* decoder only: [inner, d_model] decoder.block.l.layer.1.EncDecAttention.* */
    const float *co;        /* decoder only: [d_model, inner] */
    const float *ln_cross;  /* decoder only: [d_model] decoder.block.l.layer.1.layer_norm.weight */
    const float *wi;        /* [d_ff, d_model]   s.block.l.layer.F.DenseReluDense.wi (or wi_0 when gated) */
    const float *wi1;       /* [d_ff, d_model]   ...DenseReluDense.wi_1 (gated only, else NULL) */
    const float *wo;        /* [d_model, d_ff]   ...DenseReluDense.wo */
    const float *ln_ff;     /* [d_model]         s.block.l.layer.F.layer_norm.weight (F = 1 enc, 2 dec) */
} t5_block;

typedef struct {
    int n_layers;
    t5_block *blocks;
    const float *rel_bias; /* [rel_buckets, num_heads] s.block.0.layer.0.SelfAttention.relative_attention_bias.weight */
    const float *final_ln; /* [d_model] s.final_layer_norm.weight */
} t5_stack;

struct il_t5 {
    il_t5_config cfg;
    int inner;             /* num_heads * d_kv */
    const float *embed;    /* [vocab, d_model] shared.weight (alias: {encoder,decoder}.embed_tokens.weight) */
    const float *lm_head;  /* [vocab, d_model] lm_head.weight, or embed when tied */
    float lm_scale;        /* 1, or d_model^-0.5 when tied */
    t5_stack enc, dec;
    il_t5_linear_hook hook;
    void *hook_user;
    /* storage */
    il_checkpoint *ckpt;   /* kept open: weights point into its mappings */
    il_tensor_file *file;  /* the single file of il_t5_load_files */
    float **owned;         /* converted copies / random weights */
    int n_owned;
};

/* A set of packed sequences: sequence i occupies rows [off[i], off[i] + len[i]). */
typedef struct {
    int n;
    const int *off;  /* [n + 1], off[n] = total rows */
    const int *len;  /* [n] */
    const int *item; /* [n] batch index of each sequence (for the hook) */
} t5_seqs;

/* ---- kernels (t5_kernels.c) ---- */

/* y [rows, d] = rmsnorm(x [rows, d]) * w [d]; y may equal x. */
void t5_rmsnorm_rows(float *y, const float *x, const float *w, int rows, int d, float eps);
/* a [n] = act(a) (* b when b != NULL), elementwise. */
void t5_act_mul(float *a, const float *b, size_t n, il_act act);
/* In-place softmax of x[0..n) in float32 (max-subtracted). */
void t5_softmax(float *x, int n);
/* Position-bias table for one stack: tab[h * (2*maxlen - 1) + (rel + maxlen - 1)] is the
 * bias of head h for relative position rel = key - query, |rel| < maxlen. */
void t5_bias_table(float *tab, const float *rel_bias, int heads, int maxlen, bool bidirectional,
                   int num_buckets, int max_distance);

/* ---- the one projection entry point (t5.c) ----
 * y [rows, out] (+)= x [rows, in] W^T, then the linear hook. beta 0: overwrite, 1: add. */
int t5_linear(const il_t5 *m, const t5_seqs *rows, il_t5_stack st, int layer, il_t5_proj p,
              const float *W, int in, int out, const float *x, float *y, float beta);

/* Self/cross attention over packed sequences, parallel over (sequence, head).
 * q [Tq, inner] rows of query sequence i: qs->off[i]...; k, v [Tk, inner] likewise with ks.
 * ctx [Tq, inner] output. bias: a t5_bias_table with maxlen (NULL for cross-attention).
 * causal: query j attends keys 0..j. scratch: t5_max_threads() blocks of
 * scratch_per_thread >= round16(maxq * maxk) + t5_attn_pack_floats(maxk, d_kv) floats. */
void t5_attention(float *ctx, const float *q, const float *k, const float *v, const t5_seqs *qs,
                  const t5_seqs *ks, int heads, int d_kv, const float *bias, int maxlen,
                  bool causal, float *scratch, size_t scratch_per_thread);

size_t t5_attn_pack_floats(int maxk, int d_kv);
float t5_dot(const float *a, const float *b, int n);
void t5_axpy(float *restrict y, float a, const float *restrict x, int n); /* y += a x */
/* y [R, out] (+)= x [R, in] W^T for small R (decoding steps); beta 0 or 1. */
void t5_gemm_few_rows(float *y, const float *x, const float *W, int R, int in, int out, float beta);
#define T5_FEW_ROWS 8
int t5_max_threads(void);
int t5_thread_id(void); /* omp_get_thread_num() */

/* Encoder over packed sequences: x [T, d_model] out (after final_layer_norm).
 * trace (optional): [(L+1), T, d_model]. (t5.c) */
int t5_encode_packed(il_t5 *m, const int32_t *const *ids, const t5_seqs *s, float *out,
                     float *trace);

#endif
