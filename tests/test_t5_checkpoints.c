/* test_t5_checkpoints.c - T5 loading edge cases on scratch checkpoints built from the tiny
 * model's tensors: embedding aliases (B11), F16 weights with a 7e4 activation (B10), the
 * original T5 v1.0 layout (ReLU, tied head), start/stop handling (B04), the linear hook,
 * and bad configs / tensors / ids with their error messages. */
#include "test_t5_common.h"

/* A short input and decoder input used throughout. */
static const int32_t IN0[] = {222, 6, 36, 17, 168, 417, 465, 30, 217, 354, 146, 1184, 596, 74, 1};
static const int32_t IN1[] = {218, 404, 6, 388, 14, 6, 469, 256, 3, 386, 17, 371, 62, 6, 415, 485,
                              9, 21, 208, 26, 467, 78, 7, 105, 414, 11, 5, 144, 104, 1};
static const int32_t DEC0[] = {0, 693, 1, 17};
static const int32_t DEC1[] = {0, 150, 8, 4, 8, 4};

typedef struct {
    const int32_t *ids[2], *dec[2];
    int lens[2], dec_lens[2];
} batch2;

static batch2 make_batch(void) {
    batch2 b = {{IN0, IN1}, {DEC0, DEC1},
                {(int)(sizeof IN0 / sizeof IN0[0]), (int)(sizeof IN1 / sizeof IN1[0])},
                {(int)(sizeof DEC0 / sizeof DEC0[0]), (int)(sizeof DEC1 / sizeof DEC1[0])}};
    return b;
}

static float *logits_of(il_t5 *m, const batch2 *b, int *rows) {
    const il_t5_config *c = il_t5_get_config(m);
    *rows = b->dec_lens[0] + b->dec_lens[1];
    float *lg = malloc(sizeof(float) * (size_t)*rows * c->vocab_size);
    if (il_t5_logits(m, 2, b->ids, b->lens, b->dec, b->dec_lens, lg)) {
        free(lg);
        return NULL;
    }
    return lg;
}

static il_t5 *tiny_model(void) {
    char *p = tpath("golden/t5-tiny");
    il_t5 *m = il_t5_load(p);
    free(p);
    if (!m) fprintf(stderr, "tiny: %s\n", il_errmsg());
    return m;
}

/* ===== B11: embedding aliases ===== */

static void test_embedding_aliases(il_t5 *ref, const float *ref_logits, int rows) {
    il_tensor_file *f = tiny_weights();
    CHECK(f != NULL);
    if (!f) return;
    const int V = il_t5_get_config(ref)->vocab_size;
    const char *alias[] = {"decoder.embed_tokens.weight", "encoder.embed_tokens.weight"};
    for (int a = 0; a < 2; a++) {
        tmpdir t;
        CHECK(tmpdir_make(&t) == 0);
        tlist l;
        tlist_from_file(&l, f);
        il_tensor *sh = tlist_find(&l, "shared.weight");
        sh->name = (char *)alias[a]; /* same data, only the alias name */
        CHECK(write_config(&t, "t5-tiny", NULL, 0) == 0);
        CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
        il_t5 *m = il_t5_load(t.dir);
        CHECK_MSG(m != NULL, "only %s: %s", alias[a], il_errmsg());
        if (m) {
            batch2 b = make_batch();
            int r;
            float *lg = logits_of(m, &b, &r);
            CHECK(lg && r == rows);
            if (lg) CHECK_ARRAY_NEAR(lg, ref_logits, (size_t)rows * V, 0.0, alias[a]);
            free(lg);
            il_t5_free(m);
        }
        /* no embedding at all (lm_head is still there): an error naming the file, and
         * lm_head.weight is never used in its place */
        tlist_remove(&l, alias[a]);
        CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
        m = il_t5_load(t.dir);
        CHECK(m == NULL);
        CHECK_MSG(contains(il_errmsg(), "model.safetensors") && contains(il_errmsg(), "shared.weight") &&
                  contains(il_errmsg(), "embedding"), "got: %s", il_errmsg());
        il_t5_free(m);
        tmpdir_remove(&t);
        tlist_free(&l);
    }
    il_tensor_file_free(f);
}

/* ===== B10: F16 weights, FF output beyond the F16 range ===== */

static void test_f16_overflow(void) {
    il_tensor_file *f = tiny_weights();
    CHECK(f != NULL);
    if (!f) return;
    const char *wo = "encoder.block.0.layer.1.DenseReluDense.wo.weight";
    /* Probe the FF output scale with the unscaled model, then scale wo so that the
     * residual after block 0 reaches about 7e4 (more than F16's 65504). */
    il_t5 *m0 = tiny_model();
    batch2 b = make_batch();
    const int D = 64, L = 2;
    int te = b.lens[0] + b.lens[1], td = b.dec_lens[0] + b.dec_lens[1];
    float *enc = malloc(sizeof(float) * (size_t)(L + 1) * te * D);
    float *dec = malloc(sizeof(float) * (size_t)(L + 1) * td * D);
    float *lg = malloc(sizeof(float) * (size_t)td * 2104);
    il_t5_trace tr = {enc, dec};
    double mx = 0;
    if (m0 && il_t5_forward(m0, 2, b.ids, b.lens, b.dec, b.dec_lens, lg, &tr) == 0)
        for (int i = 0; i < te * D; i++) mx = fmax(mx, fabs(enc[(size_t)te * D + i] - enc[i]));
    il_t5_free(m0);
    CHECK(mx > 0);
    const float scale = (float)(2.0e5 / mx);

    /* F16 copy of every tensor (wo scaled), and an F32 copy of the same rounded values */
    tlist l16, l32;
    tlist_from_file(&l16, f);
    tlist_from_file(&l32, f);
    for (int i = 0; i < l16.n; i++) {
        il_tensor *t16 = &l16.t[i], *t32 = &l32.t[i];
        size_t n = (size_t)il_tensor_numel(t16);
        uint16_t *h = tlist_alloc(&l16, n * 2);
        float *w = tlist_alloc(&l32, n * 4);
        const float *src = t16->data;
        float s = strcmp(t16->name, wo) == 0 ? scale : 1.0f;
        for (size_t k = 0; k < n; k++) {
            float v;
            memcpy(&v, src + k, 4);
            h[k] = il_f32_to_f16(v * s);
            w[k] = il_f16_to_f32(h[k]);
        }
        t16->dtype = IL_F16;
        t16->data = h;
        t16->nbytes = n * 2;
        t32->data = w;
    }
    tmpdir t16d, t32d;
    CHECK(tmpdir_make(&t16d) == 0 && tmpdir_make(&t32d) == 0);
    CHECK(write_config(&t16d, "t5-tiny", NULL, 0) == 0 && write_config(&t32d, "t5-tiny", NULL, 0) == 0);
    CHECK(tlist_write(&l16, &t16d, "model.safetensors") == 0);
    CHECK(tlist_write(&l32, &t32d, "model.safetensors") == 0);
    il_t5 *m16 = il_t5_load(t16d.dir), *m32 = il_t5_load(t32d.dir);
    CHECK_MSG(m16 && m32, "%s", il_errmsg());
    if (m16 && m32) {
        float *lg32 = malloc(sizeof(float) * (size_t)td * 2104);
        CHECK(il_t5_forward(m16, 2, b.ids, b.lens, b.dec, b.dec_lens, lg, &tr) == 0);
        CHECK(il_t5_logits(m32, 2, b.ids, b.lens, b.dec, b.dec_lens, lg32) == 0);
        double big = 0;
        bool finite = true;
        for (size_t i = 0; i < (size_t)(L + 1) * te * D; i++) {
            finite &= isfinite(enc[i]);
            if (i >= (size_t)te * D && i < (size_t)2 * te * D) big = fmax(big, fabs(enc[i]));
        }
        for (size_t i = 0; i < (size_t)(L + 1) * td * D; i++) finite &= isfinite(dec[i]);
        for (size_t i = 0; i < (size_t)td * 2104; i++) finite &= isfinite(lg[i]);
        CHECK_MSG(big >= 7e4, "block 0 output reaches only %g", big);
        CHECK_MSG(finite, "inf/NaN in an F16-weight model whose activations exceed 65504");
        printf("B10: block-0 activation %.3g with F16 weights: all hidden states and logits finite\n", big);
        /* the F16 weights are widened exactly: same numbers as the F32 file */
        CHECK_ARRAY_NEAR(lg, lg32, (size_t)td * 2104, 0.0, "F16 vs F32-of-the-same-values logits");
        free(lg32);
    }
    il_t5_free(m16);
    il_t5_free(m32);
    tmpdir_remove(&t16d);
    tmpdir_remove(&t32d);
    tlist_free(&l16);
    tlist_free(&l32);
    il_tensor_file_free(f);
    free(enc);
    free(dec);
    free(lg);
}

/* ===== a naive reference for encoder block 0 (double precision, one sequence) ===== */

static const float *W(const il_tensor_file *f, const char *name) {
    const il_tensor *t = il_tensor_file_find(f, name);
    return t ? (const float *)t->data : NULL;
}

/* Optional rounding-sized noise on every stored intermediate of the reference: it measures
 * how much float32-level perturbations grow through the network by themselves. */
static double g_noise = 0;
static uint64_t g_noise_state = 99;
static double nz(double v) {
    if (g_noise == 0) return v;
    g_noise_state = g_noise_state * 6364136223846793005ull + 1442695040888963407ull;
    return v * (1 + g_noise * ((double)(g_noise_state >> 11) / 9007199254740992.0 * 2 - 1));
}

/* y [n, out] = x [n, in] W^T */
static void mm(double *y, const double *x, const float *w, int n, int in, int out) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int k = 0; k < in; k++) s += x[i * in + k] * w[o * in + k];
            y[i * out + o] = nz(s);
        }
}

static void rms(double *y, const double *x, const float *w, int n, int d) {
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int k = 0; k < d; k++) ss += x[i * d + k] * x[i * d + k];
        double inv = 1 / sqrt(ss / d + 1e-6);
        for (int k = 0; k < d; k++) y[i * d + k] = nz(w[k] * x[i * d + k] * inv);
    }
}

/* Naive encoder (double precision, one sequence) with the tensors of file f:
 * out [(L + 1), n, D] in il_t5_trace order (embeddings, each block's output, final norm).
 * wi_fmt: the first FF projection's name with %d for the layer ("...wi.weight" with ReLU,
 * "...wi_0.weight" when gated with wi_1). */
static void ref_encoder(double *out, const il_tensor_file *f, const int32_t *ids, int n, int L,
                        int D, int H, int FF, bool relu, const char *wi_fmt) {
    const int DK = D / H;
    double *x = calloc((size_t)n * D, 8), *h = calloc((size_t)n * D, 8), *q = calloc((size_t)n * D, 8),
           *k = calloc((size_t)n * D, 8), *v = calloc((size_t)n * D, 8), *ctx = calloc((size_t)n * D, 8),
           *a = calloc((size_t)n * FF, 8), *g = calloc((size_t)n * FF, 8), *o = calloc((size_t)n * D, 8),
           *s = calloc((size_t)n, 8);
    const float *emb = W(f, "shared.weight"),
                *rb = W(f, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    char nm[128];
#define WL(fmt) (snprintf(nm, sizeof nm, fmt, l), W(f, nm))
    for (int i = 0; i < n; i++)
        for (int c = 0; c < D; c++) x[i * D + c] = emb[ids[i] * D + c];
    for (int l = 0; l < L; l++) {
        memcpy(out + (size_t)l * n * D, x, sizeof(double) * (size_t)n * D);
        rms(h, x, WL("encoder.block.%d.layer.0.layer_norm.weight"), n, D);
        mm(q, h, WL("encoder.block.%d.layer.0.SelfAttention.q.weight"), n, D, D);
        mm(k, h, WL("encoder.block.%d.layer.0.SelfAttention.k.weight"), n, D, D);
        mm(v, h, WL("encoder.block.%d.layer.0.SelfAttention.v.weight"), n, D, D);
        for (int hh = 0; hh < H; hh++)
            for (int i = 0; i < n; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int c = 0; c < DK; c++) d += q[i * D + hh * DK + c] * k[j * D + hh * DK + c];
                    /* no 1/sqrt(d_kv); layer 0's bias table in every layer */
                    s[j] = d + rb[il_t5_rel_bucket(j - i, true, 32, 128) * H + hh];
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int c = 0; c < DK; c++) {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += s[j] / sum * v[j * D + hh * DK + c];
                    ctx[i * D + hh * DK + c] = acc;
                }
            }
        mm(o, ctx, WL("encoder.block.%d.layer.0.SelfAttention.o.weight"), n, D, D);
        for (int i = 0; i < n * D; i++) x[i] = nz(x[i] + o[i]);
        rms(h, x, WL("encoder.block.%d.layer.1.layer_norm.weight"), n, D);
        mm(a, h, WL(wi_fmt), n, D, FF);
        if (relu) {
            for (int i = 0; i < n * FF; i++) a[i] = a[i] > 0 ? a[i] : 0;
        } else {
            mm(g, h, WL("encoder.block.%d.layer.1.DenseReluDense.wi_1.weight"), n, D, FF);
            for (int i = 0; i < n * FF; i++) {
                double z = a[i];
                a[i] = 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z))) * g[i];
            }
        }
        mm(o, a, WL("encoder.block.%d.layer.1.DenseReluDense.wo.weight"), n, FF, D);
        for (int i = 0; i < n * D; i++) x[i] = nz(x[i] + o[i]);
    }
#undef WL
    rms(out + (size_t)L * n * D, x, W(f, "encoder.final_layer_norm.weight"), n, D);
    free(x), free(h), free(q), free(k), free(v), free(ctx), free(a), free(g), free(o), free(s);
}

/* Max abs diff per trace index between the model's encoder and ref_encoder on ids. */
static void encoder_vs_ref(il_t5 *m, const il_tensor_file *f, const int32_t *ids, int n, bool relu,
                           const char *wi_fmt, double *diff, double *mag, double *floor_) {
    const il_t5_config *c = il_t5_get_config(m);
    const int D = c->d_model, L = c->num_layers;
    float *enc = malloc(sizeof(float) * (size_t)(L + 1) * n * D);
    double *ref = malloc(sizeof(double) * (size_t)(L + 1) * n * D);
    il_t5_trace tr = {enc, NULL};
    const int32_t *ip[1] = {ids}, *dp[1] = {DEC0};
    int dl = 1;
    bool ok = il_t5_forward(m, 1, ip, &n, dp, &dl, NULL, &tr) == 0;
    double *noisy = floor_ ? malloc(sizeof(double) * (size_t)(L + 1) * n * D) : NULL;
    if (ok) ref_encoder(ref, f, ids, n, L, D, c->num_heads, c->d_ff, relu, wi_fmt);
    if (ok && noisy) {
        g_noise = 0x1p-24; /* half an ulp of float32 */
        ref_encoder(noisy, f, ids, n, L, D, c->num_heads, c->d_ff, relu, wi_fmt);
        g_noise = 0;
    }
    for (int l = 0; l <= L; l++) {
        diff[l] = ok ? 0 : INFINITY;
        mag[l] = 0;
        if (floor_) floor_[l] = 0;
        for (size_t i = (size_t)l * n * D; ok && i < (size_t)(l + 1) * n * D; i++) {
            diff[l] = fmax(diff[l], fabs(enc[i] - ref[i]));
            mag[l] = fmax(mag[l], fabs(ref[i]));
            if (noisy) floor_[l] = fmax(floor_[l], fabs(noisy[i] - ref[i]));
        }
    }
    free(enc), free(ref), free(noisy);
}

static double block0_diff(il_t5 *m, const il_tensor_file *f, bool relu, const char *wi_fmt) {
    double diff[8], mag[8];
    if (il_t5_get_config(m)->num_layers > 7) return INFINITY;
    encoder_vs_ref(m, f, IN1, (int)(sizeof IN1 / sizeof IN1[0]), relu, wi_fmt, diff, mag, NULL);
    return diff[1];
}

/* B05 (3): a 12-layer encoder compared layer by layer with the double-precision reference:
 * the error stays flat instead of growing with depth (it would with a 1/sqrt(d_kv) or a
 * mean-subtracting norm, which also break the values outright). */
static void test_deep_encoder(void) {
    const int L = 12, D = 64, FF = 128, V = 300;
    tmpdir t;
    CHECK(tmpdir_make(&t) == 0);
    tlist l;
    memset(&l, 0, sizeof l);
    uint64_t seed = 7;
    static char names[128][96];
    int nn = 0;
    /* name, rows, cols (0 = 1-D), sd (0: layer-norm weight ~ 1 +- 0.1) */
    typedef struct { const char *fmt; int layer, rows, cols; double sd; } wspec;
    wspec spec[128];
    int ns = 0;
#define ADD(f, ly, r, c, sd_) spec[ns++] = (wspec){f, ly, r, c, sd_}
    ADD("shared.weight", -1, V, D, 0.5);
    ADD("lm_head.weight", -1, V, D, 0.25);
    ADD("encoder.final_layer_norm.weight", -1, D, 0, 0);
    ADD("decoder.final_layer_norm.weight", -1, D, 0, 0);
    ADD("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", -1, 32, 4, 0.5);
    ADD("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", -1, 32, 4, 0.5);
    for (int ly = 0; ly < L; ly++) {
        ADD("encoder.block.%d.layer.0.SelfAttention.q.weight", ly, D, D, 0.125);
        ADD("encoder.block.%d.layer.0.SelfAttention.k.weight", ly, D, D, 0.125);
        ADD("encoder.block.%d.layer.0.SelfAttention.v.weight", ly, D, D, 0.125);
        ADD("encoder.block.%d.layer.0.SelfAttention.o.weight", ly, D, D, 0.125);
        ADD("encoder.block.%d.layer.0.layer_norm.weight", ly, D, 0, 0);
        ADD("encoder.block.%d.layer.1.DenseReluDense.wi_0.weight", ly, FF, D, 0.125);
        ADD("encoder.block.%d.layer.1.DenseReluDense.wi_1.weight", ly, FF, D, 0.125);
        ADD("encoder.block.%d.layer.1.DenseReluDense.wo.weight", ly, D, FF, 0.088);
        ADD("encoder.block.%d.layer.1.layer_norm.weight", ly, D, 0, 0);
    }
    const char *dec[] = {"decoder.block.0.layer.0.SelfAttention.q.weight", "decoder.block.0.layer.0.SelfAttention.k.weight",
                         "decoder.block.0.layer.0.SelfAttention.v.weight", "decoder.block.0.layer.0.SelfAttention.o.weight",
                         "decoder.block.0.layer.1.EncDecAttention.q.weight", "decoder.block.0.layer.1.EncDecAttention.k.weight",
                         "decoder.block.0.layer.1.EncDecAttention.v.weight", "decoder.block.0.layer.1.EncDecAttention.o.weight"};
    for (int i = 0; i < 8; i++) ADD(dec[i], -1, D, D, 0.125);
    ADD("decoder.block.0.layer.0.layer_norm.weight", -1, D, 0, 0);
    ADD("decoder.block.0.layer.1.layer_norm.weight", -1, D, 0, 0);
    ADD("decoder.block.0.layer.2.layer_norm.weight", -1, D, 0, 0);
    ADD("decoder.block.0.layer.2.DenseReluDense.wi_0.weight", -1, FF, D, 0.125);
    ADD("decoder.block.0.layer.2.DenseReluDense.wi_1.weight", -1, FF, D, 0.125);
    ADD("decoder.block.0.layer.2.DenseReluDense.wo.weight", -1, D, FF, 0.088);
#undef ADD
    for (int i = 0; i < ns; i++) {
        il_tensor *tt = &l.t[l.n++];
        memset(tt, 0, sizeof *tt);
        snprintf(names[nn], sizeof names[nn], spec[i].fmt, spec[i].layer);
        tt->name = names[nn++];
        tt->dtype = IL_F32;
        tt->ndim = spec[i].cols ? 2 : 1;
        tt->shape[0] = spec[i].rows;
        tt->shape[1] = spec[i].cols;
        size_t cnt = (size_t)spec[i].rows * (spec[i].cols ? spec[i].cols : 1);
        float *d = tlist_alloc(&l, cnt * 4);
        for (size_t k = 0; k < cnt; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(seed >> 11) / 9007199254740992.0 * 2 - 1; /* U(-1, 1) */
            d[k] = spec[i].sd > 0 ? (float)(u * spec[i].sd * 1.7320508) : (float)(1 + 0.1 * u);
        }
        tt->data = d;
        tt->nbytes = cnt * 4;
    }
    const char *set[] = {"num_layers=12", "num_decoder_layers=1", "vocab_size=300"};
    CHECK(write_config(&t, "t5-tiny", set, 3) == 0);
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    il_t5 *m = il_t5_load(t.dir);
    char *wp = tmpdir_file(&t, "model.safetensors");
    il_tensor_file *f = il_safetensors_open(wp);
    free(wp);
    CHECK_MSG(m && f, "12-layer model: %s", il_errmsg());
    if (m && f) {
        int32_t ids[40];
        for (int i = 0; i < 40; i++) ids[i] = (i * 37 + 3) % V;
        double diff[13], mag[13], fl[13], rmin = INFINITY, rmax = 0;
        encoder_vs_ref(m, f, ids, 40, false, "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight",
                       diff, mag, fl);
        /* The float32 error of any implementation grows with depth here (the hidden state
         * grows, and so does the network's sensitivity): half-ulp noise injected into a
         * double reference grows the same way. So "flat" is the ratio of our error to that
         * noise floor, which stays in a narrow band; a wrong scaling or norm is off by O(1). */
        printf("B05 12-layer encoder: max abs diff vs double reference / half-ulp noise floor per layer:\n ");
        for (int ly = 1; ly <= L; ly++) {
            double ratio = diff[ly] / fl[ly];
            printf(" %.1e/%.1e", diff[ly], fl[ly]);
            rmin = fmin(rmin, ratio);
            rmax = fmax(rmax, ratio);
            CHECK_MSG(diff[ly] <= 1e-4 * fmax(1.0, mag[ly]), "layer %d: %g (|x| <= %g)", ly, diff[ly], mag[ly]);
        }
        printf("\n  ratio to the noise floor: %.1f .. %.1f\n", rmin, rmax);
        CHECK_MSG(rmax <= 30 && rmax <= 5 * rmin, "error not flat relative to the float32 noise floor: %g .. %g",
                  rmin, rmax);
    }
    il_t5_free(m);
    il_tensor_file_free(f);
    tlist_free(&l);
    tmpdir_remove(&t);
}

/* ===== original T5 v1.0: ReLU wi/wo, tied head with the d_model^-0.5 scale ===== */

static void test_v10(void) {
    il_tensor_file *f = tiny_weights();
    CHECK(f != NULL);
    if (!f) return;
    /* the naive reference reproduces the v1.1 model first (validates the reference) */
    il_t5 *m11 = tiny_model();
    if (m11) {
        double d = block0_diff(m11, f, false, "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight");
        CHECK_MSG(d < 1e-4, "gated-gelu block 0 vs naive reference: %g", d);
        il_t5_free(m11);
    }
    tmpdir t;
    CHECK(tmpdir_make(&t) == 0);
    tlist l;
    tlist_from_file(&l, f);
    tlist_remove(&l, "lm_head.weight");
    static char names[64][96];
    int nn = 0;
    for (int i = l.n - 1; i >= 0; i--) {
        char *nm = l.t[i].name;
        if (strstr(nm, "DenseReluDense.wi_1.")) {
            tlist_remove(&l, nm);
        } else if (strstr(nm, "DenseReluDense.wi_0.") && nn < 64) {
            /* wi = wi_0 */
            snprintf(names[nn], sizeof names[nn], "%.*s%s", (int)(strstr(nm, "wi_0") - nm), nm,
                     "wi.weight");
            l.t[i].name = names[nn++];
        }
    }
    /* tie_word_embeddings absent: HF's default is true */
    const char *set[] = {"feed_forward_proj=\"relu\"", "tie_word_embeddings=", "dense_act_fn=\"relu\"",
                         "is_gated_act=false"};
    CHECK(write_config(&t, "t5-tiny", set, 4) == 0);
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    il_t5 *m = il_t5_load(t.dir);
    CHECK_MSG(m != NULL, "v1.0 model: %s", il_errmsg());
    if (m) {
        const il_t5_config *c = il_t5_get_config(m);
        CHECK(c->tie_word_embeddings && !c->gated && c->act == IL_ACT_RELU);
        /* ReLU FF: block 0 against the naive reference with ReLU */
        double d = block0_diff(m, f, true, "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight");
        CHECK_MSG(d < 1e-4, "ReLU block 0 vs naive reference: %g", d);
        printf("v1.0: encoder block 0 vs naive double reference (ReLU): %.3g\n", d);
        /* tied head: logits = (decoder final state * d_model^-0.5) . shared^T */
        batch2 b = make_batch();
        const int D = 64, V = 2104, L = c->num_decoder_layers;
        int te = b.lens[0] + b.lens[1], td = b.dec_lens[0] + b.dec_lens[1];
        float *enc = malloc(sizeof(float) * (size_t)(c->num_layers + 1) * te * D);
        float *dec = malloc(sizeof(float) * (size_t)(L + 1) * td * D);
        float *lg = malloc(sizeof(float) * (size_t)td * V);
        il_t5_trace tr = {enc, dec};
        CHECK(il_t5_forward(m, 2, b.ids, b.lens, b.dec, b.dec_lens, lg, &tr) == 0);
        const float *E = W(f, "shared.weight");
        double md = 0;
        for (int r = 0; r < td; r++)
            for (int v = 0; v < V; v++) {
                double s = 0;
                for (int k = 0; k < D; k++) s += dec[((size_t)L * td + r) * D + k] * 0.125 * E[v * D + k];
                md = fmax(md, fabs(s - lg[(size_t)r * V + v]));
            }
        CHECK_MSG(md < 1e-4, "tied head: max abs diff %g", md);
        printf("v1.0: tied-head logits vs hand computation: %.3g\n", md);
        free(enc), free(dec), free(lg);
        il_t5_free(m);
    }
    tmpdir_remove(&t);
    tlist_free(&l);
    il_tensor_file_free(f);
}

/* ===== B04: start id, eos, the length limit ===== */

static const float *g_first; /* logits captured at step 0 */
static float g_first_buf[2104];
static void first_step(void *user, int item, int step, const float *logits) {
    (void)user;
    if (item == 0 && step == 0) {
        memcpy(g_first_buf, logits, sizeof g_first_buf);
        g_first = g_first_buf;
    }
}

static void test_start_stop(void) {
    const char *variants[][2] = {{"decoder_start_token_id=5", "pad_token_id=0"},
                                 {"decoder_start_token_id=", "pad_token_id=3"}};
    const int want_start[] = {5, 3};
    for (int vi = 0; vi < 2; vi++) {
        tmpdir t;
        CHECK(tmpdir_make(&t) == 0);
        CHECK(write_config(&t, "t5-tiny", variants[vi], 2) == 0);
        char *cfg = tmpdir_file(&t, "config.json"), *w = tpath("golden/t5-tiny/model.safetensors");
        il_t5 *m = il_t5_load_files(cfg, w);
        CHECK_MSG(m != NULL, "%s", il_errmsg());
        if (m) {
            CHECK_EQ_INT(il_t5_get_config(m)->decoder_start_id, want_start[vi]);
            il_gen_opts o = il_gen_default_opts();
            o.max_new_tokens = 2;
            o.on_step = first_step;
            g_first = NULL;
            const int32_t *ip[1] = {IN0};
            int n = (int)(sizeof IN0 / sizeof IN0[0]), ol;
            int32_t *out = NULL;
            CHECK(il_t5_generate(m, 1, ip, &n, &o, &out, &ol, NULL) == 0);
            free(out);
            int32_t d[1] = {want_start[vi]};
            const int32_t *dp[1] = {d};
            int dl = 1;
            float lg[2104];
            CHECK(il_t5_logits(m, 1, ip, &n, dp, &dl, lg) == 0);
            CHECK(g_first != NULL);
            if (g_first) CHECK_ARRAY_NEAR(g_first, lg, 2104, 1e-5, "first step vs teacher-forced [start]");
            il_t5_free(m);
        }
        free(cfg);
        free(w);
        tmpdir_remove(&t);
    }

    /* stop at the first eos; report the limit. From forward.json: generation 3 emits
     * "</s>" at once, generation 0 after 10 tokens, generation 7 (the empty string, [1])
     * after 12. */
    il_t5 *m = tiny_model();
    golden g;
    if (!m || golden_load(&g, "t5-tiny")) {
        CHECK(0);
        il_t5_free(m);
        return;
    }
    const cJSON *ind = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(g.json, "generate"), "individual");
    const int pick[3] = {3, 0, 7};
    int32_t buf[3][256];
    const int32_t *ip[3];
    int lens[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ind, pick[i]), "input_ids");
        lens[i] = cJSON_GetArraySize(ids);
        for (int j = 0; j < lens[i] && j < 256; j++) buf[i][j] = cJSON_GetArrayItem(ids, j)->valueint;
        ip[i] = buf[i];
    }
    golden_free(&g);
    int32_t *out[3];
    int ol[3];
    bool hit[3];
    il_gen_opts o = il_gen_default_opts();
    for (int lim = 3; lim <= 24; lim += 21) {
        o.max_new_tokens = lim;
        CHECK(il_t5_generate(m, 3, ip, lens, &o, out, ol, hit) == 0);
        CHECK_EQ_INT(ol[0], 1);
        CHECK_EQ_INT(out[0][0], 1);
        CHECK(!hit[0]);
        CHECK_EQ_INT(ol[1], lim == 3 ? 3 : 10);
        CHECK_EQ_INT(hit[1], lim == 3);
        CHECK_EQ_INT(out[1][ol[1] - 1], lim == 3 ? 1449 : 1);
        CHECK_EQ_INT(ol[2], lim == 3 ? 3 : 12);
        CHECK_EQ_INT(hit[2], lim == 3);
        for (int i = 0; i < 3; i++) free(out[i]);
    }
    /* eos override: the same run with an id that never occurs hits the limit for row 0 */
    o.eos_id = 2103;
    o.max_new_tokens = 4;
    CHECK(il_t5_generate(m, 3, ip, lens, &o, out, ol, hit) == 0);
    CHECK_EQ_INT(ol[0], 4);
    CHECK(hit[0]);
    for (int i = 0; i < 3; i++) free(out[i]);
    o.max_new_tokens = 0;
    CHECK(il_t5_generate(m, 3, ip, lens, &o, out, ol, hit) == -1);
    CHECK(contains(il_errmsg(), "max_new_tokens"));
    CHECK(out[0] == NULL);
    il_t5_free(m);
}

/* ===== the linear hook ===== */

typedef struct {
    int calls[2][IL_T5_PROJ_COUNT];
    int rows_seen;
    int fail_at;        /* fail on this call number (-1: never) */
    int n_calls;
    int bump_item;      /* add 0.01 to encoder layer-0 q output rows of this item */
    bool groups_ok;
} hook_state;

static int hook(void *user, const il_t5_linear_id *id, const il_t5_rows *rows, const float *x,
                float *y) {
    hook_state *h = user;
    (void)x;
    if (h->n_calls++ == h->fail_at) {
        il_seterr("hook refused");
        return -1;
    }
    h->calls[id->stack][id->proj]++;
    if (rows->row_start[0] != 0) h->groups_ok = false;
    for (int g = 0; g < rows->n_groups; g++)
        if (rows->row_start[g + 1] <= rows->row_start[g]) h->groups_ok = false;
    h->rows_seen += rows->row_start[rows->n_groups];
    if (id->stack == IL_T5_ENCODER && id->layer == 0 && id->proj == IL_T5_SELF_Q)
        for (int g = 0; g < rows->n_groups; g++)
            if (rows->item[g] == h->bump_item)
                for (int r = rows->row_start[g]; r < rows->row_start[g + 1]; r++)
                    for (int o = 0; o < id->out; o++) y[(size_t)r * id->out + o] += 0.01f;
    return 0;
}

static void test_hook(il_t5 *m, const float *ref_logits) {
    batch2 b = make_batch();
    hook_state h;
    memset(&h, 0, sizeof h);
    h.fail_at = -1;
    h.bump_item = -1;
    h.groups_ok = true;
    il_t5_set_linear_hook(m, hook, &h);
    int rows;
    float *lg = logits_of(m, &b, &rows);
    CHECK(lg != NULL);
    if (lg) CHECK_ARRAY_NEAR(lg, ref_logits, (size_t)rows * 2104, 0.0, "no-op hook");
    free(lg);
    /* every projection went through the hook: 2 encoder layers x (q,k,v,o,wi_0,wi_1,wo),
     * 2 decoder layers x (q,k,v,o, cross q,k,v,o, wi_0,wi_1,wo) */
    const il_t5_proj enc_p[] = {IL_T5_SELF_Q, IL_T5_SELF_K, IL_T5_SELF_V, IL_T5_SELF_O,
                                IL_T5_FF_WI_0, IL_T5_FF_WI_1, IL_T5_FF_WO};
    for (int i = 0; i < 7; i++) CHECK_EQ_INT(h.calls[IL_T5_ENCODER][enc_p[i]], 2);
    for (int p = 0; p < IL_T5_PROJ_COUNT; p++)
        if (p != IL_T5_FF_WI) CHECK_EQ_INT(h.calls[IL_T5_DECODER][p], 2);
    CHECK_EQ_INT(h.calls[IL_T5_DECODER][IL_T5_FF_WI], 0);
    CHECK(h.groups_ok);
    char name[128];
    il_t5_linear_id id = {IL_T5_DECODER, 1, IL_T5_FF_WO, 128, 64};
    il_t5_linear_name(&id, name, sizeof name);
    CHECK_STR(name, "decoder.block.1.layer.2.DenseReluDense.wo");
    id = (il_t5_linear_id){IL_T5_DECODER, 0, IL_T5_CROSS_V, 64, 64};
    il_t5_linear_name(&id, name, sizeof name);
    CHECK_STR(name, "decoder.block.0.layer.1.EncDecAttention.v");
    id = (il_t5_linear_id){IL_T5_ENCODER, 3, IL_T5_FF_WI_1, 64, 128};
    il_t5_linear_name(&id, name, sizeof name);
    CHECK_STR(name, "encoder.block.3.layer.1.DenseReluDense.wi_1");

    /* a per-item change affects that item only */
    h.bump_item = 1;
    lg = logits_of(m, &b, &rows);
    if (lg) {
        size_t r0 = (size_t)b.dec_lens[0] * 2104;
        CHECK_ARRAY_NEAR(lg, ref_logits, r0, 0.0, "item 0 untouched by item 1's hook");
        size_t w;
        CHECK(check_max_abs_diff(lg + r0, ref_logits + r0, (size_t)rows * 2104 - r0, &w) > 1e-4);
    }
    free(lg);
    /* generation routes through the hook too, with finished rows dropping out */
    h.bump_item = -1;
    memset(h.calls, 0, sizeof h.calls);
    int32_t *out[2];
    int ol[2];
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = 5;
    CHECK(il_t5_generate(m, 2, b.ids, b.lens, &o, out, ol, NULL) == 0);
    CHECK(h.calls[IL_T5_DECODER][IL_T5_CROSS_K] == 2 && h.calls[IL_T5_DECODER][IL_T5_CROSS_V] == 2);
    CHECK(h.calls[IL_T5_DECODER][IL_T5_SELF_Q] == 2 * (ol[0] > ol[1] ? ol[0] : ol[1]));
    free(out[0]);
    free(out[1]);
    /* a failing hook fails the call */
    for (int k = 0; k < 40; k += 7) {
        h.n_calls = 0;
        h.fail_at = k;
        float *l2 = logits_of(m, &b, &rows);
        CHECK(l2 == NULL);
        CHECK(contains(il_errmsg(), "hook refused"));
        free(l2);
    }
    h.n_calls = 0;
    h.fail_at = 3;
    out[0] = out[1] = (int32_t *)1;
    CHECK(il_t5_generate(m, 2, b.ids, b.lens, &o, out, ol, NULL) == -1);
    CHECK(out[0] == NULL && out[1] == NULL);
    il_t5_set_linear_hook(m, NULL, NULL);
}

/* ===== bad inputs ===== */

static void expect_config_error(const char *json, const char *what) {
    il_t5_config c;
    CHECK_MSG(il_t5_config_parse(&c, json, "x/config.json") == -1, "accepted: %s", json);
    CHECK_MSG(contains(il_errmsg(), "x/config.json") && contains(il_errmsg(), what),
              "for %s: got '%s', want '%s'", json, il_errmsg(), what);
}

static void test_config(void) {
    const char *base = "\"vocab_size\":100,\"d_model\":8,\"d_kv\":4,\"num_heads\":2,\"d_ff\":16,\"num_layers\":1";
    il_t5_config c;
    char buf[512];
    snprintf(buf, sizeof buf, "{%s}", base);
    CHECK(il_t5_config_parse(&c, buf, "x") == 0);
    /* HF defaults */
    CHECK_EQ_INT(c.num_decoder_layers, 1);
    CHECK_EQ_INT(c.rel_buckets, 32);
    CHECK_EQ_INT(c.rel_max_distance, 128);
    CHECK(c.tie_word_embeddings);
    CHECK(c.act == IL_ACT_RELU && !c.gated);
    CHECK_EQ_INT(c.pad_id, 0);
    CHECK_EQ_INT(c.eos_id, 1);
    CHECK_EQ_INT(c.decoder_start_id, 0);
    CHECK_NEAR(c.eps, 1e-6, 1e-12);
    snprintf(buf, sizeof buf, "{%s,\"feed_forward_proj\":\"gated-gelu\",\"pad_token_id\":7,\"num_decoder_layers\":3}", base);
    CHECK(il_t5_config_parse(&c, buf, "x") == 0);
    CHECK(c.gated && c.act == IL_ACT_GELU_NEW && c.decoder_start_id == 7 && c.num_decoder_layers == 3);
    snprintf(buf, sizeof buf, "{%s,\"feed_forward_proj\":\"gelu\"}", base);
    CHECK(il_t5_config_parse(&c, buf, "x") == 0 && c.act == IL_ACT_GELU && !c.gated);
    snprintf(buf, sizeof buf, "{%s,\"feed_forward_proj\":\"gated-relu\"}", base);
    CHECK(il_t5_config_parse(&c, buf, "x") == 0 && c.act == IL_ACT_RELU && c.gated);

    expect_config_error("{\"vocab_size\": 100,", "malformed JSON");
    expect_config_error("[1,2]", "JSON object");
    expect_config_error("{\"vocab_size\":100,\"d_kv\":4,\"num_heads\":2,\"d_ff\":16,\"num_layers\":1}",
                        "field 'd_model' is missing");
    const char *bad[][2] = {
        {"\"d_model\":\"64\"", "field 'd_model': expected a positive integer"},
        {"\"d_model\":-1", "field 'd_model': expected a positive integer"},
        {"\"d_model\":1.5", "field 'd_model': expected a positive integer"},
        {"\"feed_forward_proj\":\"swish\"", "field 'feed_forward_proj': unsupported value 'swish'"},
        {"\"feed_forward_proj\":3", "field 'feed_forward_proj': expected a string"},
        {"\"tie_word_embeddings\":\"yes\"", "field 'tie_word_embeddings'"},
        {"\"layer_norm_epsilon\":-1", "field 'layer_norm_epsilon'"},
        {"\"eos_token_id\":100", "field 'eos_token_id'"},
        {"\"decoder_start_token_id\":-2", "field 'decoder_start_token_id'"},
        {"\"relative_attention_num_buckets\":2", "field 'relative_attention_num_buckets'"},
        {"\"relative_attention_max_distance\":8", "field 'relative_attention_max_distance'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* d_model replaces the base's; every other key is added */
        const char *rest = strstr(bad[i][0], "\"d_model\"")
                               ? "\"vocab_size\":100,\"d_kv\":4,\"num_heads\":2,\"d_ff\":16,\"num_layers\":1"
                               : base;
        snprintf(buf, sizeof buf, "{%s,%s}", bad[i][0], rest);
        expect_config_error(buf, bad[i][1]);
    }
    CHECK(il_t5_config_load(&c, "no/such/dir/config.json") == -1);
    CHECK(contains(il_errmsg(), "no/such/dir/config.json"));
    il_t5_config r = {0};
    CHECK(il_t5_new_random(&r, 1) == NULL);
}

static void test_bad_checkpoints(void) {
    il_tensor_file *f = tiny_weights();
    CHECK(f != NULL);
    if (!f) return;
    tmpdir t;
    CHECK(tmpdir_make(&t) == 0);
    CHECK(write_config(&t, "t5-tiny", NULL, 0) == 0);
    tlist l;
    /* wrong shape */
    tlist_from_file(&l, f);
    il_tensor *wo = tlist_find(&l, "decoder.block.1.layer.2.DenseReluDense.wo.weight");
    wo->shape[1] = 64;
    wo->nbytes = 64 * 64 * 4;
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    il_t5 *m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "model.safetensors: tensor 'decoder.block.1.layer.2.DenseReluDense.wo.weight': expected shape [64, 128], got [64, 64]"),
              "got: %s", il_errmsg());
    /* missing tensor */
    tlist_from_file(&l, f);
    tlist_remove(&l, "encoder.block.1.layer.0.SelfAttention.k.weight");
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "model.safetensors") &&
              contains(il_errmsg(), "'encoder.block.1.layer.0.SelfAttention.k.weight' not found"),
              "got: %s", il_errmsg());
    /* untied model without lm_head */
    tlist_from_file(&l, f);
    tlist_remove(&l, "lm_head.weight");
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "'lm_head.weight' not found"), "got: %s", il_errmsg());
    /* only layer 0 owns relative_attention_bias */
    tlist_from_file(&l, f);
    tlist_remove(&l, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK(contains(il_errmsg(), "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
    /* integer weights */
    tlist_from_file(&l, f);
    il_tensor *ln = tlist_find(&l, "encoder.final_layer_norm.weight");
    ln->dtype = IL_I32;
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "encoder.final_layer_norm.weight"), "got: %s", il_errmsg());
    /* config contradicting the weights: num_heads 8 x d_kv 16 != 64 */
    CHECK(write_config(&t, "t5-tiny", (const char *[]){"num_heads=8"}, 1) == 0);
    tlist_from_file(&l, f);
    CHECK(tlist_write(&l, &t, "model.safetensors") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "expected shape"), "got: %s", il_errmsg());
    /* malformed config.json in a model directory */
    CHECK(write_text(&t, "config.json", "{\"d_model\": 64,,}") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "config.json") && contains(il_errmsg(), "malformed"), "got: %s", il_errmsg());
    CHECK(write_text(&t, "config.json", "{\"vocab_size\":2104,\"d_model\":true}") == 0);
    m = il_t5_load(t.dir);
    CHECK(m == NULL);
    CHECK_MSG(contains(il_errmsg(), "config.json: field 'd_model': expected a positive integer"), "got: %s", il_errmsg());
    /* no weights */
    tmpdir e;
    CHECK(tmpdir_make(&e) == 0);
    CHECK(write_config(&e, "t5-tiny", NULL, 0) == 0);
    CHECK(il_t5_load(e.dir) == NULL);
    CHECK(contains(il_errmsg(), e.dir));
    tmpdir_remove(&e);
    CHECK(il_t5_load("no/such/model") == NULL);
    tlist_free(&l);
    tmpdir_remove(&t);
    il_tensor_file_free(f);
}

static void test_bad_ids(il_t5 *m) {
    const int32_t bad[] = {5, 2104, 7}, neg[] = {-1}, ok[] = {5, 6};
    const int32_t *ip[2] = {ok, bad};
    int lens[2] = {2, 3};
    float out[5 * 64];
    CHECK(il_t5_encode(m, 2, ip, lens, out) == -1);
    CHECK_MSG(contains(il_errmsg(), "item 1: token 1: id 2104 is out of range [0, 2104)"), "got: %s", il_errmsg());
    ip[1] = neg;
    lens[1] = 1;
    CHECK(il_t5_encode(m, 2, ip, lens, out) == -1);
    CHECK(contains(il_errmsg(), "id -1 is out of range"));
    lens[1] = 0;
    CHECK(il_t5_encode(m, 2, ip, lens, out) == -1);
    CHECK(contains(il_errmsg(), "empty"));
    CHECK(il_t5_encode(m, 0, ip, lens, out) == -1);
    /* decoder ids, labels, generation inputs */
    const int32_t *dp[1] = {bad};
    int dl = 3, il = 2;
    const int32_t *op[1] = {ok};
    float lg[3 * 2104];
    CHECK(il_t5_logits(m, 1, op, &il, dp, &dl, lg) == -1);
    CHECK(contains(il_errmsg(), "decoder input") && contains(il_errmsg(), "2104"));
    double bm;
    CHECK(il_t5_loss(m, 1, op, &il, dp, &dl, NULL, NULL, NULL, &bm, NULL) == -1);
    CHECK(contains(il_errmsg(), "labels") && contains(il_errmsg(), "2104"));
    int32_t *gout[1];
    int gl[1];
    CHECK(il_t5_generate(m, 1, dp, &dl, NULL, gout, gl, NULL) == -1);
    CHECK(contains(il_errmsg(), "out of range"));
    /* all labels ignored: NaN means, count 0 (as torch) */
    const int32_t ign[] = {-100, 0};
    const int32_t *lp[1] = {ign};
    int ll = 2, cnt = -1;
    float pe;
    CHECK(il_t5_loss(m, 1, op, &il, lp, &ll, &pe, NULL, &cnt, &bm, NULL) == 0);
    CHECK(cnt == 0 && isnan(pe) && isnan(bm));
}

static void test_random_model(void) {
    il_t5_config c = {.vocab_size = 300, .d_model = 48, .d_kv = 8, .num_heads = 6, .d_ff = 96,
                      .num_layers = 3, .num_decoder_layers = 2, .rel_buckets = 32,
                      .rel_max_distance = 128, .eps = 1e-6f, .gated = true, .act = IL_ACT_GELU_NEW,
                      .tie_word_embeddings = false, .pad_id = 0, .eos_id = 1, .decoder_start_id = 0};
    il_t5 *m = il_t5_new_random(&c, 42);
    CHECK_MSG(m != NULL, "%s", il_errmsg());
    if (!m) return;
    /* batched teacher-forced logits equal one-at-a-time logits (no cross-talk between
     * packed sequences), and the KV-cache decoder equals the teacher-forced pass */
    int32_t a[40], b2[7];
    for (int i = 0; i < 40; i++) a[i] = (i * 37 + 11) % 300;
    for (int i = 0; i < 7; i++) b2[i] = (i * 53 + 5) % 300;
    const int32_t *ip[2] = {a, b2};
    int lens[2] = {40, 7};
    int32_t *out[2];
    int ol[2];
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = 12;
    o.eos_id = 299;
    CHECK(il_t5_generate(m, 2, ip, lens, &o, out, ol, NULL) == 0);
    for (int i = 0; i < 2; i++) {
        int32_t dec[16];
        dec[0] = 0;
        for (int j = 0; j + 1 < ol[i] && j < 15; j++) dec[j + 1] = out[i][j];
        int dl = ol[i];
        float *lg = malloc(sizeof(float) * (size_t)dl * 300);
        const int32_t *dp[1] = {dec}, *one[1] = {ip[i]};
        CHECK(il_t5_logits(m, 1, one, &lens[i], dp, &dl, lg) == 0);
        for (int s = 0; s < dl; s++) {
            int best = 0;
            for (int v = 1; v < 300; v++)
                if (lg[s * 300 + v] > lg[s * 300 + best]) best = v;
            CHECK_EQ_INT(best, out[i][s]);
        }
        free(lg);
        free(out[i]);
    }
    il_t5_free(m);
}

int main(void) {
    il_t5 *m = tiny_model();
    CHECK(m != NULL);
    if (!m) TEST_END();
    batch2 b = make_batch();
    int rows;
    float *ref = logits_of(m, &b, &rows);
    CHECK(ref != NULL);
    if (ref) {
        test_embedding_aliases(m, ref, rows);
        test_hook(m, ref);
    }
    test_f16_overflow();
    test_deep_encoder();
    test_v10();
    test_start_stop();
    test_config();
    test_bad_checkpoints();
    test_bad_ids(m);
    test_random_model();
    free(ref);
    il_t5_free(m);
    TEST_END();
}
