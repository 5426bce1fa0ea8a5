/* test_embedder.c - the sentence embedder (src/embedder.h) and the BERT encoder under it
 * (src/bert.h) against tests/golden/bert-tiny/embeddings.{json,safetensors}
 * (sentence-transformers + transformers 4.31), read from model.safetensors and from
 * pytorch_model.bin; the EMB case B12 (batch independence, Normalize); the T5-encoder
 * embedder on tests/golden/t5-tiny checked against a direct computation; and bad model
 * directories and texts. */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bert.h"
#include "check.h"
#include "embedder.h"
#include "retrieval.h"
#include "sentencepiece.h"
#include "t5.h"
#include "tensors.h"
#include "util.h"

#define BERT_DIR TEST_DATA "/golden/bert-tiny"
#define T5_DIR TEST_DATA "/golden/t5-tiny"
#define NS 20  /* golden sentences */
#define SEQ 128
#define HID 32

/* ===== scratch directories ===== */

static char *scratch_dir(void) {
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/ilora_emb_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(tmpl) ? il_strdup(tmpl) : NULL;
}

static void put_file(const char *dir, const char *name, const char *text) {
    char *p = il_path_join(dir, name);
    CHECK(il_write_file_atomic(p, text, strlen(text)) == 0);
    free(p);
}

/* dir/name -> the golden bert-tiny file of the same name. */
static void link_golden(const char *dir, const char *name) {
    char *src = il_path_join(BERT_DIR, name), *dst = il_path_join(dir, name);
    CHECK(symlink(src, dst) == 0);
    free(src);
    free(dst);
}

/* A copy of the golden sentence-transformers directory made of symlinks, without the
 * files listed in `skip` (NULL-terminated). */
static char *golden_copy(const char *const *skip) {
    static const char *const files[] = {"config.json", "modules.json", "sentence_bert_config.json",
                                        "special_tokens_map.json", "tokenizer_config.json",
                                        "vocab.txt", "model.safetensors", "pytorch_model.bin",
                                        "1_Pooling", NULL};
    char *dir = scratch_dir();
    if (!dir) return NULL;
    for (int i = 0; files[i]; i++) {
        bool skipped = false;
        for (int k = 0; skip && skip[k]; k++) skipped |= !strcmp(skip[k], files[i]);
        if (!skipped) link_golden(dir, files[i]);
    }
    return dir;
}

static void drop_dir(char *dir) {
    if (dir) il_remove_tree(dir);
    free(dir);
}

/* ===== goldens ===== */

typedef struct {
    cJSON *json;
    il_tensor_file *st;
    const char *texts[NS];
    int32_t ids[NS][SEQ];
    const int32_t *idp[NS];
    int lens[NS];
    float *hidden[3]; /* hidden_states.{0,1,2} [NS, SEQ, HID] */
    float *raw, *normed, *cosine;
    float *owned[8];
    int n_owned;
} goldens;

static float *golden_f32(goldens *g, const char *name) {
    const il_tensor *t = il_tensor_file_find(g->st, name);
    if (!t) return NULL;
    float *owned = NULL;
    const float *p = il_tensor_f32(t, g->st->path, -1, NULL, &owned);
    if (owned) g->owned[g->n_owned++] = owned;
    return (float *)p;
}

static int goldens_load(goldens *g) {
    memset(g, 0, sizeof *g);
    size_t len;
    char *text = il_read_file(BERT_DIR "/embeddings.json", &len);
    g->json = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    g->st = il_safetensors_open(BERT_DIR "/embeddings.safetensors");
    if (!g->json || !g->st) return -1;
    const cJSON *s = cJSON_GetObjectItem(g->json, "sentences");
    if (cJSON_GetArraySize(s) != NS) return -1;
    for (int i = 0; i < NS; i++)
        g->texts[i] = cJSON_GetObjectItem(cJSON_GetArrayItem(s, i), "text")->valuestring;
    const il_tensor *ids = il_tensor_file_find(g->st, "input_ids");
    const il_tensor *mask = il_tensor_file_find(g->st, "attention_mask");
    if (!ids || !mask || ids->dtype != IL_I64 || mask->dtype != IL_I64) return -1;
    for (int i = 0; i < NS; i++) {
        g->lens[i] = 0;
        for (int p = 0; p < SEQ; p++) {
            int64_t v, m;
            memcpy(&v, (const char *)ids->data + 8 * ((size_t)i * SEQ + p), 8);
            memcpy(&m, (const char *)mask->data + 8 * ((size_t)i * SEQ + p), 8);
            g->ids[i][p] = (int32_t)v;
            g->lens[i] += (int)m;
        }
        g->idp[i] = g->ids[i];
    }
    char name[32];
    for (int l = 0; l < 3; l++) {
        snprintf(name, sizeof name, "hidden_states.%d", l);
        if (!(g->hidden[l] = golden_f32(g, name))) return -1;
    }
    g->raw = golden_f32(g, "sentence_embedding_raw");
    g->normed = golden_f32(g, "sentence_embedding_normalized");
    g->cosine = golden_f32(g, "cosine_similarity");
    const float *last = golden_f32(g, "last_hidden_state");
    /* last_hidden_state is hidden_states.2 (2 layers) */
    if (!g->raw || !g->normed || !g->cosine || !last) return -1;
    CHECK(memcmp(last, g->hidden[2], sizeof(float) * NS * SEQ * HID) == 0);
    return 0;
}

static void goldens_free(goldens *g) {
    cJSON_Delete(g->json);
    il_tensor_file_free(g->st);
    for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
}

/* Max |a - b| over the unpadded rows of every sentence: a packed [sum lens, HID],
 * b padded [NS, SEQ, HID]. */
static double packed_vs_padded(const float *a, const float *b, const int *lens) {
    double m = 0;
    size_t row = 0;
    for (int i = 0; i < NS; i++)
        for (int p = 0; p < lens[i]; p++, row++) {
            double d = check_max_abs_diff(a + row * HID, b + ((size_t)i * SEQ + p) * HID, HID, NULL);
            m = d > m ? d : m;
        }
    return m;
}

/* ===== BERT encoder vs hidden states ===== */

static void check_bert(const il_bert *m, const goldens *g, const char *what) {
    CHECK_MSG(m != NULL, "%s: %s", what, il_errmsg());
    if (!m) return;
    const il_bert_config *c = il_bert_get_config(m);
    CHECK_EQ_INT(c->hidden_size, HID);
    CHECK_EQ_INT(c->num_layers, 2);
    CHECK_EQ_INT(c->num_heads, 4);
    CHECK_EQ_INT(c->vocab_size, 1454);
    size_t T = 0;
    for (int i = 0; i < NS; i++) T += (size_t)g->lens[i];
    float *out = malloc(T * HID * sizeof *out), *trace = malloc(3 * T * HID * sizeof *trace);
    CHECK(il_bert_forward(m, NS, g->idp, NULL, g->lens, out, trace) == 0);
    double d_last = packed_vs_padded(out, g->hidden[2], g->lens);
    CHECK_MSG(d_last <= 1e-5, "%s last_hidden_state max abs diff %.3g", what, d_last);
    for (int l = 0; l < 3; l++) {
        double d = packed_vs_padded(trace + (size_t)l * T * HID, g->hidden[l], g->lens);
        CHECK_MSG(d <= 1e-5, "%s hidden_states.%d max abs diff %.3g", what, l, d);
        printf("%s: hidden_states.%d max abs diff %.3g\n", what, l, d);
    }
    printf("%s: last_hidden_state max abs diff %.3g\n", what, d_last);
    free(out);
    free(trace);
}

/* ===== embedder vs sentence embeddings ===== */

static void check_embedder(il_embedder *e, const goldens *g, const char *what) {
    CHECK_MSG(e != NULL, "%s: %s", what, il_errmsg());
    if (!e) return;
    CHECK_STR(il_embedder_kind(e), "bert");
    CHECK_EQ_INT(il_embedder_dim(e), HID);
    CHECK_EQ_INT(il_embedder_max_length(e), SEQ);
    CHECK(il_embedder_normalizes(e));
    for (int i = 0; i < NS; i++) {
        int32_t *ids = NULL;
        int n = 0;
        CHECK(il_embedder_tokenize(e, g->texts[i], &ids, &n) == 0);
        bool same = n == g->lens[i] && !memcmp(ids, g->ids[i], (size_t)n * sizeof *ids);
        CHECK_MSG(same, "%s: ids of sentence %d", what, i);
        free(ids);
    }
    float normed[NS * HID], raw[NS * HID], cos[NS * NS];
    CHECK(il_embedder_embed(e, NS, g->texts, normed) == 0);
    double dn = check_max_abs_diff(normed, g->normed, NS * HID, NULL);
    CHECK_MSG(dn <= 1e-5, "%s normalized max abs diff %.3g", what, dn);
    il_embedder_set_normalize(e, false);
    CHECK(il_embedder_embed(e, NS, g->texts, raw) == 0);
    il_embedder_set_normalize(e, true);
    double dr = check_max_abs_diff(raw, g->raw, NS * HID, NULL);
    CHECK_MSG(dr <= 1e-5, "%s raw max abs diff %.3g", what, dr);
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++) cos[i * NS + j] = il_cosine(raw + i * HID, raw + j * HID, HID);
    double dc = check_max_abs_diff(cos, g->cosine, NS * NS, NULL);
    CHECK_MSG(dc <= 1e-5, "%s cosine max abs diff %.3g", what, dc);
    /* "Hello world" and "hello WORLD" are the same after lower-casing */
    CHECK_NEAR(cos[15 * NS + 16], 1.0, 1e-6);
    printf("%s: embedding raw %.3g, normalized %.3g, cosine %.3g max abs diff\n", what, dr, dn, dc);
}

/* ===== B12: mean pooling ignores batch neighbours ===== */

static void test_b12(il_embedder *e, const il_bert *m) {
    const char *texts[2] = {
        "hello world",
        "The following paragraphs each describe a set of five objects arranged in a fixed "
        "order and the statements are logically consistent within each paragraph while on a "
        "shelf there are five books of different colours standing next to each other today"};
    float pair[2 * HID], one[HID];
    CHECK(il_embedder_embed(e, 2, texts, pair) == 0);
    CHECK(il_embedder_embed(e, 1, texts, one) == 0);
    double d = check_max_abs_diff(pair, one, HID, NULL);
    CHECK_MSG(d <= 1e-6, "B12: batched vs alone %.3g", d);
    double ss = 0;
    for (int j = 0; j < HID; j++) ss += (double)pair[j] * pair[j];
    CHECK_NEAR(sqrt(ss), 1.0, 1e-6);

    /* the mean runs over [CLS] ... [SEP], every real token and nothing else */
    int32_t *ids = NULL;
    int n = 0;
    CHECK(il_embedder_tokenize(e, texts[0], &ids, &n) == 0);
    CHECK(n >= 3 && ids[0] == 2 && ids[n - 1] == 3); /* [CLS] ... [SEP] */
    float *h = malloc((size_t)(n > 0 ? n : 1) * HID * sizeof *h), raw[HID], mean[HID];
    const int32_t *idp[1] = {ids};
    CHECK(il_bert_forward(m, 1, idp, NULL, &n, h, NULL) == 0);
    for (int j = 0; j < HID; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += h[r * HID + j];
        mean[j] = (float)(s / n);
    }
    il_embedder_set_normalize(e, false);
    CHECK(il_embedder_embed(e, 1, texts, raw) == 0);
    il_embedder_set_normalize(e, true);
    CHECK(check_max_abs_diff(raw, mean, HID, NULL) <= 1e-6);
    free(h);
    free(ids);
}

/* ===== T5-encoder embedder ===== */

/* normalize(mean of il_t5_encode's rows) for one text, computed directly. */
static void t5_direct(il_t5 *m, const il_tokenizer *tok, const char *text, float *out) {
    int32_t *ids = NULL;
    int n = 0;
    CHECK(il_tokenizer_encode(tok, text, strlen(text), &ids, &n) == 0);
    const int d = il_t5_get_config(m)->d_model;
    float *h = malloc((size_t)n * d * sizeof *h);
    const int32_t *idp[1] = {ids};
    CHECK(il_t5_encode(m, 1, idp, &n, h) == 0);
    double ss = 0;
    for (int j = 0; j < d; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += h[(size_t)r * d + j];
        out[j] = (float)(s / n);
        ss += (double)out[j] * out[j];
    }
    for (int j = 0; j < d; j++) out[j] = (float)(out[j] / sqrt(ss));
    free(h);
    free(ids);
}

static void test_t5(void) {
    il_embedder *e = il_embedder_load(T5_DIR);
    CHECK_MSG(e != NULL, "%s", il_errmsg());
    il_t5 *m = il_t5_load(T5_DIR);
    il_tokenizer *tok = il_tokenizer_load(T5_DIR);
    CHECK(m && tok);
    if (!e || !m || !tok) goto out;
    CHECK_STR(il_embedder_kind(e), "t5");
    CHECK_EQ_INT(il_embedder_dim(e), 64);
    CHECK_EQ_INT(il_embedder_max_length(e), 512);
    CHECK(il_embedder_normalizes(e));
    const char *texts[3] = {"Sort the following words alphabetically: List: oven costume counterpart",
                            "", "not ( True ) and ( True ) is"};
    float batch[3 * 64], alone[64], direct[64];
    CHECK(il_embedder_embed(e, 3, texts, batch) == 0);
    double worst_direct = 0, worst_batch = 0;
    for (int i = 0; i < 3; i++) {
        t5_direct(m, tok, texts[i], direct);
        CHECK(il_embedder_embed(e, 1, texts + i, alone) == 0);
        double dd = check_max_abs_diff(batch + i * 64, direct, 64, NULL);
        double db = check_max_abs_diff(batch + i * 64, alone, 64, NULL);
        worst_direct = dd > worst_direct ? dd : worst_direct;
        worst_batch = db > worst_batch ? db : worst_batch;
        CHECK_MSG(dd <= 1e-6, "t5 text %d vs direct: %.3g", i, dd);
        CHECK_MSG(db <= 1e-6, "t5 text %d batched vs alone: %.3g", i, db);
        CHECK_NEAR(il_cosine(batch + i * 64, batch + i * 64, 64), 1.0, 1e-6);
    }
    printf("t5 embedder: vs direct %.3g, batched vs alone %.3g max abs diff\n", worst_direct,
           worst_batch);

    /* the same through a borrowed model */
    il_embedder *b = il_embedder_from_t5(m, tok, 512, true);
    CHECK(b != NULL);
    if (b) {
        float v[3 * 64];
        CHECK(il_embedder_embed(b, 3, texts, v) == 0);
        CHECK(check_max_abs_diff(v, batch, 3 * 64, NULL) <= 1e-6);
        il_embedder_free(b);
    }
    CHECK(il_embedder_from_t5(m, tok, 1, true) == NULL);

    /* truncation keeps </s> last */
    il_buf longtext = {0};
    for (int i = 0; i < 400; i++) il_buf_puts(&longtext, "the red book is left ");
    int32_t *ids = NULL;
    int n = 0;
    CHECK(il_embedder_tokenize(e, longtext.data, &ids, &n) == 0);
    CHECK_EQ_INT(n, 512);
    CHECK_EQ_INT(ids[n - 1], il_tokenizer_eos_id(tok));
    free(ids);
    float lv[64];
    const char *lt[1] = {longtext.data};
    CHECK(il_embedder_embed(e, 1, lt, lv) == 0);
    il_buf_free(&longtext);
out:
    il_embedder_free(e);
    il_t5_free(m);
    il_tokenizer_free(tok);
}

/* ===== bad inputs ===== */

/* Load dir expecting failure with both substrings in the message. */
static void expect_load_error(const char *dir, const char *s1, const char *s2) {
    il_embedder *e = il_embedder_load(dir);
    CHECK_MSG(e == NULL, "loaded despite the fault (%s)", s1);
    il_embedder_free(e);
    const char *msg = il_errmsg();
    CHECK_MSG(strstr(msg, s1) && (!s2 || strstr(msg, s2)), "message [%s] lacks [%s] / [%s]", msg,
              s1, s2 ? s2 : "");
}

/* The golden model.safetensors rewritten with tensor `name` reshaped to [d0, d1], or left
 * out (d0 < 0), into dir/model.safetensors. */
static void write_modified_weights(const char *dir, const char *name, int64_t d0, int64_t d1) {
    il_tensor_file *f = il_safetensors_open(BERT_DIR "/model.safetensors");
    CHECK(f != NULL);
    if (!f) return;
    il_tensor *ts = calloc((size_t)f->n_tensors, sizeof *ts);
    int n = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        if (!strcmp(f->tensors[i].name, name) && d0 < 0) continue;
        ts[n] = f->tensors[i];
        if (!strcmp(f->tensors[i].name, name)) {
            ts[n].ndim = 2;
            ts[n].shape[0] = d0;
            ts[n].shape[1] = d1;
        }
        n++;
    }
    char *p = il_path_join(dir, "model.safetensors");
    CHECK(il_safetensors_write(p, ts, n, NULL, NULL, 0) == 0);
    free(p);
    free(ts);
    il_tensor_file_free(f);
}

static void test_errors(il_embedder *good) {
    /* modules.json: malformed, no Pooling, an unsupported module */
    const char *no_modules[] = {"modules.json", NULL};
    char *dir = golden_copy(no_modules);
    put_file(dir, "modules.json", "[{\"type\": \"sentence_transformers.models.Transformer\"");
    expect_load_error(dir, "modules.json", "malformed");
    put_file(dir, "modules.json", "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"}]");
    expect_load_error(dir, "modules.json", "Pooling");
    put_file(dir, "modules.json",
             "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
             " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"1_Pooling\"},"
             " {\"type\": \"sentence_transformers.models.Dense\", \"path\": \"2_Dense\"}]");
    expect_load_error(dir, "modules.json", "Dense");
    put_file(dir, "modules.json",
             "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
             " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"no_such_dir\"}]");
    expect_load_error(dir, "no_such_dir/config.json", "missing");
    drop_dir(dir);

    /* 1_Pooling/config.json: malformed, wrong width, no mode */
    const char *no_pool[] = {"1_Pooling", NULL};
    static const char *const pool_cases[][2] = {
        {"{\"word_embedding_dimension\": 32, ", "malformed"},
        {"{\"word_embedding_dimension\": 48, \"pooling_mode_mean_tokens\": true}", "word_embedding_dimension"},
        {"{\"word_embedding_dimension\": 32}", "no pooling mode"},
        {"{\"word_embedding_dimension\": 32, \"pooling_mode_mean_tokens\": \"yes\"}", "pooling_mode_mean_tokens"},
    };
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        dir = golden_copy(no_pool);
        char *pd = il_path_join(dir, "1_Pooling");
        mkdir(pd, 0755);
        put_file(pd, "config.json", pool_cases[i][0]);
        expect_load_error(dir, "1_Pooling/config.json", pool_cases[i][1]);
        free(pd);
        drop_dir(dir);
    }

    /* missing vocab.txt; malformed config.json; sentence_bert_config.json wrong type */
    const char *no_vocab[] = {"vocab.txt", NULL};
    dir = golden_copy(no_vocab);
    expect_load_error(dir, "vocab.txt", "missing");
    drop_dir(dir);
    const char *no_config[] = {"config.json", NULL};
    dir = golden_copy(no_config);
    put_file(dir, "config.json", "{\"hidden_size\": 32,");
    expect_load_error(dir, "config.json", "malformed");
    put_file(dir, "config.json", "{\"hidden_size\": 32, \"num_attention_heads\": 5}");
    expect_load_error(dir, "config.json", "num_attention_heads");
    put_file(dir, "config.json", "{\"model_type\": \"roberta\"}");
    expect_load_error(dir, "config.json", "roberta");
    drop_dir(dir);
    const char *no_sbc[] = {"sentence_bert_config.json", NULL};
    dir = golden_copy(no_sbc);
    put_file(dir, "sentence_bert_config.json", "{\"max_seq_length\": \"long\"}");
    expect_load_error(dir, "sentence_bert_config.json", "max_seq_length");
    drop_dir(dir);

    /* weights: a tensor of the wrong shape, a missing tensor (errors name both) */
    const char *no_weights[] = {"model.safetensors", "pytorch_model.bin", NULL};
    dir = golden_copy(no_weights);
    write_modified_weights(dir, "encoder.layer.1.intermediate.dense.weight", 32, 64);
    expect_load_error(dir, "encoder.layer.1.intermediate.dense.weight", "model.safetensors");
    write_modified_weights(dir, "encoder.layer.0.output.LayerNorm.bias", -1, -1);
    expect_load_error(dir, "encoder.layer.0.output.LayerNorm.bias", "not found");
    drop_dir(dir);

    /* no modules.json and not a T5 model; a directory with nothing */
    dir = scratch_dir();
    expect_load_error(dir, "config.json", NULL);
    put_file(dir, "config.json", "{\"model_type\": \"bert\"}");
    expect_load_error(dir, "modules.json", NULL);
    drop_dir(dir);

    /* texts: invalid UTF-8 (the message names the text), NULL */
    const char *bad[2] = {"fine", "caf\xc3"};
    float out[2 * HID];
    CHECK(il_embedder_embed(good, 2, bad, out) == -1);
    CHECK_MSG(strstr(il_errmsg(), "UTF-8") && strstr(il_errmsg(), "text 1"), "%s", il_errmsg());
    int32_t *ids = NULL;
    int n = 0;
    CHECK(il_embedder_tokenize(good, NULL, &ids, &n) == -1);
    /* ids out of the vocabulary, or too many of them */
    int32_t big[3] = {2, 5000, 3};
    const int32_t *bp[1] = {big};
    int bl = 3;
    CHECK(il_embedder_embed_ids(good, 1, bp, &bl, out) == -1);
    CHECK_MSG(strstr(il_errmsg(), "5000") != NULL, "%s", il_errmsg());
    bl = 129;
    CHECK(il_embedder_embed_ids(good, 1, bp, &bl, out) == -1);
    CHECK(il_embedder_embed(good, 0, bad, out) == 0);
}

/* sentence_bert_config.json do_lower_case: the text is lower-cased (str.lower) first; a
 * smaller max_seq_length truncates. */
static void test_sbert_options(const goldens *g) {
    const char *skip[] = {"sentence_bert_config.json", "tokenizer_config.json", NULL};
    char *dir = golden_copy(skip);
    put_file(dir, "sentence_bert_config.json", "{\"max_seq_length\": 8, \"do_lower_case\": true}");
    /* a cased tokenizer, so that only sentence-transformers' lower-casing remains */
    put_file(dir, "tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": true}");
    il_embedder *e = il_embedder_load(dir);
    CHECK_MSG(e != NULL, "%s", il_errmsg());
    if (e) {
        CHECK_EQ_INT(il_embedder_max_length(e), 8);
        int32_t *a = NULL, *b = NULL;
        int na = 0, nb = 0;
        CHECK(il_embedder_tokenize(e, "HELLO World", &a, &na) == 0);
        CHECK(il_embedder_tokenize(e, "hello world", &b, &nb) == 0);
        CHECK(na == nb && a && b && !memcmp(a, b, (size_t)na * sizeof *a));
        free(a);
        free(b);
        CHECK(il_embedder_tokenize(e, g->texts[1], &a, &na) == 0);
        CHECK_EQ_INT(na, 8);
        CHECK(na == 8 && a[7] == 3 && !memcmp(a, g->ids[1], 7 * sizeof *a));
        free(a);
        il_embedder_free(e);
    }
    drop_dir(dir);
}

/* Every pooling mode at once, concatenated as sentence-transformers does (CLS, max, mean,
 * mean / sqrt(len)), and no Normalize module: checked against the encoder's states. */
static void test_pooling_modes(const il_bert *m) {
    const char *skip[] = {"modules.json", "1_Pooling", NULL};
    char *dir = golden_copy(skip);
    put_file(dir, "modules.json",
             "[{\"type\": \"sentence_transformers.models.Transformer\", \"path\": \"\"},"
             " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": \"pool\"}]");
    char *pd = il_path_join(dir, "pool");
    mkdir(pd, 0755);
    put_file(pd, "config.json",
             "{\"word_embedding_dimension\": 32, \"pooling_mode_cls_token\": true,"
             " \"pooling_mode_max_tokens\": true, \"pooling_mode_mean_tokens\": true,"
             " \"pooling_mode_mean_sqrt_len_tokens\": true}");
    free(pd);
    il_embedder *e = il_embedder_load(dir);
    CHECK_MSG(e != NULL, "%s", il_errmsg());
    if (e) {
        CHECK_EQ_INT(il_embedder_dim(e), 4 * HID);
        CHECK(!il_embedder_normalizes(e));
        const char *text[1] = {"Which statement is sarcastic?"};
        float got[4 * HID], want[4 * HID];
        CHECK(il_embedder_embed(e, 1, text, got) == 0);
        int32_t *ids = NULL;
        int n = 0;
        CHECK(il_embedder_tokenize(e, text[0], &ids, &n) == 0);
        float *h = malloc((size_t)n * HID * sizeof *h);
        const int32_t *idp[1] = {ids};
        CHECK(il_bert_forward(m, 1, idp, NULL, &n, h, NULL) == 0);
        for (int j = 0; j < HID; j++) {
            double s = 0;
            float mx = -INFINITY;
            for (int r = 0; r < n; r++) {
                s += h[r * HID + j];
                mx = h[r * HID + j] > mx ? h[r * HID + j] : mx;
            }
            want[j] = h[j];
            want[HID + j] = mx;
            want[2 * HID + j] = (float)(s / n);
            want[3 * HID + j] = (float)(s / sqrt(n));
        }
        CHECK(check_max_abs_diff(got, want, 4 * HID, NULL) <= 1e-6);
        free(h);
        free(ids);
        il_embedder_free(e);
    }
    drop_dir(dir);
}

int main(void) {
    goldens g;
    if (goldens_load(&g)) {
        CHECK_MSG(0, "cannot load the bert-tiny goldens: %s", il_errmsg());
        goldens_free(&g);
        TEST_END();
    }

    /* the encoder from both weight formats */
    il_bert *m = il_bert_load(BERT_DIR);
    check_bert(m, &g, "model.safetensors");
    il_bert *mb = il_bert_load_files(BERT_DIR "/config.json", BERT_DIR "/pytorch_model.bin");
    check_bert(mb, &g, "pytorch_model.bin");
    il_bert_free(mb);

    /* the sentence-transformers directory, then the same with only pytorch_model.bin */
    il_embedder *e = il_embedder_load(BERT_DIR);
    check_embedder(e, &g, "model.safetensors");
    const char *only_bin[] = {"model.safetensors", NULL};
    char *bin_dir = golden_copy(only_bin);
    il_embedder *eb = bin_dir ? il_embedder_load(bin_dir) : NULL;
    check_embedder(eb, &g, "pytorch_model.bin");
    il_embedder_free(eb);
    drop_dir(bin_dir);

    if (e && m) {
        test_b12(e, m);
        test_pooling_modes(m);
        test_errors(e);
    }
    test_sbert_options(&g);
    test_t5();
    il_embedder_free(e);
    il_bert_free(m);
    goldens_free(&g);
    TEST_END();
}
