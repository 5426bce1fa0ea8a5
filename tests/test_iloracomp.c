/* test_iloracomp.c - the methods of iloracomp.h on the golden tiny model (tests/golden/t5-tiny),
 * the example library (examples/library: the 6 golden adapters) and the golden tiny embedder
 * (tests/golden/bert-tiny), on cases whose answers are known:
 *   - the ICL prompt format, derived seeds, routing of vectors (nearest, ties -> lower j);
 *   - ilora: questions equal to shot inputs are routed to that shot; with N = library size
 *     every shot retrieves the whole library in descending cosine order (scores recomputed
 *     here); answers generated in one batch equal answers generated alone with the routed
 *     shot's composed adapter (exact ids); shots with the same ordered adapters share one
 *     optimisation; reproducible;
 *   - lorahub: seeded draws, distinct within a run, different across runs and seeds;
 *   - batchcomp: the top-N for the mean shot embedding (cosine, L2) or the joined shot texts
 *     (BM25);
 *   - zeroshot / icl: exactly the base model's answers to the questions / prompts;
 *   - top_n larger than the library: clamped with one warning; errors for bad arguments. */
#include "check.h"
#include "iloracomp.h"

#define EXAMPLES TEST_DATA "/../examples/library"
#define MAX_NEW 12

typedef struct {
    il_t5 *m;       /* the session's model */
    il_t5 *m2;      /* a second copy for answers generated alone */
    il_tokenizer *tok;
    il_embedder *emb;
    il_library *lib;
    il_library_index x;
} fixture;

static void quiet_log(void *user, bool warning, const char *msg) { (void)user, (void)warning, (void)msg; }

static int fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    const char *md = TEST_DATA "/golden/t5-tiny", *ed = TEST_DATA "/golden/bert-tiny";
    f->m = il_t5_load(md);
    f->m2 = il_t5_load(md);
    f->tok = il_tokenizer_load(md);
    f->emb = il_embedder_load(ed);
    f->lib = il_library_open(EXAMPLES, IL_LIBRARY_DEFAULT_MAX_EXAMPLES);
    uint64_t efp;
    if (!f->m || !f->m2 || !f->tok || !f->emb || !f->lib || il_library_embedder_fingerprint(ed, &efp))
        return -1;
    il_index_opts io = {.no_write = true, .rebuild = true, .log = quiet_log};
    return il_library_index_build(f->lib, f->emb, efp, &io, &f->x);
}

static void fixture_free(fixture *f) {
    il_library_index_free(&f->x);
    il_library_free(f->lib);
    il_embedder_free(f->emb);
    il_tokenizer_free(f->tok);
    il_t5_free(f->m);
    il_t5_free(f->m2);
}

/* ---- the task: 5 shots of different kinds; questions, some equal to shot inputs ---- */

static const char *const shot_in[5] = {
    "not ( True ) and ( True ) is",
    "Is the following sentence plausible? \"Joao Moutinho caught the screen pass in the NFC "
    "championship.\"",
    "Sort the following words alphabetically: List: oven costume counterpart",
    "((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =",
    "If you follow these instructions, do you return to the starting point? Take 1 step. Take 2 "
    "steps. Turn around. Take 3 steps.\nOptions:\n- Yes\n- No",
};
static const char *const shot_out[5] = {"False", "no", "costume counterpart oven", "24", "Yes"};
#define NQ 7
static const char *questions[NQ]; /* filled in main */
static const int known_route[NQ] = {2, -1, 0, 4, -1, 1, 3};

static il_ilc_settings base_settings(void) {
    il_ilc_settings s = il_ilc_default_settings();
    s.steps = 6;
    s.top_n = 3;
    s.max_new_tokens = MAX_NEW;
    s.seed = 7;
    return s;
}

typedef struct {
    int warnings;
    char last[256];
    int optimise_calls, last_done, last_total;
} log_sink;

static void sink_log(void *user, const char *msg) {
    log_sink *k = user;
    k->warnings++;
    snprintf(k->last, sizeof k->last, "%s", msg);
}

static void sink_progress(void *user, const char *stage, int done, int total) {
    log_sink *k = user;
    if (!strcmp(stage, "optimise")) {
        k->optimise_calls++;
        k->last_done = done;
        k->last_total = total;
    }
}

/* Greedy answers of the base / adapted model m2 to n texts in one call (adapter a as the
 * default, NULL = base). out_ids[i] malloc'd. */
static int generate_alone(il_t5 *m, const il_tokenizer *tok, const il_lora *a, int n,
                          const char *const *texts, int32_t **out_ids, int *out_lens) {
    il_lora_ctx *ctx = il_lora_ctx_new(m);
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    int *lens = calloc((size_t)n, sizeof *lens);
    int rc = -1;
    if (!ctx || !ids || !lens || il_lora_ctx_set_default(ctx, a)) goto done;
    for (int i = 0; i < n; i++)
        if (il_tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids[i], &lens[i])) goto done;
    il_gen_opts o = il_gen_default_opts();
    o.max_new_tokens = MAX_NEW;
    rc = il_t5_generate(m, n, (const int32_t *const *)ids, lens, &o, out_ids, out_lens, NULL);
done:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    il_lora_ctx_free(ctx);
    return rc;
}

static bool same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, sizeof *a * (size_t)na));
}

/* ===== pure pieces ===== */

static void test_pieces(void) {
    const char *in[2] = {"2 + 2 =", "Is it?"}, *out[2] = {"4", "Yes"};
    char *p = il_ilc_icl_prompt(2, in, out, "3 + 1 =");
    CHECK_STR(p, "2 + 2 = 4\nIs it? Yes\n3 + 1 =");
    free(p);
    p = il_ilc_icl_prompt(1, in, out, "");
    CHECK_STR(p, "2 + 2 = 4\n");
    free(p);

    CHECK(il_ilc_derive_seed(1, "t", "lorahub", 0) == il_ilc_derive_seed(1, "t", "lorahub", 0));
    CHECK(il_ilc_derive_seed(1, "t", "lorahub", 0) != il_ilc_derive_seed(1, "t", "lorahub", 1));
    CHECK(il_ilc_derive_seed(1, "t", "lorahub", 0) != il_ilc_derive_seed(2, "t", "lorahub", 0));
    CHECK(il_ilc_derive_seed(1, "t", "lorahub", 0) != il_ilc_derive_seed(1, "u", "lorahub", 0));
    CHECK(il_ilc_derive_seed(1, "t", "ilora", 0) != il_ilc_derive_seed(1, "t", "batchcomp", 0));

    /* routing: nearest by cosine, ties -> the lower shot */
    const float shots[4 * 2] = {1, 0, 0, 1, -1, 0, 0, 1};
    const float q1[2] = {0.2f, 0.9f}, q2[2] = {-3, 0.1f}, q3[2] = {5, 0}, q4[2] = {1, 1};
    float sim;
    CHECK_EQ_INT(il_ilc_route(q1, shots, 4, 2, &sim), 1); /* shots 1 and 3 tie: lower j */
    CHECK_EQ_INT(il_ilc_route(q2, shots, 4, 2, NULL), 2);
    CHECK_EQ_INT(il_ilc_route(q3, shots, 4, 2, &sim), 0);
    CHECK_NEAR(sim, 1.0, 1e-6);
    CHECK_EQ_INT(il_ilc_route(q4, shots, 4, 2, NULL), 0); /* 0, 1, 3 tie */

    il_method m;
    CHECK(il_method_parse("ilora", &m) == 0 && m == IL_METHOD_ILORA);
    CHECK(il_method_parse("batchcomp", &m) == 0 && m == IL_METHOD_BATCHCOMP);
    CHECK(il_method_parse("fft", &m) == 0 && m == IL_METHOD_FFT);
    CHECK(il_method_parse("finetune", &m) == -1 && strstr(il_errmsg(), "unknown method 'finetune'"));
    for (int i = 0; i < IL_METHOD_COUNT; i++)
        CHECK(il_method_parse(il_method_name((il_method)i), &m) == 0 && m == (il_method)i);
}

/* ===== ilora ===== */

static void test_ilora(fixture *f) {
    il_ilc_settings set = base_settings();
    set.top_n = 6; /* the whole library: a full ranking per shot */
    log_sink sink = {0};
    set.log = sink_log;
    set.progress = sink_progress;
    set.user = &sink;
    il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    CHECK_MSG(s != NULL, "%s", il_errmsg());
    if (!s) return;
    CHECK_EQ_INT(sink.warnings, 0);
    CHECK_EQ_INT(il_ilc_top_n(s), 6);
    il_ilc_task *t = il_ilc_task_new(s, "known", 5, shot_in, shot_out, NQ, questions);
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    il_ilc_result r;
    CHECK_MSG(t && il_ilc_run(t, IL_METHOD_ILORA, &r) == 0, "%s", il_errmsg());
    if (!t || r.nq != NQ) goto out;

    /* routing: a question equal to a shot input goes to that shot */
    for (int q = 0; q < NQ; q++) {
        CHECK(r.route[q] >= 0 && r.route[q] < 5 && r.comp[q] == r.route[q]);
        if (known_route[q] >= 0) {
            CHECK_EQ_INT(r.route[q], known_route[q]);
            CHECK_NEAR(r.route_sim[q], 1.0, 1e-5);
        }
    }
    /* retrieval: descending cosine over the whole library, recomputed here */
    const int dim = il_embedder_dim(f->emb);
    float *e = malloc(sizeof *e * 5 * (size_t)dim);
    char *texts[5];
    for (int j = 0; j < 5; j++) texts[j] = il_sprintf("%s %s", shot_in[j], shot_out[j]);
    CHECK(il_embedder_embed(f->emb, 5, (const char *const *)texts, e) == 0);
    CHECK_EQ_INT(r.n_comps, 5);
    int used = 0;
    for (int j = 0; j < 5; j++) {
        const il_ilc_comp *c = &r.comps[j];
        CHECK_EQ_INT(c->shot, j);
        CHECK_EQ_INT(c->n_adapters, 6);
        int seen = 0;
        for (int i = 0; i < c->n_adapters; i++) {
            seen |= 1 << c->adapters[i];
            float want = il_cosine(e + (size_t)j * dim, f->x.centroids + (size_t)c->adapters[i] * dim, dim);
            CHECK_NEAR(c->scores[i], want, 1e-5);
            if (i) CHECK(c->scores[i - 1] >= c->scores[i]);
        }
        CHECK_EQ_INT(seen, 63); /* a permutation of the library */
        CHECK_EQ_INT(c->opt.n_evals, 6);
        CHECK(c->opt.best_w && c->opt.dim == 6);
        used += c->n_questions;
        if (c->shared_with >= 0) {
            const il_ilc_comp *o = &r.comps[c->shared_with];
            CHECK(c->shared_with < j && o->shared_with < 0);
            CHECK(!memcmp(o->adapters, c->adapters, sizeof(int) * 6));
            CHECK(!memcmp(o->opt.best_w, c->opt.best_w, sizeof(double) * 6));
        }
    }
    CHECK_EQ_INT(used, NQ);
    CHECK_EQ_INT(r.n_evals, r.n_optimisations * 6);
    CHECK_EQ_INT(sink.optimise_calls, r.n_evals);
    CHECK_EQ_INT(sink.last_done, sink.last_total);
    for (int j = 0; j < 5; j++) free(texts[j]);
    free(e);

    /* answers generated together equal answers generated alone with the shot's composition */
    for (int q = 0; q < NQ; q++) {
        const il_ilc_comp *c = &r.comps[r.route[q]];
        il_lora *src[6] = {0};
        float w[6];
        for (int i = 0; i < 6; i++) {
            src[i] = il_library_load_adapter(f->lib, c->adapters[i], il_t5_get_config(f->m2), NULL);
            w[i] = (float)c->opt.best_w[i];
        }
        il_lora *comp = il_lora_compose(6, (const il_lora *const *)src, w, IL_LORA_LINEAR);
        int32_t *ids = NULL;
        int n = 0;
        CHECK(comp && generate_alone(f->m2, f->tok, comp, 1, &questions[q], &ids, &n) == 0);
        CHECK_MSG(same_ids(ids, n, r.ids[q], r.n_ids[q]), "question %d", q);
        char *text = il_tokenizer_decode(f->tok, ids, n, true, true);
        CHECK_STR(r.prediction[q], text);
        free(text);
        free(ids);
        il_lora_free(comp);
        for (int i = 0; i < 6; i++) il_lora_free(src[i]);
    }

    /* reproducible: a new task object gives the same answers and weights */
    il_ilc_task *t2 = il_ilc_task_new(s, "known", 5, shot_in, shot_out, NQ, questions);
    il_ilc_result r2;
    CHECK(t2 && il_ilc_run(t2, IL_METHOD_ILORA, &r2) == 0);
    if (t2 && r2.nq == NQ) {
        for (int q = 0; q < NQ; q++) {
            CHECK_STR(r2.prediction[q], r.prediction[q]);
            CHECK_EQ_INT(r2.route[q], r.route[q]);
        }
        for (int j = 0; j < 5; j++) {
            CHECK(!memcmp(r2.comps[j].opt.best_w, r.comps[j].opt.best_w, sizeof(double) * 6));
            CHECK(!memcmp(r2.comps[j].opt.objective, r.comps[j].opt.objective, sizeof(double) * 6));
        }
        il_ilc_result_free(&r2);
    }
    il_ilc_task_free(t2);
    il_ilc_result_free(&r);
out:
    il_ilc_task_free(t);
    il_ilc_free(s);
}

/* Shots whose ordered adapter lists coincide share one optimisation. */
static void test_shared_optimisation(fixture *f) {
    il_ilc_settings set = base_settings();
    set.top_n = 1;
    il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    il_ilc_task *t = s ? il_ilc_task_new(s, "shared", 5, shot_in, shot_out, 2, questions) : NULL;
    il_ilc_result r;
    CHECK_MSG(t && il_ilc_run(t, IL_METHOD_ILORA, &r) == 0, "%s", il_errmsg());
    if (t && r.n_comps == 5) {
        int distinct = 0;
        for (int j = 0; j < 5; j++) {
            bool seen = false;
            for (int i = 0; i < j; i++) seen |= r.comps[i].adapters[0] == r.comps[j].adapters[0];
            distinct += !seen;
            CHECK_EQ_INT(r.comps[j].shared_with >= 0, seen);
        }
        CHECK_EQ_INT(r.n_optimisations, distinct);
        CHECK(distinct < 5); /* 5 shots, 6 adapters: this data shares (else the test is void) */
        il_ilc_result_free(&r);
    }
    il_ilc_task_free(t);
    il_ilc_free(s);
}

/* ===== baselines ===== */

static void test_base_methods(fixture *f) {
    il_ilc_settings set = base_settings();
    il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    il_ilc_task *t = s ? il_ilc_task_new(s, "base", 5, shot_in, shot_out, NQ, questions) : NULL;
    CHECK_MSG(t != NULL, "%s", il_errmsg());
    if (!t) { il_ilc_free(s); return; }
    for (int k = 0; k < 2; k++) {
        il_method m = k ? IL_METHOD_ICL : IL_METHOD_ZEROSHOT;
        il_ilc_result r;
        CHECK(il_ilc_run(t, m, &r) == 0);
        CHECK_EQ_INT(r.n_comps, 0);
        CHECK(r.route == NULL);
        const char *texts[NQ];
        char *prompts[NQ];
        for (int q = 0; q < NQ; q++) {
            prompts[q] = k ? il_ilc_icl_prompt(5, shot_in, shot_out, questions[q]) : NULL;
            texts[q] = k ? prompts[q] : questions[q];
        }
        /* the same batch, the base model: exactly the same ids */
        int32_t *ids[NQ] = {0};
        int lens[NQ];
        CHECK(generate_alone(f->m2, f->tok, NULL, NQ, texts, ids, lens) == 0);
        for (int q = 0; q < NQ; q++) {
            CHECK_MSG(same_ids(ids[q], lens[q], r.ids[q], r.n_ids[q]), "%s question %d",
                      il_method_name(m), q);
            CHECK_EQ_INT(r.comp[q], -1);
            free(ids[q]);
            free(prompts[q]);
        }
        il_ilc_result_free(&r);
    }
    il_ilc_task_free(t);
    il_ilc_free(s);
}

static void test_lorahub(fixture *f) {
    il_ilc_settings set = base_settings();
    set.lorahub_runs = 3;
    il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, NULL, &set); /* no index needed */
    set.seed = 8;
    il_ilc *s8 = il_ilc_new_library(f->m2, f->tok, f->emb, f->lib, NULL, &set);
    CHECK(s && s8);
    il_ilc_task *t = s ? il_ilc_task_new(s, "lh", 5, shot_in, shot_out, 3, questions) : NULL;
    il_ilc_task *t8 = s8 ? il_ilc_task_new(s8, "lh", 5, shot_in, shot_out, 3, questions) : NULL;
    il_ilc_result a, b, c;
    int ra = t ? il_ilc_run(t, IL_METHOD_LORAHUB, &a) : -1;
    int rb = t ? il_ilc_run(t, IL_METHOD_LORAHUB, &b) : -1;
    int rc = t8 ? il_ilc_run(t8, IL_METHOD_LORAHUB, &c) : -1;
    CHECK_MSG(ra == 0 && rb == 0 && rc == 0, "%s", il_errmsg());
    if (!ra && !rb && !rc) {
        CHECK_EQ_INT(a.n_runs, 3);
        CHECK_EQ_INT(a.n_comps, 3);
        bool all_same = true, differs_by_seed = false;
        for (int run = 0; run < 3; run++) {
            const il_ilc_comp *x = &a.comps[run], *y = &b.comps[run], *z = &c.comps[run];
            CHECK_EQ_INT(x->n_adapters, 3);
            CHECK(x->seed == il_ilc_derive_seed(7, "lh", "lorahub", run));
            CHECK(!memcmp(x->adapters, y->adapters, sizeof(int) * 3)); /* seeded */
            CHECK(!memcmp(x->opt.best_w, y->opt.best_w, sizeof(double) * 3));
            for (int i = 0; i < 3; i++) {
                CHECK(x->adapters[i] >= 0 && x->adapters[i] < 6);
                CHECK(isnan(x->scores[i]));
                for (int i2 = 0; i2 < i; i2++) CHECK(x->adapters[i] != x->adapters[i2]); /* no repeats */
            }
            if (run) all_same &= !memcmp(x->adapters, a.comps[0].adapters, sizeof(int) * 3);
            differs_by_seed |= memcmp(x->adapters, z->adapters, sizeof(int) * 3) != 0;
            for (int q = 0; q < 3; q++) {
                CHECK_EQ_INT(a.comp[run * 3 + q], run);
                CHECK_STR(a.prediction[run * 3 + q], b.prediction[run * 3 + q]);
            }
        }
        CHECK(!all_same);
        CHECK(differs_by_seed);
    }
    if (!ra) il_ilc_result_free(&a);
    if (!rb) il_ilc_result_free(&b);
    if (!rc) il_ilc_result_free(&c);
    il_ilc_task_free(t);
    il_ilc_task_free(t8);
    il_ilc_free(s);
    il_ilc_free(s8);
}

static void test_batchcomp(fixture *f) {
    const int dim = il_embedder_dim(f->emb), m = il_library_size(f->lib);
    float *e = malloc(sizeof *e * 5 * (size_t)dim), *mean = calloc((size_t)dim, sizeof *mean);
    float *scores = malloc(sizeof *scores * (size_t)m);
    char *texts[5];
    for (int j = 0; j < 5; j++) texts[j] = il_sprintf("%s %s", shot_in[j], shot_out[j]);
    CHECK(il_embedder_embed(f->emb, 5, (const char *const *)texts, e) == 0);
    for (int d = 0; d < dim; d++) {
        double acc = 0;
        for (int j = 0; j < 5; j++) acc += e[(size_t)j * dim + d];
        mean[d] = (float)(acc / 5);
    }
    for (int k = 0; k < 3; k++) {
        il_ilc_settings set = base_settings();
        set.retrieval = k == 0 ? IL_SIM_COSINE : k == 1 ? IL_SIM_L2 : IL_SIM_BM25;
        int want[3];
        if (k < 2) {
            il_vector_scores(set.retrieval, mean, f->x.centroids, m, dim, scores);
        } else {
            char *joined = il_sprintf("%s\n%s\n%s\n%s\n%s", texts[0], texts[1], texts[2], texts[3], texts[4]);
            il_bm25 *bm = il_library_bm25(f->lib);
            CHECK(bm && il_bm25_scores(bm, joined, scores) == 0);
            il_bm25_free(bm);
            free(joined);
        }
        CHECK(il_top_n(scores, m, 3, want) == 0);
        il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, k < 2 ? &f->x : NULL, &set);
        il_ilc_task *t = s ? il_ilc_task_new(s, "bc", 5, shot_in, shot_out, 2, questions) : NULL;
        il_ilc_result r;
        CHECK_MSG(t && il_ilc_run(t, IL_METHOD_BATCHCOMP, &r) == 0, "%s", il_errmsg());
        if (t && r.n_comps == 1) {
            CHECK(!memcmp(r.comps[0].adapters, want, sizeof want));
            for (int i = 0; i < 3; i++) CHECK_NEAR(r.comps[0].scores[i], scores[want[i]], 1e-6);
            if (k == 1) CHECK(r.comps[0].scores[0] <= 0); /* negated distance */
            CHECK_EQ_INT(r.comp[0], 0);
            CHECK_EQ_INT(r.comp[1], 0);
            CHECK_EQ_INT(r.comps[0].n_questions, 2);
            il_ilc_result_free(&r);
        }
        /* BM25 ilora: shot j retrieves with its own text */
        if (k == 2 && t) {
            CHECK(il_ilc_run(t, IL_METHOD_ILORA, &r) == 0);
            il_bm25 *bm = il_library_bm25(f->lib);
            for (int j = 0; j < 5 && r.n_comps == 5; j++) {
                CHECK(il_bm25_scores(bm, texts[j], scores) == 0 && il_top_n(scores, m, 3, want) == 0);
                CHECK(!memcmp(r.comps[j].adapters, want, sizeof want));
            }
            il_bm25_free(bm);
            il_ilc_result_free(&r);
        }
        il_ilc_task_free(t);
        il_ilc_free(s);
    }
    for (int j = 0; j < 5; j++) free(texts[j]);
    free(e);
    free(mean);
    free(scores);
}

/* ===== clamping and errors ===== */

static void test_errors(fixture *f) {
    il_ilc_settings set = base_settings();
    log_sink sink = {0};
    set.top_n = 100;
    set.log = sink_log;
    set.user = &sink;
    il_ilc *s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    CHECK(s != NULL);
    CHECK_EQ_INT(sink.warnings, 1);
    CHECK(strstr(sink.last, "larger than the library") && strstr(sink.last, "6"));
    CHECK_EQ_INT(s ? il_ilc_top_n(s) : 0, 6);
    CHECK(il_ilc_task_new(s, "empty", 0, shot_in, shot_out, 1, questions) == NULL);
    CHECK(strstr(il_errmsg(), "empty") != NULL);
    il_ilc_task *t = il_ilc_task_new(s, "t", 1, shot_in, shot_out, 0, NULL);
    CHECK(t != NULL); /* no questions is fine */
    il_ilc_result r;
    CHECK(il_ilc_run(t, IL_METHOD_COUNT, &r) == -1);
    CHECK(il_ilc_run(t, IL_METHOD_ZEROSHOT, &r) == 0 && r.nq == 0);
    il_ilc_result_free(&r);
    il_ilc_task_free(t);
    il_ilc_free(s);

    /* a model can carry one session (one hook) */
    s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    CHECK(s != NULL);
    CHECK(il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set) == NULL);
    il_ilc_free(s);

    set = base_settings();
    set.steps = 0;
    CHECK(il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set) == NULL);
    CHECK(strstr(il_errmsg(), "steps") != NULL);
    set = base_settings();
    set.retrieval = IL_SIM_COSINE;
    s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, NULL, &set); /* no centroids */
    t = s ? il_ilc_task_new(s, "noindex", 2, shot_in, shot_out, 1, questions) : NULL;
    CHECK(t && il_ilc_run(t, IL_METHOD_BATCHCOMP, &r) == -1);
    CHECK(strstr(il_errmsg(), "centroids") != NULL);
    CHECK(il_ilc_run(t, IL_METHOD_LORAHUB, &r) == 0); /* lorahub needs no index */
    il_ilc_result_free(&r);
    il_ilc_task_free(t);
    il_ilc_free(s);
    const char *bad[1] = {"\xff\xfe"};
    s = il_ilc_new_library(f->m, f->tok, f->emb, f->lib, &f->x, &set);
    CHECK(il_ilc_task_new(s, "bad", 1, bad, shot_out, 0, NULL) == NULL);
    il_ilc_free(s);
}

int main(void) {
    for (int q = 0; q < NQ; q++)
        questions[q] = known_route[q] >= 0 ? shot_in[known_route[q]]
                     : q == 1 ? "True and False is"
                              : "Sort the following words alphabetically: List: apple zebra mango";
    test_pieces();
    fixture f;
    int frc = fixture_init(&f);
    CHECK_MSG(frc == 0, "fixture: %s", il_errmsg());
    if (frc == 0) {
        test_ilora(&f);
        test_shared_optimisation(&f);
        test_base_methods(&f);
        test_lorahub(&f);
        test_batchcomp(&f);
        test_errors(&f);
    }
    fixture_free(&f);
    TEST_END();
}
