/* test_lorahub.c - LoraHub learning (lorahub.h) on the golden tiny model (tests/golden/t5-tiny)
 * with the 6 golden adapters (t5-tiny-lora/lora_0..5) and the 3 examples of forward.json
 * (tests/data/cli/examples.jsonl):
 *   - the objective starts at the base model's LoraHub loss (weights 0) and goes down;
 *   - every value of a run (one candidate at a time for COBYLA, a CMA-ES generation per
 *     batched pass) equals the objective of that candidate scored alone (atol 1e-5);
 *   - problems run in lockstep give exactly (bit for bit) what each gives alone, whatever
 *     the number of items per forward pass;
 *   - reproducible for a seed, different for another seed (stochastic methods);
 *   - clear errors for bad problems, nothing left allocated. */
#include "check.h"
#include "lorahub.h"

#include <cJSON.h>

static bool contains(const char *s, const char *sub) { return s && strstr(s, sub); }

typedef struct {
    il_t5 *m;
    il_tokenizer *tok;
    il_lora_ctx *ctx;
    il_lora *ad[6];
    il_lorahub_tokenized ex3; /* the 3 golden examples */
    il_lorahub_tokenized ex2; /* examples 3 and 1 (another problem's examples) */
} fixture;

/* {"input","output"} lines of a JSONL file. */
static int read_jsonl(const char *path, char ***in, char ***out, int *n) {
    size_t len;
    char *text = il_read_file(path, &len);
    if (!text) return -1;
    *n = 0;
    *in = calloc(16, sizeof **in);
    *out = calloc(16, sizeof **out);
    for (char *line = strtok(text, "\n"); line && *n < 16; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *i = cJSON_GetObjectItem(o, "input"), *t = cJSON_GetObjectItem(o, "output");
        if (cJSON_IsString(i) && cJSON_IsString(t)) {
            (*in)[*n] = il_strdup(i->valuestring);
            (*out)[*n] = il_strdup(t->valuestring);
            (*n)++;
        }
        cJSON_Delete(o);
    }
    free(text);
    return *n ? 0 : -1;
}

static int fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    char *md = il_sprintf("%s/golden/t5-tiny", TEST_DATA);
    f->m = il_t5_load(md);
    f->tok = f->m ? il_tokenizer_load(md) : NULL;
    free(md);
    if (!f->m || !f->tok) return -1;
    for (int k = 0; k < 6; k++) {
        char *d = il_sprintf("%s/golden/t5-tiny-lora/lora_%d", TEST_DATA, k);
        f->ad[k] = il_lora_load(d, il_t5_get_config(f->m), NULL);
        free(d);
        if (!f->ad[k]) return -1;
    }
    char **in = NULL, **out = NULL;
    int n = 0;
    char *p = il_sprintf("%s/data/cli/examples.jsonl", TEST_DATA);
    int rc = read_jsonl(p, &in, &out, &n);
    free(p);
    if (rc == 0) {
        CHECK_EQ_INT(n, 3);
        rc = il_lorahub_tokenize(f->tok, n, (const char *const *)in, (const char *const *)out, 2048,
                                 &f->ex3);
        const char *in2[2] = {in[2], in[0]}, *out2[2] = {out[2], out[0]};
        if (rc == 0) rc = il_lorahub_tokenize(f->tok, 2, in2, out2, 2048, &f->ex2);
    }
    for (int i = 0; i < n; i++) free(in[i]), free(out[i]);
    free(in);
    free(out);
    if (rc) return -1;
    f->ctx = il_lora_ctx_new(f->m);
    return f->ctx ? 0 : -1;
}

static void fixture_free(fixture *f) {
    il_lora_ctx_free(f->ctx);
    for (int k = 0; k < 6; k++) il_lora_free(f->ad[k]);
    il_lorahub_tokenized_free(&f->ex3);
    il_lorahub_tokenized_free(&f->ex2);
    il_tokenizer_free(f->tok);
    il_t5_free(f->m);
}

static il_lorahub_problem problem(fixture *f, int first, int n, const il_lorahub_examples *ex,
                                  const char *opt, uint64_t seed) {
    il_lorahub_problem p = {n, (const il_lora *const *)f->ad + first, ex, il_lorahub_default_params()};
    p.params.optimizer = opt;
    p.params.seed = seed;
    return p;
}

static bool same_result(const il_lorahub_result *a, const il_lorahub_result *b) {
    if (a->dim != b->dim || a->n_evals != b->n_evals || a->best_index != b->best_index) return false;
    return memcmp(a->objective, b->objective, sizeof(double) * (size_t)a->n_evals) == 0 &&
           memcmp(a->loss, b->loss, sizeof(double) * (size_t)a->n_evals) == 0 &&
           memcmp(a->evals_w, b->evals_w, sizeof(double) * (size_t)a->n_evals * a->dim) == 0 &&
           memcmp(a->best_w, b->best_w, sizeof(double) * (size_t)a->dim) == 0 &&
           memcmp(&a->best_objective, &b->best_objective, sizeof(double)) == 0;
}

/* The recommendation is the first evaluation with the lowest objective. */
static void check_best(const il_lorahub_result *r) {
    int first = 0;
    for (int i = 1; i < r->n_evals; i++)
        if (r->objective[i] < r->objective[first]) first = i;
    CHECK_EQ_INT(r->best_index, first);
    CHECK(r->best_objective == r->objective[first] && r->best_loss == r->loss[first]);
    CHECK(memcmp(r->best_w, r->evals_w + (size_t)first * r->dim, sizeof(double) * (size_t)r->dim) == 0);
}

/* Every recorded value against the candidate scored alone. */
static void check_against_alone(fixture *f, const il_lorahub_problem *p, const il_lorahub_result *r,
                                const char *what) {
    double worst = 0, worst_rel = 0;
    for (int i = 0; i < r->n_evals; i++) {
        double loss, obj;
        int rc = il_lorahub_objective(f->ctx, p, r->evals_w + (size_t)i * r->dim, &loss, &obj);
        CHECK_MSG(rc == 0, "%s: objective: %s", what, il_errmsg());
        if (rc) return;
        double d = fmax(fabs(loss - r->loss[i]), fabs(obj - r->objective[i]));
        if (!(d <= worst)) worst = d;
        if (!(d / fabs(r->loss[i]) <= worst_rel)) worst_rel = d / fabs(r->loss[i]);
        double l1 = 0;
        for (int k = 0; k < r->dim; k++) l1 += fabs(r->evals_w[(size_t)i * r->dim + k]);
        CHECK_NEAR(r->objective[i] - r->loss[i], p->params.l1 * (l1 / r->dim), 1e-12);
    }
    /* float32 rounding: the rows sharing a GEMM change how OpenBLAS rounds (and so does the
     * thread count); seen up to 5e-6 relative, below 1e-5 absolute at LoraHub's setting */
    CHECK_MSG(worst_rel <= 1e-5, "%s: batched vs alone differ by %g (%g relative)", what, worst,
              worst_rel);
    printf("  %s: %d evaluations, batched vs one at a time: max |diff| %.3g (%.2g relative)\n",
           what, r->n_evals, worst, worst_rel);
}

/* LoraHub's setting (COBYLA, 40 evaluations) on all 6 adapters and the 3 examples. */
static void test_cobyla(fixture *f) {
    il_lorahub_problem p = problem(f, 0, 6, &f->ex3.ex, NULL, 42);
    il_lorahub_result r;
    il_lorahub_run_opts o = {0};
    int rc = il_lorahub_run(f->ctx, &p, &o, &r);
    CHECK_MSG(rc == 0, "run: %s", il_errmsg());
    if (rc) return;
    CHECK_STR(r.optimizer, "cobyla");
    CHECK_EQ_INT(r.n_evals, 40);
    CHECK_EQ_INT(o.forward_passes, 40); /* COBYLA: one candidate per ask */
    CHECK_EQ_INT(o.items_scored, 40 * 3);
    /* the start, w = 0, is the base model: golden HF batch loss 11.62080 / 3 examples */
    for (int k = 0; k < 6; k++) CHECK(r.evals_w[k] == 0);
    CHECK_NEAR(r.objective[0], 11.62079906463623 / 3, 1e-4);
    CHECK(r.objective[0] == r.loss[0]);
    /* then each weight alone at +0.5 (nevergrad's first vertex; later ones may move) */
    CHECK(r.evals_w[6] == 0.5 && r.evals_w[7] == 0);
    CHECK(r.best_objective < r.objective[0]);
    check_best(&r);
    printf("cobyla, 6 adapters, 3 examples: objective %.6f (start) -> %.6f (best, evaluation %d, "
           "loss %.6f), weights", r.objective[0], r.best_objective, r.best_index + 1, r.best_loss);
    for (int k = 0; k < 6; k++) printf(" %.4f", r.best_w[k]);
    printf("\n");
    check_against_alone(f, &p, &r, "cobyla");
    /* reproducible */
    il_lorahub_result r2;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, &r2) == 0);
    CHECK(same_result(&r, &r2));
    il_lorahub_result_free(&r2);
    il_lorahub_result_free(&r);
}

/* CMA-ES: a generation per ask, scored in one batched pass; seeds. */
static void test_cmaes(fixture *f) {
    il_lorahub_problem p = problem(f, 0, 6, &f->ex3.ex, "cmaes", 42);
    il_lorahub_result r, r2, r3;
    il_lorahub_run_opts o = {0};
    int rc = il_lorahub_run(f->ctx, &p, &o, &r);
    CHECK_MSG(rc == 0, "run: %s", il_errmsg());
    if (rc) return;
    CHECK_EQ_INT(r.n_evals, 40);
    /* lambda = 4 + floor(3 ln 6) = 9: 4 full generations + 4, one forward pass each */
    CHECK_EQ_INT(o.forward_passes, 5);
    CHECK_EQ_INT(o.items_scored, 40 * 3);
    CHECK(r.best_objective < r.objective[0] || r.best_index == 0);
    check_best(&r);
    printf("cmaes seed 42: objective %.6f (first) -> %.6f (best)\n", r.objective[0], r.best_objective);
    check_against_alone(f, &p, &r, "cmaes (9 candidates per pass)");
    /* one candidate per pass: the first generation (independent of values) is the same
     * and its values agree with the batched ones */
    il_lorahub_run_opts o1 = {.max_items = 1};
    CHECK(il_lorahub_run(f->ctx, &p, &o1, &r2) == 0);
    CHECK_EQ_INT(o1.forward_passes, 40);
    CHECK(memcmp(r.evals_w, r2.evals_w, sizeof(double) * 9 * 6) == 0);
    for (int i = 0; i < 9; i++) CHECK_NEAR(r.objective[i], r2.objective[i], 1e-5);
    il_lorahub_result_free(&r2);
    /* same seed -> same, bit for bit; another seed -> different */
    CHECK(il_lorahub_run(f->ctx, &p, NULL, &r2) == 0);
    CHECK(same_result(&r, &r2));
    p.params.seed = 43;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, &r3) == 0);
    CHECK(r3.n_evals == 40 && memcmp(r.evals_w, r3.evals_w, sizeof(double) * 40 * 6) != 0);
    il_lorahub_result_free(&r);
    il_lorahub_result_free(&r2);
    il_lorahub_result_free(&r3);
}

/* Several problems in lockstep: one forward pass per round for all of them; every value
 * equals its candidate scored alone; with one candidate per pass, each problem gives bit for
 * bit what it gives alone. */
static void test_lockstep(fixture *f) {
    enum { NP = 4 };
    il_lorahub_problem p[NP] = {
        problem(f, 0, 6, &f->ex3.ex, NULL, 0),      /* cobyla, all adapters */
        problem(f, 1, 3, &f->ex2.ex, "cmaes", 7),   /* other adapters, other examples */
        problem(f, 2, 4, &f->ex3.ex, "1+1-es", 5),
        problem(f, 0, 5, &f->ex2.ex, "random", 9),
    };
    p[0].params.budget = 25;
    p[1].params.budget = 17;
    p[2].params.budget = 12;
    p[3].params.budget = 10;
    p[3].params.max_batch = 4;
    p[2].params.l1 = 0.2;
    p[1].params.batch_size = 1;
    p[1].params.rule = IL_LORA_DELTA;
    il_lorahub_result together[NP], again[NP], alone[NP], inv[NP];
    il_lorahub_run_opts o = {0};
    int rc = il_lorahub_run_many(f->ctx, NP, p, &o, together);
    CHECK_MSG(rc == 0, "run_many: %s", il_errmsg());
    if (rc) return;
    /* rounds = the longest problem's asks: cobyla's 25, each one forward pass */
    CHECK_EQ_INT(o.forward_passes, 25);
    long items = 25 * 3 + 17 * 2 + 12 * 3 + 10 * 2;
    CHECK_EQ_INT(o.items_scored, items);
    CHECK(il_lorahub_run_many(f->ctx, NP, p, NULL, again) == 0);
    il_lorahub_run_opts o1 = {.max_items = 1};
    CHECK(il_lorahub_run_many(f->ctx, NP, p, &o1, inv) == 0);
    CHECK_EQ_INT(o1.forward_passes, 25 + 17 + 12 + 10);
    for (int i = 0; i < NP; i++) {
        CHECK_EQ_INT(together[i].n_evals, p[i].params.budget);
        check_best(&together[i]);
        char what[64];
        snprintf(what, sizeof what, "lockstep problem %d (%s)", i, together[i].optimizer);
        check_against_alone(f, &p[i], &together[i], what);
        CHECK_MSG(same_result(&together[i], &again[i]), "problem %d: not reproducible", i);
        il_lorahub_run_opts a1 = {.max_items = 1};
        CHECK(il_lorahub_run(f->ctx, &p[i], &a1, &alone[i]) == 0);
        CHECK_MSG(same_result(&inv[i], &alone[i]), "problem %d: lockstep differs from alone", i);
        if (i == 3) /* random search ignores the values: the same candidates however batched */
            CHECK(memcmp(together[i].evals_w, inv[i].evals_w, sizeof(double) * 10 * 5) == 0);
        il_lorahub_result_free(&alone[i]);
        il_lorahub_result_free(&inv[i]);
        il_lorahub_result_free(&again[i]);
    }
    for (int i = 0; i < NP; i++) il_lorahub_result_free(&together[i]);
    /* the context is usable afterwards: its default adapter applies again */
    CHECK(il_lora_ctx_set_default(f->ctx, f->ad[0]) == 0);
    double loss;
    CHECK(il_lora_lorahub_loss(f->m, 3, f->ex3.ex.ids, f->ex3.ex.lens, f->ex3.ex.labels,
                               f->ex3.ex.label_lens, 5, &loss) == 0);
    CHECK_NEAR(loss, 9.585473 / 3, 1e-4); /* golden single_0 */
    CHECK(il_lora_ctx_set_default(f->ctx, NULL) == 0);
}

/* on_eval sees every evaluation in order. */
typedef struct {
    int calls, last[4];
    double sum;
} cb_state;
static void on_eval(void *user, int problem, int eval, const double *w, int dim, double loss,
                    double objective) {
    cb_state *s = user;
    if (problem >= 0 && problem < 4) {
        if (eval != s->last[problem] + 1) s->calls = -100000;
        s->last[problem] = eval;
    }
    s->calls++;
    s->sum += objective;
}

static void test_callback(fixture *f) {
    il_lorahub_problem p[2] = {problem(f, 0, 2, &f->ex3.ex, NULL, 0),
                               problem(f, 3, 3, &f->ex2.ex, "cmaes", 1)};
    p[0].params.budget = 5;
    p[1].params.budget = 8;
    cb_state s = {0, {-1, -1, -1, -1}, 0};
    il_lorahub_run_opts o = {.on_eval = on_eval, .user = &s};
    il_lorahub_result r[2];
    CHECK(il_lorahub_run_many(f->ctx, 2, p, &o, r) == 0);
    CHECK_EQ_INT(s.calls, 13);
    CHECK(s.last[0] == 4 && s.last[1] == 7);
    double sum = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < r[i].n_evals; k++) sum += r[i].objective[k];
    CHECK_NEAR(sum, s.sum, 1e-9);
    il_lorahub_result_free(&r[0]);
    il_lorahub_result_free(&r[1]);
}

/* Bad problems: errors naming the problem and the cause; results left empty. */
static void test_errors(fixture *f) {
    il_lorahub_result r[2];
    il_lorahub_problem p = problem(f, 0, 3, &f->ex3.ex, "nelder-mead", 0);
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "cobyla") &&
          contains(il_errmsg(), "cmaes") && contains(il_errmsg(), "nelder-mead"));
    CHECK(r[0].objective == NULL && r[0].n_evals == 0);
    p = problem(f, 0, 3, &f->ex3.ex, NULL, 0);
    p.params.budget = 0;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "budget"));
    p.params.budget = 3;
    p.params.l1 = -1;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "l1"));
    p.params.l1 = 0.05;
    p.params.lo = 0.5; /* start 0 outside the box */
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "x0"));
    p.params.lo = -1.5;
    p.n_adapters = 0;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "n_adapters"));
    p.n_adapters = 3;
    il_lorahub_examples none = {0};
    p.examples = &none;
    CHECK(il_lorahub_run(f->ctx, &p, NULL, r) == -1 && contains(il_errmsg(), "no examples"));
    /* rank 8 (a delta composition) next to rank 4 with the linear rule: both named, in the
     * second problem of two */
    const il_lora *two[2] = {f->ad[0], f->ad[1]};
    const float w2[2] = {1, 1};
    il_lora *r8 = il_lora_compose(2, two, w2, IL_LORA_DELTA);
    CHECK(r8 != NULL);
    const il_lora *mixed[2] = {f->ad[2], r8};
    il_lorahub_problem pp[2] = {problem(f, 0, 3, &f->ex3.ex, NULL, 0),
                                {2, mixed, &f->ex3.ex, il_lorahub_default_params()}};
    CHECK(il_lorahub_run_many(f->ctx, 2, pp, NULL, r) == -1);
    CHECK_MSG(contains(il_errmsg(), "problem 1") && contains(il_errmsg(), "lora_2") &&
              contains(il_errmsg(), "rank"), "%s", il_errmsg());
    printf("  rank mismatch: %s\n", il_errmsg());
    CHECK(r[0].objective == NULL && r[1].objective == NULL);
    /* the delta rule takes it */
    pp[1].params.rule = IL_LORA_DELTA;
    pp[1].params.budget = 3;
    pp[0].params.budget = 2;
    CHECK(il_lorahub_run_many(f->ctx, 2, pp, NULL, r) == 0);
    CHECK(r[0].n_evals == 2 && r[1].n_evals == 3);
    il_lorahub_result_free(&r[0]);
    il_lorahub_result_free(&r[1]);
    il_lora_free(r8);
    /* an adapter of another shape: the context refuses it */
    il_t5_config other = *il_t5_get_config(f->m);
    other.num_layers = other.num_decoder_layers = 1;
    il_t5 *m2 = il_t5_new_random(&other, 3);
    il_lora_ctx *c2 = m2 ? il_lora_ctx_new(m2) : NULL;
    p = problem(f, 0, 2, &f->ex3.ex, NULL, 0);
    p.params.budget = 2;
    CHECK(c2 && il_lorahub_run(c2, &p, NULL, r) == -1 && contains(il_errmsg(), "lora_0") &&
          contains(il_errmsg(), "shape"));
    il_lora_ctx_free(c2);
    il_t5_free(m2);
    CHECK(il_lorahub_run(NULL, &p, NULL, r) == -1);
    il_lorahub_run_opts bad = {.max_items = -1};
    CHECK(il_lorahub_run(f->ctx, &p, &bad, r) == -1 && contains(il_errmsg(), "max_items"));
}

int main(void) {
    fixture f;
    if (fixture_init(&f)) {
        fprintf(stderr, "fixture: %s\n", il_errmsg());
        fixture_free(&f);
        return 1;
    }
    double t = il_now();
    test_cobyla(&f);
    test_cmaes(&f);
    test_lockstep(&f);
    test_callback(&f);
    test_errors(&f);
    printf("(%.2f s)\n", il_now() - t);
    fixture_free(&f);
    TEST_END();
}
