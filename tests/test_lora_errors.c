/* test_lora_errors.c - loading PEFT adapter directories: config drift across PEFT versions
 * (B21), key naming and broken saves (B22), rank checks (B23), and every kind of bad
 * adapter: each gives an error naming the adapter and the module or field, never a crash
 * or a silent no-op. Adapters are written to a temporary directory by the test. */
#include "check.h"
#include "lora.h"
#include "t5_merge.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];
static il_t5_config tiny;

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub); }

/* ===== writing adapters ===== */

static float fill_value = 0.01f;

typedef struct {
    const char *key;
    int64_t d0, d1; /* d1 < 0: 1-D */
    il_dtype dtype;
} tspec;

static char *adapter_dir(const char *name) {
    char *d = il_path_join(root, name);
    mkdir(d, 0755);
    return d;
}

static void write_text(const char *dir, const char *file, const char *text) {
    char *p = il_path_join(dir, file);
    if (il_write_file_atomic(p, text, strlen(text))) fprintf(stderr, "%s\n", il_errmsg());
    free(p);
}

/* adapter_config.json = {"peft_type":"LORA","r":4,"lora_alpha":8,<rest>} */
static void write_cfg(const char *dir, const char *rest) {
    char *text = il_sprintf("{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,%s}", rest);
    write_text(dir, "adapter_config.json", text);
    free(text);
}

static void write_tensors(const char *dir, const char *file, const tspec *s, int n) {
    il_tensor t[64];
    void *bufs[64];
    for (int i = 0; i < n; i++) {
        il_dtype dt = s[i].dtype;
        size_t cnt = (size_t)(s[i].d0 * (s[i].d1 < 0 ? 1 : s[i].d1));
        size_t es = il_dtype_size(dt);
        uint8_t *p = calloc(cnt ? cnt : 1, es);
        for (size_t k = 0; k < cnt; k++) {
            float v = fill_value * (float)((k % 7) + 1);
            if (dt == IL_F32) memcpy(p + k * es, &v, 4);
            else if (dt == IL_BF16) { uint16_t h = il_f32_to_bf16(v); memcpy(p + k * es, &h, 2); }
        }
        bufs[i] = p;
        t[i] = (il_tensor){.name = (char *)s[i].key, .dtype = dt, .ndim = s[i].d1 < 0 ? 1 : 2,
                           .shape = {s[i].d0, s[i].d1 < 0 ? 0 : s[i].d1}, .data = p,
                           .nbytes = cnt * es};
    }
    char *p = il_path_join(dir, file);
    if (il_safetensors_write(p, t, n, NULL, NULL, 0)) fprintf(stderr, "%s\n", il_errmsg());
    free(p);
    for (int i = 0; i < n; i++) free(bufs[i]);
}

/* The q and v modules of t5-tiny (12), rank r, PEFT saved key names. */
static int qv_specs(tspec *s, char names[][128], int r, const char *prefix, const char *adapter_seg) {
    int n = 0, n_ids = il_t5_linear_ids(&tiny, NULL, 0);
    il_t5_linear_id ids[64];
    il_t5_linear_ids(&tiny, ids, 64);
    for (int k = 0; k < n_ids; k++) {
        char mod[96];
        il_t5_linear_name(&ids[k], mod, sizeof mod);
        size_t l = strlen(mod);
        if (strcmp(mod + l - 2, ".q") != 0 && strcmp(mod + l - 2, ".v") != 0) continue;
        for (int ab = 0; ab < 2; ab++) {
            snprintf(names[n], 128, "%s%s.lora_%c%s.weight", prefix, mod, ab ? 'B' : 'A', adapter_seg);
            s[n] = (tspec){names[n], ab ? ids[k].out : r, ab ? r : ids[k].in, IL_F32};
            n++;
        }
    }
    return n;
}

static const char *const QV_CFG = "\"peft_type\":\"LORA\",\"task_type\":\"SEQ_2_SEQ_LM\","
                                  "\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q\",\"v\"]";

/* A full q/v adapter with config {QV_CFG, extra}. */
static char *qv_adapter(const char *name, const char *extra) {
    char *dir = adapter_dir(name);
    char *cfg = il_sprintf("{%s%s%s}", QV_CFG, extra && *extra ? "," : "", extra ? extra : "");
    write_text(dir, "adapter_config.json", cfg);
    free(cfg);
    tspec s[64];
    char names[64][128];
    int n = qv_specs(s, names, 4, "base_model.model.", "");
    write_tensors(dir, "adapter_model.safetensors", s, n);
    return dir;
}

/* ===== loading with captured messages ===== */

static il_buf logbuf;
static void capture(void *user, const char *msg) {
    (void)user;
    il_buf_printf(&logbuf, "%s\n", msg);
}

static il_lora *load(const char *dir, bool verbose) {
    il_buf_free(&logbuf);
    il_lora_load_opts o = {verbose, capture, NULL};
    return il_lora_load(dir, &tiny, &o);
}

/* Loading dir fails with a message containing the directory and every needle. */
#define EXPECT_ERR(dir, ...) do { \
    il_lora *a_ = load(dir, false); \
    CHECK_MSG(a_ == NULL, "%s loaded although it is bad", dir); \
    il_lora_free(a_); \
    const char *needles_[] = {__VA_ARGS__, NULL}; \
    bool ok_ = contains(il_errmsg(), dir); \
    for (int i_ = 0; needles_[i_]; i_++) ok_ = ok_ && contains(il_errmsg(), needles_[i_]); \
    CHECK_MSG(ok_, "error for %s lacks expected words: %s", dir, il_errmsg()); \
    printf("  %s -> %s\n", strrchr(dir, '/') + 1, il_errmsg()); \
} while (0)

/* ===== B21: config drift ===== */

static void test_b21(void) {
    char *d = qv_adapter("b21", "\"eva_config\":null,\"lora_bias\":false,\"merge_weights\":false,"
                                "\"fan_in_fan_out\":true,\"exclude_modules\":null,\"use_dora\":false,"
                                "\"layer_replication\":null,\"enable_lora\":null");
    il_lora *a = load(d, true);
    CHECK_MSG(a != NULL, "B21: %s", il_errmsg());
    CHECK_MSG(contains(logbuf.data, "fan_in_fan_out") && contains(logbuf.data, "eva_config") &&
              contains(logbuf.data, "lora_bias") && contains(logbuf.data, "merge_weights"),
              "B21 log: %s", logbuf.data ? logbuf.data : "");
    il_lora_free(a);
    a = load(d, false); /* not verbose: the warning only */
    CHECK(a && contains(logbuf.data, "warning") == false && contains(logbuf.data, "fan_in_fan_out") &&
          !contains(logbuf.data, "eva_config"));
    if (a) CHECK(il_lora_module_at(a, 0)->scale == 2.0f);
    il_lora_free(a);
    free(d);

    struct { const char *name, *extra, *needle; } bad[] = {
        {"dora", "\"use_dora\":true", "use_dora"},
        {"lora_bias", "\"lora_bias\":true", "lora_bias"},
        {"replication", "\"layer_replication\":[[0,1]]", "layer_replication"},
        {"modules_to_save", "\"modules_to_save\":[\"lm_head\"]", "modules_to_save"},
        {"bias_all", "\"bias\":\"all\"", "bias"},
        {"pissa", "\"init_lora_weights\":\"pissa_niter_4\"", "init_lora_weights"},
        {"not_lora", "\"peft_type\":\"IA3\"", "peft_type"},
        {"r_zero", "\"r\":0", "r = 0"},
        {"alpha_string", "\"lora_alpha\":\"8\"", "lora_alpha"},
        {"regex_lookahead", "\"target_modules\":\"(?=q).*\"", "regular expression"},
        {"fifo_string", "\"fan_in_fan_out\":\"yes\"", "fan_in_fan_out"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* later keys win in cJSON lookups? no: first wins, so put the override first */
        char *dir = adapter_dir(bad[i].name);
        char *cfg = il_sprintf("{%s,%s}", bad[i].extra, QV_CFG);
        write_text(dir, "adapter_config.json", cfg);
        free(cfg);
        tspec s[64];
        char names[64][128];
        write_tensors(dir, "adapter_model.safetensors", s, qv_specs(s, names, 4, "base_model.model.", ""));
        EXPECT_ERR(dir, bad[i].needle);
        free(dir);
    }
    /* an unknown key with a value: loads, with a warning naming it */
    d = qv_adapter("unknown_key", "\"future_feature\":{\"on\":1}");
    a = load(d, false);
    CHECK(a && contains(logbuf.data, "future_feature"));
    il_lora_free(a);
    free(d);
}

/* ===== B22: key names, empty and zero-size saves ===== */

static const char *const E0Q = "encoder.block.0.layer.0.SelfAttention.q";

static char *one_module(const char *name, const char *keyA, const char *keyB, int64_t a0,
                        int64_t a1, int64_t b0, int64_t b1, const char *cfg_extra) {
    char *dir = adapter_dir(name);
    char *cfg = il_sprintf("{%s\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,"
                           "\"target_modules\":[\"%s\"]}", cfg_extra ? cfg_extra : "", E0Q);
    write_text(dir, "adapter_config.json", cfg);
    free(cfg);
    tspec s[2] = {{keyA, a0, a1, IL_F32}, {keyB, b0, b1, IL_F32}};
    write_tensors(dir, "adapter_model.safetensors", s, keyB ? 2 : 1);
    return dir;
}

static void test_b22(void) {
    const char *variants[][2] = {
        {"base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight",
         "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight"},
        {"base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.default.weight",
         "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.default.weight"},
        {"encoder.block.0.layer.0.SelfAttention.q.lora_A.my_task.weight",
         "encoder.block.0.layer.0.SelfAttention.q.lora_B.my_task.weight"},
    };
    il_t5_linear_id q0 = {IL_T5_ENCODER, 0, IL_T5_SELF_Q, 64, 64};
    for (int v = 0; v < 3; v++) {
        char name[32];
        snprintf(name, sizeof name, "b22a_%d", v);
        char *d = one_module(name, variants[v][0], variants[v][1], 4, 64, 64, 4, NULL);
        il_lora *a = load(d, false);
        CHECK_MSG(a != NULL, "B22a variant %d: %s", v, il_errmsg());
        if (a) {
            CHECK_EQ_INT(il_lora_n_modules(a), 1);
            const il_lora_module *m = il_lora_find(a, &q0);
            CHECK(m && m->r == 4 && fabsf(m->A[0] - fill_value) < 1e-9f && fabsf(m->B[1] - 2 * fill_value) < 1e-9f);
        }
        il_lora_free(a);
        free(d);
    }
    char *d = one_module("b22a_mixed", variants[0][0], variants[1][1], 4, 64, 64, 4, NULL);
    EXPECT_ERR(d, "adapter names");
    free(d);

    /* B22b: an empty state dict, as a torch .bin (the 443-byte file) and as safetensors */
    d = adapter_dir("b22b_bin");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"]");
    static const uint8_t pkl[] = {0x80, 0x02, '}', 'q', 0x00, '.'};
    extern void write_empty_torch_zip(const char *path, const uint8_t *pkl, size_t n);
    char *bin = il_path_join(d, "adapter_model.bin");
    write_empty_torch_zip(bin, pkl, sizeof pkl);
    EXPECT_ERR(d, "no LoRA tensors", "adapter_model.bin");
    free(bin);
    free(d);
    d = adapter_dir("b22b_st");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"]");
    write_tensors(d, "adapter_model.safetensors", NULL, 0);
    EXPECT_ERR(d, "no LoRA tensors");
    free(d);

    /* B22c: lora_B of shape [0] */
    d = adapter_dir("b22c");
    write_cfg(d, "\"target_modules\":[\"q\"]");
    tspec s[2] = {{variants[0][0], 4, 64, IL_F32}, {variants[0][1], 0, -1, IL_F32}};
    write_tensors(d, "adapter_model.safetensors", s, 2);
    EXPECT_ERR(d, "zero-size tensor", E0Q);
    free(d);
}

/* ===== B23: ranks ===== */

static void test_b23(void) {
    char *d = adapter_dir("b23");
    write_text(d, "adapter_config.json", "{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"q\",\"v\"]}");
    tspec s[64];
    char names[64][128];
    write_tensors(d, "adapter_model.safetensors", s, qv_specs(s, names, 16, "base_model.model.", ""));
    EXPECT_ERR(d, "rank 16", "r = 8", E0Q);
    free(d);

    /* rank_pattern / alpha_pattern, PEFT's matching: key = suffix regex of the module name */
    d = adapter_dir("rank_pattern");
    write_text(d, "adapter_config.json",
               "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"target_modules\":[\"q\",\"v\"],"
               "\"rank_pattern\":{\"encoder.block.0.layer.0.SelfAttention.q\":16,"
               "\"decoder\\\\.block\\\\.\\\\d+\\\\.layer\\\\.1\\\\.EncDecAttention\\\\.v\":2},"
               "\"alpha_pattern\":{\"q\":32}}");
    int n = qv_specs(s, names, 4, "base_model.model.", "");
    for (int i = 0; i < n; i++) {
        if (strstr(s[i].key, "encoder.block.0.layer.0.SelfAttention.q.")) {
            if (s[i].d0 == 4) s[i].d0 = 16; else s[i].d1 = 16;
        }
        if (strstr(s[i].key, "EncDecAttention.v.")) {
            if (s[i].d0 == 4) s[i].d0 = 2; else s[i].d1 = 2;
        }
    }
    write_tensors(d, "adapter_model.safetensors", s, n);
    il_lora *a = load(d, false);
    CHECK_MSG(a != NULL, "rank_pattern: %s", il_errmsg());
    if (a) {
        il_t5_linear_id id = {IL_T5_ENCODER, 0, IL_T5_SELF_Q, 64, 64};
        const il_lora_module *m = il_lora_find(a, &id);
        CHECK(m && m->r == 16 && m->alpha == 32 && m->scale == 2.0f);
        id.layer = 1;
        m = il_lora_find(a, &id);
        CHECK(m && m->r == 4 && m->scale == 8.0f);
        id.proj = IL_T5_SELF_V;
        m = il_lora_find(a, &id);
        CHECK(m && m->r == 4 && m->scale == 2.0f);
        il_t5_linear_id cv = {IL_T5_DECODER, 1, IL_T5_CROSS_V, 64, 64};
        m = il_lora_find(a, &cv);
        CHECK(m && m->r == 2 && m->scale == 4.0f);
    }
    il_lora_free(a);
    free(d);

    /* rsLoRA: alpha / sqrt(r) */
    d = qv_adapter("rslora", "\"use_rslora\":true");
    a = load(d, false);
    CHECK(a && il_lora_module_at(a, 0)->scale == 4.0f);
    il_lora_free(a);
    free(d);
}

/* ===== structural errors ===== */

static void test_bad_structure(void) {
    const char *A = "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight";
    const char *B = "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight";
    char *d = one_module("a_without_b", A, NULL, 4, 64, 0, 0, NULL);
    EXPECT_ERR(d, E0Q, "lora_A has no matching lora_B");
    free(d);
    d = one_module("in_dim", A, B, 4, 32, 64, 4, NULL);
    EXPECT_ERR(d, E0Q, "[4, 32]", "wrong base model");
    free(d);
    d = one_module("out_dim", A, B, 4, 64, 48, 4, NULL);
    EXPECT_ERR(d, E0Q, "[48, 4]", "wrong base model");
    free(d);
    d = one_module("rank_ab", A, B, 4, 64, 64, 3, NULL);
    EXPECT_ERR(d, E0Q, "rank");
    free(d);
    d = one_module("absent_module", "base_model.model.encoder.block.5.layer.0.SelfAttention.q.lora_A.weight",
                   "base_model.model.encoder.block.5.layer.0.SelfAttention.q.lora_B.weight", 4, 64, 64, 4, NULL);
    EXPECT_ERR(d, "encoder.block.5.layer.0.SelfAttention.q", "does not exist in the base model");
    free(d);
    d = one_module("embedding", "base_model.model.shared.lora_embedding_A", "base_model.model.shared.lora_embedding_B",
                   4, 64, 64, 4, NULL);
    EXPECT_ERR(d, "embeddings");
    free(d);
    d = one_module("dora_vec", A, "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_magnitude_vector",
                   4, 64, 64, -1, NULL);
    EXPECT_ERR(d, "DoRA");
    free(d);
    d = one_module("not_lora", A, "base_model.model.encoder.block.0.layer.0.SelfAttention.q.weight", 4, 64, 64, 64, NULL);
    EXPECT_ERR(d, "not a LoRA tensor");
    free(d);
    d = one_module("three_d", A, B, 4, 64, 64, 4, NULL);
    {   /* 1-D lora_A */
        tspec s[2] = {{A, 256, -1, IL_F32}, {B, 64, 4, IL_F32}};
        write_tensors(d, "adapter_model.safetensors", s, 2);
        EXPECT_ERR(d, E0Q, "2 dimensions");
    }
    free(d);

    /* target_modules */
    d = qv_adapter("targets", NULL);
    write_cfg(d, "\"target_modules\":\".*\\\\.query\"");
    EXPECT_ERR(d, "target_modules", "matches no projection");
    write_cfg(d, "\"target_modules\":[\"q\",\"query\"]");
    EXPECT_ERR(d, "'query'", "matches no projection");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\",\"lm_head\"]");
    EXPECT_ERR(d, "lm_head", "not supported");
    /* the regex form, full match: only self-attention q/v, so cross-attention tensors are
     * not targeted -> error (PEFT would silently drop them) */
    write_cfg(d, "\"target_modules\":\".*SelfAttention\\\\.(q|v)\"");
    EXPECT_ERR(d, "decoder.block.0.layer.1.EncDecAttention.q", "does not target");
    /* a regex that is a prefix only: full-match semantics -> matches nothing */
    write_cfg(d, "\"target_modules\":\"encoder\"");
    EXPECT_ERR(d, "matches no projection");
    /* regex with \\d and a non-capturing group, matching all q/v: loads */
    write_cfg(d, "\"target_modules\":\"(?:en|de)coder\\\\.block\\\\.\\\\d+\\\\.layer\\\\.\\\\d"
                 "\\\\.(Self|EncDec)Attention\\\\.[qv]\"");
    il_lora *a = load(d, false);
    CHECK_MSG(a && il_lora_n_modules(a) == 12, "regex target: %s", il_errmsg());
    il_lora_free(a);
    /* \\d inside brackets, lazy quantifier */
    write_cfg(d, "\"target_modules\":\".*?block\\\\.[\\\\d]\\\\..*Attention\\\\.(q|v)\"");
    a = load(d, false);
    CHECK_MSG(a && il_lora_n_modules(a) == 12, "regex target 2: %s", il_errmsg());
    il_lora_free(a);
    /* exclude_modules and layers_to_transform */
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"],\"exclude_modules\":[\"EncDecAttention.v\"]");
    EXPECT_ERR(d, "EncDecAttention.v", "does not target");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"],\"layers_to_transform\":[0]");
    EXPECT_ERR(d, "block.1", "does not target");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"],"
                 "\"layers_to_transform\":[0,1],\"layers_pattern\":\"block\"");
    a = load(d, false);
    CHECK_MSG(a != NULL, "layers_to_transform: %s", il_errmsg());
    il_lora_free(a);
    /* targeted modules without tensors: loads, with a warning */
    write_cfg(d, "\"target_modules\":[\"q\",\"v\",\"o\"]");
    a = load(d, false);
    CHECK(a && contains(logbuf.data, "no tensors") && contains(logbuf.data, "SelfAttention.o"));
    il_lora_free(a);
    /* malformed / missing files */
    write_text(d, "adapter_config.json", "{\"peft_type\":\"LORA\",\"r\":4,");
    EXPECT_ERR(d, "adapter_config.json", "JSON");
    char *cp = il_path_join(d, "adapter_config.json");
    unlink(cp);
    EXPECT_ERR(d, "adapter_config.json", "missing");
    free(cp);
    free(d);
    d = adapter_dir("no_weights");
    write_cfg(d, "\"target_modules\":[\"q\",\"v\"]");
    EXPECT_ERR(d, "no adapter_model.safetensors or adapter_model.bin");
    free(d);
    char *nd = il_path_join(root, "does_not_exist");
    EXPECT_ERR(nd, "not found");
    free(nd);

    /* a truncated weights file */
    d = qv_adapter("truncated", NULL);
    char *wp = il_path_join(d, "adapter_model.safetensors");
    CHECK(truncate(wp, 200) == 0);
    EXPECT_ERR(d, "adapter_model.safetensors");
    free(wp);
    free(d);

    /* non-finite values */
    d = adapter_dir("nan");
    write_cfg(d, "\"target_modules\":[\"q\"]");
    fill_value = NAN;
    tspec s[2] = {{A, 4, 64, IL_F32}, {B, 64, 4, IL_F32}};
    write_tensors(d, "adapter_model.safetensors", s, 2);
    fill_value = 0.01f;
    EXPECT_ERR(d, E0Q, "non-finite");
    free(d);

    /* BF16 tensors are widened; safetensors wins over a .bin next to it */
    d = adapter_dir("bf16");
    write_cfg(d, "\"target_modules\":[\"encoder.block.0.layer.0.SelfAttention.q\"]");
    tspec sb[2] = {{A, 4, 64, IL_BF16}, {B, 64, 4, IL_BF16}};
    write_tensors(d, "adapter_model.safetensors", sb, 2);
    write_text(d, "adapter_model.bin", "not a zip");
    a = load(d, true);
    CHECK_MSG(a != NULL, "bf16: %s", il_errmsg());
    if (a) CHECK(fabsf(il_lora_module_at(a, 0)->A[0] - il_bf16_to_f32(il_f32_to_bf16(0.01f))) == 0);
    CHECK(contains(logbuf.data, "both weight files"));
    il_lora_free(a);
    free(d);
}

/* The golden adapters against a base model of another shape, and into a model of another
 * shape: clear errors. */
static void test_wrong_base(void) {
    char *d = il_sprintf("%s/golden/t5-tiny-lora/lora_0", TEST_DATA);
    il_t5_config other = tiny;
    other.d_model = 32;
    il_buf_free(&logbuf);
    il_lora_load_opts o = {false, capture, NULL};
    il_lora *a = il_lora_load(d, &other, &o);
    CHECK(a == NULL && contains(il_errmsg(), "wrong base model") && contains(il_errmsg(), "lora_0"));
    printf("  lora_0 on a d_model=32 base -> %s\n", il_errmsg());
    il_lora_free(a);
    other = tiny;
    other.num_layers = 1;
    a = il_lora_load(d, &other, &o);
    CHECK(a == NULL && contains(il_errmsg(), "encoder.block.1") && contains(il_errmsg(), "does not exist"));
    il_lora_free(a);
    /* loaded for t5-tiny, used with a model of another shape */
    a = il_lora_load(d, &tiny, &o);
    il_t5_config big = tiny;
    big.num_layers = big.num_decoder_layers = 1;
    big.vocab_size = 16;
    il_t5 *m = il_t5_new_random(&big, 1);
    il_lora_ctx *ctx = m ? il_lora_ctx_new(m) : NULL;
    CHECK(a && ctx);
    if (a && ctx) {
        CHECK(il_lora_ctx_set_default(ctx, a) == -1 && contains(il_errmsg(), "lora_0"));
        CHECK(il_lora_ctx_set_item(ctx, 3, a) == -1);
        CHECK(il_lora_merge(m, a) == NULL && contains(il_errmsg(), "another shape"));
    }
    il_lora_ctx_free(ctx);
    il_t5_free(m);
    il_lora_free(a);
    free(d);
}

/* ===== a minimal torch.save zip (stored entries) for the empty state dict ===== */

static void put(il_buf *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) {
        uint8_t x = (uint8_t)(v >> (8 * i));
        il_buf_append(b, &x, 1);
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

void write_empty_torch_zip(const char *path, const uint8_t *pkl, size_t n);
void write_empty_torch_zip(const char *path, const uint8_t *pkl, size_t n) {
    const char *names[2] = {"adapter_model/data.pkl", "adapter_model/version"};
    const uint8_t *data[2] = {pkl, (const uint8_t *)"3\n"};
    size_t len[2] = {n, 2};
    uint32_t off[2];
    il_buf b = {0};
    for (int i = 0; i < 2; i++) {
        off[i] = (uint32_t)b.len;
        put(&b, 0x04034b50, 4);
        put(&b, 20, 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2);
        put(&b, crc32_of(data[i], len[i]), 4), put(&b, len[i], 4), put(&b, len[i], 4);
        put(&b, strlen(names[i]), 2), put(&b, 0, 2);
        il_buf_puts(&b, names[i]);
        il_buf_append(&b, data[i], len[i]);
    }
    size_t cd = b.len;
    for (int i = 0; i < 2; i++) {
        put(&b, 0x02014b50, 4);
        put(&b, 20, 2), put(&b, 20, 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2);
        put(&b, crc32_of(data[i], len[i]), 4), put(&b, len[i], 4), put(&b, len[i], 4);
        put(&b, strlen(names[i]), 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2), put(&b, 0, 2);
        put(&b, 0, 4), put(&b, off[i], 4);
        il_buf_puts(&b, names[i]);
    }
    size_t cd_size = b.len - cd;
    put(&b, 0x06054b50, 4);
    put(&b, 0, 2), put(&b, 0, 2), put(&b, 2, 2), put(&b, 2, 2);
    put(&b, cd_size, 4), put(&b, cd, 4), put(&b, 0, 2);
    if (il_write_file_atomic(path, b.data, b.len)) fprintf(stderr, "%s\n", il_errmsg());
    il_buf_free(&b);
}

/* ===== setup ===== */

int main(void) {
    char *cp = il_sprintf("%s/golden/t5-tiny/config.json", TEST_DATA);
    if (il_t5_config_load(&tiny, cp)) {
        fprintf(stderr, "%s\n", il_errmsg());
        return 1;
    }
    free(cp);
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/ilora_lorae_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    printf("errors reported (adapter -> message):\n");
    test_b21();
    test_b22();
    test_b23();
    test_bad_structure();
    test_wrong_base();
    il_remove_tree(root);
    il_buf_free(&logbuf);
    TEST_END();
}
