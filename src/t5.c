/* t5.c - T5 model loading (weight binding and validation), the projection entry point,
 * the encoder / teacher-forced decoder over packed ragged batches, logits and loss.
 * Greedy decoding with a KV cache is in t5_generate.c, kernels in t5_kernels.c. */
#include "t5_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ===== weight binding ===== */

typedef struct {
    il_t5 *m;
    const char *where; /* names the checkpoint in "not found" errors */
} binder;

/* Bind tensor `name` with shape [d0] (d1 < 0) or [d0, d1] as float32. */
static const float *bind(binder *b, const char *name, int64_t d0, int64_t d1) {
    const char *path = NULL;
    const il_tensor *t = il_weights_find(b->m->ckpt, b->m->file, name, &path);
    if (!t) {
        il_seterr("%s: tensor '%s' not found", b->where, name);
        return NULL;
    }
    int64_t shape[2] = {d0, d1};
    float *owned = NULL;
    const float *p = il_tensor_f32(t, path, d1 < 0 ? 1 : 2, shape, &owned);
    if (!p) return NULL;
    if (owned && il_owned_push(&b->m->owned, &b->m->n_owned, owned)) return NULL;
    return p;
}

static const float *bindf(binder *b, int64_t d0, int64_t d1, const char *fmt, ...)
    IL_PRINTF(4, 5);
static const float *bindf(binder *b, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return bind(b, name, d0, d1);
}

static int bind_stack(binder *b, t5_stack *s, bool dec) {
    il_t5 *m = b->m;
    const il_t5_config *c = &m->cfg;
    const char *sn = dec ? "decoder" : "encoder";
    const int d = c->d_model, in = m->inner, ff = c->d_ff, F = dec ? 2 : 1;
    s->n_layers = dec ? c->num_decoder_layers : c->num_layers;
    s->blocks = il_calloc((size_t)s->n_layers, sizeof *s->blocks);
    if (!s->blocks) return -1;
    /* Only layer 0 owns relative_attention_bias; every layer of the stack reuses it. */
    s->rel_bias = bindf(b, c->rel_buckets, c->num_heads,
                        "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", sn);
    if (!s->rel_bias) return -1;
    for (int l = 0; l < s->n_layers; l++) {
        t5_block *k = &s->blocks[l];
#define B(field, d0, d1, ...) if (!(k->field = bindf(b, d0, d1, __VA_ARGS__))) return -1
        B(q, in, d, "%s.block.%d.layer.0.SelfAttention.q.weight", sn, l);
        B(k, in, d, "%s.block.%d.layer.0.SelfAttention.k.weight", sn, l);
        B(v, in, d, "%s.block.%d.layer.0.SelfAttention.v.weight", sn, l);
        B(o, d, in, "%s.block.%d.layer.0.SelfAttention.o.weight", sn, l);
        B(ln_self, d, -1, "%s.block.%d.layer.0.layer_norm.weight", sn, l);
        if (dec) {
            B(cq, in, d, "%s.block.%d.layer.1.EncDecAttention.q.weight", sn, l);
            B(ck, in, d, "%s.block.%d.layer.1.EncDecAttention.k.weight", sn, l);
            B(cv, in, d, "%s.block.%d.layer.1.EncDecAttention.v.weight", sn, l);
            B(co, d, in, "%s.block.%d.layer.1.EncDecAttention.o.weight", sn, l);
            B(ln_cross, d, -1, "%s.block.%d.layer.1.layer_norm.weight", sn, l);
        }
        if (c->gated) {
            B(wi, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi_0.weight", sn, l, F);
            B(wi1, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi_1.weight", sn, l, F);
        } else {
            B(wi, ff, d, "%s.block.%d.layer.%d.DenseReluDense.wi.weight", sn, l, F);
        }
        B(wo, d, ff, "%s.block.%d.layer.%d.DenseReluDense.wo.weight", sn, l, F);
        B(ln_ff, d, -1, "%s.block.%d.layer.%d.layer_norm.weight", sn, l, F);
#undef B
    }
    s->final_ln = bindf(b, d, -1, "%s.final_layer_norm.weight", sn);
    return s->final_ln ? 0 : -1;
}

static int bind_all(il_t5 *m, const char *where) {
    binder b = {m, where};
    const il_t5_config *c = &m->cfg;
    /* shared.weight, encoder.embed_tokens.weight and decoder.embed_tokens.weight are one
     * tensor under three names; a checkpoint may hold any subset. Never lm_head.weight. */
    static const char *const emb_names[] = {"shared.weight", "encoder.embed_tokens.weight",
                                            "decoder.embed_tokens.weight"};
    const char *emb = NULL;
    for (int i = 0; i < 3 && !emb; i++)
        if (il_weights_find(m->ckpt, m->file, emb_names[i], NULL)) emb = emb_names[i];
    if (!emb) {
        il_seterr("%s: no token embedding: none of 'shared.weight', "
                  "'encoder.embed_tokens.weight', 'decoder.embed_tokens.weight' is present", where);
        return -1;
    }
    if (!(m->embed = bind(&b, emb, c->vocab_size, c->d_model))) return -1;
    if (c->tie_word_embeddings) {
        /* Original T5: the head is the embedding and its input is scaled by d_model^-0.5
         * (transformers ties them, so a stored lm_head.weight is ignored). */
        m->lm_head = m->embed;
        m->lm_scale = (float)pow((double)c->d_model, -0.5);
    } else {
        if (!(m->lm_head = bind(&b, "lm_head.weight", c->vocab_size, c->d_model))) return -1;
        m->lm_scale = 1.0f;
    }
    if (bind_stack(&b, &m->enc, false) || bind_stack(&b, &m->dec, true)) return -1;
    return 0;
}

/* ===== load / free ===== */

static il_t5 *t5_alloc(const il_t5_config *c) {
    il_t5 *m = il_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *c;
    m->inner = c->num_heads * c->d_kv;
    return m;
}

void il_t5_free(il_t5 *m) {
    if (!m) return;
    free(m->enc.blocks);
    free(m->dec.blocks);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    il_checkpoint_free(m->ckpt);
    il_tensor_file_free(m->file);
    free(m);
}

il_t5 *il_t5_load(const char *dir) {
    il_t5_config c;
    char *cfg_path = il_path_join(dir, "config.json");
    if (!cfg_path) return NULL;
    int rc = il_t5_config_load(&c, cfg_path);
    free(cfg_path);
    if (rc) return NULL;
    il_t5 *m = t5_alloc(&c);
    if (!m) return NULL;
    if (!(m->ckpt = il_checkpoint_open(dir))) goto fail;
    const char *where = m->ckpt->n_files == 1 ? m->ckpt->files[0]->path : m->ckpt->dir;
    if (bind_all(m, where)) goto fail;
    il_flush_denormals();
    return m;
fail:
    il_t5_free(m);
    return NULL;
}

il_t5 *il_t5_load_files(const char *config_path, const char *weights_path) {
    il_t5_config c;
    if (il_t5_config_load(&c, config_path)) return NULL;
    il_t5 *m = t5_alloc(&c);
    if (!m) return NULL;
    if (!(m->file = il_tensor_file_open(weights_path))) goto fail;
    if (bind_all(m, m->file->path)) goto fail;
    il_flush_denormals();
    return m;
fail:
    il_t5_free(m);
    return NULL;
}

/* splitmix64 -> uniform in [-1, 1) */
static float rnd_uniform(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

/* Uniform with standard deviation `sd` (uniform on [-a, a] has sd a / sqrt(3)). */
static float *rnd_tensor(il_t5 *m, uint64_t *s, size_t n, float sd, float mean) {
    float *p = il_malloc(n * sizeof *p);
    if (!p || il_owned_push(&m->owned, &m->n_owned, p)) return NULL;
    float a = sd * 1.7320508f;
    for (size_t i = 0; i < n; i++) p[i] = mean + a * rnd_uniform(s);
    return p;
}

il_t5 *il_t5_new_random(const il_t5_config *c, uint64_t seed) {
    if (il_t5_config_validate(c, "random T5 config")) return NULL;
    il_t5 *m = t5_alloc(c);
    if (!m) return NULL;
    uint64_t s = seed;
    const size_t d = (size_t)c->d_model, in = (size_t)m->inner, ff = (size_t)c->d_ff;
    const float sd_d = 1.0f / sqrtf((float)d), sd_in = 1.0f / sqrtf((float)in),
                sd_ff = 1.0f / sqrtf((float)ff);
    if (!(m->embed = rnd_tensor(m, &s, (size_t)c->vocab_size * d, 1.0f, 0.0f))) goto fail;
    if (c->tie_word_embeddings) {
        m->lm_head = m->embed;
        m->lm_scale = (float)pow((double)c->d_model, -0.5);
    } else {
        if (!(m->lm_head = rnd_tensor(m, &s, (size_t)c->vocab_size * d, sd_d, 0.0f))) goto fail;
        m->lm_scale = 1.0f;
    }
    for (int dec = 0; dec < 2; dec++) {
        t5_stack *st = dec ? &m->dec : &m->enc;
        st->n_layers = dec ? c->num_decoder_layers : c->num_layers;
        if (!(st->blocks = il_calloc((size_t)st->n_layers, sizeof *st->blocks))) goto fail;
        if (!(st->rel_bias = rnd_tensor(m, &s, (size_t)c->rel_buckets * c->num_heads, 0.5f, 0)))
            goto fail;
        if (!(st->final_ln = rnd_tensor(m, &s, d, 0.1f, 1.0f))) goto fail;
        for (int l = 0; l < st->n_layers; l++) {
            t5_block *k = &st->blocks[l];
#define R(field, n, sd, mean) if (!(k->field = rnd_tensor(m, &s, (n), (sd), (mean)))) goto fail
            R(q, in * d, sd_d, 0);
            R(k, in * d, sd_d, 0);
            R(v, in * d, sd_d, 0);
            R(o, d * in, sd_in, 0);
            R(ln_self, d, 0.1f, 1.0f);
            if (dec) {
                R(cq, in * d, sd_d, 0);
                R(ck, in * d, sd_d, 0);
                R(cv, in * d, sd_d, 0);
                R(co, d * in, sd_in, 0);
                R(ln_cross, d, 0.1f, 1.0f);
            }
            R(wi, ff * d, sd_d, 0);
            if (c->gated) R(wi1, ff * d, sd_d, 0);
            R(wo, d * ff, sd_ff, 0);
            R(ln_ff, d, 0.1f, 1.0f);
#undef R
        }
    }
    il_flush_denormals();
    return m;
fail:
    il_t5_free(m);
    return NULL;
}

const il_t5_config *il_t5_get_config(const il_t5 *m) { return &m->cfg; }

void il_t5_set_linear_hook(il_t5 *m, il_t5_linear_hook fn, void *user) {
    m->hook = fn;
    m->hook_user = fn ? user : NULL;
}

int il_t5_linear_name(const il_t5_linear_id *id, char *buf, size_t size) {
    static const char *const names[IL_T5_PROJ_COUNT] = {
        "SelfAttention.q", "SelfAttention.k", "SelfAttention.v", "SelfAttention.o",
        "EncDecAttention.q", "EncDecAttention.k", "EncDecAttention.v", "EncDecAttention.o",
        "DenseReluDense.wi", "DenseReluDense.wi_0", "DenseReluDense.wi_1", "DenseReluDense.wo"};
    int p = (int)id->proj;
    if (p < 0 || p >= IL_T5_PROJ_COUNT) return snprintf(buf, size, "?");
    int sub = p <= IL_T5_SELF_O ? 0 : p <= IL_T5_CROSS_O ? 1 : (id->stack == IL_T5_DECODER ? 2 : 1);
    return snprintf(buf, size, "%s.block.%d.layer.%d.%s",
                    id->stack == IL_T5_DECODER ? "decoder" : "encoder", id->layer, sub, names[p]);
}

/* ===== the projection entry point ===== */

/* Every q/k/v/o/wi/wo projection of the model comes through here, with the row groups
 * that say which batch item each row belongs to: the single place where per-item
 * adapters (LoRA) attach. */
int t5_linear(const il_t5 *m, const t5_seqs *rows, il_t5_stack st, int layer, il_t5_proj p,
              const float *W, int in, int out, const float *x, float *y, float beta) {
    const int R = rows->off[rows->n];
    if (R <= T5_FEW_ROWS)
        t5_gemm_few_rows(y, x, W, R, in, out, beta);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, out, in, 1.0f, x, in, W, in,
                    beta, y, out);
    if (!m->hook) return 0;
    il_t5_linear_id id = {st, layer, p, in, out};
    il_t5_rows r = {rows->n, rows->off, rows->item};
    return m->hook(m->hook_user, &id, &r, x, y);
}

/* ===== packed batches ===== */

typedef struct {
    int n;
    int *off, *len, *item; /* one allocation */
    int maxlen;
    t5_seqs s;
} packed;

static void packed_free(packed *p) { free(p->off); }

/* Validate a ragged batch and lay out its offsets. */
static int pack(packed *p, int n, const int32_t *const *ids, const int *lens, int vocab,
                const char *what) {
    memset(p, 0, sizeof *p);
    if (n < 1) {
        il_seterr("%s: batch size must be >= 1 (got %d)", what, n);
        return -1;
    }
    if (!ids || !lens) {
        il_seterr("%s: ids or lengths missing", what);
        return -1;
    }
    p->off = il_malloc(sizeof(int) * (3 * (size_t)n + 1));
    if (!p->off) return -1;
    p->len = p->off + n + 1;
    p->item = p->len + n;
    p->n = n;
    long total = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || !ids[i]) {
            il_seterr("%s: item %d: sequence is empty (length %d)", what, i, lens[i]);
            goto fail;
        }
        for (int j = 0; j < lens[i]; j++) {
            if (ids[i][j] < 0 || ids[i][j] >= vocab) {
                il_seterr("%s: item %d: token %d: id %d is out of range [0, %d)", what, i, j,
                          (int)ids[i][j], vocab);
                goto fail;
            }
        }
        p->off[i] = (int)total;
        p->len[i] = lens[i];
        p->item[i] = i;
        if (lens[i] > p->maxlen) p->maxlen = lens[i];
        total += lens[i];
        if (total > (1L << 30)) {
            il_seterr("%s: too many tokens in the batch", what);
            goto fail;
        }
    }
    p->off[n] = (int)total;
    p->s = (t5_seqs){n, p->off, p->len, p->item};
    return 0;
fail:
    packed_free(p);
    return -1;
}

/* Scratch carving: sizes in floats, 64-byte aligned pieces. */
typedef struct {
    size_t total;
    bool overflow;
} sizer;

static size_t take(sizer *z, size_t a, size_t b) {
    size_t n = 0;
    if (il_mul_overflows(a, b, &n) || n > ((size_t)1 << 40)) {
        z->overflow = true;
        n = 0;
    }
    size_t at = z->total;
    z->total += (n + 15) & ~(size_t)15;
    return at;
}

static float *scratch_alloc(sizer *z) {
    if (z->overflow) {
        il_seterr("T5: batch too large (scratch size overflows)");
        return NULL;
    }
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (z->total ? z->total : 1) * sizeof(float))) {
        il_seterr("out of memory (%zu bytes of T5 scratch)", z->total * sizeof(float));
        return NULL;
    }
    return p;
}

/* ===== stacks ===== */

typedef struct {
    float *h, *q, *k, *v, *ctx, *a, *b, *bias, *attn;
    size_t attn_per_thread;
} stack_scratch;

/* Run one stack over packed sequences s, x [T, d_model] in place: on return x holds
 * the final_layer_norm output. Decoder: causal self-attention plus cross-attention to
 * enc [Te, d_model] (sequence i of s attends to sequence i of es). */
static int run_stack(il_t5 *m, bool dec, const t5_seqs *s, int maxlen, float *x,
                     const t5_seqs *es, int emax, const float *enc, float *trace) {
    const il_t5_config *c = &m->cfg;
    const t5_stack *st = dec ? &m->dec : &m->enc;
    const il_t5_stack sid = dec ? IL_T5_DECODER : IL_T5_ENCODER;
    const size_t T = (size_t)s->off[s->n], Te = dec ? (size_t)es->off[es->n] : 0;
    const size_t d = (size_t)c->d_model, in = (size_t)m->inner, ff = (size_t)c->d_ff;
    const int nt = t5_max_threads();
    const size_t kmax = (size_t)(dec && emax > maxlen ? emax : maxlen);
    const size_t kv_rows = T > Te ? T : Te;

    sizer z = {0, false};
    size_t o_h = take(&z, T, d), o_q = take(&z, T, in), o_k = take(&z, kv_rows, in),
           o_v = take(&z, kv_rows, in), o_ctx = take(&z, T, in), o_a = take(&z, T, ff),
           o_b = take(&z, c->gated ? T : 0, ff),
           o_bias = take(&z, (size_t)c->num_heads, 2 * (size_t)maxlen - 1);
    size_t per = (((size_t)maxlen * kmax + 15) & ~(size_t)15) +
                 t5_attn_pack_floats((int)kmax, c->d_kv);
    per = (per + 15) & ~(size_t)15;
    size_t o_attn = take(&z, (size_t)nt, per);
    float *buf = scratch_alloc(&z);
    if (!buf) return -1;
    stack_scratch w = {buf + o_h, buf + o_q, buf + o_k, buf + o_v, buf + o_ctx, buf + o_a,
                       buf + o_b, buf + o_bias, buf + o_attn, per};

    /* The relative position bias is computed once per stack (from layer 0's table) and
     * shared by every layer: bidirectional in the encoder, causal in the decoder. */
    t5_bias_table(w.bias, st->rel_bias, c->num_heads, maxlen, !dec, c->rel_buckets,
                  c->rel_max_distance);

    int rc = -1;
    for (int l = 0; l < st->n_layers; l++) {
        const t5_block *B = &st->blocks[l];
        if (trace) memcpy(trace + (size_t)l * T * d, x, T * d * sizeof *x);
        /* self-attention: x += o(attn(norm(x))) */
        t5_rmsnorm_rows(w.h, x, B->ln_self, (int)T, (int)d, c->eps);
        if (t5_linear(m, s, sid, l, IL_T5_SELF_Q, B->q, (int)d, (int)in, w.h, w.q, 0) ||
            t5_linear(m, s, sid, l, IL_T5_SELF_K, B->k, (int)d, (int)in, w.h, w.k, 0) ||
            t5_linear(m, s, sid, l, IL_T5_SELF_V, B->v, (int)d, (int)in, w.h, w.v, 0))
            goto out;
        t5_attention(w.ctx, w.q, w.k, w.v, s, s, c->num_heads, c->d_kv, w.bias, maxlen, dec,
                     w.attn, w.attn_per_thread);
        if (t5_linear(m, s, sid, l, IL_T5_SELF_O, B->o, (int)in, (int)d, w.ctx, x, 1.0f))
            goto out;
        if (dec) {
            /* cross-attention: no position bias, keys/values from the encoder output */
            t5_rmsnorm_rows(w.h, x, B->ln_cross, (int)T, (int)d, c->eps);
            if (t5_linear(m, s, sid, l, IL_T5_CROSS_Q, B->cq, (int)d, (int)in, w.h, w.q, 0) ||
                t5_linear(m, es, sid, l, IL_T5_CROSS_K, B->ck, (int)d, (int)in, enc, w.k, 0) ||
                t5_linear(m, es, sid, l, IL_T5_CROSS_V, B->cv, (int)d, (int)in, enc, w.v, 0))
                goto out;
            t5_attention(w.ctx, w.q, w.k, w.v, s, es, c->num_heads, c->d_kv, NULL, maxlen,
                         false, w.attn, w.attn_per_thread);
            if (t5_linear(m, s, sid, l, IL_T5_CROSS_O, B->co, (int)in, (int)d, w.ctx, x, 1.0f))
                goto out;
        }
        /* feed-forward: x += wo(act(wi_0 h) * wi_1 h)  or  wo(act(wi h)) */
        t5_rmsnorm_rows(w.h, x, B->ln_ff, (int)T, (int)d, c->eps);
        if (t5_linear(m, s, sid, l, c->gated ? IL_T5_FF_WI_0 : IL_T5_FF_WI, B->wi, (int)d,
                      (int)ff, w.h, w.a, 0))
            goto out;
        if (c->gated &&
            t5_linear(m, s, sid, l, IL_T5_FF_WI_1, B->wi1, (int)d, (int)ff, w.h, w.b, 0))
            goto out;
        t5_act_mul(w.a, c->gated ? w.b : NULL, T * ff, c->act);
        if (t5_linear(m, s, sid, l, IL_T5_FF_WO, B->wo, (int)ff, (int)d, w.a, x, 1.0f))
            goto out;
    }
    t5_rmsnorm_rows(x, x, st->final_ln, (int)T, (int)d, c->eps);
    if (trace) memcpy(trace + (size_t)st->n_layers * T * d, x, T * d * sizeof *x);
    rc = 0;
out:
    free(buf);
    return rc;
}

static void embed_rows(const il_t5 *m, const int32_t *const *ids, const t5_seqs *s, float *x) {
    const size_t d = (size_t)m->cfg.d_model;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->len[i]; j++)
            memcpy(x + ((size_t)s->off[i] + j) * d, m->embed + (size_t)ids[i][j] * d,
                   d * sizeof *x);
}

int t5_encode_packed(il_t5 *m, const int32_t *const *ids, const t5_seqs *s, float *out,
                     float *trace) {
    int maxlen = 0;
    for (int i = 0; i < s->n; i++) maxlen = s->len[i] > maxlen ? s->len[i] : maxlen;
    embed_rows(m, ids, s, out); /* embeddings are not scaled in T5 */
    return run_stack(m, false, s, maxlen, out, NULL, 0, NULL, trace);
}

int il_t5_encode(il_t5 *m, int n, const int32_t *const *ids, const int *lens, float *out) {
    packed p;
    if (pack(&p, n, ids, lens, m->cfg.vocab_size, "T5 encoder input")) return -1;
    int rc = t5_encode_packed(m, ids, &p.s, out, NULL);
    packed_free(&p);
    return rc;
}

/* Teacher-forced pass; logits [sum dec_lens, vocab] (NULL: skip the head). */
static int forward(il_t5 *m, const packed *ep, const int32_t *const *ids, const packed *dp,
                   const int32_t *const *dec_ids, float *logits, il_t5_trace *trace) {
    const il_t5_config *c = &m->cfg;
    const size_t d = (size_t)c->d_model;
    const size_t Te = (size_t)ep->off[ep->n], Td = (size_t)dp->off[dp->n];
    sizer z = {0, false};
    size_t o_e = take(&z, Te, d), o_x = take(&z, Td, d);
    float *buf = scratch_alloc(&z);
    if (!buf) return -1;
    float *enc = buf + o_e, *x = buf + o_x;
    int rc = -1;
    if (t5_encode_packed(m, ids, &ep->s, enc, trace ? trace->enc_hidden : NULL)) goto out;
    embed_rows(m, dec_ids, &dp->s, x);
    if (run_stack(m, true, &dp->s, dp->maxlen, x, &ep->s, ep->maxlen, enc,
                  trace ? trace->dec_hidden : NULL))
        goto out;
    if (logits) {
        /* Tied head (original T5): the decoder output is scaled by d_model^-0.5 first. */
        if (m->lm_scale != 1.0f)
            for (size_t i = 0; i < Td * d; i++) x[i] *= m->lm_scale;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Td, c->vocab_size, (int)d,
                    1.0f, x, (int)d, m->lm_head, (int)d, 0.0f, logits, c->vocab_size);
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int il_t5_forward(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                  const int32_t *const *dec_ids, const int *dec_lens, float *logits,
                  il_t5_trace *trace) {
    packed ep, dp;
    if (pack(&ep, n, ids, lens, m->cfg.vocab_size, "T5 encoder input")) return -1;
    if (pack(&dp, n, dec_ids, dec_lens, m->cfg.vocab_size, "T5 decoder input")) {
        packed_free(&ep);
        return -1;
    }
    int rc = forward(m, &ep, ids, &dp, dec_ids, logits, trace);
    packed_free(&ep);
    packed_free(&dp);
    return rc;
}

int il_t5_logits(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                 const int32_t *const *dec_ids, const int *dec_lens, float *logits) {
    return il_t5_forward(m, n, ids, lens, dec_ids, dec_lens, logits, NULL);
}

/* ===== loss ===== */

int il_t5_loss(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
               const int32_t *const *labels, const int *label_lens, float *per_example_mean,
               double *sum_per_example, int *count_per_example, double *batch_mean,
               float *token_loss) {
    const il_t5_config *c = &m->cfg;
    const int V = c->vocab_size;
    if (n < 1 || !labels || !label_lens) {
        il_seterr("T5 loss: empty batch or labels missing");
        return -1;
    }
    /* decoder input = [start] + labels[:-1], ignored labels (-100) fed as pad */
    long total = 0;
    for (int i = 0; i < n; i++) {
        if (label_lens[i] < 1 || !labels[i]) {
            il_seterr("T5 labels: item %d: sequence is empty (length %d)", i, label_lens[i]);
            return -1;
        }
        for (int j = 0; j < label_lens[i]; j++) {
            int32_t t = labels[i][j];
            if (t != -100 && (t < 0 || t >= V)) {
                il_seterr("T5 labels: item %d: token %d: id %d is out of range [0, %d) "
                          "(and not -100)", i, j, (int)t, V);
                return -1;
            }
        }
        total += label_lens[i];
        if (total > (1L << 30)) {
            il_seterr("T5 labels: too many tokens");
            return -1;
        }
    }
    int32_t *dec = il_malloc(sizeof *dec * (size_t)total);
    const int32_t **dptr = il_malloc(sizeof *dptr * (size_t)n);
    float *logits = NULL;
    int rc = -1;
    if (!dec || !dptr) goto out;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        dptr[i] = dec + at;
        dec[at] = c->decoder_start_id;
        for (int j = 1; j < label_lens[i]; j++) {
            int32_t t = labels[i][j - 1];
            dec[at + j] = t == -100 ? c->pad_id : t;
        }
        at += (size_t)label_lens[i];
    }
    size_t nlog;
    if (il_mul_overflows((size_t)total, (size_t)V, &nlog) ||
        !(logits = il_malloc(nlog * sizeof *logits)))
        goto out;
    if (il_t5_logits(m, n, ids, lens, (const int32_t *const *)dptr, label_lens, logits))
        goto out;

    double bsum = 0;
    long bcount = 0;
    at = 0;
    for (int i = 0; i < n; i++) {
        double sum = 0;
        int count = 0;
        for (int j = 0; j < label_lens[i]; j++, at++) {
            int32_t t = labels[i][j];
            if (t == -100 || t == c->pad_id) {
                if (token_loss) token_loss[at] = 0.0f;
                continue;
            }
            const float *row = logits + at * (size_t)V;
            double mx = row[0];
            for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            double se = 0;
            for (int v = 0; v < V; v++) se += exp((double)row[v] - mx);
            double tl = mx + log(se) - (double)row[t];
            if (token_loss) token_loss[at] = (float)tl;
            sum += tl;
            count++;
        }
        if (per_example_mean) per_example_mean[i] = count ? (float)(sum / count) : NAN;
        if (sum_per_example) sum_per_example[i] = sum;
        if (count_per_example) count_per_example[i] = count;
        bsum += sum;
        bcount += count;
    }
    if (batch_mean) *batch_mean = bcount ? bsum / (double)bcount : NAN;
    rc = 0;
out:
    free(dec);
    free(dptr);
    free(logits);
    return rc;
}
