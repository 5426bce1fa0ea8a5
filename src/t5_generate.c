/* t5_generate.c - greedy decoding with a KV cache.
 *
 * Per chunk of inputs: encode once, compute every layer's cross-attention K/V once from the
 * encoder output, then decode one token per active row per step. Self-attention K/V are
 * appended to a time-major cache ([step][slot][inner], so growing it is a realloc). Rows
 * that emit eos or reach max_new_tokens leave the active set and cost nothing afterwards. */
#include "t5_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

il_gen_opts il_gen_default_opts(void) {
    il_gen_opts o;
    memset(&o, 0, sizeof o);
    o.max_new_tokens = 256;
    o.max_batch = 0;
    o.decoder_start_id = -1;
    o.eos_id = -1;
    return o;
}

typedef struct {
    float **kc, **vc;  /* per layer: self-attention cache [cap][nb][inner] */
    float **ck, **cv;  /* per layer: cross K/V [Te, inner] */
    int cap;           /* cache capacity in steps */
} gen_cache;

/* Attention of one query row against n keys with row stride `stride` (floats):
 * out[d_kv] = softmax(q . K_j + bias_j) V. s: scratch [n]. (No BLAS: this runs inside a
 * parallel region; see t5_kernels.c.) */
static void attend_row(float *out, const float *q, const float *K, const float *V,
                       size_t stride, int n, int d_kv, const float *bias, float *s) {
    for (int j = 0; j < n; j++) s[j] = t5_dot(q, K + (size_t)j * stride, d_kv);
    if (bias)
        for (int j = 0; j < n; j++) s[j] += bias[j];
    t5_softmax(s, n);
    for (int t = 0; t < d_kv; t++) out[t] = 0.0f;
    for (int j = 0; j < n; j++) t5_axpy(out, s[j], V + (size_t)j * stride, d_kv);
}

static int grow_cache(gen_cache *g, int n_layers, size_t nb, size_t inner, int need,
                      int max_new) {
    if (need <= g->cap) return 0;
    int cap = g->cap ? g->cap : 16;
    while (cap < need) cap = cap > max_new / 2 ? max_new : cap * 2;
    if (cap > max_new) cap = max_new;
    size_t n;
    if (il_mul_overflows((size_t)cap * nb, inner * sizeof(float), &n)) {
        il_seterr("T5 generate: KV cache size overflows");
        return -1;
    }
    for (int l = 0; l < n_layers; l++) {
        float *k = il_realloc(g->kc[l], n);
        if (!k) return -1;
        g->kc[l] = k;
        float *v = il_realloc(g->vc[l], n);
        if (!v) return -1;
        g->vc[l] = v;
    }
    g->cap = cap;
    return 0;
}

static int push_token(int32_t **out, int *len, int *cap, int32_t tok) {
    if (*len == *cap) {
        int nc = *cap ? *cap * 2 : 32;
        int32_t *p = il_realloc(*out, sizeof *p * (size_t)nc);
        if (!p) return -1;
        *out = p;
        *cap = nc;
    }
    (*out)[(*len)++] = tok;
    return 0;
}

/* Decode items [c0, c0 + nb) of the caller's batch. */
static int gen_chunk(il_t5 *m, int c0, int nb, const int32_t *const *ids, const int *lens,
                     const il_gen_opts *o, int start_id, int eos_id, int32_t **out_ids,
                     int *out_lens, bool *hit_limit) {
    const il_t5_config *c = &m->cfg;
    const int L = m->dec.n_layers, H = c->num_heads, dkv = c->d_kv, V = c->vocab_size;
    const size_t d = (size_t)c->d_model, in = (size_t)m->inner, ff = (size_t)c->d_ff;
    const int nt = t5_max_threads();
    int rc = -1;

    /* ---- everything allocated up front (the cache grows) ---- */
    int *ioff = il_malloc(sizeof(int) * (6 * (size_t)nb + 2));
    gen_cache g = {0};
    g.kc = il_calloc((size_t)L, sizeof *g.kc);
    g.vc = il_calloc((size_t)L, sizeof *g.vc);
    g.ck = il_calloc((size_t)L, sizeof *g.ck);
    g.cv = il_calloc((size_t)L, sizeof *g.cv);
    int *caps = il_calloc((size_t)nb, sizeof *caps);
    float *enc = NULL, *work = NULL, *bias = NULL, *sc = NULL;
    if (!ioff || !g.kc || !g.vc || !g.ck || !g.cv || !caps) goto out;
    int *ilen = ioff + nb + 1, *iitem = ilen + nb;
    int *act = iitem + nb;         /* active slot list [R] */
    int *roff = act + nb;          /* [R + 1] row offsets (r -> r) */
    int *ritem = roff + nb + 1;    /* [R] batch item of each row */
    long Te = 0;
    int emax = 0;
    for (int i = 0; i < nb; i++) {
        ioff[i] = (int)Te;
        ilen[i] = lens[c0 + i];
        iitem[i] = c0 + i;
        if (ilen[i] > emax) emax = ilen[i];
        Te += ilen[i];
    }
    ioff[nb] = (int)Te;
    t5_seqs es = {nb, ioff, ilen, iitem};

    size_t te_d, te_in;
    if (il_mul_overflows((size_t)Te, d, &te_d) || il_mul_overflows((size_t)Te, in, &te_in)) {
        il_seterr("T5 generate: batch too large");
        goto out;
    }
    if (!(enc = il_malloc(te_d * sizeof *enc))) goto out;
    if (t5_encode_packed(m, ids + c0, &es, enc, NULL)) goto out;
    /* Cross-attention K/V: once per input, for every decoder layer. */
    for (int l = 0; l < L; l++) {
        const t5_block *B = &m->dec.blocks[l];
        if (!(g.ck[l] = il_malloc(te_in * sizeof(float))) ||
            !(g.cv[l] = il_malloc(te_in * sizeof(float))))
            goto out;
        if (t5_linear(m, &es, IL_T5_DECODER, l, IL_T5_CROSS_K, B->ck, (int)d, (int)in, enc,
                      g.ck[l], 0) ||
            t5_linear(m, &es, IL_T5_DECODER, l, IL_T5_CROSS_V, B->cv, (int)d, (int)in, enc,
                      g.cv[l], 0))
            goto out;
    }
    free(enc);
    enc = NULL;

    /* per-step work buffers for up to nb rows */
    const size_t wsz = (size_t)nb * (2 * d + 4 * in + 2 * ff + (size_t)V);
    if (!(work = il_malloc(wsz * sizeof *work))) goto out;
    float *x = work, *h = x + nb * d, *q = h + nb * d, *k = q + nb * in, *v = k + nb * in,
          *ctx = v + nb * in, *a = ctx + nb * in, *b = a + nb * ff, *logits = b + nb * ff;
    int32_t *tok = il_malloc(sizeof *tok * (size_t)nb);
    if (!tok) goto out;

    int R = nb;
    for (int i = 0; i < nb; i++) {
        act[i] = i;
        tok[i] = start_id;
        out_lens[c0 + i] = 0;
        if (hit_limit) hit_limit[c0 + i] = false;
    }
    const int max_new = o->max_new_tokens;
    size_t sc_per = 0; /* per-thread score scratch */
    int bias_cap = 0;

    for (int step = 0; step < max_new && R > 0; step++) {
        const int nk = step + 1; /* keys 0..step in self-attention */
        if (grow_cache(&g, L, (size_t)nb, in, nk, max_new)) goto out_tok;
        size_t need = (size_t)(nk > emax ? nk : emax);
        if (need > sc_per) {
            sc_per = need * 2;
            free(sc);
            if (!(sc = il_malloc(sizeof *sc * sc_per * (size_t)nt))) goto out_tok;
        }
        if (nk > bias_cap) {
            bias_cap = g.cap;
            free(bias);
            if (!(bias = il_malloc(sizeof *bias * (size_t)H * (size_t)bias_cap))) goto out_tok;
        }
        /* causal bias of key j for query position `step`: relative position j - step */
        for (int j = 0; j < nk; j++) {
            int bk = il_t5_rel_bucket(j - step, false, c->rel_buckets, c->rel_max_distance);
            for (int hh = 0; hh < H; hh++)
                bias[(size_t)hh * bias_cap + j] = m->dec.rel_bias[(size_t)bk * H + hh];
        }
        for (int r = 0; r < R; r++) {
            roff[r] = r;
            ritem[r] = c0 + act[r];
            memcpy(x + (size_t)r * d, m->embed + (size_t)tok[act[r]] * d, d * sizeof *x);
        }
        roff[R] = R;
        t5_seqs rows = {R, roff, (int *)NULL, ritem};

        for (int l = 0; l < L; l++) {
            const t5_block *B = &m->dec.blocks[l];
            /* self-attention with the cache */
            t5_rmsnorm_rows(h, x, B->ln_self, R, (int)d, c->eps);
            if (t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_SELF_Q, B->q, (int)d, (int)in, h, q, 0) ||
                t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_SELF_K, B->k, (int)d, (int)in, h, k, 0) ||
                t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_SELF_V, B->v, (int)d, (int)in, h, v, 0))
                goto out_tok;
            float *KC = g.kc[l], *VC = g.vc[l];
            for (int r = 0; r < R; r++) {
                size_t at = ((size_t)step * nb + act[r]) * in;
                memcpy(KC + at, k + (size_t)r * in, in * sizeof(float));
                memcpy(VC + at, v + (size_t)r * in, in * sizeof(float));
            }
#pragma omp parallel for schedule(static) if (R * H > 1 && (size_t)R * H * nk * dkv > 32768)
            for (int t = 0; t < R * H; t++) {
                int r = t / H, hh = t % H;
                size_t col = (size_t)act[r] * in + (size_t)hh * dkv;
                float *s = sc + (size_t)t5_thread_id() * sc_per;
                attend_row(ctx + (size_t)r * in + (size_t)hh * dkv, q + (size_t)r * in + (size_t)hh * dkv,
                           KC + col, VC + col, (size_t)nb * in, nk, dkv,
                           bias + (size_t)hh * bias_cap, s);
            }
            if (t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_SELF_O, B->o, (int)in, (int)d, ctx, x, 1.0f))
                goto out_tok;
            /* cross-attention against the row's own encoder output */
            t5_rmsnorm_rows(h, x, B->ln_cross, R, (int)d, c->eps);
            if (t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_CROSS_Q, B->cq, (int)d, (int)in, h, q, 0))
                goto out_tok;
            const float *CK = g.ck[l], *CV = g.cv[l];
#pragma omp parallel for schedule(static) if (R * H > 1 && (size_t)R * H * emax * dkv > 32768)
            for (int t = 0; t < R * H; t++) {
                int r = t / H, hh = t % H, slot = act[r];
                size_t base = (size_t)ioff[slot] * in + (size_t)hh * dkv;
                float *s = sc + (size_t)t5_thread_id() * sc_per;
                attend_row(ctx + (size_t)r * in + (size_t)hh * dkv, q + (size_t)r * in + (size_t)hh * dkv,
                           CK + base, CV + base, in, ilen[slot], dkv, NULL, s);
            }
            if (t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_CROSS_O, B->co, (int)in, (int)d, ctx, x, 1.0f))
                goto out_tok;
            /* feed-forward */
            t5_rmsnorm_rows(h, x, B->ln_ff, R, (int)d, c->eps);
            if (t5_linear(m, &rows, IL_T5_DECODER, l, c->gated ? IL_T5_FF_WI_0 : IL_T5_FF_WI,
                          B->wi, (int)d, (int)ff, h, a, 0))
                goto out_tok;
            if (c->gated && t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_FF_WI_1, B->wi1, (int)d,
                                      (int)ff, h, b, 0))
                goto out_tok;
            t5_act_mul(a, c->gated ? b : NULL, (size_t)R * ff, c->act);
            if (t5_linear(m, &rows, IL_T5_DECODER, l, IL_T5_FF_WO, B->wo, (int)ff, (int)d, a, x, 1.0f))
                goto out_tok;
        }
        t5_rmsnorm_rows(h, x, m->dec.final_ln, R, (int)d, c->eps);
        if (m->lm_scale != 1.0f)
            for (size_t i = 0; i < (size_t)R * d; i++) h[i] *= m->lm_scale;
        if (R <= T5_FEW_ROWS)
            t5_gemm_few_rows(logits, h, m->lm_head, R, (int)d, V, 0.0f);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, V, (int)d, 1.0f, h, (int)d,
                        m->lm_head, (int)d, 0.0f, logits, V);

        /* argmax (ties -> lowest id, like torch.argmax), append, retire finished rows */
        int R2 = 0;
        for (int r = 0; r < R; r++) {
            const int slot = act[r], item = c0 + slot;
            const float *lr = logits + (size_t)r * V;
            if (o->on_step) o->on_step(o->user, item, step, lr);
            int best = 0;
            for (int j = 1; j < V; j++)
                if (lr[j] > lr[best]) best = j;
            if (push_token(&out_ids[item], &out_lens[item], &caps[slot], best)) goto out_tok;
            tok[slot] = best;
            if (best == eos_id) continue;
            if (out_lens[item] >= max_new) {
                if (hit_limit) hit_limit[item] = true;
                continue;
            }
            act[R2++] = slot;
        }
        R = R2;
    }
    rc = 0;
out_tok:
    free(tok);
out:
    free(enc);
    free(work);
    free(bias);
    free(sc);
    for (int l = 0; l < L; l++) {
        if (g.kc) free(g.kc[l]);
        if (g.vc) free(g.vc[l]);
        if (g.ck) free(g.ck[l]);
        if (g.cv) free(g.cv[l]);
    }
    free(g.kc);
    free(g.vc);
    free(g.ck);
    free(g.cv);
    free(caps);
    free(ioff);
    return rc;
}

int il_t5_generate(il_t5 *m, int n, const int32_t *const *ids, const int *lens,
                   const il_gen_opts *o, int32_t **out_ids, int *out_lens, bool *hit_limit) {
    const il_t5_config *c = &m->cfg;
    il_gen_opts def = il_gen_default_opts();
    if (!o) o = &def;
    if (n < 1 || !ids || !lens || !out_ids || !out_lens) {
        il_seterr("T5 generate: empty batch or missing arguments");
        return -1;
    }
    for (int i = 0; i < n; i++) out_ids[i] = NULL;
    if (o->max_new_tokens < 1) {
        il_seterr("T5 generate: max_new_tokens must be >= 1 (got %d)", o->max_new_tokens);
        return -1;
    }
    int start = o->decoder_start_id >= 0 ? o->decoder_start_id : c->decoder_start_id;
    int eos = o->eos_id >= 0 ? o->eos_id : c->eos_id;
    if (start >= c->vocab_size || eos >= c->vocab_size) {
        il_seterr("T5 generate: decoder start id %d or eos id %d is out of range [0, %d)",
                  start, eos, c->vocab_size);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!ids[i] || lens[i] < 1) {
            il_seterr("T5 generate input: item %d: sequence is empty (length %d)", i, lens[i]);
            return -1;
        }
        for (int j = 0; j < lens[i]; j++)
            if (ids[i][j] < 0 || ids[i][j] >= c->vocab_size) {
                il_seterr("T5 generate input: item %d: token %d: id %d is out of range [0, %d)",
                          i, j, (int)ids[i][j], c->vocab_size);
                return -1;
            }
    }
    const int chunk = o->max_batch > 0 && o->max_batch < n ? o->max_batch : n;
    for (int c0 = 0; c0 < n; c0 += chunk) {
        int nb = n - c0 < chunk ? n - c0 : chunk;
        if (gen_chunk(m, c0, nb, ids, lens, o, start, eos, out_ids, out_lens, hit_limit)) {
            for (int i = 0; i < n; i++) {
                free(out_ids[i]);
                out_ids[i] = NULL;
                out_lens[i] = 0;
            }
            return -1;
        }
    }
    return 0;
}
