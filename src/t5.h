/* t5.h - T5 / Flan-T5 encoder-decoder inference on the CPU, matching Hugging Face
 * transformers (4.31) in float32.
 *
 * Supported: T5 v1.1 / Flan-T5 (gated-GELU with the tanh `gelu_new`, untied lm_head) and
 * original T5 v1.0 (ReLU `wi`/`wo`, lm_head tied to the embedding with its input scaled by
 * d_model^-0.5), plus the "gated-relu" and "gelu" (erf) feed-forward variants.
 *
 * Shapes and conventions
 * - Inputs are ragged: a batch is n sequences, ids[i] holding lens[i] tokens (lens[i] >= 1).
 *   No padding is ever materialised; all tokens of all sequences are packed into one
 *   [sum lens, d_model] matrix, row-major, sequence after sequence.
 * - Every id must be in [0, vocab_size); an id out of range is an error naming the batch
 *   item and position.
 * - Weights keep the Hugging Face layout [out, in]: y = x W^T.
 * - Computation is float32 whatever the checkpoint dtype (BF16/F16 widened once at load).
 *
 * Errors: functions return NULL / -1 and set il_errmsg() (util.h); messages name the file
 * and the tensor or field. Nothing is left allocated on failure.
 *
 * Threads: each call uses OpenMP (attention, norms, decoding kernels) and OpenBLAS (the
 * projections) over all of omp_get_max_threads(). An il_t5 holds no run state (scratch is
 * allocated per call), so concurrent calls on one model from several threads are safe as
 * long as the linear hook (if any) is; they are not faster, since the OpenMP build of
 * OpenBLAS runs one multi-threaded GEMM at a time.
 */
#ifndef ILORA_T5_H
#define ILORA_T5_H

#include "util.h"

/* ===== configuration ===== */

typedef enum {
    IL_ACT_RELU,     /* "relu", "gated-relu" */
    IL_ACT_GELU_NEW, /* "gated-gelu" (HF maps it to gelu_new: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3)))) */
    IL_ACT_GELU      /* "gelu" (erf form) */
} il_act;

typedef struct {
    int vocab_size;          /* vocab_size */
    int d_model;             /* d_model */
    int d_kv;                /* d_kv (per head) */
    int num_heads;           /* num_heads */
    int d_ff;                /* d_ff */
    int num_layers;          /* num_layers (encoder) */
    int num_decoder_layers;  /* num_decoder_layers (absent -> num_layers) */
    int rel_buckets;         /* relative_attention_num_buckets (default 32) */
    int rel_max_distance;    /* relative_attention_max_distance (default 128) */
    float eps;               /* layer_norm_epsilon (default 1e-6) */
    bool gated;              /* feed_forward_proj "gated-*": wi_0, wi_1, wo; else wi, wo */
    il_act act;
    bool tie_word_embeddings; /* default true (as in HF): lm_head = embedding, input * d_model^-0.5 */
    int pad_id;              /* pad_token_id (default 0) */
    int eos_id;              /* eos_token_id (default 1) */
    int decoder_start_id;    /* decoder_start_token_id (absent -> pad_id) */
} il_t5_config;

/* Parse config.json at path (or JSON text; `where` names it in errors). 0 / -1. */
int il_t5_config_load(il_t5_config *c, const char *config_json_path);
int il_t5_config_parse(il_t5_config *c, const char *json, const char *where);
/* Range checks shared by the parser and il_t5_new_random; `where` names the source. */
int il_t5_config_validate(const il_t5_config *c, const char *where);

/* ===== model ===== */

typedef struct il_t5 il_t5;

/* Load a model directory: config.json + the checkpoint il_checkpoint_open finds
 * (model.safetensors, sharded safetensors, pytorch_model.bin, ...). */
il_t5 *il_t5_load(const char *model_dir);
/* Load from an explicit config.json and one weights file (safetensors or torch .bin). */
il_t5 *il_t5_load_files(const char *config_path, const char *weights_path);
/* Random weights (deterministic in seed), no files: for benchmarks and tests. */
il_t5 *il_t5_new_random(const il_t5_config *c, uint64_t seed);
void il_t5_free(il_t5 *m); /* NULL is fine */
const il_t5_config *il_t5_get_config(const il_t5 *m);

/* ===== the linear hook (adapters) =====
 * Every projection of the model (q/k/v/o of every attention, wi/wi_0/wi_1/wo of every
 * feed-forward) goes through one internal function. After computing y = x W^T for a
 * block of rows it calls the hook, if one is set, which may add to y (e.g. LoRA:
 * y += s * (x A^T) B^T, with a different adapter per batch item). */

typedef enum { IL_T5_ENCODER = 0, IL_T5_DECODER = 1 } il_t5_stack;
typedef enum {
    IL_T5_SELF_Q, IL_T5_SELF_K, IL_T5_SELF_V, IL_T5_SELF_O,     /* layer.0.SelfAttention.* */
    IL_T5_CROSS_Q, IL_T5_CROSS_K, IL_T5_CROSS_V, IL_T5_CROSS_O, /* decoder layer.1.EncDecAttention.* */
    IL_T5_FF_WI, IL_T5_FF_WI_0, IL_T5_FF_WI_1, IL_T5_FF_WO,     /* layer.{1|2}.DenseReluDense.* */
    IL_T5_PROJ_COUNT
} il_t5_proj;

typedef struct {
    il_t5_stack stack;
    int layer;       /* block index within the stack */
    il_t5_proj proj;
    int in, out;     /* W is [out, in] */
} il_t5_linear_id;

/* HF module name without ".weight", e.g. "encoder.block.3.layer.0.SelfAttention.q" or
 * "decoder.block.0.layer.2.DenseReluDense.wo". Returns snprintf's result. */
int il_t5_linear_name(const il_t5_linear_id *id, char *buf, size_t size);

/* Which rows belong to which batch item: group g is rows [row_start[g], row_start[g+1])
 * and belongs to batch item item[g] (the index in the caller's n inputs). During
 * generation finished items drop out, so groups are not always 0..n-1. */
typedef struct {
    int n_groups;
    const int *row_start; /* [n_groups + 1] */
    const int *item;      /* [n_groups] */
} il_t5_rows;

/* x [rows, in] (row-major, contiguous); y [rows, out] to which x W^T has just been added
 * (y may also hold a residual: the o and wo projections accumulate into the hidden
 * state), so the hook must ADD its term. Called from the calling thread, outside any
 * parallel region. Return 0, or -1 with il_seterr (the forward pass then fails). */
typedef int (*il_t5_linear_hook)(void *user, const il_t5_linear_id *id, const il_t5_rows *rows,
                                 const float *x, float *y);
/* Set (or clear with fn = NULL) the hook. Not thread-safe against running calls. */
void il_t5_set_linear_hook(il_t5 *m, il_t5_linear_hook fn, void *user);

/* ===== forward passes ===== */

/* Encoder: out [sum lens, d_model] = encoder output after final_layer_norm. */
int il_t5_encode(il_t5 *m, int n, const int32_t *const *ids, const int *lens, float *out);

/* Optional per-layer outputs, in transformers' output_hidden_states convention:
 * index 0 = embedding output, index l (1..L-1) = output of block l-1, index L = output of
 * the stack after final_layer_norm. Any pointer may be NULL. */
typedef struct {
    float *enc_hidden; /* [(num_layers + 1), sum lens, d_model] */
    float *dec_hidden; /* [(num_decoder_layers + 1), sum dec_lens, d_model] */
} il_t5_trace;

/* Teacher-forced decoder: dec_ids[i] (dec_lens[i] >= 1 tokens, usually starting with
 * decoder_start_id) attend causally to themselves and to input i.
 * logits [sum dec_lens, vocab_size] (may be NULL when only the trace is wanted). */
int il_t5_logits(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                 const int32_t *const *dec_ids, const int *dec_lens, float *logits);
int il_t5_forward(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                  const int32_t *const *dec_ids, const int *dec_lens, float *logits,
                  il_t5_trace *trace);

/* Cross-entropy of labels given inputs, as Hugging Face computes it with `labels`.
 * labels[i] (label_lens[i] >= 1 tokens, normally ending with eos) are the targets; the
 * decoder input is [decoder_start_id] + labels[i][:-1]. Label tokens equal to -100 or to
 * pad_id are ignored (LoraHub maps pad -> -100) and fed to the decoder as pad_id.
 * Outputs (each may be NULL):
 *   per_example_mean[n]   mean over item i's counted tokens (NaN if it has none)
 *   sum_per_example[n]    sum of token losses of item i
 *   count_per_example[n]  counted tokens of item i
 *   batch_mean            HF's outputs.loss: token mean over the whole batch (NaN if none)
 *   token_loss            [sum label_lens] per-token loss, 0 where ignored
 * Log-sum-exp is done in double. */
int il_t5_loss(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
               const int32_t *const *labels, const int *label_lens,
               float *per_example_mean, double *sum_per_example, int *count_per_example,
               double *batch_mean, float *token_loss);

/* ===== greedy generation ===== */

typedef struct {
    int max_new_tokens;   /* >= 1 (LoraHub / DESIGN.md: 256) */
    int max_batch;        /* rows encoded and decoded together; 0 = all n at once */
    int decoder_start_id; /* -1 = config's decoder_start_token_id */
    int eos_id;           /* -1 = config's eos_token_id */
    /* Optional: called after every step for every active row with that row's next-token
     * logits [vocab_size] (raw, no processors), from the calling thread. */
    void (*on_step)(void *user, int item, int step, const float *logits);
    void *user;
} il_gen_opts;

il_gen_opts il_gen_default_opts(void); /* max_new_tokens 256, everything else default */

/* Greedy decoding (argmax, ties -> lowest id, like torch.argmax), each row stopping after
 * it emits eos or after max_new_tokens; finished rows drop out of the work.
 * out_ids[i]: malloc'd (caller frees), the generated ids without the start token and
 * including the final eos if one was produced; out_lens[i] its length; hit_limit[i]
 * (optional) true when row i stopped because of max_new_tokens without emitting eos.
 * On failure every out_ids[i] is NULL. */
int il_t5_generate(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                   const il_gen_opts *o, int32_t **out_ids, int *out_lens, bool *hit_limit);

/* ===== kernels (exposed for tests) ===== */

/* y[i] = w[i] * x[i] / sqrt(mean(x^2) + eps), n elements (T5LayerNorm). */
void il_t5_rmsnorm(float *y, const float *x, const float *w, int n, float eps);
float il_t5_gelu_new(float x);
/* Relative-position bucket of (key - query) as in T5Attention._relative_position_bucket. */
int il_t5_rel_bucket(int relative_position, bool bidirectional, int num_buckets, int max_distance);

#endif
