/* test_library.c - LoRA libraries and their centroid index: opening (directory and
 * manifest), validation errors, centroids against a direct recomputation, cache reuse and
 * invalidation, supplied centroids, retrieval sanity, BM25 documents, lazy adapter loading.
 * Uses examples/library (copied to a temporary directory before anything is modified) and
 * the tiny embedder tests/golden/bert-tiny. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "library.h"
#include "t5.h"

#define EXAMPLES TEST_DATA "/../examples/library"
#define BERT TEST_DATA "/golden/bert-tiny"

static char tmp_root[256];

/* ---- file helpers ---- */

static char *path2(const char *a, const char *b) { return il_path_join(a, b); }

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    return fclose(f) || rc ? -1 : 0;
}

static int append_text(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    if (!f) return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) || rc ? -1 : 0;
}

static int copy_file(const char *from, const char *to) {
    size_t len;
    char *data = il_read_file(from, &len);
    if (!data) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    free(data);
    return rc;
}

/* Copy the regular files of a directory (not recursive). */
static int copy_dir_files(const char *from, const char *to) {
    if (mkdir(to, 0755) && !il_dir_exists(to)) return -1;
    DIR *d = opendir(from);
    if (!d) return -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) && rc == 0) {
        if (de->d_name[0] == '.') continue;
        char *a = path2(from, de->d_name), *b = path2(to, de->d_name);
        struct stat st;
        if (stat(a, &st) == 0 && S_ISREG(st.st_mode)) rc = copy_file(a, b);
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

/* A copy of examples/library at <tmp>/<name>. Returns the malloc'd path. */
static char *copy_library(const char *name) {
    char *dst = path2(tmp_root, name);
    CHECK(mkdir(dst, 0755) == 0);
    for (int k = 0; k < 6; k++) {
        char sub[16];
        snprintf(sub, sizeof sub, "lora_%d", k);
        char *a = path2(EXAMPLES, sub), *b = path2(dst, sub);
        CHECK(copy_dir_files(a, b) == 0);
        free(a);
        free(b);
    }
    return dst;
}

/* ---- log capture ---- */

typedef struct {
    int notes, warnings;
    char last[1024];
} log_rec;

static void rec_log(void *user, bool warning, const char *msg) {
    log_rec *r = user;
    if (warning) r->warnings++;
    else r->notes++;
    snprintf(r->last, sizeof r->last, "%s", msg);
}

static bool err_has(const char *s) {
    bool ok = strstr(il_errmsg(), s) != NULL;
    if (!ok) fprintf(stderr, "  error message lacks '%s': %s\n", s, il_errmsg());
    return ok;
}

/* ---- reference centroid ---- */

/* Mean of the embedder's vectors of the texts, computed one text at a time. */
static void direct_centroid(il_embedder *e, int n, const char *const *texts, float *out) {
    const int dim = il_embedder_dim(e);
    double *sum = calloc((size_t)dim, sizeof *sum);
    float *v = malloc((size_t)dim * sizeof *v);
    for (int i = 0; i < n; i++) {
        CHECK(il_embedder_embed(e, 1, &texts[i], v) == 0);
        for (int j = 0; j < dim; j++) sum[j] += v[j];
    }
    for (int j = 0; j < dim; j++) out[j] = (float)(sum[j] / n);
    free(sum);
    free(v);
}

static void check_centroids(const il_library *lib, il_embedder *e, const il_library_index *x,
                            const char *what) {
    const int dim = il_embedder_dim(e);
    float *ref = malloc((size_t)dim * sizeof *ref);
    for (int i = 0; i < il_library_size(lib); i++) {
        direct_centroid(e, il_library_n_examples(lib, i), il_library_texts(lib, i), ref);
        char label[128];
        snprintf(label, sizeof label, "%s: centroid of %s", what, il_library_name(lib, i));
        CHECK_ARRAY_NEAR(x->centroids + (size_t)i * dim, ref, (size_t)dim, 1e-6, label);
    }
    free(ref);
}

/* ---- tests ---- */

static void test_hash(void) {
    CHECK(il_xxh64("", 0, 0) == 0xef46db3751d8e999ULL);
    CHECK(il_xxh64("a", 1, 0) == 0xd24ec4f1a98c6e5bULL);
    CHECK(il_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
    CHECK(il_xxh64("abcdefghijklmnopqrstuvwxyz12345", 31, 0) == 0x467605901b01d6f6ULL);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK(il_xxh64(fox, strlen(fox), 0) == 0x0b242d361fda71bcULL);
    char hex[17];
    uint64_t back = 0;
    il_fingerprint_hex(0x0123456789abcdefULL, hex);
    CHECK_STR(hex, "0123456789abcdef");
    CHECK(il_fingerprint_parse(hex, &back) == 0 && back == 0x0123456789abcdefULL);
    CHECK(il_fingerprint_parse("0123", &back) == -1);
    CHECK(il_fingerprint_parse("0123456789abcdefg", &back) == -1);
    CHECK(il_fingerprint_parse("0123456789abcdeg", &back) == -1);
}

static void test_open_examples(void) {
    il_library *lib = il_library_open(EXAMPLES, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK_MSG(lib != NULL, "%s", il_errmsg());
    if (!lib) return;
    CHECK_EQ_INT(il_library_size(lib), 6);
    CHECK(!il_library_is_manifest(lib));
    for (int i = 0; i < 6; i++) {
        char want[16];
        snprintf(want, sizeof want, "lora_%d", i);
        CHECK_STR(il_library_name(lib, i), want);
        CHECK(il_library_n_examples(lib, i) >= 10 && il_library_n_examples(lib, i) <= 20);
        CHECK_EQ_INT(il_library_n_examples(lib, i), il_library_n_examples_total(lib, i));
        CHECK(strstr(il_library_data_path(lib, i), "train.jsonl") != NULL);
    }
    CHECK_EQ_INT(il_library_find(lib, "lora_3"), 3);
    CHECK_EQ_INT(il_library_find(lib, "nope"), -1);
    CHECK_STR(il_library_texts(lib, 0)[0], "not ( False ) or ( False ) is True");
    char *ip = il_library_default_index_path(lib);
    CHECK(ip && strstr(ip, "examples/library/.ilora-index.json"));
    free(ip);
    /* BM25 documents: the kept texts joined by newlines; a word-sorting query finds lora_3. */
    CHECK(strncmp(il_library_bm25_doc(lib, 3), il_library_texts(lib, 3)[0],
                  strlen(il_library_texts(lib, 3)[0])) == 0);
    il_bm25 *bm = il_library_bm25(lib);
    CHECK(bm != NULL);
    if (bm) {
        float s[6];
        int top;
        CHECK(il_bm25_scores(bm, "Sort the following words alphabetically: List: apple kiwi", s) == 0);
        CHECK(il_top_n(s, 6, 1, &top) == 0);
        CHECK_EQ_INT(top, 3);
        il_bm25_free(bm);
    }
    /* The cap: 5 examples kept, all still counted and validated. */
    il_library *small = il_library_open(EXAMPLES, 5);
    CHECK(small != NULL);
    if (small) {
        CHECK_EQ_INT(il_library_n_examples(small, 2), 5);
        CHECK_EQ_INT(il_library_n_examples_total(small, 2), il_library_n_examples(lib, 2));
        CHECK_EQ_INT(il_library_max_examples(small), 5);
        il_library_free(small);
    }
    CHECK(il_library_open(EXAMPLES, -1) == NULL);
    /* Lazy adapter loading: validated against the tiny T5 base. */
    il_t5_config base;
    CHECK(il_t5_config_load(&base, TEST_DATA "/golden/t5-tiny/config.json") == 0);
    for (int i = 0; i < 6; i++) {
        il_lora *a = il_library_load_adapter(lib, i, &base, NULL);
        CHECK_MSG(a != NULL, "%s", il_errmsg());
        if (a) CHECK(il_lora_n_modules(a) > 0);
        il_lora_free(a);
    }
    CHECK(il_library_load_adapter(lib, 6, &base, NULL) == NULL);
    il_library_free(lib);
}

static void test_embedder_fingerprint(uint64_t efp) {
    /* Location-independent, sensitive to the files the loader reads, blind to others. */
    char *copy = path2(tmp_root, "bert-copy");
    char *pool_from = path2(BERT, "1_Pooling"), *pool_to = path2(copy, "1_Pooling");
    CHECK(mkdir(copy, 0755) == 0);
    static const char *const files[] = {"modules.json", "config.json",
        "sentence_bert_config.json", "tokenizer_config.json", "special_tokens_map.json",
        "vocab.txt", "model.safetensors", "pytorch_model.bin"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char *a = path2(BERT, files[k]), *b = path2(copy, files[k]);
        CHECK(copy_file(a, b) == 0);
        free(a);
        free(b);
    }
    CHECK(copy_dir_files(pool_from, pool_to) == 0);
    uint64_t fp2 = 0, fp3 = 0, fp4 = 0;
    CHECK(il_library_embedder_fingerprint(copy, &fp2) == 0);
    CHECK(fp2 == efp);
    char *readme = path2(copy, "README.md");
    CHECK(write_text(readme, "not read by the loader\n") == 0);
    CHECK(il_library_embedder_fingerprint(copy, &fp3) == 0);
    CHECK(fp3 == efp);
    char *pcfg = path2(pool_to, "config.json");
    CHECK(append_text(pcfg, "\n") == 0);
    CHECK(il_library_embedder_fingerprint(copy, &fp4) == 0);
    CHECK(fp4 != efp);
    uint64_t none;
    CHECK(il_library_embedder_fingerprint(tmp_root, &none) == -1); /* no model files */
    CHECK(il_library_embedder_fingerprint("/nonexistent-embedder", &none) == -1);
    free(pcfg);
    free(readme);
    free(pool_from);
    free(pool_to);
    free(copy);
}

static void test_index(il_embedder *e, uint64_t efp) {
    char *dir = copy_library("lib");
    il_library *lib = il_library_open(dir, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK_MSG(lib != NULL, "%s", il_errmsg());
    if (!lib) { free(dir); return; }
    const int dim = il_embedder_dim(e);
    log_rec rec = {0};
    il_index_opts o = {.log = rec_log, .user = &rec};
    il_library_index x;

    /* 1. First build: everything computed, written to the default path. */
    CHECK_MSG(il_library_index_build(lib, e, efp, &o, &x) == 0, "%s", il_errmsg());
    CHECK_EQ_INT(x.m, 6);
    CHECK_EQ_INT(x.dim, dim);
    CHECK_EQ_INT(x.n_recomputed, 6);
    CHECK_EQ_INT(x.n_reused, 0);
    CHECK_EQ_INT(x.max_examples, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK(x.written && !x.supplied);
    char *def = path2(dir, ".ilora-index.json");
    CHECK_STR(x.path, def);
    CHECK(il_file_exists(def));
    CHECK_EQ_INT(x.n_examples[3], il_library_n_examples(lib, 3));
    check_centroids(lib, e, &x, "first build");
    float *first = malloc((size_t)6 * dim * sizeof *first);
    memcpy(first, x.centroids, (size_t)6 * dim * sizeof *first);
    size_t len;
    char *json = il_read_file(def, &len);
    CHECK(json && strstr(json, "\"version\": 1") && strstr(json, "\"max_examples\": 100") &&
          strstr(json, "\"kind\": \"bert\"") && strstr(json, "\"name\": \"lora_5\""));
    free(json);
    il_library_index_free(&x);

    /* 2. Second build: everything reused, bit-identical, file untouched. */
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_reused, 6);
    CHECK_EQ_INT(x.n_recomputed, 0);
    CHECK(!x.written);
    CHECK(memcmp(x.centroids, first, (size_t)6 * dim * sizeof *first) == 0);
    il_library_index_free(&x);

    /* 3. Touch one train.jsonl: exactly that adapter is recomputed. */
    char *data2 = path2(dir, "lora_2/train.jsonl");
    CHECK(append_text(data2, "{\"input\": \"Today is 01/01/2001. What is the date tomorrow in "
                             "MM/DD/YYYY?\", \"output\": \"01/02/2001\"}\n") == 0);
    il_library_free(lib);
    lib = il_library_open(dir, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK(lib != NULL);
    if (!lib) goto done;
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 1);
    CHECK_EQ_INT(x.n_reused, 5);
    CHECK(x.written);
    check_centroids(lib, e, &x, "after touching lora_2");
    CHECK(memcmp(x.centroids, first, (size_t)2 * dim * sizeof *first) == 0);
    CHECK(memcmp(x.centroids + (size_t)2 * dim, first + (size_t)2 * dim, (size_t)dim * sizeof *first) != 0);
    il_library_index_free(&x);

    /* 4. Touch an adapter's config (not its data): that adapter only. */
    char *cfg4 = path2(dir, "lora_4/adapter_config.json");
    CHECK(append_text(cfg4, "\n") == 0);
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 1);
    CHECK_EQ_INT(x.n_reused, 5);
    il_library_index_free(&x);

    /* 5. Another embedder fingerprint: all recomputed (with a note), then all reused. */
    rec.notes = 0;
    CHECK(il_library_index_build(lib, e, efp ^ 1, &o, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 6);
    CHECK(rec.notes == 1 && strstr(rec.last, "embedder changed"));
    il_library_index_free(&x);
    CHECK(il_library_index_build(lib, e, efp ^ 1, &o, &x) == 0);
    CHECK_EQ_INT(x.n_reused, 6);
    il_library_index_free(&x);
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 6);
    il_library_index_free(&x);

    /* 6. --rebuild recomputes everything. */
    il_index_opts ro = o;
    ro.rebuild = true;
    CHECK(il_library_index_build(lib, e, efp, &ro, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 6);
    il_library_index_free(&x);

    /* 7. Another max_examples: all recomputed, centroids over the first 4 texts. */
    il_library *lib4 = il_library_open(dir, 4);
    CHECK(lib4 != NULL);
    if (lib4) {
        CHECK(il_library_index_build(lib4, e, efp, &o, &x) == 0);
        CHECK_EQ_INT(x.n_recomputed, 6);
        CHECK_EQ_INT(x.max_examples, 4);
        CHECK_EQ_INT(x.n_examples[0], 4);
        check_centroids(lib4, e, &x, "max_examples 4");
        il_library_index_free(&x);
        il_library_free(lib4);
    }
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0); /* back to 100: all again */
    CHECK_EQ_INT(x.n_recomputed, 6);
    il_library_index_free(&x);

    /* 8. A new adapter: only it is embedded. */
    char *a3 = path2(dir, "lora_3"), *a6 = path2(dir, "lora_6");
    CHECK(copy_dir_files(a3, a6) == 0);
    char *d6 = path2(a6, "train.jsonl");
    CHECK(write_text(d6, "{\"input\": \"Sort the following words alphabetically: List: pear "
                         "fig\", \"output\": \"fig pear\"}\n") == 0);
    il_library *lib7 = il_library_open(dir, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK(lib7 && il_library_size(lib7) == 7);
    if (lib7) {
        CHECK(il_library_index_build(lib7, e, efp, &o, &x) == 0);
        CHECK_EQ_INT(x.n_recomputed, 1);
        CHECK_EQ_INT(x.n_reused, 6);
        check_centroids(lib7, e, &x, "added lora_6");
        il_library_index_free(&x);
        /* The old library's cache now has an extra entry; it still reuses its six. */
        il_library_free(lib7);
    }
    il_remove_tree(a6);
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_reused, 6);
    CHECK(x.written); /* lora_6 dropped from the file */
    il_library_index_free(&x);

    /* 9. A damaged cache is not an error: warning, everything recomputed. */
    CHECK(write_text(def, "{\"version\": 1, \"adapters\": [") == 0);
    rec.warnings = 0;
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    CHECK_EQ_INT(x.n_recomputed, 6);
    CHECK_EQ_INT(rec.warnings, 1);
    il_library_index_free(&x);

    /* 10. An explicit index path, no_write, and an unwritable path. */
    char *alt = path2(tmp_root, "alt-index.json");
    il_index_opts ao = o;
    ao.index_path = alt;
    CHECK(il_library_index_build(lib, e, efp, &ao, &x) == 0);
    CHECK_STR(x.path, alt);
    CHECK(il_file_exists(alt));
    il_library_index_free(&x);
    ao.no_write = true;
    ao.index_path = "/nonexistent-dir/index.json";
    CHECK(il_library_index_build(lib, e, efp, &ao, &x) == 0);
    CHECK(!x.written && !il_file_exists("/nonexistent-dir/index.json"));
    il_library_index_free(&x);
    ao.no_write = false;
    CHECK(il_library_index_build(lib, e, efp, &ao, &x) == -1);
    CHECK(err_has("/nonexistent-dir/index.json"));
    CHECK(x.centroids == NULL && x.path == NULL);
    ao.write_optional = true;
    rec.warnings = 0;
    CHECK(il_library_index_build(lib, e, efp, &ao, &x) == 0);
    CHECK_EQ_INT(rec.warnings, 1);
    CHECK(!x.written);
    il_library_index_free(&x);

    /* 11. Supplied centroids: names and dims checked, fingerprint reported only. */
    CHECK(il_library_index_load(lib, alt, dim, efp, &x) == 0);
    CHECK(x.supplied && x.fingerprint_matches);
    CHECK_EQ_INT(x.n_reused + x.n_recomputed, 0);
    check_centroids(lib, e, &x, "supplied");
    il_library_index_free(&x);
    CHECK(il_library_index_load(lib, alt, dim, efp ^ 1, &x) == 0);
    CHECK(!x.fingerprint_matches);
    il_library_index_free(&x);
    CHECK(il_library_index_load(lib, alt, dim + 1, efp, &x) == -1);
    CHECK(err_has("alt-index.json") && err_has("dim"));
    /* A minimal hand-made file in another order, without fingerprints. */
    char *hand = path2(tmp_root, "hand.json");
    il_buf b = {0};
    il_buf_puts(&b, "{\"adapters\": [");
    for (int i = 5; i >= 0; i--) {
        il_buf_printf(&b, "%s{\"name\": \"lora_%d\", \"centroid\": [", i == 5 ? "" : ", ", i);
        for (int j = 0; j < dim; j++) il_buf_printf(&b, j ? ", %d" : "%d", i * 100 + j);
        il_buf_puts(&b, "]}");
    }
    il_buf_puts(&b, "]}");
    CHECK(write_text(hand, b.data) == 0);
    CHECK(il_library_index_load(lib, hand, dim, efp, &x) == 0);
    CHECK(!x.fingerprint_matches && x.max_examples == -1);
    if (x.centroids) {
        CHECK(x.centroids[(size_t)2 * dim + 1] == 201.0f);
        CHECK(x.centroids[(size_t)5 * dim] == 500.0f);
    }
    il_library_index_free(&x);
    /* ... missing an adapter, an unknown one, a short centroid, not JSON. */
    char *cut = strstr(b.data, ", {\"name\": \"lora_0\"");
    if (cut) strcpy(cut, "]}");
    CHECK(write_text(hand, b.data) == 0);
    CHECK(il_library_index_load(lib, hand, dim, efp, &x) == -1);
    CHECK(err_has("hand.json") && err_has("lora_0"));
    CHECK(write_text(hand, "{\"adapters\": [{\"name\": \"zzz\", \"centroid\": [1]}]}") == 0);
    CHECK(il_library_index_load(lib, hand, dim, efp, &x) == -1);
    CHECK(err_has("hand.json") && err_has("'zzz' is not in the library"));
    CHECK(write_text(hand, "{\"adapters\": [{\"name\": \"lora_1\", \"centroid\": [1, 2]}]}") == 0);
    CHECK(il_library_index_load(lib, hand, dim, efp, &x) == -1);
    CHECK(err_has("hand.json") && err_has("lora_1") && err_has("2 values"));
    CHECK(write_text(hand, "[1, 2") == 0);
    CHECK(il_library_index_load(lib, hand, dim, efp, &x) == -1);
    CHECK(err_has("hand.json"));
    CHECK(il_library_index_load(lib, "/nonexistent-index.json", dim, efp, &x) == -1);
    CHECK(err_has("/nonexistent-index.json"));
    il_buf_free(&b);
    free(hand);
    free(alt);
    free(d6);
    free(a3);
    free(a6);
    free(cfg4);
done:
    free(data2);
    free(first);
    free(def);
    il_library_free(lib);
    free(dir);
}

/* Top-1 by cosine of a query among the centroids. */
static int top1(il_embedder *e, const il_library_index *x, const char *query) {
    float *q = malloc((size_t)x->dim * sizeof *q), *s = malloc((size_t)x->m * sizeof *s);
    int best = -1;
    if (il_embedder_embed(e, 1, &query, q) == 0) {
        il_vector_scores(IL_SIM_COSINE, q, x->centroids, x->m, x->dim, s);
        if (il_top_n(s, x->m, 1, &best)) best = -1;
    }
    free(q);
    free(s);
    return best;
}

static void test_retrieval(il_embedder *e, uint64_t efp) {
    il_library *lib = il_library_open(EXAMPLES, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK(lib != NULL);
    if (!lib) return;
    il_index_opts o = {.no_write = true}; /* never write into the repository */
    il_library_index x;
    CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
    /* A query that is one of lora_3's training texts (and one of its inputs alone). */
    CHECK_EQ_INT(top1(e, &x, il_library_texts(lib, 3)[2]), 3);
    CHECK_EQ_INT(top1(e, &x, "Sort the following words alphabetically: List: apple zebra kiwi"), 3);
    int hits = 0, total = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < il_library_n_examples(lib, i); j++, total++)
            hits += top1(e, &x, il_library_texts(lib, i)[j]) == i;
    printf("retrieval: %d of %d training texts retrieve their own adapter (tiny random "
           "embedder)\n", hits, total);
    il_library_index_free(&x);
    il_library_free(lib);

    /* A library of 1-example adapters: a query identical to a training text has cosine 1
     * with its adapter's centroid, so top-1 is exact whatever the embedder. */
    char *dir = path2(tmp_root, "one");
    CHECK(mkdir(dir, 0755) == 0);
    const char *texts[3][2] = {{"True and not False is", "True"},
                               {"Is the following sentence plausible? \"A scored.\"", "yes"},
                               {"((1 + 2) * 3) =", "9"}};
    for (int k = 0; k < 3; k++) {
        char sub[16];
        snprintf(sub, sizeof sub, "one_%d", k);
        char *from = path2(EXAMPLES, "lora_0"), *to = path2(dir, sub);
        CHECK(copy_dir_files(from, to) == 0);
        char *data = path2(to, "train.jsonl");
        char line[256];
        snprintf(line, sizeof line, "{\"input\": \"%s\", \"output\": \"%s\"}\n", k == 1 ?
                 "Is the following sentence plausible? \\\"A scored.\\\"" : texts[k][0],
                 texts[k][1]);
        CHECK(write_text(data, line) == 0);
        free(data);
        free(from);
        free(to);
    }
    lib = il_library_open(dir, 0);
    CHECK_MSG(lib != NULL, "%s", il_errmsg());
    if (lib) {
        CHECK(il_library_index_build(lib, e, efp, &o, &x) == 0);
        for (int k = 0; k < 3; k++) {
            char q[256];
            snprintf(q, sizeof q, "%s %s", texts[k][0], texts[k][1]);
            CHECK_STR(il_library_texts(lib, k)[0], q);
            CHECK_EQ_INT(top1(e, &x, q), k);
        }
        il_library_index_free(&x);
        il_library_free(lib);
    }
    free(dir);
}

/* Expect il_library_open(path) to fail with an error mentioning a and b. */
static void expect_bad(const char *path, const char *a, const char *b) {
    il_library *lib = il_library_open(path, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    CHECK_MSG(lib == NULL, "opening %s should fail", path);
    il_library_free(lib);
    if (!lib) {
        CHECK(err_has(a));
        if (b) CHECK(err_has(b));
    }
}

static void test_bad_libraries(void) {
    char *dir = copy_library("bad");
    char *d1 = path2(dir, "lora_1/train.jsonl"), *keep = path2(tmp_root, "keep.jsonl");
    CHECK(copy_file(d1, keep) == 0);

    unlink(d1); /* missing */
    expect_bad(dir, "lora_1", "lora_1/train.jsonl");
    CHECK(write_text(d1, "") == 0); /* empty */
    expect_bad(dir, "lora_1/train.jsonl", "no examples");
    CHECK(write_text(d1, "\n  \n") == 0); /* blank lines only */
    expect_bad(dir, "lora_1/train.jsonl", "no examples");
    CHECK(write_text(d1, "{\"input\": \"a\", \"output\": \"b\"}\n\n{\"input\": \"a\", \"output\"\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:3", "malformed JSON");
    CHECK(write_text(d1, "{\"input\": \"a\", \"output\": \"b\"} trailing\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:1", "malformed");
    CHECK(write_text(d1, "{\"input\": \"a\", \"output\": \"b\"}\n{\"input\": \"a\"}\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:2", "missing field 'output'");
    CHECK(write_text(d1, "{\"input\": 3, \"output\": \"b\"}\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:1", "field 'input': expected a string");
    CHECK(write_text(d1, "[\"input\"]\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:1", "not a JSON object");
    CHECK(write_text(d1, "{\"input\": \"caf\351\", \"output\": \"b\"}\n") == 0);
    expect_bad(dir, "lora_1/train.jsonl:1", "invalid UTF-8");
    /* LoraHub-style aliases are accepted. */
    CHECK(write_text(d1, "{\"inputs\": \"a\", \"targets\": \"b\"}\n") == 0);
    il_library *ok = il_library_open(dir, 100);
    CHECK_MSG(ok != NULL, "%s", il_errmsg());
    if (ok) CHECK_STR(il_library_texts(ok, 1)[0], "a b");
    il_library_free(ok);
    CHECK(copy_file(keep, d1) == 0);

    /* Adapter directory without adapter_config.json / without weights. */
    char *cfg = path2(dir, "lora_4/adapter_config.json"), *cfgk = path2(tmp_root, "cfg.json");
    CHECK(copy_file(cfg, cfgk) == 0);
    unlink(cfg);
    expect_bad(dir, "lora_4", "adapter_config.json");
    CHECK(copy_file(cfgk, cfg) == 0);
    char *w = path2(dir, "lora_4/adapter_model.bin"), *wk = path2(tmp_root, "w.bin");
    CHECK(copy_file(w, wk) == 0);
    unlink(w);
    expect_bad(dir, "lora_4", "adapter_model");
    CHECK(copy_file(wk, w) == 0);
    /* A stray file in the library directory is ignored; an empty directory is an error. */
    char *stray = path2(dir, "README.md");
    CHECK(write_text(stray, "notes\n") == 0);
    il_library *lib = il_library_open(dir, 100);
    CHECK(lib && il_library_size(lib) == 6);
    il_library_free(lib);
    char *empty = path2(tmp_root, "empty-lib");
    CHECK(mkdir(empty, 0755) == 0);
    expect_bad(empty, "empty-lib", "no adapter");
    expect_bad("/nonexistent-library", "/nonexistent-library", "not found");

    /* Manifests. */
    char *man = path2(tmp_root, "library.json");
    CHECK(write_text(man, "{\"adapters\": ["
                          "{\"name\": \"sorting\", \"adapter\": \"bad/lora_3\", \"data\": \"bad/lora_3/train.jsonl\"},"
                          "{\"adapter\": \"bad/lora_0\", \"data\": \"bad/lora_0/train.jsonl\"}]}") == 0);
    lib = il_library_open(man, 100);
    CHECK_MSG(lib != NULL, "%s", il_errmsg());
    if (lib) {
        CHECK(il_library_is_manifest(lib));
        CHECK_EQ_INT(il_library_size(lib), 2);
        CHECK_STR(il_library_name(lib, 0), "sorting");
        CHECK_STR(il_library_name(lib, 1), "lora_0"); /* default: the directory's name */
        CHECK(strstr(il_library_adapter_dir(lib, 0), "bad/lora_3") != NULL);
        char *ip = il_library_default_index_path(lib);
        char *want = path2(tmp_root, ".library.ilora-index.json");
        CHECK_STR(ip, want);
        free(ip);
        free(want);
        il_library_free(lib);
    }
    CHECK(write_text(man, "{\"adapters\": ["
                          "{\"name\": \"x\", \"adapter\": \"bad/lora_3\", \"data\": \"bad/lora_3/train.jsonl\"},"
                          "{\"name\": \"x\", \"adapter\": \"bad/lora_0\", \"data\": \"bad/lora_0/train.jsonl\"}]}") == 0);
    expect_bad(man, "library.json", "duplicate adapter name 'x'");
    CHECK(write_text(man, "{\"adapters\": [{\"name\": \"x\", \"adapter\": \"bad/lora_9\", \"data\": \"bad/lora_0/train.jsonl\"}]}") == 0);
    expect_bad(man, "adapter 'x'", "bad/lora_9");
    CHECK(write_text(man, "{\"adapters\": [{\"name\": \"x\", \"adapter\": \"bad/lora_0\", \"data\": \"bad/nothere.jsonl\"}]}") == 0);
    expect_bad(man, "adapter 'x'", "bad/nothere.jsonl");
    CHECK(write_text(man, "{\"adapters\": [{\"name\": \"x\", \"adapter\": \"bad/lora_0\"}]}") == 0);
    expect_bad(man, "library.json", "field 'data'");
    CHECK(write_text(man, "{\"adapters\": []}") == 0);
    expect_bad(man, "library.json", "empty");
    CHECK(write_text(man, "{\"adapters\": [") == 0);
    expect_bad(man, "library.json", "malformed JSON");
    CHECK(write_text(man, "{\"adapter\": []}") == 0);
    expect_bad(man, "library.json", "adapters");
    /* A directory holding only a manifest points the user to it. */
    char *mdir = path2(tmp_root, "mdir"), *mfile = path2(mdir, "library.json");
    CHECK(mkdir(mdir, 0755) == 0);
    CHECK(write_text(mfile, "{}") == 0);
    expect_bad(mdir, "mdir", "library.json");
    free(mdir);
    free(mfile);
    free(man);
    free(empty);
    free(stray);
    free(w);
    free(wk);
    free(cfg);
    free(cfgk);
    free(keep);
    free(d1);
    free(dir);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "%s/ilora-library-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_hash();
    test_open_examples();
    uint64_t efp = 0;
    CHECK_MSG(il_library_embedder_fingerprint(BERT, &efp) == 0, "%s", il_errmsg());
    il_embedder *e = il_embedder_load(BERT);
    CHECK_MSG(e != NULL, "%s", il_errmsg());
    if (e) {
        test_embedder_fingerprint(efp);
        test_index(e, efp);
        test_retrieval(e, efp);
    }
    test_bad_libraries();
    il_embedder_free(e);
    il_remove_tree(tmp_root);
    TEST_END();
}
