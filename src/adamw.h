/* adamw.h - the optimiser side of training, independent of any model: AdamW exactly as
 * torch.optim.AdamW (torch 1.13, single-tensor path) updates a tensor, global-norm
 * gradient clipping as torch.nn.utils.clip_grad_norm_, and the learning-rate schedules of
 * transformers (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup).
 *
 * Nothing here allocates or fails: the caller owns the parameter, gradient and moment
 * buffers (moments start at zero).
 */
#ifndef ILORA_ADAMW_H
#define ILORA_ADAMW_H

#include <stddef.h>

/* ===== AdamW ===== */

typedef struct {
    double lr;           /* learning rate of this step */
    double beta1, beta2; /* moment decay rates */
    double eps;          /* added to the denominator */
    double weight_decay; /* decoupled: p *= 1 - lr * weight_decay, applied first */
} il_adamw_opts;

/* torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01. */
il_adamw_opts il_adamw_default_opts(void);

/* One AdamW step on n parameters p [n] with gradient g [n] and moments m, v [n] (zero
 * before step 1); step counts from 1. The rule (torch 1.13):
 *     p = p * (1 - lr*wd)
 *     m = m*beta1 + (1-beta1)*g
 *     v = v*beta2 + (1-beta2)*g*g
 *     p = p - (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bc1 = 1-beta1^step, bc2 = 1-beta2^step
 * with the scalars (bias corrections included) computed in float64 and applied as float32,
 * the element arithmetic in float32. */
void il_adamw_update(float *p, const float *g, float *m, float *v, size_t n,
                     const il_adamw_opts *o, long step);

/* ===== gradient clipping ===== */

/* L2 norm of the concatenation of n_tensors gradients g[i] [numel[i]] (summed in double). */
double il_grad_norm(float *const *g, const size_t *numel, int n_tensors);

/* torch.nn.utils.clip_grad_norm_(max_norm, norm_type=2): with N the global norm, every
 * gradient is multiplied by max_norm / (N + 1e-6) when that is below 1. Returns N (before
 * clipping). max_norm <= 0 only measures. */
double il_clip_grad_norm(float *const *g, const size_t *numel, int n_tensors, double max_norm);

/* ===== learning-rate schedules ===== */

typedef enum {
    IL_LR_CONSTANT, /* lr after warmup */
    IL_LR_LINEAR    /* lr after warmup, then linearly down to 0 at total_steps */
} il_lr_kind;

typedef struct {
    il_lr_kind kind;
    double lr;         /* peak learning rate */
    long warmup_steps; /* >= 0: linear ramp from 0 */
    long total_steps;  /* optimiser steps of the whole run (IL_LR_LINEAR) */
} il_lr_schedule;

/* Learning rate of optimiser step `step` (0-based: the first step is 0), as transformers'
 * LambdaLR schedules give it when scheduler.step() follows optimizer.step():
 *     warmup:   lr * step / max(1, warmup)              for step < warmup
 *     constant: lr
 *     linear:   lr * max(0, (total - step) / max(1, total - warmup))
 * So with warmup > 0 the first step has lr 0, exactly as in transformers. */
double il_lr_at(const il_lr_schedule *s, long step);

/* "constant" / "linear" -> kind; -1 if unknown. */
int il_lr_kind_parse(const char *name, il_lr_kind *kind);
const char *il_lr_kind_name(il_lr_kind kind);

#endif
