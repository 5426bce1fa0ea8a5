/* test_lora_compose.c - composing LoRA adapters: B25's 2x2 rank-1 example (LoraHub's linear
 * rule vs the exact delta rule, negative weights), B23's rank mismatch, recomposition into
 * a preallocated adapter, saving with per-module ranks, and the speed on the Flan-T5-Large
 * shape. Adapters are built in memory with il_lora_from_tensors. */
#include "check.h"
#include "lora.h"
#include "t5_merge.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===== helpers ===== */

static uint64_t rng = 12345;
static float rnd(void) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 23) - 1.0);
}

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub); }

static il_t5_config tiny_config(void) {
    il_t5_config c;
    char *p = il_sprintf("%s/golden/t5-tiny/config.json", TEST_DATA);
    if (il_t5_config_load(&c, p)) {
        fprintf(stderr, "%s\n", il_errmsg());
        exit(1);
    }
    free(p);
    return c;
}

/* An adapter on the modules of cfg whose names end in one of `suffixes` (e.g. ".q"), with
 * rank r; values from `vals` (A then B per module) if given, else random. */
static il_lora *make(const char *name, const il_t5_config *cfg, const char *config_json,
                     const char *const *suffixes, int n_suf, int r, const float *vals) {
    int n_ids = il_t5_linear_ids(cfg, NULL, 0);
    il_t5_linear_id *ids = calloc((size_t)n_ids, sizeof *ids);
    il_t5_linear_ids(cfg, ids, n_ids);
    il_tensor *t = calloc(2 * (size_t)n_ids, sizeof *t);
    float **bufs = calloc(2 * (size_t)n_ids, sizeof *bufs);
    int n = 0;
    size_t at = 0;
    for (int k = 0; k < n_ids; k++) {
        char mod[96];
        il_t5_linear_name(&ids[k], mod, sizeof mod);
        bool want = false;
        for (int s = 0; s < n_suf; s++) {
            size_t ls = strlen(suffixes[s]), lm = strlen(mod);
            want |= lm >= ls && strcmp(mod + lm - ls, suffixes[s]) == 0;
        }
        if (!want) continue;
        for (int ab = 0; ab < 2; ab++) {
            int64_t d0 = ab ? ids[k].out : r, d1 = ab ? r : ids[k].in;
            size_t cnt = (size_t)(d0 * d1);
            float *p = malloc(cnt * sizeof *p);
            for (size_t i = 0; i < cnt; i++) p[i] = vals ? vals[at++] : rnd() * 0.2f;
            bufs[n] = p;
            t[n].name = il_sprintf("base_model.model.%s.lora_%c.weight", mod, ab ? 'B' : 'A');
            t[n].dtype = IL_F32;
            t[n].ndim = 2;
            t[n].shape[0] = d0;
            t[n].shape[1] = d1;
            t[n].data = p;
            t[n].nbytes = cnt * sizeof(float);
            n++;
        }
    }
    il_lora *a = il_lora_from_tensors(name, config_json, t, n, cfg, NULL);
    if (!a) fprintf(stderr, "make %s: %s\n", name, il_errmsg());
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        free(bufs[i]);
    }
    free(t);
    free(bufs);
    free(ids);
    return a;
}

static char *cfg_json(int r, double alpha, const char *targets, bool rslora) {
    return il_sprintf("{\"peft_type\":\"LORA\",\"task_type\":\"SEQ_2_SEQ_LM\",\"r\":%d,"
                      "\"lora_alpha\":%g,\"target_modules\":%s,\"use_rslora\":%s}",
                      r, alpha, targets, rslora ? "true" : "false");
}

/* dW [out, in] = s * B A of module m. */
static void delta_w(const il_lora_module *m, double *dw) {
    for (int o = 0; o < m->id.out; o++)
        for (int i = 0; i < m->id.in; i++) {
            double s = 0;
            for (int k = 0; k < m->r; k++)
                s += (double)m->B[o * m->r + k] * m->A[k * m->id.in + i];
            dw[o * m->id.in + i] = m->scale * s;
        }
}

/* ===== B25: the 2x2 rank-1 example ===== */

static il_t5_config mini_config(void) {
    il_t5_config c = {0};
    c.vocab_size = 8, c.d_model = 2, c.d_kv = 2, c.num_heads = 1, c.d_ff = 2;
    c.num_layers = 1, c.num_decoder_layers = 1, c.rel_buckets = 32, c.rel_max_distance = 128;
    c.eps = 1e-6f, c.gated = true, c.act = IL_ACT_GELU_NEW, c.tie_word_embeddings = false;
    c.pad_id = 0, c.eos_id = 1, c.decoder_start_id = 0;
    return c;
}

static void test_b25(void) {
    il_t5_config c = mini_config();
    static const char *const q[] = {"encoder.block.0.layer.0.SelfAttention.q"};
    char *cj = cfg_json(1, 1, "[\"encoder.block.0.layer.0.SelfAttention.q\"]", false);
    const float v1[4] = {1, 0, /* B1 */ 1, 0}, v2[4] = {0, 1, /* B2 */ 0, 1};
    il_lora *a1 = make("m1", &c, cj, q, 1, 1, v1), *a2 = make("m2", &c, cj, q, 1, 1, v2);
    free(cj);
    CHECK(a1 && a2);
    if (!a1 || !a2) return;
    CHECK_EQ_INT(il_lora_n_modules(a1), 1);
    const il_lora *src[2] = {a1, a2};
    il_t5 *m = il_t5_new_random(&c, 7);
    CHECK_MSG(m != NULL, "%s", il_errmsg());
    il_t5_linear_id qid = il_lora_module_at(a1, 0)->id;
    const float *W = il_t5_linear_weight(m, &qid);
    struct {
        float w[2];
        il_lora_rule rule;
        double A[2], B[2], dw[4];
    } cases[] = {
        {{0.5f, 0.5f}, IL_LORA_LINEAR, {0.5, 0.5}, {0.5, 0.5}, {0.25, 0.25, 0.25, 0.25}},
        {{1, 0}, IL_LORA_LINEAR, {1, 0}, {1, 0}, {1, 0, 0, 0}},
        {{-1, 0}, IL_LORA_LINEAR, {-1, 0}, {-1, 0}, {1, 0, 0, 0}}, /* the sign cancels */
        {{0.5f, 0.5f}, IL_LORA_DELTA, {0}, {0}, {0.5, 0, 0, 0.5}}, /* sum of deltas */
        {{-1, 0}, IL_LORA_DELTA, {0}, {0}, {-1, 0, 0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        il_lora *x = il_lora_compose(2, src, cases[k].w, cases[k].rule);
        CHECK_MSG(x != NULL, "B25 case %zu: %s", k, il_errmsg());
        if (!x) continue;
        const il_lora_module *mod = il_lora_module_at(x, 0);
        if (cases[k].rule == IL_LORA_LINEAR) {
            CHECK(mod->r == 1 && mod->scale == 1.0f);
            for (int i = 0; i < 2; i++) {
                CHECK(mod->A[i] == (float)cases[k].A[i]);
                CHECK(mod->B[i] == (float)cases[k].B[i]);
            }
        } else {
            CHECK(mod->r == 2 && mod->scale == 1.0f);
        }
        double dw[4];
        delta_w(mod, dw);
        for (int i = 0; i < 4; i++)
            CHECK_MSG(dw[i] == cases[k].dw[i], "B25 case %zu: dW[%d] = %g, want %g", k, i, dw[i],
                      cases[k].dw[i]);
        /* the merged weight is W + dW */
        il_lora_merged *h = m ? il_lora_merge(m, x) : NULL;
        CHECK(h != NULL);
        const float *Wm = m ? il_t5_linear_weight(m, &qid) : NULL;
        for (int i = 0; i < 4 && h; i++) CHECK_NEAR(Wm[i] - W[i], cases[k].dw[i], 1e-6);
        il_lora_unmerge(h);
        if (m) CHECK(il_t5_linear_weight(m, &qid) == W);
        il_lora_free(x);
    }
    il_t5_free(m);
    il_lora_free(a1);
    il_lora_free(a2);
}

/* ===== rules on t5-tiny-shaped adapters ===== */

static const char *const QV[] = {".q", ".v"};

/* Delta = sum_i w_i s_i B_i A_i exactly, even with different ranks; linear refuses those
 * (B23) naming both adapters and the module. */
static void test_rank_mismatch(void) {
    il_t5_config c = tiny_config();
    char *c4 = cfg_json(4, 8, "[\"q\",\"v\"]", false), *c8 = cfg_json(8, 8, "[\"q\",\"v\"]", false);
    il_lora *a = make("adapter_r4", &c, c4, QV, 2, 4, NULL), *b = make("adapter_r8", &c, c8, QV, 2, 8, NULL);
    free(c4);
    free(c8);
    CHECK(a && b);
    if (!a || !b) return;
    const il_lora *src[2] = {a, b};
    const float w[2] = {0.8f, -1.3f};
    il_lora *x = il_lora_compose(2, src, w, IL_LORA_LINEAR);
    CHECK(x == NULL);
    CHECK_MSG(contains(il_errmsg(), "adapter_r4") && contains(il_errmsg(), "adapter_r8") &&
              contains(il_errmsg(), "encoder.block.0.layer.0.SelfAttention.q") &&
              contains(il_errmsg(), "rank"), "got: %s", il_errmsg());
    il_lora_free(x);
    x = il_lora_compose(2, src, w, IL_LORA_DELTA);
    CHECK_MSG(x != NULL, "delta: %s", il_errmsg());
    if (x) {
        CHECK_EQ_INT(il_lora_n_modules(x), 12);
        double worst = 0;
        for (int j = 0; j < il_lora_n_modules(x); j++) {
            const il_lora_module *mx = il_lora_module_at(x, j);
            CHECK_EQ_INT(mx->r, 12);
            const il_lora_module *ma = il_lora_find(a, &mx->id), *mb = il_lora_find(b, &mx->id);
            size_t n = (size_t)mx->id.out * mx->id.in;
            double *dx = malloc(n * sizeof *dx), *da = malloc(n * sizeof *da), *db = malloc(n * sizeof *db);
            delta_w(mx, dx);
            delta_w(ma, da);
            delta_w(mb, db);
            for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(dx[i] - (w[0] * da[i] + w[1] * db[i])));
            free(dx);
            free(da);
            free(db);
        }
        CHECK_MSG(worst < 1e-5, "delta rule vs sum of w_i s_i B_i A_i: %g", worst);
    }
    il_lora_free(x);
    il_lora_free(a);
    il_lora_free(b);
}

static void test_linear_refusals(void) {
    il_t5_config c = tiny_config();
    char *c8 = cfg_json(4, 8, "[\"q\",\"v\"]", false), *c16 = cfg_json(4, 16, "[\"q\",\"v\"]", false);
    char *cq = cfg_json(4, 8, "[\"q\"]", false);
    static const char *const Q[] = {".q"};
    il_lora *a = make("alpha8", &c, c8, QV, 2, 4, NULL), *b = make("alpha16", &c, c16, QV, 2, 4, NULL);
    il_lora *q = make("only_q", &c, cq, Q, 1, 4, NULL);
    free(c8);
    free(c16);
    free(cq);
    CHECK(a && b && q);
    if (!a || !b || !q) goto done;
    const float w[2] = {1, 1};
    const il_lora *ab[2] = {a, b}, *aq[2] = {a, q};
    CHECK(il_lora_compose(2, ab, w, IL_LORA_LINEAR) == NULL);
    CHECK_MSG(contains(il_errmsg(), "scale") && contains(il_errmsg(), "alpha8") &&
              contains(il_errmsg(), "alpha16"), "got: %s", il_errmsg());
    CHECK(il_lora_compose(2, aq, w, IL_LORA_LINEAR) == NULL);
    CHECK_MSG(contains(il_errmsg(), "alpha8") && contains(il_errmsg(), "only_q") &&
              contains(il_errmsg(), "SelfAttention.v"), "got: %s", il_errmsg());
    /* delta takes the union: q has both ranks, v only a's */
    il_lora *u = il_lora_compose(2, aq, w, IL_LORA_DELTA);
    CHECK_MSG(u != NULL, "%s", il_errmsg());
    if (u) {
        il_t5_linear_id qid = {IL_T5_ENCODER, 0, IL_T5_SELF_Q, 64, 64}, vid = qid;
        vid.proj = IL_T5_SELF_V;
        CHECK_EQ_INT(il_lora_find(u, &qid)->r, 8);
        CHECK_EQ_INT(il_lora_find(u, &vid)->r, 4);
    }
    il_lora_free(u);
    /* non-finite weights */
    const float bad[2] = {NAN, 1};
    CHECK(il_lora_compose(2, ab, bad, IL_LORA_DELTA) == NULL && contains(il_errmsg(), "not finite"));
    il_lora_rule r;
    CHECK(il_lora_rule_parse("linear", &r) == 0 && r == IL_LORA_LINEAR);
    CHECK(il_lora_rule_parse("delta", &r) == 0 && r == IL_LORA_DELTA);
    CHECK(il_lora_rule_parse("sum", &r) == -1 && contains(il_errmsg(), "sum"));
done:
    il_lora_free(a);
    il_lora_free(b);
    il_lora_free(q);
}

/* Recomposing into the same object: no reallocation, no trace of the previous weights. */
static void test_compose_into(void) {
    il_t5_config c = tiny_config();
    char *cj = cfg_json(4, 8, "[\"q\",\"v\"]", false);
    il_lora *s[3];
    for (int i = 0; i < 3; i++) s[i] = make("s", &c, cj, QV, 2, 4, NULL);
    free(cj);
    const il_lora *src[3] = {s[0], s[1], s[2]};
    il_lora *dst = il_lora_compose_new(3, src, IL_LORA_LINEAR);
    CHECK(dst != NULL);
    if (!dst) return;
    const float *A0 = il_lora_module_at(dst, 0)->A;
    for (int j = 0; j < il_lora_n_modules(dst); j++) CHECK(il_lora_module_at(dst, j)->A[0] == 0);
    const float w1[3] = {0.3f, 0.1f, -0.7f}, w2[3] = {-1.5f, 0, 1.2f};
    CHECK(il_lora_compose_into(dst, 3, src, w1) == 0);
    CHECK(il_lora_compose_into(dst, 3, src, w2) == 0);
    CHECK(il_lora_module_at(dst, 0)->A == A0);
    il_lora *fresh = il_lora_compose(3, src, w2, IL_LORA_LINEAR);
    for (int j = 0; j < il_lora_n_modules(dst); j++) {
        const il_lora_module *x = il_lora_module_at(dst, j), *y = il_lora_module_at(fresh, j);
        CHECK(memcmp(x->A, y->A, sizeof(float) * x->r * x->id.in) == 0);
        CHECK(memcmp(x->B, y->B, sizeof(float) * x->r * x->id.out) == 0);
    }
    il_lora_free(fresh);
    /* other inputs than planned */
    CHECK(il_lora_compose_into(dst, 2, src, w1) == -1 && contains(il_errmsg(), "planned"));
    char *c8 = cfg_json(8, 8, "[\"q\",\"v\"]", false);
    il_lora *r8 = make("r8", &c, c8, QV, 2, 8, NULL);
    free(c8);
    const il_lora *mixed[3] = {s[0], r8, s[2]};
    CHECK(il_lora_compose_into(dst, 3, mixed, w1) == -1);
    il_lora *ddst = il_lora_compose_new(3, src, IL_LORA_DELTA);
    const il_lora *all8[3] = {r8, r8, r8};
    CHECK(il_lora_compose_into(ddst, 3, all8, w1) == -1 && contains(il_errmsg(), "planned"));
    CHECK(il_lora_compose_into(ddst, 3, src, w1) == 0);
    il_lora_free(ddst);
    il_lora_free(r8);
    il_lora_free(dst);
    for (int i = 0; i < 3; i++) il_lora_free(s[i]);
}

/* ===== saving ===== */

static char base_dir[256];

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void same_adapter(const il_lora *x, const il_lora *y) {
    CHECK_EQ_INT(il_lora_n_modules(x), il_lora_n_modules(y));
    for (int j = 0; j < il_lora_n_modules(x) && j < il_lora_n_modules(y); j++) {
        const il_lora_module *a = il_lora_module_at(x, j), *b = il_lora_module_at(y, j);
        CHECK_STR(a->name, b->name);
        CHECK_MSG(a->r == b->r && fabsf(a->scale - b->scale) <= 1e-6f * a->scale,
                  "%s: r %d/%d scale %g/%g", a->name, a->r, b->r, a->scale, b->scale);
        if (a->r != b->r) continue;
        CHECK(memcmp(a->A, b->A, sizeof(float) * a->r * a->id.in) == 0);
        CHECK(memcmp(a->B, b->B, sizeof(float) * a->r * a->id.out) == 0);
    }
}

static void save_reload(const il_lora *x, const char *name, const il_t5_config *c, const char *expect) {
    char *dir = il_path_join(base_dir, name);
    CHECK_MSG(il_lora_save(x, dir) == 0, "save %s: %s", name, il_errmsg());
    CHECK_EQ_INT(count_entries(dir), 2);
    il_lora *y = il_lora_load(dir, c, NULL);
    CHECK_MSG(y != NULL, "reload %s: %s", name, il_errmsg());
    if (y) same_adapter(x, y);
    char *cp = il_path_join(dir, "adapter_config.json");
    size_t len;
    char *text = il_read_file(cp, &len);
    CHECK_MSG(contains(text, expect), "%s: config lacks %s:\n%s", name, expect, text ? text : "");
    free(text);
    free(cp);
    il_lora_free(y);
    free(dir);
}

static void test_save(void) {
    il_t5_config c = tiny_config();
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof base_dir, "%s/ilora_lorac_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base_dir) != NULL);
    static const char *const Q[] = {".q"}, *const E0Q[] = {"encoder.block.0.layer.0.SelfAttention.q"};
    char *cqv = cfg_json(4, 8, "[\"q\",\"v\"]", false), *cq = cfg_json(8, 16, "[\"q\"]", false);
    char *ce = cfg_json(2, 3, "[\"encoder.block.0.layer.0.SelfAttention.q\"]", true);
    il_lora *a = make("a", &c, cqv, QV, 2, 4, NULL), *b = make("b", &c, cq, Q, 1, 8, NULL);
    il_lora *e = make("e", &c, ce, E0Q, 1, 2, NULL);
    free(cqv);
    free(cq);
    free(ce);
    CHECK(a && b && e);
    if (!a || !b || !e) return;
    const il_lora *ab[2] = {a, b};
    const float w[2] = {0.5f, -2};
    /* delta union: q rank 12, v rank 4 -> rank_pattern, alpha = r so that every scale is 1 */
    il_lora *u = il_lora_compose(2, ab, w, IL_LORA_DELTA);
    save_reload(u, "delta_union", &c, "rank_pattern");
    /* one module with rsLoRA: full module names as target_modules, use_rslora kept */
    CHECK(fabsf(il_lora_module_at(e, 0)->scale - 3 / sqrtf(2)) < 1e-6f);
    save_reload(e, "single_module", &c, "\"use_rslora\":\ttrue");
    save_reload(e, "single_module2", &c, "\"encoder.block.0.layer.0.SelfAttention.q\"");
    /* errors: a missing parent leaves nothing; a stale adapter_model.bin is refused */
    char *bad = il_sprintf("%s/no/such/dir", base_dir);
    CHECK(il_lora_save(u, bad) == -1 && contains(il_errmsg(), bad));
    free(bad);
    char *stale = il_path_join(base_dir, "stale");
    mkdir(stale, 0755);
    char *bin = il_path_join(stale, "adapter_model.bin");
    CHECK(il_write_file_atomic(bin, "x", 1) == 0);
    CHECK(il_lora_save(u, stale) == -1 && contains(il_errmsg(), "adapter_model.bin"));
    CHECK_EQ_INT(count_entries(stale), 1);
    free(bin);
    free(stale);
    CHECK_EQ_INT(count_entries(base_dir), 4); /* 3 saved + stale, no temporaries */
    il_lora_free(u);
    il_lora_free(a);
    il_lora_free(b);
    il_lora_free(e);
    il_remove_tree(base_dir);
}

/* ===== speed: 20 rank-16 adapters on Flan-T5-Large's q projections ===== */

static void test_speed(void) {
    il_t5_config c = mini_config();
    c.d_model = 1024, c.d_kv = 64, c.num_heads = 16, c.d_ff = 2816;
    c.num_layers = 24, c.num_decoder_layers = 24;
#if defined(__SANITIZE_ADDRESS__)
    const int N = 3; /* keep the sanitizer build light */
#else
    const int N = 20;
#endif
    static const char *const Q[] = {".q"};
    char *cj = cfg_json(16, 32, "[\"q\"]", false);
    il_lora *s[20];
    for (int i = 0; i < N; i++) s[i] = make("large", &c, cj, Q, 1, 16, NULL);
    free(cj);
    const il_lora *src[20];
    float w[20];
    for (int i = 0; i < N; i++) src[i] = s[i], w[i] = rnd();
    for (int rule = 0; rule < 2; rule++) {
        il_lora *dst = il_lora_compose_new(N, src, (il_lora_rule)rule);
        CHECK(dst != NULL && il_lora_n_modules(dst) == 72);
        if (!dst) continue;
        CHECK(il_lora_compose_into(dst, N, src, w) == 0); /* warm up */
        const int reps = 5;
        double t0 = il_now();
        for (int k = 0; k < reps; k++) {
            w[0] = (float)k;
            CHECK(il_lora_compose_into(dst, N, src, w) == 0);
        }
        double ms = (il_now() - t0) / reps * 1e3;
        printf("compose_into (%s, %d adapters x 72 modules, rank 16, d 1024): %.2f ms\n",
               il_lora_rule_name((il_lora_rule)rule), N, ms);
        CHECK(ms < 2000);
        il_lora_free(dst);
    }
    for (int i = 0; i < N; i++) il_lora_free(s[i]);
}

int main(void) {
    test_b25();
    test_rank_mismatch();
    test_linear_refusals();
    test_compose_into();
    test_save();
    test_speed();
    TEST_END();
}
