/* lora_apply.c - applying adapters to the T5 model: unmerged through the linear hook with
 * an adapter per batch item, merged into copies of the weights, and LoraHub's loss. */
#include "lora_internal.h"
#include "t5_merge.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ===== unmerged: the linear hook ===== */

struct il_lora_ctx {
    il_t5 *m;
    const il_lora *dflt;
    const il_lora **item; /* [cap] adapter of item i when set[i] */
    bool *set;
    int cap;
};

static int check_fits_model(const il_lora_ctx *c, const il_lora *a) {
    if (a && !lora_same_shape(&a->cfg, il_t5_get_config(c->m))) {
        il_seterr("%s: the adapter was loaded for a base model of another shape than this one",
                  a->name);
        return -1;
    }
    return 0;
}

static const il_lora *adapter_of(const il_lora_ctx *c, int item) {
    return item >= 0 && item < c->cap && c->set[item] ? c->item[item] : c->dflt;
}

/* y [rows, out] += s * (x [rows, in] A^T) B^T. */
static int apply_module(const il_lora_module *m, const float *x, float *y, int rows) {
    const int r = m->r, in = m->id.in, out = m->id.out;
    float *u = il_malloc(sizeof(float) * (size_t)rows * (size_t)r);
    if (!u) return -1;
    if (rows == 1) { /* generation steps: matrix-vector is faster than a 1-row GEMM */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, r, in, 1.0f, m->A, in, x, 1, 0.0f, u, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, r, m->scale, m->B, r, u, 1, 1.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r, in, 1.0f, x, in, m->A, in,
                    0.0f, u, r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, r, m->scale, u, r, m->B,
                    r, 1.0f, y, out);
    }
    free(u);
    return 0;
}

static const il_lora_module *module_of(const il_lora_ctx *c, int item, const il_t5_linear_id *id) {
    const il_lora *a = adapter_of(c, item);
    return a ? il_lora_find(a, id) : NULL;
}

/* Runs of consecutive row groups whose items share the module get one GEMM pair. */
static int lora_hook(void *user, const il_t5_linear_id *id, const il_t5_rows *rows,
                     const float *x, float *y) {
    const il_lora_ctx *c = user;
    int g = 0;
    while (g < rows->n_groups) {
        const il_lora_module *m = module_of(c, rows->item[g], id);
        int g1 = g + 1;
        while (g1 < rows->n_groups && module_of(c, rows->item[g1], id) == m) g1++;
        if (m) {
            if (m->id.in != id->in || m->id.out != id->out) {
                il_seterr("%s: module '%s' is [%d -> %d] but the model's projection is [%d -> %d]",
                          adapter_of(c, rows->item[g])->name, m->name, m->id.in, m->id.out,
                          id->in, id->out);
                return -1;
            }
            const int r0 = rows->row_start[g], r1 = rows->row_start[g1];
            const float *xg = x + (size_t)r0 * id->in;
            float *yg = y + (size_t)r0 * id->out;
            if (r1 > r0 && apply_module(m, xg, yg, r1 - r0)) return -1;
        }
        g = g1;
    }
    return 0;
}

il_lora_ctx *il_lora_ctx_new(il_t5 *m) {
    if (!m) {
        il_seterr("LoRA context: no model");
        return NULL;
    }
    il_t5_linear_hook fn;
    void *user;
    il_t5_get_linear_hook(m, &fn, &user);
    if (fn) {
        il_seterr("LoRA context: the model already has a linear hook (another il_lora_ctx?); "
                  "free that one first");
        return NULL;
    }
    il_lora_ctx *c = il_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->m = m;
    il_t5_set_linear_hook(m, lora_hook, c);
    return c;
}

void il_lora_ctx_free(il_lora_ctx *c) {
    if (!c) return;
    il_t5_linear_hook fn;
    void *user;
    il_t5_get_linear_hook(c->m, &fn, &user);
    if (fn == lora_hook && user == c) il_t5_set_linear_hook(c->m, NULL, NULL);
    free(c->item);
    free(c->set);
    free(c);
}

il_t5 *il_lora_ctx_model(const il_lora_ctx *c) { return c->m; }

int il_lora_ctx_set_default(il_lora_ctx *c, const il_lora *a) {
    if (check_fits_model(c, a)) return -1;
    c->dflt = a;
    return 0;
}

int il_lora_ctx_set_item(il_lora_ctx *c, int item, const il_lora *a) {
    if (item < 0) {
        il_seterr("LoRA context: negative batch item %d", item);
        return -1;
    }
    if (check_fits_model(c, a)) return -1;
    if (item >= c->cap) {
        int cap = c->cap ? c->cap : 16;
        while (cap <= item) cap *= 2;
        const il_lora **it = il_realloc(c->item, sizeof *it * (size_t)cap);
        if (!it) return -1;
        c->item = it;
        bool *set = il_realloc(c->set, sizeof *set * (size_t)cap);
        if (!set) return -1;
        c->set = set;
        for (int i = c->cap; i < cap; i++) c->item[i] = NULL, c->set[i] = false;
        c->cap = cap;
    }
    c->item[item] = a;
    c->set[item] = true;
    return 0;
}

void il_lora_ctx_clear_items(il_lora_ctx *c) {
    for (int i = 0; i < c->cap; i++) c->item[i] = NULL, c->set[i] = false;
}

/* ===== merged ===== */

struct il_lora_merged {
    il_t5 *m;
    int n;
    il_t5_linear_id *ids;
    const float **orig; /* the model's pointers before the merge */
    float **copy;       /* W + s B A */
};

void il_lora_unmerge(il_lora_merged *h) {
    if (!h) return;
    for (int i = h->n - 1; i >= 0; i--) {
        if (h->orig[i]) il_t5_linear_weight_swap(h->m, &h->ids[i], h->orig[i]);
        free(h->copy[i]);
    }
    free(h->ids);
    free(h->orig);
    free(h->copy);
    free(h);
}

il_lora_merged *il_lora_merge(il_t5 *m, const il_lora *a) {
    if (!m || !a) {
        il_seterr("LoRA merge: no model or adapter");
        return NULL;
    }
    if (!lora_same_shape(&a->cfg, il_t5_get_config(m))) {
        il_seterr("%s: the adapter was loaded for a base model of another shape than this one",
                  a->name);
        return NULL;
    }
    il_lora_merged *h = il_calloc(1, sizeof *h);
    if (!h) return NULL;
    h->m = m;
    size_t n = a->n_modules > 0 ? (size_t)a->n_modules : 1;
    h->ids = il_calloc(n, sizeof *h->ids);
    h->orig = il_calloc(n, sizeof *h->orig);
    h->copy = il_calloc(n, sizeof *h->copy);
    if (!h->ids || !h->orig || !h->copy) goto fail;
    for (int i = 0; i < a->n_modules; i++) {
        const il_lora_module *mod = &a->mods[i];
        const int in = mod->id.in, out = mod->id.out;
        const float *W = il_t5_linear_weight(m, &mod->id);
        if (!W) goto fail;
        float *Wm = il_malloc(sizeof(float) * (size_t)in * (size_t)out);
        if (!Wm) goto fail;
        h->ids[h->n] = mod->id;
        h->copy[h->n++] = Wm;
        memcpy(Wm, W, sizeof(float) * (size_t)in * (size_t)out);
        /* W' [out, in] += s * B [out, r] A [r, in] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, mod->r, mod->scale,
                    mod->B, mod->r, mod->A, in, 1.0f, Wm, in);
        if (!(h->orig[h->n - 1] = il_t5_linear_weight_swap(m, &mod->id, Wm))) goto fail;
    }
    return h;
fail:
    il_prefixerr("%s: merging into the model", a->name);
    il_lora_unmerge(h);
    return NULL;
}

/* ===== LoraHub's loss ===== */

int il_lora_lorahub_reduce(int n, const double *sums, const int *counts, int batch_size,
                           double *loss) {
    if (n < 1 || batch_size < 1) {
        il_seterr("LoraHub loss: %s", n < 1 ? "no examples" : "batch size must be >= 1");
        return -1;
    }
    double total = 0;
    for (int b0 = 0; b0 < n; b0 += batch_size) {
        const int b1 = b0 + batch_size < n ? b0 + batch_size : n;
        double s = 0;
        long c = 0;
        for (int i = b0; i < b1; i++) s += sums[i], c += counts[i];
        if (c == 0) {
            il_seterr("LoraHub loss: batch of examples %d..%d has no label tokens", b0, b1 - 1);
            return -1;
        }
        total += s / (double)c; /* the HF token mean of this batch */
    }
    *loss = total / n;
    return 0;
}

int il_lora_lorahub_loss(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                         const int32_t *const *labels, const int *label_lens, int batch_size,
                         double *loss) {
    if (n < 1 || batch_size < 1) return il_lora_lorahub_reduce(n, NULL, NULL, batch_size, loss);
    double *sums = il_malloc(sizeof *sums * (size_t)n);
    int *counts = il_malloc(sizeof *counts * (size_t)n);
    int rc = -1;
    /* one forward pass; the per-batch means come from the per-example sums and counts */
    if (sums && counts &&
        il_t5_loss(m, n, ids, lens, labels, label_lens, NULL, sums, counts, NULL, NULL) == 0)
        rc = il_lora_lorahub_reduce(n, sums, counts, batch_size, loss);
    free(sums);
    free(counts);
    return rc;
}

int il_lora_lorahub_loss_many(il_lora_ctx *ctx, int n_cand, const il_lora *const *cands, int n,
                              const int32_t *const *ids, const int *lens,
                              const int32_t *const *labels, const int *label_lens,
                              int batch_size, int max_items, double *losses) {
    if (!ctx || n_cand < 1 || !cands || n < 1 || batch_size < 1 || max_items < 0) {
        il_seterr("LoraHub loss: invalid arguments");
        return -1;
    }
    int per_call = max_items > 0 ? max_items / n : n_cand; /* candidates per forward pass */
    if (per_call < 1) per_call = 1;
    if (per_call > n_cand) per_call = n_cand;
    const size_t cap = (size_t)per_call * (size_t)n;
    const int32_t **ids2 = il_malloc(sizeof *ids2 * cap), **lab2 = il_malloc(sizeof *lab2 * cap);
    int *lens2 = il_malloc(sizeof *lens2 * cap), *llens2 = il_malloc(sizeof *llens2 * cap);
    double *sums = il_malloc(sizeof *sums * cap);
    int *counts = il_malloc(sizeof *counts * cap);
    int rc = -1;
    if (!ids2 || !lab2 || !lens2 || !llens2 || !sums || !counts) goto done;
    for (size_t k = 0; k < cap; k++) {
        ids2[k] = ids[k % n], lens2[k] = lens[k % n];
        lab2[k] = labels[k % n], llens2[k] = label_lens[k % n];
    }
    for (int c0 = 0; c0 < n_cand; c0 += per_call) {
        const int nc = n_cand - c0 < per_call ? n_cand - c0 : per_call;
        il_lora_ctx_clear_items(ctx);
        for (int c = 0; c < nc; c++)
            for (int j = 0; j < n; j++)
                if (il_lora_ctx_set_item(ctx, c * n + j, cands[c0 + c])) goto done;
        if (il_t5_loss(ctx->m, nc * n, ids2, lens2, lab2, llens2, NULL, sums, counts, NULL, NULL))
            goto done;
        for (int c = 0; c < nc; c++)
            if (il_lora_lorahub_reduce(n, sums + (size_t)c * n, counts + (size_t)c * n,
                                       batch_size, &losses[c0 + c]))
                goto done;
    }
    rc = 0;
done:
    il_lora_ctx_clear_items(ctx);
    free(ids2);
    free(lab2);
    free(lens2);
    free(llens2);
    free(sums);
    free(counts);
    return rc;
}
