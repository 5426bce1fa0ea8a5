/* bert.c - BERT config parsing, weight binding and the float32 forward pass over packed
 * ragged batches (see bert.h). The arithmetic follows transformers' BertModel step by step
 * (the same additions in the same order, LayerNorm as torch computes it) so that results
 * agree to ~1e-6 with PyTorch. */
#include "bert.h"

#include <cJSON.h>
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensors.h"

#define BERT_MAX_DIM (1 << 16)
#define BERT_MAX_VOCAB (1 << 24)
#define BERT_MAX_LAYERS 1024
#define BERT_MAX_POS (1 << 20)

typedef struct {
    float *qkv_w;         /* [3H, H] owned: attention.self.{query,key,value}.weight stacked */
    float *qkv_b;         /* [3H]    owned: the three biases */
    const float *ao_w;    /* [H, H]  attention.output.dense.weight */
    const float *ao_b;    /* [H]     attention.output.dense.bias */
    const float *ao_ln_w; /* [H]     attention.output.LayerNorm.weight */
    const float *ao_ln_b; /* [H]     attention.output.LayerNorm.bias */
    const float *i_w;     /* [F, H]  intermediate (F = intermediate_size).dense.weight */
    const float *i_b;     /* [F]     intermediate.dense.bias */
    const float *o_w;     /* [H, F]  output.dense.weight */
    const float *o_b;     /* [H]     output.dense.bias */
    const float *o_ln_w;  /* [H]     output.LayerNorm.weight */
    const float *o_ln_b;  /* [H]     output.LayerNorm.bias */
} bert_layer;

struct il_bert {
    il_bert_config cfg;
    const float *word, *pos, *type; /* embeddings.{word,position,token_type}_embeddings.weight */
    const float *emb_ln_w, *emb_ln_b; /* embeddings.LayerNorm.{weight,bias} */
    bert_layer *layers;
    /* storage: weights point into these mappings or into owned copies */
    il_checkpoint *ckpt;
    il_tensor_file *file;
    float **owned;
    int n_owned;
};

/* ===== config ===== */

static int get_int(const cJSON *root, const char *key, const char *where, int lo, int hi,
                   int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return 0; /* keep the BertConfig default */
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(v == floor(v) && v >= lo && v <= hi)) {
        il_seterr("%s: field '%s': expected an integer in [%d, %d]", where, key, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_act(il_bert_config *c, const cJSON *root, const char *where) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (!it || cJSON_IsNull(it)) return 0;
    const char *s = cJSON_IsString(it) ? it->valuestring : "";
    if (strcmp(s, "gelu") == 0) c->act = IL_BERT_GELU;
    else if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0)
        c->act = IL_BERT_GELU_TANH;
    else if (strcmp(s, "relu") == 0) c->act = IL_BERT_RELU;
    else {
        il_seterr("%s: field 'hidden_act': unsupported value '%s' (expected \"gelu\", "
                  "\"gelu_new\", \"gelu_pytorch_tanh\" or \"relu\")", where, s);
        return -1;
    }
    return 0;
}

/* Only BERT's layout is implemented: absolute positions counted from 0 (RoBERTa-style
 * models offset them by padding_idx + 1 and would silently give wrong vectors). */
static int check_kind(const cJSON *root, const char *where) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "bert") != 0) {
        il_seterr("%s: field 'model_type': '%s' is not supported (only \"bert\")", where,
                  mt->valuestring);
        return -1;
    }
    const cJSON *pe = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (pe && !cJSON_IsNull(pe) && !(cJSON_IsString(pe) && !strcmp(pe->valuestring, "absolute"))) {
        il_seterr("%s: field 'position_embedding_type': only \"absolute\" is supported", where);
        return -1;
    }
    return 0;
}

static int parse_config(il_bert_config *c, const cJSON *root, const char *where) {
    /* BertConfig defaults */
    *c = (il_bert_config){30522, 768, 12, 12, 3072, 512, 2, 1e-12f, IL_BERT_GELU};
    if (check_kind(root, where) ||
        get_int(root, "vocab_size", where, 1, BERT_MAX_VOCAB, &c->vocab_size) ||
        get_int(root, "hidden_size", where, 1, BERT_MAX_DIM, &c->hidden_size) ||
        get_int(root, "num_hidden_layers", where, 1, BERT_MAX_LAYERS, &c->num_layers) ||
        get_int(root, "num_attention_heads", where, 1, BERT_MAX_DIM, &c->num_heads) ||
        get_int(root, "intermediate_size", where, 1, BERT_MAX_DIM, &c->intermediate_size) ||
        get_int(root, "max_position_embeddings", where, 1, BERT_MAX_POS,
                &c->max_position_embeddings) ||
        get_int(root, "type_vocab_size", where, 1, BERT_MAX_DIM, &c->type_vocab_size) ||
        parse_act(c, root, where))
        return -1;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !isfinite(eps->valuedouble)) {
            il_seterr("%s: field 'layer_norm_eps': expected a positive number", where);
            return -1;
        }
        c->eps = (float)eps->valuedouble;
    }
    if (c->hidden_size % c->num_heads != 0) {
        il_seterr("%s: hidden_size %d is not a multiple of num_attention_heads %d", where,
                  c->hidden_size, c->num_heads);
        return -1;
    }
    return 0;
}

int il_bert_config_load(il_bert_config *c, const char *path) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = -1;
    if (!root || !cJSON_IsObject(root))
        il_seterr("%s: %s", path, root ? "expected a JSON object" : "malformed JSON");
    else
        rc = parse_config(c, root, path);
    cJSON_Delete(root);
    return rc;
}

/* ===== weight binding ===== */

typedef struct {
    il_bert *m;
    const char *where;  /* the checkpoint (directory or file) for "not found" errors */
    const char *prefix; /* "" or "bert." */
} binder;

/* Bind prefix+name as float32 [d0] (d1 < 0) or [d0, d1]. Old TensorFlow-converted
 * checkpoints call the LayerNorm parameters gamma / beta; transformers renames them. */
static const float *bind(binder *b, int64_t d0, int64_t d1, const char *fmt, ...)
    IL_PRINTF(4, 5);
static const float *bind(binder *b, int64_t d0, int64_t d1, const char *fmt, ...) {
    char name[256], full[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    const char *path = NULL;
    const il_tensor *t = il_weights_find(b->m->ckpt, b->m->file, full, &path);
    size_t n = strlen(full);
    if (!t && strstr(full, "LayerNorm.") && n > 7) {
        char alt[310];
        if (!strcmp(full + n - 7, ".weight")) snprintf(alt, sizeof alt, "%.*s.gamma", (int)(n - 7), full);
        else snprintf(alt, sizeof alt, "%.*s.beta", (int)(n - 5), full);
        t = il_weights_find(b->m->ckpt, b->m->file, alt, &path);
    }
    if (!t) {
        il_seterr("%s: tensor '%s' not found", b->where, full);
        return NULL;
    }
    int64_t shape[2] = {d0, d1};
    float *owned = NULL;
    const float *p = il_tensor_f32(t, path, d1 < 0 ? 1 : 2, shape, &owned);
    if (!p || (owned && il_owned_push(&b->m->owned, &b->m->n_owned, owned))) return NULL;
    return p;
}

/* query/key/value become one [3H, H] matrix so that a single GEMM projects all three. */
static int bind_qkv(binder *b, bert_layer *L, int l, int H) {
    static const char *const parts[3] = {"query", "key", "value"};
    L->qkv_w = il_malloc((size_t)3 * H * H * sizeof(float));
    if (!L->qkv_w || il_owned_push(&b->m->owned, &b->m->n_owned, L->qkv_w)) return -1;
    L->qkv_b = il_malloc((size_t)3 * H * sizeof(float));
    if (!L->qkv_b || il_owned_push(&b->m->owned, &b->m->n_owned, L->qkv_b)) return -1;
    for (int p = 0; p < 3; p++) {
        const float *w = bind(b, H, H, "encoder.layer.%d.attention.self.%s.weight", l, parts[p]);
        const float *bias = bind(b, H, -1, "encoder.layer.%d.attention.self.%s.bias", l, parts[p]);
        if (!w || !bias) return -1;
        memcpy(L->qkv_w + (size_t)p * H * H, w, (size_t)H * H * sizeof(float));
        memcpy(L->qkv_b + (size_t)p * H, bias, (size_t)H * sizeof(float));
    }
    return 0;
}

static int bind_layer(binder *b, bert_layer *L, int l) {
    const int H = b->m->cfg.hidden_size, F = b->m->cfg.intermediate_size;
    if (bind_qkv(b, L, l, H)) return -1;
#define B(field, d0, d1, name) if (!(L->field = bind(b, d0, d1, "encoder.layer.%d." name, l))) return -1
    B(ao_w, H, H, "attention.output.dense.weight");
    B(ao_b, H, -1, "attention.output.dense.bias");
    B(ao_ln_w, H, -1, "attention.output.LayerNorm.weight");
    B(ao_ln_b, H, -1, "attention.output.LayerNorm.bias");
    B(i_w, F, H, "intermediate.dense.weight");
    B(i_b, F, -1, "intermediate.dense.bias");
    B(o_w, H, F, "output.dense.weight");
    B(o_b, H, -1, "output.dense.bias");
    B(o_ln_w, H, -1, "output.LayerNorm.weight");
    B(o_ln_b, H, -1, "output.LayerNorm.bias");
#undef B
    return 0;
}

static int bind_all(il_bert *m, const char *where) {
    const il_bert_config *c = &m->cfg;
    const int H = c->hidden_size;
    /* sentence-transformers saves a bare BertModel; BertFor* checkpoints add "bert." */
    binder b = {m, where, ""};
    if (!il_weights_find(m->ckpt, m->file, "embeddings.word_embeddings.weight", NULL) &&
        il_weights_find(m->ckpt, m->file, "bert.embeddings.word_embeddings.weight", NULL))
        b.prefix = "bert.";
    if (!(m->word = bind(&b, c->vocab_size, H, "embeddings.word_embeddings.weight")) ||
        !(m->pos = bind(&b, c->max_position_embeddings, H, "embeddings.position_embeddings.weight")) ||
        !(m->type = bind(&b, c->type_vocab_size, H, "embeddings.token_type_embeddings.weight")) ||
        !(m->emb_ln_w = bind(&b, H, -1, "embeddings.LayerNorm.weight")) ||
        !(m->emb_ln_b = bind(&b, H, -1, "embeddings.LayerNorm.bias")))
        return -1;
    if (!(m->layers = il_calloc((size_t)c->num_layers, sizeof *m->layers))) return -1;
    for (int l = 0; l < c->num_layers; l++)
        if (bind_layer(&b, &m->layers[l], l)) return -1;
    return 0;
}

/* ===== load / free ===== */

static il_bert *load(const char *config_path, const char *dir, const char *weights_path) {
    il_bert *m = il_calloc(1, sizeof *m);
    if (!m) return NULL;
    if (il_bert_config_load(&m->cfg, config_path)) goto fail;
    if (dir ? !(m->ckpt = il_checkpoint_open(dir)) : !(m->file = il_tensor_file_open(weights_path)))
        goto fail;
    if (bind_all(m, dir ? dir : weights_path)) goto fail;
    return m;
fail:
    il_bert_free(m);
    return NULL;
}

il_bert *il_bert_load(const char *dir) {
    char *cfg = il_path_join(dir, "config.json");
    if (!cfg) return NULL;
    il_bert *m = load(cfg, dir, NULL);
    free(cfg);
    return m;
}

il_bert *il_bert_load_files(const char *config_path, const char *weights_path) {
    return load(config_path, NULL, weights_path);
}

void il_bert_free(il_bert *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    il_checkpoint_free(m->ckpt);
    il_tensor_file_free(m->file);
    free(m);
}

const il_bert_config *il_bert_get_config(const il_bert *m) { return &m->cfg; }

/* ===== kernels ===== */

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* y [rows, out] = x [rows, in] W^T + b, W [out, in] (nn.Linear). */
static void linear(float *y, const float *x, const float *W, const float *b, int rows, int in,
                   int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, W, in,
                0.0f, y, out);
#pragma omp parallel for schedule(static) if ((size_t)rows * out > 65536)
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * out;
        for (int j = 0; j < out; j++) yr[j] += b[j];
    }
}

/* torch's LayerNorm of one row: biased variance, y = (x * rstd - mean * rstd) * w + b.
 * The moments are summed in double (torch sums in float: ~1e-7 relative apart). */
static void layernorm_row(float *y, const float *x, const float *w, const float *b, int n,
                          float eps) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    const double mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    const float rstd = (float)(1.0 / sqrt((double)(float)(ss / n) + (double)eps));
    const float shift = -rstd * (float)mean;
    for (int i = 0; i < n; i++) y[i] = (x[i] * rstd + shift) * w[i] + b[i];
}

/* x = LayerNorm(h + x) row by row: BertSelfOutput / BertOutput's residual. h is clobbered. */
static void add_layernorm(float *x, float *h, const float *w, const float *b, int rows, int n,
                          float eps) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 16384)
    for (int r = 0; r < rows; r++) {
        float *hr = h + (size_t)r * n, *xr = x + (size_t)r * n;
        for (int i = 0; i < n; i++) hr[i] += xr[i];
        layernorm_row(xr, hr, w, b, n, eps);
    }
}

static void activation(float *a, size_t n, il_bert_act act) {
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn > 65536)
    for (long i = 0; i < nn; i++) {
        const float v = a[i];
        if (act == IL_BERT_GELU) /* exact GELU: x/2 (1 + erf(x / sqrt 2)) */
            a[i] = v * 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        else if (act == IL_BERT_GELU_TANH)
            a[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        else
            a[i] = v > 0.0f ? v : 0.0f;
    }
}

/* softmax(Q K^T / sqrt(d)) V for one (sequence, head). q, k, v: the head's columns of the
 * packed [len, 3H] projection (row stride ld); ctx: the head's columns of [len, H] (row
 * stride ldc); S: len * len floats of scratch. Called inside an OpenMP region, where
 * OpenBLAS runs single-threaded. */
static void attend(float *ctx, int ldc, const float *q, const float *k, const float *v, int ld,
                   int len, int d, float scale, float *S) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, d, 1.0f, q, ld, k, ld, 0.0f,
                S, len);
    for (int r = 0; r < len; r++) {
        float *row = S + (size_t)r * len, mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < len; j++) {
            row[j] /= scale; /* transformers divides the scores by sqrt(d_head) */
            mx = row[j] > mx ? row[j] : mx;
        }
        for (int j = 0; j < len; j++) sum += (row[j] = expf(row[j] - mx));
        const float inv = 1.0f / sum;
        for (int j = 0; j < len; j++) row[j] *= inv;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, d, len, 1.0f, S, len, v, ld,
                0.0f, ctx, ldc);
}

/* Self-attention of every (sequence, head) over the packed qkv [T, 3H] -> ctx [T, H].
 * scratch: max_threads() blocks of maxlen * maxlen floats. */
static void attention(const il_bert *m, float *ctx, const float *qkv, int n, const int *off,
                      const int *lens, float *scratch, int maxlen) {
    const int H = m->cfg.hidden_size, heads = m->cfg.num_heads, d = H / heads;
    const float scale = (float)sqrt((double)d);
    const int tasks = n * heads;
#pragma omp parallel for schedule(dynamic, 1) if (tasks > 1)
    for (int t = 0; t < tasks; t++) {
        const int i = t / heads, h = t % heads;
        const float *q = qkv + (size_t)off[i] * 3 * H + (size_t)h * d;
        attend(ctx + (size_t)off[i] * H + (size_t)h * d, H, q, q + H, q + 2 * H, 3 * H, lens[i],
               d, scale, scratch + (size_t)thread_id() * maxlen * maxlen);
    }
}

/* ===== forward ===== */

/* BertEmbeddings: LayerNorm((word + token_type) + position), positions counted from 0. */
static void embed(const il_bert *m, float *x, int n, const int32_t *const *ids,
                  const int32_t *const *types, const int *off, const int *lens) {
    const int H = m->cfg.hidden_size;
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < lens[i]; p++) {
            float *xr = x + (size_t)(off[i] + p) * H;
            const float *w = m->word + (size_t)ids[i][p] * H;
            const float *ty = m->type + (size_t)(types ? types[i][p] : 0) * H;
            const float *ps = m->pos + (size_t)p * H;
            for (int j = 0; j < H; j++) xr[j] = (w[j] + ty[j]) + ps[j];
            layernorm_row(xr, xr, m->emb_ln_w, m->emb_ln_b, H, m->cfg.eps);
        }
    }
}

static int check_inputs(const il_bert *m, int n, const int32_t *const *ids,
                        const int32_t *const *types, const int *lens) {
    const il_bert_config *c = &m->cfg;
    if (n < 1 || !ids || !lens) {
        il_seterr("bert: empty batch");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > c->max_position_embeddings) {
            il_seterr("bert: batch item %d has %d tokens (expected 1 to "
                      "max_position_embeddings = %d)", i, lens[i], c->max_position_embeddings);
            return -1;
        }
        for (int p = 0; p < lens[i]; p++) {
            if (ids[i][p] < 0 || ids[i][p] >= c->vocab_size) {
                il_seterr("bert: batch item %d position %d: id %d is out of range [0, %d)", i, p,
                          (int)ids[i][p], c->vocab_size);
                return -1;
            }
            if (types && (types[i][p] < 0 || types[i][p] >= c->type_vocab_size)) {
                il_seterr("bert: batch item %d position %d: token type %d is out of range "
                          "[0, %d)", i, p, (int)types[i][p], c->type_vocab_size);
                return -1;
            }
        }
    }
    return 0;
}

/* Scratch for one forward pass; all [T, ...] row-major. */
typedef struct {
    float *qkv; /* [T, 3H] */
    float *ctx; /* [T, H] */
    float *tmp; /* [T, H] */
    float *ff;  /* [T, F] */
    float *att; /* [threads, maxlen, maxlen] attention scores */
} bert_scratch;

static void layer_forward(const il_bert *m, const bert_layer *L, float *x, bert_scratch *s,
                          int T, int n, const int *off, const int *lens, int maxlen) {
    const int H = m->cfg.hidden_size, F = m->cfg.intermediate_size;
    const float eps = m->cfg.eps;
    linear(s->qkv, x, L->qkv_w, L->qkv_b, T, H, 3 * H);
    attention(m, s->ctx, s->qkv, n, off, lens, s->att, maxlen);
    linear(s->tmp, s->ctx, L->ao_w, L->ao_b, T, H, H);
    add_layernorm(x, s->tmp, L->ao_ln_w, L->ao_ln_b, T, H, eps);
    linear(s->ff, x, L->i_w, L->i_b, T, H, F);
    activation(s->ff, (size_t)T * F, m->cfg.act);
    linear(s->tmp, s->ff, L->o_w, L->o_b, T, F, H);
    add_layernorm(x, s->tmp, L->o_ln_w, L->o_ln_b, T, H, eps);
}

int il_bert_forward(const il_bert *m, int n, const int32_t *const *ids,
                    const int32_t *const *types, const int *lens, float *out, float *trace) {
    if (check_inputs(m, n, ids, types, lens)) return -1;
    const int H = m->cfg.hidden_size, F = m->cfg.intermediate_size;
    int *off = il_malloc((size_t)n * sizeof *off);
    if (!off) return -1;
    size_t T = 0;
    int maxlen = 0;
    for (int i = 0; i < n; i++) {
        off[i] = (int)T;
        T += (size_t)lens[i];
        maxlen = lens[i] > maxlen ? lens[i] : maxlen;
    }
    if (T > (size_t)INT32_MAX / (size_t)(3 * H > F ? 3 * H : F)) {
        il_seterr("bert: batch of %zu tokens is too large", T);
        free(off);
        return -1;
    }
    bert_scratch s = {0};
    s.qkv = il_malloc(T * 3 * (size_t)H * sizeof(float));
    s.ctx = il_malloc(T * (size_t)H * sizeof(float));
    s.tmp = il_malloc(T * (size_t)H * sizeof(float));
    s.ff = il_malloc(T * (size_t)F * sizeof(float));
    s.att = il_malloc((size_t)max_threads() * (size_t)maxlen * (size_t)maxlen * sizeof(float));
    int rc = -1;
    if (s.qkv && s.ctx && s.tmp && s.ff && s.att) {
        const size_t plane = T * (size_t)H;
        embed(m, out, n, ids, types, off, lens);
        if (trace) memcpy(trace, out, plane * sizeof(float));
        for (int l = 0; l < m->cfg.num_layers; l++) {
            layer_forward(m, &m->layers[l], out, &s, (int)T, n, off, lens, maxlen);
            if (trace) memcpy(trace + (size_t)(l + 1) * plane, out, plane * sizeof(float));
        }
        rc = 0;
    }
    free(s.qkv);
    free(s.ctx);
    free(s.tmp);
    free(s.ff);
    free(s.att);
    free(off);
    return rc;
}
