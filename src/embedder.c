/* embedder.c - sentence-transformers directories (modules.json, Pooling, Normalize,
 * sentence_bert_config.json) over the BERT encoder of bert.c, the Sentence-T5 style
 * embedder over il_t5, pooling and batching. See embedder.h. */
#include "embedder.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "util.h"
#include "wordpiece.h"

/* Tokens per model call: bounds the activations (MiniLM: ~14 KB per token) while keeping
 * the GEMMs large enough to run at full speed. */
#define EMB_CHUNK_TOKENS 4096
#define EMB_T5_DEFAULT_MAX_LEN 512

typedef struct {
    bool cls, max, mean, mean_sqrt_len; /* sentence-transformers' order of concatenation */
} pool_modes;

struct il_embedder {
    /* BERT backend (sentence-transformers directory) */
    il_wordpiece *wp;
    il_bert *bert;
    bool lower_text; /* sentence_bert_config.json do_lower_case */
    /* T5 backend */
    il_t5 *t5;
    const il_tokenizer *spm;
    il_t5 *owned_t5;
    il_tokenizer *owned_spm;
    /* common */
    int hidden;  /* width of the token states */
    int max_len; /* ids per text after truncation */
    pool_modes pool;
    bool normalize;
    int dim;
};

/* ===== JSON helpers ===== */

static cJSON *read_json(const char *path) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) il_seterr("%s: malformed JSON", path);
    return root;
}

static cJSON *read_json_object(const char *dir, const char *name, char **path_out) {
    char *path = il_path_join(dir, name);
    if (!path) return NULL;
    cJSON *root = NULL;
    if (!il_file_exists(path)) {
        il_seterr("%s: missing", path);
    } else if ((root = read_json(path)) && !cJSON_IsObject(root)) {
        il_seterr("%s: expected a JSON object", path);
        cJSON_Delete(root);
        root = NULL;
    }
    if (path_out && root) *path_out = path;
    else free(path);
    return root;
}

/* Boolean field: absent or null -> def. */
static int json_bool(const cJSON *root, const char *key, const char *where, bool def, bool *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = def;
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsBool(it)) {
        il_seterr("%s: field '%s': expected true or false", where, key);
        return -1;
    }
    *out = cJSON_IsTrue(it);
    return 0;
}

/* Positive integer field: absent or null -> *out unchanged, *present false. */
static int json_posint(const cJSON *root, const char *key, const char *where, int *out,
                       bool *present) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (present) *present = false;
    if (!it || cJSON_IsNull(it)) return 0;
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(v == floor(v) && v >= 1)) {
        il_seterr("%s: field '%s': expected a positive integer", where, key);
        return -1;
    }
    *out = v > 1e9 ? 1000000000 : (int)v;
    if (present) *present = true;
    return 0;
}

/* ===== sentence-transformers directory ===== */

typedef struct {
    char *transformer_path; /* "" or a subdirectory */
    char *pooling_path;
    bool normalize;
} st_modules;

static const char *module_kind(const char *type) {
    const char *dot = strrchr(type, '.');
    return dot ? dot + 1 : type; /* "sentence_transformers.models.Pooling" -> "Pooling" */
}

static void st_modules_free(st_modules *m) {
    free(m->transformer_path);
    free(m->pooling_path);
    memset(m, 0, sizeof *m);
}

/* modules.json: Transformer, then Pooling, then optionally Normalize. On failure nothing
 * is left allocated. */
static int read_modules(const char *dir, st_modules *mods) {
    int rc = -1;
    memset(mods, 0, sizeof *mods);
    char *mpath = il_path_join(dir, "modules.json");
    cJSON *root = mpath ? read_json(mpath) : NULL;
    if (!root) goto out;
    if (!cJSON_IsArray(root)) {
        il_seterr("%s: expected a list of modules", mpath);
        goto out;
    }
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, root) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "path");
        if (!cJSON_IsString(type) || (p && !cJSON_IsString(p))) {
            il_seterr("%s: module %d: expected string fields 'type' and 'path'", mpath, i);
            goto out;
        }
        const char *kind = module_kind(type->valuestring), *ps = p ? p->valuestring : "";
        if (!strcmp(kind, "Transformer") && i == 0) {
            if (!(mods->transformer_path = il_strdup(ps))) goto out;
        } else if (!strcmp(kind, "Pooling") && mods->transformer_path && !mods->pooling_path) {
            if (!(mods->pooling_path = il_strdup(ps))) goto out;
        } else if (!strcmp(kind, "Normalize") && mods->pooling_path && !mods->normalize) {
            mods->normalize = true;
        } else {
            il_seterr("%s: module %d of type '%s' is not supported here (expected "
                      "Transformer, Pooling, then optionally Normalize)", mpath, i,
                      type->valuestring);
            goto out;
        }
        i++;
    }
    if (!mods->transformer_path || !mods->pooling_path) {
        il_seterr("%s: needs a Transformer module followed by a Pooling module", mpath);
        goto out;
    }
    rc = 0;
out:
    if (rc) st_modules_free(mods);
    cJSON_Delete(root);
    free(mpath);
    return rc;
}

/* 1_Pooling/config.json: the pooling modes, and the width they expect. */
static int read_pooling(il_embedder *e, const char *dir, const char *sub) {
    char *pdir = il_path_join(dir, sub), *path = NULL;
    cJSON *root = pdir ? read_json_object(pdir, "config.json", &path) : NULL;
    int rc = -1, dim = 0;
    bool present, weighted = false, last = false;
    if (!root) goto out;
    if (json_bool(root, "pooling_mode_cls_token", path, false, &e->pool.cls) ||
        json_bool(root, "pooling_mode_max_tokens", path, false, &e->pool.max) ||
        json_bool(root, "pooling_mode_mean_tokens", path, false, &e->pool.mean) ||
        json_bool(root, "pooling_mode_mean_sqrt_len_tokens", path, false, &e->pool.mean_sqrt_len) ||
        json_bool(root, "pooling_mode_weightedmean_tokens", path, false, &weighted) ||
        json_bool(root, "pooling_mode_lasttoken", path, false, &last) ||
        json_posint(root, "word_embedding_dimension", path, &dim, &present))
        goto out;
    if (weighted || last) {
        il_seterr("%s: pooling mode '%s' is not supported", path,
                  weighted ? "weightedmean_tokens" : "lasttoken");
        goto out;
    }
    if (!e->pool.cls && !e->pool.max && !e->pool.mean && !e->pool.mean_sqrt_len) {
        il_seterr("%s: no pooling mode is enabled", path);
        goto out;
    }
    if (!present || dim != e->hidden) {
        il_seterr("%s: field 'word_embedding_dimension' is %d but the model's hidden_size "
                  "is %d", path, present ? dim : 0, e->hidden);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(pdir);
    free(path);
    return rc;
}

/* sentence_bert_config.json (optional): max_seq_length and do_lower_case. */
static int read_sbert_config(il_embedder *e, const char *tdir) {
    const il_bert_config *c = il_bert_get_config(e->bert);
    int model_max = il_wordpiece_model_max_length(e->wp);
    e->max_len = c->max_position_embeddings < model_max ? c->max_position_embeddings : model_max;
    char *path = il_path_join(tdir, "sentence_bert_config.json");
    if (!path) return -1;
    int rc = -1, len = 0;
    bool present = false;
    cJSON *root = NULL;
    if (!il_file_exists(path)) {
        rc = 0;
        goto out;
    }
    if (!(root = read_json(path))) goto out;
    if (!cJSON_IsObject(root)) {
        il_seterr("%s: expected a JSON object", path);
        goto out;
    }
    if (json_posint(root, "max_seq_length", path, &len, &present) ||
        json_bool(root, "do_lower_case", path, false, &e->lower_text))
        goto out;
    if (present) e->max_len = len;
    /* Longer inputs would index past the position table (an error in PyTorch too). */
    if (e->max_len > c->max_position_embeddings) e->max_len = c->max_position_embeddings;
    if (e->max_len < 2) {
        il_seterr("%s: field 'max_seq_length': %d leaves no room for [CLS] and [SEP]", path,
                  e->max_len);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(path);
    return rc;
}

static int load_st(il_embedder *e, const char *dir) {
    st_modules mods;
    if (read_modules(dir, &mods)) return -1;
    int rc = -1;
    char *tdir = mods.transformer_path[0] ? il_path_join(dir, mods.transformer_path)
                                          : il_strdup(dir);
    if (!tdir || !(e->wp = il_wordpiece_load(tdir)) || !(e->bert = il_bert_load(tdir))) goto out;
    const il_bert_config *c = il_bert_get_config(e->bert);
    if (il_wordpiece_vocab_size(e->wp) > c->vocab_size) {
        il_seterr("%s: the tokenizer has %d tokens but config.json vocab_size is %d", tdir,
                  il_wordpiece_vocab_size(e->wp), c->vocab_size);
        goto out;
    }
    e->hidden = c->hidden_size;
    if (read_sbert_config(e, tdir) || read_pooling(e, dir, mods.pooling_path)) goto out;
    e->normalize = mods.normalize;
    e->dim = e->hidden * (e->pool.cls + e->pool.max + e->pool.mean + e->pool.mean_sqrt_len);
    rc = 0;
out:
    free(tdir);
    st_modules_free(&mods);
    return rc;
}

/* ===== T5 ===== */

static bool is_t5_config(const cJSON *root) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "t5")) return true;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(root, "architectures"))
        if (cJSON_IsString(a) && !strncmp(a->valuestring, "T5", 2)) return true;
    return false;
}

static int t5_setup(il_embedder *e, il_t5 *m, const il_tokenizer *tok, int max_length,
                    bool normalize) {
    if (max_length < 2) {
        il_seterr("t5 embedder: max_length %d is too small", max_length);
        return -1;
    }
    e->t5 = m;
    e->spm = tok;
    e->hidden = il_t5_get_config(m)->d_model;
    e->max_len = max_length;
    e->pool = (pool_modes){.mean = true};
    e->normalize = normalize;
    e->dim = e->hidden;
    return 0;
}

il_embedder *il_embedder_from_t5(il_t5 *m, const il_tokenizer *tok, int max_length,
                                 bool normalize) {
    il_embedder *e = il_calloc(1, sizeof *e);
    if (e && t5_setup(e, m, tok, max_length, normalize)) {
        free(e);
        return NULL;
    }
    return e;
}

/* The tokenizer's model_max_length (tokenizer_config.json), EMB_T5_DEFAULT_MAX_LEN when
 * absent. */
static int t5_max_length(const char *dir, int *out) {
    *out = EMB_T5_DEFAULT_MAX_LEN;
    char *path = il_path_join(dir, "tokenizer_config.json");
    if (!path) return -1;
    int rc = 0;
    if (il_file_exists(path)) {
        cJSON *root = read_json(path);
        rc = root ? json_posint(root, "model_max_length", path, out, NULL) : -1;
        cJSON_Delete(root);
    }
    free(path);
    return rc;
}

static int load_t5(il_embedder *e, const char *dir) {
    int max_len;
    if (t5_max_length(dir, &max_len) || !(e->owned_t5 = il_t5_load(dir)) ||
        !(e->owned_spm = il_tokenizer_load(dir)))
        return -1;
    return t5_setup(e, e->owned_t5, e->owned_spm, max_len, true);
}

/* ===== load / free ===== */

il_embedder *il_embedder_load(const char *dir) {
    il_embedder *e = il_calloc(1, sizeof *e);
    char *modules = il_path_join(dir, "modules.json");
    cJSON *cfg = NULL;
    if (!e || !modules) goto fail;
    if (il_file_exists(modules)) {
        if (load_st(e, dir)) goto fail;
    } else {
        char *cpath = NULL;
        if (!(cfg = read_json_object(dir, "config.json", &cpath))) {
            il_prefixerr("%s: neither a sentence-transformers directory (no modules.json) "
                         "nor a T5 model", dir);
            goto fail;
        }
        bool t5 = is_t5_config(cfg);
        if (!t5)
            il_seterr("%s: no modules.json, and config.json is not a T5 model (only "
                      "sentence-transformers directories and T5 models can embed)", cpath);
        free(cpath);
        if (!t5 || load_t5(e, dir)) goto fail;
    }
    cJSON_Delete(cfg);
    free(modules);
    return e;
fail:
    cJSON_Delete(cfg);
    free(modules);
    il_embedder_free(e);
    return NULL;
}

void il_embedder_free(il_embedder *e) {
    if (!e) return;
    il_wordpiece_free(e->wp);
    il_bert_free(e->bert);
    il_t5_free(e->owned_t5);
    il_tokenizer_free(e->owned_spm);
    free(e);
}

int il_embedder_dim(const il_embedder *e) { return e->dim; }
int il_embedder_max_length(const il_embedder *e) { return e->max_len; }
const char *il_embedder_kind(const il_embedder *e) { return e->bert ? "bert" : "t5"; }
bool il_embedder_normalizes(const il_embedder *e) { return e->normalize; }
void il_embedder_set_normalize(il_embedder *e, bool on) { e->normalize = on; }

/* ===== tokenization ===== */

static int tokenize_bert(il_embedder *e, const char *text, int32_t **ids, int *n) {
    size_t len = strlen(text);
    if (!e->lower_text) return il_wordpiece_encode(e->wp, text, len, e->max_len, ids, n);
    /* sentence-transformers lower-cases the whole text (str.lower) before tokenizing */
    char *low = il_py_lower(text, len, &len);
    if (!low) return -1;
    int rc = il_wordpiece_encode(e->wp, low, len, e->max_len, ids, n);
    free(low);
    return rc;
}

/* tokenizer(text, truncation=True, max_length=L): the first L - 1 ids, then </s>. */
static int tokenize_t5(il_embedder *e, const char *text, int32_t **ids, int *n) {
    if (il_tokenizer_encode(e->spm, text, strlen(text), ids, n)) return -1;
    if (*n > e->max_len) {
        (*ids)[e->max_len - 1] = il_tokenizer_eos_id(e->spm);
        *n = e->max_len;
    }
    return 0;
}

int il_embedder_tokenize(il_embedder *e, const char *text, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    if (!text) {
        il_seterr("embedder: text is NULL");
        return -1;
    }
    return e->bert ? tokenize_bert(e, text, ids, n) : tokenize_t5(e, text, ids, n);
}

/* ===== pooling ===== */

/* Pool one sequence's states h [len, H] into out [dim], then normalise if asked. The sums
 * are kept in double: the mean of up to a few hundred float rows then rounds once. */
static void pool_one(const il_embedder *e, const float *h, int len, float *out) {
    const int H = e->hidden;
    float *o = out;
    if (e->pool.cls) {
        memcpy(o, h, (size_t)H * sizeof *o);
        o += H;
    }
    if (e->pool.max) {
        for (int j = 0; j < H; j++) {
            float m = h[j];
            for (int r = 1; r < len; r++) m = h[(size_t)r * H + j] > m ? h[(size_t)r * H + j] : m;
            o[j] = m;
        }
        o += H;
    }
    if (e->pool.mean || e->pool.mean_sqrt_len) {
        /* sum(h * mask) / clamp(sum(mask), 1e-9): every row here is a real token */
        const double count = len > 0 ? (double)len : 1e-9;
        for (int j = 0; j < H; j++) {
            double s = 0;
            for (int r = 0; r < len; r++) s += h[(size_t)r * H + j];
            if (e->pool.mean) o[j] = (float)(s / count);
            if (e->pool.mean_sqrt_len) o[j + (e->pool.mean ? H : 0)] = (float)(s / sqrt(count));
        }
    }
    if (e->normalize) { /* F.normalize: x / max(||x||, 1e-12) */
        double ss = 0;
        for (int j = 0; j < e->dim; j++) ss += (double)out[j] * out[j];
        const double norm = fmax(sqrt(ss), 1e-12);
        for (int j = 0; j < e->dim; j++) out[j] = (float)(out[j] / norm);
    }
}

/* ===== embedding ===== */

/* Token states of a chunk of sequences, packed: [sum lens, hidden]. */
static int encode_chunk(il_embedder *e, int n, const int32_t *const *ids, const int *lens,
                        float *states) {
    if (e->bert) return il_bert_forward(e->bert, n, ids, NULL, lens, states, NULL);
    return il_t5_encode(e->t5, n, ids, lens, states);
}

int il_embedder_embed_ids(il_embedder *e, int n, const int32_t *const *ids, const int *lens,
                          float *out) {
    if (n <= 0) {
        if (n == 0) return 0;
        il_seterr("embedder: negative batch size %d", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (lens[i] < 1 || lens[i] > e->max_len) {
            il_seterr("embedder: text %d has %d ids (expected 1 to %d)", i, lens[i], e->max_len);
            return -1;
        }
    }
    /* Chunks of whole sequences, each up to EMB_CHUNK_TOKENS tokens (at least one). */
    const size_t cap = EMB_CHUNK_TOKENS > e->max_len ? EMB_CHUNK_TOKENS : (size_t)e->max_len;
    float *states = il_malloc(cap * (size_t)e->hidden * sizeof *states);
    if (!states) return -1;
    int rc = 0;
    for (int start = 0; start < n && rc == 0;) {
        int end = start;
        size_t tokens = 0;
        while (end < n && tokens + (size_t)lens[end] <= cap) tokens += (size_t)lens[end++];
        rc = encode_chunk(e, end - start, ids + start, lens + start, states);
        if (rc) il_prefixerr("embedder: texts %d..%d", start, end - 1);
        size_t row = 0;
        for (int i = start; i < end && rc == 0; i++) {
            pool_one(e, states + row * (size_t)e->hidden, lens[i], out + (size_t)i * e->dim);
            row += (size_t)lens[i];
        }
        start = end;
    }
    free(states);
    return rc;
}

int il_embedder_embed(il_embedder *e, int n, const char *const *texts, float *out) {
    if (n <= 0) {
        if (n == 0) return 0;
        il_seterr("embedder: negative batch size %d", n);
        return -1;
    }
    int32_t **ids = il_calloc((size_t)n, sizeof *ids);
    int *lens = il_calloc((size_t)n, sizeof *lens);
    int rc = -1;
    if (!ids || !lens) goto out;
    for (int i = 0; i < n; i++) {
        if (il_embedder_tokenize(e, texts[i], &ids[i], &lens[i])) {
            il_prefixerr("embedder: text %d", i);
            goto out;
        }
    }
    rc = il_embedder_embed_ids(e, n, (const int32_t *const *)ids, lens, out);
out:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    return rc;
}
