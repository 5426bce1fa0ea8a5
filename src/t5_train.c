/* t5_train.c - the T5 trainer (see t5_train.h): parameters and gradients, the training
 * forward over packed ragged batches keeping every activation backward needs, the backward
 * pass (the forward in reverse, one kernel call per layer op, t5_train_kernels.c), AdamW,
 * the seeded epoch loop, PEFT adapter initialisation / export and checkpoint saving.
 * Reads the model's weights through t5_internal.h and never writes them. */
#include "t5_train.h"

#include "t5_internal.h"
#include "t5_merge.h"
#include "t5_train_kernels.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== the trainer ===== */

/* Gradients of one block, the fields of t5_block (NULL: frozen). */
typedef struct {
    float *q, *k, *v, *o, *ln_self, *cq, *ck, *cv, *co, *ln_cross, *wi, *wi1, *wo, *ln_ff;
} gblock;

typedef struct {
    gblock *blocks;
    float *rel_bias, *final_ln;
} gstack;

/* The weights the training forward reads: the trainer's copies (full mode) or the model's
 * own (LoRA mode, frozen). */
typedef struct {
    const float *embed, *lm_head;
    float lm_scale;
    t5_stack enc, dec;
} wview;

/* One adapted projection (LoRA mode): y += s * (x A^T) B^T. */
typedef struct {
    char *name;       /* HF module name (owned) */
    float *A, *B;     /* [r, in], [out, r]: trainer parameters */
    float *dA, *dB;
    float s, alpha;
    int r;
} lmod;

/* Activations of one block kept for backward. Rows: T of the stack, Te for cross k/v. */
typedef struct {
    float *x_sa, *r_sa, *h_sa;  /* [T, d] stream entering self-attention, [T] 1/rms, normed */
    float *q, *k, *v, *ctx;     /* [T, inner] */
    float *p;                   /* self-attention probabilities (sacts.p_off blocks) */
    float *x_ca, *r_ca, *h_ca;  /* decoder: entering cross-attention */
    float *cq, *cctx;           /* [T, inner] */
    float *ck, *cv;             /* [Te, inner] from the encoder output */
    float *cp;                  /* cross-attention probabilities (sacts.cp_off blocks) */
    float *x_ff, *r_ff, *h_ff;  /* entering the feed-forward */
    float *a, *b, *g;           /* [T, d_ff]: wi(h) (wi_0), wi_1(h) (gated), act(a) (* b) */
    float *u[IL_T5_PROJ_COUNT]; /* [rows, r] = x A^T of adapted projections */
} lacts;

/* One stack's batch layout and activations. */
typedef struct {
    int n, T, maxlen;
    int *off, *len, *item;      /* [n + 1], [n], [n] */
    t5_seqs s;
    int32_t *ids;               /* [T] input token ids */
    size_t *p_off, *cp_off;     /* [n] attention blocks of sequence i */
    int *bucket;                /* [2 maxlen - 1] bucket of relative position rel + maxlen - 1 */
    lacts *L;                   /* [n_layers] */
    float *x;                   /* [T, d] residual stream */
    float *x_fin, *r_fin, *out; /* final_layer_norm input, 1/rms, output */
} sacts;

struct il_t5_train {
    const il_t5 *m;
    il_t5_config cfg;
    int inner;
    bool full;
    /* parameters: values and gradients each in one block, in il_t5_param order */
    il_t5_param *params;
    int n_params;
    float *pbuf, *gbuf, *mbuf, *vbuf; /* [total]; AdamW moments allocated on first step */
    size_t total;
    long step;
    /* full mode: what the forward reads; gradients of the same fields (all modes: NULL
     * where frozen) */
    wview w;
    t5_block *wblocks;
    gblock *gblocks;
    gstack genc, gdec;
    float *gembed, *glm_head;
    /* LoRA mode */
    lmod *mods;
    int n_mods, max_layers;
    int *slot; /* [2][max_layers][IL_T5_PROJ_COUNT] -> mods index or -1 */
    bool enc_trainable, rslora;
    char *base_model;
    /* the last forward: activations and backward scratch, one block */
    char *arena;
    size_t arena_cap;
    sacts enc, dec;
    float *xs;          /* [Td, d] head input (decoder output * lm_scale) */
    float *logits;      /* [Td, V]; dlogits after backward */
    int32_t *targets;   /* [Td] label or -1 */
    double *tok_loss;   /* [Td] */
    long count;         /* counted label tokens */
    bool have_fwd;
    float *dx_enc, *dx_dec, *denc, *dxs, *dh, *dq, *dk, *dv, *dctx, *dp, *dg, *da, *db, *gb;
};

static const lmod *find_mod(const il_t5_train *t, il_t5_stack st, int l, il_t5_proj p) {
    if (!t->slot) return NULL;
    int k = t->slot[((size_t)st * t->max_layers + (size_t)l) * IL_T5_PROJ_COUNT + (size_t)p];
    return k < 0 ? NULL : &t->mods[k];
}

void il_t5_train_free(il_t5_train *t) {
    if (!t) return;
    for (int i = 0; i < t->n_params; i++) free((char *)t->params[i].name);
    free(t->params);
    free(t->pbuf);
    free(t->gbuf);
    free(t->mbuf);
    free(t->vbuf);
    free(t->wblocks);
    free(t->gblocks);
    for (int i = 0; i < t->n_mods; i++) free(t->mods[i].name);
    free(t->mods);
    free(t->slot);
    free(t->base_model);
    free(t->arena);
    free(t);
}

static il_t5_train *train_alloc(const il_t5 *m, bool full) {
    il_t5_train *t = il_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->cfg = m->cfg;
    t->inner = m->inner;
    t->full = full;
    const int ne = m->cfg.num_layers, nd = m->cfg.num_decoder_layers;
    /* gradient views exist in both modes (all NULL in LoRA mode) */
    if (!(t->gblocks = il_calloc((size_t)(ne + nd), sizeof *t->gblocks))) {
        il_t5_train_free(t);
        return NULL;
    }
    t->genc.blocks = t->gblocks;
    t->gdec.blocks = t->gblocks + ne;
    return t;
}

/* Allocate pbuf / gbuf for t->total floats and point every parameter into them (params[i]
 * numel set; w / g assigned here in order). */
static int alloc_params(il_t5_train *t) {
    size_t n = t->total ? t->total : 1;
    if (!(t->pbuf = il_calloc(n, sizeof(float))) || !(t->gbuf = il_calloc(n, sizeof(float))))
        return -1;
    size_t at = 0;
    for (int i = 0; i < t->n_params; i++) {
        t->params[i].w = t->pbuf + at;
        t->params[i].g = t->gbuf + at;
        at += t->params[i].numel;
    }
    return 0;
}

/* ---- full mode ---- */

/* A parameter being described: where it comes from and which view fields point to it. */
typedef struct {
    const float *src;
    const float **wdst;
    float **gdst;
} pbind;

typedef struct {
    il_t5_train *t;
    pbind *b;
    int cap;
    bool fail;
} plist;

static void padd(plist *l, const float *src, const float **wdst, float **gdst, int64_t d0,
                 int64_t d1, const char *fmt, ...) IL_PRINTF(7, 8);
static void padd(plist *l, const float *src, const float **wdst, float **gdst, int64_t d0,
                 int64_t d1, const char *fmt, ...) {
    il_t5_train *t = l->t;
    if (l->fail) return;
    if (t->n_params == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        il_t5_param *p = il_realloc(t->params, sizeof *p * (size_t)cap);
        if (p) t->params = p;
        pbind *b = p ? il_realloc(l->b, sizeof *b * (size_t)cap) : NULL;
        if (b) l->b = b;
        if (!p || !b) {
            l->fail = true;
            return;
        }
        l->cap = cap;
    }
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    il_t5_param *p = &t->params[t->n_params];
    memset(p, 0, sizeof *p);
    if (!(p->name = il_strdup(name))) {
        l->fail = true;
        return;
    }
    p->ndim = d1 < 0 ? 1 : 2;
    p->shape[0] = d0;
    p->shape[1] = d1 < 0 ? 0 : d1;
    p->numel = (size_t)d0 * (size_t)(d1 < 0 ? 1 : d1);
    l->b[t->n_params] = (pbind){src, wdst, gdst};
    t->n_params++;
    t->total += p->numel;
}

/* transformers' named_parameters() order. */
static void describe_stack(plist *l, bool dec) {
    il_t5_train *t = l->t;
    const il_t5_config *c = &t->cfg;
    const t5_stack *ms = dec ? &t->m->dec : &t->m->enc;
    t5_stack *ws = dec ? &t->w.dec : &t->w.enc;
    gstack *gs = dec ? &t->gdec : &t->genc;
    const char *sn = dec ? "decoder" : "encoder";
    const int64_t d = c->d_model, in = t->inner, ff = c->d_ff;
    const int F = dec ? 2 : 1;
    for (int i = 0; i < ms->n_layers; i++) {
        const t5_block *mb = &ms->blocks[i];
        t5_block *wb = &ws->blocks[i];
        gblock *gb = &gs->blocks[i];
#define P(field, d0, d1, ...) padd(l, mb->field, &wb->field, &gb->field, d0, d1, __VA_ARGS__)
        P(q, in, d, "%s.block.%d.layer.0.SelfAttention.q.weight", sn, i);
        P(k, in, d, "%s.block.%d.layer.0.SelfAttention.k.weight", sn, i);
        P(v, in, d, "%s.block.%d.layer.0.SelfAttention.v.weight", sn, i);
        P(o, d, in, "%s.block.%d.layer.0.SelfAttention.o.weight", sn, i);
        if (i == 0)
            padd(l, ms->rel_bias, &ws->rel_bias, &gs->rel_bias, c->rel_buckets, c->num_heads,
                 "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", sn);
        P(ln_self, d, -1, "%s.block.%d.layer.0.layer_norm.weight", sn, i);
        if (dec) {
            P(cq, in, d, "%s.block.%d.layer.1.EncDecAttention.q.weight", sn, i);
            P(ck, in, d, "%s.block.%d.layer.1.EncDecAttention.k.weight", sn, i);
            P(cv, in, d, "%s.block.%d.layer.1.EncDecAttention.v.weight", sn, i);
            P(co, d, in, "%s.block.%d.layer.1.EncDecAttention.o.weight", sn, i);
            P(ln_cross, d, -1, "%s.block.%d.layer.1.layer_norm.weight", sn, i);
        }
        if (c->gated) {
            P(wi, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi_0.weight", sn, i, F);
            P(wi1, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi_1.weight", sn, i, F);
        } else {
            P(wi, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi.weight", sn, i, F);
        }
        P(wo, d, ff, "%s.block.%d.layer.%d.DenseReluDense.wo.weight", sn, i, F);
        P(ln_ff, d, -1, "%s.block.%d.layer.%d.layer_norm.weight", sn, i, F);
#undef P
    }
    padd(l, ms->final_ln, &ws->final_ln, &gs->final_ln, d, -1, "%s.final_layer_norm.weight", sn);
}

il_t5_train *il_t5_train_new_full(const il_t5 *m) {
    if (!m) {
        il_seterr("T5 trainer: no model");
        return NULL;
    }
    il_t5_train *t = train_alloc(m, true);
    if (!t) return NULL;
    const il_t5_config *c = &m->cfg;
    const int ne = c->num_layers, nd = c->num_decoder_layers;
    plist l = {t, NULL, 0, false};
    if (!(t->wblocks = il_calloc((size_t)(ne + nd), sizeof *t->wblocks))) goto fail;
    t->w.enc = (t5_stack){ne, t->wblocks, NULL, NULL};
    t->w.dec = (t5_stack){nd, t->wblocks + ne, NULL, NULL};
    t->w.lm_scale = m->lm_scale;
    padd(&l, m->embed, &t->w.embed, &t->gembed, c->vocab_size, c->d_model, "shared.weight");
    describe_stack(&l, false);
    describe_stack(&l, true);
    if (!c->tie_word_embeddings)
        padd(&l, m->lm_head, &t->w.lm_head, &t->glm_head, c->vocab_size, c->d_model,
             "lm_head.weight");
    if (l.fail || alloc_params(t)) goto fail;
    for (int i = 0; i < t->n_params; i++) {
        il_t5_param *p = &t->params[i];
        memcpy(p->w, l.b[i].src, p->numel * sizeof(float));
        *l.b[i].wdst = p->w;
        *l.b[i].gdst = p->g;
    }
    if (c->tie_word_embeddings) {
        /* one matrix: the head's gradient joins the embedding's */
        t->w.lm_head = t->w.embed;
        t->glm_head = t->gembed;
    }
    free(l.b);
    return t;
fail:
    free(l.b);
    il_t5_train_free(t);
    return NULL;
}

/* ---- LoRA mode ---- */

il_t5_train *il_t5_train_new_lora(const il_t5 *m, const il_lora *a) {
    if (!m || !a) {
        il_seterr("T5 LoRA trainer: no model or adapter");
        return NULL;
    }
    const int nm = il_lora_n_modules(a);
    if (nm < 1) {
        il_seterr("%s: the adapter has no modules to train", il_lora_name(a));
        return NULL;
    }
    for (int i = 0; i < nm; i++) {
        const il_lora_module *md = il_lora_module_at(a, i);
        if (!il_t5_linear_id_valid(&m->cfg, &md->id) || md->r < 1) {
            il_seterr("%s: module '%s' does not fit the model (shape [%d, %d], rank %d)",
                      il_lora_name(a), md->name, md->id.out, md->id.in, md->r);
            return NULL;
        }
    }
    il_t5_train *t = train_alloc(m, false);
    if (!t) return NULL;
    const il_t5_config *c = &m->cfg;
    t->max_layers = c->num_layers > c->num_decoder_layers ? c->num_layers : c->num_decoder_layers;
    const size_t nslot = 2 * (size_t)t->max_layers * IL_T5_PROJ_COUNT;
    if (!(t->params = il_calloc(2 * (size_t)nm, sizeof *t->params)) ||
        !(t->mods = il_calloc((size_t)nm, sizeof *t->mods)) ||
        !(t->slot = il_malloc(nslot * sizeof *t->slot)))
        goto fail;
    if (il_lora_base_model_name(a) && !(t->base_model = il_strdup(il_lora_base_model_name(a))))
        goto fail;
    for (size_t i = 0; i < nslot; i++) t->slot[i] = -1;
    t->n_mods = nm;
    t->n_params = 2 * nm; /* names filled below (free(NULL) is fine on failure) */
    for (int i = 0; i < nm; i++) {
        const il_lora_module *md = il_lora_module_at(a, i);
        il_t5_param *pa = &t->params[2 * i], *pb = pa + 1;
        if (!(pa->name = il_sprintf("base_model.model.%s.lora_A.weight", md->name)) ||
            !(pb->name = il_sprintf("base_model.model.%s.lora_B.weight", md->name)) ||
            !(t->mods[i].name = il_strdup(md->name)))
            goto fail;
        *pa = (il_t5_param){pa->name, 2, {md->r, md->id.in}, (size_t)md->r * md->id.in, NULL, NULL};
        *pb = (il_t5_param){pb->name, 2, {md->id.out, md->r}, (size_t)md->id.out * md->r, NULL, NULL};
        t->total += pa->numel + pb->numel;
        t->slot[((size_t)md->id.stack * t->max_layers + (size_t)md->id.layer) * IL_T5_PROJ_COUNT +
                (size_t)md->id.proj] = i;
        if (md->id.stack == IL_T5_ENCODER) t->enc_trainable = true;
        float plain = (float)((double)md->alpha / md->r);
        if (md->r > 1 && md->scale != plain &&
            md->scale == (float)((double)md->alpha / sqrt((double)md->r)))
            t->rslora = true;
    }
    if (alloc_params(t)) goto fail;
    for (int i = 0; i < nm; i++) {
        const il_lora_module *md = il_lora_module_at(a, i);
        il_t5_param *pa = &t->params[2 * i], *pb = pa + 1;
        memcpy(pa->w, md->A, pa->numel * sizeof(float));
        memcpy(pb->w, md->B, pb->numel * sizeof(float));
        t->mods[i] = (lmod){t->mods[i].name, pa->w, pb->w, pa->g, pb->g, md->scale, md->alpha,
                            md->r};
    }
    return t;
fail:
    il_t5_train_free(t);
    return NULL;
}

int il_t5_train_n_params(const il_t5_train *t) { return t->n_params; }

const il_t5_param *il_t5_train_param(const il_t5_train *t, int i) {
    return i >= 0 && i < t->n_params ? &t->params[i] : NULL;
}

const il_t5_param *il_t5_train_find(const il_t5_train *t, const char *name) {
    for (int i = 0; i < t->n_params; i++)
        if (!strcmp(t->params[i].name, name)) return &t->params[i];
    return NULL;
}

void il_t5_train_zero_grad(il_t5_train *t) { memset(t->gbuf, 0, t->total * sizeof(float)); }

long il_t5_train_steps(const il_t5_train *t) { return t->step; }

/* ===== batch layout and activation memory =====
 * Sizes first, then one allocation: plan() runs once with a NULL base to measure and once
 * more to point every buffer into the arena (llm.c's fill_in_*_sizes + malloc_and_point). */

typedef struct {
    char *base;
    size_t used;
    bool overflow;
} arena;

static void *carve(arena *z, size_t count, size_t size) {
    size_t n = 0;
    if (il_mul_overflows(count, size, &n) || n > ((size_t)1 << 44)) {
        z->overflow = true;
        n = 0;
    }
    size_t at = z->used;
    z->used += (n + 63) & ~(size_t)63;
    return z->base ? z->base + at : NULL;
}
#define CARVE(z, n, type) ((type *)carve((z), (size_t)(n), sizeof(type)))

typedef struct {
    int n;
    const int *lens;     /* stack sequence lengths */
    const int *enc_lens; /* decoder: lengths of the sequences cross-attention reads */
    size_t T, Te, P, Pc; /* rows; self / cross probabilities */
    int maxlen;
} geom;

static void geom_of(geom *g, const il_t5_config *c, int n, const int *lens, const int *enc_lens) {
    memset(g, 0, sizeof *g);
    g->n = n;
    g->lens = lens;
    g->enc_lens = enc_lens;
    for (int i = 0; i < n; i++) {
        g->T += (size_t)lens[i];
        g->P += (size_t)c->num_heads * lens[i] * lens[i];
        if (enc_lens) {
            g->Te += (size_t)enc_lens[i];
            g->Pc += (size_t)c->num_heads * lens[i] * enc_lens[i];
        }
        if (lens[i] > g->maxlen) g->maxlen = lens[i];
    }
}

static void plan_stack(il_t5_train *t, arena *z, sacts *A, bool dec, const geom *g) {
    const il_t5_config *c = &t->cfg;
    const size_t T = g->T, Te = g->Te, d = (size_t)c->d_model, in = (size_t)t->inner,
                 ff = (size_t)c->d_ff;
    const int nl = dec ? c->num_decoder_layers : c->num_layers;
    const il_t5_stack sid = dec ? IL_T5_DECODER : IL_T5_ENCODER;
    A->n = g->n;
    A->T = (int)T;
    A->maxlen = g->maxlen;
    A->off = CARVE(z, g->n + 1, int);
    A->len = CARVE(z, g->n, int);
    A->item = CARVE(z, g->n, int);
    A->ids = CARVE(z, T, int32_t);
    A->p_off = CARVE(z, g->n, size_t);
    A->cp_off = dec ? CARVE(z, g->n, size_t) : NULL;
    A->bucket = CARVE(z, 2 * (size_t)g->maxlen - 1, int);
    A->L = CARVE(z, nl, lacts);
    for (int l = 0; l < nl; l++) {
        lacts L;
        memset(&L, 0, sizeof L);
        L.x_sa = CARVE(z, T * d, float);
        L.r_sa = CARVE(z, T, float);
        L.h_sa = CARVE(z, T * d, float);
        L.q = CARVE(z, T * in, float);
        L.k = CARVE(z, T * in, float);
        L.v = CARVE(z, T * in, float);
        L.ctx = CARVE(z, T * in, float);
        L.p = CARVE(z, g->P, float);
        if (dec) {
            L.x_ca = CARVE(z, T * d, float);
            L.r_ca = CARVE(z, T, float);
            L.h_ca = CARVE(z, T * d, float);
            L.cq = CARVE(z, T * in, float);
            L.cctx = CARVE(z, T * in, float);
            L.ck = CARVE(z, Te * in, float);
            L.cv = CARVE(z, Te * in, float);
            L.cp = CARVE(z, g->Pc, float);
        }
        L.x_ff = CARVE(z, T * d, float);
        L.r_ff = CARVE(z, T, float);
        L.h_ff = CARVE(z, T * d, float);
        L.a = CARVE(z, T * ff, float);
        L.b = c->gated ? CARVE(z, T * ff, float) : NULL;
        L.g = CARVE(z, T * ff, float);
        for (int p = 0; p < IL_T5_PROJ_COUNT; p++) {
            const lmod *md = find_mod(t, sid, l, (il_t5_proj)p);
            if (md)
                L.u[p] = CARVE(z, (p == IL_T5_CROSS_K || p == IL_T5_CROSS_V ? Te : T) * md->r,
                               float);
        }
        if (A->L) A->L[l] = L;
    }
    A->x = CARVE(z, T * d, float);
    A->x_fin = CARVE(z, T * d, float);
    A->r_fin = CARVE(z, T, float);
    A->out = CARVE(z, T * d, float);
}

static void plan(il_t5_train *t, arena *z, const geom *ge, const geom *gd) {
    const il_t5_config *c = &t->cfg;
    const size_t d = (size_t)c->d_model, in = (size_t)t->inner, ff = (size_t)c->d_ff,
                 V = (size_t)c->vocab_size, Te = ge->T, Td = gd->T;
    const size_t rows = Te > Td ? Te : Td;
    size_t P = ge->P > gd->P ? ge->P : gd->P;
    P = gd->Pc > P ? gd->Pc : P;
    int rmax = 1;
    for (int i = 0; i < t->n_mods; i++) rmax = t->mods[i].r > rmax ? t->mods[i].r : rmax;
    plan_stack(t, z, &t->enc, false, ge);
    plan_stack(t, z, &t->dec, true, gd);
    t->xs = c->tie_word_embeddings ? CARVE(z, Td * d, float) : NULL;
    t->logits = CARVE(z, Td * V, float);
    t->targets = CARVE(z, Td, int32_t);
    t->tok_loss = CARVE(z, Td, double);
    /* backward scratch */
    t->dx_enc = CARVE(z, Te * d, float);
    t->dx_dec = CARVE(z, Td * d, float);
    t->denc = CARVE(z, Te * d, float);
    t->dxs = CARVE(z, Td * d, float);
    t->dh = CARVE(z, rows * d, float);
    t->dq = CARVE(z, rows * in, float);
    t->dk = CARVE(z, rows * in, float);
    t->dv = CARVE(z, rows * in, float);
    t->dctx = CARVE(z, rows * in, float);
    t->dp = CARVE(z, P, float);
    t->dg = CARVE(z, rows * ff, float);
    t->da = CARVE(z, rows * ff, float);
    t->db = c->gated ? CARVE(z, rows * ff, float) : NULL;
    t->gb = t->n_mods ? CARVE(z, rows * (size_t)rmax, float) : NULL;
}

/* Offsets, ids, attention block offsets and the bucket table of a planned stack. */
static void fill_stack(const il_t5_train *t, sacts *A, bool dec, const geom *g,
                       const int32_t *const *ids) {
    const il_t5_config *c = &t->cfg;
    size_t at = 0, p = 0, pc = 0;
    for (int i = 0; i < g->n; i++) {
        A->off[i] = (int)at;
        A->len[i] = g->lens[i];
        A->item[i] = i;
        memcpy(A->ids + at, ids[i], sizeof(int32_t) * (size_t)g->lens[i]);
        at += (size_t)g->lens[i];
        A->p_off[i] = p;
        p += (size_t)c->num_heads * g->lens[i] * g->lens[i];
        if (dec) {
            A->cp_off[i] = pc;
            pc += (size_t)c->num_heads * g->lens[i] * g->enc_lens[i];
        }
    }
    A->off[g->n] = (int)at;
    A->s = (t5_seqs){g->n, A->off, A->len, A->item};
    /* encoder: bidirectional buckets; decoder: causal */
    for (int r = -(g->maxlen - 1); r <= g->maxlen - 1; r++)
        A->bucket[r + g->maxlen - 1] =
            il_t5_rel_bucket(r, !dec, c->rel_buckets, c->rel_max_distance);
}

/* ===== forward ===== */

static wview model_view(const il_t5 *m) {
    return (wview){m->embed, m->lm_head, m->lm_scale, m->enc, m->dec};
}

/* y [N, OC] (=|+=) x W^T, plus s (x A^T) B^T when the projection is adapted (u kept). */
static void lin_fwd(const il_t5_train *t, il_t5_stack st, int l, il_t5_proj p, const float *W,
                    const float *x, float *y, float *u, int N, int C, int OC, float beta) {
    tk_matmul_forward(y, x, W, N, C, OC, beta);
    const lmod *md = find_mod(t, st, l, p);
    if (md) tk_lora_forward(y, u, x, md->A, md->B, md->s, N, C, OC, md->r);
}

/* dx [N, C] += dy W (+ LoRA), dW += dy^T x (W trainable), dA / dB (adapted). */
static void lin_bwd(const il_t5_train *t, il_t5_stack st, int l, il_t5_proj p, const float *W,
                    float *dW, const float *x, const float *u, const float *dy, float *dx, int N,
                    int C, int OC) {
    tk_matmul_backward(dx, dW, dy, x, W, N, C, OC);
    const lmod *md = find_mod(t, st, l, p);
    if (md)
        tk_lora_backward(dx, md->dA, md->dB, t->gb, dy, x, u, md->A, md->B, md->s, N, C, OC,
                         md->r);
}

/* One stack over A->x (holding the embeddings): A->out = final_layer_norm output.
 * Decoder: E is the encoder (cross-attention reads E->out). */
static void stack_forward(const il_t5_train *t, const wview *w, bool dec, sacts *A,
                          const sacts *E) {
    const il_t5_config *c = &t->cfg;
    const t5_stack *st = dec ? &w->dec : &w->enc;
    const il_t5_stack sid = dec ? IL_T5_DECODER : IL_T5_ENCODER;
    const int T = A->T, d = c->d_model, in = t->inner, ff = c->d_ff, H = c->num_heads,
              dkv = c->d_kv;
    const size_t Td = (size_t)T * d;
    float *x = A->x;
    for (int l = 0; l < st->n_layers; l++) {
        const t5_block *B = &st->blocks[l];
        lacts *L = &A->L[l];
        /* x += o(attention(norm(x))): position bias from layer 0's table, causal in the decoder */
        memcpy(L->x_sa, x, Td * sizeof *x);
        tk_rmsnorm_forward(L->h_sa, L->r_sa, x, B->ln_self, T, d, c->eps);
        lin_fwd(t, sid, l, IL_T5_SELF_Q, B->q, L->h_sa, L->q, L->u[IL_T5_SELF_Q], T, d, in, 0);
        lin_fwd(t, sid, l, IL_T5_SELF_K, B->k, L->h_sa, L->k, L->u[IL_T5_SELF_K], T, d, in, 0);
        lin_fwd(t, sid, l, IL_T5_SELF_V, B->v, L->h_sa, L->v, L->u[IL_T5_SELF_V], T, d, in, 0);
        tk_attention_forward(L->ctx, L->p, L->q, L->k, L->v, &A->s, &A->s, A->p_off,
                             st->rel_bias, A->bucket, A->maxlen, dec, H, dkv);
        lin_fwd(t, sid, l, IL_T5_SELF_O, B->o, L->ctx, x, L->u[IL_T5_SELF_O], T, in, d, 1);
        if (dec) {
            /* x += o(cross-attention(norm(x), encoder output)): no bias, no mask */
            const int Te = E->T;
            memcpy(L->x_ca, x, Td * sizeof *x);
            tk_rmsnorm_forward(L->h_ca, L->r_ca, x, B->ln_cross, T, d, c->eps);
            lin_fwd(t, sid, l, IL_T5_CROSS_Q, B->cq, L->h_ca, L->cq, L->u[IL_T5_CROSS_Q], T, d,
                    in, 0);
            lin_fwd(t, sid, l, IL_T5_CROSS_K, B->ck, E->out, L->ck, L->u[IL_T5_CROSS_K], Te, d,
                    in, 0);
            lin_fwd(t, sid, l, IL_T5_CROSS_V, B->cv, E->out, L->cv, L->u[IL_T5_CROSS_V], Te, d,
                    in, 0);
            tk_attention_forward(L->cctx, L->cp, L->cq, L->ck, L->cv, &A->s, &E->s, A->cp_off,
                                 NULL, NULL, 0, false, H, dkv);
            lin_fwd(t, sid, l, IL_T5_CROSS_O, B->co, L->cctx, x, L->u[IL_T5_CROSS_O], T, in, d,
                    1);
        }
        /* x += wo(act(wi_0 h) * wi_1 h)  or  wo(act(wi h)) */
        const il_t5_proj pi = c->gated ? IL_T5_FF_WI_0 : IL_T5_FF_WI;
        memcpy(L->x_ff, x, Td * sizeof *x);
        tk_rmsnorm_forward(L->h_ff, L->r_ff, x, B->ln_ff, T, d, c->eps);
        lin_fwd(t, sid, l, pi, B->wi, L->h_ff, L->a, L->u[pi], T, d, ff, 0);
        if (c->gated)
            lin_fwd(t, sid, l, IL_T5_FF_WI_1, B->wi1, L->h_ff, L->b, L->u[IL_T5_FF_WI_1], T, d,
                    ff, 0);
        tk_act_forward(L->g, L->a, L->b, (size_t)T * ff, c->act);
        lin_fwd(t, sid, l, IL_T5_FF_WO, B->wo, L->g, x, L->u[IL_T5_FF_WO], T, ff, d, 1);
    }
    memcpy(A->x_fin, x, Td * sizeof *x);
    tk_rmsnorm_forward(A->out, A->r_fin, x, st->final_ln, T, d, c->eps);
}

int il_t5_train_forward(il_t5_train *t, int n, const int32_t *const *ids, const int *lens,
                        const int32_t *const *labels, const int *label_lens, double *loss) {
    const il_t5_config *c = &t->cfg;
    const int V = c->vocab_size, d = c->d_model;
    t->have_fwd = false;
    if (n < 1 || !ids || !lens || !labels || !label_lens) {
        il_seterr("T5 training batch: empty batch or inputs missing");
        return -1;
    }
    if (!t->full && t->m->hook) {
        il_seterr("T5 LoRA training: the model has a linear hook (adapter context) installed; "
                  "remove it: the trainer applies its own adapter");
        return -1;
    }
    long te = 0, td = 0;
    for (int i = 0; i < n; i++) {
        if (!ids[i] || lens[i] < 1) {
            il_seterr("T5 training input: item %d: sequence is empty (length %d)", i, lens[i]);
            return -1;
        }
        if (!labels[i] || label_lens[i] < 1) {
            il_seterr("T5 training labels: item %d: sequence is empty (length %d)", i,
                      label_lens[i]);
            return -1;
        }
        for (int j = 0; j < lens[i]; j++)
            if (ids[i][j] < 0 || ids[i][j] >= V) {
                il_seterr("T5 training input: item %d: token %d: id %d is out of range [0, %d)",
                          i, j, (int)ids[i][j], V);
                return -1;
            }
        for (int j = 0; j < label_lens[i]; j++)
            if (labels[i][j] != -100 && (labels[i][j] < 0 || labels[i][j] >= V)) {
                il_seterr("T5 training labels: item %d: token %d: id %d is out of range [0, %d) "
                          "(and not -100)", i, j, (int)labels[i][j], V);
                return -1;
            }
        te += lens[i];
        td += label_lens[i];
        if (te > (1L << 30) || td > (1L << 30)) {
            il_seterr("T5 training batch: too many tokens");
            return -1;
        }
    }
    geom ge, gd;
    geom_of(&ge, c, n, lens, NULL);
    geom_of(&gd, c, n, label_lens, lens);
    gd.Te = ge.T;
    arena z = {NULL, 0, false};
    plan(t, &z, &ge, &gd);
    if (z.overflow) {
        il_seterr("T5 training batch: too large (activation size overflows)");
        return -1;
    }
    if (z.used > t->arena_cap) {
        free(t->arena);
        t->arena = NULL;
        t->arena_cap = 0;
        if (posix_memalign((void **)&t->arena, 64, z.used)) {
            t->arena = NULL;
            il_seterr("out of memory (%zu bytes of T5 training activations)", z.used);
            return -1;
        }
        t->arena_cap = z.used;
    }
    z = (arena){t->arena, 0, false};
    plan(t, &z, &ge, &gd);
    fill_stack(t, &t->enc, false, &ge, ids);
    fill_stack(t, &t->dec, true, &gd, labels); /* ids replaced below */
    /* decoder input = [start] + labels[:-1] (-100 fed as pad); targets: -1 = not counted */
    t->count = 0;
    for (int i = 0; i < n; i++) {
        int32_t *di = t->dec.ids + t->dec.off[i], *ti = t->targets + t->dec.off[i];
        di[0] = c->decoder_start_id;
        for (int j = 0; j < label_lens[i]; j++) {
            const int32_t y = labels[i][j];
            if (j + 1 < label_lens[i]) di[j + 1] = y == -100 ? c->pad_id : y;
            ti[j] = y == -100 || y == c->pad_id ? -1 : y;
            t->count += ti[j] >= 0;
        }
    }
    if (t->count == 0) {
        il_seterr("T5 training batch: no label token to learn from (all -100 or pad)");
        return -1;
    }
    const wview w = t->full ? t->w : model_view(t->m);
    const int Te = t->enc.T, Td = t->dec.T;
    tk_embed_forward(t->enc.x, t->enc.ids, w.embed, Te, d);
    stack_forward(t, &w, false, &t->enc, NULL);
    tk_embed_forward(t->dec.x, t->dec.ids, w.embed, Td, d);
    stack_forward(t, &w, true, &t->dec, &t->enc);
    /* head: logits = (out * lm_scale) lm_head^T; the scale is d_model^-0.5 when tied */
    const float *xs = t->dec.out;
    if (t->xs) {
        for (size_t i = 0; i < (size_t)Td * d; i++) t->xs[i] = t->dec.out[i] * w.lm_scale;
        xs = t->xs;
    }
    tk_matmul_forward(t->logits, xs, w.lm_head, Td, d, V, 0);
    tk_crossentropy_forward(t->tok_loss, t->logits, t->targets, Td, V);
    double sum = 0;
    for (int r = 0; r < Td; r++) sum += t->tok_loss[r];
    if (loss) *loss = sum / (double)t->count;
    t->have_fwd = true;
    return 0;
}

/* ===== backward ===== */

/* dout [T, d]: gradient of the stack output; on return dx [T, d] holds the gradient of the
 * stack input (the embeddings). Decoder: denc [Te, d] += gradient of the encoder output
 * (NULL: not wanted). */
static void stack_backward(il_t5_train *t, const wview *w, bool dec, const sacts *A,
                           const float *dout, float *dx, const sacts *E, float *denc) {
    const il_t5_config *c = &t->cfg;
    const t5_stack *st = dec ? &w->dec : &w->enc;
    const gstack *G = dec ? &t->gdec : &t->genc;
    const il_t5_stack sid = dec ? IL_T5_DECODER : IL_T5_ENCODER;
    const int T = A->T, d = c->d_model, in = t->inner, ff = c->d_ff, H = c->num_heads,
              dkv = c->d_kv;
    const size_t Td = (size_t)T * d, Tin = (size_t)T * in, Tff = (size_t)T * ff;
    memset(dx, 0, Td * sizeof *dx);
    tk_rmsnorm_backward(dx, G->final_ln, dout, A->x_fin, st->final_ln, A->r_fin, T, d);
    for (int l = st->n_layers - 1; l >= 0; l--) {
        const t5_block *B = &st->blocks[l];
        const gblock *GB = &G->blocks[l];
        const lacts *L = &A->L[l];
        /* feed-forward */
        const il_t5_proj pi = c->gated ? IL_T5_FF_WI_0 : IL_T5_FF_WI;
        memset(t->dg, 0, Tff * sizeof(float));
        lin_bwd(t, sid, l, IL_T5_FF_WO, B->wo, GB->wo, L->g, L->u[IL_T5_FF_WO], dx, t->dg, T, ff,
                d);
        tk_act_backward(t->da, c->gated ? t->db : NULL, t->dg, L->a, L->b, Tff, c->act);
        memset(t->dh, 0, Td * sizeof(float));
        lin_bwd(t, sid, l, pi, B->wi, GB->wi, L->h_ff, L->u[pi], t->da, t->dh, T, d, ff);
        if (c->gated)
            lin_bwd(t, sid, l, IL_T5_FF_WI_1, B->wi1, GB->wi1, L->h_ff, L->u[IL_T5_FF_WI_1],
                    t->db, t->dh, T, d, ff);
        tk_rmsnorm_backward(dx, GB->ln_ff, t->dh, L->x_ff, B->ln_ff, L->r_ff, T, d);
        if (dec) {
            /* cross-attention: the key / value gradients flow to the encoder output */
            const int Te = E->T;
            memset(t->dctx, 0, Tin * sizeof(float));
            lin_bwd(t, sid, l, IL_T5_CROSS_O, B->co, GB->co, L->cctx, L->u[IL_T5_CROSS_O], dx,
                    t->dctx, T, in, d);
            tk_attention_backward(t->dq, t->dk, t->dv, NULL, t->dp, t->dctx, L->cp, L->cq, L->ck,
                                  L->cv, &A->s, &E->s, A->cp_off, NULL, 0, H, dkv);
            memset(t->dh, 0, Td * sizeof(float));
            lin_bwd(t, sid, l, IL_T5_CROSS_Q, B->cq, GB->cq, L->h_ca, L->u[IL_T5_CROSS_Q], t->dq,
                    t->dh, T, d, in);
            lin_bwd(t, sid, l, IL_T5_CROSS_K, B->ck, GB->ck, E->out, L->u[IL_T5_CROSS_K], t->dk,
                    denc, Te, d, in);
            lin_bwd(t, sid, l, IL_T5_CROSS_V, B->cv, GB->cv, E->out, L->u[IL_T5_CROSS_V], t->dv,
                    denc, Te, d, in);
            tk_rmsnorm_backward(dx, GB->ln_cross, t->dh, L->x_ca, B->ln_cross, L->r_ca, T, d);
        }
        /* self-attention: the bias gradient of every layer goes to layer 0's table */
        memset(t->dctx, 0, Tin * sizeof(float));
        lin_bwd(t, sid, l, IL_T5_SELF_O, B->o, GB->o, L->ctx, L->u[IL_T5_SELF_O], dx, t->dctx, T,
                in, d);
        tk_attention_backward(t->dq, t->dk, t->dv, G->rel_bias, t->dp, t->dctx, L->p, L->q, L->k,
                              L->v, &A->s, &A->s, A->p_off, A->bucket, A->maxlen, H, dkv);
        memset(t->dh, 0, Td * sizeof(float));
        lin_bwd(t, sid, l, IL_T5_SELF_Q, B->q, GB->q, L->h_sa, L->u[IL_T5_SELF_Q], t->dq, t->dh,
                T, d, in);
        lin_bwd(t, sid, l, IL_T5_SELF_K, B->k, GB->k, L->h_sa, L->u[IL_T5_SELF_K], t->dk, t->dh,
                T, d, in);
        lin_bwd(t, sid, l, IL_T5_SELF_V, B->v, GB->v, L->h_sa, L->u[IL_T5_SELF_V], t->dv, t->dh,
                T, d, in);
        tk_rmsnorm_backward(dx, GB->ln_self, t->dh, L->x_sa, B->ln_self, L->r_sa, T, d);
    }
}

int il_t5_train_backward(il_t5_train *t) {
    if (!t->have_fwd) {
        il_seterr("T5 training: backward without a forward (one backward per forward)");
        return -1;
    }
    t->have_fwd = false; /* the logits become their gradient */
    const il_t5_config *c = &t->cfg;
    const int V = c->vocab_size, d = c->d_model, Te = t->enc.T, Td = t->dec.T;
    const wview w = t->full ? t->w : model_view(t->m);
    const float *xs = t->xs ? t->xs : t->dec.out;
    /* loss = sum of counted token losses / count */
    tk_crossentropy_backward(t->logits, t->logits, t->targets, (float)(1.0 / (double)t->count),
                             Td, V);
    memset(t->dxs, 0, (size_t)Td * d * sizeof(float));
    tk_matmul_backward(t->dxs, t->glm_head, t->logits, xs, w.lm_head, Td, d, V);
    if (w.lm_scale != 1.0f)
        for (size_t i = 0; i < (size_t)Td * d; i++) t->dxs[i] *= w.lm_scale;
    /* the encoder's gradient is only needed when something in it trains */
    const bool enc = t->full || t->enc_trainable;
    if (enc) memset(t->denc, 0, (size_t)Te * d * sizeof(float));
    stack_backward(t, &w, true, &t->dec, t->dxs, t->dx_dec, &t->enc, enc ? t->denc : NULL);
    if (t->gembed) tk_embed_backward(t->gembed, t->dx_dec, t->dec.ids, Td, d);
    if (enc) {
        stack_backward(t, &w, false, &t->enc, t->denc, t->dx_enc, NULL, NULL);
        /* shared.weight: the sum of the encoder's and the decoder's input flows */
        if (t->gembed) tk_embed_backward(t->gembed, t->dx_enc, t->enc.ids, Te, d);
    }
    return 0;
}

/* ===== optimiser ===== */

double il_t5_train_clip_grad_norm(il_t5_train *t, double max_norm) {
    float *g = t->gbuf;
    size_t n = t->total;
    return il_clip_grad_norm(&g, &n, 1, max_norm);
}

int il_t5_train_adamw_step(il_t5_train *t, const il_adamw_opts *o) {
    if (!t->mbuf) {
        size_t n = t->total ? t->total : 1;
        if (!(t->mbuf = il_calloc(n, sizeof(float)))) return -1;
        if (!(t->vbuf = il_calloc(n, sizeof(float)))) {
            free(t->mbuf);
            t->mbuf = NULL;
            return -1;
        }
    }
    t->step++;
    /* layer-norm weights (the 1-D parameters) are not decayed, as transformers' Trainer
     * groups them; T5 has no biases */
    il_adamw_opts nd = *o;
    nd.weight_decay = 0;
    for (int i = 0; i < t->n_params; i++) {
        const il_t5_param *p = &t->params[i];
        const size_t at = (size_t)(p->w - t->pbuf);
        il_adamw_update(p->w, p->g, t->mbuf + at, t->vbuf + at, p->numel, p->ndim == 1 ? &nd : o,
                        t->step);
    }
    return 0;
}

/* ===== the epoch loop ===== */

/* xoshiro256** seeded through splitmix64 (Blackman & Vigna). */
typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    const uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), unbiased (rejection). */
static uint64_t rng_below(rng *r, uint64_t n) {
    const uint64_t lim = (uint64_t)0 - ((uint64_t)0 - n) % n; /* largest multiple of n, mod 2^64 */
    for (;;) {
        uint64_t x = rng_next(r);
        if (lim == 0 || x < lim) return x % n;
    }
}

/* Uniform in [0, 1) with 24 bits. */
static float rng_unit(rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }

enum { STREAM_SHUFFLE = 1, STREAM_LORA_INIT = 2 };

il_t5_fit_opts il_t5_fit_default_opts(void) {
    il_t5_fit_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 1;
    o.batch = 5;
    o.adamw = il_adamw_default_opts();
    o.schedule = IL_LR_CONSTANT;
    return o;
}

int il_t5_train_fit(il_t5_train *t, int n, const int32_t *const *ids, const int *lens,
                    const int32_t *const *labels, const int *label_lens,
                    const il_t5_fit_opts *o, double *epoch_loss) {
    if (n < 1 || !ids || !lens || !labels || !label_lens || !o) {
        il_seterr("T5 training: no examples");
        return -1;
    }
    if (o->epochs < 1 || o->batch < 1 || o->warmup_steps < 0 || !(o->adamw.lr >= 0)) {
        il_seterr("T5 training: invalid options (epochs %d, batch %d, warmup %ld, lr %g)",
                  o->epochs, o->batch, o->warmup_steps, o->adamw.lr);
        return -1;
    }
    const int bs = o->batch < n ? o->batch : n, per_epoch = (n + bs - 1) / bs;
    int *perm = il_malloc(sizeof *perm * (size_t)n);
    const int32_t **bi = il_malloc(sizeof *bi * (size_t)bs), **bl = il_malloc(sizeof *bl * (size_t)bs);
    int *bn = il_malloc(sizeof *bn * (size_t)bs), *bln = il_malloc(sizeof *bln * (size_t)bs);
    int rc = -1;
    if (!perm || !bi || !bl || !bn || !bln) goto out;
    for (int i = 0; i < n; i++) perm[i] = i;
    rng r;
    rng_seed(&r, o->seed, STREAM_SHUFFLE);
    const il_lr_schedule sched = {o->schedule, o->adamw.lr, o->warmup_steps,
                                  (long)o->epochs * per_epoch};
    long step = 0;
    for (int e = 0; e < o->epochs; e++) {
        for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)rng_below(&r, (uint64_t)i + 1);
            int tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        double sum = 0;
        for (int b = 0; b < per_epoch; b++, step++) {
            const int k0 = b * bs, k = n - k0 < bs ? n - k0 : bs;
            for (int j = 0; j < k; j++) {
                const int x = perm[k0 + j];
                bi[j] = ids[x];
                bn[j] = lens[x];
                bl[j] = labels[x];
                bln[j] = label_lens[x];
            }
            double loss;
            il_t5_train_zero_grad(t);
            if (il_t5_train_forward(t, k, bi, bn, bl, bln, &loss) || il_t5_train_backward(t))
                goto out;
            if (!isfinite(loss)) {
                il_seterr("T5 training: epoch %d, step %ld: the loss is not finite (%g): "
                          "learning rate too high?", e + 1, step + 1, loss);
                goto out;
            }
            il_t5_train_clip_grad_norm(t, o->max_grad_norm);
            il_adamw_opts ao = o->adamw;
            ao.lr = il_lr_at(&sched, step);
            if (il_t5_train_adamw_step(t, &ao)) goto out;
            sum += loss;
        }
        const double mean = sum / per_epoch;
        if (epoch_loss) epoch_loss[e] = mean;
        if (o->on_epoch) o->on_epoch(o->user, e + 1, o->epochs, mean);
    }
    rc = 0;
out:
    free(perm);
    free(bi);
    free(bl);
    free(bn);
    free(bln);
    return rc;
}

/* ===== adapters ===== */

static const char *const proj_names[] = {"q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo"};
#define N_PROJ_NAMES (int)(sizeof proj_names / sizeof proj_names[0])

/* Adapter text for il_lora_from_tensors. */
static char *adapter_config(int r, double alpha, bool rslora, const char *base_model,
                            const char *const *targets, int n_targets, const lmod *mods,
                            int n_mods) {
    cJSON *root = cJSON_CreateObject(), *tm = cJSON_CreateArray();
    cJSON *rp = cJSON_CreateObject(), *ap = cJSON_CreateObject();
    char *text = NULL;
    if (!root || !tm || !rp || !ap) goto done;
    if (base_model) cJSON_AddStringToObject(root, "base_model_name_or_path", base_model);
    else cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", false);
    cJSON_AddBoolToObject(root, "inference_mode", true);
    cJSON_AddNumberToObject(root, "lora_alpha", alpha);
    cJSON_AddNumberToObject(root, "lora_dropout", 0.0);
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNumberToObject(root, "r", r);
    cJSON_AddStringToObject(root, "task_type", "SEQ_2_SEQ_LM");
    if (rslora) cJSON_AddBoolToObject(root, "use_rslora", true);
    for (int i = 0; i < n_targets; i++) cJSON_AddItemToArray(tm, cJSON_CreateString(targets[i]));
    for (int i = 0; i < n_mods; i++) {
        cJSON_AddItemToArray(tm, cJSON_CreateString(mods[i].name));
        /* keys are regexes matched at the end of the module name: escape the dots */
        il_buf key = {0};
        for (const char *s = mods[i].name; *s; s++)
            il_buf_append(&key, *s == '.' ? "\\." : s, *s == '.' ? 2 : 1);
        if (!key.data) goto done;
        if (mods[i].r != r) cJSON_AddNumberToObject(rp, key.data, mods[i].r);
        if ((double)mods[i].alpha != alpha) cJSON_AddNumberToObject(ap, key.data, mods[i].alpha);
        il_buf_free(&key);
    }
    cJSON_AddItemToObject(root, "target_modules", tm);
    tm = NULL;
    cJSON_AddItemToObject(root, "rank_pattern", rp);
    rp = NULL;
    cJSON_AddItemToObject(root, "alpha_pattern", ap);
    ap = NULL;
    text = cJSON_PrintUnformatted(root);
done:
    if (!text) il_seterr("out of memory");
    cJSON_Delete(root);
    cJSON_Delete(tm);
    cJSON_Delete(rp);
    cJSON_Delete(ap);
    return text;
}

il_lora *il_t5_train_lora_init(const il_t5_config *c, const il_lora_init_opts *o, uint64_t seed) {
    if (!c || !o || o->n_targets < 1 || !o->targets) {
        il_seterr("LoRA init: no target modules");
        return NULL;
    }
    if (o->r < 1 || !isfinite(o->alpha)) {
        il_seterr("LoRA init: invalid rank %d or alpha %g", o->r, o->alpha);
        return NULL;
    }
    for (int k = 0; k < o->n_targets; k++) {
        bool known = false;
        for (int j = 0; j < N_PROJ_NAMES; j++) known |= o->targets[k] && !strcmp(o->targets[k], proj_names[j]);
        if (!known) {
            il_seterr("LoRA init: unknown target module '%s' (T5 has q, k, v, o, wi, wi_0, "
                      "wi_1, wo)", o->targets[k] ? o->targets[k] : "(null)");
            return NULL;
        }
    }
    const int n_ids = il_t5_linear_ids(c, NULL, 0);
    il_t5_linear_id *lid = il_calloc((size_t)n_ids, sizeof *lid);
    bool *sel = il_calloc((size_t)n_ids, sizeof *sel);
    bool *hit = il_calloc((size_t)o->n_targets, sizeof *hit);
    il_tensor *ts = NULL;
    float *buf = NULL;
    char *json = NULL;
    il_lora *a = NULL;
    int n_sel = 0, n_named = 0;
    size_t total = 0;
    if (!lid || !sel || !hit) goto done;
    il_t5_linear_ids(c, lid, n_ids);
    for (int i = 0; i < n_ids; i++) {
        char name[128];
        il_t5_linear_name(&lid[i], name, sizeof name);
        const char *last = strrchr(name, '.') + 1;
        for (int k = 0; k < o->n_targets; k++)
            if (!strcmp(last, o->targets[k])) sel[i] = hit[k] = true;
        if (sel[i]) {
            n_sel++;
            total += (size_t)o->r * lid[i].in + (size_t)lid[i].out * o->r;
        }
    }
    for (int k = 0; k < o->n_targets; k++)
        if (!hit[k]) {
            il_seterr("LoRA init: target module '%s' matches no projection of this model "
                      "(feed_forward_proj is %s)", o->targets[k],
                      c->gated ? "gated: wi_0, wi_1, wo" : "not gated: wi, wo");
            goto done;
        }
    if (!(ts = il_calloc(2 * (size_t)n_sel, sizeof *ts)) || !(buf = il_calloc(total, sizeof *buf)))
        goto done;
    rng r;
    rng_seed(&r, seed, STREAM_LORA_INIT);
    size_t at = 0;
    for (int i = 0; i < n_ids; i++) {
        if (!sel[i]) continue;
        char name[128];
        il_t5_linear_name(&lid[i], name, sizeof name);
        for (int k = 0; k < 2; k++) {
            il_tensor *x = &ts[n_named];
            if (!(x->name = il_sprintf("base_model.model.%s.lora_%c.weight", name, k ? 'B' : 'A')))
                goto done;
            n_named++;
            x->dtype = IL_F32;
            x->ndim = 2;
            x->shape[0] = k ? lid[i].out : o->r;
            x->shape[1] = k ? o->r : lid[i].in;
            size_t numel = (size_t)o->r * (size_t)(k ? lid[i].out : lid[i].in);
            x->data = buf + at;
            x->nbytes = numel * sizeof(float);
            if (k == 0) {
                /* kaiming_uniform_(a=sqrt(5)): bound = sqrt(6 / ((1 + 5) fan_in)) */
                const float bound = (float)(1.0 / sqrt((double)lid[i].in));
                for (size_t e = 0; e < numel; e++) buf[at + e] = bound * (2.0f * rng_unit(&r) - 1.0f);
            }
            at += numel;
        }
    }
    if (!(json = adapter_config(o->r, o->alpha, false, o->base_model, o->targets, o->n_targets,
                                NULL, 0)))
        goto done;
    a = il_lora_from_tensors("new LoRA adapter", json, ts, n_named, c, NULL);
done:
    for (int i = 0; i < n_named; i++) free(ts[i].name);
    free(ts);
    free(buf);
    cJSON_free(json);
    free(lid);
    free(sel);
    free(hit);
    return a;
}

il_lora *il_t5_train_export_lora(const il_t5_train *t) {
    if (t->full) {
        il_seterr("T5 training: export_lora on a full fine-tuning trainer");
        return NULL;
    }
    il_tensor *ts = il_calloc((size_t)t->n_params, sizeof *ts);
    char *json = NULL;
    il_lora *a = NULL;
    if (!ts) return NULL;
    for (int i = 0; i < t->n_params; i++) {
        const il_t5_param *p = &t->params[i];
        ts[i] = (il_tensor){(char *)p->name, IL_F32, 2, {p->shape[0], p->shape[1]}, p->w,
                            p->numel * sizeof(float)};
    }
    json = adapter_config(t->mods[0].r, (double)t->mods[0].alpha, t->rslora, t->base_model, NULL,
                          0, t->mods, t->n_mods);
    if (json) a = il_lora_from_tensors("trained LoRA adapter", json, ts, t->n_params, &t->cfg, NULL);
    cJSON_free(json);
    free(ts);
    return a;
}

int il_t5_train_save_model(const il_t5_train *t, const char *path) {
    if (!t->full) {
        il_seterr("%s: only a full fine-tuning trainer has a model to save", path);
        return -1;
    }
    il_tensor *ts = il_calloc((size_t)t->n_params, sizeof *ts);
    if (!ts) return -1;
    for (int i = 0; i < t->n_params; i++) {
        const il_t5_param *p = &t->params[i];
        ts[i] = (il_tensor){(char *)p->name, IL_F32, p->ndim, {p->shape[0], p->shape[1]}, p->w,
                            p->numel * sizeof(float)};
    }
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    int rc = il_safetensors_write(path, ts, t->n_params, mk, mv, 1);
    free(ts);
    return rc;
}
