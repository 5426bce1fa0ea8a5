/* t5_train.h - training T5 / Flan-T5 on the CPU: a training forward that keeps the
 * activations, the backward pass for every weight (full fine-tuning) or for the LoRA A/B of
 * one adapter with the base frozen, AdamW with gradient clipping and a learning-rate
 * schedule (adamw.h), a seeded epoch loop, PEFT initialisation of a new adapter and saving.
 *
 * The loss is Hugging Face's with `labels` (the same as il_t5_loss's batch_mean): the
 * token-mean cross-entropy over every counted label token of the whole batch; labels are
 * the target ids ending with eos, tokens equal to -100 or pad_id are not counted, and the
 * decoder input is [decoder_start_id] + labels[:-1] (-100 fed as pad). Batches are ragged
 * and packed (no padding), as in t5.h. The forward is float32 and gives il_t5_loss's value
 * (same maths, different summation orders: ~1e-6). No dropout (transformers' eval mode).
 *
 * Typical use (LoRA):
 *     il_lora *init = il_t5_train_lora_init(il_t5_get_config(m), &lo, seed); // A random, B 0
 *     il_t5_train *t = il_t5_train_new_lora(m, init);
 *     il_t5_fit_opts fo = il_t5_fit_default_opts();
 *     il_t5_train_fit(t, n, ids, lens, labels, label_lens, &fo, NULL);
 *     il_lora *out = il_t5_train_export_lora(t);  il_lora_save(out, dir);
 * or step by step, llm.c style:
 *     il_t5_train_zero_grad(t);
 *     il_t5_train_forward(t, n, ids, lens, labels, label_lens, &loss);
 *     il_t5_train_backward(t);
 *     il_t5_train_clip_grad_norm(t, 1.0);
 *     il_t5_train_adamw_step(t, &opts);
 *
 * Memory: parameters and gradients in one allocation each (full mode: a float32 copy of
 * every weight), AdamW moments on the first step, activations sized by the batch and kept
 * between calls (grown when a larger batch comes). Errors follow util.h (NULL / -1 and
 * il_errmsg()). A trainer is not thread-safe; the model must outlive it, must not have a
 * linear hook installed while a LoRA trainer runs (the trainer applies its own adapter),
 * and is never modified.
 */
#ifndef ILORA_T5_TRAIN_H
#define ILORA_T5_TRAIN_H

#include "adamw.h"
#include "lora.h"
#include "t5.h"

typedef struct il_t5_train il_t5_train;

/* One trainable tensor. */
typedef struct {
    const char *name; /* full mode: the transformers key ("shared.weight",
                       * "decoder.block.1.layer.2.DenseReluDense.wo.weight", "lm_head.weight");
                       * LoRA mode: PEFT's saved key
                       * ("base_model.model.<module>.lora_A.weight" / ".lora_B.weight") */
    int ndim;         /* 1 (layer norms) or 2 */
    int64_t shape[2];
    size_t numel;
    float *w;         /* value, owned by the trainer (writable: it is what training changes) */
    float *g;         /* gradient d loss / d w, same shape */
} il_t5_param;

/* ===== trainers ===== */

/* (a) Every weight trainable: copies all weights of m (transformers' parameters:
 * shared.weight, every block's projections and layer norms, the relative_attention_bias of
 * block 0 of each stack, the final layer norms, lm_head.weight when untied). With a tied
 * head (T5 v1.0) shared.weight receives the head's gradient too. */
il_t5_train *il_t5_train_new_full(const il_t5 *m);
/* (b) Base frozen, only the LoRA A and B of adapter a trainable (copied from a; a is not
 * used afterwards). Every adapted projection computes y = x W^T + s (x A^T) B^T. a must
 * have been validated against m's config. */
il_t5_train *il_t5_train_new_lora(const il_t5 *m, const il_lora *a);
void il_t5_train_free(il_t5_train *t); /* NULL is fine */

int il_t5_train_n_params(const il_t5_train *t);
const il_t5_param *il_t5_train_param(const il_t5_train *t, int i); /* NULL if out of range */
const il_t5_param *il_t5_train_find(const il_t5_train *t, const char *name); /* or NULL */

/* ===== one step ===== */

/* Training forward of a ragged batch (inputs as il_t5_loss): *loss = the batch-mean loss.
 * Keeps what backward needs. A batch without any counted label token is an error. */
int il_t5_train_forward(il_t5_train *t, int n, const int32_t *const *ids, const int *lens,
                        const int32_t *const *labels, const int *label_lens, double *loss);
/* Adds d loss / d param of the last forward to every gradient (accumulates: call
 * il_t5_train_zero_grad first unless accumulating). Once per forward. */
int il_t5_train_backward(il_t5_train *t);
void il_t5_train_zero_grad(il_t5_train *t);

/* Global-norm clipping of the gradients (torch.nn.utils.clip_grad_norm_); returns the norm
 * before clipping. max_norm <= 0 only measures. */
double il_t5_train_clip_grad_norm(il_t5_train *t, double max_norm);
/* One AdamW step of every parameter with the current gradients (il_adamw_update; the step
 * count is the trainer's, from 1). Weight decay applies to every 2-D parameter; layer-norm
 * weights (1-D) are not decayed, as transformers' Trainer groups them. Allocates the moments
 * on the first call: 0 / -1. */
int il_t5_train_adamw_step(il_t5_train *t, const il_adamw_opts *o);
long il_t5_train_steps(const il_t5_train *t); /* AdamW steps taken so far */

/* ===== the epoch loop ===== */

typedef struct {
    int epochs;           /* passes over the examples (>= 1) */
    int batch;            /* examples per optimiser step (>= 1; the last batch may be smaller) */
    uint64_t seed;        /* the example order: reshuffled every epoch (xoshiro256**) */
    il_adamw_opts adamw;  /* adamw.lr is the peak learning rate */
    il_lr_kind schedule;  /* over epochs * ceil(n / batch) steps */
    long warmup_steps;
    double max_grad_norm; /* <= 0: no clipping */
    /* Optional: called after each epoch with the mean of its batch losses (each taken
     * before that batch's update). */
    void (*on_epoch)(void *user, int epoch, int epochs, double loss);
    void *user;
} il_t5_fit_opts;

/* epochs 1, batch 5, seed 0, torch AdamW defaults (lr 1e-3, weight_decay 0.01), constant
 * schedule, no warmup, no clipping. */
il_t5_fit_opts il_t5_fit_default_opts(void);

/* Train on n examples: each epoch shuffles them (seeded), then for every batch: zero_grad,
 * forward, backward, clip, AdamW step at the schedule's learning rate. epoch_loss[epochs]
 * (optional) receives the per-epoch mean losses. The same seed and inputs give the same
 * weights, bit for bit (for a given thread count). */
int il_t5_train_fit(il_t5_train *t, int n, const int32_t *const *ids, const int *lens,
                    const int32_t *const *labels, const int *label_lens,
                    const il_t5_fit_opts *o, double *epoch_loss);

/* ===== adapters and checkpoints ===== */

typedef struct {
    int r;                      /* rank (>= 1) */
    double alpha;               /* lora_alpha; scale alpha / r */
    const char *const *targets; /* module names as PEFT's target_modules list: "q", "v", "wo" ... */
    int n_targets;
    const char *base_model;     /* base_model_name_or_path to record (may be NULL) */
} il_lora_init_opts;

/* A new adapter as PEFT initialises one: every projection whose last name component is
 * one of targets gets A [r, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with
 * a = sqrt(5), as nn.Linear) and B [out, r] = 0, from the given seed. An unknown target
 * or one matching no projection of c is an error. */
il_lora *il_t5_train_lora_init(const il_t5_config *c, const il_lora_init_opts *o, uint64_t seed);

/* The trained adapter (LoRA mode): the source adapter's modules, ranks, alphas and base
 * model name with the current A and B. Save it with il_lora_save. */
il_lora *il_t5_train_export_lora(const il_t5_train *t);

/* Full mode: write every parameter to a safetensors file with transformers' key names
 * (shared.weight and lm_head.weight; no embed_tokens aliases), F32, atomically. */
int il_t5_train_save_model(const il_t5_train *t, const char *path);

#endif
