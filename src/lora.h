/* lora.h - PEFT LoRA adapters for the T5 model (t5.h): loading adapter directories,
 * composing several adapters (LoraHub's rule and the exact sum of deltas), saving the result
 * as a PEFT directory, and applying adapters to the model, either per batch item through
 * the linear hook (unmerged) or folded into the weights (merged).
 *
 * LoRA maths (PEFT): an adapted projection computes y = x W^T + s * (x A^T) B^T with
 * A [r, in], B [out, r] and s = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora).
 *
 * Typical use:
 *     const il_t5_config *c = il_t5_get_config(model);
 *     il_lora *a = il_lora_load("lora_dir", c, NULL);           // validated against c
 *     il_lora_ctx *ctx = il_lora_ctx_new(model);                 // installs the hook
 *     il_lora_ctx_set_default(ctx, a);                           // every item uses a
 *     il_t5_loss(model, ...); il_t5_generate(model, ...);
 *     il_lora_ctx_free(ctx);                                     // removes the hook
 *
 * Errors follow util.h: NULL / -1 and il_errmsg(); messages name the adapter (directory
 * or file) and the module or config field. Nothing is left allocated on failure.
 */
#ifndef ILORA_LORA_H
#define ILORA_LORA_H

#include "t5.h"
#include "tensors.h"

/* ===== adapters ===== */

typedef struct il_lora il_lora;

/* One adapted projection. A and B are row-major float32 owned by the adapter. */
typedef struct {
    const char *name;   /* HF module name, "encoder.block.0.layer.0.SelfAttention.q" */
    il_t5_linear_id id; /* the projection (in, out = the base weight's shape) */
    int r;              /* rank (from the tensor shapes) */
    float alpha;        /* lora_alpha that applies to this module (alpha_pattern or default) */
    float scale;        /* s: alpha / r (alpha / sqrt(r) with use_rslora); 1 after delta */
    const float *A;     /* [r, in] */
    const float *B;     /* [out, r] */
} il_lora_module;

typedef struct {
    bool verbose; /* also report notes: ignored config keys, which weights file was read */
    /* Receives warnings and (if verbose) notes, one message per call, without a trailing
     * newline. NULL: warnings go to stderr as "ilora: warning: <msg>", notes likewise
     * as "ilora: <msg>" when verbose. */
    void (*log)(void *user, const char *msg);
    void *log_user;
} il_lora_load_opts;

/* Load a PEFT adapter directory: adapter_config.json and adapter_model.safetensors or
 * adapter_model.bin (safetensors wins when both exist, as in PEFT). The adapter is checked
 * against the base model's shape `base` (il_t5_get_config(model)): every tensor must belong
 * to an existing projection with fitting shapes, ranks must agree with r / rank_pattern,
 * target_modules must match. opts may be NULL. */
il_lora *il_lora_load(const char *dir, const il_t5_config *base, const il_lora_load_opts *opts);

/* The same from memory: config_json is the text of an adapter_config.json, t[0..n) the
 * state dict (any PEFT key naming); the data is copied. `name` names the adapter in errors. */
il_lora *il_lora_from_tensors(const char *name, const char *config_json, const il_tensor *t,
                              int n, const il_t5_config *base, const il_lora_load_opts *opts);

void il_lora_free(il_lora *a); /* NULL is fine */

const char *il_lora_name(const il_lora *a); /* the directory / name given at load */
int il_lora_n_modules(const il_lora *a);
/* Module i (0 <= i < n_modules), in il_t5_linear_ids order. */
const il_lora_module *il_lora_module_at(const il_lora *a, int i);
/* The module adapting projection id, or NULL if the adapter leaves it alone. O(1). */
const il_lora_module *il_lora_find(const il_lora *a, const il_t5_linear_id *id);
/* base_model_name_or_path written by il_lora_save (NULL: unknown). Loaded adapters take it
 * from their config; compositions from their inputs when all agree. */
const char *il_lora_base_model_name(const il_lora *a);
int il_lora_set_base_model_name(il_lora *a, const char *name);

/* ===== composition =====
 * IL_LORA_LINEAR (LoraHub, the default): per module A = sum_i w_i A_i, B = sum_i w_i B_i,
 *   applied with the adapters' common scale. Cross terms w_i w_j B_i A_j are intended.
 *   All adapters must adapt the same modules with the same rank and the same scale.
 * IL_LORA_DELTA: exactly sum_i w_i s_i B_i A_i, by concatenating ranks:
 *   A' = [w_1 s_1 A_1; ...; w_N s_N A_N], B' = [B_1 ... B_N], scale 1. Ranks may differ;
 *   a module missing from some adapters gets the terms of the others.
 * Weights may be negative; nothing takes a square root. */
typedef enum { IL_LORA_LINEAR = 0, IL_LORA_DELTA = 1 } il_lora_rule;

const char *il_lora_rule_name(il_lora_rule rule); /* "linear", "delta" */
int il_lora_rule_parse(const char *s, il_lora_rule *rule); /* 0, or -1 + error */

/* Allocate a composition of src[0..n) (all validated against the same base shape) with
 * every A and B zero; fill it with il_lora_compose_into. */
il_lora *il_lora_compose_new(int n, const il_lora *const *src, il_lora_rule rule);
/* Recompute dst (from il_lora_compose_new with the same adapter shapes) for weights w[n],
 * in place, without allocating: this is the per-candidate step of an optimiser. Parallel
 * over modules (OpenMP) when the work is large. Not safe while dst is in use by a running
 * forward pass. */
int il_lora_compose_into(il_lora *dst, int n, const il_lora *const *src, const float *w);
/* compose_new + compose_into. */
il_lora *il_lora_compose(int n, const il_lora *const *src, const float *w, il_lora_rule rule);

/* Save as a PEFT adapter directory: adapter_config.json (peft_type LORA, task_type
 * SEQ_2_SEQ_LM, r, lora_alpha, target_modules, rank_pattern / alpha_pattern for modules
 * that differ, ...) and adapter_model.safetensors with PEFT's saved key names
 * "base_model.model.<module>.lora_{A,B}.weight". A new directory appears complete or not
 * at all (filled as "<dir>.tmp.<pid>.<k>", then renamed); in an existing directory both
 * files are replaced atomically one after the other. */
int il_lora_save(const il_lora *a, const char *dir);

/* ===== applying adapters: unmerged, per batch item =====
 * A context installs the model's linear hook. Batch item i (the index in the caller's n
 * inputs of il_t5_loss / il_t5_logits / il_t5_forward / il_t5_encode / il_t5_generate) uses
 * the adapter set for it with il_lora_ctx_set_item, else the context's default (NULL: the
 * base model). Different items may use different adapters in one call; consecutive items
 * sharing an adapter are computed together. Adapters must outlive their use and must have
 * been validated against this model's shape. */
typedef struct il_lora_ctx il_lora_ctx;

/* Installs the hook on m; fails if m already has a hook (one context per model). */
il_lora_ctx *il_lora_ctx_new(il_t5 *m);
void il_lora_ctx_free(il_lora_ctx *ctx);  /* removes the hook; NULL is fine */
int il_lora_ctx_set_default(il_lora_ctx *ctx, const il_lora *a); /* a may be NULL */
/* Item `item` uses a (NULL: explicitly the base model). Cheap (grows a table). */
int il_lora_ctx_set_item(il_lora_ctx *ctx, int item, const il_lora *a);
void il_lora_ctx_clear_items(il_lora_ctx *ctx); /* every item back to the default */
il_t5 *il_lora_ctx_model(const il_lora_ctx *ctx);

/* ===== applying adapters: merged =====
 * W' = W + s B A for every adapted projection, as new float32 copies the model then uses
 * (the originals, possibly a read-only mapping, are never written). Unmerging swaps the
 * original pointers back, so the model is bit-for-bit what it was. Merge over a merge is
 * allowed if unmerged in reverse order. Unmerge before il_t5_free. Same speed as the base
 * model; use it for long inference runs with one adapter. */
typedef struct il_lora_merged il_lora_merged;

il_lora_merged *il_lora_merge(il_t5 *m, const il_lora *a);
void il_lora_unmerge(il_lora_merged *h); /* restores and frees; NULL is fine */

/* ===== LoraHub's loss (DESIGN.md section 1) =====
 * The n examples are split in consecutive batches of batch_size (LoraHub: 5); each batch
 * gives Hugging Face's token-mean cross-entropy over its counted label tokens; the batch
 * losses are summed and divided by n. (With one batch: the HF batch loss / n.) The L1 term
 * of the objective is the caller's. A batch without any counted label token is an error. */
#define IL_LORAHUB_BATCH_SIZE 5

/* With whatever adapters the model currently has (ctx default / merged). */
int il_lora_lorahub_loss(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                         const int32_t *const *labels, const int *label_lens, int batch_size,
                         double *loss);
/* The same reduction from per-example token-loss sums and counts (il_t5_loss outputs). */
int il_lora_lorahub_reduce(int n, const double *sums, const int *counts, int batch_size,
                           double *loss);
/* Score n_cand candidate adapters on the same n examples in batched forward passes: item
 * c*n + j is example j under cands[c]; losses[c] = LoraHub loss of candidate c. max_items
 * bounds the items per forward pass (0 = all n_cand * n at once; rounded to whole
 * candidates). Overwrites ctx's per-item table (cleared on return). */
int il_lora_lorahub_loss_many(il_lora_ctx *ctx, int n_cand, const il_lora *const *cands, int n,
                              const int32_t *const *ids, const int *lens,
                              const int32_t *const *labels, const int *label_lens,
                              int batch_size, int max_items, double *losses);

#endif
