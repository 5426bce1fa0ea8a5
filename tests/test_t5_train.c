/* test_t5_train.c - training: the training forward against il_t5_loss; full-model and LoRA
 * gradients and three AdamW steps against the torch goldens (tests/golden/README.md,
 * "Gradients"); central finite differences of an independent float64 reference forward on
 * small random models (v1.1 gated-GELU untied, v1.0 ReLU tied, erf GELU; LoRA on several
 * projections); a short training run (loss falls, same seed -> identical files). */
#include "t5_train.h"
#include "lora.h"
#include "sentencepiece.h"
#include "test_t5_common.h"

#include <stdarg.h>

static il_t5 *load_tiny(void) {
    char *dir = tpath("golden/t5-tiny");
    il_t5 *m = il_t5_load(dir);
    if (!m) fprintf(stderr, "load %s: %s\n", dir, il_errmsg());
    free(dir);
    return m;
}

static il_lora *load_lora0(const il_t5 *m) {
    char *dir = tpath("golden/t5-tiny-lora/lora_0");
    il_lora *a = il_lora_load(dir, il_t5_get_config(m), NULL);
    if (!a) fprintf(stderr, "load %s: %s\n", dir, il_errmsg());
    free(dir);
    return a;
}

static il_tensor_file *open_golden(const char *rel) {
    char *p = tpath(rel);
    il_tensor_file *f = il_safetensors_open(p);
    if (!f) fprintf(stderr, "open %s: %s\n", p, il_errmsg());
    free(p);
    return f;
}

/* Float32 view of golden tensor `name` (NULL if missing); *owned to free. */
static const float *gold(const il_tensor_file *f, const char *name, int64_t *numel, float **owned) {
    const il_tensor *t = il_tensor_file_find(f, name);
    *owned = NULL;
    if (!t) return NULL;
    if (numel) *numel = il_tensor_numel(t);
    return il_tensor_f32(t, f->path, -1, NULL, owned);
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* The golden README's per-tensor criterion: max|g - gold| <= 1e-3 max|gold|. Returns the
 * relative figure. */
static double check_grad(const il_t5_param *p, const float *g, int64_t numel, const char *what) {
    CHECK_MSG(p && (size_t)numel == p->numel, "%s: shape", what);
    if (!p || (size_t)numel != p->numel) return INFINITY;
    size_t w;
    double d = check_max_abs_diff(p->g, g, p->numel, &w), ref = max_abs(g, p->numel);
    double rel = ref > 0 ? d / ref : d;
    CHECK_MSG(rel <= 1e-3, "%s: max |g - golden| = %.3g = %.3g of max |golden| (at %zu: %.8g vs %.8g)",
              what, d, rel, w, (double)p->g[w], (double)g[w]);
    return rel;
}

/* ===== (1) the training forward equals the inference engine ===== */

static void test_forward(il_t5 *m, golden *g, il_lora *a) {
    il_t5_train *t = il_t5_train_new_full(m);
    CHECK(t != NULL);
    if (!t) return;
    double want, got, got_pad;
    CHECK(il_t5_loss(m, GB, g->ids, g->lens, g->labels, g->label_lens, NULL, NULL, NULL, &want,
                     NULL) == 0);
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels, g->label_lens, &got) == 0);
    CHECK_NEAR(got, want, 1e-5);
    CHECK_NEAR(got, json_num(cJSON_GetObjectItem(g->json, "batch"), "loss_hf_batch_mean"), 1e-4);
    /* the golden's own layout: labels padded with -100 to 6 */
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels_padded, g->labpad_lens,
                              &got_pad) == 0);
    CHECK_NEAR(got_pad, want, 1e-5);
    printf("forward: training %.7f, il_t5_loss %.7f (diff %.2g)\n", got, want, fabs(got - want));
    il_t5_train_free(t);

    /* LoRA mode against the engine with the adapter installed through the hook */
    t = il_t5_train_new_lora(m, a);
    il_lora_ctx *ctx = il_lora_ctx_new(m);
    CHECK(t && ctx);
    if (t && ctx) {
        il_lora_ctx_set_default(ctx, a);
        CHECK(il_t5_loss(m, GB, g->ids, g->lens, g->labels, g->label_lens, NULL, NULL, NULL,
                         &want, NULL) == 0);
        /* the trainer refuses to run under a hook (it applies its own adapter) */
        CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels, g->label_lens, &got) == -1);
        CHECK(contains(il_errmsg(), "hook"));
        il_lora_ctx_free(ctx);
        ctx = NULL;
        CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels, g->label_lens, &got) == 0);
        CHECK_NEAR(got, want, 1e-5);
        CHECK_NEAR(got, 9.585473, 1e-4);
        printf("forward (lora_0): training %.7f, il_t5_loss %.7f (diff %.2g)\n", got, want,
               fabs(got - want));
    }
    il_lora_ctx_free(ctx);
    il_t5_train_free(t);
}

/* ===== (2) full-model gradients ===== */

/* Every gradient of golden file f against the trainer's; returns the worst relative error
 * (check_grad's measure) and its tensor's name. */
static double check_all_grads(const il_t5_train *t, const il_tensor_file *f, const char *what,
                              const char **worst_name) {
    double worst = 0;
    *worst_name = "";
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        float *owned;
        int64_t numel;
        const float *gg = gold(f, name, &numel, &owned);
        const il_t5_param *p = il_t5_train_find(t, name);
        CHECK_MSG(gg && p, "%s %s", what, name);
        if (gg && p) {
            double rel = check_grad(p, gg, numel, name);
            if (rel > worst) worst = rel, *worst_name = name;
        }
        free(owned);
    }
    return worst;
}

static void test_full_grads(il_t5 *m, golden *g) {
    il_tensor_file *f = open_golden("golden/t5-tiny/grads.safetensors");
    il_t5_train *t = il_t5_train_new_full(m);
    CHECK(f && t);
    if (!f || !t) goto done;
    CHECK_EQ_INT(il_t5_train_n_params(t), 52);
    CHECK_EQ_INT(f->n_tensors, 52);
    double loss;
    il_t5_train_zero_grad(t);
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels_padded, g->labpad_lens, &loss) == 0);
    CHECK(il_t5_train_backward(t) == 0);
    CHECK(il_t5_train_backward(t) == -1); /* once per forward */
    const char *worst_name;
    double worst = check_all_grads(t, f, "gradient", &worst_name);
    printf("full-model gradients: 52 tensors, worst max|g - golden| / max|golden| = %.2e (%s)\n",
           worst, worst_name);
    /* the exact zeros the golden lists */
    const il_t5_param *sh = il_t5_train_find(t, "shared.weight");
    float *owned;
    const float *gs = gold(f, "shared.weight", NULL, &owned);
    if (sh && gs) {
        int nonzero = 0, stray = 0;
        for (int64_t r = 0; r < sh->shape[0]; r++) {
            bool any = false, gany = false;
            for (int64_t c = 0; c < sh->shape[1]; c++) {
                any |= sh->g[r * sh->shape[1] + c] != 0.0f;
                gany |= gs[r * sh->shape[1] + c] != 0.0f;
            }
            nonzero += any;
            stray += any && !gany;
        }
        CHECK_EQ_INT(nonzero, 122);
        CHECK_EQ_INT(stray, 0);
    }
    free(owned);
    const il_t5_param *eb =
        il_t5_train_find(t, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    const il_t5_param *db =
        il_t5_train_find(t, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    CHECK(eb && db);
    if (eb && db) {
        for (int h = 0; h < 4; h++) CHECK(eb->g[16 * 4 + h] == 0.0f);
        int dz = 0;
        for (int i = 6 * 4; i < 32 * 4; i++) dz += db->g[i] == 0.0f;
        CHECK_EQ_INT(dz, 26 * 4);
    }
done:
    il_t5_train_free(t);
    il_tensor_file_free(f);
}

/* ===== (3) LoRA gradients ===== */

static void test_lora_grads(il_t5 *m, golden *g, il_lora *a) {
    il_tensor_file *f = open_golden("golden/t5-tiny-lora/lora_grads.safetensors");
    il_t5_train *t = il_t5_train_new_lora(m, a);
    CHECK(f && t);
    if (!f || !t) goto done;
    CHECK_EQ_INT(il_t5_train_n_params(t), 24);
    CHECK_EQ_INT(f->n_tensors, 24);
    double loss, worst = 0;
    const char *worst_name = "";
    il_t5_train_zero_grad(t);
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels_padded, g->labpad_lens, &loss) == 0);
    CHECK(il_t5_train_backward(t) == 0);
    worst = check_all_grads(t, f, "LoRA gradient", &worst_name);
    printf("LoRA gradients (lora_0): 24 tensors, worst relative error %.2e (%s)\n", worst,
           worst_name);
    /* gradient accumulation: a second forward + backward without zero_grad doubles them */
    const il_t5_param *p0 = il_t5_train_param(t, 0);
    float before = p0->g[0];
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels, g->label_lens, &loss) == 0);
    CHECK(il_t5_train_backward(t) == 0);
    CHECK_NEAR(p0->g[0], 2 * before, 1e-4 * fabs(before) + 1e-7);
done:
    il_t5_train_free(t);
    il_tensor_file_free(f);
}

/* ===== (4) three AdamW steps ===== */

static void test_adamw3(il_t5 *m, golden *g, il_lora *a) {
    static const double loss_before[3] = {9.585473, 7.958670, 7.190035};
    il_tensor_file *fin = open_golden("golden/t5-tiny-lora/lora_adamw3.safetensors");
    il_tensor_file *tr = open_golden("golden/t5-tiny-lora/lora_adamw3_trace.safetensors");
    il_t5_train *t = il_t5_train_new_lora(m, a);
    CHECK(fin && tr && t);
    if (!fin || !tr || !t) goto done;
    il_adamw_opts o = il_adamw_default_opts(); /* lr 1e-3, (0.9, 0.999), 1e-8, wd 0.01 */
    double worst_loss = 0, worst_grad = 0, worst_step = 0, worst_final = 0, loss;
    for (int s = 1; s <= 3; s++) {
        il_t5_train_zero_grad(t);
        CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels_padded, g->labpad_lens,
                                  &loss) == 0);
        CHECK_NEAR(loss, loss_before[s - 1], 1e-4);
        worst_loss = fmax(worst_loss, fabs(loss - loss_before[s - 1]));
        CHECK(il_t5_train_backward(t) == 0);
        for (int i = 0; i < il_t5_train_n_params(t); i++) {
            const il_t5_param *p = il_t5_train_param(t, i);
            char name[256];
            snprintf(name, sizeof name, "grad_step%d.%s", s, p->name);
            float *owned;
            int64_t numel;
            const float *gg = gold(tr, name, &numel, &owned);
            CHECK_MSG(gg != NULL, "%s", name);
            if (gg) worst_grad = fmax(worst_grad, check_grad(p, gg, numel, name));
            free(owned);
        }
        CHECK(il_t5_train_adamw_step(t, &o) == 0);
        for (int i = 0; i < il_t5_train_n_params(t); i++) {
            const il_t5_param *p = il_t5_train_param(t, i);
            char name[256];
            snprintf(name, sizeof name, "after_step%d.%s", s, p->name);
            float *owned;
            const float *w = gold(tr, name, NULL, &owned);
            CHECK_MSG(w != NULL, "%s", name);
            if (w) {
                double d = check_max_abs_diff(p->w, w, p->numel, NULL);
                worst_step = fmax(worst_step, d);
                CHECK_MSG(d <= 1e-5, "%s: max abs diff %.3g", name, d);
            }
            free(owned);
        }
    }
    CHECK_EQ_INT(il_t5_train_steps(t), 3);
    for (int i = 0; i < il_t5_train_n_params(t); i++) {
        const il_t5_param *p = il_t5_train_param(t, i);
        float *owned;
        const float *w = gold(fin, p->name, NULL, &owned);
        CHECK_MSG(w != NULL, "%s", p->name);
        if (w) {
            double d = check_max_abs_diff(p->w, w, p->numel, NULL);
            worst_final = fmax(worst_final, d);
            CHECK_MSG(d <= 1e-5, "final %s: max abs diff %.3g", p->name, d);
        }
        free(owned);
    }
    CHECK(il_t5_train_forward(t, GB, g->ids, g->lens, g->labels_padded, g->labpad_lens, &loss) == 0);
    CHECK_NEAR(loss, 6.758802, 1e-4);
    worst_loss = fmax(worst_loss, fabs(loss - 6.758802));
    printf("AdamW x3 (lora_0): losses within %.2g, gradients within %.2e relative, tensors "
           "after each step within %.2g, final within %.2g\n",
           worst_loss, worst_grad, worst_step, worst_final);
    /* the exported adapter carries the trained tensors and loads like any adapter */
    il_lora *out = il_t5_train_export_lora(t);
    CHECK_MSG(out != NULL, "export: %s", il_errmsg());
    if (out) {
        CHECK_EQ_INT(il_lora_n_modules(out), 12);
        const il_lora_module *md = il_lora_module_at(out, 0);
        const il_t5_param *pa = il_t5_train_param(t, 0);
        CHECK(md && pa && memcmp(md->A, pa->w, pa->numel * sizeof(float)) == 0);
        CHECK(md && md->scale == 2.0f);
        CHECK_STR(il_lora_base_model_name(out), "t5-tiny");
        il_lora_ctx *ctx = il_lora_ctx_new(m);
        double l2;
        il_lora_ctx_set_default(ctx, out);
        CHECK(il_t5_loss(m, GB, g->ids, g->lens, g->labels, g->label_lens, NULL, NULL, NULL, &l2,
                         NULL) == 0);
        CHECK_NEAR(l2, 6.758802, 1e-4);
        il_lora_ctx_free(ctx);
    }
    il_lora_free(out);
done:
    il_t5_train_free(t);
    il_tensor_file_free(fin);
    il_tensor_file_free(tr);
}

/* ===== (5) finite differences of a float64 reference =====
 * An independent, naive T5 forward in double (one sequence at a time, no packing) reading
 * the trainer's parameters by name; central differences with h = 1e-5 on it are exact to
 * ~1e-9, so they check the float32 analytic gradients to float32 accuracy. */

typedef struct {
    const il_t5_config *c;
    int n;
    char **names;
    double **vals;
    size_t *numel;
    double lora_s;
} dmodel;

static void dm_add(dmodel *dm, const il_t5_train *t) {
    for (int i = 0; i < il_t5_train_n_params(t); i++) {
        const il_t5_param *p = il_t5_train_param(t, i);
        dm->names = realloc(dm->names, sizeof(char *) * (dm->n + 1));
        dm->vals = realloc(dm->vals, sizeof(double *) * (dm->n + 1));
        dm->numel = realloc(dm->numel, sizeof(size_t) * (dm->n + 1));
        dm->names[dm->n] = strdup(p->name);
        dm->vals[dm->n] = malloc(sizeof(double) * p->numel);
        for (size_t k = 0; k < p->numel; k++) dm->vals[dm->n][k] = p->w[k];
        dm->numel[dm->n] = p->numel;
        dm->n++;
    }
}

static void dm_free(dmodel *dm) {
    for (int i = 0; i < dm->n; i++) { free(dm->names[i]); free(dm->vals[i]); }
    free(dm->names); free(dm->vals); free(dm->numel);
    memset(dm, 0, sizeof *dm);
}

static double *dm_get(const dmodel *dm, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < dm->n; i++)
        if (!strcmp(dm->names[i], name)) return dm->vals[i];
    return NULL;
}

/* y [N, OC] (+)= x W^T (+ s (x A^T) B^T) for module `mod` ("encoder.block.0.layer.0.SelfAttention.q"). */
static void d_linear(const dmodel *dm, const char *mod, double *y, const double *x, int N, int C,
                     int OC, bool add) {
    const double *W = dm_get(dm, "%s.weight", mod);
    const double *A = dm_get(dm, "base_model.model.%s.lora_A.weight", mod);
    const double *B = dm_get(dm, "base_model.model.%s.lora_B.weight", mod);
    int r = 0;
    for (int i = 0; A && i < dm->n; i++)
        if (dm->vals[i] == A) r = (int)(dm->numel[i] / C);
    for (int n = 0; n < N; n++) {
        double u[64] = {0};
        for (int k = 0; k < r; k++)
            for (int c = 0; c < C; c++) u[k] += x[n * C + c] * A[k * C + c];
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += x[n * C + c] * W[o * C + c];
            for (int k = 0; k < r; k++) s += dm->lora_s * u[k] * B[o * r + k];
            y[n * OC + o] = add ? y[n * OC + o] + s : s;
        }
    }
}

static void d_rmsnorm(double *y, const double *x, const double *w, int N, int C, double eps) {
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) y[n * C + c] = w[c] * x[n * C + c] * r;
    }
}

static double d_act(double x, il_act a) {
    if (a == IL_ACT_RELU) return x > 0 ? x : 0;
    if (a == IL_ACT_GELU) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* ctx [lq, H dkv] = softmax(q k^T + bias) v */
static void d_attention(double *ctx, const double *q, const double *k, const double *v, int lq,
                        int lk, const il_t5_config *c, const double *rel, bool dec_self) {
    const int H = c->num_heads, dk = c->d_kv, in = H * dk;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < lq; i++) {
            double s[256], mx = -INFINITY, sum = 0;
            int nk = dec_self ? i + 1 : lk;
            for (int j = 0; j < nk; j++) {
                double a = 0;
                for (int e = 0; e < dk; e++) a += q[i * in + h * dk + e] * k[j * in + h * dk + e];
                if (rel) a += rel[il_t5_rel_bucket(j - i, !dec_self, c->rel_buckets,
                                                   c->rel_max_distance) * H + h];
                s[j] = a;
                mx = fmax(mx, a);
            }
            for (int j = 0; j < nk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int e = 0; e < dk; e++) {
                double a = 0;
                for (int j = 0; j < nk; j++) a += s[j] / sum * v[j * in + h * dk + e];
                ctx[i * in + h * dk + e] = a;
            }
        }
}

/* x [L, d] in place through one stack (enc NULL: encoder). */
static void d_stack(const dmodel *dm, bool dec, double *x, int L, const double *enc, int Le) {
    const il_t5_config *c = dm->c;
    const int d = c->d_model, in = c->num_heads * c->d_kv, ff = c->d_ff;
    const char *sn = dec ? "decoder" : "encoder";
    const int nl = dec ? c->num_decoder_layers : c->num_layers, F = dec ? 2 : 1;
    double *h = malloc(sizeof(double) * L * d), *q = malloc(sizeof(double) * L * in),
           *k = malloc(sizeof(double) * (L > Le ? L : Le) * in),
           *v = malloc(sizeof(double) * (L > Le ? L : Le) * in), *ctx = malloc(sizeof(double) * L * in),
           *a = malloc(sizeof(double) * L * ff), *b = malloc(sizeof(double) * L * ff);
    const double *rel = dm_get(dm, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", sn);
    char mod[160];
    for (int l = 0; l < nl; l++) {
        d_rmsnorm(h, x, dm_get(dm, "%s.block.%d.layer.0.layer_norm.weight", sn, l), L, d, c->eps);
#define LIN(name, y, xx, N, C, OC, add) \
        (snprintf(mod, sizeof mod, "%s.block.%d.layer.%s", sn, l, name), d_linear(dm, mod, y, xx, N, C, OC, add))
        LIN("0.SelfAttention.q", q, h, L, d, in, false);
        LIN("0.SelfAttention.k", k, h, L, d, in, false);
        LIN("0.SelfAttention.v", v, h, L, d, in, false);
        d_attention(ctx, q, k, v, L, L, c, rel, dec);
        LIN("0.SelfAttention.o", x, ctx, L, in, d, true);
        if (dec) {
            d_rmsnorm(h, x, dm_get(dm, "%s.block.%d.layer.1.layer_norm.weight", sn, l), L, d, c->eps);
            LIN("1.EncDecAttention.q", q, h, L, d, in, false);
            LIN("1.EncDecAttention.k", k, enc, Le, d, in, false);
            LIN("1.EncDecAttention.v", v, enc, Le, d, in, false);
            d_attention(ctx, q, k, v, L, Le, c, NULL, false);
            LIN("1.EncDecAttention.o", x, ctx, L, in, d, true);
        }
        d_rmsnorm(h, x, dm_get(dm, "%s.block.%d.layer.%d.layer_norm.weight", sn, l, F), L, d, c->eps);
        char wi[64];
        snprintf(wi, sizeof wi, "%d.DenseReluDense.%s", F, c->gated ? "wi_0" : "wi");
        LIN(wi, a, h, L, d, ff, false);
        if (c->gated) {
            snprintf(wi, sizeof wi, "%d.DenseReluDense.wi_1", F);
            LIN(wi, b, h, L, d, ff, false);
        }
        for (int i = 0; i < L * ff; i++) a[i] = d_act(a[i], c->act) * (c->gated ? b[i] : 1.0);
        snprintf(wi, sizeof wi, "%d.DenseReluDense.wo", F);
        LIN(wi, x, a, L, ff, d, true);
#undef LIN
    }
    d_rmsnorm(x, x, dm_get(dm, "%s.final_layer_norm.weight", sn), L, d, c->eps);
    free(h); free(q); free(k); free(v); free(ctx); free(a); free(b);
}

/* HF batch-mean loss in double. */
static double d_loss(const dmodel *dm, int n, const int32_t *const *ids, const int *lens,
                     const int32_t *const *labels, const int *llens) {
    const il_t5_config *c = dm->c;
    const int d = c->d_model, V = c->vocab_size;
    const double *E = dm_get(dm, "shared.weight"), *head = dm_get(dm, "lm_head.weight");
    double scale = 1;
    if (!head) head = E, scale = 1 / sqrt((double)d);
    double sum = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        double *enc = malloc(sizeof(double) * lens[i] * d), *x = malloc(sizeof(double) * llens[i] * d);
        for (int j = 0; j < lens[i]; j++) memcpy(enc + j * d, E + ids[i][j] * d, sizeof(double) * d);
        d_stack(dm, false, enc, lens[i], NULL, 0);
        for (int j = 0; j < llens[i]; j++) {
            int32_t tok = j == 0 ? c->decoder_start_id : labels[i][j - 1];
            if (tok == -100) tok = c->pad_id;
            memcpy(x + j * d, E + tok * d, sizeof(double) * d);
        }
        d_stack(dm, true, x, llens[i], enc, lens[i]);
        for (int j = 0; j < llens[i]; j++) {
            int32_t y = labels[i][j];
            if (y == -100 || y == c->pad_id) continue;
            double mx = -INFINITY, *lg = malloc(sizeof(double) * V), se = 0;
            for (int v = 0; v < V; v++) {
                double a = 0;
                for (int e = 0; e < d; e++) a += x[j * d + e] * scale * head[v * d + e];
                lg[v] = a;
                mx = fmax(mx, a);
            }
            for (int v = 0; v < V; v++) se += exp(lg[v] - mx);
            sum += mx + log(se) - lg[y];
            count++;
            free(lg);
        }
        free(enc);
        free(x);
    }
    return sum / count;
}

/* A small ragged batch: -100 inside one label sequence, a pad label in another. */
#define FN 3
static const int32_t fd_in0[] = {5, 9, 17, 3, 1}, fd_in1[] = {7, 7, 2, 30, 11, 12, 13, 14, 4, 8, 21, 22, 1},
                     fd_in2[] = {33, 1};
static const int32_t fd_lab0[] = {6, -100, 25, 1}, fd_lab1[] = {1}, fd_lab2[] = {3, 0, 18, 19, 1};
static const int32_t *const fd_ids[FN] = {fd_in0, fd_in1, fd_in2};
static const int fd_lens[FN] = {5, 13, 2};
static const int32_t *const fd_labels[FN] = {fd_lab0, fd_lab1, fd_lab2};
static const int fd_llens[FN] = {4, 1, 5};

typedef struct {
    double worst;         /* max over probed entries of |g - fd| / (max|g of tensor| + 1e-6) */
    const char *worst_name;
    int probed;
} fdstat;

/* Probe the largest-|g| entry and two more of every parameter of t (values mirrored in dm). */
static void fd_probe(il_t5_train *t, dmodel *dm, fdstat *st, const char *cfgname) {
    const double h = 1e-5;
    uint32_t lcg = 12345;
    for (int i = 0; i < il_t5_train_n_params(t); i++) {
        const il_t5_param *p = il_t5_train_param(t, i);
        double *val = dm_get(dm, "%s", p->name);
        CHECK(val != NULL);
        if (!val) continue;
        size_t at[3] = {0, 0, 0};
        double gm = 0;
        for (size_t k = 0; k < p->numel; k++)
            if (fabs(p->g[k]) > gm) gm = fabs(p->g[k]), at[0] = k;
        for (int e = 1; e < 3; e++) {
            lcg = lcg * 1664525u + 1013904223u;
            at[e] = (lcg >> 8) % p->numel;
        }
        for (int e = 0; e < 3; e++) {
            double save = val[at[e]];
            val[at[e]] = save + h;
            double lp = d_loss(dm, FN, fd_ids, fd_lens, fd_labels, fd_llens);
            val[at[e]] = save - h;
            double lm = d_loss(dm, FN, fd_ids, fd_lens, fd_labels, fd_llens);
            val[at[e]] = save;
            double fd = (lp - lm) / (2 * h), g = p->g[at[e]];
            double rel = fabs(g - fd) / (gm + 1e-6);
            CHECK_MSG(fabs(g - fd) <= 1e-4 * gm + 1e-5, "%s: %s[%zu]: analytic %.8g, finite "
                      "difference %.8g", cfgname, p->name, at[e], g, fd);
            if (rel > st->worst) st->worst = rel, st->worst_name = p->name;
            st->probed++;
        }
    }
}

static il_t5_config small_config(int variant) {
    il_t5_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 40;
    c.d_model = 16;
    c.d_kv = 4;
    c.num_heads = 3; /* inner 12 != d_model */
    c.d_ff = 24;
    c.num_layers = 2;
    c.num_decoder_layers = 3;
    c.rel_buckets = 8;
    c.rel_max_distance = 10; /* the 13-token input reaches the log-spaced buckets */
    c.eps = 1e-6f;
    c.pad_id = 0;
    c.eos_id = 1;
    c.decoder_start_id = 0;
    if (variant == 0) { /* T5 v1.1 / Flan: gated-gelu, untied */
        c.gated = true, c.act = IL_ACT_GELU_NEW, c.tie_word_embeddings = false;
    } else if (variant == 1) { /* T5 v1.0: relu, tied head scaled by d_model^-0.5 */
        c.gated = false, c.act = IL_ACT_RELU, c.tie_word_embeddings = true;
        c.num_decoder_layers = 2;
    } else { /* "gelu" (erf), not gated, untied */
        c.gated = false, c.act = IL_ACT_GELU, c.tie_word_embeddings = false;
        c.num_layers = 1;
    }
    return c;
}

/* A LoRA adapter with random A and B on q, k, o, wo and wi_1/wi of every block. */
static il_lora *random_lora(const il_t5_config *c, uint64_t seed) {
    const char *targets[] = {"q", "k", "o", "wo", c->gated ? "wi_1" : "wi"};
    il_lora_init_opts lo = {3, 6.0, targets, 5, NULL};
    il_lora *a = il_t5_train_lora_init(c, &lo, seed);
    if (!a) return NULL;
    /* B random too (PEFT starts it at 0, which would make dA = 0) */
    int n = il_lora_n_modules(a);
    il_tensor *ts = calloc(2 * (size_t)n, sizeof *ts);
    float **bufs = calloc(2 * (size_t)n, sizeof *bufs);
    uint32_t s = (uint32_t)seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        const il_lora_module *md = il_lora_module_at(a, i);
        for (int k = 0; k < 2; k++) {
            size_t numel = (size_t)md->r * (k ? md->id.out : md->id.in);
            bufs[2 * i + k] = malloc(numel * sizeof(float));
            for (size_t e = 0; e < numel; e++) {
                s = s * 1664525u + 1013904223u;
                bufs[2 * i + k][e] = ((float)(s >> 8) / 16777216.0f - 0.5f) * (k ? 0.6f : 0.8f);
            }
            ts[2 * i + k] = (il_tensor){il_sprintf("base_model.model.%s.lora_%c.weight", md->name,
                                                   k ? 'B' : 'A'),
                                        IL_F32, 2, {k ? md->id.out : md->r, k ? md->r : md->id.in},
                                        bufs[2 * i + k], numel * sizeof(float)};
        }
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"peft_type\":\"LORA\",\"r\":3,\"lora_alpha\":6,\"target_modules\":"
             "[\"q\",\"k\",\"o\",\"wo\",\"%s\"]}", c->gated ? "wi_1" : "wi");
    il_lora *b = il_lora_from_tensors("random", cfg, ts, 2 * n, c, NULL);
    for (int i = 0; i < 2 * n; i++) { free(ts[i].name); free(bufs[i]); }
    free(ts);
    free(bufs);
    il_lora_free(a);
    return b;
}

static void test_finite_differences(void) {
    static const char *const names[3] = {"v1.1 gated-gelu untied", "v1.0 relu tied",
                                         "gelu (erf) untied"};
    for (int variant = 0; variant < 3; variant++) {
        il_t5_config c = small_config(variant);
        il_t5 *m = il_t5_new_random(&c, 100 + variant);
        CHECK(m != NULL);
        if (!m) continue;
        /* full model */
        il_t5_train *t = il_t5_train_new_full(m);
        dmodel dm = {il_t5_get_config(m), 0, NULL, NULL, NULL, 0};
        dm_add(&dm, t);
        double loss, dl = d_loss(&dm, FN, fd_ids, fd_lens, fd_labels, fd_llens), want;
        il_t5_train_zero_grad(t);
        CHECK(il_t5_train_forward(t, FN, fd_ids, fd_lens, fd_labels, fd_llens, &loss) == 0);
        CHECK(il_t5_train_backward(t) == 0);
        CHECK(il_t5_loss(m, FN, fd_ids, fd_lens, fd_labels, fd_llens, NULL, NULL, NULL, &want,
                         NULL) == 0);
        CHECK_NEAR(loss, dl, 1e-5);
        CHECK_NEAR(loss, want, 1e-5);
        fdstat st = {0, "", 0};
        fd_probe(t, &dm, &st, names[variant]);
        printf("finite differences, %s, all %d tensors (%d entries): worst |g - fd| = %.2e of "
               "the tensor's max |g| (%s); loss f32 %.7f vs f64 %.7f\n",
               names[variant], il_t5_train_n_params(t), st.probed, st.worst, st.worst_name, loss, dl);
        if (c.tie_word_embeddings) {
            /* a tied checkpoint has shared.weight and no lm_head.weight, as transformers saves */
            tmpdir td;
            CHECK(tmpdir_make(&td) == 0);
            char *path = tmpdir_file(&td, "model.safetensors");
            CHECK(il_t5_train_save_model(t, path) == 0);
            il_tensor_file *f = il_safetensors_open(path);
            CHECK(f != NULL);
            if (f) {
                CHECK_EQ_INT(f->n_tensors, il_t5_train_n_params(t));
                CHECK(il_tensor_file_find(f, "shared.weight") != NULL);
                CHECK(il_tensor_file_find(f, "lm_head.weight") == NULL);
                CHECK(il_tensor_file_find(f, "encoder.embed_tokens.weight") == NULL);
            }
            il_tensor_file_free(f);
            free(path);
            tmpdir_remove(&td);
        }
        /* LoRA on the same model */
        il_lora *a = random_lora(&c, 7 + variant);
        CHECK(a != NULL);
        il_t5_train *tl = a ? il_t5_train_new_lora(m, a) : NULL;
        CHECK(tl != NULL);
        if (tl) {
            dm_add(&dm, tl);
            dm.lora_s = 2.0;
            dl = d_loss(&dm, FN, fd_ids, fd_lens, fd_labels, fd_llens);
            il_t5_train_zero_grad(tl);
            CHECK(il_t5_train_forward(tl, FN, fd_ids, fd_lens, fd_labels, fd_llens, &loss) == 0);
            CHECK(il_t5_train_backward(tl) == 0);
            CHECK_NEAR(loss, dl, 1e-5);
            fdstat sl = {0, "", 0};
            fd_probe(tl, &dm, &sl, names[variant]);
            printf("finite differences, %s, LoRA A/B of %d modules (%d entries): worst %.2e (%s)\n",
                   names[variant], il_t5_train_n_params(tl) / 2, sl.probed, sl.worst, sl.worst_name);
        }
        il_t5_train_free(tl);
        il_lora_free(a);
        dm_free(&dm);
        il_t5_train_free(t);
        il_t5_free(m);
    }
}


/* ===== (6) a short training run ===== */

#define NEX 10
typedef struct {
    int32_t *ids[NEX], *lab[NEX];
    int lens[NEX], llens[NEX];
} examples;

/* tests/data/train/boolean10.jsonl tokenized with the tiny model's tokenizer. */
static int load_examples(examples *e) {
    memset(e, 0, sizeof *e);
    char *dir = tpath("golden/t5-tiny"), *path = tpath("data/train/boolean10.jsonl");
    il_tokenizer *tok = il_tokenizer_load(dir);
    size_t len;
    char *text = il_read_file(path, &len);
    int n = 0;
    for (char *line = text; tok && line && *line && n < NEX; n++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const char *in = cJSON_GetStringValue(cJSON_GetObjectItem(o, "input"));
        const char *out = cJSON_GetStringValue(cJSON_GetObjectItem(o, "output"));
        if (!in || !out || il_tokenizer_encode(tok, in, strlen(in), &e->ids[n], &e->lens[n]) ||
            il_tokenizer_encode(tok, out, strlen(out), &e->lab[n], &e->llens[n])) {
            cJSON_Delete(o);
            break;
        }
        cJSON_Delete(o);
        line = nl ? nl + 1 : NULL;
    }
    il_tokenizer_free(tok);
    free(text);
    free(dir);
    free(path);
    return n == NEX ? 0 : -1;
}

static void free_examples(examples *e) {
    for (int i = 0; i < NEX; i++) { free(e->ids[i]); free(e->lab[i]); }
}

static char *slurp(const char *dir, const char *name, size_t *len) {
    char *p = il_sprintf("%s/%s", dir, name);
    char *s = il_read_file(p, len);
    free(p);
    return s;
}

static void remove_files(const char *dir) {
    static const char *const names[] = {"adapter_model.safetensors", "adapter_config.json",
                                        "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        char *p = il_sprintf("%s/%s", dir, names[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
}

/* Train (LoRA when lora, else full) with seed; save into dir; epoch losses out. */
static int train_run(il_t5 *m, const examples *e, bool lora, uint64_t seed, const char *dir,
                     double *losses, int epochs) {
    const char *targets[] = {"q", "v"};
    il_lora_init_opts lo = {4, 8.0, targets, 2, "t5-tiny"};
    il_lora *init = lora ? il_t5_train_lora_init(il_t5_get_config(m), &lo, seed) : NULL;
    il_t5_train *t = lora ? (init ? il_t5_train_new_lora(m, init) : NULL) : il_t5_train_new_full(m);
    il_t5_fit_opts o = il_t5_fit_default_opts();
    o.epochs = epochs;
    o.batch = 4;
    o.seed = seed;
    o.adamw.lr = lora ? 1e-2 : 1e-3;
    o.adamw.weight_decay = 0.01;
    o.schedule = IL_LR_LINEAR;
    o.warmup_steps = 1;
    o.max_grad_norm = 1.0;
    int rc = -1;
    if (t && il_t5_train_fit(t, NEX, (const int32_t *const *)e->ids, e->lens,
                             (const int32_t *const *)e->lab, e->llens, &o, losses) == 0) {
        if (lora) {
            il_lora *out = il_t5_train_export_lora(t);
            rc = out ? il_lora_save(out, dir) : -1;
            il_lora_free(out);
        } else {
            char *p = il_sprintf("%s/model.safetensors", dir);
            rc = mkdir(dir, 0777) || il_t5_train_save_model(t, p);
            free(p);
        }
    }
    if (rc) fprintf(stderr, "training run: %s\n", il_errmsg());
    il_t5_train_free(t);
    il_lora_free(init);
    return rc;
}

static bool same_file(const char *a, const char *b, const char *name) {
    size_t la, lb;
    char *x = slurp(a, name, &la), *y = slurp(b, name, &lb);
    bool same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static void test_training_run(il_t5 *m) {
    examples e;
    tmpdir td;
    CHECK(load_examples(&e) == 0);
    CHECK(tmpdir_make(&td) == 0);
    char dir[4][300];
    for (int i = 0; i < 4; i++) snprintf(dir[i], sizeof dir[i], "%s/run%d", td.dir, i);
    /* LoRA: seed 7 twice, seed 8 once */
    double l[3][6];
    static const uint64_t seeds[3] = {7, 7, 8};
    for (int r = 0; r < 3; r++) CHECK(train_run(m, &e, true, seeds[r], dir[r], l[r], 6) == 0);
    CHECK(l[0][5] < 0.5 * l[0][0]);
    for (int k = 1; k < 6; k++) CHECK_MSG(l[0][k] < l[0][k - 1], "LoRA epoch %d loss %g >= %g", k + 1, l[0][k], l[0][k - 1]);
    CHECK(same_file(dir[0], dir[1], "adapter_model.safetensors"));
    CHECK(same_file(dir[0], dir[1], "adapter_config.json"));
    CHECK(!same_file(dir[0], dir[2], "adapter_model.safetensors"));
    printf("train-lora run (10 examples, r 4, lr 1e-2, batch 4): epoch losses");
    for (int k = 0; k < 6; k++) printf(" %.4f", l[0][k]);
    printf("; seed 7 twice identical, seed 8 differs\n");
    /* the saved adapter loads and has the loss of the last state */
    char *adir = il_strdup(dir[0]);
    il_lora *a = il_lora_load(adir, il_t5_get_config(m), NULL);
    CHECK(a != NULL);
    if (a) {
        il_lora_ctx *ctx = il_lora_ctx_new(m);
        double before, after;
        CHECK(il_t5_loss(m, NEX, (const int32_t *const *)e.ids, e.lens,
                         (const int32_t *const *)e.lab, e.llens, NULL, NULL, NULL, &before,
                         NULL) == 0);
        il_lora_ctx_set_default(ctx, a);
        CHECK(il_t5_loss(m, NEX, (const int32_t *const *)e.ids, e.lens,
                         (const int32_t *const *)e.lab, e.llens, NULL, NULL, NULL, &after,
                         NULL) == 0);
        CHECK(after < 0.5 * before);
        printf("  loss on the 10 examples: base %.4f, with the trained adapter %.4f\n", before, after);
        il_lora_ctx_free(ctx);
    }
    il_lora_free(a);
    free(adir);
    /* full fine-tuning: same seed twice */
    double f[2][3];
    CHECK(train_run(m, &e, false, 3, dir[3], f[0], 3) == 0);
    char *keep = slurp(dir[3], "model.safetensors", &(size_t){0});
    remove_files(dir[3]);
    CHECK(train_run(m, &e, false, 3, dir[3], f[1], 3) == 0);
    size_t len2;
    char *again = slurp(dir[3], "model.safetensors", &len2);
    CHECK(keep && again && memcmp(keep, again, len2) == 0);
    CHECK(f[0][2] < f[0][0] && f[0][2] == f[1][2]);
    printf("finetune run (lr 1e-3, batch 4): epoch losses %.4f %.4f %.4f; same seed identical\n",
           f[0][0], f[0][1], f[0][2]);
    free(keep);
    free(again);
    for (int i = 0; i < 4; i++) remove_files(dir[i]);
    rmdir(td.dir);
    free_examples(&e);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    il_t5 *m = load_tiny();
    golden g;
    CHECK(m != NULL);
    if (!m || golden_load(&g, "t5-tiny")) {
        il_t5_free(m);
        TEST_END();
    }
    il_lora *a = load_lora0(m);
    CHECK(a != NULL);
    if (a) {
        test_forward(m, &g, a);
        test_full_grads(m, &g);
        test_lora_grads(m, &g, a);
        test_adamw3(m, &g, a);
    }
    test_training_run(m);
    test_finite_differences();
    il_lora_free(a);
    golden_free(&g);
    il_t5_free(m);
    TEST_END();
}
