/* adamw.c - see adamw.h. */
#include "adamw.h"

#include <math.h>
#include <string.h>

il_adamw_opts il_adamw_default_opts(void) {
    return (il_adamw_opts){1e-3, 0.9, 0.999, 1e-8, 0.01};
}

void il_adamw_update(float *p, const float *g, float *m, float *v, size_t n,
                     const il_adamw_opts *o, long step) {
    /* scalars as torch forms them: Python floats (double), used as float32 by the kernels */
    const float decay = (float)(1.0 - o->lr * o->weight_decay);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float one_b1 = (float)(1.0 - o->beta1), one_b2 = (float)(1.0 - o->beta2);
    const double bc1 = 1.0 - pow(o->beta1, (double)step);
    const double bc2 = 1.0 - pow(o->beta2, (double)step);
    const float step_size = (float)(o->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->eps;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float mi = m[i] * b1 + one_b1 * g[i];
        float vi = v[i] * b2 + one_b2 * (g[i] * g[i]);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

double il_grad_norm(float *const *g, const size_t *numel, int n_tensors) {
    double ss = 0;
    for (int t = 0; t < n_tensors; t++)
        for (size_t i = 0; i < numel[t]; i++) ss += (double)g[t][i] * g[t][i];
    return sqrt(ss);
}

double il_clip_grad_norm(float *const *g, const size_t *numel, int n_tensors, double max_norm) {
    double norm = il_grad_norm(g, numel, n_tensors);
    if (max_norm <= 0) return norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        const float c = (float)coef;
        for (int t = 0; t < n_tensors; t++)
            for (size_t i = 0; i < numel[t]; i++) g[t][i] *= c;
    }
    return norm;
}

double il_lr_at(const il_lr_schedule *s, long step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps)
        return s->lr * (double)step / (double)(s->warmup_steps > 1 ? s->warmup_steps : 1);
    if (s->kind == IL_LR_CONSTANT) return s->lr;
    long span = s->total_steps - s->warmup_steps;
    double f = (double)(s->total_steps - step) / (double)(span > 1 ? span : 1);
    return s->lr * (f > 0 ? f : 0);
}

int il_lr_kind_parse(const char *name, il_lr_kind *kind) {
    if (!strcmp(name, "constant")) *kind = IL_LR_CONSTANT;
    else if (!strcmp(name, "linear")) *kind = IL_LR_LINEAR;
    else return -1;
    return 0;
}

const char *il_lr_kind_name(il_lr_kind kind) {
    return kind == IL_LR_CONSTANT ? "constant" : "linear";
}
